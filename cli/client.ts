/**
 * The `cox` CLI's client of the masters' WebSocket gateways (protocol: actors/ws-gateway.ts).
 *
 * {@link CoxClient} implements {@link ObjectApi} and the cluster operations, so the verbs are
 * written against the same interface as the master and can be tested over the memory fake.
 *
 * Failover: the client talks to one master at a time, trying them in the given order. A
 * connection failure, a timeout or an Unavailable reply moves it to the next master and the
 * request is retried there, for at most `failoverRoundsMax` passes over the list (with a
 * backoff between passes). Other errors are the answer. A write whose connection broke after it
 * was sent may have taken effect: retrying a create can then answer AlreadyExists.
 *
 * A watch resumes on the next master from the last resourceVersion it delivered, so the events
 * it yields stay gap-free and duplicate-free across failover; it also resumes (on the same
 * master) after ResourceExhausted (fell behind). Gone is passed to the caller, who relists. A
 * watch opened without a resourceVersion can only resume exactly once it has seen one: callers
 * that need failover start from a list's resourceVersion, as `get -w` does.
 */

import WebSocket from 'ws';
import {
  type AddMemberRequest,
  ApiError,
  ApiErrorCode,
  type ClusterStatus,
  type ControllersStatus,
  type DeleteOptions,
  type GetOptions,
  isApiError,
  type ListOptions,
  type ListResult,
  type ObjectApi,
  type ObjectKey,
  type PatchOptions,
  type WatchEvent,
  type WatchOptions,
  type WatchStream,
  type WriteOptions,
} from '../actors/api.js';
import { BatchQueue } from '../actors/batch-queue.js';
import type { WsErrorBody, WsRequestId } from '../actors/ws-gateway.js';
import type { ApiObject } from '../core/index.js';

export const clientLimits = {
  /** A request without a reply after this long fails over to the next master. */
  requestTimeoutMs: 30_000,
  /** Opening a connection (TCP + upgrade). */
  connectTimeoutMs: 3_000,
  /** Passes over the master list before a request gives up. */
  failoverRoundsMax: 3,
  /** Longest pause between passes (an Unavailable's retryAfterMs is capped by this). */
  retryBackoffMsMax: 2_000,
  /** Largest frame accepted from a master (a big list is one frame). */
  framePayloadBytesMax: 512 * 1024 * 1024,
  /** Event frames a watch holds unconsumed before the client stops reading the socket. */
  watchQueuedFramesMax: 64,
  /** Ping period while a stream is open; a master silent for a whole period is dropped. */
  heartbeatIntervalMs: 5_000,
};
export type ClientLimits = typeof clientLimits;

/** The connection to a master broke or could not be made (the request may be retried elsewhere). */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(`${url}: ${message}`);
  }
}

function apiErrorOf(body: WsErrorBody | undefined, fallback: string): ApiError {
  if (body === undefined || typeof body !== 'object') return new ApiError(ApiErrorCode.Internal, fallback);
  const details: { fieldPath?: string; retryAfterMs?: number } = {};
  if (typeof body.fieldPath === 'string') details.fieldPath = body.fieldPath;
  if (typeof body.retryAfterMs === 'number') details.retryAfterMs = body.retryAfterMs;
  const code = Object.hasOwn(ApiErrorCode, body.code) ? body.code : ApiErrorCode.Internal;
  return new ApiError(code, String(body.message ?? fallback), details);
}

/** Whether a failure should move the client to another master. */
function isFailover(err: unknown): boolean {
  return (
    err instanceof ConnectionError ||
    (isApiError(err) && (err.code === ApiErrorCode.Unavailable || err.code === ApiErrorCode.Timeout))
  );
}

interface Pending {
  resolve(result: unknown): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

interface StreamSink {
  onFrame(frame: Record<string, unknown>): void;
  /** `err` is an ApiError (ended by the master) or a ConnectionError (connection lost). */
  onEnd(err: unknown): void;
}

/** One WebSocket to one master: requests by id, streams by id, liveness pings. */
class Connection {
  private readonly pending = new Map<WsRequestId, Pending>();
  private readonly streams = new Map<WsRequestId, StreamSink>();
  private closedError: ConnectionError | undefined;
  private alive = true;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    readonly url: string,
    private readonly socket: WebSocket,
    limits: ClientLimits,
  ) {
    socket.on('message', (data) => this.onMessage(data.toString()));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', (code, reason) =>
      this.onClose(
        new ConnectionError(url, `connection closed (${code}${reason.length ? ` ${reason}` : ''})`),
      ),
    );
    socket.on('error', (err) => this.onClose(new ConnectionError(url, err.message)));
    this.heartbeat = setInterval(() => this.ping(), limits.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  static open(url: string, limits: ClientLimits): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let socket: WebSocket;
      try {
        socket = new WebSocket(url, {
          maxPayload: limits.framePayloadBytesMax,
          handshakeTimeout: limits.connectTimeoutMs,
        });
      } catch (err) {
        reject(new ConnectionError(url, err instanceof Error ? err.message : String(err)));
        return;
      }
      const onError = (err: Error) => {
        socket.removeAllListeners();
        socket.on('error', () => {});
        socket.terminate();
        reject(new ConnectionError(url, err.message || 'cannot connect'));
      };
      socket.once('error', onError);
      socket.once('open', () => {
        socket.off('error', onError);
        resolve(new Connection(url, socket, limits));
      });
    });
  }

  get broken(): boolean {
    return this.closedError !== undefined;
  }

  request(id: WsRequestId, frame: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new ApiError(
            ApiErrorCode.Timeout,
            `${String(frame.op)}: no answer from ${this.url} in ${timeoutMs} ms`,
          ),
        );
        // A master that does not answer is treated as gone: drop the connection.
        this.socket.terminate();
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ ...frame, id }));
    });
  }

  openStream(id: WsRequestId, frame: Record<string, unknown>, sink: StreamSink): void {
    if (this.closedError) {
      const err = this.closedError;
      queueMicrotask(() => sink.onEnd(err));
      return;
    }
    this.streams.set(id, sink);
    this.socket.send(JSON.stringify({ ...frame, id }));
  }

  /** An `input` frame for an open stream (exec stdin, resize, eof). */
  input(id: WsRequestId, body: Record<string, unknown>): void {
    if (this.streams.has(id) && !this.closedError)
      this.socket.send(JSON.stringify({ ...body, id, op: 'input' }));
  }

  cancel(id: WsRequestId): void {
    if (this.streams.has(id) && !this.closedError) this.socket.send(JSON.stringify({ id, op: 'cancel' }));
  }

  /** Stops reading the socket (the master's buffer fills and its stream stops pulling). */
  pause(): void {
    if (!this.closedError) this.socket.pause();
  }

  resume(): void {
    if (!this.closedError) this.socket.resume();
  }

  close(): void {
    this.socket.close(1000);
    this.onClose(new ConnectionError(this.url, 'connection closed by the client'));
  }

  private ping(): void {
    if (this.streams.size === 0 && this.pending.size === 0) return;
    if (!this.alive) {
      this.socket.terminate();
      this.onClose(new ConnectionError(this.url, 'no answer to ping'));
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  private onMessage(text: string): void {
    this.alive = true;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return; // a master never sends this; nothing to match it to
    }
    if (typeof frame !== 'object' || frame === null) return;
    const id = frame.id as WsRequestId;
    if ('ok' in frame) {
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (frame.ok === true) p.resolve(frame.result);
      else p.reject(apiErrorOf(frame.error as WsErrorBody, 'request failed'));
      return;
    }
    const sink = this.streams.get(id);
    if (sink === undefined) return;
    if (frame.end === true) {
      this.streams.delete(id);
      sink.onEnd(
        frame.error === undefined ? undefined : apiErrorOf(frame.error as WsErrorBody, 'stream failed'),
      );
      return;
    }
    sink.onFrame(frame);
  }

  private onClose(err: ConnectionError): void {
    if (this.closedError) return;
    this.closedError = err;
    clearInterval(this.heartbeat);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    const sinks = [...this.streams.values()];
    this.streams.clear();
    for (const s of sinks) s.onEnd(err);
  }
}

export interface CoxClientOptions {
  /** Master gateway URLs (`ws://host:port`), tried in this order. */
  servers: string[];
  limits?: Partial<ClientLimits>;
  /** Progress notes (failover) for stderr; silent by default. */
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client of the masters that fails over between them. See the file comment. */
export class CoxClient implements ObjectApi {
  private readonly limits: ClientLimits;
  private readonly log: (line: string) => void;
  private index = 0;
  private current: Promise<Connection> | undefined;
  private nextId = 1;
  private readonly watches = new Set<ClientWatch>();
  private closed = false;

  constructor(private readonly opts: CoxClientOptions) {
    if (opts.servers.length === 0) throw new Error('CoxClient: no servers');
    this.limits = { ...clientLimits, ...opts.limits };
    this.log = opts.log ?? (() => {});
  }

  /** How many masters the client knows. */
  get serverCount(): number {
    return this.opts.servers.length;
  }

  /** The master the client currently talks to. */
  get server(): string {
    return this.opts.servers[this.index];
  }

  /** A connection to the current master, opened on first use. */
  connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(new ConnectionError(this.server, 'client closed'));
    if (this.current === undefined) {
      const p = Connection.open(this.server, this.limits);
      this.current = p;
      p.catch(() => this.dropConnection(p));
    }
    return this.current;
  }

  /** Moves to the next master when `conn` is still the current one (others may have moved already). */
  dropConnection(conn: Promise<Connection>, reason?: unknown): void {
    if (this.current !== conn) return;
    const from = this.server;
    this.current = undefined;
    conn.then((c) => c.close()).catch(() => {});
    this.index = (this.index + 1) % this.opts.servers.length;
    const why = reason instanceof Error ? `: ${reason.message}` : '';
    this.log(`cox: ${from} failed${why}; trying ${this.server}`);
  }

  allocateId(): number {
    return this.nextId++;
  }

  /** One request with failover. */
  async call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const tries = this.opts.servers.length * this.limits.failoverRoundsMax;
    const failures: string[] = [];
    let lastErr: unknown;
    for (let attempt = 0; attempt < tries; attempt++) {
      if (attempt > 0 && attempt % this.opts.servers.length === 0)
        await sleep(this.backoffMs(lastErr, attempt));
      const connP = this.connection();
      try {
        const conn = await connP;
        return (await conn.request(this.allocateId(), { op, ...args }, this.limits.requestTimeoutMs)) as T;
      } catch (err) {
        if (!isFailover(err)) throw err;
        lastErr = err;
        failures.push(err instanceof Error ? err.message : String(err));
        this.dropConnection(connP, err);
      }
    }
    if (isApiError(lastErr) && lastErr.code === ApiErrorCode.Unavailable) throw lastErr;
    throw new ApiError(
      ApiErrorCode.Unavailable,
      `no master answered (${[...new Set(failures)].slice(-this.opts.servers.length).join('; ')})`,
    );
  }

  private backoffMs(lastErr: unknown, attempt: number): number {
    const hinted = isApiError(lastErr) ? lastErr.details.retryAfterMs : undefined;
    const round = Math.floor(attempt / this.opts.servers.length);
    return Math.min(hinted ?? 100 * 2 ** round, this.limits.retryBackoffMsMax);
  }

  create(obj: unknown, options?: WriteOptions): Promise<ApiObject> {
    return this.call('create', { object: obj, options });
  }
  get(key: ObjectKey, options?: GetOptions): Promise<ApiObject> {
    return this.call('get', { key, options });
  }
  list(kind: string, options?: ListOptions): Promise<ListResult> {
    return this.call('list', { kind, options });
  }
  update(obj: unknown, options?: WriteOptions): Promise<ApiObject> {
    return this.call('update', { object: obj, options });
  }
  updateStatus(obj: unknown, options?: WriteOptions): Promise<ApiObject> {
    return this.call('updateStatus', { object: obj, options });
  }
  patch(key: ObjectKey, patch: unknown, options?: PatchOptions): Promise<ApiObject> {
    return this.call('patch', { key, patch, options });
  }
  delete(key: ObjectKey, options?: DeleteOptions): Promise<ApiObject> {
    return this.call('delete', { key, options });
  }
  async watch(kind: string, options: WatchOptions = {}): Promise<WatchStream> {
    const w = new ClientWatch(this, kind, options, this.limits, () => this.watches.delete(w));
    this.watches.add(w);
    await w.start();
    return w;
  }

  clusterStatus(): Promise<ClusterStatus> {
    return this.call('cluster.status');
  }
  controllerStatus(): Promise<ControllersStatus> {
    return this.call('cluster.controllers');
  }
  addMember(member: AddMemberRequest): Promise<ClusterStatus> {
    return this.call('cluster.addMember', { member });
  }
  removeMember(memberId: string): Promise<ClusterStatus> {
    return this.call('cluster.removeMember', { memberId });
  }
  transferLeadership(to?: string): Promise<ClusterStatus> {
    return this.call('cluster.transfer', to === undefined ? {} : { to });
  }

  /**
   * Opens a stream op (`logs`, `exec`, `stats`). It fails over to the next master only while
   * nothing happened yet (no frame received, no input sent): a master that cannot reach the
   * pod's agent ends the stream with Unavailable at once, and another master may.
   */
  async stream(op: string, args: Record<string, unknown>): Promise<ClientStream> {
    const s = new ClientOpStream(this, op, args, this.limits);
    await s.start();
    return s;
  }

  /** Ends every watch and the connection. */
  close(): void {
    for (const w of [...this.watches]) w.close();
    this.closed = true;
    const cur = this.current;
    this.current = undefined;
    cur?.then((c) => c.close()).catch(() => {});
  }
}

/** A watch that resumes on another master from its last delivered resourceVersion. */
class ClientWatch implements WatchStream {
  private readonly queue: BatchQueue<WatchEvent>;
  /** The version of the last event received: where a resumed watch starts. */
  private lastRv: string | undefined;
  private conn: Connection | undefined;
  private streamId: number | undefined;
  /** Consecutive failed (re)starts; reset by any delivered frame. */
  private failures = 0;

  constructor(
    private readonly client: CoxClient,
    private readonly kind: string,
    private readonly options: WatchOptions,
    private readonly limits: ClientLimits,
    private readonly onDone: () => void,
  ) {
    this.queue = new BatchQueue(
      {
        highWaterBatches: limits.watchQueuedFramesMax,
        pause: () => this.conn?.pause(),
        resume: () => this.conn?.resume(),
      },
      `watch ${kind}`,
    );
    this.lastRv =
      options.resourceVersion !== undefined && options.resourceVersion !== '0'
        ? options.resourceVersion
        : undefined;
  }

  /** Opens the stream; resolves once it is requested on some master (errors arrive through next()). */
  async start(): Promise<void> {
    for (;;) {
      if (this.queue.ended) return;
      const connP = this.client.connection();
      try {
        const conn = await connP;
        this.conn = conn;
        this.streamId = this.client.allocateId();
        const options: WatchOptions =
          this.lastRv === undefined
            ? this.options
            : { ...this.options, resourceVersion: this.lastRv, sendInitialEvents: false };
        const id = this.streamId;
        conn.openStream(
          id,
          { op: 'watch', kind: this.kind, options },
          {
            onFrame: (frame) => this.onFrame(id, frame),
            onEnd: (err) => void this.onEnd(id, connP, err),
          },
        );
        return;
      } catch (err) {
        this.client.dropConnection(connP, err);
        if (!(await this.mayRetry(err))) return;
      }
    }
  }

  /** Counts a failure; false (and the watch failed) once a bounded number of tries is spent. */
  private async mayRetry(err: unknown): Promise<boolean> {
    this.failures++;
    const servers = this.client.serverCount;
    if (this.failures > servers * this.limits.failoverRoundsMax) {
      this.fail(
        isFailover(err) && !isApiError(err)
          ? new ApiError(
              ApiErrorCode.Unavailable,
              `watch ${this.kind}: no master answered (${String((err as Error).message)})`,
            )
          : err,
      );
      return false;
    }
    if (this.failures % servers === 0)
      await sleep(Math.min(100 * 2 ** (this.failures / servers), this.limits.retryBackoffMsMax));
    return true;
  }

  private onFrame(id: number, frame: Record<string, unknown>): void {
    if (id !== this.streamId || this.queue.ended) return;
    const events = frame.events;
    if (!Array.isArray(events) || events.length === 0) return;
    this.failures = 0;
    const last = (events[events.length - 1] as WatchEvent).object?.metadata?.resourceVersion;
    if (typeof last === 'string' && last !== '') this.lastRv = last;
    this.queue.push(events as WatchEvent[]);
  }

  private async onEnd(id: number, connP: Promise<Connection>, err: unknown): Promise<void> {
    if (id !== this.streamId || this.queue.ended) return;
    this.streamId = undefined;
    this.queue.releaseFlow();
    if (err === undefined) {
      this.finish();
      return;
    }
    const resumable = isFailover(err) || (isApiError(err) && err.code === ApiErrorCode.ResourceExhausted);
    if (!resumable) {
      this.fail(err);
      return;
    }
    if (isFailover(err)) this.client.dropConnection(connP, err);
    if (await this.mayRetry(err)) await this.start();
  }

  next(): Promise<WatchEvent[] | undefined> {
    return this.queue.next();
  }

  close(): void {
    if (this.queue.ended) return;
    if (this.streamId !== undefined) this.conn?.cancel(this.streamId);
    this.finish();
  }

  private finish(error?: unknown): void {
    if (this.queue.ended) return;
    this.streamId = undefined;
    this.queue.end(error);
    this.onDone();
  }

  private fail(err: unknown): void {
    this.finish(err);
  }
}

/** A generic stream op as the CLI consumes it. */
export interface ClientStream {
  /** The next frame (without `id`), undefined at the end; rejects with the error that ended it. */
  next(): Promise<Record<string, unknown> | undefined>;
  /** Sends an `input` frame (`{ stdin }`, `{ resize }`, `{ eof: true }`). */
  input(body: Record<string, unknown>): void;
  close(): void;
}

class ClientOpStream implements ClientStream {
  private readonly queue: BatchQueue<Record<string, unknown>>;
  private conn: Connection | undefined;
  private streamId: number | undefined;
  private started = false;
  private attempts = 0;

  constructor(
    private readonly client: CoxClient,
    private readonly op: string,
    private readonly args: Record<string, unknown>,
    private readonly limits: ClientLimits,
  ) {
    this.queue = new BatchQueue(
      {
        highWaterBatches: limits.watchQueuedFramesMax,
        pause: () => this.conn?.pause(),
        resume: () => this.conn?.resume(),
      },
      op,
    );
  }

  async start(): Promise<void> {
    const tries = this.client.serverCount * this.limits.failoverRoundsMax;
    for (;;) {
      if (this.queue.ended) return;
      const connP = this.client.connection();
      try {
        const conn = await connP;
        this.conn = conn;
        const id = this.client.allocateId();
        this.streamId = id;
        conn.openStream(
          id,
          { op: this.op, ...this.args },
          {
            onFrame: (frame) => this.onFrame(id, frame),
            onEnd: (err) => void this.onEnd(id, connP, err),
          },
        );
        return;
      } catch (err) {
        this.client.dropConnection(connP, err);
        this.attempts += 1;
        if (this.attempts >= tries) {
          this.queue.end(err);
          return;
        }
        if (this.attempts % this.client.serverCount === 0) await sleep(this.limits.retryBackoffMsMax / 4);
      }
    }
  }

  private onFrame(id: number, frame: Record<string, unknown>): void {
    if (id !== this.streamId || this.queue.ended) return;
    this.started = true;
    const { id: _id, ...body } = frame;
    this.queue.push([body]);
  }

  private async onEnd(id: number, connP: Promise<Connection>, err: unknown): Promise<void> {
    if (id !== this.streamId || this.queue.ended) return;
    this.streamId = undefined;
    this.queue.releaseFlow();
    this.attempts += 1;
    const retry =
      err !== undefined &&
      isFailover(err) &&
      !this.started &&
      this.attempts < this.client.serverCount * this.limits.failoverRoundsMax;
    if (!retry) {
      this.queue.end(err);
      return;
    }
    // Unavailable from a master that cannot reach the agent: the connection itself is fine,
    // but the next request should go to another master.
    this.client.dropConnection(connP, err);
    if (this.attempts % this.client.serverCount === 0) {
      const hinted = isApiError(err) ? err.details.retryAfterMs : undefined;
      await sleep(Math.min(hinted ?? 200, this.limits.retryBackoffMsMax));
    }
    await this.start();
  }

  async next(): Promise<Record<string, unknown> | undefined> {
    const batch = await this.queue.next();
    return batch?.[0];
  }

  input(body: Record<string, unknown>): void {
    this.started = true; // input may have taken effect: never replay the stream elsewhere
    if (this.streamId !== undefined) this.conn?.input(this.streamId, body);
  }

  close(): void {
    if (this.queue.ended) return;
    if (this.streamId !== undefined) this.conn?.cancel(this.streamId);
    this.streamId = undefined;
    this.queue.end();
  }
}

/**
 * ApiClient: ObjectApi and ClusterApi over the masters' gRPC API (proto/api.proto), so tests,
 * benches, the CLI and node agents program against the same interfaces as the master itself.
 *
 * Errors come back as the ApiError the server raised: same code, message, fieldPath and
 * retryAfterMs (from the `coxswain-*` trailers); statuses made by grpc-js itself map by their
 * gRPC code (see grpc-api-wire.ts `apiCodeOfGrpcStatus`).
 *
 * Failover rule. The client keeps a list of masters and talks to the last one that answered.
 * Before each call it waits (up to `connectTimeoutMs`) for that master's channel to be READY;
 * a master it cannot connect to is skipped: nothing was sent, so any operation may move on.
 * Once a call was sent, what happens on UNAVAILABLE depends on the operation:
 * - idempotent operations (get, list, watch, status, snapshot) try the next master;
 * - writes (create, update, updateStatus, patch, delete, addMember, removeMember,
 *   transferLeadership) try the next master only when the server itself answered
 *   `coxswain-error-code: Unavailable` — the master's promise that it proposed nothing (no
 *   leader, no quorum). An UNAVAILABLE without that code (connection cut mid-call) may come
 *   after the write was applied: it is raised as Timeout (outcome unknown, like a deadline) with "outcome unknown" in the
 *   message and no retry, so the caller decides (a retried create meets AlreadyExists, a
 *   retried write with a resourceVersion meets Conflict).
 * Each master is tried at most once per call; all attempts share one deadline (`deadlineMs`).
 */
import * as grpc from '@grpc/grpc-js';
import type { ApiObject } from '../core/index.js';
import {
  type AddMemberRequest,
  ApiError,
  type ClusterApi,
  type ClusterStatus,
  type ControllersStatus,
  type DeleteOptions,
  type GetOptions,
  type ListOptions,
  type ListResult,
  type ObjectApi,
  type ObjectKey,
  type PatchOptions,
  type WatchEvent,
  type WatchOptions,
  type WatchStream,
  type WriteOptions,
} from './api.js';
import { BatchQueue } from './batch-queue.js';
import {
  clusterStatusFromWire,
  consistencyToWire,
  controllersStatusFromWire,
  encodeJson,
  eventTypeFromWire,
  fromStatus,
  grpcApiLimits,
  hasApiErrorCode,
  loadApiProto,
  propagationToWire,
  type WireClusterStatus,
  type WireControllersStatus,
  type WireDeleteRequest,
  type WireListRequest,
  type WireListResponse,
  type WireObjectResponse,
  type WireSnapshotChunk,
  type WireWatchRequest,
  type WireWatchResponse,
} from './grpc-api-wire.js';
import { CallStream, isCallMethod } from './grpc-calls.js';

export interface ApiClientOptions {
  /** Time one API call may take, failover included, in ms. Default 30,000. */
  deadlineMs?: number;
  /** Time to wait for a master's connection before trying the next, in ms. Default 2,000. */
  connectTimeoutMs?: number;
  /** First reconnect delay of a master's channel after a failure, in ms. Default 100. */
  reconnectBackoffMsMin?: number;
  /** Cap of that delay, in ms. Default 2,000. */
  reconnectBackoffMsMax?: number;
  /** Watch messages received but not yet taken by `next()` before the stream is paused. Default 64. */
  watchBufferMessagesMax?: number;
  /** Reopenings of a watch on another master without an event in between (see `watch`). Default 3. */
  watchResumeAttemptsMax?: number;
  /** Largest request message sent, in bytes. Default `grpcApiLimits.requestBytesMax`. */
  requestBytesMax?: number;
  /** Largest response message accepted, in bytes. Default `grpcApiLimits.responseBytesMax`. */
  responseBytesMax?: number;
  /** Default: insecure (loopback clusters). */
  channelCredentials?: grpc.ChannelCredentials;
  /**
   * Send create, update, updateStatus, patch, delete and get over one `Calls` stream per master
   * (see grpc-calls.ts) instead of a unary call each. Default true.
   */
  callStreams?: boolean;
  /**
   * Calls sent on one master's `Calls` stream without a result yet (the masters' own bound);
   * further calls wait in the client. Default 1,024.
   */
  callsInFlightMax?: number;
  /** Calls waiting in the client for room on a master's stream; beyond it a call fails with ResourceExhausted. Default 16,384. */
  callsWaitingMax?: number;
}

type UnaryMethod = (
  req: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;
type StreamMethod = (
  req: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;

/** One master: a channel shared by the Objects and Cluster stubs. */
interface Connection {
  address: string;
  objects: grpc.Client;
  cluster: grpc.Client;
  /** The `Calls` stream (absent when `callStreams` is false). */
  calls?: CallStream;
}

function unary<Res>(client: grpc.Client, method: string, req: unknown, deadlineMs: number): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  return new Promise((resolve, reject) => {
    fn.call(client, req, new grpc.Metadata(), { deadline: deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    );
  });
}

function serverStream<Res>(
  client: grpc.Client,
  method: string,
  req: unknown,
): grpc.ClientReadableStream<Res> {
  const fn = (client as unknown as Record<string, StreamMethod>)[method];
  return fn.call(client, req, new grpc.Metadata(), {}) as grpc.ClientReadableStream<Res>;
}

/** Resolves once `channel` is READY; rejects on TRANSIENT_FAILURE, SHUTDOWN or at `deadlineMs`. */
function channelReady(channel: ReturnType<grpc.Client['getChannel']>, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) resolve();
      else if (
        state === grpc.connectivityState.TRANSIENT_FAILURE ||
        state === grpc.connectivityState.SHUTDOWN
      ) {
        reject(new Error(`connection ${grpc.connectivityState[state]}`));
      } else
        channel.watchConnectivityState(state, deadlineMs, (err) =>
          err ? reject(new Error('connect timed out')) : check(),
        );
    };
    check();
  });
}

function parseObject(bytes: Uint8Array | undefined, what: string): ApiObject {
  if (bytes === undefined || bytes.byteLength === 0)
    throw new ApiError('Internal', `${what}: the server sent no object`);
  try {
    return JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    ) as ApiObject;
  } catch (err) {
    throw new ApiError('Internal', `${what}: the server sent an object that is not JSON`, { cause: err });
  }
}

function describeKey(key: ObjectKey): string {
  return key.namespace ? `${key.kind} ${key.namespace}/${key.name}` : `${key.kind} ${key.name}`;
}

function describeObject(obj: unknown): string {
  const o = obj as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  const kind = typeof o?.kind === 'string' ? o.kind : 'object';
  const name = typeof o?.metadata?.name === 'string' ? o.metadata.name : '';
  const ns = typeof o?.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  return name === '' ? kind : `${kind} ${ns}${name}`;
}

export class ApiClient implements ObjectApi, ClusterApi {
  private readonly connections: (Connection | undefined)[];
  /** Index of the master that answered last; calls start there. */
  private current = 0;
  private readonly deadlineMs: number;
  private readonly connectTimeoutMs: number;
  private readonly watchBufferMessagesMax: number;
  private readonly watchResumeAttemptsMax: number;
  private readonly channelOptions: grpc.ChannelOptions;
  private closed = false;

  /** `addresses`: the masters' gRPC API addresses (`host:port`), tried in this order. */
  constructor(
    readonly addresses: readonly string[],
    private readonly options: ApiClientOptions = {},
  ) {
    if (addresses.length === 0)
      throw new Error('ApiClient: addresses: at least one master address is required');
    this.connections = addresses.map(() => undefined);
    this.deadlineMs = options.deadlineMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.watchBufferMessagesMax = options.watchBufferMessagesMax ?? 64;
    this.watchResumeAttemptsMax = options.watchResumeAttemptsMax ?? 3;
    this.channelOptions = {
      'grpc.max_send_message_length': options.requestBytesMax ?? grpcApiLimits.requestBytesMax,
      'grpc.max_receive_message_length': options.responseBytesMax ?? grpcApiLimits.responseBytesMax,
      'grpc.initial_reconnect_backoff_ms': options.reconnectBackoffMsMin ?? 100,
      'grpc.max_reconnect_backoff_ms': options.reconnectBackoffMsMax ?? 2_000,
    };
  }

  /** The master calls go to first (the one that answered last). */
  get currentAddress(): string {
    return this.addresses[this.current];
  }

  /** Closes every channel; open watches end. */
  close(): void {
    this.closed = true;
    for (const conn of this.connections) {
      conn?.calls?.close();
      conn?.objects.close();
    }
    this.connections.fill(undefined);
  }

  // ---------------------------------------------------------------- ObjectApi

  async create(obj: unknown, opts: WriteOptions = {}): Promise<ApiObject> {
    const what = `create ${describeObject(obj)}`;
    const req = { object_json: encodeJson(obj), dry_run: opts.dryRun === true };
    return parseObject(
      (await this.write<WireObjectResponse>(what, 'objects', 'Create', req)).object_json,
      what,
    );
  }

  async get(key: ObjectKey, opts: GetOptions = {}): Promise<ApiObject> {
    const what = `get ${describeKey(key)}`;
    const req = { ...key, consistency: consistencyToWire(opts.consistency) };
    return parseObject((await this.read<WireObjectResponse>(what, 'objects', 'Get', req)).object_json, what);
  }

  async list(kind: string, opts: ListOptions = {}): Promise<ListResult> {
    const what = `list ${kind}`;
    const req: WireListRequest = {
      kind,
      namespace: opts.namespace,
      label_selector: opts.labelSelector,
      field_selector: opts.fieldSelector,
      limit: opts.limit,
      continue: opts.continue,
      consistency: consistencyToWire(opts.consistency),
    };
    const res = await this.read<WireListResponse>(what, 'objects', 'List', req);
    const result: ListResult = {
      items: (res.items_json ?? []).map((item) => parseObject(item, what)),
      resourceVersion: res.resource_version ?? '',
    };
    if (res.continue) result.continue = res.continue;
    if (res.remaining_item_count !== undefined) result.remainingItemCount = res.remaining_item_count;
    return result;
  }

  async update(obj: unknown, opts: WriteOptions = {}): Promise<ApiObject> {
    const what = `update ${describeObject(obj)}`;
    const req = { object_json: encodeJson(obj), dry_run: opts.dryRun === true };
    return parseObject(
      (await this.write<WireObjectResponse>(what, 'objects', 'Update', req)).object_json,
      what,
    );
  }

  async updateStatus(obj: unknown, opts: WriteOptions = {}): Promise<ApiObject> {
    const what = `update status of ${describeObject(obj)}`;
    const req = { object_json: encodeJson(obj), dry_run: opts.dryRun === true };
    return parseObject(
      (await this.write<WireObjectResponse>(what, 'objects', 'UpdateStatus', req)).object_json,
      what,
    );
  }

  async patch(key: ObjectKey, patch: unknown, opts: PatchOptions = {}): Promise<ApiObject> {
    const what = `patch ${describeKey(key)}`;
    const req = {
      ...key,
      patch_json: encodeJson(patch),
      subresource: opts.subresource,
      dry_run: opts.dryRun === true,
    };
    return parseObject(
      (await this.write<WireObjectResponse>(what, 'objects', 'Patch', req)).object_json,
      what,
    );
  }

  async delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<ApiObject> {
    const what = `delete ${describeKey(key)}`;
    const req: WireDeleteRequest = {
      ...key,
      propagation_policy: propagationToWire(opts.propagationPolicy),
      grace_period_seconds: opts.gracePeriodSeconds,
      dry_run: opts.dryRun === true,
    };
    if (opts.preconditions !== undefined) {
      req.preconditions = {
        uid: opts.preconditions.uid,
        resource_version: opts.preconditions.resourceVersion,
      };
    }
    return parseObject(
      (await this.write<WireObjectResponse>(what, 'objects', 'Delete', req)).object_json,
      what,
    );
  }

  /**
   * Resolves once a master has opened the watch (so Gone, Invalid and the like reject here).
   *
   * Resuming: when the stream's master goes away (Unavailable), the stream reopens itself on
   * the next master from the last version it delivered — only where that is gap-free: the
   * watch started from an explicit `resourceVersion`, or with `sendInitialEvents: false` and
   * after its first event. A watch that began with the initial state (whose events are not in
   * log order) is not resumed: `next()` rejects with Unavailable and the caller relists.
   * At most `watchResumeAttemptsMax` reopenings in a row without an event in between.
   */
  async watch(kind: string, opts: WatchOptions = {}): Promise<WatchStream> {
    const first = await this.openWatch(kind, opts);
    const explicit =
      opts.resourceVersion !== undefined && opts.resourceVersion !== '' && opts.resourceVersion !== '0';
    const resumable = explicit || opts.sendInitialEvents === false;
    return new ResumingWatchStream(
      first,
      explicit ? opts.resourceVersion : undefined,
      resumable,
      this.watchResumeAttemptsMax,
      (rv) => this.openWatch(kind, { ...opts, resourceVersion: rv }),
    );
  }

  private openWatch(kind: string, opts: WatchOptions): Promise<GrpcWatchStream> {
    const what = `watch ${kind}`;
    const req: WireWatchRequest = {
      kind,
      namespace: opts.namespace,
      name: opts.name,
      label_selector: opts.labelSelector,
      field_selector: opts.fieldSelector,
      resource_version: opts.resourceVersion,
      send_initial_events: opts.sendInitialEvents,
      allow_bookmarks: opts.allowBookmarks === true,
    };
    return this.withFailover(what, true, (conn, deadlineMs) =>
      GrpcWatchStream.open(
        serverStream<WireWatchResponse>(conn.objects, 'Watch', req),
        what,
        deadlineMs,
        this.watchBufferMessagesMax,
      ),
    );
  }

  // ---------------------------------------------------------------- ClusterApi

  async status(): Promise<ClusterStatus> {
    return clusterStatusFromWire(
      await this.read<WireClusterStatus>('cluster status', 'cluster', 'Status', {}),
    );
  }

  async controllers(): Promise<ControllersStatus> {
    return controllersStatusFromWire(
      await this.read<WireControllersStatus>('cluster controllers', 'cluster', 'Controllers', {}),
    );
  }

  async addMember(req: AddMemberRequest): Promise<ClusterStatus> {
    const wire = {
      id: req.id,
      raft_address: req.raftAddress,
      api_address: req.apiAddress,
      ws_url: req.wsUrl,
    };
    return clusterStatusFromWire(
      await this.write<WireClusterStatus>(`add member ${req.id}`, 'cluster', 'AddMember', wire),
    );
  }

  async removeMember(id: string): Promise<ClusterStatus> {
    return clusterStatusFromWire(
      await this.write<WireClusterStatus>(`remove member ${id}`, 'cluster', 'RemoveMember', { id }),
    );
  }

  async transferLeadership(to?: string): Promise<ClusterStatus> {
    const what = `transfer leadership${to === undefined ? '' : ` to ${to}`}`;
    return clusterStatusFromWire(
      await this.write<WireClusterStatus>(what, 'cluster', 'TransferLeadership', { to }),
    );
  }

  /** Streams from one master, chosen by the failover rule when the iteration starts; follows the reader's pace. */
  async *snapshot(): AsyncIterable<Uint8Array> {
    const what = 'cluster snapshot';
    const call = await this.withFailover(what, true, async (conn) =>
      serverStream<WireSnapshotChunk>(conn.cluster, 'Snapshot', {}),
    );
    try {
      for await (const chunk of call as AsyncIterable<WireSnapshotChunk>) {
        if (chunk.data !== undefined && chunk.data.byteLength > 0) yield new Uint8Array(chunk.data);
      }
    } catch (err) {
      throw fromStatus(err, what);
    } finally {
      call.cancel();
    }
  }

  // ---------------------------------------------------------------- calls and failover

  private read<Res>(
    what: string,
    service: 'objects' | 'cluster',
    method: string,
    req: unknown,
  ): Promise<Res> {
    return this.withFailover(what, true, (conn, deadlineMs) =>
      this.invoke(conn, service, method, req, deadlineMs),
    );
  }

  private write<Res>(
    what: string,
    service: 'objects' | 'cluster',
    method: string,
    req: unknown,
  ): Promise<Res> {
    return this.withFailover(what, false, (conn, deadlineMs) =>
      this.invoke(conn, service, method, req, deadlineMs),
    );
  }

  /** One call on `conn`: on its `Calls` stream when it has one, else unary. */
  private async invoke<Res>(
    conn: Connection,
    service: 'objects' | 'cluster',
    method: string,
    req: unknown,
    deadlineMs: number,
  ): Promise<Res> {
    const calls = conn.calls;
    if (service === 'objects' && calls !== undefined && !calls.unimplemented && isCallMethod(method)) {
      try {
        return (await calls.call(method, req, deadlineMs)) as Res;
      } catch (err) {
        // A master without `Calls` ran nothing: the same call as a unary one.
        if (!calls.unimplemented || (err as Partial<grpc.ServiceError>).code !== grpc.status.UNIMPLEMENTED)
          throw err;
      }
    }
    return unary<Res>(conn[service], method, req, deadlineMs);
  }

  /** Runs `invoke` on the current master, moving on by the failover rule (see the file comment). */
  private async withFailover<T>(
    what: string,
    idempotent: boolean,
    invoke: (conn: Connection, deadlineMs: number) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new ApiError('Unavailable', `${what}: the client is closed`);
    const deadlineMs = Date.now() + this.deadlineMs;
    const unreachable: string[] = [];
    let lastError: ApiError | undefined;
    for (let attempt = 0; attempt < this.addresses.length; attempt++) {
      const index = (this.current + attempt) % this.addresses.length;
      const conn = this.connection(index);
      try {
        await channelReady(
          conn.objects.getChannel(),
          Math.min(deadlineMs, Date.now() + this.connectTimeoutMs),
        );
      } catch (err) {
        unreachable.push(`${conn.address} (${err instanceof Error ? err.message : String(err)})`);
        if (Date.now() >= deadlineMs) break;
        continue;
      }
      try {
        const result = await invoke(conn, deadlineMs);
        this.current = index;
        return result;
      } catch (err) {
        const apiErr = fromStatus(err, `${what} on ${conn.address}`);
        if (apiErr.code !== 'Unavailable') throw apiErr;
        const metadata = (err as Partial<grpc.ServiceError>).metadata;
        if (!idempotent && !hasApiErrorCode(metadata)) {
          // Unavailable promises "not carried out"; a cut mid-call promises nothing.
          throw new ApiError(
            'Timeout',
            `${apiErr.message} (outcome unknown: the write may have been applied)`,
            {
              ...apiErr.details,
              cause: err,
            },
          );
        }
        lastError = apiErr;
        if (Date.now() >= deadlineMs) break;
      }
    }
    if (lastError !== undefined) throw lastError;
    if (Date.now() >= deadlineMs) {
      throw new ApiError(
        'Timeout',
        `${what}: no master answered within ${this.deadlineMs} ms: ${unreachable.join(', ')}`,
      );
    }
    throw new ApiError('Unavailable', `${what}: no master reachable: ${unreachable.join(', ')}`, {
      retryAfterMs: this.options.reconnectBackoffMsMin ?? 100,
    });
  }

  private connection(index: number): Connection {
    const existing = this.connections[index];
    if (existing !== undefined) return existing;
    const proto = loadApiProto();
    const address = this.addresses[index];
    const credentials = this.options.channelCredentials ?? grpc.credentials.createInsecure();
    const objects = new proto.ObjectsClient(address, credentials, this.channelOptions);
    const cluster = new proto.ClusterClient(address, credentials, {
      channelOverride: objects.getChannel(),
    } satisfies grpc.ClientOptions as unknown as grpc.ChannelOptions);
    const conn: Connection = { address, objects, cluster };
    if (this.options.callStreams !== false) {
      conn.calls = new CallStream(objects, {
        callsInFlightMax: this.options.callsInFlightMax ?? 1024,
        callsWaitingMax: this.options.callsWaitingMax ?? 16_384,
        messageBytesMax: Math.min(this.options.requestBytesMax ?? grpcApiLimits.requestBytesMax, 1024 * 1024),
      });
    }
    this.connections[index] = conn;
    return conn;
  }
}

/** A WatchStream that reopens on another master from its last delivered version (see `ApiClient.watch`). */
class ResumingWatchStream implements WatchStream {
  private closed = false;
  private failedInARow = 0;

  constructor(
    private inner: WatchStream,
    /** The version the next event follows, when resuming from it is gap-free. */
    private resumeFrom: string | undefined,
    private readonly resumable: boolean,
    private readonly resumeAttemptsMax: number,
    private readonly reopen: (resourceVersion: string) => Promise<WatchStream>,
  ) {}

  async next(): Promise<WatchEvent[] | undefined> {
    for (;;) {
      try {
        const events = await this.inner.next();
        if (events !== undefined && events.length > 0) {
          this.failedInARow = 0;
          const rv = events[events.length - 1].object.metadata?.resourceVersion;
          if (this.resumable && rv !== undefined && rv !== '') this.resumeFrom = rv;
        }
        return events;
      } catch (err) {
        const canResume =
          err instanceof ApiError && err.code === 'Unavailable' && this.resumeFrom !== undefined;
        if (!canResume || this.closed || this.failedInARow >= this.resumeAttemptsMax) throw err;
        this.failedInARow++;
        const next = await this.reopen(this.resumeFrom as string);
        if (this.closed) {
          next.close();
          return undefined;
        }
        this.inner = next;
      }
    }
  }

  close(): void {
    this.closed = true;
    this.inner.close();
  }
}

/**
 * The client side of a Watch call. Messages queue until `next()` takes them; past
 * `bufferMessagesMax` queued messages the call is paused, so HTTP/2 flow control holds the
 * server back (which then waits for 'drain' before pulling more from its WatchStream).
 */
class GrpcWatchStream implements WatchStream {
  private readonly queue: BatchQueue<WatchEvent>;
  private closedByUs = false;
  private pendingError: ApiError | undefined;

  private constructor(
    private readonly call: grpc.ClientReadableStream<WireWatchResponse>,
    private readonly what: string,
    bufferMessagesMax: number,
  ) {
    this.queue = new BatchQueue(
      { highWaterBatches: bufferMessagesMax, pause: () => call.pause(), resume: () => call.resume() },
      what,
    );
  }

  /** Resolves once the server sent response headers (the watch is open); rejects with its error. */
  static open(
    call: grpc.ClientReadableStream<WireWatchResponse>,
    what: string,
    deadlineMs: number,
    bufferMessagesMax: number,
  ): Promise<GrpcWatchStream> {
    const stream = new GrpcWatchStream(call, what, bufferMessagesMax);
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(
        () => {
          if (settled) return;
          settled = true;
          stream.close();
          reject(new ApiError('Timeout', `${what}: the watch did not open in time`));
        },
        Math.max(0, deadlineMs - Date.now()),
      );
      const opened = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(stream);
      };
      call.once('metadata', opened);
      call.on('data', (msg: WireWatchResponse) => {
        opened();
        stream.onMessage(msg);
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          // Rejected as the raw status so the failover rule can read its trailers.
          reject(err);
          return;
        }
        stream.onError(err);
      });
      call.on('end', () => {
        opened();
        stream.onEnd();
      });
    });
  }

  next(): Promise<WatchEvent[] | undefined> {
    return this.queue.next();
  }

  close(): void {
    if (this.queue.ended) return;
    this.closedByUs = true;
    this.queue.clear();
    this.call.cancel();
    this.onEnd();
  }

  private onMessage(msg: WireWatchResponse): void {
    if (this.queue.ended) return;
    let events: WatchEvent[];
    try {
      events = (msg.events ?? []).map((e) => ({
        type: eventTypeFromWire(e.type),
        object: parseObject(e.object_json, this.what),
      }));
    } catch (err) {
      this.fail(err instanceof ApiError ? err : new ApiError('Internal', `${this.what}: ${String(err)}`));
      this.call.cancel();
      return;
    }
    this.queue.push(events);
  }

  /**
   * grpc-js pushes the end of the stream before it emits the error, so messages may still sit
   * in the paused Readable: the error takes effect after them, at 'end'.
   */
  private onError(err: grpc.ServiceError): void {
    if (this.closedByUs) return;
    this.pendingError = fromStatus(err, this.what);
    if (this.call.readableLength === 0) this.fail(this.pendingError);
  }

  private onEnd(): void {
    this.queue.end(this.pendingError);
  }

  private fail(err: ApiError): void {
    this.queue.end(err);
  }
}

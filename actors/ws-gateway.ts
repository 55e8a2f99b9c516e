/**
 * The WebSocket gateway every master serves: the domain API ({@link ObjectApi}, {@link ClusterApi})
 * as JSON text frames, for the `cox` CLI and browsers. It is an adapter only: no state beyond
 * the connections, every decision is the API's.
 *
 * ## Protocol (JSON text frames, one message per frame)
 *
 * Request: `{ id, op, ...args }`. `id` is a string (≤ 128 chars) or a number, unique among the
 * connection's requests and streams in flight; every frame the gateway sends about the request
 * carries it.
 *
 * | op                     | args                                    | result                 |
 * |------------------------|-----------------------------------------|------------------------|
 * | `create`               | `object`, `options?` (WriteOptions)     | the object             |
 * | `get`                  | `key` (ObjectKey), `options?`           | the object             |
 * | `list`                 | `kind`, `options?` (ListOptions)        | ListResult             |
 * | `update`               | `object`, `options?`                    | the object             |
 * | `updateStatus`         | `object`, `options?`                    | the object             |
 * | `patch`                | `key`, `patch`, `options?`              | the object             |
 * | `delete`               | `key`, `options?` (DeleteOptions)       | the last state         |
 * | `cluster.status`       | —                                       | ClusterStatus          |
 * | `cluster.controllers`  | — (the leader's, from any master)       | ControllersStatus      |
 * | `cluster.addMember`    | `member` (AddMemberRequest)             | ClusterStatus          |
 * | `cluster.removeMember` | `memberId`                              | ClusterStatus          |
 * | `cluster.transfer`     | `to?`                                   | ClusterStatus          |
 * | `watch` (stream)       | `kind`, `options?` (WatchOptions)       | `events` frames        |
 * | `cancel`               | — (`id` is the stream's id)             | the stream's end frame |
 * | `input`                | stream-specific (`id` is the stream's)  | — (later stream ops)   |
 *
 * Kinds may be given as users type them (`pods`, `deploy`); the gateway maps them to the Kind.
 *
 * Replies to unary ops: `{ id, ok: true, result }` or
 * `{ id, ok: false, error: { code, message, fieldPath?, retryAfterMs? } }` with `code` one of
 * {@link ApiErrorCode}. A frame that is not JSON, not an object, or has no usable `id` is answered
 * with `id: null` (when the id is unusable) and code `Invalid`; the connection stays open.
 *
 * Streams (`watch`): on success the gateway sends `{ id, events: [...] }` frames in order (at most
 * `eventsPerFrameMax` events each), then exactly one `{ id, end: true, error? }` when the stream
 * ends (cancelled, ended by the API, or failed: Gone, ResourceExhausted, Unavailable). A stream
 * that cannot start gets only the end frame with its error. `cancel` for an id that has no open
 * stream is ignored: its end frame was already sent.
 *
 * Limits: frames larger than `framePayloadBytesMax` close the connection (code 1009, by `ws`);
 * more than `requestsInFlightMax` unary requests or `streamsPerConnectionMax` streams at once
 * are answered with ResourceExhausted; connections beyond `connectionsMax` are closed with 1013.
 *
 * Backpressure: a stream pulls its next events only while the socket's `bufferedAmount` is
 * under `wsBufferedBytesMax`, so a slow client holds events in the API's bounded watch queue
 * (which ends the watch with ResourceExhausted when it overflows) rather than in this process.
 *
 * Liveness: the gateway pings every `heartbeatIntervalMs`; a connection that has not answered
 * the previous ping is terminated. Closing a connection closes all its streams.
 *
 * More stream ops (logs, exec, port-forward) plug in through `streamOps`: a handler returns a
 * {@link GatewayStream} whose frame bodies are sent as `{ id, ...body }`; `input` frames reach
 * its `input()`.
 */

import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { resolveKindName } from '../core/kind-names.js';
import {
  ApiError,
  ApiErrorCode,
  type ClusterApi,
  isApiError,
  mayCutBetween,
  type ObjectApi,
  type ObjectKey,
  type WatchEvent,
  type WatchStream,
} from './api.js';

// ---------------------------------------------------------------------------------------------
// Protocol types (shared with the client in cli/client.ts)

export type WsRequestId = string | number;

export interface WsRequest {
  id: WsRequestId;
  op: string;
  [arg: string]: unknown;
}

export interface WsErrorBody {
  code: ApiErrorCode;
  message: string;
  fieldPath?: string;
  retryAfterMs?: number;
}

export type WsReply =
  | { id: WsRequestId; ok: true; result: unknown }
  | { id: WsRequestId | null; ok: false; error: WsErrorBody };

export interface WsEventsFrame {
  id: WsRequestId;
  events: WatchEvent[];
}

export interface WsEndFrame {
  id: WsRequestId;
  end: true;
  error?: WsErrorBody;
}

/** Every frame the gateway sends. Other stream ops add their own bodies (`{ id, data }`). */
export type WsServerFrame = WsReply | WsEventsFrame | WsEndFrame;

export const wsUnaryOps = [
  'create',
  'get',
  'list',
  'update',
  'updateStatus',
  'patch',
  'delete',
  'cluster.status',
  'cluster.controllers',
  'cluster.addMember',
  'cluster.removeMember',
  'cluster.transfer',
] as const;
export type WsUnaryOp = (typeof wsUnaryOps)[number];

// ---------------------------------------------------------------------------------------------
// Limits

export const wsGatewayLimits = {
  /** Largest frame accepted from a client (the `ws` maxPayload); larger closes with 1009. */
  framePayloadBytesMax: 4 * 1024 * 1024,
  /** A stream pulls more events only while the socket buffers less than this. */
  wsBufferedBytesMax: 1024 * 1024,
  /** Unary requests one connection may have in flight. */
  requestsInFlightMax: 256,
  /** Open streams per connection. */
  streamsPerConnectionMax: 64,
  /** Events per `{ id, events }` frame; larger batches are split. */
  eventsPerFrameMax: 256,
  /** Ping period; a connection silent for one whole period is terminated. */
  heartbeatIntervalMs: 15_000,
  /** Open connections per gateway. */
  connectionsMax: 1024,
  /** Longest string request id. */
  requestIdLengthMax: 128,
};
export type WsGatewayLimits = typeof wsGatewayLimits;

// ---------------------------------------------------------------------------------------------
// Stream hook

/** A server-side stream as the gateway drives it: pull-based, one `next()` at a time. */
export interface GatewayStream {
  /** The next frame body (sent as `{ id, ...body }`), or undefined at the end; rejects with the ApiError that ended it. */
  next(): Promise<Record<string, unknown> | undefined>;
  /** Client input for this stream (`{ id, op: 'input', ... }`), for exec stdin and port-forward. */
  input?(request: WsRequest): void;
  /** Ends the stream (idempotent); a pending `next()` resolves undefined. */
  close(): void;
}

export interface WsGatewayApis {
  objects: ObjectApi;
  cluster: ClusterApi;
}

/** Opens a stream for a request; throws ApiError (Invalid, NotFound, ...) when it cannot. */
export type StreamOpHandler = (request: WsRequest, apis: WsGatewayApis) => Promise<GatewayStream>;

export interface WsGatewayOptions extends WsGatewayApis {
  /** Listen on a host and port (0: any free port), or attach to a listening HTTP(S) server. */
  listen: { host: string; port: number } | HttpServer | HttpsServer;
  /** With an HTTP server: the path to accept upgrades on (default: any). */
  path?: string;
  limits?: Partial<WsGatewayLimits>;
  /** Stream ops beyond `watch`, by op name. */
  streamOps?: Record<string, StreamOpHandler>;
  /** Internal errors (never expected errors) go here. */
  log?: (line: string) => void;
}

export interface WsGateway {
  /** `ws://host:port[path]` */
  url: string;
  /** Closes every connection (their streams too) and stops listening; an attached server stays open. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors and argument checks

function invalid(message: string, fieldPath?: string): ApiError {
  return new ApiError(ApiErrorCode.Invalid, message, fieldPath === undefined ? {} : { fieldPath });
}

/** The error body of a frame: ApiErrors as they are, anything else as Internal. */
export function errorBody(err: unknown): WsErrorBody {
  if (isApiError(err)) {
    const body: WsErrorBody = { code: err.code, message: err.message };
    if (err.details.fieldPath !== undefined) body.fieldPath = err.details.fieldPath;
    if (err.details.retryAfterMs !== undefined) body.retryAfterMs = err.details.retryAfterMs;
    return body;
  }
  return { code: ApiErrorCode.Internal, message: err instanceof Error ? err.message : String(err) };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type ArgType = 'string' | 'number' | 'boolean' | 'object';
const optionTypes: Record<string, ArgType> = {
  consistency: 'string',
  namespace: 'string',
  labelSelector: 'string',
  fieldSelector: 'string',
  limit: 'number',
  continue: 'string',
  dryRun: 'boolean',
  propagationPolicy: 'string',
  gracePeriodSeconds: 'number',
  preconditions: 'object',
  subresource: 'string',
  name: 'string',
  resourceVersion: 'string',
  sendInitialEvents: 'boolean',
  allowBookmarks: 'boolean',
};

/** `options` of a request: absent, or an object whose known fields have the right types. */
function optionsArg<T>(req: WsRequest): T | undefined {
  const opts = req.options;
  if (opts === undefined || opts === null) return undefined;
  if (!isPlainObject(opts)) throw invalid(`${req.op}: options: must be an object`, 'options');
  for (const [field, value] of Object.entries(opts)) {
    const want = optionTypes[field];
    if (want === undefined || value === undefined) continue;
    const ok = want === 'object' ? isPlainObject(value) : typeof value === want;
    if (!ok) throw invalid(`${req.op}: options.${field}: must be a ${want}`, `options.${field}`);
  }
  return opts as T;
}

function stringArg(req: WsRequest, field: string): string {
  const v = req[field];
  if (typeof v !== 'string' || v === '') throw invalid(`${req.op}: ${field}: required string`, field);
  return v;
}

function resolveKind(kind: string): string {
  return resolveKindName(kind) ?? kind;
}

function keyArg(req: WsRequest): ObjectKey {
  const key = req.key;
  if (!isPlainObject(key)) throw invalid(`${req.op}: key: required object`, 'key');
  if (typeof key.kind !== 'string' || key.kind === '')
    throw invalid(`${req.op}: key.kind: required`, 'key.kind');
  if (typeof key.name !== 'string' || key.name === '')
    throw invalid(`${req.op}: key.name: required`, 'key.name');
  if (key.namespace !== undefined && typeof key.namespace !== 'string') {
    throw invalid(`${req.op}: key.namespace: must be a string`, 'key.namespace');
  }
  const out: ObjectKey = { kind: resolveKind(key.kind), name: key.name };
  if (key.namespace !== undefined) out.namespace = key.namespace;
  return out;
}

function objectArg(req: WsRequest): unknown {
  if (!isPlainObject(req.object)) throw invalid(`${req.op}: object: required object`, 'object');
  return req.object;
}

/** Runs one unary op against the API. A flat switch; new ops are a compile error until handled. */
export async function runUnaryOp(op: WsUnaryOp, req: WsRequest, apis: WsGatewayApis): Promise<unknown> {
  const { objects, cluster } = apis;
  switch (op) {
    case 'create':
      return objects.create(objectArg(req), optionsArg(req));
    case 'get':
      return objects.get(keyArg(req), optionsArg(req));
    case 'list':
      return objects.list(resolveKind(stringArg(req, 'kind')), optionsArg(req));
    case 'update':
      return objects.update(objectArg(req), optionsArg(req));
    case 'updateStatus':
      return objects.updateStatus(objectArg(req), optionsArg(req));
    case 'patch':
      if (!isPlainObject(req.patch)) throw invalid('patch: patch: required object', 'patch');
      return objects.patch(keyArg(req), req.patch, optionsArg(req));
    case 'delete':
      return objects.delete(keyArg(req), optionsArg(req));
    case 'cluster.status':
      return cluster.status();
    case 'cluster.controllers':
      return cluster.controllers();
    case 'cluster.addMember': {
      const m = req.member;
      if (!isPlainObject(m)) throw invalid('cluster.addMember: member: required object', 'member');
      for (const f of ['id', 'raftAddress', 'apiAddress', 'wsUrl'] as const) {
        if (typeof m[f] !== 'string' || m[f] === '') {
          throw invalid(`cluster.addMember: member.${f}: required string`, `member.${f}`);
        }
      }
      return cluster.addMember({
        id: m.id as string,
        raftAddress: m.raftAddress as string,
        apiAddress: m.apiAddress as string,
        wsUrl: m.wsUrl as string,
      });
    }
    case 'cluster.removeMember':
      return cluster.removeMember(stringArg(req, 'memberId'));
    case 'cluster.transfer':
      if (req.to !== undefined && typeof req.to !== 'string') {
        throw invalid('cluster.transfer: to: must be a string', 'to');
      }
      return cluster.transferLeadership(req.to as string | undefined);
    default: {
      const never: never = op;
      throw invalid(`unknown op ${String(never)}`, 'op');
    }
  }
}

/**
 * Adapts a WatchStream to frame bodies `{ events }` of at most `eventsPerFrameMax` events, but
 * never parting the events of one resourceVersion (`mayCutBetween`): such a frame grows to
 * hold the whole group.
 */
export function watchFrames(stream: WatchStream, eventsPerFrameMax: number): GatewayStream {
  let pending: WatchEvent[] = [];
  return {
    async next() {
      if (pending.length === 0) {
        const events = await stream.next();
        if (events === undefined) return undefined;
        pending = events;
      }
      let end = Math.min(eventsPerFrameMax, pending.length);
      while (end < pending.length && !mayCutBetween(pending[end - 1], pending[end])) end += 1;
      const events = pending.slice(0, end);
      pending = pending.slice(end);
      return { events };
    },
    close: () => stream.close(),
  };
}

const watchOp =
  (limits: WsGatewayLimits): StreamOpHandler =>
  async (req, apis) => {
    const stream = await apis.objects.watch(resolveKind(stringArg(req, 'kind')), optionsArg(req));
    return watchFrames(stream, limits.eventsPerFrameMax);
  };

// ---------------------------------------------------------------------------------------------
// Connections

const unaryOpSet: ReadonlySet<string> = new Set(wsUnaryOps);

interface OpenStream {
  stream: GatewayStream | undefined; // undefined while the handler opens it
  cancelled: boolean;
  /** `input` frames that arrived while the stream was opening. */
  pendingInput: WsRequest[];
}

/** One client connection: its requests, streams and backpressure. */
class Connection {
  private closed = false;
  /** Answered the last ping (or sent anything) since the previous heartbeat. */
  alive = true;
  private readonly unary = new Set<string>();
  private readonly streams = new Map<string, OpenStream>();
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: WebSocket,
    private readonly apis: WsGatewayApis,
    private readonly streamOps: ReadonlyMap<string, StreamOpHandler>,
    private readonly limits: WsGatewayLimits,
    private readonly log: (line: string) => void,
  ) {
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('close', () => this.onClose());
    socket.on('error', () => {}); // 'close' follows; the error itself needs no reply
  }

  heartbeat(): void {
    if (!this.alive) {
      this.socket.terminate();
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  terminate(): void {
    this.socket.terminate();
  }

  private onClose(): void {
    this.closed = true;
    for (const s of this.streams.values()) {
      s.cancelled = true;
      s.stream?.close();
    }
    this.wakeDrainWaiters();
  }

  private send(frame: WsServerFrame | Record<string, unknown>): void {
    if (this.closed || this.socket.readyState !== WebSocket.OPEN) return;
    let text: string;
    try {
      text = JSON.stringify(frame);
    } catch (err) {
      const id = (frame as { id?: WsRequestId }).id ?? null;
      this.log(`ws gateway: cannot encode a frame for request ${String(id)}: ${String(err)}`);
      text = JSON.stringify({
        id,
        ok: false,
        error: { code: ApiErrorCode.Internal, message: 'result cannot be encoded as JSON' },
      });
    }
    // The callback runs once the frame is handed to the OS: the buffer may have drained.
    this.socket.send(text, () => this.wakeDrainWaiters());
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Resolves once the socket buffers less than `wsBufferedBytesMax`, the connection closed, or
   * `stopped()` holds. While the buffer is over the limit some frame is unsent, and its send
   * callback wakes us to check again.
   */
  private async waitForDrain(stopped: () => boolean): Promise<void> {
    while (!this.closed && !stopped() && this.socket.bufferedAmount >= this.limits.wsBufferedBytesMax) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
  }

  private replyError(id: WsRequestId | null, err: unknown): void {
    const error = errorBody(err);
    if (error.code === ApiErrorCode.Internal) this.log(`ws gateway: request ${String(id)}: ${error.message}`);
    this.send({ id, ok: false, error });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.alive = true;
    if (isBinary) {
      this.replyError(null, invalid('frame: binary frames are not accepted; send JSON text'));
      return;
    }
    let req: unknown;
    try {
      req = JSON.parse(rawToString(data));
    } catch {
      this.replyError(null, invalid('frame: not valid JSON'));
      return;
    }
    if (!isPlainObject(req)) {
      this.replyError(null, invalid('frame: must be a JSON object'));
      return;
    }
    const id = req.id;
    const idOk =
      (typeof id === 'string' && id.length > 0 && id.length <= this.limits.requestIdLengthMax) ||
      (typeof id === 'number' && Number.isFinite(id));
    if (!idOk) {
      this.replyError(null, invalid('frame: id: required string or number', 'id'));
      return;
    }
    if (typeof req.op !== 'string') {
      this.replyError(id, invalid('frame: op: required string', 'op'));
      return;
    }
    this.dispatch(req as WsRequest);
  }

  private dispatch(req: WsRequest): void {
    const key = `${typeof req.id}:${req.id}`;
    if (req.op === 'cancel') {
      const s = this.streams.get(key);
      if (s === undefined) return; // already ended: its end frame was sent
      s.cancelled = true;
      s.stream?.close();
      this.wakeDrainWaiters();
      return;
    }
    if (req.op === 'input') {
      const s = this.streams.get(key);
      if (s === undefined) {
        this.replyError(req.id, invalid(`input: no open stream ${JSON.stringify(req.id)}`, 'id'));
      } else if (s.stream === undefined) {
        // Still opening: hold the input (bounded) and deliver it in order once open.
        if (s.pendingInput.length >= this.limits.requestsInFlightMax) {
          const message = `input: requestsInFlightMax (${this.limits.requestsInFlightMax}) inputs wait for the stream to open`;
          this.replyError(req.id, new ApiError(ApiErrorCode.ResourceExhausted, message));
        } else s.pendingInput.push(req);
      } else this.deliverInput(s.stream, req);
      return;
    }
    if (this.unary.has(key) || this.streams.has(key)) {
      this.replyError(req.id, invalid(`${req.op}: id ${JSON.stringify(req.id)} is already in flight`, 'id'));
      return;
    }
    if (unaryOpSet.has(req.op)) {
      void this.runUnary(key, req.op as WsUnaryOp, req);
      return;
    }
    const handler = this.streamOps.get(req.op);
    if (handler !== undefined) {
      void this.runStream(key, handler, req);
      return;
    }
    this.replyError(req.id, invalid(`unknown op ${JSON.stringify(req.op).slice(0, 80)}`, 'op'));
  }

  private deliverInput(stream: GatewayStream, req: WsRequest): void {
    if (stream.input === undefined) {
      this.replyError(req.id, invalid(`input: stream ${JSON.stringify(req.id)} takes no input`, 'op'));
      return;
    }
    try {
      stream.input(req);
    } catch (err) {
      this.replyError(req.id, err);
    }
  }

  private async runUnary(key: string, op: WsUnaryOp, req: WsRequest): Promise<void> {
    if (this.unary.size >= this.limits.requestsInFlightMax) {
      this.replyError(
        req.id,
        new ApiError(
          ApiErrorCode.ResourceExhausted,
          `${op}: requestsInFlightMax (${this.limits.requestsInFlightMax}) requests already in flight on this connection`,
        ),
      );
      return;
    }
    this.unary.add(key);
    try {
      const result = await runUnaryOp(op, req, this.apis);
      this.send({ id: req.id, ok: true, result });
    } catch (err) {
      this.replyError(req.id, err);
    } finally {
      this.unary.delete(key);
    }
  }

  private async runStream(key: string, handler: StreamOpHandler, req: WsRequest): Promise<void> {
    if (this.streams.size >= this.limits.streamsPerConnectionMax) {
      const err = new ApiError(
        ApiErrorCode.ResourceExhausted,
        `${req.op}: streamsPerConnectionMax (${this.limits.streamsPerConnectionMax}) streams already open on this connection`,
      );
      this.send({ id: req.id, end: true, error: errorBody(err) });
      return;
    }
    const open: OpenStream = { stream: undefined, cancelled: false, pendingInput: [] };
    this.streams.set(key, open);
    let error: WsErrorBody | undefined;
    try {
      const stream = await handler(req, this.apis);
      open.stream = stream;
      if (open.cancelled) stream.close();
      for (const input of open.pendingInput.splice(0)) this.deliverInput(stream, input);
      for (;;) {
        await this.waitForDrain(() => open.cancelled);
        if (this.closed || open.cancelled) break;
        const body = await stream.next();
        if (body === undefined) break;
        this.send({ ...body, id: req.id });
      }
    } catch (err) {
      error = errorBody(err);
      if (error.code === ApiErrorCode.Internal)
        this.log(`ws gateway: stream ${String(req.id)}: ${error.message}`);
    } finally {
      open.stream?.close();
      this.streams.delete(key);
    }
    this.send(error === undefined ? { id: req.id, end: true } : { id: req.id, end: true, error });
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// Server

function isHttpServer(x: WsGatewayOptions['listen']): x is HttpServer | HttpsServer {
  return typeof (x as HttpServer).address === 'function';
}

function urlOf(address: AddressInfo | string | null, path: string): string {
  if (address === null || typeof address === 'string') {
    throw new Error('ws gateway: the HTTP server must be listening on a TCP port before the gateway starts');
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `ws://${host}:${address.port}${path}`;
}

/** Starts the gateway; resolves once it is listening. */
export async function startWsGateway(opts: WsGatewayOptions): Promise<WsGateway> {
  const limits: WsGatewayLimits = { ...wsGatewayLimits, ...opts.limits };
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const streamOps = new Map<string, StreamOpHandler>(Object.entries(opts.streamOps ?? {}));
  streamOps.set('watch', watchOp(limits));
  const apis: WsGatewayApis = { objects: opts.objects, cluster: opts.cluster };

  let wss: WebSocketServer;
  let url: string;
  const listen = opts.listen;
  if (isHttpServer(listen)) {
    wss = new WebSocketServer({ server: listen, path: opts.path, maxPayload: limits.framePayloadBytesMax });
    url = urlOf(listen.address(), opts.path ?? '');
  } else {
    wss = new WebSocketServer({
      host: listen.host,
      port: listen.port,
      maxPayload: limits.framePayloadBytesMax,
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    url = urlOf(wss.address(), '');
  }
  wss.on('error', (err) => log(`ws gateway: ${err.message}`));

  const connections = new Set<Connection>();
  wss.on('connection', (socket) => {
    if (connections.size >= limits.connectionsMax) {
      socket.close(1013, `connectionsMax (${limits.connectionsMax}) reached; try another master`);
      return;
    }
    const conn = new Connection(socket, apis, streamOps, limits, log);
    connections.add(conn);
    socket.on('close', () => connections.delete(conn));
  });

  const heartbeat = setInterval(() => {
    for (const c of connections) c.heartbeat();
  }, limits.heartbeatIntervalMs);
  heartbeat.unref();

  return {
    url,
    close: async () => {
      clearInterval(heartbeat);
      for (const c of connections) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

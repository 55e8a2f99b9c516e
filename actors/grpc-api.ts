/**
 * The masters' public gRPC API (proto/api.proto): an adapter over ObjectApi and ClusterApi.
 *
 * Contracts:
 * - Every failure ends the call with a typed status (see grpc-api-wire.ts `toStatus`): an
 *   ApiError keeps its code, message, field path and retry hint; anything else is INTERNAL.
 *   Malformed requests (bad JSON, missing kind or name, an object over
 *   `apiLimits.objectBytesMax`) are INVALID_ARGUMENT / RESOURCE_EXHAUSTED and never reach
 *   the domain API.
 * - Watch and Snapshot pull from their source only while the gRPC stream is writable: when
 *   `write()` returns false they wait for 'drain', so a slow reader holds back the source
 *   (whose own bound, `watchBufferEventsMax`, then ends the watch) instead of growing memory
 *   here. A client cancel closes the WatchStream / ends the snapshot iterator.
 * - Watch sends response headers once the domain watch is open, so a client can tell "opened"
 *   from "refused" (Gone, Invalid) before any event.
 * - Health (grpc.health.v1, every service SERVING) and reflection run on the same server.
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import {
  ApiError,
  apiLimits,
  type ClusterApi,
  type DeleteOptions,
  type ListOptions,
  mayCutBetween,
  type ObjectApi,
  type ObjectKey,
  type WatchEvent,
  type WatchOptions,
  type WatchStream,
} from './api.js';
import {
  CLUSTER_SERVICE,
  callErrorOf,
  clusterStatusToWire,
  consistencyFromWire,
  controllersStatusToWire,
  decodeJson,
  encodeJson,
  encodeObjectJson,
  eventTypeToWire,
  grpcApiLimits,
  loadApiProto,
  OBJECTS_SERVICE,
  propagationFromWire,
  sizedBatches,
  toStatus,
  type WireAddMemberRequest,
  type WireCall,
  type WireCallBatch,
  type WireCallResult,
  type WireCallResultBatch,
  type WireClusterStatus,
  type WireDeleteRequest,
  type WireEmpty,
  type WireGetRequest,
  type WireListRequest,
  type WireListResponse,
  type WireObjectResponse,
  type WirePatchRequest,
  type WireRemoveMemberRequest,
  type WireSnapshotChunk,
  type WireTransferLeadershipRequest,
  type WireWatchEvent,
  type WireWatchRequest,
  type WireWatchResponse,
  type WireWriteObjectRequest,
} from './grpc-api-wire.js';

export { errorMetadataKeys, grpcApiLimits, grpcStatusOfApiCode } from './grpc-api-wire.js';

export interface ApiServicesOptions {
  objects: ObjectApi;
  cluster: ClusterApi;
  /** Largest object JSON accepted in a request, in bytes. Default `apiLimits.objectBytesMax`. */
  objectBytesMax?: number;
  /** A watch message holds events up to this many bytes. Default `grpcApiLimits.watchMessageBytesMax`. */
  watchMessageBytesMax?: number;
  /** Larger snapshot chunks are split to this many bytes. Default `grpcApiLimits.snapshotChunkBytesMax`. */
  snapshotChunkBytesMax?: number;
  /**
   * Calls running at once on one `Calls` stream; a call beyond it is answered
   * RESOURCE_EXHAUSTED (retry after `callsRetryAfterMs`) without running. Default 1,024.
   */
  callsInFlightMax?: number;
  /** Called with every non-ApiError a handler hit (answered INTERNAL). Default `console.error`. */
  onInternalError?: (err: unknown, rpc: string) => void;
}

export interface ApiServerOptions extends ApiServicesOptions {
  /** `host:port`; port 0 picks a free port (see `address()`). */
  listen: string;
  /** Largest request message, in bytes. Default `grpcApiLimits.requestBytesMax`. */
  requestBytesMax?: number;
  /** Largest response message, in bytes. Default `grpcApiLimits.responseBytesMax`. */
  responseBytesMax?: number;
  /** Default: insecure (loopback clusters). */
  serverCredentials?: grpc.ServerCredentials;
  /** Time `close()` waits for calls to finish before cutting them, in ms. Default 1000. */
  closeGraceMs?: number;
}

/** What `addApiServices` added: the health service, for the master to flip on shutdown. */
export interface ApiServices {
  /** Sets the serving status of '' and both API services (e.g. NOT_SERVING while draining). */
  setServing(status: ServingStatus): void;
  /**
   * Ends the open `Calls` streams gracefully before a shutdown: calls already running finish
   * and are answered, new ones are refused with Unavailable (not carried out: the client moves
   * on to another master, writes included), and each stream ends once it has no call left.
   * Resolves when all have ended.
   */
  drainCalls(): Promise<void>;
}

export interface ApiServer extends ApiServices {
  /** The bound `host:port` (the real port when `listen` asked for 0). */
  address(): string;
  /** Stops accepting calls, waits up to `closeGraceMs` for running ones, then cuts them. */
  close(): Promise<void>;
}

/**
 * grpc.Server options bounding message sizes; pass them to `new grpc.Server()` when the master
 * builds its own server for `addApiServices`.
 */
export function apiServerGrpcOptions(
  limits: { requestBytesMax?: number; responseBytesMax?: number } = {},
): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': limits.requestBytesMax ?? grpcApiLimits.requestBytesMax,
    'grpc.max_send_message_length': limits.responseBytesMax ?? grpcApiLimits.responseBytesMax,
  };
}

/** Adds Objects, Cluster, health and reflection to `server` (build it with `apiServerGrpcOptions`). */
export function addApiServices(server: grpc.Server, options: ApiServicesOptions): ApiServices {
  const proto = loadApiProto();
  const handlers = new ApiHandlers(options);
  server.addService(proto.objects, handlers.objectsImplementation());
  server.addService(proto.cluster, handlers.clusterImplementation());
  const serviceNames = ['', OBJECTS_SERVICE, CLUSTER_SERVICE];
  const health = new HealthImplementation(Object.fromEntries(serviceNames.map((name) => [name, 'SERVING'])));
  health.addToServer(server);
  new ReflectionService(proto.packageDefinition).addToServer(server);
  return {
    setServing(status) {
      for (const name of serviceNames) health.setStatus(name, status);
    },
    drainCalls: () => handlers.drainCalls(),
  };
}

/** A gRPC server holding only the API services, bound to `options.listen`. */
export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const server = new grpc.Server(apiServerGrpcOptions(options));
  const services = addApiServices(server, options);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      options.listen,
      options.serverCredentials ?? grpc.ServerCredentials.createInsecure(),
      (err, p) =>
        err
          ? reject(new Error(`gRPC API: cannot listen on ${options.listen}: ${err.message}`, { cause: err }))
          : resolve(p),
    );
  });
  const host = options.listen.slice(0, options.listen.lastIndexOf(':'));
  const closeGraceMs = options.closeGraceMs ?? 1000;
  let closing: Promise<void> | undefined;
  return {
    ...services,
    address: () => `${host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        services.setServing('NOT_SERVING');
        const timer = setTimeout(() => server.forceShutdown(), closeGraceMs);
        void services.drainCalls();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

// ---------------------------------------------------------------- handlers

type Unary<Req, Res> = (req: Req) => Promise<Res>;

/** The retry hint of a `Calls` call refused for `callsInFlightMax`, in ms. */
const callsRetryAfterMs = 100;

function requiredString(value: string | undefined, rpc: string, field: string): string {
  if (value === undefined || value === '')
    throw new ApiError('Invalid', `${rpc}: ${field}: required`, { fieldPath: field });
  return value;
}

function optionalString(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function keyOf(req: { kind?: string; namespace?: string; name?: string }, rpc: string): ObjectKey {
  const key: ObjectKey = {
    kind: requiredString(req.kind, rpc, 'kind'),
    name: requiredString(req.name, rpc, 'name'),
  };
  const namespace = optionalString(req.namespace);
  if (namespace !== undefined) key.namespace = namespace;
  return key;
}

/** Waits until `call` may be written again, or it was cancelled. */
function drained(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
}

class ApiHandlers {
  private readonly objects: ObjectApi;
  private readonly cluster: ClusterApi;
  private readonly objectBytesMax: number;
  private readonly watchMessageBytesMax: number;
  private readonly snapshotChunkBytesMax: number;
  private readonly onInternalError: (err: unknown, rpc: string) => void;
  private readonly callsInFlightMax: number;
  /** Open `Calls` streams: how to drain each. */
  private readonly callStreams = new Set<() => Promise<void>>();
  private draining = false;

  constructor(options: ApiServicesOptions) {
    this.callsInFlightMax = options.callsInFlightMax ?? 1024;
    this.objects = options.objects;
    this.cluster = options.cluster;
    this.objectBytesMax = options.objectBytesMax ?? apiLimits.objectBytesMax;
    this.watchMessageBytesMax = options.watchMessageBytesMax ?? grpcApiLimits.watchMessageBytesMax;
    this.snapshotChunkBytesMax = options.snapshotChunkBytesMax ?? grpcApiLimits.snapshotChunkBytesMax;
    this.onInternalError =
      options.onInternalError ?? ((err, rpc) => console.error(`gRPC API ${rpc}: internal error:`, err));
  }

  objectsImplementation(): grpc.UntypedServiceImplementation {
    return {
      Create: this.unary('Create', (req: WireWriteObjectRequest) =>
        this.writeObject('Create', req, 'create'),
      ),
      Get: this.unary('Get', (req: WireGetRequest) => this.get(req)),
      List: this.unary('List', (req: WireListRequest) => this.list(req)),
      Update: this.unary('Update', (req: WireWriteObjectRequest) =>
        this.writeObject('Update', req, 'update'),
      ),
      UpdateStatus: this.unary('UpdateStatus', (req: WireWriteObjectRequest) =>
        this.writeObject('UpdateStatus', req, 'updateStatus'),
      ),
      Patch: this.unary('Patch', (req: WirePatchRequest) => this.patch(req)),
      Delete: this.unary('Delete', (req: WireDeleteRequest) => this.delete(req)),
      Watch: (call: grpc.ServerWritableStream<WireWatchRequest, WireWatchResponse>) => {
        void this.watch(call);
      },
      Calls: (call: grpc.ServerDuplexStream<WireCallBatch, WireCallResultBatch>) => {
        this.calls(call);
      },
    };
  }

  clusterImplementation(): grpc.UntypedServiceImplementation {
    return {
      Status: this.unary('Status', async (_req: WireEmpty) =>
        clusterStatusToWire(await this.cluster.status()),
      ),
      Controllers: this.unary('Controllers', async (_req: WireEmpty) =>
        controllersStatusToWire(await this.cluster.controllers()),
      ),
      AddMember: this.unary('AddMember', (req: WireAddMemberRequest) => this.addMember(req)),
      RemoveMember: this.unary('RemoveMember', async (req: WireRemoveMemberRequest) =>
        clusterStatusToWire(await this.cluster.removeMember(requiredString(req.id, 'RemoveMember', 'id'))),
      ),
      TransferLeadership: this.unary('TransferLeadership', async (req: WireTransferLeadershipRequest) =>
        clusterStatusToWire(await this.cluster.transferLeadership(optionalString(req.to))),
      ),
      Snapshot: (call: grpc.ServerWritableStream<WireEmpty, WireSnapshotChunk>) => {
        void this.snapshot(call);
      },
    };
  }

  private unary<Req, Res>(rpc: string, fn: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      let result: Promise<Res>;
      try {
        result = fn(call.request);
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (res) => callback(null, res),
        (err: unknown) => callback(toStatus(err, (e) => this.onInternalError(e, rpc))),
      );
    };
  }

  drainCalls(): Promise<void> {
    this.draining = true;
    return Promise.all([...this.callStreams].map((drain) => drain())).then(() => {});
  }

  /** The unary method a multiplexed call stands for, or an error naming what is wrong. */
  private runCall(c: WireCall): Promise<WireObjectResponse> {
    if (c.create !== undefined) return this.writeObject('Create', c.create, 'create');
    if (c.update !== undefined) return this.writeObject('Update', c.update, 'update');
    if (c.update_status !== undefined)
      return this.writeObject('UpdateStatus', c.update_status, 'updateStatus');
    if (c.patch !== undefined) return this.patch(c.patch);
    if (c.delete !== undefined) return this.delete(c.delete);
    if (c.get !== undefined) return this.get(c.get);
    return Promise.reject(
      new ApiError('Invalid', `Calls: call ${c.id ?? 0}: request: required`, { fieldPath: 'request' }),
    );
  }

  /**
   * `Calls`: each call runs as its unary method would, concurrently; results finished in one
   * turn of the event loop go out in one message. A call counts against `callsInFlightMax`
   * until its result is written, so results waiting for a slow reader stay bounded too.
   */
  private calls(call: grpc.ServerDuplexStream<WireCallBatch, WireCallResultBatch>): void {
    let inFlight = 0;
    let pending: WireCallResult[] = [];
    let flushing = false;
    let ended = false;
    let writable = true;
    const flush = (): void => {
      flushing = false;
      if (ended || pending.length === 0) return;
      if (!writable) return;
      const results = pending;
      pending = [];
      inFlight -= results.length;
      // Messages of at most about `watchMessageBytesMax` (one larger result goes alone): 1,024
      // results of large objects in one message would pass the client's receive limit.
      let ok = true;
      const sizeOf = (r: WireCallResult) => (r.ok?.object_json?.byteLength ?? 0) + 64;
      for (const batch of sizedBatches(results, sizeOf, this.watchMessageBytesMax))
        ok = call.write({ results: batch }) && ok;
      if (ok) maybeEnd();
      else {
        writable = false;
        call.once('drain', () => {
          writable = true;
          flush();
          maybeEnd();
        });
      }
    };
    const settle = (result: WireCallResult): void => {
      if (ended) return;
      pending.push(result);
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    };
    let clientDone = false;
    let drained: (() => void) | undefined;
    const drain = (): Promise<void> =>
      ended
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            drained = resolve;
            clientDone = true;
            maybeEnd();
          });
    const finish = (): void => {
      this.callStreams.delete(drain);
      drained?.();
    };
    this.callStreams.add(drain);
    const maybeEnd = (): void => {
      if (clientDone && inFlight === 0 && !ended) {
        ended = true;
        call.end();
        finish();
      }
    };
    call.on('data', (batch: WireCallBatch) => {
      for (const c of batch.calls ?? []) {
        const id = c.id ?? 0;
        inFlight += 1;
        if (this.draining) {
          settle({
            id,
            error: callErrorOf(
              new ApiError('Unavailable', 'this master is shutting down: call not carried out', {
                retryAfterMs: callsRetryAfterMs,
              }),
            ),
          });
          continue;
        }
        if (inFlight > this.callsInFlightMax) {
          settle({
            id,
            error: callErrorOf(
              new ApiError(
                'ResourceExhausted',
                `Calls: more than ${this.callsInFlightMax} calls in flight on this stream`,
                { retryAfterMs: callsRetryAfterMs },
              ),
            ),
          });
          continue;
        }
        let result: Promise<WireObjectResponse>;
        try {
          result = this.runCall(c);
        } catch (err) {
          result = Promise.reject(err);
        }
        result.then(
          (ok) => settle({ id, ok }),
          (err: unknown) => settle({ id, error: callErrorOf(err, (e) => this.onInternalError(e, 'Calls')) }),
        );
      }
    });
    call.on('end', () => {
      clientDone = true;
      maybeEnd();
    });
    call.on('cancelled', () => {
      ended = true;
      finish();
    });
    call.on('error', () => {
      ended = true;
      finish();
    });
  }

  private async writeObject(
    rpc: string,
    req: WireWriteObjectRequest,
    verb: 'create' | 'update' | 'updateStatus',
  ): Promise<WireObjectResponse> {
    const obj = decodeJson(req.object_json, rpc, 'object_json', this.objectBytesMax);
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new ApiError('Invalid', `${rpc}: object_json must be a JSON object`, {
        fieldPath: 'object_json',
      });
    }
    const kind = (obj as { kind?: unknown }).kind;
    if (typeof kind !== 'string' || kind === '') {
      throw new ApiError('Invalid', `${rpc}: kind: required`, { fieldPath: 'kind' });
    }
    const opts = req.dry_run ? { dryRun: true } : {};
    return { object_json: encodeObjectJson(await this.objects[verb](obj, opts)) };
  }

  private async get(req: WireGetRequest): Promise<WireObjectResponse> {
    const key = keyOf(req, 'Get');
    const consistency = consistencyFromWire(req.consistency);
    const obj = await this.objects.get(key, consistency === undefined ? {} : { consistency });
    return { object_json: encodeObjectJson(obj) };
  }

  private async list(req: WireListRequest): Promise<WireListResponse> {
    const kind = requiredString(req.kind, 'List', 'kind');
    const opts: ListOptions = {};
    const namespace = optionalString(req.namespace);
    if (namespace !== undefined) opts.namespace = namespace;
    const labelSelector = optionalString(req.label_selector);
    if (labelSelector !== undefined) opts.labelSelector = labelSelector;
    const fieldSelector = optionalString(req.field_selector);
    if (fieldSelector !== undefined) opts.fieldSelector = fieldSelector;
    if (req.limit !== undefined && req.limit > 0) opts.limit = Math.min(req.limit, apiLimits.listLimitMax);
    const token = optionalString(req.continue);
    if (token !== undefined) opts.continue = token;
    const consistency = consistencyFromWire(req.consistency);
    if (consistency !== undefined) opts.consistency = consistency;
    const result = await this.objects.list(kind, opts);
    const res: WireListResponse = {
      items_json: result.items.map(encodeJson),
      resource_version: result.resourceVersion,
    };
    if (result.continue !== undefined) res.continue = result.continue;
    if (result.remainingItemCount !== undefined) res.remaining_item_count = result.remainingItemCount;
    return res;
  }

  private async patch(req: WirePatchRequest): Promise<WireObjectResponse> {
    const key = keyOf(req, 'Patch');
    const patch = decodeJson(req.patch_json, 'Patch', 'patch_json', this.objectBytesMax);
    const subresource = optionalString(req.subresource);
    if (subresource !== undefined && subresource !== 'status') {
      throw new ApiError(
        'Invalid',
        `Patch: subresource ${JSON.stringify(subresource)} is not supported (only status)`,
        {
          fieldPath: 'subresource',
        },
      );
    }
    const obj = await this.objects.patch(key, patch, {
      ...(subresource === 'status' ? { subresource } : {}),
      ...(req.dry_run ? { dryRun: true } : {}),
    });
    return { object_json: encodeObjectJson(obj) };
  }

  private async delete(req: WireDeleteRequest): Promise<WireObjectResponse> {
    const key = keyOf(req, 'Delete');
    const opts: DeleteOptions = {};
    const propagationPolicy = propagationFromWire(req.propagation_policy);
    if (propagationPolicy !== undefined) opts.propagationPolicy = propagationPolicy;
    if (req.grace_period_seconds !== undefined) {
      if (!Number.isSafeInteger(req.grace_period_seconds) || req.grace_period_seconds < 0) {
        throw new ApiError('Invalid', `Delete ${key.kind} ${key.name}: grace_period_seconds must be >= 0`, {
          fieldPath: 'grace_period_seconds',
        });
      }
      opts.gracePeriodSeconds = req.grace_period_seconds;
    }
    const pre = req.preconditions;
    if (pre?.uid !== undefined || pre?.resource_version !== undefined) {
      opts.preconditions = {};
      if (pre.uid !== undefined) opts.preconditions.uid = pre.uid;
      if (pre.resource_version !== undefined) opts.preconditions.resourceVersion = pre.resource_version;
    }
    if (req.dry_run) opts.dryRun = true;
    return { object_json: encodeObjectJson(await this.objects.delete(key, opts)) };
  }

  private async addMember(req: WireAddMemberRequest): Promise<WireClusterStatus> {
    const status = await this.cluster.addMember({
      id: requiredString(req.id, 'AddMember', 'id'),
      raftAddress: requiredString(req.raft_address, 'AddMember', 'raft_address'),
      apiAddress: req.api_address ?? '',
      wsUrl: req.ws_url ?? '',
    });
    return clusterStatusToWire(status);
  }

  private watchOptions(req: WireWatchRequest): { kind: string; opts: WatchOptions } {
    const kind = requiredString(req.kind, 'Watch', 'kind');
    const opts: WatchOptions = {};
    const namespace = optionalString(req.namespace);
    if (namespace !== undefined) opts.namespace = namespace;
    const name = optionalString(req.name);
    if (name !== undefined) opts.name = name;
    const labelSelector = optionalString(req.label_selector);
    if (labelSelector !== undefined) opts.labelSelector = labelSelector;
    const fieldSelector = optionalString(req.field_selector);
    if (fieldSelector !== undefined) opts.fieldSelector = fieldSelector;
    const resourceVersion = optionalString(req.resource_version);
    if (resourceVersion !== undefined) opts.resourceVersion = resourceVersion;
    if (req.send_initial_events !== undefined) opts.sendInitialEvents = req.send_initial_events;
    if (req.allow_bookmarks) opts.allowBookmarks = true;
    return { kind, opts };
  }

  private async watch(call: grpc.ServerWritableStream<WireWatchRequest, WireWatchResponse>): Promise<void> {
    let stream: WatchStream | undefined;
    let cancelled = call.cancelled;
    call.on('cancelled', () => {
      cancelled = true;
      stream?.close();
    });
    try {
      const { kind, opts } = this.watchOptions(call.request);
      stream = await this.objects.watch(kind, opts);
      if (cancelled) return;
      call.sendMetadata(new grpc.Metadata());
      for (;;) {
        const events = await stream.next();
        if (events === undefined || cancelled) break;
        for (const message of this.packEvents(events)) {
          if (!call.write(message)) await drained(call);
          if (cancelled) return;
        }
      }
      if (!cancelled) call.end();
    } catch (err) {
      if (!cancelled)
        call.emit(
          'error',
          toStatus(err, (e) => this.onInternalError(e, 'Watch')),
        );
    } finally {
      stream?.close();
    }
  }

  /**
   * Events in messages of at most `watchMessageBytesMax` (an event larger than that goes alone),
   * never parting the events of one resourceVersion (`mayCutBetween`; such a group goes whole).
   */
  private packEvents(events: WatchEvent[]): WireWatchResponse[] {
    const messages: WireWatchResponse[] = [];
    let batch: WireWatchEvent[] = [];
    let bytes = 0;
    for (let i = 0; i < events.length; i += 1) {
      const event = events[i];
      const object_json = encodeObjectJson(event.object);
      if (
        batch.length > 0 &&
        bytes + object_json.byteLength > this.watchMessageBytesMax &&
        mayCutBetween(events[i - 1], event)
      ) {
        messages.push({ events: batch });
        batch = [];
        bytes = 0;
      }
      batch.push({ type: eventTypeToWire(event.type), object_json });
      bytes += object_json.byteLength + 8;
    }
    if (batch.length > 0) messages.push({ events: batch });
    return messages;
  }

  private async snapshot(call: grpc.ServerWritableStream<WireEmpty, WireSnapshotChunk>): Promise<void> {
    let cancelled = call.cancelled;
    call.on('cancelled', () => {
      cancelled = true;
    });
    try {
      // Leaving the loop early (cancel) calls the iterator's return(), which ends the source.
      outer: for await (const chunk of this.cluster.snapshot()) {
        if (cancelled) break;
        for (let at = 0; at < chunk.byteLength; at += this.snapshotChunkBytesMax) {
          const data = chunk.subarray(at, at + this.snapshotChunkBytesMax);
          if (!call.write({ data })) await drained(call);
          if (cancelled) break outer;
        }
      }
      if (!cancelled) call.end();
    } catch (err) {
      if (!cancelled)
        call.emit(
          'error',
          toStatus(err, (e) => this.onInternalError(e, 'Snapshot')),
        );
    }
  }
}

/**
 * What the gRPC API server (grpc-api.ts) and client (grpc-client.ts) share: loading
 * proto/api.proto, the wire shapes proto-loader produces, enum and error mapping, object JSON
 * coding and the message-size limits. Protobuf stays here, at the edge: domain code sees only
 * the interfaces of api.ts.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  ApiError,
  ApiErrorCode,
  apiLimits,
  type ClusterStatus,
  type Consistency,
  type ControllersStatus,
  type MemberStatus,
  type PropagationPolicy,
  type WatchEventType,
} from './api.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Message-size limits of the API, in bytes. Server and client use the same defaults. */
export const grpcApiLimits = {
  /** Largest request message: one object of `apiLimits.objectBytesMax` plus the request's other fields. */
  requestBytesMax: apiLimits.objectBytesMax + 64 * KiB,
  /** Largest response message (a list page of many objects); page with `limit` to stay below. */
  responseBytesMax: 128 * MiB,
  /** A watch message holds events until it reaches this size (one larger event goes alone). */
  watchMessageBytesMax: 4 * MiB,
  /** Largest `SnapshotChunk.data`; larger chunks from the ClusterApi are split. */
  snapshotChunkBytesMax: 1 * MiB,
} as const;

/** Trailing-metadata keys of an error status. */
export const errorMetadataKeys = {
  code: 'coxswain-error-code',
  fieldPath: 'coxswain-field-path',
  retryAfterMs: 'coxswain-retry-after-ms',
} as const;

export const API_PACKAGE = 'coxswain.api.v1';
export const OBJECTS_SERVICE = `${API_PACKAGE}.Objects`;
export const CLUSTER_SERVICE = `${API_PACKAGE}.Cluster`;
const PROTO_PATH = fileURLToPath(new URL('../proto/api.proto', import.meta.url));

/**
 * proto-loader options shared by both sides: field names as in the .proto, 64-bit numbers as
 * JS numbers, enums as their names, unset fields absent (so `optional` fields keep presence).
 */
const loaderOptions: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: false };

export interface ApiProto {
  packageDefinition: protoLoader.PackageDefinition;
  objects: grpc.ServiceDefinition;
  cluster: grpc.ServiceDefinition;
  ObjectsClient: grpc.ServiceClientConstructor;
  ClusterClient: grpc.ServiceClientConstructor;
}

let apiProto: ApiProto | undefined;

/** proto/api.proto, loaded once. */
export function loadApiProto(): ApiProto {
  if (apiProto === undefined) {
    const packageDefinition = protoLoader.loadSync(PROTO_PATH, loaderOptions);
    const objects = packageDefinition[OBJECTS_SERVICE] as grpc.ServiceDefinition | undefined;
    const cluster = packageDefinition[CLUSTER_SERVICE] as grpc.ServiceDefinition | undefined;
    if (objects?.Watch === undefined || cluster?.Snapshot === undefined) {
      throw new Error(`${PROTO_PATH} does not define ${OBJECTS_SERVICE} and ${CLUSTER_SERVICE}`);
    }
    const pkg = grpc.loadPackageDefinition(packageDefinition) as unknown as {
      coxswain: {
        api: { v1: { Objects: grpc.ServiceClientConstructor; Cluster: grpc.ServiceClientConstructor } };
      };
    };
    const { Objects: ObjectsClient, Cluster: ClusterClient } = pkg.coxswain.api.v1;
    apiProto = { packageDefinition, objects, cluster, ObjectsClient, ClusterClient };
  }
  return apiProto;
}

// ---------------------------------------------------------------- wire shapes (proto-loader objects)

/** `bytes` arrive as Buffer; either Buffer or Uint8Array may be sent. */
export type Bytes = Uint8Array;

export type WireConsistency =
  | 'CONSISTENCY_UNSPECIFIED'
  | 'CONSISTENCY_LINEARIZABLE'
  | 'CONSISTENCY_SERIALIZABLE';
export type WirePropagationPolicy =
  | 'PROPAGATION_POLICY_UNSPECIFIED'
  | 'PROPAGATION_POLICY_BACKGROUND'
  | 'PROPAGATION_POLICY_FOREGROUND'
  | 'PROPAGATION_POLICY_ORPHAN';
export type WireWatchEventType =
  | 'WATCH_EVENT_TYPE_UNSPECIFIED'
  | 'WATCH_EVENT_TYPE_ADDED'
  | 'WATCH_EVENT_TYPE_MODIFIED'
  | 'WATCH_EVENT_TYPE_DELETED'
  | 'WATCH_EVENT_TYPE_BOOKMARK';

export interface WireWriteObjectRequest {
  object_json?: Bytes;
  dry_run?: boolean;
}
export interface WireObjectResponse {
  object_json?: Bytes;
}
export interface WireGetRequest {
  kind?: string;
  namespace?: string;
  name?: string;
  consistency?: WireConsistency;
}
export interface WireListRequest {
  kind?: string;
  namespace?: string;
  label_selector?: string;
  field_selector?: string;
  limit?: number;
  continue?: string;
  consistency?: WireConsistency;
}
export interface WireListResponse {
  items_json?: Bytes[];
  resource_version?: string;
  continue?: string;
  remaining_item_count?: number;
}
export interface WirePatchRequest {
  kind?: string;
  namespace?: string;
  name?: string;
  patch_json?: Bytes;
  subresource?: string;
  dry_run?: boolean;
}
export interface WireDeleteRequest {
  kind?: string;
  namespace?: string;
  name?: string;
  propagation_policy?: WirePropagationPolicy;
  grace_period_seconds?: number;
  preconditions?: { uid?: string; resource_version?: string };
  dry_run?: boolean;
}
export interface WireWatchRequest {
  kind?: string;
  namespace?: string;
  name?: string;
  label_selector?: string;
  field_selector?: string;
  resource_version?: string;
  send_initial_events?: boolean;
  allow_bookmarks?: boolean;
}
export interface WireWatchEvent {
  type?: WireWatchEventType;
  object_json?: Bytes;
}
export interface WireWatchResponse {
  events?: WireWatchEvent[];
}
export interface WireCall {
  id?: number;
  create?: WireWriteObjectRequest;
  update?: WireWriteObjectRequest;
  update_status?: WireWriteObjectRequest;
  patch?: WirePatchRequest;
  delete?: WireDeleteRequest;
  get?: WireGetRequest;
}
export interface WireCallError {
  code?: number;
  message?: string;
  error_code?: string;
  field_path?: string;
  retry_after_ms?: number;
}
export interface WireCallResult {
  id?: number;
  ok?: WireObjectResponse;
  error?: WireCallError;
}
export interface WireCallBatch {
  calls?: WireCall[];
}
export interface WireCallResultBatch {
  results?: WireCallResult[];
}
export interface WireMemberStatus {
  id?: string;
  raft_address?: string;
  api_address?: string;
  ws_url?: string;
  role?: string;
  term?: number;
  commit?: number;
  applied?: number;
  match?: number;
}
export interface WireClusterStatus {
  self?: string;
  leader?: string;
  term?: number;
  members?: WireMemberStatus[];
}
export interface WireControllerStatus {
  name?: string;
  running?: boolean;
  reconciles?: number;
  errors?: number;
  requeues?: number;
  queue_depth?: number;
  in_flight?: number;
  delayed?: number;
  latency_p50_ms?: number;
  latency_p99_ms?: number;
  restarts?: number;
  last_error?: string;
  counters?: Record<string, number>;
}
export interface WireControllersStatus {
  leader?: string;
  term?: number;
  running?: boolean;
  controllers?: WireControllerStatus[];
  events_written?: number;
  events_dropped?: number;
  events_failed?: number;
}
export interface WireAddMemberRequest {
  id?: string;
  raft_address?: string;
  api_address?: string;
  ws_url?: string;
}
export interface WireRemoveMemberRequest {
  id?: string;
}
export interface WireTransferLeadershipRequest {
  to?: string;
}
export type WireEmpty = Record<string, never>;
export interface WireSnapshotChunk {
  data?: Bytes;
}

// ---------------------------------------------------------------- enums

export function consistencyToWire(c: Consistency | undefined): WireConsistency | undefined {
  if (c === undefined) return undefined;
  return c === 'serializable' ? 'CONSISTENCY_SERIALIZABLE' : 'CONSISTENCY_LINEARIZABLE';
}

/** Unknown numeric values (a newer client) read as the default, linearizable. */
export function consistencyFromWire(c: WireConsistency | undefined): Consistency | undefined {
  if (c === 'CONSISTENCY_SERIALIZABLE') return 'serializable';
  if (c === 'CONSISTENCY_LINEARIZABLE') return 'linearizable';
  return undefined;
}

const propagationToWireMap: Record<PropagationPolicy, WirePropagationPolicy> = {
  Background: 'PROPAGATION_POLICY_BACKGROUND',
  Foreground: 'PROPAGATION_POLICY_FOREGROUND',
  Orphan: 'PROPAGATION_POLICY_ORPHAN',
};

export function propagationToWire(p: PropagationPolicy | undefined): WirePropagationPolicy | undefined {
  return p === undefined ? undefined : propagationToWireMap[p];
}

/** Throws Invalid for a value this server does not know. */
export function propagationFromWire(
  p: WirePropagationPolicy | number | undefined,
): PropagationPolicy | undefined {
  switch (p) {
    case undefined:
    case 'PROPAGATION_POLICY_UNSPECIFIED':
      return undefined;
    case 'PROPAGATION_POLICY_BACKGROUND':
      return 'Background';
    case 'PROPAGATION_POLICY_FOREGROUND':
      return 'Foreground';
    case 'PROPAGATION_POLICY_ORPHAN':
      return 'Orphan';
    default:
      throw new ApiError('Invalid', `delete: propagation_policy ${String(p)} is not supported`, {
        fieldPath: 'propagation_policy',
      });
  }
}

const eventTypeToWireMap: Record<WatchEventType, WireWatchEventType> = {
  ADDED: 'WATCH_EVENT_TYPE_ADDED',
  MODIFIED: 'WATCH_EVENT_TYPE_MODIFIED',
  DELETED: 'WATCH_EVENT_TYPE_DELETED',
  BOOKMARK: 'WATCH_EVENT_TYPE_BOOKMARK',
};

export function eventTypeToWire(t: WatchEventType): WireWatchEventType {
  return eventTypeToWireMap[t];
}

/** Throws Internal for a type this client does not know (a newer server). */
export function eventTypeFromWire(t: WireWatchEventType | number | undefined): WatchEventType {
  switch (t) {
    case 'WATCH_EVENT_TYPE_ADDED':
      return 'ADDED';
    case 'WATCH_EVENT_TYPE_MODIFIED':
      return 'MODIFIED';
    case 'WATCH_EVENT_TYPE_DELETED':
      return 'DELETED';
    case 'WATCH_EVENT_TYPE_BOOKMARK':
      return 'BOOKMARK';
    default:
      throw new ApiError('Internal', `watch: event type ${String(t)} is not known to this client`);
  }
}

// ---------------------------------------------------------------- cluster status

const memberRoles: ReadonlySet<string> = new Set([
  'leader',
  'follower',
  'candidate',
  'precandidate',
  'learner',
  'unreachable',
]);

export function clusterStatusToWire(s: ClusterStatus): WireClusterStatus {
  return {
    self: s.self,
    leader: s.leader,
    term: s.term,
    members: s.members.map((m) => ({
      id: m.id,
      raft_address: m.raftAddress,
      api_address: m.apiAddress,
      ws_url: m.wsUrl,
      role: m.role,
      term: m.term,
      commit: m.commit,
      applied: m.applied,
      match: m.match,
    })),
  };
}

export function clusterStatusFromWire(w: WireClusterStatus): ClusterStatus {
  const status: ClusterStatus = {
    self: w.self ?? '',
    term: w.term ?? 0,
    members: (w.members ?? []).map((m) => {
      const member: MemberStatus = {
        id: m.id ?? '',
        raftAddress: m.raft_address ?? '',
        apiAddress: m.api_address ?? '',
        wsUrl: m.ws_url ?? '',
        role: memberRoles.has(m.role ?? '') ? (m.role as MemberStatus['role']) : 'unreachable',
      };
      if (m.term !== undefined) member.term = m.term;
      if (m.commit !== undefined) member.commit = m.commit;
      if (m.applied !== undefined) member.applied = m.applied;
      if (m.match !== undefined) member.match = m.match;
      return member;
    }),
  };
  if (w.leader !== undefined) status.leader = w.leader;
  return status;
}

export function controllersStatusToWire(s: ControllersStatus): WireControllersStatus {
  return {
    leader: s.leader,
    term: s.term,
    running: s.running,
    controllers: s.controllers.map((c) => ({
      name: c.name,
      running: c.running,
      reconciles: c.reconciles,
      errors: c.errors,
      requeues: c.requeues,
      queue_depth: c.queueDepth,
      in_flight: c.inFlight,
      delayed: c.delayed,
      latency_p50_ms: c.latencyP50Ms,
      latency_p99_ms: c.latencyP99Ms,
      restarts: c.restarts,
      last_error: c.lastError,
      counters: c.counters ?? {},
    })),
    events_written: s.events.written,
    events_dropped: s.events.dropped,
    events_failed: s.events.failed,
  };
}

export function controllersStatusFromWire(w: WireControllersStatus): ControllersStatus {
  return {
    leader: w.leader ?? '',
    ...(w.term !== undefined ? { term: w.term } : {}),
    running: w.running ?? false,
    controllers: (w.controllers ?? []).map((c) => ({
      name: c.name ?? '',
      running: c.running ?? false,
      reconciles: c.reconciles ?? 0,
      errors: c.errors ?? 0,
      requeues: c.requeues ?? 0,
      queueDepth: c.queue_depth ?? 0,
      inFlight: c.in_flight ?? 0,
      delayed: c.delayed ?? 0,
      latencyP50Ms: c.latency_p50_ms ?? 0,
      latencyP99Ms: c.latency_p99_ms ?? 0,
      restarts: c.restarts ?? 0,
      ...(c.last_error !== undefined ? { lastError: c.last_error } : {}),
      ...(c.counters !== undefined && Object.keys(c.counters).length > 0 ? { counters: c.counters } : {}),
    })),
    events: {
      written: w.events_written ?? 0,
      dropped: w.events_dropped ?? 0,
      failed: w.events_failed ?? 0,
    },
  };
}

// ---------------------------------------------------------------- object JSON

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Objects whose JSON `encodeObjectJson` keeps, the most recent (a bound on its memory). */
export const recentJsonEntriesMax = 1_024;
const recentJson = new Map<object, Buffer>();

/**
 * The JSON of a committed object, the same bytes for each of its recent encodings: a pod's
 * status write is the answer to its writer and an event on its node's watch and on every other
 * watch of pods, all one object. Committed objects are never modified (the store's contract),
 * so their identity is their content. A list's items go through `encodeJson` (a large list
 * would only flush this).
 */
export function encodeObjectJson(obj: object): Buffer {
  let bytes = recentJson.get(obj);
  if (bytes === undefined) {
    bytes = encodeJson(obj);
    if (recentJson.size >= recentJsonEntriesMax) recentJson.delete(recentJson.keys().next().value as object);
    recentJson.set(obj, bytes);
  }
  return bytes;
}

/**
 * Parses one JSON value from `bytes` (the request field `field` of `rpc`). Empty or absent:
 * Invalid; larger than `bytesMax`: ResourceExhausted; not UTF-8 JSON: Invalid. Never throws
 * anything but ApiError.
 */
export function decodeJson(bytes: Bytes | undefined, rpc: string, field: string, bytesMax: number): unknown {
  if (bytes === undefined || bytes.byteLength === 0) {
    throw new ApiError('Invalid', `${rpc}: ${field}: required`, { fieldPath: field });
  }
  if (bytes.byteLength > bytesMax) {
    throw new ApiError(
      'ResourceExhausted',
      `${rpc}: ${field} is ${bytes.byteLength} bytes, more than objectBytesMax ${bytesMax}`,
      { fieldPath: field },
    );
  }
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ApiError('Invalid', `${rpc}: ${field} is not valid JSON: ${reason}`, {
      fieldPath: field,
      cause: err,
    });
  }
}

// ---------------------------------------------------------------- errors

/**
 * ApiError code → gRPC status. Gone → OUT_OF_RANGE: the version asked for is outside the
 * history the server keeps (Kubernetes answers 410 Gone); the client must relist.
 * Conflict → ABORTED (a precondition failed; re-read and retry), as gRPC's guide advises for
 * read-modify-write conflicts. Forbidden → PERMISSION_DENIED (Kubernetes' 403: a quota, a
 * LimitRange, a terminating namespace).
 */
export const grpcStatusOfApiCode: Readonly<Record<ApiErrorCode, grpc.status>> = {
  NotFound: grpc.status.NOT_FOUND,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  Conflict: grpc.status.ABORTED,
  Invalid: grpc.status.INVALID_ARGUMENT,
  Gone: grpc.status.OUT_OF_RANGE,
  Forbidden: grpc.status.PERMISSION_DENIED,
  Unavailable: grpc.status.UNAVAILABLE,
  ResourceExhausted: grpc.status.RESOURCE_EXHAUSTED,
  Timeout: grpc.status.DEADLINE_EXCEEDED,
  Internal: grpc.status.INTERNAL,
};

/** gRPC status → ApiError code when the trailers do not name one (errors from grpc-js itself). */
export function apiCodeOfGrpcStatus(code: grpc.status): ApiErrorCode {
  switch (code) {
    case grpc.status.NOT_FOUND:
      return 'NotFound';
    case grpc.status.ALREADY_EXISTS:
      return 'AlreadyExists';
    case grpc.status.ABORTED:
    case grpc.status.FAILED_PRECONDITION:
      return 'Conflict';
    case grpc.status.INVALID_ARGUMENT:
      return 'Invalid';
    case grpc.status.OUT_OF_RANGE:
      return 'Gone';
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
      return 'Unavailable';
    case grpc.status.RESOURCE_EXHAUSTED:
      return 'ResourceExhausted';
    case grpc.status.PERMISSION_DENIED:
      return 'Forbidden';
    case grpc.status.DEADLINE_EXCEEDED:
      return 'Timeout';
    default:
      return 'Internal';
  }
}

const printableAscii = /^[\x20-\x24\x26-\x7e]*$/;

/** Metadata values must be printable ASCII: anything else (and '%') is percent-encoded. */
function toMetadataValue(text: string): string {
  return printableAscii.test(text) ? text : encodeURIComponent(text);
}

function fromMetadataValue(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One line: gRPC status details must not carry newlines. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/**
 * The status a server sends for `err`. An ApiError keeps its code, message, field path and
 * retry hint; anything else is INTERNAL with code `Internal` (reported through `onInternal`).
 */
export function toStatus(err: unknown, onInternal?: (err: unknown) => void): grpc.StatusObject {
  const apiErr = err instanceof ApiError ? err : undefined;
  if (apiErr === undefined) onInternal?.(err);
  const code: ApiErrorCode = apiErr?.code ?? 'Internal';
  const message = apiErr?.message ?? `internal error: ${err instanceof Error ? err.message : String(err)}`;
  const metadata = new grpc.Metadata();
  metadata.set(errorMetadataKeys.code, code);
  if (apiErr?.details.fieldPath !== undefined && apiErr.details.fieldPath !== '') {
    metadata.set(errorMetadataKeys.fieldPath, toMetadataValue(apiErr.details.fieldPath));
  }
  const retry = apiErr?.details.retryAfterMs;
  if (retry !== undefined && Number.isFinite(retry) && retry >= 0) {
    metadata.set(errorMetadataKeys.retryAfterMs, String(Math.round(retry)));
  }
  return { code: grpcStatusOfApiCode[code] ?? grpc.status.INTERNAL, details: oneLine(message), metadata };
}

/**
 * `items` in order, in consecutive batches whose `sizeOf` sums stay within `bytesMax` (an item
 * larger than that goes alone): the messages of a `Calls` stream, each way.
 */
export function sizedBatches<T>(items: readonly T[], sizeOf: (item: T) => number, bytesMax: number): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (batch.length > 0 && bytes + size > bytesMax) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** A failed multiplexed call (proto `CallError`): the status and trailers `toStatus` makes. */
export function callErrorOf(err: unknown, onInternal?: (err: unknown) => void): WireCallError {
  const status = toStatus(err, onInternal);
  const out: WireCallError = { code: status.code, message: status.details };
  const code = metadataString(status.metadata, errorMetadataKeys.code);
  if (code !== undefined) out.error_code = code;
  const fieldPath = metadataString(status.metadata, errorMetadataKeys.fieldPath);
  if (fieldPath !== undefined) out.field_path = fieldPath;
  const retry = metadataString(status.metadata, errorMetadataKeys.retryAfterMs);
  if (retry !== undefined) out.retry_after_ms = Number(retry);
  return out;
}

/**
 * The status a unary call would have ended with, from a multiplexed call's `CallError`, so
 * `fromStatus` and the failover rule read both alike.
 */
export function statusOfCallError(e: WireCallError): grpc.StatusObject & Error {
  const metadata = new grpc.Metadata();
  if (e.error_code) metadata.set(errorMetadataKeys.code, e.error_code);
  if (e.field_path) metadata.set(errorMetadataKeys.fieldPath, e.field_path);
  if (e.retry_after_ms !== undefined) metadata.set(errorMetadataKeys.retryAfterMs, String(e.retry_after_ms));
  const code = e.code !== undefined && e.code > 0 ? e.code : grpc.status.UNKNOWN;
  const details = e.message ?? '';
  return Object.assign(new Error(`${code} ${grpc.status[code] ?? ''}: ${details}`), {
    code,
    details,
    metadata,
  });
}

const apiCodes: ReadonlySet<string> = new Set(Object.values(ApiErrorCode));

function metadataString(metadata: grpc.Metadata | undefined, key: string): string | undefined {
  const values = metadata?.get(key) ?? [];
  return values.length > 0 && typeof values[0] === 'string' ? values[0] : undefined;
}

/** Whether a status came from this API's server (it names a domain code in its trailers). */
export function hasApiErrorCode(metadata: grpc.Metadata | undefined): boolean {
  const code = metadataString(metadata, errorMetadataKeys.code);
  return code !== undefined && apiCodes.has(code);
}

/** The ApiError a client raises for a failed call (`err` is a grpc-js ServiceError). */
export function fromStatus(err: unknown, what: string): ApiError {
  if (err instanceof ApiError) return err;
  const status = err as Partial<grpc.ServiceError> | undefined;
  if (status === undefined || typeof status.code !== 'number') {
    const reason = err instanceof Error ? err.message : String(err);
    return new ApiError('Internal', `${what}: ${reason}`, { cause: err });
  }
  const named = metadataString(status.metadata, errorMetadataKeys.code);
  const code =
    named !== undefined && apiCodes.has(named) ? (named as ApiErrorCode) : apiCodeOfGrpcStatus(status.code);
  const details: { fieldPath?: string; retryAfterMs?: number; cause?: unknown } = { cause: err };
  const fieldPath = metadataString(status.metadata, errorMetadataKeys.fieldPath);
  if (fieldPath !== undefined) details.fieldPath = fromMetadataValue(fieldPath);
  const retry = Number(metadataString(status.metadata, errorMetadataKeys.retryAfterMs));
  if (
    metadataString(status.metadata, errorMetadataKeys.retryAfterMs) !== undefined &&
    Number.isFinite(retry)
  ) {
    details.retryAfterMs = retry;
  }
  // A status from our server carries the domain message verbatim; grpc-js's own statuses get context.
  const message =
    named !== undefined ? (status.details ?? '') : `${what}: ${status.details || status.message}`;
  return new ApiError(code, message, details);
}

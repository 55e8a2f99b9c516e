/**
 * The master's API as domain code sees it: object operations, watch and cluster operations,
 * with typed errors. The gRPC server and the WebSocket gateway are adapters over these
 * interfaces; the master implements them over Raft and the object actors. Nothing here
 * depends on protobuf or on a transport.
 */

import type { ApiObject } from '../core/index.js';
import type { ControllerStats } from './controllers/controller.js';

/** Stable error codes; every adapter maps them to its own status (gRPC code, ws frame, CLI exit). */
export const ApiErrorCode = {
  NotFound: 'NotFound',
  AlreadyExists: 'AlreadyExists',
  /** A precondition (resourceVersion, uid) does not hold: re-read and retry. */
  Conflict: 'Conflict',
  /** The object or request is malformed; `fieldPath` names the field when there is one. */
  Invalid: 'Invalid',
  /** A watch or continue token older than the retained history: relist. */
  Gone: 'Gone',
  /**
   * No quorum or no leader right now; `retryAfterMs` hints when to retry. A write that fails
   * with Unavailable was not carried out, so a client may send it again (to any master).
   */
  Unavailable: 'Unavailable',
  /**
   * The request is well formed but policy refuses it (Kubernetes' 403): a quota it would
   * exceed, a LimitRange it violates, a namespace being terminated. Retrying the same request
   * fails the same way until the cluster's state changes.
   */
  Forbidden: 'Forbidden',
  /** A limit was hit (pending proposals, watchers, message size); the message names the limit. */
  ResourceExhausted: 'ResourceExhausted',
  /** The operation timed out or lost contact midway; it may or may not have taken effect. */
  Timeout: 'Timeout',
  Internal: 'Internal',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/** An expected failure of an API call. `message` is one line naming the object and the field. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: { fieldPath?: string; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}

/** `linearizable` (default): ReadIndex through the leader. `serializable`: this master's state now. */
export type Consistency = 'linearizable' | 'serializable';

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

/** Names one object. `namespace` is ignored (and may be omitted) for cluster-scoped kinds. */
export interface ObjectKey {
  kind: string;
  namespace?: string;
  name: string;
}

export interface GetOptions {
  consistency?: Consistency;
}

export interface ListOptions {
  /** Omitted or empty: all namespaces. */
  namespace?: string;
  /** `a=b,c!=d,e in (x,y),!f` */
  labelSelector?: string;
  /** `spec.nodeName=n1,metadata.name=x` */
  fieldSelector?: string;
  /** Page size; 0 or omitted: everything. */
  limit?: number;
  /** The token of the previous page; the page is read at the same cut. */
  continue?: string;
  consistency?: Consistency;
}

export interface ListResult {
  items: ApiObject[];
  /** The cut the items were read at (a Raft index). */
  resourceVersion: string;
  /** Present when more items follow. */
  continue?: string;
  /** Items after this page at the same cut, when more follow. */
  remainingItemCount?: number;
}

export interface WriteOptions {
  /** Validate, default and check preconditions without writing. */
  dryRun?: boolean;
  /**
   * In-process callers only (the leader's controllers; no wire carries it): propose only while
   * this master is the leader of this term, else Unavailable at once — never forwarded to a
   * newer leader nor retried, so a write decided in a term that ended cannot land in the next
   * one beside the new leader's own decisions (surplus pods after an election).
   */
  leaderTerm?: number;
}

export interface DeleteOptions extends WriteOptions {
  propagationPolicy?: PropagationPolicy;
  /** Pods: seconds the agent gives the containers; 0 deletes at once. Default: the pod's own. */
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface PatchOptions extends WriteOptions {
  /** Patch the status subresource instead of the object. */
  subresource?: 'status';
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** A BOOKMARK's object carries only `kind` and `metadata.resourceVersion`. */
export interface WatchEvent {
  type: WatchEventType;
  object: ApiObject;
}

/**
 * Whether a batch of watch events may be split into messages between `prev` and `next`: not
 * inside one resourceVersion (the changes of one Raft entry, as the Event cap's deletions). A
 * client resumes after the last version it received, so a cut inside one would lose the rest.
 */
export function mayCutBetween(prev: WatchEvent, next: WatchEvent): boolean {
  return prev.object.metadata?.resourceVersion !== next.object.metadata?.resourceVersion;
}

export interface WatchOptions {
  namespace?: string;
  /** Only this object (a field selector on `metadata.name` does the same). */
  name?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Changes after this version, gap-free; older than the retained history: Gone.
   * Omitted or '0' with `sendInitialEvents`: the current state as ADDED events, then changes.
   */
  resourceVersion?: string;
  /** With no resourceVersion, whether to start with the current state (default true). */
  sendInitialEvents?: boolean;
  /** Periodic BOOKMARK events carrying the latest version (default false). */
  allowBookmarks?: boolean;
}

/**
 * A server-side watch: a bounded queue of events with pull-based delivery, so adapters honour
 * their transport's backpressure. A watcher that falls `watchBufferEventsMax` events behind is
 * ended with ResourceExhausted (the client resumes from its last version).
 */
export interface WatchStream {
  /**
   * Resolves with the next events in order (at least one), or `undefined` once the stream has
   * ended; rejects with the ApiError that ended it (Gone, ResourceExhausted, Unavailable).
   * Events queued before such an error are not delivered: the client resumes from the last
   * version it saw. One call at a time.
   */
  next(): Promise<WatchEvent[] | undefined>;
  /** Ends the stream (idempotent); a pending `next()` resolves `undefined`. */
  close(): void;
}

/** Object operations. `kind` is the Kind (`Pod`, `Deployment`); adapters map plurals and short names. */
export interface ObjectApi {
  /** `metadata.generateName` is honoured; uid, timestamps and version are set by the master. */
  create(obj: unknown, opts?: WriteOptions): Promise<ApiObject>;
  get(key: ObjectKey, opts?: GetOptions): Promise<ApiObject>;
  list(kind: string, opts?: ListOptions): Promise<ListResult>;
  /** Replaces metadata and spec (status is kept). With `metadata.resourceVersion` set, it must match. */
  update(obj: unknown, opts?: WriteOptions): Promise<ApiObject>;
  /** Replaces status only. With `metadata.resourceVersion` set, it must match. */
  updateStatus(obj: unknown, opts?: WriteOptions): Promise<ApiObject>;
  /** JSON merge patch (RFC 7386); a `metadata.resourceVersion` in the patch is a precondition. */
  patch(key: ObjectKey, patch: unknown, opts?: PatchOptions): Promise<ApiObject>;
  /**
   * Deletes, or marks for deletion (finalizers, graceful pod deletion, foreground propagation):
   * resolves with the last state (deleted) or the marked object.
   */
  delete(key: ObjectKey, opts?: DeleteOptions): Promise<ApiObject>;
  watch(kind: string, opts?: WatchOptions): Promise<WatchStream>;
}

export interface MemberStatus {
  id: string;
  /** Raft transport address. */
  raftAddress: string;
  /** gRPC API address (`host:port`). */
  apiAddress: string;
  /** WebSocket gateway URL. */
  wsUrl: string;
  role: 'leader' | 'follower' | 'candidate' | 'precandidate' | 'learner' | 'unreachable';
  /** As last seen by the answering master (the leader knows every member's match). */
  term?: number;
  commit?: number;
  applied?: number;
  /** Leader only: the member's replicated index. */
  match?: number;
}

export interface ClusterStatus {
  /** The master that answered. */
  self: string;
  leader?: string;
  term: number;
  members: MemberStatus[];
}

export interface AddMemberRequest {
  id: string;
  raftAddress: string;
  apiAddress: string;
  wsUrl: string;
}

/**
 * The leader's controllers and their counters (`cox cluster controllers`): any master answers,
 * asking the leader. Counters count since this leader's controllers started (a new leader
 * starts from zero).
 */
export interface ControllersStatus {
  /** The master whose controllers these are (the leader). */
  leader: string;
  /** The term the controllers run for; absent while they are not running. */
  term?: number;
  running: boolean;
  controllers: ControllerStats[];
  /** The controllers' EventRecorder: Events written, dropped (queue or rate), failed writes. */
  events: { written: number; dropped: number; failed: number };
}

/** Cluster operations (membership, leadership, backup). */
export interface ClusterApi {
  status(): Promise<ClusterStatus>;
  /** The leader's controllers and their counters. */
  controllers(): Promise<ControllersStatus>;
  /** Adds a master as a learner and promotes it once it has caught up. */
  addMember(req: AddMemberRequest): Promise<ClusterStatus>;
  removeMember(id: string): Promise<ClusterStatus>;
  /** Moves leadership to `to` (default: the most caught-up other voter); resolves once done. */
  transferLeadership(to?: string): Promise<ClusterStatus>;
  /** A consistent backup of the state machine: chunks of one file, in order. */
  snapshot(): AsyncIterable<Uint8Array>;
}

/** Limits of requests, named with their unit. */
export const apiLimits = {
  /** Largest encoded object accepted. */
  objectBytesMax: 1_572_864,
  /** Largest page a list returns (a larger `limit` is clamped). */
  listLimitMax: 10_000,
  /** Objects one `deleteMany` (one Raft entry; the leader's controllers only) deletes at most. */
  deleteManyItemsMax: 1_000,
} as const;

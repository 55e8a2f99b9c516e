/**
 * Plain-data types of the Raft core's contract (see DESIGN.md "raft/ — the core is a pure
 * state machine"). Everything here is serialisable with msgpackr: no classes, no functions.
 */

export type NodeId = string;

export type EntryType = 'normal' | 'conf';

/** One log entry. A `conf` entry's data is an encoded {@link ConfChange}. */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote?: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** A state-machine snapshot and the configuration at its index. */
export interface Snapshot extends ConfState {
  index: number;
  term: number;
  data: Uint8Array;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
}

/** The answer to a `readIndex(ctx)` call: read once the state machine has applied `index`. */
export interface ReadState {
  index: number;
  ctx: Uint8Array;
}

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

export const MessageTypes = [
  'app',
  'appResp',
  'heartbeat',
  'heartbeatResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'snap',
  'snapResp',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
  'transferLeader',
] as const;
export type MessageType = (typeof MessageTypes)[number];

/**
 * A message between Raft nodes. The host reads only `from` and `to`; every other field is
 * the core's business. Messages may be lost, duplicated, reordered or delayed.
 */
export interface RaftMessage {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** app: prevLogTerm; vote/preVote: candidate's lastTerm; appResp reject: hint term. */
  logTerm?: number;
  /** app: prevLogIndex; appResp: last matched index (or rejected index); vote: lastIndex. */
  index?: number;
  entries?: Entry[];
  commit?: number;
  reject?: boolean;
  /** appResp reject: the follower's hint index for fast backtracking. */
  rejectHint?: number;
  /** heartbeat / heartbeatResp: ReadIndex round number; readIndex(Resp): request context. */
  context?: Uint8Array;
  /** heartbeat(Resp): the leader's ReadIndex round this heartbeat confirms. */
  seq?: number;
  /** snap: one chunk of a snapshot. */
  snapshot?: SnapshotChunk;
  /** snapResp: the number of bytes of the snapshot the follower has so far. */
  offset?: number;
  /** vote/preVote: the campaign follows a leadership transfer and may break a leader's lease. */
  transfer?: boolean;
  /** transferLeader (forwarded by a follower): the node that should become leader. */
  target?: NodeId;
}

/** One chunk of an InstallSnapshot transfer. `meta` repeats in every chunk. */
export interface SnapshotChunk {
  index: number;
  term: number;
  voters: NodeId[];
  learners: NodeId[];
  /** Total size of the snapshot data in bytes. */
  size: number;
  offset: number;
  data: Uint8Array;
  done: boolean;
}

/**
 * What the host must do next, in this order: persist `snapshot`, `entries` and `hardState`
 * (fsync when `mustSync`), then send `messages`, then apply `committedEntries` (after
 * restoring from `snapshot` if present), then call `advance(rd)`.
 */
export interface Ready {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: RaftMessage[];
  readStates: ReadState[];
  mustSync: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader?: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  voters: NodeId[];
  learners: NodeId[];
}

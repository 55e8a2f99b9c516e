/** Expected failures of the Raft core. Broken invariants are assertions, not these. */

export class RaftError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Thrown by `propose` on a node that is not the leader. `leaderHint` is the known leader, if any. */
export class NotLeaderError extends RaftError {
  readonly leaderHint: string | undefined;
  constructor(leaderHint: string | undefined) {
    super(
      'NOT_LEADER',
      leaderHint ? `not the leader; the leader is ${leaderHint}` : 'not the leader; no leader known',
    );
    this.leaderHint = leaderHint;
  }
}

/** Thrown by `propose` when the leader cannot take the proposal now (transfer pending, limit reached). */
export class ProposalDroppedError extends RaftError {
  readonly reason: string;
  constructor(reason: string) {
    super('PROPOSAL_DROPPED', `proposal dropped: ${reason}`);
    this.reason = reason;
  }
}

/** A storage read below the first retained index (the entries were compacted into a snapshot). */
export class CompactedError extends RaftError {
  constructor(index: number, firstIndex: number) {
    super('COMPACTED', `index ${index} is compacted (first retained index is ${firstIndex})`);
  }
}

/** A storage read above the last index. */
export class UnavailableError extends RaftError {
  constructor(index: number, lastIndex: number) {
    super('UNAVAILABLE', `index ${index} is beyond the last index ${lastIndex}`);
  }
}

/** A snapshot older than the storage's current one. */
export class SnapshotOutOfDateError extends RaftError {
  constructor(index: number, current: number) {
    super('SNAPSHOT_OUT_OF_DATE', `snapshot at ${index} is older than the current snapshot at ${current}`);
  }
}

/** An invalid RaftNode configuration. */
export class RaftConfigError extends RaftError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}

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

/** The host was stopped (or failed) before the operation finished. */
export class HostStoppedError extends RaftError {
  constructor(options?: { cause?: unknown }) {
    super('HOST_STOPPED', 'the raft host is stopped', options);
  }
}

/**
 * The entry a proposal created was replaced: the entry committed at its index has another
 * term (leadership changed before it committed). The proposal did not take effect.
 */
export class ProposalLostError extends RaftError {
  readonly index: number;
  readonly term: number;
  readonly committedTerm: number;
  constructor(index: number, term: number, committedTerm: number) {
    super(
      'PROPOSAL_LOST',
      `proposal at index ${index} (term ${term}) was lost: index ${index} committed with term ${committedTerm}`,
    );
    this.index = index;
    this.term = term;
    this.committedTerm = committedTerm;
  }
}

/**
 * The node installed a snapshot covering the proposal's index, so whether the proposal
 * committed cannot be told locally; the caller must check the state itself.
 */
export class ProposalOutcomeUnknownError extends RaftError {
  readonly index: number;
  /** `why`: what made the outcome unknowable (a snapshot replaced the log, the wait timed out). */
  constructor(index: number, why: string) {
    super('PROPOSAL_OUTCOME_UNKNOWN', `proposal at index ${index}: outcome unknown, ${why}`);
    this.index = index;
  }
}

/** A bounded queue of the host is full (proposals or reads awaiting completion). */
export class ResourceExhaustedError extends RaftError {
  readonly limit: number;
  constructor(what: string, limit: number) {
    super('RESOURCE_EXHAUSTED', `too many ${what} pending (limit ${limit})`);
    this.limit = limit;
  }
}

/** A linearizable read (ReadIndex) got no answer in time (no leader, or no quorum). */
export class ReadIndexTimeoutError extends RaftError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('READ_INDEX_TIMEOUT', `read index not confirmed within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** `waitForLeader` saw no leader in time. */
export class LeaderWaitTimeoutError extends RaftError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('LEADER_WAIT_TIMEOUT', `no leader known within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** A transport could not start (bad listen address, address in use) or was used after close. */
export class RaftTransportError extends RaftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSPORT', message, options);
  }
}

/**
 * `RaftHost.addMember` gave up: the new learner did not catch up with the leader's log in
 * time, so it was left a learner (not promoted to voter). Retrying `addMember` resumes.
 */
export class MemberCatchUpTimeoutError extends RaftError {
  readonly member: string;
  readonly timeoutMs: number;
  constructor(member: string, timeoutMs: number) {
    super('MEMBER_CATCH_UP_TIMEOUT', `learner ${member} did not catch up within ${timeoutMs} ms`);
    this.member = member;
    this.timeoutMs = timeoutMs;
  }
}

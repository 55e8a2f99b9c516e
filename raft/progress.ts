import type { NodeId, Snapshot } from './types.js';

/**
 * A ring of the last indices of append messages in flight to one follower: the flow-control
 * window. At most `size` appends are outstanding.
 */
export class Inflights {
  private readonly buf: number[];
  private start = 0;
  count = 0;

  constructor(readonly size: number) {
    this.buf = new Array<number>(size).fill(0);
  }

  add(index: number): void {
    if (this.full()) throw new Error('raft invariant: inflights window overflow');
    this.buf[(this.start + this.count) % this.size] = index;
    this.count++;
  }

  /** Frees every in-flight append whose last index is <= `to`. */
  freeLE(to: number): void {
    while (this.count > 0 && this.buf[this.start] <= to) {
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.size;
    this.count--;
  }

  full(): boolean {
    return this.count >= this.size;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** An outgoing InstallSnapshot transfer to one follower. */
export interface SnapshotTransfer {
  snap: Snapshot;
  /** Bytes the follower acknowledged. */
  acked: number;
  /** Bytes sent so far (chunks beyond `acked` are in flight). */
  sent: number;
  /** Ticks since the follower last acknowledged a chunk. */
  idleTicks: number;
  /** The offset of the last rewind (a repeated answer for it is not a new loss). */
  rewoundAt: number;
  /** An empty snapshot went out as its single chunk. */
  emptySent: boolean;
}

/** The leader's view of one follower (or learner). */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding, wait for its answer or a heartbeat answer. */
  msgAppFlowPaused = false;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  pendingSnapshot = 0;
  transfer: SnapshotTransfer | undefined;
  /** Highest ReadIndex round this peer acknowledged. */
  readSeqAcked = 0;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.transfer = undefined;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snap: Snapshot): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snap.index;
    this.transfer = { snap, acked: 0, sent: 0, idleTicks: 0, rewoundAt: -1, emptySent: false };
  }

  /** Records that an append ending at `last` (with `count` entries) was sent. */
  sentEntries(count: number, last: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflights.add(last);
      }
    } else if (this.state === 'probe') {
      this.msgAppFlowPaused = true;
    }
  }

  /** A successful append response up to `n`. Returns false when it is stale. */
  maybeUpdate(n: number): boolean {
    if (this.match >= n) return false;
    this.match = n;
    if (this.next < n + 1) this.next = n + 1;
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * A rejected append of `rejected` with the follower's hint `matchHint`. Returns false when
   * the rejection is stale (an answer to an append the leader has moved past).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether the leader must hold appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

/** Voters and learners of the current configuration, with one Progress each. */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();

  constructor(private readonly maxInflight: number) {}

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  isSingleton(id: NodeId): boolean {
    return this.voters.size === 1 && this.voters.has(id);
  }

  /** Sets the configuration; keeps the Progress of members that stay. */
  setConfig(voters: Iterable<NodeId>, learners: Iterable<NodeId>, nextIndex: number): void {
    this.voters = new Set(voters);
    this.learners = new Set([...learners].filter((l) => !this.voters.has(l)));
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...this.voters, ...this.learners]) {
      const pr = this.progress.get(id);
      if (pr) pr.isLearner = this.learners.has(id);
      else this.progress.set(id, new Progress(nextIndex, this.maxInflight, this.learners.has(id)));
    }
  }

  /** Replaces every Progress with a fresh one (a new term). */
  resetProgress(nextIndex: number): void {
    for (const id of [...this.progress.keys()]) {
      this.progress.set(id, new Progress(nextIndex, this.maxInflight, this.learners.has(id)));
    }
  }

  /** The largest index a quorum of voters has matched. */
  committed(): number {
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    return matches[this.quorum() - 1] ?? 0;
  }

  /** The highest ReadIndex round acknowledged by a quorum of voters. */
  readSeqConfirmed(): number {
    const acks: number[] = [];
    for (const id of this.voters) acks.push(this.progress.get(id)?.readSeqAcked ?? 0);
    acks.sort((a, b) => b - a);
    return acks[this.quorum() - 1] ?? 0;
  }

  /** True when a quorum of voters was recently active; clears the flags for the next round. */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (!pr) continue;
      if (id === self || pr.recentActive) active++;
    }
    for (const [id, pr] of this.progress) pr.recentActive = id === self;
    return active >= this.quorum();
  }

  /** Tallies granted and rejected votes among voters. */
  tally(votes: Map<NodeId, boolean>): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return 'won';
    if (rejected > this.voters.size - q) return 'lost';
    return 'pending';
  }
}

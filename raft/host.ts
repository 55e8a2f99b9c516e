import {
  HostStoppedError,
  LeaderWaitTimeoutError,
  MemberCatchUpTimeoutError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalLostError,
  ProposalOutcomeUnknownError,
  RaftConfigError,
  ReadIndexTimeoutError,
  ResourceExhaustedError,
} from './errors.js';
import { encodeConfChange, RaftNode } from './node.js';
import type { DurableStorage, StateMachine, Transport } from './ports.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  NodeId,
  RaftMessage,
  RaftStatus,
  ReadState,
  Ready,
  Snapshot,
} from './types.js';

/** Where the host reports what happens to it. */
export interface RaftHostLogger {
  info(msg: string, o?: object): void;
  warn(msg: string, o?: object): void;
  error(msg: string, o?: object): void;
}

/** Options of a {@link RaftHost}. Tick counts are in ticks of `tickMs` milliseconds. */
export interface RaftHostOptions {
  id: NodeId;
  /**
   * Voters at bootstrap; ignored when the storage holds a snapshot with a configuration.
   * With `bootstrap: 'initial'`, the founding voters (written to the log); with 'join', must be empty.
   */
  voters: NodeId[];
  /** Learners at bootstrap, like `voters`. */
  learners?: NodeId[];
  /**
   * How the cluster's first configuration reaches this member (as etcd's bootstrap entries).
   *
   * - absent: the configuration is `voters`/`learners`, held in memory only and never written
   *   to the log, so a node that joins later cannot learn it. Fine for a fixed membership.
   * - `'initial'`: this node is a founding member; every founding member is started with the
   *   same `voters` (and `learners`) in the same order, and `id` must be among them. On an empty
   *   storage the host writes, before the node starts, one `conf` entry per voter (addVoter,
   *   then addLearner per learner) at indexes 1..n with term 1, and the hard state
   *   `{ term: 1, commit: n }`, made durable in `start()` before anything is sent. The node
   *   applies them in its first Ready; the configuration is then in the log and reaches every
   *   member added later. On a storage that is not empty (a restart) nothing is written.
   * - `'join'`: this node joins a running cluster; `voters` and `learners` must be empty. It
   *   starts with no configuration, never campaigns, and waits for the leader to add it
   *   (`addMember` on the leader); it learns the configuration from the leader's log, or
   *   from a snapshot when the leader compacted it.
   *
   * Either mode throws RaftConfigError for a storage that was initialized without bootstrap
   * entries (it holds a log whose first entry is not a configuration change and no snapshot).
   */
  bootstrap?: 'initial' | 'join';
  storage: DurableStorage;
  transport: Transport;
  stateMachine: StateMachine;
  /** Length of one tick. Default 100. */
  tickMs?: number;
  /** Election timeout base in ticks; the timeout is randomized in [e, 2e). Default 5 (500–1000 ms). */
  electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  heartbeatTicks?: number;
  /** Default true. */
  preVote?: boolean;
  /** Default true. */
  checkQuorum?: boolean;
  /** Passed to the core: append messages in flight per follower. */
  maxInflight?: number;
  /** Passed to the core: byte budget of one append message (and snapshot chunk size). */
  maxSizePerMsg?: number;
  /** Passed to the core: uncommitted proposal bytes a leader accepts. */
  maxUncommittedBytes?: number;
  /**
   * Passed to the core: bytes of committed entries one Ready hands to the state machine. The
   * host applies one Ready's entries in one go and sends nothing meanwhile (no append
   * acknowledgement, no heartbeat), then yields to the event loop before the next Ready while
   * more are committed: a smaller budget keeps the node answering while it works through a
   * backlog (etcd: MaxCommittedSizePerReady). Default 262,144 (256 KiB: one or two of a
   * master's grouped entries, up to 256 writes each).
   */
  maxApplyingBytes?: number;
  /** Snapshot the state machine and compact once `applied - lastSnapshotIndex >= this`. Default 10,000. */
  snapshotEveryEntries?: number;
  /**
   * ... or once the entries applied since the last snapshot hold this many bytes, however few
   * they are (an entry may carry a group of writes: the log kept in memory and on disk until
   * the next snapshot stays bounded in bytes too). Default 67,108,864 (64 MiB).
   */
  snapshotEveryLogBytes?: number;
  /**
   * Also wait, before a snapshot, until the entries applied since the last one hold at least
   * this many times its bytes (the Raft thesis' rule, 5.1.1: a snapshot costs the whole state,
   * so it is amortized over a log about its size; with a fixed entry count the cost per entry
   * grew with the state, and a large cluster spent its CPU re-encoding itself). 0: the entry
   * count alone decides. Default 0.
   */
  snapshotLogBytesRatio?: number;
  /**
   * Each snapshot's thresholds (the three above) are scaled by a factor drawn from `random` in
   * [1, 1 + this). Replicas apply the same log, so without it they all snapshot at the same
   * index, and a leader and both its followers encoding and writing their whole state at once
   * stall the commits. Default 0 (exact thresholds).
   */
  snapshotJitter?: number;
  /** Entries kept before the snapshot index for slow followers. Default 1,000. */
  compactionMarginEntries?: number;
  /** How long `readIndex()` waits for its read point and the apply. Default 5,000. */
  readTimeoutMs?: number;
  /** Proposals awaiting their apply; beyond it `propose()` rejects with ResourceExhaustedError. Default 10,000. */
  pendingProposalsMax?: number;
  /** How long a proposal may wait for its apply before it rejects with ProposalOutcomeUnknownError. Default 30,000. */
  proposalTimeoutMs?: number;
  /** Reads awaiting their read point or apply; beyond it `readIndex()` rejects with ResourceExhaustedError. Default 10,000. */
  pendingReadsMax?: number;
  /** Randomness for election timeouts and read contexts, in [0, 1). Default Math.random. */
  random?: () => number;
  logger?: RaftHostLogger;
  /** Called when the known leader or the term changes (leader undefined: none known). */
  onLeaderChange?: (leader: NodeId | undefined, term: number) => void;
}

/** Counters of the host's work since it was created. */
export interface RaftHostStats {
  /** Readies handled. */
  readies: number;
  /** Turns of the event loop given up between two Readies of one backlog of committed entries. */
  applyYields: number;
  /** `storage.sync()` calls. */
  fsyncs: number;
  /** Entries written to the storage. */
  entriesPersisted: number;
  /** entriesPersisted / fsyncs: how well group commit batches. */
  entriesPerFsync: number;
  /** The index applied to the state machine. */
  applied: number;
  /** Proposals (and configuration changes) awaiting their apply. */
  proposalsPending: number;
}

/** Options of {@link RaftHost.addMember}. */
export interface AddMemberOptions {
  /** The member's transport address, given to `transport.setPeer` before it is added. */
  address?: string;
  /** How long the new learner may take to catch up before it is promoted. Default 30,000. */
  catchUpTimeoutMs?: number;
  /** The learner counts as caught up once its match is within this many entries of the leader's last index. Default 100. */
  catchUpMarginEntries?: number;
}

interface ProposalWaiter {
  term: number;
  deadlineMs: number;
  resolve: (r: { index: number; term: number }) => void;
  reject: (err: Error) => void;
}

interface ReadWaiter {
  deadlineMs: number;
  resolve: (index: number) => void;
  reject: (err: Error) => void;
}

/** Reads requested in one event-loop turn share one ReadIndex request (one context). */
interface ReadBatch {
  seq: number;
  ctx: Uint8Array;
  waiters: ReadWaiter[];
  /** The read point, once the leader answered. */
  index: number | undefined;
  /** Host tick at which the request last went to the core (for retries). */
  sentAtTick: number;
}

interface LeaderWaiter {
  resolve: (leader: NodeId) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TICK_MS = 100;
const DEFAULT_ELECTION_TICKS = 5;
const DEFAULT_HEARTBEAT_TICKS = 1;
const DEFAULT_SNAPSHOT_EVERY_ENTRIES = 10_000;
const DEFAULT_SNAPSHOT_EVERY_LOG_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_APPLYING_BYTES = 256 * 1024;
const DEFAULT_COMPACTION_MARGIN_ENTRIES = 1_000;
const DEFAULT_READ_TIMEOUT_MS = 5_000;
const DEFAULT_PENDING_PROPOSALS_MAX = 10_000;
const DEFAULT_PROPOSAL_TIMEOUT_MS = 30_000;
const DEFAULT_PENDING_READS_MAX = 10_000;
const DEFAULT_CATCH_UP_TIMEOUT_MS = 30_000;
const DEFAULT_CATCH_UP_MARGIN_ENTRIES = 100;
const READ_CTX_BYTES = 8;
const UINT32_RANGE = 2 ** 32;

const consoleLogger: RaftHostLogger = {
  info: () => {},
  warn: (msg, o) => console.warn(msg, o ?? ''),
  error: (msg, o) => console.error(msg, o ?? ''),
};

/**
 * Drives a {@link RaftNode} with a real timer, a {@link DurableStorage}, a {@link Transport}
 * and a {@link StateMachine}.
 *
 * One Ready is handled at a time, in the contract's order: persist (snapshot, entries, hard
 * state), one `sync()` when the Ready must be durable, send, restore/apply, advance. Ticks,
 * incoming messages and proposals keep stepping into the core while a Ready is being synced,
 * so everything proposed during one event-loop turn or one fsync lands in the next Ready and
 * shares its fsync (group commit). The leader never waits for acknowledgements before sending
 * more appends: the core's inflight window pipelines them.
 *
 * Failures of the storage, the state machine or the core are invariant violations: the host
 * logs them, rejects everything pending and rethrows at the process level.
 */
export class RaftHost {
  private readonly opts: RaftHostOptions;
  private readonly node: RaftNode;
  private readonly storage: DurableStorage;
  private readonly transport: Transport;
  private readonly sm: StateMachine;
  private readonly log: RaftHostLogger;
  private readonly tickMs: number;
  private readonly electionTicks: number;
  private readonly snapshotEveryEntries: number;
  private readonly snapshotEveryLogBytes: number;
  private readonly snapshotLogBytesRatio: number;
  private readonly snapshotJitter: number;
  /** This snapshot's factor on the thresholds, drawn after each one (see `snapshotJitter`). */
  private snapshotScale = 1;
  private readonly random: () => number;
  /** Bytes of the last snapshot taken or installed. */
  private lastSnapshotBytes: number;
  /** Bytes of the entries applied since the last snapshot's cut. */
  private logBytesSinceSnapshot = 0;
  private readonly compactionMarginEntries: number;
  private readonly readTimeoutMs: number;
  private readonly pendingProposalsMax: number;
  private readonly proposalTimeoutMs: number;
  private readonly pendingReadsMax: number;

  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private stopping: Promise<void> | undefined;
  private loopScheduled = false;
  /** The Ready loop while it runs. */
  private loop: Promise<void> | undefined;
  /** Something stepped into the core while the loop ran: check for a Ready again before it ends. */
  private loopDirty = false;

  private appliedIndex: number;
  private lastSnapshotIndex: number;
  /** A snapshot of the state machine being encoded in the background (at most one). */
  private snapshotEncoding = false;
  /** An encoded snapshot waiting to be written into the storage between two Readies. */
  private snapshotEncoded: { index: number; data: Uint8Array; conf: ConfState } | undefined;
  private lastLeader: NodeId | undefined;
  private lastTerm: number;

  private readonly proposals = new Map<number, ProposalWaiter[]>();
  private proposalsPending = 0;

  /** High 32 bits of every read context: tells this incarnation's answers from a predecessor's. */
  private readonly readIncarnation: number;
  private readSeq = 0;
  private openReadBatch: ReadBatch | undefined;
  private readonly readBatches = new Map<number, ReadBatch>();
  private readsPending = 0;

  private readonly leaderWaiters = new Set<LeaderWaiter>();

  private readonly counters = { readies: 0, applyYields: 0, fsyncs: 0, entriesPersisted: 0 };
  /** Term and vote as last made durable: messages may not go out before a change of them is. */
  private durableTermVote: { term: number; vote: NodeId | undefined };
  /** Bootstrap entries were written in the constructor: `start()` makes them durable first. */
  private bootstrapSyncPending = false;

  constructor(opts: RaftHostOptions) {
    this.opts = opts;
    this.storage = opts.storage;
    this.transport = opts.transport;
    this.sm = opts.stateMachine;
    this.log = opts.logger ?? consoleLogger;
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.electionTicks = opts.electionTicks ?? DEFAULT_ELECTION_TICKS;
    this.snapshotEveryEntries = opts.snapshotEveryEntries ?? DEFAULT_SNAPSHOT_EVERY_ENTRIES;
    this.snapshotEveryLogBytes = opts.snapshotEveryLogBytes ?? DEFAULT_SNAPSHOT_EVERY_LOG_BYTES;
    this.snapshotLogBytesRatio = opts.snapshotLogBytesRatio ?? 0;
    this.snapshotJitter = opts.snapshotJitter ?? 0;
    this.compactionMarginEntries = opts.compactionMarginEntries ?? DEFAULT_COMPACTION_MARGIN_ENTRIES;
    this.readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    this.pendingProposalsMax = opts.pendingProposalsMax ?? DEFAULT_PENDING_PROPOSALS_MAX;
    this.proposalTimeoutMs = opts.proposalTimeoutMs ?? DEFAULT_PROPOSAL_TIMEOUT_MS;
    this.pendingReadsMax = opts.pendingReadsMax ?? DEFAULT_PENDING_READS_MAX;
    if (!(this.tickMs > 0)) throw new RangeError('tickMs must be positive');
    if (!(this.snapshotEveryEntries > 0)) throw new RangeError('snapshotEveryEntries must be positive');
    if (!(this.snapshotEveryLogBytes > 0)) throw new RangeError('snapshotEveryLogBytes must be positive');
    if (!(this.snapshotLogBytesRatio >= 0)) throw new RangeError('snapshotLogBytesRatio must be >= 0');
    if (!(this.snapshotJitter >= 0)) throw new RangeError('snapshotJitter must be >= 0');
    if (!(this.compactionMarginEntries >= 0)) throw new RangeError('compactionMarginEntries must be >= 0');
    const random = opts.random ?? Math.random;
    this.random = random;
    if (opts.bootstrap !== undefined) this.bootstrapSyncPending = prepareBootstrap(opts);
    this.node = new RaftNode({
      id: opts.id,
      // In a bootstrap mode the configuration is in the log (or the snapshot), never in memory only.
      voters: opts.bootstrap === undefined ? opts.voters : [],
      learners: opts.bootstrap === undefined ? opts.learners : [],
      electionTicks: this.electionTicks,
      heartbeatTicks: opts.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS,
      preVote: opts.preVote ?? true,
      checkQuorum: opts.checkQuorum ?? true,
      random,
      storage: this.storage,
      maxInflight: opts.maxInflight,
      maxSizePerMsg: opts.maxSizePerMsg,
      maxUncommittedBytes: opts.maxUncommittedBytes,
      maxApplyingBytes: opts.maxApplyingBytes ?? DEFAULT_MAX_APPLYING_BYTES,
    });
    const hs = this.storage.initialState().hardState;
    this.durableTermVote = { term: hs.term, vote: hs.vote };
    this.readIncarnation = Math.floor(random() * UINT32_RANGE) >>> 0;
    this.drawSnapshotScale();
    this.lastSnapshotIndex = this.storage.snapshot().index;
    this.lastSnapshotBytes = this.storage.snapshot().data.byteLength;
    this.appliedIndex = this.lastSnapshotIndex;
    const st = this.node.status();
    this.lastLeader = st.leader;
    this.lastTerm = st.term;
  }

  /** Restores the state machine from the stored snapshot, starts the transport and the tick timer. */
  async start(): Promise<void> {
    if (this.started) throw new Error('RaftHost.start called twice');
    this.started = true;
    if (this.bootstrapSyncPending) {
      await this.storage.sync();
      this.counters.fsyncs++;
      this.bootstrapSyncPending = false;
      if (this.stopped) return;
    }
    const snap = this.storage.snapshot();
    if (snap.index > 0) await this.sm.restore(snap.data);
    await this.transport.start((msg) => this.onMessage(msg));
    if (this.stopped) return;
    // One tick per interval: setInterval does not replay intervals missed during a pause.
    this.timer = setInterval(() => this.onTick(), this.tickMs);
    this.timer.unref();
    this.log.info('raft host started', { id: this.opts.id, applied: this.appliedIndex });
    this.schedule();
  }

  /**
   * Stops ticking, rejects everything pending with HostStoppedError, waits for the Ready in
   * progress (which is neither sent nor applied once its sync finishes), then closes the
   * transport and the storage.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (!this.stopped) this.halt(new HostStoppedError());
    await this.loop; // never rejects: the loop reports its own failure
    // A snapshot encoded but not yet written: the loop is over, the storage is ours to write it.
    if (this.snapshotEncoded !== undefined) {
      await this.storeSnapshot().catch((err: unknown) =>
        this.log.warn('snapshot not stored on stop', { id: this.opts.id, error: String(err) }),
      );
    }
    await this.transport.close();
    await this.storage.close();
    this.log.info('raft host stopped', { id: this.opts.id });
  }

  /**
   * Proposes `data` as one log entry. Resolves with its place once the entry is committed and
   * applied to the local state machine.
   * Rejects with NotLeaderError (with `leaderHint`), ProposalDroppedError, ResourceExhaustedError
   * (too many proposals pending), ProposalLostError (another entry committed at its index),
   * ProposalOutcomeUnknownError (a snapshot replaced the log here) or HostStoppedError.
   */
  propose(data: Uint8Array): Promise<{ index: number; term: number }> {
    if (this.stopped || !this.started) return Promise.reject(new HostStoppedError());
    if (this.proposalsPending >= this.pendingProposalsMax) {
      return Promise.reject(new ResourceExhaustedError('proposals', this.pendingProposalsMax));
    }
    let placed: { index: number; term: number };
    try {
      placed = this.node.propose(data);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    return new Promise((resolve, reject) => this.addProposalWaiter(placed, resolve, reject));
  }

  /**
   * Proposes a single-server configuration change; resolves once its entry is applied (the
   * change is then in force). Rejects with ProposalDroppedError while another change is
   * pending, and otherwise like {@link propose}. Give the transport a new member's address
   * (`transport.setPeer`) before adding it.
   */
  proposeConfChange(cc: ConfChange): Promise<{ index: number }> {
    if (this.stopped || !this.started) return Promise.reject(new HostStoppedError());
    if (this.proposalsPending >= this.pendingProposalsMax) {
      return Promise.reject(new ResourceExhaustedError('proposals', this.pendingProposalsMax));
    }
    let placed: { index: number; term: number; dropped?: boolean };
    try {
      placed = this.node.proposeConfChange(cc);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    if (placed.dropped) {
      return Promise.reject(new ProposalDroppedError('another configuration change is pending'));
    }
    return new Promise((resolve, reject) =>
      this.addProposalWaiter(placed, (r) => resolve({ index: r.index }), reject),
    );
  }

  /**
   * On the leader: adds `id` as a learner, waits until its log is within
   * `catchUpMarginEntries` of the leader's, then promotes it to voter; resolves once the
   * promotion is applied. A member that is already a learner is only promoted; a voter is left
   * as is. The new node should be started with `bootstrap: 'join'` (before or after this call).
   * Rejects with MemberCatchUpTimeoutError (it stays a learner), NotLeaderError (also when
   * leadership moves meanwhile), ProposalDroppedError (another change is pending), or
   * HostStoppedError.
   */
  async addMember(id: NodeId, options: AddMemberOptions = {}): Promise<void> {
    if (options.address !== undefined) this.transport.setPeer(id, options.address);
    const before = this.node.status();
    if (before.voters.includes(id)) return;
    if (!before.learners.includes(id)) await this.proposeConfChange({ type: 'addLearner', node: id });
    await this.waitForCatchUp(
      id,
      options.catchUpTimeoutMs ?? DEFAULT_CATCH_UP_TIMEOUT_MS,
      options.catchUpMarginEntries ?? DEFAULT_CATCH_UP_MARGIN_ENTRIES,
    );
    await this.proposeConfChange({ type: 'addVoter', node: id });
  }

  /**
   * On the leader: removes `id` (voter or learner) from the configuration; resolves once the
   * removal is applied here, then stops sending to it (`transport.removePeer`). Removing the
   * leader itself makes it step down. Rejects like {@link proposeConfChange}.
   */
  async removeMember(id: NodeId): Promise<void> {
    await this.proposeConfChange({ type: 'removeNode', node: id });
    if (id !== this.opts.id) this.transport.removePeer(id);
  }

  /** Polls the leader's progress of learner `id` every tick until its match is close to the last index. */
  private async waitForCatchUp(id: NodeId, timeoutMs: number, marginEntries: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.stopped) throw new HostStoppedError();
      const progress = this.node.progress();
      if (progress === undefined) throw new NotLeaderError(this.node.status().leader);
      const pr = progress[id];
      if (pr === undefined) throw new RaftConfigError(`${id} was removed while it was catching up`);
      if (pr.match + marginEntries >= this.node.status().lastIndex) return;
      if (Date.now() >= deadline) throw new MemberCatchUpTimeoutError(id, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, this.tickMs));
    }
  }

  /**
   * A linearizable read barrier: resolves with a read index once the local state machine has
   * applied it, so a read of local state then sees every write completed before this call.
   * Works on followers (the request goes to the leader). Rejects with ReadIndexTimeoutError
   * after `readTimeoutMs`, ResourceExhaustedError, or HostStoppedError.
   */
  readIndex(): Promise<number> {
    if (this.stopped || !this.started) return Promise.reject(new HostStoppedError());
    if (this.readsPending >= this.pendingReadsMax) {
      return Promise.reject(new ResourceExhaustedError('reads', this.pendingReadsMax));
    }
    return new Promise((resolve, reject) => {
      let batch = this.openReadBatch;
      if (!batch) {
        batch = this.newReadBatch();
        this.openReadBatch = batch;
      }
      batch.waiters.push({ deadlineMs: Date.now() + this.readTimeoutMs, resolve, reject });
      this.readsPending++;
      this.schedule();
    });
  }

  /** Asks the leader to hand leadership to `to` (forwarded when called on a follower). */
  transferLeadership(to: NodeId): void {
    this.guardStep(() => this.node.transferLeadership(to));
  }

  /** Starts an election now (through PreVote when enabled). */
  campaign(): void {
    this.guardStep(() => this.node.campaign());
  }

  /** The core's status. */
  status(): RaftStatus {
    return this.node.status();
  }

  /** On the leader: each member's replication progress; undefined elsewhere. */
  progress(): ReturnType<RaftNode['progress']> {
    return this.node.progress();
  }

  /** Resolves with the leader's id once one is known; rejects with LeaderWaitTimeoutError. */
  waitForLeader(timeoutMs: number): Promise<NodeId> {
    const leader = this.node.status().leader;
    if (leader !== undefined) return Promise.resolve(leader);
    if (this.stopped) return Promise.reject(new HostStoppedError());
    return new Promise((resolve, reject) => {
      const w: LeaderWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.leaderWaiters.delete(w);
          reject(new LeaderWaitTimeoutError(timeoutMs));
        }, timeoutMs),
      };
      this.leaderWaiters.add(w);
    });
  }

  stats(): RaftHostStats {
    const { readies, applyYields, fsyncs, entriesPersisted } = this.counters;
    return {
      readies,
      applyYields,
      fsyncs,
      entriesPersisted,
      entriesPerFsync: fsyncs === 0 ? 0 : entriesPersisted / fsyncs,
      applied: this.appliedIndex,
      proposalsPending: this.proposalsPending,
    };
  }

  // ---------------------------------------------------------------- inputs

  private onTick(): void {
    if (this.stopped) return;
    this.ticks++;
    this.guardStep(() => this.node.tick());
    this.checkLeaderChange();
    this.retryAndExpireReads();
    this.expireProposals();
  }

  /**
   * A proposal from a deposed leader whose index the cluster has not reached again (a quiet
   * cluster after a failover) would wait forever: past `proposalTimeoutMs` its outcome is
   * reported unknown. Waiters are in insertion (so deadline) order: stop at the first live one.
   */
  private expireProposals(): void {
    if (this.proposalsPending === 0) return;
    const now = Date.now();
    for (const [index, ws] of this.proposals) {
      if (ws[0].deadlineMs > now) return;
      this.proposals.delete(index);
      this.proposalsPending -= ws.length;
      const why = `not applied within ${this.proposalTimeoutMs} ms`;
      for (const w of ws) w.reject(new ProposalOutcomeUnknownError(index, why));
    }
  }

  private onMessage(msg: RaftMessage): void {
    if (this.stopped || msg.to !== this.opts.id) return;
    this.guardStep(() => this.node.step(msg));
  }

  /** Runs a step into the core and schedules Ready processing; a throw is a broken invariant. */
  private guardStep(step: () => void): void {
    if (this.stopped) return;
    try {
      step();
    } catch (err) {
      this.fail(err);
      return;
    }
    this.schedule();
  }

  // ---------------------------------------------------------------- the Ready loop

  /** Processing starts on the next turn of the event loop, so one turn's inputs share a Ready. */
  private schedule(): void {
    if (this.stopped || !this.started) return;
    if (this.loop !== undefined) {
      this.loopDirty = true;
      return;
    }
    if (this.loopScheduled) return;
    this.loopScheduled = true;
    setImmediate(() => {
      this.loopScheduled = false;
      if (this.loop !== undefined || this.stopped) return;
      this.loopDirty = false;
      this.loop = this.processReadies()
        .catch((err) => this.fail(err))
        .finally(() => {
          this.loop = undefined;
          if (this.loopDirty) {
            this.loopDirty = false;
            this.schedule();
          }
        });
    });
  }

  private async processReadies(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      this.loopDirty = false;
      this.submitOpenReadBatch();
      if (this.snapshotEncoded !== undefined) await this.storeSnapshot();
      if (this.stopped) return;
      if (!this.node.hasReady()) return;
      const rd = this.node.ready();
      if (!(await this.handleReady(rd))) return;
      this.node.advance(rd);
      this.settleWaiters(rd);
      this.checkLeaderChange();
      if (rd.committedEntries.length > 0 && this.node.hasReady()) {
        // More to apply: let the messages that came meanwhile (heartbeats, appends, votes) be
        // stepped first, so their answers go out with the next Ready instead of after the
        // whole backlog. While it applies, a node answers no one; a leader that hears from no
        // follower within its check-quorum window steps down (applies of 100-600 ms at 30,000
        // pods).
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.counters.applyYields++;
      }
      if (
        !this.stopped &&
        !this.snapshotEncoding &&
        this.snapshotEncoded === undefined &&
        (this.appliedIndex - this.lastSnapshotIndex >= this.snapshotEveryEntries * this.snapshotScale ||
          this.logBytesSinceSnapshot >= this.snapshotEveryLogBytes * this.snapshotScale) &&
        this.logBytesSinceSnapshot >= this.lastSnapshotBytes * this.snapshotLogBytesRatio * this.snapshotScale
      ) {
        this.startSnapshot();
      }
    }
  }

  /**
   * Handles one Ready up to (not including) `advance`. False when the host stopped meanwhile.
   * Waiters are settled only after `advance`, so a caller that sees its proposal applied also
   * sees it in `status()` (and a configuration change in force).
   */
  private async handleReady(rd: Ready): Promise<boolean> {
    this.counters.readies++;
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    // A leader whose term and vote are already durable sends its appends while its own
    // entries are being written (Raft thesis 10.2.1; etcd does the same): the core counts the
    // leader's own entries toward commit only once they are persisted (advance). Any other
    // node's messages (votes, append acknowledgements) wait for the fsync.
    const sendEarly = this.node.status().role === 'leader' && !this.changesTermOrVote(rd.hardState);
    if (sendEarly && rd.messages.length > 0) this.transport.send(rd.messages);
    // A commit-only hard-state change need not be durable (etcd's MustSync): the commit
    // index is recovered from the quorum; the storage makes it durable with the next sync.
    if (rd.mustSync) {
      await this.storage.sync();
      this.counters.fsyncs++;
      this.counters.entriesPersisted += rd.entries.length;
      if (rd.hardState) this.durableTermVote = { term: rd.hardState.term, vote: rd.hardState.vote };
      if (this.stopped) return false;
    }
    if (!sendEarly && rd.messages.length > 0) this.transport.send(rd.messages);
    if (rd.snapshot) await this.restoreSnapshot(rd.snapshot);
    await this.applyEntries(rd.committedEntries);
    return true;
  }

  private changesTermOrVote(hs: HardState | undefined): boolean {
    return (
      hs !== undefined && (hs.term !== this.durableTermVote.term || hs.vote !== this.durableTermVote.vote)
    );
  }

  private settleWaiters(rd: Ready): void {
    if (rd.snapshot) this.settleProposalsCoveredBy(rd.snapshot);
    for (const e of rd.committedEntries) this.settleProposals(e.index, e.term);
    if (rd.readStates.length > 0) this.onReadStates(rd.readStates);
    if (rd.snapshot || rd.committedEntries.length > 0) this.releaseAppliedReads();
  }

  private async restoreSnapshot(snap: Snapshot): Promise<void> {
    await this.sm.restore(snap.data);
    this.appliedIndex = snap.index;
    this.lastSnapshotIndex = snap.index;
    this.lastSnapshotBytes = snap.data.byteLength;
    this.logBytesSinceSnapshot = 0;
    this.log.info('installed snapshot', { id: this.opts.id, index: snap.index, term: snap.term });
  }

  private async applyEntries(ents: Entry[]): Promise<void> {
    if (this.sm.applyBatch !== undefined) {
      if (ents.length === 0) return;
      const data = ents.filter((e) => e.type === 'normal' && e.data.byteLength > 0);
      for (const e of data) this.logBytesSinceSnapshot += e.data.byteLength;
      const last = ents[ents.length - 1].index;
      await this.sm.applyBatch(data, last);
      this.appliedIndex = last;
      return;
    }
    for (const e of ents) {
      if (e.type === 'normal' && e.data.byteLength > 0) {
        this.logBytesSinceSnapshot += e.data.byteLength;
        const r = this.sm.apply(e);
        if (r !== undefined) await r;
      }
      this.appliedIndex = e.index;
    }
  }

  /** The next snapshot's factor on its thresholds (drawn only with a jitter: the default draws nothing). */
  private drawSnapshotScale(): void {
    if (this.snapshotJitter > 0) this.snapshotScale = 1 + this.random() * this.snapshotJitter;
  }

  /**
   * Snapshots the state machine at the applied index without stopping the Ready loop: the state
   * machine takes its cut now (the `snapshot()` contract) and may encode it over many turns
   * while entries keep being applied (a whole-state encoding takes ~1 s at 30,000 pods; done in
   * the loop it stalled heartbeats into elections). The configuration is the one in force at
   * the cut. Writing the snapshot into the storage and compacting happen in the loop, between
   * two Readies (`storeSnapshot`), so the storage is never used concurrently.
   */
  private startSnapshot(): void {
    const index = this.appliedIndex;
    const { voters, learners } = this.node.status();
    this.snapshotEncoding = true;
    this.logBytesSinceSnapshot = 0;
    this.drawSnapshotScale();
    let encoding: Promise<Uint8Array>;
    try {
      encoding = Promise.resolve(this.sm.snapshot());
    } catch (err) {
      encoding = Promise.reject(err);
    }
    encoding
      .then((data) => {
        this.snapshotEncoded = { index, data, conf: { voters: [...voters], learners: [...learners] } };
        this.lastSnapshotBytes = data.byteLength;
      })
      .catch((err: unknown) =>
        this.log.warn('snapshot failed', { id: this.opts.id, index, error: String(err) }),
      )
      .finally(() => {
        this.snapshotEncoding = false;
        this.schedule();
      });
  }

  /** Writes an encoded snapshot into the storage and compacts all but a margin before it. */
  private async storeSnapshot(): Promise<void> {
    const snap = this.snapshotEncoded;
    this.snapshotEncoded = undefined;
    // A snapshot installed from the leader meanwhile covers it.
    if (snap === undefined || snap.index <= this.storage.snapshot().index) return;
    const { index, data, conf } = snap;
    this.storage.createSnapshot(index, data, conf);
    const compactTo = index - this.compactionMarginEntries;
    if (compactTo >= this.storage.firstIndex()) this.storage.compact(compactTo);
    await this.storage.sync();
    this.counters.fsyncs++;
    this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, index);
    this.log.info('created snapshot', { id: this.opts.id, index, bytes: data.byteLength, compactTo });
  }

  // ---------------------------------------------------------------- proposals

  private addProposalWaiter(
    placed: { index: number; term: number },
    resolve: (r: { index: number; term: number }) => void,
    reject: (err: Error) => void,
  ): void {
    const w: ProposalWaiter = {
      term: placed.term,
      deadlineMs: Date.now() + this.proposalTimeoutMs,
      resolve,
      reject,
    };
    const ws = this.proposals.get(placed.index);
    // A second waiter at one index: an earlier proposal there from an older term that may still commit.
    if (ws) ws.push(w);
    else this.proposals.set(placed.index, [w]);
    this.proposalsPending++;
  }

  private settleProposals(index: number, term: number): void {
    const ws = this.proposals.get(index);
    if (!ws) return;
    this.proposals.delete(index);
    this.proposalsPending -= ws.length;
    for (const w of ws) {
      if (w.term === term) w.resolve({ index, term });
      else w.reject(new ProposalLostError(index, w.term, term));
    }
  }

  /** A snapshot replaced the log: below its index the terms are gone. */
  private settleProposalsCoveredBy(snap: Snapshot): void {
    for (const index of [...this.proposals.keys()]) {
      if (index > snap.index) continue;
      if (index === snap.index) {
        this.settleProposals(index, snap.term);
        continue;
      }
      const ws = this.proposals.get(index)!;
      this.proposals.delete(index);
      this.proposalsPending -= ws.length;
      const why = `a snapshot at ${snap.index} replaced the log`;
      for (const w of ws) w.reject(new ProposalOutcomeUnknownError(index, why));
    }
  }

  // ---------------------------------------------------------------- reads

  private newReadBatch(): ReadBatch {
    this.readSeq = (this.readSeq + 1) >>> 0;
    const ctx = new Uint8Array(READ_CTX_BYTES);
    const view = new DataView(ctx.buffer);
    view.setUint32(0, this.readIncarnation);
    view.setUint32(4, this.readSeq);
    return { seq: this.readSeq, ctx, waiters: [], index: undefined, sentAtTick: this.ticks };
  }

  private submitOpenReadBatch(): void {
    const batch = this.openReadBatch;
    if (!batch) return;
    this.openReadBatch = undefined;
    this.readBatches.set(batch.seq, batch);
    batch.sentAtTick = this.ticks;
    this.node.readIndex(batch.ctx);
  }

  private onReadStates(states: ReadState[]): void {
    for (const rs of states) {
      if (rs.ctx.byteLength !== READ_CTX_BYTES) continue;
      const view = new DataView(rs.ctx.buffer, rs.ctx.byteOffset, READ_CTX_BYTES);
      if (view.getUint32(0) !== this.readIncarnation) continue;
      const batch = this.readBatches.get(view.getUint32(4));
      if (!batch || batch.index !== undefined) continue; // unknown, or a duplicate answer
      batch.index = rs.index;
      if (rs.index <= this.appliedIndex) this.resolveReadBatch(batch);
    }
  }

  private releaseAppliedReads(): void {
    for (const batch of this.readBatches.values()) {
      if (batch.index !== undefined && batch.index <= this.appliedIndex) this.resolveReadBatch(batch);
    }
  }

  private resolveReadBatch(batch: ReadBatch): void {
    this.readBatches.delete(batch.seq);
    this.readsPending -= batch.waiters.length;
    const index = batch.index!;
    for (const w of batch.waiters) w.resolve(index);
  }

  /**
   * The core drops a read it cannot route (no leader) and a lost message is never resent, so
   * unanswered reads are asked again every election timeout and whenever the leader changes.
   * Any answer to a request made after the read began is a valid read point.
   */
  private retryAndExpireReads(): void {
    if (this.readBatches.size === 0) return;
    const now = Date.now();
    let resent = false;
    for (const batch of this.readBatches.values()) {
      const live = batch.waiters.filter((w) => w.deadlineMs > now);
      if (live.length < batch.waiters.length) {
        for (const w of batch.waiters)
          if (w.deadlineMs <= now) w.reject(new ReadIndexTimeoutError(this.readTimeoutMs));
        this.readsPending -= batch.waiters.length - live.length;
        batch.waiters = live;
      }
      if (batch.waiters.length === 0) {
        this.readBatches.delete(batch.seq);
      } else if (batch.index === undefined && this.ticks - batch.sentAtTick >= this.electionTicks) {
        batch.sentAtTick = this.ticks;
        this.node.readIndex(batch.ctx);
        resent = true;
      }
    }
    if (resent) this.schedule();
  }

  private resendUnansweredReads(): void {
    for (const batch of this.readBatches.values()) {
      if (batch.index !== undefined) continue;
      batch.sentAtTick = this.ticks;
      this.node.readIndex(batch.ctx);
    }
    this.schedule();
  }

  // ---------------------------------------------------------------- leadership

  private checkLeaderChange(): void {
    const { leader, term } = this.node.status();
    if (leader === this.lastLeader && term === this.lastTerm) return;
    const leaderChanged = leader !== this.lastLeader;
    this.lastLeader = leader;
    this.lastTerm = term;
    if (leaderChanged) {
      this.log.info('leader changed', { id: this.opts.id, leader, term });
      if (leader !== undefined) {
        for (const w of this.leaderWaiters) {
          clearTimeout(w.timer);
          w.resolve(leader);
        }
        this.leaderWaiters.clear();
        this.resendUnansweredReads();
      }
    }
    try {
      this.opts.onLeaderChange?.(leader, term);
    } catch (err) {
      this.log.error('onLeaderChange threw', { id: this.opts.id, err });
    }
  }

  // ---------------------------------------------------------------- stopping

  /** Stops the timer and rejects everything pending with `err`. */
  private halt(err: Error): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const ws of this.proposals.values()) for (const w of ws) w.reject(err);
    this.proposals.clear();
    this.proposalsPending = 0;
    const batches = [...this.readBatches.values()];
    if (this.openReadBatch) batches.push(this.openReadBatch);
    for (const b of batches) for (const w of b.waiters) w.reject(err);
    this.readBatches.clear();
    this.openReadBatch = undefined;
    this.readsPending = 0;
    for (const w of this.leaderWaiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.leaderWaiters.clear();
  }

  /** A broken invariant (storage, state machine or core failure): crash loudly. */
  private fail(err: unknown): void {
    this.log.error('raft host failed: invariant violation, crashing', { id: this.opts.id, err });
    if (!this.stopped) this.halt(new HostStoppedError({ cause: err }));
    process.nextTick(() => {
      throw err;
    });
  }
}

/**
 * Checks the storage against the bootstrap mode and, for a founding member on an empty
 * storage, writes the bootstrap entries and hard state (not yet synced). Returns whether it
 * wrote them.
 */
function prepareBootstrap(opts: RaftHostOptions): boolean {
  const storage = opts.storage;
  const learners = opts.learners ?? [];
  const members = [...opts.voters, ...learners];
  if (new Set(members).size !== members.length) {
    throw new RaftConfigError('bootstrap voters and learners must be distinct');
  }
  if (opts.bootstrap === 'join' && members.length > 0) {
    throw new RaftConfigError("bootstrap 'join' takes no voters or learners: they come from the leader");
  }
  if (opts.bootstrap === 'initial' && (opts.voters.length === 0 || !members.includes(opts.id))) {
    throw new RaftConfigError("bootstrap 'initial' needs voters, and this node among the voters or learners");
  }
  const { hardState } = storage.initialState();
  const hasSnapshot = storage.snapshot().index > 0;
  // Nothing is sent before the bootstrap sync, so a term-0 storage without a snapshot never took
  // part in the cluster: entries in it can only be a bootstrap torn by a crash, rewritten here.
  if (opts.bootstrap === 'initial' && hardState.term === 0 && !hasSnapshot) {
    const entries: Entry[] = [
      ...opts.voters.map((node): ConfChange => ({ type: 'addVoter', node })),
      ...learners.map((node): ConfChange => ({ type: 'addLearner', node })),
    ].map((cc, i) => ({ index: i + 1, term: 1, type: 'conf', data: encodeConfChange(cc) }));
    storage.append(entries);
    storage.setHardState({ term: 1, commit: entries.length });
    return true;
  }
  if (!hasSnapshot && storage.lastIndex() > 0 && storage.entries(1, 2)[0].type !== 'conf') {
    throw new RaftConfigError(
      'the storage was initialized without bootstrap entries: start it without the bootstrap option',
    );
  }
  return false;
}

import { CompactedError, NotLeaderError, ProposalDroppedError, RaftConfigError } from './errors.js';
import { RaftLog } from './log.js';
import { type Progress, type ProgressState, ProgressTracker } from './progress.js';
import type { RaftStorage } from './storage.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  MessageType,
  NodeId,
  RaftMessage,
  RaftStatus,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotChunk,
} from './types.js';

/** Configuration of a {@link RaftNode}. Tick counts are in calls to `tick()`. */
export interface RaftConfig {
  id: NodeId;
  /** Voters at bootstrap; ignored when the storage holds a snapshot with a configuration. */
  voters: NodeId[];
  learners?: NodeId[];
  /** Election timeout base: the actual timeout is randomized in [electionTicks, 2 * electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** The only source of randomness, in [0, 1). */
  random: () => number;
  storage: RaftStorage;
  /** Append messages in flight per follower (the flow-control window). Default 256. */
  maxInflight?: number;
  /** Byte budget of one append message (at least one entry is always sent); also the snapshot chunk size. Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Bytes of proposals a leader holds uncommitted before it drops new ones. Default 64 MiB. */
  maxUncommittedBytes?: number;
  /** Byte budget of committed entries handed out in one Ready. Default 64 MiB. */
  maxApplyingBytes?: number;
  /** Index already applied by the caller. Default: the storage's snapshot index. */
  applied?: number;
  /** 'safe' (default): ReadIndex confirms leadership by a heartbeat round. 'lease' needs checkQuorum. */
  readOnly?: 'safe' | 'lease';
}

/** The answer of `propose`: where the entry landed. `dropped` marks a conf change turned into an empty entry. */
export interface ProposalResult {
  index: number;
  term: number;
  dropped?: boolean;
}

/** A leader's view of one member's replication; see {@link RaftNode.progress}. */
export interface FollowerProgress {
  /** Highest index known to be in the member's log. */
  match: number;
  /** Next index the leader sends it. */
  next: number;
  state: ProgressState;
  isLearner: boolean;
}

interface PendingRead {
  index: number;
  ctx: Uint8Array;
  from: NodeId;
  seq: number;
}

interface SnapshotReceive {
  index: number;
  term: number;
  size: number;
  received: number;
  chunks: Uint8Array[];
}

const confEncoder = new TextEncoder();
const confDecoder = new TextDecoder();

/** Encodes a configuration change as the data of a `conf` entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return confEncoder.encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

/** Decodes a `conf` entry's data. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const cc = JSON.parse(confDecoder.decode(data)) as ConfChange;
  if (!['addVoter', 'addLearner', 'removeNode'].includes(cc.type) || typeof cc.node !== 'string') {
    throw new Error(`raft invariant: malformed configuration change ${confDecoder.decode(data)}`);
  }
  return cc;
}

const EMPTY = new Uint8Array(0);
const SNAPSHOT_CHUNKS_IN_FLIGHT_MAX = 8;

/**
 * The Raft consensus core: a pure state machine in the style of etcd-io/raft's RawNode.
 * It never touches a clock, socket or disk: time is `tick()`, input is `step(msg)` and
 * `propose(data)`, output is `ready()`, which the host persists, sends and applies before
 * calling `advance(rd)`.
 */
export class RaftNode {
  readonly id: NodeId;
  private term = 0;
  private vote: NodeId | undefined;
  private lead: NodeId | undefined;
  private role: Role = 'follower';
  private readonly log: RaftLog;
  private readonly tracker: ProgressTracker;

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly random: () => number;
  private readonly maxSizePerMsg: number;
  private readonly maxUncommittedBytes: number;
  private readonly readOnly: 'safe' | 'lease';

  private votes = new Map<NodeId, boolean>();
  private msgs: RaftMessage[] = [];
  private readStates: ReadState[] = [];
  private leadTransferee: NodeId | undefined;
  private pendingConfIndex = 0;
  /** Leader: a transfer was started this term, so lease reads are no longer safe. */
  private leaseRevoked = false;
  private uncommittedBytes = 0;

  /** Leader: entries or commit changed since the last broadcast. */
  private appendBroadcastPending = false;
  private commitBroadcastPending = false;
  /** Leader: ReadIndex rounds; reads wait for a quorum to acknowledge a heartbeat round >= theirs. */
  private readSeq = 0;
  private readBroadcastPending = false;
  private pendingReads: PendingRead[] = [];
  /** Leader: reads that arrived before an entry of this term committed. */
  private readsAwaitingTermCommit: Array<{ ctx: Uint8Array; from: NodeId }> = [];

  private snapRecv: SnapshotReceive | undefined;
  private prevHardState: HardState;

  constructor(cfg: RaftConfig) {
    validateConfig(cfg);
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTicks;
    this.heartbeatTimeout = cfg.heartbeatTicks;
    this.preVote = cfg.preVote;
    this.checkQuorum = cfg.checkQuorum;
    this.random = cfg.random;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.maxUncommittedBytes = cfg.maxUncommittedBytes ?? 64 * 1024 * 1024;
    this.readOnly = cfg.readOnly ?? 'safe';
    this.log = new RaftLog(cfg.storage, cfg.maxApplyingBytes ?? 64 * 1024 * 1024);
    this.tracker = new ProgressTracker(cfg.maxInflight ?? 256);

    const { hardState, conf } = cfg.storage.initialState();
    const snapIndex = cfg.storage.snapshot().index;
    const bootstrap = conf.voters.length > 0 ? conf : { voters: cfg.voters, learners: cfg.learners ?? [] };
    this.tracker.setConfig(bootstrap.voters, bootstrap.learners, this.log.lastIndex() + 1);

    this.term = hardState.term;
    this.vote = hardState.vote;
    const lastIndex = this.log.lastIndex();
    if (hardState.commit > lastIndex) {
      throw new RaftConfigError(
        `hard state commit ${hardState.commit} is beyond the last index ${lastIndex}`,
      );
    }
    const applied = cfg.applied ?? snapIndex;
    if (applied < snapIndex || applied > lastIndex) {
      throw new RaftConfigError(`applied ${applied} is out of range [${snapIndex}, ${lastIndex}]`);
    }
    // The commit record need not be fsynced, so an applied index beyond it is still committed.
    this.log.committed = Math.max(hardState.commit, applied, snapIndex);
    this.log.appliedTo(applied);
    this.replayConfChanges(snapIndex + 1, applied);
    this.prevHardState = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.becomeFollower(this.term, undefined);
  }

  // ---------------------------------------------------------------- public API

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now (through PreVote when enabled). Learners and leaders ignore it. */
  campaign(): void {
    this.hup(false);
  }

  /**
   * Appends `data` as a new entry on the leader.
   * @throws NotLeaderError on a non-leader; ProposalDroppedError during a transfer or over the uncommitted limit.
   */
  propose(data: Uint8Array): ProposalResult {
    this.checkCanPropose();
    const e: Entry = { index: this.log.lastIndex() + 1, term: this.term, type: 'normal', data };
    if (!this.increaseUncommitted(data.byteLength)) {
      throw new ProposalDroppedError(`more than ${this.maxUncommittedBytes} uncommitted bytes`);
    }
    this.appendEntry(e);
    return { index: e.index, term: e.term };
  }

  /**
   * Proposes a single-server configuration change. While another change is pending
   * (appended but not yet applied), the change is replaced by an empty entry and the
   * result is marked `dropped`.
   */
  proposeConfChange(cc: ConfChange): ProposalResult {
    this.checkCanPropose();
    if (!['addVoter', 'addLearner', 'removeNode'].includes(cc.type) || !cc.node) {
      throw new RaftConfigError(`invalid configuration change ${JSON.stringify(cc)}`);
    }
    const index = this.log.lastIndex() + 1;
    if (this.pendingConfIndex > this.log.applied) {
      this.appendEntry({ index, term: this.term, type: 'normal', data: EMPTY });
      return { index, term: this.term, dropped: true };
    }
    this.appendEntry({ index, term: this.term, type: 'conf', data: encodeConfChange(cc) });
    this.pendingConfIndex = index;
    return { index, term: this.term };
  }

  /**
   * Requests a linearizable read point. The answer `{ index, ctx }` appears in a later
   * `ready().readStates`; the caller reads once it has applied `index`. Followers forward
   * the request to the leader; without a known leader the request is dropped.
   */
  readIndex(ctx: Uint8Array): void {
    if (this.role === 'leader') {
      this.leaderReadIndex(ctx, this.id);
    } else if (this.lead !== undefined) {
      this.send({ type: 'readIndex', to: this.lead, term: 0, context: ctx });
    }
  }

  /** Hands leadership to `to` (forwarded to the leader when called on a follower). */
  transferLeadership(to: NodeId): void {
    if (this.role === 'leader') this.handleTransferLeader(to);
    else if (this.lead !== undefined)
      this.send({ type: 'transferLeader', to: this.lead, term: 0, target: to });
  }

  /** Feeds one message from a peer into the state machine. */
  step(m: RaftMessage): void {
    if (m.term === 0) {
      // Forwarded requests carry no term.
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease =
          this.checkQuorum && this.lead !== undefined && this.electionElapsed < this.electionTimeout;
        if (inLease && !m.transfer) return; // leader stickiness: ignore the disruptive candidate
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // A pre-vote does not change terms; a granted pre-vote answers with our future term.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, undefined);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // Tell a deposed leader (or a node freed from a partition) about the newer term.
        this.send({ type: 'appResp', to: m.from, reject: true });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'precandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
      default:
        assertNever(this.role);
    }
  }

  /** Whether `ready()` has anything for the host. */
  hasReady(): boolean {
    this.flushBroadcasts();
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.unstable.hasNextEntries() ||
      this.log.unstable.nextSnapshot() !== undefined ||
      this.log.hasNextCommittedEntries() ||
      !sameHardState(this.hardState(), this.prevHardState)
    );
  }

  /** Collects what must be persisted, sent and applied. Call `advance(rd)` when done. */
  ready(): Ready {
    this.flushBroadcasts();
    const unstable = this.log.unstable;
    const snapshot = unstable.nextSnapshot();
    const entries = unstable.nextEntries();
    const hs = this.hardState();
    const hardStateChanged = !sameHardState(hs, this.prevHardState);
    const rd: Ready = {
      entries,
      committedEntries: this.log.nextCommittedEntries(),
      messages: this.msgs,
      readStates: this.readStates,
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hs.term !== this.prevHardState.term ||
        hs.vote !== this.prevHardState.vote,
    };
    if (hardStateChanged) rd.hardState = hs;
    if (snapshot) rd.snapshot = snapshot;
    unstable.acceptInProgress();
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) this.log.applying = lastCommitted.index;
    this.prevHardState = hs;
    this.msgs = [];
    this.readStates = [];
    return rd;
  }

  /** Acknowledges that `rd` was persisted, sent and applied. */
  advance(rd: Ready): void {
    const last = rd.entries[rd.entries.length - 1];
    if (last) {
      this.log.unstable.stableTo(last.index, last.term);
      if (this.role === 'leader' && this.log.matchTerm(last.index, last.term)) {
        this.leaderSelfAck(Math.min(last.index, this.log.persistedIndex()));
      }
    }
    if (rd.snapshot) {
      this.log.unstable.stableSnapTo(rd.snapshot.index);
      this.log.appliedTo(rd.snapshot.index);
    }
    for (const e of rd.committedEntries) {
      if (e.type === 'conf') this.applyConfChange(decodeConfChange(e.data));
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) {
      this.log.appliedTo(lastApplied.index);
      if (this.role === 'leader') this.reduceUncommitted(rd.committedEntries);
    }
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      voters: [...this.tracker.voters].sort(),
      learners: [...this.tracker.learners].sort(),
    };
  }

  /** The configuration in force (for the host's snapshots). */
  confState(): ConfState {
    return { voters: [...this.tracker.voters].sort(), learners: [...this.tracker.learners].sort() };
  }

  /**
   * The leader's view of each member's replication (itself included), for deciding when a
   * learner has caught up. Undefined on a non-leader, whose view would be stale.
   */
  progress(): Record<NodeId, FollowerProgress> | undefined {
    if (this.role !== 'leader') return undefined;
    const out: Record<NodeId, FollowerProgress> = {};
    for (const [id, pr] of this.tracker.progress) {
      out[id] = { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner };
    }
    return out;
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = undefined;
    }
    this.lead = undefined;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
    this.leadTransferee = undefined;
    this.votes = new Map();
    this.tracker.resetProgress(this.log.lastIndex() + 1);
    const self = this.tracker.progress.get(this.id);
    if (self) self.match = this.log.persistedIndex();
    this.pendingConfIndex = 0;
    this.leaseRevoked = false;
    this.uncommittedBytes = 0;
    this.appendBroadcastPending = false;
    this.commitBroadcastPending = false;
    this.readSeq = 0;
    this.readBroadcastPending = false;
    this.pendingReads = [];
    this.readsAwaitingTermCommit = [];
  }

  private becomeFollower(term: number, lead: NodeId | undefined): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    this.role = 'precandidate';
    this.votes = new Map();
    this.lead = undefined;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    const self = this.tracker.progress.get(this.id);
    if (self) self.becomeReplicate();
    if (self) self.match = this.log.persistedIndex();
    // Conservatively treat any entry in the log as a possibly pending configuration change.
    this.pendingConfIndex = this.log.lastIndex();
    this.appendEntry({ index: this.log.lastIndex() + 1, term: this.term, type: 'normal', data: EMPTY });
  }

  /**
   * A voter may campaign, except while a received snapshot is not yet persisted and applied
   * (as etcd's `promotable`): its log below the snapshot is gone but `applied` still lags.
   */
  private promotable(): boolean {
    return this.tracker.voters.has(this.id) && this.log.unstable.snapshot === undefined;
  }

  // ---------------------------------------------------------------- ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.tracker.quorumActive(this.id)) {
        this.becomeFollower(this.term, undefined);
        return;
      }
      this.leadTransferee = undefined; // a transfer that did not finish in an election timeout is aborted
    }
    for (const [id, pr] of this.tracker.progress) {
      if (pr.state === 'snapshot' && pr.transfer && ++pr.transfer.idleTicks >= this.electionTimeout) {
        pr.transfer.idleTicks = 0;
        pr.transfer.sent = pr.transfer.acked; // resend what was not acknowledged
        pr.transfer.emptySent = false;
        this.sendSnapshotChunks(id, pr);
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  // ---------------------------------------------------------------- elections

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.hasUnappliedConfChange()) return; // campaigning now could use a stale configuration
    if (this.preVote && !transfer) this.startCampaign('pre', false);
    else this.startCampaign('election', transfer);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    let lo = this.log.applied + 1;
    const hi = this.log.committed + 1;
    while (lo < hi) {
      const ents = this.log.slice(lo, hi, 16 * 1024 * 1024);
      if (ents.some((e) => e.type === 'conf')) return true;
      lo += ents.length;
    }
    return false;
  }

  private startCampaign(kind: 'pre' | 'election', transfer: boolean): void {
    let voteType: MessageType;
    let term: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    this.votes.set(this.id, true);
    if (this.tracker.tally(this.votes) === 'won') {
      if (kind === 'pre') this.startCampaign('election', false);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      const m: RaftMessage = {
        type: voteType,
        from: this.id,
        to: id,
        term,
        index: lastIndex,
        logTerm: lastTerm,
      };
      if (transfer) m.transfer = true;
      this.msgs.push(m);
    }
  }

  private handleVoteRequest(m: RaftMessage): void {
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote =
      this.vote === m.from ||
      (this.vote === undefined && this.lead === undefined) ||
      (m.type === 'preVote' && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
      this.send({ type: respType, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  // ---------------------------------------------------------------- per-role steps

  private stepLeader(m: RaftMessage): void {
    switch (m.type) {
      case 'appResp':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapResp':
        this.handleSnapshotResponse(m);
        return;
      case 'readIndex':
        this.leaderReadIndex(m.context ?? EMPTY, m.from);
        return;
      case 'transferLeader':
        if (m.target !== undefined) this.handleTransferLeader(m.target);
        return;
      default:
        return; // votes were handled; anything else from this term is stale or a duplicate
    }
  }

  private stepCandidate(m: RaftMessage): void {
    const myVoteResp = this.role === 'precandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshotChunk(m);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        if (m.type !== myVoteResp) return;
        this.votes.set(m.from, !m.reject);
        const result = this.tracker.tally(this.votes);
        if (result === 'won') {
          if (this.role === 'precandidate') this.startCampaign('election', false);
          else {
            this.becomeLeader();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, undefined);
        }
        return;
      }
      default:
        return; // timeoutNow, read requests and forwarded transfers have no leader to go to
    }
  }

  private stepFollower(m: RaftMessage): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshotChunk(m);
        return;
      case 'timeoutNow':
        this.hup(true);
        return;
      case 'readIndex':
        // A request that reached a former leader: forward it on the requester's behalf (as
        // etcd does, `from` stays the requester) so the leader answers the requester itself.
        if (this.lead !== undefined) this.msgs.push({ ...m, to: this.lead, term: 0 });
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index ?? 0, ctx: m.context ?? EMPTY });
        return;
      case 'transferLeader':
        if (this.lead !== undefined)
          this.send({ type: 'transferLeader', to: this.lead, term: 0, target: m.target });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppend(m: RaftMessage): void {
    const prevIndex = m.index ?? 0;
    if (prevIndex < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(prevIndex, m.logTerm ?? 0, m.commit ?? 0, m.entries ?? []);
    if (lastNew !== undefined) {
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(prevIndex, this.log.lastIndex()), m.logTerm ?? 0);
    this.send({
      type: 'appResp',
      to: m.from,
      index: prevIndex,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  private handleHeartbeat(m: RaftMessage): void {
    this.log.commitTo(m.commit ?? 0);
    const resp: Omit<RaftMessage, 'from' | 'term'> & { term?: number } = {
      type: 'heartbeatResp',
      to: m.from,
    };
    if (m.seq !== undefined) resp.seq = m.seq;
    this.send(resp);
  }

  private handleSnapshotChunk(m: RaftMessage): void {
    const c = m.snapshot;
    if (!c) return;
    if (c.index <= this.log.committed) {
      this.snapRecv = undefined;
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    let buf = this.snapRecv;
    if (!buf || buf.index !== c.index || buf.term !== c.term) {
      if (c.offset !== 0) {
        this.send({ type: 'snapResp', to: m.from, index: c.index, offset: 0 });
        return;
      }
      buf = { index: c.index, term: c.term, size: c.size, received: 0, chunks: [] };
      this.snapRecv = buf;
    }
    if (c.offset === buf.received) {
      buf.chunks.push(c.data);
      buf.received += c.data.byteLength;
    }
    if (!(c.done && buf.received === buf.size)) {
      this.send({ type: 'snapResp', to: m.from, index: c.index, offset: buf.received });
      return;
    }
    this.snapRecv = undefined;
    const snap: Snapshot = {
      index: c.index,
      term: c.term,
      voters: [...c.voters],
      learners: [...c.learners],
      data: concatChunks(buf.chunks, buf.size),
    };
    if (this.restore(snap)) {
      this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
    }
  }

  /** Installs a leader's snapshot; false when it is not newer than what this node has committed. */
  private restore(s: Snapshot): boolean {
    if (s.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.index, s.term)) {
      this.log.commitTo(s.index); // the log already holds it: fast-forward the commit instead
      return false;
    }
    this.log.restore(s);
    this.tracker.setConfig(s.voters, s.learners, this.log.lastIndex() + 1);
    return true;
  }

  // ---------------------------------------------------------------- leader handlers

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (this.leadTransferee !== undefined) {
      throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} in progress`);
    }
    if (!this.tracker.progress.has(this.id)) throw new ProposalDroppedError('this leader was removed');
  }

  private appendEntry(e: Entry): void {
    this.log.append([e]);
    this.appendBroadcastPending = true;
    // A single voter commits as soon as its own entries are persisted (in advance()).
  }

  private increaseUncommitted(bytes: number): boolean {
    if (bytes > 0 && this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.maxUncommittedBytes) {
      return false;
    }
    this.uncommittedBytes += bytes;
    return true;
  }

  private reduceUncommitted(ents: Entry[]): void {
    let bytes = 0;
    for (const e of ents) bytes += e.data.byteLength;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
  }

  private leaderSelfAck(index: number): void {
    const self = this.tracker.progress.get(this.id);
    if (!self) return;
    if (self.maybeUpdate(index)) this.maybeCommitAndBroadcast();
  }

  private maybeCommitAndBroadcast(): boolean {
    if (!this.log.maybeCommit(this.tracker.committed(), this.term)) return false;
    this.commitBroadcastPending = true;
    this.releaseReadsAwaitingTermCommit();
    return true;
  }

  private handleAppendResponse(m: RaftMessage): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    const index = m.index ?? 0;
    if (m.reject) {
      let hint = m.rejectHint ?? index;
      if ((m.logTerm ?? 0) > 0) hint = this.log.findConflictByTerm(hint, m.logTerm ?? 0).index;
      if (pr.maybeDecrTo(index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, pr, true);
      }
      return;
    }
    if (pr.maybeUpdate(index)) {
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
        // The follower has the snapshot (or enough of the log): replicate from its match.
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') pr.inflights.freeLE(index);
      this.maybeCommitAndBroadcast();
      this.sendAppendsWhileOpen(m.from, pr);
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
        this.sendTimeoutNow(m.from);
      }
    } else if (pr.state === 'snapshot' && index >= pr.pendingSnapshot) {
      pr.becomeProbe();
      this.sendAppend(m.from, pr, true);
    }
  }

  private handleHeartbeatResponse(m: RaftMessage): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, pr, true);
    if (m.seq !== undefined && m.seq > pr.readSeqAcked) {
      pr.readSeqAcked = m.seq;
      this.releaseConfirmedReads();
    }
  }

  private handleSnapshotResponse(m: RaftMessage): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    const t = pr.transfer;
    if (pr.state !== 'snapshot' || !t || t.snap.index !== m.index) return;
    const offset = m.offset ?? 0;
    t.idleTicks = 0;
    if (offset > t.acked) {
      t.acked = offset;
      t.rewoundAt = -1;
    } else if (t.rewoundAt !== offset) {
      // No progress: the follower lacks the bytes from `offset` (a lost chunk, or it restarted).
      // Later chunks already in flight repeat this answer; rewind only once for it.
      t.rewoundAt = offset;
      t.acked = offset;
      t.sent = offset;
      t.emptySent = false;
    }
    this.sendSnapshotChunks(m.from, pr);
  }

  private handleTransferLeader(target: NodeId): void {
    const pr = this.tracker.progress.get(target);
    if (!pr || pr.isLearner) return; // only voters can lead
    if (this.leadTransferee !== undefined) {
      if (this.leadTransferee === target) return;
      this.leadTransferee = undefined;
    }
    if (target === this.id) return;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    this.leadTransferee = target;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target, pr, true);
  }

  /**
   * Tells `to` to campaign now. Its votes break the followers' leases, so this leader stops
   * serving lease reads for the rest of its term (they fall back to a heartbeat round).
   */
  private sendTimeoutNow(to: NodeId): void {
    this.leaseRevoked = true;
    this.send({ type: 'timeoutNow', to });
  }

  // ---------------------------------------------------------------- replication

  /** Sends the appends and commit updates that accumulated since the last Ready. */
  private flushBroadcasts(): void {
    if (this.role !== 'leader') {
      this.appendBroadcastPending = false;
      this.commitBroadcastPending = false;
      this.readBroadcastPending = false;
      return;
    }
    if (this.appendBroadcastPending || this.commitBroadcastPending) {
      const sendIfEmpty = this.commitBroadcastPending;
      this.appendBroadcastPending = false;
      this.commitBroadcastPending = false;
      for (const [id, pr] of this.tracker.progress) {
        if (id === this.id) continue;
        if (this.sendAppend(id, pr, sendIfEmpty)) this.sendAppendsWhileOpen(id, pr);
      }
    }
    if (this.readBroadcastPending) this.bcastHeartbeat();
  }

  private sendAppendsWhileOpen(to: NodeId, pr: Progress): void {
    while (pr.state === 'replicate' && this.sendAppend(to, pr, false)) {
      // fill the inflight window
    }
  }

  /** Sends one append (or starts a snapshot) to `to`. Returns whether an append was sent. */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.entries(pr.next, this.maxSizePerMsg);
    } catch (err) {
      if (err instanceof CompactedError) {
        this.startSnapshot(to, pr);
        return false;
      }
      throw err;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.msgs.push({
      type: 'app',
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    });
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1].index : prevIndex);
    return true;
  }

  private startSnapshot(to: NodeId, pr: Progress): void {
    const snap = this.log.storage.snapshot();
    if (snap.index === 0)
      throw new Error('raft invariant: the log is compacted but the storage has no snapshot');
    pr.becomeSnapshot(snap);
    this.sendSnapshotChunks(to, pr);
  }

  private sendSnapshotChunks(to: NodeId, pr: Progress): void {
    const t = pr.transfer;
    if (!t) return;
    const size = t.snap.data.byteLength;
    const chunkBytes = Math.max(1, this.maxSizePerMsg);
    const windowBytes = chunkBytes * SNAPSHOT_CHUNKS_IN_FLIGHT_MAX;
    if (size === 0) {
      if (!t.emptySent) this.send({ type: 'snap', to, snapshot: this.snapshotChunk(t.snap, 0, 0) });
      t.emptySent = true;
      return;
    }
    while (t.sent < size && t.sent - t.acked < windowBytes) {
      const end = Math.min(size, t.sent + chunkBytes);
      this.send({ type: 'snap', to, snapshot: this.snapshotChunk(t.snap, t.sent, end) });
      t.sent = end;
    }
  }

  private snapshotChunk(snap: Snapshot, from: number, end: number): SnapshotChunk {
    return {
      index: snap.index,
      term: snap.term,
      voters: snap.voters,
      learners: snap.learners,
      size: snap.data.byteLength,
      offset: from,
      data: snap.data.subarray(from, end),
      done: end === snap.data.byteLength,
    };
  }

  private bcastHeartbeat(): void {
    this.readBroadcastPending = false;
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      const m: RaftMessage = {
        type: 'heartbeat',
        from: this.id,
        to: id,
        term: this.term,
        commit: Math.min(pr.match, this.log.committed),
      };
      if (this.readSeq > 0) m.seq = this.readSeq;
      this.msgs.push(m);
    }
  }

  // ---------------------------------------------------------------- reads

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private leaderReadIndex(ctx: Uint8Array, from: NodeId): void {
    // Even a single voter waits for an entry of its term: after a restart its commit index
    // (persisted without fsync) may lag entries that were committed and acknowledged.
    if (!this.committedEntryInCurrentTerm()) {
      this.readsAwaitingTermCommit.push({ ctx, from });
      return;
    }
    if (this.tracker.isSingleton(this.id)) {
      this.answerRead(this.log.committed, ctx, from);
      return;
    }
    if (this.readOnly === 'lease' && !this.leaseRevoked) {
      this.answerRead(this.log.committed, ctx, from);
      return;
    }
    if (!this.readBroadcastPending) {
      this.readSeq++;
      this.readBroadcastPending = true;
      const self = this.tracker.progress.get(this.id);
      if (self) self.readSeqAcked = this.readSeq;
    }
    this.pendingReads.push({ index: this.log.committed, ctx, from, seq: this.readSeq });
  }

  private releaseReadsAwaitingTermCommit(): void {
    if (this.readsAwaitingTermCommit.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const waiting = this.readsAwaitingTermCommit;
    this.readsAwaitingTermCommit = [];
    for (const r of waiting) this.leaderReadIndex(r.ctx, r.from);
  }

  private releaseConfirmedReads(): void {
    const confirmed = this.tracker.readSeqConfirmed();
    let n = 0;
    while (n < this.pendingReads.length && this.pendingReads[n].seq <= confirmed) {
      const r = this.pendingReads[n++];
      this.answerRead(r.index, r.ctx, r.from);
    }
    if (n > 0) this.pendingReads = this.pendingReads.slice(n);
  }

  private answerRead(index: number, ctx: Uint8Array, from: NodeId): void {
    if (from === this.id) this.readStates.push({ index, ctx });
    else this.send({ type: 'readIndexResp', to: from, index, context: ctx });
  }

  // ---------------------------------------------------------------- configuration

  private replayConfChanges(lo: number, hi: number): void {
    while (lo <= hi) {
      const ents = this.log.slice(lo, hi + 1, 16 * 1024 * 1024);
      if (ents.length === 0) break;
      for (const e of ents) if (e.type === 'conf') this.changeConfig(decodeConfChange(e.data));
      lo += ents.length;
    }
  }

  private changeConfig(cc: ConfChange): void {
    const voters = new Set(this.tracker.voters);
    const learners = new Set(this.tracker.learners);
    switch (cc.type) {
      case 'addVoter':
        learners.delete(cc.node);
        voters.add(cc.node);
        break;
      case 'addLearner':
        if (!voters.has(cc.node)) learners.add(cc.node); // demoting a voter is not a single-server change
        break;
      case 'removeNode':
        voters.delete(cc.node);
        learners.delete(cc.node);
        break;
      default:
        assertNever(cc.type);
    }
    if (voters.size === 0) return; // never remove the last voter
    this.tracker.setConfig(voters, learners, this.log.lastIndex());
  }

  private applyConfChange(cc: ConfChange): void {
    this.changeConfig(cc);
    if (this.role !== 'leader') return;
    if (!this.tracker.voters.has(this.id)) {
      this.becomeFollower(this.term, undefined); // a removed leader steps down
      return;
    }
    if (this.leadTransferee !== undefined && !this.tracker.voters.has(this.leadTransferee)) {
      this.leadTransferee = undefined;
    }
    this.maybeCommitAndBroadcast();
    this.appendBroadcastPending = true; // new members need appends
  }

  // ---------------------------------------------------------------- plumbing

  private hardState(): HardState {
    const hs: HardState = { term: this.term, commit: this.log.committed };
    if (this.vote !== undefined) hs.vote = this.vote;
    return hs;
  }

  private send(m: Omit<RaftMessage, 'from' | 'term'> & { term?: number }): void {
    const msg = m as RaftMessage;
    msg.from = this.id;
    if (msg.term === undefined) msg.term = this.term;
    this.msgs.push(msg);
  }
}

function validateConfig(cfg: RaftConfig): void {
  if (!cfg.id) throw new RaftConfigError('id is required');
  if (!(cfg.electionTicks > 0) || !(cfg.heartbeatTicks > 0)) {
    throw new RaftConfigError('electionTicks and heartbeatTicks must be positive');
  }
  if (cfg.electionTicks <= cfg.heartbeatTicks) {
    throw new RaftConfigError('electionTicks must be greater than heartbeatTicks');
  }
  if ((cfg.maxInflight ?? 256) < 1) throw new RaftConfigError('maxInflight must be at least 1');
  if (cfg.readOnly === 'lease' && !cfg.checkQuorum) {
    throw new RaftConfigError('lease-based reads need checkQuorum');
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function concatChunks(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0].slice();
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function assertNever(x: never): never {
  throw new Error(`raft invariant: unexpected value ${String(x)}`);
}

import {
  type ConfState,
  decodeConfChange,
  type Entry,
  type NodeId,
  NotLeaderError,
  ProposalDroppedError,
  type RaftMessage,
  RaftNode,
  type Ready,
  type Snapshot,
} from '../../raft/index.js';
import { CrashStorage } from './crash-storage.js';
import {
  applyConfKey,
  asciiBytes,
  dataString,
  entryKey,
  InvariantChecker,
  InvariantViolation,
  violation,
} from './invariants.js';
import { Prng } from './prng.js';

/** How one seed runs. */
export interface SimOptions {
  /** Steps of the safety phase (one fault-injecting action each). */
  steps: number;
  /** Lines of trace kept for a failure report. */
  traceLinesMax?: number;
  /** Receives every trace line as it happens (`--verbose`); implies `trace`. */
  onTrace?: (line: string) => void;
  /** Keep a trace tail. Off by default: `runSeed` replays a failing seed with tracing on. */
  trace?: boolean;
}

export interface SimStats {
  steps: number;
  ticks: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  crashes: number;
  leaderTerms: number;
  committed: number;
  confChanges: number;
  snapshotsInstalled: number;
  compactions: number;
  readsAnswered: number;
  /** Appends that replaced a conflicting log suffix. */
  truncations: number;
  livenessTicks: number;
}

export interface SimFailure {
  invariant: string;
  message: string;
  phase: 'safety' | 'liveness';
  step: number;
  trace: string[];
  stack?: string;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failure?: SimFailure;
  stats: SimStats;
  profile: string;
}

/** Fault and workload mix of one seed, drawn from the seed ("swarm testing"). */
interface Profile {
  nodeCount: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflight: number;
  maxSizePerMsg: number;
  maxUncommittedBytes: number | undefined;
  /** Chance that a node's pending Ready waits for a later step. */
  readyDeferP: number;
  /** Chance, per Ready, of a crash after its writes and before its sync. */
  crashBeforeSyncP: number;
  /** Chance, per Ready, of a crash after its messages went out and before it was applied. */
  crashAfterSendP: number;
  /** Chance that a crash keeps a prefix of the unsynced writes (a torn WAL tail). */
  tornWriteP: number;
  /** Chance that a Ready without `mustSync` is not fsynced. */
  lazySyncP: number;
  /** Chance that a node skips a tick round (a slow clock or a paused process). */
  tickSkipP: number;
  /** Proposals made at once by one propose action, at most. */
  proposalBurstMax: number;
  /** Chance that a restarted node keeps its state machine (durable apply) instead of rebuilding it from the snapshot. */
  durableStateMachineP: number;
  membership: boolean;
  /** Alternate storms with calm windows. */
  calmWindows: boolean;
  weights: Record<Action, number>;
}

const ACTIONS = [
  'tick',
  'deliver',
  'deliverRandom',
  'drop',
  'duplicate',
  'delay',
  'hold',
  'release',
  'partition',
  'cutLink',
  'heal',
  'crash',
  'restart',
  'propose',
  'read',
  'transfer',
  'campaign',
  'compact',
  'membership',
] as const;
type Action = (typeof ACTIONS)[number];

/** Safety-phase steps per seed unless told otherwise. */
export const SIM_STEPS_DEFAULT = 1000;
/** Messages queued in the network at most; further sends are dropped (a full send buffer). */
const NETWORK_QUEUE_MESSAGES_MAX = 4000;
/** Messages held back for a long delay at most. */
const HELD_MESSAGES_MAX = 100;
/** Deliveries per liveness round at most (a round normally quiesces far sooner). */
const LIVENESS_DELIVERIES_PER_ROUND_MAX = 20_000;
/** The liveness phase must commit within this many election timeouts. */
const LIVENESS_ELECTION_TIMEOUTS_MAX = 50;
/** Nodes added by membership changes at most, beyond the initial ones. */
const ADDED_NODES_MAX = 3;

/** The state machine the simulator runs on each node: the history of applied entries plus the configuration. */
class SimStateMachine {
  constructor(
    /** keys[i - 1] is the key of the entry applied at index i. */
    readonly keys: string[],
    readonly voters: Set<NodeId>,
    readonly learners: Set<NodeId>,
  ) {}

  static initial(voters: NodeId[]): SimStateMachine {
    return new SimStateMachine([], new Set(voters), new Set());
  }

  static decode(snap: Snapshot): SimStateMachine {
    const s = JSON.parse(dataString(snap.data)) as { keys: string[]; voters: NodeId[]; learners: NodeId[] };
    if (s.keys.length !== snap.index) {
      violation('snapshot-content', `snapshot at ${snap.index} holds ${s.keys.length} applied entries`);
    }
    const sm = new SimStateMachine(s.keys, new Set(s.voters), new Set(s.learners));
    const conf = sm.conf();
    if (!sameConf(conf, { voters: [...snap.voters].sort(), learners: [...snap.learners].sort() })) {
      violation(
        'snapshot-content',
        `snapshot at ${snap.index} has conf ${fmtConf(snap)} but its state machine had ${fmtConf(conf)}`,
      );
    }
    return sm;
  }

  get applied(): number {
    return this.keys.length;
  }

  apply(key: string): void {
    this.keys.push(key);
    applyConfKey(key, this.voters, this.learners);
  }

  encode(): Uint8Array {
    return asciiBytes(
      JSON.stringify({ keys: this.keys, voters: [...this.voters], learners: [...this.learners] }),
    );
  }

  conf(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }
}

interface SimNode {
  id: NodeId;
  storage: CrashStorage;
  /** Undefined while crashed (or stopped after removal). */
  raft: RaftNode | undefined;
  sm: SimStateMachine;
  incarnation: number;
  lastTerm: number;
  lastCommit: number;
  /** Commit index up to which the entries of this node's log were noted committed. */
  commitCheckedTo: number;
  /** Set when the node was seen becoming leader; checked when its first entry of the term is written. */
  leaderCheck: { term: number; knownCommitted: number } | undefined;
  wasLeaderInTerm: number;
  /** Term and vote of the last hard state this incarnation wrote. */
  lastHard: { term: number; vote: NodeId | undefined };
  /** Stopped for good (removed from the cluster, liveness phase). */
  decommissioned: boolean;
}

/**
 * A deterministic simulation of a Raft cluster over the pure core: one seed drives every
 * choice. The safety phase injects faults (message loss, duplication, reordering, delay,
 * partitions, crashes that lose unsynced writes, membership changes, compaction) with the
 * invariants checked after every step; the liveness phase heals everything and requires a
 * new proposal to commit on every voter within a bounded number of ticks.
 */
export class Simulation {
  private readonly prng: Prng;
  private readonly profile: Profile;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly bootVoters: NodeId[];
  private readonly inv: InvariantChecker;
  private readonly queue: RaftMessage[] = [];
  /** Messages held back for a long time (delivered much later, often to a newer term). */
  private readonly held: RaftMessage[] = [];
  /** Partition group of each node (absent: group 0); undefined when there is no partition. */
  private groups: Map<NodeId, number> | undefined;
  private readonly cutLinks = new Set<string>();
  private faults = true;
  /** Action weights of a calm window: the profile's, without faults. */
  private readonly calmWeights: Record<Action, number>;
  private phase: 'safety' | 'liveness' = 'safety';
  private stepNo = 0;
  private now = 0;
  private valueSeq = 0;
  private readSeq = 0;
  private nextNodeNo: number;
  private readonly traceRing: string[] = [];
  private readonly traceLinesMax: number;
  /** Tracing costs more than the simulation itself: runs trace only to replay a failure or when asked. */
  private readonly tracing: boolean;
  readonly stats: SimStats = {
    steps: 0,
    ticks: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    crashes: 0,
    leaderTerms: 0,
    committed: 0,
    confChanges: 0,
    snapshotsInstalled: 0,
    compactions: 0,
    readsAnswered: 0,
    truncations: 0,
    livenessTicks: 0,
  };

  constructor(
    readonly seed: number,
    private readonly opts: SimOptions,
  ) {
    this.prng = new Prng(seed);
    this.profile = drawProfile(this.prng);
    this.calmWeights = {
      ...this.profile.weights,
      deliverRandom: 0,
      drop: 0,
      duplicate: 0,
      delay: 0,
      hold: 0,
      partition: 0,
      cutLink: 0,
      heal: 5,
      crash: 0,
      campaign: 0,
      transfer: 0,
    };
    this.traceLinesMax = opts.traceLinesMax ?? 400;
    this.tracing = opts.trace === true || opts.onTrace !== undefined;
    this.bootVoters = [];
    for (let i = 1; i <= this.profile.nodeCount; i++) this.bootVoters.push(`n${i}`);
    this.nextNodeNo = this.profile.nodeCount + 1;
    this.inv = new InvariantChecker(this.bootVoters);
    for (const id of this.bootVoters) this.createNode(id);
  }

  describeProfile(): string {
    const p = this.profile;
    const w = Object.entries(p.weights)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    return (
      `nodes=${p.nodeCount} election=${p.electionTicks} heartbeat=${p.heartbeatTicks} preVote=${p.preVote} ` +
      `checkQuorum=${p.checkQuorum} maxInflight=${p.maxInflight} maxSizePerMsg=${p.maxSizePerMsg} ` +
      `maxUncommittedBytes=${p.maxUncommittedBytes ?? '-'} readyDefer=${p.readyDeferP} ` +
      `crashBeforeSync=${p.crashBeforeSyncP} crashAfterSend=${p.crashAfterSendP} torn=${p.tornWriteP} ` +
      `lazySync=${p.lazySyncP} tickSkip=${p.tickSkipP} durableSm=${p.durableStateMachineP} burst=${p.proposalBurstMax} calmWindows=${p.calmWindows} membership=${p.membership} weights{${w}}`
    );
  }

  /** Runs both phases; returns the result instead of throwing. */
  run(): SimResult {
    try {
      if (this.tracing) this.trace(`profile ${this.describeProfile()}`);
      this.safetyPhase();
      this.livenessPhase();
      this.finalChecks();
      return { seed: this.seed, ok: true, stats: this.finishStats(), profile: this.describeProfile() };
    } catch (err) {
      const e = err as Error;
      const invariant =
        err instanceof InvariantViolation
          ? err.invariant
          : e.message?.startsWith('raft invariant')
            ? 'core-assertion'
            : `exception:${e.name}`;
      return {
        seed: this.seed,
        ok: false,
        failure: {
          invariant,
          message: e.message,
          phase: this.phase,
          step: this.stepNo,
          trace: this.traceRing.slice(),
          stack: err instanceof InvariantViolation ? undefined : e.stack,
        },
        stats: this.finishStats(),
        profile: this.describeProfile(),
      };
    }
  }

  private finishStats(): SimStats {
    this.stats.leaderTerms = this.inv.leaderTerms;
    this.stats.committed = this.inv.canonical.length;
    this.stats.confChanges = this.inv.confChangesApplied;
    this.stats.readsAnswered = this.inv.readsAnswered;
    return this.stats;
  }

  // ---------------------------------------------------------------- phases

  /**
   * With `calmWindows`, storms (the profile's faults) alternate with calm windows (no new
   * faults; crashed nodes come back): logs grow in the calm and diverge when a storm hits.
   */
  private safetyPhase(): void {
    let windowEnd = 0;
    for (this.stepNo = 1; this.stepNo <= this.opts.steps; this.stepNo++) {
      if (this.profile.calmWindows && this.stepNo >= windowEnd) {
        this.faults = !this.faults;
        windowEnd = this.stepNo + 50 + this.prng.int(250);
        if (this.tracing) this.trace(this.faults ? 'storm begins' : 'calm begins');
      }
      this.stats.steps++;
      this.act(this.pickAction());
      this.processReadies(true);
      this.observe();
    }
  }

  private livenessPhase(): void {
    this.phase = 'liveness';
    this.faults = false;
    this.groups = undefined;
    this.cutLinks.clear();
    if (this.tracing) this.trace('liveness: heal the network, restart crashed nodes, stop faults');
    this.stopRemovedNodes();
    for (const n of this.nodes.values()) {
      if (!n.raft && !n.decommissioned) this.restart(n);
    }
    this.queue.push(...this.held.splice(0)); // long-delayed messages arrive among the fresh ones
    const budgetTicks = LIVENESS_ELECTION_TIMEOUTS_MAX * this.profile.electionTicks;
    const proposedTo = new Set<string>();
    const values: string[] = [];
    let lastProposalTick = -Infinity;
    for (let t = 0; t < budgetTicks; t++) {
      this.stepNo++;
      this.stats.livenessTicks++;
      this.tickAll();
      this.processReadies(false);
      this.observe();
      this.deliverAll();
      this.stopRemovedNodes();
      const leader = this.currentLeader();
      if (leader?.raft) {
        const term = leader.raft.status().term;
        const key = `${leader.id}@${term}`;
        if (!proposedTo.has(key) || t - lastProposalTick >= 10 * this.profile.electionTicks) {
          const value = `L${++this.valueSeq}`;
          if (this.tryPropose(leader, value)) {
            proposedTo.add(key);
            values.push(value);
            lastProposalTick = t;
            this.processReadies(false);
            this.observe();
            this.deliverAll();
          }
        }
      }
      if (this.livenessReached(values)) {
        if (this.tracing) this.trace(`liveness: reached after ${t + 1} ticks`);
        return;
      }
    }
    const voters = [...this.inv.voters].sort();
    const state = voters
      .map((id) => {
        const n = this.nodes.get(id);
        const st = n?.raft?.status();
        return st ? `${id}:${st.role}/t${st.term}/c${st.commit}/a${n?.sm.applied}` : `${id}:down`;
      })
      .join(' ');
    violation(
      'liveness',
      `no proposal committed and applied on every voter within ${budgetTicks} ticks (${LIVENESS_ELECTION_TIMEOUTS_MAX} election timeouts); voters ${state}; proposed ${values.join(',') || 'nothing'}`,
    );
  }

  private livenessReached(values: string[]): boolean {
    for (const v of values) {
      const index = this.inv.valueIndex.get(v);
      if (index === undefined) continue;
      let all = true;
      for (const id of this.inv.voters) {
        const n = this.nodes.get(id);
        if (!n?.raft || n.sm.applied < index) {
          all = false;
          break;
        }
      }
      if (all) return true;
    }
    return false;
  }

  private finalChecks(): void {
    const logs: Array<{ id: NodeId; storage: CrashStorage }> = [];
    for (const n of this.nodes.values()) logs.push({ id: n.id, storage: n.storage });
    this.inv.checkLogsPairwise(logs);
  }

  // ---------------------------------------------------------------- actions

  private pickAction(): Action {
    const w = this.faults ? this.profile.weights : this.calmWeights;
    let total = 0;
    for (const a of ACTIONS) total += w[a];
    let r = this.prng.next() * total;
    for (const a of ACTIONS) {
      r -= w[a];
      if (r < 0) return a;
    }
    return 'tick';
  }

  private act(a: Action): void {
    switch (a) {
      case 'tick':
        this.tickAll();
        return;
      case 'deliver':
        if (this.queue.length > 0) this.deliver(0, false);
        return;
      case 'deliverRandom':
        if (this.queue.length > 0) this.deliver(this.prng.int(this.queue.length), false);
        return;
      case 'drop':
        if (this.queue.length > 0) {
          const [m] = this.queue.splice(this.prng.int(this.queue.length), 1);
          this.stats.dropped++;
          if (this.tracing) this.trace(`drop ${fmtMsg(m)}`);
        }
        return;
      case 'duplicate':
        if (this.queue.length > 0) this.deliver(this.prng.int(this.queue.length), true);
        return;
      case 'delay':
        if (this.queue.length > 1) {
          const [m] = this.queue.splice(this.prng.int(this.queue.length), 1);
          this.queue.push(m);
          if (this.tracing) this.trace(`delay ${fmtMsg(m)}`);
        }
        return;
      case 'hold':
        if (this.queue.length > 0 && this.held.length < HELD_MESSAGES_MAX) {
          const [m] = this.queue.splice(this.prng.int(this.queue.length), 1);
          this.held.push(m);
          if (this.tracing) this.trace(`hold back ${fmtMsg(m)}`);
        }
        return;
      case 'release':
        if (this.held.length > 0) {
          const [m] = this.held.splice(this.prng.int(this.held.length), 1);
          this.queue.unshift(m);
          if (this.tracing) this.trace(`release ${fmtMsg(m)}`);
        }
        return;
      case 'partition':
        this.partition();
        return;
      case 'cutLink':
        this.cutLink();
        return;
      case 'heal':
        if (this.tracing && (this.groups || this.cutLinks.size > 0)) this.trace('heal the network');
        this.groups = undefined;
        this.cutLinks.clear();
        return;
      case 'crash': {
        const live = this.liveNodes();
        if (live.length === 0) return;
        const leader = this.currentLeader();
        this.crash(leader && this.prng.chance(0.5) ? leader : this.prng.pick(live), 'crash action');
        return;
      }
      case 'restart': {
        const down = [...this.nodes.values()].filter((n) => !n.raft && !n.decommissioned);
        if (down.length > 0) this.restart(this.prng.pick(down));
        return;
      }
      case 'propose':
        this.proposeAction();
        return;
      case 'read':
        this.readAction();
        return;
      case 'transfer':
        this.transferAction();
        return;
      case 'campaign': {
        const live = this.liveNodes();
        if (live.length === 0) return;
        const n = this.prng.pick(live);
        if (this.tracing) this.trace(`campaign ${n.id}`);
        n.raft?.campaign();
        return;
      }
      case 'compact':
        this.compactAction();
        return;
      case 'membership':
        this.membershipAction();
        return;
      default: {
        const never: never = a;
        throw new Error(`unknown action ${String(never)}`);
      }
    }
  }

  private tickAll(): void {
    this.now++;
    this.stats.ticks++;
    for (const n of this.nodes.values()) {
      if (!n.raft) continue;
      if (this.faults && this.prng.chance(this.profile.tickSkipP)) continue;
      n.raft.tick();
    }
  }

  /** A random split; half of the time the leader lands in a minority (its proposals then pile up uncommitted). */
  private partition(): void {
    const ids = [...this.nodes.keys()];
    this.groups = new Map();
    const leader = this.currentLeader();
    if (leader && this.prng.chance(0.5)) {
      const minorityMax = Math.floor((ids.length - 1) / 2);
      let left = this.prng.int(minorityMax);
      for (const id of ids) {
        const withLeader = id === leader.id || (left > 0 && this.prng.chance(0.5) && left-- > 0);
        this.groups.set(id, withLeader ? 1 : 0);
      }
    } else {
      for (const id of ids) this.groups.set(id, this.prng.int(2));
    }
    const desc = [0, 1].map((g) => ids.filter((id) => (this.groups?.get(id) ?? 0) === g).join(','));
    if (this.tracing) this.trace(`partition {${desc[0]}} | {${desc[1]}}`);
  }

  private cutLink(): void {
    const ids = [...this.nodes.keys()];
    const from = this.prng.pick(ids);
    const to = this.prng.pick(ids);
    if (from === to) return;
    this.cutLinks.add(`${from}>${to}`);
    if (this.tracing) this.trace(`cut link ${from} -> ${to}`);
  }

  private connected(from: NodeId, to: NodeId): boolean {
    if (this.cutLinks.has(`${from}>${to}`)) return false;
    if (!this.groups) return true;
    return (this.groups.get(from) ?? 0) === (this.groups.get(to) ?? 0);
  }

  private proposeAction(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const leaders = live.filter((n) => n.raft?.status().role === 'leader');
    const n = leaders.length > 0 && this.prng.chance(0.9) ? this.prng.pick(leaders) : this.prng.pick(live);
    // Bursts build long uncommitted tails, which later elections must reconcile.
    const burst = 1 + this.prng.int(this.profile.proposalBurstMax);
    for (let k = 0; k < burst; k++) if (!this.tryPropose(n, `v${++this.valueSeq}`)) return;
  }

  private tryPropose(n: SimNode, value: string): boolean {
    try {
      const r = n.raft?.propose(asciiBytes(value));
      if (!r) return false;
      if (this.tracing) this.trace(`propose ${value} on ${n.id}: index ${r.index} term ${r.term}`);
      return true;
    } catch (err) {
      if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) {
        if (this.tracing) this.trace(`propose ${value} on ${n.id}: ${err.code}`);
        return false;
      }
      throw err;
    }
  }

  private readAction(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.prng.pick(live);
    const ctx = `r${++this.readSeq}`;
    this.inv.onReadIssued(ctx);
    if (this.tracing) this.trace(`readIndex ${ctx} on ${n.id} (known committed ${this.inv.maxCommitted})`);
    n.raft?.readIndex(asciiBytes(ctx));
  }

  private transferAction(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.prng.pick(live);
    const voters = n.raft?.status().voters ?? [];
    if (voters.length === 0) return;
    // Now and then a target that cannot lead: a learner, a spare, a removed node.
    const to = this.prng.chance(0.1) ? this.prng.pick([...this.nodes.keys()]) : this.prng.pick(voters);
    if (this.tracing) this.trace(`transferLeadership on ${n.id} to ${to}`);
    n.raft?.transferLeadership(to);
  }

  private compactAction(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.prng.pick(live);
    const applied = n.sm.applied;
    const snapIndex = n.storage.snapshot().index;
    if (applied <= snapIndex) return;
    n.storage.createSnapshot(applied, n.sm.encode(), n.sm.conf());
    const to = Math.max(snapIndex, applied - this.prng.int(4));
    if (to > n.storage.firstIndex() - 1) n.storage.compact(to);
    this.stats.compactions++;
    if (this.tracing)
      this.trace(`compact ${n.id}: snapshot at ${applied}, log from ${n.storage.firstIndex()}`);
    if (this.prng.chance(0.5)) n.storage.sync();
  }

  private membershipAction(): void {
    const leader = this.currentLeader();
    if (!leader?.raft) return;
    const st = leader.raft.status();
    const r = this.prng.next();
    if (r < 0.4) {
      const target = this.spareNode();
      if (target)
        this.proposeConf(leader, { type: this.prng.chance(0.15) ? 'addVoter' : 'addLearner', node: target });
    } else if (r < 0.7) {
      if (st.learners.length > 0)
        this.proposeConf(leader, { type: 'addVoter', node: this.prng.pick(st.learners) });
    } else {
      const members = st.voters.length >= 3 ? [...st.voters, ...st.learners] : st.learners;
      if (members.length > 0) this.proposeConf(leader, { type: 'removeNode', node: this.prng.pick(members) });
    }
  }

  /** A node that is not (and never was) a member, started if needed. */
  private spareNode(): NodeId | undefined {
    for (const n of this.nodes.values()) {
      if (!this.inv.everMembers.has(n.id) && !n.decommissioned) return n.id;
    }
    if (this.nextNodeNo > this.profile.nodeCount + ADDED_NODES_MAX) return undefined;
    const id = `n${this.nextNodeNo++}`;
    this.createNode(id);
    if (this.tracing) this.trace(`start new node ${id}`);
    return id;
  }

  private proposeConf(
    leader: SimNode,
    cc: { type: 'addVoter' | 'addLearner' | 'removeNode'; node: NodeId },
  ): void {
    try {
      const r = leader.raft?.proposeConfChange(cc);
      if (!r) return;
      if (this.tracing)
        this.trace(
          `propose ${cc.type} ${cc.node} on ${leader.id}: index ${r.index} term ${r.term}${r.dropped ? ' (dropped: a change is pending)' : ''}`,
        );
    } catch (err) {
      if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) {
        if (this.tracing) this.trace(`propose ${cc.type} ${cc.node} on ${leader.id}: ${err.code}`);
        return;
      }
      throw err;
    }
  }

  // ---------------------------------------------------------------- nodes

  private createNode(id: NodeId): SimNode {
    const n: SimNode = {
      id,
      storage: new CrashStorage((op, durable) => this.inv.onDurable(id, op, durable)),
      raft: undefined,
      sm: SimStateMachine.initial(this.bootVoters),
      incarnation: 0,
      lastTerm: 0,
      lastCommit: 0,
      commitCheckedTo: 0,
      leaderCheck: undefined,
      wasLeaderInTerm: 0,
      lastHard: { term: 0, vote: undefined },
      decommissioned: false,
    };
    this.nodes.set(id, n);
    this.startRaft(n);
    return n;
  }

  /**
   * Starts a RaftNode over the node's storage. The state machine is rebuilt from the storage's
   * snapshot, unless `keepStateMachine` (a host whose state machine is itself durable): then it
   * resumes from what it had applied, which the core must accept even above the durable commit.
   */
  private startRaft(n: SimNode, keepStateMachine = false): void {
    const snap = n.storage.snapshot();
    if (keepStateMachine && n.sm.applied >= snap.index && n.sm.applied <= n.storage.lastIndex()) {
      // keep n.sm
    } else if (snap.index > 0) {
      n.sm = SimStateMachine.decode(snap);
      this.inv.onRestore(n.id, n.sm.keys, 0);
    } else {
      n.sm = SimStateMachine.initial(this.bootVoters);
    }
    const random = this.prng.fork();
    const p = this.profile;
    n.raft = new RaftNode({
      id: n.id,
      voters: this.bootVoters,
      learners: [],
      electionTicks: p.electionTicks,
      heartbeatTicks: p.heartbeatTicks,
      preVote: p.preVote,
      checkQuorum: p.checkQuorum,
      random: () => random.next(),
      storage: n.storage,
      maxInflight: p.maxInflight,
      maxSizePerMsg: p.maxSizePerMsg,
      maxUncommittedBytes: p.maxUncommittedBytes,
      applied: n.sm.applied,
    });
    n.incarnation++;
    n.lastTerm = 0;
    n.lastCommit = 0;
    n.commitCheckedTo = n.sm.applied;
    n.leaderCheck = undefined;
    n.wasLeaderInTerm = 0;
    const hs = n.storage.initialState().hardState;
    n.lastHard = { term: hs.term, vote: hs.vote };
    this.checkConfAgreement(n);
  }

  private crash(n: SimNode, why: string): void {
    const pending = n.storage.pendingOps();
    const keep = pending > 0 && this.prng.chance(this.profile.tornWriteP) ? 1 + this.prng.int(pending) : 0;
    n.storage.crash(keep);
    n.raft = undefined;
    this.stats.crashes++;
    if (this.tracing)
      this.trace(`CRASH ${n.id} (${why}): lost ${pending - keep} of ${pending} unsynced writes`);
  }

  private restart(n: SimNode): void {
    this.startRaft(n, this.prng.chance(this.profile.durableStateMachineP));
    if (this.tracing)
      this.trace(
        `restart ${n.id} #${n.incarnation}: applied ${n.sm.applied}, snapshot ${n.storage.snapshot().index}, log to ${n.storage.lastIndex()}, ${fmtHard(n.storage)}`,
      );
  }

  private stopRemovedNodes(): void {
    for (const id of this.inv.removed) {
      const n = this.nodes.get(id);
      if (!n || n.decommissioned) continue;
      n.decommissioned = true;
      n.raft = undefined;
      if (this.tracing) this.trace(`stop removed node ${id}`);
    }
  }

  private liveNodes(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.raft) out.push(n);
    return out;
  }

  /** The live leader with the highest term. */
  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const st = n.raft?.status();
      if (st?.role === 'leader' && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  // ---------------------------------------------------------------- network

  private send(msgs: RaftMessage[]): void {
    for (const m of msgs) {
      if (this.queue.length >= NETWORK_QUEUE_MESSAGES_MAX) {
        this.stats.dropped++;
        continue;
      }
      this.queue.push(freezeMessage(m));
    }
  }

  /** Delivers queue[i]; with `keep` it stays queued too (a duplicate). Returns the receiver. */
  private deliver(i: number, keep: boolean): SimNode | undefined {
    const m = keep ? this.queue[i] : this.queue.splice(i, 1)[0];
    if (keep) this.stats.duplicated++;
    const to = this.nodes.get(m.to);
    if (!to?.raft || !this.connected(m.from, m.to)) {
      this.stats.dropped++;
      if (this.tracing) this.trace(`lost ${fmtMsg(m)}${to?.raft ? ' (partition)' : ' (receiver down)'}`);
      return undefined;
    }
    this.stats.delivered++;
    if (this.tracing) this.trace(`${keep ? 'dup ' : ''}deliver ${fmtMsg(m)}`);
    to.raft.step(m);
    return to;
  }

  /** Delivers in order until the network is quiet; a round that never quiets is a message storm. */
  private deliverAll(): void {
    for (let k = 0; this.queue.length > 0; k++) {
      if (k >= LIVENESS_DELIVERIES_PER_ROUND_MAX) {
        violation(
          'message-storm',
          `the network did not quiet within ${LIVENESS_DELIVERIES_PER_ROUND_MAX} deliveries of one tick; next: ${fmtMsg(this.queue[0])}`,
        );
      }
      const to = this.deliver(0, false);
      if (to) {
        this.processReady(to, false);
        this.observeNode(to);
      }
    }
  }

  // ---------------------------------------------------------------- the host loop

  private processReadies(mayDefer: boolean): void {
    for (const n of this.nodes.values()) {
      if (!n.raft?.hasReady()) continue;
      if (mayDefer && this.prng.chance(this.profile.readyDeferP)) continue;
      this.processReady(n, this.faults);
    }
  }

  /** Handles one Ready exactly as the contract orders: persist, sync, send, apply, advance. */
  private processReady(n: SimNode, faults: boolean): void {
    const raft = n.raft;
    if (!raft?.hasReady()) return;
    const rd = raft.ready();
    if (this.tracing) this.trace(`ready ${n.id}: ${fmtReady(rd)}`);
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      const first = rd.entries[0];
      if (first.index <= n.storage.lastIndex() && first.index >= n.storage.firstIndex())
        this.stats.truncations++;
      n.storage.append(rd.entries);
    }
    if (rd.hardState) {
      n.commitCheckedTo = this.inv.onCommitIndex(n.id, rd.hardState.commit, n.storage, n.commitCheckedTo);
    }
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.checkNewLeaderLog(n, rd);
    if (faults && this.prng.chance(this.profile.crashBeforeSyncP)) {
      this.crash(n, 'after writing a Ready, before its fsync');
      return;
    }
    if (rd.mustSync || !(faults && this.prng.chance(this.profile.lazySyncP))) n.storage.sync();
    this.checkDurableBeforeSend(n, rd);
    this.send(rd.messages);
    if (faults && this.prng.chance(this.profile.crashAfterSendP)) {
      this.crash(n, 'after sending a Ready, before applying it');
      return;
    }
    if (rd.snapshot) this.restoreSnapshot(n, rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(n, e);
    for (const rs of rd.readStates) this.inv.onReadState(n.id, rs.index, dataString(rs.ctx));
    raft.advance(rd);
    this.checkConfAgreement(n);
  }

  private restoreSnapshot(n: SimNode, snap: Snapshot): void {
    if (snap.index <= n.sm.applied) {
      violation(
        'snapshot-regress',
        `${n.id} got snapshot ${snap.index} to install but has applied ${n.sm.applied}`,
      );
    }
    const before = n.sm.applied;
    n.sm = SimStateMachine.decode(snap);
    this.inv.onRestore(n.id, n.sm.keys, before);
    this.stats.snapshotsInstalled++;
  }

  private applyEntry(n: SimNode, e: Entry): void {
    const key = this.inv.onApply(n.id, e, n.sm.applied);
    if (e.type === 'conf') decodeConfChange(e.data); // malformed data would be a core bug
    n.sm.apply(key);
  }

  /** Once the core has advanced, its configuration is the one its applied entries built. */
  private checkConfAgreement(n: SimNode): void {
    const raft = n.raft;
    if (!raft) return;
    const mine = raft.confState();
    const sm = n.sm.conf();
    if (!sameConf(mine, sm)) {
      violation(
        'config-agreement',
        `${n.id} runs with ${fmtConf(mine)} but its applied entries (to ${n.sm.applied}) give ${fmtConf(sm)}`,
      );
    }
  }

  /**
   * A Ready that changes the log, the term or the vote must be fsynced before its messages
   * leave, and a vote grant may leave only once that vote is durable.
   */
  private checkDurableBeforeSend(n: SimNode, rd: Ready): void {
    const hs = rd.hardState;
    const voteChanged = hs !== undefined && (hs.term !== n.lastHard.term || hs.vote !== n.lastHard.vote);
    if (!rd.mustSync && (rd.entries.length > 0 || rd.snapshot !== undefined || voteChanged)) {
      violation('must-sync', `${n.id}'s Ready changes the log, term or vote but has mustSync false`);
    }
    if (hs) n.lastHard = { term: hs.term, vote: hs.vote };
    for (const m of rd.messages) {
      // Safe once the vote is durable, or once a later term is (the node can never vote in m.term again).
      if (m.type === 'voteResp' && !m.reject && !this.inv.voteIsDurable(n.id, m.term, m.to)) {
        violation(
          'persist-before-send',
          `${n.id} grants its vote to ${m.to} in term ${m.term} without a durable vote for it`,
        );
      }
    }
  }

  /** Leader completeness, checked when a new leader's first entry of its term is written. */
  private checkNewLeaderLog(n: SimNode, rd: Ready): void {
    const check = n.leaderCheck;
    if (!check) return;
    const first = rd.entries.find((e) => e.term === check.term);
    if (!first) return;
    n.leaderCheck = undefined;
    this.inv.checkLeaderCompleteness(n.id, check.term, check.knownCommitted, first.index, n.storage);
  }

  // ---------------------------------------------------------------- per-step checks

  private observe(): void {
    for (const n of this.nodes.values()) if (n.raft) this.observeNode(n);
  }

  private observeNode(n: SimNode): void {
    const st = n.raft?.status();
    if (!st) return;
    if (st.term < n.lastTerm)
      violation('term-monotonic', `${n.id}'s term went from ${n.lastTerm} to ${st.term}`);
    if (st.commit < n.lastCommit) {
      violation('commit-monotonic', `${n.id}'s commit went from ${n.lastCommit} to ${st.commit}`);
    }
    n.lastTerm = st.term;
    n.lastCommit = st.commit;
    if (st.role === 'leader') {
      this.inv.leaderSeen(st.term, n.id);
      if (n.wasLeaderInTerm !== st.term) {
        n.wasLeaderInTerm = st.term;
        n.leaderCheck = { term: st.term, knownCommitted: this.inv.maxCommitted };
        if (this.tracing)
          this.trace(`LEADER ${n.id} term ${st.term} (known committed ${this.inv.maxCommitted})`);
      }
    }
  }

  private trace(line: string): void {
    const full = `[${this.phase[0]}${this.stepNo} t${this.now}] ${line}`;
    this.opts.onTrace?.(full);
    if (this.traceRing.length >= this.traceLinesMax) this.traceRing.shift();
    this.traceRing.push(full);
  }
}

/**
 * Runs one seed. A failing seed is run again with tracing on (the run is deterministic, so it
 * fails the same way) to report the trace tail.
 */
export function runSeed(seed: number, opts: SimOptions): SimResult {
  const r = new Simulation(seed, opts).run();
  if (r.ok || opts.trace || opts.onTrace) return r;
  const traced = new Simulation(seed, { ...opts, trace: true }).run();
  if (traced.failure?.message !== r.failure?.message) {
    throw new Error(
      `seed ${seed} is not deterministic: failed with "${r.failure?.message}", replay gave "${traced.failure?.message ?? 'ok'}"`,
    );
  }
  return traced;
}

function drawProfile(p: Prng): Profile {
  const electionTicks = 4 + p.int(7);
  const membership = p.chance(0.4);
  const weights: Record<Action, number> = {
    tick: p.pick([2, 4, 8]),
    deliver: 25,
    deliverRandom: p.pick([0, 2, 8]),
    drop: p.pick([0, 0.5, 2, 5]),
    duplicate: p.pick([0, 0.5, 2]),
    delay: p.pick([0, 1, 3]),
    hold: p.pick([0, 0.2, 1]),
    release: p.pick([0.2, 1]),
    partition: p.pick([0, 0.2, 0.8]),
    cutLink: p.pick([0, 0.1, 0.4]),
    heal: 0.5,
    crash: p.pick([0, 0.3, 1, 2]),
    restart: 2,
    propose: p.pick([2, 5, 10]),
    read: p.pick([1, 3]),
    transfer: p.pick([0, 0.1, 0.5]),
    campaign: p.pick([0, 0.1, 0.3]),
    compact: p.pick([0, 0.5, 2]),
    membership: membership ? p.pick([0.5, 1.5]) : 0,
  };
  return {
    nodeCount: p.chance(0.5) ? 3 : 5,
    electionTicks,
    heartbeatTicks: 1 + p.int(Math.min(3, electionTicks - 1)),
    preVote: p.chance(0.5),
    checkQuorum: p.chance(0.5),
    maxInflight: p.pick([1, 3, 256]),
    maxSizePerMsg: p.pick([1, 64, 300, 1024 * 1024]),
    maxUncommittedBytes: p.chance(0.15) ? 30 : undefined,
    readyDeferP: p.pick([0, 0.3, 0.6]),
    crashBeforeSyncP: p.pick([0, 0.002, 0.01]),
    crashAfterSendP: p.pick([0, 0.002, 0.01]),
    tornWriteP: p.pick([0, 0.3]),
    lazySyncP: p.pick([0, 0.5]),
    tickSkipP: p.pick([0, 0.05, 0.2]),
    durableStateMachineP: p.pick([0, 0.5]),
    proposalBurstMax: p.pick([1, 4]),
    membership,
    calmWindows: p.chance(0.5),
    weights,
  };
}

function freezeMessage(m: RaftMessage): RaftMessage {
  if (m.entries) {
    for (const e of m.entries) Object.freeze(e);
    Object.freeze(m.entries);
  }
  if (m.snapshot) Object.freeze(m.snapshot);
  return Object.freeze(m);
}

function sameConf(a: ConfState, b: ConfState): boolean {
  return a.voters.join(',') === b.voters.join(',') && a.learners.join(',') === b.learners.join(',');
}

function fmtConf(c: ConfState): string {
  return `voters [${c.voters.join(',')}] learners [${c.learners.join(',')}]`;
}

function fmtHard(s: CrashStorage): string {
  const hs = s.initialState().hardState;
  return `hard term ${hs.term} vote ${hs.vote ?? '-'} commit ${hs.commit}`;
}

function fmtMsg(m: RaftMessage): string {
  let s = `${m.type} ${m.from}->${m.to} t${m.term}`;
  if (m.index !== undefined) s += ` i${m.index}`;
  if (m.logTerm !== undefined) s += ` lt${m.logTerm}`;
  if (m.entries && m.entries.length > 0) {
    s += ` e[${m.entries[0].index}..${m.entries[m.entries.length - 1].index}]`;
  }
  if (m.commit !== undefined) s += ` c${m.commit}`;
  if (m.reject) s += ` REJECT hint ${m.rejectHint ?? '-'}`;
  if (m.seq !== undefined) s += ` seq${m.seq}`;
  if (m.snapshot)
    s += ` snap@${m.snapshot.index}/${m.snapshot.term} [${m.snapshot.offset}+${m.snapshot.data.byteLength}/${m.snapshot.size}]`;
  if (m.offset !== undefined) s += ` off${m.offset}`;
  if (m.context) s += ` ctx ${dataString(m.context)}`;
  if (m.transfer) s += ' transfer';
  if (m.target) s += ` target ${m.target}`;
  return s;
}

function fmtReady(rd: Ready): string {
  const parts: string[] = [];
  if (rd.hardState)
    parts.push(`hs t${rd.hardState.term}/v${rd.hardState.vote ?? '-'}/c${rd.hardState.commit}`);
  if (rd.snapshot) parts.push(`snapshot ${rd.snapshot.index}/${rd.snapshot.term}`);
  if (rd.entries.length > 0) {
    parts.push(`entries ${rd.entries.map((e) => `${e.index}/${e.term}`).join(' ')}`);
  }
  if (rd.committedEntries.length > 0) {
    parts.push(`apply ${rd.committedEntries.map((e) => `${e.index}:${entryKey(e)}`).join(' ')}`);
  }
  if (rd.messages.length > 0) parts.push(`${rd.messages.length} msgs`);
  if (rd.readStates.length > 0) {
    parts.push(`reads ${rd.readStates.map((r) => `${dataString(r.ctx)}@${r.index}`).join(' ')}`);
  }
  if (rd.mustSync) parts.push('sync');
  return parts.join('; ');
}

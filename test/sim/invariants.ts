import { decodeConfChange, type Entry, type NodeId, type RaftStorage } from '../../raft/index.js';
import type { StorageOp } from './crash-storage.js';

/** A broken safety or liveness property. `invariant` names the property. */
export class InvariantViolation extends Error {
  readonly code = 'SIM_INVARIANT';
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
    this.name = 'InvariantViolation';
  }
}

export function violation(invariant: string, message: string): never {
  throw new InvariantViolation(invariant, message);
}

/** The simulator's payloads are ASCII; decoding byte by byte is fast for them. */
export function dataString(d: Uint8Array): string {
  let s = '';
  for (let i = 0; i < d.byteLength; i++) s += String.fromCharCode(d[i]);
  return s;
}

export function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The identity of an entry's content: `term:type:data`. */
export function entryKey(e: Entry): string {
  return `${e.term}:${e.type === 'conf' ? 'c' : 'n'}:${dataString(e.data)}`;
}

function keyTerm(key: string): number {
  return Number(key.slice(0, key.indexOf(':')));
}

/** The configuration rules of a single-server change (mirrors what the contract promises). */
export function applyConfKey(key: string, voters: Set<NodeId>, learners: Set<NodeId>): void {
  const parts = key.split(':');
  if (parts[1] !== 'c') return;
  const cc = decodeConfChange(asciiBytes(key.slice(parts[0].length + 3)));
  const v = new Set(voters);
  const l = new Set(learners);
  switch (cc.type) {
    case 'addVoter':
      l.delete(cc.node);
      v.add(cc.node);
      break;
    case 'addLearner':
      if (!v.has(cc.node)) l.add(cc.node);
      break;
    case 'removeNode':
      v.delete(cc.node);
      l.delete(cc.node);
      break;
  }
  if (v.size === 0) return; // the last voter is never removed
  voters.clear();
  learners.clear();
  for (const id of v) voters.add(id);
  for (const id of l) learners.add(id);
}

interface Identity {
  key: string;
  /** Term of the entry before it in the log that held it; -1 when that entry was compacted. */
  prevTerm: number;
}

/**
 * The global record the safety properties are checked against. The simulator reports
 * events (a role seen, a write made durable, an entry applied, a read answered) and every
 * report is checked at once, so a violation names the step that caused it.
 *
 * - election safety: at most one leader per term, over the whole run;
 * - log matching: an (index, term) pair names one entry with one predecessor term, across
 *   every durable log ever written (by induction, equal (index, term) means equal prefixes);
 * - committed entries never change: every index known committed (a commit index written by
 *   a node, a snapshot, an applied entry) keeps one term;
 * - state machine safety: each node applies indexes 1, 2, 3, … and the entry it applies at
 *   an index equals what every other node applied there (the canonical sequence);
 * - leader completeness: a new leader's log holds every entry known committed when it won;
 * - durable votes: a node never votes for two candidates in one term, across restarts;
 * - ReadIndex: an answer is at least every index known committed when the read was issued.
 */
export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly identities = new Map<string, Identity>();
  /** canonical[i - 1]: the key of entry i as applied (by anyone). Always a contiguous prefix. */
  readonly canonical: string[] = [];
  private readonly committedTerms: number[] = [];
  /** Highest index known committed. */
  maxCommitted = 0;
  /** Client value -> the index it was applied at. */
  readonly valueIndex = new Map<string, number>();
  private readonly votes = new Map<NodeId, Map<number, NodeId>>();
  private readonly durableTerms = new Map<NodeId, number>();
  /** ReadIndex ctx -> the lowest acceptable answer. */
  private readonly reads = new Map<string, number>();
  /** Configuration after the canonical sequence. */
  readonly voters: Set<NodeId>;
  readonly learners = new Set<NodeId>();
  /** Nodes that were members and no longer are: never members again. */
  readonly removed = new Set<NodeId>();
  readonly everMembers: Set<NodeId>;
  confChangesApplied = 0;
  readsAnswered = 0;

  constructor(bootVoters: NodeId[]) {
    this.voters = new Set(bootVoters);
    this.everMembers = new Set(bootVoters);
  }

  /** Number of terms that had a leader. */
  get leaderTerms(): number {
    return this.leaderOfTerm.size;
  }

  leaderSeen(term: number, id: NodeId): void {
    const prev = this.leaderOfTerm.get(term);
    if (prev === undefined) this.leaderOfTerm.set(term, id);
    else if (prev !== id) violation('election-safety', `term ${term} has two leaders: ${prev} and ${id}`);
  }

  noteCommitted(index: number, term: number, source: string): void {
    if (index <= 0) return;
    const known = this.committedTerms[index];
    if (known === undefined) this.committedTerms[index] = term;
    else if (known !== term) {
      violation(
        'committed-entry-changed',
        `index ${index} was committed with term ${known}, now ${source} claims term ${term}`,
      );
    }
    if (index > this.maxCommitted) this.maxCommitted = index;
  }

  /**
   * A node wrote commit index `commit`: every entry up to it in its log is committed.
   * Checks the entries in (`checkedTo`, `commit`] and returns the new `checkedTo`.
   */
  onCommitIndex(node: NodeId, commit: number, storage: RaftStorage, checkedTo: number): number {
    if (commit <= checkedTo) return checkedTo;
    if (commit > storage.lastIndex()) {
      violation(
        'commit-beyond-log',
        `${node} wrote commit ${commit} beyond its last index ${storage.lastIndex()}`,
      );
    }
    for (let i = Math.max(checkedTo + 1, storage.firstIndex() - 1); i <= commit; i++) {
      this.noteCommitted(i, storage.term(i), `${node}'s commit index ${commit}`);
    }
    return commit;
  }

  /** A write of `node` became durable. */
  onDurable(node: NodeId, op: StorageOp, durable: RaftStorage): void {
    switch (op.kind) {
      case 'append':
        this.registerEntries(node, op.entries, durable);
        return;
      case 'setHardState':
        this.checkDurableHardState(node, op.hs.term, op.hs.vote);
        return;
      case 'applySnapshot':
        this.noteCommitted(op.snap.index, op.snap.term, `${node}'s installed snapshot`);
        return;
      case 'createSnapshot':
      case 'compact':
        return;
      default: {
        const never: never = op;
        throw new Error(`unknown op ${JSON.stringify(never)}`);
      }
    }
  }

  private registerEntries(node: NodeId, entries: Entry[], durable: RaftStorage): void {
    const first = durable.firstIndex();
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (e.index < first) continue; // the write landed below a snapshot and was skipped
      const prevTerm =
        k > 0 ? entries[k - 1].term : e.index - 1 >= first - 1 ? durable.term(e.index - 1) : -1;
      const id = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const known = this.identities.get(id);
      if (known === undefined) {
        this.identities.set(id, { key, prevTerm });
        continue;
      }
      if (known.key !== key) {
        violation(
          'log-matching',
          `${node} holds ${key} at (${e.index}, ${e.term}); another log holds ${known.key}`,
        );
      }
      if (known.prevTerm >= 0 && prevTerm >= 0 && known.prevTerm !== prevTerm) {
        violation(
          'log-matching',
          `${node}'s entry (${e.index}, ${e.term}) follows term ${prevTerm}; in another log it follows term ${known.prevTerm}`,
        );
      }
      if (known.prevTerm < 0) known.prevTerm = prevTerm;
    }
  }

  private checkDurableHardState(node: NodeId, term: number, vote: NodeId | undefined): void {
    const prevTerm = this.durableTerms.get(node) ?? 0;
    if (term < prevTerm)
      violation('durable-term', `${node}'s durable term went from ${prevTerm} back to ${term}`);
    this.durableTerms.set(node, term);
    if (vote === undefined) return;
    let byTerm = this.votes.get(node);
    if (!byTerm) {
      byTerm = new Map();
      this.votes.set(node, byTerm);
    }
    const prev = byTerm.get(term);
    if (prev !== undefined && prev !== vote) {
      violation('one-vote-per-term', `${node} durably voted for ${prev} and then ${vote} in term ${term}`);
    }
    byTerm.set(term, vote);
  }

  /** `node` applied `e` as its entry number `appliedBefore + 1`. */
  onApply(node: NodeId, e: Entry, appliedBefore: number): string {
    if (e.index !== appliedBefore + 1) {
      violation('apply-order', `${node} applied index ${e.index} after ${appliedBefore}`);
    }
    const key = entryKey(e);
    this.noteCommitted(e.index, e.term, `${node}'s applied entry`);
    this.checkCanonical(node, e.index, key);
    return key;
  }

  /** `node` restored a state machine holding `keys` (entries 1..keys.length) from a snapshot. */
  onRestore(node: NodeId, keys: readonly string[], from: number): void {
    for (let i = from + 1; i <= keys.length; i++) this.checkCanonical(node, i, keys[i - 1]);
  }

  private checkCanonical(node: NodeId, index: number, key: string): void {
    if (index <= this.canonical.length) {
      const known = this.canonical[index - 1];
      if (known !== key) {
        violation(
          'state-machine-safety',
          `${node} applied ${key} at index ${index}; another node applied ${known}`,
        );
      }
      return;
    }
    if (index !== this.canonical.length + 1) {
      violation(
        'state-machine-safety',
        `${node} applied index ${index} beyond the known prefix ${this.canonical.length}`,
      );
    }
    this.canonical.push(key);
    this.noteCommitted(index, keyTerm(key), `${node}'s applied entry`);
    const data = key.slice(key.indexOf(':') + 3);
    if (key[key.indexOf(':') + 1] === 'c') {
      this.extendConf(key);
    } else if (data.length > 0) {
      const at = this.valueIndex.get(data);
      if (at !== undefined)
        violation('no-duplicate-apply', `value ${data} applied at ${at} and again at ${index}`);
      this.valueIndex.set(data, index);
    }
  }

  private extendConf(key: string): void {
    const before = new Set([...this.voters, ...this.learners]);
    applyConfKey(key, this.voters, this.learners);
    this.confChangesApplied++;
    for (const id of [...this.voters, ...this.learners]) this.everMembers.add(id);
    for (const id of before) if (!this.voters.has(id) && !this.learners.has(id)) this.removed.add(id);
  }

  /** Whether `node` durably voted for `candidate` in `term`, or durably reached a later term. */
  voteIsDurable(node: NodeId, term: number, candidate: NodeId): boolean {
    return (this.durableTerms.get(node) ?? 0) > term || this.votes.get(node)?.get(term) === candidate;
  }

  /**
   * A node just became leader of `term` and the first entry of that term in its log is at
   * `firstIndex`; `knownCommitted` was the highest index known committed when it won.
   */
  checkLeaderCompleteness(
    node: NodeId,
    term: number,
    knownCommitted: number,
    firstIndex: number,
    storage: RaftStorage,
  ): void {
    if (firstIndex <= knownCommitted) {
      violation(
        'leader-completeness',
        `${node} leads term ${term} from index ${firstIndex - 1}, but index ${knownCommitted} was committed`,
      );
    }
    for (let i = Math.max(1, storage.firstIndex() - 1); i <= knownCommitted; i++) {
      const t = this.committedTerms[i];
      if (t === undefined) continue;
      const mine = storage.term(i);
      if (mine !== t) {
        violation(
          'leader-completeness',
          `${node} leads term ${term} with term ${mine} at committed index ${i} (term ${t})`,
        );
      }
    }
  }

  onReadIssued(ctx: string): void {
    this.reads.set(ctx, this.maxCommitted);
  }

  onReadState(node: NodeId, index: number, ctx: string): void {
    const min = this.reads.get(ctx);
    if (min === undefined) violation('read-index', `${node} got an answer to unknown read ${ctx}`);
    if (index < min) {
      violation(
        'read-index',
        `read ${ctx} at ${node} answered ${index}, but ${min} was committed before it was issued`,
      );
    }
    this.readsAnswered++;
  }

  /**
   * The log-matching property checked directly over a set of logs: where two logs hold an
   * entry with the same index and term, they are identical up to it.
   */
  checkLogsPairwise(logs: Array<{ id: NodeId; storage: RaftStorage }>): void {
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) checkPair(logs[a], logs[b]);
    }
  }
}

function checkPair(x: { id: NodeId; storage: RaftStorage }, y: { id: NodeId; storage: RaftStorage }): void {
  const lo = Math.max(x.storage.firstIndex(), y.storage.firstIndex());
  const hi = Math.min(x.storage.lastIndex(), y.storage.lastIndex());
  let top = hi;
  while (top >= lo && x.storage.term(top) !== y.storage.term(top)) top--;
  if (top < lo) return;
  const xs = x.storage.entries(lo, top + 1);
  const ys = y.storage.entries(lo, top + 1);
  for (let i = 0; i < xs.length; i++) {
    const kx = entryKey(xs[i]);
    const ky = entryKey(ys[i]);
    if (kx !== ky) {
      violation(
        'log-matching',
        `${x.id} and ${y.id} agree at (${top}, ${x.storage.term(top)}) but differ at ${lo + i}: ${kx} vs ${ky}`,
      );
    }
  }
}

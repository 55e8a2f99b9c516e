/**
 * A deterministic harness for the pure Raft core, in the style of etcd-io/raft's `network`
 * (raft_test.go): every node has a MemoryStorage and a host that handles each Ready exactly
 * as the contract says (persist, then send, then apply, then advance). Messages travel
 * through one FIFO queue; links can be cut, nodes isolated and message types ignored.
 * Nothing here reads a clock or Math.random: time is `tick()`, randomness is seeded.
 */
import { expect } from 'vitest';
import {
  type Entry,
  MemoryStorage,
  type MessageType,
  type RaftConfig,
  type RaftMessage,
  RaftNode,
  type ReadState,
  type Ready,
  type Snapshot,
} from '../../raft/index.js';

/** mulberry32: a small seeded PRNG with values in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A per-node seed derived from a base seed and the node id, so nodes draw different timeouts. */
export function seedFor(base: number, id: string): number {
  let h = base >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x9e3779b1) >>> 0;
  return h;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
export const enc = (s: string): Uint8Array => textEncoder.encode(s);
export const dec = (b: Uint8Array): string => textDecoder.decode(b);

/** Options of one node; everything but `id` and `storage` of RaftConfig, all optional. */
export type NodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>> & { seed?: number };

/** etcd's newTestRaft defaults: election 10 ticks, heartbeat 1 tick, no PreVote, no CheckQuorum. */
export function nodeConfig(id: string, voters: string[], storage: MemoryStorage, opts: NodeOptions = {}) {
  const { seed, ...rest } = opts;
  const cfg: RaftConfig = {
    id,
    voters,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: false,
    checkQuorum: false,
    random: seededRandom(seedFor(seed ?? 1, id)),
    storage,
    ...rest,
  };
  return cfg;
}

/** Entries at consecutive indices starting at `first`, with the given terms (etcd's `index(i).terms(...)`). */
export function ents(first: number, ...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: first + i, term, type: 'normal', data: new Uint8Array(0) }));
}

/** A storage that already holds `log` and the given hard state (what a restart would find). */
export function storageWith(
  log: Entry[],
  hard?: { term: number; vote?: string; commit?: number },
): MemoryStorage {
  const s = new MemoryStorage();
  s.append(log);
  if (hard) {
    const hs: { term: number; vote?: string; commit: number } = { term: hard.term, commit: hard.commit ?? 0 };
    if (hard.vote !== undefined) hs.vote = hard.vote;
    s.setHardState(hs);
  }
  return s;
}

/** Every entry the storage holds after its snapshot, as (index, term) pairs. */
export function logOf(s: MemoryStorage): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push([i, s.term(i)]);
  return out;
}

/**
 * One node and its host: the storage it persists to and what it applied. `handleReady`
 * follows the Ready contract; the messages are returned, never delivered here.
 */
export class Host {
  node: RaftNode;
  /** Every committed entry handed to the application, in order (across restarts). */
  readonly applied: Entry[] = [];
  readonly readStates: ReadState[] = [];
  /** Snapshots the application restored from. */
  readonly restored: Snapshot[] = [];
  /** Every Ready handled, in order. */
  readonly readies: Ready[] = [];
  appliedIndex = 0;

  constructor(
    readonly id: string,
    readonly storage: MemoryStorage,
    private readonly cfg: RaftConfig,
  ) {
    this.node = new RaftNode(cfg);
    this.appliedIndex = cfg.applied ?? storage.snapshot().index;
  }

  /** Handles one Ready if there is one: persist, collect messages, apply, advance. */
  handleReady(): Ready | undefined {
    if (!this.node.hasReady()) return undefined;
    const rd = this.node.ready();
    this.readies.push(rd);
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (rd.snapshot) {
      this.restored.push(rd.snapshot);
      this.appliedIndex = rd.snapshot.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.appliedIndex + 1) {
        throw new Error(`${this.id}: applied ${e.index} after ${this.appliedIndex} (entries out of order)`);
      }
      this.applied.push(e);
      this.appliedIndex = e.index;
    }
    this.readStates.push(...rd.readStates);
    this.node.advance(rd);
    return rd;
  }

  /** Handles Readys until there is none; returns the messages, in order. */
  drain(): RaftMessage[] {
    const out: RaftMessage[] = [];
    for (let i = 0; i < 1000; i++) {
      const rd = this.handleReady();
      if (!rd) return out;
      out.push(...rd.messages);
    }
    throw new Error(`${this.id}: Ready never ran dry`);
  }

  /** Steps one message and returns every message produced. */
  stepAndDrain(m: RaftMessage): RaftMessage[] {
    this.node.step(m);
    return this.drain();
  }

  /** A crash and restart: a new RaftNode over the same storage and applied index. */
  restart(): void {
    this.node = new RaftNode({ ...this.cfg, applied: this.appliedIndex });
  }

  status() {
    return this.node.status();
  }
}

/** A standalone node (no network) for message-level tests. */
export function newHost(
  id: string,
  voters: string[],
  opts: NodeOptions & { storage?: MemoryStorage } = {},
): Host {
  const { storage = new MemoryStorage(), ...rest } = opts;
  return new Host(id, storage, nodeConfig(id, voters, storage, rest));
}

/** Builds a message with the given fields (from/to/term required). */
export function msg(
  type: MessageType,
  from: string,
  to: string,
  term: number,
  rest: Partial<RaftMessage> = {},
): RaftMessage {
  return { type, from, to, term, ...rest };
}

const QUIESCE_STEPS_MAX = 200_000;

/** A cluster of hosts on a lossy, controllable, FIFO network. */
export class Network {
  readonly hosts = new Map<string, Host>();
  /** Messages waiting for delivery. */
  queue: RaftMessage[] = [];
  /** Every message any node sent, before filtering. */
  readonly sent: RaftMessage[] = [];
  /** Every message that was delivered. */
  readonly delivered: RaftMessage[] = [];
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<string>();
  private readonly ignored = new Set<MessageType>();
  /** Extra drop rule: return false to drop a message. */
  filter: ((m: RaftMessage) => boolean) | undefined;

  constructor(
    ids: string[],
    opts: NodeOptions & { perNode?: Record<string, NodeOptions & { storage?: MemoryStorage }> } = {},
  ) {
    const { perNode = {}, ...common } = opts;
    for (const id of ids) {
      const { storage = new MemoryStorage(), ...own } = perNode[id] ?? {};
      const voters = common.voters ?? ids;
      this.hosts.set(id, new Host(id, storage, nodeConfig(id, voters, storage, { ...common, ...own })));
    }
  }

  host(id: string): Host {
    const h = this.hosts.get(id);
    if (!h) throw new Error(`no host ${id}`);
    return h;
  }

  node(id: string): RaftNode {
    return this.host(id).node;
  }

  status(id: string) {
    return this.node(id).status();
  }

  storage(id: string): MemoryStorage {
    return this.host(id).storage;
  }

  /** Drops messages both ways between a and b. */
  cut(a: string, b: string): void {
    this.cuts.add(`${a}->${b}`);
    this.cuts.add(`${b}->${a}`);
  }

  /** Drops every message to or from `id`. */
  isolate(id: string): void {
    this.isolated.add(id);
  }

  /** Drops every message of this type. */
  ignore(type: MessageType): void {
    this.ignored.add(type);
  }

  /** Heals every cut, isolation, ignored type and filter. */
  recover(): void {
    this.cuts.clear();
    this.isolated.clear();
    this.ignored.clear();
    this.filter = undefined;
  }

  private passes(m: RaftMessage): boolean {
    if (!this.hosts.has(m.to)) return false;
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return false;
    if (this.cuts.has(`${m.from}->${m.to}`)) return false;
    if (this.ignored.has(m.type)) return false;
    return this.filter ? this.filter(m) : true;
  }

  private collect(h: Host): void {
    const out = h.drain();
    this.sent.push(...out);
    this.queue.push(...out);
  }

  /** Delivers messages one by one (draining each recipient) until no node has anything to do. */
  stabilize(): void {
    for (const h of this.hosts.values()) this.collect(h);
    let steps = 0;
    while (this.queue.length > 0) {
      if (++steps > QUIESCE_STEPS_MAX) throw new Error('network did not quiesce');
      const m = this.queue.shift()!;
      if (!this.passes(m)) continue;
      this.delivered.push(m);
      const h = this.host(m.to);
      h.node.step(m);
      this.collect(h);
      if (this.queue.length === 0) for (const x of this.hosts.values()) this.collect(x);
    }
  }

  /** Queues messages (e.g. a delayed copy) and stabilizes. */
  send(...msgs: RaftMessage[]): void {
    this.queue.push(...msgs);
    this.stabilize();
  }

  /** Ticks the given nodes (default: all) `n` times, stabilizing after each round. */
  tick(n = 1, ids: string[] = [...this.hosts.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.node(id).tick();
      this.stabilize();
    }
  }

  /** `id` campaigns and the network settles. */
  campaign(id: string): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Proposes `data` on `id` and lets the network settle; returns where it landed. */
  propose(id: string, data: Uint8Array = enc('somedata')) {
    const r = this.node(id).propose(data);
    this.stabilize();
    return r;
  }

  /** The leaders among the hosts. */
  leaders(): string[] {
    return [...this.hosts.values()].filter((h) => h.node.status().role === 'leader').map((h) => h.id);
  }
}

/** Node '1' of `voters`, elected by stepping grants (term = the storage's term + 1). */
export function leaderHost(voters: string[], opts: Parameters<typeof newHost>[2] = {}): Host {
  const h = newHost('1', voters, opts);
  h.node.campaign();
  h.drain();
  for (const id of voters.slice(1)) {
    if (h.status().role !== 'candidate') break;
    h.stepAndDrain(msg('voteResp', id, '1', h.status().term, { reject: false }));
  }
  expect(h.status().role).toBe('leader');
  return h;
}

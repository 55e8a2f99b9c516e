import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingStateMachine, SyncedMemoryStorage, seededRandom } from '../test/fixtures/raft-host.js';
import { RaftConfigError } from './errors.js';
import { FileStorage } from './file-storage.js';
import { RaftHost, type RaftHostOptions } from './host.js';
import { MemoryNetwork } from './memory-transport.js';
import { decodeConfChange } from './node.js';
import type { DurableStorage } from './ports.js';
import type { ConfChange, NodeId } from './types.js';

const enc = new TextEncoder();
const _dec = new TextDecoder();

interface Member {
  id: NodeId;
  host: RaftHost;
  storage: DurableStorage;
  sm: RecordingStateMachine;
}

type Members = Map<NodeId, Member>;

const founders = ['a', 'b', 'c'];
let running: RaftHost[] = [];

afterEach(async () => {
  await Promise.all(running.map((h) => h.stop()));
  running = [];
});

const random = seededRandom(7);

function newMember(
  id: NodeId,
  net: MemoryNetwork,
  extra: Partial<RaftHostOptions>,
  storage: DurableStorage = new SyncedMemoryStorage(),
): Member {
  const sm = new RecordingStateMachine();
  const host = new RaftHost({
    id,
    voters: founders,
    bootstrap: 'initial',
    storage,
    transport: net.createTransport(id),
    stateMachine: sm,
    tickMs: 10,
    electionTicks: 5,
    heartbeatTicks: 1,
    random,
    logger: { info: () => {}, warn: () => {}, error: (msg, o) => console.error(msg, o) },
    ...extra,
  });
  running.push(host);
  return { id, host, storage, sm };
}

/** Starts a member that joins the running cluster. */
async function startJoiner(id: NodeId, net: MemoryNetwork, members: Members, extra = {}): Promise<Member> {
  const m = newMember(id, net, { voters: [], bootstrap: 'join', ...extra });
  members.set(id, m);
  await m.host.start();
  return m;
}

async function startFounders(extra: Partial<RaftHostOptions> = {}) {
  const net = new MemoryNetwork();
  const members: Members = new Map();
  for (const id of founders) members.set(id, newMember(id, net, extra));
  await Promise.all([...members.values()].map((m) => m.host.start()));
  return { net, members };
}

async function leaderOf(members: Members, among: NodeId[]): Promise<Member> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const leaders = among.filter((id) => members.get(id)!.host.status().role === 'leader');
    if (leaders.length === 1) {
      const leader = members.get(leaders[0])!;
      if (among.every((id) => members.get(id)!.host.status().leader === leader.id)) return leader;
    }
    if (Date.now() > deadline) throw new Error('no agreed leader within 5 s');
    await sleep(10);
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function write(leader: Member, prefix: string, n: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, j) =>
      leader.host.propose(enc.encode(`${prefix}-${i + j}`)),
    );
    for (const r of await Promise.all(batch)) last = Math.max(last, r.index);
  }
  return last;
}

async function appliedEverywhere(members: Members, ids: NodeId[], index: number): Promise<void> {
  await waitFor(() => ids.every((id) => members.get(id)!.host.stats().applied >= index), `apply of ${index}`);
}

/** The configuration changes held in a storage's log, in order. */
function confEntries(storage: DurableStorage): Array<ConfChange & { index: number; term: number }> {
  const ents = storage.entries(storage.firstIndex(), storage.lastIndex() + 1);
  return ents
    .filter((e) => e.type === 'conf')
    .map((e) => ({ ...decodeConfChange(e.data), index: e.index, term: e.term }));
}

const bootstrapConf = founders.map((node, i) => ({ type: 'addVoter', node, index: i + 1, term: 1 }));

describe('RaftHost membership (bootstrap entries, join, add and remove members)', () => {
  it("bootstraps with 'initial': the configuration is in the log, a leader is elected and commits", async () => {
    const t0 = Date.now();
    const { members } = await startFounders();
    for (const m of members.values()) {
      expect(confEntries(m.storage).slice(0, 3)).toEqual(bootstrapConf);
      expect(m.storage.initialState().hardState.commit).toBeGreaterThanOrEqual(3);
    }
    const leader = await leaderOf(members, founders);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(leader.host.status().term).toBeGreaterThan(1);
    const last = await write(leader, 'w', 20);
    await appliedEverywhere(members, founders, last);
    for (const id of founders) {
      const m = members.get(id)!;
      expect(m.host.status().voters).toEqual(founders);
      expect(m.host.status().learners).toEqual([]);
      expect(m.sm.writes).toEqual(leader.sm.writes);
    }
    expect(leader.sm.writes).toHaveLength(20);
  });

  it('adds a joining node as learner, catches it up, promotes it, and survives losing a founder', async () => {
    const { net, members } = await startFounders();
    let leader = await leaderOf(members, founders);
    await write(leader, 'before', 30);
    const d = await startJoiner('d', net, members);
    await sleep(150); // more than two election timeouts: a joiner never campaigns on its own
    expect(d.host.status()).toMatchObject({ role: 'follower', term: 0, voters: [], learners: [] });
    await leader.host.addMember('d', { catchUpMarginEntries: 0 });
    expect(leader.host.status().voters).toEqual(['a', 'b', 'c', 'd']);
    const mid = await write(leader, 'mid', 10);
    const all = [...founders, 'd'];
    await appliedEverywhere(members, all, mid);
    expect(d.sm.restores).toBe(0); // caught up from the log, bootstrap entries included
    expect(confEntries(d.storage)).toEqual([
      ...bootstrapConf,
      expect.objectContaining({ type: 'addLearner', node: 'd' }),
      expect.objectContaining({ type: 'addVoter', node: 'd' }),
    ]);
    expect(d.host.status().voters).toEqual(['a', 'b', 'c', 'd']);
    expect(d.sm.writes).toEqual(leader.sm.writes);

    // 4 voters, quorum 3: the cluster survives stopping the leader (a founder).
    await leader.host.stop();
    const rest = all.filter((id) => id !== leader.id);
    leader = await leaderOf(members, rest);
    const after = await write(leader, 'after', 5);
    await appliedEverywhere(members, rest, after);
    for (const id of rest) expect(members.get(id)!.sm.writes).toEqual(leader.sm.writes);
    expect(d.sm.writes).toHaveLength(45);
  });

  it('removing a member shrinks the quorum', async () => {
    const { net, members } = await startFounders();
    let leader = await leaderOf(members, founders);
    await startJoiner('d', net, members);
    await leader.host.addMember('d');
    let alive = [...founders, 'd'];
    // Stop one follower: 3 of 4 voters still commit.
    const gone = alive.find((id) => id !== leader.id)!;
    await members.get(gone)!.host.stop();
    alive = alive.filter((id) => id !== gone);
    await write(leader, 'three-of-four', 3);
    await leader.host.removeMember(gone);
    expect(leader.host.status().voters).toEqual(alive.slice().sort());
    // Now 3 voters, quorum 2: stopping one more follower leaves a working majority. With the
    // removed member still counted (4 voters), 2 live voters could not commit.
    const second = alive.find((id) => id !== leader.id)!;
    await members.get(second)!.host.stop();
    alive = alive.filter((id) => id !== second);
    leader = await leaderOf(members, alive);
    const last = await write(leader, 'two-of-three', 5);
    await appliedEverywhere(members, alive, last);
    for (const id of alive) {
      expect(members.get(id)!.host.status().voters).not.toContain(gone);
      expect(members.get(id)!.sm.writes.slice(-5)).toEqual(
        Array.from({ length: 5 }, (_, i) => `two-of-three-${i}`),
      );
    }
  });

  it('a node joining after the leader compacted its log catches up via snapshot with the right configuration', async () => {
    const opts = { snapshotEveryEntries: 20, compactionMarginEntries: 5 };
    const { net, members } = await startFounders(opts);
    const leader = await leaderOf(members, founders);
    await write(leader, 'old', 60);
    // The bootstrap entries are gone from the leader's log: only its snapshot carries them.
    expect(leader.storage.firstIndex()).toBeGreaterThan(10);
    const d = await startJoiner('d', net, members, opts);
    await leader.host.addMember('d', { catchUpMarginEntries: 0 });
    const last = await write(leader, 'new', 3);
    const all = [...founders, 'd'];
    await appliedEverywhere(members, all, last);
    expect(d.sm.restores).toBeGreaterThanOrEqual(1);
    expect(d.storage.snapshot().index).toBeGreaterThan(0);
    expect(d.sm.writes).toEqual(leader.sm.writes);
    expect(d.sm.writes).toHaveLength(63);
    for (const id of all) expect(members.get(id)!.host.status().voters).toEqual(all);
    // The joiner is a full voter: it can lead.
    leader.host.transferLeadership('d');
    await waitFor(() => d.host.status().role === 'leader', 'd to lead');
    const next = await leaderOf(members, all);
    expect(next.id).toBe('d');
    const more = await d.host.propose(enc.encode('led-by-d'));
    await appliedEverywhere(members, all, more.index);
  });

  it("restarts 'initial' members over their FileStorage without writing bootstrap entries again", async () => {
    const root = await mkdtemp(join(tmpdir(), 'raft-membership-test-'));
    try {
      const net = new MemoryNetwork();
      const open = async () => {
        const members: Members = new Map();
        for (const id of founders) {
          members.set(id, newMember(id, net, {}, await FileStorage.open(join(root, id))));
        }
        return members;
      };
      const first = await open();
      await Promise.all([...first.values()].map((m) => m.host.start()));
      const leader = await leaderOf(first, founders);
      const last = await write(leader, 'f', 20);
      await appliedEverywhere(first, founders, last);
      const expected = leader.sm.writes;
      await Promise.all([...first.values()].map((m) => m.host.stop()));

      const second = await open(); // constructed, not started: the bootstrap write would be done by now
      for (const m of second.values()) {
        expect(m.storage.initialState().hardState.term).toBeGreaterThan(1);
        expect(m.storage.lastIndex()).toBeGreaterThanOrEqual(last);
        expect(confEntries(m.storage)).toEqual(bootstrapConf);
      }
      await Promise.all([...second.values()].map((m) => m.host.start()));
      const again = await leaderOf(second, founders);
      const next = await again.host.propose(enc.encode('after-restart'));
      expect(next.index).toBeGreaterThan(last);
      await appliedEverywhere(second, founders, next.index);
      for (const m of second.values()) {
        expect(m.host.status().voters).toEqual(founders);
        expect(m.sm.writes).toEqual([...expected, 'after-restart']);
        expect(confEntries(m.storage)).toEqual(bootstrapConf);
      }
      await Promise.all([...second.values()].map((m) => m.host.stop()));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses inconsistent bootstrap options and storages initialized without bootstrap entries', () => {
    const net = new MemoryNetwork();
    const make =
      (extra: Partial<RaftHostOptions>, storage = new SyncedMemoryStorage()) =>
      () =>
        new RaftHost({
          id: 'a',
          voters: founders,
          storage,
          transport: net.createTransport('a'),
          stateMachine: new RecordingStateMachine(),
          ...extra,
        });
    expect(make({ bootstrap: 'join' })).toThrow(RaftConfigError);
    expect(make({ bootstrap: 'initial', voters: ['b', 'c'] })).toThrow(RaftConfigError);
    expect(make({ bootstrap: 'initial', voters: ['a', 'a'] })).toThrow(RaftConfigError);
    const legacy = new SyncedMemoryStorage();
    legacy.append([{ index: 1, term: 2, type: 'normal', data: new Uint8Array(0) }]);
    legacy.setHardState({ term: 2, commit: 1 });
    expect(make({ bootstrap: 'initial' }, legacy)).toThrow(/without bootstrap entries/);
    expect(make({ bootstrap: 'join', voters: [] }, legacy)).toThrow(/without bootstrap entries/);
    // A bootstrap torn by a crash (entries without the hard state) is written again.
    const torn = new SyncedMemoryStorage();
    torn.append([{ index: 1, term: 1, type: 'normal', data: enc.encode('torn') }]);
    make({ bootstrap: 'initial' }, torn)();
    expect(confEntries(torn)).toEqual(bootstrapConf);
    expect(torn.lastIndex()).toBe(3);
    expect(torn.initialState().hardState).toEqual({ term: 1, commit: 3 });
  });
});

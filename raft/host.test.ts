import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingStateMachine, SyncedMemoryStorage, seededRandom } from '../test/fixtures/raft-host.js';
import {
  HostStoppedError,
  LeaderWaitTimeoutError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalOutcomeUnknownError,
  ReadIndexTimeoutError,
  ResourceExhaustedError,
} from './errors.js';
import { FileStorage } from './file-storage.js';
import { RaftHost, type RaftHostOptions } from './host.js';
import { MemoryNetwork } from './memory-transport.js';
import type { DurableStorage } from './ports.js';
import type { MemoryStorage } from './storage.js';
import type { NodeId } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Member {
  id: NodeId;
  host: RaftHost;
  storage: MemoryStorage & DurableStorage;
  sm: RecordingStateMachine;
}

const ids = ['a', 'b', 'c'];
let running: RaftHost[] = [];

afterEach(async () => {
  await Promise.all(running.map((h) => h.stop()));
  running = [];
});

const random = seededRandom(42);

function newMember(
  id: NodeId,
  net: MemoryNetwork,
  extra: Partial<RaftHostOptions>,
  storage: MemoryStorage & DurableStorage = new SyncedMemoryStorage(),
): Member {
  const sm = new RecordingStateMachine();
  const host = new RaftHost({
    id,
    voters: ids,
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

async function startCluster(extra: Partial<RaftHostOptions> = {}) {
  const net = new MemoryNetwork();
  const members = new Map<NodeId, Member>();
  for (const id of ids) members.set(id, newMember(id, net, extra));
  await Promise.all([...members.values()].map((m) => m.host.start()));
  return { net, members };
}

async function leaderOf(members: Map<NodeId, Member>, among = ids): Promise<Member> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const leaders = among.filter((id) => members.get(id)!.host.status().role === 'leader');
    if (leaders.length === 1) {
      const leader = members.get(leaders[0])!;
      const agreed = among.every((id) => members.get(id)!.host.status().leader === leader.id);
      if (agreed) return leader;
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

function followers(members: Map<NodeId, Member>, leader: Member): Member[] {
  return [...members.values()].filter((m) => m !== leader);
}

describe('RaftHost', () => {
  it('elects a leader that every host reports', async () => {
    const { members } = await startCluster();
    const seen = await Promise.all(ids.map((id) => members.get(id)!.host.waitForLeader(5_000)));
    const leader = await leaderOf(members);
    expect(leader.host.status().role).toBe('leader');
    // waitForLeader may resolve with an earlier term's leader; eventually all agree.
    expect(seen.every((s) => ids.includes(s))).toBe(true);
  });

  it('applies proposals on every host in the same order', async () => {
    const { members } = await startCluster();
    const leader = await leaderOf(members);
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await leader.host.propose(enc.encode(`seq-${i}`)));
    const batch = await Promise.all(
      Array.from({ length: 20 }, (_, i) => leader.host.propose(enc.encode(`par-${i}`))),
    );
    const indexes = [...results, ...batch].map((r) => r.index);
    expect(new Set(indexes).size).toBe(30);
    expect(leader.sm.writes).toHaveLength(30);
    const last = Math.max(...indexes);
    await waitFor(() => ids.every((id) => members.get(id)!.host.stats().applied >= last), 'apply everywhere');
    for (const id of ids) expect(members.get(id)!.sm.writes).toEqual(leader.sm.writes);
    expect(leader.sm.writes.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `seq-${i}`));
  });

  it('rejects a proposal on a follower with NotLeaderError and a leader hint', async () => {
    const { members } = await startCluster();
    const leader = await leaderOf(members);
    const follower = followers(members, leader)[0];
    const err = await follower.host.propose(enc.encode('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).code).toBe('NOT_LEADER');
    expect((err as NotLeaderError).leaderHint).toBe(leader.id);
  });

  it('group-commits proposals made in one turn into few fsyncs', async () => {
    const { members } = await startCluster();
    const leader = await leaderOf(members);
    await leader.host.propose(enc.encode('warm-up'));
    const before = leader.host.stats();
    const storage = leader.storage as SyncedMemoryStorage;
    const syncsBefore = storage.syncs;
    const all = await Promise.all(
      Array.from({ length: 200 }, (_, i) => leader.host.propose(enc.encode(`burst-${i}`))),
    );
    const after = leader.host.stats();
    const fsyncs = after.fsyncs - before.fsyncs;
    const entries = after.entriesPersisted - before.entriesPersisted;
    expect(entries).toBeGreaterThanOrEqual(200);
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThanOrEqual(3);
    expect(entries / fsyncs).toBeGreaterThan(50);
    expect(storage.syncs - syncsBefore).toBe(fsyncs);
    expect(after.entriesPerFsync).toBeGreaterThan(1);
    expect(after.proposalsPending).toBe(0);
    // All 200 in one Ready: consecutive indexes in proposal order.
    const first = all[0].index;
    expect(all.map((r) => r.index)).toEqual(Array.from({ length: 200 }, (_, i) => first + i));
  });

  it('serves a linearizable read on a follower that sees a completed write', async () => {
    const { members } = await startCluster();
    const leader = await leaderOf(members);
    const follower = followers(members, leader)[0];
    for (let round = 0; round < 5; round++) {
      const w = await leader.host.propose(enc.encode(`read-${round}`));
      const [r1, r2] = await Promise.all([follower.host.readIndex(), follower.host.readIndex()]);
      expect(r1).toBeGreaterThanOrEqual(w.index);
      expect(r2).toBe(r1); // one turn's reads share one ReadIndex request
      expect(follower.host.stats().applied).toBeGreaterThanOrEqual(w.index);
      expect(follower.sm.writes).toContain(`read-${round}`);
      const lr = await leader.host.readIndex();
      expect(lr).toBeGreaterThanOrEqual(w.index);
    }
  });

  it('elects a new leader after the leader stops, and proposals continue', async () => {
    const { members } = await startCluster();
    const leader = await leaderOf(members);
    const before = await leader.host.propose(enc.encode('before'));
    await leader.host.stop();
    const rest = ids.filter((id) => id !== leader.id);
    const t0 = Date.now();
    const next = await leaderOf(members, rest);
    expect(next.id).not.toBe(leader.id);
    expect(Date.now() - t0).toBeLessThan(3_000);
    const after = await next.host.propose(enc.encode('after'));
    expect(after.index).toBeGreaterThan(before.index);
    expect(after.term).toBeGreaterThan(before.term);
    const other = members.get(rest.find((id) => id !== next.id)!)!;
    await waitFor(() => other.host.stats().applied >= after.index, 'apply on the other survivor');
    expect(other.sm.writes).toEqual(['before', 'after']);
    expect(next.sm.writes).toEqual(['before', 'after']);
  });

  it('snapshots, compacts, and catches a partitioned follower up through InstallSnapshot', async () => {
    const { net, members } = await startCluster({ snapshotEveryEntries: 50, compactionMarginEntries: 10 });
    const leader = await leaderOf(members);
    const lagging = followers(members, leader)[0];
    await leader.host.propose(enc.encode('w-0'));
    await waitFor(() => lagging.host.stats().applied >= leader.host.stats().applied, 'initial catch-up');
    net.isolate(lagging.id);
    for (let i = 1; i < 300; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => leader.host.propose(enc.encode(`w-${i + j}`))));
    }
    expect(leader.storage.snapshot().index).toBeGreaterThan(200);
    // The leader no longer holds the entries the lagging follower needs.
    expect(leader.storage.firstIndex()).toBeGreaterThan(lagging.host.status().lastIndex + 1);
    expect(lagging.sm.restores).toBe(0);
    net.heal();
    const target = leader.host.stats().applied;
    await waitFor(() => lagging.host.stats().applied >= target, 'lagging follower catch-up', 8_000);
    expect(lagging.sm.restores).toBeGreaterThanOrEqual(1);
    expect(lagging.storage.snapshot().index).toBeGreaterThan(0);
    expect(lagging.sm.writes).toHaveLength(301);
    expect(lagging.sm.writes).toEqual(leader.sm.writes);
    // And it keeps replicating normally afterwards.
    const more = await leader.host.propose(enc.encode('after-heal'));
    await waitFor(() => lagging.host.stats().applied >= more.index, 'replication after catch-up');
    expect(lagging.sm.writes.at(-1)).toBe('after-heal');
  });

  it('works through a backlog a Ready at a time, answering in between: its leader keeps the quorum', async () => {
    const changes: { id: string; leader?: string; term: number }[] = [];
    const { net, members } = await startCluster({
      // Check-quorum window: 10 ticks of 20 ms. Entries of ~6 bytes: about ten per Ready.
      tickMs: 20,
      electionTicks: 10,
      maxApplyingBytes: 64,
      logger: {
        info: (msg, o) => {
          if (msg === 'leader changed') changes.push(o as { id: string; leader?: string; term: number });
        },
        warn: () => {},
        error: (msg, o) => console.error(msg, o),
      },
    });
    const leader = await leaderOf(members);
    const [lagging, other] = followers(members, leader);
    await leader.host.propose(enc.encode('w-0'));
    await waitFor(() => lagging.host.stats().applied >= leader.host.stats().applied, 'initial catch-up');
    net.isolate(lagging.id);
    for (let i = 1; i < 301; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => leader.host.propose(enc.encode(`w-${i + j}`))));
    }
    // The lagging follower applies slowly (2 ms an entry, without blocking the process the
    // whole cluster shares: the backlog takes 600 ms or more, three windows), and the leader's
    // quorum now rests on it alone.
    const apply = lagging.sm.apply.bind(lagging.sm);
    lagging.sm.apply = async (e) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      apply(e);
    };
    const term = leader.host.status().term;
    const seen = changes.length;
    net.heal();
    net.isolate(other.id);
    const target = leader.host.stats().applied;
    await waitFor(() => lagging.host.stats().applied >= target, 'lagging follower catch-up', 8_000);
    expect(lagging.sm.writes).toEqual(leader.sm.writes);
    expect(lagging.host.stats().applyYields).toBeGreaterThan(10);
    // Had it applied the backlog in one go, unheard for 600 ms, the leader would have stepped down.
    expect(changes.slice(seen).filter((c) => c.id === leader.id)).toEqual([]);
    expect(leader.host.status()).toMatchObject({ role: 'leader', term });
  });

  it('with snapshotEveryLogBytes, snapshots a log of few but large entries', async () => {
    const { members } = await startCluster({
      snapshotEveryEntries: 1_000_000,
      snapshotEveryLogBytes: 4_096,
      compactionMarginEntries: 5,
    });
    const leader = await leaderOf(members);
    const big = 'x'.repeat(1_000);
    for (let i = 0; i < 4; i += 1) await leader.host.propose(enc.encode(`w-${i}-${big}`));
    // 4,000 bytes in 4 entries: not yet.
    expect(leader.storage.snapshot().index).toBe(0);
    const fifth = await leader.host.propose(enc.encode(`w-4-${big}`));
    await waitFor(() => leader.storage.snapshot().index >= fifth.index, 'a snapshot by bytes');
    for (let i = 5; i < 12; i += 1) await leader.host.propose(enc.encode(`w-${i}-${big}`));
    await waitFor(() => leader.storage.snapshot().index > fifth.index, 'the next one, by bytes again');
  });

  it('with snapshotLogBytesRatio, waits for a log as large as the last snapshot before the next', async () => {
    const created: { id: string; index: number; bytes: number }[] = [];
    const { members } = await startCluster({
      snapshotEveryEntries: 10,
      compactionMarginEntries: 5,
      snapshotLogBytesRatio: 1,
      logger: {
        info: (msg, o) => {
          if (msg === 'created snapshot') {
            const f = o as { id: string; index: number; bytes: number };
            created.push({ id: f.id, index: f.index, bytes: f.bytes });
          }
        },
        warn: () => {},
        error: (msg, o) => console.error(msg, o),
      },
    });
    const leader = await leaderOf(members);
    // Entries of 8 bytes; the recording state machine's snapshot holds every write so far.
    for (let i = 0; i < 300; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          leader.host.propose(enc.encode(`w-${String(i + j).padStart(6, '0')}`)),
        ),
      );
    }
    await waitFor(() => created.filter((c) => c.id === leader.id).length >= 2, 'two snapshots on the leader');
    const mine = created.filter((c) => c.id === leader.id);
    for (let k = 1; k < mine.length; k += 1) {
      // Every entry applied since the previous cut counts (8 bytes each, at most one per index).
      expect((mine[k].index - mine[k - 1].index) * 8).toBeGreaterThanOrEqual(mine[k - 1].bytes);
    }
    // Still fewer than the entry count alone would take (one per 10 entries).
    expect(mine.length).toBeLessThan(30);
  });

  it('with snapshotJitter, replicas of one log snapshot at their own points past the threshold', async () => {
    const firsts = new Map<string, number>();
    const net = new MemoryNetwork();
    const members = new Map<NodeId, Member>();
    for (const [k, id] of ids.entries()) {
      members.set(
        id,
        newMember(id, net, {
          snapshotEveryEntries: 40,
          compactionMarginEntries: 5,
          snapshotJitter: 0.5,
          // Each replica draws from its own source, as each master does.
          random: seededRandom(11 + k * 7),
          logger: {
            info: (msg, o) => {
              const f = o as { id: string; index: number };
              if (msg === 'created snapshot' && !firsts.has(f.id)) firsts.set(f.id, f.index);
            },
            warn: () => {},
            error: (msg, o) => console.error(msg, o),
          },
        }),
      );
    }
    await Promise.all([...members.values()].map((m) => m.host.start()));
    const leader = await leaderOf(members);
    for (let i = 0; i < 80; i += 1) await leader.host.propose(enc.encode(`w-${i}`));
    await waitFor(() => firsts.size === 3, 'a snapshot on every replica');
    const points = [...firsts.values()];
    // Each past its threshold scaled by at most 1.5 (and the entries of one Ready beyond it).
    for (const index of points) {
      expect(index).toBeGreaterThanOrEqual(40);
      expect(index).toBeLessThanOrEqual(62);
    }
    // Not all at one index, and not all at the unscaled threshold.
    expect(new Set(points).size).toBeGreaterThan(1);
    expect(Math.max(...points)).toBeGreaterThan(45);
  });

  it('keeps committing and applying while a snapshot encodes; stores the cut it took, then compacts', async () => {
    const { members } = await startCluster({ snapshotEveryEntries: 30, compactionMarginEntries: 5 });
    const leader = await leaderOf(members);
    // The leader's state machine takes its cut at the call and finishes encoding on release.
    const cuts: { writes: number; release: () => void }[] = [];
    const sm = leader.sm;
    sm.snapshot = (() => {
      const cut = JSON.stringify(sm.writes);
      const writes = sm.writes.length;
      return new Promise<Uint8Array>((resolve) => {
        cuts.push({ writes, release: () => resolve(enc.encode(cut)) });
      });
    }) as unknown as typeof sm.snapshot;
    for (let i = 0; i < 40; i += 1) await leader.host.propose(enc.encode(`w-${i}`));
    await waitFor(() => cuts.length === 1, 'a snapshot started');
    const cutAt = leader.host.stats().applied;
    // Writes keep committing while the encoding is held back, and no second snapshot starts.
    for (let i = 40; i < 120; i += 1) await leader.host.propose(enc.encode(`w-${i}`));
    expect(leader.storage.snapshot().index).toBe(0);
    expect(cuts).toHaveLength(1);
    cuts[0].release();
    await waitFor(() => leader.storage.snapshot().index > 0, 'the snapshot stored');
    const snap = leader.storage.snapshot();
    expect(snap.index).toBeLessThanOrEqual(cutAt);
    expect((JSON.parse(dec.decode(snap.data)) as string[]).length).toBe(cuts[0].writes);
    expect(leader.storage.firstIndex()).toBeGreaterThan(1);
    // The next one is due again (applied is far past the stored cut) and starts.
    await leader.host.propose(enc.encode('more'));
    await waitFor(() => cuts.length === 2, 'the next snapshot started');
    cuts[1].release();
    expect(sm.writes).toHaveLength(121);
  });

  it('rejects pending proposals and reads with HostStoppedError on stop', async () => {
    const { net, members } = await startCluster();
    const leader = await leaderOf(members);
    for (const f of followers(members, leader)) net.isolate(f.id);
    const pending = Array.from({ length: 5 }, (_, i) =>
      leader.host.propose(enc.encode(`never-${i}`)).catch((e: unknown) => e),
    );
    const read = leader.host.readIndex().catch((e: unknown) => e);
    await sleep(30);
    expect(leader.host.stats().proposalsPending).toBe(5);
    await leader.host.stop();
    for (const err of await Promise.all(pending)) {
      expect(err).toBeInstanceOf(HostStoppedError);
      expect((err as HostStoppedError).code).toBe('HOST_STOPPED');
    }
    expect(await read).toBeInstanceOf(HostStoppedError);
    expect(leader.host.stats().proposalsPending).toBe(0);
    await expect(leader.host.propose(enc.encode('late'))).rejects.toBeInstanceOf(HostStoppedError);
  });

  it('restarts over its storage: restores the snapshot, replays the log, rejoins', async () => {
    const { net, members } = await startCluster({ snapshotEveryEntries: 20, compactionMarginEntries: 5 });
    const leader = await leaderOf(members);
    const victim = followers(members, leader)[0];
    for (let i = 0; i < 50; i++) await leader.host.propose(enc.encode(`r-${i}`));
    await waitFor(() => victim.host.stats().applied >= leader.host.stats().applied, 'victim catch-up');
    const snapIndex = victim.storage.snapshot().index;
    expect(snapIndex).toBeGreaterThan(0);
    await victim.host.stop();
    const reborn = newMember(
      victim.id,
      net,
      { snapshotEveryEntries: 20, compactionMarginEntries: 5 },
      victim.storage,
    );
    await reborn.host.start();
    expect(reborn.sm.restores).toBe(1);
    expect(reborn.host.stats().applied).toBeGreaterThanOrEqual(snapIndex);
    members.set(victim.id, reborn);
    const more = await leader.host.propose(enc.encode('after-restart'));
    await waitFor(() => reborn.host.stats().applied >= more.index, 'reborn catch-up');
    expect(reborn.sm.writes).toEqual(leader.sm.writes);
  });

  it('times out a read on an isolated follower with ReadIndexTimeoutError', async () => {
    const { net, members } = await startCluster({ readTimeoutMs: 150 });
    const leader = await leaderOf(members);
    const follower = followers(members, leader)[0];
    net.isolate(follower.id);
    const t0 = Date.now();
    const err = await follower.host.readIndex().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReadIndexTimeoutError);
    expect((err as ReadIndexTimeoutError).code).toBe('READ_INDEX_TIMEOUT');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(Date.now() - t0).toBeLessThan(1_000);
    net.heal();
    // Reads resume once the follower hears from the leader again.
    await waitFor(() => follower.host.status().leader === leader.id, 'follower rejoins');
    await expect(follower.host.readIndex()).resolves.toBeGreaterThan(0);
  });

  it("reports a deposed leader's never-applied proposal as outcome unknown after proposalTimeoutMs", async () => {
    const { net, members } = await startCluster({ proposalTimeoutMs: 200 });
    const leader = await leaderOf(members);
    for (const f of followers(members, leader)) net.isolate(f.id);
    const t0 = Date.now();
    const err = await leader.host.propose(enc.encode('stranded')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProposalOutcomeUnknownError);
    expect((err as ProposalOutcomeUnknownError).code).toBe('PROPOSAL_OUTCOME_UNKNOWN');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(leader.host.stats().proposalsPending).toBe(0);
  });

  it('bounds pending proposals with ResourceExhaustedError', async () => {
    const { net, members } = await startCluster({ pendingProposalsMax: 3 });
    const leader = await leaderOf(members);
    for (const f of followers(members, leader)) net.isolate(f.id);
    const pending = Array.from({ length: 3 }, () => leader.host.propose(enc.encode('p')).catch(() => {}));
    const err = await leader.host.propose(enc.encode('one too many')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as ResourceExhaustedError).code).toBe('RESOURCE_EXHAUSTED');
    expect(leader.host.stats().proposalsPending).toBe(3);
    await leader.host.stop();
    await Promise.all(pending);
  });

  it('applies a configuration change and drops a concurrent second one', async () => {
    const { members } = await startCluster();
    const leader = await leaderOf(members);
    const first = leader.host.proposeConfChange({ type: 'addLearner', node: 'd' });
    const second = await leader.host
      .proposeConfChange({ type: 'addLearner', node: 'e' })
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(ProposalDroppedError);
    const { index } = await first;
    expect(leader.host.status().learners).toEqual(['d']);
    expect(leader.host.stats().applied).toBeGreaterThanOrEqual(index);
    await waitFor(
      () => ids.every((id) => members.get(id)!.host.status().learners.includes('d')),
      'conf everywhere',
    );
  });

  it('rejects waitForLeader on a lone node with LeaderWaitTimeoutError', async () => {
    const net = new MemoryNetwork();
    const lone = newMember('a', net, {});
    await lone.host.start();
    const err = await lone.host.waitForLeader(50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaderWaitTimeoutError);
  });

  it('runs a single-voter group: proposals commit and reads answer locally', async () => {
    const net = new MemoryNetwork();
    const solo = newMember('solo', net, { voters: ['solo'] } as Partial<RaftHostOptions>);
    await solo.host.start();
    expect(await solo.host.waitForLeader(2_000)).toBe('solo');
    const r = await Promise.all(
      Array.from({ length: 10 }, (_, i) => solo.host.propose(enc.encode(`s-${i}`))),
    );
    expect(await solo.host.readIndex()).toBeGreaterThanOrEqual(r[9].index);
    expect(solo.sm.writes).toHaveLength(10);
  });

  it('persists through FileStorage with group commit, and a whole cluster restarts from disk', async () => {
    const root = await mkdtemp(join(tmpdir(), 'raft-host-test-'));
    try {
      const opts = { snapshotEveryEntries: 100, compactionMarginEntries: 10 };
      const net = new MemoryNetwork();
      const open = async () => {
        const members = new Map<NodeId, Member>();
        for (const id of ids) {
          const storage = await FileStorage.open(join(root, id));
          members.set(id, newMember(id, net, opts, storage));
        }
        await Promise.all([...members.values()].map((m) => m.host.start()));
        return members;
      };
      const first = await open();
      const leader = await leaderOf(first);
      const fileStorage = leader.storage as FileStorage;
      const syncsBefore = fileStorage.walStats.fdatasyncs;
      const burst = await Promise.all(
        Array.from({ length: 150 }, (_, i) => leader.host.propose(enc.encode(`f-${i}`))),
      );
      const fdatasyncs = fileStorage.walStats.fdatasyncs - syncsBefore;
      expect(fdatasyncs).toBeGreaterThanOrEqual(1);
      expect(fdatasyncs).toBeLessThanOrEqual(6); // the burst's Ready, a snapshot, maybe a commit Ready
      const last = burst[149].index;
      await waitFor(() => ids.every((id) => first.get(id)!.host.stats().applied >= last), 'apply everywhere');
      const expected = leader.sm.writes;
      expect(expected).toHaveLength(150);
      await Promise.all([...first.values()].map((m) => m.host.stop()));

      const second = await open();
      // Each replica took a snapshot (every 100 entries) and replays the WAL after it.
      for (const id of ids) expect(second.get(id)!.sm.restores).toBe(1);
      const again = await leaderOf(second);
      const next = await again.host.propose(enc.encode('after-restart'));
      expect(next.index).toBeGreaterThan(last);
      await waitFor(
        () => ids.every((id) => second.get(id)!.host.stats().applied >= next.index),
        'apply again',
      );
      for (const id of ids) expect(second.get(id)!.sm.writes).toEqual([...expected, 'after-restart']);
      await Promise.all([...second.values()].map((m) => m.host.stop()));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

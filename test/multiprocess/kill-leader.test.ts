/**
 * Three kv-node processes (RaftHost + FileStorage with fsync + GrpcTransport on loopback).
 * Concurrent writers run while the leader is killed with SIGKILL and later restarted on its
 * data dir. Afterwards every acknowledged write must sit at its acknowledged index on every
 * node, and the three applied sequences must be identical.
 */
import { afterAll, expect, test } from 'vitest';
import { KvClient, KvCluster, type PutAck, PutTimeoutError, sleep } from './cluster.js';
import type { AppliedWrite } from './kv-proto.js';

const writersCount = 8;
/** Bound on the writes of one writer (time bounds them first at this machine's rates). */
const writesPerWriterMax = 20_000;
const writeBeforeKillMs = 2_000;
const writeWhileDownMs = 2_500;
const writeAfterRestartMs = 1_500;
/** Deadline of one write including its retries; past it the write counts as unacknowledged. */
const putDeadlineMs = 5_000;
const leaderWaitMs = 15_000;
const convergeTimeoutMs = 15_000;
const valueBytes = 64;
const snapshotEveryEntries = 200;

interface Ack extends PutAck {
  key: string;
  atMs: number;
}

let cluster: KvCluster | undefined;

/** The first position where two applied sequences differ, described; undefined when equal. */
function firstDifference(a: AppliedWrite[], b: AppliedWrite[]): string | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i]?.index !== b[i]?.index || a[i]?.key !== b[i]?.key) {
      return `at position ${i}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])} (lengths ${a.length}, ${b.length})`;
    }
  }
  return undefined;
}

afterAll(async () => {
  await cluster?.close();
});

test('kill -9 of the leader loses no acknowledged write and the replicas apply one sequence', {
  timeout: 60_000,
}, async () => {
  cluster = await KvCluster.start({
    dirPrefix: 'cox-kill-leader-',
    // Snapshot and compact often, so the restarted node may have to catch up from a snapshot.
    nodeArgs: ['--snapshot-every-entries', String(snapshotEveryEntries), '--compaction-margin-entries', '50'],
  });
  const c = cluster;
  await c.waitForLeader(leaderWaitMs);

  const acks: Ack[] = [];
  const writerErrors: string[] = [];
  let unacknowledged = 0;
  let writing = true;
  const value = new Uint8Array(valueBytes).fill(7);
  const writer = async (w: number): Promise<void> => {
    const client = new KvClient(c, { callTimeoutMs: 1_000 });
    for (let seq = 0; writing && seq < writesPerWriterMax; seq++) {
      const key = `w${w}-${seq}`;
      try {
        const ack = await client.put(key, value, Date.now() + putDeadlineMs);
        acks.push({ ...ack, key, atMs: Date.now() });
      } catch (err) {
        if (!(err instanceof PutTimeoutError)) {
          writerErrors.push(`writer ${w}: ${String(err)}`);
          return;
        }
        unacknowledged++;
      }
    }
  };
  const writers = Array.from({ length: writersCount }, (_, w) => writer(w));

  try {
    await sleep(writeBeforeKillMs);
    const victim = await c.waitForLeader(leaderWaitMs);
    const victimTerm = (await c.status(victim)).term;
    const acksBeforeKill = acks.length;
    const killAtMs = Date.now();
    await c.kill(victim);

    await sleep(writeWhileDownMs);
    const successor = await c.waitForLeader(leaderWaitMs);
    expect(successor).not.toBe(victim);

    await c.startNode(victim);
    await sleep(writeAfterRestartMs);
    writing = false;
    await Promise.all(writers);
    expect(writerErrors).toEqual([]);

    // Acknowledgements for entries of a later term prove the new leader took over.
    const newTermAcks = acks.filter((a) => a.term > victimTerm);
    expect(acksBeforeKill).toBeGreaterThan(0);
    expect(newTermAcks.length).toBeGreaterThan(0);
    const firstNewTermAckMs = Math.min(...newTermAcks.map((a) => a.atMs));

    // Wait until every node has applied everything that was committed.
    const maxAckIndex = Math.max(...acks.map((a) => a.index));
    const convergeDeadline = Date.now() + convergeTimeoutMs;
    for (;;) {
      const sts = await c.statuses();
      const applied = sts.map((s) => s.applied);
      const converged =
        sts.length === c.ids().length &&
        applied.every((a) => a === applied[0] && a >= maxAckIndex) &&
        sts.every((s) => s.commit === sts[0].commit && s.applied === s.commit);
      if (converged) break;
      if (Date.now() > convergeDeadline) {
        throw new Error(
          `replicas did not converge: ${JSON.stringify(sts.map((s) => [s.id, s.commit, s.applied]))}`,
        );
      }
      await sleep(100);
    }

    const dumps = new Map<string, Map<number, string>>();
    const sequences = new Map<string, AppliedWrite[]>();
    for (const id of c.ids()) {
      const writes = await c.dumpAll(id);
      for (let i = 1; i < writes.length; i++) expect(writes[i].index).toBeGreaterThan(writes[i - 1].index);
      dumps.set(id, new Map(writes.map((w) => [w.index, w.key])));
      sequences.set(id, writes);
    }
    const [firstId, ...otherIds] = c.ids();
    for (const id of otherIds) {
      expect(
        firstDifference(sequences.get(firstId)!, sequences.get(id)!),
        `${firstId} vs ${id}`,
      ).toBeUndefined();
    }

    for (const [id, applied] of dumps) {
      const missing = acks.filter((a) => applied.get(a.index) !== a.key);
      expect(missing.map((a) => `${id}: ${a.key}@${a.index}`)).toEqual([]);
    }

    console.log(
      JSON.stringify({
        victim,
        successor,
        acks: acks.length,
        acksBeforeKill,
        acksInNewTerms: newTermAcks.length,
        unacknowledged,
        firstNewTermAckAfterKillMs: firstNewTermAckMs - killAtMs,
        appliedWrites: dumps.get(victim)?.size,
        victimInstalledSnapshot: c.logTail(victim, 1_000_000).includes('installed snapshot'),
      }),
    );
  } finally {
    writing = false;
    await Promise.all(writers);
  }
});

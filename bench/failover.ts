/**
 * `npm run bench:failover`: how long writes stop when the leader dies. 3 Coxswain masters with
 * their default Raft timing; writers create ConfigMaps through an ApiClient holding every
 * master's address. Each round waits for a steady leader with writes flowing, `kill -9`s the
 * leader, and measures the time from the kill to the first acknowledged write that was issued
 * after the kill; then it restarts the killed master over its data dir and lets it catch up.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object:
 * `{ kills, medianMs, p99Ms, maxMs, samplesMs: [...], writers }`.
 *
 * Flags: `--kills 10`, `--writers 4`, `--tick-ms N` and `--election-ticks N` (default: the
 * masters' own).
 */
import { parseArgs } from 'node:util';
import { ApiError } from '../actors/api.js';
import type { ApiClient } from '../actors/grpc-client.js';
import { sleep } from '../test/multiprocess/cluster.js';
import { MasterCluster } from '../test/multiprocess/master-cluster.js';
import { progressTo, runBench } from './lib/output.js';
import { percentile, round2 } from './lib/stats.js';

const namespace = 'default';
const leaderWaitMs = 15_000;
/** How long a round waits for the first write after the kill before it counts as a failure. */
const resumeTimeoutMs = 30_000;
/** Time with a steady leader and writes flowing before each kill. */
const steadyMs = 1_000;
/** Pause of a writer after a failed write. */
const errorBackoffMs = 5;

const progress = progressTo('failover');

interface Writers {
  /** performance.now() of the first ack of a write issued at or after `sinceMs`, once seen. */
  firstAckIssuedAfter(sinceMs: number): number | undefined;
  acks: number;
  stop(): Promise<void>;
}

function startWriters(client: ApiClient, count: number): Writers {
  let running = true;
  /** [issuedAt, ackedAt] of recent acks (bounded: only the latest per writer matters). */
  const acked: { issuedMs: number; ackedMs: number }[] = [];
  const state: Writers = {
    acks: 0,
    firstAckIssuedAfter: (sinceMs) => {
      let best: number | undefined;
      for (const a of acked)
        if (a.issuedMs >= sinceMs && (best === undefined || a.ackedMs < best)) best = a.ackedMs;
      return best;
    },
    stop: async () => {
      running = false;
      await done;
    },
  };
  const one = async (w: number): Promise<void> => {
    for (let seq = 0; running; seq++) {
      const issuedMs = performance.now();
      try {
        await client.create({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `failover-${w}-${seq}`, namespace },
          data: { seq: String(seq) },
        });
        acked.push({ issuedMs, ackedMs: performance.now() });
        if (acked.length > 10_000) acked.splice(0, 5_000);
        state.acks++;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        await sleep(errorBackoffMs);
      }
    }
  };
  const done = Promise.all(Array.from({ length: count }, (_, w) => one(w))).then(() => undefined);
  return state;
}

async function main(): Promise<unknown> {
  const { values } = parseArgs({
    options: {
      kills: { type: 'string', default: '10' },
      writers: { type: 'string', default: '4' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
    },
    strict: true,
  });
  const kills = Number(values.kills);
  const writersCount = Number(values.writers);
  if (![kills, writersCount].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('bad --kills / --writers');
  const tickMs = values['tick-ms'] === undefined ? undefined : Number(values['tick-ms']);
  const electionTicks = values['election-ticks'] === undefined ? undefined : Number(values['election-ticks']);

  progress('starting 3 Coxswain masters');
  const cluster = await MasterCluster.start({
    dirPrefix: 'cox-bench-failover-',
    ...(tickMs !== undefined ? { tickMs } : {}),
    ...(electionTicks !== undefined ? { electionTicks } : {}),
  });
  try {
    await cluster.waitForLeader(leaderWaitMs);
    const client = cluster.client(cluster.ids(), { deadlineMs: 5_000, connectTimeoutMs: 500 });
    const writers = startWriters(client, writersCount);
    const samplesMs: number[] = [];
    try {
      for (let k = 1; k <= kills; k++) {
        const leader = await cluster.waitForLeader(leaderWaitMs);
        const acksBefore = writers.acks;
        await sleep(steadyMs);
        if (writers.acks === acksBefore)
          throw new Error(`round ${k}: no writes acknowledged under leader ${leader}`);
        const killMs = performance.now();
        await cluster.kill(leader);
        const deadline = killMs + resumeTimeoutMs;
        let resumedMs = writers.firstAckIssuedAfter(killMs);
        while (resumedMs === undefined && performance.now() < deadline) {
          await sleep(2);
          resumedMs = writers.firstAckIssuedAfter(killMs);
        }
        if (resumedMs === undefined)
          throw new Error(`round ${k}: no write acknowledged ${resumeTimeoutMs} ms after the kill`);
        const ms = round2(resumedMs - killMs);
        samplesMs.push(ms);
        const successor = await cluster.waitForLeader(leaderWaitMs);
        progress(
          `kill ${k}/${kills}: leader ${leader} killed; writes resumed after ${ms} ms (new leader ${successor})`,
        );
        await cluster.startMember(leader);
        // Let the restarted master catch up before the next round, so every round starts from 3 healthy members.
        const target = (await cluster.status(successor)).members.find((m) => m.id === successor)?.commit ?? 0;
        const caughtUp = Date.now() + leaderWaitMs;
        while (Date.now() < caughtUp) {
          const st = await cluster.status(leader).catch(() => undefined);
          const me = st?.members.find((m) => m.id === leader);
          if (me?.applied !== undefined && me.applied >= target) break;
          await sleep(50);
        }
      }
    } finally {
      await writers.stop();
    }
    const sorted = [...samplesMs].sort((a, b) => a - b);
    return {
      kills,
      medianMs: round2(percentile(sorted, 0.5)),
      p99Ms: round2(percentile(sorted, 0.99)),
      maxMs: sorted[sorted.length - 1],
      samplesMs,
      writers: writersCount,
    };
  } finally {
    await cluster.close();
  }
}

runBench('failover', main);

/**
 * `npm run bench:api`: the API of 3 Coxswain masters (`cox master` processes: Raft with fsync,
 * object actors, gRPC API) against a 3-member etcd (Debian's `etcd-server`) on loopback, driven
 * by the same closed-loop load generator: the `etcd3` client for etcd, our ApiClient for
 * Coxswain, both pointed at the leader first. Per concurrency level and system, three windows:
 * writes (an unconditional replace of the worker's own ConfigMap holding 256 new bytes of data /
 * a put of the worker's own key with a 256-byte value), linearizable reads and serializable
 * reads of that object / key.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object:
 * `{ payloadBytes, warmupMs, measureMs,
 *    levels: [{ concurrency,
 *      coxswain: { writesPerSec, writeP50Ms, writeP99Ms, linReadsPerSec, serReadsPerSec, errors },
 *      etcd: { same keys } | null,
 *      ratio: { writes, linReads, serReads, writeP99 } | null }] }`  (ratio = Coxswain / etcd).
 *
 * Flags: `--levels 1,64`, `--warmup-ms 1000`, `--measure-ms 5000`, `--no-etcd`,
 * `--tick-ms N` (the masters' Raft tick; default theirs).
 */
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import type { ApiClient } from '../actors/grpc-client.js';
import { MasterCluster } from '../test/multiprocess/master-cluster.js';
import { closedLoop, type Issue, type LevelStats } from './lib/closed-loop.js';
import { ensureEtcd, etcdLeader, startEtcd, stopEtcd } from './lib/etcd.js';
import { progressTo, runBench } from './lib/output.js';
import { round2 } from './lib/stats.js';

const payloadBytes = 256;
const namespace = 'default';
/** How long the masters may take to elect a leader. */
const leaderWaitMs = 15_000;

const progress = progressTo('api');

/** One system's numbers at one concurrency level. */
interface SystemLevel {
  writesPerSec: number;
  writeP50Ms: number;
  writeP99Ms: number;
  linReadsPerSec: number;
  serReadsPerSec: number;
  /** Failed operations over the three windows. */
  errors: number;
}

/** The three operations a system offers the load generator, for worker `w`. */
interface Operations {
  write: Issue;
  linRead: Issue;
  serRead: Issue;
}

/** A payload of exactly `payloadBytes` ASCII bytes. */
function payload(): string {
  let s = '';
  for (let i = 0; i < payloadBytes; i++) s += String.fromCharCode(97 + ((i * 31 + 7) % 26));
  return s;
}

async function measure(
  name: string,
  ops: Operations,
  concurrency: number,
  warmupMs: number,
  measureMs: number,
): Promise<SystemLevel> {
  const run = async (what: string, issue: Issue): Promise<LevelStats> => {
    const { writes: _, ...stats } = await closedLoop(issue, concurrency, warmupMs, measureMs);
    progress(`${name} c=${concurrency} ${what}: ${JSON.stringify(stats)}`);
    return stats;
  };
  const writes = await run('writes', ops.write);
  const lin = await run('linearizable reads', ops.linRead);
  const ser = await run('serializable reads', ops.serRead);
  return {
    writesPerSec: writes.opsPerSec,
    writeP50Ms: writes.p50Ms,
    writeP99Ms: writes.p99Ms,
    linReadsPerSec: lin.opsPerSec,
    serReadsPerSec: ser.opsPerSec,
    errors: writes.errors + lin.errors + ser.errors,
  };
}

// ------------------------------------------------------------------ Coxswain

function configMap(w: number, value: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `bench-${w}`, namespace },
    data: { v: value },
  };
}

/**
 * A replace with identical content is a no-op for the master (no new version, no event), while
 * etcd makes a new revision of any put: so every Coxswain write carries a new value, the
 * worker's sequence number over the first bytes of the payload.
 */
function versionedValue(base: string, seq: number): string {
  const stamp = seq.toString(36).padStart(8, '0');
  return stamp + base.slice(stamp.length);
}

function coxOperations(client: ApiClient, workers: number): Operations {
  const base = payload();
  const seqs = new Array<number>(workers).fill(0);
  const keys = Array.from({ length: workers }, (_, w) => ({
    kind: 'ConfigMap',
    namespace,
    name: `bench-${w}`,
  }));
  const settle = (p: Promise<unknown>, done: (err: unknown) => void): void => {
    p.then(() => done(null), done);
  };
  return {
    write: (w, done) => settle(client.update(configMap(w, versionedValue(base, ++seqs[w]))), done),
    linRead: (w, done) => settle(client.get(keys[w], { consistency: 'linearizable' }), done),
    serRead: (w, done) => settle(client.get(keys[w], { consistency: 'serializable' }), done),
  };
}

async function benchCoxswain(
  levels: number[],
  warmupMs: number,
  measureMs: number,
  tickMs: number | undefined,
): Promise<SystemLevel[]> {
  progress('starting 3 Coxswain masters');
  const cluster = await MasterCluster.start({
    dirPrefix: 'cox-bench-api-',
    ...(tickMs !== undefined ? { tickMs } : {}),
  });
  try {
    const leader = await cluster.waitForLeader(leaderWaitMs);
    progress(`leader is ${leader}; cluster dir ${cluster.dir}`);
    // One client (one channel per master) for all workers, the leader first, like etcd3 below.
    const client = cluster.client([leader, ...cluster.ids().filter((id) => id !== leader)], {
      deadlineMs: 10_000,
    });
    const workers = Math.max(...levels);
    const value = payload();
    for (let w = 0; w < workers; w++) await client.create(configMap(w, value));
    const ops = coxOperations(client, workers);
    const results: SystemLevel[] = [];
    for (const concurrency of levels) {
      results.push(await measure('coxswain', ops, concurrency, warmupMs, measureMs));
    }
    const after = await cluster.waitForLeader(leaderWaitMs);
    if (after !== leader)
      progress(`WARNING: leadership moved from ${leader} to ${after}; numbers are suspect`);
    return results;
  } finally {
    await cluster.close();
  }
}

// ------------------------------------------------------------------ etcd

async function benchEtcd(levels: number[], warmupMs: number, measureMs: number): Promise<SystemLevel[]> {
  progress('starting a 3-member etcd cluster');
  const etcd = await startEtcd(progress);
  try {
    const leader = await etcdLeader(etcd.clientUrls);
    progress(`etcd leader is ${etcd.clientUrls[leader]}`);
    const client = new Etcd3({ hosts: etcd.clientUrls[leader] });
    try {
      const workers = Math.max(...levels);
      const value = Buffer.from(payload());
      const keys = Array.from({ length: workers }, (_, w) => Buffer.from(`bench-${w}`));
      for (const key of keys) await client.put(key).value(value).exec();
      const settle = (p: Promise<unknown>, done: (err: unknown) => void): void => {
        p.then(() => done(null), done);
      };
      const ops: Operations = {
        write: (w, done) => settle(client.kv.put({ key: keys[w], value }), done),
        linRead: (w, done) => settle(client.kv.range({ key: keys[w] }), done),
        serRead: (w, done) => settle(client.kv.range({ key: keys[w], serializable: true }), done),
      };
      const results: SystemLevel[] = [];
      for (const concurrency of levels) {
        results.push(await measure('etcd', ops, concurrency, warmupMs, measureMs));
      }
      return results;
    } finally {
      client.close();
    }
  } finally {
    await stopEtcd(etcd);
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<unknown> {
  const { values } = parseArgs({
    options: {
      levels: { type: 'string', default: '1,64' },
      'warmup-ms': { type: 'string', default: '1000' },
      'measure-ms': { type: 'string', default: '5000' },
      'no-etcd': { type: 'boolean', default: false },
      'tick-ms': { type: 'string' },
    },
    strict: true,
  });
  const levels = values.levels.split(',').map(Number);
  const warmupMs = Number(values['warmup-ms']);
  const measureMs = Number(values['measure-ms']);
  const tickMs = values['tick-ms'] === undefined ? undefined : Number(values['tick-ms']);
  if (levels.some((c) => !Number.isInteger(c) || c <= 0) || !(warmupMs >= 0) || !(measureMs > 0)) {
    throw new Error('bad --levels / --warmup-ms / --measure-ms');
  }
  if (tickMs !== undefined && !(Number.isInteger(tickMs) && tickMs > 0)) throw new Error('bad --tick-ms');

  const cox = await benchCoxswain(levels, warmupMs, measureMs, tickMs);
  let etcd: SystemLevel[] | null = null;
  if (values['no-etcd']) {
    progress('etcd: skipped (--no-etcd)');
  } else {
    const missing = ensureEtcd(progress);
    if (missing) progress(`etcd: unavailable: ${missing}`);
    else {
      try {
        etcd = await benchEtcd(levels, warmupMs, measureMs);
      } catch (err) {
        progress(`etcd: failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  return {
    payloadBytes,
    warmupMs,
    measureMs,
    levels: levels.map((concurrency, i) => {
      const c = cox[i];
      const e = etcd?.[i];
      return {
        concurrency,
        coxswain: c,
        etcd: e ?? null,
        ratio: e
          ? {
              writes: round2(c.writesPerSec / e.writesPerSec),
              linReads: round2(c.linReadsPerSec / e.linReadsPerSec),
              serReads: round2(c.serReadsPerSec / e.serReadsPerSec),
              writeP99: round2(c.writeP99Ms / e.writeP99Ms),
            }
          : null,
      };
    }),
  };
}

runBench('api', main);

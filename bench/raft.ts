/**
 * `npm run bench:raft`: Raft write throughput and latency of 3 Coxswain kv-node processes
 * (RaftHost + FileStorage with fsync + GrpcTransport on loopback) against a 3-member etcd
 * (Debian's `etcd-server`) under the same load: closed-loop writers, each sending one Put of
 * a 256-byte value and waiting for its answer before the next, over one gRPC channel to the
 * leader, at several concurrency levels.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object (ratio = Coxswain / etcd):
 * `{ payloadBytes, warmupMs, measureMs, client: 'stream',
 *    levels: [{ concurrency, opsPerSec, p50Ms, p99Ms, entriesPerFsync, errors }],
 *    etcd: { levels: [{ concurrency, opsPerSec, p50Ms, p99Ms, errors }] } | null,
 *    ratio: [{ concurrency, opsPerSec, p99Ms }] | null,
 *    unary: { levels, ratio } }`.
 * `levels` drives Coxswain through PutStream (all writers multiplexed on one bidi stream, so
 * the load generator's per-write cost stays small next to the cluster's); `unary` repeats the
 * run with one unary Put per write, the protocol shape the etcd3 client has for etcd (etcd
 * has no streaming Put), and is the like-for-like comparison.
 *
 * Flags: `--levels 1,16,64,256`, `--warmup-ms 1000`, `--measure-ms 5000`, `--no-etcd`,
 * `--client stream|unary|both|none` (default both; none: etcd only), `--cpu-prof DIR` (V8 CPU profiles of the
 * Coxswain nodes, written when they stop).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { KvCluster } from '../test/multiprocess/cluster.js';
import {
  newRaftKvClient,
  type PutStreamResponse,
  type RaftKvClient,
  type StatusResponse,
} from '../test/multiprocess/kv-proto.js';
import { closedLoop, type Issue, type LevelStats } from './lib/closed-loop.js';
import { ensureEtcd, etcdLeader, startEtcd, stopEtcd } from './lib/etcd.js';
import { progressTo, runBench } from './lib/output.js';
import { round2 } from './lib/stats.js';

const payloadBytes = 256;
/** How long the Coxswain nodes may take to elect a leader. */
const leaderWaitMs = 15_000;

/** A level's numbers plus the CPU its processes spent per write. */
interface MeasuredLevel extends LevelStats {
  cpuPerWrite: CpuPerWrite;
}

interface CoxLevel extends MeasuredLevel {
  entriesPerFsync: number;
}

const progress = progressTo('raft');

/** CPU time a process has used (user + system) in ms, from /proc (Linux). */
function procCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSec;
}

const clockTicksPerSec = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** The processes whose CPU time a level accounts for. */
interface CpuProbe {
  leaderPid: number;
  followerPids: number[];
}

/** CPU time per acknowledged write in the measured window, in µs (followers: their mean). */
interface CpuPerWrite {
  leaderUs: number;
  followerUs: number;
  clientUs: number;
}

function cpuSample(probe: CpuProbe): number[] {
  const client = process.cpuUsage();
  return [
    procCpuMs(probe.leaderPid),
    ...probe.followerPids.map(procCpuMs),
    (client.user + client.system) / 1000,
  ];
}

function cpuPerWrite(before: number[], after: number[], writes: number): CpuPerWrite {
  const usPerWrite = (i: number): number => (writes === 0 ? 0 : ((after[i] - before[i]) * 1000) / writes);
  const followers = before.slice(1, -1).map((_, i) => usPerWrite(i + 1));
  return {
    leaderUs: Math.round(usPerWrite(0)),
    followerUs: Math.round(followers.reduce((x, y) => x + y, 0) / Math.max(1, followers.length)),
    clientUs: Math.round(usPerWrite(before.length - 1)),
  };
}

/**
 * One level: the closed loop plus CPU samples of the cluster's processes at the window's
 * edges, and whatever `onEdge` collects.
 */
async function runLevel(
  issue: Issue,
  concurrency: number,
  warmupMs: number,
  measureMs: number,
  probe: CpuProbe,
  onEdge: (edge: 'start' | 'end') => void = () => {},
): Promise<MeasuredLevel> {
  const samples: number[][] = [];
  const { writes, ...stats } = await closedLoop(issue, concurrency, warmupMs, measureMs, {
    onEdge: (edge) => {
      samples.push(cpuSample(probe));
      onEdge(edge);
    },
  });
  return { ...stats, cpuPerWrite: cpuPerWrite(samples[0], samples[1], writes) };
}

function payload(): Buffer {
  const b = Buffer.alloc(payloadBytes);
  for (let i = 0; i < payloadBytes; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

// ------------------------------------------------------------------ Coxswain

/** How the load generator talks to the leader: one unary Put per write, or PutStream. */
type ClientMode = 'unary' | 'stream';

/** A load generator's connection for one level: `issue` writes, `close` releases it. */
interface Driver {
  issue: Issue;
  close(): void;
}

function unaryDriver(client: RaftKvClient, concurrency: number, value: Buffer): Driver {
  const requests = Array.from({ length: concurrency }, (_, w) => ({ key: `k${w}`, value }));
  const callOptions: grpc.CallOptions = {};
  return {
    issue: (w, done) => {
      client.put(requests[w], callOptions, done);
    },
    close: () => {},
  };
}

/** All writers share one PutStream; a writer's id is its index (each has one write in flight). */
function streamDriver(client: RaftKvClient, concurrency: number, value: Buffer): Driver {
  const requests = Array.from({ length: concurrency }, (_, w) => ({ id: w, key: `k${w}`, value }));
  const pending: (((err: unknown) => void) | undefined)[] = new Array(concurrency);
  let broken: Error | undefined;
  const call = client.putStream();
  call.on('data', (res: PutStreamResponse) => {
    const done = pending[res.id];
    pending[res.id] = undefined;
    done?.(res.code === 0 ? null : new Error(`put failed: code ${res.code}: ${res.message}`));
  });
  call.on('error', (err) => {
    broken = err;
    pending.forEach((done, w) => {
      pending[w] = undefined;
      done?.(err);
    });
  });
  return {
    issue: (w, done) => {
      if (broken) return void done(broken);
      pending[w] = done;
      call.write(requests[w]);
    },
    close: () => call.end(),
  };
}

async function benchCoxswain(
  levels: number[],
  modes: ClientMode[],
  warmupMs: number,
  measureMs: number,
  cpuProfDir: string | undefined,
): Promise<Record<ClientMode, CoxLevel[]>> {
  progress('starting 3 Coxswain kv-node processes');
  const cluster = await KvCluster.start({
    dirPrefix: 'cox-bench-raft-',
    nodeArgs: ['--record', 'false'],
    execArgv: (id) => (cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(cpuProfDir, id)] : []),
  });
  try {
    const leader = await cluster.waitForLeader(leaderWaitMs);
    progress(`leader is ${leader}; cluster dir ${cluster.dir}`);
    // One channel (one HTTP/2 connection) for all writers.
    const client = newRaftKvClient(cluster.node(leader).clientAddress);
    const value = payload();
    const probe: CpuProbe = {
      leaderPid: cluster.node(leader).proc!.pid!,
      followerPids: cluster.ids().flatMap((id) => (id === leader ? [] : [cluster.node(id).proc!.pid!])),
    };
    const results: Record<ClientMode, CoxLevel[]> = { unary: [], stream: [] };
    try {
      for (const mode of modes) {
        for (const concurrency of levels) {
          const driver = (mode === 'unary' ? unaryDriver : streamDriver)(client, concurrency, value);
          // The leader's host counters at the window's edges (settled: neither can go unhandled).
          const edges: Promise<PromiseSettledResult<StatusResponse>>[] = [];
          const stats = await runLevel(driver.issue, concurrency, warmupMs, measureMs, probe, () => {
            edges.push(Promise.allSettled([cluster.status(leader, 5_000)]).then((r) => r[0]));
          });
          driver.close();
          const [before, after] = (await Promise.all(edges)).map((r) => {
            if (r.status === 'rejected') throw new Error(`leader status failed: ${String(r.reason)}`);
            return r.value;
          });
          const fsyncs = after.stats.fsyncs - before.stats.fsyncs;
          const persisted = after.stats.entriesPersisted - before.stats.entriesPersisted;
          const level: CoxLevel = {
            ...stats,
            entriesPerFsync: round2(fsyncs === 0 ? 0 : persisted / fsyncs),
          };
          if (after.role !== 'leader' || after.id !== leader) {
            progress(`WARNING: ${leader} is no longer the leader (role ${after.role}); numbers are suspect`);
          }
          progress(`coxswain ${mode} c=${concurrency}: ${JSON.stringify(level)}`);
          results[mode].push(level);
        }
      }
    } finally {
      client.close();
    }
    return results;
  } finally {
    await cluster.close();
  }
}

// ------------------------------------------------------------------ etcd

async function benchEtcd(levels: number[], warmupMs: number, measureMs: number): Promise<MeasuredLevel[]> {
  progress('starting a 3-member etcd cluster');
  const etcd = await startEtcd(progress);
  try {
    const leader = await etcdLeader(etcd.clientUrls);
    progress(`etcd leader is ${etcd.clientUrls[leader]}`);
    const client = new Etcd3({ hosts: etcd.clientUrls[leader] });
    const value = payload();
    const probe: CpuProbe = {
      leaderPid: etcd.procs[leader].pid!,
      followerPids: etcd.procs.flatMap((p, i) => (i === leader ? [] : [p.pid!])),
    };
    const results: MeasuredLevel[] = [];
    try {
      for (const concurrency of levels) {
        const requests = Array.from({ length: concurrency }, (_, w) => ({
          key: Buffer.from(`k${w}`),
          value,
        }));
        const issue: Issue = (w, done) => {
          client.kv.put(requests[w]).then(() => done(null), done);
        };
        const stats = await runLevel(issue, concurrency, warmupMs, measureMs, probe);
        progress(`etcd c=${concurrency}: ${JSON.stringify(stats)}`);
        results.push(stats);
      }
    } finally {
      client.close();
    }
    return results;
  } finally {
    await stopEtcd(etcd);
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<unknown> {
  const { values } = parseArgs({
    options: {
      levels: { type: 'string', default: '1,16,64,256' },
      'warmup-ms': { type: 'string', default: '1000' },
      'measure-ms': { type: 'string', default: '5000' },
      'no-etcd': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      client: { type: 'string', default: 'both' },
    },
    strict: true,
  });
  const levels = values.levels.split(',').map(Number);
  const warmupMs = Number(values['warmup-ms']);
  const measureMs = Number(values['measure-ms']);
  if (levels.some((c) => !Number.isInteger(c) || c <= 0) || !(warmupMs >= 0) || !(measureMs > 0)) {
    throw new Error('bad --levels / --warmup-ms / --measure-ms');
  }
  const cpuProfDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
  if (cpuProfDir) fs.mkdirSync(cpuProfDir, { recursive: true });

  const modes: ClientMode[] =
    values.client === 'both'
      ? ['stream', 'unary']
      : values.client === 'none'
        ? []
        : [values.client as ClientMode];
  if (modes.some((m) => m !== 'stream' && m !== 'unary'))
    throw new Error('bad --client (stream|unary|both|none)');
  const coxByMode =
    modes.length > 0
      ? await benchCoxswain(levels, modes, warmupMs, measureMs, cpuProfDir)
      : { stream: [], unary: [] };
  const cox = modes.length > 0 ? coxByMode[modes[0]] : [];

  let etcd: { levels: MeasuredLevel[] } | null = null;
  if (values['no-etcd']) {
    process.stderr.write('etcd: skipped (--no-etcd)\n');
  } else {
    const missing = ensureEtcd(progress);
    if (missing) {
      process.stderr.write(`etcd: unavailable: ${missing}\n`);
    } else {
      try {
        etcd = { levels: await benchEtcd(levels, warmupMs, measureMs) };
      } catch (err) {
        process.stderr.write(`etcd: failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  }

  const ratioTo = (mine: CoxLevel[]) =>
    etcd
      ? mine.length === 0
        ? null
        : mine.map((c, i) => ({
            concurrency: c.concurrency,
            opsPerSec: round2(c.opsPerSec / etcd.levels[i].opsPerSec),
            p99Ms: round2(c.p99Ms / etcd.levels[i].p99Ms),
          }))
      : null;
  const result = {
    payloadBytes,
    warmupMs,
    measureMs,
    client: modes[0] ?? null,
    levels: cox,
    etcd,
    ratio: ratioTo(cox),
    ...(modes.length > 1 ? { unary: { levels: coxByMode.unary, ratio: ratioTo(coxByMode.unary) } } : {}),
  };
  return result;
}

runBench('raft', main);

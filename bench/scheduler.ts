/**
 * `npm run bench:scheduler`: scheduling throughput end to end through Raft. 3 `cox master`
 * processes; a hollow fleet process (bench/lib/hollow-fleet.ts) with 1,000 node agents on the
 * hollow runtime; then 30,000 pods created through Deployments (30 of 1,000 replicas). A watch
 * on the pods times, per pod, its creation, its binding and Running as the masters report them.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object:
 * `{ nodes, pods, kind, workloads, podsCreated, createdPerSec, boundPerSec, peakBoundPerSec,
 *    allBoundSec, allRunningSec, bindLagP50Ms, bindLagP99Ms, masterRssMb, cpuMsPerPod, raftTerm,
 *    raftEntriesPerPod, settledSec, cpuMsPerPodSettled, raftEntriesPerPodSettled,
 *    masters: [{ id, leader, rssMb, cpuSec }], fleet: { rssMb, cpuSec } }`
 * where `boundPerSec` is pods bound per second from the first binding to the last,
 * `createdPerSec` the same for creations, `allRunningSec` the time from the first workload
 * create to the last pod Running, `masterRssMb` the leader's resident memory at the end, and
 * `bindLagP50Ms` the time from a pod's creation to its binding, `podsCreated` every pod seen
 * (more than `pods` when a controller overshot), `raftTerm` the term at the end (elections),
 * `raftEntriesPerPod` the Raft entries applied during the run per pod (every write: pods,
 * bindings, statuses, events and their deletions, leases, workload statuses).
 *
 * `cpuMsPerPod` is the CPU time of the masters and the fleet per pod until every pod is Running
 * (what the run cost, whatever else shares the machine). Pods still cause writes after that
 * (agents write kubelet's Events after the fact; workload statuses): the bench then waits until
 * the cluster writes at most half again as fast as when idle (lease renewals: one per node every
 * 10 s; at most 20 s, `settledSec`), and `cpuMsPerPodSettled` and `raftEntriesPerPodSettled`
 * count to that point, so that work deferred past the last Running pod is not left out.
 * `masters[].cpuSec` and `fleet.cpuSec` also run to that point.
 *
 * Flags: `--nodes 1000`, `--pods 30000`, `--workloads 30`, `--kind Deployment|ReplicaSet`
 * (default Deployment), `--cpu-prof DIR` (profiles of every master process, and of the fleet
 * in DIR/fleet), `--timeout-s 900`,
 * `--tick-ms N` and `--election-ticks N` (default: the masters' own).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { ApiErrorCode, isApiError, type WatchEvent } from '../actors/api.js';
import type { ApiClient } from '../actors/grpc-client.js';
import { colocatedNodeFlags } from '../cli/node-flags.js';
import type { Pod } from '../core/index.js';
import { repoRoot, sleep, trackChild, waitForExit } from '../test/multiprocess/cluster.js';
import { MasterCluster } from '../test/multiprocess/master-cluster.js';
import { progressTo, runBench } from './lib/output.js';
import { percentile, round2 } from './lib/stats.js';

const progress = progressTo('scheduler');
const namespace = 'bench';
const fleetPath = join(repoRoot, 'bench', 'lib', 'hollow-fleet.ts');

interface PodTimes {
  createdMs?: number;
  boundMs?: number;
  runningMs?: number;
  /** Deleted (a surplus pod of a controller that overshot). */
  deletedMs?: number;
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag}: "${text}" must be a positive integer`);
  return n;
}

/** Resident memory of a process, MiB (from /proc). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round2(Number(m[1]) / 1024) : 0;
}

/** User + system CPU time of a process so far, seconds (from /proc; clock ticks of 100 Hz). */
function cpuSec(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Spawns the hollow fleet and resolves with it once every node is registered. */
async function startFleet(
  masters: string[],
  nodes: number,
  timeoutMs: number,
  profDir: string | undefined,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      ...colocatedNodeFlags,
      ...(profDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', join(profDir, 'fleet')] : []),
      '--import',
      'tsx',
      fleetPath,
      '--masters',
      masters.join(','),
      '--nodes',
      String(nodes),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  trackChild(child);
  child.on('error', (err) => progress(`fleet: ${err.message}`));
  const tail: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 50) tail.shift();
    if (/nodes registered|fleet failed| x /.test(line)) progress(line);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`fleet not ready in ${timeoutMs} ms\n${tail.join('\n')}`)),
      timeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fleet exited (${code})\n${tail.join('\n')}`));
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"ready":true')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return child;
}

function workload(kind: 'Deployment' | 'ReplicaSet', i: number, replicas: number) {
  const name = `bench-${i}`;
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: 'app',
              image: 'coxswain/busybox',
              resources: { requests: { cpu: '10m', memory: '16Mi' } },
            },
          ],
        },
      },
    },
  };
}

/**
 * Creates `obj`, retrying while the masters have no leader or lose the write's outcome (an
 * election under load); AlreadyExists after such a retry means the first attempt applied.
 */
async function createSurely(client: ApiClient, obj: { metadata: { name: string } }): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await client.create(obj);
      return;
    } catch (err) {
      if (isApiError(err) && err.code === ApiErrorCode.AlreadyExists && attempt > 1) return;
      const retry =
        isApiError(err) && (err.code === ApiErrorCode.Unavailable || err.code === ApiErrorCode.Timeout);
      if (!retry || attempt >= 20) throw err;
      progress(`create ${obj.metadata.name}: ${err.message}; retrying`);
      await sleep(500);
    }
  }
}

/** Notes what `pod` shows at `now` (the first time it is seen created, bound, Running, deleted). */
function see(times: Map<string, PodTimes>, pod: Pod, now: number, deleted: boolean): void {
  const uid = pod.metadata.uid ?? '';
  let t = times.get(uid);
  if (t === undefined) {
    t = {};
    times.set(uid, t);
  }
  t.createdMs ??= now;
  if (pod.spec.nodeName) t.boundMs ??= now;
  if (pod.status?.phase === 'Running') t.runningMs ??= now;
  if (deleted || pod.metadata.deletionTimestamp !== undefined) t.deletedMs ??= now;
}

/**
 * Lists every pod of the namespace (after the watch fell out of the history): what changed
 * meanwhile is timed now; pods no longer listed were deleted. Returns the list's version.
 */
async function relist(client: ApiClient, times: Map<string, PodTimes>): Promise<string> {
  const now = performance.now();
  const listed = new Set<string>();
  let next: string | undefined;
  let rv = '';
  do {
    const page = await client.list('Pod', { namespace, limit: 5_000, ...(next ? { continue: next } : {}) });
    rv = page.resourceVersion;
    for (const obj of page.items) {
      listed.add(obj.metadata.uid ?? '');
      see(times, obj as Pod, now, false);
    }
    next = page.continue;
  } while (next);
  for (const [uid, t] of times) if (!listed.has(uid)) t.deletedMs ??= now;
  return rv;
}

/**
 * Follows every pod of the namespace, resuming on another master with the last version seen,
 * relisting when that version left the history (Gone).
 */
function followPods(client: ApiClient, times: Map<string, PodTimes>): { stop(): Promise<void> } {
  let running = true;
  let current: { close(): void } | undefined;
  const done = (async () => {
    let rv: string | undefined;
    while (running) {
      try {
        const w = await client.watch('Pod', {
          namespace,
          ...(rv !== undefined ? { resourceVersion: rv } : {}),
        });
        current = w;
        for (;;) {
          const events: WatchEvent[] | undefined = await w.next();
          if (events === undefined) break;
          const now = performance.now();
          for (const e of events) {
            if (e.type === 'BOOKMARK') continue;
            rv = e.object.metadata.resourceVersion ?? rv;
            see(times, e.object as Pod, now, e.type === 'DELETED');
          }
        }
      } catch (err) {
        if (!running) break;
        progress(`pod watch: ${err instanceof Error ? err.message : String(err)}; resuming`);
        await sleep(100);
        if (isApiError(err) && err.code === ApiErrorCode.Gone) {
          rv = await relist(client, times).catch((e: unknown) => {
            progress(`relist: ${e instanceof Error ? e.message : String(e)}`);
            return rv;
          });
        }
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      current?.close();
      await done;
    },
  };
}

/** Pods per second over the span of `ms` (first to last), and the best 1-second window. */
function rates(ms: number[]): { perSec: number; peakPerSec: number; firstMs: number; lastMs: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const firstMs = sorted[0] ?? 0;
  const lastMs = sorted[sorted.length - 1] ?? 0;
  let peak = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi += 1) {
    while (sorted[hi] - sorted[lo] >= 1000) lo += 1;
    peak = Math.max(peak, hi - lo + 1);
  }
  const span = (lastMs - firstMs) / 1000;
  return {
    perSec: span > 0 ? round2(sorted.length / span) : sorted.length,
    peakPerSec: peak,
    firstMs,
    lastMs,
  };
}

/** The highest applied index any master reports (0 when none answers). */
/** The fleet's agents renew their Lease every 10 s (a quarter of its 40 s): an idle cluster's writes per node per second. */
const idleEntriesPerNodeSec = 0.1;
/** The longest wait after every pod is Running for the run's remaining writes to end, ms. */
const settleMaxMs = 20_000;

/** CPU seconds of the masters and the fleet since the start marks. */
function totalCpuSec(
  cluster: MasterCluster,
  fleet: ChildProcess,
  cpu0: Map<string, number>,
  fleetCpu0: number,
): number {
  const masters = cluster.ids().reduce((a, id) => a + cpuSec(cluster.pid(id)) - (cpu0.get(id) ?? 0), 0);
  return masters + cpuSec(fleet.pid!) - fleetCpu0;
}

async function appliedIndex(cluster: MasterCluster): Promise<number> {
  const all = await Promise.all(cluster.ids().map((id) => cluster.status(id).catch(() => undefined)));
  return Math.max(0, ...all.flatMap((st) => st?.members.map((m) => m.applied ?? 0) ?? []));
}

async function main(): Promise<unknown> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '1000' },
      pods: { type: 'string', default: '30000' },
      workloads: { type: 'string', default: '30' },
      kind: { type: 'string', default: 'Deployment' },
      'cpu-prof': { type: 'string' },
      'timeout-s': { type: 'string', default: '900' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
    },
    strict: true,
  });
  const nodes = positive('nodes', values.nodes);
  const pods = positive('pods', values.pods);
  const workloads = positive('workloads', values.workloads);
  const timeoutMs = positive('timeout-s', values['timeout-s']) * 1000;
  const kind = values.kind;
  if (kind !== 'Deployment' && kind !== 'ReplicaSet') throw new Error('--kind: Deployment or ReplicaSet');
  const profDir = values['cpu-prof'];
  if (profDir !== undefined) await mkdir(profDir, { recursive: true });

  progress('starting 3 masters');
  const cluster = await MasterCluster.start({
    dirPrefix: 'cox-bench-scheduler-',
    ...(values['tick-ms'] !== undefined ? { tickMs: positive('tick-ms', values['tick-ms']) } : {}),
    ...(values['election-ticks'] !== undefined
      ? { electionTicks: positive('election-ticks', values['election-ticks']) }
      : {}),
    ...(profDir !== undefined
      ? {
          execArgv: (id: string) => [
            '--cpu-prof',
            '--cpu-prof-dir',
            profDir,
            '--cpu-prof-name',
            `${id}.cpuprofile`,
          ],
        }
      : {}),
  });
  let fleet: ChildProcess | undefined;
  let follower: { stop(): Promise<void> } | undefined;
  try {
    await cluster.waitForLeader(15_000);
    progress(`starting a hollow fleet of ${nodes} nodes`);
    const fleetStart = performance.now();
    fleet = await startFleet(cluster.apiAddresses(), nodes, timeoutMs, profDir);
    progress(`fleet ready in ${round2((performance.now() - fleetStart) / 1000)} s`);
    const client = cluster.client(cluster.ids(), { deadlineMs: 60_000 });
    await client
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
      .catch(() => {});

    const times = new Map<string, PodTimes>();
    follower = followPods(client, times);
    await sleep(500);
    const cpu0 = new Map(cluster.ids().map((id) => [id, cpuSec(cluster.pid(id))]));
    const applied0 = await appliedIndex(cluster);
    const fleetCpu0 = cpuSec(fleet.pid!);
    const t0 = performance.now();
    const base = Math.floor(pods / workloads);
    for (let i = 0; i < workloads; i += 1) {
      await createSurely(client, workload(kind, i, base + (i < pods % workloads ? 1 : 0)));
    }
    progress(`${workloads} ${kind}s of ${pods} pods in all created`);
    const deadline = t0 + timeoutMs;
    let last = '';
    for (;;) {
      const all = [...times.values()];
      const live = all.filter((t) => t.deletedMs === undefined);
      const bound = all.filter((t) => t.boundMs !== undefined).length;
      const running = live.filter((t) => t.runningMs !== undefined).length;
      const gone = all.length - live.length;
      const line = `${all.length} created, ${bound} bound, ${running} running${gone > 0 ? `, ${gone} deleted` : ''}`;
      if (line !== last) progress(`${round2((performance.now() - t0) / 1000)} s: ${line}`);
      last = line;
      if (running >= pods && live.length === pods) break;
      if (performance.now() > deadline)
        throw new Error(`not every pod Running within ${timeoutMs / 1000} s: ${line}`);
      if (performance.now() - t0 > 30_000 && all.length === 0) {
        throw new Error(`no pod created in 30 s: is there a ${kind} controller? (try --kind ReplicaSet)`);
      }
      await sleep(1_000);
    }
    const allRunningSec = round2((performance.now() - t0) / 1000);
    await follower.stop();
    const atRunning = totalCpuSec(cluster, fleet, cpu0, fleetCpu0);
    const appliedAtRunning = await appliedIndex(cluster);
    // Work the pods still cause once Running (agents' Events, written after the fact; workload
    // statuses): until the cluster writes at most half again as fast as when idle (lease
    // renewals), at most `settleMaxMs`.
    const idleEntriesPerSec = nodes * idleEntriesPerNodeSec + 10;
    const settleStart = performance.now();
    let settledApplied = appliedAtRunning;
    for (;;) {
      await sleep(1_000);
      const now = await appliedIndex(cluster);
      const perSec = now - settledApplied;
      settledApplied = now;
      if (perSec <= idleEntriesPerSec * 1.5 || performance.now() - settleStart > settleMaxMs) break;
    }
    const settledSec = round2((performance.now() - settleStart) / 1000);
    const atSettled = totalCpuSec(cluster, fleet, cpu0, fleetCpu0);
    const leader = await cluster.waitForLeader(15_000);
    const masters = cluster.ids().map((id) => ({
      id,
      leader: id === leader,
      rssMb: rssMb(cluster.pid(id)),
      cpuSec: round2(cpuSec(cluster.pid(id)) - (cpu0.get(id) ?? 0)),
    }));
    const all = [...times.values()];
    const created = rates(all.flatMap((t) => (t.createdMs !== undefined ? [t.createdMs] : [])));
    const bound = rates(all.flatMap((t) => (t.boundMs !== undefined ? [t.boundMs] : [])));
    const lags = all
      .flatMap((t) => (t.boundMs !== undefined && t.createdMs !== undefined ? [t.boundMs - t.createdMs] : []))
      .sort((a, b) => a - b);
    const fleetCpuSec = round2(cpuSec(fleet.pid!) - fleetCpu0);
    const cpuMsPerPod = round2((atRunning * 1000) / pods);
    const terms = (
      await Promise.all(cluster.ids().map((id) => cluster.status(id).catch(() => undefined)))
    ).map((st) => st?.term ?? 0);
    return {
      nodes,
      pods,
      kind,
      workloads,
      podsCreated: all.length,
      createdPerSec: created.perSec,
      boundPerSec: bound.perSec,
      peakBoundPerSec: bound.peakPerSec,
      allBoundSec: round2((bound.lastMs - t0) / 1000),
      allRunningSec,
      bindLagP50Ms: round2(percentile(lags, 0.5)),
      bindLagP99Ms: round2(percentile(lags, 0.99)),
      masterRssMb: masters.find((m) => m.leader)?.rssMb ?? 0,
      cpuMsPerPod,
      raftTerm: Math.max(...terms),
      raftEntriesPerPod: round2((appliedAtRunning - applied0) / pods),
      settledSec,
      cpuMsPerPodSettled: round2((atSettled * 1000) / pods),
      raftEntriesPerPodSettled: round2((settledApplied - applied0) / pods),
      masters,
      fleet: { rssMb: rssMb(fleet.pid!), cpuSec: fleetCpuSec },
    };
  } finally {
    await follower?.stop();
    if (fleet !== undefined && fleet.exitCode === null) {
      fleet.kill('SIGTERM');
      if (!(await waitForExit(fleet, 20_000))) fleet.kill('SIGKILL');
    }
    await cluster.close();
  }
}

runBench('scheduler', main);

/**
 * `npm run bench:proxy`: the service proxy's data path and its rule sync.
 *
 * 1. Throughput and latency of HTTP requests through a service against straight to the pod, in
 *    the same run: a busybox httpd container (one, by default: with several, how evenly a mode
 *    spreads requests over them would be measured too, not only its path); `direct` sends to
 *    its IP, `kernel` to a cluster IP translated by this node's iptables chains (the kernel
 *    adapter), `userspace` to a cluster IP served by the userspace proxy in a child process (as
 *    in an agent). One closed-loop generator for all three (raw sockets, an HTTP/1.0 GET per
 *    connection, since busybox httpd closes every connection), windows interleaved over several
 *    rounds; rps and p99 are the median round's, the ratio to direct the median of each round's
 *    ratio to the direct window next to it (this machine's load moves between rounds).
 * 2. Rule sync with 1,000 services (2 backends each) through 3 master processes and an
 *    in-process proxy: the time from an Endpoints write (before the call) to the apply that
 *    includes it finishing, for sequential single-endpoint changes; p99. Kernel mode (the
 *    iptables-restore path) and, for reference, userspace mode.
 *
 * Network safety: the virtual IPs are in 10.99.9.0/24 and 10.100.0.0/16, made local before any
 * rule; requests go only to them and to the containers; every rule, route and container made
 * here is removed at the end. Needs root, iptables and Docker.
 *
 * Last stdout line: `{ direct: { rps, p99Ms }, kernel: { rps, p99Ms, ratioToDirect },
 * userspace: { rps, p99Ms, ratioToDirect }, syncP99Ms, sync: {...}, ... }`.
 * Flags: `--concurrency 8 --backends 1 --window-ms 3000 --rounds 7 --services 1000 --changes 100`.
 * busybox httpd listens with a backlog of 9: more than 9 connections at once on one pod overflow
 * its accept queue, and dropped SYNs cost 1 s retransmits; keep the concurrency at most 9 per pod
 * (at 8 in all, no mode can overflow it), so the comparison measures the path, not that queue.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import type { ApiClient } from '../actors/grpc-client.js';
import { startActorSystem, stopActorSystem } from '../actors/runtime.js';
import type { ApiObject } from '../core/index.js';
import { baseImage, ensureBaseImage } from '../node-agent/images.js';
import { runCommand } from '../node-agent/proxy/commands.js';
import { parseCidr } from '../node-agent/proxy/ipv4.js';
import { KernelProxyRules } from '../node-agent/proxy/kernel-rules.js';
import { ensureLocalRoute } from '../node-agent/proxy/local-net.js';
import type { ProxyPlan } from '../node-agent/proxy/rules.js';
import { ServiceProxy } from '../node-agent/proxy/service-proxy.js';
import { runtimeLabels } from '../node-agent/runtime.js';
import { MasterCluster } from '../test/multiprocess/master-cluster.js';
import { closedLoop, type LevelStats } from './lib/closed-loop.js';
import { progressTo, runBench } from './lib/output.js';
import { percentile, round2 } from './lib/stats.js';

const progress = progressTo('proxy');
const node = `bench-proxy-${process.pid}`;
const dataCidr = parseCidr('10.99.9.0/24');
const kernelVip = '10.99.9.21';
const userspaceVip = '10.99.9.20';
const syncCidr = parseCidr('10.100.0.0/16');
const requestBytes = Buffer.from('GET / HTTP/1.0\r\nHost: bench\r\n\r\n');

/** One HTTP/1.0 GET on a new connection; `done` once the server closed it after a 200. */
function get(host: string, port: number, done: (err: unknown) => void): void {
  const s = connect({ host, port });
  let head = '';
  let finished = false;
  const finish = (err: unknown) => {
    if (finished) return;
    finished = true;
    s.destroy();
    done(err);
  };
  s.setNoDelay(true);
  s.on('connect', () => s.write(requestBytes));
  s.on('data', (d: Buffer) => {
    if (head.length < 16) head += d.toString('latin1', 0, Math.min(d.length, 16));
  });
  s.on('end', () =>
    finish(head.startsWith('HTTP/1.') && head.includes(' 200') ? undefined : new Error(`bad answer ${head}`)),
  );
  s.on('error', finish);
}

async function startBackends(docker: Docker, count: number): Promise<string[]> {
  const ips: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const c = await docker.createContainer({
      Image: baseImage,
      Cmd: [
        'sh',
        '-c',
        `mkdir -p /www && echo backend-${i} > /www/index.html && exec httpd -f -p 8080 -h /www`,
      ],
      Labels: { [runtimeLabels.node]: node },
      HostConfig: { RestartPolicy: { Name: 'no' } },
    });
    await c.start();
    const info = await c.inspect();
    ips.push(Object.values(info.NetworkSettings.Networks)[0]?.IPAddress ?? '');
  }
  return ips;
}

async function removeBackends(docker: Docker): Promise<void> {
  const found = await docker.listContainers({
    all: true,
    filters: { label: [`${runtimeLabels.node}=${node}`] },
  });
  await Promise.all(
    found.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}

async function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => get(host, port, (err) => resolve(err === undefined)));
}

async function waitAnswering(host: string, port: number, what: string): Promise<void> {
  for (let i = 0; i < 300; i += 1) {
    if (await answers(host, port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} (${host}:${port}) does not answer`);
}

function plan(vip: string, backends: string[]): ProxyPlan {
  return {
    servers: [
      {
        id: 'bench/web:80/TCP',
        namespace: 'bench',
        service: 'web',
        portName: '',
        protocol: 'TCP',
        clusterIP: vip,
        port: 80,
        backends: backends.map((ip) => ({ ip, port: 8080 })),
      },
    ],
  };
}

async function startUserspaceChild(p: ProxyPlan): Promise<ChildProcess> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'proxy-userspace-child.ts'), JSON.stringify(p)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d) => {
      if (String(d).includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`userspace proxy child exited (${code})`)));
  });
  return child;
}

type Mode = 'direct' | 'kernel' | 'userspace';

async function throughput(
  docker: Docker,
  o: { concurrency: number; windowMs: number; rounds: number; backends: number },
): Promise<Record<Mode, { rps: number; p99Ms: number; errors: number; ratioToDirect: number }>> {
  const backends = await startBackends(docker, o.backends);
  for (const ip of backends) await waitAnswering(ip, 8080, 'backend');
  const kernel = new KernelProxyRules({ node, nodeIp: '127.0.0.1', serviceCidr: dataCidr });
  let child: ChildProcess | undefined;
  try {
    await kernel.apply(plan(kernelVip, backends));
    await waitAnswering(kernelVip, 80, 'kernel mode');
    child = await startUserspaceChild(plan(userspaceVip, backends));
    await waitAnswering(userspaceVip, 80, 'userspace mode');
    const issue: Record<Mode, (w: number, done: (err: unknown) => void) => void> = {
      direct: (w, done) => get(backends[w % backends.length], 8080, done),
      kernel: (_w, done) => get(kernelVip, 80, done),
      userspace: (_w, done) => get(userspaceVip, 80, done),
    };
    const rounds: Record<Mode, LevelStats[]> = { direct: [], kernel: [], userspace: [] };
    for (let r = 0; r < o.rounds; r += 1) {
      for (const mode of ['direct', 'kernel', 'userspace'] as const) {
        const s = await closedLoop(issue[mode], o.concurrency, 300, o.windowMs);
        rounds[mode].push(s);
        progress(
          `round ${r + 1}/${o.rounds} ${mode}: ${Math.round(s.opsPerSec)} req/s, p50 ${round2(s.p50Ms)} ms, p99 ${round2(s.p99Ms)} ms, ${s.errors} errors`,
        );
      }
    }
    const median = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    const summary = (mode: Mode) => ({
      rps: Math.round(median(rounds[mode].map((s) => s.opsPerSec))),
      // The median round's p99 (rounds interleave the modes, so each sees the same machine).
      p99Ms: round2(median(rounds[mode].map((s) => s.p99Ms))),
      errors: rounds[mode].reduce((n, s) => n + s.errors, 0),
      // Against the direct window of the same round: the machine's load moves between rounds.
      ratioToDirect: round2(median(rounds[mode].map((s, i) => s.opsPerSec / rounds.direct[i].opsPerSec))),
    });
    return { direct: summary('direct'), kernel: summary('kernel'), userspace: summary('userspace') };
  } finally {
    if (child?.pid !== undefined && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child?.once('exit', r));
    }
    await kernel.close();
    await removeBackends(docker);
  }
}

function svcIp(i: number): string {
  return `10.100.${Math.floor(i / 250)}.${(i % 250) + 2}`;
}

function backendIp(i: number, k: number): string {
  return `172.17.${200 + Math.floor(i / 120)}.${(((i % 120) * 2 + k) % 254) + 1}`;
}

async function writeAll<T>(
  items: T[],
  concurrency: number,
  write: (t: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await write(items[next++]);
    }),
  );
}

async function syncLatency(
  mode: 'kernel' | 'userspace',
  cluster: MasterCluster,
  api: ApiClient,
  o: { services: number; changes: number },
): Promise<{
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  applyP99Ms: number;
  fullApplyMs: number;
}> {
  const system = startActorSystem({ log: () => {} });
  const ns = `bench-${mode}`;
  const proxy = new ServiceProxy({
    node: `${node}-${mode}`,
    nodeIp: '127.0.0.1',
    api: cluster.client(),
    system,
    options: {
      mode,
      serviceCidr: syncCidr.text,
      clusterDns: '10.100.255.10',
      backendCidrs: ['172.17.0.0/16'],
    },
    log: (l) => {
      if (l.includes('failed') || l.includes('cannot')) progress(l);
    },
  });
  await api
    .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as ApiObject)
    .catch(() => {});
  const indexes = Array.from({ length: o.services }, (_, i) => i);
  const t0 = performance.now();
  await writeAll(indexes, 32, (i) =>
    api.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `s${i}`, namespace: ns },
      spec: { clusterIP: svcIp(i), ports: [{ port: 80, targetPort: 8080 }] },
    } as ApiObject),
  );
  let lastRv = 0;
  await writeAll(indexes, 32, async (i) => {
    const e = await api.create({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: `s${i}`, namespace: ns },
      subsets: [{ addresses: [{ ip: backendIp(i, 0) }, { ip: backendIp(i, 1) }], ports: [{ port: 8080 }] }],
    } as ApiObject);
    lastRv = Math.max(lastRv, Number(e.metadata.resourceVersion));
  });
  progress(
    `${mode}: ${o.services} services and endpoints written in ${Math.round(performance.now() - t0)} ms`,
  );
  const startMs = performance.now();
  await proxy.start();
  await proxy.waitApplied('Endpoints', lastRv);
  const fullApplyMs = Math.round(performance.now() - startMs);
  progress(
    `${mode}: first full apply of ${proxy.status().servers} service ports in ${fullApplyMs} ms (from the proxy's start)`,
  );
  const samples: number[] = [];
  const applies: number[] = [];
  const before = proxy.status().syncLatencyMs.count;
  try {
    for (let c = 0; c < o.changes; c += 1) {
      const i = (c * 37) % o.services;
      const t = performance.now();
      const e = await api.update({
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: { name: `s${i}`, namespace: ns },
        subsets: [
          { addresses: [{ ip: backendIp(i, 0) }, { ip: backendIp(i, 2 + c) }], ports: [{ port: 8080 }] },
        ],
      } as ApiObject);
      await proxy.waitApplied('Endpoints', Number(e.metadata.resourceVersion));
      samples.push(performance.now() - t);
      applies.push(proxy.status().lastApplyMs ?? 0);
    }
    const status = proxy.status();
    if (status.syncLatencyMs.count <= before) throw new Error('the proxy recorded no sync latencies');
    const sorted = [...samples].sort((a, b) => a - b);
    const applySorted = [...applies].sort((a, b) => a - b);
    const out = {
      p50Ms: round2(percentile(sorted, 0.5)),
      p99Ms: round2(percentile(sorted, 0.99)),
      maxMs: round2(sorted[sorted.length - 1]),
      applyP99Ms: round2(percentile(applySorted, 0.99)),
      fullApplyMs,
    };
    progress(
      `${mode}: endpoint change → applied over ${o.changes} changes: p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms (apply alone p99 ${out.applyP99Ms} ms)`,
    );
    return out;
  } finally {
    await proxy.stop();
    await stopActorSystem(system);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      concurrency: { type: 'string', default: '8' },
      backends: { type: 'string', default: '1' },
      'window-ms': { type: 'string', default: '3000' },
      rounds: { type: 'string', default: '7' },
      services: { type: 'string', default: '1000' },
      changes: { type: 'string', default: '100' },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('bench:proxy needs root (iptables, routes)');
  const docker = new Docker();
  await docker.ping();
  await ensureBaseImage(docker);
  await ensureLocalRoute(dataCidr);
  await ensureLocalRoute(syncCidr);
  let cluster: MasterCluster | undefined;
  let api: ApiClient | undefined;
  try {
    const concurrency = Number(values.concurrency);
    progress(
      `throughput: ${values.backends} busybox httpd pod(s), concurrency ${concurrency}, ${values.rounds} rounds of ${values['window-ms']} ms per mode`,
    );
    const data = await throughput(docker, {
      concurrency,
      windowMs: Number(values['window-ms']),
      rounds: Number(values.rounds),
      backends: Number(values.backends),
    });
    // The masters allocate from the CIDR the sync agents route (their services ask for these IPs).
    cluster = await MasterCluster.start({ size: 3, masterArgs: ['--service-cidr', syncCidr.text] });
    const leader = await cluster.waitForLeader(15_000);
    api = cluster.client([leader, ...cluster.ids().filter((id) => id !== leader)]);
    const o = { services: Number(values.services), changes: Number(values.changes) };
    const kernelSync = await syncLatency('kernel', cluster, api, o);
    const userspaceSync = await syncLatency('userspace', cluster, api, o);
    return {
      concurrency,
      direct: { rps: data.direct.rps, p99Ms: data.direct.p99Ms },
      kernel: { rps: data.kernel.rps, p99Ms: data.kernel.p99Ms, ratioToDirect: data.kernel.ratioToDirect },
      userspace: {
        rps: data.userspace.rps,
        p99Ms: data.userspace.p99Ms,
        ratioToDirect: data.userspace.ratioToDirect,
      },
      errors: { direct: data.direct.errors, kernel: data.kernel.errors, userspace: data.userspace.errors },
      services: o.services,
      syncP99Ms: kernelSync.p99Ms,
      sync: { kernel: kernelSync, userspace: userspaceSync },
    };
  } finally {
    api?.close();
    await cluster?.close();
    await removeBackends(docker);
    for (const c of [dataCidr, syncCidr])
      await runCommand(['ip', 'route', 'del', 'local', c.text, 'dev', 'lo', 'table', 'local']).catch(
        () => {},
      );
  }
}

runBench('proxy', main);

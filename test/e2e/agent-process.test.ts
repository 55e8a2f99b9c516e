/**
 * A node agent with the PROCESS runtime (host commands, no Docker) against 3 real master
 * processes: the same probe, restart and deletion semantics as with docker. Pods run
 * `/bin/busybox httpd` on free loopback ports (the pod IP is the node IP, 127.0.0.1). The agent
 * resyncs only every 5 s, so a pod reacting sooner shows the runtime's exit events at work. An
 * agent restart (new agent, new runtime over the same root) adopts the running process.
 *
 * Only processes this test's runtimes started are signalled, by their recorded pid; afterAll
 * removes every pod of the root through a runtime (which checks the recorded start time).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Container, Pod } from '../../core/index.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { ProcessRuntime } from '../../node-agent/process-runtime.js';
import { readyCondition, waitFor } from '../fixtures/e2e.js';
import { freeLoopbackPorts } from '../multiprocess/cluster.js';
import { MasterCluster } from '../multiprocess/master-cluster.js';

const node = `e2e-process-${process.pid}`;
const busybox = '/bin/busybox';
const podResyncMs = 5_000;
let cluster: MasterCluster;
let api: ApiClient;
let dir: string;
let root: string;
let agent: NodeAgent;
let runtime: ProcessRuntime;
const runtimes: ProcessRuntime[] = [];

/** The restarted agent's resync: far beyond the waits, so what it sees in time came by events. */
const restartedResyncMs = 60_000;

function startAgent(resyncMs = podResyncMs): NodeAgent {
  runtime = new ProcessRuntime({ node, root, nodeIp: '127.0.0.1', logPollMs: 20 });
  runtimes.push(runtime);
  return new NodeAgent({
    node,
    nodeIp: '127.0.0.1',
    api,
    runtime,
    dataDir: join(dir, 'agent'),
    memoryDir: join(dir, 'memory'),
    podResyncMs: resyncMs,
    restartBackoff: { backoffMsInitial: 500, backoffMsMax: 1_000, backoffResetAfterRunMs: 600_000 },
    log: process.env.COX_E2E_LOG ? (l) => console.log(l) : () => {},
  });
}

async function getPod(name: string): Promise<Pod> {
  return (await api.get({ kind: 'Pod', name })) as unknown as Pod;
}

async function createPod(
  name: string,
  spec: Partial<Pod['spec']> & { containers: Container[] },
): Promise<Pod> {
  return (await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { nodeName: node, terminationGracePeriodSeconds: 1, ...spec },
  })) as unknown as Pod;
}

/** The runs the runtime recorded for a pod (file names without `.json`) and their pids. */
async function runsOf(uid: string): Promise<Record<string, number | undefined>> {
  const podDir = join(root, 'pods', uid);
  const files = (await readdir(podDir).catch(() => [] as string[])).filter(
    (f) => f.endsWith('.json') && f !== 'sandbox.json',
  );
  const out: Record<string, number | undefined> = {};
  for (const f of files) {
    const record = JSON.parse(await readFile(join(podDir, f), 'utf8')) as { pid?: number };
    out[f.slice(0, -'.json'.length)] = record.pid;
  }
  return out;
}

/** Whether pid runs (a zombie does not count). */
async function alive(pid: number): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  const state = text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

async function httpStatus(port: number, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1_000) });
  await res.arrayBuffer();
  return res.status;
}

describe('node agent with the process runtime', () => {
  beforeAll(async () => {
    await stat(busybox); // the base image of this runtime: fails (never skips) without it
    dir = mkdtempSync(join(tmpdir(), 'cox-agent-process-'));
    root = join(dir, 'runtime');
    cluster = await MasterCluster.start({ size: 3, tickMs: 50 });
    await cluster.waitForLeader(15_000);
    api = cluster.client();
    agent = startAgent();
    await agent.start();
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    runtime?.close();
    const last = new ProcessRuntime({ node, root: root ?? '', nodeIp: '127.0.0.1' });
    runtimes.push(last);
    if (root !== undefined) for (const uid of await last.listPods()) await last.removePod(uid, 0);
    for (const r of runtimes) r.close();
    api?.close();
    await cluster?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('runs busybox httpd to Running and Ready by a readiness probe on the node IP, and adopts it after an agent restart', async () => {
    const [port] = await freeLoopbackPorts(1);
    const www = join(dir, 'www-ready');
    await mkdir(www, { recursive: true });
    const created = await createPod('web', {
      containers: [
        {
          name: 'httpd',
          image: 'coxswain/busybox',
          command: [
            busybox,
            'sh',
            '-c',
            `echo ok > ${www}/ready; exec ${busybox} httpd -f -p 127.0.0.1:${port} -h ${www}`,
          ],
          ports: [{ name: 'http', containerPort: port! }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1, timeoutSeconds: 1 },
        },
        // No probes: only its exit (or the 5 s resync) makes the agent look at it.
        { name: 'idle', image: 'coxswain/busybox', command: [busybox, 'sleep', '3600'] },
      ],
    });
    const uid = created.metadata.uid ?? '';
    const ready = await waitFor(
      'Running and Ready',
      async () => {
        const p = await getPod('web');
        return p.status?.phase === 'Running' && readyCondition(p) === 'True' ? p : undefined;
      },
      15_000,
    );
    expect(ready.status?.podIP).toBe('127.0.0.1');
    expect(ready.status?.hostIP).toBe('127.0.0.1');
    expect(ready.status?.containerStatuses?.map((s) => s.ready)).toEqual([true, true]);
    expect(await httpStatus(port!, '/ready')).toBe(200);
    const before = await runsOf(uid);
    expect(Object.keys(before).sort()).toEqual(['httpd-0', 'idle-0']);
    const pid = before['httpd-0'];
    const idlePid = before['idle-0'];
    expect(pid).toBeGreaterThan(0);
    expect(idlePid).toBeGreaterThan(0);

    // The agent dies (its runtime lets go of the process, as kill -9 would); a new one adopts.
    await agent.stop();
    runtime.close();
    agent = startAgent(restartedResyncMs);
    await agent.start();
    // The new agent's first pass, and the one its first readiness result makes.
    await new Promise((r) => setTimeout(r, 3_000));
    const after = await waitFor(
      'Ready after the restart',
      async () => {
        const p = await getPod('web');
        return readyCondition(p) === 'True' ? p : undefined;
      },
      10_000,
    );
    expect(await runsOf(uid)).toEqual({ 'httpd-0': pid, 'idle-0': idlePid });
    expect(await alive(pid!)).toBe(true);
    expect(after.status?.containerStatuses?.map((s) => s.restartCount)).toEqual([0, 0]);
    expect(after.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
    expect(await httpStatus(port!, '/ready')).toBe(200);

    // An adopted process dies (not a child of the new runtime, so seen in /proc): the runtime's
    // exit event restarts it (the resync would take a minute; readiness stays unchanged).
    const killedMs = Date.now();
    process.kill(idlePid!, 'SIGKILL');
    const again = await waitFor(
      'idle restarted after the adopted process died',
      async () => {
        const s = (await getPod('web')).status?.containerStatuses?.find((c) => c.name === 'idle');
        return s?.restartCount === 1 && s.state?.running !== undefined ? s : undefined;
      },
      10_000,
    );
    expect(Date.now() - killedMs).toBeLessThan(podResyncMs);
    expect(again.lastState?.terminated?.reason).toBe('ContainerStatusUnknown');
    const runs = await runsOf(uid);
    expect(runs['httpd-0']).toBe(pid);
    expect(runs['idle-1']).toBeGreaterThan(0);

    // Deleting it stops the process (SIGTERM: httpd exits at once) and the pod goes.
    await api.delete({ kind: 'Pod', name: 'web' });
    await waitFor(
      'pod web gone',
      async () => {
        try {
          await getPod('web');
          return undefined;
        } catch {
          return true;
        }
      },
      15_000,
    );
    for (const p of [pid, runs['idle-1']]) {
      await waitFor(`pid ${p} gone`, async () => ((await alive(p!)) ? undefined : true), 5_000);
    }
    expect(await runsOf(uid)).toEqual({});
  }, 50_000);

  it('restarts a process whose liveness probe fails, with a rising restartCount', async () => {
    const [port] = await freeLoopbackPorts(1);
    const www = join(dir, 'www-live');
    await mkdir(www, { recursive: true });
    const created = await createPod('liveness', {
      restartPolicy: 'Always',
      containers: [
        {
          name: 'web',
          image: 'coxswain/busybox',
          // Healthy for about 2 s per run: then the file the probe fetches is deleted.
          command: [
            busybox,
            'sh',
            '-c',
            `echo ok > ${www}/healthz; (sleep 2; rm ${www}/healthz) & exec ${busybox} httpd -f -p 127.0.0.1:${port} -h ${www}`,
          ],
          ports: [{ name: 'http', containerPort: port! }],
          livenessProbe: {
            httpGet: { path: '/healthz', port: 'http' },
            initialDelaySeconds: 1,
            periodSeconds: 1,
            timeoutSeconds: 1,
            failureThreshold: 1,
          },
        },
      ],
    });
    const counts: number[] = [];
    const restarted = await waitFor(
      'restartCount >= 2',
      async () => {
        const s = (await getPod('liveness')).status?.containerStatuses?.[0];
        if (s !== undefined && counts.at(-1) !== s.restartCount) counts.push(s.restartCount);
        return (s?.restartCount ?? 0) >= 2 ? s : undefined;
      },
      30_000,
    );
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    // Stopped by SIGTERM for the failed probe (143), after about 2 s of a healthy run.
    const last = restarted.lastState?.terminated;
    expect(last?.reason).toBe('Error');
    expect(last?.exitCode).toBe(143);
    const ranMs = Date.parse(last?.finishedAt ?? '') - Date.parse(last?.startedAt ?? '');
    expect(ranMs).toBeGreaterThanOrEqual(2_000);
    // Each run was a new process; only the newest one runs.
    const runs = await runsOf(created.metadata.uid ?? '');
    const newest = `web-${restarted.restartCount}`;
    for (const [run, pid] of Object.entries(runs)) {
      if (run !== newest && pid !== undefined) expect(await alive(pid)).toBe(false);
    }
    await api.delete({ kind: 'Pod', name: 'liveness' });
  }, 40_000);

  it('fails a pod under restartPolicy Never when its process exits 1, seen at once by the exit event', async () => {
    const createdMs = Date.now();
    await createPod('never', {
      restartPolicy: 'Never',
      containers: [
        { name: 'app', image: 'coxswain/busybox', command: [busybox, 'sh', '-c', 'sleep 1; exit 1'] },
      ],
    });
    const failed = await waitFor(
      'phase Failed',
      async () => {
        const p = await getPod('never');
        return p.status?.phase === 'Failed' ? p : undefined;
      },
      10_000,
    );
    // The 5 s resync would be later than this: the process's exit triggered the pass.
    expect(Date.now() - createdMs).toBeLessThan(podResyncMs);
    const terminated = failed.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.exitCode).toBe(1);
    expect(terminated?.reason).toBe('Error');
    expect(failed.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    await api.delete({ kind: 'Pod', name: 'never' });
  }, 20_000);

  it('fails a pod past its activeDeadlineSeconds: its process stopped, phase Failed with DeadlineExceeded, nothing restarted', async () => {
    const created = await createPod('deadline', {
      activeDeadlineSeconds: 2,
      restartPolicy: 'Always',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: [busybox, 'sleep', '3600'] }],
    });
    const uid = created.metadata.uid ?? '';
    await waitFor(
      'Running',
      async () => ((await getPod('deadline')).status?.phase === 'Running' ? true : undefined),
      10_000,
    );
    const pid = (await runsOf(uid))['app-0'];
    expect(pid).toBeGreaterThan(0);
    const failed = await waitFor(
      'phase Failed',
      async () => {
        const p = await getPod('deadline');
        return p.status?.phase === 'Failed' ? p : undefined;
      },
      15_000,
    );
    expect(failed.status?.reason).toBe('DeadlineExceeded');
    expect(failed.status?.message).toBe('Pod was active on the node longer than the specified deadline');
    const terminated = failed.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.exitCode).toBe(143); // SIGTERM, within the grace period
    const activeMs = Date.parse(terminated?.finishedAt ?? '') - Date.parse(failed.status?.startTime ?? '');
    expect(activeMs).toBeGreaterThanOrEqual(2_000);
    // The pass at the deadline stopped it; the resync alone would have come 5 s after the start.
    expect(activeMs).toBeLessThan(podResyncMs);
    expect(await alive(pid!)).toBe(false);
    // A failed pod stays failed: nothing is started again.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(Object.keys(await runsOf(uid))).toEqual(['app-0']);
    expect((await getPod('deadline')).status?.phase).toBe('Failed');
    await api.delete({ kind: 'Pod', name: 'deadline' });
  }, 30_000);

  it('deletes a pod whose process ignores SIGTERM: SIGKILL after the grace period, then the pod goes', async () => {
    const graceSeconds = 2;
    const created = await createPod('stubborn', {
      terminationGracePeriodSeconds: graceSeconds,
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          command: [busybox, 'sh', '-c', `trap '' TERM; while true; do ${busybox} sleep 1; done`],
        },
      ],
    });
    const uid = created.metadata.uid ?? '';
    await waitFor(
      'Running',
      async () => ((await getPod('stubborn')).status?.phase === 'Running' ? true : undefined),
      10_000,
    );
    const pid = (await runsOf(uid))['app-0'];
    expect(pid).toBeGreaterThan(0);
    const deletedMs = Date.now();
    await api.delete({ kind: 'Pod', name: 'stubborn' });
    // Still there during the grace period (SIGTERM is ignored).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await alive(pid!)).toBe(true);
    await waitFor('process gone', async () => ((await alive(pid!)) ? undefined : true), 10_000);
    expect(Date.now() - deletedMs).toBeGreaterThanOrEqual(graceSeconds * 1000);
    await waitFor(
      'pod stubborn gone',
      async () => {
        try {
          await getPod('stubborn');
          return undefined;
        } catch {
          return true;
        }
      },
      10_000,
    );
    expect(await runsOf(uid)).toEqual({});
  }, 30_000);
});

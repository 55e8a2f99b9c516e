/**
 * Pod lifecycle on Docker through a node agent (in process, with a short restart backoff)
 * against 3 real master processes: graceful termination timing (a container that handles
 * SIGTERM goes as soon as it exits, one that ignores it is killed when its grace period ends),
 * init containers run in order before the app containers, and the restart policies Always,
 * OnFailure and Never. Needs Docker (CI starts it); never skipped.
 */

import { mkdirSync } from 'node:fs';
import { readdir, readFile, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Pod } from '../../core/index.js';
import { DockerRuntime } from '../../node-agent/docker-runtime.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { type AgentCluster, podHelpers, startDockerAgentCluster, waitFor } from '../fixtures/e2e.js';

const node = `e2e-lifecycle-${process.pid}`;
const docker = new Docker();
const runtime = new DockerRuntime({ node, docker });
let api: ApiClient;

const { getPod, createPod } = podHelpers(() => api, node);

/** Docker containers (sandbox included) of pod `name` on this node. */
async function containersOf(name: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: { label: [`${runtimeLabels.node}=${node}`, `${runtimeLabels.podName}=${name}`] },
  });
}

/** TMPFS_MAGIC, the `statfs` type of a tmpfs. */
const tmpfsType = 0x01021994;

/** Runs `sh -c script` in container `name` of pod `pod`; its stdout (fails on a non-zero exit). */
async function execIn(pod: Pod, name: string, script: string): Promise<string> {
  const c = (await runtime.listContainers({ podUid: pod.metadata.uid ?? '' })).find(
    (x) => x.name === name && x.phase === 'running',
  );
  if (c === undefined) throw new Error(`no running container ${name}`);
  const session = await runtime.exec(c.id, { command: ['sh', '-c', script] });
  let out = '';
  for await (const chunk of session.output)
    if (chunk.stream === 'stdout') out += Buffer.from(chunk.data).toString();
  const code = await session.exitCode;
  if (code !== 0) throw new Error(`exec ${script}: exit ${code}`);
  return out;
}

/** Every file below `dir` (recursively), as paths. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
}

async function gone(path: string): Promise<true | undefined> {
  return (await stat(path).then(
    () => false,
    () => true,
  ))
    ? true
    : undefined;
}

/** Waits until pod `name` is Running; returns it. */
function waitRunning(name: string, timeoutMs = 15_000): Promise<Pod> {
  return waitFor(
    `pod ${name} Running`,
    async () => {
      const p = await getPod(name);
      return p.status?.phase === 'Running' ? p : undefined;
    },
    timeoutMs,
  );
}

/** Deletes pod `name` through the API; resolves with the ms until its last container was gone. */
async function deleteAndTime(name: string, timeoutMs: number): Promise<number> {
  const startMs = Date.now();
  await api.delete({ kind: 'Pod', name });
  await waitFor(
    `containers of ${name} removed`,
    async () => ((await containersOf(name)).length === 0 ? true : undefined),
    timeoutMs,
  );
  return Date.now() - startMs;
}

describe('pod lifecycle on docker through a node agent', () => {
  let env: AgentCluster;
  beforeAll(async () => {
    env = await startDockerAgentCluster({
      node,
      docker,
      podResyncMs: 1_000,
      restartBackoff: { backoffMsInitial: 300, backoffMsMax: 600, backoffResetAfterRunMs: 600_000 },
      runtime,
    });
    api = env.api;
  }, 60_000);

  afterAll(async () => {
    await env?.stop();
  }, 60_000);

  it('stops a SIGTERM-handling container when it exits, and kills one ignoring SIGTERM after its grace period', async () => {
    // Exits about 1 s after SIGTERM; its 5 s grace period must not be waited out.
    await createPod('handles-term', {
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          command: ['sh', '-c', 'trap "sleep 1; exit 0" TERM; while :; do sleep 0.1; done'],
        },
      ],
    });
    // `sleep` as PID 1 of its container has no SIGTERM handler, so the kernel ignores SIGTERM.
    await createPod('ignores-term', {
      terminationGracePeriodSeconds: 2,
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sleep', '3600'] }],
    });
    await Promise.all([waitRunning('handles-term'), waitRunning('ignores-term')]);
    const [handlesMs, ignoresMs] = await Promise.all([
      deleteAndTime('handles-term', 10_000),
      deleteAndTime('ignores-term', 10_000),
    ]);
    expect(handlesMs).toBeGreaterThanOrEqual(900);
    expect(handlesMs).toBeLessThan(5_000);
    expect(ignoresMs).toBeGreaterThanOrEqual(1_800);
    expect(ignoresMs).toBeLessThan(6_000);
  }, 30_000);

  it('runs init containers in order before the app container', async () => {
    await createPod('init', {
      restartPolicy: 'Always',
      volumes: [{ name: 'shared', emptyDir: {} }],
      initContainers: [
        {
          name: 'first',
          image: 'coxswain/busybox',
          command: ['sh', '-c', 'sleep 0.3; echo first >> /shared/log'],
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
        {
          name: 'second',
          image: 'coxswain/busybox',
          command: ['sh', '-c', 'echo second >> /shared/log'],
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
      ],
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          command: ['sh', '-c', 'cat /shared/log; exec sleep 3600'],
          volumeMounts: [{ name: 'shared', mountPath: '/shared' }],
        },
      ],
    });
    const running = await waitRunning('init');
    const inits = running.status?.initContainerStatuses ?? [];
    expect(inits.map((s) => s.name)).toEqual(['first', 'second']);
    for (const s of inits) {
      expect(s.state?.terminated?.reason).toBe('Completed');
      expect(s.state?.terminated?.exitCode).toBe(0);
    }
    // Each started only after the one before it had finished.
    const [first, second] = inits.map((s) => s.state?.terminated);
    expect(Date.parse(second?.startedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first?.finishedAt ?? ''));
    const app = (await runtime.listContainers({ podUid: running.metadata.uid ?? '' })).find(
      (c) => c.name === 'app',
    );
    expect(app).toBeDefined();
    const out = await waitFor(
      'app output',
      async () => {
        let text = '';
        for await (const chunk of runtime.logs(app?.id ?? '')) text += Buffer.from(chunk.data).toString();
        return text.includes('second') ? text : undefined;
      },
      5_000,
    );
    expect(out).toBe('first\nsecond\n');
  }, 30_000);

  it('restarts a container exiting 0 under restartPolicy Always', async () => {
    await createPod('always', {
      restartPolicy: 'Always',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'sleep 0.3; exit 0'] }],
    });
    const s = await waitFor(
      'restartCount >= 2',
      async () => {
        const c = (await getPod('always')).status?.containerStatuses?.[0];
        return (c?.restartCount ?? 0) >= 2 ? c : undefined;
      },
      15_000,
    );
    expect(s.lastState?.terminated?.exitCode).toBe(0);
    expect(s.lastState?.terminated?.reason).toBe('Completed');
  }, 20_000);

  it('restarts a container exiting 1 under restartPolicy OnFailure', async () => {
    await createPod('onfailure-exit1', {
      restartPolicy: 'OnFailure',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'sleep 0.3; exit 1'] }],
    });
    const s = await waitFor(
      'restartCount >= 1',
      async () => {
        const c = (await getPod('onfailure-exit1')).status?.containerStatuses?.[0];
        return (c?.restartCount ?? 0) >= 1 ? c : undefined;
      },
      15_000,
    );
    expect(s.lastState?.terminated?.exitCode).toBe(1);
    expect(s.lastState?.terminated?.reason).toBe('Error');
    expect((await getPod('onfailure-exit1')).status?.phase).not.toBe('Failed');
  }, 20_000);

  it('keeps secrets and memory emptyDirs on tmpfs only, and removes them with the pod', async () => {
    await api.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds' },
      data: { password: Buffer.from('hunter2').toString('base64') },
    });
    await createPod('secretive', {
      volumes: [
        { name: 'creds', secret: { secretName: 'creds' } },
        { name: 'scratch', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } },
        { name: 'disk', emptyDir: {} },
      ],
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          command: ['sleep', '3600'],
          env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } }],
          volumeMounts: [
            { name: 'creds', mountPath: '/etc/creds' },
            { name: 'scratch', mountPath: '/scratch' },
            { name: 'disk', mountPath: '/disk' },
          ],
        },
      ],
    });
    const pod = await waitRunning('secretive');
    const uid = pod.metadata.uid ?? '';
    // Inside: the secret and the memory emptyDir are tmpfs mounts, the plain emptyDir is not.
    const mounts = await execIn(pod, 'app', 'cat /proc/mounts');
    const fsOf = (path: string) =>
      mounts
        .split('\n')
        .find((l) => l.split(' ')[1] === path)
        ?.split(' ')[2];
    expect(fsOf('/etc/creds')).toBe('tmpfs');
    expect(fsOf('/scratch')).toBe('tmpfs');
    expect(fsOf('/disk')).not.toBe('tmpfs');
    expect(await execIn(pod, 'app', 'cat /etc/creds/password; echo; echo $PASSWORD')).toBe(
      'hunter2\nhunter2\n',
    );
    // The memory emptyDir holds its sizeLimit.
    await expect(
      execIn(pod, 'app', 'dd if=/dev/zero of=/scratch/fill bs=1M count=16 2>/dev/null'),
    ).rejects.toThrow(/exit 1/);
    // Outside: the secret file lives on the agent's tmpfs, and nothing on disk holds it.
    const secretFile = join(env.memoryDir, uid, 'creds', 'password');
    expect(await readFile(secretFile, 'utf8')).toBe('hunter2');
    expect((await statfs(secretFile)).type).toBe(tmpfsType);
    const diskDir = join(env.dataDir, 'pods', uid);
    for (const f of await filesBelow(diskDir)) expect(await readFile(f, 'utf8')).not.toContain('hunter2');
    // Deleted with the pod.
    await deleteAndTime('secretive', 10_000);
    await waitFor('the pod’s tmpfs directory removed', () => gone(join(env.memoryDir, uid)), 10_000);
    await waitFor('the pod’s disk directory removed', () => gone(diskDir), 10_000);
  }, 40_000);

  it('maps resource limits to the engine and reports a container over its memory limit as OOMKilled', async () => {
    await createPod('hog', {
      restartPolicy: 'Never',
      volumes: [{ name: 'fill', emptyDir: { medium: 'Memory', sizeLimit: '128Mi' } }],
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          // Fills a memory emptyDir: tmpfs pages are charged to the container's memory cgroup. A
          // second first: the engine may miss an OOM kill in a container's first milliseconds.
          command: ['sh', '-c', 'sleep 1; exec dd if=/dev/zero of=/fill/zeros bs=1M count=64'],
          resources: { limits: { memory: '16Mi', cpu: '250m' } },
          volumeMounts: [{ name: 'fill', mountPath: '/fill' }],
        },
      ],
    });
    const failed = await waitFor(
      'phase Failed',
      async () => {
        const p = await getPod('hog');
        return p.status?.phase === 'Failed' ? p : undefined;
      },
      20_000,
    );
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      reason: 'OOMKilled',
      exitCode: 137,
    });
    // The limits became the engine's: memory (no swap beyond it) and CPU.
    const [hog] = (await containersOf('hog')).filter((c) => c.Labels[runtimeLabels.role] === 'app');
    const { HostConfig } = await docker.getContainer(hog?.Id ?? '').inspect();
    expect(HostConfig).toMatchObject({
      Memory: 16 * 1024 * 1024,
      MemorySwap: 16 * 1024 * 1024,
      NanoCpus: 250_000_000,
    });
  }, 30_000);

  it('runs postStart after the start and preStop before SIGTERM, and restarts a container whose postStart fails', async () => {
    const hooks = join(env.dir, 'hooks');
    mkdirSync(hooks, { recursive: true });
    await createPod('hooked', {
      terminationGracePeriodSeconds: 10,
      volumes: [{ name: 'hooks', hostPath: { path: hooks } }],
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          command: ['sh', '-c', 'trap "echo term >> /hooks/log; exit 0" TERM; while :; do sleep 0.1; done'],
          volumeMounts: [{ name: 'hooks', mountPath: '/hooks' }],
          lifecycle: {
            postStart: { exec: { command: ['sh', '-c', 'echo poststart >> /hooks/log'] } },
            preStop: { exec: { command: ['sh', '-c', 'echo prestop >> /hooks/log; sleep 1'] } },
          },
        },
      ],
    });
    await waitRunning('hooked');
    expect(await readFile(join(hooks, 'log'), 'utf8')).toBe('poststart\n');
    // The preStop hook (1 s) runs first, then SIGTERM: the trap writes last.
    const tookMs = await deleteAndTime('hooked', 15_000);
    expect(await readFile(join(hooks, 'log'), 'utf8')).toBe('poststart\nprestop\nterm\n');
    expect(tookMs).toBeGreaterThanOrEqual(1_000);

    await createPod('bad-hook', {
      containers: [
        {
          name: 'app',
          image: 'coxswain/busybox',
          command: ['sleep', '3600'],
          lifecycle: { postStart: { exec: { command: ['sh', '-c', 'exit 3'] } } },
        },
      ],
    });
    const restarted = await waitFor(
      'restartCount >= 1',
      async () => {
        const c = (await getPod('bad-hook')).status?.containerStatuses?.[0];
        return (c?.restartCount ?? 0) >= 1 ? c : undefined;
      },
      15_000,
    );
    // Killed at once for the failed hook.
    expect(restarted.lastState?.terminated?.exitCode).toBe(137);
    await api.delete({ kind: 'Pod', name: 'bad-hook' }, { gracePeriodSeconds: 0 });
  }, 45_000);

  it('restarts a crashing container in CrashLoopBackOff, the delay doubling up to its cap, keeping two runs', async () => {
    // The agent's backoff here: 300 ms doubling to 600 ms.
    await createPod('crashloop', {
      restartPolicy: 'Always',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'exit 1'] }],
    });
    const runs = new Map<number, { startedMs: number; finishedMs: number }>();
    const waitingMessages = new Set<string>();
    let appsMax = 0;
    await waitFor(
      'six runs',
      async () => {
        const apps = (await containersOf('crashloop')).filter((c) => c.Labels[runtimeLabels.role] === 'app');
        appsMax = Math.max(appsMax, apps.length);
        for (const c of apps) {
          const info = await docker
            .getContainer(c.Id)
            .inspect()
            .catch(() => undefined);
          if (info === undefined || info.State.Running || info.State.FinishedAt.startsWith('0001')) continue;
          runs.set(Number(c.Labels[runtimeLabels.restartCount]), {
            startedMs: Date.parse(info.State.StartedAt),
            finishedMs: Date.parse(info.State.FinishedAt),
          });
        }
        const w = (await getPod('crashloop')).status?.containerStatuses?.[0]?.state?.waiting;
        if (w?.reason === 'CrashLoopBackOff') waitingMessages.add(w.message ?? '');
        return runs.size >= 6 ? true : undefined;
      },
      30_000,
      50,
    );
    await api.delete({ kind: 'Pod', name: 'crashloop' }, { gracePeriodSeconds: 0 });
    expect([...runs.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    // Delay before run k: from the exit of run k-1 to its start.
    const delays = [1, 2, 3, 4, 5].map(
      (k) => (runs.get(k)?.startedMs ?? 0) - (runs.get(k - 1)?.finishedMs ?? 0),
    );
    expect(delays[0]).toBeGreaterThanOrEqual(300);
    for (const d of delays.slice(1)) {
      expect(d).toBeGreaterThanOrEqual(600); // doubled once...
      expect(d).toBeLessThan(2_400); // ...and capped: uncapped it would reach 4.8 s by run 5
    }
    expect(waitingMessages.size).toBeGreaterThan(0);
    for (const m of waitingMessages) expect(m).toMatch(/^back-off \d+s restarting failed container=app$/);
    // Older runs are removed: at most the newest two exist at any time.
    expect(appsMax).toBeLessThanOrEqual(2);
  }, 45_000);

  it('completes a pod under restartPolicy Never when its container exits 0, and stops its sandbox', async () => {
    await createPod('never-exit0', {
      restartPolicy: 'Never',
      containers: [
        { name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'sleep 0.3; echo finished; exit 0'] },
      ],
    });
    const done = await waitFor(
      'phase Succeeded',
      async () => {
        const p = await getPod('never-exit0');
        return p.status?.phase === 'Succeeded' ? p : undefined;
      },
      15_000,
    );
    const s = done.status?.containerStatuses?.[0];
    expect(s?.state?.terminated?.reason).toBe('Completed');
    expect(s?.restartCount).toBe(0);
    // Nothing started again after the pod completed.
    await new Promise((r) => setTimeout(r, 1_500));
    const apps = (await containersOf('never-exit0')).filter((c) => c.Labels[runtimeLabels.role] === 'app');
    expect(apps).toHaveLength(1);
    // Its sandbox is stopped (the network namespace freed), its container kept for its logs.
    const sandbox = await waitFor(
      'sandbox stopped',
      async () => {
        const [sb] = (await containersOf('never-exit0')).filter(
          (c) => c.Labels[runtimeLabels.role] === 'sandbox',
        );
        return sb !== undefined && sb.State !== 'running' ? sb : undefined;
      },
      10_000,
    );
    expect(sandbox.State).toBe('exited');
    let out = '';
    for await (const chunk of runtime.logs(apps[0]?.Id ?? '')) out += Buffer.from(chunk.data).toString();
    expect(out).toBe('finished\n');
  }, 20_000);
});

/**
 * Pod lifecycle on Docker through a node agent (in process, with a short restart backoff)
 * against 3 real master processes: graceful termination timing (a container that handles
 * SIGTERM goes as soon as it exits, one that ignores it is killed when its grace period ends),
 * init containers run in order before the app containers, and the restart policies Always,
 * OnFailure and Never. Needs Docker (CI starts it); never skipped.
 */

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

  it('completes a pod under restartPolicy Never when its container exits 0', async () => {
    await createPod('never-exit0', {
      restartPolicy: 'Never',
      containers: [{ name: 'app', image: 'coxswain/busybox', command: ['sh', '-c', 'sleep 0.3; exit 0'] }],
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
  }, 20_000);
});

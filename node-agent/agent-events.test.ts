/**
 * Kubelet's events from a node agent, written through its API client (here the in-memory API)
 * by its EventRecorder: a pod's life (Pulled, Created, Started), a crash loop (one BackOff
 * Event whose count grows), a failing liveness probe (Unhealthy, Killing), a missing image
 * (Failed), and the node's own Starting and NodeReady.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ObjectApi } from '../actors/api.js';
import type { Event, Pod } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { NodeAgent } from './agent.js';
import { HollowRuntime } from './hollow-runtime.js';

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startAgent(api: ObjectApi, runtime: HollowRuntime): Promise<NodeAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'cox-agent-events-'));
  const agent = new NodeAgent({
    node: 'n1',
    nodeIp: '127.0.0.1',
    api,
    runtime,
    dataDir: join(dir, 'data'),
    memoryDir: join(dir, 'mem'),
    capacity: { cpu: '2', memory: '2Gi', pods: '10' },
    podResyncMs: 100,
    restartBackoff: { backoffMsInitial: 200, backoffMsMax: 400, backoffResetAfterRunMs: 60_000 },
    log: () => {},
  });
  await agent.start();
  cleanups.push(async () => {
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return agent;
}

function pod(name: string, container: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'coxswain/busybox', ...container }] },
  } as Pod;
}

async function events(api: ObjectApi, namespace = 'default'): Promise<Event[]> {
  return (await api.list('Event', { namespace })).items as unknown as Event[];
}

function about(evs: Event[], podName: string, reason: string): Event | undefined {
  return evs.find((e) => e.involvedObject.name === podName && e.reason === reason);
}

describe('node agent events', () => {
  it('says a pod’s container was pulled, created and started, as kubelet, and that the node started', async () => {
    const { objects } = createMemoryApi();
    await startAgent(objects, new HollowRuntime({ node: 'n1' }));
    const created = (await objects.create(pod('web'))) as unknown as Pod;
    const evs = await waitFor('Started', async () => {
      const all = await events(objects);
      return about(all, 'web', 'Started') ? all : undefined;
    });
    const ref = {
      kind: 'Pod',
      name: 'web',
      namespace: 'default',
      uid: created.metadata.uid,
      fieldPath: 'spec.containers{app}',
    };
    const source = { component: 'kubelet', host: 'n1' };
    expect(about(evs, 'web', 'Pulled')).toMatchObject({
      type: 'Normal',
      message: 'Container image "coxswain/busybox" already present on machine',
      involvedObject: ref,
      source,
      reportingComponent: 'kubelet',
      reportingInstance: 'n1',
    });
    expect(about(evs, 'web', 'Created')).toMatchObject({
      message: 'Created container app',
      involvedObject: ref,
    });
    expect(about(evs, 'web', 'Started')).toMatchObject({
      message: 'Started container app',
      involvedObject: ref,
    });
    const node = await waitFor('NodeReady', async () => {
      const all = await events(objects);
      return about(all, 'n1', 'NodeReady') ? all : undefined;
    });
    expect(about(node, 'n1', 'Starting')).toMatchObject({
      involvedObject: { kind: 'Node', name: 'n1' },
      message: 'Starting kubelet.',
    });
    expect(about(node, 'n1', 'NodeReady')?.message).toBe('Node n1 status is now: NodeReady');
  });

  it('counts a crash loop’s BackOff in one Event', async () => {
    const { objects } = createMemoryApi();
    await startAgent(
      objects,
      new HollowRuntime({ node: 'n1', script: () => ({ exitAfterMs: 20, exitCode: 1 }) }),
    );
    await objects.create(pod('crash'));
    const backOff = await waitFor('BackOff count 3', async () => {
      const e = about(await events(objects), 'crash', 'BackOff');
      return e !== undefined && (e.count ?? 0) >= 3 ? e : undefined;
    });
    expect(backOff.type).toBe('Warning');
    expect(backOff.message).toMatch(/^Back-off restarting failed container app in pod crash_default\(.+\)$/);
    const all = await events(objects);
    // One Event per reason and message: repeats moved the counts.
    expect(all.filter((e) => e.reason === 'BackOff')).toHaveLength(1);
    expect(all.filter((e) => e.reason === 'Started')).toHaveLength(1);
    expect(about(all, 'crash', 'Started')?.count ?? 0).toBeGreaterThanOrEqual(3);
  });

  it('says a liveness probe failed and the container is killed', async () => {
    const { objects } = createMemoryApi();
    await startAgent(objects, new HollowRuntime({ node: 'n1' }));
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    await objects.create(
      pod('sick', {
        livenessProbe: { tcpSocket: { host: '127.0.0.1', port: 1 }, periodSeconds: 1, failureThreshold: 1 },
      }),
    );
    const evs = await waitFor('Killing', async () => {
      const all = await events(objects);
      return about(all, 'sick', 'Killing') ? all : undefined;
    });
    expect(about(evs, 'sick', 'Unhealthy')).toMatchObject({
      type: 'Warning',
      involvedObject: { fieldPath: 'spec.containers{app}' },
    });
    expect(about(evs, 'sick', 'Unhealthy')?.message).toMatch(
      /^Liveness probe failed: dial tcp 127\.0\.0\.1:1: /,
    );
    expect(about(evs, 'sick', 'Killing')?.message).toBe(
      'Container app failed liveness probe, will be restarted',
    );
  });

  it('says an image could not be pulled, then that the pull backs off', async () => {
    const { objects } = createMemoryApi();
    await startAgent(objects, new HollowRuntime({ node: 'n1', images: ['coxswain/busybox'] }));
    await objects.create(pod('noimage', { image: 'nowhere/missing:1' }));
    const evs = await waitFor('ImagePullBackOff', async () => {
      const all = await events(objects);
      return all.some((e) => e.message === 'Error: ImagePullBackOff') ? all : undefined;
    });
    const failed = evs.filter((e) => e.involvedObject.name === 'noimage' && e.reason === 'Failed');
    expect(failed.map((e) => e.message).sort()).toEqual([
      'Error: ErrImagePull',
      'Error: ImagePullBackOff',
      'Failed to pull image "nowhere/missing:1": not present on hollow node n1',
    ]);
    expect(failed.every((e) => e.type === 'Warning')).toBe(true);
    expect(about(evs, 'noimage', 'BackOff')?.message).toBe('Back-off pulling image "nowhere/missing:1"');
    expect(about(evs, 'noimage', 'Started')).toBeUndefined();
  });
});

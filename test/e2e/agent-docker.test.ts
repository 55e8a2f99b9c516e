/**
 * A node agent with the docker runtime against 3 real master processes: a pod bound to the
 * node by `spec.nodeName` runs without a scheduler (two containers sharing localhost), its
 * status reaches the API, a restarted agent adopts it without starting anything twice, and
 * deleting the pod removes its containers. Needs Docker (CI starts it); never skipped.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Pod } from '../../core/index.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { DockerRuntime } from '../../node-agent/docker-runtime.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { waitFor } from '../fixtures/e2e.js';
import { MasterCluster } from '../multiprocess/master-cluster.js';

const node = `e2e-${process.pid}`;
const docker = new Docker();
let cluster: MasterCluster;
let api: ApiClient;
let dir: string;

function startAgent(): NodeAgent {
  const agent = new NodeAgent({
    node,
    nodeIp: '127.0.0.1',
    api,
    runtime: new DockerRuntime({ node, docker }),
    dataDir: join(dir, 'agent'),
    memoryDir: join('/dev/shm', `cox-e2e-${process.pid}`),
    podResyncMs: 300,
    log: () => {},
  });
  return agent;
}

async function containersOfNode(): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${runtimeLabels.node}=${node}`] } });
}

describe('node agent with the docker runtime', () => {
  beforeAll(async () => {
    await docker.ping();
    dir = mkdtempSync(join(tmpdir(), 'cox-agent-e2e-'));
    cluster = await MasterCluster.start({ size: 3, tickMs: 50 });
    await cluster.waitForLeader(15_000);
    api = cluster.client();
  }, 60_000);

  afterAll(async () => {
    api?.close();
    await cluster?.close();
    for (const c of await containersOfNode())
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    rmSync(join('/dev/shm', `cox-e2e-${process.pid}`), { recursive: true, force: true });
  }, 60_000);

  it('runs a bound pod, reports it, adopts it after a restart, and removes it on delete', async () => {
    let agent = startAgent();
    await agent.start();
    const registered = await api.get({ kind: 'Node', name: node });
    expect(registered.metadata.name).toBe(node);
    await api.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'site' },
      data: { 'index.html': 'hello from a configmap\n' },
    });
    await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web' },
      spec: {
        nodeName: node,
        restartPolicy: 'Always',
        volumes: [{ name: 'site', configMap: { name: 'site' } }],
        containers: [
          {
            name: 'web',
            image: 'coxswain/busybox',
            command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
            volumeMounts: [{ name: 'site', mountPath: '/www' }],
          },
          {
            name: 'sidecar',
            image: 'coxswain/busybox',
            env: [{ name: 'TARGET', value: 'http://127.0.0.1:8080/' }],
            command: [
              'sh',
              '-c',
              'while :; do wget -q -O /tmp/page $(TARGET) && cat /tmp/page; sleep 1; done',
            ],
          },
        ],
      },
    });
    const running = await waitFor('pod Running and Ready', async () => {
      const p = (await api.get({ kind: 'Pod', name: 'web' })) as unknown as Pod;
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return p.status?.phase === 'Running' && ready ? p : undefined;
    });
    expect(running.status?.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(running.status?.hostIP).toBe('127.0.0.1');
    expect(running.status?.containerStatuses?.map((c) => c.name).sort()).toEqual(['sidecar', 'web']);
    // The sidecar reaches the web container over the pod's shared localhost.
    const sidecar = (await containersOfNode()).find((c) => c.Labels[runtimeLabels.container] === 'sidecar');
    expect(sidecar).toBeDefined();
    const logs = await waitFor('sidecar output', async () => {
      const out = (
        await docker.getContainer(sidecar?.Id ?? '').logs({ stdout: true, stderr: true })
      ).toString();
      return out.includes('hello from a configmap') ? out : undefined;
    });
    expect(logs).toContain('hello from a configmap');

    // An agent restart (as after kill -9) adopts the containers: nothing new is started.
    const before = (await containersOfNode()).map((c) => c.Id).sort();
    await agent.stop();
    agent = startAgent();
    await agent.start();
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await containersOfNode()).map((c) => c.Id).sort()).toEqual(before);

    // Delete: the agent stops the containers within the grace period and removes the pod.
    await api.delete({ kind: 'Pod', name: 'web' }, { gracePeriodSeconds: 1 });
    await waitFor('pod gone from the API', async () => {
      try {
        await api.get({ kind: 'Pod', name: 'web' });
        return undefined;
      } catch {
        return true;
      }
    });
    await waitFor('containers removed', async () =>
      (await containersOfNode()).length === 0 ? true : undefined,
    );
    await agent.stop();
  }, 120_000);
});

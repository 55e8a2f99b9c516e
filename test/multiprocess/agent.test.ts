/**
 * Robustness of a real `cox agent` process (docker runtime) against 3 real master processes:
 * an agent killed with -9 and restarted adopts every container of its pods (same ids, same
 * start times); a master leader killed with -9 restarts nothing and a pod created after the
 * failover runs; with every master stopped the containers keep running, and once the masters
 * return the agent reconciles a deletion; a pod deleted while the agent is down is removed
 * when it returns. Only processes this file started are signalled, by their PID; containers
 * are found and removed by their `io.coxswain.node` label. Needs Docker; never skipped.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Pod } from '../../core/index.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { waitFor } from '../fixtures/e2e.js';
import { AgentProcess } from './agent-process.js';
import { sleep } from './cluster.js';
import { MasterCluster } from './master-cluster.js';

const node = `mp-agent-${process.pid}`;
/** The tmpfs dir `cox agent` uses for secrets and memory emptyDirs (cli/agent-command.ts). */
const memoryDir = join('/dev/shm', `cox-agent-${node}`);
/** Long enough for a few agent resyncs (1 s each by default) to have acted on anything. */
const settleMs = 2_500;
const docker = new Docker();
let cluster: MasterCluster;
let api: ApiClient;
let agent: AgentProcess | undefined;
let dir: string;

async function startAgent(): Promise<AgentProcess> {
  agent = await AgentProcess.start({
    name: node,
    masters: cluster.apiAddresses(),
    dataDir: join(dir, 'agent'),
    logPath: join(dir, 'agent.log'),
  });
  return agent;
}

/** One docker container of this node: its id, pod, role and start time. */
interface Seen {
  id: string;
  pod: string;
  role: string;
  container: string;
  startedAt: string;
  running: boolean;
}

/** The containers (sandboxes and apps) of `pod` on this node, or of every pod; sorted by id. */
async function containers(pod?: string): Promise<Seen[]> {
  const label = [`${runtimeLabels.node}=${node}`];
  if (pod !== undefined) label.push(`${runtimeLabels.podName}=${pod}`);
  const list = await docker.listContainers({ all: true, filters: { label } });
  const out = await Promise.all(
    list.map(async (c) => {
      const info = await docker.getContainer(c.Id).inspect();
      return {
        id: c.Id,
        pod: c.Labels[runtimeLabels.podName] ?? '',
        role: c.Labels[runtimeLabels.role] ?? '',
        container: c.Labels[runtimeLabels.container] ?? '',
        startedAt: info.State.StartedAt,
        running: info.State.Running,
      };
    }),
  );
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

async function getPod(name: string): Promise<Pod | undefined> {
  try {
    return (await api.get({ kind: 'Pod', name })) as unknown as Pod;
  } catch {
    return undefined;
  }
}

async function createPod(name: string): Promise<void> {
  await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'main', image: 'coxswain/busybox', command: ['sh', '-c', 'while :; do sleep 1; done'] },
        { name: 'side', image: 'coxswain/busybox', command: ['sleep', '3600'] },
      ],
    },
  });
}

/** Waits until `name` is Running with both containers running in docker (sandbox + 2 apps). */
async function waitRunning(name: string, timeoutMs = 20_000): Promise<Pod> {
  return waitFor(
    `pod ${name} Running`,
    async () => {
      const p = await getPod(name);
      const up = (await containers(name)).filter((c) => c.running).length;
      return p?.status?.phase === 'Running' && up === 3 ? p : undefined;
    },
    timeoutMs,
  );
}

function restartCounts(p: Pod | undefined): number[] {
  return (p?.status?.containerStatuses ?? []).map((c) => c.restartCount);
}

describe('a cox agent process with the docker runtime and 3 master processes', () => {
  beforeAll(async () => {
    await docker.ping();
    dir = mkdtempSync(join(tmpdir(), 'cox-mp-agent-'));
    cluster = await MasterCluster.start({ size: 3, tickMs: 50 });
    await cluster.waitForLeader(15_000);
    api = cluster.client();
    await startAgent();
  }, 60_000);

  afterAll(async () => {
    await agent?.kill();
    api?.close();
    await cluster?.close();
    for (const c of await containers())
      await docker
        .getContainer(c.id)
        .remove({ force: true })
        .catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    rmSync(memoryDir, { recursive: true, force: true });
  }, 60_000);

  it('adopts every container after kill -9 and a restart over the same data dir', async () => {
    await createPod('adopt');
    await waitRunning('adopt');
    const before = await containers('adopt');
    expect(before.map((c) => c.role).sort()).toEqual(['app', 'app', 'sandbox']);

    await agent!.kill();
    await startAgent();
    await sleep(settleMs);
    // Same containers, none restarted (a restart changes StartedAt), none added.
    expect(await containers('adopt')).toEqual(before);
    const p = await getPod('adopt');
    expect(p?.status?.phase).toBe('Running');
    expect(restartCounts(p)).toEqual([0, 0]);
  }, 40_000);

  it('restarts nothing when the master leader is killed, and runs a pod created after the failover', async () => {
    const before = await containers('adopt');
    const leader = await cluster.waitForLeader(10_000);
    await cluster.kill(leader);
    await cluster.waitForLeader(
      15_000,
      cluster.ids().filter((id) => id !== leader),
    );
    await createPod('after-failover');
    await waitRunning('after-failover');
    expect(await containers('adopt')).toEqual(before);
    expect(restartCounts(await getPod('adopt'))).toEqual([0, 0]);
    await cluster.startMember(leader);
  }, 40_000);

  it('keeps containers running while every master is down, and reconciles a deletion once they return', async () => {
    const before = await containers();
    expect(before.filter((c) => c.running)).toHaveLength(6);
    await Promise.all(cluster.ids().map((id) => cluster.stopMember(id)));
    await sleep(settleMs);
    expect(await containers()).toEqual(before);
    expect(agent!.running).toBe(true);

    await Promise.all(cluster.ids().map((id) => cluster.startMember(id)));
    await cluster.waitForLeader(15_000);
    await api.delete({ kind: 'Pod', name: 'after-failover' });
    await waitFor(
      'containers of after-failover removed',
      async () => ((await containers('after-failover')).length === 0 ? true : undefined),
      15_000,
    );
    await waitFor(
      'after-failover gone from the API',
      async () => ((await getPod('after-failover')) ? undefined : true),
      10_000,
    );
    expect(await containers('adopt')).toEqual(before.filter((c) => c.pod === 'adopt'));
  }, 50_000);

  it('removes the containers of pods deleted while the agent was down when it returns', async () => {
    await createPod('graceful');
    await waitRunning('graceful');
    await agent!.kill();
    // One pod removed from the API at once, one marked for a graceful deletion the agent must finish.
    await api.delete({ kind: 'Pod', name: 'adopt' }, { gracePeriodSeconds: 0 });
    await api.delete({ kind: 'Pod', name: 'graceful' });
    expect(await getPod('adopt')).toBeUndefined();
    expect((await getPod('graceful'))?.metadata.deletionTimestamp).toBeDefined();
    await sleep(500);
    expect((await containers()).filter((c) => c.running)).toHaveLength(6);

    await startAgent();
    await waitFor(
      'every container removed',
      async () => ((await containers()).length === 0 ? true : undefined),
      15_000,
    );
    await waitFor(
      'graceful gone from the API',
      async () => ((await getPod('graceful')) ? undefined : true),
      10_000,
    );
  }, 40_000);
});

/**
 * Robustness of a real `cox agent` process (docker runtime) against 3 real master processes:
 * the user's path with the real `cox` (apply a Pod manifest with nodeName, logs -f, exec -it
 * a shell on a pseudo-terminal, kill -9 the agent while the container runs on); an agent killed with -9 and restarted adopts every container of its pods (same ids, same
 * start times); a master leader killed with -9 restarts nothing and a pod created after the
 * failover runs; with every master stopped the containers keep running, and once the masters
 * return the agent reconciles a deletion; a pod deleted while the agent is down is removed
 * when it returns. Only processes this file started are signalled, by their PID; containers
 * are found and removed by their `io.coxswain.node` label. Needs Docker; never skipped.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Pod } from '../../core/index.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { coxPath, runCoxProcess, waitFor } from '../fixtures/e2e.js';
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

  it('a user applies a Pod with nodeName, follows its logs, execs a shell into it, and kill -9 of the agent goes unnoticed by the container', async () => {
    const servers = cluster
      .ids()
      .map((id) => `ws://${cluster.member(id).wsAddress}`)
      .join(',');
    const env = { COX_SERVERS: servers, COX_HOME: dir };
    const manifest = join(dir, 'journey.yaml');
    writeFileSync(
      manifest,
      `apiVersion: v1
kind: Pod
metadata:
  name: journey
spec:
  nodeName: ${node}
  containers:
    - name: shell
      image: coxswain/busybox
      command: ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
`,
    );
    expect(await runCoxProcess(['apply', '-f', manifest], { env })).toMatchObject({
      code: 0,
      stdout: 'pod/journey created\n',
    });
    await waitFor('journey Running', async () =>
      (await getPod('journey'))?.status?.phase === 'Running' ? true : undefined,
    );
    // logs -f streams new lines as they come (ended here once tick 5 arrived).
    const followed = await runCoxProcess(['logs', '-f', 'journey'], {
      env,
      until: (out) => out.includes('tick 5\n'),
    });
    expect(followed.stdout).toMatch(/^tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n/);

    // exec -it: an interactive shell on a terminal (script(1) gives cox one).
    const shell = spawn(
      'script',
      ['-qfec', `${process.execPath} --import tsx ${coxPath} exec -it journey -- sh`, '/dev/null'],
      {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let screen = '';
    shell.stdout.on('data', (d) => {
      screen += d;
    });
    const shellExit = new Promise<number | null>((resolve) => shell.on('exit', (code) => resolve(code)));
    try {
      await waitFor('the shell prompt', async () => (screen.includes('# ') ? true : undefined), 20_000);
      shell.stdin.write('echo answer=$((6*7)) tty=$(tty)\r');
      await waitFor(
        'the answer',
        async () => (/answer=42 tty=\/dev\/pts\/\d+/.test(screen) ? true : undefined),
        10_000,
      );
      shell.stdin.write('exit 5\r');
      expect(await shellExit).toBe(5);
    } finally {
      if (shell.exitCode === null) shell.kill('SIGKILL');
    }

    // kill -9 of the agent: the container runs on, the same process, still writing.
    const [app] = (await containers('journey')).filter((c) => c.role === 'app');
    const before = await docker.getContainer(app?.id ?? '').inspect();
    await agent!.kill();
    const killedAt = new Date().toISOString();
    await sleep(2_500);
    const during = await docker.getContainer(app?.id ?? '').inspect();
    expect(during.State).toMatchObject({
      Running: true,
      Pid: before.State.Pid,
      StartedAt: before.State.StartedAt,
    });
    const since = (
      await docker
        .getContainer(app?.id ?? '')
        .logs({ stdout: true, since: Math.floor(Date.parse(killedAt) / 1000) + 1 })
    ).toString();
    expect(since).toMatch(/tick \d+/);
    await startAgent();
    await sleep(settleMs);
    const after = await docker.getContainer(app?.id ?? '').inspect();
    expect(after.State).toMatchObject({
      Running: true,
      Pid: before.State.Pid,
      StartedAt: before.State.StartedAt,
    });
    expect(restartCounts(await getPod('journey'))).toEqual([0]);
    const tail = await runCoxProcess(['logs', '--tail', '1', 'journey'], { env });
    expect(tail).toMatchObject({ code: 0 });
    expect(tail.stdout).toMatch(/^tick \d+\n$/);
    await api.delete({ kind: 'Pod', name: 'journey' }, { gracePeriodSeconds: 0 });
    await waitFor(
      'journey removed',
      async () => ((await containers('journey')).length === 0 ? true : undefined),
      15_000,
    );
  }, 90_000);

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

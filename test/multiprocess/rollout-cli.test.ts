/**
 * The rollout verbs as a user runs them: real `cox` processes against 3 real master
 * processes (whose leader runs the Deployment and ReplicaSet controllers) and a `cox agent`
 * process on the hollow runtime. `rollout status` streams progress over WebSocket until the
 * rollout completes — also while the master it talks to is killed — and exits 1 past the
 * progress deadline or its --timeout; history, undo (back to an old template, under a new
 * revision) and scale work end to end.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Deployment, ReplicaSet } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { AgentProcess } from './agent-process.js';
import { MasterCluster } from './master-cluster.js';

const bin = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'cox-rollout-'));
let cluster: MasterCluster;
let agent: AgentProcess;
let api: ApiClient;
let servers: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cox --server <every master> ARGS`; `input` goes to stdin. */
function cox(args: string[], input?: string, onStdout?: (text: string) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--server', servers, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: home, COX_HOME: home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cox ${args.join(' ')} did not finish; stdout: ${stdout}; stderr: ${stderr}`));
    }, 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

function manifest(
  name: string,
  image: string,
  opts: { node?: string; cause?: string; deadline?: number; minReadySeconds?: number } = {},
) {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
${opts.cause ? `  annotations:\n    kubernetes.io/change-cause: ${opts.cause}\n` : ''}spec:
  replicas: 3
  minReadySeconds: ${opts.minReadySeconds ?? 1}
${opts.deadline ? `  progressDeadlineSeconds: ${opts.deadline}\n` : ''}  selector:
    matchLabels: {app: ${name}}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      nodeName: ${opts.node ?? 'n1'}
      terminationGracePeriodSeconds: 0
      containers:
        - name: app
          image: ${image}
`;
}

const getDeployment = async (name: string) =>
  (await api.get({ kind: 'Deployment', namespace: 'default', name })) as Deployment;

describe('cox rollout against real masters and a hollow agent', () => {
  beforeAll(async () => {
    cluster = await MasterCluster.start({ size: 3, tickMs: 50 });
    await cluster.waitForLeader(15_000);
    api = cluster.client();
    const members = [...cluster.members.values()];
    servers = members.map((m) => `ws://${m.wsAddress}`).join(',');
    agent = await AgentProcess.start({
      name: 'n1',
      masters: members.map((m) => m.apiAddress),
      dataDir: join(home, 'agent'),
      logPath: join(home, 'agent.log'),
      runtime: 'hollow',
    });
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    api?.close();
    await cluster?.close();
    rmSync(home, { recursive: true, force: true });
  }, 60_000);

  it('streams a rollout to completion, across a kill of the master it talks to', async () => {
    const first = await cox(['apply', '-f', '-'], manifest('web', 'coxswain/busybox', { cause: 'first' }));
    expect(first).toMatchObject({ code: 0, stdout: 'deployment/web created\n' });
    const initial = await cox(['rollout', 'status', 'deploy/web', '--timeout', '90s']);
    expect(initial.code).toBe(0);
    expect(initial.stdout.trimEnd().split('\n').at(-1)).toBe('deployment "web" successfully rolled out');

    const second = await cox(
      ['apply', '-f', '-'],
      // Slow enough (3 steps of 4 s) that the rollout is still going when the CLI has started.
      manifest('web', 'coxswain/busybox:v2', { cause: 'second', minReadySeconds: 4 }),
    );
    expect(second).toMatchObject({ code: 0, stdout: 'deployment/web configured\n' });
    // The CLI talks to the first master in --server; kill it once progress is streaming.
    const firstMaster = [...cluster.members.values()][0];
    let killed: Promise<void> | undefined;
    let printedAtKill = 0;
    const status = await cox(['rollout', 'status', 'deploy/web', '--timeout', '90s'], undefined, (out) => {
      if (killed === undefined && /Waiting for deployment "web" rollout to finish/.test(out)) {
        printedAtKill = out.length;
        killed = cluster.kill(firstMaster.id);
      }
    });
    await killed;
    // Progress kept streaming after its master died.
    expect(printedAtKill).toBeGreaterThan(0);
    expect(status.stdout.length).toBeGreaterThan(printedAtKill);
    expect(status.code).toBe(0);
    expect(status.stderr).toBe('');
    const lines = status.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('deployment "web" successfully rolled out');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines.slice(0, -1)) {
      expect(line).toMatch(
        /^(Waiting for deployment spec update to be observed\.\.\.|Waiting for deployment "web" rollout to finish: (\d+ out of 3 new replicas have been updated|\d+ old replicas are pending termination|\d+ of 3 updated replicas are available)\.\.\.)$/,
      );
    }
    await cluster.startMember(firstMaster.id);
  }, 180_000);

  it('lists history, undoes to the old template under a new revision, and scales', async () => {
    const history = await cox(['rollout', 'history', 'deploy/web']);
    expect(history).toEqual({
      code: 0,
      stdout: 'deployment/web\nREVISION   CHANGE-CAUSE\n1          first\n2          second\n',
      stderr: '',
    });
    expect(await cox(['rollout', 'undo', 'deploy/web', '--to-revision=7'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: unable to find specified revision 7 in history\n',
    });
    expect(await cox(['rollout', 'undo', 'deploy/web'])).toMatchObject({
      code: 0,
      stdout: 'deployment/web rolled back\n',
    });
    expect((await cox(['rollout', 'status', 'deploy/web', '--timeout', '90s'])).code).toBe(0);
    const d = await waitFor('revision 3', async () => {
      const x = await getDeployment('web');
      return x.metadata.annotations?.['deployment.kubernetes.io/revision'] === '3' ? x : undefined;
    });
    expect(d.spec.template.spec.containers[0].image).toBe('coxswain/busybox');
    const sets = ((await api.list('ReplicaSet', { namespace: 'default' })).items as ReplicaSet[]).filter(
      (rs) => rs.metadata.labels?.app === 'web',
    );
    expect(sets).toHaveLength(2);
    const back = (await cox(['rollout', 'history', 'deploy/web'])).stdout;
    expect(back).toBe('deployment/web\nREVISION   CHANGE-CAUSE\n2          second\n3          first\n');

    expect(await cox(['scale', 'deploy/web', '--replicas=5', '--current-replicas=3'])).toMatchObject({
      code: 0,
      stdout: 'deployment/web scaled\n',
    });
    expect((await cox(['rollout', 'status', 'deploy/web', '--timeout', '90s'])).code).toBe(0);
    expect((await getDeployment('web')).status?.availableReplicas).toBe(5);
  }, 180_000);

  it('exits 1 past the progress deadline, and on --timeout', async () => {
    // Pods bound to a node without an agent never run: the rollout cannot progress.
    await cox(['apply', '-f', '-'], manifest('stuck', 'coxswain/busybox', { node: 'ghost', deadline: 2 }));
    const stuck = await cox(['rollout', 'status', 'deploy/stuck', '--timeout', '90s']);
    expect(stuck.code).toBe(1);
    expect(stuck.stderr).toBe('error: deployment "stuck" exceeded its progress deadline\n');
    await cox(['apply', '-f', '-'], manifest('slow', 'coxswain/busybox', { node: 'ghost' }));
    const slow = await cox(['rollout', 'status', 'deploy/slow', '--timeout', '2s']);
    expect(slow.code).toBe(1);
    expect(slow.stderr).toBe('error: timed out waiting for the condition\n');
    const once = await cox(['rollout', 'status', 'deploy/slow', '-w=false']);
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(
      /^Waiting for deployment "slow" rollout to finish: 0 of 3 updated replicas are available\.\.\.\n$/,
    );
  }, 120_000);
});

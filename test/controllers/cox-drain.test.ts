/**
 * `cox cordon|uncordon|drain` as a real process, through a WebSocket gateway, against
 * in-process masters running the controllers and two hollow nodes. Pending pods are bound by
 * the test binder (`test/fixtures/binder.ts`) until the scheduler lands: it honours cordons,
 * so a drained ReplicaSet's replacements run on the other node.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWsGateway, type WsGateway } from '../../actors/ws-gateway.js';
import type { Node, Pod, ReplicaSet } from '../../core/index.js';
import { startBinder } from '../fixtures/binder.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const coxPath = fileURLToPath(new URL('../../cli/cox.ts', import.meta.url));

let c: HollowCluster;
let gw: WsGateway;
let stopBinder: () => Promise<void>;
let home: string;

beforeAll(async () => {
  c = await startHollowCluster({
    nodes: [
      { name: 'n1' },
      { name: 'n2', script: (spec) => (spec.name === 'stubborn' ? { ignoreSigterm: true } : {}) },
    ],
  });
  const leader = await c.leader();
  gw = await startWsGateway({
    objects: c.api,
    cluster: leader.api,
    listen: { host: '127.0.0.1', port: 0 },
    log: () => {},
  });
  stopBinder = startBinder(c);
  home = mkdtempSync(join(tmpdir(), 'cox-drain-'));
});
afterAll(async () => {
  await stopBinder?.();
  await gw?.close();
  await c?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

function cox(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', coxPath, '--server', gw.url, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const node = async (name: string) => (await c.api.get({ kind: 'Node', name })) as Node;
const podsOn = async (name: string) =>
  (await listOf<Pod>(c.api, 'Pod', 'default')).filter((p) => p.spec.nodeName === name);

describe('cox cordon, uncordon, drain (real cox process, in-process masters, hollow nodes)', () => {
  it('cordons and uncordons, saying when nothing changes; an unknown node is one error line', async () => {
    expect(await cox('cordon', 'n2')).toMatchObject({ code: 0, stdout: 'node/n2 cordoned\n' });
    expect((await node('n2')).spec?.unschedulable).toBe(true);
    expect(await cox('cordon', 'n2')).toMatchObject({ code: 0, stdout: 'node/n2 already cordoned\n' });
    expect(await cox('uncordon', 'n2')).toMatchObject({ code: 0, stdout: 'node/n2 uncordoned\n' });
    expect((await node('n2')).spec?.unschedulable).toBeUndefined();
    expect(await cox('drain', 'nope')).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'error: node/nope: not found\n',
    });
  });

  it('drain refuses a pod without a controller, then with --force evicts every pod; the ReplicaSet replaces its pods on the other node', async () => {
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        replicas: 4,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            terminationGracePeriodSeconds: 5,
            containers: [{ name: 'app', image: 'coxswain/busybox' }],
          },
        },
      },
    };
    await c.api.create(rs);
    await c.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'solo', namespace: 'default' },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'coxswain/busybox' }] },
    });
    await waitFor('pods of web on both nodes, and solo, running', async () => {
      const pods = await listOf<Pod>(c.api, 'Pod', 'default');
      const running = pods.filter((p) => p.status?.phase === 'Running');
      return running.length === 5 && running.some((p) => p.spec.nodeName === 'n2') ? true : undefined;
    });
    const onN1 = (await podsOn('n1')).map((p) => p.metadata.name ?? '');

    const refused = await cox('drain', 'n1', '--timeout', '30s');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('node/n1 cordoned\n');
    expect(refused.stderr).toBe(
      'error: unable to drain node "n1": cannot delete Pods that declare no controller (use --force to override): default/solo\n',
    );
    expect((await node('n1')).spec?.unschedulable).toBe(true);
    expect((await podsOn('n1')).every((p) => p.metadata.deletionTimestamp === undefined)).toBe(true);

    const drained = await cox('drain', 'n1', '--force', '--grace-period', '1', '--timeout', '60s');
    expect(drained.stderr).toBe('Warning: deleting Pods that declare no controller: default/solo\n');
    expect(drained.code).toBe(0);
    const lines = drained.stdout.trim().split('\n');
    expect(lines[0]).toBe('node/n1 already cordoned');
    expect(lines.at(-1)).toBe('node/n1 drained');
    for (const name of onN1) {
      expect(lines).toContain(`evicting pod default/${name}`);
      expect(lines).toContain(`pod/${name} evicted`);
    }
    expect(await podsOn('n1')).toEqual([]);
    await waitFor('4 pods of web running on n2', async () => {
      const pods = await listOf<Pod>(c.api, 'Pod', 'default', 'app=web');
      return pods.length === 4 && pods.every((p) => p.spec.nodeName === 'n2' && p.status?.phase === 'Running')
        ? true
        : undefined;
    });
    expect(await cox('uncordon', 'n1')).toMatchObject({ code: 0, stdout: 'node/n1 uncordoned\n' });
  });

  it('drain gives up after --timeout, naming the pods still there', async () => {
    await c.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'slow', namespace: 'default' },
      spec: {
        nodeName: 'n2',
        terminationGracePeriodSeconds: 30,
        containers: [{ name: 'stubborn', image: 'coxswain/busybox' }],
      },
    });
    await waitFor('slow running', async () =>
      (await podsOn('n2')).some((p) => p.metadata.name === 'slow' && p.status?.phase === 'Running')
        ? true
        : undefined,
    );
    const r = await cox('drain', 'n2', '--force', '--timeout', '2s');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Warning: deleting Pods that declare no controller: default/slow\n');
    expect(r.stderr).toMatch(
      /error: unable to drain node "n2": timed out after 2s waiting for pods to be deleted: .*default\/slow\n$/,
    );
  });
});

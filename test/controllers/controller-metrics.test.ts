/**
 * The leader's controller counters as users read them: any master answers (a follower asks the
 * leader), through the API and `cox cluster controllers`. In-process masters, one hollow node.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControllersStatus } from '../../actors/api.js';
import type { ReplicaSet } from '../../core/index.js';
import { coxAgainst } from '../fixtures/cox-in-process.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, startHollowCluster } from '../fixtures/hollow-cluster.js';

let c: HollowCluster;

beforeAll(async () => {
  c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
}, 60_000);
afterAll(async () => {
  await c?.stop();
});

describe('controller metrics (in-process masters)', () => {
  it('shows the replicaset controller at work, asked of a follower', async () => {
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'app', image: 'coxswain/busybox' }] },
        },
      },
    };
    await c.api.create(rs);
    await waitFor('2 ready', async () => {
      const r = (await c.api.get({ kind: 'ReplicaSet', namespace: 'default', name: 'web' })) as ReplicaSet;
      return r.status?.readyReplicas === 2 ? true : undefined;
    });
    const leader = await c.leader();
    const follower = await c.masters.follower();
    expect(follower.id).not.toBe(leader.id);
    const status = await follower.api.controllers();
    expect(status.leader).toBe(leader.id);
    expect(status.running).toBe(true);
    expect(status.term).toBe(leader.host.status().term);
    const byName = new Map(status.controllers.map((x) => [x.name, x]));
    const replicaset = byName.get('replicaset');
    expect(replicaset?.running).toBe(true);
    expect(replicaset?.reconciles ?? 0).toBeGreaterThan(0);
    expect(replicaset?.latencyP99Ms ?? -1).toBeGreaterThanOrEqual(replicaset?.latencyP50Ms ?? 0);
    expect(byName.get('scheduler')?.reconciles ?? 0).toBeGreaterThan(0);
    expect(status.events.written).toBeGreaterThan(0); // SuccessfulCreate, Scheduled

    const table = await coxAgainst(follower.api, 'cluster', 'controllers');
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^NAME\s+RUNNING\s+RECONCILES\s+ERRORS\s+REQUEUES\s+QUEUE\s+P50\s+P99\s+RESTARTS\s+LAST ERROR$/,
    );
    const row = lines.find((l) => l.startsWith('replicaset '))?.split(/\s+/) ?? [];
    expect(row[1]).toBe('true');
    expect(Number(row[2])).toBeGreaterThan(0);
    expect(table.stdout).toMatch(
      new RegExp(`^controllers of leader ${leader.id} \\(term \\d+\\); events: \\d+ written`, 'm'),
    );

    const json = await coxAgainst(follower.api, 'cluster', 'controllers', '-o', 'json');
    expect(json.code).toBe(0);
    const raw = JSON.parse(json.stdout) as ControllersStatus;
    expect(raw.leader).toBe(leader.id);
    expect(raw.controllers.find((x) => x.name === 'replicaset')?.reconciles ?? 0).toBeGreaterThan(0);

    const bad = await coxAgainst(follower.api, 'cluster', 'controllers', '-o', 'yaml');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: --output: "yaml": cluster controllers prints a table or json\n');
  });
});

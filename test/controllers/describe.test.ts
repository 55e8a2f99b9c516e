/** `cox describe` and `cox events` against in-process masters with controllers and hollow nodes. */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pod, ReplicaSet } from '../../core/index.js';
import { coxAgainst } from '../fixtures/cox-in-process.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

let c: HollowCluster;

const cox = (...args: string[]) => coxAgainst(c.api, ...args);

beforeAll(async () => {
  c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
  const rs: ReplicaSet = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          nodeName: 'n1',
          containers: [
            {
              name: 'app',
              image: 'coxswain/busybox',
              resources: { requests: { cpu: '100m', memory: '64Mi' } },
            },
          ],
        },
      },
    },
  };
  await c.api.create(rs);
  await waitFor('2 ready', async () => {
    const r = (await c.api.get({ kind: 'ReplicaSet', namespace: 'default', name: 'web' })) as ReplicaSet;
    return r.status?.readyReplicas === 2 ? true : undefined;
  });
  // The event recorder writes in the background.
  await waitFor('events', async () => ((await listOf(c.api, 'Event')).length >= 2 ? true : undefined));
}, 60_000);
afterAll(async () => {
  await c?.stop();
});

describe('cox describe', () => {
  it('describes a ReplicaSet with its pods and events', async () => {
    const r = await cox('describe', 'rs/web');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Name:\s+web$/m);
    expect(r.stdout).toMatch(/^Replicas:\s+2 current \/ 2 desired$/m);
    expect(r.stdout).toMatch(/^Pods Status:\s+2 Running \/ 0 Waiting \/ 0 Succeeded \/ 0 Failed$/m);
    expect(r.stdout).toMatch(/Normal\s+SuccessfulCreate\s+\S+\s+replicaset-controller\s+Created pod: web-/);
  });
  it('describes a pod: its controller, node, containers, conditions and QoS class', async () => {
    const [pod] = await listOf<Pod>(c.api, 'Pod');
    const r = await cox('describe', 'pod', pod.metadata.name ?? '');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Controlled By:\s+ReplicaSet\/web$/m);
    expect(r.stdout).toMatch(/^Node:\s+n1\//m);
    expect(r.stdout).toMatch(/^Status:\s+Running$/m);
    expect(r.stdout).toMatch(/^\s+Requests:\s+cpu: 100m$/m);
    expect(r.stdout).toMatch(/^QoS Class:\s+Burstable$/m);
  });
  it('describes a node with the pods on it and what they request', async () => {
    const r = await cox('describe', 'node', 'n1');
    console.log(
      r.stdout,
      (await cox('describe', 'rs/web')).stdout,
      (
        await cox(
          'describe',
          'pod',
          ...(await listOf<Pod>(c.api, 'Pod')).map((p) => p.metadata.name ?? '').slice(0, 1),
        )
      ).stdout,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Non-terminated Pods:\s+\(2 in total\)/);
    expect(r.stdout).toMatch(/^\s+cpu\s+200m \(5%\)/m);
    expect(r.stdout).toMatch(/HolderIdentity:\s+n1/);
  });
  it('names a missing object in one line and exits 1', async () => {
    const r = await cox('describe', 'deploy/nope');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/nope/);
  });
});

describe('cox events', () => {
  it('lists events oldest first, filtered by object and type', async () => {
    const all = await cox('events');
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n')[0]).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    expect(all.stdout).toMatch(/Normal\s+SuccessfulCreate\s+replicaset\/web\s+Created pod: web-/);
    const forRs = await cox('events', '--for', 'rs/web');
    expect(forRs.stdout).toMatch(/replicaset\/web/);
    const warnings = await cox('events', '--types', 'Warning');
    expect(warnings.stdout).not.toMatch(/SuccessfulCreate/);
    const bad = await cox('events', '--types', 'Loud');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--types: "Loud"/);
  });
});

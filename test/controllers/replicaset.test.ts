import { afterEach, describe, expect, it } from 'vitest';
import type { Pod, ReplicaSet } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const rs = (name: string, replicas: number, labels: Record<string, string> = { app: name }): ReplicaSet => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name, namespace: 'default' },
  spec: {
    replicas,
    selector: { matchLabels: labels },
    template: {
      metadata: { labels },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'coxswain/busybox' }] },
    },
  },
});

const podsOf = async (c: HollowCluster, app: string) =>
  (await listOf<Pod>(c.api, 'Pod', 'default', `app=${app}`)).filter((p) => !p.metadata.deletionTimestamp);

describe('ReplicaSet controller (in-process masters, hollow nodes)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('creates, scales up and down, replaces a deleted pod, and reports status', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    await c.api.create(rs('web', 3));
    await waitFor('3 pods', async () => ((await podsOf(c!, 'web')).length === 3 ? true : undefined));
    const status = await waitFor('status 3 ready', async () => {
      const r = (await c!.api.get({ kind: 'ReplicaSet', namespace: 'default', name: 'web' })) as ReplicaSet;
      return r.status?.readyReplicas === 3 && r.status.availableReplicas === 3 ? r.status : undefined;
    });
    expect(status.replicas).toBe(3);
    expect(status.observedGeneration).toBe(1);
    const pods = await podsOf(c, 'web');
    for (const p of pods) {
      expect(p.metadata.ownerReferences?.[0]).toMatchObject({
        kind: 'ReplicaSet',
        name: 'web',
        controller: true,
      });
      expect(p.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
    }
    await c.api.delete(
      { kind: 'Pod', namespace: 'default', name: pods[0].metadata.name ?? '' },
      { gracePeriodSeconds: 0 },
    );
    await waitFor('replacement', async () => {
      const now = await podsOf(c!, 'web');
      return now.length === 3 && !now.some((p) => p.metadata.name === pods[0].metadata.name)
        ? true
        : undefined;
    });
    await c.api.patch({ kind: 'ReplicaSet', namespace: 'default', name: 'web' }, { spec: { replicas: 1 } });
    await waitFor('scaled to 1', async () => ((await podsOf(c!, 'web')).length === 1 ? true : undefined));
    await c.api.patch({ kind: 'ReplicaSet', namespace: 'default', name: 'web' }, { spec: { replicas: 4 } });
    await waitFor('scaled to 4', async () => ((await podsOf(c!, 'web')).length === 4 ? true : undefined));
  });

  it('adopts a matching orphan instead of creating a pod, and releases a pod relabelled away (item 8)', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    await c.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orphan', namespace: 'default', labels: { app: 'db' } },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'coxswain/busybox' }] },
    });
    await c.api.create(rs('db', 2, { app: 'db' }));
    const adopted = await waitFor('orphan adopted', async () => {
      const p = (await c!.api.get({ kind: 'Pod', namespace: 'default', name: 'orphan' })) as Pod;
      return p.metadata.ownerReferences?.some((r) => r.name === 'db' && r.controller) ? p : undefined;
    });
    expect(adopted.metadata.ownerReferences).toHaveLength(1);
    await waitFor('2 pods', async () => ((await podsOf(c!, 'db')).length === 2 ? true : undefined));
    // Relabel the orphan out of the selector: released, and replaced.
    await c.api.patch(
      { kind: 'Pod', namespace: 'default', name: 'orphan' },
      { metadata: { labels: { app: 'other' } } },
    );
    await waitFor('released', async () => {
      const p = (await c!.api.get({ kind: 'Pod', namespace: 'default', name: 'orphan' })) as Pod;
      return p.metadata.ownerReferences === undefined ? true : undefined;
    });
    await waitFor('replaced', async () => ((await podsOf(c!, 'db')).length === 2 ? true : undefined));
    expect((await podsOf(c, 'db')).some((p) => p.metadata.name === 'orphan')).toBe(false);
  });

  it('the new leader finishes the work after the leader dies, with no pod beyond the replica count', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    await c.api.create(rs('api', 20));
    const leader = await c.leader();
    await c.masters.kill(leader.id);
    await waitFor(
      '20 pods after failover',
      async () => ((await podsOf(c!, 'api')).length === 20 ? true : undefined),
      30_000,
    );
    // Settle: no controller of any term overshoots.
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await podsOf(c, 'api')).length).toBe(20);
  });
});

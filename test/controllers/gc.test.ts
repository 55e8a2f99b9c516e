/**
 * The garbage collector on in-process masters with hollow nodes (notes/k8s-behaviours.md items
 * 10–13). ReplicaSets stand in for Deployments (a ConfigMap owns the ReplicaSet where a
 * Deployment would); pods are pinned with `nodeName`, so they run without a scheduler.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorCode, isApiError } from '../../actors/api.js';
import type { ApiObject, OwnerReference, Pod, ReplicaSet } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

let c: HollowCluster;

beforeAll(async () => {
  c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
});
afterAll(async () => {
  await c?.stop();
});

const rs = (name: string, replicas: number, ownerReferences?: OwnerReference[]): ReplicaSet => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name, namespace: 'default', ...(ownerReferences ? { ownerReferences } : {}) },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: {
        nodeName: 'n1',
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: 'coxswain/busybox' }],
      },
    },
  },
});

const configMap = (name: string): ApiObject =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: {} }) as ApiObject;

const pod = (name: string, ownerReferences?: OwnerReference[]): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', ...(ownerReferences ? { ownerReferences } : {}) },
  spec: {
    nodeName: 'n1',
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'app', image: 'coxswain/busybox' }],
  },
});

const refTo = (owner: ApiObject, extra: Partial<OwnerReference> = {}): OwnerReference => ({
  apiVersion: owner.apiVersion,
  kind: owner.kind,
  name: owner.metadata.name ?? '',
  uid: owner.metadata.uid ?? '',
  blockOwnerDeletion: true,
  ...extra,
});

const key = (kind: string, name: string) => ({ kind, namespace: 'default', name });

async function getOrUndefined<T extends ApiObject>(kind: string, name: string): Promise<T | undefined> {
  try {
    return (await c.api.get(key(kind, name))) as T;
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) return undefined;
    throw err;
  }
}

const podsOf = (app: string) => listOf<Pod>(c.api, 'Pod', 'default', `app=${app}`);

async function runningPods(app: string, n: number): Promise<Pod[]> {
  return waitFor(`${n} running pods of ${app}`, async () => {
    const pods = await podsOf(app);
    return pods.length === n && pods.every((p) => p.status?.phase === 'Running') ? pods : undefined;
  });
}

const gone = (kind: string, name: string) =>
  waitFor(`${kind} ${name} gone`, async () =>
    (await getOrUndefined(kind, name)) === undefined ? true : undefined,
  );

describe('garbage collector (in-process masters, hollow node)', () => {
  it('item 10, Background: deleting the owner deletes its ReplicaSet and the ReplicaSet its pods', async () => {
    const bundle = await c.api.create(configMap('bundle'));
    await c.api.create(rs('web', 2, [refTo(bundle, { controller: true })]));
    await runningPods('web', 2);
    await c.api.delete(key('ConfigMap', 'bundle'));
    await gone('ReplicaSet', 'web');
    await waitFor('pods of web gone', async () => ((await podsOf('web')).length === 0 ? true : undefined));
  });

  it('item 11, Orphan: the ReplicaSet goes, its pods stay with their ownerReferences removed', async () => {
    await c.api.create(rs('keep', 2));
    const before = await runningPods('keep', 2);
    await c.api.delete(key('ReplicaSet', 'keep'), { propagationPolicy: 'Orphan' });
    await gone('ReplicaSet', 'keep');
    const after = await waitFor('pods orphaned', async () => {
      const pods = await podsOf('keep');
      return pods.length === 2 && pods.every((p) => p.metadata.ownerReferences === undefined)
        ? pods
        : undefined;
    });
    expect(after.map((p) => p.metadata.uid).sort()).toEqual(before.map((p) => p.metadata.uid).sort());
    // Nothing comes for them later: same pods, not being deleted.
    await new Promise((r) => setTimeout(r, 1_000));
    const still = await podsOf('keep');
    expect(still.map((p) => p.metadata.uid).sort()).toEqual(before.map((p) => p.metadata.uid).sort());
    expect(still.every((p) => p.metadata.deletionTimestamp === undefined)).toBe(true);
  });

  it('item 12, Foreground: the ReplicaSet remains until all its pods are gone', async () => {
    await c.api.create(rs('fg', 2));
    const [held, other] = await runningPods('fg', 2);
    await c.api.patch(key('Pod', held.metadata.name ?? ''), {
      metadata: { finalizers: ['example.com/hold'] },
    });
    await c.api.delete(key('ReplicaSet', 'fg'), { propagationPolicy: 'Foreground' });
    const marked = await getOrUndefined<ReplicaSet>('ReplicaSet', 'fg');
    expect(marked?.metadata.deletionTimestamp).toBeDefined();
    expect(marked?.metadata.finalizers).toContain('foregroundDeletion');
    await gone('Pod', other.metadata.name ?? '');
    const heldNow = await waitFor('held pod marked for deletion', async () => {
      const p = await getOrUndefined<Pod>('Pod', held.metadata.name ?? '');
      return p?.metadata.deletionTimestamp !== undefined ? p : undefined;
    });
    expect(heldNow.metadata.finalizers).toEqual(['example.com/hold']);
    // The held pod exists (with its grace over), so the ReplicaSet still does.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await getOrUndefined<ReplicaSet>('ReplicaSet', 'fg'))?.metadata.finalizers).toContain(
      'foregroundDeletion',
    );
    const latest = (await c.api.get(key('Pod', held.metadata.name ?? ''))) as Pod;
    await c.api.update({ ...latest, metadata: { ...latest.metadata, finalizers: [] } });
    await gone('Pod', held.metadata.name ?? '');
    await gone('ReplicaSet', 'fg');
  });

  it('item 13: a pod with another valid owner survives foreground deletion of one owner, losing only that reference', async () => {
    const other = await c.api.create(configMap('other-owner'));
    await c.api.create(rs('shared', 2));
    const [kept, dropped] = await runningPods('shared', 2);
    const refs = [...(kept.metadata.ownerReferences ?? []), refTo(other)];
    await c.api.patch(key('Pod', kept.metadata.name ?? ''), { metadata: { ownerReferences: refs } });
    await c.api.delete(key('ReplicaSet', 'shared'), { propagationPolicy: 'Foreground' });
    await gone('ReplicaSet', 'shared');
    await gone('Pod', dropped.metadata.name ?? '');
    const survivor = (await c.api.get(key('Pod', kept.metadata.name ?? ''))) as Pod;
    expect(survivor.metadata.deletionTimestamp).toBeUndefined();
    expect(survivor.metadata.ownerReferences).toEqual([refTo(other)]);
  });

  it('item 13: an ownerReference cycle among three pods does not block a foreground deletion', async () => {
    const [p1, p2, p3] = await Promise.all(['cyc-1', 'cyc-2', 'cyc-3'].map((n) => c.api.create(pod(n))));
    // p1 is owned by p3, p2 by p1, p3 by p2: every reference blocks its owner's deletion.
    for (const [dependent, owner] of [
      [p1, p3],
      [p2, p1],
      [p3, p2],
    ] as const) {
      await c.api.patch(key('Pod', dependent.metadata.name ?? ''), {
        metadata: { ownerReferences: [refTo(owner)] },
      });
    }
    await c.api.delete(key('Pod', 'cyc-1'), { propagationPolicy: 'Foreground' });
    for (const n of ['cyc-1', 'cyc-2', 'cyc-3']) await gone('Pod', n);
  });

  it('owners are referenced by uid: a reference to a gone uid is dangling even if the name exists again', async () => {
    const owner = await c.api.create(configMap('owner'));
    await c.api.create(pod('stale-ref', [{ ...refTo(owner), uid: '00000000-0000-0000-0000-000000000000' }]));
    await c.api.create(pod('good-ref', [refTo(owner)]));
    await gone('Pod', 'stale-ref');
    await new Promise((r) => setTimeout(r, 500));
    expect((await getOrUndefined<Pod>('Pod', 'good-ref'))?.metadata.deletionTimestamp).toBeUndefined();
  });

  it('Background: a dependent of two owners loses the reference to the one deleted and stays', async () => {
    const a = await c.api.create(configMap('owner-a'));
    const b = await c.api.create(configMap('owner-b'));
    await c.api.create(pod('two-owners', [refTo(a), refTo(b)]));
    await c.api.delete(key('ConfigMap', 'owner-a'));
    const p = await waitFor('reference to owner-a removed', async () => {
      const got = await getOrUndefined<Pod>('Pod', 'two-owners');
      return got?.metadata.ownerReferences?.length === 1 ? got : undefined;
    });
    expect(p.metadata.ownerReferences).toEqual([refTo(b)]);
    expect(p.metadata.deletionTimestamp).toBeUndefined();
    await c.api.delete(key('ConfigMap', 'owner-b'));
    await gone('Pod', 'two-owners');
  });
});

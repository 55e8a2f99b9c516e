/**
 * Namespace lifecycle on in-process masters with a hollow node (notes/k8s-behaviours.md item
 * 14, and §5 complaint 2: a namespace stuck in Terminating says why).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, ApiErrorCode, isApiError } from '../../actors/api.js';
import type { ApiObject, Condition, Namespace, ReplicaSet } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

let c: HollowCluster;

beforeAll(async () => {
  c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
});
afterAll(async () => {
  await c?.stop();
});

async function namespace(name: string): Promise<Namespace | undefined> {
  try {
    return (await c.api.get({ kind: 'Namespace', name })) as Namespace;
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) return undefined;
    throw err;
  }
}

const conditionOf = (ns: Namespace | undefined, type: string): Condition | undefined =>
  ns?.status?.conditions?.find((x) => x.type === type);

const rs = (namespace: string): ReplicaSet => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: 'web', namespace },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        nodeName: 'n1',
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: 'coxswain/busybox' }],
      },
    },
  },
});

const configMap = (namespace: string, name: string, finalizers?: string[]): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, ...(finalizers ? { finalizers } : {}) },
    data: { k: 'v' },
  }) as ApiObject;

describe('namespace lifecycle (in-process masters, hollow node)', () => {
  it('the system namespaces exist and cannot be deleted', async () => {
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      const ns = await waitFor(`namespace ${name}`, () => namespace(name));
      expect(ns.status?.phase).toBe('Active');
      expect(ns.spec?.finalizers).toEqual(['kubernetes']);
      const err = await c.api.delete({ kind: 'Namespace', name }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(ApiErrorCode.Invalid);
      expect((err as ApiError).message).toBe(
        `namespaces "${name}": metadata.name: this namespace may not be deleted (a system namespace)`,
      );
    }
    // The agent's Lease lives there.
    await waitFor('the node Lease', async () =>
      (await listOf(c.api, 'Lease', 'kube-node-lease')).some((l) => l.metadata.name === 'n1')
        ? true
        : undefined,
    );
  });

  it('item 14: deleting a namespace removes its pods, services and everything else; finalizers inside hold it, visibly', async () => {
    await c.api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
    await c.api.create(rs('team'));
    await c.api.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'team' },
      spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
    });
    await c.api.create(configMap('team', 'plain'));
    await c.api.create(configMap('team', 'held', ['example.com/x']));
    await waitFor('3 running pods', async () => {
      const pods = await listOf(c.api, 'Pod', 'team');
      return pods.length === 3 &&
        pods.every((p) => (p as { status?: { phase?: string } }).status?.phase === 'Running')
        ? true
        : undefined;
    });

    const marked = (await c.api.delete({ kind: 'Namespace', name: 'team' })) as Namespace;
    expect(marked.status?.phase).toBe('Terminating');
    expect(marked.metadata.deletionTimestamp).toBeDefined();

    // Everything without a finalizer goes; the held ConfigMap stays and says so.
    const stuck = await waitFor(
      'only the held ConfigMap left',
      async () => {
        const ns = await namespace('team');
        return conditionOf(ns, 'NamespaceContentRemaining')?.message ===
          'Some resources are remaining: configmaps. has 1 resource instances'
          ? ns
          : undefined;
      },
      30_000,
    );
    expect(conditionOf(stuck, 'NamespaceContentRemaining')).toMatchObject({
      status: 'True',
      reason: 'SomeResourcesRemain',
    });
    expect(conditionOf(stuck, 'NamespaceFinalizersRemaining')).toMatchObject({
      status: 'True',
      reason: 'SomeFinalizersRemain',
      message:
        'Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances',
    });
    expect(conditionOf(stuck, 'NamespaceDeletionContentFailure')).toMatchObject({
      status: 'False',
      reason: 'ContentDeleted',
    });
    expect(stuck.status?.phase).toBe('Terminating');
    for (const kind of ['Pod', 'Service', 'ReplicaSet'] as const)
      expect(await listOf(c.api, kind, 'team')).toEqual([]);
    const configMaps = await listOf(c.api, 'ConfigMap', 'team');
    expect(configMaps.map((o) => o.metadata.name)).toEqual(['held']);
    expect(configMaps[0].metadata.deletionTimestamp).toBeDefined();

    // Releasing the finalizer lets the namespace go.
    const held = configMaps[0];
    await c.api.update({ ...held, metadata: { ...held.metadata, finalizers: [] } });
    await waitFor('namespace team gone', async () =>
      (await namespace('team')) === undefined ? true : undefined,
    );
    expect(await listOf(c.api, 'ConfigMap', 'team')).toEqual([]);
  });

  it("item 14: a namespace finalizer can be added and removed; the namespace's own finalizer keeps it Terminating, visibly", async () => {
    await c.api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fin' } });
    const added = (await c.api.patch(
      { kind: 'Namespace', name: 'fin' },
      { spec: { finalizers: ['kubernetes', 'example.com/fake'] } },
    )) as Namespace;
    expect(added.spec?.finalizers).toEqual(['kubernetes', 'example.com/fake']);
    // An update that leaves spec.finalizers out keeps them.
    const relabelled = (await c.api.update({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'fin', labels: { team: 'a' } },
    })) as Namespace;
    expect(relabelled.spec?.finalizers).toEqual(['kubernetes', 'example.com/fake']);
    const removed = (await c.api.patch(
      { kind: 'Namespace', name: 'fin' },
      { spec: { finalizers: ['kubernetes'] } },
    )) as Namespace;
    expect(removed.spec?.finalizers).toEqual(['kubernetes']);

    await c.api.patch(
      { kind: 'Namespace', name: 'fin' },
      { spec: { finalizers: ['kubernetes', 'example.com/fake'] } },
    );
    await c.api.create(configMap('fin', 'cfg'));
    await c.api.delete({ kind: 'Namespace', name: 'fin' });
    const stuck = await waitFor('content gone, own finalizer left', async () => {
      const ns = await namespace('fin');
      return ns?.spec?.finalizers?.join() === 'example.com/fake' &&
        conditionOf(ns, 'NamespaceFinalizersRemaining')?.status === 'True'
        ? ns
        : undefined;
    });
    expect(conditionOf(stuck, 'NamespaceFinalizersRemaining')?.message).toBe(
      'The namespace itself has finalizers remaining: example.com/fake',
    );
    expect(conditionOf(stuck, 'NamespaceContentRemaining')?.status).toBe('False');
    expect(stuck.status?.phase).toBe('Terminating');
    expect(await listOf(c.api, 'ConfigMap', 'fin')).toEqual([]);
    // No new finalizer while Terminating; removing the last one lets it go.
    const refused = await c.api
      .patch(
        { kind: 'Namespace', name: 'fin' },
        { spec: { finalizers: ['example.com/fake', 'example.com/late'] } },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((refused as ApiError).code).toBe(ApiErrorCode.Invalid);
    expect((refused as ApiError).message).toContain('spec.finalizers: no new finalizers');
    await c.api.patch({ kind: 'Namespace', name: 'fin' }, { spec: { finalizers: [] } });
    await waitFor('namespace fin gone', async () =>
      (await namespace('fin')) === undefined ? true : undefined,
    );
  });
});

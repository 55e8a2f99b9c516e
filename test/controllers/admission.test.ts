/**
 * Leader admission on in-process masters (memory transport, hollow nodes): namespaces,
 * LimitRanges and ResourceQuotas, through the leader and through followers (forwarded
 * writes), under concurrency and across a leader change; and the quota status controller.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, type ObjectApi } from '../../actors/api.js';
import type { ApiObject, Pod, ReplicaSet } from '../../core/index.js';
import type { LimitRange, ResourceQuota } from '../../core/objects.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

const namespace = (name: string, finalizers?: string[]): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, ...(finalizers ? { finalizers } : {}) },
  }) as ApiObject;

const configMap = (name: string, ns: string): ApiObject =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { a: 'b' } }) as ApiObject;

const pod = (
  name: string,
  ns: string,
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> },
  extra: Partial<Pod['spec']> = {},
): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns },
  spec: {
    containers: [{ name: 'app', image: 'coxswain/busybox', ...(resources ? { resources } : {}) }],
    ...extra,
  },
});

const quota = (name: string, ns: string, hard: Record<string, string>, scopes?: string[]): ResourceQuota =>
  ({
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name, namespace: ns },
    spec: { hard, ...(scopes ? { scopes } : {}) },
  }) as ResourceQuota;

const quotaStatusOf = async (api: ObjectApi, ns: string, name: string) =>
  ((await api.get({ kind: 'ResourceQuota', namespace: ns, name })) as ResourceQuota).status;

/** Waits until the quota's status.used equals `used`. */
const usedBecomes = (c: HollowCluster, ns: string, name: string, used: Record<string, string>) =>
  waitFor(
    `quota ${name} used ${JSON.stringify(used)}`,
    async () => {
      const st = await quotaStatusOf(c.api, ns, name);
      return JSON.stringify(st?.used) === JSON.stringify(used) ? st : undefined;
    },
    20_000,
  );

describe('leader admission (in-process masters)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('refuses objects in a missing or terminating namespace, on the leader and through a follower', async () => {
    c = await startHollowCluster();
    const leader = await c.leader();
    const follower = await c.masters.follower();
    for (const api of [leader.api, follower.api]) {
      const missing = await rejection(api.create(configMap('a', 'nowhere')));
      expect(missing.code).toBe('NotFound');
      expect(missing.message).toBe('namespaces "nowhere" not found');
      // A dry run runs the same check.
      expect((await rejection(api.create(configMap('a', 'nowhere'), { dryRun: true }))).code).toBe(
        'NotFound',
      );
    }
    // The system namespaces need no Namespace object.
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      await follower.api.create(configMap('a', ns));
    }
    await c.api.create(namespace('team', ['example.com/hold']));
    // A finalizer keeps it while the namespace controller deletes the namespace's content.
    const held = configMap('a', 'team');
    held.metadata.finalizers = ['example.com/keep'];
    await follower.api.create(held);
    await c.api.delete({ kind: 'Namespace', name: 'team' });
    for (const api of [leader.api, follower.api]) {
      const terminating = await rejection(api.create(configMap('b', 'team')));
      expect(terminating.code).toBe('Forbidden');
      expect(terminating.message).toBe(
        'configmaps "b" is forbidden: unable to create new content in namespace team because it is being terminated',
      );
    }
    // Objects already there can still change (the namespace controller deletes them).
    await follower.api.patch({ kind: 'ConfigMap', namespace: 'team', name: 'a' }, { data: { a: 'c' } });
  });

  it('applies LimitRange defaults and rejects violations, also for forwarded writes (item 48)', async () => {
    c = await startHollowCluster();
    await c.api.create(namespace('lr'));
    const range: LimitRange = {
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: 'lr1', namespace: 'lr' },
      spec: {
        limits: [
          {
            type: 'Container',
            default: { cpu: '300m', memory: '128Mi' },
            defaultRequest: { cpu: '100m' },
            max: { cpu: '500m' },
          },
        ],
      },
    };
    await c.api.create(range);
    const follower = await c.masters.follower();
    const created = (await follower.api.create(pod('plain', 'lr'))) as Pod;
    expect(created.spec.containers[0].resources).toEqual({
      limits: { cpu: '300m', memory: '128Mi' },
      requests: { cpu: '100m', memory: '128Mi' },
    });
    expect(created.metadata.annotations?.['kubernetes.io/limit-ranger']).toContain(
      'cpu limit for container app',
    );
    const stored = (await c.api.get({ kind: 'Pod', namespace: 'lr', name: 'plain' })) as Pod;
    expect(stored.spec.containers[0].resources).toEqual(created.spec.containers[0].resources);

    for (const api of [follower.api, (await c.leader()).api]) {
      const big = await rejection(api.create(pod('big', 'lr', { limits: { cpu: '1' } })));
      expect(big.code).toBe('Forbidden');
      expect(big.details.fieldPath).toBe('spec.containers[0].resources.limits.cpu');
      expect(big.message).toBe(
        'pods "big" is forbidden: spec.containers[0].resources.limits.cpu: maximum cpu usage per Container is 500m, but limit is 1 (LimitRange lr1); and 1 more',
      );
    }
    // A request above the defaulted limit is invalid, with its field.
    const inverted = await rejection(c.api.create(pod('inv', 'lr', { requests: { cpu: '400m' } })));
    expect(inverted.code).toBe('Invalid');
    expect(inverted.details.fieldPath).toBe('spec.containers[0].resources.requests[cpu]');
    // Dry run: same defaults, nothing written.
    const dry = (await c.api.create(pod('dry', 'lr'), { dryRun: true })) as Pod;
    expect(dry.spec.containers[0].resources?.limits).toEqual({ cpu: '300m', memory: '128Mi' });
    expect((await rejection(c.api.get({ kind: 'Pod', namespace: 'lr', name: 'dry' }))).code).toBe('NotFound');
  });

  it('enforces a ResourceQuota at create, releases usage on delete and on terminal pods, and keeps status current (item 47)', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1', script: (spec) => (spec.name === 'once' ? { exitAfterMs: 200 } : {}) }],
    });
    await c.api.create(namespace('q'));
    await c.api.create(quota('q1', 'q', { pods: '3', 'requests.cpu': '2', 'limits.memory': '1Gi' }));
    await usedBecomes(c, 'q', 'q1', { 'limits.memory': '0', pods: '0', 'requests.cpu': '0' });
    const st = await quotaStatusOf(c.api, 'q', 'q1');
    expect(st?.hard).toEqual({ pods: '3', 'requests.cpu': '2', 'limits.memory': '1Gi' });

    const follower = await c.masters.follower();
    const unset = await rejection(follower.api.create(pod('bare', 'q')));
    expect(unset.code).toBe('Forbidden');
    expect(unset.message).toBe(
      'pods "bare" is forbidden: failed quota: q1: must specify limits.memory for: app; requests.cpu for: app',
    );
    const res = (cpu: string) => ({ requests: { cpu }, limits: { memory: '256Mi' } });
    await follower.api.create(pod('a', 'q', res('1'), { nodeName: 'n1' }));
    const over = await rejection(follower.api.create(pod('x', 'q', res('1500m'))));
    expect(over.code).toBe('Forbidden');
    expect(over.message).toBe(
      'pods "x" is forbidden: exceeded quota: q1, requested: requests.cpu=1500m, used: requests.cpu=1, limited: requests.cpu=2',
    );
    await usedBecomes(c, 'q', 'q1', { 'limits.memory': '256Mi', pods: '1', 'requests.cpu': '1' });

    // Deleting a pod releases its usage.
    await c.api.delete({ kind: 'Pod', namespace: 'q', name: 'a' }, { gracePeriodSeconds: 0 });
    await waitFor('pod a gone', async () =>
      (await listOf<Pod>(c!.api, 'Pod', 'q')).length === 0 ? true : undefined,
    );
    await c.api.create(pod('x', 'q', res('1500m')));
    await usedBecomes(c, 'q', 'q1', { 'limits.memory': '256Mi', pods: '1', 'requests.cpu': '1500m' });

    // A pod that finishes (Succeeded) stops counting.
    const once: Pod = {
      ...pod('once', 'q', res('500m'), { nodeName: 'n1', restartPolicy: 'Never' }),
    };
    once.spec.containers[0].name = 'once';
    await c.api.create(once);
    await usedBecomes(c, 'q', 'q1', { 'limits.memory': '512Mi', pods: '2', 'requests.cpu': '2' });
    await waitFor('once succeeded', async () => {
      const p = (await c!.api.get({ kind: 'Pod', namespace: 'q', name: 'once' })) as Pod;
      return p.status?.phase === 'Succeeded' ? p : undefined;
    });
    await usedBecomes(c, 'q', 'q1', { 'limits.memory': '256Mi', pods: '1', 'requests.cpu': '1500m' });
    await c.api.create(pod('y', 'q', res('500m')));
  });

  it('scopes and object counts', async () => {
    c = await startHollowCluster();
    await c.api.create(namespace('s'));
    await c.api.create(quota('besteffort', 's', { pods: '1' }, ['BestEffort']));
    await c.api.create(
      quota('objects', 's', { configmaps: '1', 'count/secrets': '1', 'services.nodeports': '1' }),
    );
    await c.api.create(pod('be1', 's'));
    expect((await rejection(c.api.create(pod('be2', 's')))).message).toMatch(
      /^pods "be2" is forbidden: exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1$/,
    );
    // Not BestEffort: another scope, allowed.
    await c.api.create(pod('burst', 's', { requests: { cpu: '100m' } }));
    await c.api.create(configMap('one', 's'));
    expect((await rejection(c.api.create(configMap('two', 's')))).message).toBe(
      'configmaps "two" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1',
    );
    const svc = (name: string, type: 'ClusterIP' | 'NodePort', ports: number) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 's' },
      spec: {
        type,
        selector: { app: name },
        ports: Array.from({ length: ports }, (_, i) => ({ name: `p${i}`, port: 80 + i })),
      },
    });
    await c.api.create(svc('plain', 'ClusterIP', 2));
    expect((await rejection(c.api.create(svc('np', 'NodePort', 2)))).message).toContain(
      'exceeded quota: objects, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1',
    );
    // An update that adds node ports is checked too.
    expect(
      (
        await rejection(
          c.api.patch({ kind: 'Service', namespace: 's', name: 'plain' }, { spec: { type: 'NodePort' } }),
        )
      ).code,
    ).toBe('Forbidden');
    await usedBecomes(c, 's', 'objects', {
      configmaps: '1',
      'count/secrets': '0',
      'services.nodeports': '0',
    });
  });

  it('lets exactly N of many concurrent creates through a quota of N, whichever master they reach', async () => {
    c = await startHollowCluster();
    await c.api.create(namespace('race'));
    const n = 7;
    await c.api.create(quota('q', 'race', { pods: String(n), 'requests.cpu': '70' }));
    const masters = [...c.masters.nodes.values()];
    const attempts = 30;
    const results = await Promise.allSettled(
      Array.from({ length: attempts }, (_, i) =>
        masters[i % masters.length].api.create(pod(`p${i}`, 'race', { requests: { cpu: '1' } })),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(n);
    for (const f of failed) {
      expect(f.reason).toBeInstanceOf(ApiError);
      expect((f.reason as ApiError).code).toBe('Forbidden');
      expect((f.reason as ApiError).message).toContain('exceeded quota: q, requested: pods=1');
    }
    expect(await listOf<Pod>(c.api, 'Pod', 'race')).toHaveLength(n);
    await usedBecomes(c, 'race', 'q', { pods: String(n), 'requests.cpu': String(n) });
  });

  it('keeps quota exact across a leader change, and the new leader recomputes status', async () => {
    c = await startHollowCluster();
    await c.api.create(namespace('fo'));
    await c.api.create(quota('q', 'fo', { pods: '4' }));
    for (let i = 0; i < 3; i += 1) await c.api.create(pod(`p${i}`, 'fo'));
    const old = await c.leader();
    // Writes in flight while the leader dies: each either lands or fails, never beyond the quota.
    const racing = Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => c!.api.create(pod(`late${i}`, 'fo'))),
    );
    await c.masters.kill(old.id);
    await racing;
    const settled = await waitFor(
      'new leader',
      async () => {
        const l = await c!.leader();
        return l.id !== old.id ? l : undefined;
      },
      20_000,
    );
    // Whatever landed, the total stays within the quota, and the new leader refuses the rest.
    const after = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) => settled.api.create(pod(`new${i}`, 'fo'))),
    );
    expect(after.filter((r) => r.status === 'fulfilled').length).toBeLessThanOrEqual(1);
    const pods = await listOf<Pod>(c.api, 'Pod', 'fo');
    expect(pods).toHaveLength(4);
    await usedBecomes(c, 'fo', 'q', { pods: '4' });
    // Deleting one makes room for exactly one.
    await c.api.delete({ kind: 'Pod', namespace: 'fo', name: 'p0' });
    const again = await Promise.allSettled(
      Array.from({ length: 3 }, (_, i) => c!.api.create(pod(`again${i}`, 'fo'))),
    );
    expect(again.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    await usedBecomes(c, 'fo', 'q', { pods: '4' });
  });

  it('a ReplicaSet that exceeds its quota reports ReplicaFailure and FailedCreate (item 9)', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    await c.api.create(namespace('rsq'));
    await c.api.create(quota('q', 'rsq', { pods: '2' }));
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'web', namespace: 'rsq' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'coxswain/busybox' }] },
        },
      },
    };
    await c.api.create(rs);
    const failed = await waitFor(
      'ReplicaFailure',
      async () => {
        const r = (await c!.api.get({ kind: 'ReplicaSet', namespace: 'rsq', name: 'web' })) as ReplicaSet;
        return r.status?.conditions?.find((x) => x.type === 'ReplicaFailure' && x.status === 'True');
      },
      20_000,
    );
    expect(failed.reason).toBe('FailedCreate');
    expect(failed.message).toMatch(
      /^pods "web-[a-z0-9]{5}" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2$/,
    );
    const event = await waitFor('FailedCreate event', async () =>
      (await listOf(c!.api, 'Event', 'rsq')).find(
        (e) => (e as { reason?: string }).reason === 'FailedCreate',
      ),
    );
    expect((event as { message?: string }).message).toContain('exceeded quota: q');
    expect(await listOf<Pod>(c.api, 'Pod', 'rsq')).toHaveLength(2);
    // Raising the quota lets the ReplicaSet finish, and the condition clears.
    await c.api.patch(
      { kind: 'ResourceQuota', namespace: 'rsq', name: 'q' },
      { spec: { hard: { pods: '3' } } },
    );
    await waitFor(
      'third replica and no ReplicaFailure',
      async () => {
        const r = (await c!.api.get({ kind: 'ReplicaSet', namespace: 'rsq', name: 'web' })) as ReplicaSet;
        const pods = await listOf<Pod>(c!.api, 'Pod', 'rsq');
        return pods.length === 3 && !r.status?.conditions?.some((x) => x.type === 'ReplicaFailure')
          ? true
          : undefined;
      },
      30_000,
    );
  });
});

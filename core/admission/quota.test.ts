import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ApiObject, Pod, ResourceQuota, Service } from '../objects.js';
import { aggregatesOf, checkQuotas, quotaStatus, quotaUsage, usageSource } from './quota.js';
import { QuotaUsageIndex, type UsageChange } from './quota-usage.js';

const pod = (
  name: string,
  opts: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
    deadline?: number;
    init?: Record<string, string>;
    ns?: string;
  } = {},
): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: opts.ns ?? 'ns' },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'busybox',
        ...(opts.requests || opts.limits
          ? {
              resources: {
                ...(opts.requests ? { requests: opts.requests } : {}),
                ...(opts.limits ? { limits: opts.limits } : {}),
              },
            }
          : {}),
      },
    ],
    ...(opts.init
      ? { initContainers: [{ name: 'init', image: 'busybox', resources: { requests: opts.init } }] }
      : {}),
    ...(opts.deadline !== undefined ? { activeDeadlineSeconds: opts.deadline } : {}),
  },
  status: { phase: opts.phase ?? 'Pending' },
});

const quota = (
  name: string,
  hard: Record<string, string>,
  scopes?: ResourceQuota['spec']['scopes'],
): ResourceQuota => ({
  apiVersion: 'v1',
  kind: 'ResourceQuota',
  metadata: { name, namespace: 'ns' },
  spec: { hard, ...(scopes ? { scopes } : {}) },
});

const obj = (kind: string, name: string, ns = 'ns'): ApiObject =>
  ({ apiVersion: 'v1', kind, metadata: { name, namespace: ns } }) as unknown as ApiObject;

const service = (name: string, type: 'ClusterIP' | 'NodePort', ports = 1): Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'ns' },
  spec: { type, ports: Array.from({ length: ports }, (_, i) => ({ name: `p${i}`, port: 80 + i })) },
});

const usageText = (q: ResourceQuota, objects: ApiObject[]) =>
  quotaStatus(q, quotaUsage(q, aggregatesOf(objects))).used;

describe('quota usage (item 47)', () => {
  it('sums requests and limits of pods that are not terminal; requests default to limits', () => {
    const q = quota('q', {
      pods: '10',
      'requests.cpu': '4',
      cpu: '4',
      'requests.memory': '1Gi',
      'limits.cpu': '8',
      'count/pods': '10',
    });
    const objects = [
      pod('a', { requests: { cpu: '500m', memory: '128Mi' }, limits: { cpu: '1' } }),
      pod('b', { limits: { cpu: '250m', memory: '64Mi' } }),
      pod('done', { requests: { cpu: '2' }, phase: 'Succeeded' }),
    ];
    expect(usageText(q, objects)).toEqual({
      pods: '2',
      'requests.cpu': '750m',
      cpu: '750m',
      'requests.memory': '192Mi',
      'limits.cpu': '1250m',
      'count/pods': '3',
    });
  });

  it("counts a pod's init container when it is larger than its app containers", () => {
    const q = quota('q', { 'requests.cpu': '4' });
    expect(usageText(q, [pod('a', { requests: { cpu: '100m' }, init: { cpu: '1' } })])).toEqual({
      'requests.cpu': '1',
    });
  });

  it('counts objects by kind, NodePort ports, and count/<plural>[.<group>]', () => {
    const q = quota('q', {
      services: '5',
      'services.nodeports': '5',
      configmaps: '5',
      secrets: '5',
      resourcequotas: '5',
      replicationcontrollers: '5',
      'count/deployments.apps': '5',
      'count/replicasets': '5',
      'count/widgets': '5',
    });
    const objects = [
      service('a', 'NodePort', 2),
      service('b', 'ClusterIP'),
      obj('ConfigMap', 'c'),
      obj('Secret', 's'),
      q,
      obj('Deployment', 'd'),
      obj('ReplicaSet', 'r'),
      obj('ReplicaSet', 'r2'),
    ];
    expect(usageText(q, objects)).toEqual({
      services: '2',
      'services.nodeports': '2',
      configmaps: '1',
      secrets: '1',
      resourcequotas: '1',
      replicationcontrollers: '0',
      'count/deployments.apps': '1',
      'count/replicasets': '2',
      'count/widgets': '0',
    });
    expect(usageSource('count/widgets')).toBeUndefined();
  });

  it('scopes: BestEffort/NotBestEffort and Terminating/NotTerminating match pods only', () => {
    const objects = [
      pod('be'),
      pod('burst', { requests: { cpu: '1' } }),
      pod('job', { requests: { cpu: '1' }, deadline: 60 }),
      obj('ConfigMap', 'c'),
    ];
    expect(usageText(quota('q', { pods: '9', configmaps: '9' }, ['BestEffort']), objects)).toEqual({
      pods: '1',
      configmaps: '0',
    });
    expect(usageText(quota('q', { pods: '9' }, ['NotBestEffort']), objects)).toEqual({ pods: '2' });
    expect(usageText(quota('q', { pods: '9' }, ['Terminating']), objects)).toEqual({ pods: '1' });
    expect(
      usageText(quota('q', { pods: '9', cpu: '9' }, ['NotTerminating', 'NotBestEffort']), objects),
    ).toEqual({
      pods: '1',
      cpu: '1',
    });
  });
});

describe('checkQuotas', () => {
  const usageOf = (objects: ApiObject[]) => (q: ResourceQuota) => quotaUsage(q, aggregatesOf(objects));

  it('rejects a pod that exceeds the remaining quota, with Kubernetes wording', () => {
    const q1 = quota('q1', { 'requests.cpu': '2', pods: '10' });
    const existing = [pod('a', { requests: { cpu: '1' } })];
    expect(
      checkQuotas({ object: pod('x', { requests: { cpu: '2' } }), quotas: [q1], usage: usageOf(existing) }),
    ).toEqual({
      quota: 'q1',
      message: 'exceeded quota: q1, requested: requests.cpu=2, used: requests.cpu=1, limited: requests.cpu=2',
    });
    expect(
      checkQuotas({ object: pod('x', { requests: { cpu: '1' } }), quotas: [q1], usage: usageOf(existing) }),
    ).toBeUndefined();
  });

  it('lists every exceeded resource, and reports the first quota by name', () => {
    const qa = quota('a', { pods: '1', 'requests.memory': '1Gi' });
    const qb = quota('b', { pods: '0' });
    const r = checkQuotas({
      object: pod('x', { requests: { cpu: '1', memory: '2Gi' } }),
      quotas: [qb, qa],
      usage: usageOf([pod('y', { requests: { cpu: '1', memory: '1Mi' } })]),
    });
    expect(r?.message).toBe(
      'exceeded quota: a, requested: pods=1,requests.memory=2Gi, used: pods=1,requests.memory=1Mi, limited: pods=1,requests.memory=1Gi',
    );
  });

  it('requires pods under a cpu or memory quota to set them', () => {
    const q = quota('compute', { 'requests.cpu': '4', 'limits.memory': '1Gi', pods: '5' });
    const r = checkQuotas({ object: pod('x'), quotas: [q], usage: usageOf([]) });
    expect(r).toEqual({
      quota: 'compute',
      message: 'failed quota: compute: must specify limits.memory for: app; requests.cpu for: app',
    });
    // A limit implies the request.
    expect(
      checkQuotas({
        object: pod('x', { limits: { cpu: '1', memory: '1Mi' } }),
        quotas: [q],
        usage: usageOf([]),
      }),
    ).toBeUndefined();
    // A scoped quota the pod does not match requires nothing.
    const be = quota('be', { 'requests.cpu': '4' }, ['NotBestEffort']);
    expect(checkQuotas({ object: pod('x'), quotas: [be], usage: usageOf([]) })).toBeUndefined();
  });

  it('counts object kinds and NodePort changes of a service update', () => {
    const q = quota('q', { configmaps: '1', 'services.nodeports': '2' });
    expect(
      checkQuotas({ object: obj('ConfigMap', 'b'), quotas: [q], usage: usageOf([obj('ConfigMap', 'a')]) })
        ?.message,
    ).toBe('exceeded quota: q, requested: configmaps=1, used: configmaps=1, limited: configmaps=1');
    const prev = service('s', 'ClusterIP', 3);
    const next = service('s', 'NodePort', 3);
    expect(checkQuotas({ object: next, prev, quotas: [q], usage: usageOf([prev]) })?.message).toBe(
      'exceeded quota: q, requested: services.nodeports=3, used: services.nodeports=0, limited: services.nodeports=2',
    );
    // Updates of other kinds never move quota; a namespace over a lowered quota can still shrink.
    expect(
      checkQuotas({
        object: obj('ConfigMap', 'a'),
        prev: obj('ConfigMap', 'a'),
        quotas: [q],
        usage: usageOf([]),
      }),
    ).toBeUndefined();
    expect(
      checkQuotas({ object: prev, prev: next, quotas: [q], usage: usageOf([next, next]) }),
    ).toBeUndefined();
  });
});

// ---------------------------------------------------------------- the incremental index

type Op =
  | {
      t: 'add';
      ns: string;
      name: string;
      kind: 'Pod' | 'ConfigMap' | 'ResourceQuota';
      cpu: number;
      phase: 'Pending' | 'Succeeded';
    }
  | { t: 'phase'; ns: string; name: string; phase: 'Running' | 'Failed' }
  | { t: 'delete'; ns: string; name: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    t: fc.constant('add' as const),
    ns: fc.constantFrom('a', 'b'),
    name: fc.constantFrom('x', 'y', 'z', 'w'),
    kind: fc.constantFrom('Pod' as const, 'ConfigMap' as const, 'ResourceQuota' as const),
    cpu: fc.integer({ min: 0, max: 3000 }),
    phase: fc.constantFrom('Pending' as const, 'Succeeded' as const),
  }),
  fc.record({
    t: fc.constant('phase' as const),
    ns: fc.constantFrom('a', 'b'),
    name: fc.constantFrom('x', 'y', 'z', 'w'),
    phase: fc.constantFrom('Running' as const, 'Failed' as const),
  }),
  fc.record({
    t: fc.constant('delete' as const),
    ns: fc.constantFrom('a', 'b'),
    name: fc.constantFrom('x', 'y', 'z', 'w'),
  }),
);

describe('QuotaUsageIndex', () => {
  it('equals the aggregates summed from scratch after any sequence of batches (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(opArb, { maxLength: 5 }), { maxLength: 30 }), (batches) => {
        const state = new Map<string, ApiObject>();
        const index = new QuotaUsageIndex();
        const reader = {
          quotaCount: (ns: string) =>
            [...state.values()].filter((o) => o.kind === 'ResourceQuota' && o.metadata.namespace === ns)
              .length,
          objectsIn: (ns: string) => [...state.values()].filter((o) => o.metadata.namespace === ns),
          namespacesWithQuotas: () =>
            new Set(
              [...state.values()]
                .filter((o) => o.kind === 'ResourceQuota')
                .map((o) => o.metadata.namespace ?? ''),
            ),
        };
        for (const batch of batches) {
          const changes: UsageChange[] = [];
          for (const op of batch) {
            const key = `${op.ns}/${op.name}`;
            const prev = state.get(key);
            if (op.t === 'add') {
              if (prev !== undefined) continue;
              const next =
                op.kind === 'Pod'
                  ? pod(op.name, { ns: op.ns, requests: { cpu: `${op.cpu}m` }, phase: op.phase })
                  : op.kind === 'ResourceQuota'
                    ? { ...quota(op.name, { pods: '1' }), metadata: { name: op.name, namespace: op.ns } }
                    : obj(op.kind, op.name, op.ns);
              state.set(key, next);
              changes.push({ next });
            } else if (op.t === 'phase') {
              if (prev?.kind !== 'Pod') continue;
              const next = { ...prev, status: { phase: op.phase } };
              state.set(key, next);
              changes.push({ prev, next });
            } else {
              if (prev === undefined) continue;
              state.delete(key);
              changes.push({ prev });
            }
          }
          index.applyBatch(changes, reader);
          for (const ns of ['a', 'b']) {
            const tracked = reader.quotaCount(ns) > 0;
            expect(index.isTracked(ns)).toBe(tracked);
            if (tracked) expect(index.aggregates(ns)).toEqual(aggregatesOf(reader.objectsIn(ns)));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('QuotaUsageIndex cost', () => {
  it('sums a namespace once when its first quota arrives, then only moves by each change', () => {
    const objects = new Map<string, ApiObject>();
    let scans = 0;
    const reader = {
      quotaCount: (ns: string) =>
        [...objects.values()].filter((o) => o.kind === 'ResourceQuota' && o.metadata.namespace === ns).length,
      objectsIn: (ns: string) => {
        scans += 1;
        return [...objects.values()].filter((o) => o.metadata.namespace === ns);
      },
      namespacesWithQuotas: () => new Set<string>(),
    };
    const index = new QuotaUsageIndex();
    const pods: UsageChange[] = [];
    for (let i = 0; i < 3000; i += 1) {
      const p = pod(`p${i}`, { requests: { cpu: '10m' } });
      objects.set(`p${i}`, p);
      pods.push({ next: p });
    }
    // No quota: nothing is tracked and nothing is summed.
    index.applyBatch(pods, reader);
    expect(index.trackedNamespaces).toBe(0);
    const q = quota('q', { 'requests.cpu': '100' });
    objects.set('q', q);
    index.applyBatch([{ next: q }], reader);
    expect(scans).toBe(1);
    for (let i = 3000; i < 4000; i += 1) {
      const p = pod(`p${i}`, { requests: { cpu: '10m' } });
      objects.set(`p${i}`, p);
      index.applyBatch([{ next: p }], reader);
    }
    expect(scans).toBe(1);
    expect(quotaStatus(q, quotaUsage(q, index.aggregates('ns') ?? new Map())).used).toEqual({
      'requests.cpu': '40',
    });
    // The last quota goes: the namespace is dropped.
    objects.delete('q');
    index.applyBatch([{ prev: q }], reader);
    expect(index.isTracked('ns')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { applyCommand } from './commands.js';
import type { ApiObject } from './objects.js';
import { prepareForCreate, validateUpdate } from './update-rules.js';

const pod = (spec: Record<string, unknown>): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u1', resourceVersion: '5', generation: 1 },
    spec: { containers: [{ name: 'c', image: 'busybox:1' }], ...spec },
  }) as unknown as ApiObject;

const deployment = (selector: Record<string, string>): ApiObject =>
  ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', namespace: 'default', uid: 'u2', resourceVersion: '5', generation: 1 },
    spec: { selector: { matchLabels: selector }, template: { metadata: { labels: selector }, spec: {} } },
  }) as unknown as ApiObject;

describe('validateUpdate', () => {
  it('lets a pod change its images, bind once, and change nothing else', () => {
    expect(validateUpdate(pod({}), pod({ containers: [{ name: 'c', image: 'busybox:2' }] }))).toEqual([]);
    expect(validateUpdate(pod({}), pod({ nodeName: 'n1' }))).toEqual([]);
    expect(validateUpdate(pod({ nodeName: 'n1' }), pod({ nodeName: 'n2' }))[0]?.path).toBe('spec.nodeName');
    const renamed = validateUpdate(pod({}), pod({ containers: [{ name: 'd', image: 'busybox:1' }] }));
    expect(renamed).toHaveLength(1);
    expect(renamed[0].path).toBe('spec.containers');
    expect(renamed[0].message).toMatch(/^pod updates may not change fields other than/);
    expect(validateUpdate(pod({}), pod({ activeDeadlineSeconds: 5 }))).toEqual([]);
    expect(validateUpdate(pod({}), pod({ restartPolicy: 'Never' }))[0]?.path).toBe('spec.restartPolicy');
  });

  it('keeps workload selectors and a job template immutable', () => {
    expect(validateUpdate(deployment({ a: 'b' }), deployment({ a: 'c' }))).toEqual([
      { path: 'spec.selector', type: 'invalid', message: 'field is immutable' },
    ]);
    const job = (image: string) =>
      ({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'j' },
        spec: { template: { spec: { containers: [{ name: 'c', image }] } } },
      }) as unknown as ApiObject;
    expect(validateUpdate(job('a'), job('b'))[0]?.path).toBe('spec.template');
  });

  it('keeps an allocated cluster IP and the data of an immutable ConfigMap', () => {
    const svc = (ip?: string) =>
      ({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 's' },
        spec: { clusterIP: ip },
      }) as unknown as ApiObject;
    expect(validateUpdate(svc('10.0.0.1'), svc('10.0.0.2'))[0]?.path).toBe('spec.clusterIP');
    expect(validateUpdate(svc('10.0.0.1'), svc(undefined))).toEqual([]);
    const cm = (immutable: boolean, v: string) =>
      ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'c' },
        immutable,
        data: { k: v },
      }) as unknown as ApiObject;
    expect(validateUpdate(cm(true, 'a'), cm(true, 'b'))[0]?.path).toBe('data');
    expect(validateUpdate(cm(false, 'a'), cm(false, 'b'))).toEqual([]);
  });

  it('is enforced by the apply rules with the field path, writing nothing', () => {
    const current = deployment({ a: 'b' });
    const out = applyCommand(current, { op: 'update', object: deployment({ a: 'c' }) }, 9);
    expect(out).toEqual({
      result: 'rejected',
      code: 'Invalid',
      message: 'deployments "d" in namespace "default": spec.selector: field is immutable',
      fieldPath: 'spec.selector',
    });
  });
});

describe('prepareForCreate', () => {
  it('gives pods the not-ready and unreachable NoExecute tolerations (300 s) unless they have their own', () => {
    const p = prepareForCreate(pod({})) as unknown as { spec: { tolerations: unknown[] } };
    expect(p.spec.tolerations).toEqual([
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ]);
    const own = {
      key: 'node.kubernetes.io/unreachable',
      operator: 'Exists',
      effect: 'NoExecute',
      tolerationSeconds: 5,
    };
    const q = prepareForCreate(pod({ tolerations: [own] })) as unknown as {
      spec: { tolerations: unknown[] };
    };
    expect(q.spec.tolerations).toEqual([
      own,
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ]);
    const all = { operator: 'Exists' };
    const r = prepareForCreate(pod({ tolerations: [all] })) as unknown as {
      spec: { tolerations: unknown[] };
    };
    expect(r.spec.tolerations).toEqual([all]);
  });

  it('puts the kubernetes finalizer in a namespace spec.finalizers, once', () => {
    const ns = (spec?: unknown) =>
      prepareForCreate({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'x' },
        ...(spec ? { spec } : {}),
      } as ApiObject) as unknown as { spec?: { finalizers?: string[] } };
    expect(ns().spec?.finalizers).toEqual(['kubernetes']);
    expect(ns({ finalizers: ['example.com/x'] }).spec?.finalizers).toEqual(['example.com/x', 'kubernetes']);
    expect(ns({ finalizers: ['kubernetes'] }).spec?.finalizers).toEqual(['kubernetes']);
  });

  it('drops client status, starts pods Pending and namespaces Active, keeps node status', () => {
    const p = prepareForCreate({ ...pod({}), status: { phase: 'Running' } } as ApiObject);
    expect((p as { status?: unknown }).status).toEqual({ phase: 'Pending', qosClass: 'BestEffort' });
    const ns = prepareForCreate({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'x' },
    } as ApiObject);
    expect((ns as { status?: unknown }).status).toEqual({ phase: 'Active' });
    const d = prepareForCreate({ ...deployment({ a: 'b' }), status: { replicas: 3 } } as ApiObject);
    expect('status' in d).toBe(false);
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n' },
      status: { capacity: { cpu: '2' } },
    };
    expect(prepareForCreate(node as unknown as ApiObject)).toBe(node);
  });
});

describe('prepareForCreate: QoS class', () => {
  const withResources = (...resources: Record<string, Record<string, string>>[]) =>
    prepareForCreate(
      pod({ containers: resources.map((r, i) => ({ name: `c${i}`, image: 'busybox:1', resources: r })) }),
    ) as ApiObject & { status?: { qosClass?: string } };

  it('sets status.qosClass from the spec (Guaranteed, Burstable, BestEffort)', () => {
    const full = { cpu: '500m', memory: '128Mi' };
    expect(withResources({ limits: full }).status?.qosClass).toBe('Guaranteed');
    expect(withResources({ limits: full, requests: full }, { limits: full }).status?.qosClass).toBe(
      'Guaranteed',
    );
    expect(withResources({ requests: { cpu: '100m' } }).status?.qosClass).toBe('Burstable');
    expect(withResources({ limits: full }, {}).status?.qosClass).toBe('Burstable');
    expect(withResources({}).status?.qosClass).toBe('BestEffort');
  });
});

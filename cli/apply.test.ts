import { describe, expect, it } from 'vitest';
import { ApiError, type ObjectApi } from '../actors/api.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import {
  applyLimits,
  applyObject,
  desiredUpdate,
  isSubset,
  isUnchanged,
  lastAppliedAnnotation,
  withNamespace,
} from './apply.js';

const cm = (data: Record<string, string>) =>
  withNamespace(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: { a: 'b' } }, data },
    undefined,
  );

describe('isSubset', () => {
  it('ignores fields only the server has, compares the rest deeply', () => {
    expect(isSubset({ a: { b: 1 } }, { a: { b: 1, c: 2 }, d: 3 })).toBe(true);
    expect(isSubset({ a: { b: 1 } }, { a: { b: 2 } })).toBe(false);
    expect(isSubset({ l: [{ x: 1 }] }, { l: [{ x: 1, y: 2 }] })).toBe(true);
    expect(isSubset({ l: [{ x: 1 }] }, { l: [{ x: 1 }, { x: 2 }] })).toBe(false);
    expect(isSubset({ a: 1 }, {})).toBe(false);
  });
});

describe('desiredUpdate', () => {
  it('merges over the server state, keeps system metadata and uses the current version as precondition', () => {
    const current = {
      kind: 'ConfigMap',
      metadata: { name: 'c', uid: 'u1', resourceVersion: '7', labels: { old: 'x' } },
      data: { a: '1' },
    };
    const manifest = {
      kind: 'ConfigMap',
      metadata: { name: 'c', labels: { a: 'b' } },
      data: { b: '2' },
      status: { x: 1 },
    };
    const config = { kind: 'ConfigMap', metadata: { name: 'c', labels: { a: 'b' } }, data: { b: '2' } };
    // Nothing was applied before: fields the server has and the manifest does not name stay.
    expect(desiredUpdate(manifest, current)).toEqual({
      kind: 'ConfigMap',
      metadata: {
        name: 'c',
        uid: 'u1',
        resourceVersion: '7',
        labels: { old: 'x', a: 'b' },
        annotations: { [lastAppliedAnnotation]: JSON.stringify(config) },
      },
      data: { a: '1', b: '2' },
    });
  });

  it('removes what the last applied manifest had and this one dropped, and keeps server-set fields', () => {
    const last = {
      kind: 'Pod',
      metadata: { name: 'p', labels: { a: '1', b: '2' } },
      spec: { activeDeadlineSeconds: 5 },
    };
    const current = {
      kind: 'Pod',
      metadata: {
        name: 'p',
        resourceVersion: '9',
        labels: { a: '1', b: '2', added: 'by-controller' },
        annotations: { [lastAppliedAnnotation]: JSON.stringify(last) },
      },
      spec: { activeDeadlineSeconds: 5, nodeName: 'n1' },
      status: { phase: 'Running' },
    };
    const manifest = { kind: 'Pod', metadata: { name: 'p', labels: { a: '1' } }, spec: {} };
    const out = desiredUpdate(manifest, current) as {
      metadata: { labels: unknown };
      spec: unknown;
      status?: unknown;
    };
    expect(out.metadata.labels).toEqual({ a: '1', added: 'by-controller' });
    expect(out.spec).toEqual({ nodeName: 'n1' });
    expect(out.status).toBeUndefined();
    expect(isUnchanged(manifest, current)).toBe(false);
    expect(isUnchanged(last, current)).toBe(true);
  });
});

describe('withNamespace', () => {
  it('defaults the namespace of namespaced kinds only and checks -n', () => {
    expect((cm({}).metadata as { namespace: string }).namespace).toBe('default');
    const ns = withNamespace({ kind: 'Namespace', metadata: { name: 'x' } }, 'prod');
    expect(ns.metadata).toEqual({ name: 'x' });
    expect(() => withNamespace({ kind: 'Pod', metadata: { name: 'p', namespace: 'a' } }, 'b')).toThrow(
      'pod/p: metadata.namespace: "a" does not match --namespace "b"',
    );
  });
});

describe('applyObject', () => {
  it('creates, then leaves unchanged, then configures', async () => {
    const { objects } = createMemoryApi();
    expect((await applyObject(objects, cm({ k: '1' }))).outcome).toBe('created');
    expect((await applyObject(objects, cm({ k: '1' }))).outcome).toBe('unchanged');
    const r = await applyObject(objects, cm({ k: '2' }));
    expect(r.outcome).toBe('configured');
    const now = await objects.get({ kind: 'ConfigMap', namespace: 'default', name: 'c' });
    expect((now as unknown as { data: unknown }).data).toEqual({ k: '2' });
    expect(now.metadata.uid).toBe('uid-1');
  });

  it('retries a Conflict with a fresh read, a bounded number of times', async () => {
    const { objects } = createMemoryApi();
    await applyObject(objects, cm({ k: '1' }));
    let updates = 0;
    const racing: ObjectApi = {
      ...objects,
      get: (k, o) => objects.get(k, o),
      update: async (obj, o) => {
        updates++;
        if (updates < 3) throw new ApiError('Conflict', 'stale', { fieldPath: 'metadata.resourceVersion' });
        return objects.update(obj, o);
      },
    };
    expect((await applyObject(racing, cm({ k: '2' }))).outcome).toBe('configured');
    expect(updates).toBe(3);

    const always: ObjectApi = {
      ...racing,
      update: async () => {
        updates++;
        throw new ApiError('Conflict', 'stale');
      },
    };
    updates = 0;
    await expect(applyObject(always, cm({ k: '3' }))).rejects.toMatchObject({ code: 'Conflict' });
    expect(updates).toBe(applyLimits.conflictRetriesMax + 1);
  });

  it('passes validation errors through', async () => {
    const { objects } = createMemoryApi();
    const bad = withNamespace(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: -1 } },
      undefined,
    );
    await expect(applyObject(objects, bad)).rejects.toBeInstanceOf(ApiError);
  });
});

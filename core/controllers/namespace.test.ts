import { describe, expect, it } from 'vitest';
import type { ApiObject, Condition, Namespace, ObjectMeta } from '../objects.js';
import { groupResource, namespaceDeletesPerPassMax, planNamespaceDeletion } from './namespace.js';

const NOW = '2024-05-01T10:00:00Z';

function ns(specFinalizers: string[], extra: Partial<ObjectMeta> = {}): Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'team', uid: 'u-ns', deletionTimestamp: NOW, ...extra },
    spec: { finalizers: specFinalizers },
    status: { phase: 'Terminating' },
  };
}

function obj(kind: string, name: string, extra: Partial<ObjectMeta> = {}): ApiObject {
  return {
    apiVersion: 'v1',
    kind,
    metadata: { name, namespace: 'team', uid: `u-${name}`, ...extra },
  } as ApiObject;
}

const condition = (conditions: Condition[] | undefined, type: string) =>
  conditions?.find((c) => c.type === type);

describe('groupResource', () => {
  it("writes Kubernetes' group-resource text", () => {
    expect(groupResource('Pod')).toBe('pods.');
    expect(groupResource('Deployment')).toBe('deployments.apps');
    expect(groupResource('Lease')).toBe('leases.coordination.k8s.io');
  });
});

describe('planNamespaceDeletion', () => {
  it('deletes what is not yet being deleted and reports what remains and which finalizers hold it', () => {
    const pods = ['a', 'b', 'c'].map((n) => obj('Pod', n));
    const held = obj('ConfigMap', 'held', { finalizers: ['example.com/x'], deletionTimestamp: NOW });
    const plan = planNamespaceDeletion(
      ns(['kubernetes']),
      [
        { kind: 'Pod', objects: pods },
        { kind: 'ConfigMap', objects: [held] },
      ],
      [],
      NOW,
    );
    expect(plan.delete).toEqual(pods);
    expect(plan.finalize).toBe(false);
    const c = plan.status?.conditions;
    expect(condition(c, 'NamespaceContentRemaining')).toMatchObject({
      status: 'True',
      reason: 'SomeResourcesRemain',
      message:
        'Some resources are remaining: configmaps. has 1 resource instances, pods. has 3 resource instances',
    });
    expect(condition(c, 'NamespaceFinalizersRemaining')).toMatchObject({
      status: 'True',
      reason: 'SomeFinalizersRemain',
      message:
        'Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances',
    });
    expect(condition(c, 'NamespaceDeletionContentFailure')).toMatchObject({
      status: 'False',
      reason: 'ContentDeleted',
    });
    expect(plan.status?.phase).toBe('Terminating');
  });

  it('once empty: all conditions False and the kubernetes finalizer goes', () => {
    const plan = planNamespaceDeletion(ns(['kubernetes']), [{ kind: 'Pod', objects: [] }], [], NOW);
    expect(plan.finalize).toBe(true);
    expect(plan.delete).toEqual([]);
    const c = plan.status?.conditions;
    expect(condition(c, 'NamespaceContentRemaining')).toMatchObject({
      status: 'False',
      message: 'All content successfully removed',
    });
    expect(condition(c, 'NamespaceFinalizersRemaining')).toMatchObject({ status: 'False' });
  });

  it("shows the namespace's own finalizers once its content is gone (a namespace stuck in Terminating)", () => {
    const plan = planNamespaceDeletion(
      ns(['example.com/fake'], { finalizers: ['example.com/meta'] }),
      [],
      [],
      NOW,
    );
    expect(plan.finalize).toBe(false);
    expect(condition(plan.status?.conditions, 'NamespaceFinalizersRemaining')).toMatchObject({
      status: 'True',
      message: 'The namespace itself has finalizers remaining: example.com/meta, example.com/fake',
    });
  });

  it('without the kubernetes finalizer nothing is deleted, and what is left is still reported', () => {
    const plan = planNamespaceDeletion(ns([]), [{ kind: 'Pod', objects: [obj('Pod', 'a')] }], [], NOW);
    expect(plan.delete).toEqual([]);
    expect(plan.finalize).toBe(false);
    expect(condition(plan.status?.conditions, 'NamespaceContentRemaining')?.status).toBe('True');
  });

  it('reports failed deletes, and keeps lastTransitionTime while a condition holds', () => {
    const failed = planNamespaceDeletion(ns(['kubernetes']), [], ['pod "a": no quorum'], NOW);
    expect(condition(failed.status?.conditions, 'NamespaceDeletionContentFailure')).toMatchObject({
      status: 'True',
      reason: 'ContentDeletionFailed',
      message: 'Failed to delete all resource types, 1 remaining: pod "a": no quorum',
    });
    const later = planNamespaceDeletion(
      { ...ns(['kubernetes']), status: failed.status },
      [],
      ['pod "a": no quorum'],
      '2024-05-01T10:01:00Z',
    );
    expect(condition(later.status?.conditions, 'NamespaceDeletionContentFailure')?.lastTransitionTime).toBe(
      NOW,
    );
  });

  it('deletes at most namespaceDeletesPerPassMax objects per pass', () => {
    const many = Array.from({ length: namespaceDeletesPerPassMax + 5 }, (_, i) => obj('ConfigMap', `c${i}`));
    const plan = planNamespaceDeletion(ns(['kubernetes']), [{ kind: 'ConfigMap', objects: many }], [], NOW);
    expect(plan.delete).toHaveLength(namespaceDeletesPerPassMax);
  });
});

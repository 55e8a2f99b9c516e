import { describe, expect, it } from 'vitest';
import { FinalizerForeground, FinalizerOrphan } from '../commands.js';
import type { ApiObject, ObjectMeta, OwnerReference } from '../objects.js';
import {
  finalizersWithout,
  type GcLookup,
  type GcStep,
  ownerRefsWithout,
  planGarbageCollection,
  unblockedOwnerRefs,
} from './gc.js';

const NOW = '2024-05-01T10:00:00Z';

function obj(kind: string, name: string, extra: Partial<ObjectMeta> = {}, namespace = 'default'): ApiObject {
  return {
    apiVersion: kind === 'ReplicaSet' ? 'apps/v1' : 'v1',
    kind,
    metadata: { name, namespace, uid: `uid-${name}`, ...extra },
    spec: {},
  } as unknown as ApiObject;
}

function ref(owner: ApiObject, block = true, controller = false): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    ...(block ? { blockOwnerDeletion: true } : {}),
    ...(controller ? { controller: true } : {}),
  };
}

/** A lookup over a set of objects, as the cache's uid and owner indexes answer it. */
function lookupOf(objects: readonly ApiObject[]): GcLookup {
  return {
    byUid: (uid) => objects.find((o) => o.metadata.uid === uid),
    dependents: (uid) => objects.filter((o) => o.metadata.ownerReferences?.some((r) => r.uid === uid)),
  };
}

const deleting = (o: ApiObject, finalizer?: string): ApiObject => ({
  ...o,
  metadata: {
    ...o.metadata,
    deletionTimestamp: NOW,
    ...(finalizer ? { finalizers: [...(o.metadata.finalizers ?? []), finalizer] } : {}),
  },
});

describe('planGarbageCollection: dependents', () => {
  const rs = obj('ReplicaSet', 'rs');

  it('leaves objects without owners, and dependents of live owners, alone', () => {
    expect(planGarbageCollection(rs, lookupOf([rs]))).toEqual({ action: 'none' });
    const pod = obj('Pod', 'p', { ownerReferences: [ref(rs, true, true)] });
    expect(planGarbageCollection(pod, lookupOf([rs, pod]))).toEqual({ action: 'none' });
  });

  it('deletes a dependent whose owners are all gone (Background)', () => {
    const pod = obj('Pod', 'p', { ownerReferences: [ref(rs)] });
    expect(planGarbageCollection(pod, lookupOf([pod]))).toEqual({
      action: 'delete',
      policy: 'Background',
      unblockOwnerRefs: false,
    });
  });

  it('a reference is by uid: an owner of that name with another uid is gone (dangling)', () => {
    const pod = obj('Pod', 'p', { ownerReferences: [ref(rs)] });
    const again = obj('ReplicaSet', 'rs', { uid: 'uid-rs-2' });
    expect(planGarbageCollection(pod, lookupOf([again, pod])).action).toBe('delete');
  });

  it('an owner of another kind or name, or a namespaced owner in another namespace, is dangling', () => {
    const elsewhere = obj('ConfigMap', 'cm', {}, 'other');
    const cm = obj('ConfigMap', 'cm');
    const wrongKind = obj('Pod', 'a', { ownerReferences: [{ ...ref(cm), kind: 'Secret' }] });
    const wrongName = obj('Pod', 'b', { ownerReferences: [{ ...ref(cm), name: 'other' }] });
    const crossNs = obj('Pod', 'c', { ownerReferences: [ref(elsewhere)] });
    for (const p of [wrongKind, wrongName])
      expect(planGarbageCollection(p, lookupOf([cm, p])).action).toBe('delete');
    expect(planGarbageCollection(crossNs, lookupOf([elsewhere, crossNs])).action).toBe('delete');
    // A cluster-scoped owner may own namespaced objects.
    const node = obj('Node', 'n1', {}, '');
    const lease = obj('Lease', 'n1', { ownerReferences: [ref(node)] }, 'kube-node-lease');
    expect(planGarbageCollection(lease, lookupOf([node, lease]))).toEqual({ action: 'none' });
  });

  it('with another live owner, only the references to gone owners are removed', () => {
    const cm = obj('ConfigMap', 'cm');
    const pod = obj('Pod', 'p', { ownerReferences: [ref(rs, true, true), ref(cm)] });
    expect(planGarbageCollection(pod, lookupOf([cm, pod]))).toEqual({
      action: 'removeOwnerRefs',
      uids: ['uid-rs'],
    });
    expect(ownerRefsWithout(pod, ['uid-rs'])).toEqual([ref(cm)]);
    expect(ownerRefsWithout(pod, ['uid-rs', 'uid-cm'])).toBeUndefined();
  });

  it('an owner deleted in the foreground: a dependent with another live owner drops it and survives (item 13)', () => {
    const waiting = deleting(rs, FinalizerForeground);
    const cm = obj('ConfigMap', 'cm');
    const pod = obj('Pod', 'p', { ownerReferences: [ref(waiting, true, true), ref(cm)] });
    expect(planGarbageCollection(pod, lookupOf([waiting, cm, pod]))).toEqual({
      action: 'removeOwnerRefs',
      uids: ['uid-rs'],
    });
  });

  it('an owner deleted in the foreground: its dependents go, in the foreground when they have dependents', () => {
    const waiting = deleting(rs, FinalizerForeground);
    const pod = obj('Pod', 'p', { ownerReferences: [ref(waiting, true, true)] });
    expect(planGarbageCollection(pod, lookupOf([waiting, pod]))).toEqual({
      action: 'delete',
      policy: 'Background',
      unblockOwnerRefs: false,
    });
    const mid = obj('ReplicaSet', 'mid', { ownerReferences: [ref(waiting)] });
    const leaf = obj('Pod', 'leaf', { ownerReferences: [ref(mid)] });
    expect(planGarbageCollection(mid, lookupOf([waiting, mid, leaf]))).toEqual({
      action: 'delete',
      policy: 'Foreground',
      unblockOwnerRefs: false,
    });
  });
});

describe('planGarbageCollection: owners being deleted', () => {
  const rs = obj('ReplicaSet', 'rs');

  it('Foreground: waits while a dependent blocks, then removes its finalizer', () => {
    const owner = deleting(rs, FinalizerForeground);
    const blocking = obj('Pod', 'p', { ownerReferences: [ref(owner, true)] });
    const nonBlocking = obj('Pod', 'q', { ownerReferences: [ref(owner, false)] });
    const step = planGarbageCollection(owner, lookupOf([owner, blocking, nonBlocking]));
    expect(step.action).toBe('awaitDependents');
    expect((step as Extract<GcStep, { action: 'awaitDependents' }>).blocking).toEqual([blocking]);
    // A dependent still terminating (marked, not gone) blocks too: the owner stays until it is gone.
    const terminating = deleting(blocking);
    expect(planGarbageCollection(owner, lookupOf([owner, terminating])).action).toBe('awaitDependents');
    expect(planGarbageCollection(owner, lookupOf([owner, nonBlocking]))).toEqual({
      action: 'removeFinalizer',
      finalizer: FinalizerForeground,
    });
  });

  it('Orphan: removes the references from its dependents, then its finalizer', () => {
    const owner = deleting(rs, FinalizerOrphan);
    const pod = obj('Pod', 'p', { ownerReferences: [ref(owner, true, true)] });
    expect(planGarbageCollection(owner, lookupOf([owner, pod]))).toEqual({
      action: 'orphanDependents',
      dependents: [pod],
    });
    expect(planGarbageCollection(owner, lookupOf([owner]))).toEqual({
      action: 'removeFinalizer',
      finalizer: FinalizerOrphan,
    });
    expect(finalizersWithout(owner, FinalizerOrphan)).toBeUndefined();
  });

  it('an object being deleted without a collector finalizer is left to its own finalizers', () => {
    const owner = deleting(rs, 'example.com/x');
    const pod = obj('Pod', 'p', { ownerReferences: [ref(owner)] });
    expect(planGarbageCollection(owner, lookupOf([owner, pod]))).toEqual({ action: 'none' });
    // ... and it is still a live owner to its dependents.
    expect(planGarbageCollection(pod, lookupOf([owner, pod]))).toEqual({ action: 'none' });
  });
});

/**
 * A dumb model of the cluster: objects without grace periods, steps applied one object at a
 * time until nothing changes. Enough to show that a plan converges (no deadlock).
 */
function runToFixpoint(start: ApiObject[], stepsMax = 200): ApiObject[] {
  let objects = start.map((o) => structuredClone(o));
  const put = (o: ApiObject) => {
    objects = objects.map((x) => (x.metadata.uid === o.metadata.uid ? o : x));
  };
  const remove = (uid: string | undefined) => {
    objects = objects.filter((x) => x.metadata.uid !== uid);
  };
  const finalize = (o: ApiObject) => {
    if (o.metadata.deletionTimestamp !== undefined && (o.metadata.finalizers ?? []).length === 0)
      remove(o.metadata.uid);
    else put(o);
  };
  for (let i = 0; i < stepsMax; i += 1) {
    let changed = false;
    for (const o of [...objects]) {
      const current = objects.find((x) => x.metadata.uid === o.metadata.uid);
      if (current === undefined) continue;
      const step = planGarbageCollection(current, lookupOf(objects));
      switch (step.action) {
        case 'none':
        case 'awaitDependents':
          continue;
        case 'orphanDependents':
          for (const d of step.dependents) {
            put({
              ...d,
              metadata: { ...d.metadata, ownerReferences: ownerRefsWithout(d, [current.metadata.uid ?? '']) },
            });
          }
          break;
        case 'removeFinalizer':
          finalize({
            ...current,
            metadata: { ...current.metadata, finalizers: finalizersWithout(current, step.finalizer) },
          });
          break;
        case 'removeOwnerRefs':
          put({
            ...current,
            metadata: { ...current.metadata, ownerReferences: ownerRefsWithout(current, step.uids) },
          });
          break;
        case 'delete': {
          const target = step.unblockOwnerRefs
            ? { ...current, metadata: { ...current.metadata, ownerReferences: unblockedOwnerRefs(current) } }
            : current;
          if (step.policy === 'Background') remove(target.metadata.uid);
          else put(deleting(target, step.policy === 'Foreground' ? FinalizerForeground : FinalizerOrphan));
          break;
        }
      }
      changed = true;
    }
    if (!changed) return objects;
  }
  throw new Error('no fixpoint');
}

describe('the collector converges', () => {
  it('an ownerReference cycle among three pods does not block a foreground deletion (item 13)', () => {
    const p1 = obj('Pod', 'p1');
    const p2 = obj('Pod', 'p2', { ownerReferences: [ref(p1)] });
    const p3 = obj('Pod', 'p3', { ownerReferences: [ref(p2)] });
    const p1Owned = { ...p1, metadata: { ...p1.metadata, ownerReferences: [ref(p3)] } };
    expect(runToFixpoint([deleting(p1Owned, FinalizerForeground), p2, p3])).toEqual([]);
  });

  it('foreground deletion of a tree removes it all; orphan keeps the dependents without the reference', () => {
    const rs = obj('ReplicaSet', 'rs');
    const pods = ['a', 'b'].map((n) => obj('Pod', n, { ownerReferences: [ref(rs, true, true)] }));
    expect(runToFixpoint([deleting(rs, FinalizerForeground), ...pods])).toEqual([]);
    const left = runToFixpoint([deleting(rs, FinalizerOrphan), ...pods]);
    expect(left.map((o) => o.metadata.name)).toEqual(['a', 'b']);
    for (const o of left) expect(o.metadata.ownerReferences).toBeUndefined();
  });
});

/**
 * The garbage collector's decisions, pure (Kubernetes' `attemptToDeleteItem`,
 * `processDeletingDependentsItem` and `attemptToOrphan`). Owners are found by uid: a
 * reference whose uid no longer exists is dangling even when an object of that name exists
 * again. Lookups are functions over the controllers' cache, so a decision reads only the
 * objects it needs. The actor in `actors/controllers/gc.ts` carries the step out.
 */

import { FinalizerForeground, FinalizerOrphan, type PropagationPolicy } from '../commands.js';
import { type ApiObject, kindInfo, type OwnerReference } from '../objects.js';

/** One step for the object reconciled; after it is written, the change brings the object back. */
export type GcStep =
  | { readonly action: 'none' }
  /** Orphan policy: drop each dependent's references to this owner, then the `orphan` finalizer. */
  | { readonly action: 'orphanDependents'; readonly dependents: readonly ApiObject[] }
  /** Nothing left to wait for: remove this GC finalizer (the object goes if it was the last). */
  | { readonly action: 'removeFinalizer'; readonly finalizer: string }
  /** Foreground policy: dependents with blockOwnerDeletion still exist; they are being deleted. */
  | { readonly action: 'awaitDependents'; readonly blocking: readonly ApiObject[] }
  /** Some owners are solid: drop only the references to owners that are gone or waiting. */
  | { readonly action: 'removeOwnerRefs'; readonly uids: readonly string[] }
  /**
   * No solid owner: delete. `unblockOwnerRefs` first clears blockOwnerDeletion on this object's
   * references, to break a cycle of foreground deletions (a dependent of it waits for it too).
   */
  | { readonly action: 'delete'; readonly policy: PropagationPolicy; readonly unblockOwnerRefs: boolean };

/** How the collector reads the cluster: by uid, and the objects referencing a uid. */
export interface GcLookup {
  byUid(uid: string): ApiObject | undefined;
  dependents(uid: string): readonly ApiObject[];
}

export function hasFinalizer(obj: ApiObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

/** Being deleted in the foreground: waiting for its blocking dependents to go. */
export function isDeletingDependents(obj: ApiObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined && hasFinalizer(obj, FinalizerForeground);
}

/** Being deleted with the orphan policy: its dependents must lose their references to it. */
export function isOrphaningDependents(obj: ApiObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined && hasFinalizer(obj, FinalizerOrphan);
}

/**
 * The live owner `ref` points at, or undefined when it is dangling: no object has its uid, or
 * the object with that uid is of another kind or name, or lives in another namespace than
 * the dependent (a namespaced owner must share the dependent's namespace).
 */
export function resolveOwner(
  dependent: ApiObject,
  ref: OwnerReference,
  lookup: GcLookup,
): ApiObject | undefined {
  const owner = lookup.byUid(ref.uid);
  if (owner === undefined || owner.kind !== ref.kind || owner.metadata.name !== ref.name) return undefined;
  const namespaced = kindInfo[owner.kind].namespaced;
  if (namespaced && owner.metadata.namespace !== dependent.metadata.namespace) return undefined;
  return owner;
}

/** The dependents of `owner` whose reference to it blocks its foreground deletion. */
export function blockingDependents(owner: ApiObject, dependents: readonly ApiObject[]): ApiObject[] {
  const uid = owner.metadata.uid;
  return dependents.filter((d) =>
    d.metadata.ownerReferences?.some((r) => r.uid === uid && r.blockOwnerDeletion === true),
  );
}

/** What the collector does about `obj` now. */
export function planGarbageCollection(obj: ApiObject, lookup: GcLookup): GcStep {
  const uid = obj.metadata.uid ?? '';
  if (obj.metadata.deletionTimestamp !== undefined) {
    if (hasFinalizer(obj, FinalizerOrphan)) {
      const dependents = lookup.dependents(uid);
      return dependents.length > 0
        ? { action: 'orphanDependents', dependents }
        : { action: 'removeFinalizer', finalizer: FinalizerOrphan };
    }
    if (hasFinalizer(obj, FinalizerForeground)) {
      const blocking = blockingDependents(obj, lookup.dependents(uid));
      return blocking.length > 0
        ? { action: 'awaitDependents', blocking }
        : { action: 'removeFinalizer', finalizer: FinalizerForeground };
    }
    return { action: 'none' };
  }
  const refs = obj.metadata.ownerReferences ?? [];
  if (refs.length === 0) return { action: 'none' };
  let solid = 0;
  const gone: string[] = [];
  let waiting = 0;
  for (const ref of refs) {
    const owner = resolveOwner(obj, ref, lookup);
    if (owner === undefined) gone.push(ref.uid);
    else if (isDeletingDependents(owner)) {
      waiting += 1;
      gone.push(ref.uid);
    } else solid += 1;
  }
  if (solid > 0) return gone.length === 0 ? { action: 'none' } : { action: 'removeOwnerRefs', uids: gone };
  if (waiting > 0) {
    const own = lookup.dependents(uid);
    if (own.length > 0) {
      // Deleted in the foreground too, so its owner waits for its whole subtree.
      return { action: 'delete', policy: 'Foreground', unblockOwnerRefs: own.some(isDeletingDependents) };
    }
  }
  const policy: PropagationPolicy = hasFinalizer(obj, FinalizerOrphan)
    ? 'Orphan'
    : hasFinalizer(obj, FinalizerForeground)
      ? 'Foreground'
      : 'Background';
  return { action: 'delete', policy, unblockOwnerRefs: false };
}

/** `obj`'s owner references without those to `uids` (undefined when none is left). */
export function ownerRefsWithout(obj: ApiObject, uids: readonly string[]): OwnerReference[] | undefined {
  const refs = (obj.metadata.ownerReferences ?? []).filter((r) => !uids.includes(r.uid));
  return refs.length > 0 ? refs : undefined;
}

/** `obj`'s owner references with blockOwnerDeletion cleared. */
export function unblockedOwnerRefs(obj: ApiObject): OwnerReference[] | undefined {
  const refs = obj.metadata.ownerReferences;
  if (refs === undefined) return undefined;
  return refs.map((r) => (r.blockOwnerDeletion === true ? { ...r, blockOwnerDeletion: false } : r));
}

/** `obj`'s finalizers without `finalizer` (undefined when none is left). */
export function finalizersWithout(obj: ApiObject, finalizer: string): string[] | undefined {
  const rest = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  return rest.length > 0 ? rest : undefined;
}

/** The uids of `obj`'s owners (for mapping a change to the owners that wait on it). */
export function ownerUids(obj: ApiObject | undefined): string[] {
  return (obj?.metadata.ownerReferences ?? []).map((r) => r.uid);
}

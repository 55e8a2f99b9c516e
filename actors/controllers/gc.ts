/**
 * The garbage collector: follows `ownerReferences`. Background: an object whose owners are
 * all gone is deleted (one that still has a live owner only loses the references to the gone
 * ones). Foreground: an owner marked with the `foregroundDeletion` finalizer stays until no
 * dependent with blockOwnerDeletion is left; its dependents are deleted (in the foreground
 * too when they have dependents of their own). Orphan: an owner marked with the `orphan`
 * finalizer has its references removed from every dependent, then the finalizer.
 *
 * Keys are the objects' own. A change maps to the object itself (when its references or
 * deletion state changed), to its dependents (when it went away or started waiting for them)
 * and to its owners that wait for it (when it went away or dropped a reference), through the
 * cache's owner index: work is proportional to changes; the full walk is only the resync.
 * Decisions come from `core/controllers/gc.ts`.
 */

import { deepEqual, FinalizerOrphan } from '../../core/commands.js';
import {
  finalizersWithout,
  isDeletingDependents,
  isOrphaningDependents,
  ownerRefsWithout,
  ownerUids,
  planGarbageCollection,
  unblockedOwnerRefs,
} from '../../core/controllers/gc.js';
import { type ApiObject, type Kind, kindInfo, type ObjectMeta } from '../../core/index.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { requeueOnConflict } from './requeue.js';
import { deleteObject, keyOf } from './workload.js';

const allKinds = Object.keys(kindInfo) as Kind[];

/** Full walk period: references missed while no leader ran are found at start; this is a safety net. */
const gcResyncMs = 300_000;

function needsCollector(obj: ApiObject): boolean {
  return (
    (obj.metadata.ownerReferences?.length ?? 0) > 0 || isDeletingDependents(obj) || isOrphaningDependents(obj)
  );
}

function refsChanged(a: ApiObject, b: ApiObject): boolean {
  return !deepEqual(a.metadata.ownerReferences, b.metadata.ownerReferences);
}

function deletionChanged(a: ApiObject, b: ApiObject): boolean {
  return (
    a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp ||
    !deepEqual(a.metadata.finalizers, b.metadata.finalizers)
  );
}

export function garbageCollector(): Controller {
  return {
    name: 'garbagecollector',
    watches: allKinds,
    workers: 8,
    resyncMs: gcResyncMs,
    *keysFor(change, cache) {
      const obj = change.object;
      const prev = change.prev;
      const deleted = change.type === 'DELETED';
      if (
        !deleted &&
        needsCollector(obj) &&
        (prev === undefined || refsChanged(prev, obj) || deletionChanged(prev, obj))
      ) {
        yield change.key;
      }
      const uid = obj.metadata.uid;
      const startsWaiting = isDeletingDependents(obj) && !(prev !== undefined && isDeletingDependents(prev));
      if (uid && (deleted || startsWaiting)) {
        for (const d of cache.dependents(uid)) yield keyOf(d);
      }
      if (deleted || (prev !== undefined && refsChanged(prev, obj))) {
        yield* waitingOwnerKeys([...ownerUids(prev), ...(deleted ? ownerUids(obj) : [])], cache);
      }
    },
    *initialKeys(cache) {
      for (const kind of allKinds) {
        for (const obj of cache.list(kind)) if (needsCollector(obj)) yield keyOf(obj);
      }
    },
    reconcile: (key, ctx) => requeueOnConflict(() => reconcileGarbage(key, ctx)),
  };
}

/** Keys of the owners among `uids` that are being deleted in the foreground. */
function* waitingOwnerKeys(uids: readonly string[], cache: ClusterCache): Iterable<string> {
  for (const uid of new Set(uids)) {
    const owner = cache.getByUid(uid);
    if (owner !== undefined && isDeletingDependents(owner)) yield keyOf(owner);
  }
}

async function reconcileGarbage(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const obj = ctx.cache.getByKey(key);
  if (obj === undefined) return undefined;
  const step = planGarbageCollection(obj, {
    byUid: (uid) => ctx.cache.getByUid(uid),
    dependents: (uid) => ctx.cache.dependents(uid),
  });
  switch (step.action) {
    case 'none':
    case 'awaitDependents':
      // Waiting: each blocking dependent's deletion brings this owner back.
      return undefined;
    case 'orphanDependents': {
      const uid = obj.metadata.uid ?? '';
      for (const d of step.dependents) {
        await writeMetadata(ctx, d, { ownerReferences: ownerRefsWithout(d, [uid]) });
      }
      await writeMetadata(ctx, obj, { finalizers: finalizersWithout(obj, FinalizerOrphan) });
      return undefined;
    }
    case 'removeFinalizer':
      await writeMetadata(ctx, obj, { finalizers: finalizersWithout(obj, step.finalizer) });
      return undefined;
    case 'removeOwnerRefs':
      await writeMetadata(ctx, obj, { ownerReferences: ownerRefsWithout(obj, step.uids) });
      return undefined;
    case 'delete': {
      let target: ApiObject | undefined = obj;
      if (step.unblockOwnerRefs) {
        target = await writeMetadata(ctx, obj, { ownerReferences: unblockedOwnerRefs(obj) });
        if (target === undefined) return undefined;
      }
      await deleteObject(ctx, target, { propagationPolicy: step.policy });
      return undefined;
    }
    default: {
      const unknown: never = step;
      throw new Error(`garbage collector: unknown step ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * Updates `obj`'s metadata fields (undefined removes one) with its resourceVersion as the
 * precondition. Gone: undefined. A conflict throws, so the key is looked at again on a fresh read.
 */
async function writeMetadata(
  ctx: ControllerContext,
  obj: ApiObject,
  fields: Pick<ObjectMeta, 'ownerReferences' | 'finalizers'>,
): Promise<ApiObject | undefined> {
  const metadata: ObjectMeta = { ...obj.metadata, ...fields };
  for (const k of Object.keys(fields) as (keyof typeof fields)[]) {
    if (metadata[k] === undefined) delete metadata[k];
  }
  try {
    return await ctx.api.update({ ...obj, metadata });
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) return undefined;
    throw err;
  }
}

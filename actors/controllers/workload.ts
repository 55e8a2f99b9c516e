/**
 * Writes the workload controllers share: claiming (adopt/release by owner reference), pods
 * created in slow-start batches, deletions, and status writes that only happen on change.
 * Every write carries a precondition, so a decision made on a stale view is rejected.
 */

import { deepEqual } from '../../core/commands.js';
import { newControllerRef } from '../../core/controllers/pods.js';
import type { ApiObject, ObjectReference } from '../../core/index.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { ControllerContext } from './controller.js';

/** `kind/namespace/name` → its parts. */
export function parseKey(key: string): { kind: string; namespace: string; name: string } {
  const a = key.indexOf('/');
  const b = key.indexOf('/', a + 1);
  return { kind: key.slice(0, a), namespace: key.slice(a + 1, b), name: key.slice(b + 1) };
}

export function keyOf(obj: ApiObject | ObjectReference, kind?: string): string {
  const m = 'metadata' in obj && obj.metadata !== undefined ? obj.metadata : (obj as ObjectReference);
  return `${kind ?? obj.kind}/${m.namespace ?? ''}/${m.name ?? ''}`;
}

/** The first batch of slow-start creation; each batch doubles while all succeed. */
const slowStartInitialBatch = 1;

/**
 * Runs `count` creations in batches of 1, 2, 4, ... (Kubernetes' slowStartBatch), stopping at
 * the first batch with a failure. Resolves with the successes and the first error, if any.
 */
export async function slowStart<T>(
  count: number,
  create: (i: number) => Promise<T>,
): Promise<{ created: T[]; error?: unknown }> {
  const created: T[] = [];
  let batch = slowStartInitialBatch;
  let i = 0;
  while (i < count) {
    const n = Math.min(batch, count - i);
    const results = await Promise.allSettled(Array.from({ length: n }, (_, j) => create(i + j)));
    i += n;
    let error: unknown;
    for (const r of results) {
      if (r.status === 'fulfilled') created.push(r.value);
      else error ??= r.reason;
    }
    if (error !== undefined) return { created, error };
    batch *= 2;
  }
  return { created };
}

/** Sets the controller reference to `owner` on an orphan (precondition: its resourceVersion). */
export async function adopt(
  ctx: ControllerContext,
  obj: ApiObject,
  owner: ApiObject,
): Promise<ApiObject | undefined> {
  const refs = [
    ...(obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid),
    newControllerRef(owner),
  ];
  try {
    return await ctx.api.update({ ...obj, metadata: { ...obj.metadata, ownerReferences: refs } });
  } catch (err) {
    if (isGoneOrConflict(err)) return undefined; // changed meanwhile: the next pass decides again
    throw err;
  }
}

/** Drops the owner reference to `ownerUid` (precondition: its resourceVersion). */
export async function release(
  ctx: ControllerContext,
  obj: ApiObject,
  ownerUid: string | undefined,
): Promise<void> {
  const refs = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== ownerUid);
  const metadata = { ...obj.metadata, ownerReferences: refs.length > 0 ? refs : undefined };
  if (metadata.ownerReferences === undefined) delete metadata.ownerReferences;
  try {
    await ctx.api.update({ ...obj, metadata });
  } catch (err) {
    if (!isGoneOrConflict(err)) throw err;
  }
}

/** Deletes `obj` if it is still the object with its uid; NotFound is success. */
export async function deleteObject(
  ctx: ControllerContext,
  obj: ApiObject,
  opts: { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; gracePeriodSeconds?: number } = {},
): Promise<boolean> {
  try {
    await ctx.api.delete(
      { kind: obj.kind, namespace: obj.metadata.namespace ?? '', name: obj.metadata.name ?? '' },
      { ...opts, ...(obj.metadata.uid ? { preconditions: { uid: obj.metadata.uid } } : {}) },
    );
    return true;
  } catch (err) {
    if (isApiError(err) && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict))
      return false;
    throw err;
  }
}

/** Writes `status` unless it equals the current one (precondition: resourceVersion). */
export async function writeStatus<T extends ApiObject>(
  ctx: ControllerContext,
  obj: T,
  status: unknown,
): Promise<T> {
  if (deepEqual((obj as { status?: unknown }).status, status)) return obj;
  return (await ctx.api.updateStatus({ ...obj, status })) as T;
}

export function isGoneOrConflict(err: unknown): boolean {
  return isApiError(err) && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

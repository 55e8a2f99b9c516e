/** How the lifecycle controllers treat a lost race. */

import { ApiErrorCode, isApiError } from '../api.js';
import type { ReconcileResult } from './controller.js';

/** A write that lost a race is retried after this (the cache already holds the winner). */
const conflictRetryMs = 10;

/**
 * Runs one reconcile; a Conflict (a precondition that no longer holds: someone wrote the
 * object since it was read) looks at the key again shortly, on a fresh read, instead of
 * counting as an error with backoff. Conflicts are the normal cost of optimistic writes.
 */
export async function requeueOnConflict(reconcile: () => Promise<ReconcileResult>): Promise<ReconcileResult> {
  try {
    return await reconcile();
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.Conflict) return { requeueAfterMs: conflictRetryMs };
    throw err;
  }
}

/**
 * Incremental quota usage per namespace. Only namespaces holding a ResourceQuota are tracked:
 * when the first quota of a namespace appears, its objects are summed once; after that every
 * change moves the namespace's aggregates by the difference of the object's contribution
 * before and after (a change event carries both), so a create in a namespace with 30,000 pods
 * costs the same as in an empty one. When the last quota goes, the namespace is dropped.
 * Pure: the caller supplies the objects of a namespace and its quota count.
 */

import type { ApiObject } from '../objects.js';
import { type Aggregates, addContribution, aggregatesOf, contributionOf } from './quota.js';

/** One applied change: `prev` before (absent for a create), `next` after (absent for a delete). */
export interface UsageChange {
  prev?: ApiObject;
  next?: ApiObject;
}

/** What the index reads from the state it follows (after the batch was applied). */
export interface UsageStateReader {
  /** ResourceQuotas now in `namespace`. */
  quotaCount(namespace: string): number;
  /** Every object now in `namespace` (any namespaced kind). */
  objectsIn(namespace: string): Iterable<ApiObject>;
  /** Namespaces holding at least one ResourceQuota now. */
  namespacesWithQuotas(): Iterable<string>;
}

function namespaceOf(c: UsageChange): string | undefined {
  return (c.next ?? c.prev)?.metadata.namespace || undefined;
}

export class QuotaUsageIndex {
  private readonly tracked = new Map<string, Aggregates>();

  /** The aggregates of a tracked namespace (read-only); undefined when it has no quota. */
  aggregates(namespace: string): Aggregates | undefined {
    return this.tracked.get(namespace);
  }

  isTracked(namespace: string): boolean {
    return this.tracked.has(namespace);
  }

  get trackedNamespaces(): number {
    return this.tracked.size;
  }

  /** Starts over from `state` (at start and after a snapshot restore). */
  rebuild(state: UsageStateReader): void {
    this.tracked.clear();
    for (const ns of state.namespacesWithQuotas()) this.tracked.set(ns, aggregatesOf(state.objectsIn(ns)));
  }

  /**
   * Applies one batch of changes in log order; `state` is the state after the whole batch.
   * A namespace whose first quota arrives in this batch is summed from `state` (its changes in
   * the batch are already in it); one whose last quota went is dropped.
   */
  applyBatch(changes: readonly UsageChange[], state: UsageStateReader): void {
    const fresh = new Set<string>();
    const quotaTouched = new Set<string>();
    for (const c of changes) {
      const ns = namespaceOf(c);
      if (ns === undefined) continue;
      if ((c.next ?? c.prev)?.kind === 'ResourceQuota') quotaTouched.add(ns);
      if (fresh.has(ns)) continue;
      const aggs = this.tracked.get(ns);
      if (aggs === undefined) {
        if (c.next?.kind === 'ResourceQuota' && c.prev === undefined) fresh.add(ns);
        continue;
      }
      if (c.prev !== undefined) addContribution(aggs, contributionOf(c.prev), -1n);
      if (c.next !== undefined) addContribution(aggs, contributionOf(c.next), 1n);
    }
    for (const ns of quotaTouched) {
      if (state.quotaCount(ns) === 0) this.tracked.delete(ns);
      else if (fresh.has(ns) && !this.tracked.has(ns))
        this.tracked.set(ns, aggregatesOf(state.objectsIn(ns)));
    }
  }
}

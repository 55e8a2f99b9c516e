/**
 * The ResourceQuota controller: keeps each quota's `status.hard` (its `spec.hard`) and
 * `status.used` current. Usage comes from leader admission's incremental index (the same
 * numbers admission enforces, from the applied state), or, without one, is summed from the
 * cache. A change maps to the quotas of its namespace only when it moves usage, and only in
 * namespaces that have quotas. After a leader change the new leader's first resync recomputes
 * every quota from its store, so usage is right whatever the old leader had written.
 */

import { aggregatesOf, quotaStatus, quotaUsage, sameContribution } from '../../core/admission/quota.js';
import type { ApiObject, Kind } from '../../core/index.js';
import { kindInfo } from '../../core/index.js';
import type { ResourceQuota } from '../../core/objects.js';
import type { QuotaUsageSource } from '../admission/index.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { keyOf, parseKey, writeStatus } from './workload.js';

const namespacedKinds = (Object.keys(kindInfo) as Kind[]).filter((k) => kindInfo[k].namespaced);

export function resourceQuotaController(source?: QuotaUsageSource): Controller {
  return {
    name: 'resourcequota',
    watches: namespacedKinds,
    workers: 2,
    *keysFor(change, cache) {
      const ns = change.object.metadata.namespace;
      if (!ns) return;
      const isQuota = change.object.kind === 'ResourceQuota';
      if (!isQuota) {
        if (cache.count('ResourceQuota', ns) === 0) return;
        const moved =
          change.type !== 'MODIFIED' ||
          change.prev === undefined ||
          !sameContribution(change.prev, change.object);
        if (!moved) return;
      }
      for (const q of cache.list('ResourceQuota', ns)) yield keyOf(q);
    },
    *initialKeys(cache) {
      for (const q of cache.list('ResourceQuota')) yield keyOf(q);
    },
    reconcile: (key, ctx) => reconcileQuota(key, ctx, source),
  };
}

async function reconcileQuota(
  key: string,
  ctx: ControllerContext,
  source: QuotaUsageSource | undefined,
): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const quota = ctx.cache.get<ResourceQuota>('ResourceQuota', namespace, name);
  if (quota === undefined || quota.metadata.deletionTimestamp !== undefined) return undefined;
  const usage = source?.usageOf(quota) ?? quotaUsage(quota, aggregatesOf(objectsIn(ctx, namespace)));
  await writeStatus(ctx, quota, quotaStatus(quota, usage));
  return undefined;
}

function* objectsIn(ctx: ControllerContext, namespace: string): Iterable<ApiObject> {
  for (const kind of namespacedKinds) yield* ctx.cache.list(kind, namespace);
}

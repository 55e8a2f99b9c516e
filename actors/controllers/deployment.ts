/**
 * The Deployment controller: rolls a Deployment's pod template out through ReplicaSets named
 * `<deployment>-<pod-template-hash>` (RollingUpdate within maxSurge/maxUnavailable, or
 * Recreate), scales them (proportionally mid-rollout), keeps revisionHistoryLimit old ones,
 * and reports status with the Progressing and Available conditions. Decisions come from
 * `core/controllers/deployment.ts`; this file maps changes to keys and writes, each write
 * with a precondition, stopping at the first conflict (the change that caused it brings the
 * Deployment back).
 */

import {
  claimReplicaSets,
  type DeploymentCondition,
  DeploymentConditionType,
  DeploymentReason,
  hasProgressDeadline,
  planDeployment,
  type ReplicaSetWrite,
  revisionAnnotation,
  scalingMessage,
} from '../../core/controllers/deployment.js';
import { controllerRef, rfc3339 } from '../../core/controllers/pods.js';
import { selectorOf } from '../../core/controllers/replicaset.js';
import { type Deployment, labelSelectorMatches, type Pod, type ReplicaSet } from '../../core/index.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import {
  adopt,
  deleteObject,
  errorText,
  isGoneOrConflict,
  keyOf,
  parseKey,
  release,
  writeStatus,
} from './workload.js';

/** Keys of the Deployments a ReplicaSet change concerns: its controller's, or matching ones for an orphan. */
export function deploymentKeysOfReplicaSet(rs: ReplicaSet, cache: ClusterCache): string[] {
  const ns = rs.metadata.namespace ?? '';
  const ref = controllerRef(rs);
  if (ref !== undefined) return ref.kind === 'Deployment' ? [`Deployment/${ns}/${ref.name}`] : [];
  const labels = rs.metadata.labels ?? {};
  const out: string[] = [];
  for (const d of cache.list<Deployment>('Deployment', ns)) {
    const sel = selectorOf(d.spec.selector);
    if (sel !== undefined && labelSelectorMatches(sel, labels)) out.push(keyOf(d));
  }
  return out;
}

/** The Deployment controlling a deleted pod's ReplicaSet (Recreate waits for old pods to be gone). */
function deploymentKeyOfPod(pod: Pod, cache: ClusterCache): string | undefined {
  const ref = controllerRef(pod);
  if (ref?.kind !== 'ReplicaSet') return undefined;
  const ns = pod.metadata.namespace ?? '';
  const rs = cache.get<ReplicaSet>('ReplicaSet', ns, ref.name);
  const owner = rs === undefined ? undefined : controllerRef(rs);
  return owner?.kind === 'Deployment' ? `Deployment/${ns}/${owner.name}` : undefined;
}

export function deploymentController(): Controller {
  return {
    name: 'deployment',
    watches: ['Deployment', 'ReplicaSet', 'Pod'],
    workers: 4,
    *keysFor(change, cache) {
      const obj = change.object;
      switch (obj.kind) {
        case 'Deployment':
          yield change.key;
          return;
        case 'ReplicaSet': {
          yield* deploymentKeysOfReplicaSet(obj, cache);
          const prev = change.prev as ReplicaSet | undefined;
          if (prev !== undefined && controllerRef(prev)?.uid !== controllerRef(obj)?.uid)
            yield* deploymentKeysOfReplicaSet(prev, cache);
          return;
        }
        case 'Pod': {
          if (change.type !== 'DELETED') return;
          const key = deploymentKeyOfPod(obj, cache);
          if (key !== undefined) yield key;
          return;
        }
        default:
          return;
      }
    },
    *initialKeys(cache) {
      for (const d of cache.list('Deployment')) yield keyOf(d);
    },
    reconcile: reconcileDeployment,
  };
}

/** Look again right away: a write lost a race, and the winner's change is already in the cache. */
const retryNow: ReconcileResult = { requeueAfterMs: 0 };

async function reconcileDeployment(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const d = ctx.cache.get<Deployment>('Deployment', namespace, name);
  if (d === undefined) return undefined; // gone: the garbage collector takes its ReplicaSets

  const candidates = ctx.cache.claimable<ReplicaSet>('ReplicaSet', namespace, d.metadata.uid);
  const claims = claimReplicaSets(d, candidates);
  if (claims.adopt.length > 0 || claims.release.length > 0) {
    for (const rs of claims.release) await release(ctx, rs, d.metadata.uid);
    for (const rs of claims.adopt) await adopt(ctx, rs, d);
    return retryNow; // plan over the settled claims
  }

  const recreate = d.spec.strategy?.type === 'Recreate';
  const podsByReplicaSet = new Map<string, Pod[]>();
  if (recreate) {
    for (const rs of claims.owned) {
      const uid = rs.metadata.uid ?? '';
      podsByReplicaSet.set(
        uid,
        ctx.cache.dependents<Pod>(uid, 'Pod').filter((p) => controllerRef(p)?.uid === uid),
      );
    }
  }
  const takenNames = new Set(
    ctx.cache.list<ReplicaSet>('ReplicaSet', namespace).map((r) => r.metadata.name ?? ''),
  );
  const plan = planDeployment({
    deployment: d,
    owned: claims.owned,
    takenNames,
    podsByReplicaSet,
    nowMs: ctx.nowMs(),
  });

  for (const w of plan.writes) {
    const done = await carryOut(ctx, d, w);
    if (!done) return retryNow;
  }

  let current = d;
  if (plan.revision !== undefined) {
    const annotations = { ...(d.metadata.annotations ?? {}), [revisionAnnotation]: plan.revision };
    try {
      current = (await ctx.api.update({ ...d, metadata: { ...d.metadata, annotations } })) as Deployment;
    } catch (err) {
      if (isGoneOrConflict(err)) return retryNow;
      throw err;
    }
  }
  try {
    await writeStatus(ctx, current, plan.status);
  } catch (err) {
    if (isGoneOrConflict(err)) return retryNow;
    throw err;
  }
  if (plan.collision) return retryNow;
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

/** One ReplicaSet write and its event; false when it lost a race (conflict, gone, taken name). */
async function carryOut(ctx: ControllerContext, d: Deployment, w: ReplicaSetWrite): Promise<boolean> {
  const rsName = w.rs.metadata.name ?? '';
  switch (w.kind) {
    case 'create': {
      try {
        await ctx.api.create(w.rs);
      } catch (err) {
        if (isApiError(err) && err.code === ApiErrorCode.AlreadyExists) return false;
        await reportCreateFailure(ctx, d, rsName, err);
        throw err;
      }
      const replicas = w.rs.spec.replicas ?? 0;
      if (replicas > 0)
        ctx.events.record(d, 'Normal', 'ScalingReplicaSet', scalingMessage(rsName, 0, replicas));
      return true;
    }
    case 'update': {
      try {
        await ctx.api.update(w.rs);
      } catch (err) {
        if (isGoneOrConflict(err)) return false;
        throw err;
      }
      if (w.scaledFrom !== undefined) {
        ctx.events.record(
          d,
          'Normal',
          'ScalingReplicaSet',
          scalingMessage(rsName, w.scaledFrom, w.rs.spec.replicas ?? 0),
        );
      }
      return true;
    }
    case 'delete':
      await deleteObject(ctx, w.rs);
      return true;
    default: {
      const unknown: never = w;
      throw new Error(`deployment: unknown write ${JSON.stringify(unknown)}`);
    }
  }
}

/** A new ReplicaSet could not be created: a Warning, and Progressing=False when there is a deadline. */
async function reportCreateFailure(
  ctx: ControllerContext,
  d: Deployment,
  rsName: string,
  err: unknown,
): Promise<void> {
  const message = `Failed to create new replica set "${rsName}": ${errorText(err)}`;
  ctx.events.record(d, 'Warning', DeploymentReason.ReplicaSetCreateError, message);
  if (!hasProgressDeadline(d)) return;
  const now = rfc3339(ctx.nowMs());
  const cond: DeploymentCondition = {
    type: DeploymentConditionType.Progressing,
    status: 'False',
    reason: DeploymentReason.ReplicaSetCreateError,
    message,
    lastUpdateTime: now,
    lastTransitionTime: now,
  };
  const conditions = [
    ...(d.status?.conditions ?? []).filter((c) => c.type !== DeploymentConditionType.Progressing),
    cond,
  ];
  try {
    await writeStatus(ctx, d, { ...(d.status ?? {}), conditions });
  } catch {
    // The failure to report is the create's; the retry reports again.
  }
}

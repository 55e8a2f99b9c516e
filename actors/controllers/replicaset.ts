/**
 * The ReplicaSet controller: keeps `spec.replicas` active pods matching the selector,
 * adopting orphans and releasing pods relabelled away, and reports status. Decisions come
 * from `core/controllers/replicaset.ts`; this file maps changes to keys and writes.
 */

import {
  controllerRef,
  podFromTemplate,
  removeCondition,
  rfc3339,
  setCondition,
} from '../../core/controllers/pods.js';
import { planReplicaSet, selectorOf } from '../../core/controllers/replicaset.js';
import { labelSelectorMatches, type Pod, type ReplicaSet } from '../../core/index.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import {
  adopt,
  deleteObject,
  errorText,
  keyOf,
  parseKey,
  release,
  slowStart,
  writeStatus,
} from './workload.js';

/** Keys of the ReplicaSets a pod change concerns: its controller's, or matching ones for an orphan. */
export function ownerKeysOfPod(
  pod: Pod,
  ownerKind: 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'Job',
  cache: ClusterCache,
): string[] {
  const ref = controllerRef(pod);
  const ns = pod.metadata.namespace ?? '';
  if (ref !== undefined) return ref.kind === ownerKind ? [`${ownerKind}/${ns}/${ref.name}`] : [];
  const labels = pod.metadata.labels ?? {};
  const out: string[] = [];
  for (const owner of cache.list(ownerKind, ns)) {
    const sel = selectorOf((owner as { spec: { selector?: ReplicaSet['spec']['selector'] } }).spec.selector);
    if (sel !== undefined && labelSelectorMatches(sel, labels)) out.push(keyOf(owner));
  }
  return out;
}

export function replicaSetController(): Controller {
  return {
    name: 'replicaset',
    watches: ['ReplicaSet', 'Pod'],
    workers: 8,
    *keysFor(change, cache) {
      if (change.object.kind === 'ReplicaSet') {
        yield change.key;
        return;
      }
      const pod = change.object as Pod;
      yield* ownerKeysOfPod(pod, 'ReplicaSet', cache);
      const prev = change.prev as Pod | undefined;
      if (prev !== undefined && controllerRef(prev)?.uid !== controllerRef(pod)?.uid) {
        yield* ownerKeysOfPod(prev, 'ReplicaSet', cache);
      }
    },
    *initialKeys(cache) {
      for (const rs of cache.list('ReplicaSet')) yield keyOf(rs);
    },
    reconcile: reconcileReplicaSet,
  };
}

async function reconcileReplicaSet(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const rs = ctx.cache.get<ReplicaSet>('ReplicaSet', namespace, name);
  if (rs === undefined) return undefined; // gone: the garbage collector takes its pods
  const candidates = ctx.cache.claimable<Pod>('Pod', namespace, rs.metadata.uid);
  const plan = planReplicaSet(rs, candidates, ctx.nowMs());

  for (const pod of plan.release) await release(ctx, pod, rs.metadata.uid);
  for (const pod of plan.adopt) await adopt(ctx, pod, rs);

  let createError: unknown;
  if (plan.create > 0) {
    const template = rs.spec.template;
    const result = await slowStart(plan.create, async () => {
      const pod = await ctx.api.create(podFromTemplate(template, rs));
      ctx.events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
      return pod;
    });
    if (result.error !== undefined) {
      createError = result.error;
      ctx.events.record(rs, 'Warning', 'FailedCreate', `Error creating: ${errorText(result.error)}`);
    }
  }
  await Promise.all(
    plan.delete.map(async (pod) => {
      if (await deleteObject(ctx, pod)) {
        ctx.events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
      }
    }),
  );

  const now = rfc3339(ctx.nowMs());
  const conditions =
    createError !== undefined
      ? setCondition(plan.status.conditions, {
          type: 'ReplicaFailure',
          status: 'True',
          reason: 'FailedCreate',
          message: errorText(createError),
          lastTransitionTime: now,
        })
      : removeCondition(plan.status.conditions, 'ReplicaFailure');
  const status = { ...plan.status, conditions };
  if (conditions === undefined) delete status.conditions;
  const current = ctx.cache.get<ReplicaSet>('ReplicaSet', namespace, name);
  if (current !== undefined && current.metadata.uid === rs.metadata.uid)
    await writeStatus(ctx, current, status);
  if (createError !== undefined) throw createError;
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

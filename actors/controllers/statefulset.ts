/**
 * The StatefulSet controller: ordinal pods with stable names and hostnames, OrderedReady or
 * Parallel management, failed pods recreated under the same name, RollingUpdate from the
 * highest ordinal (with a partition) or OnDelete, ControllerRevisions with current and update
 * revisions, and status. Decisions come from `core/controllers/statefulset.ts`; this file maps
 * changes to keys and writes, in the plan's order.
 */

import { controllerRef, isPodTerminal } from '../../core/controllers/pods.js';
import { planStatefulSet, statefulPod } from '../../core/controllers/statefulset.js';
import type { ControllerRevision, Pod, StatefulSet } from '../../core/objects.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { ownerKeysOfPod } from './replicaset.js';
import { syncRevisions, trimRevisions } from './revisions.js';
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

export function statefulSetController(): Controller {
  return {
    name: 'statefulset',
    watches: ['StatefulSet', 'Pod', 'ControllerRevision'],
    *keysFor(change, cache) {
      const obj = change.object;
      switch (obj.kind) {
        case 'StatefulSet':
          yield change.key;
          return;
        case 'Pod': {
          yield* ownerKeysOfPod(obj, 'StatefulSet', cache);
          const prev = change.prev as Pod | undefined;
          if (prev !== undefined && controllerRef(prev)?.uid !== controllerRef(obj)?.uid)
            yield* ownerKeysOfPod(prev, 'StatefulSet', cache);
          return;
        }
        case 'ControllerRevision': {
          const ref = controllerRef(obj);
          if (ref?.kind === 'StatefulSet') yield `StatefulSet/${obj.metadata.namespace ?? ''}/${ref.name}`;
          return;
        }
        default:
          return;
      }
    },
    *initialKeys(cache: ClusterCache) {
      for (const set of cache.list('StatefulSet')) yield keyOf(set);
    },
    reconcile: reconcileStatefulSet,
  };
}

async function reconcileStatefulSet(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const set = ctx.cache.get<StatefulSet>('StatefulSet', namespace, name);
  if (set === undefined || set.metadata.deletionTimestamp !== undefined) return undefined;
  const uid = set.metadata.uid ?? '';
  const revisions = await syncRevisions(ctx, set);
  const updateRevision = revisions.current;
  const currentRevision: ControllerRevision =
    revisions.owned.find((r) => r.metadata.name === set.status?.currentRevision) ?? updateRevision;
  const plan = planStatefulSet({
    set,
    pods: ctx.cache.claimable<Pod>('Pod', namespace, uid),
    currentRevision,
    updateRevision,
    collisionCount: revisions.collisionCount,
    nowMs: ctx.nowMs(),
  });

  for (const pod of plan.release) await release(ctx, pod, uid);
  for (const pod of plan.adopt) await adopt(ctx, pod, set);

  let failure: unknown;
  for (const action of plan.actions) {
    try {
      switch (action.kind) {
        case 'create': {
          const revision = action.revision === 'current' ? currentRevision : updateRevision;
          const pod = statefulPod(set, action.ordinal, revision);
          await ctx.api.create(pod);
          ctx.events.record(
            set,
            'Normal',
            'SuccessfulCreate',
            `create Pod ${pod.metadata.name} in StatefulSet ${name} successful`,
          );
          break;
        }
        case 'delete': {
          const pod = action.pod;
          if (action.reason === 'failed') {
            ctx.events.record(
              set,
              'Warning',
              'RecreatingFailedPod',
              `StatefulSet ${namespace}/${name} is recreating failed Pod ${pod.metadata.name}`,
            );
          }
          // A finished pod (failed, evicted) has nothing left to stop: it goes at once.
          const opts = isPodTerminal(pod) ? { gracePeriodSeconds: 0 } : {};
          if (await deleteObject(ctx, pod, opts)) {
            ctx.events.record(
              set,
              'Normal',
              'SuccessfulDelete',
              `delete Pod ${pod.metadata.name} in StatefulSet ${name} successful`,
            );
          }
          break;
        }
        case 'relabel':
          await ctx.api.update({
            ...action.pod,
            metadata: { ...action.pod.metadata, labels: action.labels },
          });
          break;
        default: {
          const unknown: never = action;
          throw new Error(`statefulset: unknown action ${JSON.stringify(unknown)}`);
        }
      }
    } catch (err) {
      if (isApiError(err) && err.code === ApiErrorCode.AlreadyExists) break; // the old pod is still going
      if (isGoneOrConflict(err)) break; // changed meanwhile: the next pass decides again
      failure = err;
      const verb = action.kind === 'create' ? 'create' : action.kind === 'delete' ? 'delete' : 'update';
      ctx.events.record(
        set,
        'Warning',
        action.kind === 'create'
          ? 'FailedCreate'
          : action.kind === 'delete'
            ? 'FailedDelete'
            : 'FailedUpdate',
        `${verb} Pod in StatefulSet ${name} failed error: ${errorText(err)}`,
      );
      break;
    }
  }

  const live = new Set<string>([
    currentRevision.metadata.name ?? '',
    updateRevision.metadata.name ?? '',
    ...plan.liveRevisions,
  ]);
  await trimRevisions(ctx, revisions.owned, live, set.spec.revisionHistoryLimit ?? 10, false);

  const latest = ctx.cache.get<StatefulSet>('StatefulSet', namespace, name);
  if (latest !== undefined && latest.metadata.uid === uid) await writeStatus(ctx, latest, plan.status);
  if (failure !== undefined) throw failure;
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

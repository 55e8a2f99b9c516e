/**
 * The DaemonSet controller: one pod per eligible node (placed by `spec.nodeName`), following
 * node label and taint changes, replacing failed pods with a per-node backoff, rolling
 * updates (maxUnavailable / maxSurge) or OnDelete, ControllerRevisions per template, and
 * status. Decisions come from `core/controllers/daemonset.ts`; this file maps changes to keys
 * and writes.
 */

import {
  daemonFailedPodBackoffMsMax,
  daemonPod,
  nextFailedPodBackoffMs,
  planDaemonSet,
} from '../../core/controllers/daemonset.js';
import { controllerRef, isPodTerminal } from '../../core/controllers/pods.js';
import { revisionHashOf } from '../../core/controllers/revisions.js';
import { deepEqual } from '../../core/deep-equal.js';
import type { DaemonSet, DaemonSetStatus, Node, Pod } from '../../core/objects.js';
import type { ChangeEvent } from '../watch-hub.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { ownerKeysOfPod } from './replicaset.js';
import { syncRevisions, trimRevisions } from './revisions.js';
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

/** Failed-pod backoff entries kept (one per DaemonSet and node); the oldest go beyond it. */
export const daemonFailedBackoffEntriesMax = 100_000;

interface Backoff {
  delayMs: number;
  lastMs: number;
}

/** A node change that can change where daemons belong: added, removed, labels, taints, cordon. */
function nodePlacementChanged(change: ChangeEvent): boolean {
  if (change.type !== 'MODIFIED' || change.prev === undefined) return true;
  const a = change.prev as Node;
  const b = change.object as Node;
  return (
    !deepEqual(a.metadata.labels, b.metadata.labels) ||
    !deepEqual(a.spec?.taints, b.spec?.taints) ||
    a.spec?.unschedulable !== b.spec?.unschedulable
  );
}

export function daemonSetController(): Controller {
  const backoffs = new Map<string, Backoff>();
  return {
    name: 'daemonset',
    watches: ['DaemonSet', 'Pod', 'Node', 'ControllerRevision'],
    *keysFor(change, cache) {
      const obj = change.object;
      switch (obj.kind) {
        case 'DaemonSet':
          yield change.key;
          return;
        case 'Pod': {
          yield* ownerKeysOfPod(obj, 'DaemonSet', cache);
          const prev = change.prev as Pod | undefined;
          if (prev !== undefined && controllerRef(prev)?.uid !== controllerRef(obj)?.uid)
            yield* ownerKeysOfPod(prev, 'DaemonSet', cache);
          return;
        }
        case 'Node':
          if (nodePlacementChanged(change)) for (const ds of cache.list('DaemonSet')) yield keyOf(ds);
          return;
        case 'ControllerRevision': {
          const ref = controllerRef(obj);
          if (ref?.kind === 'DaemonSet') yield `DaemonSet/${obj.metadata.namespace ?? ''}/${ref.name}`;
          return;
        }
        default:
          return;
      }
    },
    *initialKeys(cache: ClusterCache) {
      for (const ds of cache.list('DaemonSet')) yield keyOf(ds);
    },
    reconcile: (key, ctx) => reconcileDaemonSet(key, ctx, backoffs),
  };
}

async function reconcileDaemonSet(
  key: string,
  ctx: ControllerContext,
  backoffs: Map<string, Backoff>,
): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const ds = ctx.cache.get<DaemonSet>('DaemonSet', namespace, name);
  if (ds === undefined || ds.metadata.deletionTimestamp !== undefined) return undefined;
  const uid = ds.metadata.uid ?? '';
  const revisions = await syncRevisions(ctx, ds);
  const hash = revisionHashOf(revisions.current);
  const nowMs = ctx.nowMs();
  pruneBackoffs(backoffs, nowMs);
  const backoffKey = (node: string) => `${uid}/${node}`;
  const plan = planDaemonSet({
    ds,
    nodes: ctx.cache.list<Node>('Node'),
    pods: ctx.cache.claimable<Pod>('Pod', namespace, uid),
    hash,
    nowMs,
    failedBackoffMs: (node) => {
      const b = backoffs.get(backoffKey(node));
      return b === undefined ? 0 : Math.max(0, b.lastMs + b.delayMs - nowMs);
    },
  });

  for (const pod of plan.release) await release(ctx, pod, uid);
  for (const pod of plan.adopt) await adopt(ctx, pod, ds);

  await Promise.all(
    plan.delete.map(async ({ pod, reason }) => {
      const node = pod.spec.nodeName ?? '';
      if (reason === 'failed') {
        const prev = backoffs.get(backoffKey(node));
        const recent = prev !== undefined && nowMs - prev.lastMs <= 2 * daemonFailedPodBackoffMsMax;
        backoffs.set(backoffKey(node), {
          delayMs: nextFailedPodBackoffMs(recent ? prev.delayMs : 0),
          lastMs: nowMs,
        });
        ctx.events.record(
          ds,
          'Warning',
          'FailedDaemonPod',
          `Found failed daemon pod ${namespace}/${pod.metadata.name} on node ${node}, will try to kill it`,
        );
      }
      // A finished pod has nothing left to stop: it goes at once, as Kubernetes deletes it.
      const opts = isPodTerminal(pod) ? { gracePeriodSeconds: 0 } : {};
      if (await deleteObject(ctx, pod, opts)) {
        ctx.events.record(ds, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
      }
    }),
  );

  let createError: unknown;
  if (plan.create.length > 0) {
    const result = await slowStart(plan.create.length, async (i) => {
      const pod = await ctx.api.create(daemonPod(ds, plan.create[i], hash));
      ctx.events.record(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
      return pod;
    });
    if (result.error !== undefined) {
      createError = result.error;
      ctx.events.record(ds, 'Warning', 'FailedCreate', `Error creating: ${errorText(result.error)}`);
    }
  }

  const live = new Set<string>([revisions.current.metadata.name ?? '']);
  for (const rev of revisions.owned)
    if (plan.liveHashes.has(revisionHashOf(rev))) live.add(rev.metadata.name ?? '');
  await trimRevisions(ctx, revisions.owned, live, ds.spec.revisionHistoryLimit ?? 10, true);

  const current = ctx.cache.get<DaemonSet>('DaemonSet', namespace, name);
  if (current !== undefined && current.metadata.uid === uid) {
    const status: DaemonSetStatus = { ...plan.status };
    if (revisions.collisionCount > 0 || current.status?.collisionCount !== undefined)
      status.collisionCount = revisions.collisionCount;
    await writeStatus(ctx, current, status);
  }
  if (createError !== undefined) throw createError;
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

/** Drops backoffs older than twice the longest delay, and the oldest beyond the cap. */
function pruneBackoffs(backoffs: Map<string, Backoff>, nowMs: number): void {
  for (const [k, b] of backoffs) if (nowMs - b.lastMs > 2 * daemonFailedPodBackoffMsMax) backoffs.delete(k);
  while (backoffs.size > daemonFailedBackoffEntriesMax) {
    const first = backoffs.keys().next().value;
    if (first === undefined) break;
    backoffs.delete(first);
  }
}

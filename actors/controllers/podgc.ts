/**
 * The pod garbage collector (Kubernetes' PodGC). Per node: pods bound to a node that no
 * longer exists (for `orphanQuarantineMs`) are marked Failed with the DisruptionTarget
 * condition and deleted at once; pods marked for deletion on a node whose agent is unreachable
 * (Ready=Unknown) are deleted at once when their grace period has passed, since no agent will
 * confirm it (a returning agent removes the containers of pods it no longer has). Cluster
 * wide: finished pods beyond `terminatedPodGcThreshold` are deleted, oldest first.
 * Decisions come from `core/controllers/podgc.ts`.
 */

import { readyCondition } from '../../core/controllers/nodelifecycle.js';
import {
  defaultOrphanQuarantineMs,
  defaultTerminatedPodGcThreshold,
  orphanedPodCondition,
  orphanQuarantineLeftMs,
  planTerminatedPodGc,
  planUnreachableForceDeletes,
} from '../../core/controllers/podgc.js';
import { isPodTerminal, rfc3339, setCondition } from '../../core/controllers/pods.js';
import type { Node, Pod } from '../../core/index.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { deleteObject, isGoneOrConflict, parseKey } from './workload.js';

export interface PodGcOptions {
  /** Finished pods kept at most (Kubernetes' `--terminated-pod-gc-threshold`). Default 12,500. */
  terminatedPodGcThreshold?: number;
  /** How long a node must be missing before its pods are deleted. Default 40,000. */
  orphanQuarantineMs?: number;
}

/** The key of the cluster-wide pass over finished pods. */
const terminatedKey = 'terminated-pods';
const nodeKey = (name: string) => `Node//${name}`;
/** Deletes in flight at once. */
const podGcDeletesInFlightMax = 50;

function unreachable(node: Node | undefined): boolean {
  return node !== undefined && readyCondition(node)?.status === 'Unknown';
}

export function podGcController(opts: PodGcOptions = {}): Controller {
  const threshold = opts.terminatedPodGcThreshold ?? defaultTerminatedPodGcThreshold;
  const quarantineMs = opts.orphanQuarantineMs ?? defaultOrphanQuarantineMs;
  /** Node name → when this term first saw its pods without the node. */
  let missingSince = new Map<string, number>();
  return {
    name: 'podgc',
    watches: ['Node', 'Pod'],
    workers: 2,
    resyncMs: 20_000,
    start() {
      missingSince = new Map();
    },
    *keysFor(change, cache) {
      const obj = change.object;
      if (obj.kind === 'Node') {
        const readyChanged =
          change.prev?.kind === 'Node' && readyCondition(change.prev)?.status !== readyCondition(obj)?.status;
        if (change.type === 'DELETED' || readyChanged) yield change.key;
        return;
      }
      if (obj.kind !== 'Pod' || change.type === 'DELETED') return;
      const nodeName = obj.spec.nodeName;
      if (nodeName) {
        const node = cache.get<Node>('Node', '', nodeName);
        if (node === undefined || (obj.metadata.deletionTimestamp !== undefined && unreachable(node)))
          yield nodeKey(nodeName);
      }
      if (isPodTerminal(obj) && cache.terminatedPodCount > threshold) yield terminatedKey;
    },
    *initialKeys(cache: ClusterCache) {
      yield terminatedKey;
      for (const name of cache.nodesWithPods()) yield nodeKey(name);
    },
    async reconcile(key, ctx): Promise<ReconcileResult> {
      if (key === terminatedKey) return collectTerminated(ctx, threshold);
      const { name } = parseKey(key);
      const nowMs = ctx.nowMs();
      const node = ctx.cache.get<Node>('Node', '', name);
      const pods = ctx.cache.podsOnNode(name);
      if (node !== undefined || pods.length === 0) missingSince.delete(name);
      if (pods.length === 0) return undefined;
      if (node === undefined) {
        const since = missingSince.get(name) ?? nowMs;
        missingSince.set(name, since);
        const left = orphanQuarantineLeftMs(since, nowMs, quarantineMs);
        if (left > 0) return { requeueAfterMs: left };
        await forEachBounded(pods, (pod) => deleteOrphan(ctx, pod, nowMs));
        return undefined;
      }
      if (!unreachable(node)) return undefined;
      const plan = planUnreachableForceDeletes(pods, nowMs);
      await forEachBounded(plan.forceDelete, async (pod) => {
        if (await deleteObject(ctx, pod, { gracePeriodSeconds: 0 })) {
          ctx.log(
            `pod ${pod.metadata.namespace}/${pod.metadata.name} on unreachable node ${name}: force-deleted after its grace period`,
          );
        }
      });
      return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
    },
  };
}

async function forEachBounded<T>(items: readonly T[], f: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += podGcDeletesInFlightMax) {
    await Promise.all(items.slice(i, i + podGcDeletesInFlightMax).map(f));
  }
}

/** A pod of a node that no longer exists: Failed with DisruptionTarget (unless finished), then deleted at once. */
async function deleteOrphan(ctx: ControllerContext, pod: Pod, nowMs: number): Promise<void> {
  let target = pod;
  if (!isPodTerminal(pod)) {
    try {
      target = (await ctx.api.updateStatus({
        ...pod,
        status: {
          ...pod.status,
          phase: 'Failed',
          conditions: setCondition(pod.status?.conditions, orphanedPodCondition(rfc3339(nowMs))),
        },
      })) as Pod;
    } catch (err) {
      if (!isGoneOrConflict(err)) throw err;
      // Changed meanwhile: delete it all the same (the node is gone either way).
    }
  }
  await deleteObject(ctx, target, { gracePeriodSeconds: 0 });
}

async function collectTerminated(ctx: ControllerContext, threshold: number): Promise<ReconcileResult> {
  const victims = planTerminatedPodGc(ctx.cache.terminatedPods(), threshold);
  await forEachBounded(victims, async (pod) => {
    await deleteObject(ctx, pod, { gracePeriodSeconds: 0 });
  });
  // More than one pass's worth: go on at once.
  return ctx.cache.terminatedPodCount > threshold ? { requeueAfterMs: 100 } : undefined;
}

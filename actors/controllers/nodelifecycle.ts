/**
 * The node lifecycle controller and its NoExecute taint manager. A node whose Lease (in
 * `kube-node-lease`, renewed by its agent) has not been seen renewed for
 * `nodeMonitorGracePeriodMs` gets Ready=Unknown (NodeStatusUnknown) and the unreachable
 * taints; a node whose agent reports Ready=False gets the not-ready taints; a cordoned node
 * (`spec.unschedulable`) the unschedulable taint. When the Lease is renewed again, Ready comes
 * back and the taints go. Pods on a node with NoExecute taints they do not tolerate are
 * evicted (marked with the DisruptionTarget condition, then deleted with their grace period):
 * at once, or when their `tolerationSeconds` run out. Decisions come from
 * `core/controllers/nodelifecycle.ts`.
 */

import {
  type HeartbeatObservation,
  observeHeartbeat,
  planNodeHealth,
  planTaintEvictions,
  taintEvictionCondition,
} from '../../core/controllers/nodelifecycle.js';
import { rfc3339, setCondition } from '../../core/controllers/pods.js';
import type { Lease, Node, Pod } from '../../core/index.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { requeueOnConflict } from './requeue.js';
import { deleteObject, isGoneOrConflict, parseKey } from './workload.js';

/** Where agents keep their heartbeat Leases (one per node, named like the node). */
export const nodeLeaseNamespace = 'kube-node-lease';

export interface NodeLifecycleOptions {
  /** A heartbeat older than this makes the node Ready=Unknown. Default 40,000 (Kubernetes' 40 s). */
  nodeMonitorGracePeriodMs?: number;
}

export const defaultNodeMonitorGracePeriodMs = 40_000;

const nodeKey = (name: string) => `Node//${name}`;

function hasNoExecute(node: Node | undefined): boolean {
  return node?.spec?.taints?.some((t) => t.effect === 'NoExecute') ?? false;
}

export function nodeLifecycleController(opts: NodeLifecycleOptions = {}): Controller {
  const graceMs = opts.nodeMonitorGracePeriodMs ?? defaultNodeMonitorGracePeriodMs;
  /** Per node: the heartbeat last seen and when it changed (this term's clock). */
  let observations = new Map<string, HeartbeatObservation>();
  return {
    name: 'nodelifecycle',
    watches: ['Node', 'Lease', 'Pod'],
    workers: 4,
    start() {
      observations = new Map();
    },
    *keysFor(change, cache) {
      const obj = change.object;
      switch (obj.kind) {
        case 'Node':
          yield change.key;
          return;
        case 'Lease':
          if (obj.metadata.namespace === nodeLeaseNamespace) yield nodeKey(obj.metadata.name ?? '');
          return;
        case 'Pod': {
          // A pod bound to (or changing its tolerations on) a node with NoExecute taints.
          const node = obj.spec.nodeName;
          if (change.type !== 'DELETED' && node && hasNoExecute(cache.get<Node>('Node', '', node)))
            yield nodeKey(node);
          return;
        }
        default:
          return;
      }
    },
    *initialKeys(cache: ClusterCache) {
      for (const node of cache.list<Node>('Node')) yield nodeKey(node.metadata.name ?? '');
    },
    reconcile: (key, ctx) => requeueOnConflict(() => reconcileNode(key, ctx)),
  };

  async function reconcileNode(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
    const { name } = parseKey(key);
    const node = ctx.cache.get<Node>('Node', '', name);
    if (node === undefined) {
      observations.delete(name);
      return undefined;
    }
    const lease = ctx.cache.get<Lease>('Lease', nodeLeaseNamespace, name);
    const nowMs = ctx.nowMs();
    const observation = observeHeartbeat(observations.get(name), lease?.spec?.renewTime, node, nowMs);
    observations.set(name, observation);
    const health = planNodeHealth(node, observation, nowMs, graceMs);
    const current = await writeNodeHealth(ctx, node, health);
    if (current === undefined) return undefined;
    // Most passes are a lease renewal on a healthy node: its pods are looked up only under a NoExecute taint.
    const pods = hasNoExecute(current) ? ctx.cache.podsOnNode(name) : [];
    const evictions = planTaintEvictions(pods, current.spec?.taints ?? [], nowMs);
    for (const pod of evictions.evict) await evict(ctx, pod, nowMs);
    const after = [health.requeueAfterMs, evictions.requeueAfterMs].filter((x) => x !== undefined);
    return after.length > 0 ? { requeueAfterMs: Math.min(...after) } : undefined;
  }
}

/** Writes the node's new conditions, then its taints; the node as it is afterwards (undefined: gone). */
async function writeNodeHealth(
  ctx: ControllerContext,
  node: Node,
  health: ReturnType<typeof planNodeHealth>,
): Promise<Node | undefined> {
  let current = node;
  try {
    if (health.conditions !== undefined) {
      const ready = health.conditions.find((c) => c.type === 'Ready');
      current = (await ctx.api.updateStatus({
        ...current,
        status: { ...current.status, conditions: health.conditions },
      })) as Node;
      if (ready !== undefined) {
        const reason = ready.status === 'True' ? 'NodeReady' : 'NodeNotReady';
        const message = `Node ${node.metadata.name} status is now: ${reason}`;
        ctx.events.record(current, ready.status === 'True' ? 'Normal' : 'Warning', reason, message);
      }
    }
    if (health.taints !== undefined) {
      current = (await ctx.api.update({
        ...current,
        spec: { ...current.spec, taints: health.taints },
      })) as Node;
    }
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) return undefined;
    throw err; // a conflict: the key is looked at again on a fresh read
  }
  return current;
}

/**
 * Evicts a pod from a node with a NoExecute taint it does not (or no longer) tolerate: the
 * DisruptionTarget condition first, then a delete with its grace period, as Kubernetes' taint
 * manager does. A pod that changed meanwhile is left for the next pass.
 */
async function evict(ctx: ControllerContext, pod: Pod, nowMs: number): Promise<void> {
  const now = rfc3339(nowMs);
  let target: Pod = pod;
  try {
    target = (await ctx.api.updateStatus({
      ...pod,
      status: {
        ...pod.status,
        conditions: setCondition(pod.status?.conditions, taintEvictionCondition(now)),
      },
    })) as Pod;
  } catch (err) {
    if (isGoneOrConflict(err)) return;
    throw err;
  }
  if (await deleteObject(ctx, target)) {
    ctx.events.record(
      target,
      'Normal',
      'TaintManagerEviction',
      `Marking for deletion Pod ${pod.metadata.namespace}/${pod.metadata.name}`,
    );
  }
}

/**
 * The node lifecycle controller's decisions, pure (Kubernetes' node lifecycle controller and
 * its NoExecute taint manager): when a node's heartbeat is stale, its Ready condition and
 * the taints that follow from it, and which pods on a node with NoExecute taints must go now.
 *
 * Heartbeats are judged by when this controller observed them change (its own clock), not by
 * the times written in them, so an agent's clock skew does not matter; a new leader gives
 * every node a full grace period from when it starts, as Kubernetes does.
 */

import type { Node, NodeCondition, Pod, Taint, TaintEffect } from '../objects.js';
import {
  matchingToleration,
  TaintNodeNotReady,
  TaintNodeUnreachable,
  TaintNodeUnschedulable,
} from '../taints.js';
import { isPodTerminal, rfc3339 } from './pods.js';

/** What the controller last saw of a node's heartbeat, and when it saw it change. */
export interface HeartbeatObservation {
  /** The Lease's `spec.renewTime`. */
  readonly renewTime: string | undefined;
  /** The Ready condition's `lastHeartbeatTime` (the agent posts it on registration). */
  readonly readyHeartbeat: string | undefined;
  readonly observedAtMs: number;
  /**
   * The heartbeat was seen to change (not just found as it was) since this controller first
   * looked: only then does a Ready it made Unknown come back. A new leader finds every
   * heartbeat "fresh" at first, so without this a failover would flap unreachable nodes.
   */
  readonly renewed: boolean;
}

export const NodeConditionReason = {
  /** Set by this controller when the Lease went stale. */
  StatusUnknown: 'NodeStatusUnknown',
  /** Set by this controller when the agent never posted a Ready condition. */
  NeverUpdated: 'NodeStatusNeverUpdated',
  /** Set by this controller when the Lease is renewed again after it had gone stale. */
  AgentReady: 'AgentReady',
} as const;

export const nodeStatusUnknownMessage = 'Agent stopped posting node status.';
export const nodeNeverUpdatedMessage = 'Agent never posted node status.';
export const nodeLeaseRenewedMessage = 'Agent is renewing its Lease again.';

/** The taint keys this controller owns on nodes: added and removed only by it. */
export const managedTaintKeys: readonly string[] = [
  TaintNodeNotReady,
  TaintNodeUnreachable,
  TaintNodeUnschedulable,
];

export function readyCondition(node: Node): NodeCondition | undefined {
  return node.status?.conditions?.find((c) => c.type === 'Ready');
}

/** The observation after seeing `renewTime` and the node now: `observedAtMs` moves when either changed. */
export function observeHeartbeat(
  prev: HeartbeatObservation | undefined,
  renewTime: string | undefined,
  node: Node,
  nowMs: number,
): HeartbeatObservation {
  const readyHeartbeat = readyCondition(node)?.lastHeartbeatTime;
  if (prev !== undefined && prev.renewTime === renewTime && prev.readyHeartbeat === readyHeartbeat)
    return prev;
  return { renewTime, readyHeartbeat, observedAtMs: nowMs, renewed: prev !== undefined };
}

export interface NodeHealthPlan {
  /** New status conditions, when they change. */
  conditions?: NodeCondition[];
  /** New `spec.taints`, when they change. */
  taints?: Taint[];
  /** Look again then (when the heartbeat would go stale). */
  requeueAfterMs?: number;
}

/** Agent conditions that turn Unknown with Ready when the heartbeat stops (as Kubernetes does). */
function staleConditions(node: Node, now: string): NodeCondition[] {
  const conditions = node.status?.conditions ?? [];
  const out = conditions.map((c): NodeCondition => {
    if (c.status === 'Unknown') return c;
    return {
      ...c,
      status: 'Unknown',
      reason: NodeConditionReason.StatusUnknown,
      message: nodeStatusUnknownMessage,
      lastTransitionTime: now,
    };
  });
  if (!conditions.some((c) => c.type === 'Ready')) {
    out.push({
      type: 'Ready',
      status: 'Unknown',
      reason: NodeConditionReason.NeverUpdated,
      message: nodeNeverUpdatedMessage,
      lastTransitionTime: now,
    });
  }
  return out;
}

const ownUnknownReasons: readonly string[] = [
  NodeConditionReason.StatusUnknown,
  NodeConditionReason.NeverUpdated,
];

/**
 * The node's conditions and taints after judging its heartbeat at `nowMs`, given
 * `nodeMonitorGracePeriodMs`. A heartbeat older than the grace period turns Ready (and the
 * other agent conditions) Unknown; a Lease seen renewed again after that brings back the
 * Ready this controller had made Unknown. Taints follow Ready and `spec.unschedulable`:
 * unreachable (Unknown), not-ready (False), each NoSchedule and NoExecute, and unschedulable
 * NoSchedule; other taints are kept as they are.
 */
export function planNodeHealth(
  node: Node,
  observation: HeartbeatObservation,
  nowMs: number,
  gracePeriodMs: number,
): NodeHealthPlan {
  const now = rfc3339(nowMs);
  const staleAtMs = observation.observedAtMs + gracePeriodMs;
  const stale = nowMs >= staleAtMs;
  const ready = readyCondition(node);
  let conditions: NodeCondition[] | undefined;
  if (stale && ready?.status !== 'Unknown') {
    conditions = staleConditions(node, now);
  } else if (
    !stale &&
    observation.renewed &&
    ready?.status === 'Unknown' &&
    ownUnknownReasons.includes(ready.reason ?? '')
  ) {
    // Only the Ready condition comes back: the agent's other conditions stay Unknown until it
    // posts them again.
    conditions = (node.status?.conditions ?? []).map((c) =>
      c.type === 'Ready'
        ? {
            ...c,
            status: 'True',
            reason: NodeConditionReason.AgentReady,
            message: nodeLeaseRenewedMessage,
            lastTransitionTime: now,
          }
        : c,
    );
  }
  const readyStatus = (conditions?.find((c) => c.type === 'Ready') ?? ready)?.status;
  const taints = desiredTaints(node, readyStatus, now);
  return {
    ...(conditions !== undefined ? { conditions } : {}),
    ...(taints !== undefined ? { taints } : {}),
    ...(stale ? {} : { requeueAfterMs: staleAtMs - nowMs + 1 }),
  };
}

function taintId(t: Pick<Taint, 'key' | 'effect'>): string {
  return `${t.key}:${t.effect}`;
}

/** The node's taints with the managed ones as Ready and `unschedulable` say; undefined when unchanged. */
export function desiredTaints(node: Node, readyStatus: string | undefined, now: string): Taint[] | undefined {
  const want: { key: string; effect: TaintEffect }[] = [];
  if (readyStatus === 'Unknown') {
    want.push(
      { key: TaintNodeUnreachable, effect: 'NoSchedule' },
      { key: TaintNodeUnreachable, effect: 'NoExecute' },
    );
  } else if (readyStatus === 'False') {
    want.push(
      { key: TaintNodeNotReady, effect: 'NoSchedule' },
      { key: TaintNodeNotReady, effect: 'NoExecute' },
    );
  }
  if (node.spec?.unschedulable === true) want.push({ key: TaintNodeUnschedulable, effect: 'NoSchedule' });
  const current = node.spec?.taints ?? [];
  const wanted = new Set(want.map(taintId));
  const kept = current.filter((t) => !managedTaintKeys.includes(t.key) || wanted.has(taintId(t)));
  const have = new Set(kept.map(taintId));
  const added = want.filter((t) => !have.has(taintId(t))).map((t): Taint => ({ ...t, timeAdded: now }));
  if (added.length === 0 && kept.length === current.length) return undefined;
  return [...kept, ...added];
}

export interface EvictionPlan {
  /** Pods to evict now. */
  evict: Pod[];
  /** The soonest a tolerated pod's tolerationSeconds run out. */
  requeueAfterMs?: number;
}

/**
 * When `pod` must leave a node with `taints` (ms), or undefined when it may stay forever: at
 * once when a NoExecute taint is not tolerated; else at the soonest `timeAdded +
 * tolerationSeconds` of its tolerations with seconds (the first matching toleration per taint,
 * as Kubernetes); a toleration without seconds tolerates forever.
 */
export function evictionTimeMs(pod: Pod, taints: readonly Taint[], nowMs: number): number | undefined {
  let at: number | undefined;
  for (const taint of taints) {
    if (taint.effect !== 'NoExecute') continue;
    const toleration = matchingToleration(pod.spec.tolerations, taint);
    if (toleration === undefined) return nowMs;
    if (toleration.tolerationSeconds === undefined || toleration.tolerationSeconds === null) continue;
    const added = taint.timeAdded !== undefined ? Date.parse(taint.timeAdded) : Number.NaN;
    const since = Number.isNaN(added) ? nowMs : added;
    const due = since + Math.max(0, toleration.tolerationSeconds) * 1000;
    at = at === undefined ? due : Math.min(at, due);
  }
  return at;
}

/**
 * Which of `pods` (bound to a node with `taints`) to evict at `nowMs`. Pods already being
 * deleted or finished (Succeeded, Failed) are left alone.
 */
export function planTaintEvictions(
  pods: readonly Pod[],
  taints: readonly Taint[],
  nowMs: number,
): EvictionPlan {
  const evict: Pod[] = [];
  let soonest: number | undefined;
  if (!taints.some((t) => t.effect === 'NoExecute')) return { evict };
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp !== undefined || isPodTerminal(pod)) continue;
    const at = evictionTimeMs(pod, taints, nowMs);
    if (at === undefined) continue;
    if (at <= nowMs) evict.push(pod);
    else soonest = soonest === undefined ? at - nowMs : Math.min(soonest, at - nowMs);
  }
  return { evict, ...(soonest !== undefined ? { requeueAfterMs: soonest } : {}) };
}

/** The DisruptionTarget condition Kubernetes' taint manager puts on a pod it evicts. */
export function taintEvictionCondition(now: string) {
  return {
    type: 'DisruptionTarget',
    status: 'True' as const,
    reason: 'DeletionByTaintManager',
    message: 'Taint manager: deleting due to NoExecute taint',
    lastTransitionTime: now,
  };
}

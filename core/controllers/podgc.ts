/**
 * The pod garbage collector's decisions, pure (Kubernetes' PodGC): pods bound to a node that
 * no longer exists, pods whose deletion an unreachable node can never confirm, and finished
 * pods beyond a threshold.
 */

import type { Pod } from '../objects.js';
import { isPodTerminal } from './pods.js';

/** Kubernetes' `--terminated-pod-gc-threshold` default. */
export const defaultTerminatedPodGcThreshold = 12_500;
/** How long a node must be missing before its pods are deleted (Kubernetes' quarantine). */
export const defaultOrphanQuarantineMs = 40_000;
/** Deletes one pass issues at most; the rest come on the next pass. */
export const podGcDeletesPerPassMax = 500;

/**
 * When a pod marked for deletion has had its grace period (ms): `deletionTimestamp` (the time
 * of the delete request here) plus `deletionGracePeriodSeconds`. Undefined when not deleting.
 */
export function gracePeriodEndMs(pod: Pod): number | undefined {
  const ts = pod.metadata.deletionTimestamp;
  if (ts === undefined) return undefined;
  const at = Date.parse(ts);
  if (Number.isNaN(at)) return undefined;
  return at + (pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
}

export interface ForceDeletePlan {
  /** Pods whose grace period has passed: delete with grace 0. */
  forceDelete: Pod[];
  /** The soonest another one's grace period ends. */
  requeueAfterMs?: number;
}

/**
 * Pods on a node whose agent is unreachable that are marked for deletion: the agent cannot
 * stop them and confirm, so once their grace period has passed they are deleted at once (a
 * returning agent removes the containers of pods it no longer has).
 */
export function planUnreachableForceDeletes(pods: readonly Pod[], nowMs: number): ForceDeletePlan {
  const forceDelete: Pod[] = [];
  let soonest: number | undefined;
  for (const pod of pods) {
    const end = gracePeriodEndMs(pod);
    if (end === undefined) continue;
    if (end <= nowMs) forceDelete.push(pod);
    else soonest = soonest === undefined ? end - nowMs : Math.min(soonest, end - nowMs);
  }
  return { forceDelete, ...(soonest !== undefined ? { requeueAfterMs: soonest + 1 } : {}) };
}

/**
 * The finished pods to delete so that at most `threshold` remain: the oldest first (by
 * creationTimestamp, then name), at most `podGcDeletesPerPassMax` per pass.
 */
export function planTerminatedPodGc(terminated: readonly Pod[], threshold: number): Pod[] {
  const finished = terminated.filter(isPodTerminal);
  const excess = finished.length - threshold;
  if (excess <= 0) return [];
  const sorted = [...finished].sort((a, b) => {
    const ca = a.metadata.creationTimestamp ?? '';
    const cb = b.metadata.creationTimestamp ?? '';
    if (ca !== cb) return ca < cb ? -1 : 1;
    const na = `${a.metadata.namespace}/${a.metadata.name}`;
    const nb = `${b.metadata.namespace}/${b.metadata.name}`;
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
  return sorted.slice(0, Math.min(excess, podGcDeletesPerPassMax));
}

/** Whether a node missing since `missingSinceMs` has been gone long enough to delete its pods. */
export function orphanQuarantineLeftMs(missingSinceMs: number, nowMs: number, quarantineMs: number): number {
  return Math.max(0, missingSinceMs + quarantineMs - nowMs);
}

/** The DisruptionTarget condition Kubernetes' PodGC puts on a pod of a node that no longer exists. */
export function orphanedPodCondition(now: string) {
  return {
    type: 'DisruptionTarget',
    status: 'True' as const,
    reason: 'DeletionByPodGC',
    message: 'PodGC: node no longer exists',
    lastTransitionTime: now,
  };
}

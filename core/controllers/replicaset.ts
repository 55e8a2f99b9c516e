/**
 * The ReplicaSet controller's decisions, pure: which pods it owns (adopting matching orphans,
 * releasing pods relabelled out of its selector), how many pods to create or which to delete,
 * and the status it should report. The actor in `actors/controllers/replicaset.ts` carries
 * the plan out through the API.
 */

import { labelSelectorFromApi, labelSelectorMatches, type ParsedLabelSelector } from '../labels.js';
import type { Pod, ReplicaSet, ReplicaSetStatus } from '../objects.js';
import { comparePodsForDeletion, controllerRef, isPodActive, isPodReady, podAvailability } from './pods.js';

/** Pods created or deleted by one pass at most (Kubernetes' burstReplicas). */
export const replicaSetBurstPodsMax = 500;

export interface ReplicaSetPlan {
  /** Orphans matching the selector: take them (set the controller reference). */
  adopt: Pod[];
  /** Owned pods no longer matching the selector: let them go (drop the reference). */
  release: Pod[];
  /** Pods to create now. */
  create: number;
  /** Surplus pods, first to go first. */
  delete: Pod[];
  /** The status after adoption and release, before this pass's creates and deletes. */
  status: ReplicaSetStatus;
  /** Look again then: a ready pod becomes available (minReadySeconds). */
  requeueAfterMs?: number;
}

/** A parsed selector, or undefined for a selector that matches nothing (invalid or empty). */
export function selectorOf(sel: ReplicaSet['spec']['selector'] | undefined): ParsedLabelSelector | undefined {
  if (sel === undefined) return undefined;
  try {
    const parsed = labelSelectorFromApi(sel);
    return parsed.requirements.length === 0 ? undefined : parsed;
  } catch {
    return undefined;
  }
}

/**
 * Which of `pods` (the namespace's pods that are owned by `rs` or are orphans) this
 * ReplicaSet controls after claiming, and what it should do.
 */
export function planReplicaSet(rs: ReplicaSet, pods: readonly Pod[], nowMs: number): ReplicaSetPlan {
  const uid = rs.metadata.uid;
  const selector = selectorOf(rs.spec.selector);
  const deleting = rs.metadata.deletionTimestamp !== undefined;
  const adopt: Pod[] = [];
  const release: Pod[] = [];
  const owned: Pod[] = [];
  for (const pod of pods) {
    const ref = controllerRef(pod);
    const matches = selector !== undefined && labelSelectorMatches(selector, pod.metadata.labels ?? {});
    if (ref !== undefined) {
      if (ref.uid !== uid) continue;
      if (matches) owned.push(pod);
      else if (pod.metadata.deletionTimestamp === undefined) release.push(pod);
      continue;
    }
    if (matches && !deleting && pod.metadata.deletionTimestamp === undefined && isPodActive(pod)) {
      adopt.push(pod);
      owned.push(pod);
    }
  }
  const active = owned.filter(isPodActive);
  const replicas = rs.spec.replicas ?? 1;
  const diff = active.length - replicas;
  const create = diff < 0 && !deleting ? Math.min(-diff, replicaSetBurstPodsMax) : 0;
  const toDelete =
    diff > 0 ? [...active].sort(comparePodsForDeletion).slice(0, Math.min(diff, replicaSetBurstPodsMax)) : [];

  const minReady = rs.spec.minReadySeconds ?? 0;
  const templateLabels = rs.spec.template.metadata?.labels ?? {};
  let ready = 0;
  let available = 0;
  let fullyLabeled = 0;
  let soonest: number | undefined;
  for (const pod of active) {
    const labels = pod.metadata.labels ?? {};
    if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fullyLabeled += 1;
    if (isPodReady(pod)) ready += 1;
    const a = podAvailability(pod, minReady, nowMs);
    if (a.available) available += 1;
    else if (a.msUntil > 0) soonest = soonest === undefined ? a.msUntil : Math.min(soonest, a.msUntil);
  }
  const status: ReplicaSetStatus = {
    replicas: active.length,
    fullyLabeledReplicas: fullyLabeled,
    readyReplicas: ready,
    availableReplicas: available,
    ...(rs.metadata.generation !== undefined ? { observedGeneration: rs.metadata.generation } : {}),
    ...(rs.status?.conditions ? { conditions: rs.status.conditions } : {}),
  };
  return {
    adopt,
    release,
    create,
    delete: toDelete,
    status,
    ...(soonest !== undefined ? { requeueAfterMs: soonest + 10 } : {}),
  };
}

/**
 * Taints and tolerations as Kubernetes defines them: the taint keys the node lifecycle
 * controller manages, whether a toleration tolerates a taint, and the default tolerations
 * every pod gets at create (Kubernetes' DefaultTolerationSeconds admission). Pure.
 */

import type { Pod, Taint, Toleration } from './objects.js';

/** Set while the node's Ready condition is False (the agent says the node is not ready). */
export const TaintNodeNotReady = 'node.kubernetes.io/not-ready';
/** Set while the node's Ready condition is Unknown (its agent stopped renewing its Lease). */
export const TaintNodeUnreachable = 'node.kubernetes.io/unreachable';
/** Set while `spec.unschedulable` is true (`cox cordon`). */
export const TaintNodeUnschedulable = 'node.kubernetes.io/unschedulable';

/** Seconds a pod stays bound to a not-ready or unreachable node before it is evicted, unless it says otherwise. */
export const defaultTolerationSeconds = 300;

/** Kubernetes' `Toleration.ToleratesTaint`: effect and key match (empty matches all), then the value per operator. */
export function toleratesTaint(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? 'Equal') {
    case 'Exists':
      return true;
    case 'Equal':
      return (toleration.value ?? '') === (taint.value ?? '');
    default:
      return false;
  }
}

/** The first of `tolerations` that tolerates `taint` (Kubernetes uses the first match). */
export function matchingToleration(
  tolerations: readonly Toleration[] | undefined,
  taint: Taint,
): Toleration | undefined {
  return tolerations?.find((t) => toleratesTaint(t, taint));
}

/** True when some toleration covers `key` with effect NoExecute (an empty key or effect covers it). */
function toleratesNoExecuteKey(tolerations: readonly Toleration[], key: string): boolean {
  return tolerations.some(
    (t) => (t.key === undefined || t.key === '' || t.key === key) && (!t.effect || t.effect === 'NoExecute'),
  );
}

/**
 * The pod with the not-ready and unreachable NoExecute tolerations (`tolerationSeconds`
 * 300) added when it has none covering those taints, as Kubernetes' DefaultTolerationSeconds
 * admission does: a pod stays on a node that stopped reporting for five minutes before it is
 * evicted and replaced. A pod that tolerates them itself keeps its own.
 */
export function withDefaultTolerations(pod: Pod): Pod {
  const tolerations = [...(pod.spec.tolerations ?? [])];
  const added: Toleration[] = [];
  for (const key of [TaintNodeNotReady, TaintNodeUnreachable]) {
    if (!toleratesNoExecuteKey(tolerations, key)) {
      added.push({
        key,
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: defaultTolerationSeconds,
      });
    }
  }
  if (added.length === 0) return pod;
  return { ...pod, spec: { ...pod.spec, tolerations: [...tolerations, ...added] } };
}

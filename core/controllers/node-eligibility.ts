/**
 * Whether a DaemonSet's pod belongs on a node, pure, as Kubernetes' NodeShouldRunDaemonPod
 * decides it: the node name (if the template names one), the node selector and required node
 * affinity, and the node's taints against the pod's tolerations. Resources are the node
 * agent's concern, not the DaemonSet's. Also the tolerations Kubernetes gives every DaemonSet
 * pod, so that daemons keep running on nodes that are not ready, unreachable, under
 * pressure or cordoned.
 */

import type { Node, NodeSelectorTerm, PodSpec, Taint, Toleration } from '../objects.js';
import { compileTerm, termMatches, tolerates } from '../scheduler/matching.js';

/** The taints Kubernetes' node lifecycle puts on nodes, by condition. */
export const NodeTaint = {
  NotReady: 'node.kubernetes.io/not-ready',
  Unreachable: 'node.kubernetes.io/unreachable',
  Unschedulable: 'node.kubernetes.io/unschedulable',
  DiskPressure: 'node.kubernetes.io/disk-pressure',
  MemoryPressure: 'node.kubernetes.io/memory-pressure',
  PidPressure: 'node.kubernetes.io/pid-pressure',
} as const;

/**
 * Kubernetes' AddOrUpdateDaemonPodTolerations: NoExecute for not-ready and unreachable
 * (without tolerationSeconds, so the daemon is never evicted for them), NoSchedule for the
 * pressure conditions and for cordoned nodes.
 */
export const daemonPodTolerations: readonly Toleration[] = [
  { key: NodeTaint.NotReady, operator: 'Exists', effect: 'NoExecute' },
  { key: NodeTaint.Unreachable, operator: 'Exists', effect: 'NoExecute' },
  { key: NodeTaint.DiskPressure, operator: 'Exists', effect: 'NoSchedule' },
  { key: NodeTaint.MemoryPressure, operator: 'Exists', effect: 'NoSchedule' },
  { key: NodeTaint.PidPressure, operator: 'Exists', effect: 'NoSchedule' },
  { key: NodeTaint.Unschedulable, operator: 'Exists', effect: 'NoSchedule' },
];

/** The pod's tolerations plus the DaemonSet ones it lacks (same key and effect replaced). */
export function withDaemonTolerations(tolerations: readonly Toleration[] | undefined): Toleration[] {
  const out = [...(tolerations ?? [])];
  for (const t of daemonPodTolerations) {
    const i = out.findIndex((o) => o.key === t.key && (o.effect ?? '') === t.effect);
    if (i >= 0) out[i] = { ...t };
    else out.push({ ...t });
  }
  return out;
}

/** Kubernetes' ToleratesTaint: same key (or an empty key with Exists), same effect (or any), value per operator. */
export const toleratesTaint = tolerates;

/** The first taint with one of `effects` that no toleration tolerates. */
export function untoleratedTaint(
  taints: readonly Taint[] | undefined,
  tolerations: readonly Toleration[] | undefined,
  effects: readonly Taint['effect'][],
): Taint | undefined {
  return (taints ?? []).find(
    (taint) => effects.includes(taint.effect) && !(tolerations ?? []).some((t) => toleratesTaint(t, taint)),
  );
}

/** A term matches when all its requirements do; an empty term matches nothing (as Kubernetes). */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: Node): boolean {
  return termMatches(compileTerm(term), node.metadata.labels ?? {}, node.metadata.name ?? '');
}

/** `nodeSelector` (every pair) and the required node affinity (any term). */
export function nodeAffinityMatches(spec: PodSpec, node: Node): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required === undefined) return true;
  return required.nodeSelectorTerms.some((term) => nodeSelectorTermMatches(term, node));
}

export interface DaemonEligibility {
  /** A daemon pod should be created here. */
  shouldRun: boolean;
  /** A daemon pod already here may stay (untolerated NoSchedule taints do not evict). */
  shouldContinueRunning: boolean;
  /** Why not, for events and `cox why`: empty when `shouldRun`. */
  reason: string;
}

/**
 * Whether a daemon pod with `spec` (tolerations already including the DaemonSet ones)
 * belongs on `node`.
 */
export function daemonEligibility(spec: PodSpec, node: Node): DaemonEligibility {
  const name = node.metadata.name ?? '';
  if (spec.nodeName !== undefined && spec.nodeName !== '' && spec.nodeName !== name) {
    return {
      shouldRun: false,
      shouldContinueRunning: false,
      reason: `the template names node ${spec.nodeName}`,
    };
  }
  if (!nodeAffinityMatches(spec, node)) {
    return {
      shouldRun: false,
      shouldContinueRunning: false,
      reason: "node didn't match the node selector or required node affinity",
    };
  }
  const taints = node.spec?.taints;
  const blocking = untoleratedTaint(taints, spec.tolerations, ['NoSchedule', 'NoExecute']);
  if (blocking === undefined) return { shouldRun: true, shouldContinueRunning: true, reason: '' };
  const evicting = untoleratedTaint(taints, spec.tolerations, ['NoExecute']);
  return {
    shouldRun: false,
    shouldContinueRunning: evicting === undefined,
    reason: `node had untolerated taint {${blocking.key}${blocking.value ? `=${blocking.value}` : ''}:${blocking.effect}}`,
  };
}

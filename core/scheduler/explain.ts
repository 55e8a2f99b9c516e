/**
 * What the scheduler records on a pod so `cox why pod/NAME` can explain it later, and the
 * bounded encodings of it: for a pod that fits nowhere, each reason with how many nodes gave it
 * and (some of) their names; for a placed pod, where it went and its score. Both live in pod
 * annotations (JSON), written with the PodScheduled condition or the binding.
 */

import type { Placement, ScorePlugin, Unschedulable } from './schedule.js';

/** Why the last attempt found no node: JSON of {@link RecordedReasons}. */
export const reasonsAnnotation = 'scheduler.coxswain.io/unschedulable';
/** Where the scheduler put the pod and why: JSON of {@link RecordedPlacement}. */
export const placementAnnotation = 'scheduler.coxswain.io/placement';

/** Node names kept per reason (the count is always exact). */
export const reasonNodesMax = 20;
/** Distinct reasons kept (the most frequent; `otherReasons` counts the rest). */
export const reasonsMax = 20;
/** Upper bound of the encoded reasons annotation. */
export const reasonsAnnotationBytesMax = 8 * 1024;

export interface RecordedReason {
  readonly reason: string;
  /** Nodes that gave this reason. */
  readonly count: number;
  /** Some of them, sorted (all when `nodes.length === count`). */
  readonly nodes: readonly string[];
}

export interface RecordedReasons {
  /** Nodes in the cluster when the pod was last tried. */
  readonly nodes: number;
  /** Kubernetes' message (the PodScheduled condition's). */
  readonly message: string;
  /** Most frequent first, then by reason. */
  readonly reasons: readonly RecordedReason[];
  /** Distinct reasons left out beyond `reasonsMax`. */
  readonly otherReasons?: number;
}

export interface RecordedPlacement {
  readonly node: string;
  readonly score: number;
  readonly scores: Readonly<Record<ScorePlugin, number>>;
  readonly feasible: number;
  readonly evaluated: number;
  readonly nodes: number;
}

/** The reasons of a failed attempt, bounded by `reasonNodesMax`, `reasonsMax` and the byte cap. */
export function recordReasons(result: Unschedulable): RecordedReasons {
  const byReason = new Map<string, string[]>();
  for (const [node, reasons] of result.reasons) {
    for (const r of reasons) {
      let list = byReason.get(r);
      if (list === undefined) {
        list = [];
        byReason.set(r, list);
      }
      list.push(node);
    }
  }
  const all = [...byReason]
    .map(([reason, nodes]) => ({ reason, nodes: nodes.sort() }))
    .sort(
      (a, b) => b.nodes.length - a.nodes.length || (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0),
    );
  const kept = all.slice(0, reasonsMax);
  for (let names = reasonNodesMax; ; names = Math.floor(names / 2)) {
    const recorded: RecordedReasons = {
      nodes: result.nodes,
      message: result.message,
      reasons: kept.map((r) => ({ reason: r.reason, count: r.nodes.length, nodes: r.nodes.slice(0, names) })),
      ...(all.length > kept.length ? { otherReasons: all.length - kept.length } : {}),
    };
    if (names === 0 || Buffer.byteLength(JSON.stringify(recorded)) <= reasonsAnnotationBytesMax)
      return recorded;
  }
}

export function recordPlacement(p: Placement): RecordedPlacement {
  return {
    node: p.node,
    score: p.score,
    scores: p.scores,
    feasible: p.feasible,
    evaluated: p.evaluated,
    nodes: p.nodes,
  };
}

export function encodeRecord(r: RecordedReasons | RecordedPlacement): string {
  return JSON.stringify(r);
}

function parse(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The recorded reasons of a pod's annotations, if present and well formed. */
export function readReasons(
  annotations: Readonly<Record<string, string>> | undefined,
): RecordedReasons | undefined {
  const v = parse(annotations?.[reasonsAnnotation]);
  if (v === undefined || typeof v.nodes !== 'number' || !Array.isArray(v.reasons)) return undefined;
  const reasons = v.reasons.filter(
    (r): r is RecordedReason =>
      typeof r === 'object' &&
      r !== null &&
      typeof (r as RecordedReason).reason === 'string' &&
      typeof (r as RecordedReason).count === 'number' &&
      Array.isArray((r as RecordedReason).nodes),
  );
  return {
    nodes: v.nodes,
    message: typeof v.message === 'string' ? v.message : '',
    reasons,
    ...(typeof v.otherReasons === 'number' ? { otherReasons: v.otherReasons } : {}),
  };
}

/** The recorded placement of a pod's annotations, if present and well formed. */
export function readPlacement(
  annotations: Readonly<Record<string, string>> | undefined,
): RecordedPlacement | undefined {
  const v = parse(annotations?.[placementAnnotation]);
  if (v === undefined || typeof v.node !== 'string' || typeof v.score !== 'number') return undefined;
  const num = (x: unknown) => (typeof x === 'number' ? x : 0);
  return {
    node: v.node,
    score: v.score,
    scores: (typeof v.scores === 'object' && v.scores !== null ? v.scores : {}) as Record<
      ScorePlugin,
      number
    >,
    feasible: num(v.feasible),
    evaluated: num(v.evaluated),
    nodes: num(v.nodes),
  };
}

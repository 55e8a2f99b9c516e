/**
 * The scheduling algorithm: a pure function of the snapshot and the pod (plus where to start
 * and how to break ties, both inputs) to a placement, or to the reasons each node refused it.
 *
 * As Kubernetes' scheduling framework: a pre-filter pass computes what the pod needs once
 * (requests as numbers, compiled selectors, the topology domains its pod (anti-)affinity terms
 * rule in or out); filters run per node in Kubernetes' order and stop at the first that fails
 * (resource fit reports every insufficient resource); on large clusters only enough feasible
 * nodes are looked for (`percentageOfNodesToScore`, adaptive by default), starting where the
 * previous decision stopped; scores are weighted and normalized as Kubernetes' plugins do;
 * the best node wins, ties broken by `tieBreak`.
 */

import type { Pod, Taint, Toleration } from '../objects.js';
import {
  anyTermMatches,
  type CompiledPodTerm,
  type CompiledTerm,
  compilePodTerm,
  compileTerm,
  firstUntolerated,
  podTermSelects,
  termMatches,
  tolerates,
} from './matching.js';
import { podNonZeroRequests, podRequests, type Resources } from './resources.js';
import { type NodeInfo, podHostPorts, type SchedulerSnapshot } from './snapshot.js';

/** Kubernetes' reason strings (what `kubectl describe pod` shows under FailedScheduling). */
export const Reason = {
  NotReady: 'node(s) were not ready',
  Unschedulable: 'node(s) were unschedulable',
  NodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  Ports: "node(s) didn't have free ports for the requested pod ports",
  TooManyPods: 'Too many pods',
  AntiAffinity: "node(s) didn't match pod anti-affinity rules",
  ExistingAntiAffinity: "node(s) didn't satisfy existing pods anti-affinity rules",
  Affinity: "node(s) didn't match pod affinity rules",
} as const;

export function insufficient(resource: string): string {
  return `Insufficient ${resource}`;
}

export function untoleratedTaint(t: Taint): string {
  return `node(s) had untolerated taint {${t.key}: ${t.value ?? ''}}`;
}

/** Score plugins and their weights (Kubernetes' defaults; OwnerSpread stands for PodTopologySpread's default spreading). */
export const scoreWeights = {
  NodeResourcesLeastAllocated: 1,
  NodeResourcesBalancedAllocation: 1,
  OwnerSpread: 2,
  NodeAffinity: 2,
  TaintToleration: 3,
} as const;
export type ScorePlugin = keyof typeof scoreWeights;
export const maxNodeScore = 100;

export interface ScheduleOptions {
  /** Index into the node list where the search starts (round robin across decisions). */
  startIndex?: number;
  /** Chooses among equally scored nodes: the `tieBreak % ties`-th in node order. */
  tieBreak?: number;
  /** Percent of nodes to find feasible before scoring; 0 or absent: Kubernetes' adaptive rule. */
  percentageOfNodesToScore?: number;
}

export interface Placement {
  readonly kind: 'placed';
  readonly node: string;
  /** The weighted total of the chosen node. */
  readonly score: number;
  /** Per plugin, before weighting (0-100). */
  readonly scores: Readonly<Record<ScorePlugin, number>>;
  /** Nodes that passed every filter among those evaluated. */
  readonly feasible: number;
  readonly evaluated: number;
  /** Nodes in the snapshot. */
  readonly nodes: number;
  readonly nextStartIndex: number;
}

export interface Unschedulable {
  readonly kind: 'unschedulable';
  readonly nodes: number;
  /** Why each node refused the pod (every node is evaluated). */
  readonly reasons: ReadonlyMap<string, readonly string[]>;
  /** Kubernetes' FailedScheduling message: `0/5 nodes are available: 2 Insufficient cpu, ...`. */
  readonly message: string;
  readonly nextStartIndex: number;
}

export type ScheduleResult = Placement | Unschedulable;

/** Kubernetes: every node below this many; then a share falling with the cluster's size. */
const minFeasibleNodesToFind = 100;
const minFeasibleNodesPercentageToFind = 5;
const basePercentageOfNodesToScore = 50;

/** How many feasible nodes are enough (Kubernetes' `numFeasibleNodesToFind`). */
export function feasibleNodesToFind(nodes: number, percentage = 0): number {
  if (nodes < minFeasibleNodesToFind) return nodes;
  let pct = percentage;
  if (pct <= 0) {
    pct = basePercentageOfNodesToScore - Math.floor(nodes / 125);
    if (pct < minFeasibleNodesPercentageToFind) pct = minFeasibleNodesPercentageToFind;
  }
  const n = Math.floor((nodes * Math.min(pct, 100)) / 100);
  return n < minFeasibleNodesToFind ? minFeasibleNodesToFind : n;
}

/** What the pod needs, computed once per decision. */
interface PodPlan {
  readonly requests: Resources;
  readonly nonZero: { readonly milliCpu: number; readonly memory: number };
  readonly nodeSelector: readonly (readonly [string, string])[];
  readonly requiredTerms: readonly CompiledTerm[] | undefined;
  readonly preferredTerms: readonly { readonly weight: number; readonly term: CompiledTerm }[];
  readonly tolerations: readonly Toleration[];
  readonly toleratesUnschedulable: boolean;
  readonly ports: readonly string[];
  /** Nodes running pods of the pod's controller owner, with how many. */
  readonly ownerCounts: ReadonlyMap<NodeInfo, number> | undefined;
  /** Topology pairs (`key`, values) ruled out by the pod's own anti-affinity. */
  readonly antiAffinity: TopologyCounts;
  /** Topology pairs ruled out by placed pods' anti-affinity against this pod. */
  readonly existingAntiAffinity: TopologyCounts;
  /** The pod's required affinity terms' topology keys, and the pairs where matching pods run. */
  readonly affinityKeys: readonly string[];
  readonly affinity: TopologyCounts;
  /** No placed pod matches the affinity terms, and the pod matches them itself (first of a group). */
  readonly affinitySelfSatisfied: boolean;
}

/** topologyKey → topology value → matching pods. */
type TopologyCounts = Map<string, Map<string, number>>;

function countPair(counts: TopologyCounts, key: string, value: string | undefined): void {
  if (value === undefined) return;
  let values = counts.get(key);
  if (values === undefined) {
    values = new Map();
    counts.set(key, values);
  }
  values.set(value, (values.get(value) ?? 0) + 1);
}

function labelOf(labels: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

const unschedulableTaint: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

function planPod(snapshot: SchedulerSnapshot, pod: Pod): PodPlan {
  const spec = pod.spec;
  const namespace = pod.metadata.namespace ?? 'default';
  const labels = pod.metadata.labels ?? {};
  const nodeAffinity = spec.affinity?.nodeAffinity;
  const required = nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const tolerations = spec.tolerations ?? [];

  const antiTerms = (
    spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []
  ).map((t) => compilePodTerm(t, namespace));
  const affinityTerms = (
    spec.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []
  ).map((t) => compilePodTerm(t, namespace));
  const antiAffinity: TopologyCounts = new Map();
  const affinity: TopologyCounts = new Map();
  const key = `Pod/${namespace}/${pod.metadata.name ?? ''}`;
  const ownerUid = pod.metadata.ownerReferences?.find((r) => r.controller === true)?.uid;
  if (antiTerms.length > 0 || affinityTerms.length > 0) {
    const namespaces = new Set<string>();
    for (const t of [...antiTerms, ...affinityTerms]) for (const ns of t.namespaces) namespaces.add(ns);
    for (const ns of namespaces) {
      for (const e of snapshot.podsIn(ns)) {
        if (e.key === key) continue;
        const nodeLabels = snapshot.nodeInfo(e.node)?.labels ?? {};
        for (const t of antiTerms) {
          if (podTermSelects(t, e.namespace, e.labels))
            countPair(antiAffinity, t.topologyKey, labelOf(nodeLabels, t.topologyKey));
        }
        if (
          affinityTerms.length > 0 &&
          affinityTerms.every((t) => podTermSelects(t, e.namespace, e.labels))
        ) {
          for (const t of affinityTerms)
            countPair(affinity, t.topologyKey, labelOf(nodeLabels, t.topologyKey));
        }
      }
    }
  }
  const existingAntiAffinity: TopologyCounts = new Map();
  for (const e of snapshot.podsWithAntiAffinity()) {
    if (e.key === key) continue;
    const nodeLabels = snapshot.nodeInfo(e.node)?.labels;
    if (nodeLabels === undefined) continue;
    for (const t of e.antiAffinity) {
      if (podTermSelects(t, namespace, labels))
        countPair(existingAntiAffinity, t.topologyKey, labelOf(nodeLabels, t.topologyKey));
    }
  }
  return {
    requests: podRequests(spec),
    nonZero: podNonZeroRequests(spec),
    nodeSelector: Object.entries(spec.nodeSelector ?? {}),
    requiredTerms: required === undefined ? undefined : required.nodeSelectorTerms.map(compileTerm),
    preferredTerms: (nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p) => ({
      weight: p.weight,
      term: compileTerm(p.preference),
    })),
    tolerations,
    toleratesUnschedulable: tolerations.some((t) => tolerates(t, unschedulableTaint)),
    ports: podHostPorts(pod),
    ownerCounts: ownerUid === undefined ? undefined : snapshot.ownerCounts(ownerUid),
    antiAffinity,
    existingAntiAffinity,
    affinityKeys: affinityTerms.map((t) => t.topologyKey),
    affinity,
    affinitySelfSatisfied:
      affinity.size === 0 &&
      affinityTerms.every((t: CompiledPodTerm) => podTermSelects(t, namespace, labels)),
  };
}

/**
 * Why `node` refuses the pod, in Kubernetes' filter order (the first failing filter; resource
 * fit names every insufficient resource). Undefined when the node passes every filter.
 */
function filterNode(plan: PodPlan, node: NodeInfo): string[] | undefined {
  if (node.notReady) return [Reason.NotReady];
  if (node.unschedulable && !plan.toleratesUnschedulable) return [Reason.Unschedulable];
  if (node.filterTaints.length > 0) {
    const taint = firstUntolerated(node.filterTaints, plan.tolerations);
    if (taint !== undefined) return [untoleratedTaint(taint)];
  }
  if (!nodeAffinityMatches(plan, node)) return [Reason.NodeAffinity];
  if (plan.ports.length > 0 && portsConflict(plan.ports, node)) return [Reason.Ports];
  const fit = resourceFit(plan, node);
  if (fit !== undefined) return fit;
  // InterPodAffinity's order: the pod's affinity, its anti-affinity, then placed pods' anti-affinity.
  if (plan.affinityKeys.length > 0 && !affinitySatisfied(plan, node)) return [Reason.Affinity];
  if (plan.antiAffinity.size > 0 && inAnyPair(plan.antiAffinity, node)) return [Reason.AntiAffinity];
  if (plan.existingAntiAffinity.size > 0 && inAnyPair(plan.existingAntiAffinity, node)) {
    return [Reason.ExistingAntiAffinity];
  }
  return undefined;
}

function nodeAffinityMatches(plan: PodPlan, node: NodeInfo): boolean {
  const labels = node.labels;
  for (const [k, v] of plan.nodeSelector) if (labelOf(labels, k) !== v) return false;
  return plan.requiredTerms === undefined || anyTermMatches(plan.requiredTerms, labels, node.name);
}

function portsConflict(ports: readonly string[], node: NodeInfo): boolean {
  if (node.ports.size === 0) return false;
  for (const p of ports) {
    const last = p.lastIndexOf('/');
    const ips = node.ports.get(p.slice(0, last));
    if (ips === undefined) continue;
    const ip = p.slice(last + 1);
    if (ip === '0.0.0.0' || ips.has(ip) || ips.has('0.0.0.0')) return true;
  }
  return false;
}

function resourceFit(plan: PodPlan, node: NodeInfo): string[] | undefined {
  const alloc = node.allocatable;
  const r = plan.requests;
  const used = node.requested;
  const tooManyPods = node.podCount + 1 > alloc.pods;
  const cpu = r.milliCpu > 0 && used.milliCpu + r.milliCpu > alloc.resources.milliCpu;
  const memory = r.memory > 0 && used.memory + r.memory > alloc.resources.memory;
  let scalars: string[] | undefined;
  if (r.scalars !== undefined) {
    for (const [name, v] of Object.entries(r.scalars)) {
      if (v > 0 && (used.scalars?.[name] ?? 0) + v > (alloc.resources.scalars?.[name] ?? 0)) {
        scalars = [...(scalars ?? []), insufficient(name)];
      }
    }
  }
  if (!tooManyPods && !cpu && !memory && scalars === undefined) return undefined;
  const out: string[] = [];
  if (tooManyPods) out.push(Reason.TooManyPods);
  if (cpu) out.push(insufficient('cpu'));
  if (memory) out.push(insufficient('memory'));
  if (scalars !== undefined) out.push(...scalars);
  return out;
}

function inAnyPair(counts: TopologyCounts, node: NodeInfo): boolean {
  for (const [key, values] of counts) {
    const v = labelOf(node.labels, key);
    if (v !== undefined && (values.get(v) ?? 0) > 0) return true;
  }
  return false;
}

function affinitySatisfied(plan: PodPlan, node: NodeInfo): boolean {
  let podsExist = true;
  for (const key of plan.affinityKeys) {
    const v = labelOf(node.labels, key);
    if (v === undefined) return false; // every topology key must be on the node
    if ((plan.affinity.get(key)?.get(v) ?? 0) <= 0) podsExist = false;
  }
  return podsExist || plan.affinitySelfSatisfied;
}

/** Kubernetes' `leastRequestedScore` for one resource. */
function leastRequested(requested: number, capacity: number): number {
  if (capacity <= 0 || requested > capacity) return 0;
  return Math.floor(((capacity - requested) * maxNodeScore) / capacity);
}

/**
 * Raw per-node scores of the feasible nodes, before normalization, in scratch arrays reused
 * across decisions (a decision is synchronous; nothing else runs in between).
 */
class ScoreScratch {
  least = new Float64Array(1024);
  balanced = new Float64Array(1024);
  owner = new Float64Array(1024);
  affinity = new Float64Array(1024);
  taints = new Float64Array(1024);
  totals = new Float64Array(1024);

  ensure(n: number): void {
    if (n <= this.least.length) return;
    const size = Math.max(n, this.least.length * 2);
    this.least = new Float64Array(size);
    this.balanced = new Float64Array(size);
    this.owner = new Float64Array(size);
    this.affinity = new Float64Array(size);
    this.taints = new Float64Array(size);
    this.totals = new Float64Array(size);
  }
}
const scratch = new ScoreScratch();

function rawScores(plan: PodPlan, node: NodeInfo, i: number): void {
  const alloc = node.allocatable.resources;
  const cpu = node.nonZeroRequested.milliCpu + plan.nonZero.milliCpu;
  const mem = node.nonZeroRequested.memory + plan.nonZero.memory;
  scratch.least[i] = Math.floor(
    (leastRequested(cpu, alloc.milliCpu) + leastRequested(mem, alloc.memory)) / 2,
  );
  let std = 0;
  if (alloc.milliCpu > 0 && alloc.memory > 0) {
    const fc = Math.min(1, (node.requested.milliCpu + plan.requests.milliCpu) / alloc.milliCpu);
    const fm = Math.min(1, (node.requested.memory + plan.requests.memory) / alloc.memory);
    std = Math.abs(fc - fm) / 2;
  }
  scratch.balanced[i] = Math.floor((1 - std) * maxNodeScore);
  scratch.owner[i] = plan.ownerCounts === undefined ? 0 : (plan.ownerCounts.get(node) ?? 0);
  let affinity = 0;
  for (const p of plan.preferredTerms) if (termMatches(p.term, node.labels, node.name)) affinity += p.weight;
  scratch.affinity[i] = affinity;
  let taints = 0;
  for (const t of node.preferTaints) {
    if (
      !plan.tolerations.some((tol) => (!tol.effect || tol.effect === 'PreferNoSchedule') && tolerates(tol, t))
    ) {
      taints += 1;
    }
  }
  scratch.taints[i] = taints;
}

/** Decides where `pod` goes in `snapshot`. Reads the snapshot only. */
export function schedulePod(
  snapshot: SchedulerSnapshot,
  pod: Pod,
  opts: ScheduleOptions = {},
): ScheduleResult {
  const nodes = snapshot.nodeList();
  const total = nodes.length;
  const start = total === 0 ? 0 : (((opts.startIndex ?? 0) % total) + total) % total;
  if (total === 0) {
    return {
      kind: 'unschedulable',
      nodes: 0,
      reasons: new Map(),
      message: noNodesMessage,
      nextStartIndex: 0,
    };
  }
  const plan = planPod(snapshot, pod);
  const wanted = feasibleNodesToFind(total, opts.percentageOfNodesToScore);
  const feasible: NodeInfo[] = [];
  const reasons = new Map<string, string[]>();
  let evaluated = 0;
  for (; evaluated < total && feasible.length < wanted; evaluated += 1) {
    const node = nodes[(start + evaluated) % total];
    const why = filterNode(plan, node);
    if (why === undefined) feasible.push(node);
    else reasons.set(node.name, why);
  }
  const nextStartIndex = (start + evaluated) % total;
  if (feasible.length === 0) {
    const all = reasons;
    return {
      kind: 'unschedulable',
      nodes: total,
      reasons: all,
      message: unschedulableMessage(total, all),
      nextStartIndex,
    };
  }
  return choose(plan, feasible, evaluated, total, nextStartIndex, opts.tieBreak ?? 0);
}

function choose(
  plan: PodPlan,
  feasible: readonly NodeInfo[],
  evaluated: number,
  total: number,
  nextStartIndex: number,
  tieBreak: number,
): Placement {
  const n = feasible.length;
  scratch.ensure(n);
  let maxOwner = 0;
  let maxAffinity = 0;
  let maxTaints = 0;
  for (let i = 0; i < n; i += 1) {
    rawScores(plan, feasible[i], i);
    if (scratch.owner[i] > maxOwner) maxOwner = scratch.owner[i];
    if (scratch.affinity[i] > maxAffinity) maxAffinity = scratch.affinity[i];
    if (scratch.taints[i] > maxTaints) maxTaints = scratch.taints[i];
  }
  // Normalized as Kubernetes' DefaultNormalizeScore (spread and taints reversed).
  const normalized = (i: number): Record<ScorePlugin, number> => ({
    NodeResourcesLeastAllocated: scratch.least[i],
    NodeResourcesBalancedAllocation: scratch.balanced[i],
    OwnerSpread:
      maxOwner === 0 ? maxNodeScore : Math.floor((maxNodeScore * (maxOwner - scratch.owner[i])) / maxOwner),
    NodeAffinity: maxAffinity === 0 ? 0 : Math.floor((maxNodeScore * scratch.affinity[i]) / maxAffinity),
    TaintToleration:
      maxTaints === 0
        ? maxNodeScore
        : maxNodeScore - Math.floor((maxNodeScore * scratch.taints[i]) / maxTaints),
  });
  let best = -1;
  let ties = 0;
  for (let i = 0; i < n; i += 1) {
    const owner =
      maxOwner === 0 ? maxNodeScore : Math.floor((maxNodeScore * (maxOwner - scratch.owner[i])) / maxOwner);
    const affinity = maxAffinity === 0 ? 0 : Math.floor((maxNodeScore * scratch.affinity[i]) / maxAffinity);
    const taints =
      maxTaints === 0
        ? maxNodeScore
        : maxNodeScore - Math.floor((maxNodeScore * scratch.taints[i]) / maxTaints);
    const t =
      scratch.least[i] * scoreWeights.NodeResourcesLeastAllocated +
      scratch.balanced[i] * scoreWeights.NodeResourcesBalancedAllocation +
      owner * scoreWeights.OwnerSpread +
      affinity * scoreWeights.NodeAffinity +
      taints * scoreWeights.TaintToleration;
    scratch.totals[i] = t;
    if (t > best) {
      best = t;
      ties = 1;
    } else if (t === best) ties += 1;
  }
  let nth = ((tieBreak % ties) + ties) % ties;
  let pick = 0;
  for (let i = 0; i < n; i += 1) {
    if (scratch.totals[i] !== best) continue;
    if (nth === 0) {
      pick = i;
      break;
    }
    nth -= 1;
  }
  return {
    kind: 'placed',
    node: feasible[pick].name,
    score: best,
    scores: normalized(pick),
    feasible: n,
    evaluated,
    nodes: total,
    nextStartIndex,
  };
}

export const noNodesMessage = 'no nodes available to schedule pods';

/**
 * Kubernetes' FitError message: `0/N nodes are available: ` and the reasons with how many
 * nodes gave each, sorted as strings (Kubernetes sorts the `count reason` texts), then `.`.
 */
export function unschedulableMessage(nodes: number, reasons: ReadonlyMap<string, readonly string[]>): string {
  if (nodes === 0) return noNodesMessage;
  const histogram = reasonHistogram(reasons);
  const parts = [...histogram].map(([reason, count]) => `${count} ${reason}`).sort();
  return `0/${nodes} nodes are available${parts.length > 0 ? `: ${parts.join(', ')}` : ''}.`;
}

/** Reason → how many nodes gave it. */
export function reasonHistogram(reasons: ReadonlyMap<string, readonly string[]>): Map<string, number> {
  const out = new Map<string, number>();
  for (const list of reasons.values()) for (const r of list) out.set(r, (out.get(r) ?? 0) + 1);
  return out;
}

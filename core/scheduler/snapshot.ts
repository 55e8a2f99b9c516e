/**
 * The scheduler's view of the cluster: every node, compiled once per change (labels, taints,
 * readiness, allocatable as numbers), and the pods placed on nodes with incrementally kept
 * per-node sums (requested resources, pod count, host ports, pods per owner). "Assumed" pods
 * are decisions whose binding is still in flight: they count on their node exactly like bound
 * pods, so the next decision sees them, and are forgotten if the binding is refused.
 *
 * Pure data, no clock and no I/O: the scheduler actor feeds it the store's changes in log order.
 */

import type { Node, Pod, Taint } from '../objects.js';
import { type CompiledPodTerm, compilePodTerm } from './matching.js';
import {
  type Allocatable,
  addResources,
  emptyResources,
  nodeAllocatable,
  podNonZeroRequests,
  podRequests,
  type Resources,
} from './resources.js';

/** A pod as the scheduler counts it on a node. Never mutate one handed out. */
export interface PodEntry {
  /** The store key, `Pod/<namespace>/<name>`. */
  readonly key: string;
  readonly uid: string;
  readonly namespace: string;
  labels: Readonly<Record<string, string>>;
  readonly node: string;
  readonly requests: Resources;
  readonly nonZero: { readonly milliCpu: number; readonly memory: number };
  /** The controller owner's uid (spread scoring). */
  readonly ownerUid: string | undefined;
  /** Being deleted: still holds its resources, no longer counts for spreading. */
  terminating: boolean;
  /** A decision whose binding is in flight. */
  assumed: boolean;
  /** `protocol/hostPort/hostIP` of its host ports. */
  readonly ports: readonly string[];
  /** Its required anti-affinity terms (checked against incoming pods: symmetry). */
  readonly antiAffinity: readonly CompiledPodTerm[];
}

/** One node, compiled. Fields are maintained by the snapshot; read-only to everyone else. */
export interface NodeInfo {
  readonly name: string;
  /** Undefined while pods are known on a node the snapshot has no Node object for. */
  node: Node | undefined;
  labels: Readonly<Record<string, string>>;
  /** NoSchedule and NoExecute taints: they filter. */
  filterTaints: readonly Taint[];
  /** PreferNoSchedule taints: they score. */
  preferTaints: readonly Taint[];
  unschedulable: boolean;
  /** Its Ready condition exists and is not True. */
  notReady: boolean;
  allocatable: Allocatable;
  /** Sum of the requests of its pods (assumed included). */
  readonly requested: Resources;
  /** Same with Kubernetes' defaults for containers without requests (scores). */
  readonly nonZeroRequested: { milliCpu: number; memory: number };
  podCount: number;
  /** `protocol/hostPort` → host IP → pods using it. */
  readonly ports: Map<string, Map<string, number>>;
  readonly pods: Map<string, PodEntry>;
}

function isTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/** `protocol/hostPort/hostIP` of every host port a pod asks for. */
export function podHostPorts(pod: Pod): string[] {
  const out: string[] = [];
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (p.hostPort === undefined || p.hostPort <= 0) continue;
      out.push(`${p.protocol ?? 'TCP'}/${p.hostPort}/${(p as { hostIP?: string }).hostIP || '0.0.0.0'}`);
    }
  }
  return out;
}

function controllerUid(pod: Pod): string | undefined {
  return pod.metadata.ownerReferences?.find((r) => r.controller === true)?.uid;
}

/** What a pod change did to the snapshot (the actor requeues unschedulable pods on some). */
export type PodChange =
  /** Resources left a node (deleted, finished, or an assumption dropped). */
  | 'freed'
  /** A pod is now placed on a node (bound, or its labels changed there). */
  | 'placed'
  | 'none';

export class SchedulerSnapshot {
  private readonly nodes = new Map<string, NodeInfo>();
  /** Nodes with a Node object, sorted by name (the order decisions iterate in). */
  private sorted: NodeInfo[] | undefined;
  private readonly pods = new Map<string, PodEntry>();
  private readonly byNamespace = new Map<string, Set<PodEntry>>();
  private readonly withAntiAffinity = new Set<PodEntry>();
  /** Fingerprint of each node's scheduling-relevant state. */
  private readonly fingerprints = new Map<string, string>();
  /**
   * Controller owner uid → node → its pods there (terminating pods excluded): spread scores
   * look one owner up per decision, then nodes by identity.
   */
  private readonly owners = new Map<string, Map<NodeInfo, number>>();

  /** Nodes with a Node object, sorted by name. */
  nodeList(): readonly NodeInfo[] {
    if (this.sorted === undefined) {
      this.sorted = [...this.nodes.values()]
        .filter((n) => n.node !== undefined)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    return this.sorted;
  }

  nodeInfo(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  pod(key: string): PodEntry | undefined {
    return this.pods.get(key);
  }

  /** Pods placed in `namespace` (assumed included). */
  podsIn(namespace: string): ReadonlySet<PodEntry> {
    return this.byNamespace.get(namespace) ?? emptySet;
  }

  /** The nodes running pods of the controller owner `uid`, with how many (terminating excluded). */
  ownerCounts(uid: string): ReadonlyMap<NodeInfo, number> | undefined {
    return this.owners.get(uid);
  }

  /** Placed pods with required anti-affinity terms. */
  podsWithAntiAffinity(): ReadonlySet<PodEntry> {
    return this.withAntiAffinity;
  }

  get podCount(): number {
    return this.pods.size;
  }

  /** Pods placed by their binding (assumptions not counted). */
  placedCount(): number {
    let n = 0;
    for (const e of this.pods.values()) if (!e.assumed) n += 1;
    return n;
  }

  /**
   * Adds or updates a node. True when something a decision looks at changed (labels, taints,
   * readiness, allocatable, unschedulable): pods that fit nowhere may fit now.
   */
  setNode(node: Node): boolean {
    const name = node.metadata.name ?? '';
    let info = this.nodes.get(name);
    if (info === undefined) {
      info = newNodeInfo(name);
      this.nodes.set(name, info);
    }
    if (info.node === undefined) this.sorted = undefined;
    info.node = node;
    info.labels = node.metadata.labels ?? {};
    const taints = node.spec?.taints ?? [];
    info.filterTaints = taints.filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
    info.preferTaints = taints.filter((t) => t.effect === 'PreferNoSchedule');
    info.unschedulable = node.spec?.unschedulable === true;
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    info.notReady = ready !== undefined && ready.status !== 'True';
    info.allocatable = nodeAllocatable(node);
    const fingerprint = JSON.stringify([
      info.labels,
      taints.map((t) => [t.key, t.value ?? '', t.effect]),
      info.unschedulable,
      info.notReady,
      node.status?.allocatable ?? node.status?.capacity ?? {},
    ]);
    const changed = this.fingerprints.get(name) !== fingerprint;
    this.fingerprints.set(name, fingerprint);
    return changed;
  }

  /** Removes a node; its pods stay counted (on a placeholder) until they go. */
  removeNode(name: string): void {
    const info = this.nodes.get(name);
    if (info === undefined) return;
    this.fingerprints.delete(name);
    if (info.node !== undefined) this.sorted = undefined;
    info.node = undefined;
    info.labels = {};
    info.filterTaints = [];
    info.preferTaints = [];
    if (info.pods.size === 0) this.nodes.delete(name);
  }

  /**
   * Applies the current state of a pod (from the store): bound and not finished, it is placed
   * on its node (confirming an assumption); finished, it is removed; unbound, an assumption of
   * it is kept (its binding is in flight).
   */
  setPod(key: string, pod: Pod): PodChange {
    const nodeName = pod.spec.nodeName;
    const current = this.pods.get(key);
    if (isTerminal(pod)) return this.removePod(key) ? 'freed' : 'none';
    if (!nodeName) {
      if (current !== undefined && !current.assumed) return this.removePod(key) ? 'freed' : 'none';
      return 'none';
    }
    const uid = pod.metadata.uid ?? '';
    if (current !== undefined && current.uid === uid && current.node === nodeName) {
      const wasAssumed = current.assumed;
      current.assumed = false;
      const terminating = pod.metadata.deletionTimestamp !== undefined;
      const labels = pod.metadata.labels ?? {};
      const relabelled = current.labels !== labels && !sameLabels(current.labels, labels);
      if (terminating !== current.terminating) this.setTerminating(current, terminating);
      if (relabelled) current.labels = labels;
      return wasAssumed || relabelled ? 'placed' : 'none';
    }
    if (current !== undefined) this.removePod(key);
    this.addEntry(entryOf(key, pod, nodeName, false));
    return 'placed';
  }

  /** Removes a pod (deleted from the store). True when it held resources on a node. */
  removePod(key: string): boolean {
    const e = this.pods.get(key);
    if (e === undefined) return false;
    this.pods.delete(key);
    const ns = this.byNamespace.get(e.namespace);
    ns?.delete(e);
    if (ns?.size === 0) this.byNamespace.delete(e.namespace);
    this.withAntiAffinity.delete(e);
    const info = this.nodes.get(e.node);
    if (info === undefined) return true;
    info.pods.delete(key);
    addResources(info.requested, e.requests, -1);
    info.nonZeroRequested.milliCpu -= e.nonZero.milliCpu;
    info.nonZeroRequested.memory -= e.nonZero.memory;
    info.podCount -= 1;
    if (e.ownerUid !== undefined && !e.terminating) this.countOwner(e.ownerUid, info, -1);
    for (const p of e.ports) {
      const [proto, port, ip] = splitPort(p);
      const ips = info.ports.get(`${proto}/${port}`);
      if (ips === undefined) continue;
      decrement(ips, ip);
      if (ips.size === 0) info.ports.delete(`${proto}/${port}`);
    }
    if (info.node === undefined && info.pods.size === 0) this.nodes.delete(e.node);
    return true;
  }

  /** Counts `pod` on `nodeName` while its binding is in flight. */
  assume(key: string, pod: Pod, nodeName: string): void {
    if (this.pods.has(key)) this.removePod(key);
    this.addEntry(entryOf(key, pod, nodeName, true));
  }

  /** Drops an assumption (the binding was refused or failed). True when there was one. */
  forget(key: string): boolean {
    const e = this.pods.get(key);
    if (e === undefined || !e.assumed) return false;
    return this.removePod(key);
  }

  isAssumed(key: string): boolean {
    return this.pods.get(key)?.assumed === true;
  }

  /** Forgets everything (a rebuild follows). */
  clear(): void {
    this.nodes.clear();
    this.sorted = undefined;
    this.pods.clear();
    this.byNamespace.clear();
    this.withAntiAffinity.clear();
    this.fingerprints.clear();
    this.owners.clear();
  }

  private countOwner(uid: string, info: NodeInfo, delta: 1 | -1): void {
    let nodes = this.owners.get(uid);
    if (nodes === undefined) {
      if (delta < 0) return;
      nodes = new Map();
      this.owners.set(uid, nodes);
    }
    const n = (nodes.get(info) ?? 0) + delta;
    if (n > 0) nodes.set(info, n);
    else {
      nodes.delete(info);
      if (nodes.size === 0) this.owners.delete(uid);
    }
  }

  private addEntry(e: PodEntry): void {
    this.pods.set(e.key, e);
    let ns = this.byNamespace.get(e.namespace);
    if (ns === undefined) {
      ns = new Set();
      this.byNamespace.set(e.namespace, ns);
    }
    ns.add(e);
    if (e.antiAffinity.length > 0) this.withAntiAffinity.add(e);
    let info = this.nodes.get(e.node);
    if (info === undefined) {
      info = newNodeInfo(e.node);
      this.nodes.set(e.node, info);
    }
    info.pods.set(e.key, e);
    addResources(info.requested, e.requests, 1);
    info.nonZeroRequested.milliCpu += e.nonZero.milliCpu;
    info.nonZeroRequested.memory += e.nonZero.memory;
    info.podCount += 1;
    if (e.ownerUid !== undefined && !e.terminating) this.countOwner(e.ownerUid, info, 1);
    for (const p of e.ports) {
      const [proto, port, ip] = splitPort(p);
      let ips = info.ports.get(`${proto}/${port}`);
      if (ips === undefined) {
        ips = new Map();
        info.ports.set(`${proto}/${port}`, ips);
      }
      increment(ips, ip);
    }
  }

  private setTerminating(e: PodEntry, terminating: boolean): void {
    const info = this.nodes.get(e.node);
    if (info !== undefined && e.ownerUid !== undefined)
      this.countOwner(e.ownerUid, info, terminating ? -1 : 1);
    e.terminating = terminating;
  }
}

const emptySet: ReadonlySet<PodEntry> = new Set();

function newNodeInfo(name: string): NodeInfo {
  return {
    name,
    node: undefined,
    labels: {},
    filterTaints: [],
    preferTaints: [],
    unschedulable: false,
    notReady: false,
    allocatable: { resources: emptyResources(), pods: 0 },
    requested: emptyResources(),
    nonZeroRequested: { milliCpu: 0, memory: 0 },
    podCount: 0,
    ports: new Map(),
    pods: new Map(),
  };
}

function entryOf(key: string, pod: Pod, node: string, assumed: boolean): PodEntry {
  const namespace = pod.metadata.namespace ?? 'default';
  const anti = pod.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  return {
    key,
    uid: pod.metadata.uid ?? '',
    namespace,
    labels: pod.metadata.labels ?? {},
    node,
    requests: podRequests(pod.spec),
    nonZero: podNonZeroRequests(pod.spec),
    ownerUid: controllerUid(pod),
    terminating: pod.metadata.deletionTimestamp !== undefined,
    assumed,
    ports: podHostPorts(pod),
    antiAffinity: anti.map((t) => compilePodTerm(t, namespace)),
  };
}

function splitPort(p: string): [string, string, string] {
  const a = p.indexOf('/');
  const b = p.indexOf('/', a + 1);
  return [p.slice(0, a), p.slice(a + 1, b), p.slice(b + 1)];
}

function increment(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function decrement(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

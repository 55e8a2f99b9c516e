/**
 * The DaemonSet controller's decisions, pure, after Kubernetes' daemon controller: one pod per
 * eligible node (`node-eligibility.ts`), placed by setting `spec.nodeName` (no scheduler
 * involved); failed pods replaced (with a per-node backoff), pods on nodes that no longer
 * qualify removed, extra pods on a node removed; RollingUpdate bounded by maxUnavailable
 * (delete old, then the create step brings the new) or maxSurge (new first, old deleted once
 * the new is available); OnDelete leaves old pods until they are deleted; and the status
 * counters. The actor in `actors/controllers/daemonset.ts` carries the plan out.
 */

import { labelSelectorMatches } from '../labels.js';
import type { DaemonSet, DaemonSetStatus, IntOrString, Node, Pod } from '../objects.js';
import { daemonEligibility, withDaemonTolerations } from './node-eligibility.js';
import { controllerRef, isPodReady, podAvailability, podFromTemplate } from './pods.js';
import { selectorOf } from './replicaset.js';
import { revisionHashLabel } from './revisions.js';

/** Pods created or deleted by one pass at most (Kubernetes' BurstReplicas for DaemonSets). */
export const daemonSetBurstPodsMax = 250;
/** Backoff before a failed daemon pod on a node is deleted again: doubles from min to max. */
export const daemonFailedPodBackoffMsMin = 1_000;
export const daemonFailedPodBackoffMsMax = 15 * 60_000;

export type DaemonDeleteReason =
  /** Phase Failed: replaced (Kubernetes' FailedDaemonPod). */
  | 'failed'
  /** Phase Succeeded: a daemon must keep running, so it is replaced. */
  | 'succeeded'
  /** On a node it no longer belongs on (selector, affinity, NoExecute taint, node gone). */
  | 'misscheduled'
  /** More than one pod on a node. */
  | 'surplus'
  /** An old pod replaced by the rolling update. */
  | 'update';

export interface DaemonSetInput {
  ds: DaemonSet;
  nodes: readonly Node[];
  /** The namespace's pods owned by the DaemonSet or orphaned (claim candidates). */
  pods: readonly Pod[];
  /** The current revision's hash (`controller-revision-hash` of up-to-date pods). */
  hash: string;
  nowMs: number;
  /** Milliseconds left of the failed-pod backoff on `node` (0 when none). */
  failedBackoffMs?: (node: string) => number;
}

export interface DaemonSetPlan {
  adopt: Pod[];
  release: Pod[];
  /** Nodes to create a daemon pod on (each once). */
  create: string[];
  /** Pods to delete, each once. */
  delete: { pod: Pod; reason: DaemonDeleteReason }[];
  /** The hashes of the pods that remain (revisions still in use). */
  liveHashes: Set<string>;
  status: DaemonSetStatus;
  /** Look again then: a pod becomes available, a failed-pod backoff ends. */
  requeueAfterMs?: number;
}

/** A daemon pod of `ds` for `node` from its current template. */
export function daemonPod(ds: DaemonSet, node: string, hash: string): Pod {
  const pod = podFromTemplate(ds.spec.template, ds, { labels: { [revisionHashLabel]: hash } });
  pod.spec.nodeName = node;
  pod.spec.tolerations = withDaemonTolerations(ds.spec.template.spec.tolerations);
  return pod;
}

/** Kubernetes' GetScaledValueFromIntOrPercent with rounding up. */
export function scaledValue(value: IntOrString | undefined, total: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return value;
  const percent = /^(\d+)%$/.exec(value);
  if (percent !== null) return Math.ceil((Number(percent[1]) * total) / 100);
  const n = Number(value);
  return Number.isInteger(n) ? n : fallback;
}

/** Oldest first: bound before unbound, then creation time, then name (podByCreationTimestampAndPhase). */
export function compareDaemonPods(a: Pod, b: Pod): number {
  const boundA = a.spec.nodeName ? 0 : 1;
  const boundB = b.spec.nodeName ? 0 : 1;
  if (boundA !== boundB) return boundA - boundB;
  const ca = a.metadata.creationTimestamp ?? '';
  const cb = b.metadata.creationTimestamp ?? '';
  if (ca !== cb) return ca < cb ? -1 : 1;
  const na = a.metadata.name ?? '';
  const nb = b.metadata.name ?? '';
  return na < nb ? -1 : na > nb ? 1 : 0;
}

function isUpdated(pod: Pod, hash: string): boolean {
  return pod.metadata.labels?.[revisionHashLabel] === hash;
}

function isDeleting(pod: Pod): boolean {
  return pod.metadata.deletionTimestamp !== undefined;
}

/** The one up-to-date and the one old pod on a node; `ok` false when there are two of either. */
function updatedPodsOnNode(pods: readonly Pod[], hash: string): { newPod?: Pod; oldPod?: Pod; ok: boolean } {
  let newPod: Pod | undefined;
  let oldPod: Pod | undefined;
  for (const pod of pods) {
    if (isDeleting(pod)) continue;
    if (isUpdated(pod, hash)) {
      if (newPod !== undefined) return { ok: false };
      newPod = pod;
    } else {
      if (oldPod !== undefined) return { ok: false };
      oldPod = pod;
    }
  }
  return { ...(newPod ? { newPod } : {}), ...(oldPod ? { oldPod } : {}), ok: true };
}

interface Claim {
  adopt: Pod[];
  release: Pod[];
  owned: Pod[];
}

function claimPods(ds: DaemonSet, pods: readonly Pod[]): Claim {
  const uid = ds.metadata.uid;
  const selector = selectorOf(ds.spec.selector);
  const deleting = ds.metadata.deletionTimestamp !== undefined;
  const out: Claim = { adopt: [], release: [], owned: [] };
  for (const pod of pods) {
    const ref = controllerRef(pod);
    const matches = selector !== undefined && labelSelectorMatches(selector, pod.metadata.labels ?? {});
    if (ref !== undefined) {
      if (ref.uid !== uid) continue;
      if (matches) out.owned.push(pod);
      else if (!isDeleting(pod)) out.release.push(pod);
      continue;
    }
    if (matches && !deleting && !isDeleting(pod)) {
      out.adopt.push(pod);
      out.owned.push(pod);
    }
  }
  return out;
}

/** The decisions of one pass as they accumulate: creations, deletions (each pod once), the next look. */
class Decisions {
  readonly create: string[] = [];
  readonly deletions = new Map<string, { pod: Pod; reason: DaemonDeleteReason }>();
  soonestMs: number | undefined;

  del(pod: Pod, reason: DaemonDeleteReason): void {
    const key = pod.metadata.uid ?? pod.metadata.name ?? '';
    if (!this.deletions.has(key)) this.deletions.set(key, { pod, reason });
  }
  deleting(pod: Pod): boolean {
    return this.deletions.has(pod.metadata.uid ?? pod.metadata.name ?? '');
  }
  requeue(ms: number): void {
    if (ms > 0) this.soonestMs = this.soonestMs === undefined ? ms : Math.min(this.soonestMs, ms);
  }
}

/** Pods by node, oldest first; a pod both deleted and finished is gone as far as we care. */
function podsByNode(owned: readonly Pod[]): { byNode: Map<string, Pod[]>; unbound: Pod[] } {
  const byNode = new Map<string, Pod[]>();
  const unbound: Pod[] = [];
  for (const pod of owned) {
    const phase = pod.status?.phase;
    if (isDeleting(pod) && (phase === 'Succeeded' || phase === 'Failed')) continue;
    const node = pod.spec.nodeName;
    if (!node) {
      unbound.push(pod);
      continue;
    }
    const list = byNode.get(node) ?? [];
    list.push(pod);
    byNode.set(node, list);
  }
  for (const list of byNode.values()) list.sort(compareDaemonPods);
  return { byNode, unbound };
}

export function planDaemonSet(input: DaemonSetInput): DaemonSetPlan {
  const { ds, hash, nowMs } = input;
  const claim = claimPods(ds, input.pods);
  const deleting = ds.metadata.deletionTimestamp !== undefined;
  const { byNode, unbound } = podsByNode(claim.owned);
  const nodes = [...input.nodes].sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
  const d = new Decisions();
  const wanted = manageNodes(input, nodes, byNode, d);
  for (const pod of unbound) if (!isDeleting(pod)) d.del(pod, 'misscheduled');
  if (deleting) d.create.length = 0;

  // Rolling update over the nodes that want a pod or have one.
  if (ds.spec.updateStrategy?.type !== 'OnDelete' && !deleting) {
    const rolling = planRollingUpdate(ds, nodes, byNode, wanted, hash, nowMs);
    for (const pod of rolling.delete) d.del(pod, 'update');
    for (const name of rolling.create) if (!d.create.includes(name)) d.create.push(name);
    if (rolling.requeueAfterMs !== undefined) d.requeue(rolling.requeueAfterMs);
  }

  const status = daemonSetStatus(ds, nodes, byNode, wanted, hash, nowMs);
  if (status.requeueAfterMs !== undefined) d.requeue(status.requeueAfterMs);
  const liveHashes = new Set<string>();
  for (const pod of claim.owned) {
    const h = pod.metadata.labels?.[revisionHashLabel];
    if (h !== undefined && !d.deleting(pod)) liveHashes.add(h);
  }
  return {
    adopt: claim.adopt,
    release: claim.release,
    create: d.create.slice(0, daemonSetBurstPodsMax),
    delete: [...d.deletions.values()].slice(0, daemonSetBurstPodsMax),
    liveHashes,
    status: status.status,
    ...(d.soonestMs !== undefined ? { requeueAfterMs: d.soonestMs + 10 } : {}),
  };
}

/**
 * Kubernetes' manage step: the right number of pods on each node — one where it should run,
 * none where it may no longer stay (or on nodes that are gone), failed and succeeded ones
 * replaced, extras removed. Returns whether each node wants a daemon pod.
 */
function manageNodes(
  input: DaemonSetInput,
  nodes: readonly Node[],
  byNode: ReadonlyMap<string, Pod[]>,
  d: Decisions,
): Map<string, boolean> {
  const { ds } = input;
  const spec = {
    ...ds.spec.template.spec,
    tolerations: withDaemonTolerations(ds.spec.template.spec.tolerations),
  };
  const surgeAllowed = ds.spec.updateStrategy?.type !== 'OnDelete' && allowsSurge(ds);
  const wanted = new Map<string, boolean>();
  for (const node of nodes) {
    const name = node.metadata.name ?? '';
    const elig = daemonEligibility(spec, node);
    wanted.set(name, elig.shouldRun);
    const onNode = byNode.get(name) ?? [];
    if (elig.shouldRun && onNode.length === 0) d.create.push(name);
    else if (!elig.shouldContinueRunning) {
      for (const pod of onNode) if (!isDeleting(pod)) d.del(pod, 'misscheduled');
    } else {
      const running = replaceFinished(onNode, input.failedBackoffMs?.(name) ?? 0, d);
      if (running.length > 1) removeExtras(running, surgeAllowed, input, d);
    }
  }
  for (const [name, pods] of byNode) {
    if (wanted.has(name)) continue;
    for (const pod of pods) if (!isDeleting(pod)) d.del(pod, 'misscheduled');
  }
  return wanted;
}

/** Deletes failed (unless the node is in backoff) and succeeded pods; returns the others still running. */
function replaceFinished(onNode: readonly Pod[], backoffMs: number, d: Decisions): Pod[] {
  const running: Pod[] = [];
  for (const pod of onNode) {
    if (isDeleting(pod)) continue;
    const phase = pod.status?.phase;
    if (phase === 'Failed') {
      if (backoffMs > 0) d.requeue(backoffMs);
      else d.del(pod, 'failed');
    } else if (phase === 'Succeeded') {
      d.del(pod, 'succeeded');
    } else {
      running.push(pod);
    }
  }
  return running;
}

/**
 * More than one pod running on a node (oldest first). Without surge the oldest stays. With
 * surge two may share it: the oldest up-to-date one and the oldest old one, the old one only
 * while it is ready and the new one not yet available.
 */
function removeExtras(
  running: readonly Pod[],
  surgeAllowed: boolean,
  input: DaemonSetInput,
  d: Decisions,
): void {
  if (!surgeAllowed) {
    for (const pod of running.slice(1)) d.del(pod, 'surplus');
    return;
  }
  let oldestNew: Pod | undefined;
  let oldestOld: Pod | undefined;
  for (const pod of running) {
    if (isUpdated(pod, input.hash)) {
      if (oldestNew === undefined) {
        oldestNew = pod;
        continue;
      }
    } else if (oldestOld === undefined) {
      oldestOld = pod;
      continue;
    }
    d.del(pod, 'surplus');
  }
  if (oldestNew === undefined || oldestOld === undefined) return;
  const avail = podAvailability(oldestNew, input.ds.spec.minReadySeconds ?? 0, input.nowMs);
  if (!isPodReady(oldestOld) || avail.available) d.del(oldestOld, 'update');
  else d.requeue(avail.msUntil);
}

function allowsSurge(ds: DaemonSet): boolean {
  const s = ds.spec.updateStrategy;
  if (s?.type !== 'RollingUpdate') return false;
  const surge = s.rollingUpdate?.maxSurge;
  return surge !== undefined && surge !== 0 && surge !== '0%' && surge !== '0';
}

/** Kubernetes' rollingUpdate: which old pods go now and (with surge) which nodes get a new pod first. */
function planRollingUpdate(
  ds: DaemonSet,
  nodes: readonly Node[],
  byNode: ReadonlyMap<string, Pod[]>,
  wanted: ReadonlyMap<string, boolean>,
  hash: string,
  nowMs: number,
): { delete: Pod[]; create: string[]; requeueAfterMs?: number } {
  const desired = [...wanted.values()].filter(Boolean).length;
  const strategy = ds.spec.updateStrategy;
  const rolling = strategy?.type === 'RollingUpdate' ? strategy.rollingUpdate : undefined;
  const maxSurge = scaledValue(rolling?.maxSurge, desired, 0);
  let maxUnavailable = scaledValue(rolling?.maxUnavailable, desired, 1);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  const minReady = ds.spec.minReadySeconds ?? 0;
  const names = new Set<string>();
  for (const node of nodes) if (wanted.get(node.metadata.name ?? '')) names.add(node.metadata.name ?? '');
  for (const name of byNode.keys()) names.add(name);
  const ordered = [...names].sort();
  let soonest: number | undefined;
  const note = (ms: number) => {
    if (ms > 0) soonest = soonest === undefined ? ms : Math.min(soonest, ms);
  };
  const done = (del: Pod[], create: string[]) => ({
    delete: del,
    create,
    ...(soonest !== undefined ? { requeueAfterMs: soonest } : {}),
  });

  if (maxSurge === 0) {
    let unavailable = 0;
    const replacements: Pod[] = [];
    const candidates: Pod[] = [];
    for (const name of ordered) {
      const { newPod, oldPod, ok } = updatedPodsOnNode(byNode.get(name) ?? [], hash);
      if (!ok) {
        unavailable += 1;
        continue;
      }
      if ((oldPod === undefined && newPod === undefined) || (oldPod !== undefined && newPod !== undefined)) {
        unavailable += 1;
      } else if (newPod !== undefined) {
        const a = podAvailability(newPod, minReady, nowMs);
        if (!a.available) {
          unavailable += 1;
          note(a.msUntil);
        }
      } else if (oldPod !== undefined) {
        const a = podAvailability(oldPod, minReady, nowMs);
        if (!a.available) replacements.push(oldPod);
        else if (unavailable < maxUnavailable) candidates.push(oldPod);
      }
    }
    const budget = Math.max(0, Math.min(maxUnavailable - unavailable, candidates.length));
    return done([...replacements, ...candidates.slice(0, budget)], []);
  }

  let surged = 0;
  const create: string[] = [];
  const del: Pod[] = [];
  for (const name of ordered) {
    const { newPod, oldPod, ok } = updatedPodsOnNode(byNode.get(name) ?? [], hash);
    if (!ok) {
      surged += 1;
      continue;
    }
    if (oldPod === undefined) continue;
    if (newPod === undefined) {
      if (!wanted.get(name)) continue;
      const a = podAvailability(oldPod, minReady, nowMs);
      if (!a.available) create.push(name);
      else if (surged < maxSurge) {
        surged += 1;
        create.push(name);
      }
      continue;
    }
    const a = podAvailability(newPod, minReady, nowMs);
    if (!a.available) {
      surged += 1;
      note(a.msUntil);
      continue;
    }
    del.push(oldPod);
  }
  return done(del, create);
}

function daemonSetStatus(
  ds: DaemonSet,
  nodes: readonly Node[],
  byNode: ReadonlyMap<string, Pod[]>,
  wanted: ReadonlyMap<string, boolean>,
  hash: string,
  nowMs: number,
): { status: DaemonSetStatus; requeueAfterMs?: number } {
  const minReady = ds.spec.minReadySeconds ?? 0;
  let desired = 0;
  let current = 0;
  let misscheduled = 0;
  let ready = 0;
  let available = 0;
  let updated = 0;
  let soonest: number | undefined;
  for (const node of nodes) {
    const name = node.metadata.name ?? '';
    const pods = byNode.get(name) ?? [];
    if (!wanted.get(name)) {
      if (pods.length > 0) misscheduled += 1;
      continue;
    }
    desired += 1;
    if (pods.length === 0) continue;
    current += 1;
    const pod = pods[0];
    if (isPodReady(pod)) {
      ready += 1;
      const a = podAvailability(pod, minReady, nowMs);
      if (a.available) available += 1;
      else if (a.msUntil > 0) soonest = soonest === undefined ? a.msUntil : Math.min(soonest, a.msUntil);
    }
    if (isUpdated(pod, hash)) updated += 1;
  }
  const status: DaemonSetStatus = {
    currentNumberScheduled: current,
    numberMisscheduled: misscheduled,
    desiredNumberScheduled: desired,
    numberReady: ready,
    ...(ds.metadata.generation !== undefined ? { observedGeneration: ds.metadata.generation } : {}),
    updatedNumberScheduled: updated,
    numberAvailable: available,
    numberUnavailable: Math.max(0, desired - available),
    ...(ds.status?.collisionCount !== undefined ? { collisionCount: ds.status.collisionCount } : {}),
    ...(ds.status?.conditions ? { conditions: ds.status.conditions } : {}),
  };
  return { status, ...(soonest !== undefined ? { requeueAfterMs: soonest } : {}) };
}

/** The next failed-pod backoff after `previousMs` (0: none before). */
export function nextFailedPodBackoffMs(previousMs: number): number {
  if (previousMs <= 0) return daemonFailedPodBackoffMsMin;
  return Math.min(previousMs * 2, daemonFailedPodBackoffMsMax);
}

/**
 * The StatefulSet controller's decisions, pure, after Kubernetes' StatefulSetControl: pods
 * `<set>-0..N-1` with stable identities (hostname = pod name, subdomain = serviceName, the
 * `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels); with
 * OrderedReady, created in ascending order each after the previous is Running and Ready (and
 * available for minReadySeconds), removed in descending order, and no progress at all while a
 * pod is unhealthy; with Parallel, all at once. Failed (or evicted) pods are deleted and
 * recreated under the same name. RollingUpdate replaces one pod at a time from the highest
 * ordinal down to `partition`; pods below the partition (and pods recreated there) keep the
 * current revision. OnDelete replaces nothing.
 */

import { labelSelectorMatches } from '../labels.js';
import type { ControllerRevision, Pod, StatefulSet, StatefulSetStatus } from '../objects.js';
import { controllerRef, isPodReady, podAvailability, podFromTemplate } from './pods.js';
import { selectorOf } from './replicaset.js';
import { revisionHashLabel, revisionTemplate } from './revisions.js';

export const statefulSetPodNameLabel = 'statefulset.kubernetes.io/pod-name';
export const podIndexLabel = 'apps.kubernetes.io/pod-index';

/** Pods created by one pass of a Parallel StatefulSet at most. */
export const statefulSetBurstPodsMax = 500;

const ordinalPattern = /^(.*)-(0|[1-9][0-9]*)$/;

/** The ordinal of a pod named `<set>-<n>` of `set`, else undefined. */
export function podOrdinal(setName: string, podName: string): number | undefined {
  const m = ordinalPattern.exec(podName);
  if (m === null || m[1] !== setName) return undefined;
  const n = Number(m[2]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The revision a pod was made from (a revision name, as Kubernetes labels StatefulSet pods). */
export function podRevision(pod: Pod): string | undefined {
  return pod.metadata.labels?.[revisionHashLabel];
}

function isTerminating(pod: Pod): boolean {
  return pod.metadata.deletionTimestamp !== undefined;
}

function isFinished(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Failed' || phase === 'Succeeded';
}

function isRunningAndReady(pod: Pod): boolean {
  return pod.status?.phase === 'Running' && isPodReady(pod);
}

function isHealthy(pod: Pod): boolean {
  return isRunningAndReady(pod) && !isTerminating(pod);
}

/** The pod `ordinal` of `set` made from `revision` (its template and name). */
export function statefulPod(set: StatefulSet, ordinal: number, revision: ControllerRevision): Pod {
  const template = revisionTemplate(revision) ?? set.spec.template;
  const name = `${set.metadata.name ?? ''}-${ordinal}`;
  const pod = podFromTemplate(template, set, {
    name,
    labels: {
      [statefulSetPodNameLabel]: name,
      [podIndexLabel]: String(ordinal),
      [revisionHashLabel]: revision.metadata.name ?? '',
    },
  });
  pod.spec.hostname = name;
  if (set.spec.serviceName) pod.spec.subdomain = set.spec.serviceName;
  else delete pod.spec.subdomain;
  return pod;
}

/** Labels a pod lacks for its identity (a user removed them): restore them. */
function identityLabelsMissing(
  set: StatefulSet,
  pod: Pod,
  ordinal: number,
): Record<string, string> | undefined {
  const name = pod.metadata.name ?? '';
  const labels = pod.metadata.labels ?? {};
  const want = { [statefulSetPodNameLabel]: name, [podIndexLabel]: String(ordinal) };
  const missing = Object.entries(want).filter(([k, v]) => labels[k] !== v);
  if (missing.length === 0 || set.metadata.name === undefined) return undefined;
  return { ...labels, ...want };
}

export type StatefulSetAction =
  | { kind: 'create'; ordinal: number; revision: 'current' | 'update' }
  | { kind: 'delete'; pod: Pod; reason: 'failed' | 'condemned' | 'update' }
  | { kind: 'relabel'; pod: Pod; labels: Record<string, string> };

export interface StatefulSetInput {
  set: StatefulSet;
  /** The namespace's pods owned by the set or orphaned (claim candidates). */
  pods: readonly Pod[];
  currentRevision: ControllerRevision;
  updateRevision: ControllerRevision;
  /** The set's collision count after revision handling. */
  collisionCount: number;
  nowMs: number;
}

export interface StatefulSetPlan {
  adopt: Pod[];
  release: Pod[];
  /** In order; an OrderedReady pass holds at most one create or delete. */
  actions: StatefulSetAction[];
  /** What no pod is waiting for, when something blocks progress (for logs and events). */
  waitingFor?: string;
  status: StatefulSetStatus;
  /** Revision names still used by pods (kept in history). */
  liveRevisions: Set<string>;
  requeueAfterMs?: number;
}

/** Which revision a missing pod `ordinal` is created at (Kubernetes' newVersionedStatefulSetPod). */
export function revisionForNewPod(set: StatefulSet, ordinal: number): 'current' | 'update' {
  const s = set.spec.updateStrategy;
  if (s?.type === 'RollingUpdate' && ordinal < (s.rollingUpdate?.partition ?? 0)) return 'current';
  return 'update';
}

interface Claim {
  adopt: Pod[];
  release: Pod[];
  owned: Pod[];
}

/** Claims pods by selector and name (`<set>-<n>`), as Kubernetes' getPodsForStatefulSet. */
function claimPods(set: StatefulSet, pods: readonly Pod[]): Claim {
  const uid = set.metadata.uid;
  const setName = set.metadata.name ?? '';
  const selector = selectorOf(set.spec.selector);
  const deleting = set.metadata.deletionTimestamp !== undefined;
  const out: Claim = { adopt: [], release: [], owned: [] };
  for (const pod of pods) {
    const ref = controllerRef(pod);
    const member = podOrdinal(setName, pod.metadata.name ?? '') !== undefined;
    const matches =
      member && selector !== undefined && labelSelectorMatches(selector, pod.metadata.labels ?? {});
    if (ref !== undefined) {
      if (ref.uid !== uid) continue;
      if (matches) out.owned.push(pod);
      else if (!isTerminating(pod)) out.release.push(pod);
      continue;
    }
    if (matches && !deleting && !isTerminating(pod)) {
      out.adopt.push(pod);
      out.owned.push(pod);
    }
  }
  return out;
}

export function planStatefulSet(input: StatefulSetInput): StatefulSetPlan {
  const { set, updateRevision, nowMs } = input;
  const setName = set.metadata.name ?? '';
  const claim = claimPods(set, input.pods);
  const replicaCount = set.spec.replicas ?? 1;
  const monotonic = (set.spec.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady';
  const minReady = set.spec.minReadySeconds ?? 0;
  const replicas: (Pod | undefined)[] = Array.from({ length: replicaCount }, () => undefined);
  const condemned: Pod[] = [];
  for (const pod of claim.owned) {
    const ord = podOrdinal(setName, pod.metadata.name ?? '');
    if (ord === undefined) continue;
    if (ord < replicaCount) replicas[ord] = pod;
    else condemned.push(pod);
  }
  condemned.sort(
    (a, b) =>
      (podOrdinal(setName, b.metadata.name ?? '') ?? 0) - (podOrdinal(setName, a.metadata.name ?? '') ?? 0),
  );
  const liveRevisions = new Set<string>();
  for (const pod of claim.owned) {
    const rev = podRevision(pod);
    if (rev !== undefined) liveRevisions.add(rev);
  }

  // The first unhealthy pod: a missing replica counts, then condemned from the highest ordinal.
  let firstUnhealthy: Pod | undefined;
  let firstUnhealthyOrdinal: number | undefined;
  for (let i = 0; i < replicas.length && firstUnhealthyOrdinal === undefined; i += 1) {
    const pod = replicas[i];
    if (pod === undefined || !isHealthy(pod)) {
      firstUnhealthyOrdinal = i;
      firstUnhealthy = pod;
    }
  }
  if (firstUnhealthyOrdinal === undefined) firstUnhealthy = condemned.find((p) => !isHealthy(p));

  const actions: StatefulSetAction[] = [];
  let waitingFor: string | undefined;
  let soonest: number | undefined;
  const requeue = (ms: number) => {
    if (ms > 0) soonest = soonest === undefined ? ms : Math.min(soonest, ms);
  };
  const status = statefulSetStatus(input, claim.owned, nowMs, requeue);
  const done = (): StatefulSetPlan => ({
    adopt: claim.adopt,
    release: claim.release,
    actions,
    ...(waitingFor !== undefined ? { waitingFor } : {}),
    status,
    liveRevisions,
    ...(soonest !== undefined ? { requeueAfterMs: soonest + 10 } : {}),
  });
  if (set.metadata.deletionTimestamp !== undefined) return done();

  let creates = 0;
  for (let ord = 0; ord < replicas.length; ord += 1) {
    const pod = replicas[ord];
    if (pod === undefined) {
      if (creates >= statefulSetBurstPodsMax) break;
      actions.push({ kind: 'create', ordinal: ord, revision: revisionForNewPod(set, ord) });
      creates += 1;
      if (monotonic) return done();
      continue;
    }
    const name = pod.metadata.name ?? '';
    if (isTerminating(pod)) {
      if (monotonic) {
        waitingFor = `pod ${name} to terminate`;
        return done();
      }
      continue;
    }
    if (isFinished(pod)) {
      // Deleted, then recreated under the same name once it is gone.
      actions.push({ kind: 'delete', pod, reason: 'failed' });
      if (monotonic) return done();
      continue;
    }
    if (!isRunningAndReady(pod)) {
      if (monotonic) {
        waitingFor = `pod ${name} to be Running and Ready`;
        return done();
      }
      continue;
    }
    const avail = podAvailability(pod, minReady, nowMs);
    if (!avail.available) {
      requeue(avail.msUntil);
      if (monotonic) {
        waitingFor = `pod ${name} to be available for ${minReady}s`;
        return done();
      }
      continue;
    }
    const labels = identityLabelsMissing(set, pod, ord);
    if (labels !== undefined) actions.push({ kind: 'relabel', pod, labels });
  }

  // Scale down from the highest ordinal.
  for (const pod of condemned) {
    const name = pod.metadata.name ?? '';
    if (isTerminating(pod)) {
      if (monotonic) {
        waitingFor = `pod ${name} to terminate`;
        return done();
      }
      continue;
    }
    if (monotonic && !isRunningAndReady(pod) && pod !== firstUnhealthy) {
      waitingFor = `pod ${firstUnhealthy?.metadata.name ?? '?'} to be healthy before deleting ${name}`;
      return done();
    }
    actions.push({ kind: 'delete', pod, reason: 'condemned' });
    if (monotonic) return done();
  }
  if (actions.some((a) => a.kind !== 'relabel')) return done();

  // Rolling update: one pod at a time, highest ordinal first, down to the partition.
  const strategy = set.spec.updateStrategy;
  if (strategy?.type === 'OnDelete') return done();
  const partition = strategy?.type === 'RollingUpdate' ? (strategy.rollingUpdate?.partition ?? 0) : 0;
  const updateName = updateRevision.metadata.name ?? '';
  for (let ord = replicas.length - 1; ord >= partition; ord -= 1) {
    const pod = replicas[ord];
    if (pod === undefined) return done();
    if (podRevision(pod) !== updateName && !isTerminating(pod)) {
      actions.push({ kind: 'delete', pod, reason: 'update' });
      return done();
    }
    if (!isHealthy(pod)) {
      waitingFor = `pod ${pod.metadata.name ?? ''} to be healthy during the update`;
      return done();
    }
  }
  return done();
}

/**
 * Kubernetes' computeReplicaStatus plus completeRollingUpdate: counts over the pods as they
 * are; when a RollingUpdate has every pod updated and ready, the update revision becomes the
 * current one.
 */
function statefulSetStatus(
  input: StatefulSetInput,
  pods: readonly Pod[],
  nowMs: number,
  requeue: (ms: number) => void,
): StatefulSetStatus {
  const { set, currentRevision, updateRevision } = input;
  const minReady = set.spec.minReadySeconds ?? 0;
  const currentName = currentRevision.metadata.name ?? '';
  const updateName = updateRevision.metadata.name ?? '';
  let replicas = 0;
  let ready = 0;
  let available = 0;
  let current = 0;
  let updated = 0;
  for (const pod of pods) {
    replicas += 1;
    if (isRunningAndReady(pod)) {
      ready += 1;
      const a = podAvailability(pod, minReady, nowMs);
      if (a.available) available += 1;
      else requeue(a.msUntil);
    }
    if (!isTerminating(pod)) {
      const rev = podRevision(pod);
      if (rev === currentName) current += 1;
      if (rev === updateName) updated += 1;
    }
  }
  const status: StatefulSetStatus = {
    replicas,
    readyReplicas: ready,
    currentReplicas: current,
    updatedReplicas: updated,
    availableReplicas: available,
    currentRevision: currentName,
    updateRevision: updateName,
    collisionCount: input.collisionCount,
    ...(set.metadata.generation !== undefined ? { observedGeneration: set.metadata.generation } : {}),
    ...(set.status?.conditions ? { conditions: set.status.conditions } : {}),
  };
  if (set.spec.updateStrategy?.type !== 'OnDelete' && updated === replicas && ready === replicas) {
    status.currentRevision = updateName;
    status.currentReplicas = updated;
  }
  return status;
}

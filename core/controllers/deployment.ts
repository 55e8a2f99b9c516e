/**
 * The Deployment controller's decisions, pure, with Kubernetes' semantics
 * (pkg/controller/deployment): which ReplicaSets a Deployment owns (adopting matching orphans,
 * releasing relabelled ones), which of them is the new one (its template equals the
 * Deployment's, ignoring `pod-template-hash`), revisions, rolling updates bounded by
 * maxSurge/maxUnavailable, Recreate, proportional scaling of a rollout in progress, history
 * cleanup, and the status with its Progressing and Available conditions.
 *
 * One call of {@link planDeployment} is one pass of Kubernetes' syncDeployment: it returns the
 * ReplicaSet writes of that pass (each ReplicaSet written at most once, creations first in the
 * order Kubernetes makes them), the Deployment's revision annotation and its status. The actor
 * in `actors/controllers/deployment.ts` carries the plan out with preconditions and comes back
 * when anything changes, so a rollout advances one pass at a time. Time is an argument.
 */

import { labelSelectorMatches } from '../labels.js';
import type {
  Condition,
  Deployment,
  DeploymentStatus,
  IntOrString,
  ObjectMeta,
  Pod,
  PodTemplateSpec,
  ReplicaSet,
} from '../objects.js';
import {
  canonicalJson,
  controllerRef,
  isPodTerminal,
  newControllerRef,
  rfc3339,
  templateHash,
} from './pods.js';
import { selectorOf } from './replicaset.js';

/** On ReplicaSets and their Deployment: the rollout number (decimal, may exceed 2^53). */
export const revisionAnnotation = 'deployment.kubernetes.io/revision';
/** On a ReplicaSet rolled back to: the revisions it had before, comma-separated. */
export const revisionHistoryAnnotation = 'deployment.kubernetes.io/revision-history';
/** On ReplicaSets: the Deployment's replicas when the ReplicaSet was last scaled. */
export const desiredReplicasAnnotation = 'deployment.kubernetes.io/desired-replicas';
/** On ReplicaSets: replicas + maxSurge when the ReplicaSet was last scaled (proportional scaling). */
export const maxReplicasAnnotation = 'deployment.kubernetes.io/max-replicas';
/** Label on a Deployment's ReplicaSets (selector, template) and pods: the template's hash. */
export const podTemplateHashLabel = 'pod-template-hash';
/** Why a revision was made; copied to ReplicaSets and shown by `rollout history`. */
export const changeCauseAnnotation = 'kubernetes.io/change-cause';
/** Set on the pod template by `rollout restart`. */
export const restartedAtAnnotation = 'kubectl.kubernetes.io/restartedAt';

/** Longest `revision-history` annotation kept (Kubernetes' maxRevHistoryLengthInChars). */
export const revisionHistoryCharsMax = 2000;
/** `progressDeadlineSeconds` meaning "no deadline" (Kubernetes: MaxInt32). */
export const progressDeadlineNone = 2147483647;
/** Shortest wait before re-checking a rollout that may have passed its deadline. */
export const progressRecheckMsMin = 1000;

/** Deployment annotations never copied to its ReplicaSets. */
const annotationsNotCopied: ReadonlySet<string> = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  'coxswain.io/last-applied-configuration',
  revisionAnnotation,
  revisionHistoryAnnotation,
  desiredReplicasAnnotation,
  maxReplicasAnnotation,
  'deprecated.deployment.rollback.to',
]);

export const DeploymentConditionType = {
  Progressing: 'Progressing',
  Available: 'Available',
  ReplicaFailure: 'ReplicaFailure',
} as const;

/** Condition reasons, as Kubernetes writes them. */
export const DeploymentReason = {
  NewReplicaSetCreated: 'NewReplicaSetCreated',
  FoundNewReplicaSet: 'FoundNewReplicaSet',
  ReplicaSetUpdated: 'ReplicaSetUpdated',
  NewReplicaSetAvailable: 'NewReplicaSetAvailable',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  ReplicaSetCreateError: 'ReplicaSetCreateError',
  DeploymentPaused: 'DeploymentPaused',
  DeploymentResumed: 'DeploymentResumed',
  MinimumReplicasAvailable: 'MinimumReplicasAvailable',
  MinimumReplicasUnavailable: 'MinimumReplicasUnavailable',
} as const;

/** A Deployment condition: a Condition plus when it was last updated (progress is measured from it). */
export type DeploymentCondition = Condition & { lastUpdateTime?: string };

// ---------------------------------------------------------------- revisions

/** The revision annotation: 0 when absent, undefined when not a decimal integer. */
export function revisionOf(obj: { metadata: ObjectMeta }): bigint | undefined {
  const text = obj.metadata.annotations?.[revisionAnnotation];
  if (text === undefined) return 0n;
  return /^-?\d{1,19}$/.test(text) ? BigInt(text) : undefined;
}

/** The highest parsable revision (0 when none). */
export function maxRevision(sets: readonly { metadata: ObjectMeta }[]): bigint {
  let max = 0n;
  for (const s of sets) {
    const r = revisionOf(s);
    if (r !== undefined && r > max) max = r;
  }
  return max;
}

// ---------------------------------------------------------------- surge and unavailability

/**
 * An int, or a percentage of `total` (`25%`), rounded up or down: Kubernetes'
 * GetScaledValueFromIntOrPercent. Malformed values (rejected by validation) count as 0.
 */
export function scaledValue(value: IntOrString | undefined, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : 0;
  if (typeof value !== 'string') return 0;
  const m = /^(\d+)%$/.exec(value);
  if (m === null) return 0;
  const scaled = Number(m[1]) * total;
  return roundUp ? Math.ceil(scaled / 100) : Math.floor(scaled / 100);
}

/**
 * maxSurge rounded up and maxUnavailable rounded down against `desired`; both 0 (possible
 * with percentages of small counts) makes maxUnavailable 1, so a rollout can always advance.
 */
export function resolveFenceposts(
  surge: IntOrString | undefined,
  unavailable: IntOrString | undefined,
  desired: number,
): { maxSurge: number; maxUnavailable: number } {
  const maxSurge = scaledValue(surge, desired, true);
  const maxUnavailable = scaledValue(unavailable, desired, false);
  return maxSurge === 0 && maxUnavailable === 0
    ? { maxSurge, maxUnavailable: 1 }
    : { maxSurge, maxUnavailable };
}

function replicasOf(d: Deployment): number {
  return d.spec.replicas ?? 1;
}

function rollingParams(d: Deployment) {
  const s = d.spec.strategy;
  if (s !== undefined && s.type !== 'RollingUpdate') return undefined;
  const r = s?.rollingUpdate ?? {};
  return resolveFenceposts(r.maxSurge ?? '25%', r.maxUnavailable ?? '25%', replicasOf(d));
}

export function isRollingUpdate(d: Deployment): boolean {
  return d.spec.strategy?.type !== 'Recreate';
}

/** Pods allowed above `replicas` during a rolling update (0 for Recreate). */
export function maxSurge(d: Deployment): number {
  return rollingParams(d)?.maxSurge ?? 0;
}

/** Pods allowed to be unavailable during a rolling update (0 for Recreate), at most `replicas`. */
export function maxUnavailable(d: Deployment): number {
  const p = rollingParams(d);
  const replicas = replicasOf(d);
  if (p === undefined || replicas === 0) return 0;
  return Math.min(p.maxUnavailable, replicas);
}

// ---------------------------------------------------------------- replica set helpers

const specReplicas = (rs: ReplicaSet): number => rs.spec.replicas ?? 1;
const statusReplicas = (rs: ReplicaSet): number => rs.status?.replicas ?? 0;
const availableReplicas = (rs: ReplicaSet): number => rs.status?.availableReplicas ?? 0;
const readyReplicas = (rs: ReplicaSet): number => rs.status?.readyReplicas ?? 0;
const sum = (sets: readonly ReplicaSet[], f: (rs: ReplicaSet) => number) =>
  sets.reduce((n, rs) => n + f(rs), 0);

/** Older first, then by name (Kubernetes' ReplicaSetsByCreationTimestamp). */
export function compareByCreation(a: ReplicaSet, b: ReplicaSet): number {
  const ca = a.metadata.creationTimestamp ?? '';
  const cb = b.metadata.creationTimestamp ?? '';
  if (ca !== cb) return ca < cb ? -1 : 1;
  const na = a.metadata.name ?? '';
  const nb = b.metadata.name ?? '';
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Larger first; equal sizes newer first (who gets scaled up first). */
function compareBySizeNewer(a: ReplicaSet, b: ReplicaSet): number {
  const d = specReplicas(b) - specReplicas(a);
  return d !== 0 ? d : compareByCreation(b, a);
}

/** Larger first; equal sizes older first (who gets scaled down first). */
function compareBySizeOlder(a: ReplicaSet, b: ReplicaSet): number {
  const d = specReplicas(b) - specReplicas(a);
  return d !== 0 ? d : compareByCreation(a, b);
}

/** Lower revision first; unparsable or equal revisions by creation. */
function compareByRevision(a: ReplicaSet, b: ReplicaSet): number {
  const ra = revisionOf(a);
  const rb = revisionOf(b);
  if (ra === undefined || rb === undefined || ra === rb) return compareByCreation(a, b);
  return ra < rb ? -1 : 1;
}

/** A template without the pod-template-hash label, in a canonical form for comparison. */
function templateKey(t: PodTemplateSpec): string {
  const labels = { ...(t.metadata?.labels ?? {}) };
  delete labels[podTemplateHashLabel];
  const meta: Record<string, unknown> = { ...(t.metadata ?? {}) };
  if (Object.keys(labels).length > 0) meta.labels = labels;
  else delete meta.labels;
  if (meta.annotations !== undefined && Object.keys(meta.annotations as object).length === 0)
    delete meta.annotations;
  return canonicalJson({ metadata: meta, spec: t.spec });
}

/** Templates equal apart from the pod-template-hash label (Kubernetes' EqualIgnoreHash). */
export function equalIgnoreHash(a: PodTemplateSpec, b: PodTemplateSpec): boolean {
  return templateKey(a) === templateKey(b);
}

/** The oldest ReplicaSet whose template is the Deployment's: the new one. */
export function findNewReplicaSet(d: Deployment, sets: readonly ReplicaSet[]): ReplicaSet | undefined {
  const key = templateKey(d.spec.template);
  return [...sets].sort(compareByCreation).find((rs) => templateKey(rs.spec.template) === key);
}

/** How many replicas the new ReplicaSet may have now (Kubernetes' NewRSNewReplicas). */
export function newReplicaSetReplicas(d: Deployment, all: readonly ReplicaSet[], newRS: ReplicaSet): number {
  const replicas = replicasOf(d);
  if (!isRollingUpdate(d)) return replicas;
  const current = sum(all, specReplicas);
  const maxTotal = replicas + maxSurge(d);
  if (current >= maxTotal) return specReplicas(newRS);
  const up = Math.min(maxTotal - current, replicas - specReplicas(newRS));
  return specReplicas(newRS) + up;
}

function intAnnotation(rs: ReplicaSet, key: string): number | undefined {
  const text = rs.metadata.annotations?.[key];
  if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
  return Number(text);
}

/** The new ReplicaSet is at full size and fully available for the current replica count. */
export function isSaturated(d: Deployment, rs: ReplicaSet | undefined): boolean {
  if (rs === undefined) return false;
  const replicas = replicasOf(d);
  return (
    specReplicas(rs) === replicas &&
    intAnnotation(rs, desiredReplicasAnnotation) === replicas &&
    availableReplicas(rs) === replicas
  );
}

/** Go's math.Round: halves away from zero. */
export function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/**
 * The share of a scaling step that `rs` would take: its size scaled from the total it was last
 * sized for (`max-replicas`, else the Deployment's status replicas) to replicas + maxSurge.
 */
function replicaSetFraction(rs: ReplicaSet, d: Deployment): number {
  const replicas = replicasOf(d);
  if (replicas === 0) return -specReplicas(rs);
  const deploymentReplicas = replicas + maxSurge(d);
  const annotated = intAnnotation(rs, maxReplicasAnnotation) ?? d.status?.replicas ?? 0;
  if (annotated === 0) return 0;
  return roundHalfAway((specReplicas(rs) * deploymentReplicas) / annotated) - specReplicas(rs);
}

/** Kubernetes' GetProportion: the fraction, bounded by what is left to add (or remove). */
function proportion(rs: ReplicaSet, d: Deployment, toAdd: number, added: number): number {
  if (specReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, d);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

/**
 * New sizes of the active ReplicaSets of a rolling Deployment whose replica count changed
 * mid-rollout: replicas + maxSurge split in proportion to their sizes, leftovers to the first
 * (largest; newest when scaling up, oldest when scaling down). Names in the order to write.
 */
export function proportionalSizes(d: Deployment, active: readonly ReplicaSet[]): [ReplicaSet, number][] {
  const replicas = replicasOf(d);
  const allowed = replicas > 0 ? replicas + maxSurge(d) : 0;
  const toAdd = allowed - sum(active, specReplicas);
  const sorted = [...active];
  if (toAdd > 0) sorted.sort(compareBySizeNewer);
  else if (toAdd < 0) sorted.sort(compareBySizeOlder);
  let added = 0;
  const sizes = sorted.map((rs): [ReplicaSet, number] => {
    if (toAdd === 0) return [rs, specReplicas(rs)];
    const p = proportion(rs, d, toAdd, added);
    added += p;
    return [rs, specReplicas(rs) + p];
  });
  if (sizes.length > 0 && toAdd !== 0) sizes[0][1] = Math.max(0, sizes[0][1] + toAdd - added);
  return sizes;
}

// ---------------------------------------------------------------- status and conditions

function conditionOf(status: DeploymentStatus | undefined, type: string): DeploymentCondition | undefined {
  return status?.conditions?.find((c) => c.type === type) as DeploymentCondition | undefined;
}

/** Kubernetes' SetDeploymentCondition: same status and reason changes nothing; the new one goes last. */
function setDeploymentCondition(status: DeploymentStatus, cond: DeploymentCondition): void {
  const current = conditionOf(status, cond.type);
  if (current !== undefined && current.status === cond.status && current.reason === cond.reason) return;
  const next =
    current !== undefined && current.status === cond.status && current.lastTransitionTime !== undefined
      ? { ...cond, lastTransitionTime: current.lastTransitionTime }
      : cond;
  status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== cond.type), next];
}

function removeDeploymentCondition(status: DeploymentStatus, type: string): void {
  if (status.conditions === undefined) return;
  const rest = status.conditions.filter((c) => c.type !== type);
  if (rest.length > 0) status.conditions = rest;
  else delete status.conditions;
}

function newCondition(
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
  now: string,
): DeploymentCondition {
  return { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: now };
}

export function hasProgressDeadline(d: Deployment): boolean {
  const s = d.spec.progressDeadlineSeconds;
  return s !== undefined && s !== progressDeadlineNone;
}

/** Every replica updated, available, none old left, and this generation observed. */
export function deploymentComplete(d: Deployment, status: DeploymentStatus | undefined): boolean {
  const replicas = replicasOf(d);
  return (
    (status?.updatedReplicas ?? 0) === replicas &&
    (status?.replicas ?? 0) === replicas &&
    (status?.availableReplicas ?? 0) === replicas &&
    (status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

/** Progress since `old`: more updated, ready or available replicas, or fewer old ones. */
export function deploymentProgressing(old: DeploymentStatus | undefined, next: DeploymentStatus): boolean {
  const oldOld = (old?.replicas ?? 0) - (old?.updatedReplicas ?? 0);
  const newOld = (next.replicas ?? 0) - (next.updatedReplicas ?? 0);
  return (
    (next.updatedReplicas ?? 0) > (old?.updatedReplicas ?? 0) ||
    newOld < oldOld ||
    (next.readyReplicas ?? 0) > (old?.readyReplicas ?? 0) ||
    (next.availableReplicas ?? 0) > (old?.availableReplicas ?? 0)
  );
}

/** The Progressing condition was last updated longer than progressDeadlineSeconds ago. */
export function deploymentTimedOut(d: Deployment, status: DeploymentStatus, nowMs: number): boolean {
  if (!hasProgressDeadline(d)) return false;
  const cond = conditionOf(status, DeploymentConditionType.Progressing);
  if (cond === undefined) return false;
  if (cond.reason === DeploymentReason.NewReplicaSetAvailable) return false;
  if (cond.reason === DeploymentReason.ProgressDeadlineExceeded) return true;
  const from = Date.parse(cond.lastUpdateTime ?? cond.lastTransitionTime ?? '');
  if (Number.isNaN(from)) return false;
  return from + (d.spec.progressDeadlineSeconds ?? 0) * 1000 < nowMs;
}

/**
 * Counters from the ReplicaSets (Kubernetes' calculateStatus): replicas, updated, ready,
 * available from their status; unavailable against their specs; the Available condition
 * against replicas - maxUnavailable. Conditions start from `base`.
 */
export function calculateStatus(
  d: Deployment,
  all: readonly ReplicaSet[],
  newRS: ReplicaSet | undefined,
  base: DeploymentStatus | undefined,
  nowMs: number,
): DeploymentStatus {
  const available = sum(all, availableReplicas);
  const unavailable = Math.max(0, sum(all, specReplicas) - available);
  const status: DeploymentStatus = {
    observedGeneration: d.metadata.generation ?? 0,
    replicas: sum(all, statusReplicas),
    updatedReplicas: newRS === undefined ? 0 : statusReplicas(newRS),
    readyReplicas: sum(all, readyReplicas),
    availableReplicas: available,
    unavailableReplicas: unavailable,
    ...(base?.conditions !== undefined ? { conditions: [...base.conditions] } : {}),
    ...(base?.collisionCount !== undefined ? { collisionCount: base.collisionCount } : {}),
  };
  const now = rfc3339(nowMs);
  if (available >= replicasOf(d) - maxUnavailable(d)) {
    setDeploymentCondition(
      status,
      newCondition(
        DeploymentConditionType.Available,
        'True',
        DeploymentReason.MinimumReplicasAvailable,
        'Deployment has minimum availability.',
        now,
      ),
    );
  } else {
    setDeploymentCondition(
      status,
      newCondition(
        DeploymentConditionType.Available,
        'False',
        DeploymentReason.MinimumReplicasUnavailable,
        'Deployment does not have minimum availability.',
        now,
      ),
    );
  }
  return status;
}

// ---------------------------------------------------------------- claiming

/**
 * Which candidates (the namespace's ReplicaSets controlled by `d`, plus orphans) `d` owns
 * after claiming: orphans matching its selector are adopted (not while `d` or they are being
 * deleted), owned ones no longer matching are released (not while `d` is being deleted).
 */
export function claimReplicaSets(
  d: Deployment,
  candidates: readonly ReplicaSet[],
): { owned: ReplicaSet[]; adopt: ReplicaSet[]; release: ReplicaSet[] } {
  const uid = d.metadata.uid;
  const selector = selectorOf(d.spec.selector);
  const deleting = d.metadata.deletionTimestamp !== undefined;
  const owned: ReplicaSet[] = [];
  const adopt: ReplicaSet[] = [];
  const release: ReplicaSet[] = [];
  for (const rs of candidates) {
    const ref = controllerRef(rs);
    const matches = selector !== undefined && labelSelectorMatches(selector, rs.metadata.labels ?? {});
    if (ref !== undefined) {
      if (ref.uid !== uid) continue;
      if (matches || deleting) owned.push(rs);
      else release.push(rs);
      continue;
    }
    if (matches && !deleting && rs.metadata.deletionTimestamp === undefined) adopt.push(rs);
  }
  return { owned, adopt, release };
}

// ---------------------------------------------------------------- the plan

export interface DeploymentInput {
  deployment: Deployment;
  /** The ReplicaSets `d` owns once claims are settled (see {@link claimReplicaSets}). */
  owned: readonly ReplicaSet[];
  /** Names of every ReplicaSet in the namespace: a new ReplicaSet's name may be taken. */
  takenNames: ReadonlySet<string>;
  /** Pods controlled by each owned ReplicaSet, by its uid (Recreate waits for old ones to go). */
  podsByReplicaSet: ReadonlyMap<string, readonly Pod[]>;
  nowMs: number;
}

/** Creation or update (a full object with its resourceVersion as precondition), or deletion. */
export type ReplicaSetWrite =
  | { readonly kind: 'create'; readonly rs: ReplicaSet }
  | {
      readonly kind: 'update';
      readonly rs: ReplicaSet;
      /** Set when spec.replicas changes (a ScalingReplicaSet event). */
      readonly scaledFrom?: number;
    }
  | { readonly kind: 'delete'; readonly rs: ReplicaSet };

export interface DeploymentPlan {
  /** In order; stop at the first failure (the next pass decides again). */
  writes: ReplicaSetWrite[];
  /** The Deployment's revision annotation, when it must change. */
  revision?: string;
  /** The status to write after the writes (unchanged when deep-equal to the current one). */
  status: DeploymentStatus;
  /** The new ReplicaSet's name is taken: collisionCount was bumped, and nothing else done. */
  collision?: boolean;
  /** Look again then (a progress deadline may pass). */
  requeueAfterMs?: number;
}

/** The event text of a scale, as Kubernetes writes it. */
export function scalingMessage(name: string, from: number, to: number): string {
  return `Scaled ${to > from ? 'up' : 'down'} replica set ${name} to ${to} from ${from}`;
}

/** One pass of the Deployment controller. `input.owned` must be the settled claims. */
export function planDeployment(input: DeploymentInput): DeploymentPlan {
  return new Pass(input).run();
}

interface Touched {
  rs: ReplicaSet;
  created: boolean;
  scaledFrom?: number;
}

/** One sync of Kubernetes' controller over working copies of the owned ReplicaSets. */
class Pass {
  private readonly d: Deployment;
  private readonly nowMs: number;
  private readonly now: string;
  private readonly sets: ReplicaSet[];
  private readonly touched = new Map<string, Touched>();
  private readonly deletes: ReplicaSet[] = [];
  /** The Deployment's status as this pass changed it before the final calculation. */
  private readonly base: DeploymentStatus;
  private revision: string | undefined;
  private collision = false;

  constructor(private readonly input: DeploymentInput) {
    this.d = input.deployment;
    this.nowMs = input.nowMs;
    this.now = rfc3339(input.nowMs);
    this.sets = input.owned.map((rs) => structuredClone(rs));
    this.base = structuredClone(this.d.status ?? {});
  }

  run(): DeploymentPlan {
    const d = this.d;
    if (selectorOf(d.spec.selector) === undefined) {
      return this.finish({ ...this.base, observedGeneration: d.metadata.generation ?? 0 });
    }
    if (d.metadata.deletionTimestamp !== undefined) return this.syncStatusOnly();
    this.checkPausedConditions();
    if (d.spec.paused === true || this.isScalingEvent()) return this.sync();
    return isRollingUpdate(d) ? this.rolloutRolling() : this.rolloutRecreate();
  }

  // -------------------------------------------------------------- writes

  private touch(rs: ReplicaSet, scaledFrom?: number): void {
    const t = this.touched.get(rs.metadata.name ?? '');
    if (t === undefined) {
      this.touched.set(rs.metadata.name ?? '', {
        rs,
        created: false,
        ...(scaledFrom !== undefined ? { scaledFrom } : {}),
      });
    } else if (scaledFrom !== undefined && t.scaledFrom === undefined && !t.created) {
      t.scaledFrom = scaledFrom;
    }
  }

  private finish(status: DeploymentStatus, requeueAfterMs?: number): DeploymentPlan {
    const writes: ReplicaSetWrite[] = [];
    for (const t of this.touched.values()) {
      if (t.created) writes.push({ kind: 'create', rs: t.rs });
      else
        writes.push({
          kind: 'update',
          rs: t.rs,
          ...(t.scaledFrom !== undefined && t.scaledFrom !== specReplicas(t.rs)
            ? { scaledFrom: t.scaledFrom }
            : {}),
        });
    }
    for (const rs of this.deletes) writes.push({ kind: 'delete', rs });
    const currentRevision = this.d.metadata.annotations?.[revisionAnnotation];
    return {
      writes,
      ...(this.revision !== undefined && this.revision !== currentRevision
        ? { revision: this.revision }
        : {}),
      status,
      ...(this.collision ? { collision: true } : {}),
      ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
    };
  }

  // -------------------------------------------------------------- new and old ReplicaSets

  /**
   * Kubernetes' getAllReplicaSetsAndSyncRevision: the new ReplicaSet (its annotations and
   * minReadySeconds brought up to date, its revision above every old one), created when asked
   * and missing; the Deployment's revision follows it.
   */
  private newAndOld(create: boolean): { newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] } {
    const d = this.d;
    const found = findNewReplicaSet(d, this.sets);
    const oldRSs = this.sets.filter((rs) => rs !== found);
    const newRevision = (maxRevision(oldRSs) + 1n).toString();
    if (found !== undefined) {
      const annotated = setNewReplicaSetAnnotations(d, found, newRevision, true);
      const minReady = d.spec.minReadySeconds ?? 0;
      const minReadyChanged = (found.spec.minReadySeconds ?? 0) !== minReady;
      if (minReadyChanged) found.spec.minReadySeconds = minReady;
      if (annotated || minReadyChanged) this.touch(found);
      this.revision = found.metadata.annotations?.[revisionAnnotation];
      if (
        hasProgressDeadline(d) &&
        conditionOf(this.base, DeploymentConditionType.Progressing) === undefined
      ) {
        setDeploymentCondition(
          this.base,
          newCondition(
            DeploymentConditionType.Progressing,
            'True',
            DeploymentReason.FoundNewReplicaSet,
            `Found new replica set "${found.metadata.name}"`,
            this.now,
          ),
        );
      }
      return { newRS: found, oldRSs };
    }
    if (!create) return { newRS: undefined, oldRSs };

    const collisionCount = this.base.collisionCount ?? 0;
    const hash = templateHash(d.spec.template, collisionCount);
    const name = `${d.metadata.name}-${hash}`;
    if (this.input.takenNames.has(name)) {
      // A ReplicaSet of that name with another template: hash again with the next count.
      this.base.collisionCount = collisionCount + 1;
      this.collision = true;
      return { newRS: undefined, oldRSs };
    }
    const rs = newReplicaSetFor(d, hash);
    rs.spec.replicas = newReplicaSetReplicas(d, [...oldRSs, rs], rs);
    setNewReplicaSetAnnotations(d, rs, newRevision, false);
    this.sets.push(rs);
    this.touched.set(name, { rs, created: true });
    this.revision = newRevision;
    if (hasProgressDeadline(d)) {
      setDeploymentCondition(
        this.base,
        newCondition(
          DeploymentConditionType.Progressing,
          'True',
          DeploymentReason.NewReplicaSetCreated,
          `Created new replica set "${name}"`,
          this.now,
        ),
      );
    }
    return { newRS: rs, oldRSs };
  }

  /** Sets the size (and the replicas annotations); true when the size changed. */
  private scaleReplicaSet(rs: ReplicaSet, size: number): boolean {
    const d = this.d;
    const replicas = replicasOf(d);
    const sizeChanged = specReplicas(rs) !== size;
    const annotationsChanged = setReplicasAnnotations(rs, replicas, replicas + maxSurge(d));
    if (!sizeChanged && !annotationsChanged) return false;
    const from = specReplicas(rs);
    rs.spec.replicas = size;
    this.touch(rs, sizeChanged ? from : undefined);
    return sizeChanged;
  }

  private scaleIfChanged(rs: ReplicaSet, size: number): boolean {
    return specReplicas(rs) === size ? false : this.scaleReplicaSet(rs, size);
  }

  // -------------------------------------------------------------- paused, scaling

  private checkPausedConditions(): void {
    const d = this.d;
    if (!hasProgressDeadline(d)) return;
    const cond = conditionOf(this.base, DeploymentConditionType.Progressing);
    if (cond?.reason === DeploymentReason.ProgressDeadlineExceeded) return;
    const pausedNoted = cond?.reason === DeploymentReason.DeploymentPaused;
    if (d.spec.paused === true && !pausedNoted) {
      setDeploymentCondition(
        this.base,
        newCondition(
          DeploymentConditionType.Progressing,
          'Unknown',
          DeploymentReason.DeploymentPaused,
          'Deployment is paused',
          this.now,
        ),
      );
    } else if (d.spec.paused !== true && pausedNoted) {
      setDeploymentCondition(
        this.base,
        newCondition(
          DeploymentConditionType.Progressing,
          'Unknown',
          DeploymentReason.DeploymentResumed,
          'Deployment is resumed',
          this.now,
        ),
      );
    }
  }

  /** An active ReplicaSet was last sized for another replica count: a scale, not a rollout. */
  private isScalingEvent(): boolean {
    const replicas = replicasOf(this.d);
    return this.sets.some((rs) => {
      if (specReplicas(rs) === 0) return false;
      const desired = intAnnotation(rs, desiredReplicasAnnotation);
      return desired !== undefined && desired !== replicas;
    });
  }

  /** Kubernetes' sync: scale (proportionally mid-rollout), clean up while paused, status. */
  private sync(): DeploymentPlan {
    const { newRS, oldRSs } = this.newAndOld(false);
    this.scale(newRS, oldRSs);
    if (this.d.spec.paused === true) this.cleanup(oldRSs);
    return this.finish(this.statusOf(newRS));
  }

  private syncStatusOnly(): DeploymentPlan {
    const { newRS } = this.newAndOld(false);
    return this.finish(this.statusOf(newRS));
  }

  private statusOf(newRS: ReplicaSet | undefined): DeploymentStatus {
    return calculateStatus(this.d, this.sets, newRS, this.base, this.nowMs);
  }

  private scale(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): void {
    const d = this.d;
    const replicas = replicasOf(d);
    const activeOrLatest = findActiveOrLatest(newRS, oldRSs);
    if (activeOrLatest !== undefined) {
      // Also refreshes its replicas annotations, so a hand-scaled ReplicaSet does not look
      // like a scaling event forever.
      this.scaleReplicaSet(activeOrLatest, replicas);
      return;
    }
    if (newRS === undefined && oldRSs.length === 0) return;
    if (isSaturated(d, newRS)) {
      for (const rs of oldRSs.filter((r) => specReplicas(r) > 0)) this.scaleIfChanged(rs, 0);
      return;
    }
    if (!isRollingUpdate(d)) return;
    const active = [...oldRSs, ...(newRS ? [newRS] : [])].filter((rs) => specReplicas(rs) > 0);
    for (const [rs, size] of proportionalSizes(d, active)) this.scaleReplicaSet(rs, size);
  }

  /** Deletes the oldest inactive old ReplicaSets beyond revisionHistoryLimit. */
  private cleanup(oldRSs: ReplicaSet[]): void {
    const limit = this.d.spec.revisionHistoryLimit;
    if (limit === undefined) return;
    const alive = oldRSs.filter((rs) => rs.metadata.deletionTimestamp === undefined);
    const diff = alive.length - limit;
    if (diff <= 0) return;
    const byRevision = [...alive].sort(compareByRevision);
    for (const rs of byRevision.slice(0, diff)) {
      const synced = (rs.metadata.generation ?? 0) <= (rs.status?.observedGeneration ?? 0);
      if (statusReplicas(rs) !== 0 || specReplicas(rs) !== 0 || !synced) continue;
      if (this.touched.has(rs.metadata.name ?? '')) continue;
      this.deletes.push(rs);
    }
  }

  // -------------------------------------------------------------- rolling update

  private rolloutRolling(): DeploymentPlan {
    const { newRS, oldRSs } = this.newAndOld(true);
    if (newRS === undefined) return this.finish(this.base); // a name collision: next pass
    if (this.reconcileNewReplicaSet(newRS)) return this.syncRolloutStatus(newRS);
    if (this.reconcileOldReplicaSets(oldRSs, newRS)) return this.syncRolloutStatus(newRS);
    if (deploymentComplete(this.d, this.d.status)) this.cleanup(oldRSs);
    return this.syncRolloutStatus(newRS);
  }

  private reconcileNewReplicaSet(newRS: ReplicaSet): boolean {
    const replicas = replicasOf(this.d);
    if (specReplicas(newRS) === replicas) return false;
    if (specReplicas(newRS) > replicas) return this.scaleIfChanged(newRS, replicas);
    return this.scaleIfChanged(newRS, newReplicaSetReplicas(this.d, this.sets, newRS));
  }

  /**
   * Scales old ReplicaSets down as far as availability allows: first their unhealthy
   * replicas (which cost no availability), then healthy ones beyond replicas - maxUnavailable,
   * counting the new ReplicaSet's unavailable pods against the budget.
   */
  private reconcileOldReplicaSets(oldRSs: ReplicaSet[], newRS: ReplicaSet): boolean {
    const active = oldRSs.filter((rs) => specReplicas(rs) > 0);
    if (sum(active, specReplicas) === 0) return false;
    const allPods = sum(this.sets, specReplicas);
    const minAvailable = replicasOf(this.d) - maxUnavailable(this.d);
    const newUnavailable = specReplicas(newRS) - availableReplicas(newRS);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    const cleaned = this.cleanupUnhealthyReplicas(active, maxScaledDown);
    const scaledDown = this.scaleDownOldForRollingUpdate(active, minAvailable);
    return cleaned + scaledDown > 0;
  }

  private cleanupUnhealthyReplicas(oldRSs: ReplicaSet[], maxCleanup: number): number {
    let total = 0;
    for (const rs of [...oldRSs].sort(compareByCreation)) {
      if (total >= maxCleanup) break;
      const spec = specReplicas(rs);
      const unhealthy = spec - availableReplicas(rs);
      if (spec === 0 || unhealthy <= 0) continue;
      const down = Math.min(maxCleanup - total, unhealthy);
      this.scaleIfChanged(rs, spec - down);
      total += down;
    }
    return total;
  }

  private scaleDownOldForRollingUpdate(oldRSs: ReplicaSet[], minAvailable: number): number {
    const available = sum(this.sets, availableReplicas);
    if (available <= minAvailable) return 0;
    const budget = available - minAvailable;
    let total = 0;
    for (const rs of [...oldRSs].sort(compareByCreation)) {
      if (total >= budget) break;
      const spec = specReplicas(rs);
      if (spec === 0) continue;
      const down = Math.min(spec, budget - total);
      this.scaleIfChanged(rs, spec - down);
      total += down;
    }
    return total;
  }

  // -------------------------------------------------------------- recreate

  /** Old ReplicaSets to 0; once no old pod runs (even terminating), the new one to full size. */
  private rolloutRecreate(): DeploymentPlan {
    const first = this.newAndOld(false);
    let { newRS, oldRSs } = first;
    let scaledDown = false;
    for (const rs of oldRSs.filter((r) => specReplicas(r) > 0)) {
      if (this.scaleIfChanged(rs, 0)) scaledDown = true;
    }
    if (scaledDown || this.oldPodsRunning(newRS, oldRSs)) return this.syncRolloutStatus(newRS);
    if (newRS === undefined) {
      ({ newRS, oldRSs } = this.newAndOld(true));
      if (newRS === undefined) return this.finish(this.base);
    }
    this.scaleIfChanged(newRS, replicasOf(this.d));
    if (deploymentComplete(this.d, this.d.status)) this.cleanup(oldRSs);
    return this.syncRolloutStatus(newRS);
  }

  private oldPodsRunning(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): boolean {
    if (sum(oldRSs, statusReplicas) > 0) return true;
    for (const [uid, pods] of this.input.podsByReplicaSet) {
      if (newRS !== undefined && newRS.metadata.uid === uid) continue;
      if (pods.some((p) => !isPodTerminal(p))) return true;
    }
    return false;
  }

  // -------------------------------------------------------------- rollout status

  /** The status with progress estimated against the deadline (Kubernetes' syncRolloutStatus). */
  private syncRolloutStatus(newRS: ReplicaSet | undefined): DeploymentPlan {
    const d = this.d;
    const status = this.statusOf(newRS);
    if (!hasProgressDeadline(d)) removeDeploymentCondition(status, DeploymentConditionType.Progressing);
    const current = conditionOf(this.base, DeploymentConditionType.Progressing);
    const complete =
      status.replicas === status.updatedReplicas &&
      current?.reason === DeploymentReason.NewReplicaSetAvailable;
    if (hasProgressDeadline(d) && !complete) {
      const rsName = newRS?.metadata.name;
      if (deploymentComplete(d, status)) {
        setDeploymentCondition(
          status,
          newCondition(
            DeploymentConditionType.Progressing,
            'True',
            DeploymentReason.NewReplicaSetAvailable,
            rsName !== undefined
              ? `ReplicaSet "${rsName}" has successfully progressed.`
              : `Deployment "${d.metadata.name}" has successfully progressed.`,
            this.now,
          ),
        );
      } else if (deploymentProgressing(d.status, status)) {
        const cond = newCondition(
          DeploymentConditionType.Progressing,
          'True',
          DeploymentReason.ReplicaSetUpdated,
          rsName !== undefined
            ? `ReplicaSet "${rsName}" is progressing.`
            : `Deployment "${d.metadata.name}" is progressing.`,
          this.now,
        );
        // Progress refreshes lastUpdateTime even when the reason stays the same.
        if (current?.status === 'True' && current.lastTransitionTime !== undefined)
          cond.lastTransitionTime = current.lastTransitionTime;
        removeDeploymentCondition(status, DeploymentConditionType.Progressing);
        setDeploymentCondition(status, cond);
      } else if (deploymentTimedOut(d, status, this.nowMs)) {
        setDeploymentCondition(
          status,
          newCondition(
            DeploymentConditionType.Progressing,
            'False',
            DeploymentReason.ProgressDeadlineExceeded,
            rsName !== undefined
              ? `ReplicaSet "${rsName}" has timed out progressing.`
              : `Deployment "${d.metadata.name}" has timed out progressing.`,
            this.now,
          ),
        );
      }
    }
    const failure = replicaFailure(this.sets, newRS);
    if (failure !== undefined) setDeploymentCondition(status, failure);
    else removeDeploymentCondition(status, DeploymentConditionType.ReplicaFailure);
    return this.finish(status, this.progressRecheckMs(status));
  }

  /** When a rollout still in progress must be looked at again to see whether its deadline passed. */
  private progressRecheckMs(status: DeploymentStatus): number | undefined {
    const d = this.d;
    const cond = conditionOf(status, DeploymentConditionType.Progressing);
    if (!hasProgressDeadline(d) || cond === undefined) return undefined;
    if (deploymentComplete(d, status) || cond.reason === DeploymentReason.ProgressDeadlineExceeded)
      return undefined;
    const from = Date.parse(cond.lastUpdateTime ?? cond.lastTransitionTime ?? '');
    if (Number.isNaN(from)) return undefined;
    const after = from + (d.spec.progressDeadlineSeconds ?? 0) * 1000 - this.nowMs;
    return after < progressRecheckMsMin ? progressRecheckMsMin : after + progressRecheckMsMin;
  }
}

/** The ReplicaFailure condition of the new ReplicaSet, else of any other. */
function replicaFailure(
  sets: readonly ReplicaSet[],
  newRS: ReplicaSet | undefined,
): DeploymentCondition | undefined {
  const ordered = newRS !== undefined ? [newRS, ...sets.filter((rs) => rs !== newRS)] : sets;
  for (const rs of ordered) {
    const c = rs.status?.conditions?.find((x) => x.type === DeploymentConditionType.ReplicaFailure);
    if (c !== undefined) {
      return {
        type: DeploymentConditionType.ReplicaFailure,
        status: c.status,
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
        ...(c.message !== undefined ? { message: c.message } : {}),
        ...(c.lastTransitionTime !== undefined
          ? { lastTransitionTime: c.lastTransitionTime, lastUpdateTime: c.lastTransitionTime }
          : {}),
      };
    }
  }
  return undefined;
}

/** The only active ReplicaSet; with none active, the new one or else the newest old one. */
function findActiveOrLatest(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): ReplicaSet | undefined {
  if (newRS === undefined && oldRSs.length === 0) return undefined;
  const newestFirst = [...oldRSs].sort((a, b) => compareByCreation(b, a));
  const active = [...newestFirst, ...(newRS ? [newRS] : [])].filter((rs) => specReplicas(rs) > 0);
  if (active.length === 0) return newRS ?? newestFirst[0];
  return active.length === 1 ? active[0] : undefined;
}

/** Sets desired-replicas and max-replicas; true when either changed. */
function setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
  const a = { ...(rs.metadata.annotations ?? {}) };
  if (a[desiredReplicasAnnotation] === String(desired) && a[maxReplicasAnnotation] === String(max))
    return false;
  a[desiredReplicasAnnotation] = String(desired);
  a[maxReplicasAnnotation] = String(max);
  rs.metadata.annotations = a;
  return true;
}

/**
 * Kubernetes' SetNewReplicaSetAnnotations: copies the Deployment's annotations (but its own
 * bookkeeping), raises the revision to `newRevision` when lower (keeping the revisions it had
 * in revision-history: a rollback), and on creation the replicas annotations. True on change.
 */
function setNewReplicaSetAnnotations(
  d: Deployment,
  rs: ReplicaSet,
  newRevision: string,
  exists: boolean,
): boolean {
  const a = { ...(rs.metadata.annotations ?? {}) };
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (annotationsNotCopied.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  const oldText = a[revisionAnnotation];
  const oldRevision = revisionOf(rs);
  if (oldRevision === undefined) {
    rs.metadata.annotations = a;
    return changed;
  }
  const next = BigInt(newRevision);
  if (oldRevision < next) {
    a[revisionAnnotation] = newRevision;
    changed = true;
    if (oldText !== undefined) {
      const history = a[revisionHistoryAnnotation];
      a[revisionHistoryAnnotation] = appendRevisionHistory(history, oldText);
    }
  }
  rs.metadata.annotations = a;
  if (!exists) {
    const replicas = replicasOf(d);
    if (setReplicasAnnotations(rs, replicas, replicas + maxSurge(d))) changed = true;
  }
  return changed;
}

/** `history,revision`, dropping the oldest entries beyond {@link revisionHistoryCharsMax}. */
function appendRevisionHistory(history: string | undefined, revision: string): string {
  if (history === undefined || history === '') return revision;
  const parts = history.split(',');
  let total = history.length + revision.length + 1;
  let start = 0;
  while (total > revisionHistoryCharsMax && start < parts.length) {
    total -= parts[start].length + 1;
    start += 1;
  }
  return [...parts.slice(start), revision].join(',');
}

/** A new ReplicaSet for `d`'s template: `<name>-<hash>`, the hash label on selector, template and itself. */
function newReplicaSetFor(d: Deployment, hash: string): ReplicaSet {
  const template = structuredClone(d.spec.template);
  const labels = { ...(template.metadata?.labels ?? {}), [podTemplateHashLabel]: hash };
  template.metadata = { ...(template.metadata ?? {}), labels };
  const selector = structuredClone(d.spec.selector);
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [podTemplateHashLabel]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...labels },
      ownerReferences: [newControllerRef(d)],
    },
    spec: {
      replicas: 0,
      minReadySeconds: d.spec.minReadySeconds ?? 0,
      selector,
      template,
    },
  };
}

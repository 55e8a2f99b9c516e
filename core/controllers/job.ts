/**
 * The Job controller's decisions, pure, after Kubernetes' job controller with pod tracking
 * finalizers: every pod the Job creates carries `batch.kubernetes.io/job-tracking`; a pod that
 * finished (or was deleted before it succeeded) is first recorded in
 * `status.uncountedTerminatedPods`, then its finalizer goes, then it moves into
 * `succeeded`/`failed` — so each pod counts exactly once, even when it is deleted right after.
 * Failed pods stay (they are not deleted), as in Kubernetes.
 *
 * Decisions: how many pods run (`parallelism`, the remaining `completions`, a work queue when
 * `completions` is unset), which completion indexes they get (Indexed), when the Job fails
 * (`backoffLimit` counting failed pods, or container restarts under OnFailure; a podFailurePolicy
 * FailJob rule; `activeDeadlineSeconds`), when it completes, suspension, the exponential delay
 * before replacing failed pods, and the TTL after it finished. A Job ends in two steps, as
 * Kubernetes 1.31+: `FailureTarget`/`SuccessCriteriaMet` when decided, `Failed`/`Complete` once
 * no pod of it runs any more.
 */

import { labelSelectorMatches } from '../labels.js';
import type {
  Container,
  Job,
  JobCondition,
  JobStatus,
  Pod,
  PodFailurePolicyRule,
  PodTemplateSpec,
} from '../objects.js';
import {
  comparePodsForDeletion,
  controllerRef,
  isPodReady,
  isPodTerminal,
  podFromTemplate,
  podRestarts,
  rfc3339,
  setCondition,
} from './pods.js';
import { selectorOf } from './replicaset.js';

export const jobTrackingFinalizer = 'batch.kubernetes.io/job-tracking';
export const jobCompletionIndexAnnotation = 'batch.kubernetes.io/job-completion-index';
export const jobCompletionIndexEnv = 'JOB_COMPLETION_INDEX';

/** Pods created or deleted by one pass at most (Kubernetes' MaxPodCreateDeletePerSync). */
export const jobBurstPodsMax = 500;
/** Delay before replacing a failed pod: doubles per consecutive failure (Kubernetes' defaults). */
export const jobPodFailureBackoffMsDefault = 10_000;
export const jobPodFailureBackoffMsMax = 10 * 60_000;

export const JobConditionType = {
  Complete: 'Complete',
  Failed: 'Failed',
  FailureTarget: 'FailureTarget',
  SuccessCriteriaMet: 'SuccessCriteriaMet',
  Suspended: 'Suspended',
} as const;

export interface JobEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface JobInput {
  job: Job;
  /** The namespace's pods owned by the Job or orphaned (claim candidates). */
  pods: readonly Pod[];
  nowMs: number;
  podFailureBackoffMs?: { base: number; max: number };
}

export type JobDeleteReason = 'surplus' | 'suspended' | 'jobFinished' | 'duplicateIndex';

export interface JobPlan {
  adopt: Pod[];
  release: Pod[];
  /**
   * Written first when pods finished since the last pass: the status with them recorded in
   * `uncountedTerminatedPods` (and their indexes in `completedIndexes`), before any finalizer goes.
   */
  interimStatus?: JobStatus;
  /** Pods whose tracking finalizer goes next (counted, ignored, or about to be deleted). */
  untrack: Pod[];
  /** Active pods to delete (untracked first). */
  delete: { pod: Pod; reason: JobDeleteReason }[];
  /** Pods to create: one entry each, its completion index for Indexed Jobs. */
  create: (number | undefined)[];
  /** The status once the above is done (uncounted pods moved into the counters). */
  status: JobStatus;
  events: JobEvent[];
  /** The Job finished longer than `ttlSecondsAfterFinished` ago: delete it. */
  deleteJob: boolean;
  requeueAfterMs?: number;
}

// ---------------------------------------------------------------- small helpers

export function hasTrackingFinalizer(pod: Pod): boolean {
  return pod.metadata.finalizers?.includes(jobTrackingFinalizer) ?? false;
}

/** The completion index annotation of a pod, or undefined when absent or malformed. */
export function completionIndexOf(pod: Pod): number | undefined {
  const text = pod.metadata.annotations?.[jobCompletionIndexAnnotation];
  if (text === undefined || !/^(0|[1-9][0-9]*)$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `1,3-5,7` → {1,3,4,5,7}; indexes >= `limit` and malformed parts are dropped. */
export function parseIndexes(text: string | undefined, limit: number): Set<number> {
  const out = new Set<number>();
  if (!text) return out;
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) continue;
    const lo = Number(m[1]);
    const hi = Math.min(m[2] === undefined ? lo : Number(m[2]), limit - 1);
    for (let i = lo; i <= hi; i += 1) out.add(i);
  }
  return out;
}

/** {1,3,4,5,7} → `1,3-5,7`. */
export function formatIndexes(indexes: Iterable<number>): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j += 1;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function condition(job: Job, type: string): JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type);
}

function isTrue(job: Job, type: string): boolean {
  return condition(job, type)?.status === 'True';
}

/** Complete or Failed: nothing more happens to it but its TTL. */
export function isJobFinished(job: Job): boolean {
  return isTrue(job, JobConditionType.Complete) || isTrue(job, JobConditionType.Failed);
}

/** When the Job finished (ms), from its Complete or Failed condition. */
export function jobFinishedAtMs(job: Job): number | undefined {
  const c = [condition(job, JobConditionType.Complete), condition(job, JobConditionType.Failed)].find(
    (x) => x?.status === 'True',
  );
  if (c === undefined) return undefined;
  const text = c.lastTransitionTime ?? job.status?.completionTime;
  const t = text === undefined ? Number.NaN : Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

/** A pod's end: the latest container finish time, else its creation (ms; 0 when unknown). */
function podFinishedAtMs(pod: Pod): number {
  let latest = 0;
  for (const s of [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]) {
    const at = s.state?.terminated?.finishedAt;
    const t = at === undefined ? Number.NaN : Date.parse(at);
    if (!Number.isNaN(t)) latest = Math.max(latest, t);
  }
  if (latest > 0) return latest;
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(created) ? 0 : created;
}

// ---------------------------------------------------------------- pod failure policy

export interface PodFailureMatch {
  action: 'FailJob' | 'Ignore' | 'Count';
  /** For FailJob: Kubernetes' message. */
  message: string;
}

function exitCodeRuleMatches(rule: PodFailurePolicyRule, pod: Pod): string | undefined {
  const req = rule.onExitCodes;
  if (req === undefined) return undefined;
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  for (const s of statuses) {
    const code = s.state?.terminated?.exitCode;
    if (code === undefined || code === 0) continue;
    if (req.containerName !== undefined && req.containerName !== s.name) continue;
    const listed = req.values.includes(code);
    if (req.operator === 'In' ? listed : !listed) {
      return `Container ${s.name} for pod ${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''} failed with exit code ${code}`;
    }
  }
  return undefined;
}

function conditionRuleMatches(rule: PodFailurePolicyRule, pod: Pod): string | undefined {
  for (const pattern of rule.onPodConditions ?? []) {
    const c = pod.status?.conditions?.find((x) => x.type === pattern.type);
    if (c !== undefined && c.status === (pattern.status ?? 'True')) {
      return `Pod ${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''} has condition ${pattern.type}`;
    }
  }
  return undefined;
}

/** Kubernetes' matchPodFailurePolicy: the first matching rule decides; no match counts the failure. */
export function matchPodFailurePolicy(job: Job, pod: Pod): PodFailureMatch {
  const rules = job.spec.podFailurePolicy?.rules ?? [];
  for (let i = 0; i < rules.length; i += 1) {
    const rule = rules[i];
    const what = exitCodeRuleMatches(rule, pod) ?? conditionRuleMatches(rule, pod);
    if (what === undefined) continue;
    return { action: rule.action, message: `${what} matching ${rule.action} rule at index ${i}` };
  }
  return { action: 'Count', message: '' };
}

// ---------------------------------------------------------------- pods

/** A pod of `job` (with the tracking finalizer), for completion index `index` when Indexed. */
export function jobPod(job: Job, index: number | undefined): Pod {
  const name = job.metadata.name ?? '';
  const template: PodTemplateSpec = job.spec.template;
  const indexed = index !== undefined;
  const pod = podFromTemplate(template, job, {
    generateName: indexed ? `${name}-${index}-` : `${name}-`,
    ...(indexed
      ? {
          annotations: { [jobCompletionIndexAnnotation]: String(index) },
          labels: { [jobCompletionIndexAnnotation]: String(index) },
        }
      : {}),
  });
  pod.metadata.finalizers = [...(pod.metadata.finalizers ?? []), jobTrackingFinalizer];
  if (indexed) {
    if (!pod.spec.hostname) pod.spec.hostname = `${name}-${index}`;
    const withIndex = (c: Container): Container =>
      c.env?.some((e) => e.name === jobCompletionIndexEnv)
        ? c
        : {
            ...c,
            env: [
              ...(c.env ?? []),
              {
                name: jobCompletionIndexEnv,
                valueFrom: {
                  fieldRef: { fieldPath: `metadata.annotations['${jobCompletionIndexAnnotation}']` },
                },
              },
            ],
          };
    pod.spec.containers = pod.spec.containers.map(withIndex);
    if (pod.spec.initContainers) pod.spec.initContainers = pod.spec.initContainers.map(withIndex);
  }
  return pod;
}

interface Claim {
  adopt: Pod[];
  release: Pod[];
  owned: Pod[];
}

function claimPods(job: Job, pods: readonly Pod[]): Claim {
  const uid = job.metadata.uid;
  const selector = selectorOf(job.spec.selector);
  const closed = job.metadata.deletionTimestamp !== undefined || isJobFinished(job);
  const out: Claim = { adopt: [], release: [], owned: [] };
  for (const pod of pods) {
    const ref = controllerRef(pod);
    const matches = selector !== undefined && labelSelectorMatches(selector, pod.metadata.labels ?? {});
    if (ref !== undefined) {
      if (ref.uid !== uid) continue;
      if (matches) out.owned.push(pod);
      else out.release.push(pod);
      continue;
    }
    if (matches && !closed && pod.metadata.deletionTimestamp === undefined) {
      out.adopt.push(pod);
      out.owned.push(pod);
    }
  }
  return out;
}

/** Neither finished nor being deleted. */
function isActive(pod: Pod): boolean {
  return !isPodTerminal(pod) && pod.metadata.deletionTimestamp === undefined;
}

/** Counted as a failure: phase Failed, or deleted before it succeeded. */
function isFailed(pod: Pod): boolean {
  const phase = pod.status?.phase;
  if (phase === 'Failed') return true;
  return pod.metadata.deletionTimestamp !== undefined && phase !== 'Succeeded';
}

/**
 * Delay before the next pod after consecutive failures: `base * 2^(n-1)` from the last failure,
 * capped at `max`, where n counts the failed pods that finished after the last success.
 */
function backoffRemainingMs(pods: readonly Pod[], nowMs: number, base: number, max: number): number {
  let lastSuccess = 0;
  for (const p of pods)
    if (p.status?.phase === 'Succeeded') lastSuccess = Math.max(lastSuccess, podFinishedAtMs(p));
  let failures = 0;
  let lastFailure = 0;
  for (const p of pods) {
    if (p.status?.phase !== 'Failed') continue;
    const at = podFinishedAtMs(p);
    if (at < lastSuccess) continue;
    failures += 1;
    lastFailure = Math.max(lastFailure, at);
  }
  if (failures === 0) return 0;
  const delay = Math.min(base * 2 ** Math.min(failures - 1, 30), max);
  return Math.max(0, lastFailure + delay - nowMs);
}

// ---------------------------------------------------------------- the plan

interface Tracking {
  /** New successes to record (Indexed: only a first success of a valid index). */
  newSucceeded: Pod[];
  /** New counted failures. */
  newFailed: Pod[];
  /** Pods whose finalizer goes without being counted (ignored failures, duplicate indexes). */
  uncountable: Pod[];
  /** A FailJob rule matched: the message. */
  failJob?: string;
  succeededIndexes: Set<number>;
}

function trackFinished(job: Job, owned: readonly Pod[], completions: number): Tracking {
  const indexed = job.spec.completionMode === 'Indexed';
  const uncounted = job.status?.uncountedTerminatedPods ?? {};
  const seenSucceeded = new Set(uncounted.succeeded ?? []);
  const seenFailed = new Set(uncounted.failed ?? []);
  const succeededIndexes = indexed
    ? parseIndexes(job.status?.completedIndexes, completions)
    : new Set<number>();
  const out: Tracking = { newSucceeded: [], newFailed: [], uncountable: [], succeededIndexes };
  const ordered = [...owned].sort((a, b) => podFinishedAtMs(a) - podFinishedAtMs(b));
  for (const pod of ordered) {
    if (!hasTrackingFinalizer(pod)) continue;
    const uid = pod.metadata.uid ?? '';
    const index = indexed ? completionIndexOf(pod) : undefined;
    const validIndex = !indexed || (index !== undefined && index < completions);
    if (pod.status?.phase === 'Succeeded') {
      if (seenSucceeded.has(uid)) continue;
      if (indexed) {
        if (!validIndex || index === undefined || succeededIndexes.has(index)) {
          out.uncountable.push(pod);
          continue;
        }
        succeededIndexes.add(index);
      }
      out.newSucceeded.push(pod);
      continue;
    }
    if (!isFailed(pod) || seenFailed.has(uid)) continue;
    if (!validIndex) {
      out.uncountable.push(pod);
      continue;
    }
    const match =
      job.spec.podFailurePolicy !== undefined && pod.status?.phase === 'Failed'
        ? matchPodFailurePolicy(job, pod)
        : { action: 'Count' as const, message: '' };
    if (match.action === 'Ignore') {
      out.uncountable.push(pod);
      continue;
    }
    out.newFailed.push(pod);
    if (match.action === 'FailJob' && out.failJob === undefined) out.failJob = match.message;
  }
  return out;
}

/** The earliest `count` indexes in [0, completions) neither succeeded nor held by an active pod. */
function pendingIndexes(
  completions: number,
  succeeded: Set<number>,
  active: readonly Pod[],
  count: number,
): number[] {
  const taken = new Set<number>();
  for (const p of active) {
    const i = completionIndexOf(p);
    if (i !== undefined) taken.add(i);
  }
  const out: number[] = [];
  for (let i = 0; i < completions && out.length < count; i += 1) {
    if (!succeeded.has(i) && !taken.has(i)) out.push(i);
  }
  return out;
}

/** Indexed: active pods whose index is missing, out of range, already succeeded, or held twice. */
function duplicateIndexPods(active: readonly Pod[], succeeded: Set<number>, completions: number): Pod[] {
  const out: Pod[] = [];
  const holders = new Map<number, Pod[]>();
  for (const p of active) {
    const i = completionIndexOf(p);
    if (i === undefined || i >= completions || succeeded.has(i)) {
      out.push(p);
      continue;
    }
    holders.set(i, [...(holders.get(i) ?? []), p]);
  }
  for (const list of holders.values()) {
    if (list.length < 2) continue;
    // Keep the one furthest along (ready, running, older); the rest go.
    const sorted = [...list].sort(comparePodsForDeletion);
    out.push(...sorted.slice(0, -1));
  }
  return out;
}

function newCondition(type: string, reason: string, message: string, nowMs: number): JobCondition {
  const now = rfc3339(nowMs);
  return { type, status: 'True', reason, message, lastProbeTime: now, lastTransitionTime: now };
}

/** What one pass knows: the Job, its pods after claiming, and what finished since the last pass. */
interface JobPass {
  job: Job;
  owned: readonly Pod[];
  tracking: Tracking;
  nowMs: number;
  requeue: (ms: number) => void;
}

export function planJob(input: JobInput): JobPlan {
  const { job, nowMs } = input;
  const claim = claimPods(job, input.pods);
  const owned = claim.owned;
  let soonest: number | undefined;
  const requeue = (ms: number) => {
    if (ms > 0) soonest = soonest === undefined ? ms : Math.min(soonest, ms);
  };
  const plan: JobPlan = {
    adopt: claim.adopt,
    release: claim.release,
    untrack: [],
    delete: [],
    create: [],
    status: { ...(job.status ?? {}) },
    events: [],
    deleteJob: false,
  };
  if (job.metadata.deletionTimestamp !== undefined || isJobFinished(job)) {
    planClosedJob(plan, job, owned, nowMs, requeue);
  } else {
    const tracking = trackFinished(job, owned, job.spec.completions ?? 0);
    planRunningJob(plan, { job, owned, tracking, nowMs, requeue }, input.podFailureBackoffMs);
  }
  if (soonest !== undefined) plan.requeueAfterMs = soonest + 10;
  return plan;
}

/**
 * Being deleted: its pods are let go (the garbage collector takes them), nothing starts.
 * Finished: only stray finalizers and the TTL are left.
 */
function planClosedJob(
  plan: JobPlan,
  job: Job,
  owned: readonly Pod[],
  nowMs: number,
  requeue: (ms: number) => void,
): void {
  plan.untrack = owned.filter(hasTrackingFinalizer);
  const ttl = job.spec.ttlSecondsAfterFinished;
  const at = jobFinishedAtMs(job);
  if (job.metadata.deletionTimestamp !== undefined || ttl === undefined || at === undefined) return;
  const expires = at + ttl * 1000;
  if (nowMs >= expires) plan.deleteJob = true;
  else requeue(expires - nowMs);
}

/** The counts once everything seen so far is flushed. */
function countsOf(pass: JobPass): { succeeded: number; failed: number } {
  const prev = pass.job.status ?? {};
  const uncounted = prev.uncountedTerminatedPods ?? {};
  const t = pass.tracking;
  const succeeded =
    pass.job.spec.completionMode === 'Indexed'
      ? t.succeededIndexes.size
      : (prev.succeeded ?? 0) + (uncounted.succeeded?.length ?? 0) + t.newSucceeded.length;
  return { succeeded, failed: (prev.failed ?? 0) + (uncounted.failed?.length ?? 0) + t.newFailed.length };
}

/**
 * The Job's outcome once decided (the interim FailureTarget or SuccessCriteriaMet condition):
 * a FailJob rule, the backoff limit, the deadline (else a look at the deadline), or enough
 * successes. An outcome decided by an earlier pass stands.
 */
function decideOutcome(
  pass: JobPass,
  active: readonly Pod[],
  startTime: string | undefined,
): JobCondition | undefined {
  const { job, nowMs } = pass;
  for (const type of [JobConditionType.FailureTarget, JobConditionType.SuccessCriteriaMet]) {
    const earlier = condition(job, type);
    if (earlier?.status === 'True') return earlier;
  }
  const { succeeded, failed } = countsOf(pass);
  const backoffLimit = job.spec.backoffLimit ?? 6;
  const restarts =
    job.spec.template.spec.restartPolicy === 'OnFailure' ? active.reduce((n, p) => n + podRestarts(p), 0) : 0;
  const restartsExceed = backoffLimit === 0 ? restarts > 0 : restarts >= backoffLimit;
  const deadline = job.spec.activeDeadlineSeconds;
  const startedMs = startTime === undefined ? Number.NaN : Date.parse(startTime);
  const deadlineAt =
    deadline !== undefined && job.spec.suspend !== true && !Number.isNaN(startedMs)
      ? startedMs + deadline * 1000
      : undefined;
  const failure = (reason: string, message: string) =>
    newCondition(JobConditionType.FailureTarget, reason, message, nowMs);
  if (pass.tracking.failJob !== undefined) return failure('PodFailurePolicy', pass.tracking.failJob);
  if (failed > backoffLimit || restartsExceed)
    return failure('BackoffLimitExceeded', 'Job has reached the specified backoff limit');
  if (deadlineAt !== undefined && nowMs >= deadlineAt)
    return failure('DeadlineExceeded', 'Job was active longer than specified deadline');
  if (deadlineAt !== undefined) pass.requeue(deadlineAt - nowMs);
  // A work queue is done when one pod succeeded and the others finished; otherwise when
  // enough succeeded (pods still running then are removed).
  const completions = job.spec.completions;
  const complete =
    completions === undefined ? succeeded > 0 && active.length === 0 : succeeded >= completions;
  if (!complete) return undefined;
  return newCondition(
    JobConditionType.SuccessCriteriaMet,
    'CompletionsReached',
    'Reached expected number of succeeded pods',
    nowMs,
  );
}

function planRunningJob(plan: JobPlan, pass: JobPass, backoff: JobInput['podFailureBackoffMs']): void {
  const { job, owned, tracking, nowMs } = pass;
  const prev = job.status ?? {};
  const suspended = job.spec.suspend === true;
  let active = owned.filter(isActive);
  let conditions = prev.conditions;
  let startTime = prev.startTime ?? (suspended ? undefined : rfc3339(nowMs));

  const decided = decideOutcome(pass, active, startTime);
  const newlyFailedByJob: Pod[] = [];
  if (decided !== undefined) {
    if (condition(job, decided.type)?.status !== 'True') {
      conditions = setCondition(conditions, decided);
      if (decided.type === JobConditionType.FailureTarget)
        plan.events.push({ type: 'Warning', reason: decided.reason ?? '', message: decided.message ?? '' });
    }
    // Decided: every pod still running goes; when the Job failed, they count as failed, once:
    // a pod an earlier pass already recorded (its delete not applied yet) is not counted again.
    const uncounted = job.status?.uncountedTerminatedPods?.failed ?? [];
    const recorded = new Set(uncounted);
    for (const pod of active) {
      plan.delete.push({ pod, reason: 'jobFinished' });
      if (
        decided.type === JobConditionType.FailureTarget &&
        hasTrackingFinalizer(pod) &&
        !recorded.has(pod.metadata.uid ?? '')
      )
        newlyFailedByJob.push(pod);
    }
    active = [];
  } else if (suspended) {
    for (const pod of active) plan.delete.push({ pod, reason: 'suspended' });
    active = [];
    if (!isTrue(job, JobConditionType.Suspended)) {
      conditions = setCondition(
        conditions,
        newCondition(JobConditionType.Suspended, 'JobSuspended', 'Job suspended', nowMs),
      );
      plan.events.push({ type: 'Normal', reason: 'Suspended', message: 'Job suspended' });
    }
  } else {
    if (isTrue(job, JobConditionType.Suspended)) {
      conditions = setCondition(conditions, {
        ...newCondition(JobConditionType.Suspended, 'JobResumed', 'Job resumed', nowMs),
        status: 'False',
      });
      startTime = rfc3339(nowMs);
      plan.events.push({ type: 'Normal', reason: 'Resumed', message: 'Job resumed' });
    }
    const base = backoff?.base ?? jobPodFailureBackoffMsDefault;
    const max = backoff?.max ?? jobPodFailureBackoffMsMax;
    manage(
      plan,
      job,
      active,
      countsOf(pass).succeeded,
      tracking.succeededIndexes,
      owned,
      nowMs,
      base,
      max,
      pass.requeue,
    );
    active = active.filter((p) => !plan.delete.some((d) => d.pod === p));
  }

  recordFinished(plan, pass, newlyFailedByJob);
  const counts = countsOf(pass);
  const status: JobStatus = {
    ...prev,
    active: active.length + plan.create.length,
    ready: active.filter(isPodReady).length,
    succeeded: counts.succeeded,
    failed: counts.failed + newlyFailedByJob.length,
    ...(startTime !== undefined ? { startTime } : {}),
    ...(conditions !== undefined ? { conditions } : {}),
    ...completedIndexesOf(job, tracking),
  };
  delete status.uncountedTerminatedPods;
  if (startTime === undefined) delete status.startTime;
  if (decided !== undefined && nothingRuns(plan, owned)) finishJob(plan, status, decided, nowMs);
  plan.status = status;
}

/**
 * Tracking: the interim status recording what finished since the last pass (before any
 * finalizer goes), and the pods whose finalizer goes (counted, uncountable, or about to be
 * deleted).
 */
function recordFinished(plan: JobPlan, pass: JobPass, newlyFailedByJob: readonly Pod[]): void {
  const { job, owned, tracking } = pass;
  const prev = job.status ?? {};
  const uncounted = prev.uncountedTerminatedPods ?? {};
  const uidOf = (p: Pod) => p.metadata.uid ?? '';
  const newSucceeded = tracking.newSucceeded.map(uidOf);
  const newFailed = [...tracking.newFailed, ...newlyFailedByJob].map(uidOf);
  if (newSucceeded.length > 0 || newFailed.length > 0) {
    const succeeded = [...(uncounted.succeeded ?? []), ...newSucceeded];
    const failed = [...(uncounted.failed ?? []), ...newFailed];
    plan.interimStatus = {
      ...prev,
      uncountedTerminatedPods: {
        ...(succeeded.length > 0 ? { succeeded } : {}),
        ...(failed.length > 0 ? { failed } : {}),
      },
      ...completedIndexesOf(job, tracking),
    };
  }
  const inUncounted = new Set([...(uncounted.succeeded ?? []), ...(uncounted.failed ?? [])]);
  const untrack = new Map<string, Pod>();
  for (const pod of [
    ...tracking.newSucceeded,
    ...tracking.newFailed,
    ...tracking.uncountable,
    ...newlyFailedByJob,
    ...plan.delete.map((d) => d.pod),
    ...owned.filter((p) => inUncounted.has(uidOf(p))),
  ]) {
    if (hasTrackingFinalizer(pod)) untrack.set(uidOf(pod), pod);
  }
  plan.untrack = [...untrack.values()];
}

/** `status.completedIndexes` of an Indexed Job (absent while none completed). */
function completedIndexesOf(job: Job, tracking: Tracking): { completedIndexes?: string } {
  if (job.spec.completionMode !== 'Indexed' || tracking.succeededIndexes.size === 0) return {};
  return { completedIndexes: formatIndexes(tracking.succeededIndexes) };
}

/** No pod of the Job runs, is being stopped, is about to be deleted or created. */
function nothingRuns(plan: JobPlan, owned: readonly Pod[]): boolean {
  if (plan.delete.length > 0 || plan.create.length > 0) return false;
  return owned.every((p) => isPodTerminal(p));
}

/** The final condition (Failed or Complete, with the decided reason) once nothing runs. */
function finishJob(plan: JobPlan, status: JobStatus, decided: JobCondition, nowMs: number): void {
  const failed = decided.type === JobConditionType.FailureTarget;
  const final = newCondition(
    failed ? JobConditionType.Failed : JobConditionType.Complete,
    decided.reason ?? '',
    decided.message ?? '',
    nowMs,
  );
  if (!failed) {
    status.completionTime = rfc3339(nowMs);
    plan.events.push({ type: 'Normal', reason: 'Completed', message: 'Job completed' });
  }
  status.conditions = setCondition(status.conditions, final);
  status.active = 0;
  status.ready = 0;
}

/** Kubernetes' manageJob: the right number of active pods, at the right indexes, after the backoff. */
function manage(
  plan: JobPlan,
  job: Job,
  active: readonly Pod[],
  succeeded: number,
  succeededIndexes: Set<number>,
  owned: readonly Pod[],
  nowMs: number,
  base: number,
  max: number,
  requeue: (ms: number) => void,
): void {
  const parallelism = job.spec.parallelism ?? 1;
  const completions = job.spec.completions;
  const indexed = job.spec.completionMode === 'Indexed';
  let wantActive: number;
  if (completions === undefined) wantActive = succeeded > 0 ? active.length : parallelism;
  else {
    const done = indexed ? succeededIndexes.size : succeeded;
    wantActive = Math.max(0, Math.min(completions - done, parallelism));
  }
  const toDelete: { pod: Pod; reason: JobDeleteReason }[] = [];
  const duplicates = indexed ? duplicateIndexPods(active, succeededIndexes, completions ?? 0) : [];
  for (const pod of duplicates) toDelete.push({ pod, reason: 'duplicateIndex' });
  const left = active.filter((p) => !duplicates.includes(p));
  const surplus = left.length - wantActive;
  if (surplus > 0) {
    for (const pod of [...left].sort(comparePodsForDeletion).slice(0, surplus))
      toDelete.push({ pod, reason: 'surplus' });
  }
  if (toDelete.length > 0) {
    plan.delete.push(...toDelete.slice(0, jobBurstPodsMax));
    return;
  }
  if (active.length >= wantActive) return;
  const wait = backoffRemainingMs(owned, nowMs, base, max);
  if (wait > 0) {
    requeue(wait);
    return;
  }
  const diff = Math.min(wantActive - active.length, jobBurstPodsMax);
  if (indexed) {
    for (const i of pendingIndexes(completions ?? 0, succeededIndexes, active, diff)) plan.create.push(i);
  } else {
    for (let i = 0; i < diff; i += 1) plan.create.push(undefined);
  }
}

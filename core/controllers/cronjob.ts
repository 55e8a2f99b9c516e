/**
 * The CronJob controller's decisions, pure, after Kubernetes' CronJob controller (v2): at each
 * scheduled time (UTC) a Job named `<cronjob>-<scheduled minutes since the epoch>` — so one
 * scheduled time never makes two Jobs — unless suspended, too late for
 * `startingDeadlineSeconds`, or forbidden by the concurrency policy (Forbid skips while a Job
 * runs; Replace deletes the running ones first; Allow runs them side by side). Finished Jobs
 * beyond the success and failure history limits are deleted, oldest first. `status.active`
 * lists the CronJob's unfinished Jobs as the cache shows them (so a Job created just before a
 * crash is not forgotten), `lastScheduleTime` the latest scheduled time acted on and
 * `lastSuccessfulTime` the latest completion. Time is an argument.
 */

import { type CronSchedule, nextCronTime, parseCron } from '../cron.js';
import type { CronJob, CronJobStatus, Job, ObjectReference } from '../objects.js';
import { isJobFinished } from './job.js';
import { newControllerRef, rfc3339 } from './pods.js';

export const cronJobScheduledTimestampAnnotation = 'batch.kubernetes.io/cronjob-scheduled-timestamp';

/** Missed runs beyond which Kubernetes warns (TooManyMissedTimes) and starts only the latest. */
export const cronMissedRunsWarnMax = 100;
/** Fires counted one by one before the most recent one is looked for from near now instead. */
const cronScanStepsMax = cronMissedRunsWarnMax + 1;
/** Look-backs tried, in order, to find the most recent fire after many missed ones. */
const cronLookbacksMs = [3_600_000, 86_400_000, 32 * 86_400_000, 366 * 86_400_000, 5 * 366 * 86_400_000];

export interface CronEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** The Job name for a scheduled time: `<cronjob>-<minutes since the epoch>`. */
export function cronJobJobName(cronJob: CronJob, scheduledMs: number): string {
  return `${cronJob.metadata.name ?? ''}-${Math.floor(scheduledMs / 60_000)}`;
}

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

export interface ScheduleTimes {
  /** The latest fire time <= now after the earliest time considered, if any. */
  mostRecentMs?: number;
  /** Fire times missed since the earliest time considered (capped: more than `cronMissedRunsWarnMax`). */
  missed: number;
  /** The first fire time after now, if any within the cron search horizon. */
  nextMs?: number;
}

/**
 * Kubernetes' mostRecentScheduleTime: fire times in (earliest, now], where earliest is the last
 * scheduled time (else the creation time), moved up to `now - startingDeadlineSeconds`.
 */
export function scheduleTimes(cronJob: CronJob, schedule: CronSchedule, nowMs: number): ScheduleTimes {
  let earliest =
    parseTime(cronJob.status?.lastScheduleTime) ?? parseTime(cronJob.metadata.creationTimestamp) ?? nowMs;
  const deadline = cronJob.spec.startingDeadlineSeconds;
  if (deadline !== undefined) earliest = Math.max(earliest, nowMs - deadline * 1000);
  const nextMs = nextCronTime(schedule, nowMs);
  const base = nextMs !== undefined ? { nextMs } : {};
  let t = nextCronTime(schedule, earliest);
  let mostRecentMs: number | undefined;
  let missed = 0;
  while (t !== undefined && t <= nowMs && missed < cronScanStepsMax) {
    mostRecentMs = t;
    missed += 1;
    t = nextCronTime(schedule, t);
  }
  if (t === undefined || t > nowMs)
    return { ...base, missed, ...(mostRecentMs !== undefined ? { mostRecentMs } : {}) };
  // Many missed: find the latest fire from a point near now.
  for (const back of cronLookbacksMs) {
    const from = Math.max(earliest, nowMs - back);
    let u = nextCronTime(schedule, from);
    if (u === undefined || u > nowMs) continue;
    let last = u;
    while (u !== undefined && u <= nowMs) {
      last = u;
      u = nextCronTime(schedule, u);
    }
    return { ...base, missed, mostRecentMs: last };
  }
  return { ...base, missed, ...(mostRecentMs !== undefined ? { mostRecentMs } : {}) };
}

/** The Job of a CronJob for one scheduled time, from its job template. */
export function jobForSchedule(cronJob: CronJob, scheduledMs: number): Job {
  const tm = cronJob.spec.jobTemplate.metadata ?? {};
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: cronJobJobName(cronJob, scheduledMs),
      namespace: cronJob.metadata.namespace,
      ...(tm.labels ? { labels: { ...tm.labels } } : {}),
      annotations: { ...(tm.annotations ?? {}), [cronJobScheduledTimestampAnnotation]: rfc3339(scheduledMs) },
      ownerReferences: [newControllerRef(cronJob)],
    },
    spec: structuredClone(cronJob.spec.jobTemplate.spec),
  };
}

export function jobReference(job: Job): ObjectReference {
  return {
    apiVersion: job.apiVersion,
    kind: 'Job',
    namespace: job.metadata.namespace,
    name: job.metadata.name,
    uid: job.metadata.uid,
  };
}

function jobSucceeded(job: Job): boolean {
  return job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ?? false;
}

function jobStartMs(job: Job): number {
  return parseTime(job.status?.startTime) ?? parseTime(job.metadata.creationTimestamp) ?? 0;
}

export interface CronJobInput {
  cronJob: CronJob;
  /** The Jobs the CronJob controls. */
  jobs: readonly Job[];
  nowMs: number;
}

export interface CronJobPlan {
  /** Create this Job (its scheduled time in `status.lastScheduleTime`). */
  create?: Job;
  /** Jobs to delete: running ones under Replace (first), then history beyond the limits. */
  delete: { job: Job; reason: 'replaced' | 'history' }[];
  status: CronJobStatus;
  events: CronEvent[];
  requeueAfterMs?: number;
}

/** History beyond the limits: finished Jobs, oldest start first. */
function historyToDelete(cronJob: CronJob, finished: readonly Job[]): Job[] {
  const out: Job[] = [];
  const trim = (jobs: Job[], limit: number | undefined) => {
    if (limit === undefined) return;
    const sorted = [...jobs].sort((a, b) => jobStartMs(a) - jobStartMs(b));
    out.push(...sorted.slice(0, Math.max(0, sorted.length - limit)));
  };
  trim(
    finished.filter((j) => jobSucceeded(j)),
    cronJob.spec.successfulJobsHistoryLimit,
  );
  trim(
    finished.filter((j) => !jobSucceeded(j)),
    cronJob.spec.failedJobsHistoryLimit,
  );
  return out;
}

export function planCronJob(input: CronJobInput): CronJobPlan {
  const { cronJob, nowMs } = input;
  const events: CronEvent[] = [];
  const liveJobs = input.jobs.filter((j) => j.metadata.deletionTimestamp === undefined);
  const active = liveJobs.filter((j) => !isJobFinished(j));
  const finished = liveJobs.filter(isJobFinished);

  const wasActive = new Set((cronJob.status?.active ?? []).map((r) => r.uid));
  for (const job of finished) {
    if (!wasActive.has(job.metadata.uid)) continue;
    const cond = job.status?.conditions?.find(
      (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
    );
    events.push({
      type: 'Normal',
      reason: 'SawCompletedJob',
      message: `Saw completed job: ${job.metadata.name ?? ''}, status: ${cond?.type ?? 'Unknown'}`,
    });
  }
  let lastSuccessfulMs = parseTime(cronJob.status?.lastSuccessfulTime);
  for (const job of finished) {
    const t = jobSucceeded(job) ? parseTime(job.status?.completionTime) : undefined;
    if (t !== undefined && (lastSuccessfulMs === undefined || t > lastSuccessfulMs)) lastSuccessfulMs = t;
  }
  const deletions: CronJobPlan['delete'] = historyToDelete(cronJob, finished).map((job) => ({
    job,
    reason: 'history' as const,
  }));
  let lastScheduleMs = parseTime(cronJob.status?.lastScheduleTime);
  let create: Job | undefined;
  let running = active;
  let requeueAfterMs: number | undefined;

  const deleting = cronJob.metadata.deletionTimestamp !== undefined;
  if (!deleting && cronJob.spec.suspend !== true) {
    const schedule = parseCron(cronJob.spec.schedule);
    const times = scheduleTimes(cronJob, schedule, nowMs);
    if (times.nextMs !== undefined) requeueAfterMs = times.nextMs - nowMs + 100;
    if (times.missed > cronMissedRunsWarnMax) {
      events.push({
        type: 'Warning',
        reason: 'TooManyMissedTimes',
        message:
          'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew',
      });
    }
    const scheduled = times.mostRecentMs;
    const deadline = cronJob.spec.startingDeadlineSeconds;
    const name = scheduled === undefined ? undefined : cronJobJobName(cronJob, scheduled);
    if (scheduled === undefined || name === undefined) {
      // Nothing due.
    } else if (deadline !== undefined && scheduled + deadline * 1000 < nowMs) {
      events.push({
        type: 'Warning',
        reason: 'MissSchedule',
        message: `Missed scheduled time to start a job: ${rfc3339(scheduled)}`,
      });
    } else if (input.jobs.some((j) => j.metadata.name === name) || lastScheduleMs === scheduled) {
      // Already acted on (the Job exists, or it ran and was cleaned up).
      if (lastScheduleMs === undefined || scheduled > lastScheduleMs) lastScheduleMs = scheduled;
    } else if (cronJob.spec.concurrencyPolicy === 'Forbid' && active.length > 0) {
      events.push({
        type: 'Normal',
        reason: 'JobAlreadyActive',
        message: 'Not starting job because prior execution is running and concurrency policy is Forbid',
      });
    } else {
      if (cronJob.spec.concurrencyPolicy === 'Replace') {
        for (const job of active) deletions.unshift({ job, reason: 'replaced' });
        running = [];
      }
      create = jobForSchedule(cronJob, scheduled);
      lastScheduleMs = scheduled;
    }
  }

  const status: CronJobStatus = {
    ...(running.length > 0
      ? { active: [...running].sort((a, b) => jobStartMs(a) - jobStartMs(b)).map(jobReference) }
      : {}),
    ...(lastScheduleMs !== undefined ? { lastScheduleTime: rfc3339(lastScheduleMs) } : {}),
    ...(lastSuccessfulMs !== undefined ? { lastSuccessfulTime: rfc3339(lastSuccessfulMs) } : {}),
  };
  return {
    ...(create !== undefined ? { create } : {}),
    delete: deletions,
    status,
    events,
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  };
}

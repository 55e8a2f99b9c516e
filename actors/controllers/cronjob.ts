/**
 * The CronJob controller: creates a Job at each scheduled time (UTC) under the concurrency
 * policy, skips runs missed by more than `startingDeadlineSeconds`, honours `suspend`, trims the
 * finished Jobs to the history limits, and reports `status.active`, `lastScheduleTime` and
 * `lastSuccessfulTime`. Each CronJob is looked at again at its next scheduled time (the
 * controllers' clock). Decisions come from `core/controllers/cronjob.ts`.
 */

import { jobReference, planCronJob } from '../../core/controllers/cronjob.js';
import { controllerRef } from '../../core/controllers/pods.js';
import { CronError } from '../../core/cron.js';
import type { CronJob, Job } from '../../core/objects.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { deleteObject, errorText, keyOf, parseKey, writeStatus } from './workload.js';

export function cronJobController(): Controller {
  return {
    name: 'cronjob',
    watches: ['CronJob', 'Job'],
    *keysFor(change) {
      const obj = change.object;
      if (obj.kind === 'CronJob') {
        yield change.key;
        return;
      }
      if (obj.kind !== 'Job') return;
      const ns = obj.metadata.namespace ?? '';
      const ref = controllerRef(obj);
      if (ref?.kind === 'CronJob') yield `CronJob/${ns}/${ref.name}`;
      const prevRef = change.prev !== undefined ? controllerRef(change.prev) : undefined;
      if (prevRef?.kind === 'CronJob' && prevRef.uid !== ref?.uid) yield `CronJob/${ns}/${prevRef.name}`;
    },
    *initialKeys(cache) {
      for (const cj of cache.list('CronJob')) yield keyOf(cj);
    },
    reconcile: reconcileCronJob,
  };
}

async function reconcileCronJob(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const cronJob = ctx.cache.get<CronJob>('CronJob', namespace, name);
  if (cronJob === undefined) return undefined;
  const uid = cronJob.metadata.uid ?? '';
  const jobs = ctx.cache.dependents<Job>(uid, 'Job').filter((j) => controllerRef(j)?.uid === uid);
  let plan: ReturnType<typeof planCronJob>;
  try {
    plan = planCronJob({ cronJob, jobs, nowMs: ctx.nowMs() });
  } catch (err) {
    if (!(err instanceof CronError)) throw err;
    // Admission refuses bad schedules; one stored before that rule is reported, not retried.
    ctx.events.record(cronJob, 'Warning', 'InvalidSchedule', `invalid schedule: ${err.message}`);
    return undefined;
  }

  for (const { job, reason } of plan.delete) {
    if (await deleteObject(ctx, job, { propagationPolicy: 'Background' })) {
      ctx.events.record(cronJob, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata.name}`);
      if (reason === 'replaced') ctx.log(`cronjob ${namespace}/${name}: replaced job ${job.metadata.name}`);
    }
  }
  const status = { ...plan.status };
  if (plan.create !== undefined) {
    try {
      const job = (await ctx.api.create(plan.create)) as Job;
      ctx.events.record(cronJob, 'Normal', 'SuccessfulCreate', `Created job ${job.metadata.name}`);
      status.active = [...(status.active ?? []), jobReference(job)];
    } catch (err) {
      if (!(isApiError(err) && err.code === ApiErrorCode.AlreadyExists)) {
        ctx.events.record(cronJob, 'Warning', 'FailedCreate', `Error creating job: ${errorText(err)}`);
        throw err;
      }
      // Made by an earlier pass whose status write was lost: the next pass counts it.
    }
  }
  for (const e of plan.events) ctx.events.record(cronJob, e.type, e.reason, e.message);
  const latest = ctx.cache.get<CronJob>('CronJob', namespace, name);
  if (latest !== undefined && latest.metadata.uid === uid) await writeStatus(ctx, latest, status);
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

import { describe, expect, it } from 'vitest';
import { parseCron } from '../cron.js';
import type { CronJob, Job } from '../objects.js';
import { cronJobJobName, jobForSchedule, planCronJob, scheduleTimes } from './cronjob.js';
import { rfc3339 } from './pods.js';

const t = (iso: string) => Date.parse(iso);

function cronJob(spec: Partial<CronJob['spec']> = {}, status?: CronJob['status']): CronJob {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'nightly', namespace: 'ops', uid: 'cj-uid', creationTimestamp: '2025-01-01T00:00:30Z' },
    spec: {
      schedule: '*/5 * * * *',
      concurrencyPolicy: 'Allow',
      suspend: false,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
      jobTemplate: {
        metadata: { labels: { team: 'ops' }, annotations: { note: 'x' } },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } },
      },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

/** A Job of the CronJob for the run at `at`, running, complete or failed. */
function child(cj: CronJob, at: string, state: 'running' | 'complete' | 'failed' = 'running'): Job {
  const j = jobForSchedule(cj, t(at));
  j.metadata.uid = `uid-${at}`;
  j.metadata.creationTimestamp = at;
  j.status = { startTime: at };
  if (state === 'complete') {
    j.status.conditions = [{ type: 'Complete', status: 'True' }];
    j.status.completionTime = rfc3339(t(at) + 30_000);
  }
  if (state === 'failed') j.status.conditions = [{ type: 'Failed', status: 'True' }];
  return j;
}

describe('CronJob schedule times', () => {
  it('the most recent fire since the last schedule (or creation), the count missed, the next one', () => {
    const s = parseCron('*/5 * * * *');
    const cj = cronJob();
    expect(scheduleTimes(cj, s, t('2025-01-01T00:04:00Z'))).toEqual({
      missed: 0,
      nextMs: t('2025-01-01T00:05:00Z'),
    });
    expect(scheduleTimes(cj, s, t('2025-01-01T00:12:00Z'))).toEqual({
      mostRecentMs: t('2025-01-01T00:10:00Z'),
      missed: 2,
      nextMs: t('2025-01-01T00:15:00Z'),
    });
    const after = cronJob({}, { lastScheduleTime: '2025-01-01T00:10:00Z' });
    expect(scheduleTimes(after, s, t('2025-01-01T00:12:00Z')).mostRecentMs).toBeUndefined();
  });

  it('startingDeadlineSeconds narrows the window', () => {
    const s = parseCron('*/5 * * * *');
    const cj = cronJob({ startingDeadlineSeconds: 60 });
    expect(scheduleTimes(cj, s, t('2025-01-01T00:12:00Z')).mostRecentMs).toBeUndefined();
    expect(scheduleTimes(cj, s, t('2025-01-01T00:10:59Z')).mostRecentMs).toBe(t('2025-01-01T00:10:00Z'));
  });

  it('after very many misses it still finds the latest fire quickly', () => {
    const s = parseCron('* * * * *');
    const cj = cronJob({ schedule: '* * * * *' });
    const now = t('2026-01-01T00:00:30Z'); // a year of minutes missed
    const r = scheduleTimes(cj, s, now);
    expect(r.missed).toBeGreaterThan(100);
    expect(r.mostRecentMs).toBe(t('2026-01-01T00:00:00Z'));
  });
});

describe('planCronJob', () => {
  it('creates the Job for the scheduled time, named by minutes since the epoch, from the template', () => {
    const cj = cronJob();
    const p = planCronJob({ cronJob: cj, jobs: [], nowMs: t('2025-01-01T00:05:02Z') });
    const at = t('2025-01-01T00:05:00Z');
    expect(p.create?.metadata).toMatchObject({
      name: `nightly-${at / 60_000}`,
      namespace: 'ops',
      labels: { team: 'ops' },
      annotations: { note: 'x', 'batch.kubernetes.io/cronjob-scheduled-timestamp': '2025-01-01T00:05:00Z' },
      ownerReferences: [
        { kind: 'CronJob', name: 'nightly', uid: 'cj-uid', controller: true, blockOwnerDeletion: true },
      ],
    });
    expect(p.create?.spec).toEqual(cj.spec.jobTemplate.spec);
    expect(p.status.lastScheduleTime).toBe('2025-01-01T00:05:00Z');
    expect(p.requeueAfterMs).toBe(t('2025-01-01T00:10:00Z') - t('2025-01-01T00:05:02Z') + 100);
    expect(cronJobJobName(cj, at)).toBe(`nightly-${at / 60_000}`);
  });

  it('a run already made (its Job exists, or lastScheduleTime) is not made again', () => {
    const cj = cronJob();
    const existing = child(cj, '2025-01-01T00:05:00Z');
    expect(
      planCronJob({ cronJob: cj, jobs: [existing], nowMs: t('2025-01-01T00:06:00Z') }).create,
    ).toBeUndefined();
    const done = cronJob({}, { lastScheduleTime: '2025-01-01T00:05:00Z' });
    expect(planCronJob({ cronJob: done, jobs: [], nowMs: t('2025-01-01T00:06:00Z') }).create).toBeUndefined();
  });

  it('Forbid: no new Job while one runs (JobAlreadyActive); Replace: the running ones go first; Allow: side by side', () => {
    const running = (cj: CronJob) => child(cj, '2025-01-01T00:05:00Z');
    const nowMs = t('2025-01-01T00:10:01Z');
    const forbid = cronJob({ concurrencyPolicy: 'Forbid' }, { lastScheduleTime: '2025-01-01T00:05:00Z' });
    const f = planCronJob({ cronJob: forbid, jobs: [running(forbid)], nowMs });
    expect(f.create).toBeUndefined();
    expect(f.events.map((e) => e.reason)).toEqual(['JobAlreadyActive']);
    expect(f.status.lastScheduleTime).toBe('2025-01-01T00:05:00Z');
    const replace = cronJob({ concurrencyPolicy: 'Replace' }, { lastScheduleTime: '2025-01-01T00:05:00Z' });
    const r = planCronJob({ cronJob: replace, jobs: [running(replace)], nowMs });
    expect(r.delete.map((d) => [d.job.metadata.name, d.reason])).toEqual([
      [running(replace).metadata.name, 'replaced'],
    ]);
    expect(r.create).toBeDefined();
    expect(r.status.active).toBeUndefined();
    const allow = cronJob({}, { lastScheduleTime: '2025-01-01T00:05:00Z' });
    const a = planCronJob({ cronJob: allow, jobs: [running(allow)], nowMs });
    expect(a.create).toBeDefined();
    expect(a.delete).toEqual([]);
    expect(a.status.active?.map((x) => x.name)).toEqual([running(allow).metadata.name]);
  });

  it('suspend: no Job, status still kept', () => {
    const cj = cronJob({ suspend: true });
    const p = planCronJob({
      cronJob: cj,
      jobs: [child(cj, '2025-01-01T00:05:00Z')],
      nowMs: t('2025-01-01T00:10:01Z'),
    });
    expect(p.create).toBeUndefined();
    expect(p.status.active).toHaveLength(1);
    expect(p.requeueAfterMs).toBeUndefined();
  });

  it('too many missed runs: a warning, and only the latest runs', () => {
    const cj = cronJob({ schedule: '* * * * *' });
    const p = planCronJob({ cronJob: cj, jobs: [], nowMs: t('2025-01-01T05:00:10Z') });
    expect(p.events.map((e) => e.reason)).toEqual(['TooManyMissedTimes']);
    expect(p.create?.metadata.name).toBe(cronJobJobName(cj, t('2025-01-01T05:00:00Z')));
  });

  it('history: finished Jobs beyond the limits go, oldest first; lastSuccessfulTime; SawCompletedJob', () => {
    const cj = cronJob(
      { successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 },
      { lastScheduleTime: '2025-01-01T00:25:00Z', active: [{ name: 'x', uid: 'uid-2025-01-01T00:25:00Z' }] },
    );
    const jobs = [
      child(cj, '2025-01-01T00:05:00Z', 'complete'),
      child(cj, '2025-01-01T00:10:00Z', 'failed'),
      child(cj, '2025-01-01T00:15:00Z', 'complete'),
      child(cj, '2025-01-01T00:20:00Z', 'failed'),
      child(cj, '2025-01-01T00:25:00Z', 'complete'),
    ];
    const p = planCronJob({ cronJob: cj, jobs, nowMs: t('2025-01-01T00:26:00Z') });
    expect(p.delete.map((d) => d.job.metadata.uid).sort()).toEqual(
      ['uid-2025-01-01T00:05:00Z', 'uid-2025-01-01T00:10:00Z', 'uid-2025-01-01T00:15:00Z'].sort(),
    );
    expect(p.delete.every((d) => d.reason === 'history')).toBe(true);
    expect(p.status.lastSuccessfulTime).toBe('2025-01-01T00:25:30Z');
    expect(p.status.active).toBeUndefined();
    expect(p.events.map((e) => e.reason)).toEqual(['SawCompletedJob']);
  });

  it('a missed run later than startingDeadlineSeconds is not started', () => {
    const cj = cronJob({ startingDeadlineSeconds: 30 }, { lastScheduleTime: '2025-01-01T00:00:00Z' });
    const p = planCronJob({ cronJob: cj, jobs: [], nowMs: t('2025-01-01T00:05:45Z') });
    expect(p.create).toBeUndefined();
  });
});

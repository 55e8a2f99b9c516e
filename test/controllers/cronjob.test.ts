import { afterEach, describe, expect, it } from 'vitest';
import { cronJobController } from '../../actors/controllers/cronjob.js';
import { jobController } from '../../actors/controllers/job.js';
import type { CronJob, Event, Job } from '../../core/objects.js';
import type { ContainerSpec } from '../../node-agent/runtime.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

/**
 * The masters' clock runs at real speed from an offset the test moves forward (never back),
 * so a run due "at the next minute" is a second or two away instead of up to a minute.
 */
class TestClock {
  private offsetMs = 0;
  readonly now = () => Date.now() + this.offsetMs;
  /**
   * Jumps to `afterMs` past the next whole minute. Called before a cluster starts, so its
   * CronJobs are created early in a minute: a later jump to just before the next minute then
   * skips no scheduled time (a skipped one would be a missed run, started at once).
   */
  toEarlyInNextMinute(afterMs = 2_000): void {
    const now = this.now();
    this.offsetMs += Math.floor(now / 60_000) * 60_000 + 60_000 + afterMs - now;
  }
  /** Jumps to `leadMs` before the next whole minute (at least 100 ms ahead). */
  toJustBeforeNextMinute(leadMs = 1_500): number {
    const now = this.now();
    let target = Math.floor(now / 60_000) * 60_000 + 60_000 - leadMs;
    if (target <= now + 100) target += 60_000;
    this.offsetMs += target - now;
    return target + leadMs;
  }
}

const script = (spec: ContainerSpec) =>
  spec.env?.some((e) => e.name === 'BEHAVIOUR' && e.value === 'ok') ? { exitAfterMs: 100, exitCode: 0 } : {};

function cronJob(name: string, spec: Partial<CronJob['spec']> = {}, behaviour = 'run'): CronJob {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: 'default' },
    spec: {
      schedule: '* * * * *',
      jobTemplate: {
        metadata: { labels: { cron: name } },
        spec: {
          template: {
            metadata: { labels: { cron: name } },
            spec: {
              nodeName: 'n1',
              restartPolicy: 'Never',
              terminationGracePeriodSeconds: 1,
              containers: [
                { name: 'c', image: 'coxswain/busybox', env: [{ name: 'BEHAVIOUR', value: behaviour }] },
              ],
            },
          },
        },
      },
      ...spec,
    },
  };
}

const key = (name: string) => ({ kind: 'CronJob', namespace: 'default', name });

async function jobsOf(c: HollowCluster, name: string): Promise<Job[]> {
  return (await listOf<Job>(c.api, 'Job', 'default', `cron=${name}`))
    .filter((j) => !j.metadata.deletionTimestamp)
    .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
}

async function getCronJob(c: HollowCluster, name: string): Promise<CronJob> {
  return (await c.api.get(key(name))) as CronJob;
}

const jobName = (cj: string, ms: number) => `${cj}-${Math.floor(ms / 60_000)}`;
const finished = (j: Job) =>
  j.status?.conditions?.some((x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True');

describe('CronJob controller (in-process masters, hollow nodes, a movable clock)', {
  timeout: 120_000,
}, () => {
  let c: HollowCluster | undefined;
  const clock = new TestClock();
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  const start = async () => {
    clock.toEarlyInNextMinute();
    c = await startHollowCluster({
      nodes: [{ name: 'n1', script }],
      nowMs: clock.now,
      controllers: () => [cronJobController(), jobController({ podFailureBackoffMs: 100 })],
    });
    return c;
  };

  /** Waits for the run at `atMs` to exist, then returns the CronJob's Jobs. */
  const waitRun = async (cj: string, atMs: number, count: number) =>
    waitFor(`${cj}: run ${jobName(cj, atMs)} (${count} jobs)`, async () => {
      const jobs = await jobsOf(c!, cj);
      return jobs.some((j) => j.metadata.name === jobName(cj, atMs)) && jobs.length === count
        ? jobs
        : undefined;
    });

  it('item 24: Allow runs Jobs side by side; status tracks them; Jobs are named by scheduled minute', async () => {
    await start();
    await c!.api.create(cronJob('allow'));
    const t1 = clock.toJustBeforeNextMinute();
    const [first] = await waitRun('allow', t1, 1);
    expect(first.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'CronJob',
      name: 'allow',
      controller: true,
    });
    expect(first.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp']).toBe(
      `${new Date(t1).toISOString().slice(0, 19)}Z`,
    );
    const t2 = clock.toJustBeforeNextMinute();
    await waitRun('allow', t2, 2);
    const status = await waitFor('status with both active', async () => {
      const s = (await getCronJob(c!, 'allow')).status;
      return s?.active?.length === 2 ? s : undefined;
    });
    expect(status.lastScheduleTime).toBe(`${new Date(t2).toISOString().slice(0, 19)}Z`);
    expect(status.active?.map((r) => r.name).sort()).toEqual([jobName('allow', t1), jobName('allow', t2)]);
  });

  it('item 24: Forbid skips a run while the previous Job is active', async () => {
    await start();
    await c!.api.create(cronJob('forbid', { concurrencyPolicy: 'Forbid' }));
    const t1 = clock.toJustBeforeNextMinute();
    await waitRun('forbid', t1, 1);
    clock.toJustBeforeNextMinute();
    await waitFor('JobAlreadyActive', async () => {
      const events = (await listOf<Event>(c!.api, 'Event')).filter((e) => e.involvedObject.name === 'forbid');
      return events.some((e) => e.reason === 'JobAlreadyActive') ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await jobsOf(c!, 'forbid')).map((j) => j.metadata.name)).toEqual([jobName('forbid', t1)]);
  });

  it('item 24: Replace deletes the running Job and starts the new one', async () => {
    await start();
    await c!.api.create(cronJob('replace', { concurrencyPolicy: 'Replace' }));
    const t1 = clock.toJustBeforeNextMinute();
    await waitRun('replace', t1, 1);
    const t2 = clock.toJustBeforeNextMinute();
    const jobs = await waitRun('replace', t2, 1);
    expect(jobs.map((j) => j.metadata.name)).toEqual([jobName('replace', t2)]);
    const status = await waitFor('status', async () => {
      const s = (await getCronJob(c!, 'replace')).status;
      return s?.active?.length === 1 && s.active[0].name === jobName('replace', t2) ? s : undefined;
    });
    expect(status.lastScheduleTime).toBe(`${new Date(t2).toISOString().slice(0, 19)}Z`);
  });

  it('item 24: suspend stops new Jobs; on resume the missed run starts at once (as Kubernetes), then the next', async () => {
    await start();
    await c!.api.create(cronJob('paused', { suspend: true }));
    const t1 = clock.toJustBeforeNextMinute();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await jobsOf(c!, 'paused')).toHaveLength(0);
    await c!.api.patch(key('paused'), { spec: { suspend: false } });
    await waitRun('paused', t1, 1);
    const t2 = clock.toJustBeforeNextMinute();
    await waitRun('paused', t2, 2);
  });

  it('startingDeadlineSeconds: a run missed by more than the deadline is skipped', async () => {
    await start();
    await c!.api.create(cronJob('late', { suspend: true, startingDeadlineSeconds: 1 }));
    clock.toJustBeforeNextMinute();
    await new Promise((r) => setTimeout(r, 3_000));
    await c!.api.patch(key('late'), { spec: { suspend: false } });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await jobsOf(c!, 'late')).toHaveLength(0);
    const t2 = clock.toJustBeforeNextMinute();
    await waitRun('late', t2, 1);
  });

  it('keeps the history limits and reports lastSuccessfulTime', async () => {
    await start();
    await c!.api.create(cronJob('hist', { successfulJobsHistoryLimit: 1 }, 'ok'));
    let last = 0;
    for (let i = 1; i <= 3; i += 1) {
      last = clock.toJustBeforeNextMinute();
      await waitFor(`run ${i} complete`, async () => {
        const j = (await jobsOf(c!, 'hist')).find((x) => x.metadata.name === jobName('hist', last));
        return j && finished(j) ? true : undefined;
      });
    }
    const jobs = await waitFor('history trimmed to 1', async () => {
      const j = await jobsOf(c!, 'hist');
      return j.length === 1 ? j : undefined;
    });
    expect(jobs[0].metadata.name).toBe(jobName('hist', last));
    const status = await waitFor('lastSuccessfulTime', async () => {
      const s = (await getCronJob(c!, 'hist')).status;
      return s?.lastSuccessfulTime !== undefined && s.active === undefined ? s : undefined;
    });
    expect(Date.parse(status.lastSuccessfulTime!)).toBeGreaterThanOrEqual(last - 1_000);
  });

  it('refuses time zones other than UTC at admission', async () => {
    await start();
    await expect(c!.api.create(cronJob('tz', { timeZone: 'Europe/Paris' }))).rejects.toThrow(
      /cronjob\/tz: spec\.timeZone: unsupported value "Europe\/Paris"/,
    );
    await c!.api.create(cronJob('utc', { timeZone: 'Etc/UTC' }));
  });
});

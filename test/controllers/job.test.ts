import { afterEach, describe, expect, it } from 'vitest';
import { jobController } from '../../actors/controllers/job.js';
import type { Event, Job, Pod } from '../../core/objects.js';
import type { HollowBehaviour } from '../../node-agent/hollow-runtime.js';
import type { ContainerSpec } from '../../node-agent/runtime.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

/** Containers behave per their `BEHAVIOUR` env var: `ok`, `fail`, `fail-once`, `run`, `exit:<code>`. */
function script(spec: ContainerSpec): HollowBehaviour {
  const how = spec.env?.find((e) => e.name === 'BEHAVIOUR')?.value ?? 'run';
  const index = spec.env?.find((e) => e.name === 'JOB_COMPLETION_INDEX')?.value;
  if (index !== undefined) seenIndexes.push(index);
  switch (how) {
    case 'ok':
      return { exitAfterMs: 100, exitCode: 0 };
    case 'fail':
      return { exitAfterMs: 100, exitCode: 1 };
    case 'fail-once':
      return spec.restartCount === 0 ? { exitAfterMs: 100, exitCode: 1 } : { exitAfterMs: 100, exitCode: 0 };
    case 'index-1-exits-42':
      return index === '1' ? { exitAfterMs: 100, exitCode: 42 } : {};
    default:
      return {};
  }
}
const seenIndexes: string[] = [];

function job(
  name: string,
  spec: Partial<Job['spec']>,
  behaviour: string,
  restartPolicy: 'Never' | 'OnFailure' = 'Never',
): Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: {
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeName: 'n1',
          restartPolicy,
          terminationGracePeriodSeconds: 1,
          containers: [
            { name: 'work', image: 'coxswain/busybox', env: [{ name: 'BEHAVIOUR', value: behaviour }] },
          ],
        },
      },
      ...spec,
    },
  };
}

const key = (name: string) => ({ kind: 'Job', namespace: 'default', name });

async function getJob(c: HollowCluster, name: string): Promise<Job> {
  return (await c.api.get(key(name))) as Job;
}

async function podsOf(c: HollowCluster, name: string): Promise<Pod[]> {
  return listOf<Pod>(c.api, 'Pod', 'default', `batch.kubernetes.io/job-name=${name}`);
}

const cond = (j: Job, type: string) =>
  j.status?.conditions?.find((x) => x.type === type && x.status === 'True');

async function waitCondition(c: HollowCluster, name: string, type: string, timeoutMs = 30_000): Promise<Job> {
  return waitFor(
    `job ${name} ${type}`,
    async () => {
      const j = await getJob(c, name);
      return cond(j, type) ? j : undefined;
    },
    timeoutMs,
  );
}

/** Events are written asynchronously (a bounded, rate-limited queue): wait for one about `name`. */
async function waitForEvents(c: HollowCluster, name: string, match: (e: Event) => boolean): Promise<void> {
  await waitFor(`an event about ${name}`, async () => {
    const events = (await listOf<Event>(c.api, 'Event')).filter((e) => e.involvedObject.name === name);
    return events.some(match) ? true : undefined;
  });
}

const fast = () => [jobController({ podFailureBackoffMs: 100, podFailureBackoffMsMax: 400 })];

describe('Job controller (in-process masters, hollow nodes)', { timeout: 120_000 }, () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('generates the selector from the uid at create, and runs to completion with status and events', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    const created = (await c.api.create(job('pi', { completions: 3, parallelism: 2 }, 'ok'))) as Job;
    const uid = created.metadata.uid!;
    expect(created.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': uid } });
    expect(created.spec.template.metadata?.labels).toMatchObject({
      app: 'pi',
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': 'pi',
      'controller-uid': uid,
      'job-name': 'pi',
    });
    const done = await waitCondition(c, 'pi', 'Complete');
    expect(done.status).toMatchObject({ succeeded: 3, failed: 0, active: 0 });
    expect(done.status?.completionTime).toBeDefined();
    expect(done.status?.startTime).toBeDefined();
    expect(done.status?.uncountedTerminatedPods).toBeUndefined();
    expect(cond(done, 'SuccessCriteriaMet')).toBeDefined();
    const pods = await podsOf(c, 'pi');
    expect(pods).toHaveLength(3);
    for (const p of pods) {
      expect(p.status?.phase).toBe('Succeeded');
      expect(p.metadata.finalizers ?? []).not.toContain('batch.kubernetes.io/job-tracking');
      expect(p.metadata.ownerReferences?.[0]).toMatchObject({
        kind: 'Job',
        name: 'pi',
        controller: true,
        blockOwnerDeletion: true,
      });
      expect(p.metadata.name).toMatch(/^pi-[a-z0-9]{5}$/);
    }
    await waitForEvents(c, 'pi', (e) => e.reason === 'SuccessfulCreate');
    await waitForEvents(c, 'pi', (e) => e.reason === 'Completed');
  });

  it('item 20: completes even when tasks fail once and are restarted locally (OnFailure)', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1', script }],
      controllers: fast,
      restartBackoff: { backoffMsInitial: 100, backoffMsMax: 200, backoffResetAfterRunMs: 60_000 },
    });
    await c.api.create(job('flaky', { completions: 4, parallelism: 2 }, 'fail-once', 'OnFailure'));
    const done = await waitCondition(c, 'flaky', 'Complete');
    expect(done.status).toMatchObject({ succeeded: 4, failed: 0 });
    const pods = await podsOf(c, 'flaky');
    expect(pods).toHaveLength(4);
    for (const p of pods) expect(p.status?.containerStatuses?.[0].restartCount).toBe(1);
  });

  it('item 21: keeps active pods at parallelism; adopts a matching orphan and releases a relabelled pod', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('par', { parallelism: 2 }, 'run'));
    const two = await waitFor('2 active', async () => {
      const j = await getJob(c!, 'par');
      const pods = (await podsOf(c!, 'par')).filter((p) => p.status?.phase === 'Running');
      return j.status?.active === 2 && pods.length === 2 ? pods : undefined;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await podsOf(c, 'par')).length).toBe(2);

    // Orphan one (drop its owner reference): the Job adopts it back rather than making another.
    const orphan = two[0];
    await c.api.patch(
      { kind: 'Pod', namespace: 'default', name: orphan.metadata.name! },
      { metadata: { ownerReferences: null } },
    );
    await waitFor('re-adopted', async () => {
      const p = (await c!.api.get({ kind: 'Pod', namespace: 'default', name: orphan.metadata.name! })) as Pod;
      return p.metadata.ownerReferences?.some((r) => r.name === 'par' && r.controller) ? true : undefined;
    });
    expect((await podsOf(c, 'par')).length).toBe(2);

    // Relabel the other out of the selector: released (owner and finalizer gone) and replaced.
    const moved = two[1];
    await c.api.patch(
      { kind: 'Pod', namespace: 'default', name: moved.metadata.name! },
      { metadata: { labels: { 'batch.kubernetes.io/controller-uid': 'someone-else' } } },
    );
    const released = await waitFor('released', async () => {
      const p = (await c!.api.get({ kind: 'Pod', namespace: 'default', name: moved.metadata.name! })) as Pod;
      return p.metadata.ownerReferences === undefined ? p : undefined;
    });
    expect(released.metadata.finalizers ?? []).not.toContain('batch.kubernetes.io/job-tracking');
    await waitFor('replaced: 2 active again', async () => {
      const j = await getJob(c!, 'par');
      const mine = (await podsOf(c!, 'par')).filter(
        (p) => p.metadata.ownerReferences?.[0]?.name === 'par' && p.status?.phase !== 'Succeeded',
      );
      return j.status?.active === 2 && mine.length === 2 ? true : undefined;
    });
  });

  it('item 22: an Indexed Job gives each pod its index (annotation, env var, hostname) and reports completedIndexes', async () => {
    seenIndexes.length = 0;
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('idx', { completions: 4, parallelism: 2, completionMode: 'Indexed' }, 'ok'));
    const done = await waitCondition(c, 'idx', 'Complete');
    expect(done.status).toMatchObject({ succeeded: 4, completedIndexes: '0-3' });
    const pods = await podsOf(c, 'idx');
    expect(pods).toHaveLength(4);
    const byIndex = new Map(
      pods.map((p) => [p.metadata.annotations?.['batch.kubernetes.io/job-completion-index'], p]),
    );
    expect([...byIndex.keys()].sort()).toEqual(['0', '1', '2', '3']);
    for (const [i, p] of byIndex) {
      expect(p.metadata.name).toMatch(new RegExp(`^idx-${i}-[a-z0-9]{5}$`));
      expect(p.spec.hostname).toBe(`idx-${i}`);
      expect(p.metadata.labels?.['batch.kubernetes.io/job-completion-index']).toBe(i);
      expect(p.spec.containers[0].env).toContainEqual({
        name: 'JOB_COMPLETION_INDEX',
        valueFrom: {
          fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
        },
      });
    }
    // The agent resolved the env var to each pod's own index.
    expect([...seenIndexes].sort()).toEqual(['0', '1', '2', '3']);
  });

  it('item 22: a podFailurePolicy FailJob rule on an exit code fails the Job at once', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(
      job(
        'pfp',
        {
          completions: 3,
          parallelism: 3,
          completionMode: 'Indexed',
          backoffLimit: 6,
          podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } }] },
        },
        'index-1-exits-42',
      ),
    );
    const failed = await waitCondition(c, 'pfp', 'Failed');
    expect(cond(failed, 'Failed')).toMatchObject({ reason: 'PodFailurePolicy' });
    expect(cond(failed, 'Failed')?.message).toMatch(
      /failed with exit code 42 matching FailJob rule at index 0/,
    );
    expect(cond(failed, 'FailureTarget')).toMatchObject({ reason: 'PodFailurePolicy' });
    // The other two pods were running: they are stopped and counted as failed.
    expect(failed.status).toMatchObject({ failed: 3, succeeded: 0, active: 0 });
    const pods = await podsOf(c, 'pfp');
    expect(pods.filter((p) => p.status?.phase === 'Failed')).toHaveLength(1);
    await waitFor('running pods removed', async () =>
      (await podsOf(c!, 'pfp')).length === 1 ? true : undefined,
    );
  });

  it('item 23: with backoffLimit=1 the Job gets FailureTarget then Failed (BackoffLimitExceeded), with exactly 2 failed pods', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('doomed', { backoffLimit: 1 }, 'fail'));
    const failed = await waitCondition(c, 'doomed', 'Failed');
    expect(cond(failed, 'FailureTarget')).toMatchObject({ reason: 'BackoffLimitExceeded' });
    expect(cond(failed, 'Failed')).toMatchObject({
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    });
    expect(failed.status).toMatchObject({ failed: 2, succeeded: 0, active: 0 });
    expect(failed.status?.completionTime).toBeUndefined();
    await new Promise((r) => setTimeout(r, 800));
    const pods = await podsOf(c, 'doomed');
    expect(pods).toHaveLength(2);
    expect(pods.every((p) => p.status?.phase === 'Failed')).toBe(true);
    await waitForEvents(c, 'doomed', (e) => e.reason === 'BackoffLimitExceeded' && e.type === 'Warning');
  });

  it('activeDeadlineSeconds fails a running Job with DeadlineExceeded and stops its pods', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('slow', { activeDeadlineSeconds: 4, parallelism: 2, completions: 2 }, 'run'));
    // Both pods run before the deadline (on a loaded machine a 1 s deadline could pass first).
    await waitFor('2 running', async () =>
      (await podsOf(c!, 'slow')).filter((p) => p.status?.phase === 'Running').length === 2 ? true : undefined,
    );
    const failed = await waitCondition(c, 'slow', 'Failed');
    expect(cond(failed, 'Failed')).toMatchObject({
      reason: 'DeadlineExceeded',
      message: 'Job was active longer than specified deadline',
    });
    expect(failed.status).toMatchObject({ active: 0, failed: 2 });
    await waitFor('pods gone', async () => ((await podsOf(c!, 'slow')).length === 0 ? true : undefined));
  });

  it('suspend deletes active pods and sets Suspended; resume starts them again', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('queue', { parallelism: 2, suspend: true }, 'run'));
    const suspended = await waitCondition(c, 'queue', 'Suspended');
    expect(cond(suspended, 'Suspended')?.reason).toBe('JobSuspended');
    expect(suspended.status?.startTime).toBeUndefined();
    expect(await podsOf(c, 'queue')).toHaveLength(0);
    await c.api.patch(key('queue'), { spec: { suspend: false } });
    await waitFor('2 running', async () =>
      (await podsOf(c!, 'queue')).filter((p) => p.status?.phase === 'Running').length === 2
        ? true
        : undefined,
    );
    const resumed = await getJob(c, 'queue');
    expect(resumed.status?.conditions?.find((x) => x.type === 'Suspended')).toMatchObject({
      status: 'False',
      reason: 'JobResumed',
    });
    expect(resumed.status?.startTime).toBeDefined();
    await c.api.patch(key('queue'), { spec: { suspend: true } });
    await waitFor('pods deleted', async () => ((await podsOf(c!, 'queue')).length === 0 ? true : undefined));
    const again = await getJob(c, 'queue');
    expect(again.status?.failed ?? 0).toBe(0); // pods removed by a suspension are not failures
  });

  it('a work queue (completions unset) completes once a pod succeeded and the others finished', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('wq', { parallelism: 3 }, 'ok'));
    const done = await waitCondition(c, 'wq', 'Complete');
    expect(done.spec.completions).toBeUndefined();
    expect(done.status).toMatchObject({ succeeded: 3, active: 0 });
    await new Promise((r) => setTimeout(r, 500));
    expect(await podsOf(c, 'wq')).toHaveLength(3); // nothing started after the first success
  });

  it('counts every pod exactly once across a leader failover', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('many', { completions: 12, parallelism: 4 }, 'ok'));
    await waitFor('some succeeded', async () =>
      ((await getJob(c!, 'many')).status?.succeeded ?? 0) >= 2 ? true : undefined,
    );
    await c.masters.kill((await c.leader()).id);
    const done = await waitCondition(c, 'many', 'Complete', 60_000);
    expect(done.status).toMatchObject({ succeeded: 12, failed: 0, active: 0 });
    expect((await podsOf(c, 'many')).filter((p) => p.status?.phase === 'Succeeded')).toHaveLength(12);
  });

  it('ttlSecondsAfterFinished deletes the finished Job', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    // Watched, not polled: the Job is Complete for about a second only, which a poll on a
    // loaded machine can miss entirely.
    const stream = await c.api.watch('Job', { namespace: 'default', name: 'ttl' });
    await c.api.create(job('ttl', { ttlSecondsAfterFinished: 1 }, 'ok'));
    const seen: string[] = [];
    const deadline = Date.now() + 30_000;
    while (!seen.includes('DELETED')) {
      const events = await Promise.race([
        stream.next(),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, deadline - Date.now()))),
      ]);
      if (events === undefined) break;
      for (const e of events)
        seen.push(e.type === 'DELETED' ? 'DELETED' : cond(e.object as Job, 'Complete') ? 'Complete' : e.type);
    }
    stream.close();
    // Complete first, then deleted.
    expect(seen.indexOf('Complete')).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf('DELETED')).toBeGreaterThan(seen.indexOf('Complete'));
  });

  it('counts a deleted running pod once as failed and releases its finalizer', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1', script }], controllers: fast });
    await c.api.create(job('count', { backoffLimit: 5 }, 'run'));
    const [pod] = await waitFor('1 running', async () => {
      const pods = (await podsOf(c!, 'count')).filter((p) => p.status?.phase === 'Running');
      return pods.length === 1 ? pods : undefined;
    });
    expect(pod.metadata.finalizers).toContain('batch.kubernetes.io/job-tracking');
    await c.api.delete({ kind: 'Pod', namespace: 'default', name: pod.metadata.name! });
    await waitFor('gone, counted, replaced', async () => {
      const j = await getJob(c!, 'count');
      const pods = await podsOf(c!, 'count');
      return j.status?.failed === 1 &&
        j.status.active === 1 &&
        !pods.some((p) => p.metadata.uid === pod.metadata.uid)
        ? true
        : undefined;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await getJob(c, 'count')).status?.failed).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import type { ContainerStatus, Job, Pod, PodPhase } from '../objects.js';
import { withGeneratedFields } from '../update-rules.js';
import {
  completionIndexOf,
  formatIndexes,
  type JobPlan,
  jobPod,
  jobTrackingFinalizer,
  matchPodFailurePolicy,
  parseIndexes,
  planJob,
} from './job.js';
import { rfc3339 } from './pods.js';

const now = Date.parse('2025-01-01T01:00:00Z');

function job(spec: Partial<Job['spec']> = {}, status?: Job['status']): Job {
  const base: Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'j', namespace: 'default', uid: 'job-uid', creationTimestamp: rfc3339(now - 600_000) },
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 6,
      completionMode: 'NonIndexed',
      template: {
        metadata: { labels: { app: 'j' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] },
      },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
  if (spec.completions === undefined && 'completions' in spec) delete base.spec.completions;
  return withGeneratedFields(base) as Job;
}

let seq = 0;
/** A pod of `j` in `phase`, tracked (finalizer) unless told otherwise; finished `agoMs` ago. */
function pod(
  j: Job,
  phase: PodPhase,
  opts: {
    index?: number;
    tracked?: boolean;
    deleting?: boolean;
    exitCode?: number;
    ready?: boolean;
    restarts?: number;
    agoMs?: number;
  } = {},
): Pod {
  seq += 1;
  const p = jobPod(j, opts.index);
  p.metadata.name = `j-${seq}`;
  p.metadata.uid = `pod-${seq}`;
  p.metadata.creationTimestamp = rfc3339(now - 300_000);
  if (opts.tracked === false) p.metadata.finalizers = undefined;
  if (opts.deleting) p.metadata.deletionTimestamp = rfc3339(now);
  const finishedAt = rfc3339(now - (opts.agoMs ?? 60_000));
  const terminated = phase === 'Succeeded' || phase === 'Failed';
  const cs: ContainerStatus = {
    name: 'c',
    image: 'i',
    ready: phase === 'Running',
    restartCount: opts.restarts ?? 0,
    state: terminated
      ? { terminated: { exitCode: opts.exitCode ?? (phase === 'Failed' ? 1 : 0), finishedAt } }
      : { running: {} },
  };
  p.status = {
    phase,
    containerStatuses: [cs],
    conditions: [{ type: 'Ready', status: phase === 'Running' && opts.ready !== false ? 'True' : 'False' }],
  };
  return p;
}

const run = (j: Job, pods: Pod[], backoff = { base: 10_000, max: 600_000 }): JobPlan =>
  planJob({ job: j, pods, nowMs: now, podFailureBackoffMs: backoff });
const condition = (p: JobPlan, type: string) => p.status.conditions?.find((c) => c.type === type);

describe('Job pods and indexes', () => {
  it('pods carry the tracking finalizer; Indexed ones their index as annotation, label, hostname and env var', () => {
    const j = job({ completionMode: 'Indexed', completions: 3 });
    const p = jobPod(j, 2);
    expect(p.metadata.finalizers).toEqual([jobTrackingFinalizer]);
    expect(p.metadata.generateName).toBe('j-2-');
    expect(p.metadata.annotations).toEqual({ 'batch.kubernetes.io/job-completion-index': '2' });
    expect(p.metadata.labels?.['batch.kubernetes.io/job-completion-index']).toBe('2');
    expect(p.metadata.labels?.['batch.kubernetes.io/controller-uid']).toBe('job-uid');
    expect(p.spec.hostname).toBe('j-2');
    expect(p.spec.containers[0].env).toEqual([
      {
        name: 'JOB_COMPLETION_INDEX',
        valueFrom: {
          fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
        },
      },
    ]);
    expect(completionIndexOf(p)).toBe(2);
    expect(jobPod(j, undefined).metadata.generateName).toBe('j-');
  });

  it('completed indexes round-trip as ranges', () => {
    expect(formatIndexes([7, 1, 3, 4, 5])).toBe('1,3-5,7');
    expect([...parseIndexes('1,3-5,7', 100)].sort((a, b) => a - b)).toEqual([1, 3, 4, 5, 7]);
    expect([...parseIndexes('1,3-5,7,x', 4)].sort()).toEqual([1, 3]);
    expect(formatIndexes([])).toBe('');
  });
});

describe('planJob', () => {
  it('creates up to parallelism, bounded by the remaining completions; sets startTime', () => {
    const p = run(job({ parallelism: 3, completions: 5 }), []);
    expect(p.create).toEqual([undefined, undefined, undefined]);
    expect(p.status.active).toBe(3);
    expect(p.status.startTime).toBe(rfc3339(now));
    const j = job({ parallelism: 3, completions: 5 });
    const done = [pod(j, 'Succeeded'), pod(j, 'Succeeded'), pod(j, 'Succeeded', { tracked: false })];
    // Two newly succeeded (tracked) + one counted before = 3 of 5: 2 more at most.
    const p2 = run({ ...j, status: { succeeded: 1 } }, done);
    expect(p2.create).toHaveLength(2);
  });

  it('records finished pods as uncounted first, untracks them, then counts them once', () => {
    const j = job({ completions: 3, parallelism: 2 });
    const a = pod(j, 'Succeeded');
    const b = pod(j, 'Failed');
    const p = run(j, [a, b]);
    expect(p.interimStatus?.uncountedTerminatedPods).toEqual({
      succeeded: [a.metadata.uid],
      failed: [b.metadata.uid],
    });
    expect(p.untrack.map((x) => x.metadata.uid).sort()).toEqual([a.metadata.uid, b.metadata.uid].sort());
    expect(p.status).toMatchObject({ succeeded: 1, failed: 1 });
    expect(p.status.uncountedTerminatedPods).toBeUndefined();
    // A crash after the interim write: the next pass sees them uncounted (still tracked) and counts each once.
    const again = run({ ...j, status: p.interimStatus }, [a, b]);
    expect(again.interimStatus).toBeUndefined();
    expect(again.untrack).toHaveLength(2);
    expect(again.status).toMatchObject({ succeeded: 1, failed: 1 });
    // After the counts moved: untracked pods are not counted again.
    const untracked = [
      { ...a, metadata: { ...a.metadata, finalizers: undefined } },
      { ...b, metadata: { ...b.metadata, finalizers: undefined } },
    ];
    const later = run({ ...j, status: again.status }, untracked);
    expect(later.status).toMatchObject({ succeeded: 1, failed: 1 });
    expect(later.untrack).toEqual([]);
  });

  it('a deleted pod that had not succeeded counts as failed', () => {
    const j = job({ backoffLimit: 3 });
    const gone = pod(j, 'Running', { deleting: true });
    const p = run(j, [gone]);
    expect(p.interimStatus?.uncountedTerminatedPods?.failed).toEqual([gone.metadata.uid]);
    expect(p.status.failed).toBe(1);
  });

  it('backoffLimit: failed > limit sets FailureTarget, and Failed once nothing runs', () => {
    const j = job({ backoffLimit: 1 });
    const f1 = pod(j, 'Failed', { agoMs: 60_000 });
    const f2 = pod(j, 'Failed', { agoMs: 1_000 });
    const p = run(j, [f1, f2]);
    expect(condition(p, 'FailureTarget')).toMatchObject({ status: 'True', reason: 'BackoffLimitExceeded' });
    expect(condition(p, 'Failed')).toMatchObject({
      status: 'True',
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    });
    expect(p.create).toEqual([]);
    expect(p.status).toMatchObject({ failed: 2, active: 0 });
    expect(p.events.map((e) => e.reason)).toContain('BackoffLimitExceeded');
    // One failure of a limit of 1: replaced (after the backoff).
    const one = run(j, [pod(j, 'Failed', { agoMs: 20_000 })]);
    expect(condition(one, 'FailureTarget')).toBeUndefined();
    expect(one.create).toHaveLength(1);
  });

  it('failed pods are replaced after an exponential delay counted from the last failure', () => {
    const j = job({ backoffLimit: 10 });
    const p = run(j, [pod(j, 'Failed', { agoMs: 4_000 })]);
    expect(p.create).toEqual([]);
    expect(p.requeueAfterMs).toBe(6_010); // 10 s after the failure
    const two = run(j, [pod(j, 'Failed', { agoMs: 30_000 }), pod(j, 'Failed', { agoMs: 15_000 })]);
    expect(two.create).toEqual([]);
    expect(two.requeueAfterMs).toBe(5_010); // 20 s after the second failure
    // A success resets the count.
    const j3 = job({ backoffLimit: 10, completions: 2 });
    const reset = run(j3, [pod(j3, 'Failed', { agoMs: 30_000 }), pod(j3, 'Succeeded', { agoMs: 20_000 })]);
    expect(reset.create).toHaveLength(1);
  });

  it('OnFailure: container restarts of running pods count toward the backoff limit', () => {
    const j = job({ backoffLimit: 2 });
    j.spec.template.spec.restartPolicy = 'OnFailure';
    expect(condition(run(j, [pod(j, 'Running', { restarts: 1 })]), 'FailureTarget')).toBeUndefined();
    const p = run(j, [pod(j, 'Running', { restarts: 2 })]);
    expect(condition(p, 'FailureTarget')?.reason).toBe('BackoffLimitExceeded');
    expect(p.delete.map((d) => d.reason)).toEqual(['jobFinished']);
    expect(condition(p, 'Failed')).toBeUndefined(); // its pod still has to go
  });

  it('completes when enough pods succeeded; SuccessCriteriaMet then Complete with completionTime', () => {
    const j = job({ completions: 2, parallelism: 2 });
    const p = run(j, [pod(j, 'Succeeded'), pod(j, 'Succeeded')]);
    expect(condition(p, 'SuccessCriteriaMet')?.status).toBe('True');
    expect(condition(p, 'Complete')).toMatchObject({ status: 'True', reason: 'CompletionsReached' });
    expect(p.status.completionTime).toBe(rfc3339(now));
    expect(p.events.map((e) => e.reason)).toEqual(['Completed']);
  });

  it('work queue: no new pods after a success; complete when the rest finished', () => {
    const j = job({ parallelism: 3, completions: undefined });
    expect(j.spec.completions).toBeUndefined();
    expect(run(j, []).create).toHaveLength(3);
    const mid = run(j, [pod(j, 'Succeeded'), pod(j, 'Running')]);
    expect(mid.create).toEqual([]);
    expect(condition(mid, 'Complete')).toBeUndefined();
    const end = run(j, [pod(j, 'Succeeded'), pod(j, 'Succeeded', { tracked: false })], undefined);
    expect(condition(end, 'Complete')?.status).toBe('True');
  });

  it('surplus active pods go when parallelism drops', () => {
    const j = job({ parallelism: 1, completions: 5 });
    const p = run(j, [pod(j, 'Running'), pod(j, 'Running', { ready: false })]);
    expect(p.delete).toHaveLength(1);
    expect(p.delete[0].reason).toBe('surplus');
    expect(p.delete[0].pod.status?.conditions?.[0].status).toBe('False'); // the not-ready one first
  });

  it('activeDeadlineSeconds: DeadlineExceeded, running pods stopped and counted failed; before it, a requeue', () => {
    const j = job({ activeDeadlineSeconds: 60 }, { startTime: rfc3339(now - 61_000) });
    const running = pod(j, 'Running');
    const p = run(j, [running]);
    expect(condition(p, 'FailureTarget')?.reason).toBe('DeadlineExceeded');
    expect(p.delete).toEqual([{ pod: running, reason: 'jobFinished' }]);
    expect(p.interimStatus?.uncountedTerminatedPods?.failed).toEqual([running.metadata.uid]);
    expect(p.status.failed).toBe(1);
    // The next pass, before the delete applied: the pod is recorded already, not counted twice.
    const again = run({ ...j, status: p.interimStatus }, [running]);
    expect(again.interimStatus).toBeUndefined();
    expect(again.status.failed).toBe(1);
    const early = run(job({ activeDeadlineSeconds: 60 }, { startTime: rfc3339(now - 20_000) }), [
      pod(j, 'Running'),
    ]);
    expect(early.requeueAfterMs).toBe(40_010);
  });

  it('suspend: active pods deleted (not counted), Suspended condition; resume resets startTime', () => {
    const j = job({ suspend: true, parallelism: 2, completions: 4 }, { startTime: rfc3339(now - 100_000) });
    const p = run(j, [pod(j, 'Running'), pod(j, 'Running')]);
    expect(p.delete.map((d) => d.reason)).toEqual(['suspended', 'suspended']);
    expect(p.untrack).toHaveLength(2);
    expect(p.interimStatus).toBeUndefined();
    expect(p.status.failed).toBe(0);
    expect(condition(p, 'Suspended')).toMatchObject({ status: 'True', reason: 'JobSuspended' });
    const resumed = run({ ...j, spec: { ...j.spec, suspend: false }, status: p.status }, []);
    expect(condition(resumed, 'Suspended')).toMatchObject({ status: 'False', reason: 'JobResumed' });
    expect(resumed.status.startTime).toBe(rfc3339(now));
    expect(resumed.create).toHaveLength(2);
    // Created suspended: no startTime.
    expect(run(job({ suspend: true }), []).status.startTime).toBeUndefined();
  });

  it('Indexed: pending indexes get pods; duplicates and out-of-range indexes go; completedIndexes grow', () => {
    const j = job({ completionMode: 'Indexed', completions: 4, parallelism: 2 });
    expect(run(j, []).create).toEqual([0, 1]);
    const done0 = pod(j, 'Succeeded', { index: 0 });
    const p = run(j, [done0, pod(j, 'Running', { index: 2 })]);
    expect(p.create).toEqual([1]);
    expect(p.interimStatus?.completedIndexes).toBe('0');
    expect(p.status).toMatchObject({ succeeded: 1, completedIndexes: '0' });
    const dupA = pod(j, 'Running', { index: 1 });
    const dupB = pod(j, 'Running', { index: 1, ready: false });
    const stale = pod(j, 'Running', { index: 0 });
    const d = run({ ...j, status: { completedIndexes: '0', succeeded: 1 } }, [dupA, dupB, stale]);
    expect(d.delete.map((x) => [x.pod.metadata.uid, x.reason]).sort()).toEqual(
      [
        [stale.metadata.uid, 'duplicateIndex'],
        [dupB.metadata.uid, 'duplicateIndex'],
      ].sort(),
    );
    // A second success of an index already done is not counted.
    const twice = run({ ...j, status: { completedIndexes: '0', succeeded: 1 } }, [
      pod(j, 'Succeeded', { index: 0 }),
    ]);
    expect(twice.interimStatus).toBeUndefined();
    expect(twice.untrack).toHaveLength(1);
    expect(twice.status.succeeded).toBe(1);
    const all = run({ ...j, status: { completedIndexes: '0-2', succeeded: 3 } }, [
      pod(j, 'Succeeded', { index: 3 }),
    ]);
    expect(all.status.completedIndexes).toBe('0-3');
    expect(condition(all, 'Complete')?.status).toBe('True');
  });

  it('podFailurePolicy: FailJob fails at once, Ignore does not count, Count counts; first matching rule wins', () => {
    const j = job({
      completions: 3,
      parallelism: 3,
      backoffLimit: 5,
      podFailurePolicy: {
        rules: [
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
          { action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } },
          { action: 'Count', onExitCodes: { containerName: 'c', operator: 'NotIn', values: [0, 7] } },
        ],
      },
    });
    const fail42 = pod(j, 'Failed', { exitCode: 42 });
    expect(matchPodFailurePolicy(j, fail42)).toEqual({
      action: 'FailJob',
      message: `Container c for pod default/${fail42.metadata.name} failed with exit code 42 matching FailJob rule at index 1`,
    });
    const disrupted = pod(j, 'Failed', { exitCode: 42 });
    disrupted.status?.conditions?.push({ type: 'DisruptionTarget', status: 'True' });
    expect(matchPodFailurePolicy(j, disrupted).action).toBe('Ignore');
    expect(matchPodFailurePolicy(j, pod(j, 'Failed', { exitCode: 7 })).action).toBe('Count'); // no rule: counted
    const running = pod(j, 'Running');
    const p = run(j, [fail42, running]);
    expect(condition(p, 'FailureTarget')).toMatchObject({ reason: 'PodFailurePolicy' });
    expect(p.delete).toEqual([{ pod: running, reason: 'jobFinished' }]);
    const ignored = run(j, [disrupted]);
    expect(ignored.status.failed).toBe(0);
    expect(ignored.untrack).toEqual([disrupted]);
    expect(ignored.interimStatus).toBeUndefined();
  });

  it('claims: adopts matching orphans, releases relabelled pods; a finished Job adopts nothing', () => {
    const j = job();
    const orphan = pod(j, 'Running');
    orphan.metadata.ownerReferences = undefined;
    const moved = pod(j, 'Running');
    moved.metadata.labels = { app: 'j' };
    const p = run(j, [orphan, moved]);
    expect(p.adopt).toEqual([orphan]);
    expect(p.release).toEqual([moved]);
    const finished = job(
      {},
      { conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: rfc3339(now) }] },
    );
    expect(run(finished, [orphan]).adopt).toEqual([]);
  });

  it('finished: untracks stray pods; deletes the Job after ttlSecondsAfterFinished', () => {
    const done = { type: 'Complete', status: 'True' as const, lastTransitionTime: rfc3339(now - 30_000) };
    const j = job({ ttlSecondsAfterFinished: 60 }, { conditions: [done] });
    const stray = pod(j, 'Succeeded');
    const p = run(j, [stray]);
    expect(p.untrack).toEqual([stray]);
    expect(p.deleteJob).toBe(false);
    expect(p.requeueAfterMs).toBe(30_010);
    expect(run(job({ ttlSecondsAfterFinished: 10 }, { conditions: [done] }), []).deleteJob).toBe(true);
    expect(run(job({}, { conditions: [done] }), []).deleteJob).toBe(false);
  });

  it('a Job being deleted starts nothing and lets its pods go', () => {
    const j = job({ parallelism: 2, completions: 2 });
    j.metadata.deletionTimestamp = rfc3339(now);
    const running = pod(j, 'Running');
    const p = run(j, [running]);
    expect(p.create).toEqual([]);
    expect(p.untrack).toEqual([running]);
  });
});

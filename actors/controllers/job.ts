/**
 * The Job controller: runs pods to completion (parallelism, completions, work queues, Indexed
 * Jobs), counts every finished pod exactly once through the `batch.kubernetes.io/job-tracking`
 * finalizer and `status.uncountedTerminatedPods`, fails Jobs on the backoff limit, a
 * podFailurePolicy rule or the active deadline, suspends and resumes them, and deletes finished
 * Jobs after `ttlSecondsAfterFinished`. It also takes the tracking finalizer off pods no Job
 * controls any more (released, or whose Job is gone), so they can be deleted.
 *
 * Writes of one pass, in this order, so that a crash anywhere never counts a pod twice or
 * loses one: claim; record finished pods as uncounted (status); remove their finalizers;
 * delete and create pods; write the status with the counts moved over.
 */

import {
  hasTrackingFinalizer,
  isJobFinished,
  jobPod,
  jobPodFailureBackoffMsDefault,
  jobPodFailureBackoffMsMax,
  jobTrackingFinalizer,
  planJob,
} from '../../core/controllers/job.js';
import { controllerRef, newControllerRef } from '../../core/controllers/pods.js';
import type { Job, Pod } from '../../core/objects.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { ownerKeysOfPod } from './replicaset.js';
import {
  deleteObject,
  errorText,
  isGoneOrConflict,
  keyOf,
  parseKey,
  slowStart,
  writeStatus,
} from './workload.js';

export interface JobControllerOptions {
  /** Delay before replacing a failed pod, doubling per consecutive failure. Default 10,000 (Kubernetes'). */
  podFailureBackoffMs?: number;
  /** Cap of that delay. Default 600,000. */
  podFailureBackoffMsMax?: number;
}

/** A pod holding the tracking finalizer that no live, unfinished Job controls. */
function isStrayTracked(pod: Pod, cache: ClusterCache): boolean {
  if (!hasTrackingFinalizer(pod)) return false;
  const ref = controllerRef(pod);
  if (ref === undefined || ref.kind !== 'Job') return true;
  const job = cache.get<Job>('Job', pod.metadata.namespace ?? '', ref.name);
  return job === undefined || job.metadata.uid !== ref.uid;
}

function podKey(pod: Pod): string {
  return `Pod/${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`;
}

export function jobController(opts: JobControllerOptions = {}): Controller {
  const backoff = {
    base: opts.podFailureBackoffMs ?? jobPodFailureBackoffMsDefault,
    max: opts.podFailureBackoffMsMax ?? jobPodFailureBackoffMsMax,
  };
  return {
    name: 'job',
    watches: ['Job', 'Pod'],
    workers: 8,
    *keysFor(change, cache) {
      const obj = change.object;
      if (obj.kind === 'Job') {
        yield change.key;
        // A deleted Job leaves its tracked pods to be released.
        if (change.type === 'DELETED')
          for (const pod of cache.dependents<Pod>(obj.metadata.uid ?? '', 'Pod')) yield podKey(pod);
        return;
      }
      if (obj.kind !== 'Pod') return;
      yield* ownerKeysOfPod(obj, 'Job', cache);
      const prev = change.prev as Pod | undefined;
      if (prev !== undefined && controllerRef(prev)?.uid !== controllerRef(obj)?.uid)
        yield* ownerKeysOfPod(prev, 'Job', cache);
      if (change.type !== 'DELETED' && isStrayTracked(obj, cache)) yield podKey(obj);
    },
    *initialKeys(cache) {
      for (const job of cache.list('Job')) yield keyOf(job);
      for (const pod of cache.list<Pod>('Pod')) if (isStrayTracked(pod, cache)) yield podKey(pod);
    },
    reconcile: (key, ctx) =>
      key.startsWith('Pod/') ? releaseStrayPod(key, ctx) : reconcileJob(key, ctx, backoff),
  };
}

/** Removes the tracking finalizer (and, when `owner` is given, the reference to it) from a pod. */
async function untrack(ctx: ControllerContext, pod: Pod, ownerUid?: string): Promise<void> {
  const finalizers = (pod.metadata.finalizers ?? []).filter((f) => f !== jobTrackingFinalizer);
  const refs = (pod.metadata.ownerReferences ?? []).filter(
    (r) => ownerUid === undefined || r.uid !== ownerUid,
  );
  const metadata = { ...pod.metadata, finalizers, ownerReferences: refs };
  if (finalizers.length === 0) delete (metadata as { finalizers?: string[] }).finalizers;
  if (refs.length === 0) delete (metadata as { ownerReferences?: unknown }).ownerReferences;
  try {
    await ctx.api.update({ ...pod, metadata });
  } catch (err) {
    if (
      isGoneOrConflict(err) &&
      ctx.cache.get<Pod>('Pod', pod.metadata.namespace ?? '', pod.metadata.name ?? '')?.metadata.uid !==
        pod.metadata.uid
    )
      return; // gone: nothing left to release
    throw err;
  }
}

async function releaseStrayPod(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const pod = ctx.cache.get<Pod>('Pod', namespace, name);
  if (pod === undefined || !isStrayTracked(pod, ctx.cache)) return undefined;
  await untrack(ctx, pod);
  return undefined;
}

/** Takes an orphan: the controller reference and, unless the Job is finished, the tracking finalizer. */
async function adoptPod(ctx: ControllerContext, pod: Pod, job: Job): Promise<void> {
  const refs = [
    ...(pod.metadata.ownerReferences ?? []).filter((r) => r.uid !== job.metadata.uid),
    newControllerRef(job),
  ];
  const finalizers = pod.metadata.finalizers ?? [];
  const track = !isJobFinished(job) && !finalizers.includes(jobTrackingFinalizer);
  try {
    await ctx.api.update({
      ...pod,
      metadata: {
        ...pod.metadata,
        ownerReferences: refs,
        ...(track ? { finalizers: [...finalizers, jobTrackingFinalizer] } : {}),
      },
    });
  } catch (err) {
    if (!isGoneOrConflict(err)) throw err;
  }
}

async function reconcileJob(
  key: string,
  ctx: ControllerContext,
  backoff: { base: number; max: number },
): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const job = ctx.cache.get<Job>('Job', namespace, name);
  if (job === undefined) return undefined;
  const uid = job.metadata.uid ?? '';
  const plan = planJob({
    job,
    pods: ctx.cache.claimable<Pod>('Pod', namespace, uid),
    nowMs: ctx.nowMs(),
    podFailureBackoffMs: backoff,
  });

  for (const pod of plan.release) await untrack(ctx, pod, uid);
  for (const pod of plan.adopt) await adoptPod(ctx, pod, job);

  // 1. Record what finished before anything can lose it.
  let latest: Job = job;
  if (plan.interimStatus !== undefined) latest = await writeStatus(ctx, job, plan.interimStatus);
  // 2. Release the finished (and the doomed) pods.
  await Promise.all(plan.untrack.map((pod) => untrack(ctx, pod)));
  // 3. Pods.
  await Promise.all(
    plan.delete.map(async ({ pod }) => {
      if (await deleteObject(ctx, pod)) {
        ctx.events.record(job, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
      }
    }),
  );
  let createError: unknown;
  if (plan.create.length > 0) {
    const result = await slowStart(plan.create.length, async (i) => {
      const pod = await ctx.api.create(jobPod(job, plan.create[i]));
      ctx.events.record(job, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`);
      return pod;
    });
    if (result.error !== undefined) {
      createError = result.error;
      ctx.events.record(job, 'Warning', 'FailedCreate', `Error creating: ${errorText(result.error)}`);
    }
  }
  // 4. The counts.
  const current = ctx.cache.get<Job>('Job', namespace, name) ?? latest;
  if (current.metadata.uid === uid && current.metadata.deletionTimestamp === undefined) {
    await writeStatus(ctx, current, plan.status);
  }
  for (const e of plan.events) ctx.events.record(job, e.type, e.reason, e.message);
  if (plan.deleteJob && (await deleteObject(ctx, job, { propagationPolicy: 'Background' }))) {
    ctx.log(`job ${namespace}/${name}: deleted ${job.spec.ttlSecondsAfterFinished}s after it finished`);
  }
  if (createError !== undefined) throw createError;
  return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
}

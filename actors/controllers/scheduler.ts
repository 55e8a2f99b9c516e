/**
 * The scheduler, as a controller on the leader (started on election, stopped on step-down,
 * its actor restarted with backoff on a crash). It keeps a {@link SchedulerSnapshot} of nodes
 * and of the pods placed on them, fed from the store's change feed in log order (through
 * `keysFor`, which sees every change exactly once, right after the cache applied it), and
 * reconciles pending pods one key at a time:
 *
 * - a decision is synchronous (`schedulePod` on the snapshot), so decisions never race; the
 *   pod is then *assumed* on its node (it counts there for the next decisions) while the
 *   binding is in flight. The bind command carries a uid precondition and applies only to an
 *   unbound, live pod, so a stale decision is rejected (Conflict) and the assumption dropped.
 *   Up to `workers` (1,024) bindings are in flight at once.
 * - a pod that fits nowhere gets `PodScheduled=False` (reason `Unschedulable`, Kubernetes'
 *   message), its per-node reasons in an annotation (bounded), and a `FailedScheduling` event;
 *   it is then *parked* until the cluster changes in a way that could make it fit (a node
 *   added or changed, resources freed by a deleted or finished pod, a pod placed for pods
 *   waiting on pod affinity) or the pod's own spec changes, and retried with a per-pod backoff
 *   (1 s doubling to 10 s, as Kubernetes). No polling: a long resync (5 min) is the safety net.
 */

import { isPodTerminal, rfc3339, setCondition } from '../../core/controllers/pods.js';
import { defaultSchedulerName } from '../../core/defaults.js';
import type { Node, Pod } from '../../core/index.js';
import {
  encodeRecord,
  placementAnnotation,
  reasonsAnnotation,
  recordPlacement,
  recordReasons,
  SchedulerSnapshot,
  schedulePod,
  type Unschedulable,
} from '../../core/scheduler/index.js';
import { EventRecorder } from '../events.js';
import type { ChangeEvent } from '../watch-hub.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { isGoneOrConflict, parseKey } from './workload.js';

export interface SchedulerOptions {
  /**
   * Pods decided and bound at once (bindings in flight). Default 1,024: a binding waits for
   * its commit, and under load commits take seconds; bindings complete in waves of this size.
   */
  workers?: number;
  /** Percent of nodes to find feasible before scoring; 0: Kubernetes' adaptive rule. Default 0. */
  percentageOfNodesToScore?: number;
  /** First retry of an unschedulable pod. Default 1,000. */
  retryBackoffMsMin?: number;
  /** Retry cap of an unschedulable pod. Default 10,000. */
  retryBackoffMsMax?: number;
  /** Full resync (every pending pod retried). Default 300,000. */
  resyncMs?: number;
}

/** The scheduler's own counters (in `ControllerManager.status()`). */
export interface SchedulerCounters {
  /** Bindings that applied. */
  scheduled: number;
  /** Attempts that found no node. */
  unschedulable: number;
  /** Bindings refused as stale (pod gone, bound or deleting meanwhile). */
  bindConflicts: number;
  /** Bindings that failed otherwise (retried with backoff). */
  bindErrors: number;
  /**
   * Periodic resyncs that found the snapshot's placed pods differ in number from the bound
   * pods of the cache, and rebuilt it (0 unless the incremental updates have a bug).
   */
  snapshotRebuilds: number;
  /** Bindings in flight. */
  assumed: number;
  /** Unschedulable pods waiting for a change. */
  parked: number;
  nodes: number;
  /** Pods counted on nodes (assumed included). */
  podsOnNodes: number;
  /** Time of one decision (synchronous), microseconds, mean over the last decisions. */
  decisionMicrosMean: number;
}

interface Attempts {
  /** Failures in a row. */
  count: number;
  /** No retry before this (ms). */
  notBeforeMs: number;
  /** The cluster and pod generations it failed at: unchanged, retrying is pointless. */
  clusterGen: number;
  podGen: number;
  /** Pods with required pod affinity: the placement generation it failed at. */
  placedGen: number;
}

const decisionSamplesMax = 1_024;

/** Whether the default scheduler should place this pod. */
export function isPendingForScheduler(pod: Pod): boolean {
  return (
    !pod.spec.nodeName &&
    pod.metadata.deletionTimestamp === undefined &&
    !isPodTerminal(pod) &&
    (pod.spec.schedulerName ?? defaultSchedulerName) === defaultSchedulerName
  );
}

function hasPodAffinity(pod: Pod): boolean {
  return (pod.spec.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length ?? 0) > 0;
}

export class SchedulerController implements Controller {
  readonly name = 'scheduler';
  readonly watches = ['Pod', 'Node'] as const;
  readonly workers: number;
  readonly resyncMs: number;
  private readonly opts: Required<Omit<SchedulerOptions, 'workers' | 'resyncMs'>>;
  private snapshot = new SchedulerSnapshot();
  /** Bindings in flight: key → the pod and node decided (kept across a snapshot rebuild). */
  private readonly inFlight = new Map<string, { pod: Pod; node: string }>();
  private readonly attempts = new Map<string, Attempts>();
  /** Unschedulable pods waiting for a cluster change (handed back to the queue on one). */
  private readonly parked = new Set<string>();
  /** Parked pods with required pod affinity: a newly placed pod may satisfy them. */
  private readonly parkedAffinity = new Set<string>();
  /** Bumped on every change that could make an unschedulable pod fit. */
  private clusterGen = 0;
  /** Bumped whenever a pod is placed (what pods with required pod affinity wait for). */
  private placedGen = 0;
  private startIndex = 0;
  private tieBreak = 0;
  /** Bumped on start and stop: a reconcile from an earlier term touches nothing after its await. */
  private epoch = 0;
  private events: EventRecorder | undefined;
  private readonly counts: Omit<
    SchedulerCounters,
    'assumed' | 'parked' | 'nodes' | 'podsOnNodes' | 'decisionMicrosMean'
  > = {
    scheduled: 0,
    unschedulable: 0,
    bindConflicts: 0,
    bindErrors: 0,
    snapshotRebuilds: 0,
  };
  private readonly decisionMicros: number[] = [];
  private decisionNext = 0;

  constructor(opts: SchedulerOptions = {}) {
    this.workers = opts.workers ?? 1_024;
    this.resyncMs = opts.resyncMs ?? 300_000;
    this.opts = {
      percentageOfNodesToScore: opts.percentageOfNodesToScore ?? 0,
      retryBackoffMsMin: opts.retryBackoffMsMin ?? 1_000,
      retryBackoffMsMax: opts.retryBackoffMsMax ?? 10_000,
    };
  }

  /** The snapshot was built by `start` and no resync has run since. */
  private builtAtStart = false;
  /** The snapshot follows the store (built once, then every change applied, running or not). */
  private warm = false;

  start(ctx: ControllerContext): void {
    this.epoch += 1;
    this.events?.close();
    this.events = new EventRecorder({
      api: ctx.api,
      component: 'default-scheduler',
      nowMs: ctx.nowMs,
      log: ctx.log,
    });
    this.inFlight.clear();
    this.attempts.clear();
    this.parked.clear();
    this.parkedAffinity.clear();
    // Kept current since the last term or by `observe` on this follower: nothing to build.
    if (!this.warm) this.rebuild(ctx.cache);
    this.warm = true;
    this.builtAtStart = true;
  }

  stop(): void {
    this.builtAtStart = false;
    this.epoch += 1;
    this.events?.close();
    this.events = undefined;
    // The snapshot stays (observe keeps it current); the term's assumptions go with it.
    for (const key of this.inFlight.keys()) this.snapshot.forget(key);
    this.inFlight.clear();
  }

  /**
   * On a master not running the scheduler: the snapshot follows every change, so a new leader
   * starts scheduling at once (building it from 30,000 pods took ~1 s of one event-loop turn,
   * enough for the new leader to miss its heartbeats). Built once, at the first batch.
   */
  observe(changes: readonly ChangeEvent[], cache: ClusterCache): void {
    if (!this.warm) {
      this.rebuild(cache);
      this.warm = true;
      return;
    }
    for (const c of changes) {
      if (c.object.kind === 'Node') this.onNode(c);
      else if (c.object.kind === 'Pod') this.onPod(c);
    }
  }

  /** After a snapshot restore: built again at the next batch, start or resync. */
  observeReset(): void {
    this.warm = false;
  }

  counters(): Record<string, number> {
    const samples = this.decisionMicros;
    const mean = samples.length === 0 ? 0 : samples.reduce((a, b) => a + b, 0) / samples.length;
    const out: SchedulerCounters = {
      ...this.counts,
      assumed: this.inFlight.size,
      parked: this.parked.size,
      nodes: this.snapshot.nodeList().length,
      podsOnNodes: this.snapshot.podCount,
      decisionMicrosMean: Math.round(mean),
    };
    return { ...out };
  }

  /** Feeds the snapshot (every change, in log order) and names the pods to look at. */
  keysFor(change: ChangeEvent, _cache: ClusterCache): Iterable<string> {
    if (change.object.kind === 'Node') return this.onNode(change);
    if (change.object.kind === 'Pod') return this.onPod(change);
    return [];
  }

  /** Every pending pod; lets every parked pod try again (the safety net), checking the snapshot. */
  *initialKeys(cache: ClusterCache): Iterable<string> {
    // The first resync follows start, whose snapshot the changes since kept current: building
    // it twice cost a new leader another 0.3–0.7 s turn at 30,000 pods.
    // The snapshot follows every change; building it from scratch is a ~1 s turn at 30,000
    // pods, enough for a loaded leader to miss its heartbeats. So: built when cold (or after a
    // restore), and on the periodic resync only when a count shows it drifted.
    if (!this.warm) this.rebuild(cache);
    else if (!this.builtAtStart && this.snapshot.placedCount() !== boundPods(cache)) {
      this.counts.snapshotRebuilds += 1;
      this.rebuild(cache);
    }
    this.warm = true;
    this.builtAtStart = false;
    for (const a of this.attempts.values()) {
      a.clusterGen = -1;
      a.placedGen = -1;
    }
    this.parked.clear();
    this.parkedAffinity.clear();
    for (const pod of cache.list<Pod>('Pod')) {
      if (isPendingForScheduler(pod))
        yield cache.keyOf('Pod', pod.metadata.namespace ?? '', pod.metadata.name ?? '');
    }
  }

  async reconcile(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
    const pod = ctx.cache.getByKey(key) as Pod | undefined;
    if (pod === undefined || !isPendingForScheduler(pod)) {
      this.attempts.delete(key);
      return undefined;
    }
    if (this.inFlight.has(key)) return undefined; // its binding decides
    const now = ctx.nowMs();
    const podGen = pod.metadata.generation ?? 0;
    const tried = this.attempts.get(key);
    if (tried !== undefined && !this.changedSince(tried, pod, podGen)) {
      this.park(key, pod);
      return undefined;
    }
    if (tried !== undefined && now < tried.notBeforeMs) return { requeueAfterMs: tried.notBeforeMs - now };

    const gens = { clusterGen: this.clusterGen, podGen, placedGen: this.placedGen };
    const started = performance.now();
    const result = schedulePod(this.snapshot, pod, {
      startIndex: this.startIndex,
      tieBreak: this.tieBreak++,
      percentageOfNodesToScore: this.opts.percentageOfNodesToScore,
    });
    this.recordDecision((performance.now() - started) * 1000);
    this.startIndex = result.nextStartIndex;
    if (result.kind === 'unschedulable') return this.failed(key, pod, result, gens, now, ctx);

    const epoch = this.epoch;
    this.snapshot.assume(key, pod, result.node);
    this.inFlight.set(key, { pod, node: result.node });
    const { namespace, name } = parseKey(key);
    try {
      await ctx.api.bind({ namespace, name }, pod.metadata.uid ?? '', result.node, {
        set: { [placementAnnotation]: encodeRecord(recordPlacement(result)) },
        ...(pod.metadata.annotations?.[reasonsAnnotation] !== undefined
          ? { remove: [reasonsAnnotation] }
          : {}),
      });
    } catch (err) {
      if (epoch !== this.epoch) return undefined;
      this.inFlight.delete(key);
      this.snapshot.forget(key);
      if (isGoneOrConflict(err)) {
        this.counts.bindConflicts += 1;
        return undefined; // gone, bound or deleting: the change that did it says what is next
      }
      this.counts.bindErrors += 1;
      throw err;
    }
    if (epoch !== this.epoch) return undefined;
    // The bound pod's change reached keysFor before this resumed: the assumption is confirmed.
    this.inFlight.delete(key);
    this.attempts.delete(key);
    this.counts.scheduled += 1;
    this.events?.record(
      pod,
      'Normal',
      'Scheduled',
      `Successfully assigned ${namespace}/${name} to ${result.node}`,
    );
    return undefined;
  }

  private async failed(
    key: string,
    pod: Pod,
    result: Unschedulable,
    gens: Pick<Attempts, 'clusterGen' | 'podGen' | 'placedGen'>,
    now: number,
    ctx: ControllerContext,
  ): Promise<ReconcileResult> {
    const count = (this.attempts.get(key)?.count ?? 0) + 1;
    const backoff = Math.min(
      this.opts.retryBackoffMsMax,
      this.opts.retryBackoffMsMin * 2 ** Math.min(count - 1, 20),
    );
    const attempt: Attempts = { count, notBeforeMs: now + backoff, ...gens };
    this.attempts.set(key, attempt);
    this.counts.unschedulable += 1;
    this.events?.record(pod, 'Warning', 'FailedScheduling', result.message);
    const epoch = this.epoch;
    try {
      await writeUnschedulable(ctx, pod, result);
    } catch (err) {
      if (!isGoneOrConflict(err)) throw err;
      // Changed meanwhile: its change event brings it back.
    }
    if (epoch !== this.epoch) return undefined;
    // The cluster changed while we wrote: no change will wake it, so retry after its backoff.
    if (this.changedSince(attempt, pod, gens.podGen)) return { requeueAfterMs: backoff };
    const current = ctx.cache.getByKey(key) as Pod | undefined;
    if (current !== undefined && isPendingForScheduler(current)) this.park(key, current);
    return undefined;
  }

  /** Whether anything that could make `pod` fit changed since the attempt failed. */
  private changedSince(a: Attempts, pod: Pod, podGen: number): boolean {
    return (
      a.clusterGen !== this.clusterGen ||
      a.podGen !== podGen ||
      (hasPodAffinity(pod) && a.placedGen !== this.placedGen)
    );
  }

  private park(key: string, pod: Pod): void {
    this.parked.add(key);
    if (hasPodAffinity(pod)) this.parkedAffinity.add(key);
  }

  /** Hands every parked pod back to the queue (the cluster changed). */
  private wakeAll(): string[] {
    this.clusterGen += 1;
    if (this.parked.size === 0) return [];
    const keys = [...this.parked];
    this.parked.clear();
    this.parkedAffinity.clear();
    return keys;
  }

  private wakeAffinity(): string[] {
    this.placedGen += 1;
    if (this.parkedAffinity.size === 0) return [];
    const keys = [...this.parkedAffinity];
    for (const k of keys) this.parked.delete(k);
    this.parkedAffinity.clear();
    return keys;
  }

  private onNode(change: ChangeEvent): string[] {
    const node = change.object as Node;
    if (change.type === 'DELETED') {
      this.snapshot.removeNode(node.metadata.name ?? '');
      return [];
    }
    return this.snapshot.setNode(node) ? this.wakeAll() : [];
  }

  private onPod(change: ChangeEvent): string[] {
    const key = change.key;
    if (change.type === 'DELETED') {
      this.attempts.delete(key);
      this.parked.delete(key);
      this.parkedAffinity.delete(key);
      return this.snapshot.removePod(key) ? this.wakeAll() : [];
    }
    const pod = change.object as Pod;
    const effect = this.snapshot.setPod(key, pod);
    const out = effect === 'freed' ? this.wakeAll() : effect === 'placed' ? this.wakeAffinity() : [];
    if (isPendingForScheduler(pod)) out.push(key);
    else {
      this.attempts.delete(key);
      this.parked.delete(key);
      this.parkedAffinity.delete(key);
    }
    return out;
  }

  /** Builds the snapshot from the cache, keeping the assumptions of bindings in flight. */
  private rebuild(cache: ClusterCache): void {
    this.snapshot.clear();
    for (const node of cache.list<Node>('Node')) this.snapshot.setNode(node);
    for (const pod of cache.list<Pod>('Pod')) {
      if (pod.spec.nodeName) {
        this.snapshot.setPod(cache.keyOf('Pod', pod.metadata.namespace ?? '', pod.metadata.name ?? ''), pod);
      }
    }
    for (const [key, { pod, node }] of this.inFlight) {
      const current = cache.getByKey(key) as Pod | undefined;
      if (current !== undefined && isPendingForScheduler(current)) this.snapshot.assume(key, pod, node);
    }
  }

  private recordDecision(micros: number): void {
    this.decisionMicros[this.decisionNext] = micros;
    this.decisionNext = (this.decisionNext + 1) % decisionSamplesMax;
  }
}

/**
 * Records an attempt that found no node on the pod: the per-node reasons annotation and the
 * PodScheduled=False condition, each written only when it changed (preconditions: the
 * resourceVersions read).
 */
async function writeUnschedulable(ctx: ControllerContext, pod: Pod, result: Unschedulable): Promise<void> {
  let current = pod;
  const text = encodeRecord(recordReasons(result));
  if (current.metadata.annotations?.[reasonsAnnotation] !== text) {
    current = (await ctx.api.update({
      ...current,
      metadata: {
        ...current.metadata,
        annotations: { ...current.metadata.annotations, [reasonsAnnotation]: text },
      },
    })) as Pod;
  }
  const prev = current.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (prev?.status === 'False' && prev.reason === 'Unschedulable' && prev.message === result.message) return;
  const conditions = setCondition(current.status?.conditions, {
    type: 'PodScheduled',
    status: 'False',
    reason: 'Unschedulable',
    message: result.message,
    lastTransitionTime: rfc3339(ctx.nowMs()),
  });
  await ctx.api.updateStatus({ ...current, status: { ...current.status, conditions } });
}

/** Pods of the cache bound to a node and not finished: what a current snapshot has placed. */
function boundPods(cache: ClusterCache): number {
  let n = 0;
  for (const pod of cache.list<Pod>('Pod')) {
    const phase = pod.status?.phase;
    if (pod.spec.nodeName && phase !== 'Succeeded' && phase !== 'Failed') n += 1;
  }
  return n;
}

export function schedulerController(opts: SchedulerOptions = {}): SchedulerController {
  return new SchedulerController(opts);
}

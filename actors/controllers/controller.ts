/**
 * What a controller is, and the supervised actor that runs one. Controllers are
 * level-triggered (client-go / controller-runtime style): changes only map to keys
 * (`kind/namespace/name`); a deduplicating work queue never runs one key twice at once;
 * `reconcile(key)` re-reads desired and observed state from the cache and writes through the
 * API with preconditions; a failed reconcile is retried with capped exponential backoff.
 */

import { ApiErrorCode, isApiError, type ObjectApi, type ObjectKey, type WriteOptions } from '../api.js';
import type { EventSink } from '../events.js';
import {
  type ActorRef,
  type ActorSpec,
  type ActorSystem,
  type Effect,
  run,
  type Step,
  timer,
} from '../runtime.js';
import type { ChangeEvent } from '../watch-hub.js';
import type { ClusterCache } from './cache.js';
import { WorkQueue, type WorkQueueOptions } from './workqueue.js';

/** The API as controllers use it: objects, plus binding pods to nodes (the scheduler). */
export interface ControllerApi extends ObjectApi {
  /**
   * Binds a pending pod (`uid`) to `nodeName`, setting/removing pod annotations with it;
   * Conflict when stale (gone, bound, deleting).
   */
  bind(
    key: { namespace: string; name: string },
    uid: string,
    nodeName: string,
    annotations?: { set?: Record<string, string>; remove?: string[] },
    opts?: Pick<WriteOptions, 'leaderTerm'>,
  ): Promise<unknown>;
  /**
   * Deletes several objects in one Raft entry, each with its preconditions; per item, in
   * order, the object deleted or the ApiError it met (see `MasterApi.deleteMany`).
   */
  deleteMany(
    items: readonly { key: ObjectKey; preconditions?: { uid?: string; resourceVersion?: string } }[],
    opts?: Pick<WriteOptions, 'leaderTerm'>,
  ): Promise<unknown[]>;
}

export interface ControllerContext {
  readonly cache: ClusterCache;
  readonly api: ControllerApi;
  readonly events: EventSink;
  /** The one clock. */
  readonly nowMs: () => number;
  readonly log: (line: string) => void;
}

/** `requeueAfterMs`: look at the key again then (a deadline, minReadySeconds, a TTL). */
export type ReconcileResult = { requeueAfterMs?: number } | undefined;

export interface Controller {
  /** Lowercase, used in actor names, logs and metrics (`replicaset`). */
  readonly name: string;
  /** `source.component` of its events. Default `<name>-controller`. */
  readonly component?: string;
  /** Kinds whose changes `keysFor` maps. */
  readonly watches: readonly string[];
  /** The keys a change concerns (the object's own, its owner's, ...). */
  keysFor(change: ChangeEvent, cache: ClusterCache): Iterable<string>;
  /** Every key to visit on start and on each resync. */
  initialKeys(cache: ClusterCache): Iterable<string>;
  reconcile(key: string, ctx: ControllerContext): Promise<ReconcileResult>;
  /** Keys reconciled at once. Default 4. */
  readonly workers?: number;
  /** Full resync period. Default 60,000. */
  readonly resyncMs?: number;
  /** Called once when the controller starts on a new leader (e.g. to prime a cache of its own). */
  start?(ctx: ControllerContext): void;
  stop?(): void;
  /**
   * Called with every applied batch of changes (of any kind, in log order, the cache already
   * current) while this master does not run the controller — a follower, or between terms —
   * so that state of its own stays warm and a new leader's `start` need not rebuild it.
   * `observeReset` follows a snapshot restore, running or not (the state must be rebuilt;
   * a running controller then also gets a resync). Must be cheap.
   */
  observe?(changes: readonly ChangeEvent[], cache: ClusterCache): void;
  observeReset?(): void;
  /** Counters of its own (the scheduler's bindings, conflicts, ...), shown in `status()`. */
  counters?(): Record<string, number>;
}

/** Counters of one controller, kept across restarts of its actor. */
export interface ControllerStats {
  name: string;
  /** Its actor runs (false once stopped: this master stepped down, or before it started). */
  running: boolean;
  reconciles: number;
  errors: number;
  /** Reconciles that put their key back: errors (retried with backoff) and `requeueAfterMs`. */
  requeues: number;
  lastError?: string;
  /** Latency of the last (up to 1,024) reconciles. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  queueDepth: number;
  inFlight: number;
  delayed: number;
  /** Actor restarts after crashes (from the actor system). */
  restarts: number;
  /** The controller's own counters, if it keeps any. */
  counters?: Record<string, number>;
}

export type ControllerMsg =
  | { readonly type: 'enqueue'; readonly keys: readonly string[] }
  | { readonly type: 'resync' }
  | { readonly type: 'tick' }
  /** Reconciles finished since the last one: the runner's completions are taken when handled. */
  | { readonly type: 'done' }
  | { readonly type: 'wake' };

type ControllerEffect =
  | { kind: 'reconcile'; key: string; depth: number; delayed: number }
  | { kind: 'resync' };

interface ControllerState {
  /** Mutable: the queue is owned by this actor alone (a restart builds a new one). */
  readonly queue: WorkQueue;
  /** Set by a (re)start: the next tick asks for every key again. */
  readonly needsResync: boolean;
  readonly lastResyncMs: number;
}

const latencySamplesMax = 1_024;

/** A finished reconcile, waiting for the actor to mark its key done. */
interface Completion {
  readonly key: string;
  readonly ok: boolean;
  readonly requeueAfterMs?: number;
}

/** Runs one controller as an actor; `stats` survives restarts of the actor. */
export class ControllerRunner {
  readonly stats: ControllerStats;
  private readonly samples: number[] = [];
  private sampleNext = 0;
  private ref: ActorRef<ControllerMsg> | undefined;
  private system: ActorSystem | undefined;
  private stopped = false;
  /**
   * Reconciles finished but not yet marked done, and whether a `done` message is on its way.
   * One message carries every completion since the last: an actor handles one message per
   * event-loop turn, so a message per key capped a controller at one completion per turn.
   */
  private completions: Completion[] = [];
  /** Incarnations of the runner's actor: a reconcile started by a crashed one reports nothing. */
  private incarnation = 0;
  private donePending = false;

  constructor(
    readonly controller: Controller,
    private readonly ctx: ControllerContext,
    private readonly queueOptions: WorkQueueOptions = {},
  ) {
    this.stats = {
      name: controller.name,
      running: false,
      reconciles: 0,
      errors: 0,
      requeues: 0,
      latencyP50Ms: 0,
      latencyP99Ms: 0,
      queueDepth: 0,
      inFlight: 0,
      delayed: 0,
      restarts: 0,
    };
  }

  spawn(system: ActorSystem, parent: string): ActorRef<ControllerMsg> {
    this.system = system;
    this.ref = system.spawn(`${parent}-${this.controller.name}`, this.spec(), {
      mailboxMessagesMax: 100_000,
      restart: {
        restartBackoffMsMin: 100,
        restartBackoffMsMax: 10_000,
        restartsMax: 20,
        restartWindowMs: 60_000,
      },
      onGiveUp: (report) =>
        this.ctx.log(
          `controller ${this.controller.name} gave up after ${report.crashes} crashes: ${String(report.error)}`,
        ),
    });
    return this.ref;
  }

  get actor(): ActorRef<ControllerMsg> | undefined {
    return this.ref;
  }

  markStopped(): void {
    this.stopped = true;
  }

  private spec(): ActorSpec<ControllerState, ControllerMsg, ControllerEffect> {
    const workers = this.controller.workers ?? 4;
    const resyncMs = this.controller.resyncMs ?? 60_000;
    const nowMs = this.ctx.nowMs;
    const dispatch = (state: ControllerState): Effect<ControllerMsg, ControllerEffect>[] => {
      const q = state.queue;
      q.promote(nowMs());
      const effects: Effect<ControllerMsg, ControllerEffect>[] = [];
      while (q.inFlight < workers) {
        const key = q.take();
        if (key === undefined) break;
        effects.push(run({ kind: 'reconcile', key, depth: q.depth, delayed: q.delayedCount }));
      }
      const due = q.nextDueMs();
      if (due !== undefined)
        effects.push(timer('wake', Math.max(0, due - nowMs()), { type: 'wake' } as ControllerMsg));
      return effects;
    };
    return {
      init: () => {
        // A restarted actor may have lost a `done` on its way: the next completion sends one.
        this.donePending = false;
        // Completions of the crashed incarnation's reconciles must not mark the new queue's keys
        // done (that would let a key it is reconciling run twice at once).
        this.incarnation += 1;
        this.completions = [];
        return { queue: new WorkQueue(this.queueOptions), needsResync: true, lastResyncMs: nowMs() };
      },
      receive: (state, msg): Step<ControllerState, ControllerMsg, ControllerEffect> => {
        switch (msg.type) {
          case 'enqueue':
            for (const key of msg.keys) state.queue.add(key);
            return { state, effects: dispatch(state) };
          case 'resync':
            return {
              state: { ...state, needsResync: false, lastResyncMs: nowMs() },
              effects: [run({ kind: 'resync' })],
            };
          case 'tick': {
            const due = state.needsResync || nowMs() - state.lastResyncMs >= resyncMs;
            if (!due) return { state, effects: dispatch(state) };
            return {
              state: { ...state, needsResync: false, lastResyncMs: nowMs() },
              effects: [run({ kind: 'resync' })],
            };
          }
          case 'done': {
            const now = nowMs();
            for (const c of this.takeCompletions()) {
              state.queue.done(c.key, now, {
                ok: c.ok,
                ...(c.requeueAfterMs !== undefined ? { requeueAfterMs: c.requeueAfterMs } : {}),
              });
            }
            return { state, effects: dispatch(state) };
          }
          case 'wake':
            return { state, effects: dispatch(state) };
          default: {
            const unknown: never = msg;
            throw new Error(`controller: unknown message ${JSON.stringify(unknown)}`);
          }
        }
      },
      run: (effect, self) => {
        switch (effect.kind) {
          case 'reconcile':
            this.stats.queueDepth = effect.depth;
            this.stats.delayed = effect.delayed;
            this.stats.inFlight += 1;
            void this.reconcileOne(effect.key, self);
            return undefined;
          case 'resync': {
            const keys = [...this.controller.initialKeys(this.ctx.cache)];
            return { type: 'enqueue', keys };
          }
          default: {
            const unknown: never = effect;
            throw new Error(`controller: unknown effect ${JSON.stringify(unknown)}`);
          }
        }
      },
    };
  }

  private async reconcileOne(key: string, self: ActorRef<ControllerMsg>): Promise<void> {
    const incarnation = this.incarnation;
    const started = performance.now();
    let ok = true;
    let requeueAfterMs: number | undefined;
    try {
      const result = await this.controller.reconcile(key, this.ctx);
      requeueAfterMs = result?.requeueAfterMs;
    } catch (err) {
      ok = false;
      this.stats.errors += 1;
      this.stats.lastError = `${key}: ${err instanceof Error ? err.message : String(err)}`;
      // Conflicts are routine (another writer won): retried quietly.
      if (!this.stopped && !isConflict(err)) {
        this.ctx.log(`controller ${this.controller.name}: reconcile ${this.stats.lastError}`);
      }
    }
    this.stats.inFlight -= 1;
    this.stats.reconciles += 1;
    if (!ok || requeueAfterMs !== undefined) this.stats.requeues += 1;
    this.recordLatency(performance.now() - started);
    if (this.stopped || this.ref === undefined || incarnation !== this.incarnation) return;
    this.completions.push({ key, ok, ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) });
    if (this.donePending) return;
    this.donePending = true;
    this.system?.tell(self, { type: 'done' });
  }

  private takeCompletions(): Completion[] {
    const out = this.completions;
    this.completions = [];
    this.donePending = false;
    return out;
  }

  private recordLatency(ms: number): void {
    this.samples[this.sampleNext] = ms;
    this.sampleNext = (this.sampleNext + 1) % latencySamplesMax;
  }

  /** The counters, with latency percentiles over the last reconciles. */
  snapshot(restarts: number): ControllerStats {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    const round = (ms: number) => Math.round(ms * 100) / 100;
    const counters = this.controller.counters?.();
    return {
      ...this.stats,
      running: !this.stopped && this.ref !== undefined,
      latencyP50Ms: round(pick(0.5)),
      latencyP99Ms: round(pick(0.99)),
      restarts,
      ...(counters !== undefined ? { counters } : {}),
    };
  }
}

function isConflict(err: unknown): boolean {
  return isApiError(err) && err.code === ApiErrorCode.Conflict;
}

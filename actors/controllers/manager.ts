/**
 * Runs the controllers (and the scheduler) on the Raft leader only. On election it waits
 * until the local store holds every entry committed before the new term (a ReadIndex
 * barrier), builds the cache, and spawns one supervised actor per controller under a parent;
 * on step-down it stops them depth-first. Changes from the store's feed are mapped to keys by
 * each controller and told to its actor; a tick drives delayed keys and periodic resyncs.
 */

import { ApiError, ApiErrorCode } from '../api.js';
import { EventRecorder } from '../events.js';
import type { ActorSystem } from '../runtime.js';
import type { ObjectStore } from '../store.js';
import type { ChangeEvent } from '../watch-hub.js';
import { ClusterCache } from './cache.js';
import {
  type Controller,
  type ControllerApi,
  type ControllerContext,
  ControllerRunner,
  type ControllerStats,
} from './controller.js';

export interface ControllerManagerOptions {
  /** This master's id (events' `source.host`). */
  id: string;
  system: ActorSystem;
  store: ObjectStore;
  api: ControllerApi;
  /** Leadership: the Raft host's status and its read barrier. */
  host: { status(): { role: string; term: number }; readIndex(): Promise<number> };
  controllers: readonly Controller[];
  nowMs?: () => number;
  log?: (line: string) => void;
  /** Period of the tick that drives delayed keys and resyncs. Default 1,000. */
  tickMs?: number;
  /** Time a new leader waits for its read barrier before trying again. Default 500 between tries. */
  barrierRetryMs?: number;
  /**
   * Writes of all controllers (and their events) in flight at once; more wait here, in order.
   * Kubernetes' controllers are held back by their client's QPS; unbounded, ReplicaSets
   * scaling to 30,000 pods proposed thousands of creates at once, and every other write (node
   * agents' lease renewals and pod statuses) waited behind them until it timed out. Default 400:
   * the creates and bindings of a scale-up are bounded by this many over the time one takes to
   * commit (~0.3 s on a loaded machine), and since the writes in flight share Raft entries more
   * of them make fewer, larger entries. `bench:scheduler` at 10,000 pods, interleaved: 513–613
   * pods/s against 411–471 with 100, and 3.6–4.1 ms of CPU per pod against 4.2–5.0; 800 and
   * 1,000 did no better than 400.
   */
  writesInFlightMax?: number;
}

export interface ControllerManagerStatus {
  running: boolean;
  term?: number;
  controllers: ControllerStats[];
  events: { written: number; dropped: number; failed: number };
}

/**
 * `api` for the controllers of one term: once `live()` turns false (this master stepped down,
 * or a new term started) every write is refused with Unavailable before it is sent. A
 * controller's reconcile that was in flight at step-down (a slow-start batch of creates, a
 * binding) would otherwise keep writing through the new leader, beside that leader's own
 * controllers (duplicate pods, bindings the new scheduler never assumed). Reads pass.
 */
export function termGuardedApi(
  api: ControllerApi,
  live: () => boolean,
  term: number,
  writesInFlightMax = Number.POSITIVE_INFINITY,
): ControllerApi {
  const slots = new WriteSlots(writesInFlightMax);
  const refused = () =>
    new ApiError(ApiErrorCode.Unavailable, `controllers of term ${term} stopped: not writing`, {
      retryAfterMs: 500,
    });
  /** Runs `write` in a slot already held, giving the slot back when it settles. */
  const held = <R>(write: () => Promise<R>): Promise<R> => {
    let p: Promise<R>;
    try {
      p = write();
    } catch (err) {
      slots.release();
      return Promise.reject(err);
    }
    return p.finally(() => slots.release());
  };
  const guard =
    <A extends unknown[], R>(write: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      if (!live()) return Promise.reject(refused());
      // A free slot: sent at once (in call order with reads).
      if (slots.tryAcquire()) return held(() => write(...args));
      return slots.acquire().then(() => {
        // Checked again: the term may have ended while this write waited for its slot.
        if (!live()) {
          slots.release();
          throw refused();
        }
        return held(() => write(...args));
      });
    };
  // Each write also names its term: one already sent when the term ends is proposed only if
  // this master still leads that term, never forwarded to the next leader.
  const leaderTerm = term;
  return {
    create: guard((obj, opts) => api.create(obj, { ...opts, leaderTerm })),
    get: (key, opts) => api.get(key, opts),
    list: (kind, opts) => api.list(kind, opts),
    update: guard((obj, opts) => api.update(obj, { ...opts, leaderTerm })),
    updateStatus: guard((obj, opts) => api.updateStatus(obj, { ...opts, leaderTerm })),
    patch: guard((key, patch, opts) => api.patch(key, patch, { ...opts, leaderTerm })),
    delete: guard((key, opts) => api.delete(key, { ...opts, leaderTerm })),
    watch: (kind, opts) => api.watch(kind, opts),
    bind: guard((key, uid, nodeName, annotations) =>
      api.bind(key, uid, nodeName, annotations, { leaderTerm }),
    ),
    deleteMany: guard((items) => api.deleteMany(items, { leaderTerm })),
  };
}

/** A counting semaphore: `acquire` resolves in call order once fewer than `max` are held. */
class WriteSlots {
  private held = 0;
  private readonly waiting: (() => void)[] = [];
  private head = 0;

  constructor(private readonly max: number) {}

  /** Takes a slot if one is free (and nobody waits for one). */
  tryAcquire(): boolean {
    if (this.held >= this.max || this.head < this.waiting.length) return false;
    this.held += 1;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head];
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      next(); // the slot passes to the next waiter
      return;
    }
    this.held -= 1;
  }
}

export class ControllerManager {
  private readonly nowMs: () => number;
  private readonly log: (line: string) => void;
  private runners: ControllerRunner[] = [];
  private cache: ClusterCache | undefined;
  private recorder: EventRecorder | undefined;
  private tick: NodeJS.Timeout | undefined;
  /** Bumped on every leadership change: a start that finishes after one is abandoned. */
  private epoch = 0;
  private runningTerm: number | undefined;
  /** The api of the running term's controllers (writes refused once the term's epoch is over). */
  private termApi: ControllerApi | undefined;
  private closed = false;
  /**
   * The cluster cache, kept current on every master, leader or not: a new leader starts its
   * controllers at once instead of indexing the whole store first (1–2 s of one event-loop
   * turn at 30,000 pods on a loaded machine, long enough to miss its own heartbeats and hand
   * the cascade of elections on to the next leader). Costs followers a few µs per change.
   */
  private readonly warmCache: ClusterCache;
  /** Where the running term's controllers take the store's changes (after the cache applied them). */
  private onChanges: ((changes: readonly ChangeEvent[]) => void) | undefined;
  private onReset: (() => void) | undefined;
  private readonly unsubscribeStore: () => void;

  constructor(private readonly opts: ControllerManagerOptions) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log ?? ((line) => console.error(`[controllers ${opts.id}] ${line}`));
    this.warmCache = new ClusterCache(opts.store);
    this.unsubscribeStore = opts.store.subscribe((changes, _applied, reset) => {
      if (reset) {
        this.warmCache.rebuild();
        // State kept warm is stale after a restore, running or not; running ones also resync.
        for (const c of opts.controllers) c.observeReset?.();
        this.onReset?.();
        return;
      }
      this.warmCache.apply(changes);
      if (this.onChanges !== undefined) this.onChanges(changes);
      else for (const c of opts.controllers) c.observe?.(changes, this.warmCache);
    });
  }

  get running(): boolean {
    return this.runningTerm !== undefined;
  }

  /** The running controllers' context (tests and the `why` query read the cache through it). */
  get context(): ControllerContext | undefined {
    return this.cache && this.recorder ? this.makeContext(this.cache, this.recorder) : undefined;
  }

  /** Called by the Raft host on every leadership change. */
  onLeaderChange(leader: string | undefined, term: number): void {
    if (this.closed) return;
    const leading = leader === this.opts.id;
    if (leading && this.runningTerm === term) return;
    this.epoch += 1;
    this.stopControllers();
    if (leading) void this.startWhenCaughtUp(this.epoch, term);
  }

  status(): ControllerManagerStatus {
    return {
      running: this.running,
      ...(this.runningTerm !== undefined ? { term: this.runningTerm } : {}),
      controllers: this.runners.map((r) =>
        r.snapshot(r.actor ? (this.opts.system.actorMetrics(r.actor)?.restarts ?? 0) : 0),
      ),
      events: {
        written: this.recorder?.written ?? 0,
        dropped: this.recorder?.dropped ?? 0,
        failed: this.recorder?.failed ?? 0,
      },
    };
  }

  close(): void {
    this.closed = true;
    this.unsubscribeStore();
    this.epoch += 1;
    this.stopControllers();
  }

  private async startWhenCaughtUp(epoch: number, term: number): Promise<void> {
    for (;;) {
      try {
        await this.opts.host.readIndex();
        break;
      } catch {
        if (epoch !== this.epoch) return;
        await new Promise((r) => setTimeout(r, this.opts.barrierRetryMs ?? 500));
        if (epoch !== this.epoch) return;
      }
    }
    const st = this.opts.host.status();
    if (epoch !== this.epoch || st.role !== 'leader' || st.term !== term) return;
    this.startControllers(term);
  }

  private makeContext(cache: ClusterCache, recorder: EventRecorder): ControllerContext {
    return { cache, api: this.termApi ?? this.opts.api, events: recorder, nowMs: this.nowMs, log: this.log };
  }

  private startControllers(term: number): void {
    const epoch = this.epoch;
    this.termApi = termGuardedApi(
      this.opts.api,
      () => epoch === this.epoch && !this.closed,
      term,
      this.opts.writesInFlightMax ?? 400,
    );
    const cache = this.warmCache;
    const recorder = new EventRecorder({
      api: this.termApi,
      component: 'controller-manager',
      host: this.opts.id,
      nowMs: this.nowMs,
      log: this.log,
    });
    this.cache = cache;
    this.recorder = recorder;
    const ctx = this.makeContext(cache, recorder);
    this.runners = this.opts.controllers.map(
      (c) =>
        new ControllerRunner(c, {
          ...ctx,
          events: recorder.withComponent(c.component ?? `${c.name}-controller`),
        }),
    );
    const byKind = new Map<string, ControllerRunner[]>();
    for (const r of this.runners) {
      for (const kind of r.controller.watches) {
        const list = byKind.get(kind) ?? [];
        list.push(r);
        byKind.set(kind, list);
      }
    }
    this.onReset = () => {
      for (const r of this.runners) if (r.actor) this.opts.system.tell(r.actor, { type: 'resync' });
    };
    this.onChanges = (changes) => this.route(changes, byKind, cache);
    for (const r of this.runners) {
      r.controller.start?.(ctx);
      r.spawn(this.opts.system, `controller-t${term}`);
    }
    this.runningTerm = term;
    const tickMs = this.opts.tickMs ?? 1_000;
    this.tick = setInterval(() => {
      for (const r of this.runners) if (r.actor) this.opts.system.tell(r.actor, { type: 'tick' });
    }, tickMs);
    this.tick.unref?.();
    // The first tick resyncs: every actor starts with needsResync.
    for (const r of this.runners) if (r.actor) this.opts.system.tell(r.actor, { type: 'tick' });
    this.log(
      `controllers started for term ${term}: ${this.runners.map((r) => r.controller.name).join(', ')}`,
    );
  }

  private route(
    changes: readonly ChangeEvent[],
    byKind: Map<string, ControllerRunner[]>,
    cache: ClusterCache,
  ): void {
    const perRunner = new Map<ControllerRunner, Set<string>>();
    for (const c of changes) {
      for (const r of byKind.get(c.object.kind) ?? []) {
        let keys = perRunner.get(r);
        for (const key of r.controller.keysFor(c, cache)) {
          if (keys === undefined) {
            keys = new Set();
            perRunner.set(r, keys);
          }
          keys.add(key);
        }
      }
    }
    for (const [r, keys] of perRunner) {
      if (r.actor) this.opts.system.tell(r.actor, { type: 'enqueue', keys: [...keys] });
    }
  }

  private stopControllers(): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = undefined;
    this.onChanges = undefined;
    this.onReset = undefined;
    for (const r of this.runners) {
      r.markStopped();
      r.controller.stop?.();
      if (r.actor) this.opts.system.stop(r.actor);
    }
    if (this.runningTerm !== undefined) this.log(`controllers stopped (term ${this.runningTerm})`);
    this.runners = [];
    this.recorder?.close();
    this.recorder = undefined;
    this.cache = undefined;
    this.termApi = undefined;
    this.runningTerm = undefined;
  }
}

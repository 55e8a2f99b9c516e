/**
 * The watch hub: a bounded history of applied changes in log order, and the watchers fed
 * from it. Events are published once per applied batch, after the indexes were updated, so a
 * watcher registered at applied index A sees exactly the events with resourceVersion > A.
 */

import type { ApiObject, FieldSelector, ParsedLabelSelector } from '../core/index.js';
import { fieldSelectorMatches, labelSelectorMatches } from '../core/index.js';
import { ApiError, ApiErrorCode, type WatchEvent, type WatchStream } from './api.js';

/** One applied change. `prev` is the object before it (absent for ADDED). */
export interface ChangeEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly key: string;
  readonly object: ApiObject;
  readonly prev: ApiObject | undefined;
}

export interface WatchFilter {
  kind: string;
  namespace?: string;
  name?: string;
  labels?: ParsedLabelSelector;
  fields?: FieldSelector;
}

export interface WatchHubOptions {
  /** Changes retained for watches that resume from an older version and for paged lists. Default 50,000. */
  historyEventsMax?: number;
  /** Events queued for one watcher before it is ended as too slow. Default 10,000. */
  watchBufferEventsMax?: number;
  /** Live watchers. Default 10,000. */
  watchersMax?: number;
  /** Interval of BOOKMARK events to watchers that asked for them. Default 5,000. */
  bookmarkIntervalMs?: number;
}

export function matchesFilter(f: WatchFilter, obj: ApiObject): boolean {
  if (obj.kind !== f.kind) return false;
  const m = obj.metadata;
  if (f.namespace && (m.namespace ?? '') !== f.namespace) return false;
  if (f.name !== undefined && m.name !== f.name) return false;
  if (f.labels && !labelSelectorMatches(f.labels, m.labels ?? {})) return false;
  if (f.fields && !fieldSelectorMatches(f.fields, obj)) return false;
  return true;
}

/**
 * What a watcher sees of one change: a change that moves an object into the filter is ADDED,
 * out of it DELETED (as Kubernetes does for selector watches).
 */
export function filterChange(f: WatchFilter, e: ChangeEvent): WatchEvent | undefined {
  if (e.object.kind !== f.kind) return undefined;
  const now = e.type !== 'DELETED' && matchesFilter(f, e.object);
  const before = e.prev !== undefined && matchesFilter(f, e.prev);
  if (e.type === 'DELETED')
    return before || matchesFilter(f, e.object) ? { type: 'DELETED', object: e.object } : undefined;
  if (now && before) return { type: 'MODIFIED', object: e.object };
  if (now) return { type: 'ADDED', object: e.object };
  if (before) return { type: 'DELETED', object: e.object };
  return undefined;
}

class Watcher implements WatchStream {
  private queue: WatchEvent[] = [];
  private waiting:
    | { resolve: (v: WatchEvent[] | undefined) => void; reject: (e: unknown) => void }
    | undefined;
  private ended = false;
  private error: ApiError | undefined;
  /** The newest version this watcher has been given (for bookmarks). */
  lastRv: number;

  constructor(
    private readonly hub: WatchHub,
    readonly filter: WatchFilter,
    readonly bookmarks: boolean,
    fromRv: number,
    private readonly bufferMax: number,
  ) {
    this.lastRv = fromRv;
  }

  push(events: WatchEvent[], rv: number): void {
    if (this.ended) return;
    if (this.queue.length + events.length > this.bufferMax) {
      this.fail(
        new ApiError(
          ApiErrorCode.ResourceExhausted,
          `watch ${this.filter.kind}: more than ${this.bufferMax} events queued (watchBufferEventsMax); resume from the last version seen`,
        ),
      );
      return;
    }
    for (const e of events) this.queue.push(e);
    this.lastRv = Math.max(this.lastRv, rv);
    this.flush();
  }

  bookmark(rv: number): void {
    if (this.ended || !this.bookmarks || this.queue.length > 0 || rv <= this.lastRv) return;
    this.lastRv = rv;
    this.queue.push({
      type: 'BOOKMARK',
      object: { kind: this.filter.kind, metadata: { resourceVersion: String(rv) } } as unknown as ApiObject,
    });
    this.flush();
  }

  fail(err: ApiError): void {
    if (this.ended) return;
    this.error = err;
    this.queue = [];
    this.end();
  }

  next(): Promise<WatchEvent[] | undefined> {
    if (this.queue.length > 0) {
      const out = this.queue;
      this.queue = [];
      return Promise.resolve(out);
    }
    if (this.ended) return this.error ? Promise.reject(this.error) : Promise.resolve(undefined);
    if (this.waiting)
      return Promise.reject(new Error('WatchStream.next called while another call is pending'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  close(): void {
    if (this.ended) return;
    this.queue = [];
    this.end();
  }

  private end(): void {
    this.ended = true;
    this.hub.remove(this);
    const w = this.waiting;
    this.waiting = undefined;
    if (w) {
      if (this.error) w.reject(this.error);
      else w.resolve(undefined);
    }
  }

  private flush(): void {
    const w = this.waiting;
    if (!w || this.queue.length === 0) return;
    this.waiting = undefined;
    const out = this.queue;
    this.queue = [];
    w.resolve(out);
  }
}

/**
 * The node a pod watch is for: its filter selects `spec.nodeName=<node>` (a node agent's pod
 * watch; `""` for unbound pods). Such watchers are indexed by node, so a change is offered only
 * to the watchers of the nodes its pod was and is on, not to every agent's watch.
 */
export function indexedNodeOf(f: WatchFilter): string | undefined {
  if (f.kind !== 'Pod' || f.fields === undefined) return undefined;
  for (const r of f.fields.requirements) if (r.field === 'spec.nodeName' && r.op === '=') return r.value;
  return undefined;
}

/** `spec.nodeName` of a pod as field selectors read it (`""` when unbound); undefined for other kinds. */
function nodeNameOf(obj: ApiObject | undefined): string | undefined {
  if (obj === undefined || obj.kind !== 'Pod') return undefined;
  return obj.spec?.nodeName ?? '';
}

/** Hands `w` what it sees of `changes` (in order), skipping what it was already given. */
function deliver(w: Watcher, changes: readonly ChangeEvent[], rv: number): void {
  const out: WatchEvent[] = [];
  for (const c of changes) {
    if (c.rv <= w.lastRv) continue;
    const e = filterChange(w.filter, c);
    if (e) out.push(e);
  }
  if (out.length > 0) w.push(out, rv);
}

export class WatchHub {
  private readonly history: ChangeEvent[] = [];
  /** Position of the oldest retained event in `history` (a ring kept as array + head). */
  private head = 0;
  /** Every change with rv > this is in the history. */
  private historyStartRv = 0;
  private readonly watchers = new Set<Watcher>();
  /** Watchers not indexed: offered every change. */
  private readonly general = new Set<Watcher>();
  /** Pod watchers by the `spec.nodeName` their field selector requires (see `indexedNodeOf`). */
  private readonly byNode = new Map<string, Set<Watcher>>();
  private readonly historyEventsMax: number;
  private readonly watchBufferEventsMax: number;
  private readonly watchersMax: number;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private latestRv = 0;

  constructor(opts: WatchHubOptions = {}) {
    this.historyEventsMax = opts.historyEventsMax ?? 50_000;
    this.watchBufferEventsMax = opts.watchBufferEventsMax ?? 10_000;
    this.watchersMax = opts.watchersMax ?? 10_000;
    const interval = opts.bookmarkIntervalMs ?? 5_000;
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), interval);
    this.bookmarkTimer.unref();
  }

  /** The oldest version a watch or continue token may start from. */
  oldestRv(): number {
    return this.historyStartRv;
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Appends one batch's changes (in log order) and hands them to watchers; `rv` is the batch's applied index. */
  publish(changes: readonly ChangeEvent[], rv: number): void {
    this.latestRv = rv;
    for (const c of changes) this.history.push(c);
    const excess = this.history.length - this.head - this.historyEventsMax;
    if (excess > 0) {
      this.historyStartRv = this.history[this.head + excess - 1].rv;
      this.head += excess;
      if (this.head > 4096 && this.head * 2 > this.history.length) {
        this.history.splice(0, this.head);
        this.head = 0;
      }
    }
    if (changes.length === 0 || this.watchers.size === 0) return;
    for (const w of this.general) deliver(w, changes, rv);
    if (this.byNode.size === 0) return;
    // Indexed watchers: only the changes of pods that were or are on their node, in log order.
    const offered = new Map<Watcher, ChangeEvent[]>();
    const offer = (node: string | undefined, c: ChangeEvent): void => {
      if (node === undefined) return;
      const ws = this.byNode.get(node);
      if (ws === undefined) return;
      for (const w of ws) {
        const list = offered.get(w);
        if (list === undefined) offered.set(w, [c]);
        else if (list[list.length - 1] !== c) list.push(c);
      }
    };
    for (const c of changes) {
      const now = nodeNameOf(c.object);
      if (now === undefined) continue;
      offer(now, c);
      const before = nodeNameOf(c.prev);
      if (before !== now) offer(before, c);
    }
    for (const [w, list] of offered) deliver(w, list, rv);
  }

  /** Changes with rv > `fromRv`, oldest first. Throws Gone when they are no longer all retained. */
  changesSince(fromRv: number): ChangeEvent[] {
    if (fromRv < this.historyStartRv) {
      throw new ApiError(
        ApiErrorCode.Gone,
        `resourceVersion ${fromRv} is too old: history starts after ${this.historyStartRv}; list again`,
      );
    }
    let lo = this.head;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid].rv <= fromRv) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo);
  }

  /**
   * Registers a watcher that has been given everything up to `fromRv` (initial events already
   * included in `initial`). Throws ResourceExhausted beyond `watchersMax`.
   */
  watch(filter: WatchFilter, fromRv: number, initial: WatchEvent[], bookmarks: boolean): WatchStream {
    if (this.watchers.size >= this.watchersMax) {
      throw new ApiError(
        ApiErrorCode.ResourceExhausted,
        `watch ${filter.kind}: ${this.watchersMax} watchers already (watchersMax)`,
      );
    }
    const w = new Watcher(this, filter, bookmarks, fromRv, this.watchBufferEventsMax);
    this.watchers.add(w);
    const node = indexedNodeOf(filter);
    if (node === undefined) this.general.add(w);
    else {
      let ws = this.byNode.get(node);
      if (ws === undefined) {
        ws = new Set();
        this.byNode.set(node, ws);
      }
      ws.add(w);
    }
    if (initial.length > 0) w.push(initial, fromRv);
    return w;
  }

  remove(w: Watcher): void {
    this.watchers.delete(w);
    this.general.delete(w);
    const node = indexedNodeOf(w.filter);
    const ws = node === undefined ? undefined : this.byNode.get(node);
    if (node !== undefined && ws !== undefined) {
      ws.delete(w);
      if (ws.size === 0) this.byNode.delete(node);
    }
  }

  /**
   * The state machine was replaced by a snapshot: the changes in between are unknown, so
   * every watcher ends with Gone (its client relists) and the history restarts at `rv`.
   */
  reset(rv: number): void {
    this.history.length = 0;
    this.head = 0;
    this.historyStartRv = rv;
    this.latestRv = rv;
    for (const w of [...this.watchers]) {
      w.fail(
        new ApiError(
          ApiErrorCode.Gone,
          `watch ${w.filter.kind}: this master installed a snapshot at ${rv}; list again`,
        ),
      );
    }
  }

  /** Ends every watcher with `err` (shutdown, or this master lost its state). */
  endAll(err: ApiError): void {
    for (const w of [...this.watchers]) w.fail(err);
  }

  close(): void {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.bookmarkTimer = undefined;
    this.endAll(new ApiError(ApiErrorCode.Unavailable, 'master shutting down', { retryAfterMs: 100 }));
  }

  private sendBookmarks(): void {
    for (const w of this.watchers) w.bookmark(this.latestRv);
  }
}

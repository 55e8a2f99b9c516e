/**
 * Events as Kubernetes records them: controllers, the scheduler and agents say what they did
 * (`reason`, `message`) about an object (`involvedObject`). Repeats of the same event are
 * deduplicated into one Event whose `count` and `lastTimestamp` move, written at most once per
 * `updateIntervalMs`. Writing never blocks the caller: events go through a bounded queue with
 * a token-bucket rate limit, and the excess is dropped and counted (events are advice, not
 * state). Retention (TTL and a cap) is the event-retention controller's job.
 */

import type { ApiObject, Event, ObjectReference } from '../core/index.js';
import { ApiErrorCode, isApiError, type ObjectApi } from './api.js';

export interface EventRecorderOptions {
  api: ObjectApi;
  /** `source.component` / `reportingComponent`: `replicaset-controller`, `default-scheduler`, `kubelet`. */
  component: string;
  /** `source.host` / `reportingInstance` (the master or node). */
  host?: string;
  nowMs?: () => number;
  /** Sustained writes per second. Default 50. */
  writesPerSecond?: number;
  /** Writes allowed at once above the sustained rate. Default 200. */
  writesBurst?: number;
  /**
   * Events waiting to be written; beyond it the oldest waiting one is dropped (and counted): a
   * writer that cannot reach a master keeps the newest news, never a growing backlog. Default 1,000.
   */
  queueEventsMax?: number;
  /** Deduplicated events remembered (LRU). Default 4,096. */
  dedupEntriesMax?: number;
  /** A repeated event's count is written at most this often. Default 1,000. */
  updateIntervalMs?: number;
  /**
   * How long a new event waits before it is written, in ms, so that it rides behind the
   * writes that matter more (an agent's pod status right after a start). Default 0.
   */
  firstWriteDelayMs?: number;
  log?: (line: string) => void;
}

export type EventType = 'Normal' | 'Warning';

/** Where events are said; each controller gets one with its own `source.component`. */
export interface EventSink {
  record(obj: ApiObject | ObjectReference, type: EventType, reason: string, message: string): void;
}

interface Aggregate {
  namespace: string;
  name: string;
  count: number;
  /** Count already written. */
  written: number;
  firstTimestamp: string;
  lastTimestamp: string;
  lastWriteMs: number;
  /**
   * What the Event says, while there is something to write: dropped once the count is written
   * (a node agent remembers thousands of events; a repeat brings all of it again).
   */
  base: EventBase | undefined;
}

type EventBase = Omit<Event, 'metadata' | 'count' | 'firstTimestamp' | 'lastTimestamp'>;

function rfc3339(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** An ObjectReference to `obj` (or the reference itself). */
export function referenceTo(obj: ApiObject | ObjectReference): ObjectReference {
  if ('metadata' in obj && obj.metadata !== undefined) {
    const m = obj.metadata;
    return {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      name: m.name ?? '',
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
    };
  }
  return obj as ObjectReference;
}

export class EventRecorder implements EventSink {
  /** Events dropped (queue full or rate limited). */
  dropped = 0;
  written = 0;
  failed = 0;
  private readonly api: ObjectApi;
  private readonly nowMs: () => number;
  private readonly aggregates = new Map<string, Aggregate>();
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private tokens: number;
  private lastRefillMs: number;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private closed = false;
  private seq = 0;
  private readonly opts: Required<
    Pick<
      EventRecorderOptions,
      | 'writesPerSecond'
      | 'writesBurst'
      | 'queueEventsMax'
      | 'dedupEntriesMax'
      | 'updateIntervalMs'
      | 'firstWriteDelayMs'
    >
  >;

  constructor(private readonly options: EventRecorderOptions) {
    this.api = options.api;
    this.nowMs = options.nowMs ?? Date.now;
    this.opts = {
      writesPerSecond: options.writesPerSecond ?? 50,
      writesBurst: options.writesBurst ?? 200,
      queueEventsMax: options.queueEventsMax ?? 1_000,
      dedupEntriesMax: options.dedupEntriesMax ?? 4_096,
      updateIntervalMs: options.updateIntervalMs ?? 1_000,
      firstWriteDelayMs: options.firstWriteDelayMs ?? 0,
    };
    this.tokens = this.opts.writesBurst;
    this.lastRefillMs = this.nowMs();
  }

  /** A sink that records with another `source.component` through this recorder's queue and limits. */
  withComponent(component: string): EventSink {
    return { record: (obj, type, reason, message) => this.recordAs(component, obj, type, reason, message) };
  }

  /** Records an event about `obj`; returns at once. */
  record(obj: ApiObject | ObjectReference, type: EventType, reason: string, message: string): void {
    this.recordAs(this.options.component, obj, type, reason, message);
  }

  private recordAs(
    component: string,
    obj: ApiObject | ObjectReference,
    type: EventType,
    reason: string,
    message: string,
  ): void {
    if (this.closed) return;
    const involved = referenceTo(obj);
    const namespace = involved.namespace || 'default';
    const dedupKey = [
      component,
      namespace,
      involved.kind,
      involved.name,
      involved.uid ?? '',
      involved.fieldPath ?? '',
      type,
      reason,
      message,
    ].join('\u0000');
    const now = this.nowMs();
    const stamp = rfc3339(now);
    let agg = this.aggregates.get(dedupKey);
    if (agg !== undefined) {
      this.aggregates.delete(dedupKey); // LRU: move to the end
      agg.count += 1;
      agg.lastTimestamp = stamp;
      agg.base ??= this.baseOf(component, involved, type, reason, message);
    } else {
      agg = {
        namespace,
        name: `${(involved.name ?? 'object').slice(0, 230)}.${now.toString(16)}${(this.seq++ % 4096).toString(16).padStart(3, '0')}`,
        count: 1,
        written: 0,
        firstTimestamp: stamp,
        lastTimestamp: stamp,
        lastWriteMs: 0,
        base: this.baseOf(component, involved, type, reason, message),
      };
    }
    this.aggregates.set(dedupKey, agg);
    while (this.aggregates.size > this.opts.dedupEntriesMax) {
      const oldest = this.aggregates.keys().next().value as string;
      this.aggregates.delete(oldest);
    }
    if (this.queued.has(dedupKey)) return;
    while (this.queue.length >= this.opts.queueEventsMax) {
      const oldest = this.queue.shift() as string;
      this.queued.delete(oldest);
      this.dropped += 1;
    }
    this.queue.push(dedupKey);
    this.queued.add(dedupKey);
    this.schedule(
      agg.written > 0
        ? Math.max(0, agg.lastWriteMs + this.opts.updateIntervalMs - now)
        : this.opts.firstWriteDelayMs,
    );
  }

  private baseOf(
    component: string,
    involved: ObjectReference,
    type: EventType,
    reason: string,
    message: string,
  ): EventBase {
    const { resourceVersion: _rv, ...ref } = involved;
    return {
      apiVersion: 'v1',
      kind: 'Event',
      involvedObject: ref,
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      type,
      source: {
        component,
        ...(this.options.host ? { host: this.options.host } : {}),
      },
      reportingComponent: component,
      ...(this.options.host ? { reportingInstance: this.options.host } : {}),
    };
  }

  /** Stops writing; pending events are dropped. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queued.clear();
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.draining || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, delayMs);
    this.timer.unref?.();
  }

  private takeToken(): boolean {
    const now = this.nowMs();
    this.tokens = Math.min(
      this.opts.writesBurst,
      this.tokens + ((now - this.lastRefillMs) / 1000) * this.opts.writesPerSecond,
    );
    this.lastRefillMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const key = this.queue.shift() as string;
        this.queued.delete(key);
        const agg = this.aggregates.get(key);
        if (agg === undefined || agg.count === agg.written) continue;
        if (!this.takeToken()) {
          this.dropped += 1;
          continue;
        }
        await this.write(agg);
      }
    } finally {
      this.draining = false;
    }
  }

  private async write(agg: Aggregate): Promise<void> {
    const count = agg.count;
    const base = agg.base;
    // Every aggregate with a count left to write has its base (set by each `recordAs`).
    if (base === undefined) return;
    const event = {
      ...base,
      metadata: { name: agg.name, namespace: agg.namespace },
      count,
      firstTimestamp: agg.firstTimestamp,
      lastTimestamp: agg.lastTimestamp,
    };
    try {
      if (agg.written === 0) await this.api.create(event);
      else {
        await this.api.patch(
          { kind: 'Event', namespace: agg.namespace, name: agg.name },
          { count, lastTimestamp: agg.lastTimestamp },
        );
      }
      agg.written = count;
      agg.lastWriteMs = this.nowMs();
      if (agg.count === count) agg.base = undefined;
      this.written += 1;
    } catch (err) {
      this.failed += 1;
      // Deleted by retention meanwhile: the next repeat starts a new Event.
      if (
        isApiError(err) &&
        (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.AlreadyExists)
      ) {
        agg.written = 0;
        agg.name = `${agg.name.split('.')[0]}.${this.nowMs().toString(16)}${(this.seq++ % 4096).toString(16)}`;
      }
      this.options.log?.(`event ${base.reason} for ${base.involvedObject.name}: ${String(err)}`);
    }
  }
}

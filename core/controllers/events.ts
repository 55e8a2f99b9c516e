/**
 * Event retention, pure: Events expire a TTL after they were last written (as Kubernetes'
 * `--event-ttl` on etcd leases), and the cluster keeps at most a fixed number of them, the
 * oldest going first.
 */

import type { Event } from '../objects.js';

/** Kubernetes' `--event-ttl` default: one hour. */
export const defaultEventTtlMs = 3_600_000;
/** Events kept in the whole cluster at most. */
export const defaultEventsMax = 10_000;
/** Deletes one pass of the cap issues at most; the rest come on the next pass. */
export const eventDeletesPerPassMax = 1_000;

/**
 * When `event` was last written (ms): lastTimestamp, else firstTimestamp, else its creation.
 * Parsed on every call, not remembered per Event in a WeakMap: a weak table over every Event
 * (tens of thousands, most of them new) made the masters' garbage collections slower than
 * the parsing it saved.
 */
export function eventLastSeenMs(event: Event): number {
  const ms =
    parsedMs(event.lastTimestamp) ??
    parsedMs(event.firstTimestamp) ??
    parsedMs(event.metadata.creationTimestamp);
  return ms ?? 0;
}

function parsedMs(t: string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

interface CapKey {
  readonly event: Event;
  readonly ms: number;
  readonly name: string;
}

/**
 * An Event's order key for the cap, built once per entry of the queue: its time parsed once
 * (not twice per comparison), and its tiebreak built once (timestamps have second resolution:
 * most comparisons tie).
 */
function capKeyOf(event: Event, lastSeenMs = eventLastSeenMs(event)): CapKey {
  return { event, ms: lastSeenMs, name: `${event.metadata.namespace}/${event.metadata.name}` };
}

/**
 * Events the cap deletes below `eventsMax` once it is exceeded (a twentieth of it), so that a
 * steady stream of new Events costs one pass per that many, not one pass per Event.
 */
export function eventCapSlack(eventsMax: number): number {
  return Math.floor(eventsMax / 20);
}

/** Ms until `event` expires (0: it has). */
export function eventExpiresInMs(event: Event, ttlMs: number, nowMs: number): number {
  return Math.max(0, eventLastSeenMs(event) + ttlMs - nowMs);
}

/**
 * The expiry pass: the Events whose TTL has passed, and the ms until the next of the others
 * expires (undefined when none is left).
 */
export function planEventExpiry(
  events: Iterable<Event>,
  ttlMs: number,
  nowMs: number,
): { expired: Event[]; nextInMs: number | undefined } {
  const expired: Event[] = [];
  let nextInMs: number | undefined;
  for (const event of events) {
    const left = eventExpiresInMs(event, ttlMs, nowMs);
    if (left === 0) expired.push(event);
    else if (nextInMs === undefined || left < nextInMs) nextInMs = left;
  }
  return { expired, nextInMs };
}

/** Whether `a` was written before `b` (ties: by namespace/name). */
function olderThan(a: CapKey, b: CapKey): boolean {
  return a.ms < b.ms || (a.ms === b.ms && a.name < b.name);
}

/**
 * The cap's order of Events, kept as they are written rather than sorted on every pass: a
 * binary min-heap on (last written, namespace/name). The cap's pass takes the oldest in
 * O(k log n) for k deletions; sorting all of them, once per 500 new Events, had cost the
 * leader 4% of its CPU at 30,000 pods. An Event written again is added again; its old entry
 * (and a deleted Event's) goes stale, and the caller says which entries are current, so stale
 * ones are dropped as they come up. `size` counts stale entries too: reset from the cache when
 * it grows well past the Events there are. A queue that missed writes (its owner stopped
 * watching) is `invalidate`d: it takes no adds until the next `reset`.
 */
export class EventAgeQueue {
  private heap: CapKey[] = [];
  private missedWrites = false;

  get size(): number {
    return this.heap.length;
  }

  /** Whether it must be `reset` from every Event before use. */
  get invalid(): boolean {
    return this.missedWrites;
  }

  /** Drops everything; adds are ignored until the next `reset`. */
  invalidate(): void {
    this.heap = [];
    this.missedWrites = true;
  }

  /** Adds `event` as written at `lastSeenMs` (parsed here unless the caller has it). */
  add(event: Event, lastSeenMs = eventLastSeenMs(event)): void {
    if (this.missedWrites) return;
    const heap = this.heap;
    const key = capKeyOf(event, lastSeenMs);
    let i = heap.length;
    heap.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!olderThan(key, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = key;
  }

  /** Forgets everything and holds `events` (O(n)). */
  reset(events: Iterable<Event>): void {
    this.missedWrites = false;
    this.heap = Array.from(events, (event) => capKeyOf(event));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /**
   * Removes and returns up to `n` Events, oldest first, skipping (and dropping) entries that
   * `isCurrent` refuses and repeats of one Event.
   */
  takeOldest(n: number, isCurrent: (event: Event) => boolean): Event[] {
    const taken = new Set<Event>();
    while (taken.size < n && this.heap.length > 0) {
      const top = this.heap[0].event;
      const last = this.heap.pop() as CapKey;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.siftDown(0);
      }
      if (isCurrent(top)) taken.add(top);
    }
    return [...taken];
  }

  private siftDown(at: number): void {
    const heap = this.heap;
    const key = heap[at];
    let i = at;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && olderThan(heap[right], heap[left]) ? right : left;
      if (!olderThan(heap[child], key)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = key;
  }
}

/**
 * How many Events the cap deletes in one pass once `count` exceed `eventsMax`: down to
 * `eventsMax` less the slack (`eventCapSlack`), at most `eventDeletesPerPassMax`.
 */
export function eventCapExcess(count: number, eventsMax: number): number {
  if (count <= eventsMax) return 0;
  return Math.min(count - (eventsMax - eventCapSlack(eventsMax)), eventDeletesPerPassMax);
}

/**
 * Event retention on the leader: an Event is deleted `eventTtlMs` after it was last written
 * (Kubernetes' `--event-ttl`, default 1 h), and the cluster keeps at most `eventsMax` Events
 * (default 10,000), deleting the least recently written first (down to a twentieth below the cap,
 * so a steady stream of new Events costs one pass per 500). Two passes, each one key of the
 * work queue: the cap's, when an Event is added beyond the cap; the expiry's, which comes back
 * when the next Event expires (at most once a second, at least once a minute). Each pass
 * deletes in one Raft entry per up to 1,000 Events (`deleteMany`), not one per Event. The
 * cap's pass takes the oldest from a queue fed as Events are written (`EventAgeQueue`), rebuilt
 * from the cache when the controllers (re)start, when it has run dry while the cap is still
 * exceeded, or when stale entries outnumber the Events. Decisions come from
 * `core/controllers/events.ts`.
 */

import {
  defaultEventsMax,
  defaultEventTtlMs,
  EventAgeQueue,
  eventCapExcess,
  eventLastSeenMs,
  planEventExpiry,
} from '../../core/controllers/events.js';
import type { Event } from '../../core/index.js';
import { apiLimits, isApiError } from '../api.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { isGoneOrConflict } from './workload.js';

export interface EventRetentionOptions {
  /** An Event not written for this long is deleted. Default 3,600,000 (1 h). */
  eventTtlMs?: number;
  /** Events kept in the cluster at most; beyond it the oldest go. Default 10,000. */
  eventsMax?: number;
}

/** The key of the pass that enforces the cap. */
const capKey = 'events-cap';
/** The key of the pass that deletes expired Events. */
const expiryKey = 'events-expiry';
/** The expiry pass (a look at every Event) runs at most this often, ms. */
const expiryPassMsMin = 1_000;
/** ... and at least this often, ms (an Event created meanwhile expires no sooner than the TTL). */
const expiryPassMsMax = 60_000;
/** Stale entries the cap's queue may hold beyond twice the Events before it is rebuilt. */
const queueStaleEntriesSlack = 1_024;

export function eventRetentionController(opts: EventRetentionOptions = {}): Controller {
  const ttlMs = opts.eventTtlMs ?? defaultEventTtlMs;
  const eventsMax = opts.eventsMax ?? defaultEventsMax;
  /** When the next expiry pass is due (ms, the controllers' clock); until the first, now. */
  let nextPassAtMs = Number.NEGATIVE_INFINITY;
  /** Filled from the cache at the cap's first pass (and again whenever it missed changes). */
  const queue = new EventAgeQueue();
  queue.invalidate();
  return {
    name: 'eventretention',
    watches: ['Event'],
    workers: 2,
    *keysFor(change, cache) {
      if (change.type === 'DELETED') return;
      const event = change.object as Event;
      const lastSeenMs = eventLastSeenMs(event);
      const events = cache.countOfKind('Event');
      queue.add(event, lastSeenMs);
      if (queue.size > 2 * events + queueStaleEntriesSlack) queue.invalidate();
      if (change.type === 'ADDED' && events > eventsMax) yield capKey;
      // An Event expiring well before the next pass (written with an old timestamp) brings it
      // forward; a new Event expires a whole TTL from now, after the pass already due.
      if (lastSeenMs + ttlMs < nextPassAtMs - expiryPassMsMin) yield expiryKey;
    },
    *initialKeys() {
      // The controllers (re)start: changes may have gone by unseen.
      queue.invalidate();
      yield capKey;
      yield expiryKey;
    },
    async reconcile(key, ctx): Promise<ReconcileResult> {
      if (key === capKey) {
        if (queue.invalid) queue.reset(ctx.cache.list<Event>('Event'));
        return enforceCap(ctx, eventsMax, queue);
      }
      if (key !== expiryKey) return undefined;
      const { expired, nextInMs } = planEventExpiry(ctx.cache.list<Event>('Event'), ttlMs, ctx.nowMs());
      await deleteEvents(ctx, expired);
      const requeueAfterMs = Math.max(expiryPassMsMin, Math.min(nextInMs ?? ttlMs, expiryPassMsMax));
      nextPassAtMs = ctx.nowMs() + requeueAfterMs;
      return { requeueAfterMs };
    },
  };
}

/**
 * Deletes `events` unless written since they were read (resourceVersion precondition: a
 * repeat recorded meanwhile renews one), up to `apiLimits.deleteManyItemsMax` per Raft entry.
 */
async function deleteEvents(ctx: ControllerContext, events: readonly Event[]): Promise<void> {
  for (let i = 0; i < events.length; i += apiLimits.deleteManyItemsMax) {
    const chunk = events.slice(i, i + apiLimits.deleteManyItemsMax);
    const results = await ctx.api.deleteMany(
      chunk.map((ev) => ({
        key: { kind: 'Event', namespace: ev.metadata.namespace ?? '', name: ev.metadata.name ?? '' },
        preconditions: { resourceVersion: ev.metadata.resourceVersion ?? '' },
      })),
    );
    for (const r of results) if (isApiError(r) && !isGoneOrConflict(r)) throw r;
  }
}

/**
 * One pass of the cap. Events that could not be deleted (an error other than gone or renewed)
 * leave the queue with the pass, so it is invalidated (rebuilt at the next pass); so is a queue
 * that ran dry while the cap is still exceeded (it missed some Events).
 */
async function enforceCap(
  ctx: ControllerContext,
  eventsMax: number,
  queue: EventAgeQueue,
): Promise<ReconcileResult> {
  const excess = eventCapExcess(ctx.cache.countOfKind('Event'), eventsMax);
  if (excess === 0) return undefined;
  const oldest = queue.takeOldest(excess, (ev) => {
    const now = ctx.cache.get<Event>('Event', ev.metadata.namespace ?? '', ev.metadata.name ?? '');
    return now === ev;
  });
  if (oldest.length < excess) queue.invalidate();
  try {
    await deleteEvents(ctx, oldest);
  } catch (err) {
    queue.invalidate();
    throw err;
  }
  return ctx.cache.countOfKind('Event') > eventsMax ? { requeueAfterMs: 100 } : undefined;
}

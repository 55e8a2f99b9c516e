/**
 * Event retention on the leader: an Event is deleted `eventTtlMs` after it was last written
 * (Kubernetes' `--event-ttl`, default 1 h), and the cluster keeps at most `eventsMax` Events
 * (default 10,000), deleting the least recently written first (down to a twentieth below the cap,
 * so a steady stream of new Events costs one pass per 500). Each Event's key comes back
 * when it expires (a delayed requeue), so nothing scans the Events but the cap and the resync.
 * Decisions come from `core/controllers/events.ts`.
 */

import {
  defaultEventsMax,
  defaultEventTtlMs,
  eventExpiresInMs,
  planEventCap,
} from '../../core/controllers/events.js';
import type { Event } from '../../core/index.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { isGoneOrConflict, keyOf } from './workload.js';

export interface EventRetentionOptions {
  /** An Event not written for this long is deleted. Default 3,600,000 (1 h). */
  eventTtlMs?: number;
  /** Events kept in the cluster at most; beyond it the oldest go. Default 10,000. */
  eventsMax?: number;
}

/** The key of the pass that enforces the cap. */
const capKey = 'events-cap';
/** Deletes in flight at once. */
const eventDeletesInFlightMax = 50;

export function eventRetentionController(opts: EventRetentionOptions = {}): Controller {
  const ttlMs = opts.eventTtlMs ?? defaultEventTtlMs;
  const eventsMax = opts.eventsMax ?? defaultEventsMax;
  return {
    name: 'eventretention',
    watches: ['Event'],
    workers: 2,
    *keysFor(change, cache) {
      if (change.type === 'DELETED') return;
      yield change.key;
      if (change.type === 'ADDED' && cache.countOfKind('Event') > eventsMax) yield capKey;
    },
    *initialKeys(cache: ClusterCache) {
      yield capKey;
      for (const ev of cache.list<Event>('Event')) yield keyOf(ev);
    },
    async reconcile(key, ctx): Promise<ReconcileResult> {
      if (key === capKey) return enforceCap(ctx, eventsMax);
      const ev = ctx.cache.getByKey(key) as Event | undefined;
      if (ev === undefined) return undefined;
      const leftMs = eventExpiresInMs(ev, ttlMs, ctx.nowMs());
      if (leftMs > 0) return { requeueAfterMs: leftMs };
      await deleteEvent(ctx, ev);
      return undefined;
    },
  };
}

/**
 * Deletes `ev` if it has not been written since it was read (resourceVersion precondition): a
 * repeat recorded meanwhile renews it.
 */
async function deleteEvent(ctx: ControllerContext, ev: Event): Promise<void> {
  try {
    await ctx.api.delete(
      { kind: 'Event', namespace: ev.metadata.namespace ?? '', name: ev.metadata.name ?? '' },
      { preconditions: { resourceVersion: ev.metadata.resourceVersion ?? '' } },
    );
  } catch (err) {
    if (!isGoneOrConflict(err)) throw err;
  }
}

async function enforceCap(ctx: ControllerContext, eventsMax: number): Promise<ReconcileResult> {
  if (ctx.cache.countOfKind('Event') <= eventsMax) return undefined;
  const victims = planEventCap(ctx.cache.list<Event>('Event'), eventsMax);
  for (let i = 0; i < victims.length; i += eventDeletesInFlightMax) {
    await Promise.all(victims.slice(i, i + eventDeletesInFlightMax).map((ev) => deleteEvent(ctx, ev)));
  }
  return ctx.cache.countOfKind('Event') > eventsMax ? { requeueAfterMs: 100 } : undefined;
}

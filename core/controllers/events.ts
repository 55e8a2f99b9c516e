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

/** Parsed times of committed (immutable) Events: the cap's pass reads each of them many times. */
const lastSeenOf = new WeakMap<Event, number>();

/** When `event` was last written (ms): lastTimestamp, else firstTimestamp, else its creation. */
export function eventLastSeenMs(event: Event): number {
  const known = lastSeenOf.get(event);
  if (known !== undefined) return known;
  let seen = 0;
  for (const t of [event.lastTimestamp, event.firstTimestamp, event.metadata.creationTimestamp]) {
    if (t === undefined) continue;
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) {
      seen = ms;
      break;
    }
  }
  lastSeenOf.set(event, seen);
  return seen;
}

interface CapKey {
  readonly event: Event;
  readonly ms: number;
  readonly name: string;
}

/** Sort keys of committed Events, built once per Event (the cap's pass sorts 10,000+ of them, one pass per 500 new). */
const capKeys = new WeakMap<Event, CapKey>();

/**
 * An Event's sort key for the cap: its time parsed once (not twice per comparison), and its
 * tiebreak built once (timestamps have second resolution: most comparisons tie).
 */
function capKeyOf(event: Event): CapKey {
  let key = capKeys.get(event);
  if (key === undefined) {
    key = { event, ms: eventLastSeenMs(event), name: `${event.metadata.namespace}/${event.metadata.name}` };
    capKeys.set(event, key);
  }
  return key;
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

/**
 * The events to delete once more than `eventsMax` exist, so that `eventsMax` less the slack
 * (`eventCapSlack`) remain: the least recently written first.
 */
export function planEventCap(events: readonly Event[], eventsMax: number): Event[] {
  if (events.length <= eventsMax) return [];
  const excess = events.length - (eventsMax - eventCapSlack(eventsMax));
  const keyed = events.map(capKeyOf);
  keyed.sort((a, b) => a.ms - b.ms || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return keyed.slice(0, Math.min(excess, eventDeletesPerPassMax)).map((k) => k.event);
}

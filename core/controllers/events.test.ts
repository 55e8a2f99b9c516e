import { describe, expect, it } from 'vitest';
import type { Event } from '../objects.js';
import {
  EventAgeQueue,
  eventCapExcess,
  eventExpiresInMs,
  eventLastSeenMs,
  planEventExpiry,
} from './events.js';

const T0 = Date.parse('2024-05-01T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString().replace('.000Z', 'Z');

function event(
  name: string,
  times: Partial<Pick<Event, 'firstTimestamp' | 'lastTimestamp'>>,
  created?: string,
): Event {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: 'default', ...(created ? { creationTimestamp: created } : {}) },
    involvedObject: { kind: 'Pod', name: 'p' },
    ...times,
  };
}

describe('event retention', () => {
  it('an event was last written at lastTimestamp, else firstTimestamp, else its creation', () => {
    expect(eventLastSeenMs(event('a', { firstTimestamp: at(1), lastTimestamp: at(5) }))).toBe(T0 + 5_000);
    expect(eventLastSeenMs(event('b', { firstTimestamp: at(1) }))).toBe(T0 + 1_000);
    expect(eventLastSeenMs(event('c', {}, at(2)))).toBe(T0 + 2_000);
  });

  it('expires a TTL after it was last written', () => {
    const e = event('a', { lastTimestamp: at(0) });
    expect(eventExpiresInMs(e, 60_000, T0 + 10_000)).toBe(50_000);
    expect(eventExpiresInMs(e, 60_000, T0 + 70_000)).toBe(0);
  });

  it('the expiry pass takes the expired events and says when the next one expires', () => {
    const events = [
      event('gone', { lastTimestamp: at(0) }),
      event('soon', { lastTimestamp: at(50) }),
      event('later', { lastTimestamp: at(80) }),
      event('also-gone', { firstTimestamp: at(5) }),
    ];
    const plan = planEventExpiry(events, 60_000, T0 + 70_000);
    expect(plan.expired.map((e) => e.metadata.name)).toEqual(['gone', 'also-gone']);
    expect(plan.nextInMs).toBe(40_000);
    expect(planEventExpiry(events.slice(0, 1), 60_000, T0 + 70_000).nextInMs).toBeUndefined();
    expect(planEventExpiry([], 60_000, T0)).toEqual({ expired: [], nextInMs: undefined });
  });

  it('the cap removes the least recently written events first (ties by name)', () => {
    const events = [
      event('new', { lastTimestamp: at(30) }),
      event('old', { firstTimestamp: at(0), lastTimestamp: at(1) }),
      event('renewed', { firstTimestamp: at(0), lastTimestamp: at(40) }),
      event('mid-b', { lastTimestamp: at(20) }),
      event('mid-a', { lastTimestamp: at(20) }),
    ];
    const q = new EventAgeQueue();
    for (const e of events) q.add(e);
    expect(q.takeOldest(3, () => true).map((e) => e.metadata.name)).toEqual(['old', 'mid-a', 'mid-b']);
    expect(q.takeOldest(5, () => true).map((e) => e.metadata.name)).toEqual(['new', 'renewed']);
    expect(q.size).toBe(0);
    // The same from a reset (heapify) as from adds, whatever the input order.
    const r = new EventAgeQueue();
    r.reset([...events].reverse());
    expect(r.takeOldest(5, () => true).map((e) => e.metadata.name)).toEqual([
      'old',
      'mid-a',
      'mid-b',
      'new',
      'renewed',
    ]);
  });

  it('the queue drops stale entries (written again, deleted) and repeats of one event', () => {
    const first = event('a', { lastTimestamp: at(1) });
    const again = event('a', { lastTimestamp: at(50) });
    const gone = event('gone', { lastTimestamp: at(2) });
    const b = event('b', { lastTimestamp: at(10) });
    const current = new Set<Event>([again, b]);
    const q = new EventAgeQueue();
    for (const e of [first, gone, b, b, again]) q.add(e);
    expect(q.size).toBe(5);
    // `first` and `gone` are stale; `b` is in twice and taken once.
    expect(q.takeOldest(2, (e) => current.has(e))).toEqual([b, again]);
    expect(q.size).toBe(0);
  });

  it('a large queue hands out the oldest in order', () => {
    const events = Array.from({ length: 500 }, (_, i) =>
      event(`e${i}`, { lastTimestamp: at((i * 7919) % 500) }),
    );
    const q = new EventAgeQueue();
    for (const e of events) q.add(e);
    const seconds = q.takeOldest(500, () => true).map((e) => eventLastSeenMs(e));
    expect(seconds).toEqual([...seconds].sort((x, y) => x - y));
    expect(new Set(seconds).size).toBe(500);
  });

  it('once over the cap, deletes down to the cap less a twentieth, at most 1,000 a pass', () => {
    // 41 > 40: down to 40 - 2 = 38, three.
    expect(eventCapExcess(41, 40)).toBe(3);
    expect(eventCapExcess(40, 40)).toBe(0);
    expect(eventCapExcess(0, 40)).toBe(0);
    expect(eventCapExcess(50_000, 10_000)).toBe(1_000);
  });
});

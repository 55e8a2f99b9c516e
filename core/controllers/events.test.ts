import { describe, expect, it } from 'vitest';
import type { Event } from '../objects.js';
import { eventExpiresInMs, eventLastSeenMs, planEventCap, planEventExpiry } from './events.js';

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

  it('the cap removes the least recently written events first', () => {
    const events = [
      event('new', { lastTimestamp: at(30) }),
      event('old', { firstTimestamp: at(0), lastTimestamp: at(1) }),
      event('renewed', { firstTimestamp: at(0), lastTimestamp: at(40) }),
      event('mid', { lastTimestamp: at(20) }),
    ];
    expect(planEventCap(events, 2).map((e) => e.metadata.name)).toEqual(['old', 'mid']);
    expect(planEventCap(events, 4)).toEqual([]);
  });

  it('once over the cap, deletes down to the cap less a twentieth, so the next pass waits', () => {
    const events = Array.from({ length: 41 }, (_, i) => event(`e${i}`, { lastTimestamp: at(i) }));
    // 41 > 40: down to 40 - 2 = 38, the three oldest.
    expect(planEventCap(events, 40).map((e) => e.metadata.name)).toEqual(['e0', 'e1', 'e2']);
    expect(planEventCap(events.slice(3), 40)).toEqual([]);
  });
});

/**
 * Event retention on in-process masters: Events expire a TTL after they were last written,
 * and the cluster keeps at most `eventsMax` of them, the least recently written going first.
 * No nodes, so the only Events are the test's own.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { defaultControllers } from '../../actors/controllers/index.js';
import type { Event } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

let c: HollowCluster | undefined;
afterEach(async () => {
  await c?.stop();
  c = undefined;
});

const stamp = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

const event = (name: string, lastMs: number): Event => ({
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name, namespace: 'default' },
  involvedObject: { kind: 'Pod', namespace: 'default', name: 'p' },
  reason: 'Test',
  message: name,
  type: 'Normal',
  count: 1,
  firstTimestamp: stamp(lastMs),
  lastTimestamp: stamp(lastMs),
});

const names = async (cl: HollowCluster) =>
  (await listOf<Event>(cl.api, 'Event', 'default')).map((e) => e.metadata.name).sort();

describe('event retention (in-process masters)', () => {
  it('deletes an Event its TTL after it was last written', async () => {
    c = await startHollowCluster({ controllers: () => defaultControllers({ eventTtlMs: 3_000 }) });
    const now = Date.now();
    await c.api.create(event('old', now - 3_600_000));
    await c.api.create(event('fresh', now));
    await waitFor('old gone', async () => ((await names(c!)).join() === 'fresh' ? true : undefined));
    await waitFor(
      'fresh gone after its TTL',
      async () => ((await names(c!)).length === 0 ? true : undefined),
      15_000,
    );
    expect(Date.now() - now).toBeGreaterThanOrEqual(2_000);
  });

  it('keeps at most eventsMax Events, deleting the least recently written first', async () => {
    c = await startHollowCluster({ controllers: () => defaultControllers({ eventsMax: 5 }) });
    const now = Date.now();
    for (let i = 1; i <= 8; i += 1) await c.api.create(event(`e${i}`, now - (10 - i) * 1_000));
    await waitFor('the 5 newest left', async () =>
      (await names(c!)).join() === 'e4,e5,e6,e7,e8' ? true : undefined,
    );
  });

  it('orders by the last write: a renewed Event counts from its renewal', async () => {
    c = await startHollowCluster({ controllers: () => defaultControllers({ eventsMax: 5 }) });
    const now = Date.now();
    await c.api.create(event('renewed', now - 50_000));
    for (const [name, ago] of [
      ['e1', 40],
      ['e2', 30],
      ['e3', 20],
      ['e4', 10],
    ] as const) {
      await c.api.create(event(name, now - ago * 1_000));
    }
    // Renewed to between e2 and e3: the cap must see this write, not the creation.
    await c.api.patch(
      { kind: 'Event', namespace: 'default', name: 'renewed' },
      { count: 2, lastTimestamp: stamp(now - 25_000) },
    );
    for (const [name, ago] of [
      ['e5', 5],
      ['e6', 4],
      ['e7', 3],
    ] as const) {
      await c.api.create(event(name, now - ago * 1_000));
    }
    await waitFor('e1, e2 and the renewed Event gone', async () =>
      (await names(c!)).join() === 'e3,e4,e5,e6,e7' ? true : undefined,
    );
  });
});

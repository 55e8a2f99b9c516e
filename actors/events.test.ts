import { describe, expect, it } from 'vitest';
import type { ApiObject } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { EventRecorder } from './events.js';

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'demo', uid: 'u1' },
  spec: { containers: [] },
} as unknown as ApiObject;

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await new Promise((r) => setTimeout(r, 5));
}

describe('EventRecorder', () => {
  it('writes an Event about the object, and counts repeats in the same Event', async () => {
    const { objects } = createMemoryApi();
    let now = Date.parse('2026-01-01T00:00:00Z');
    const rec = new EventRecorder({
      api: objects,
      component: 'test',
      host: 'm1',
      nowMs: () => now,
      updateIntervalMs: 0,
    });
    rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
    await settle();
    now += 5_000;
    rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
    rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
    await settle();
    const events = (await objects.list('Event', { namespace: 'demo' })).items as unknown as Record<
      string,
      unknown
    >[];
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'demo', uid: 'u1' },
      reason: 'BackOff',
      type: 'Warning',
      count: 3,
      firstTimestamp: '2026-01-01T00:00:00Z',
      lastTimestamp: '2026-01-01T00:00:05Z',
      source: { component: 'test', host: 'm1' },
    });
    rec.close();
  });
  it('drops what is over its rate and its queue, and counts it', async () => {
    const { objects } = createMemoryApi();
    const rec = new EventRecorder({
      api: objects,
      component: 'test',
      writesPerSecond: 0,
      writesBurst: 2,
      queueEventsMax: 5,
    });
    for (let i = 0; i < 10; i += 1) rec.record(pod, 'Normal', 'Created', `container ${i}`);
    await settle();
    expect(rec.written).toBe(2);
    expect(rec.dropped).toBe(8);
    expect((await objects.list('Event', { namespace: 'demo' })).items).toHaveLength(2);
    rec.close();
  });
});

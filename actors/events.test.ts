import { describe, expect, it } from 'vitest';
import type { ApiObject } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { ApiError, ApiErrorCode, type ObjectApi } from './api.js';
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

/** A recorder writing at once to a memory API, on a clock the test moves (`clock.now`). */
function recorderOn(component: string, host: string) {
  const { objects } = createMemoryApi();
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const rec = new EventRecorder({
    api: objects,
    component,
    host,
    nowMs: () => clock.now,
    updateIntervalMs: 0,
  });
  return { objects, clock, rec };
}

async function eventsIn(objects: ObjectApi): Promise<Record<string, unknown>[]> {
  return (await objects.list('Event', { namespace: 'demo' })).items as unknown as Record<string, unknown>[];
}

describe('EventRecorder', () => {
  it('writes an Event about the object, and counts repeats in the same Event', async () => {
    const { objects, clock, rec } = recorderOn('test', 'm1');
    rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
    await settle();
    clock.now += 5_000;
    rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
    rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
    await settle();
    const events = await eventsIn(objects);
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
  it('writes the whole Event again when a repeat finds it deleted (retention)', async () => {
    const { objects, clock, rec } = recorderOn('kubelet', 'n1');
    rec.record(pod, 'Normal', 'Pulled', 'Container image "busybox" already present on machine');
    await settle();
    const [first] = (await objects.list('Event', { namespace: 'demo' })).items;
    await objects.delete({ kind: 'Event', namespace: 'demo', name: first.metadata.name ?? '' });
    clock.now += 5_000;
    // The patch of the repeat finds nothing: the recorder starts a new Event, and the next
    // repeat creates it with everything the first one said.
    rec.record(pod, 'Normal', 'Pulled', 'Container image "busybox" already present on machine');
    await settle();
    expect(rec.failed).toBe(1);
    rec.record(pod, 'Normal', 'Pulled', 'Container image "busybox" already present on machine');
    await settle();
    const events = await eventsIn(objects);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'demo', uid: 'u1' },
      reason: 'Pulled',
      message: 'Container image "busybox" already present on machine',
      type: 'Normal',
      source: { component: 'kubelet', host: 'n1' },
      reportingComponent: 'kubelet',
      reportingInstance: 'n1',
    });
    expect(events[0].metadata).not.toEqual(first.metadata);
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
  it('keeps the newest events and drops the oldest while no master answers', async () => {
    const { objects } = createMemoryApi();
    let reachable = false;
    const writes: string[] = [];
    const api = {
      ...objects,
      create: async (obj: unknown) => {
        if (!reachable) throw new ApiError(ApiErrorCode.Unavailable, 'no master reachable');
        writes.push((obj as { message: string }).message);
        return objects.create(obj);
      },
    } as typeof objects;
    const rec = new EventRecorder({ api, component: 'kubelet', host: 'n1', queueEventsMax: 3 });
    rec.record(pod, 'Normal', 'Created', 'container 0');
    await settle();
    expect(rec.failed).toBe(1); // tried, refused: not retried
    // Queued at once, faster than the drain: beyond 3 waiting, the oldest go.
    for (let i = 1; i <= 10; i += 1) rec.record(pod, 'Normal', 'Created', `container ${i}`);
    reachable = true;
    await settle();
    expect(rec.dropped).toBe(7);
    expect(writes).toEqual(['container 8', 'container 9', 'container 10']);
    rec.close();
  });
});

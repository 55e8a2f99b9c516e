import { afterEach, describe, expect, it } from 'vitest';
import type { ActorSystem } from '../runtime.js';
import { startActorSystem, stopActorSystem } from '../runtime.js';
import type { ClusterCache } from './cache.js';
import { type Controller, type ControllerContext, ControllerRunner } from './controller.js';

/** A context whose parts the test controllers do not use. */
const ctx = {
  cache: {} as ClusterCache,
  api: {} as ControllerContext['api'],
  events: {} as ControllerContext['events'],
  nowMs: Date.now,
  log: () => {},
} satisfies ControllerContext;

let system: ActorSystem | undefined;
afterEach(async () => {
  if (system) await stopActorSystem(system);
  system = undefined;
});

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ControllerRunner', () => {
  it('marks many finished reconciles done with one message, keeping at most `workers` in flight', async () => {
    system = startActorSystem({ log: () => {} });
    const keys = Array.from({ length: 2_000 }, (_, i) => `Pod/default/p${i}`);
    const seen = new Set<string>();
    let inFlight = 0;
    let inFlightMax = 0;
    const controller: Controller = {
      name: 'many',
      watches: [],
      workers: 100,
      keysFor: () => [],
      initialKeys: () => [],
      reconcile: async (key) => {
        inFlight += 1;
        inFlightMax = Math.max(inFlightMax, inFlight);
        await Promise.resolve();
        seen.add(key);
        inFlight -= 1;
        return undefined;
      },
    };
    const runner = new ControllerRunner(controller, ctx);
    const ref = runner.spawn(system, 'test');
    system.tell(ref, { type: 'enqueue', keys });
    await until('every key reconciled', () => seen.size === keys.length && runner.stats.inFlight === 0);
    expect(runner.stats.reconciles).toBe(keys.length);
    expect(inFlightMax).toBeLessThanOrEqual(100);
    // One `done` per burst of completions, not one per key (an actor takes one message a turn).
    const processed = system.actorMetrics(ref)?.processed ?? Number.POSITIVE_INFINITY;
    expect(processed).toBeLessThan(keys.length / 10);
  });

  it('retries a failed key with backoff and requeues after requeueAfterMs, through batched completions', async () => {
    system = startActorSystem({ log: () => {} });
    const runs = new Map<string, number>();
    const controller: Controller = {
      name: 'retry',
      watches: [],
      keysFor: () => [],
      initialKeys: () => [],
      reconcile: async (key) => {
        const n = (runs.get(key) ?? 0) + 1;
        runs.set(key, n);
        if (key === 'a' && n === 1) throw new Error('first try fails');
        if (key === 'b' && n === 1) return { requeueAfterMs: 10 };
        return undefined;
      },
    };
    const runner = new ControllerRunner(controller, ctx, { retryBackoffMsMin: 5 });
    const ref = runner.spawn(system, 'test');
    system.tell(ref, { type: 'enqueue', keys: ['a', 'b', 'c'] });
    await until('a and b run twice', () => runs.get('a') === 2 && runs.get('b') === 2);
    expect(runs.get('c')).toBe(1);
    expect(runner.stats.errors).toBe(1);
  });
});

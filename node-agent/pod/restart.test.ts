import { describe, expect, it } from 'vitest';
import type { ContainerObservation } from './observation.js';
import {
  type Backoff,
  backoffAfterExit,
  defaultBackoffPolicy,
  formatDelay,
  planRestarts,
  type RestartInput,
  shouldRestart,
} from './restart.js';

const t0 = Date.parse('2024-01-01T00:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function exited(
  restartCount: number,
  exitCode: number,
  startedAtMs: number,
  finishedAtMs: number,
): ContainerObservation {
  return {
    phase: 'exited',
    exitCode,
    restartCount,
    startedAt: iso(startedAtMs),
    finishedAt: iso(finishedAtMs),
  };
}
const running = (restartCount = 0): ContainerObservation => ({
  phase: 'running',
  restartCount,
  startedAt: iso(t0),
});

function input(over: Partial<RestartInput>): RestartInput {
  return { initContainers: [], containers: ['app'], observed: {}, backoff: {}, nowMs: t0, ...over };
}

describe('shouldRestart', () => {
  it('follows the restart policy', () => {
    expect([shouldRestart('Always', 0), shouldRestart('Always', 1)]).toEqual([true, true]);
    expect([shouldRestart('OnFailure', 0), shouldRestart('OnFailure', 137)]).toEqual([false, true]);
    expect([shouldRestart('Never', 0), shouldRestart('Never', 1)]).toEqual([false, false]);
  });
});

describe('backoff', () => {
  it('is 10, 20, 40, 80, 160, 300, 300 s for quick crashes', () => {
    let b: Backoff | undefined;
    const delays: number[] = [];
    for (let n = 0; n < 7; n++) {
      b = backoffAfterExit(b, { restartCount: n, startedAtMs: t0 + n * 1000, exitAtMs: t0 + n * 1000 + 500 });
      delays.push(b.delayMs / 1000);
    }
    expect(delays).toEqual([10, 20, 40, 80, 160, 300, 300]);
  });

  it('resets after a run of 10 minutes', () => {
    const b1: Backoff = { restartCount: 4, exitAtMs: t0, delayMs: 160_000 };
    const long = backoffAfterExit(b1, { restartCount: 5, startedAtMs: t0, exitAtMs: t0 + 600_000 });
    expect(long.delayMs).toBe(10_000);
    const short = backoffAfterExit(b1, { restartCount: 5, startedAtMs: t0, exitAtMs: t0 + 599_000 });
    expect(short.delayMs).toBe(300_000);
  });

  it('is configurable and idempotent for the same exit', () => {
    const policy = { backoffMsInitial: 100, backoffMsMax: 250, backoffResetAfterRunMs: 1000 };
    const a = backoffAfterExit(undefined, { restartCount: 0, exitAtMs: t0 }, policy);
    const b = backoffAfterExit(a, { restartCount: 1, exitAtMs: t0 }, policy);
    const c = backoffAfterExit(b, { restartCount: 2, exitAtMs: t0 }, policy);
    expect([a.delayMs, b.delayMs, c.delayMs]).toEqual([100, 200, 250]);
    expect(backoffAfterExit(c, { restartCount: 2, exitAtMs: t0 + 5 }, policy)).toBe(c);
  });

  it('renders delays as kubelet does', () => {
    expect([formatDelay(10_000), formatDelay(80_000), formatDelay(300_000)]).toEqual([
      '10s',
      '1m20s',
      '5m0s',
    ]);
  });
});

describe('planRestarts: app containers', () => {
  it('starts containers never created', () => {
    const plan = planRestarts(input({ containers: ['a', 'b'] }));
    expect(plan.start).toEqual([
      { name: 'a', init: false, restartCount: 0 },
      { name: 'b', init: false, restartCount: 0 },
    ]);
    expect(plan.initialized).toBe(true);
  });

  it('waits in CrashLoopBackOff, then restarts with the next restart count', () => {
    const observed = { app: exited(0, 1, t0, t0 + 1000) };
    const waiting = planRestarts(input({ observed, nowMs: t0 + 5000 }));
    expect(waiting.start).toEqual([]);
    expect(waiting.waiting.app).toEqual({
      reason: 'CrashLoopBackOff',
      message: 'back-off 10s restarting failed container=app',
      untilMs: t0 + 11_000,
    });
    expect(waiting.wakeAtMs).toBe(t0 + 11_000);
    const later = planRestarts(input({ observed, backoff: waiting.backoff, nowMs: t0 + 11_000 }));
    expect(later.start).toEqual([{ name: 'app', init: false, restartCount: 1 }]);
    expect(later.waiting).toEqual({});
    // the second crash doubles the delay
    const again = planRestarts(
      input({
        observed: { app: exited(1, 1, t0 + 12_000, t0 + 13_000) },
        backoff: later.backoff,
        nowMs: t0 + 14_000,
      }),
    );
    expect(again.waiting.app.untilMs).toBe(t0 + 33_000);
    expect(again.waiting.app.message).toContain('back-off 20s');
  });

  it('restarts a container that exited 0 under Always, not under OnFailure or Never', () => {
    const observed = { app: exited(0, 0, t0, t0 + 1000) };
    const late = t0 + 60_000;
    expect(planRestarts(input({ observed, nowMs: late })).start).toHaveLength(1);
    const onFailure = planRestarts(input({ observed, nowMs: late, restartPolicy: 'OnFailure' }));
    expect(onFailure.start).toEqual([]);
    expect(onFailure.terminal).toBe(true);
    expect(planRestarts(input({ observed, nowMs: late, restartPolicy: 'Never' })).terminal).toBe(true);
  });

  it('does not restart a failure under Never, and restarts it under OnFailure', () => {
    const observed = { app: exited(0, 2, t0, t0 + 1000) };
    const late = t0 + 60_000;
    const never = planRestarts(input({ observed, nowMs: late, restartPolicy: 'Never' }));
    expect(never.start).toEqual([]);
    expect(never.waiting).toEqual({});
    expect(planRestarts(input({ observed, nowMs: late, restartPolicy: 'OnFailure' })).start).toHaveLength(1);
  });

  it('leaves running containers alone and is not terminal while one runs', () => {
    const plan = planRestarts(
      input({
        containers: ['a', 'b'],
        restartPolicy: 'Never',
        observed: { a: running(), b: exited(0, 0, t0, t0) },
      }),
    );
    expect(plan.start).toEqual([]);
    expect(plan.terminal).toBe(false);
  });
});

describe('planRestarts: init containers', () => {
  it('runs init containers one at a time, in order, before the app containers', () => {
    const base = { initContainers: ['i1', 'i2'], containers: ['a', 'b'] };
    const first = planRestarts(input(base));
    expect(first.start).toEqual([{ name: 'i1', init: true, restartCount: 0 }]);
    expect(first.initialized).toBe(false);
    const whileRunning = planRestarts(input({ ...base, observed: { i1: running() } }));
    expect(whileRunning.start).toEqual([]);
    const second = planRestarts(input({ ...base, observed: { i1: exited(0, 0, t0, t0) } }));
    expect(second.start.map((s) => s.name)).toEqual(['i2']);
    const apps = planRestarts(
      input({ ...base, observed: { i1: exited(0, 0, t0, t0), i2: exited(0, 0, t0, t0) } }),
    );
    expect(apps.start.map((s) => s.name)).toEqual(['a', 'b']);
    expect(apps.initialized).toBe(true);
  });

  it('restarts a failed init container with backoff, even under Always', () => {
    const observed = { i1: exited(0, 1, t0, t0) };
    const plan = planRestarts(input({ initContainers: ['i1'], observed, nowMs: t0 + 1000 }));
    expect(plan.waiting.i1.reason).toBe('CrashLoopBackOff');
    expect(plan.start).toEqual([]);
    const later = planRestarts(
      input({ initContainers: ['i1'], observed, backoff: plan.backoff, nowMs: t0 + 10_000 }),
    );
    expect(later.start).toEqual([{ name: 'i1', init: true, restartCount: 1 }]);
    expect(later.terminal).toBe(false);
  });

  it('fails the pod when an init container fails under Never', () => {
    const plan = planRestarts(
      input({
        initContainers: ['i1'],
        restartPolicy: 'Never',
        observed: { i1: exited(0, 1, t0, t0) },
        nowMs: t0 + 60_000,
      }),
    );
    expect(plan.start).toEqual([]);
    expect(plan.terminal).toBe(true);
    expect(plan.initialized).toBe(false);
  });

  it('uses the default policy of kubelet', () => {
    expect(defaultBackoffPolicy).toEqual({
      backoffMsInitial: 10_000,
      backoffMsMax: 300_000,
      backoffResetAfterRunMs: 600_000,
    });
  });
});

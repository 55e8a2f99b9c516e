import { describe, expect, it } from 'vitest';
import type { Pod, PodSpec } from '../../core/objects.js';
import { activeDeadlineAtMs, deadlineExceeded, pastActiveDeadline } from './deadline.js';
import { podStatus } from './status.js';

const t0 = Date.parse('2024-01-01T00:00:00Z');
const startTime = new Date(t0).toISOString();

function pod(spec: Partial<PodSpec> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u' },
    spec: { containers: [{ name: 'app', image: 'coxswain/busybox' }], ...spec },
  };
}

describe('activeDeadlineSeconds', () => {
  it('ends the given number of seconds after the start time', () => {
    const p = pod({ activeDeadlineSeconds: 30 });
    expect(activeDeadlineAtMs(p, { startTime })).toBe(t0 + 30_000);
    expect(pastActiveDeadline(p, { startTime }, t0 + 29_999)).toBe(false);
    expect(pastActiveDeadline(p, { startTime }, t0 + 30_000)).toBe(true);
  });

  it('does not apply without a deadline or before the pod has a start time', () => {
    expect(activeDeadlineAtMs(pod(), { startTime })).toBeUndefined();
    expect(pastActiveDeadline(pod(), { startTime }, t0 + 1e12)).toBe(false);
    const p = pod({ activeDeadlineSeconds: 1 });
    expect(activeDeadlineAtMs(p, undefined)).toBeUndefined();
    expect(activeDeadlineAtMs(p, {})).toBeUndefined();
    expect(pastActiveDeadline(p, { startTime: 'not a time' }, t0 + 1e12)).toBe(false);
  });

  it('a failed pod reports phase Failed with kubelet’s reason and message, its containers stopped', () => {
    const p = pod({ activeDeadlineSeconds: 5, restartPolicy: 'Always' });
    const s = podStatus({
      pod: p,
      observed: {
        app: {
          id: 'c1',
          phase: 'exited',
          exitCode: 137,
          reason: 'Error',
          restartCount: 0,
          startedAt: startTime,
          finishedAt: new Date(t0 + 5_000).toISOString(),
        },
      },
      nowMs: t0 + 5_000,
      previous: { phase: 'Running', startTime },
      failure: deadlineExceeded,
    });
    expect(s).toMatchObject({
      phase: 'Failed',
      reason: 'DeadlineExceeded',
      message: 'Pod was active on the node longer than the specified deadline',
      startTime,
    });
    expect(s.containerStatuses?.[0].state?.terminated).toMatchObject({ exitCode: 137, reason: 'Error' });
    expect(s.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('without a failure, a pod whose containers exited under Always is still Running', () => {
    const s = podStatus({
      pod: pod({ restartPolicy: 'Always' }),
      observed: { app: { id: 'c1', phase: 'exited', exitCode: 137, restartCount: 0 } },
      nowMs: t0,
    });
    expect(s.phase).toBe('Running');
    expect(s.reason).toBeUndefined();
  });
});

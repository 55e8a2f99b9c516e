import { describe, expect, it } from 'vitest';
import type { ObjectMeta, Pod, PodPhase } from '../objects.js';
import {
  gracePeriodEndMs,
  orphanQuarantineLeftMs,
  planTerminatedPodGc,
  planUnreachableForceDeletes,
  podGcDeletesPerPassMax,
} from './podgc.js';

const T0 = Date.parse('2024-05-01T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString().replace('.000Z', 'Z');

function pod(name: string, meta: Partial<ObjectMeta> = {}, phase?: PodPhase): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', ...meta },
    spec: { containers: [{ name: 'c', image: 'i' }], nodeName: 'n1' },
    ...(phase ? { status: { phase } } : {}),
  };
}

describe('force deletes on unreachable nodes', () => {
  it('a pod is due when its grace period after the delete request has passed', () => {
    const p = pod('p', { deletionTimestamp: at(0), deletionGracePeriodSeconds: 30 });
    expect(gracePeriodEndMs(p)).toBe(T0 + 30_000);
    expect(gracePeriodEndMs(pod('live'))).toBeUndefined();
    const plan = planUnreachableForceDeletes(
      [p, pod('q', { deletionTimestamp: at(0), deletionGracePeriodSeconds: 5 }), pod('live')],
      T0 + 10_000,
    );
    expect(plan.forceDelete.map((x) => x.metadata.name)).toEqual(['q']);
    expect(plan.requeueAfterMs).toBe(20_001);
  });
});

describe('planTerminatedPodGc', () => {
  it('deletes the oldest finished pods beyond the threshold, and only finished ones', () => {
    const pods = [
      pod('c', { creationTimestamp: at(3) }, 'Failed'),
      pod('a', { creationTimestamp: at(1) }, 'Succeeded'),
      pod('b', { creationTimestamp: at(2) }, 'Succeeded'),
      pod('running', { creationTimestamp: at(0) }, 'Running'),
    ];
    expect(planTerminatedPodGc(pods, 1).map((p) => p.metadata.name)).toEqual(['a', 'b']);
    expect(planTerminatedPodGc(pods, 3)).toEqual([]);
  });

  it('deletes at most podGcDeletesPerPassMax per pass', () => {
    const many = Array.from({ length: podGcDeletesPerPassMax + 10 }, (_, i) =>
      pod(`p${i}`, { creationTimestamp: at(i) }, 'Succeeded'),
    );
    expect(planTerminatedPodGc(many, 0)).toHaveLength(podGcDeletesPerPassMax);
  });
});

describe('orphanQuarantineLeftMs', () => {
  it('counts down from when the node was first seen missing', () => {
    expect(orphanQuarantineLeftMs(T0, T0 + 10_000, 40_000)).toBe(30_000);
    expect(orphanQuarantineLeftMs(T0, T0 + 50_000, 40_000)).toBe(0);
  });
});

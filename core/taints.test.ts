import { describe, expect, it } from 'vitest';
import type { Pod, Taint, Toleration } from './objects.js';
import { matchingToleration, toleratesTaint, withDefaultTolerations } from './taints.js';

const taint: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoExecute' };

describe('toleratesTaint', () => {
  it("follows Kubernetes' ToleratesTaint", () => {
    const cases: [Toleration, boolean][] = [
      [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoExecute' }, true],
      [{ key: 'dedicated', value: 'gpu' }, true],
      [{ key: 'dedicated', operator: 'Equal', value: 'cpu' }, false],
      [{ key: 'dedicated', operator: 'Exists' }, true],
      [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }, false],
      [{ key: 'other', operator: 'Exists' }, false],
      [{ operator: 'Exists' }, true],
      [{ operator: 'Exists', effect: 'NoExecute' }, true],
    ];
    for (const [t, want] of cases) expect(toleratesTaint(t, taint), JSON.stringify(t)).toBe(want);
    expect(toleratesTaint({ key: 'k', operator: 'Equal' }, { key: 'k', effect: 'NoSchedule' })).toBe(true);
  });

  it('picks the first matching toleration', () => {
    const a: Toleration = { key: 'dedicated', operator: 'Exists', tolerationSeconds: 5, effect: 'NoExecute' };
    const b: Toleration = { operator: 'Exists' };
    expect(matchingToleration([{ key: 'x', operator: 'Exists' }, a, b], taint)).toBe(a);
    expect(matchingToleration(undefined, taint)).toBeUndefined();
  });
});

describe('withDefaultTolerations', () => {
  const pod = (tolerations?: Toleration[]): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'c', image: 'i' }], ...(tolerations ? { tolerations } : {}) },
  });

  it('adds what is not covered, keeps the pod own tolerations first, and returns the same pod when nothing is missing', () => {
    const own: Toleration = { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' };
    expect(withDefaultTolerations(pod([own])).spec.tolerations).toEqual([
      own,
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ]);
    const everything = pod([{ operator: 'Exists' }]);
    expect(withDefaultTolerations(everything)).toBe(everything);
    // A NoSchedule toleration of the key does not cover the NoExecute taint.
    const noSchedule: Toleration = {
      key: 'node.kubernetes.io/unreachable',
      operator: 'Exists',
      effect: 'NoSchedule',
    };
    expect(withDefaultTolerations(pod([noSchedule])).spec.tolerations).toHaveLength(3);
  });
});

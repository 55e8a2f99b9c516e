import { describe, expect, it } from 'vitest';
import type { Pod } from '../core/index.js';
import { isStatusEcho } from './agent.js';

const pod = (over: Partial<Pod> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'default', uid: 'u', resourceVersion: '7' },
  spec: { nodeName: 'n1', containers: [{ name: 'a', image: 'coxswain/busybox' }] },
  ...over,
});

describe('the echo of the agent’s own status write', () => {
  const reported = { phase: 'Running' as const, podIP: '172.17.0.2' };
  it('is a new version with only the reported status', () => {
    const before = pod();
    const after = pod({ metadata: { ...before.metadata, resourceVersion: '8' }, status: reported });
    expect(isStatusEcho(before, after, reported)).toBe(true);
  });
  it('is not a spec change, a deletion, another status or the first version seen', () => {
    const before = pod();
    const spec = { ...before.spec, activeDeadlineSeconds: 5 };
    expect(isStatusEcho(before, pod({ spec, status: reported }), reported)).toBe(false);
    const deleting = { ...before.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' };
    expect(isStatusEcho(before, pod({ metadata: deleting, status: reported }), reported)).toBe(false);
    expect(isStatusEcho(before, pod({ status: { phase: 'Pending' } }), reported)).toBe(false);
    expect(isStatusEcho(undefined, pod({ status: reported }), reported)).toBe(false);
    expect(isStatusEcho(before, pod({ status: reported }), undefined)).toBe(false);
  });
});

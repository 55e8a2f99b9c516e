import { describe, expect, it } from 'vitest';
import {
  encodeRecord,
  placementAnnotation,
  readPlacement,
  readReasons,
  reasonNodesMax,
  reasonsAnnotation,
  reasonsAnnotationBytesMax,
  reasonsMax,
  recordReasons,
} from './explain.js';
import type { Unschedulable } from './schedule.js';
import { unschedulableMessage } from './schedule.js';

function unschedulable(reasons: Record<string, string[]>): Unschedulable {
  const map = new Map(Object.entries(reasons));
  return {
    kind: 'unschedulable',
    nodes: map.size,
    reasons: map,
    message: unschedulableMessage(map.size, map),
    nextStartIndex: 0,
  };
}

describe('recorded reasons', () => {
  it('groups nodes by reason, most frequent first, and round-trips through the annotation', () => {
    const r = recordReasons(
      unschedulable({
        n3: ['Insufficient cpu', 'Insufficient memory'],
        n1: ['Insufficient cpu'],
        n2: ["node(s) didn't match Pod's node affinity/selector"],
      }),
    );
    expect(r.reasons).toEqual([
      { reason: 'Insufficient cpu', count: 2, nodes: ['n1', 'n3'] },
      { reason: 'Insufficient memory', count: 1, nodes: ['n3'] },
      { reason: "node(s) didn't match Pod's node affinity/selector", count: 1, nodes: ['n2'] },
    ]);
    expect(r.message).toBe(
      "0/3 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.",
    );
    expect(readReasons({ [reasonsAnnotation]: encodeRecord(r) })).toEqual(r);
  });

  it('is bounded: names per reason, distinct reasons and bytes', () => {
    const many: Record<string, string[]> = {};
    for (let i = 0; i < 1000; i += 1)
      many[`node-${'x'.repeat(200)}-${i}`] = [`node(s) had untolerated taint {t${i % 50}: }`];
    const r = recordReasons(unschedulable(many));
    expect(r.reasons).toHaveLength(reasonsMax);
    expect(r.otherReasons).toBe(50 - reasonsMax);
    for (const x of r.reasons) {
      expect(x.count).toBe(20);
      expect(x.nodes.length).toBeLessThanOrEqual(reasonNodesMax);
    }
    expect(Buffer.byteLength(encodeRecord(r))).toBeLessThanOrEqual(reasonsAnnotationBytesMax);
  });

  it('ignores malformed annotations', () => {
    expect(readReasons({ [reasonsAnnotation]: 'not json' })).toBeUndefined();
    expect(readReasons({ [reasonsAnnotation]: '[1]' })).toBeUndefined();
    expect(readReasons(undefined)).toBeUndefined();
    expect(readPlacement({ [placementAnnotation]: '{"node":1}' })).toBeUndefined();
    expect(readPlacement({ [placementAnnotation]: '{"node":"n1","score":300}' })?.node).toBe('n1');
  });
});

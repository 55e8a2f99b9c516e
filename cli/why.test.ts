import { describe, expect, it } from 'vitest';
import type { Pod } from '../core/index.js';
import {
  encodeRecord,
  placementAnnotation,
  reasonsAnnotation,
  recordReasons,
  unschedulableMessage,
} from '../core/scheduler/index.js';
import { explainPod, parseWhyTarget } from './why.js';

const now = Date.parse('2024-05-01T10:00:00Z');

function pod(
  over: Partial<Pod['spec']> = {},
  annotations?: Record<string, string>,
  status?: Pod['status'],
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', ...(annotations ? { annotations } : {}) },
    spec: {
      containers: [
        {
          name: 'a',
          image: 'i',
          resources: { requests: { cpu: '1500m', memory: '1Gi' }, limits: { cpu: '2' } },
        },
      ],
      ...over,
    },
    status: status ?? { phase: 'Pending' },
  };
}

function failedWith(reasons: Record<string, string[]>): Pod {
  const map = new Map(Object.entries(reasons));
  const message = unschedulableMessage(map.size, map);
  const record = recordReasons({
    kind: 'unschedulable',
    nodes: map.size,
    reasons: map,
    message,
    nextStartIndex: 0,
  });
  return pod(
    {},
    { [reasonsAnnotation]: encodeRecord(record) },
    {
      phase: 'Pending',
      qosClass: 'Burstable',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message,
          lastTransitionTime: '2024-05-01T09:59:00Z',
        },
      ],
    },
  );
}

describe('cox why', () => {
  it('parses pod/NAME, pod NAME and NAME', () => {
    expect(parseWhyTarget(['pod/a'])).toBe('a');
    expect(parseWhyTarget(['po', 'a'])).toBe('a');
    expect(parseWhyTarget(['a'])).toBe('a');
    expect(() => parseWhyTarget(['svc/a'])).toThrow('why: only pods are explained, not "svc"');
    expect(() => parseWhyTarget(['pod/'])).toThrow('expected pod/NAME');
    expect(() => parseWhyTarget([])).toThrow('a pod is required');
  });

  it('lists reasons per node when there are few nodes', () => {
    expect(
      explainPod(
        failedWith({
          n2: ['Insufficient cpu', 'Insufficient memory'],
          n1: ['Insufficient cpu'],
          'n-long': ['node(s) were unschedulable'],
        }),
        now,
      ),
    ).toBe(
      [
        'Pod shop/web-1: Pending',
        'QoS class: Burstable; requests: cpu 1500m, memory 1Gi',
        'Not scheduled (unschedulable for 60s): 0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, 2 Insufficient cpu.',
        'Nodes:',
        '  n-long: node(s) were unschedulable',
        '  n1:     Insufficient cpu',
        '  n2:     Insufficient cpu; Insufficient memory',
        'The scheduler tries again when a node is added or changes, or when pods go away.',
        '',
      ].join('\n'),
    );
  });

  it('lists nodes per reason when there are many', () => {
    const reasons: Record<string, string[]> = {};
    for (let i = 0; i < 100; i += 1)
      reasons[`n${String(i).padStart(3, '0')}`] = [
        i < 70 ? 'Insufficient cpu' : 'node(s) had untolerated taint {gpu: }',
      ];
    const text = explainPod(failedWith(reasons), now);
    expect(text).toContain(
      '\nBy reason:\n  Insufficient cpu: 70 nodes (n000, n001, n002, n003, n004, and 65 more)\n  node(s) had untolerated taint {gpu: }: 30 nodes (n070, n071, n072, n073, n074, and 25 more)\n',
    );
    expect(text).toContain(
      '0/100 nodes are available: 30 node(s) had untolerated taint {gpu: }, 70 Insufficient cpu.',
    );
  });

  it('explains a placement, a pod not tried yet, and a direct nodeName', () => {
    const placed = pod(
      { nodeName: 'n7' },
      {
        [placementAnnotation]: JSON.stringify({
          node: 'n7',
          score: 612,
          scores: {
            NodeResourcesLeastAllocated: 80,
            NodeResourcesBalancedAllocation: 96,
            OwnerSpread: 100,
            NodeAffinity: 0,
            TaintToleration: 100,
          },
          feasible: 420,
          evaluated: 420,
          nodes: 1000,
        }),
      },
      {
        phase: 'Running',
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2024-05-01T09:58:00Z' }],
      },
    );
    expect(explainPod(placed, now)).toBe(
      [
        'Pod shop/web-1: Running on node n7',
        'QoS class: Burstable; requests: cpu 1500m, memory 1Gi',
        'Scheduled by default-scheduler 2m ago: node n7 had the best score, 612, of 420 feasible nodes, 420 of 1000 nodes evaluated.',
        'Scores: NodeResourcesLeastAllocated 80, NodeResourcesBalancedAllocation 96, OwnerSpread 100 (x2), NodeAffinity 0 (x2), TaintToleration 100 (x3)',
        '',
      ].join('\n'),
    );
    expect(explainPod(pod(), now)).toContain(
      'Not scheduled yet: the scheduler has not tried it, or is binding it now.',
    );
    expect(explainPod(pod({ schedulerName: 'other', nodeName: 'x' }), now)).toContain(
      'It names scheduler "other", which placed it on x; default-scheduler did not.',
    );
  });
});

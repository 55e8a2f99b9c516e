import { describe, expect, it } from 'vitest';
import type { Node, NodeCondition, Pod, Taint, Toleration } from '../objects.js';
import {
  evictionTimeMs,
  type HeartbeatObservation,
  observeHeartbeat,
  planNodeHealth,
  planTaintEvictions,
} from './nodelifecycle.js';

const T0 = Date.parse('2024-05-01T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString().replace('.000Z', 'Z');
const GRACE = 40_000;

function node(conditions: NodeCondition[] | undefined, spec: Node['spec'] = {}): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1' },
    spec,
    status: { ...(conditions ? { conditions } : {}) },
  };
}
const ready = (status: 'True' | 'False' | 'Unknown', reason = 'AgentReady'): NodeCondition => ({
  type: 'Ready',
  status,
  reason,
  lastHeartbeatTime: at(0),
  lastTransitionTime: at(0),
});
const seen = (s: number, renewed = true): HeartbeatObservation => ({
  renewTime: 'r',
  readyHeartbeat: at(0),
  observedAtMs: T0 + s * 1000,
  renewed,
});

describe('observeHeartbeat', () => {
  it('moves observedAtMs only when the Lease renewTime or the Ready heartbeat changed', () => {
    const n = node([ready('True')]);
    const first = observeHeartbeat(undefined, 'r1', n, T0);
    expect(first).toMatchObject({ observedAtMs: T0, renewed: false });
    expect(observeHeartbeat(first, 'r1', n, T0 + 5_000)).toBe(first);
    expect(observeHeartbeat(first, 'r2', n, T0 + 5_000)).toMatchObject({
      observedAtMs: T0 + 5_000,
      renewed: true,
    });
    const reregistered = node([{ ...ready('True'), lastHeartbeatTime: at(4) }]);
    expect(observeHeartbeat(first, 'r1', reregistered, T0 + 6_000).observedAtMs).toBe(T0 + 6_000);
  });
});

describe('planNodeHealth', () => {
  it('a fresh heartbeat on a Ready node changes nothing and asks to look again when it would go stale', () => {
    const plan = planNodeHealth(node([ready('True')]), seen(0), T0 + 10_000, GRACE);
    expect(plan.conditions).toBeUndefined();
    expect(plan.taints).toBeUndefined();
    expect(plan.requeueAfterMs).toBe(30_001);
  });

  it('a stale heartbeat: Ready Unknown (NodeStatusUnknown) and the unreachable taints with timeAdded', () => {
    const other: NodeCondition = { type: 'MemoryPressure', status: 'False' };
    const plan = planNodeHealth(node([ready('True'), other]), seen(0), T0 + 40_000, GRACE);
    expect(plan.conditions).toEqual([
      {
        ...ready('True'),
        status: 'Unknown',
        reason: 'NodeStatusUnknown',
        message: 'Agent stopped posting node status.',
        lastTransitionTime: at(40),
      },
      {
        ...other,
        status: 'Unknown',
        reason: 'NodeStatusUnknown',
        message: 'Agent stopped posting node status.',
        lastTransitionTime: at(40),
      },
    ]);
    expect(plan.taints).toEqual([
      { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: at(40) },
      { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: at(40) },
    ]);
    expect(plan.requeueAfterMs).toBeUndefined();
  });

  it('a node whose agent never posted Ready gets Ready Unknown (NodeStatusNeverUpdated)', () => {
    const plan = planNodeHealth(node(undefined), seen(0), T0 + 41_000, GRACE);
    expect(plan.conditions).toEqual([
      {
        type: 'Ready',
        status: 'Unknown',
        reason: 'NodeStatusNeverUpdated',
        message: 'Agent never posted node status.',
        lastTransitionTime: at(41),
      },
    ]);
  });

  it('a renewed Lease brings back the Ready this controller made Unknown, and the taints go', () => {
    const stale = node([ready('Unknown', 'NodeStatusUnknown')], {
      taints: [
        { key: 'dedicated', value: 'x', effect: 'NoSchedule' },
        { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: at(40) },
        { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: at(40) },
      ],
    });
    const plan = planNodeHealth(stale, seen(50), T0 + 51_000, GRACE);
    expect(plan.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True', reason: 'AgentReady' });
    expect(plan.taints).toEqual([{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }]);
  });

  it('a new leader does not bring back Ready before it has seen the Lease renewed (no flap on failover)', () => {
    const stale = node([ready('Unknown', 'NodeStatusUnknown')], {
      taints: [
        { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: at(40) },
        { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: at(40) },
      ],
    });
    const plan = planNodeHealth(stale, seen(100, false), T0 + 101_000, GRACE);
    expect(plan.conditions).toBeUndefined();
    expect(plan.taints).toBeUndefined();
  });

  it("an agent's own Unknown is not turned True by this controller", () => {
    const plan = planNodeHealth(node([ready('Unknown', 'AgentSaysSo')]), seen(0), T0 + 1_000, GRACE);
    expect(plan.conditions).toBeUndefined();
    expect(plan.taints?.map((t) => `${t.key}:${t.effect}`)).toEqual([
      'node.kubernetes.io/unreachable:NoSchedule',
      'node.kubernetes.io/unreachable:NoExecute',
    ]);
  });

  it('Ready False gets the not-ready taints; a cordoned node the unschedulable taint; existing ones keep timeAdded', () => {
    const plan = planNodeHealth(node([ready('False')], { unschedulable: true }), seen(0), T0 + 1_000, GRACE);
    expect(plan.taints).toEqual([
      { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule', timeAdded: at(1) },
      { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute', timeAdded: at(1) },
      { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule', timeAdded: at(1) },
    ]);
    const again = node([ready('False')], { unschedulable: true, taints: plan.taints });
    expect(planNodeHealth(again, seen(0), T0 + 5_000, GRACE).taints).toBeUndefined();
    const uncordoned = node([ready('True')], { taints: [plan.taints![2]] });
    expect(planNodeHealth(uncordoned, seen(0), T0 + 5_000, GRACE).taints).toEqual([]);
  });
});

describe('taint evictions', () => {
  const unreachable: Taint = {
    key: 'node.kubernetes.io/unreachable',
    effect: 'NoExecute',
    timeAdded: at(10),
  };
  const pod = (name: string, tolerations?: Toleration[], extra: Partial<Pod> = {}): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      containers: [{ name: 'c', image: 'i' }],
      nodeName: 'n1',
      ...(tolerations ? { tolerations } : {}),
    },
    ...extra,
  });
  const tolerate = (seconds?: number): Toleration[] => [
    {
      key: 'node.kubernetes.io/unreachable',
      operator: 'Exists',
      effect: 'NoExecute',
      ...(seconds !== undefined ? { tolerationSeconds: seconds } : {}),
    },
  ];

  it('evicts at once without a toleration, at timeAdded + tolerationSeconds with one, never without seconds', () => {
    expect(evictionTimeMs(pod('a'), [unreachable], T0 + 11_000)).toBe(T0 + 11_000);
    expect(evictionTimeMs(pod('b', tolerate(5)), [unreachable], T0 + 11_000)).toBe(T0 + 15_000);
    expect(evictionTimeMs(pod('c', tolerate()), [unreachable], T0 + 11_000)).toBeUndefined();
    expect(evictionTimeMs(pod('d', tolerate(-1)), [unreachable], T0 + 11_000)).toBe(T0 + 10_000);
    const noSchedule: Taint = { key: 'x', effect: 'NoSchedule' };
    expect(evictionTimeMs(pod('e'), [noSchedule], T0)).toBeUndefined();
  });

  it('plans the evictions due now and the next due time; pods being deleted or finished stay', () => {
    const pods = [
      pod('now'),
      pod('soon', tolerate(5)),
      pod('later', tolerate(20)),
      pod('never', tolerate()),
      pod('deleting', undefined, { metadata: { name: 'deleting', deletionTimestamp: at(0) } }),
      pod('done', undefined, { status: { phase: 'Succeeded' } }),
    ];
    const plan = planTaintEvictions(pods, [unreachable], T0 + 12_000);
    expect(plan.evict.map((p) => p.metadata.name)).toEqual(['now']);
    expect(plan.requeueAfterMs).toBe(3_000);
    expect(planTaintEvictions(pods, [], T0).evict).toEqual([]);
  });
});

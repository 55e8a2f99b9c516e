import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Affinity, Container, Node, Pod, Taint, Toleration } from '../objects.js';
import {
  type Placement,
  Reason,
  type ScheduleResult,
  schedulePod,
  type Unschedulable,
  unschedulableMessage,
} from './schedule.js';
import { SchedulerSnapshot } from './snapshot.js';

interface NodeOpts {
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  taints?: Taint[];
  unschedulable?: boolean;
  ready?: 'True' | 'False' | 'Unknown' | 'none';
  extra?: Record<string, string>;
}

function node(name: string, o: NodeOpts = {}): Node {
  const cap = { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110', ...o.extra };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: {
      capacity: cap,
      allocatable: cap,
      ...(o.ready === 'none' ? {} : { conditions: [{ type: 'Ready', status: o.ready ?? 'True' }] }),
    },
  };
}

interface PodOpts {
  cpu?: string;
  memory?: string;
  containers?: Container[];
  initContainers?: Container[];
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
  labels?: Record<string, string>;
  owner?: string;
  nodeName?: string;
  namespace?: string;
  hostPort?: number;
}

function pod(name: string, o: PodOpts = {}): Pod {
  const requests: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  const containers = o.containers ?? [
    {
      name: 'app',
      image: 'coxswain/busybox',
      ...(Object.keys(requests).length > 0 ? { resources: { requests } } : {}),
      ...(o.hostPort ? { ports: [{ containerPort: 80, hostPort: o.hostPort }] } : {}),
    },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.namespace ?? 'default',
      uid: `uid-${name}`,
      labels: o.labels ?? {},
      ...(o.owner
        ? {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.owner, uid: o.owner, controller: true },
            ],
          }
        : {}),
    },
    spec: {
      containers,
      ...(o.initContainers ? { initContainers: o.initContainers } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.affinity ? { affinity: o.affinity } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o.nodeName ? { nodeName: o.nodeName } : {}),
    },
    status: { phase: 'Pending' },
  };
}

const keyOf = (p: Pod) => `Pod/${p.metadata.namespace}/${p.metadata.name}`;

function snapshotOf(nodes: Node[], pods: Pod[] = []): SchedulerSnapshot {
  const s = new SchedulerSnapshot();
  for (const n of nodes) s.setNode(n);
  for (const p of pods) s.setPod(keyOf(p), p);
  return s;
}

function placed(r: ScheduleResult): Placement {
  if (r.kind !== 'placed') throw new Error(`not placed: ${r.message}`);
  return r;
}

function refused(r: ScheduleResult): Unschedulable {
  if (r.kind !== 'unschedulable') throw new Error(`placed on ${r.node}`);
  return r;
}

/** Schedules `p` and assumes it where it went (as the scheduler actor does). */
function scheduleAndAssume(s: SchedulerSnapshot, p: Pod, tieBreak = 0): string {
  const r = placed(schedulePod(s, p, { tieBreak }));
  s.assume(keyOf(p), p, r.node);
  return r.node;
}

describe('filters', () => {
  it('resource fit: cpu, memory and pod count, with Kubernetes reasons', () => {
    const s = snapshotOf(
      [node('a', { cpu: '1' }), node('b', { memory: '1Gi' }), node('c', { pods: '1' })],
      [pod('on-c', { nodeName: 'c' })],
    );
    const r = refused(schedulePod(s, pod('big', { cpu: '2', memory: '2Gi' })));
    expect(Object.fromEntries(r.reasons)).toEqual({
      a: ['Insufficient cpu'],
      b: ['Insufficient memory'],
      c: ['Too many pods'],
    });
    expect(r.message).toBe(
      '0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods.',
    );
    // Several shortfalls on one node are each counted.
    const r2 = refused(
      schedulePod(
        snapshotOf([node('a', { cpu: '1', memory: '1Gi' })]),
        pod('x', { cpu: '2', memory: '2Gi' }),
      ),
    );
    expect(r2.reasons.get('a')).toEqual(['Insufficient cpu', 'Insufficient memory']);
  });

  it('counts assumed and bound pods, and frees on forget, delete and finish', () => {
    const s = snapshotOf([node('a', { cpu: '1' })]);
    expect(scheduleAndAssume(s, pod('p1', { cpu: '600m' }))).toBe('a');
    expect(refused(schedulePod(s, pod('p2', { cpu: '600m' }))).reasons.get('a')).toEqual([
      'Insufficient cpu',
    ]);
    s.forget('Pod/default/p1');
    expect(placed(schedulePod(s, pod('p2', { cpu: '600m' }))).node).toBe('a');
    // Bound (the assumption confirmed), then finished: the cpu is free again.
    const p1 = pod('p1', { cpu: '600m', nodeName: 'a' });
    expect(s.setPod('Pod/default/p1', p1)).toBe('placed');
    expect(schedulePod(s, pod('p2', { cpu: '600m' })).kind).toBe('unschedulable');
    expect(s.setPod('Pod/default/p1', { ...p1, status: { phase: 'Succeeded' } })).toBe('freed');
    expect(schedulePod(s, pod('p2', { cpu: '600m' })).kind).toBe('placed');
  });

  it('init containers count as the larger of the biggest init container and the sum of the app containers', () => {
    const s = snapshotOf([node('a', { cpu: '1' })]);
    const c = (name: string, cpu: string): Container => ({
      name,
      image: 'i',
      resources: { requests: { cpu } },
    });
    expect(
      schedulePod(
        s,
        pod('fits', { containers: [c('a', '400m'), c('b', '400m')], initContainers: [c('i', '900m')] }),
      ).kind,
    ).toBe('placed');
    expect(
      refused(
        schedulePod(
          s,
          pod('init-too-big', { containers: [c('a', '100m')], initContainers: [c('i', '1100m')] }),
        ),
      ).reasons.get('a'),
    ).toEqual(['Insufficient cpu']);
    expect(
      schedulePod(
        s,
        pod('apps-too-big', {
          containers: [c('a', '600m'), c('b', '600m')],
          initContainers: [c('i', '100m')],
        }),
      ).kind,
    ).toBe('unschedulable');
  });

  it('a limit without a request requests the limit; extended resources are counted', () => {
    const s = snapshotOf([
      node('a', { cpu: '1', extra: { 'nvidia.com/gpu': '1' } }),
      node('b', { cpu: '4' }),
    ]);
    const limited = pod('l', {
      containers: [{ name: 'c', image: 'i', resources: { limits: { cpu: '2' } } }],
    });
    expect(placed(schedulePod(s, limited)).node).toBe('b');
    const gpu = pod('g', {
      containers: [{ name: 'c', image: 'i', resources: { requests: { 'nvidia.com/gpu': '1' } } }],
    });
    expect(placed(schedulePod(s, gpu)).node).toBe('a');
    s.assume('Pod/default/g', gpu, 'a');
    expect(refused(schedulePod(s, { ...gpu, metadata: { ...gpu.metadata, name: 'g2' } })).message).toBe(
      '0/2 nodes are available: 2 Insufficient nvidia.com/gpu.',
    );
  });

  it('nodeSelector and required node affinity (terms ORed, expressions ANDed, every operator, matchFields)', () => {
    const s = snapshotOf([
      node('a', { labels: { disk: 'ssd', gen: '3' } }),
      node('b', { labels: { disk: 'hdd', gen: '5' } }),
      node('c', { labels: { gen: 'x' } }),
    ]);
    const where = (o: PodOpts) => {
      const r = schedulePod(s, pod('p', o), { percentageOfNodesToScore: 100 });
      return r.kind === 'placed' ? r.node : Object.fromEntries((r as Unschedulable).reasons);
    };
    const required = (
      ...terms: NonNullable<
        Affinity['nodeAffinity']
      >['requiredDuringSchedulingIgnoredDuringExecution'] extends infer R
        ? R extends { nodeSelectorTerms: infer T }
          ? T
          : never
        : never
    ): PodOpts => ({
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
      },
    });
    expect(where({ nodeSelector: { disk: 'ssd' } })).toBe('a');
    expect(where(required({ matchExpressions: [{ key: 'disk', operator: 'In', values: ['hdd'] }] }))).toBe(
      'b',
    );
    expect(where(required({ matchExpressions: [{ key: 'disk', operator: 'DoesNotExist' }] }))).toBe('c');
    expect(where(required({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }] }))).toBe('b');
    expect(where(required({ matchExpressions: [{ key: 'gen', operator: 'Lt', values: ['4'] }] }))).toBe('a');
    expect(where(required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['c'] }] }))).toBe(
      'c',
    );
    // NotIn holds where the label is absent; ANDed with Exists it does not.
    expect(
      where(
        required({
          matchExpressions: [
            { key: 'disk', operator: 'NotIn', values: ['ssd'] },
            { key: 'disk', operator: 'Exists' },
          ],
        }),
      ),
    ).toBe('b');
    // Terms are ORed: a or c.
    const r = refused(
      schedulePod(
        snapshotOf([
          node('a', { cpu: '1', labels: { disk: 'ssd' } }),
          node('b'),
          node('c', { cpu: '1', labels: { gen: 'x' } }),
        ]),
        pod('p', {
          cpu: '2',
          ...required(
            { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
            { matchExpressions: [{ key: 'gen', operator: 'Exists' }] },
          ),
        }),
      ),
    );
    expect(Object.fromEntries(r.reasons)).toEqual({
      a: ['Insufficient cpu'],
      b: [Reason.NodeAffinity],
      c: ['Insufficient cpu'],
    });
    // Nothing matches: the selector and the affinity must both hold.
    expect(
      where({
        nodeSelector: { disk: 'ssd' },
        ...required({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }] }),
      }),
    ).toEqual({
      a: [Reason.NodeAffinity],
      b: [Reason.NodeAffinity],
      c: [Reason.NodeAffinity],
    });
    // An empty term matches no node.
    expect(where(required({}))).toEqual({
      a: [Reason.NodeAffinity],
      b: [Reason.NodeAffinity],
      c: [Reason.NodeAffinity],
    });
  });

  it('taints: NoSchedule and NoExecute filter unless tolerated; PreferNoSchedule only scores', () => {
    const gpu: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
    const s = snapshotOf([
      node('a', { taints: [gpu] }),
      node('b', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] }),
      node('c', { taints: [{ key: 'spot', value: 'yes', effect: 'PreferNoSchedule' }] }),
    ]);
    expect(placed(schedulePod(s, pod('p'))).node).toBe('c');
    const r = refused(
      schedulePod(
        snapshotOf([
          node('a', { taints: [gpu] }),
          node('b', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] }),
        ]),
        pod('p'),
      ),
    );
    expect(r.message).toBe(
      '0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.',
    );
    // Equal with the value; Exists on the key; an empty key with Exists tolerates everything.
    const onA = { nodeSelector: { 'kubernetes.io/hostname': 'a' } };
    expect(
      schedulePod(
        s,
        pod('p', {
          ...onA,
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        }),
      ).kind,
    ).toBe('placed');
    expect(
      schedulePod(
        s,
        pod('p', { ...onA, tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'tpu' }] }),
      ).kind,
    ).toBe('unschedulable');
    expect(
      schedulePod(s, pod('p', { ...onA, tolerations: [{ key: 'dedicated', operator: 'Exists' }] })).kind,
    ).toBe('placed');
    expect(
      schedulePod(
        s,
        pod('p', { ...onA, tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }] }),
      ).kind,
    ).toBe('unschedulable');
    expect(schedulePod(s, pod('p', { ...onA, tolerations: [{ operator: 'Exists' }] })).kind).toBe('placed');
    // Tolerating everything, the node without a PreferNoSchedule taint scores higher than c.
    const all = placed(
      schedulePod(
        s,
        pod('p', {
          tolerations: [
            { operator: 'Exists', effect: 'NoSchedule' },
            { operator: 'Exists', effect: 'NoExecute' },
          ],
        }),
      ),
    );
    expect(['a', 'b']).toContain(all.node);
    expect(all.scores.TaintToleration).toBe(100);
  });

  it('unschedulable (cordoned) and not-ready nodes', () => {
    const s = snapshotOf([
      node('a', { unschedulable: true }),
      node('b', { ready: 'False' }),
      node('c', { ready: 'Unknown' }),
      node('d', { ready: 'none' }),
    ]);
    expect(placed(schedulePod(s, pod('p'))).node).toBe('d');
    s.removeNode('d');
    expect(refused(schedulePod(s, pod('p'))).message).toBe(
      '0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) were not ready.',
    );
    const tolerant = pod('p', {
      tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }],
    });
    expect(placed(schedulePod(s, tolerant)).node).toBe('a');
  });

  it('host ports conflict with the same protocol and port on a node', () => {
    const s = snapshotOf([node('a'), node('b')], [pod('web-1', { hostPort: 8080, nodeName: 'a' })]);
    expect(placed(schedulePod(s, pod('web-2', { hostPort: 8080 }))).node).toBe('b');
    s.setPod('Pod/default/web-3', pod('web-3', { hostPort: 8080, nodeName: 'b' }));
    expect(refused(schedulePod(s, pod('web-2', { hostPort: 8080 }))).message).toBe(
      "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.",
    );
    expect(schedulePod(s, pod('other', { hostPort: 9090 })).kind).toBe('placed');
  });

  it('the example of the brief, in Kubernetes order (sorted as strings)', () => {
    const gpu: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
    const s = snapshotOf([
      node('n1', { cpu: '1', labels: { zone: 'a' } }),
      node('n2', { cpu: '1', labels: { zone: 'a' } }),
      node('n3', { labels: { zone: 'a' }, taints: [gpu] }),
      node('n4', { labels: { zone: 'b' } }),
      node('n5', { labels: { zone: 'b' } }),
    ]);
    const r = refused(schedulePod(s, pod('p', { cpu: '2', nodeSelector: { zone: 'a' } })));
    expect(r.message).toBe(
      "0/5 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.",
    );
    expect(unschedulableMessage(0, new Map())).toBe('no nodes available to schedule pods');
    expect(refused(schedulePod(new SchedulerSnapshot(), pod('p'))).message).toBe(
      'no nodes available to schedule pods',
    );
  });
});

describe('pod affinity and anti-affinity', () => {
  const anti = (app: string, topologyKey = 'kubernetes.io/hostname'): Affinity => ({
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app } }, topologyKey },
      ],
    },
  });

  it('required anti-affinity by hostname: one pod per node, then none', () => {
    const s = snapshotOf([node('a'), node('b'), node('c')]);
    const used = new Set<string>();
    for (let i = 0; i < 3; i += 1)
      used.add(scheduleAndAssume(s, pod(`db-${i}`, { labels: { app: 'db' }, affinity: anti('db') })));
    expect(used.size).toBe(3);
    expect(
      refused(schedulePod(s, pod('db-3', { labels: { app: 'db' }, affinity: anti('db') }))).message,
    ).toBe("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
    // Pods without the label are not affected; other namespaces are not either.
    expect(schedulePod(s, pod('web', { labels: { app: 'web' }, affinity: anti('db') })).kind).toBe(
      'unschedulable',
    );
    expect(
      schedulePod(s, pod('db-x', { namespace: 'other', labels: { app: 'db' }, affinity: anti('db') })).kind,
    ).toBe('placed');
  });

  it("existing pods' anti-affinity keeps matching pods away (symmetry)", () => {
    const s = snapshotOf(
      [node('a'), node('b')],
      [pod('loner', { nodeName: 'a', labels: { app: 'loner' }, affinity: anti('noisy') })],
    );
    expect(placed(schedulePod(s, pod('noisy', { labels: { app: 'noisy' } }))).node).toBe('b');
    s.setPod(
      'Pod/default/loner2',
      pod('loner2', { nodeName: 'b', labels: { app: 'loner' }, affinity: anti('noisy') }),
    );
    expect(refused(schedulePod(s, pod('noisy', { labels: { app: 'noisy' } }))).message).toBe(
      "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules.",
    );
  });

  it('anti-affinity over another topology key (zones)', () => {
    const s = snapshotOf([
      node('a1', { labels: { zone: 'a' } }),
      node('a2', { labels: { zone: 'a' } }),
      node('b1', { labels: { zone: 'b' } }),
      node('x', {}),
    ]);
    const zones = new Set<string>();
    const first = scheduleAndAssume(s, pod('z0', { labels: { app: 'z' }, affinity: anti('z', 'zone') }));
    const second = scheduleAndAssume(s, pod('z1', { labels: { app: 'z' }, affinity: anti('z', 'zone') }));
    for (const n of [first, second]) zones.add(s.nodeInfo(n)?.labels.zone ?? 'none');
    expect(zones.size).toBe(2);
  });

  it('required pod affinity: next to a matching pod; the first of a group may go anywhere', () => {
    const near = (app: string): Affinity => ({
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { app } }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    });
    const s = snapshotOf(
      [node('a'), node('b'), node('c')],
      [pod('cache', { nodeName: 'b', labels: { app: 'cache' } })],
    );
    expect(placed(schedulePod(s, pod('web', { affinity: near('cache') }))).node).toBe('b');
    expect(refused(schedulePod(s, pod('web', { affinity: near('db') }))).message).toBe(
      "0/3 nodes are available: 3 node(s) didn't match pod affinity rules.",
    );
    // Matches its own term and no pod matches yet: allowed.
    expect(schedulePod(s, pod('db-0', { labels: { app: 'db' }, affinity: near('db') })).kind).toBe('placed');
  });
});

describe('scores', () => {
  it('spreads the pods of one owner across nodes', () => {
    const s = snapshotOf([node('a'), node('b'), node('c')]);
    const counts = new Map<string, number>();
    for (let i = 0; i < 9; i += 1) {
      const n = scheduleAndAssume(s, pod(`web-${i}`, { owner: 'rs-1', cpu: '100m' }), i);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    expect([...counts.values()]).toEqual([3, 3, 3]);
  });

  it('prefers the least allocated node, and balanced allocation', () => {
    const s = snapshotOf([node('a'), node('b')], [pod('hog', { nodeName: 'a', cpu: '3', memory: '6Gi' })]);
    const r = placed(schedulePod(s, pod('p', { cpu: '100m' })));
    expect(r.node).toBe('b');
    expect(r.scores.NodeResourcesLeastAllocated).toBeGreaterThan(90);
    // cpu-heavy node vs memory-heavy node: a memory-heavy pod balances the cpu-heavy one.
    const t = snapshotOf(
      [node('c'), node('m')],
      [pod('c1', { nodeName: 'c', cpu: '3' }), pod('m1', { nodeName: 'm', memory: '6Gi' })],
    );
    expect(placed(schedulePod(t, pod('p', { memory: '4Gi', cpu: '100m' }))).node).toBe('c');
  });

  it('preferred node affinity weights', () => {
    const s = snapshotOf([node('a', { labels: { disk: 'ssd' } }), node('b', { labels: { gen: 'new' } })]);
    const prefer = (w1: number, w2: number): Affinity => ({
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: w1,
            preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
          },
          { weight: w2, preference: { matchExpressions: [{ key: 'gen', operator: 'Exists' }] } },
        ],
      },
    });
    expect(placed(schedulePod(s, pod('p', { affinity: prefer(80, 10) }))).node).toBe('a');
    const r = placed(schedulePod(s, pod('p', { affinity: prefer(10, 80) })));
    expect(r.node).toBe('b');
    expect(r.scores.NodeAffinity).toBe(100);
  });

  it('breaks ties deterministically with the tie-break input', () => {
    const s = snapshotOf([node('a'), node('b'), node('c')]);
    const picks = [0, 1, 2, 3].map((t) => placed(schedulePod(s, pod('p'), { tieBreak: t })).node);
    expect(picks).toEqual(['a', 'b', 'c', 'a']);
    expect(placed(schedulePod(s, pod('p'), { tieBreak: 1 })).node).toBe('b');
  });
});

describe('large clusters', () => {
  it('finds only enough feasible nodes (adaptive percentage) and moves the start round robin', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${String(i).padStart(4, '0')}`));
    const s = snapshotOf(nodes);
    const r = placed(schedulePod(s, pod('p'), { startIndex: 0 }));
    expect(r.evaluated).toBe(420); // 50% - 1000/125 = 42%
    expect(r.feasible).toBe(420);
    expect(r.nextStartIndex).toBe(420);
    const r2 = placed(schedulePod(s, pod('p'), { startIndex: r.nextStartIndex }));
    expect(r2.nextStartIndex).toBe(840);
    // When nothing fits, every node is evaluated and reported.
    const none = refused(schedulePod(s, pod('huge', { cpu: '64' })));
    expect(none.reasons.size).toBe(1000);
    expect(none.message).toBe('0/1000 nodes are available: 1000 Insufficient cpu.');
  });

  it('schedules 10,000 pods over 1,000 nodes evenly (spread by owner, round robin start)', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => node(`n${i}`, { cpu: '32', memory: '64Gi' }));
    const s = snapshotOf(nodes);
    let start = 0;
    for (let i = 0; i < 10_000; i += 1) {
      const p = pod(`web-${i}`, { owner: `rs-${i % 30}`, cpu: '100m', memory: '64Mi' });
      const r = placed(schedulePod(s, p, { startIndex: start, tieBreak: i }));
      start = r.nextStartIndex;
      s.assume(keyOf(p), p, r.node);
    }
    const perNode = s.nodeList().map((n) => n.podCount);
    expect(Math.min(...perNode)).toBeGreaterThanOrEqual(8);
    expect(Math.max(...perNode)).toBeLessThanOrEqual(12);
  });
});

// ---------------------------------------------------------------- properties

interface Sized {
  cpu: number;
  memory: number;
}

/** The dumb reference: sum every placed pod's requests per node and compare. */
function referenceFit(
  nodes: (Sized & { pods: number })[],
  placedPods: (Sized & { node: number })[],
  p: Sized,
): string[][] {
  return nodes.map((n, i) => {
    const on = placedPods.filter((x) => x.node === i);
    const cpu = on.reduce((a, x) => a + x.cpu, 0);
    const memory = on.reduce((a, x) => a + x.memory, 0);
    const out: string[] = [];
    if (on.length + 1 > n.pods) out.push('Too many pods');
    if (p.cpu > 0 && cpu + p.cpu > n.cpu) out.push('Insufficient cpu');
    if (p.memory > 0 && memory + p.memory > n.memory) out.push('Insufficient memory');
    return out;
  });
}

describe('properties', () => {
  const sized = fc.record({
    cpu: fc.integer({ min: 0, max: 4000 }),
    memory: fc.integer({ min: 0, max: 8192 }),
  });

  it('fit agrees with a simple reference for any nodes and placed pods', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            cpu: fc.integer({ min: 0, max: 8000 }),
            memory: fc.integer({ min: 0, max: 16384 }),
            pods: fc.integer({ min: 0, max: 6 }),
          }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        fc.array(
          fc.record({
            cpu: fc.integer({ min: 0, max: 4000 }),
            memory: fc.integer({ min: 0, max: 8192 }),
            node: fc.nat(),
          }),
          { maxLength: 20 },
        ),
        sized,
        (nodeSizes, placedRaw, incoming) => {
          const placedPods = placedRaw.map((x) => ({ ...x, node: x.node % nodeSizes.length }));
          const res = (x: Sized) => ({ cpu: `${x.cpu}m`, memory: `${x.memory}Mi` });
          const s = snapshotOf(
            nodeSizes.map((n, i) => node(`n${i}`, { ...res(n), pods: String(n.pods) })),
            placedPods.map((x, j) => pod(`p${j}`, { ...res(x), nodeName: `n${x.node}` })),
          );
          const expected = referenceFit(nodeSizes, placedPods, incoming);
          const r = schedulePod(s, pod('incoming', res(incoming)));
          const feasible = expected.flatMap((why, i) => (why.length === 0 ? [`n${i}`] : []));
          if (feasible.length === 0) {
            expect(r.kind).toBe('unschedulable');
            const u = r as Unschedulable;
            for (let i = 0; i < nodeSizes.length; i += 1) expect(u.reasons.get(`n${i}`)).toEqual(expected[i]);
          } else {
            expect(r.kind).toBe('placed');
            expect(feasible).toContain((r as Placement).node);
            expect((r as Placement).feasible).toBe(feasible.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('incremental node sums equal a recount after any sequence of binds, assumptions, forgets and deletes', () => {
    const op = fc.oneof(
      fc.record({
        t: fc.constant('bind' as const),
        pod: fc.nat(9),
        node: fc.nat(2),
        cpu: fc.integer({ min: 0, max: 999 }),
      }),
      fc.record({
        t: fc.constant('assume' as const),
        pod: fc.nat(9),
        node: fc.nat(2),
        cpu: fc.integer({ min: 0, max: 999 }),
      }),
      fc.record({ t: fc.constant('forget' as const), pod: fc.nat(9) }),
      fc.record({ t: fc.constant('delete' as const), pod: fc.nat(9) }),
      fc.record({ t: fc.constant('finish' as const), pod: fc.nat(9) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const s = snapshotOf([node('n0'), node('n1'), node('n2')]);
        /** The reference: key → [node, cpu, assumed]. */
        const ref = new Map<string, { node: string; cpu: number; assumed: boolean }>();
        const bound = new Map<string, Pod>();
        for (const o of ops) {
          const key = `Pod/default/p${o.pod}`;
          if (o.t === 'bind') {
            const prev = ref.get(key);
            if (prev !== undefined && !prev.assumed) continue; // a bound pod never moves
            const p = pod(`p${o.pod}`, {
              cpu: `${prev?.cpu ?? o.cpu}m`,
              nodeName: prev?.node ?? `n${o.node}`,
            });
            s.setPod(key, p);
            bound.set(key, p);
            ref.set(key, { node: prev?.node ?? `n${o.node}`, cpu: prev?.cpu ?? o.cpu, assumed: false });
          } else if (o.t === 'assume') {
            if (ref.has(key)) continue;
            s.assume(key, pod(`p${o.pod}`, { cpu: `${o.cpu}m` }), `n${o.node}`);
            ref.set(key, { node: `n${o.node}`, cpu: o.cpu, assumed: true });
          } else if (o.t === 'forget') {
            s.forget(key);
            if (ref.get(key)?.assumed) ref.delete(key);
          } else if (o.t === 'delete') {
            s.removePod(key);
            ref.delete(key);
            bound.delete(key);
          } else {
            const p = bound.get(key);
            if (p === undefined) continue;
            s.setPod(key, { ...p, status: { phase: 'Failed' } });
            ref.delete(key);
            bound.delete(key);
          }
        }
        for (const n of ['n0', 'n1', 'n2']) {
          const info = s.nodeInfo(n);
          const on = [...ref.values()].filter((x) => x.node === n);
          expect(info?.podCount).toBe(on.length);
          expect(info?.requested.milliCpu).toBe(on.reduce((a, x) => a + x.cpu, 0));
        }
        expect(s.podCount).toBe(ref.size);
      }),
      { numRuns: 300 },
    );
  });
});

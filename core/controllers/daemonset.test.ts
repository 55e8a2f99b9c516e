import { describe, expect, it } from 'vitest';
import type { DaemonSet, Node, Pod, PodPhase, PodSpec, Taint } from '../objects.js';
import { compareDaemonPods, daemonPod, planDaemonSet, scaledValue } from './daemonset.js';
import {
  daemonEligibility,
  nodeAffinityMatches,
  toleratesTaint,
  withDaemonTolerations,
} from './node-eligibility.js';
import { rfc3339 } from './pods.js';

const now = Date.parse('2025-01-01T00:10:00Z');

function node(name: string, labels: Record<string, string> = {}, taints: Taint[] = []): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    spec: { taints },
  };
}

function ds(spec: Partial<DaemonSet['spec']> = {}, podSpec: Partial<PodSpec> = {}): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'd', namespace: 'default', uid: 'ds-uid', generation: 2 },
    spec: {
      selector: { matchLabels: { app: 'd' } },
      template: {
        metadata: { labels: { app: 'd' } },
        spec: { containers: [{ name: 'c', image: 'i' }], ...podSpec },
      },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      ...spec,
    },
  };
}

let seq = 0;
/** A daemon pod on `nodeName` at `hash`, ready since a minute ago unless told otherwise. */
function pod(
  nodeName: string,
  hash: string,
  opts: {
    ready?: boolean;
    phase?: PodPhase;
    deleting?: boolean;
    createdSec?: number;
    readyAgoMs?: number;
  } = {},
): Pod {
  seq += 1;
  const p = daemonPod(ds(), nodeName, hash);
  p.metadata.name = `d-${seq}`;
  p.metadata.uid = `uid-${seq}`;
  p.metadata.creationTimestamp = rfc3339(now - 300_000 + (opts.createdSec ?? seq) * 1000);
  if (opts.deleting) p.metadata.deletionTimestamp = rfc3339(now);
  p.status = {
    phase: opts.phase ?? 'Running',
    conditions: [
      {
        type: 'Ready',
        status: opts.ready === false ? 'False' : 'True',
        lastTransitionTime: rfc3339(now - (opts.readyAgoMs ?? 60_000)),
      },
    ],
  };
  return p;
}

const nodes3 = [node('n1'), node('n2'), node('n3')];

describe('node eligibility', () => {
  it('matches tolerations as Kubernetes: key, operator, value, effect', () => {
    const taint: Taint = { key: 'k', value: 'v', effect: 'NoSchedule' };
    expect(toleratesTaint({ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' }, taint)).toBe(
      true,
    );
    expect(toleratesTaint({ key: 'k', value: 'v' }, taint)).toBe(true);
    expect(toleratesTaint({ key: 'k', operator: 'Equal', value: 'w' }, taint)).toBe(false);
    expect(toleratesTaint({ key: 'k', operator: 'Exists' }, taint)).toBe(true);
    expect(toleratesTaint({ operator: 'Exists' }, taint)).toBe(true);
    expect(toleratesTaint({ key: 'k', operator: 'Exists', effect: 'NoExecute' }, taint)).toBe(false);
  });

  it('adds the DaemonSet tolerations, replacing same key and effect', () => {
    const t = withDaemonTolerations([
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 },
      { key: 'x', operator: 'Exists' },
    ]);
    expect(t.filter((x) => x.key === 'node.kubernetes.io/not-ready')).toEqual([
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    ]);
    expect(t.map((x) => x.key)).toEqual(
      expect.arrayContaining([
        'x',
        'node.kubernetes.io/unreachable',
        'node.kubernetes.io/unschedulable',
        'node.kubernetes.io/disk-pressure',
      ]),
    );
  });

  it('nodeSelector and required node affinity (terms ORed, requirements ANDed, Gt/Lt, matchFields)', () => {
    const n = node('n1', { zone: 'a', cores: '8' });
    expect(nodeAffinityMatches({ containers: [], nodeSelector: { zone: 'a' } }, n)).toBe(true);
    expect(nodeAffinityMatches({ containers: [], nodeSelector: { zone: 'b' } }, n)).toBe(false);
    const affinity = (terms: NonNullable<NonNullable<PodSpec['affinity']>['nodeAffinity']>) => ({
      containers: [],
      affinity: { nodeAffinity: terms },
    });
    const req = (...nodeSelectorTerms: object[]) =>
      affinity({ requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } as never);
    expect(
      nodeAffinityMatches(req({ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4'] }] }), n),
    ).toBe(true);
    expect(
      nodeAffinityMatches(req({ matchExpressions: [{ key: 'cores', operator: 'Lt', values: ['4'] }] }), n),
    ).toBe(false);
    expect(
      nodeAffinityMatches(
        req(
          { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] },
          { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
        ),
        n,
      ),
    ).toBe(true);
    expect(
      nodeAffinityMatches(
        req({
          matchExpressions: [
            { key: 'gpu', operator: 'DoesNotExist' },
            { key: 'zone', operator: 'NotIn', values: ['a'] },
          ],
        }),
        n,
      ),
    ).toBe(false);
    expect(nodeAffinityMatches(req({}), n)).toBe(false);
  });

  it('untolerated NoSchedule: not run, but may continue; untolerated NoExecute: neither', () => {
    const spec = { containers: [], tolerations: withDaemonTolerations(undefined) };
    expect(daemonEligibility(spec, node('n', {}, [{ key: 'x', effect: 'NoSchedule' }]))).toMatchObject({
      shouldRun: false,
      shouldContinueRunning: true,
    });
    expect(daemonEligibility(spec, node('n', {}, [{ key: 'x', effect: 'NoExecute' }]))).toMatchObject({
      shouldRun: false,
      shouldContinueRunning: false,
    });
    expect(daemonEligibility(spec, node('n', {}, [{ key: 'x', effect: 'PreferNoSchedule' }])).shouldRun).toBe(
      true,
    );
    // Cordoned, not ready, unreachable: daemons tolerate these.
    expect(
      daemonEligibility(
        spec,
        node('n', {}, [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }]),
      ).shouldRun,
    ).toBe(true);
    expect(
      daemonEligibility(spec, node('n', {}, [{ key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' }]))
        .shouldRun,
    ).toBe(true);
    expect(
      daemonEligibility(spec, node('n', {}, [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }]))
        .shouldRun,
    ).toBe(true);
    expect(daemonEligibility({ ...spec, nodeName: 'other' }, node('n')).shouldRun).toBe(false);
  });
});

describe('planDaemonSet', () => {
  const plan = (d: DaemonSet, nodes: Node[], pods: Pod[], hash = 'h2', backoff?: (n: string) => number) =>
    planDaemonSet({ ds: d, nodes, pods, hash, nowMs: now, ...(backoff ? { failedBackoffMs: backoff } : {}) });

  it('creates a pod on each eligible node, bound by nodeName with the hash label and tolerations', () => {
    const p = plan(
      ds({}, { nodeSelector: { role: 'edge' } }),
      [node('n1', { role: 'edge' }), node('n2'), node('n3', { role: 'edge' })],
      [],
    );
    expect(p.create).toEqual(['n1', 'n3']);
    const made = daemonPod(ds(), 'n1', 'h2');
    expect(made.spec.nodeName).toBe('n1');
    expect(made.metadata.labels).toEqual({ app: 'd', 'controller-revision-hash': 'h2' });
    expect(made.metadata.generateName).toBe('d-');
    expect(made.spec.tolerations?.length).toBe(6);
    expect(p.status).toMatchObject({
      desiredNumberScheduled: 2,
      currentNumberScheduled: 0,
      numberUnavailable: 2,
      observedGeneration: 2,
    });
  });

  it('deletes pods on nodes that no longer qualify or no longer exist, and extra pods on a node (oldest kept)', () => {
    const old = pod('n1', 'h2', { createdSec: 1 });
    const extra = pod('n1', 'h2', { createdSec: 2 });
    const gone = pod('n9', 'h2');
    const misplaced = pod('n2', 'h2');
    const p = plan(
      ds({}, { nodeSelector: { role: 'edge' } }),
      [node('n1', { role: 'edge' }), node('n2')],
      [extra, old, gone, misplaced],
    );
    expect(p.create).toEqual([]);
    expect(p.delete.map((d) => [d.pod.metadata.name, d.reason])).toEqual(
      expect.arrayContaining([
        [extra.metadata.name, 'surplus'],
        [gone.metadata.name, 'misscheduled'],
        [misplaced.metadata.name, 'misscheduled'],
      ]),
    );
    expect(p.delete).toHaveLength(3);
    expect(p.status).toMatchObject({
      desiredNumberScheduled: 1,
      currentNumberScheduled: 1,
      numberMisscheduled: 1,
    });
  });

  it('a NoSchedule taint keeps the pod already there; NoExecute removes it', () => {
    const a = pod('n1', 'h2');
    expect(plan(ds(), [node('n1', {}, [{ key: 'x', effect: 'NoSchedule' }])], [a]).delete).toEqual([]);
    expect(plan(ds(), [node('n1', {}, [{ key: 'x', effect: 'NoExecute' }])], [a]).delete).toEqual([
      { pod: a, reason: 'misscheduled' },
    ]);
  });

  it('deletes a failed pod unless its node is in backoff (then looks again later); a succeeded one too', () => {
    const failed = pod('n1', 'h2', { phase: 'Failed' });
    const done = pod('n2', 'h2', { phase: 'Succeeded' });
    const p = plan(ds(), nodes3, [failed, done, pod('n3', 'h2')]);
    expect(p.delete.map((d) => d.reason).sort()).toEqual(['failed', 'succeeded']);
    const backed = plan(ds(), nodes3, [failed, pod('n2', 'h2'), pod('n3', 'h2')], 'h2', (n) =>
      n === 'n1' ? 5_000 : 0,
    );
    expect(backed.delete).toEqual([]);
    expect(backed.requeueAfterMs).toBe(5_010);
    // Deleted-and-finished pods are gone for our purposes: the node gets a new pod.
    const p2 = plan(ds(), [node('n1')], [pod('n1', 'h2', { phase: 'Failed', deleting: true })]);
    expect(p2.create).toEqual(['n1']);
    // A terminating running pod holds its node until it is gone.
    expect(plan(ds(), [node('n1')], [pod('n1', 'h2', { deleting: true })]).create).toEqual([]);
  });

  it('adopts matching orphans and releases owned pods that no longer match', () => {
    const orphan = pod('n1', 'h2');
    orphan.metadata.ownerReferences = undefined;
    const relabelled = pod('n2', 'h2');
    relabelled.metadata.labels = { app: 'other' };
    const p = plan(ds(), nodes3, [orphan, relabelled]);
    expect(p.adopt).toEqual([orphan]);
    expect(p.release).toEqual([relabelled]);
    expect(p.create.sort()).toEqual(['n2', 'n3']);
  });

  it('rolling update with maxUnavailable: replaces up to the budget, unavailable old pods first and beyond it', () => {
    const pods = [pod('n1', 'h1'), pod('n2', 'h1'), pod('n3', 'h1', { ready: false })];
    const p = plan(ds(), nodes3, pods);
    // n3's old pod is not available: it is replaced anyway; n3 then counts... one more fits the budget of 1.
    expect(p.delete.map((d) => d.pod.spec.nodeName).sort()).toEqual(['n1', 'n3']);
    expect(p.delete.every((d) => d.reason === 'update')).toBe(true);
    // A node already waiting for its new pod uses the budget.
    const waiting = plan(ds(), nodes3, [pod('n1', 'h2', { ready: false }), pod('n2', 'h1'), pod('n3', 'h1')]);
    expect(waiting.delete).toEqual([]);
    // 25% of 8 nodes rounds up to 2.
    const eight = Array.from({ length: 8 }, (_, i) => node(`m${i}`));
    const wide = plan(
      ds({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%' } } }),
      eight,
      eight.map((n) => pod(n.metadata.name!, 'h1')),
    );
    expect(wide.delete).toHaveLength(2);
  });

  it('rolling update with maxSurge: new pod first, the old one goes once the new is available', () => {
    const surge = ds({
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    });
    const first = plan(surge, nodes3, [pod('n1', 'h1'), pod('n2', 'h1'), pod('n3', 'h1')]);
    expect(first.create).toEqual(['n1']);
    expect(first.delete).toEqual([]);
    const oldN1 = pod('n1', 'h1', { createdSec: 1 });
    const notYet = plan(surge, nodes3, [
      oldN1,
      pod('n1', 'h2', { ready: false, createdSec: 9 }),
      pod('n2', 'h1'),
      pod('n3', 'h1'),
    ]);
    expect(notYet.create).toEqual([]);
    expect(notYet.delete).toEqual([]);
    const ready = plan(surge, nodes3, [
      oldN1,
      pod('n1', 'h2', { createdSec: 9 }),
      pod('n2', 'h1'),
      pod('n3', 'h1'),
    ]);
    expect(ready.delete.map((d) => d.pod)).toEqual([oldN1]);
    expect(ready.create).toEqual(['n2']);
  });

  it('minReadySeconds: an update waits for availability and asks to look again then', () => {
    const d = ds({ minReadySeconds: 120 });
    const p = plan(d, [node('n1'), node('n2')], [pod('n1', 'h2'), pod('n2', 'h1', { readyAgoMs: 600_000 })]);
    // n1's new pod became ready 60 s ago: unavailable for 60 s more; the budget (1) is used.
    expect(p.delete).toEqual([]);
    expect(p.requeueAfterMs).toBe(60_010);
    expect(p.status).toMatchObject({ numberReady: 2, numberAvailable: 1, updatedNumberScheduled: 1 });
  });

  it('OnDelete leaves old pods alone', () => {
    const p = plan(ds({ updateStrategy: { type: 'OnDelete' } }), nodes3, [
      pod('n1', 'h1'),
      pod('n2', 'h1'),
      pod('n3', 'h1'),
    ]);
    expect(p.delete).toEqual([]);
    expect(p.create).toEqual([]);
    expect(p.status.updatedNumberScheduled).toBe(0);
  });

  it('status counts the oldest pod per node and the live hashes', () => {
    const p = plan(ds({ updateStrategy: { type: 'OnDelete' } }), nodes3, [
      pod('n1', 'h2'),
      pod('n2', 'h1', { ready: false }),
    ]);
    expect(p.status).toMatchObject({
      desiredNumberScheduled: 3,
      currentNumberScheduled: 2,
      numberReady: 1,
      numberAvailable: 1,
      numberUnavailable: 2,
      updatedNumberScheduled: 1,
      numberMisscheduled: 0,
    });
    expect([...p.liveHashes].sort()).toEqual(['h1', 'h2']);
  });

  it('helpers: scaled values round up; daemon pods sort oldest first', () => {
    expect(scaledValue('25%', 10, 1)).toBe(3);
    expect(scaledValue(2, 10, 1)).toBe(2);
    expect(scaledValue(undefined, 10, 1)).toBe(1);
    const a = pod('n1', 'h', { createdSec: 1 });
    const b = pod('n1', 'h', { createdSec: 2 });
    expect([b, a].sort(compareDaemonPods)).toEqual([a, b]);
  });
});

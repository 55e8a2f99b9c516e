import { describe, expect, it } from 'vitest';
import type { ControllerRevision, Pod, PodPhase, PodTemplateSpec, StatefulSet } from '../objects.js';
import { rfc3339 } from './pods.js';
import { newRevision, revisionData } from './revisions.js';
import {
  planStatefulSet,
  podOrdinal,
  revisionForNewPod,
  type StatefulSetAction,
  statefulPod,
} from './statefulset.js';

const now = Date.parse('2025-01-01T00:10:00Z');

const template = (image: string): PodTemplateSpec => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'c', image }] },
});

function set(replicas: number, spec: Partial<StatefulSet['spec']> = {}, image = 'v2'): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', namespace: 'default', uid: 'sts-uid', generation: 3 },
    spec: {
      replicas,
      serviceName: 'web-svc',
      selector: { matchLabels: { app: 'web' } },
      template: template(image),
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      ...spec,
    },
  };
}

const revV1: ControllerRevision = newRevision(set(0, {}, 'v1'), 'h1', 1, revisionData(template('v1')));
const revV2: ControllerRevision = newRevision(set(0, {}, 'v2'), 'h2', 2, revisionData(template('v2')));

/** Pod `ordinal` at `rev`, Running and Ready a minute ago unless told otherwise. */
function pod(
  ordinal: number,
  rev: ControllerRevision = revV2,
  opts: { ready?: boolean; phase?: PodPhase; deleting?: boolean; readyAgoMs?: number } = {},
): Pod {
  const p = statefulPod(set(0), ordinal, rev);
  p.metadata.uid = `uid-${ordinal}-${rev.metadata.name}`;
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

const plan = (s: StatefulSet, pods: Pod[], current = revV2, update = revV2) =>
  planStatefulSet({
    set: s,
    pods,
    currentRevision: current,
    updateRevision: update,
    collisionCount: 0,
    nowMs: now,
  });

const describeActions = (actions: StatefulSetAction[]) =>
  actions.map((a) =>
    a.kind === 'create'
      ? `create ${a.ordinal} ${a.revision}`
      : `${a.kind} ${a.pod.metadata.name}${a.kind === 'delete' ? ` ${a.reason}` : ''}`,
  );

describe('StatefulSet pods', () => {
  it('have stable identities and the revision name as their controller-revision-hash', () => {
    const p = statefulPod(set(3), 2, revV1);
    expect(p.metadata.name).toBe('web-2');
    expect(p.metadata.generateName).toBeUndefined();
    expect(p.spec.hostname).toBe('web-2');
    expect(p.spec.subdomain).toBe('web-svc');
    expect(p.spec.containers[0].image).toBe('v1'); // from the revision, not the set's template
    expect(p.metadata.labels).toEqual({
      app: 'web',
      'statefulset.kubernetes.io/pod-name': 'web-2',
      'apps.kubernetes.io/pod-index': '2',
      'controller-revision-hash': revV1.metadata.name,
    });
    expect(p.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'StatefulSet',
      controller: true,
      blockOwnerDeletion: true,
    });
  });

  it('ordinals parse only for the set own names', () => {
    expect(podOrdinal('web', 'web-12')).toBe(12);
    expect(podOrdinal('web', 'web-01')).toBeUndefined();
    expect(podOrdinal('web', 'webx-1')).toBeUndefined();
    expect(podOrdinal('my-web', 'my-web-0')).toBe(0);
    expect(podOrdinal('web', 'web-db-0')).toBeUndefined();
  });
});

describe('planStatefulSet', () => {
  it('OrderedReady: creates the lowest missing ordinal only, after the ones below are ready', () => {
    expect(describeActions(plan(set(3), []).actions)).toEqual(['create 0 update']);
    expect(describeActions(plan(set(3), [pod(0)]).actions)).toEqual(['create 1 update']);
    const waiting = plan(set(3), [pod(0, revV2, { ready: false })]);
    expect(waiting.actions).toEqual([]);
    expect(waiting.waitingFor).toBe('pod web-0 to be Running and Ready');
    expect(plan(set(3), [pod(0, revV2, { phase: 'Pending', ready: false })]).actions).toEqual([]);
  });

  it('Parallel: creates every missing pod at once, unhealthy or not', () => {
    const p = plan(set(4, { podManagementPolicy: 'Parallel' }), [pod(1, revV2, { ready: false })]);
    expect(describeActions(p.actions)).toEqual(['create 0 update', 'create 2 update', 'create 3 update']);
  });

  it('scales down from the highest ordinal, one at a time, and not while a pod is unhealthy', () => {
    const all = [pod(0), pod(1), pod(2), pod(3)];
    expect(describeActions(plan(set(2), all).actions)).toEqual(['delete web-3 condemned']);
    expect(plan(set(2), [pod(0, revV2, { ready: false }), pod(1), pod(2), pod(3)]).actions).toEqual([]);
    expect(plan(set(2), [pod(0), pod(1), pod(2), pod(3, revV2, { deleting: true })]).actions).toEqual([]);
    // The first unhealthy pod itself may go (it is the one blocking).
    expect(
      describeActions(plan(set(2), [pod(0), pod(1), pod(2), pod(3, revV2, { ready: false })]).actions),
    ).toEqual(['delete web-3 condemned']);
    // A healthy higher pod goes first even when a lower condemned one is unhealthy (as Kubernetes).
    expect(
      describeActions(plan(set(2), [pod(0), pod(1), pod(2, revV2, { ready: false }), pod(3)]).actions),
    ).toEqual(['delete web-3 condemned']);
    // Parallel: all condemned at once, healthy or not.
    const par = plan(set(1, { podManagementPolicy: 'Parallel' }), [
      pod(0),
      pod(1, revV2, { ready: false }),
      pod(2),
    ]);
    expect(describeActions(par.actions)).toEqual(['delete web-2 condemned', 'delete web-1 condemned']);
  });

  it('deletes a failed pod (to recreate it under its name), and waits for a terminating one', () => {
    const failed = plan(set(2), [pod(0), pod(1, revV2, { phase: 'Failed' })]);
    expect(describeActions(failed.actions)).toEqual(['delete web-1 failed']);
    const going = plan(set(2), [pod(0), pod(1, revV2, { phase: 'Failed', deleting: true })]);
    expect(going.actions).toEqual([]);
    expect(going.waitingFor).toBe('pod web-1 to terminate');
  });

  it('rolling update: the highest ordinal not at the update revision goes first, one at a time', () => {
    const pods = [pod(0, revV1), pod(1, revV1), pod(2, revV1)];
    expect(describeActions(plan(set(3), pods, revV1, revV2).actions)).toEqual(['delete web-2 update']);
    const next = [pod(0, revV1), pod(1, revV1), pod(2, revV2)];
    expect(describeActions(plan(set(3), next, revV1, revV2).actions)).toEqual(['delete web-1 update']);
    // Waits while the updated pod is not healthy (also with Parallel).
    const unhealthy = [pod(0, revV1), pod(1, revV1), pod(2, revV2, { ready: false })];
    expect(plan(set(3, { podManagementPolicy: 'Parallel' }), unhealthy, revV1, revV2).actions).toEqual([]);
  });

  it('partition: only ordinals at or above it update; a missing pod is recreated at its own revision', () => {
    const s = set(3, { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } });
    expect(plan(s, [pod(0, revV1), pod(1, revV1), pod(2, revV2)], revV1, revV2).actions).toEqual([]);
    expect(describeActions(plan(s, [pod(1, revV1), pod(2, revV2)], revV1, revV2).actions)).toEqual([
      'create 0 current',
    ]);
    expect(describeActions(plan(s, [pod(0, revV1), pod(1, revV1)], revV1, revV2).actions)).toEqual([
      'create 2 update',
    ]);
    expect(revisionForNewPod(s, 1)).toBe('current');
    expect(revisionForNewPod(s, 2)).toBe('update');
    expect(revisionForNewPod(set(3, { updateStrategy: { type: 'OnDelete' } }), 0)).toBe('update');
  });

  it('OnDelete: never deletes for an update', () => {
    const s = set(2, { updateStrategy: { type: 'OnDelete' } });
    expect(plan(s, [pod(0, revV1), pod(1, revV1)], revV1, revV2).actions).toEqual([]);
  });

  it('status: counts, revisions, and the update revision becomes current once every pod is updated and ready', () => {
    const mid = plan(
      set(3),
      [pod(0, revV1), pod(1, revV1), pod(2, revV2, { ready: false })],
      revV1,
      revV2,
    ).status;
    expect(mid).toMatchObject({
      replicas: 3,
      readyReplicas: 2,
      availableReplicas: 2,
      currentReplicas: 2,
      updatedReplicas: 1,
      currentRevision: revV1.metadata.name,
      updateRevision: revV2.metadata.name,
      observedGeneration: 3,
      collisionCount: 0,
    });
    const done = plan(set(3), [pod(0, revV2), pod(1, revV2), pod(2, revV2)], revV1, revV2).status;
    expect(done).toMatchObject({
      currentRevision: revV2.metadata.name,
      currentReplicas: 3,
      updatedReplicas: 3,
    });
    const partitioned = plan(
      set(3, { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } }),
      [pod(0, revV1), pod(1, revV1), pod(2, revV2)],
      revV1,
      revV2,
    ).status;
    expect(partitioned.currentRevision).toBe(revV1.metadata.name);
  });

  it('minReadySeconds: the next pod waits until the previous one is available', () => {
    const p = plan(set(2, { minReadySeconds: 90 }), [pod(0)]);
    expect(p.actions).toEqual([]);
    expect(p.requeueAfterMs).toBe(30_010);
    expect(describeActions(plan(set(2, { minReadySeconds: 30 }), [pod(0)]).actions)).toEqual([
      'create 1 update',
    ]);
  });

  it('claims by selector and name; restores identity labels removed by hand', () => {
    const orphan = pod(1);
    orphan.metadata.ownerReferences = undefined;
    const stranger = statefulPod(set(0), 0, revV2);
    stranger.metadata.name = 'other-0';
    stranger.metadata.ownerReferences = undefined;
    const relabelled = pod(0);
    relabelled.metadata.labels = { app: 'web', 'controller-revision-hash': revV2.metadata.name! };
    const p = plan(set(2), [relabelled, orphan, stranger]);
    expect(p.adopt).toEqual([orphan]);
    expect(describeActions(p.actions)).toEqual(['relabel web-0']);
    const relabel = p.actions[0] as Extract<StatefulSetAction, { kind: 'relabel' }>;
    expect(relabel.labels).toMatchObject({
      'statefulset.kubernetes.io/pod-name': 'web-0',
      'apps.kubernetes.io/pod-index': '0',
    });
    const moved = pod(1);
    moved.metadata.labels = { app: 'elsewhere' };
    expect(plan(set(2), [pod(0), moved]).release).toEqual([moved]);
  });

  it('does nothing but report status while the set is being deleted', () => {
    const s = set(3);
    s.metadata.deletionTimestamp = rfc3339(now);
    const p = plan(s, [pod(0)]);
    expect(p.actions).toEqual([]);
    expect(p.status.replicas).toBe(1);
  });
});

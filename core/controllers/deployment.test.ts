import { describe, expect, it } from 'vitest';
import type { Deployment, Pod, ReplicaSet } from '../objects.js';
import {
  claimReplicaSets,
  type DeploymentInput,
  equalIgnoreHash,
  maxRevision,
  maxSurge,
  maxUnavailable,
  planDeployment,
  proportionalSizes,
  resolveFenceposts,
  revisionOf,
  roundHalfAway,
  scaledValue,
} from './deployment.js';
import { templateHash } from './pods.js';

const nowMs = Date.parse('2026-03-01T12:00:00Z');
const template = (img: string) => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'app', image: img }] },
});

function deployment(
  replicas: number,
  img = 'v1',
  spec: Partial<Deployment['spec']> = {},
  meta: Partial<Deployment['metadata']> = {},
): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', uid: 'd-uid', generation: 1, ...meta },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      template: template(img),
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      ...spec,
    },
  };
}

/** A ReplicaSet of deployment `web` for image `img` (available = ready = status replicas unless given). */
function rs(
  img: string,
  replicas: number,
  opts: {
    available?: number;
    statusReplicas?: number;
    revision?: string;
    created?: string;
    annotations?: Record<string, string>;
    owner?: string | null;
  } = {},
): ReplicaSet {
  const hash = templateHash(template(img));
  const t = template(img);
  t.metadata.labels = { ...t.metadata.labels, 'pod-template-hash': hash } as { app: string };
  const statusReplicas = opts.statusReplicas ?? replicas;
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `web-${hash}`,
      namespace: 'default',
      uid: `rs-${img}`,
      generation: 1,
      creationTimestamp: opts.created ?? '2026-03-01T10:00:00Z',
      labels: { app: 'web', 'pod-template-hash': hash },
      annotations: {
        ...(opts.revision !== undefined ? { 'deployment.kubernetes.io/revision': opts.revision } : {}),
        ...opts.annotations,
      },
      ...(opts.owner === null
        ? {}
        : {
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'Deployment',
                name: 'web',
                uid: opts.owner ?? 'd-uid',
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }),
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } },
      template: t,
    },
    status: {
      replicas: statusReplicas,
      readyReplicas: opts.available ?? statusReplicas,
      availableReplicas: opts.available ?? statusReplicas,
      observedGeneration: 1,
    },
  };
}

const sized = (replicas: number, max: number) => ({
  'deployment.kubernetes.io/desired-replicas': String(replicas),
  'deployment.kubernetes.io/max-replicas': String(max),
});

function plan(d: Deployment, owned: ReplicaSet[], more: Partial<DeploymentInput> = {}) {
  return planDeployment({
    deployment: d,
    owned,
    takenNames: new Set(owned.map((r) => r.metadata.name ?? '')),
    podsByReplicaSet: new Map(),
    nowMs,
    ...more,
  });
}

/** name → replicas of the plan's creates and updates. */
const sizesOf = (p: ReturnType<typeof plan>) =>
  Object.fromEntries(
    p.writes.filter((w) => w.kind !== 'delete').map((w) => [w.rs.metadata.name, w.rs.spec.replicas]),
  );
const nameOf = (img: string) => `web-${templateHash(template(img))}`;

describe('surge and unavailability', () => {
  it('rounds percentages of surge up and of unavailability down, as Kubernetes', () => {
    expect(scaledValue('25%', 10, true)).toBe(3);
    expect(scaledValue('25%', 10, false)).toBe(2);
    expect(scaledValue('10%', 5, true)).toBe(1);
    expect(scaledValue('10%', 5, false)).toBe(0);
    expect(scaledValue(4, 10, true)).toBe(4);
    expect(resolveFenceposts('25%', '25%', 1)).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    // Both zero after rounding: one pod may be unavailable, so the rollout can advance.
    expect(resolveFenceposts(0, '10%', 5)).toEqual({ maxSurge: 0, maxUnavailable: 1 });
  });

  it('caps maxUnavailable at replicas; Recreate has neither', () => {
    const d = deployment(3, 'v1', {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 5 } },
    });
    expect(maxUnavailable(d)).toBe(3);
    expect(maxUnavailable(deployment(0))).toBe(0);
    const r = deployment(3, 'v1', { strategy: { type: 'Recreate' } });
    expect([maxSurge(r), maxUnavailable(r)]).toEqual([0, 0]);
  });

  it('rounds halves away from zero (Go math.Round)', () => {
    expect([roundHalfAway(2.5), roundHalfAway(-2.5), roundHalfAway(12.69), roundHalfAway(-0.4)]).toEqual([
      3, -3, 13, -0,
    ]);
  });
});

describe('revisions', () => {
  it('parses revisions beyond 2^53 exactly and ignores malformed ones', () => {
    const a = rs('a', 1, { revision: '3546343826724305832' });
    const b = rs('b', 1, { revision: 'x' });
    expect(revisionOf(a)).toBe(3546343826724305832n);
    expect(revisionOf(b)).toBeUndefined();
    expect(revisionOf(rs('c', 1))).toBe(0n);
    expect(maxRevision([a, b]) + 1n).toBe(3546343826724305833n);
  });

  it('compares templates ignoring the pod-template-hash label', () => {
    expect(equalIgnoreHash(rs('v1', 1).spec.template, template('v1'))).toBe(true);
    expect(equalIgnoreHash(rs('v1', 1).spec.template, template('v2'))).toBe(false);
  });
});

describe('proportional scaling', () => {
  it('splits 10 → 30 of a stuck rollout (old 8, new 5) into old 20, new 13 (item 5)', () => {
    const d = deployment(30, 'v2', {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } },
    });
    const old = rs('v1', 8, { annotations: sized(10, 13), created: '2026-03-01T10:00:00Z' });
    const next = rs('v2', 5, { available: 0, annotations: sized(10, 13), created: '2026-03-01T11:00:00Z' });
    const sizes = proportionalSizes(d, [next, old]).map(([r, n]) => [r.metadata.name, n]);
    expect(sizes).toEqual([
      [old.metadata.name, 20],
      [next.metadata.name, 13],
    ]);
    // And back down: 30 → 10 gives 8 and 5 again.
    const down = deployment(10, 'v2', {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } },
    });
    const old20 = rs('v1', 20, { annotations: sized(30, 33) });
    const next13 = rs('v2', 13, {
      available: 0,
      annotations: sized(30, 33),
      created: '2026-03-01T11:00:00Z',
    });
    expect(proportionalSizes(down, [old20, next13]).map(([, n]) => n)).toEqual([8, 5]);
  });

  it('a replica count change mid-rollout is a scaling event, not rollout progress', () => {
    const d = deployment(30, 'v2', {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } },
    });
    const old = rs('v1', 8, { annotations: sized(10, 13), revision: '1' });
    const next = rs('v2', 5, {
      available: 0,
      annotations: sized(10, 13),
      revision: '2',
      created: '2026-03-01T11:00:00Z',
    });
    const p = plan(d, [old, next]);
    expect(sizesOf(p)).toEqual({ [nameOf('v1')]: 20, [nameOf('v2')]: 13 });
    const events = p.writes.map((w) => (w.kind === 'update' ? w.scaledFrom : undefined));
    expect(events).toEqual([8, 5]);
    for (const w of p.writes) expect(w.rs.metadata.annotations).toMatchObject(sized(30, 33));
  });
});

describe('rolling update', () => {
  it('creates the first ReplicaSet with every replica, revision 1 and the hash in its name', () => {
    const p = plan(deployment(3), []);
    expect(p.writes).toHaveLength(1);
    const w = p.writes[0];
    expect(w.kind).toBe('create');
    const hash = templateHash(template('v1'));
    expect(w.rs.metadata.name).toBe(`web-${hash}`);
    expect(w.rs.spec.replicas).toBe(3);
    expect(w.rs.spec.selector.matchLabels).toEqual({ app: 'web', 'pod-template-hash': hash });
    expect(w.rs.spec.template.metadata?.labels).toEqual({ app: 'web', 'pod-template-hash': hash });
    expect(w.rs.metadata.annotations).toMatchObject({
      'deployment.kubernetes.io/revision': '1',
      ...sized(3, 4),
    });
    expect(w.rs.metadata.ownerReferences?.[0]).toMatchObject({ uid: 'd-uid', controller: true });
    expect(p.revision).toBe('1');
    expect(p.status.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'NewReplicaSetCreated',
      message: `Created new replica set "web-${hash}"`,
    });
  });

  it('steps 10 replicas (surge 3, unavailable 2) through a new template within both bounds', () => {
    const d = deployment(10, 'v2', {
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } },
    });
    const old = rs('v1', 10, { revision: '1', annotations: sized(10, 13) });
    // Pass 1: the new ReplicaSet is created at 3 (10 + 3 - 10) and the old one goes to 8.
    const p1 = plan(d, [old]);
    expect(p1.writes.map((w) => w.kind)).toEqual(['create', 'update']);
    expect(sizesOf(p1)).toEqual({ [nameOf('v2')]: 3, [nameOf('v1')]: 8 });
    expect(p1.revision).toBe('2');
    // Pass 2: nothing new is available yet: the new one grows to 5, the old one stays.
    const next = { ...rs('v2', 3, { available: 0, revision: '2', created: '2026-03-01T11:00:00Z' }) };
    next.metadata.annotations = { ...next.metadata.annotations, ...sized(10, 13) };
    const old8 = rs('v1', 8, { revision: '1', annotations: sized(10, 13) });
    const p2 = plan(d, [old8, next]);
    expect(sizesOf(p2)).toEqual({ [nameOf('v2')]: 5 });
    // Pass 3: 13 pods, 5 unavailable new ones: nothing may move.
    const next5 = rs('v2', 5, {
      available: 0,
      revision: '2',
      created: '2026-03-01T11:00:00Z',
      annotations: sized(10, 13),
    });
    expect(plan(d, [old8, next5]).writes).toEqual([]);
    // Pass 4: the 5 new ones became available: the old one may drop by 5.
    const ready5 = rs('v2', 5, {
      revision: '2',
      created: '2026-03-01T11:00:00Z',
      annotations: sized(10, 13),
    });
    expect(sizesOf(plan(d, [old8, ready5]))).toEqual({ [nameOf('v1')]: 3 });
  });

  it('rolls a stuck rollout over: the unhealthy middle ReplicaSet goes first (item 4)', () => {
    const d = deployment(1, 'v3', {
      minReadySeconds: 10,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    });
    const adopted = rs('v1', 1, { created: '2026-03-01T09:00:00Z', annotations: sized(1, 2) });
    const stuck = rs('v2', 1, {
      available: 0,
      revision: '1',
      created: '2026-03-01T10:00:00Z',
      annotations: sized(1, 2),
    });
    const p = plan(d, [adopted, stuck], {
      takenNames: new Set([adopted.metadata.name ?? '', stuck.metadata.name ?? '']),
    });
    expect(p.revision).toBe('2');
    expect(sizesOf(p)).toEqual({ [nameOf('v3')]: 0, [nameOf('v2')]: 0 });
  });

  it('a template equal to an old ReplicaSet’s makes it new again with the next revision (rollback)', () => {
    const d = deployment(2, 'v1');
    const first = rs('v1', 0, { revision: '1', annotations: sized(2, 3) });
    const second = rs('v2', 2, { revision: '2', created: '2026-03-01T11:00:00Z', annotations: sized(2, 3) });
    const p = plan(d, [first, second]);
    expect(p.writes.some((w) => w.kind === 'create')).toBe(false);
    const back = p.writes.find((w) => w.rs.metadata.name === first.metadata.name);
    expect(back?.rs.metadata.annotations).toMatchObject({
      'deployment.kubernetes.io/revision': '3',
      'deployment.kubernetes.io/revision-history': '1',
    });
    expect(back?.rs.spec.replicas).toBe(1);
    expect(p.revision).toBe('3');
  });

  it('bumps collisionCount when the new ReplicaSet’s name is taken, and creates nothing', () => {
    const d = deployment(2, 'v2');
    const p = plan(d, [rs('v1', 2, { revision: '1' })], {
      takenNames: new Set([nameOf('v1'), nameOf('v2')]),
    });
    expect(p.collision).toBe(true);
    expect(p.writes).toEqual([]);
    expect(p.status.collisionCount).toBe(1);
    // With the count, the hash and so the name change.
    expect(templateHash(template('v2'), 1)).not.toBe(templateHash(template('v2')));
  });

  it('deletes the oldest inactive ReplicaSets beyond revisionHistoryLimit once complete', () => {
    const d = deployment(2, 'v3', { revisionHistoryLimit: 1 });
    d.status = { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 };
    const sets = [
      rs('v1', 0, { revision: '1', created: '2026-03-01T09:00:00Z' }),
      rs('v2', 0, { revision: '2', created: '2026-03-01T10:00:00Z' }),
      rs('v3', 2, { revision: '3', created: '2026-03-01T11:00:00Z', annotations: sized(2, 3) }),
    ];
    const p = plan(d, sets);
    expect(p.writes.filter((w) => w.kind === 'delete').map((w) => w.rs.metadata.name)).toEqual([
      nameOf('v1'),
    ]);
  });
});

describe('recreate', () => {
  const d = deployment(3, 'v2', { strategy: { type: 'Recreate' } });
  const pod = (rsUid: string, deleting: boolean): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p-${rsUid}`, ...(deleting ? { deletionTimestamp: '2026-03-01T11:59:00Z' } : {}) },
    spec: { containers: [{ name: 'app', image: 'x' }] },
    status: { phase: 'Running' },
  });

  it('scales old ReplicaSets to 0 first, creating nothing', () => {
    const p = plan(d, [rs('v1', 3, { revision: '1', annotations: sized(3, 3) })]);
    expect(p.writes.map((w) => w.kind)).toEqual(['update']);
    expect(sizesOf(p)).toEqual({ [nameOf('v1')]: 0 });
  });

  it('waits while an old ReplicaSet reports replicas or any old pod exists, even terminating', () => {
    const old = rs('v1', 0, { revision: '1', statusReplicas: 1 });
    expect(plan(d, [old]).writes).toEqual([]);
    const gone = rs('v1', 0, { revision: '1', statusReplicas: 0 });
    const terminating = new Map([['rs-v1', [pod('rs-v1', true)]]]);
    expect(plan(d, [gone], { podsByReplicaSet: terminating }).writes).toEqual([]);
  });

  it('creates the new ReplicaSet at full size once old pods are gone', () => {
    const gone = rs('v1', 0, { revision: '1', statusReplicas: 0 });
    const p = plan(d, [gone], { podsByReplicaSet: new Map([['rs-v1', []]]) });
    expect(p.writes.map((w) => w.kind)).toEqual(['create']);
    expect(sizesOf(p)).toEqual({ [nameOf('v2')]: 3 });
  });
});

describe('conditions', () => {
  it('marks a rollout without progress past its deadline as ProgressDeadlineExceeded', () => {
    const d = deployment(2, 'v2', { progressDeadlineSeconds: 60 });
    const at = '2026-03-01T11:58:00Z';
    d.status = {
      observedGeneration: 1,
      replicas: 4,
      updatedReplicas: 2,
      availableReplicas: 2,
      readyReplicas: 2,
      conditions: [
        {
          type: 'Progressing',
          status: 'True',
          reason: 'ReplicaSetUpdated',
          lastTransitionTime: at,
          lastUpdateTime: at,
        } as never,
      ],
    };
    const old = rs('v1', 2, { revision: '1', annotations: sized(2, 3) });
    const stuck = rs('v2', 1, {
      available: 0,
      revision: '2',
      created: '2026-03-01T11:00:00Z',
      annotations: sized(2, 3),
    });
    stuck.status = { replicas: 2, readyReplicas: 0, availableReplicas: 0, observedGeneration: 1 };
    const p = plan(d, [old, stuck]);
    expect(p.status.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'ProgressDeadlineExceeded',
      message: `ReplicaSet "${nameOf('v2')}" has timed out progressing.`,
    });
    expect(p.requeueAfterMs).toBeUndefined();
    // 30 s earlier the deadline had not passed: look again when it does (plus a second).
    const early = plan(d, [old, stuck], { nowMs: nowMs - 90_000 });
    expect(early.status.conditions?.find((c) => c.type === 'Progressing')?.reason).toBe('ReplicaSetUpdated');
    expect(early.requeueAfterMs).toBe(31_000);
  });

  it('pausing notes DeploymentPaused and holds a template change; scaling still happens', () => {
    const d = deployment(4, 'v2', { paused: true });
    const old = rs('v1', 2, { revision: '1', annotations: sized(2, 3) });
    const p = plan(d, [old]);
    expect(p.writes.map((w) => w.kind)).toEqual(['update']);
    expect(sizesOf(p)).toEqual({ [nameOf('v1')]: 4 });
    expect(p.status.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'Unknown',
      reason: 'DeploymentPaused',
    });
    expect(p.status.updatedReplicas).toBe(0);
  });

  it('reports Available against replicas - maxUnavailable', () => {
    const d = deployment(4, 'v1');
    const half = rs('v1', 4, { revision: '1', available: 3, annotations: sized(4, 5) });
    expect(plan(d, [half]).status.conditions?.find((c) => c.type === 'Available')).toMatchObject({
      status: 'True',
      reason: 'MinimumReplicasAvailable',
    });
    const low = rs('v1', 4, { revision: '1', available: 2, annotations: sized(4, 5) });
    const s = plan(d, [low]).status;
    expect(s.conditions?.find((c) => c.type === 'Available')).toMatchObject({
      status: 'False',
      reason: 'MinimumReplicasUnavailable',
    });
    expect(s).toMatchObject({
      replicas: 4,
      updatedReplicas: 4,
      availableReplicas: 2,
      unavailableReplicas: 2,
    });
  });
});

describe('claiming', () => {
  it('adopts matching orphans and releases owned ReplicaSets that stopped matching', () => {
    const d = deployment(1);
    const orphan = rs('v1', 1, { owner: null });
    const other = rs('v2', 1, { owner: 'someone-else' });
    const relabelled = rs('v3', 1);
    relabelled.metadata.labels = { app: 'other' };
    const mine = rs('v4', 1);
    const claims = claimReplicaSets(d, [orphan, other, relabelled, mine]);
    expect(claims.adopt).toEqual([orphan]);
    expect(claims.release).toEqual([relabelled]);
    expect(claims.owned).toEqual([mine]);
    const deleting = deployment(1, 'v1', {}, { deletionTimestamp: '2026-03-01T11:00:00Z' });
    const none = claimReplicaSets(deleting, [orphan, relabelled]);
    expect([none.adopt, none.release, none.owned]).toEqual([[], [], [relabelled]]);
  });
});

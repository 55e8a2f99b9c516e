import { afterEach, describe, expect, it } from 'vitest';
import type { ObjectApi } from '../../actors/api.js';
import type { ApiObject, Deployment, Pod, ReplicaSet } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const image = 'coxswain/busybox';
/** Containers with this image crash at once on the hollow nodes: a rollout to it never progresses. */
const badImage = 'coxswain/busybox:404';

function deployment(
  name: string,
  replicas: number,
  opts: {
    labels?: Record<string, string>;
    image?: string;
    graceSeconds?: number;
    spec?: Partial<Deployment['spec']>;
  } = {},
): Deployment {
  const labels = opts.labels ?? { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          nodeName: 'n1',
          terminationGracePeriodSeconds: opts.graceSeconds ?? 0,
          containers: [{ name: 'app', image: opts.image ?? image }],
        },
      },
      ...opts.spec,
    },
  };
}

/** A ReplicaSet of its own (not a Deployment's), to be adopted. */
function replicaSet(
  name: string,
  replicas: number,
  labels: Record<string, string>,
  annotations?: Record<string, string>,
): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'default', labels, ...(annotations ? { annotations } : {}) },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          nodeName: 'n1',
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'httpd', image: 'coxswain/httpd' }],
        },
      },
    },
  };
}

const getDeployment = async (api: ObjectApi, name: string) =>
  (await api.get({ kind: 'Deployment', namespace: 'default', name })) as Deployment;

/** The ReplicaSets controlled by Deployment `name`. */
async function replicaSetsOf(api: ObjectApi, name: string): Promise<ReplicaSet[]> {
  const d = await getDeployment(api, name);
  return (await listOf<ReplicaSet>(api, 'ReplicaSet')).filter((rs) =>
    rs.metadata.ownerReferences?.some((r) => r.controller && r.uid === d.metadata.uid),
  );
}

const activePods = async (api: ObjectApi, selector: string) =>
  (await listOf<Pod>(api, 'Pod', 'default', selector)).filter(
    (p) => !p.metadata.deletionTimestamp && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded',
  );

/** Waits until the rollout of `name` is complete (every replica updated and available, generation observed). */
async function waitComplete(api: ObjectApi, name: string, timeoutMs = 60_000): Promise<Deployment> {
  return waitFor(
    `deployment ${name} rolled out`,
    async () => {
      const d = await getDeployment(api, name);
      const s = d.status;
      const replicas = d.spec.replicas ?? 1;
      const progressing = s?.conditions?.find((c) => c.type === 'Progressing');
      return s !== undefined &&
        (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
        s.updatedReplicas === replicas &&
        s.replicas === replicas &&
        s.availableReplicas === replicas &&
        progressing?.reason === 'NewReplicaSetAvailable'
        ? d
        : undefined;
    },
    timeoutMs,
  );
}

async function setImage(api: ObjectApi, name: string, img: string): Promise<Deployment> {
  const d = await getDeployment(api, name);
  const template = structuredClone(d.spec.template);
  template.spec.containers[0].image = img;
  return (await api.update({ ...d, spec: { ...d.spec, template } })) as Deployment;
}

/** Hollow nodes on which the bad image's containers exit with 1 at once (never Ready). */
const node1 = {
  name: 'n1',
  script: (spec: { image: string }) => (spec.image === badImage ? { exitAfterMs: 0, exitCode: 1 } : {}),
};

const isActive = (p: Pod) =>
  !p.metadata.deletionTimestamp && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded';

/**
 * Follows the objects of `kind` matching `selector` through one master from a list, calling
 * `check` with the current set after every batch of events (a throw there fails `stop()`).
 */
async function follow<T extends { metadata: { name?: string } }>(
  api: ObjectApi,
  kind: string,
  selector: string | undefined,
  check: (objects: ReadonlyMap<string, T>, added: T[]) => void,
) {
  const listed = await api.list(kind, {
    namespace: 'default',
    ...(selector ? { labelSelector: selector } : {}),
  });
  const objects = new Map<string, T>();
  for (const o of listed.items as unknown as T[]) objects.set(o.metadata.name ?? '', o);
  check(objects, []);
  const stream = await api.watch(kind, {
    namespace: 'default',
    ...(selector ? { labelSelector: selector } : {}),
    resourceVersion: listed.resourceVersion,
  });
  let failure: unknown;
  const loop = (async () => {
    for (;;) {
      const events = await stream.next();
      if (events === undefined) return;
      const added: T[] = [];
      for (const e of events) {
        if (e.type === 'BOOKMARK') continue;
        const o = e.object as unknown as T;
        if (e.type === 'DELETED') objects.delete(o.metadata.name ?? '');
        else objects.set(o.metadata.name ?? '', o);
        if (e.type === 'ADDED') added.push(o);
      }
      try {
        check(objects, added);
      } catch (err) {
        failure ??= err;
      }
    }
  })();
  return {
    stop: async () => {
      stream.close();
      await loop;
      if (failure !== undefined) throw failure;
    },
  };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
const condition = (d: Deployment, type: string) => d.status?.conditions?.find((x) => x.type === type);

describe('Deployment controller (in-process masters, hollow nodes)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  }, 120_000);

  it('creates a ReplicaSet named by the template hash, rolls a new image out, and reports status', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    await c.api.create(deployment('web', 3));
    const first = await waitComplete(c.api, 'web');
    expect(first.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    const [rs1] = await replicaSetsOf(c.api, 'web');
    const hash = rs1.metadata.labels?.['pod-template-hash'];
    expect(hash).toMatch(/^[a-z0-9]+$/);
    expect(rs1.metadata.name).toBe(`web-${hash}`);
    expect(rs1.spec.selector.matchLabels).toEqual({ app: 'web', 'pod-template-hash': hash });
    expect(rs1.spec.template.metadata?.labels).toEqual({ app: 'web', 'pod-template-hash': hash });
    expect(rs1.metadata.annotations).toMatchObject({
      'deployment.kubernetes.io/revision': '1',
      'deployment.kubernetes.io/desired-replicas': '3',
      'deployment.kubernetes.io/max-replicas': '4',
    });
    expect(rs1.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: 'web',
        uid: first.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    for (const p of await activePods(c.api, 'app=web'))
      expect(p.metadata.labels?.['pod-template-hash']).toBe(hash);
    expect(first.status).toMatchObject({
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      unavailableReplicas: 0,
      observedGeneration: 1,
    });
    expect(first.status?.conditions?.find((x) => x.type === 'Available')).toMatchObject({
      status: 'True',
      reason: 'MinimumReplicasAvailable',
    });

    await setImage(c.api, 'web', 'coxswain/busybox:v2');
    const second = await waitComplete(c.api, 'web');
    expect(second.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    const sets = await replicaSetsOf(c.api, 'web');
    expect(sets).toHaveLength(2);
    const old = sets.find((rs) => rs.metadata.name === rs1.metadata.name);
    expect(old?.spec.replicas).toBe(0);
    const pods = await activePods(c.api, 'app=web');
    expect(pods).toHaveLength(3);
    for (const p of pods) expect(p.spec.containers[0].image).toBe('coxswain/busybox:v2');
    const newName = sets.find((rs) => rs.metadata.name !== rs1.metadata.name)?.metadata.name;
    const messages = await waitFor('scaling events', async () => {
      const events = await listOf<ApiObject>(c!.api, 'Event');
      const texts = events
        .map(
          (e) =>
            e as unknown as {
              reason: string;
              message: string;
              involvedObject: { kind: string; name: string };
            },
        )
        .filter((e) => e.involvedObject.kind === 'Deployment' && e.reason === 'ScalingReplicaSet')
        .map((e) => e.message);
      return texts.includes(`Scaled down replica set ${rs1.metadata.name} to 0 from 1`) ? texts : undefined;
    });
    expect(messages).toContain(`Scaled up replica set ${rs1.metadata.name} to 3 from 0`);
    expect(messages).toContain(`Scaled up replica set ${newName} to 1 from 0`);
  }, 120_000);

  it('adopts a ReplicaSet with matching labels and a revision, and rolls out the next revision (item 1)', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    const labels = { name: 'sample-pod', pod: 'httpd' };
    await c.api.create(
      replicaSet('test-rolling-update-controller', 1, labels, {
        'deployment.kubernetes.io/revision': '3546343826724305832',
      }),
    );
    await waitFor('the adoptee runs', async () =>
      (await activePods(c!.api, 'name=sample-pod')).length === 1 ? true : undefined,
    );
    await c.api.create(deployment('test-rolling-update-deployment', 1, { labels: { name: 'sample-pod' } }));
    const d = await waitComplete(c.api, 'test-rolling-update-deployment');
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('3546343826724305833');
    const sets = await replicaSetsOf(c.api, 'test-rolling-update-deployment');
    expect(sets).toHaveLength(2);
    const old = sets.filter((rs) => rs.spec.template.spec.containers[0].image !== image);
    expect(old.map((rs) => rs.metadata.name)).toEqual(['test-rolling-update-controller']);
    expect(old[0].spec.replicas).toBe(0);
    // The adoptee keeps its own selector (selectors are immutable): no hash label added.
    expect(old[0].spec.selector.matchLabels).toEqual(labels);
    const pods = await activePods(c.api, 'name=sample-pod');
    expect(pods.map((p) => p.spec.containers[0].image)).toEqual([image]);
  }, 120_000);

  it('Recreate never runs new pods alongside old ones (item 2)', async () => {
    // Old containers ignore SIGTERM, so old pods stay terminating for their 1 s grace period.
    c = await startHollowCluster({
      nodes: [{ name: 'n1', script: (spec) => (spec.image === image ? { ignoreSigterm: true } : {}) }],
    });
    await c.api.create(
      deployment('recreate', 3, { graceSeconds: 1, spec: { strategy: { type: 'Recreate' } } }),
    );
    await waitComplete(c.api, 'recreate');
    const statusWatch = await follow<Deployment>(c.api, 'Deployment', undefined, (objs) => {
      const s = objs.get('recreate')?.status;
      if (s !== undefined && (s.updatedReplicas ?? 0) > 0 && s.replicas !== s.updatedReplicas)
        throw new Error(`new replicas alongside old ones: ${JSON.stringify(s)}`);
    });
    let newPodsSeen = 0;
    const podWatch = await follow<Pod>(c.api, 'Pod', 'app=recreate', (pods, added) => {
      for (const p of added) {
        if (p.spec.containers[0].image !== 'coxswain/busybox:v2') continue;
        newPodsSeen += 1;
        const old = [...pods.values()].filter((q) => q.spec.containers[0].image === image);
        if (old.length > 0) throw new Error(`new pod ${p.metadata.name} while old pods exist`);
      }
    });
    await setImage(c.api, 'recreate', 'coxswain/busybox:v2');
    const d = await waitComplete(c.api, 'recreate');
    await statusWatch.stop();
    await podWatch.stop();
    expect(newPodsSeen).toBe(3);
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
  }, 120_000);

  it('revisionHistoryLimit 0 deletes old ReplicaSets; the adoptee spawns no pod (item 3)', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    await c.api.create(replicaSet('test-cleanup-controller', 1, { name: 'cleanup-pod', pod: 'httpd' }));
    await waitFor('the adoptee runs', async () =>
      (await activePods(c!.api, 'name=cleanup-pod')).length === 1 ? true : undefined,
    );
    const created: Pod[] = [];
    const podWatch = await follow<Pod>(c.api, 'Pod', undefined, (_pods, added) => {
      created.push(...added);
    });
    await c.api.create(
      deployment('test-cleanup-deployment', 1, {
        labels: { name: 'cleanup-pod' },
        spec: { revisionHistoryLimit: 0 },
      }),
    );
    await waitComplete(c.api, 'test-cleanup-deployment');
    await waitFor('old ReplicaSets cleaned up', async () => {
      const sets = await replicaSetsOf(c!.api, 'test-cleanup-deployment');
      return sets.length === 1 && (await listOf(c!.api, 'ReplicaSet')).length === 1 ? true : undefined;
    });
    await settle(1_000);
    await podWatch.stop();
    expect(created.map((p) => p.spec.containers[0].image)).toEqual([image]);
  }, 120_000);

  it('rolls a stuck rollout over to the newest template (item 4)', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    const labels = { name: 'rollover-pod', pod: 'httpd' };
    await c.api.create(replicaSet('test-rollover-controller', 1, labels));
    await waitFor('the adoptee is ready', async () => {
      const rs = (await c!.api.get({
        kind: 'ReplicaSet',
        namespace: 'default',
        name: 'test-rollover-controller',
      })) as ReplicaSet;
      return rs.status?.readyReplicas === 1 ? true : undefined;
    });
    await c.api.create(
      deployment('test-rollover-deployment', 1, {
        labels: { name: 'rollover-pod' },
        image: badImage,
        spec: {
          minReadySeconds: 10,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        },
      }),
    );
    const stuck = await waitFor('the first rollout is stuck with 1 old and 1 new', async () => {
      const d = await getDeployment(c!.api, 'test-rollover-deployment');
      const sets = await replicaSetsOf(c!.api, 'test-rollover-deployment');
      const mid = sets.find((rs) => rs.metadata.name !== 'test-rollover-controller');
      const old = sets.find((rs) => rs.metadata.name === 'test-rollover-controller');
      return (d.status?.updatedReplicas ?? 0) >= 1 &&
        mid?.spec.replicas === 1 &&
        mid.status?.replicas === 1 &&
        old?.spec.replicas === 1 &&
        old.status?.replicas === 1
        ? { d, mid }
        : undefined;
    });
    expect(stuck.d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    const updated = await setImage(c.api, 'test-rollover-deployment', image);
    const d = await waitComplete(c.api, 'test-rollover-deployment');
    expect(d.status?.observedGeneration).toBe(updated.metadata.generation);
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    for (const name of ['test-rollover-controller', stuck.mid.metadata.name ?? '']) {
      const rs = (await c.api.get({ kind: 'ReplicaSet', namespace: 'default', name })) as ReplicaSet;
      expect(rs.spec.replicas).toBe(0);
      expect(rs.status?.replicas).toBe(0);
    }
  }, 120_000);

  it('scales a rollout in progress proportionally: 10 → 30 gives old 20, new 13 (item 5)', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    await c.api.create(
      deployment('webserver', 10, {
        spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } } },
      }),
    );
    await waitComplete(c.api, 'webserver');
    const [first] = await replicaSetsOf(c.api, 'webserver');
    await setImage(c.api, 'webserver', badImage);
    const sizes = async () => {
      const sets = await replicaSetsOf(c!.api, 'webserver');
      const old = sets.find((rs) => rs.metadata.name === first.metadata.name);
      const next = sets.find((rs) => rs.metadata.name !== first.metadata.name);
      return { old, next };
    };
    await waitFor('old 8 available, new 5', async () => {
      const { old, next } = await sizes();
      return old?.spec.replicas === 8 &&
        old.status?.availableReplicas === 8 &&
        next?.spec.replicas === 5 &&
        next.status?.replicas === 5
        ? true
        : undefined;
    });
    await c.api.patch(
      { kind: 'Deployment', namespace: 'default', name: 'webserver' },
      { spec: { replicas: 30 } },
    );
    await waitFor('old 20, new 13', async () => {
      const { old, next } = await sizes();
      return old?.spec.replicas === 20 && next?.spec.replicas === 13 ? true : undefined;
    });
    await settle(1_500);
    const { old, next } = await sizes();
    expect([old?.spec.replicas, next?.spec.replicas]).toEqual([20, 13]);
    expect(next?.metadata.annotations).toMatchObject({
      'deployment.kubernetes.io/desired-replicas': '30',
      'deployment.kubernetes.io/max-replicas': '33',
    });
  }, 120_000);

  it('re-adopts ReplicaSets orphaned from a deleted Deployment through controllerRef (item 7)', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    const labels = { name: 'adopt-pod' };
    await c.api.create(deployment('test-orphan-deployment', 2, { labels }));
    const orphaned = await waitComplete(c.api, 'test-orphan-deployment');
    const [rs] = await replicaSetsOf(c.api, 'test-orphan-deployment');
    const podsBefore = (await activePods(c.api, 'name=adopt-pod')).map((p) => p.metadata.name).sort();
    await c.api.delete(
      { kind: 'Deployment', namespace: 'default', name: 'test-orphan-deployment' },
      { propagationPolicy: 'Orphan' },
    );
    // Standing in for the garbage collector's Orphan policy: drop the owner reference, then
    // the orphan finalizer (tolerating a collector that got there first).
    const tolerateGone = (err: unknown) => {
      if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    };
    await c.api
      .patch(
        { kind: 'ReplicaSet', namespace: 'default', name: rs.metadata.name ?? '' },
        { metadata: { ownerReferences: null } },
      )
      .catch(tolerateGone);
    await c.api
      .patch(
        { kind: 'Deployment', namespace: 'default', name: 'test-orphan-deployment' },
        { metadata: { finalizers: null } },
      )
      .catch(tolerateGone);
    await waitFor('the deployment is gone', async () =>
      (await listOf(c!.api, 'Deployment')).length === 0 ? true : undefined,
    );
    await c.api.create(deployment('test-adopt-deployment', 2, { labels }));
    const d = await waitComplete(c.api, 'test-adopt-deployment');
    expect(d.metadata.uid).not.toBe(orphaned.metadata.uid);
    const sets = await listOf<ReplicaSet>(c.api, 'ReplicaSet');
    expect(sets.map((s) => s.metadata.name)).toEqual([rs.metadata.name]);
    expect(sets[0].metadata.ownerReferences).toMatchObject([
      { kind: 'Deployment', name: 'test-adopt-deployment', uid: d.metadata.uid, controller: true },
    ]);
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    const podsAfter = (await activePods(c.api, 'name=adopt-pod')).map((p) => p.metadata.name).sort();
    expect(podsAfter).toEqual(podsBefore);
  }, 120_000);

  it('pause holds a template change (scaling still works); resume rolls it out', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    await c.api.create(deployment('paused', 2));
    await waitComplete(c.api, 'paused');
    await c.api.patch(
      { kind: 'Deployment', namespace: 'default', name: 'paused' },
      { spec: { paused: true } },
    );
    const paused = await waitFor('Progressing=Unknown DeploymentPaused', async () => {
      const d = await getDeployment(c!.api, 'paused');
      return condition(d, 'Progressing')?.reason === 'DeploymentPaused' ? d : undefined;
    });
    expect(condition(paused, 'Progressing')).toMatchObject({
      status: 'Unknown',
      message: 'Deployment is paused',
    });
    await setImage(c.api, 'paused', 'coxswain/busybox:v2');
    await c.api.patch(
      { kind: 'Deployment', namespace: 'default', name: 'paused' },
      { spec: { replicas: 4 } },
    );
    await waitFor('scaled to 4 while paused', async () => {
      const pods = await activePods(c!.api, 'app=paused');
      return pods.length === 4 ? true : undefined;
    });
    await settle(1_500);
    const sets = await replicaSetsOf(c.api, 'paused');
    expect(sets).toHaveLength(1);
    expect(sets[0].spec.replicas).toBe(4);
    for (const p of await activePods(c.api, 'app=paused')) expect(p.spec.containers[0].image).toBe(image);
    const still = await getDeployment(c.api, 'paused');
    expect(still.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    expect(still.status?.updatedReplicas).toBe(0);

    await c.api.patch(
      { kind: 'Deployment', namespace: 'default', name: 'paused' },
      { spec: { paused: false } },
    );
    const d = await waitComplete(c.api, 'paused');
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    const pods = await activePods(c.api, 'app=paused');
    expect(pods.map((p) => p.spec.containers[0].image)).toEqual(Array(4).fill('coxswain/busybox:v2'));
  }, 120_000);

  it('a template equal to an old ReplicaSet’s makes that ReplicaSet new again with the next revision (rollback)', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    await c.api.create(deployment('undo', 2));
    await waitComplete(c.api, 'undo');
    const [rs1] = await replicaSetsOf(c.api, 'undo');
    await setImage(c.api, 'undo', 'coxswain/busybox:v2');
    await waitComplete(c.api, 'undo');
    // What `cox rollout undo` does: revision 1's template, without its hash label.
    const d2 = await getDeployment(c.api, 'undo');
    const template = structuredClone(rs1.spec.template);
    delete template.metadata?.labels?.['pod-template-hash'];
    await c.api.update({ ...d2, spec: { ...d2.spec, template } });
    const d3 = await waitFor('revision 3', async () => {
      const d = await waitComplete(c!.api, 'undo');
      return d.metadata.annotations?.['deployment.kubernetes.io/revision'] === '3' ? d : undefined;
    });
    expect(d3.spec.template.spec.containers[0].image).toBe(image);
    const sets = await replicaSetsOf(c.api, 'undo');
    expect(sets).toHaveLength(2);
    const back = sets.find((rs) => rs.metadata.name === rs1.metadata.name);
    expect(back?.spec.replicas).toBe(2);
    expect(back?.metadata.annotations).toMatchObject({
      'deployment.kubernetes.io/revision': '3',
      'deployment.kubernetes.io/revision-history': '1',
    });
    const pods = await activePods(c.api, 'app=undo');
    expect(pods.map((p) => p.spec.containers[0].image)).toEqual([image, image]);
  }, 120_000);

  it('reports ProgressDeadlineExceeded for a stuck rollout, and recovers when rolled back', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    await c.api.create(deployment('deadline', 2, { spec: { progressDeadlineSeconds: 3 } }));
    const good = await waitComplete(c.api, 'deadline');
    await setImage(c.api, 'deadline', badImage);
    const stuck = await waitFor('ProgressDeadlineExceeded', async () => {
      const d = await getDeployment(c!.api, 'deadline');
      return condition(d, 'Progressing')?.reason === 'ProgressDeadlineExceeded' ? d : undefined;
    });
    const newRS = (await replicaSetsOf(c.api, 'deadline')).find(
      (rs) => rs.spec.template.spec.containers[0].image === badImage,
    );
    expect(condition(stuck, 'Progressing')).toMatchObject({
      status: 'False',
      message: `ReplicaSet "${newRS?.metadata.name}" has timed out progressing.`,
    });
    // The old pods still serve: maxUnavailable 25% of 2 rounds down to 0.
    expect(condition(stuck, 'Available')).toMatchObject({
      status: 'True',
      reason: 'MinimumReplicasAvailable',
    });
    expect(stuck.status?.availableReplicas).toBe(2);
    const current = await getDeployment(c.api, 'deadline');
    await c.api.update({ ...current, spec: { ...current.spec, template: good.spec.template } });
    const back = await waitComplete(c.api, 'deadline');
    expect(condition(back, 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'NewReplicaSetAvailable',
    });
  }, 120_000);

  it('a new leader finishes a rollout begun by the old one, never above replicas + maxSurge pods', async () => {
    c = await startHollowCluster({ nodes: [node1] });
    await c.api.create(
      deployment('api', 8, {
        spec: {
          minReadySeconds: 1,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: 0 } },
        },
      }),
    );
    await waitComplete(c.api, 'api');
    const leader = await c.leader();
    const watcher = [...c.masters.nodes.values()].find((m) => m.id !== leader.id);
    if (watcher === undefined) throw new Error('no follower');
    let most = 0;
    let fewest = Number.POSITIVE_INFINITY;
    const podWatch = await follow<Pod>(watcher.api, 'Pod', 'app=api', (pods) => {
      const active = [...pods.values()].filter(isActive);
      most = Math.max(most, active.length);
      fewest = Math.min(fewest, active.length);
      if (active.length > 10) throw new Error(`${active.length} active pods (most allowed: 10)`);
    });
    await setImage(c.api, 'api', 'coxswain/busybox:v2');
    await waitFor('the rollout has begun', async () => {
      const pods = await activePods(c!.api, 'app=api');
      return pods.some((p) => p.spec.containers[0].image === 'coxswain/busybox:v2') ? true : undefined;
    });
    await c.masters.kill(leader.id);
    const d = await waitComplete(c.api, 'api', 90_000);
    await settle(1_000);
    await podWatch.stop();
    expect(d.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    const pods = await activePods(c.api, 'app=api');
    expect(pods.map((p) => p.spec.containers[0].image)).toEqual(Array(8).fill('coxswain/busybox:v2'));
    expect(most).toBe(10);
    expect(fewest).toBe(8);
  }, 150_000);
});

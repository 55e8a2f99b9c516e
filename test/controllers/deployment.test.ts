import { afterEach, describe, expect, it } from 'vitest';
import type { ObjectApi } from '../../actors/api.js';
import type { Deployment, Pod, ReplicaSet } from '../../core/index.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const image = 'coxswain/busybox';
/** Containers with this image crash at once on the hollow nodes: a rollout to it never progresses. */
const badImage = 'coxswain/busybox:404';

function deployment(
  name: string,
  replicas: number,
  opts: { labels?: Record<string, string>; image?: string; spec?: Partial<Deployment['spec']> } = {},
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
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'app', image: opts.image ?? image }],
        },
      },
      ...opts.spec,
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

const crashBadImage = {
  script: (spec: { image: string }) => (spec.image === badImage ? { exitAfterMs: 20, exitCode: 1 } : {}),
};

describe('Deployment controller (in-process masters, hollow nodes)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

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
  });
});

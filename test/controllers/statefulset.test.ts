import { afterEach, describe, expect, it } from 'vitest';
import type { WatchEvent } from '../../actors/api.js';
import { statefulSetController } from '../../actors/controllers/statefulset.js';
import type { ControllerRevision, Pod, StatefulSet } from '../../core/objects.js';
import type { ContainerSpec } from '../../node-agent/runtime.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

/**
 * Pods whose name is in `crashing` crash at once on every start (restartPolicy Always: they
 * crash-loop, Running but never Ready); the others run until stopped. The pod name reaches the
 * hollow runtime through a downward-API env var.
 */
function crashScript(crashing: Set<string>) {
  return (spec: ContainerSpec) => {
    const pod = spec.env?.find((e) => e.name === 'POD_NAME')?.value ?? '';
    return crashing.has(pod) ? { exitAfterMs: 0, exitCode: 1 } : {};
  };
}

function statefulSet(name: string, replicas: number, spec: Partial<StatefulSet['spec']> = {}): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      serviceName: `${name}-svc`,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeName: 'n1',
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'app',
              image: 'coxswain/busybox',
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            },
          ],
        },
      },
      ...spec,
    },
  };
}

const key = (name: string) => ({ kind: 'StatefulSet', namespace: 'default', name });
const podKey = (name: string) => ({ kind: 'Pod', namespace: 'default', name });
const isReady = (p: Pod) =>
  p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

async function livePods(c: HollowCluster, app: string): Promise<Pod[]> {
  return (await listOf<Pod>(c.api, 'Pod', 'default', `app=${app}`))
    .filter((p) => !p.metadata.deletionTimestamp)
    .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
}

const names = (pods: Pod[]) => pods.map((p) => p.metadata.name);

async function getSet(c: HollowCluster, name: string): Promise<StatefulSet> {
  return (await c.api.get(key(name))) as StatefulSet;
}

async function waitReady(c: HollowCluster, name: string, n: number, timeoutMs = 30_000): Promise<Pod[]> {
  return waitFor(
    `${n} ready pods of ${name}`,
    async () => {
      const pods = await livePods(c, name);
      return pods.length === n && pods.every(isReady) ? pods : undefined;
    },
    timeoutMs,
  );
}

/** Records pod events of `app` (ADDED, DELETED, Ready transitions) in order. */
async function recordPods(c: HollowCluster, app: string) {
  const log: string[] = [];
  const ready = new Set<string>();
  const stream = await c.api.watch('Pod', { namespace: 'default', labelSelector: `app=${app}` });
  const loop = (async () => {
    for (;;) {
      const batch = await stream.next();
      if (batch === undefined) return;
      for (const e of batch as WatchEvent[]) {
        if (e.type === 'BOOKMARK') continue;
        const p = e.object as Pod;
        const name = p.metadata.name ?? '';
        if (e.type === 'ADDED') log.push(`+${name}`);
        if (e.type === 'DELETED') {
          log.push(`-${name}`);
          ready.delete(name);
        } else if (isReady(p) && !ready.has(name)) {
          ready.add(name);
          log.push(`ready ${name}`);
        } else if (!isReady(p) && ready.has(name)) {
          ready.delete(name);
          log.push(`unready ${name}`);
        }
      }
    }
  })();
  return {
    log,
    stop: async () => {
      stream.close();
      await loop.catch(() => {});
    },
  };
}

const settle = (ms = 1_500) => new Promise((r) => setTimeout(r, ms));

/** Changes only the container's image (a merge patch would replace the whole containers list). */
async function setImage(c: HollowCluster, name: string, image: string): Promise<void> {
  const set = await getSet(c, name);
  const containers = set.spec.template.spec.containers.map((x) => ({ ...x, image }));
  await c.api.patch(key(name), { spec: { template: { spec: { containers } } } });
}

describe('StatefulSet controller (in-process masters, hollow nodes)', { timeout: 120_000 }, () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('gives each pod a stable identity: name, hostname, subdomain, labels, owner', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }], controllers: () => [statefulSetController()] });
    await c.api.create(statefulSet('web', 2));
    const pods = await waitReady(c, 'web', 2);
    const set = await getSet(c, 'web');
    expect(names(pods)).toEqual(['web-0', 'web-1']);
    pods.forEach((p, i) => {
      expect(p.spec.hostname).toBe(`web-${i}`);
      expect(p.spec.subdomain).toBe('web-svc');
      expect(p.metadata.labels).toMatchObject({
        'statefulset.kubernetes.io/pod-name': `web-${i}`,
        'apps.kubernetes.io/pod-index': String(i),
        'controller-revision-hash': set.status?.updateRevision,
      });
      expect(p.metadata.ownerReferences?.[0]).toMatchObject({
        kind: 'StatefulSet',
        name: 'web',
        controller: true,
        blockOwnerDeletion: true,
      });
    });
    const status = await waitFor('status', async () => {
      const s = (await getSet(c!, 'web')).status;
      return s?.readyReplicas === 2 && s.availableReplicas === 2 ? s : undefined;
    });
    expect(status).toMatchObject({
      replicas: 2,
      currentReplicas: 2,
      updatedReplicas: 2,
      observedGeneration: 1,
    });
    expect(status.currentRevision).toBe(status.updateRevision);
    expect(status.currentRevision).toMatch(/^web-[a-z0-9]+$/);
    // A pod deleted by hand comes back under the same name.
    await c.api.delete(podKey('web-1'), { gracePeriodSeconds: 0 });
    await waitFor('web-1 back', async () => {
      const pods2 = await livePods(c!, 'web');
      const p = pods2.find((x) => x.metadata.name === 'web-1');
      return p && p.metadata.uid !== pods[1].metadata.uid && isReady(p) ? true : undefined;
    });
  });

  it('item 25: OrderedReady creates pods in ascending order, each after the previous is ready; scaling pauses while a pod is unhealthy', async () => {
    const crashing = new Set<string>(['web-1']);
    c = await startHollowCluster({
      nodes: [{ name: 'n1', script: crashScript(crashing) }],
      controllers: () => [statefulSetController()],
      restartBackoff: { backoffMsInitial: 100, backoffMsMax: 200, backoffResetAfterRunMs: 60_000 },
    });
    const rec = await recordPods(c, 'web');
    await c.api.create(statefulSet('web', 3));
    // web-0 comes up; web-1 crash-loops, so web-2 is never created.
    await waitFor('web-1 created', async () => (rec.log.includes('+web-1') ? true : undefined));
    await settle();
    expect(names(await livePods(c, 'web'))).toEqual(['web-0', 'web-1']);
    expect(rec.log).not.toContain('+web-2');
    // Healed: web-1 becomes ready at its next start, then web-2 follows.
    crashing.delete('web-1');
    await waitReady(c, 'web', 3);
    const order = rec.log.filter((l) => l.startsWith('+') || l.startsWith('ready'));
    expect(order).toEqual(['+web-0', 'ready web-0', '+web-1', 'ready web-1', '+web-2', 'ready web-2']);

    // Make web-0 unhealthy (deleted and recreated into a crash loop), then scale down: nothing goes.
    crashing.add('web-0');
    await c.api.delete(podKey('web-0'), { gracePeriodSeconds: 0 });
    await waitFor('web-0 back, crash-looping', async () => {
      const p = (await livePods(c!, 'web')).find((x) => x.metadata.name === 'web-0');
      return p && (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > 0 ? true : undefined;
    });
    await c.api.patch(key('web'), { spec: { replicas: 1 } });
    await settle();
    expect(names(await livePods(c, 'web'))).toEqual(['web-0', 'web-1', 'web-2']);
    // Healed: removed in descending order.
    crashing.delete('web-0');
    await waitReady(c, 'web', 1);
    // The list above may see the last deletion before the recorder's watch delivers it.
    const deletions = await waitFor('both deletions seen by the watch', async () => {
      const seen = rec.log.filter((l) => l === '-web-1' || l === '-web-2');
      return seen.length >= 2 ? seen : undefined;
    });
    expect(deletions).toEqual(['-web-2', '-web-1']);
    await rec.stop();
  });

  it('item 26: Parallel creates and deletes all pods at once, even when they are unhealthy', async () => {
    const crashing = new Set<string>(['web-0', 'web-1', 'web-2']);
    c = await startHollowCluster({
      nodes: [{ name: 'n1', script: crashScript(crashing) }],
      controllers: () => [statefulSetController()],
      restartBackoff: { backoffMsInitial: 100, backoffMsMax: 200, backoffResetAfterRunMs: 60_000 },
    });
    await c.api.create(statefulSet('web', 3, { podManagementPolicy: 'Parallel' }));
    await waitFor('3 pods, none ready', async () => {
      const pods = await livePods(c!, 'web');
      return pods.length === 3 ? pods : undefined;
    });
    expect((await livePods(c, 'web')).some(isReady)).toBe(false);
    await c.api.patch(key('web'), { spec: { replicas: 0 } });
    await waitFor('all gone', async () => ((await livePods(c!, 'web')).length === 0 ? true : undefined));
  });

  it('item 27: failed or evicted pods are deleted and recreated under the same name', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }], controllers: () => [statefulSetController()] });
    await c.api.create(statefulSet('db', 2));
    const pods = await waitReady(c, 'db', 2);
    const victim = pods[1];
    // As a node evicts a pod (a status patch: retried if the agent wrote meanwhile).
    await c.api.patch(
      podKey('db-1'),
      { status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on memory' } },
      { subresource: 'status' },
    );
    const back = await waitFor('db-1 recreated', async () => {
      const p = (await livePods(c!, 'db')).find((x) => x.metadata.name === 'db-1');
      return p && p.metadata.uid !== victim.metadata.uid && isReady(p) ? p : undefined;
    });
    expect(back.spec.hostname).toBe('db-1');
  });

  it('item 28: RollingUpdate replaces one pod at a time from the highest ordinal; reverting the template is a rollback', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }], controllers: () => [statefulSetController()] });
    await c.api.create(statefulSet('web', 3));
    await waitReady(c, 'web', 3);
    const first = (await getSet(c, 'web')).status!;
    const rec = await recordPods(c, 'web');
    await waitFor('the watch caught up', async () => (rec.log.includes('ready web-2') ? true : undefined));
    rec.log.length = 0;
    await setImage(c, 'web', 'coxswain/busybox:v2');
    const mid = await waitFor('an update in progress', async () => {
      const s = (await getSet(c!, 'web')).status;
      return s !== undefined && s.updateRevision !== first.updateRevision ? s : undefined;
    });
    // While the update is in progress the current revision stays the old one (on a fast
    // machine the whole update may be over by the first look).
    if ((mid.updatedReplicas ?? 0) < 3) expect(mid.currentRevision).toBe(first.currentRevision);
    const done = await waitFor('update complete', async () => {
      const s = (await getSet(c!, 'web')).status;
      return s?.updatedReplicas === 3 && s.readyReplicas === 3 && s.currentRevision === s.updateRevision
        ? s
        : undefined;
    });
    await rec.stop();
    expect(done.updateRevision).toBe(mid.updateRevision);
    // One at a time, highest first: each replaced pod was ready again before the next went.
    const steps = rec.log.filter((l) => l.startsWith('-') || l.startsWith('ready'));
    expect(steps).toEqual(['-web-2', 'ready web-2', '-web-1', 'ready web-1', '-web-0', 'ready web-0']);
    for (const p of await livePods(c, 'web')) {
      expect(p.spec.containers[0].image).toBe('coxswain/busybox:v2');
      expect(p.metadata.labels?.['controller-revision-hash']).toBe(done.updateRevision);
    }

    // Revert: the first revision is reused (renumbered 3), not a new one.
    await setImage(c, 'web', 'coxswain/busybox');
    const back = await waitFor('rolled back', async () => {
      const s = (await getSet(c!, 'web')).status;
      return s?.updatedReplicas === 3 && s.readyReplicas === 3 && s.currentRevision === first.updateRevision
        ? s
        : undefined;
    });
    expect(back.updateRevision).toBe(first.updateRevision);
    const revs = (await listOf<ControllerRevision>(c.api, 'ControllerRevision', 'default', 'app=web')).sort(
      (a, b) => a.revision - b.revision,
    );
    expect(revs.map((r) => [r.metadata.name, r.revision])).toEqual([
      [done.updateRevision, 2],
      [first.updateRevision, 3],
    ]);
  });

  it('item 29: a partition updates only the ordinals at or above it; a deleted pod comes back at its own revision', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }], controllers: () => [statefulSetController()] });
    await c.api.create(
      statefulSet('web', 3, { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } }),
    );
    await waitReady(c, 'web', 3);
    const first = (await getSet(c, 'web')).status!;
    await setImage(c, 'web', 'coxswain/busybox:v2');
    const canary = await waitFor('web-2 updated', async () => {
      const s = (await getSet(c!, 'web')).status;
      const pods = await livePods(c!, 'web');
      return s?.updatedReplicas === 1 && pods.length === 3 && pods.every(isReady) ? { s, pods } : undefined;
    });
    const revision = (p: Pod) => p.metadata.labels?.['controller-revision-hash'];
    expect(canary.pods.map(revision)).toEqual([
      first.currentRevision,
      first.currentRevision,
      canary.s.updateRevision,
    ]);
    expect(canary.s.currentRevision).toBe(first.currentRevision); // the rollout is not complete
    await settle(1_000);
    expect((await livePods(c, 'web')).map(revision)).toEqual(canary.pods.map(revision));

    // Deleted during the update: web-0 returns at the current revision, web-2 at the update one.
    for (const name of ['web-0', 'web-2']) {
      const old = canary.pods.find((p) => p.metadata.name === name)!;
      await c.api.delete(podKey(name), { gracePeriodSeconds: 0 });
      await waitFor(`${name} back`, async () => {
        const p = (await livePods(c!, 'web')).find((x) => x.metadata.name === name);
        return p && p.metadata.uid !== old.metadata.uid && isReady(p) ? true : undefined;
      });
    }
    const restored = await livePods(c, 'web');
    expect(restored.map(revision)).toEqual(canary.pods.map(revision));
    expect(restored[0].spec.containers[0].image).toBe('coxswain/busybox');
    expect(restored[2].spec.containers[0].image).toBe('coxswain/busybox:v2');

    // Phased: lower the partition to 0 and the rest follows.
    await c.api.patch(key('web'), { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } });
    const done = await waitFor('all updated', async () => {
      const s = (await getSet(c!, 'web')).status;
      return s?.updatedReplicas === 3 && s.readyReplicas === 3 && s.currentRevision === s.updateRevision
        ? s
        : undefined;
    });
    expect(done.updateRevision).toBe(canary.s.updateRevision);
  });

  it('OnDelete updates a pod only when it is deleted', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }], controllers: () => [statefulSetController()] });
    await c.api.create(statefulSet('web', 2, { updateStrategy: { type: 'OnDelete' } }));
    const pods = await waitReady(c, 'web', 2);
    await setImage(c, 'web', 'coxswain/busybox:v2');
    await waitFor('new update revision', async () => {
      const s = (await getSet(c!, 'web')).status;
      return s?.updateRevision !== s?.currentRevision ? true : undefined;
    });
    await settle(1_000);
    expect((await livePods(c, 'web')).map((p) => p.metadata.uid)).toEqual(pods.map((p) => p.metadata.uid));
    await c.api.delete(podKey('web-0'), { gracePeriodSeconds: 0 });
    const back = await waitFor('web-0 back updated', async () => {
      const p = (await livePods(c!, 'web')).find((x) => x.metadata.name === 'web-0');
      return p && p.metadata.uid !== pods[0].metadata.uid ? p : undefined;
    });
    expect(back.spec.containers[0].image).toBe('coxswain/busybox:v2');
    expect((await livePods(c, 'web'))[1].metadata.uid).toBe(pods[1].metadata.uid);
  });
});

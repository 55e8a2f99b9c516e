import { afterEach, describe, expect, it } from 'vitest';
import type { WatchEvent } from '../../actors/api.js';
import { daemonSetController } from '../../actors/controllers/daemonset.js';
import type { ControllerRevision, DaemonSet, Pod } from '../../core/objects.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const good = 'coxswain/busybox';
const missing = 'coxswain/does-not-exist';

function daemonSet(name: string, spec: Partial<DaemonSet['spec']> = {}, image = good): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image }] },
      },
      ...spec,
    },
  };
}

const key = (name: string) => ({ kind: 'DaemonSet', namespace: 'default', name });

async function podsOf(c: HollowCluster, app: string): Promise<Pod[]> {
  return (await listOf<Pod>(c.api, 'Pod', 'default', `app=${app}`)).filter(
    (p) => !p.metadata.deletionTimestamp,
  );
}

/** Live pods per node, once every node in `nodes` has exactly one and no other node has any. */
async function waitForOnePodOn(c: HollowCluster, app: string, nodes: string[], what: string): Promise<Pod[]> {
  return waitFor(what, async () => {
    const pods = await podsOf(c, app);
    const on = pods.map((p) => p.spec.nodeName).sort();
    return JSON.stringify(on) === JSON.stringify([...nodes].sort()) ? pods : undefined;
  });
}

async function getDs(c: HollowCluster, name: string): Promise<DaemonSet> {
  return (await c.api.get(key(name))) as DaemonSet;
}

async function revisionsOf(c: HollowCluster, name: string): Promise<ControllerRevision[]> {
  return (await listOf<ControllerRevision>(c.api, 'ControllerRevision', 'default', `app=${name}`)).sort(
    (a, b) => a.revision - b.revision,
  );
}

/** Feeds every pod event of `app` to `onEvent` until the returned stop is called. */
async function watchPods(
  c: HollowCluster,
  app: string,
  onEvent: (e: WatchEvent) => void,
): Promise<() => Promise<void>> {
  const stream = await c.api.watch('Pod', { namespace: 'default', labelSelector: `app=${app}` });
  const loop = (async () => {
    for (;;) {
      const batch = await stream.next();
      if (batch === undefined) return;
      for (const e of batch) if (e.type !== 'BOOKMARK') onEvent(e);
    }
  })();
  return async () => {
    stream.close();
    await loop.catch(() => {});
  };
}

const isReady = (p: Pod) =>
  p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

const setImage = (c: HollowCluster, name: string, image: string) =>
  c.api.patch(key(name), { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } });

describe('DaemonSet controller (in-process masters, hollow nodes)', { timeout: 120_000 }, () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('item 15: one pod per node, placed without a scheduler; a deleted pod is recreated; a new node gets one', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }],
      controllers: () => [daemonSetController()],
    });
    await c.api.create(daemonSet('agent'));
    const pods = await waitForOnePodOn(c, 'agent', ['n1', 'n2', 'n3'], 'a pod on each node');
    for (const p of pods) {
      expect(p.metadata.ownerReferences?.[0]).toMatchObject({
        kind: 'DaemonSet',
        name: 'agent',
        controller: true,
        blockOwnerDeletion: true,
      });
      expect(p.metadata.labels?.['controller-revision-hash']).toMatch(/^[a-z0-9]+$/);
      expect(p.spec.tolerations).toEqual(
        expect.arrayContaining([
          { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
          { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
          { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
        ]),
      );
    }
    const status = await waitFor('status counts', async () => {
      const s = (await getDs(c!, 'agent')).status;
      return s?.numberReady === 3 && s.numberAvailable === 3 ? s : undefined;
    });
    expect(status).toMatchObject({
      desiredNumberScheduled: 3,
      currentNumberScheduled: 3,
      updatedNumberScheduled: 3,
      numberMisscheduled: 0,
      numberUnavailable: 0,
      observedGeneration: 1,
    });

    const victim = pods.find((p) => p.spec.nodeName === 'n2')!;
    await c.api.delete(
      { kind: 'Pod', namespace: 'default', name: victim.metadata.name! },
      { gracePeriodSeconds: 0 },
    );
    const after = await waitForOnePodOn(c, 'agent', ['n1', 'n2', 'n3'], 'the deleted pod replaced');
    expect(after.find((p) => p.spec.nodeName === 'n2')?.metadata.uid).not.toBe(victim.metadata.uid);

    await c.addNode({ name: 'n4' });
    await waitForOnePodOn(c, 'agent', ['n1', 'n2', 'n3', 'n4'], 'a pod on the new node');
  });

  it('item 16: honours the nodeSelector and follows node relabelling; taints and tolerations', async () => {
    c = await startHollowCluster({
      nodes: [
        { name: 'n1', labels: { color: 'blue' } },
        { name: 'n2', labels: { color: 'green' } },
        {
          name: 'n3',
          labels: { color: 'green' },
          taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }],
        },
      ],
      controllers: () => [daemonSetController()],
    });
    const ds = daemonSet('blue');
    ds.spec.template.spec.nodeSelector = { color: 'blue' };
    await c.api.create(ds);
    await waitForOnePodOn(c, 'blue', ['n1'], 'a pod on the blue node only');
    expect((await getDs(c, 'blue')).status?.desiredNumberScheduled).toBe(1);

    // Relabel n2 blue: it gets a pod; relabel n1 green: its pod goes.
    await c.api.patch({ kind: 'Node', name: 'n2' }, { metadata: { labels: { color: 'blue' } } });
    await waitForOnePodOn(c, 'blue', ['n1', 'n2'], 'a pod on the relabelled node');
    await c.api.patch({ kind: 'Node', name: 'n1' }, { metadata: { labels: { color: 'green' } } });
    await waitForOnePodOn(c, 'blue', ['n2'], 'the pod gone from the node relabelled away');

    // Change the selector to green: n1 and n2... n2 is blue now, so n1 only (n3 is tainted).
    await c.api.patch(key('blue'), { spec: { template: { spec: { nodeSelector: { color: 'green' } } } } });
    await waitForOnePodOn(c, 'blue', ['n1'], 'pods follow the new selector, not onto the tainted node');

    // A toleration lets it onto n3; a NoExecute taint (not tolerated) removes it from n1.
    await c.api.patch(key('blue'), {
      spec: {
        template: {
          spec: { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }] },
        },
      },
    });
    await waitForOnePodOn(c, 'blue', ['n1', 'n3'], 'the tolerating pod on the tainted node');
    await c.api.patch(
      { kind: 'Node', name: 'n1' },
      { spec: { taints: [{ key: 'evict', effect: 'NoExecute' }] } },
    );
    await waitForOnePodOn(c, 'blue', ['n3'], 'evicted by a NoExecute taint');
    const status = await waitFor('status after eviction', async () => {
      const s = (await getDs(c!, 'blue')).status;
      return s?.desiredNumberScheduled === 1 && s.numberMisscheduled === 0 && s.numberReady === 1
        ? s
        : undefined;
    });
    expect(status.currentNumberScheduled).toBe(1);
  });

  it('item 17: a failed daemon pod is deleted and recreated', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1' }, { name: 'n2' }],
      controllers: () => [daemonSetController()],
    });
    await c.api.create(daemonSet('fail'));
    const pods = await waitForOnePodOn(c, 'fail', ['n1', 'n2'], 'a pod on each node');
    const victim = pods[0];
    // As a node reports a pod it could not run (a status patch: retried if the agent wrote meanwhile).
    await c.api.patch(
      { kind: 'Pod', namespace: 'default', name: victim.metadata.name! },
      { status: { phase: 'Failed', reason: 'Evicted' } },
      { subresource: 'status' },
    );
    await waitFor('the failed pod replaced', async () => {
      const now = await podsOf(c!, 'fail');
      const same = now.filter((p) => p.spec.nodeName === victim.spec.nodeName);
      return same.length === 1 &&
        same[0].metadata.uid !== victim.metadata.uid &&
        same[0].status?.phase === 'Running'
        ? true
        : undefined;
    });
    // Events are written asynchronously (a bounded, rate-limited queue).
    await waitFor('a FailedDaemonPod event', async () => {
      const events = (await c!.api.list('Event', { namespace: 'default' })).items as unknown as {
        reason?: string;
        involvedObject: { name?: string };
      }[];
      return events.some((e) => e.reason === 'FailedDaemonPod' && e.involvedObject.name === 'fail')
        ? true
        : undefined;
    });
  });

  it('item 18: RollingUpdate replaces pods when the template changes, never more than maxUnavailable at once', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }, { name: 'n4' }],
      controllers: () => [daemonSetController()],
    });
    await c.api.create(
      daemonSet('roll', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } } }),
    );
    await waitFor('4 ready', async () =>
      (await getDs(c!, 'roll')).status?.numberAvailable === 4 ? true : undefined,
    );
    const before = await podsOf(c, 'roll');
    const oldHash = before[0].metadata.labels?.['controller-revision-hash'];

    // Watch every pod change and check the invariant after each: at most one node without a ready pod.
    const ready = new Map<string, Pod>();
    let worst = 0;
    const stop = await watchPods(c, 'roll', (e) => {
      const p = e.object as Pod;
      if (e.type === 'DELETED' || p.metadata.deletionTimestamp || !isReady(p)) ready.delete(p.metadata.uid!);
      else ready.set(p.metadata.uid!, p);
      const nodesReady = new Set([...ready.values()].map((x) => x.spec.nodeName));
      worst = Math.max(worst, 4 - nodesReady.size);
    });
    await waitFor('all ready seen by the watch', async () => (ready.size === 4 ? true : undefined));
    worst = 0;
    await setImage(c, 'roll', 'coxswain/busybox:v2');
    const after = await waitFor(
      'every pod replaced',
      async () => {
        const s = (await getDs(c!, 'roll')).status;
        const pods = await podsOf(c!, 'roll');
        return s?.updatedNumberScheduled === 4 && s.numberAvailable === 4 && pods.length === 4
          ? pods
          : undefined;
      },
      60_000,
    );
    await stop();
    const newHash = after[0].metadata.labels?.['controller-revision-hash'];
    expect(newHash).not.toBe(oldHash);
    for (const p of after) {
      expect(p.spec.containers[0].image).toBe('coxswain/busybox:v2');
      expect(p.metadata.labels?.['controller-revision-hash']).toBe(newHash);
      expect(before.some((b) => b.metadata.uid === p.metadata.uid)).toBe(false);
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(worst).toBeGreaterThan(0);
  });

  it('item 18: RollingUpdate with maxSurge starts the new pod before the old one goes', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1' }, { name: 'n2' }, { name: 'n3' }],
      controllers: () => [daemonSetController()],
    });
    await c.api.create(
      daemonSet('surge', {
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      }),
    );
    await waitFor('3 ready', async () =>
      (await getDs(c!, 'surge')).status?.numberAvailable === 3 ? true : undefined,
    );
    let maxPods = 0;
    let minReadyNodes = 3;
    const ready = new Map<string, Pod>();
    const live = new Map<string, Pod>();
    let started = false;
    const stop = await watchPods(c, 'surge', (e) => {
      const p = e.object as Pod;
      if (e.type === 'DELETED' || p.metadata.deletionTimestamp) live.delete(p.metadata.uid!);
      else live.set(p.metadata.uid!, p);
      if (e.type === 'DELETED' || p.metadata.deletionTimestamp || !isReady(p)) ready.delete(p.metadata.uid!);
      else ready.set(p.metadata.uid!, p);
      if (!started) return;
      maxPods = Math.max(maxPods, live.size);
      minReadyNodes = Math.min(minReadyNodes, new Set([...ready.values()].map((x) => x.spec.nodeName)).size);
    });
    await waitFor('all ready seen by the watch', async () => (ready.size === 3 ? true : undefined));
    started = true;
    await setImage(c, 'surge', 'coxswain/busybox:v2');
    await waitFor(
      'every pod replaced',
      async () => {
        const s = (await getDs(c!, 'surge')).status;
        const pods = await podsOf(c!, 'surge');
        return s?.updatedNumberScheduled === 3 &&
          s.numberAvailable === 3 &&
          pods.length === 3 &&
          pods.every((p) => p.spec.containers[0].image === 'coxswain/busybox:v2')
          ? true
          : undefined;
      },
      60_000,
    );
    await stop();
    expect(minReadyNodes).toBe(3); // no node was ever without a ready daemon
    expect(maxPods).toBeGreaterThan(3); // a new pod ran beside an old one
    expect(maxPods).toBeLessThanOrEqual(4); // maxSurge 1
  });

  it('OnDelete keeps old pods until they are deleted', async () => {
    c = await startHollowCluster({
      nodes: [{ name: 'n1' }, { name: 'n2' }],
      controllers: () => [daemonSetController()],
    });
    await c.api.create(daemonSet('manual', { updateStrategy: { type: 'OnDelete' } }));
    const pods = await waitForOnePodOn(c, 'manual', ['n1', 'n2'], 'a pod on each node');
    await setImage(c, 'manual', 'coxswain/busybox:v2');
    await waitFor('a second revision', async () =>
      (await revisionsOf(c!, 'manual')).length === 2 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    const same = await podsOf(c, 'manual');
    expect(same.map((p) => p.metadata.uid).sort()).toEqual(pods.map((p) => p.metadata.uid).sort());
    expect((await getDs(c, 'manual')).status?.updatedNumberScheduled).toBe(0);
    await c.api.delete(
      { kind: 'Pod', namespace: 'default', name: pods[0].metadata.name! },
      { gracePeriodSeconds: 0 },
    );
    const replaced = await waitFor('the deleted pod comes back updated', async () => {
      const now = await podsOf(c!, 'manual');
      const p = now.find((x) => x.spec.nodeName === pods[0].spec.nodeName);
      return now.length === 2 && p && p.metadata.uid !== pods[0].metadata.uid ? p : undefined;
    });
    expect(replaced.spec.containers[0].image).toBe('coxswain/busybox:v2');
    const other = (await podsOf(c, 'manual')).find((x) => x.spec.nodeName === pods[1].spec.nodeName);
    expect(other?.metadata.uid).toBe(pods[1].metadata.uid);
  });

  it('item 19: a ControllerRevision per template (the third has number 3); rollback restarts no pod that already runs the old template', async () => {
    const nodes = ['n1', 'n2', 'n3'];
    c = await startHollowCluster({
      nodes: nodes.map((name) => ({ name, images: [good, 'coxswain/busybox:v2'] })),
      controllers: () => [daemonSetController()],
    });
    await c.api.create(
      daemonSet('rb', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } } }),
    );
    await waitFor('3 available', async () =>
      (await getDs(c!, 'rb')).status?.numberAvailable === 3 ? true : undefined,
    );
    const first = await revisionsOf(c, 'rb');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      revision: 1,
      data: { spec: { template: (await getDs(c, 'rb')).spec.template } },
    });
    expect(first[0].metadata.name).toBe(`rb-${first[0].metadata.labels?.['controller-revision-hash']}`);
    expect(first[0].metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'DaemonSet',
      name: 'rb',
      controller: true,
    });
    const original = await podsOf(c, 'rb');

    // An image no node has: the update gets stuck on one node (maxUnavailable 1).
    await setImage(c, 'rb', missing);
    await waitFor('one pod on the bad image', async () => {
      const pods = await podsOf(c!, 'rb');
      return pods.some((p) => p.spec.containers[0].image === missing) ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const stuck = await podsOf(c, 'rb');
    const untouched = stuck.filter((p) => original.some((o) => o.metadata.uid === p.metadata.uid));
    expect(untouched).toHaveLength(2);
    expect((await revisionsOf(c, 'rb')).map((r) => r.revision)).toEqual([1, 2]);

    // Roll back: the two pods still on the old template are not restarted.
    await setImage(c, 'rb', good);
    await waitFor('rolled back', async () => {
      const s = (await getDs(c!, 'rb')).status;
      const pods = await podsOf(c!, 'rb');
      return s?.updatedNumberScheduled === 3 &&
        s.numberAvailable === 3 &&
        pods.length === 3 &&
        pods.every((p) => p.spec.containers[0].image === good)
        ? true
        : undefined;
    });
    const after = await podsOf(c, 'rb');
    for (const p of untouched) expect(after.some((a) => a.metadata.uid === p.metadata.uid)).toBe(true);
    const revs = await revisionsOf(c, 'rb');
    // The old template's revision is reused and renumbered: a rollback, not a new revision.
    expect(revs.map((r) => [r.metadata.name, r.revision])).toEqual([
      [revs[0].metadata.name, 2],
      [first[0].metadata.name, 3],
    ]);

    // A third template: a new revision numbered 4 (the history keeps every template once).
    await setImage(c, 'rb', 'coxswain/busybox:v2');
    await waitFor(
      'third template rolled out',
      async () => {
        const s = (await getDs(c!, 'rb')).status;
        return s?.updatedNumberScheduled === 3 && s.numberAvailable === 3 ? true : undefined;
      },
      60_000,
    );
    expect((await revisionsOf(c, 'rb')).map((r) => r.revision)).toEqual([2, 3, 4]);
  });

  it('item 19: three templates make revisions 1, 2, 3; history is trimmed to revisionHistoryLimit', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }], controllers: () => [daemonSetController()] });
    await c.api.create(daemonSet('hist'));
    for (const tag of ['v2', 'v3']) {
      await waitFor('rolled out', async () =>
        (await getDs(c!, 'hist')).status?.updatedNumberScheduled === 1 ? true : undefined,
      );
      await setImage(c, 'hist', `coxswain/busybox:${tag}`);
    }
    const revs = await waitFor('three revisions', async () => {
      const r = await revisionsOf(c!, 'hist');
      return r.length === 3 ? r : undefined;
    });
    expect(revs.map((r) => r.revision)).toEqual([1, 2, 3]);
    const images = revs.map(
      (r) => (r.data as { spec: { template: { spec: Pod['spec'] } } }).spec.template.spec.containers[0].image,
    );
    expect(images).toEqual([good, 'coxswain/busybox:v2', 'coxswain/busybox:v3']);
    await waitFor('rolled out', async () => {
      const st = (await getDs(c!, 'hist')).status;
      return st?.updatedNumberScheduled === 1 && st.numberAvailable === 1 ? true : undefined;
    });
    // Keep one old revision: the oldest goes, the current one stays.
    await c.api.patch(key('hist'), { spec: { revisionHistoryLimit: 1 } });
    const trimmed = await waitFor('trimmed', async () => {
      const r = await revisionsOf(c!, 'hist');
      return r.length === 2 ? r : undefined;
    });
    expect(trimmed.map((r) => r.revision)).toEqual([2, 3]);
  });
});

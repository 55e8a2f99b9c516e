/**
 * Node lifecycle, taint-based eviction and pod garbage collection on in-process masters with
 * hollow nodes. The heartbeat grace period is 3 s and Leases are renewed every 250 ms.
 *
 * The scheduler lands separately: the eviction-and-replacement test binds pending pods itself
 * (`startBinder`: every 100 ms, each pending pod goes to a Ready, untainted node through the
 * leader's `api.bind`, the scheduler's own write), so the replacements really run on the
 * other node. Other tests pin pods with `nodeName`.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { ApiErrorCode, isApiError, type WatchEvent } from '../../actors/api.js';
import { defaultControllers } from '../../actors/controllers/index.js';
import type { ApiObject, Node, Pod, ReplicaSet, Taint } from '../../core/index.js';
import { startBinder } from '../fixtures/binder.js';
import { waitFor } from '../fixtures/e2e.js';
import {
  type HollowCluster,
  type HollowNodeSpec,
  listOf,
  startHollowCluster,
} from '../fixtures/hollow-cluster.js';

const gracePeriodMs = 3_000;

let c: HollowCluster | undefined;
let stopBinder: (() => Promise<void>) | undefined;
const watches: (() => void)[] = [];

afterEach(async () => {
  await stopBinder?.();
  stopBinder = undefined;
  for (const close of watches.splice(0)) close();
  await c?.stop();
  c = undefined;
});

async function cluster(nodes: HollowNodeSpec[]): Promise<HollowCluster> {
  c = await startHollowCluster({
    nodes,
    leaseDurationSeconds: 1,
    controllers: () =>
      defaultControllers({
        nodeMonitorGracePeriodMs: gracePeriodMs,
        orphanQuarantineMs: 1_000,
        terminatedPodGcThreshold: 2,
      }),
  });
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const readyOf = (node: Node | undefined) => node?.status?.conditions?.find((x) => x.type === 'Ready');

/** Every pod change in `default`, as a watch delivers it. */
async function recordPodEvents(cl: HollowCluster): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  const stream = await cl.api.watch('Pod', { namespace: 'default' });
  watches.push(() => stream.close());
  void (async () => {
    for (;;) {
      const batch = await stream.next().catch(() => undefined);
      if (batch === undefined) return;
      events.push(...batch);
    }
  })();
  return events;
}

async function getNode(cl: HollowCluster, name: string): Promise<Node | undefined> {
  try {
    return (await cl.api.get({ kind: 'Node', name })) as Node;
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) return undefined;
    throw err;
  }
}

const podsOf = async (cl: HollowCluster, app: string) => listOf<Pod>(cl.api, 'Pod', 'default', `app=${app}`);

const taintIds = (node: Node | undefined) => (node?.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`);

const pinned = (name: string, node: string, extra: Partial<Pod['spec']> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app: name } },
  spec: {
    nodeName: node,
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'app', image: 'coxswain/busybox' }],
    ...extra,
  },
});

describe('node lifecycle (in-process masters, hollow nodes)', () => {
  it('a stopped agent: the node goes Ready=Unknown and tainted, its pods are evicted after tolerationSeconds and replaced on another node; the returning agent clears it', async () => {
    const cl = await cluster([{ name: 'n1' }]);
    stopBinder = startBinder(cl);
    const events = await recordPodEvents(cl);
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            tolerations: [
              {
                key: 'node.kubernetes.io/unreachable',
                operator: 'Exists',
                effect: 'NoExecute',
                tolerationSeconds: 2,
              },
            ],
            containers: [{ name: 'app', image: 'coxswain/busybox' }],
          },
        },
      },
    };
    await cl.api.create(rs);
    const first = await waitFor('2 pods running on n1', async () => {
      const pods = await podsOf(cl, 'web');
      return pods.length === 2 && pods.every((p) => p.spec.nodeName === 'n1' && p.status?.phase === 'Running')
        ? pods
        : undefined;
    });
    // The default not-ready toleration was added at create; the pod's own unreachable one kept.
    expect(first[0].spec.tolerations?.map((t) => `${t.key}:${t.tolerationSeconds}`)).toEqual([
      'node.kubernetes.io/unreachable:2',
      'node.kubernetes.io/not-ready:300',
    ]);

    await cl.addNode({ name: 'n2' });
    await cl.stopNode('n1');

    const unknown = await waitFor('n1 Ready=Unknown', async () => {
      const n = await getNode(cl, 'n1');
      return readyOf(n)?.status === 'Unknown' ? n : undefined;
    });
    expect(readyOf(unknown)).toMatchObject({
      reason: 'NodeStatusUnknown',
      message: 'Agent stopped posting node status.',
    });
    const tainted = await waitFor('n1 tainted unreachable', async () => {
      const n = await getNode(cl, 'n1');
      return taintIds(n).includes('node.kubernetes.io/unreachable:NoExecute') ? n : undefined;
    });
    expect(taintIds(tainted)).toEqual([
      'node.kubernetes.io/unreachable:NoSchedule',
      'node.kubernetes.io/unreachable:NoExecute',
    ]);
    const noExecute = tainted.spec?.taints?.find((t) => t.effect === 'NoExecute') as Taint;
    expect(noExecute.timeAdded).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // Replaced on n2 by the ReplicaSet, running; the evicted pods force-deleted after their grace.
    const oldUids = new Set(first.map((p) => p.metadata.uid));
    await waitFor(
      '2 replacement pods running on n2, the old ones gone',
      async () => {
        const pods = await podsOf(cl, 'web');
        return pods.length === 2 &&
          pods.every(
            (p) => p.spec.nodeName === 'n2' && p.status?.phase === 'Running' && !oldUids.has(p.metadata.uid),
          )
          ? true
          : undefined;
      },
      30_000,
    );
    for (const old of first) {
      const marked = events.find(
        (e) =>
          e.object.metadata.uid === old.metadata.uid && e.object.metadata.deletionTimestamp !== undefined,
      )?.object as Pod | undefined;
      expect(marked, `eviction of ${old.metadata.name}`).toBeDefined();
      expect(marked?.status?.conditions?.find((x) => x.type === 'DisruptionTarget')).toMatchObject({
        status: 'True',
        reason: 'DeletionByTaintManager',
      });
      // Not before its tolerationSeconds (2 s) after the taint was added.
      const waited =
        Date.parse(marked?.metadata.deletionTimestamp ?? '') - Date.parse(noExecute.timeAdded ?? '');
      expect(waited).toBeGreaterThanOrEqual(2_000);
      expect(events.some((e) => e.type === 'DELETED' && e.object.metadata.uid === old.metadata.uid)).toBe(
        true,
      );
    }
    const taintEvents = (await listOf(cl.api, 'Event', 'default')).filter(
      (e) => (e as { reason?: string }).reason === 'TaintManagerEviction',
    );
    expect(taintEvents.length).toBeGreaterThanOrEqual(1);

    // The agent comes back and renews its Lease: Ready again, the taints go.
    await cl.addNode({ name: 'n1' });
    const back = await waitFor('n1 Ready and untainted', async () => {
      const n = await getNode(cl, 'n1');
      return readyOf(n)?.status === 'True' && taintIds(n).length === 0 ? n : undefined;
    });
    expect(back.spec?.taints ?? []).toEqual([]);
  });

  it('after a leader failover an unreachable node stays Unknown with the same taints (no flap, eviction clocks kept)', async () => {
    const cl = await cluster([{ name: 'n1' }, { name: 'n2' }]);
    await cl.stopNode('n1');
    const tainted = await waitFor('n1 unreachable', async () => {
      const n = await getNode(cl, 'n1');
      return taintIds(n).includes('node.kubernetes.io/unreachable:NoExecute') ? n : undefined;
    });
    const leader = await cl.leader();
    await cl.masters.kill(leader.id);
    await waitFor('a new leader with controllers', async () => {
      const l = await cl.leader();
      return l.id !== leader.id && l.controllers.running ? true : undefined;
    });
    // Longer than the grace period: the new leader has judged n1 by then.
    await sleep(gracePeriodMs + 1_000);
    const after = await getNode(cl, 'n1');
    expect(readyOf(after)?.status).toBe('Unknown');
    expect(after?.spec?.taints).toEqual(tainted.spec?.taints);
    expect(readyOf(await getNode(cl, 'n2'))?.status).toBe('True');
  });

  it('a NoExecute taint evicts pods that do not tolerate it at once; a toleration without seconds keeps a pod', async () => {
    const cl = await cluster([{ name: 'n1' }]);
    await cl.api.create(pinned('intolerant', 'n1'));
    await cl.api.create(
      pinned('tolerant', 'n1', {
        tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }],
      }),
    );
    await waitFor('both running', async () => {
      const pods = await listOf<Pod>(cl.api, 'Pod', 'default');
      return pods.filter((p) => p.status?.phase === 'Running').length === 2 ? true : undefined;
    });
    const events = await recordPodEvents(cl);
    await cl.api.patch(
      { kind: 'Node', name: 'n1' },
      { spec: { taints: [{ key: 'dedicated', value: 'x', effect: 'NoExecute' }] } },
    );
    await waitFor('intolerant evicted and gone', async () =>
      events.some((e) => e.type === 'DELETED' && e.object.metadata.name === 'intolerant') ? true : undefined,
    );
    const marked = events.find(
      (e) => e.object.metadata.name === 'intolerant' && e.object.metadata.deletionTimestamp !== undefined,
    )?.object as Pod;
    expect(marked.status?.conditions?.find((x) => x.type === 'DisruptionTarget')?.reason).toBe(
      'DeletionByTaintManager',
    );
    await sleep(1_000);
    const tolerant = (await cl.api.get({ kind: 'Pod', namespace: 'default', name: 'tolerant' })) as Pod;
    expect(tolerant.metadata.deletionTimestamp).toBeUndefined();
    // The taint the user set is theirs: kept as it was.
    expect((await getNode(cl, 'n1'))?.spec?.taints).toEqual([
      { key: 'dedicated', value: 'x', effect: 'NoExecute' },
    ]);
  });

  it('a cordoned node gets the unschedulable taint, kept across an agent restart; uncordoned, it goes', async () => {
    const cl = await cluster([{ name: 'n1' }]);
    await cl.api.patch({ kind: 'Node', name: 'n1' }, { spec: { unschedulable: true } });
    await waitFor('unschedulable taint', async () =>
      taintIds(await getNode(cl, 'n1')).includes('node.kubernetes.io/unschedulable:NoSchedule')
        ? true
        : undefined,
    );
    await cl.stopNode('n1');
    await cl.addNode({ name: 'n1' });
    const restarted = await getNode(cl, 'n1');
    expect(restarted?.spec?.unschedulable).toBe(true);
    expect(taintIds(restarted)).toEqual(['node.kubernetes.io/unschedulable:NoSchedule']);
    await cl.api.patch({ kind: 'Node', name: 'n1' }, { spec: { unschedulable: null } });
    await waitFor('taint gone', async () =>
      taintIds(await getNode(cl, 'n1')).length === 0 ? true : undefined,
    );
  });

  it('pod GC: pods bound to a node that does not exist (or no longer does) are marked Failed and deleted', async () => {
    const cl = await cluster([{ name: 'n1' }]);
    const events = await recordPodEvents(cl);
    await cl.api.create(pinned('lost', 'ghost'));
    await cl.api.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n9' } } as ApiObject);
    await cl.api.create(pinned('on-n9', 'n9'));
    await sleep(200);
    await cl.api.delete({ kind: 'Node', name: 'n9' });
    for (const name of ['lost', 'on-n9']) {
      await waitFor(`${name} deleted`, async () =>
        events.some((e) => e.type === 'DELETED' && e.object.metadata.name === name) ? true : undefined,
      );
      const failed = events.find(
        (e) => e.object.metadata.name === name && (e.object as Pod).status?.phase === 'Failed',
      )?.object as Pod;
      expect(failed.status?.conditions?.find((x) => x.type === 'DisruptionTarget')).toMatchObject({
        reason: 'DeletionByPodGC',
        message: 'PodGC: node no longer exists',
      });
    }
  });

  it('pod GC: finished pods beyond the threshold (2 here) are deleted, oldest first', async () => {
    const cl = await cluster([
      { name: 'n1', script: (spec) => (spec.name === 'done' ? { exitAfterMs: 50 } : {}) },
    ]);
    for (const name of ['t1', 't2', 't3', 't4']) {
      await cl.api.create(
        pinned(name, 'n1', {
          restartPolicy: 'Never',
          containers: [{ name: 'done', image: 'coxswain/busybox' }],
        }),
      );
      await waitFor(`${name} Succeeded`, async () => {
        try {
          const p = (await cl.api.get({ kind: 'Pod', namespace: 'default', name })) as Pod;
          return p.status?.phase === 'Succeeded' ? true : undefined;
        } catch {
          return undefined;
        }
      });
    }
    await waitFor('the two newest left', async () => {
      const names = (await listOf<Pod>(cl.api, 'Pod', 'default')).map((p) => p.metadata.name).sort();
      return names.join() === 't3,t4' ? true : undefined;
    });
  });
});

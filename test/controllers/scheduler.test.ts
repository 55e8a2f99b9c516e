import { afterEach, describe, expect, it } from 'vitest';
import type { WatchEvent } from '../../actors/api.js';
import type { MasterNode } from '../../actors/master-node.js';
import { type CliApi, type CliDeps, runCox } from '../../cli/main.js';
import type { Event, Pod, ReplicaSet } from '../../core/index.js';
import type { Affinity, Toleration } from '../../core/objects.js';
import { placementAnnotation, readPlacement, readReasons } from '../../core/scheduler/index.js';
import { waitFor } from '../fixtures/e2e.js';
import {
  type HollowCluster,
  type HollowNodeSpec,
  listOf,
  startHollowCluster,
} from '../fixtures/hollow-cluster.js';

interface TemplateOpts {
  cpu?: string;
  memory?: string;
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
}

const podSpec = (o: TemplateOpts = {}) => {
  const requests: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  return {
    terminationGracePeriodSeconds: 0,
    containers: [
      {
        name: 'app',
        image: 'coxswain/busybox',
        ...(Object.keys(requests).length > 0 ? { resources: { requests } } : {}),
      },
    ],
    ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
    ...(o.affinity ? { affinity: o.affinity } : {}),
    ...(o.tolerations ? { tolerations: o.tolerations } : {}),
  };
};

const rs = (name: string, replicas: number, o: TemplateOpts = {}): ReplicaSet => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name, namespace: 'default' },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: podSpec(o) },
  },
});

const bare = (name: string, o: TemplateOpts & { labels?: Record<string, string> } = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: o.labels ?? { app: name } },
  spec: podSpec(o),
});

const getPod = async (c: HollowCluster, name: string) =>
  (await c.api.get({ kind: 'Pod', namespace: 'default', name })) as Pod;

const podsOf = async (c: HollowCluster, app: string) => listOf<Pod>(c.api, 'Pod', 'default', `app=${app}`);

/** Waits until every pod of `app` is bound and Running; returns them. */
async function allRunning(c: HollowCluster, app: string, count: number, timeoutMs = 30_000): Promise<Pod[]> {
  return waitFor(
    `${count} pods of ${app} running`,
    async () => {
      const pods = await podsOf(c, app);
      return pods.length === count && pods.every((p) => p.spec.nodeName && p.status?.phase === 'Running')
        ? pods
        : undefined;
    },
    timeoutMs,
  );
}

function perNode(pods: Pod[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of pods) out[p.spec.nodeName ?? ''] = (out[p.spec.nodeName ?? ''] ?? 0) + 1;
  return out;
}

async function unschedulable(c: HollowCluster, name: string): Promise<Pod> {
  return waitFor(`${name} marked unschedulable`, async () => {
    const p = await getPod(c, name);
    const cond = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
    return cond?.status === 'False' && cond.reason === 'Unschedulable' && readReasons(p.metadata.annotations)
      ? p
      : undefined;
  });
}

function schedulerCounters(m: MasterNode): Record<string, number> {
  const s = m.controllers.status().controllers.find((x) => x.name === 'scheduler');
  if (s?.counters === undefined) throw new Error('no scheduler counters');
  return s.counters;
}

/** Runs `cox ARGS` in process against the cluster's API. */
async function cox(
  c: HollowCluster,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const api: CliApi = {
    ...c.api,
    clusterStatus: () => Promise.reject(new Error('unused')),
    addMember: () => Promise.reject(new Error('unused')),
    removeMember: () => Promise.reject(new Error('unused')),
    transferLeadership: () => Promise.reject(new Error('unused')),
    close: () => {},
  };
  const deps: CliDeps = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: { COX_SERVERS: 'ws://unused' },
    homeDir: '/nonexistent',
    nowMs: Date.now,
    files: {
      listDir: () => undefined,
      readFile: () => {
        throw new Error('no files here');
      },
      readStdin: async () => '',
      join: (dir, name) => `${dir}/${name}`,
      readIfExists: () => undefined,
    },
    connect: () => api,
  };
  const code = await runCox(args, deps);
  return { code, stdout, stderr };
}

const nodes = (n: number, extra: Partial<HollowNodeSpec> = {}): HollowNodeSpec[] =>
  Array.from({ length: n }, (_, i) => ({ name: `n${i + 1}`, ...extra }));

describe('scheduler (in-process masters, hollow nodes)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('spreads a ReplicaSet across nodes, records its placement, and explains it with cox why', async () => {
    c = await startHollowCluster({ nodes: nodes(3) });
    await c.api.create(rs('web', 6, { cpu: '100m', memory: '64Mi' }));
    const pods = await allRunning(c, 'web', 6);
    expect(perNode(pods)).toEqual({ n1: 2, n2: 2, n3: 2 });
    for (const p of pods) {
      const placement = readPlacement(p.metadata.annotations);
      expect(placement?.node).toBe(p.spec.nodeName);
      expect(placement?.feasible).toBe(3);
      expect(p.status?.qosClass).toBe('Burstable');
      expect(p.status?.conditions?.find((x) => x.type === 'PodScheduled')?.status).toBe('True');
    }
    const events = await waitFor('Scheduled events', async () => {
      const all = await listOf<Event>(c!.api, 'Event');
      const scheduled = all.filter((e) => e.reason === 'Scheduled');
      return scheduled.length === 6 ? scheduled : undefined;
    });
    expect(events[0].source?.component).toBe('default-scheduler');
    expect(events[0].message).toMatch(/^Successfully assigned default\/web-[a-z0-9]{5} to n[123]$/);

    const name = pods[0].metadata.name ?? '';
    const why = await cox(c, 'why', `pod/${name}`);
    expect(why.code).toBe(0);
    const lines = why.stdout.split('\n');
    expect(lines[0]).toBe(`Pod default/${name}: Running on node ${pods[0].spec.nodeName}`);
    expect(lines[1]).toBe('QoS class: Burstable; requests: cpu 100m, memory 64Mi');
    expect(lines[2]).toMatch(
      new RegExp(
        `^Scheduled by default-scheduler .*: node ${pods[0].spec.nodeName} had the best score, \\d+, of 3 feasible nodes\\.$`,
      ),
    );
    expect(lines[3]).toMatch(
      /^Scores: NodeResourcesLeastAllocated \d+, NodeResourcesBalancedAllocation \d+, OwnerSpread \d+ \(x2\)/,
    );
    const missing = await cox(c, 'why', 'pod/nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: pod/nope: not found\n');
    const kind = await cox(c, 'why', 'deploy/web');
    expect(kind.code).toBe(1);
    expect(kind.stderr).toBe('error: why: only pods are explained, not "deploy"\n');
  });

  it('respects resources: an unschedulable pod says why per node, and is placed when a node is added (no polling)', async () => {
    c = await startHollowCluster({ nodes: nodes(2, { capacity: { cpu: '1' } }) });
    await c.api.create(rs('big', 2, { cpu: '600m' }));
    const placed = await allRunning(c, 'big', 2);
    expect(perNode(placed)).toEqual({ n1: 1, n2: 1 });
    await c.api.create(bare('extra', { cpu: '600m' }));
    const p = await unschedulable(c, 'extra');
    expect(p.status?.conditions?.find((x) => x.type === 'PodScheduled')?.message).toBe(
      '0/2 nodes are available: 2 Insufficient cpu.',
    );
    expect(readReasons(p.metadata.annotations)?.reasons).toEqual([
      { reason: 'Insufficient cpu', count: 2, nodes: ['n1', 'n2'] },
    ]);
    await waitFor('FailedScheduling event', async () => {
      const all = await listOf<Event>(c!.api, 'Event');
      return all.find((e) => e.reason === 'FailedScheduling' && e.involvedObject.name === 'extra');
    });
    const why = await cox(c, 'why', 'pod', 'extra');
    expect(why.stdout).toMatch(
      /^Pod default\/extra: Pending\nQoS class: Burstable; requests: cpu 600m\nNot scheduled \(unschedulable for \d+s\): 0\/2 nodes are available: 2 Insufficient cpu\.\nNodes:\n {2}n1: Insufficient cpu\n {2}n2: Insufficient cpu\n/,
    );

    // Parked: nothing retries it while nothing changes.
    const leader = await c.leader();
    await waitFor('parked', async () => (schedulerCounters(leader).parked === 1 ? true : undefined));
    const attempts = schedulerCounters(leader).unschedulable;
    await new Promise((r) => setTimeout(r, 2_000));
    expect(schedulerCounters(leader).unschedulable).toBe(attempts);

    await c.addNode({ name: 'n3', capacity: { cpu: '1' } });
    const bound = await waitFor('extra bound to n3', async () => {
      const x = await getPod(c!, 'extra');
      return x.spec.nodeName ? x : undefined;
    });
    expect(bound.spec.nodeName).toBe('n3');
    expect(readReasons(bound.metadata.annotations)).toBeUndefined();
    expect(bound.metadata.annotations?.[placementAnnotation]).toBeDefined();
  });

  it('frees resources when a pod is deleted and places the waiting pod', async () => {
    c = await startHollowCluster({ nodes: nodes(1, { capacity: { cpu: '1' } }) });
    await c.api.create(bare('first', { cpu: '800m' }));
    await waitFor('first bound', async () => ((await getPod(c!, 'first')).spec.nodeName ? true : undefined));
    await c.api.create(bare('second', { cpu: '800m' }));
    await unschedulable(c, 'second');
    await c.api.delete({ kind: 'Pod', namespace: 'default', name: 'first' }, { gracePeriodSeconds: 0 });
    const bound = await waitFor('second bound', async () => {
      const x = await getPod(c!, 'second');
      return x.spec.nodeName ? x : undefined;
    });
    expect(bound.spec.nodeName).toBe('n1');
  });

  it('nodeSelector, required node affinity, taints and tolerations', async () => {
    c = await startHollowCluster({
      nodes: [
        { name: 'ssd', labels: { disk: 'ssd', zone: 'a' } },
        { name: 'hdd', labels: { disk: 'hdd', zone: 'b' } },
        {
          name: 'gpu',
          labels: { zone: 'a' },
          taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }],
        },
      ],
    });
    await c.api.create(bare('sel', { nodeSelector: { disk: 'ssd' } }));
    await c.api.create(
      bare('aff', {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['hdd'] }] }],
            },
          },
        },
      }),
    );
    await c.api.create(
      bare('tol', {
        nodeSelector: { zone: 'a' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['gpu'] }] },
              ],
            },
          },
        },
      }),
    );
    await c.api.create(bare('untol', { nodeSelector: { zone: 'a' }, cpu: '3' }));
    await c.api.create(bare('nowhere', { nodeSelector: { disk: 'nvme' } }));
    const where = async (n: string) =>
      waitFor(`${n} bound`, async () => (await getPod(c!, n)).spec.nodeName || undefined);
    expect(await where('sel')).toBe('ssd');
    expect(await where('aff')).toBe('hdd');
    expect(await where('tol')).toBe('gpu');
    expect(await where('untol')).toBe('ssd'); // the tainted zone-a node is not for it
    const p = await unschedulable(c, 'nowhere');
    expect(p.status?.conditions?.find((x) => x.type === 'PodScheduled')?.message).toBe(
      "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector.",
    );
    // Relabelling a node wakes it: it now fits there.
    const hdd = await c.api.get({ kind: 'Node', name: 'hdd' });
    await c.api.update({
      ...hdd,
      metadata: { ...hdd.metadata, labels: { ...hdd.metadata.labels, disk: 'nvme' } },
    });
    expect(await where('nowhere')).toBe('hdd');
  });

  it('required pod anti-affinity: one per node, then unschedulable', async () => {
    c = await startHollowCluster({ nodes: nodes(3) });
    const anti: Affinity = {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    };
    await c.api.create(rs('db', 4, { affinity: anti }));
    const pods = await waitFor('3 bound, 1 unschedulable', async () => {
      const all = await podsOf(c!, 'db');
      const bound = all.filter((p) => p.spec.nodeName);
      const refused = all.filter(
        (p) => p.status?.conditions?.find((x) => x.type === 'PodScheduled')?.reason === 'Unschedulable',
      );
      return all.length === 4 && bound.length === 3 && refused.length === 1 ? all : undefined;
    });
    expect(perNode(pods.filter((p) => p.spec.nodeName))).toEqual({ n1: 1, n2: 1, n3: 1 });
    const refused = pods.find((p) => !p.spec.nodeName) as Pod;
    expect(refused.status?.conditions?.find((x) => x.type === 'PodScheduled')?.message).toBe(
      "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.",
    );
  });

  it('required pod affinity: a pod waits for a matching pod, then goes to its node', async () => {
    c = await startHollowCluster({ nodes: nodes(3) });
    const near: Affinity = {
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { app: 'cache' } }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    };
    await c.api.create(bare('web', { affinity: near }));
    const waiting = await unschedulable(c, 'web');
    expect(waiting.status?.conditions?.find((x) => x.type === 'PodScheduled')?.message).toBe(
      "0/3 nodes are available: 3 node(s) didn't match pod affinity rules.",
    );
    await c.api.create(bare('cache', { nodeSelector: { 'kubernetes.io/hostname': 'n2' } }));
    const web = await waitFor('web bound', async () => {
      const p = await getPod(c!, 'web');
      return p.spec.nodeName ? p : undefined;
    });
    expect(web.spec.nodeName).toBe('n2');
  });

  it('finishes pending pods after the leader dies, binding none twice and overcommitting no node', async () => {
    c = await startHollowCluster({ nodes: nodes(2, { capacity: { cpu: '2' } }) });
    // Every pod's binding history (a watch resumed on a live master from the last version
    // seen): a pod bound twice would show a second nodeName.
    const bindings = new Map<string, Set<string>>();
    let watching = true;
    let current: { close(): void } | undefined;
    const cluster = c;
    const collector = (async () => {
      let rv: string | undefined;
      while (watching) {
        try {
          const w = await cluster.api.watch('Pod', {
            namespace: 'default',
            ...(rv !== undefined ? { resourceVersion: rv } : {}),
          });
          current = w;
          for (;;) {
            const events: WatchEvent[] | undefined = await w.next();
            if (events === undefined) break;
            for (const e of events) {
              rv = e.object.metadata.resourceVersion ?? rv;
              const p = e.object as Pod;
              if (!p.spec?.nodeName) continue;
              const set = bindings.get(p.metadata.uid ?? '') ?? new Set<string>();
              set.add(p.spec.nodeName);
              bindings.set(p.metadata.uid ?? '', set);
            }
          }
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    })();
    await c.api.create(rs('burst', 30, { cpu: '250m' }));
    // 2 nodes x 2 cpu / 250m = 16 slots: 14 pods wait, unschedulable, when the leader dies.
    await waitFor('16 bound, 14 waiting', async () => {
      const all = await podsOf(c!, 'burst');
      const bound = all.filter((p) => p.spec.nodeName).length;
      const waiting = all.filter((p) => readReasons(p.metadata.annotations) !== undefined).length;
      return all.length === 30 && bound === 16 && waiting === 14 ? true : undefined;
    });
    const leader = await c.leader();
    await c.masters.kill(leader.id);
    await c.addNode({ name: 'n3', capacity: { cpu: '2' } });
    await c.addNode({ name: 'n4', capacity: { cpu: '2' } });
    const pods = await allRunning(c, 'burst', 30, 60_000);
    // 4 nodes x 2 cpu / 250m = 32 slots: no node holds more than 8.
    for (const count of Object.values(perNode(pods))) expect(count).toBeLessThanOrEqual(8);
    await new Promise((r) => setTimeout(r, 500));
    watching = false;
    current?.close();
    await collector;
    for (const p of pods) expect([...(bindings.get(p.metadata.uid ?? '') ?? [])]).toEqual([p.spec.nodeName]);
    const next = await c.leader();
    const counters = schedulerCounters(next);
    expect(counters.assumed).toBe(0);
    expect(counters.podsOnNodes).toBe(30);
  });

  it('leaves pods of other schedulers and pods with nodeName alone, and explains them', async () => {
    c = await startHollowCluster({ nodes: nodes(2) });
    await c.api.create({ ...bare('custom'), spec: { ...podSpec(), schedulerName: 'my-scheduler' } });
    await c.api.create({ ...bare('direct'), spec: { ...podSpec(), nodeName: 'n2' } });
    await waitFor('direct running', async () =>
      (await getPod(c!, 'direct')).status?.phase === 'Running' ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect((await getPod(c, 'custom')).spec.nodeName).toBeUndefined();
    const custom = await cox(c, 'why', 'custom');
    expect(custom.stdout).toContain(
      'It asks for scheduler "my-scheduler"; default-scheduler leaves it alone.',
    );
    const direct = await cox(c, 'why', 'pod/direct');
    expect(direct.stdout).toBe(
      'Pod default/direct: Running on node n2\nQoS class: BestEffort; requests: none\nspec.nodeName was set to n2 when it was created: no scheduler placed it.\n',
    );
  });
});

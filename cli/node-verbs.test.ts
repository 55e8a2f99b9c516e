import { describe, expect, it } from 'vitest';
import type { ObjectApi } from '../actors/api.js';
import type { ApiObject, OwnerReference, Pod } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { UsageError } from './errors.js';
import { classifyForDrain, parseTimeout, runCordon, runDrain, runUncordon } from './node-verbs.js';

function capture() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: (s: string) => {
        out.stdout += s;
      },
      stderr: (s: string) => {
        out.stderr += s;
      },
    },
  };
}

const owner = (kind: string): OwnerReference => ({
  apiVersion: 'apps/v1',
  kind,
  name: 'x',
  uid: 'u',
  controller: true,
});

function pod(
  name: string,
  extra: { owner?: string; emptyDir?: boolean; phase?: string; node?: string } = {},
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      ...(extra.owner ? { ownerReferences: [owner(extra.owner)] } : {}),
    },
    spec: {
      nodeName: extra.node ?? 'n1',
      containers: [{ name: 'c', image: 'busybox' }],
      ...(extra.emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
    },
    ...(extra.phase ? { status: { phase: extra.phase as 'Succeeded' } } : {}),
  };
}

async function withNode(): Promise<ObjectApi> {
  const { objects } = createMemoryApi();
  await objects.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } } as ApiObject);
  return objects;
}

describe('parseTimeout', () => {
  it('reads durations, 0 for none, and refuses the rest', () => {
    expect(parseTimeout(undefined)).toBe(0);
    expect(parseTimeout('0s')).toBe(0);
    expect(parseTimeout('90s')).toBe(90_000);
    expect(parseTimeout('1h30m')).toBe(5_400_000);
    expect(() => parseTimeout('soon')).toThrow(UsageError);
    expect(() => parseTimeout('')).toThrow('--timeout: "" is not a duration like 30s, 5m or 1h');
  });
});

describe('classifyForDrain', () => {
  const pods = [
    pod('web', { owner: 'ReplicaSet' }),
    pod('agent', { owner: 'DaemonSet' }),
    pod('solo'),
    pod('cache', { owner: 'ReplicaSet', emptyDir: true }),
    pod('finished', { phase: 'Succeeded' }),
  ];

  it("refuses DaemonSet pods, pods without a controller and emptyDir data, as kubectl's messages say", () => {
    const plan = classifyForDrain(pods, { ignoreDaemonsets: false, force: false, deleteEmptydirData: false });
    expect(plan.errors).toEqual([
      'cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent',
      'cannot delete Pods that declare no controller (use --force to override): default/solo',
      'cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache',
    ]);
  });

  it('with the flags: DaemonSet pods stay, the others go with warnings; finished pods always go', () => {
    const plan = classifyForDrain(pods, { ignoreDaemonsets: true, force: true, deleteEmptydirData: true });
    expect(plan.errors).toEqual([]);
    expect(plan.evict.map((p) => p.metadata.name)).toEqual(['web', 'solo', 'cache', 'finished']);
    expect(plan.warnings).toEqual([
      'ignoring DaemonSet-managed Pods: default/agent',
      'deleting Pods that declare no controller: default/solo',
      'deleting Pods with local storage: default/cache',
    ]);
  });
});

describe('cordon, uncordon, drain (memory API)', () => {
  it('cordon and uncordon set and clear spec.unschedulable, saying when nothing changes', async () => {
    const api = await withNode();
    const { out, io } = capture();
    expect(await runCordon(api, 'n1', io)).toBe(0);
    expect(
      ((await api.get({ kind: 'Node', name: 'n1' })) as { spec?: { unschedulable?: boolean } }).spec
        ?.unschedulable,
    ).toBe(true);
    expect(await runCordon(api, 'n1', io)).toBe(0);
    expect(await runUncordon(api, 'n1', io)).toBe(0);
    expect(await runUncordon(api, 'n1', io)).toBe(0);
    expect(
      ((await api.get({ kind: 'Node', name: 'n1' })) as { spec?: { unschedulable?: boolean } }).spec
        ?.unschedulable,
    ).toBeUndefined();
    expect(out.stdout).toBe(
      'node/n1 cordoned\nnode/n1 already cordoned\nnode/n1 uncordoned\nnode/n1 already uncordoned\n',
    );
    expect(await runCordon(api, 'nope', io)).toBe(1);
    expect(out.stderr).toBe('error: node/nope: not found\n');
  });

  it('drain evicts the pods of the node only and reports each; a refused drain evicts nothing', async () => {
    const api = await withNode();
    await api.create(pod('web', { owner: 'ReplicaSet' }));
    await api.create(pod('solo'));
    await api.create(pod('elsewhere', { owner: 'ReplicaSet', node: 'n2' }));
    const refused = capture();
    const opts = { ignoreDaemonsets: false, force: false, deleteEmptydirData: false, timeoutMs: 0 };
    expect(await runDrain(api, 'n1', opts, refused.io, Date.now)).toBe(1);
    expect(refused.out.stderr).toBe(
      'error: unable to drain node "n1": cannot delete Pods that declare no controller (use --force to override): default/solo\n',
    );
    expect((await api.list('Pod')).items).toHaveLength(3);

    const ok = capture();
    expect(await runDrain(api, 'n1', { ...opts, force: true }, ok.io, Date.now)).toBe(0);
    expect(ok.out.stdout).toBe(
      [
        'node/n1 already cordoned',
        'evicting pod default/solo',
        'evicting pod default/web',
        'pod/solo evicted',
        'pod/web evicted',
        'node/n1 drained',
        '',
      ].join('\n'),
    );
    expect(ok.out.stderr).toBe('Warning: deleting Pods that declare no controller: default/solo\n');
    expect((await api.list('Pod')).items.map((p) => p.metadata.name)).toEqual(['elsewhere']);
  });

  it('drain gives up after --timeout when a pod does not go, naming it', async () => {
    const api = await withNode();
    // A finalizer keeps the pod (marked) in the memory API.
    await api.create({
      ...pod('stuck', { owner: 'ReplicaSet' }),
      metadata: { ...pod('stuck', { owner: 'ReplicaSet' }).metadata, finalizers: ['x/y'] },
    });
    const { out, io } = capture();
    const opts = { ignoreDaemonsets: false, force: false, deleteEmptydirData: false, timeoutMs: 300 };
    expect(await runDrain(api, 'n1', opts, io, Date.now)).toBe(1);
    expect(out.stderr).toBe(
      'error: unable to drain node "n1": timed out after 0.3s waiting for pods to be deleted: default/stuck\n',
    );
  });
});

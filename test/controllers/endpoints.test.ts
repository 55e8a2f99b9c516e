/**
 * The Endpoints and EndpointSlice controller on in-process masters with hollow nodes: pods
 * get IPs from the hollow runtime once Running; pods on a node without an agent get their
 * status written by hand (as an agent would), to show not-ready and terminating pods.
 */

import { afterEach, describe, expect, it } from 'vitest';
import type { ObjectApi } from '../../actors/api.js';
import type { ApiObject, Endpoints, Pod, Service } from '../../core/index.js';
import type { EndpointSlice } from '../../core/objects.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const service = (name: string, spec: Partial<Service['spec']> = {}): Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', labels: { team: 'web' } },
  spec: {
    selector: { app: name },
    ports: [
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'metrics', port: 9090, targetPort: 9090 },
    ],
    ...spec,
  },
});

const pod = (
  name: string,
  app: string,
  node: string,
  httpPort?: number,
  extra: Partial<Pod['spec']> = {},
): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app } },
  spec: {
    nodeName: node,
    containers: [
      {
        name: 'app',
        image: 'coxswain/busybox',
        ...(httpPort !== undefined ? { ports: [{ name: 'http', containerPort: httpPort }] } : {}),
      },
    ],
    ...extra,
  },
});

const endpointsOf = async (api: ObjectApi, name: string) =>
  (await api.get({ kind: 'Endpoints', namespace: 'default', name })) as Endpoints;

const slicesOf = async (api: ObjectApi, name: string) =>
  listOf<EndpointSlice>(api, 'EndpointSlice', 'default', `kubernetes.io/service-name=${name}`);

/** `name@ip` of every address, ready and not, per subset as `port,port`. */
function summary(ep: Endpoints): Record<string, { ready: string[]; notReady: string[] }> {
  const out: Record<string, { ready: string[]; notReady: string[] }> = {};
  for (const s of ep.subsets ?? []) {
    const key = (s.ports ?? []).map((p) => `${p.name}:${p.port}`).join(',');
    out[key] = {
      ready: (s.addresses ?? []).map((a) => a.targetRef?.name ?? '?').sort(),
      notReady: (s.notReadyAddresses ?? []).map((a) => a.targetRef?.name ?? '?').sort(),
    };
  }
  return out;
}

/** Writes a pod's status as its node's agent would. */
async function report(api: ObjectApi, name: string, ip: string, ready: boolean): Promise<void> {
  const p = (await api.get({ kind: 'Pod', namespace: 'default', name })) as Pod;
  await api.updateStatus({
    ...p,
    status: {
      ...p.status,
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  } as ApiObject);
}

describe('Endpoints and EndpointSlices (in-process masters, hollow nodes)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('are empty with no pods, gain and drop pods as they come and go, per port mapping (items 31, 37)', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    const api = c.api;
    await api.create(service('web'));
    const empty = await waitFor('empty Endpoints', async () =>
      endpointsOf(api, 'web').catch(() => undefined),
    );
    expect(empty.subsets).toBeUndefined();
    expect(empty.metadata.labels).toMatchObject({ team: 'web' });
    const placeholder = await waitFor('placeholder slice', async () => {
      const s = await slicesOf(api, 'web');
      return s.length === 1 ? s[0] : undefined;
    });
    expect(placeholder.endpoints).toEqual([]);
    expect(placeholder.metadata.labels?.['endpointslice.kubernetes.io/managed-by']).toBe(
      'endpointslice-controller.k8s.io',
    );

    // Two pods name their http port differently: two subsets, two slices.
    await api.create(pod('a', 'web', 'n1', 8080));
    await api.create(pod('b', 'web', 'n1', 8081));
    await api.create(pod('c', 'web', 'n1', 8080));
    await api.create(pod('other', 'db', 'n1', 8080));
    await waitFor('three pods in endpoints', async () => {
      const s = summary(await endpointsOf(api, 'web'));
      return JSON.stringify(s) ===
        JSON.stringify({
          'http:8080,metrics:9090': { ready: ['a', 'c'], notReady: [] },
          'http:8081,metrics:9090': { ready: ['b'], notReady: [] },
        })
        ? s
        : undefined;
    });
    const ep = await endpointsOf(api, 'web');
    const pa = (await api.get({ kind: 'Pod', namespace: 'default', name: 'a' })) as Pod;
    const addressA = ep.subsets?.flatMap((s) => s.addresses ?? []).find((x) => x.targetRef?.name === 'a');
    expect(addressA).toEqual({
      ip: pa.status?.podIP,
      nodeName: 'n1',
      targetRef: { kind: 'Pod', namespace: 'default', name: 'a', uid: pa.metadata.uid },
    });
    const slices = await waitFor('two slices', async () => {
      const s = await slicesOf(api, 'web');
      return s.length === 2 && s.every((x) => x.endpoints.length > 0) ? s : undefined;
    });
    expect(slices.map((s) => s.endpoints.length).sort()).toEqual([1, 2]);
    for (const s of slices) {
      expect(s.addressType).toBe('IPv4');
      expect(s.metadata.ownerReferences?.[0]).toMatchObject({
        kind: 'Service',
        name: 'web',
        controller: true,
      });
      for (const e of s.endpoints)
        expect(e.conditions).toEqual({ ready: true, serving: true, terminating: false });
    }

    // A deleted pod is dropped; when all are gone the endpoints are empty again.
    await api.delete({ kind: 'Pod', namespace: 'default', name: 'b' }, { gracePeriodSeconds: 0 });
    await waitFor('b dropped', async () => {
      const s = summary(await endpointsOf(api, 'web'));
      return Object.keys(s).length === 1 && s['http:8080,metrics:9090']?.ready.join() === 'a,c'
        ? true
        : undefined;
    });
    await waitFor('one slice left', async () =>
      (await slicesOf(api, 'web')).length === 1 ? true : undefined,
    );
    for (const name of ['a', 'c']) {
      await api.delete({ kind: 'Pod', namespace: 'default', name }, { gracePeriodSeconds: 0 });
    }
    await waitFor('empty again', async () =>
      (await endpointsOf(api, 'web')).subsets === undefined ? true : undefined,
    );
    await waitFor('placeholder again', async () => {
      const s = await slicesOf(api, 'web');
      return s.length === 1 && s[0].endpoints.length === 0 ? true : undefined;
    });
  });

  it('lists not-ready pods apart, leaves terminating pods out of Endpoints but marks them in slices, and gives hostnames', async () => {
    c = await startHollowCluster();
    const api = c.api;
    await api.create(
      service('db', { clusterIP: 'None', ports: [{ name: 'sql', port: 5432, targetPort: 5432 }] }),
    );
    // Bound to a node without an agent: their status is written by hand, as an agent would.
    await api.create(pod('db-0', 'db', 'ghost', undefined, { hostname: 'db-0', subdomain: 'db' }));
    await api.create({
      ...pod('db-1', 'db', 'ghost'),
      metadata: {
        name: 'db-1',
        namespace: 'default',
        labels: { app: 'db' },
        finalizers: ['example.com/hold'],
      },
    });
    await report(api, 'db-0', '10.9.0.1', true);
    await report(api, 'db-1', '10.9.0.2', false);
    const ep = await waitFor('ready and not ready', async () => {
      const e = await endpointsOf(api, 'db');
      return e.subsets?.[0]?.addresses?.length === 1 && e.subsets[0].notReadyAddresses?.length === 1
        ? e
        : undefined;
    });
    expect(ep.subsets?.[0].addresses?.[0]).toMatchObject({
      ip: '10.9.0.1',
      hostname: 'db-0',
      nodeName: 'ghost',
    });
    expect(ep.subsets?.[0].notReadyAddresses?.[0]).toMatchObject({ ip: '10.9.0.2' });
    expect(ep.metadata.labels?.['service.kubernetes.io/headless']).toBe('');

    // Terminating (held by a finalizer): out of Endpoints, in the slice as terminating.
    await report(api, 'db-1', '10.9.0.2', true);
    await api.delete({ kind: 'Pod', namespace: 'default', name: 'db-1' });
    await waitFor('terminating pod out of Endpoints', async () => {
      const e = await endpointsOf(api, 'db');
      const all = (e.subsets ?? []).flatMap((s) => [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])]);
      return all.length === 1 && all[0].ip === '10.9.0.1' ? true : undefined;
    });
    const slice = await waitFor('terminating in the slice', async () => {
      const s = await slicesOf(api, 'db');
      const e = s[0]?.endpoints.find((x) => x.addresses[0] === '10.9.0.2');
      return e?.conditions?.terminating === true ? e : undefined;
    });
    expect(slice.conditions).toEqual({ ready: false, serving: true, terminating: true });
  });

  it('splits more than 100 endpoints over slices', async () => {
    c = await startHollowCluster();
    const api = c.api;
    await api.create(service('big', { ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
    const count = 105;
    for (let i = 0; i < count; i += 1) await api.create(pod(`big-${i}`, 'big', 'ghost'));
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        report(api, `big-${i}`, `10.8.${Math.floor(i / 250)}.${(i % 250) + 1}`, true),
      ),
    );
    const slices = await waitFor(
      '2 slices',
      async () => {
        const s = await slicesOf(api, 'big');
        const total = s.reduce((n, x) => n + x.endpoints.length, 0);
        // The empty placeholder goes after the new slices are written.
        return total === count && s.every((x) => x.endpoints.length > 0) ? s : undefined;
      },
      30_000,
    );
    expect(slices.map((s) => s.endpoints.length).sort((a, b) => a - b)).toEqual([5, 100]);
    expect((await endpointsOf(api, 'big')).subsets?.[0].addresses).toHaveLength(count);
  });

  it("leaves a selector-less service's Endpoints to the user, and removes a deleted service's", async () => {
    c = await startHollowCluster();
    const api = c.api;
    await api.create(service('manual', { selector: undefined }));
    const written = await api.create({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'manual', namespace: 'default' },
      subsets: [{ addresses: [{ ip: '127.0.0.5' }], ports: [{ port: 80 }] }],
    } as ApiObject);
    await api.create(service('gone'));
    await waitFor('Endpoints of gone', async () => endpointsOf(api, 'gone').catch(() => undefined));
    await waitFor('slice of gone', async () =>
      (await slicesOf(api, 'gone')).length === 1 ? true : undefined,
    );
    await api.delete({ kind: 'Service', namespace: 'default', name: 'gone' });
    await waitFor('Endpoints of gone deleted', async () =>
      (await endpointsOf(api, 'gone').catch(() => undefined)) === undefined ? true : undefined,
    );
    await waitFor('slices of gone deleted', async () =>
      (await slicesOf(api, 'gone')).length === 0 ? true : undefined,
    );
    // By now the controller has long seen `manual`: its Endpoints are untouched, no slice made.
    const manual = await endpointsOf(api, 'manual');
    expect(manual.subsets).toEqual([
      { addresses: [{ ip: '127.0.0.5' }], ports: [{ port: 80, protocol: 'TCP' }] },
    ]);
    expect(manual.metadata.resourceVersion).toBe(written.metadata.resourceVersion);
    expect(await slicesOf(api, 'manual')).toEqual([]);
  });
});

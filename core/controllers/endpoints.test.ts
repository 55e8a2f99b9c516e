import { describe, expect, it } from 'vitest';
import type { ContainerPort, EndpointSlice, Pod, Service } from '../objects.js';
import {
  desiredEndpoints,
  endpointSubsets,
  managedByLabel,
  managedByValue,
  planEndpointSlices,
  serviceNameLabel,
  skipMirrorLabel,
} from './endpoints.js';

const svc = (spec: Partial<Service['spec']> = {}, name = 'web'): Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'ns', uid: 'svc-uid', labels: { team: 'a' } },
  spec: {
    selector: { app: 'web' },
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    ...spec,
  },
});

const pod = (
  name: string,
  ip: string | undefined,
  opts: {
    ready?: boolean;
    labels?: Record<string, string>;
    ports?: ContainerPort[];
    phase?: 'Running' | 'Succeeded' | 'Pending';
    deleting?: boolean;
    hostname?: string;
    subdomain?: string;
  } = {},
): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace: 'ns',
    uid: `uid-${name}`,
    labels: opts.labels ?? { app: 'web' },
    ...(opts.deleting ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}),
  },
  spec: {
    nodeName: 'n1',
    containers: [{ name: 'c', image: 'busybox', ...(opts.ports ? { ports: opts.ports } : {}) }],
    ...(opts.hostname ? { hostname: opts.hostname } : {}),
    ...(opts.subdomain ? { subdomain: opts.subdomain } : {}),
  },
  status: {
    phase: opts.phase ?? 'Running',
    ...(ip ? { podIP: ip } : {}),
    conditions: [{ type: 'Ready', status: (opts.ready ?? true) ? 'True' : 'False' }],
  },
});

const ref = (name: string) => ({ kind: 'Pod', namespace: 'ns', name, uid: `uid-${name}` });

describe('endpointSubsets', () => {
  it('lists ready pods in addresses and not-ready ones in notReadyAddresses, sorted by IP', () => {
    const subsets = endpointSubsets(svc(), [
      pod('b', '10.0.0.2'),
      pod('a', '10.0.0.1'),
      pod('slow', '10.0.0.3', { ready: false }),
      pod('noip', undefined),
      pod('done', '10.0.0.4', { phase: 'Succeeded' }),
      pod('going', '10.0.0.5', { deleting: true }),
      pod('other', '10.0.0.6', { labels: { app: 'db' } }),
    ]);
    expect(subsets).toEqual([
      {
        addresses: [
          { ip: '10.0.0.1', nodeName: 'n1', targetRef: ref('a') },
          { ip: '10.0.0.2', nodeName: 'n1', targetRef: ref('b') },
        ],
        notReadyAddresses: [{ ip: '10.0.0.3', nodeName: 'n1', targetRef: ref('slow') }],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    ]);
  });

  it('resolves a named targetPort per pod: different resolutions land in different subsets', () => {
    const s = svc({
      ports: [
        { name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' },
        { name: 'metrics', port: 9090, targetPort: 9090, protocol: 'TCP' },
      ],
    });
    const subsets = endpointSubsets(s, [
      pod('a', '10.0.0.1', { ports: [{ name: 'web', containerPort: 8080, protocol: 'TCP' }] }),
      pod('b', '10.0.0.2', { ports: [{ name: 'web', containerPort: 8081, protocol: 'TCP' }] }),
      pod('c', '10.0.0.3', { ports: [{ name: 'web', containerPort: 8080, protocol: 'TCP' }] }),
      // No port named `web`: it serves only the numeric port.
      pod('d', '10.0.0.4'),
    ]);
    expect(subsets.map((x) => [x.addresses?.map((a) => a.targetRef?.name), x.ports])).toEqual([
      [
        ['a', 'c'],
        [
          { name: 'http', port: 8080, protocol: 'TCP' },
          { name: 'metrics', port: 9090, protocol: 'TCP' },
        ],
      ],
      [
        ['b'],
        [
          { name: 'http', port: 8081, protocol: 'TCP' },
          { name: 'metrics', port: 9090, protocol: 'TCP' },
        ],
      ],
      [['d'], [{ name: 'metrics', port: 9090, protocol: 'TCP' }]],
    ]);
  });

  it('gives the hostname of pods whose subdomain is the service', () => {
    const s = svc({ clusterIP: 'None' }, 'db');
    const subsets = endpointSubsets({ ...s, spec: { ...s.spec, selector: { app: 'web' } } }, [
      pod('db-0', '10.0.0.1', { hostname: 'db-0', subdomain: 'db' }),
      pod('x', '10.0.0.2', { hostname: 'x', subdomain: 'other' }),
    ]);
    expect(subsets[0].addresses?.map((a) => a.hostname)).toEqual(['db-0', undefined]);
  });
});

describe('desiredEndpoints', () => {
  it('is empty with no pods, carries the service labels, and is undefined once current', () => {
    const s = svc({ clusterIP: 'None' });
    const ep = desiredEndpoints(s, [], undefined);
    expect(ep).toEqual({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: {
        name: 'web',
        namespace: 'ns',
        labels: { team: 'a', 'service.kubernetes.io/headless': '', [skipMirrorLabel]: 'true' },
      },
    });
    const current = { ...ep!, metadata: { ...ep!.metadata, resourceVersion: '7' } };
    expect(desiredEndpoints(s, [], current)).toBeUndefined();
    const next = desiredEndpoints(s, [pod('a', '10.0.0.1')], current);
    expect(next?.metadata.resourceVersion).toBe('7');
    expect(next?.subsets?.[0].addresses?.[0].ip).toBe('10.0.0.1');
  });
});

describe('planEndpointSlices', () => {
  const created = (plan: ReturnType<typeof planEndpointSlices>, names: string[]): EndpointSlice[] =>
    plan.create.map((s, i) => ({
      ...s,
      metadata: { ...s.metadata, name: names[i], resourceVersion: '1' },
    }));

  it('makes one labelled, owned slice with conditions, then keeps it in step', () => {
    const s = svc();
    const plan = planEndpointSlices(s, [pod('a', '10.0.0.1'), pod('b', '10.0.0.2', { deleting: true })], []);
    expect(plan.update).toEqual([]);
    expect(plan.delete).toEqual([]);
    expect(plan.create).toHaveLength(1);
    const slice = plan.create[0];
    expect(slice.metadata.labels).toEqual({
      team: 'a',
      [serviceNameLabel]: 'web',
      [managedByLabel]: managedByValue,
    });
    expect(slice.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'Service',
      uid: 'svc-uid',
      controller: true,
    });
    expect(slice.addressType).toBe('IPv4');
    expect(slice.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(slice.endpoints).toEqual([
      {
        addresses: ['10.0.0.1'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'n1',
        targetRef: ref('a'),
      },
      {
        addresses: ['10.0.0.2'],
        conditions: { ready: false, serving: true, terminating: true },
        nodeName: 'n1',
        targetRef: ref('b'),
      },
    ]);
    const existing = created(plan, ['web-abc']);
    expect(
      planEndpointSlices(s, [pod('a', '10.0.0.1'), pod('b', '10.0.0.2', { deleting: true })], existing),
    ).toEqual({
      create: [],
      update: [],
      delete: [],
    });
    const next = planEndpointSlices(s, [pod('a', '10.0.0.1', { ready: false })], existing);
    expect(next.create).toEqual([]);
    expect(next.update).toHaveLength(1);
    expect(next.update[0].metadata.name).toBe('web-abc');
    expect(next.update[0].endpoints).toEqual([
      {
        addresses: ['10.0.0.1'],
        conditions: { ready: false, serving: false, terminating: false },
        nodeName: 'n1',
        targetRef: ref('a'),
      },
    ]);
  });

  it('puts at most 100 endpoints in a slice and fills slices with room before making new ones', () => {
    const s = svc();
    const pods = Array.from({ length: 250 }, (_, i) =>
      pod(`p${i}`, `10.0.${Math.floor(i / 200)}.${i % 200}`),
    );
    const plan = planEndpointSlices(s, pods, []);
    expect(plan.create.map((x) => x.endpoints.length)).toEqual([100, 100, 50]);
    const existing = created(plan, ['web-a', 'web-b', 'web-c']);
    const more = [...pods, pod('extra', '10.0.9.9')];
    const next = planEndpointSlices(s, more, existing);
    expect(next.create).toEqual([]);
    expect(next.update.map((x) => [x.metadata.name, x.endpoints.length])).toEqual([['web-c', 51]]);
  });

  it('keeps one empty placeholder slice when no pod backs the service, and deletes the rest', () => {
    const s = svc();
    const first = planEndpointSlices(s, [], []);
    expect(first.create).toHaveLength(1);
    expect(first.create[0].endpoints).toEqual([]);
    expect(first.create[0].ports).toBeUndefined();
    const existing = created(planEndpointSlices(s, [pod('a', '10.0.0.1')], []), ['web-a']);
    const emptied = planEndpointSlices(s, [], existing);
    expect(emptied.create).toEqual([]);
    expect(emptied.delete).toEqual([]);
    expect(emptied.update[0]).toMatchObject({ metadata: { name: 'web-a' }, endpoints: [] });
    expect(emptied.update[0].ports).toBeUndefined();
  });

  it("deletes slices of another service's uid (a recreated service) and slices of dropped port mappings", () => {
    const s = svc();
    const old = created(
      planEndpointSlices({ ...s, metadata: { ...s.metadata, uid: 'old' } }, [pod('a', '10.0.0.1')], []),
      ['web-old'],
    );
    const plan = planEndpointSlices(s, [pod('a', '10.0.0.1')], old);
    expect(plan.delete.map((x) => x.metadata.name)).toEqual(['web-old']);
    expect(plan.create).toHaveLength(1);
  });

  it('leaves a service without a selector alone', () => {
    expect(endpointSubsets(svc({ selector: undefined }), [pod('a', '10.0.0.1')])).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { ObjectApi } from '../actors/api.js';
import type { Pod, Service } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import {
  parseAddresses,
  parseForwardTarget,
  parsePortSpec,
  pickPod,
  podPortMappings,
  resolveForward,
  servicePortMappings,
} from './port-forward.js';

const pod = (name: string, o: { phase?: string; ready?: boolean; node?: string; readySince?: string } = {}) =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      nodeName: o.node ?? 'n1',
      containers: [
        { name: 'app', image: 'x', ports: [{ name: 'web', containerPort: 8080 }] },
        { name: 'side', image: 'x', ports: [{ name: 'metrics', containerPort: 9090 }] },
      ],
    },
    status: {
      phase: o.phase ?? 'Running',
      conditions: [
        {
          type: 'Ready',
          status: o.ready === false ? 'False' : 'True',
          lastTransitionTime: o.readySince ?? '2026-01-01T00:00:10Z',
        },
      ],
    },
  }) as unknown as Pod;

const service = (ports: Service['spec']['ports']) =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports } }) as unknown as Service;

describe('port specs', () => {
  it('reads LOCAL:REMOTE, :REMOTE (any local port) and PORT (the same both sides)', () => {
    expect(parsePortSpec('8080:80')).toMatchObject({ local: 8080, remote: 80 });
    expect(parsePortSpec(':80')).toMatchObject({ local: 0, remote: 80 });
    expect(parsePortSpec('0:80')).toMatchObject({ local: 0, remote: 80 });
    expect(parsePortSpec('80')).toMatchObject({ local: undefined, remote: 80 });
    expect(parsePortSpec('8080:http')).toMatchObject({ local: 8080, remote: 'http' });
    expect(parsePortSpec(':http')).toMatchObject({ local: 0, remote: 'http' });
  });

  it('refuses ports out of range, extra colons, and a name without a local port', () => {
    for (const bad of ['0', '65536', '1:2:3', 'abc:80', '8080:', '', 'http', '-1', '80:-x'])
      expect(() => parsePortSpec(bad), bad).toThrow(/not \[LOCAL:\]REMOTE/);
  });

  it('reads --address as IPs or localhost, without duplicates', () => {
    expect(parseAddresses('localhost,127.0.0.1,::1')).toEqual(['127.0.0.1', '::1']);
    expect(() => parseAddresses('example.com')).toThrow(/--address: "example.com": not an IP address/);
  });
});

describe('targets', () => {
  it('takes pod/NAME, a bare NAME, and the short kinds of services and workloads', () => {
    expect(parseForwardTarget('web')).toEqual({ kind: 'Pod', name: 'web' });
    expect(parseForwardTarget('pod/web')).toEqual({ kind: 'Pod', name: 'web' });
    expect(parseForwardTarget('svc/web')).toEqual({ kind: 'Service', name: 'web' });
    expect(parseForwardTarget('deploy/web')).toEqual({ kind: 'Deployment', name: 'web' });
    expect(parseForwardTarget('rs/web')).toEqual({ kind: 'ReplicaSet', name: 'web' });
    expect(parseForwardTarget('statefulsets/web')).toEqual({ kind: 'StatefulSet', name: 'web' });
  });

  it('refuses kinds that have no pod to forward to', () => {
    expect(() => parseForwardTarget('configmap/web')).toThrow(/TYPE one of pod, svc, deploy, rs, sts/);
    expect(() => parseForwardTarget('svc/')).toThrow(/TYPE\/NAME/);
  });
});

describe('port mappings', () => {
  it('maps pod ports by number or by container port name', () => {
    const specs = ['9000:web', ':metrics', '8081'].map(parsePortSpec);
    expect(podPortMappings(pod('a'), specs)).toEqual([
      { local: 9000, remote: 8080 },
      { local: 0, remote: 9090 },
      { local: 8081, remote: 8081 },
    ]);
    expect(() => podPortMappings(pod('a'), [parsePortSpec(':nope')])).toThrow(
      'pod/a: has no container port named "nope"',
    );
  });

  it('maps a service port to its targetPort: a number, a container port name, or the port itself', () => {
    const svc = service([
      { name: 'http', port: 80, targetPort: 'web' },
      { name: 'admin', port: 81, targetPort: 9090 },
      { name: 'plain', port: 82 },
    ]);
    expect(servicePortMappings(svc, pod('a'), ['80', ':81', '7000:plain'].map(parsePortSpec))).toEqual([
      { local: 80, remote: 8080 },
      { local: 0, remote: 9090 },
      { local: 7000, remote: 82 },
    ]);
    expect(() => servicePortMappings(svc, pod('a'), [parsePortSpec('8080')])).toThrow(
      'Service web does not have a service port 8080',
    );
    const named = service([{ name: 'http', port: 80, targetPort: 'grpc' }]);
    expect(() => servicePortMappings(named, pod('a'), [parsePortSpec('80')])).toThrow(
      'Service web: targetPort "grpc" is not a container port name of pod/a',
    );
  });
});

describe('choosing the pod', () => {
  it('takes a running pod, ready before not ready, ready longest first', () => {
    const pending = pod('pending', { phase: 'Pending' });
    const unready = pod('unready', { ready: false });
    const young = pod('young', { readySince: '2026-01-01T00:05:00Z' });
    const old = pod('old', { readySince: '2026-01-01T00:01:00Z' });
    expect(pickPod([pending, unready, young, old])?.metadata.name).toBe('old');
    expect(pickPod([pending, unready])?.metadata.name).toBe('unready');
    expect(pickPod([pending])).toBeUndefined();
  });
});

describe('resolving the target against the API', () => {
  const template = {
    metadata: { labels: { app: 'web' } },
    spec: { containers: [{ name: 'app', image: 'x', ports: [{ name: 'web', containerPort: 8080 }] }] },
  };

  async function podIn(objects: ObjectApi, name: string, phase: string, labels = { app: 'web' }) {
    const created = (await objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default', labels },
      spec: { nodeName: 'n1', ...template.spec },
    })) as unknown as Pod;
    await objects.updateStatus({ ...created, status: { phase } });
  }

  const opts = { namespace: 'default', podRunningTimeoutMs: 60_000, nowMs: Date.now };

  it('takes the running pod of a deployment, a pod only when it runs', async () => {
    const { objects } = createMemoryApi();
    await objects.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'default' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
    });
    await podIn(objects, 'web-a', 'Pending');
    await podIn(objects, 'web-b', 'Running');
    await podIn(objects, 'other', 'Running', { app: 'other' });
    const r = await resolveForward(objects, parseForwardTarget('deploy/web'), [parsePortSpec(':web')], opts);
    expect(r.pod.metadata.name).toBe('web-b');
    expect(r.mappings).toEqual([{ local: 0, remote: 8080 }]);
    await expect(
      resolveForward(objects, parseForwardTarget('pod/web-a'), [parsePortSpec('80')], opts),
    ).rejects.toThrow('pod/web-a: unable to forward port because pod is not running. Current status=Pending');
  });

  it('waits for a running pod of a service up to the timeout, then fails naming the flag', async () => {
    const { objects } = createMemoryApi();
    await objects.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'default' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'web' }] },
    });
    await expect(
      resolveForward(objects, parseForwardTarget('svc/web'), [parsePortSpec('80')], {
        ...opts,
        podRunningTimeoutMs: 1,
      }),
    ).rejects.toThrow('service/web: no running pod within 0.001s (--pod-running-timeout)');
    await podIn(objects, 'late', 'Pending');
    let settled = false;
    const resolved = resolveForward(
      objects,
      parseForwardTarget('svc/web'),
      [parsePortSpec('80')],
      opts,
    ).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 600)); // past the first poll, which found no running pod
    expect(settled).toBe(false);
    const late = (await objects.get({ kind: 'Pod', namespace: 'default', name: 'late' })) as unknown as Pod;
    await objects.updateStatus({ ...late, status: { phase: 'Running' } });
    expect(await resolved).toMatchObject({
      pod: { metadata: { name: 'late' } },
      mappings: [{ local: 80, remote: 8080 }],
    });
  });
});

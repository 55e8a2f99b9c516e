import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { ObjectApi } from '../actors/api.js';
import { BatchQueue } from '../actors/batch-queue.js';
import type { Pod, Service } from '../core/index.js';
import { waitFor } from '../test/fixtures/e2e.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import type { ClientStream } from './client.js';
import type { StreamApi } from './pod-verbs.js';
import {
  parseAddresses,
  parseForwardTarget,
  parsePortSpec,
  pickPod,
  podPortMappings,
  portForwardCliLimits,
  resolveForward,
  runPortForward,
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

/** A stream op that connects at once and echoes what it gets, ending after the client's eof. */
function echoStreams(opened: Record<string, unknown>[]): StreamApi {
  return {
    stream: async (_op, args) => {
      opened.push(args);
      const q = new BatchQueue<Record<string, unknown>>(
        { highWaterBatches: 1_000, pause: () => {}, resume: () => {} },
        'echo',
      );
      q.push([{ connected: true }]);
      return {
        next: async () => (await q.next())?.[0],
        input: (body) => {
          if (typeof body.data === 'string') q.push([{ data: body.data }]);
          if (body.eof === true) {
            q.push([{ eof: true }]);
            q.end();
          }
        },
        close: () => q.end(),
      } satisfies ClientStream;
    },
  };
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let got = '';
    socket.on('connect', () => socket.end(text));
    socket.on('data', (d) => {
      got += d;
    });
    socket.on('end', () => {
      socket.end();
      resolve(got);
    });
    socket.on('error', reject);
  });
}

describe('runPortForward in process', () => {
  it('listens, prints kubectl’s lines, relays each connection, and stops with 0 on interrupt', async () => {
    const { objects } = createMemoryApi();
    const created = (await objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'app', image: 'x', ports: [{ name: 'web', containerPort: 8080 }] }],
      },
    })) as unknown as Pod;
    await objects.updateStatus({ ...created, status: { phase: 'Running' } });
    const opened: Record<string, unknown>[] = [];
    let out = '';
    let err = '';
    let interrupt: () => void = () => {};
    const done = runPortForward(
      Object.assign(objects, echoStreams(opened)),
      'pod/web',
      [':web'],
      {},
      {
        stdout: (s) => {
          out += s;
        },
        stderr: (s) => {
          err += s;
        },
        nowMs: Date.now,
        onInterrupt: (cb) => {
          interrupt = cb;
          return () => {};
        },
      },
    );
    const port = await waitFor('Forwarding line', async () => {
      const m = /^Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n$/.exec(out);
      return m ? Number(m[1]) : undefined;
    });
    expect(await Promise.all([roundTrip(port, 'one'), roundTrip(port, 'two')])).toEqual(['one', 'two']);
    expect(out.split(`Handling connection for ${port}\n`)).toHaveLength(3);
    expect(opened[0]).toMatchObject({ namespace: 'default', pod: 'web', port: 8080 });
    interrupt();
    expect(await done).toBe(0);
    expect(err).toBe('');
  });

  it('ends with 1 and one line when the pod is deleted', async () => {
    const { objects } = createMemoryApi();
    const created = (await objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default' },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'x' }] },
    })) as unknown as Pod;
    await objects.updateStatus({ ...created, status: { phase: 'Running' } });
    let out = '';
    let err = '';
    const done = runPortForward(
      Object.assign(objects, echoStreams([])),
      'web',
      [':80'],
      {},
      {
        stdout: (s) => {
          out += s;
        },
        stderr: (s) => {
          err += s;
        },
        nowMs: Date.now,
      },
    );
    await waitFor('Forwarding line', async () => (out.includes('Forwarding from') ? true : undefined));
    await objects.delete({ kind: 'Pod', namespace: 'default', name: 'web' });
    expect(await done).toBe(1);
    expect(err).toBe('error: lost connection to pod/web: it was deleted\n');
  });

  it('refuses connections beyond portForwardConnectionsMax with one line, and keeps the others', async () => {
    const { objects } = createMemoryApi();
    const created = (await objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default' },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'x' }] },
    })) as unknown as Pod;
    await objects.updateStatus({ ...created, status: { phase: 'Running' } });
    const max = portForwardCliLimits.portForwardConnectionsMax;
    portForwardCliLimits.portForwardConnectionsMax = 1;
    let out = '';
    let err = '';
    let interrupt: () => void = () => {};
    const done = runPortForward(
      Object.assign(objects, echoStreams([])),
      'web',
      [':80'],
      {},
      {
        stdout: (s) => {
          out += s;
        },
        stderr: (s) => {
          err += s;
        },
        nowMs: Date.now,
        onInterrupt: (cb) => {
          interrupt = cb;
          return () => {};
        },
      },
    );
    try {
      const port = await waitFor('Forwarding line', async () => {
        const m = /^Forwarding from 127\.0\.0\.1:(\d+) -> 80\n$/.exec(out);
        return m ? Number(m[1]) : undefined;
      });
      // The first connection stays open (no half-close yet); the second is refused.
      const first = connect({ host: '127.0.0.1', port });
      await waitFor('first handled', async () => (out.includes('Handling connection') ? true : undefined));
      const second = await new Promise<string>((resolve) => {
        const s2 = connect({ host: '127.0.0.1', port });
        let got = '';
        s2.on('data', (d) => {
          got += d;
        });
        s2.on('close', () => resolve(got));
        s2.on('error', () => {});
      });
      expect(second).toBe('');
      expect(err).toBe(
        `error: port-forward: 1 connections open (portForwardConnectionsMax); refusing a connection for ${port}\n`,
      );
      first.write('still here');
      const echoed = await new Promise<string>((resolve) => first.once('data', (d) => resolve(String(d))));
      expect(echoed).toBe('still here');
      first.destroy();
      interrupt();
      expect(await done).toBe(0);
    } finally {
      portForwardCliLimits.portForwardConnectionsMax = max;
    }
  });
});

/** ClusterIPs and NodePorts allocated by the masters' leader admission (issue 6, item 1). */

import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../actors/api.js';
import type { Service } from '../../core/index.js';
import { coxAgainst } from '../fixtures/cox-in-process.js';
import { waitFor } from '../fixtures/e2e.js';
import { type HollowCluster, listOf, startHollowCluster } from '../fixtures/hollow-cluster.js';

const svc = (name: string, spec: Partial<Service['spec']> = {}): Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default' },
  spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }], ...spec },
});

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('service address and node port allocation (in-process masters)', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('gives every concurrently created service its own ClusterIP and NodePort, whichever master gets it', async () => {
    c = await startHollowCluster();
    const masters = [...c.masters.nodes.values()];
    const created = (await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        masters[i % masters.length].api.create(
          svc(`s${i}`, { type: i % 2 === 0 ? 'NodePort' : 'ClusterIP' }),
        ),
      ),
    )) as Service[];
    const ips = created.map((s) => s.spec.clusterIP);
    expect(new Set(ips).size).toBe(40);
    for (const ip of ips) expect(ip).toMatch(/^10\.96\.\d+\.\d+$/);
    const nodePorts = created
      .flatMap((s) => (s.spec.ports ?? []).map((p) => p.nodePort))
      .filter((p) => p !== undefined);
    expect(nodePorts).toHaveLength(20);
    expect(new Set(nodePorts).size).toBe(20);
    for (const p of nodePorts) expect(p).toBeGreaterThanOrEqual(30000);
  });

  it('refuses a taken address or port by name, frees them on delete, keeps them across updates', async () => {
    c = await startHollowCluster();
    const a = (await c.api.create(
      svc('a', { type: 'NodePort', clusterIP: '10.96.7.7', ports: [{ port: 80, nodePort: 31000 }] }),
    )) as Service;
    expect(a.spec.clusterIP).toBe('10.96.7.7');
    const ipTaken = await rejection(c.api.create(svc('b', { clusterIP: '10.96.7.7' })));
    expect([ipTaken.code, ipTaken.message, ipTaken.details.fieldPath]).toEqual([
      'Invalid',
      'services "b": spec.clusterIP: provided IP 10.96.7.7 is already allocated',
      'spec.clusterIP',
    ]);
    const portTaken = await rejection(
      c.api.create(svc('b', { type: 'NodePort', ports: [{ port: 80, nodePort: 31000 }] })),
    );
    expect(portTaken.message).toBe(
      'services "b": spec.ports[0].nodePort: provided port 31000 is already allocated',
    );
    const outside = await rejection(c.api.create(svc('b', { clusterIP: '192.168.1.1' })));
    expect(outside.message).toMatch(/not in the valid range; the range of valid IPs is 10.96.0.0\/16/);
    // An update that leaves the address and port out keeps them (kubectl apply of a manifest without them).
    const updated = (await c.api.update({
      ...svc('a', { type: 'NodePort' }),
      metadata: { ...a.metadata },
    })) as Service;
    expect(updated.spec.clusterIP).toBe('10.96.7.7');
    expect(updated.spec.ports?.[0].nodePort).toBe(31000);
    // ClusterIP → the node port is released (another service can take it), the address kept.
    const toClusterIp = (await c.api.patch(
      { kind: 'Service', namespace: 'default', name: 'a' },
      { spec: { type: 'ClusterIP', ports: [{ port: 80, targetPort: 8080 }] } },
    )) as Service;
    expect(toClusterIp.spec.ports?.[0].nodePort).toBeUndefined();
    expect(toClusterIp.spec.clusterIP).toBe('10.96.7.7');
    await c.api.create(svc('b', { type: 'NodePort', ports: [{ port: 80, nodePort: 31000 }] }));
    await c.api.delete({ kind: 'Service', namespace: 'default', name: 'a' });
    const again = (await c.api.create(svc('c', { clusterIP: '10.96.7.7' }))) as Service;
    expect(again.spec.clusterIP).toBe('10.96.7.7');
  });

  it('leaves headless services without an address and shows the allocation in a dry run without taking it', async () => {
    c = await startHollowCluster();
    const headless = (await c.api.create(svc('h', { clusterIP: 'None' }))) as Service;
    expect(headless.spec.clusterIP).toBe('None');
    const dry = (await c.api.create(svc('d', { clusterIP: '10.96.9.9' }), { dryRun: true })) as Service;
    expect(dry.spec.clusterIP).toBe('10.96.9.9');
    const real = (await c.api.create(svc('e', { clusterIP: '10.96.9.9' }))) as Service;
    expect(real.spec.clusterIP).toBe('10.96.9.9');
    expect((await listOf<Service>(c.api, 'Service')).map((s) => s.metadata.name).sort()).toEqual(['e', 'h']);
  });
});

describe('cox expose and cox get svc,endpoints', () => {
  let c: HollowCluster | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it('exposes a deployment on a NodePort with its selector and lists the service and its endpoints', async () => {
    c = await startHollowCluster({ nodes: [{ name: 'n1' }] });
    const cox = (...args: string[]) => coxAgainst(c!.api, ...args);
    await c.api.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            nodeName: 'n1',
            containers: [
              { name: 'web', image: 'coxswain/busybox', ports: [{ name: 'http', containerPort: 8080 }] },
            ],
          },
        },
      },
    });
    const r = await cox(
      'expose',
      'deploy/web',
      '--port',
      '80',
      '--target-port',
      'http',
      '--type',
      'NodePort',
    );
    expect(r).toMatchObject({ code: 0, stdout: 'service/web exposed\n' });
    const s = (await c.api.get({ kind: 'Service', namespace: 'default', name: 'web' })) as Service;
    expect(s.spec.selector).toEqual({ app: 'web' });
    expect(s.spec.ports?.[0]).toMatchObject({ port: 80, targetPort: 'http', protocol: 'TCP' });
    expect(s.spec.ports?.[0].nodePort).toBeGreaterThanOrEqual(30000);
    await waitFor('2 endpoints', async () => {
      const out = await cox('get', 'endpoints', 'web');
      return /web\s+\S+:8080,\S+:8080\s/.test(out.stdout) ? true : undefined;
    });
    const listed = await cox('get', 'svc,ep', '-o', 'wide');
    expect(listed.stdout).toMatch(
      new RegExp(
        `service/web\\s+NodePort\\s+${s.spec.clusterIP?.replaceAll('.', '\\.')}\\s+<none>\\s+80:${s.spec.ports?.[0].nodePort}/TCP\\s+\\S+\\s+app=web`,
      ),
    );
    expect(listed.stdout).toMatch(/endpoints\/web\s+\S+:8080,\S+:8080/);
    const again = await cox('expose', 'deploy/web', '--port', '80');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    const noPort = await cox('expose', 'deploy/nope', '--port', '80');
    expect(noPort.code).toBe(1);
    expect(noPort.stderr.trim().split('\n')).toHaveLength(1);
  });
});

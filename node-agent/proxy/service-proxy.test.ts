/**
 * The proxy actor over the in-memory API and the in-memory rules adapter: list+watch with
 * resume and relist, coalesced applies, retries of failed applies, the metrics, a clean stop.
 */

import { connect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../actors/api.js';
import { type ActorSystem, startActorSystem, stopActorSystem } from '../../actors/runtime.js';
import type { ApiObject } from '../../core/objects.js';
import { createMemoryApi, type MemoryObjectApi } from '../../test/fixtures/memory-api.js';
import { MemoryProxyRules } from './memory-rules.js';
import { ProxyConfigError, proxyConfig, ServiceProxy } from './service-proxy.js';

const running: { proxy: ServiceProxy; system: ActorSystem }[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.proxy.stop();
    await stopActorSystem(r.system);
  }
});

function service(name: string, ip: string, port = 80): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'prod' },
    spec: { clusterIP: ip, ports: [{ port, targetPort: 8080 }] },
  } as ApiObject;
}

function endpoints(name: string, ips: string[]): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'prod' },
    subsets: ips.length > 0 ? [{ addresses: ips.map((ip) => ({ ip })), ports: [{ port: 8080 }] }] : [],
  } as ApiObject;
}

async function setEndpoints(api: MemoryObjectApi, name: string, ips: string[]): Promise<number> {
  const current = await api.get({ kind: 'Endpoints', namespace: 'prod', name }).catch(() => undefined);
  const obj = endpoints(name, ips);
  const written = current
    ? await api.update({
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: current.metadata.resourceVersion },
      } as ApiObject)
    : await api.create(obj);
  return Number(written.metadata.resourceVersion);
}

function start(api: MemoryObjectApi, rules: MemoryProxyRules, options = {}): ServiceProxy {
  const system = startActorSystem({ log: () => {} });
  const proxy = new ServiceProxy({
    node: 'n1',
    nodeIp: '127.0.1.1',
    api,
    system,
    options: {
      rules,
      backendCidrs: ['172.17.0.0/16'],
      syncCoalesceMs: 10,
      applyRetryBackoffMsMin: 10,
      ...options,
    },
    log: () => {},
  });
  running.push({ proxy, system });
  return proxy;
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the service proxy', () => {
  it('applies what exists at start, then every change, measuring change to applied', async () => {
    const { objects: api } = createMemoryApi();
    await api.create(service('web', '10.96.0.20'));
    await setEndpoints(api, 'web', ['172.17.0.2', '172.17.0.3']);
    const rules = new MemoryProxyRules();
    const proxy = start(api, rules);
    expect(proxy.servicesIn('prod')).toBeUndefined(); // not listed yet
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    expect(rules.backendsOf('prod/web:80/TCP')).toEqual(['172.17.0.2:8080', '172.17.0.3:8080']);
    expect(proxy.servicesIn('prod')?.map((s) => s.metadata.name)).toEqual(['web']);
    const rv = await setEndpoints(api, 'web', ['172.17.0.3']);
    await proxy.waitApplied('Endpoints', rv);
    expect(rules.backendsOf('prod/web:80/TCP')).toEqual(['172.17.0.3:8080']);
    const s = proxy.status();
    expect(s).toMatchObject({
      mode: 'memory',
      ready: true,
      services: 1,
      endpoints: 1,
      servers: 1,
      backends: 1,
      fullSyncs: 1,
      failures: 0,
    });
    expect(s.appliedResourceVersions.Endpoints).toBeGreaterThanOrEqual(rv);
    expect(s.syncLatencyMs.count).toBeGreaterThanOrEqual(2);
    expect(s.syncLatencyMs.p99Ms).toBeGreaterThanOrEqual(s.syncLatencyMs.p50Ms);
    await api.delete({ kind: 'Service', namespace: 'prod', name: 'web' });
    await until('service gone from the rules', () => rules.plan?.servers.length === 0);
  });

  it('coalesces a burst of changes into few applies, ending at the last state', async () => {
    const { objects: api } = createMemoryApi();
    await api.create(service('web', '10.96.0.20'));
    const rules = new MemoryProxyRules();
    const proxy = start(api, rules);
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    rules.delayMs = 100;
    const before = rules.applies;
    let rv = 0;
    for (let i = 1; i <= 50; i += 1) rv = await setEndpoints(api, 'web', [`172.17.0.${i}`]);
    await proxy.waitApplied('Endpoints', rv);
    expect(rules.backendsOf('prod/web:80/TCP')).toEqual(['172.17.0.50:8080']);
    expect(rules.applies - before).toBeLessThanOrEqual(5);
  });

  it('retries a failed apply, rewriting everything, and counts the failure', async () => {
    const { objects: api } = createMemoryApi();
    await api.create(service('web', '10.96.0.20'));
    const rules = new MemoryProxyRules();
    const proxy = start(api, rules);
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    rules.failNext = new Error('iptables-restore: line 3 failed');
    const full = rules.fullApplies;
    const rv = await setEndpoints(api, 'web', ['172.17.0.9']);
    await proxy.waitApplied('Endpoints', rv);
    expect(rules.backendsOf('prod/web:80/TCP')).toEqual(['172.17.0.9:8080']);
    expect(proxy.status().failures).toBe(1);
    expect(rules.fullApplies).toBe(full + 1);
  });

  it('resumes a watch that broke without relisting, and relists when the resume is too old', async () => {
    const { objects: api } = createMemoryApi({ historyEventsMax: 5 });
    await api.create(service('web', '10.96.0.20'));
    await api.create(service('gone', '10.96.0.21'));
    const rules = new MemoryProxyRules();
    const proxy = start(api, rules);
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    api.failWatches(new ApiError('Unavailable', 'master restarting'));
    let rv = await setEndpoints(api, 'web', ['172.17.0.4']);
    await proxy.waitApplied('Endpoints', rv);
    expect(rules.backendsOf('prod/web:80/TCP')).toEqual(['172.17.0.4:8080']);
    // Break the watches again, and let more change than the history keeps while they are down.
    api.failWatches(new ApiError('Unavailable', 'master restarting'));
    await api.delete({ kind: 'Service', namespace: 'prod', name: 'gone' });
    for (let i = 0; i < 8; i += 1) rv = await setEndpoints(api, 'web', [`172.17.1.${i}`]);
    await proxy.waitApplied('Endpoints', rv);
    await until(
      'the service deleted while the watch was down is gone',
      () => rules.plan?.servers.length === 1,
    );
    expect(rules.plan?.servers.map((s) => s.id)).toEqual(['prod/web:80/TCP']);
    expect(rules.backendsOf('prod/web:80/TCP')).toEqual(['172.17.1.7:8080']);
  });

  it('checks the data path periodically', async () => {
    const { objects: api } = createMemoryApi();
    await api.create(service('web', '10.96.0.20'));
    const rules = new MemoryProxyRules();
    const proxy = start(api, rules, { fullResyncMs: 30 });
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    await until('three periodic checks', () => rules.verifies >= 3);
    expect(rules.fullApplies).toBe(1);
  });

  it('stops cleanly: the rules are removed and nothing is applied after', async () => {
    const { objects: api } = createMemoryApi();
    await api.create(service('web', '10.96.0.20'));
    const rules = new MemoryProxyRules();
    const proxy = start(api, rules);
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    await proxy.stop();
    expect(rules.closed).toBe(true);
    const applies = rules.applies;
    await setEndpoints(api, 'web', ['172.17.0.4']);
    await new Promise((r) => setTimeout(r, 100));
    expect(rules.applies).toBe(applies);
  });

  it('without privileges, refuses a service CIDR it cannot make local, and serves one in 127.0.0.0/8', async () => {
    // Host commands run as nobody: `ip route replace` is refused, as for an agent not run as root.
    const commandPrefix = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    const { objects: api } = createMemoryApi();
    const system = startActorSystem({ log: () => {} });
    const refused = new ServiceProxy({
      node: 'n1',
      nodeIp: '127.0.1.1',
      api,
      system,
      options: { mode: 'userspace', serviceCidr: '10.250.0.0/16', clusterDns: '10.250.0.10', commandPrefix },
    });
    await expect(refused.start()).rejects.toThrow(
      /cannot make the service CIDR 10\.250\.0\.0\/16 local .*Operation not permitted.*run the agent as root, or use a --service-cidr inside 127\.0\.0\.0\/8/,
    );
    await stopActorSystem(system);

    const backend = createServer((s) => s.end('hello\n'));
    await new Promise<void>((r) => backend.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const port = (backend.address() as { port: number }).port;
    await api.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'prod' },
      spec: { clusterIP: '127.96.0.20', ports: [{ port: 8080, targetPort: port }] },
    } as ApiObject);
    await api.create({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'web', namespace: 'prod' },
      subsets: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ port }] }],
    } as ApiObject);
    const system2 = startActorSystem({ log: () => {} });
    const proxy = new ServiceProxy({
      node: 'n1',
      nodeIp: '127.0.1.1',
      api,
      system: system2,
      options: { mode: 'userspace', serviceCidr: '127.96.0.0/16', clusterDns: '127.96.0.10', commandPrefix },
    });
    running.push({ proxy, system: system2 });
    await proxy.start();
    await proxy.waitApplied('Endpoints', 0);
    expect(proxy.status().mode).toBe('userspace');
    const answer = await new Promise<string>((resolve) => {
      let out = '';
      const s = connect({ host: '127.96.0.20', port: 8080 });
      s.on('data', (d) => {
        out += d;
      });
      s.on('close', () => resolve(out));
      s.on('error', (e) => resolve(String(e)));
    });
    expect(answer).toBe('hello\n');
    backend.close();
  });

  it('checks its flags and names them', () => {
    expect(() => proxyConfig({ mode: 'fast' as 'auto' })).toThrow(
      '--proxy-mode: "fast" is not one of kernel, userspace, auto, none',
    );
    expect(() => proxyConfig({ serviceCidr: '10.96.0.1/16' })).toThrow(ProxyConfigError);
    expect(() => proxyConfig({ clusterDns: '10.97.0.10' })).toThrow(
      '--cluster-dns "10.97.0.10": must be an address inside the service CIDR 10.96.0.0/16',
    );
    expect(() => proxyConfig({ nodePortRange: '32767-30000' })).toThrow('--node-port-range "32767-30000"');
    expect(() => proxyConfig({ clusterDomain: 'bad_domain' })).toThrow('--cluster-domain');
    expect(proxyConfig({})).toMatchObject({
      mode: 'auto',
      serviceCidr: { text: '10.96.0.0/16' },
      nodePortRange: { min: 30000, max: 32767 },
      clusterDns: '10.96.0.10',
      clusterDomain: 'cluster.local',
    });
  });
});

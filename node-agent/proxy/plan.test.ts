import { describe, expect, it } from 'vitest';
import type { Endpoints, Service } from '../../core/objects.js';
import { cidrContains, parseCidr, parseIPv4 } from './ipv4.js';
import { affinitySecondsDefault, type PlanInput, planProxy } from './plan.js';

function svc(name: string, spec: Partial<Service['spec']> & Record<string, unknown>, ns = 'prod'): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: spec as Service['spec'],
  };
}

function eps(name: string, subsets: Endpoints['subsets'], ns = 'prod'): Endpoints {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns }, subsets };
}

function input(services: Service[], endpoints: Endpoints[], over: Partial<PlanInput> = {}): PlanInput {
  return {
    services,
    endpoints: (ns, name) => endpoints.find((e) => e.metadata.namespace === ns && e.metadata.name === name),
    serviceCidr: parseCidr('10.96.0.0/16'),
    nodePortRange: { min: 30000, max: 32767 },
    backendCidrs: [parseCidr('172.17.0.0/16'), parseCidr('127.0.0.0/8')],
    clusterDns: '10.96.0.10',
    ...over,
  };
}

describe('ipv4', () => {
  it('parses addresses and blocks, and says what is wrong', () => {
    expect(parseIPv4('10.96.0.1')).toBe(0x0a600001);
    expect(parseIPv4('10.96.0')).toBeUndefined();
    expect(parseIPv4('10.96.0.256')).toBeUndefined();
    expect(parseIPv4('10.096.0.1')).toBeUndefined();
    expect(parseCidr('10.96.0.0/16').text).toBe('10.96.0.0/16');
    expect(() => parseCidr('10.96.0.1/16', '--service-cidr')).toThrow(
      '--service-cidr "10.96.0.1/16": host bits set (did you mean 10.96.0.0/16?)',
    );
    expect(() => parseCidr('10.96.0.0/33')).toThrow('not an IPv4 block');
    expect(cidrContains(parseCidr('10.96.0.0/16'), '10.96.255.255')).toBe(true);
    expect(cidrContains(parseCidr('10.96.0.0/16'), '10.97.0.0')).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), '8.8.8.8')).toBe(true);
  });
});

describe('planProxy', () => {
  it('makes one virtual server per port with the ready backends of the same-named endpoints port', () => {
    const { plan, problems } = planProxy(
      input(
        [
          svc('web', {
            clusterIP: '10.96.0.20',
            ports: [
              { name: 'http', port: 80, targetPort: 'http' },
              { name: 'dns', port: 53, protocol: 'UDP' },
            ],
          }),
        ],
        [
          eps('web', [
            {
              addresses: [{ ip: '172.17.0.3' }, { ip: '172.17.0.2' }],
              notReadyAddresses: [{ ip: '172.17.0.9' }],
              ports: [
                { name: 'http', port: 8080, protocol: 'TCP' },
                { name: 'dns', port: 5353, protocol: 'UDP' },
              ],
            },
            {
              addresses: [{ ip: '172.17.0.2' }, { ip: '172.17.0.4' }],
              ports: [{ name: 'http', port: 8080 }],
            },
          ]),
        ],
      ),
    );
    expect(problems).toEqual([]);
    expect(plan.servers.map((s) => s.id)).toEqual(['prod/web:dns/UDP', 'prod/web:http/TCP']);
    const http = plan.servers[1];
    expect(http).toMatchObject({ clusterIP: '10.96.0.20', port: 80, protocol: 'TCP', portName: 'http' });
    // Sorted by address, duplicates once, never the not-ready one.
    expect(http.backends).toEqual([
      { ip: '172.17.0.2', port: 8080 },
      { ip: '172.17.0.3', port: 8080 },
      { ip: '172.17.0.4', port: 8080 },
    ]);
    expect(plan.servers[0].backends).toEqual([
      { ip: '172.17.0.2', port: 5353 },
      { ip: '172.17.0.3', port: 5353 },
    ]);
  });

  it('matches an unnamed port to an unnamed endpoints port; no endpoints is an empty server', () => {
    const { plan } = planProxy(
      input(
        [
          svc('a', { clusterIP: '10.96.0.21', ports: [{ port: 80 }] }),
          svc('b', { clusterIP: '10.96.0.22', ports: [{ port: 81 }] }),
        ],
        [eps('a', [{ addresses: [{ ip: '172.17.0.5' }], ports: [{ port: 9000 }] }])],
      ),
    );
    expect(plan.servers.map((s) => [s.id, s.backends])).toEqual([
      ['prod/a:80/TCP', [{ ip: '172.17.0.5', port: 9000 }]],
      ['prod/b:81/TCP', []],
    ]);
  });

  it('gives headless and unallocated services no virtual server', () => {
    const { plan, problems } = planProxy(
      input(
        [svc('h', { clusterIP: 'None', ports: [{ port: 80 }] }), svc('u', { ports: [{ port: 80 }] })],
        [eps('h', [{ addresses: [{ ip: '172.17.0.5' }], ports: [{ port: 80 }] }])],
      ),
    );
    expect(plan.servers).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('opens node ports of NodePort services within the range only', () => {
    const { plan, problems } = planProxy(
      input(
        [
          svc('np', {
            type: 'NodePort',
            clusterIP: '10.96.0.30',
            ports: [
              { name: 'a', port: 80, nodePort: 30080 },
              { name: 'b', port: 81, nodePort: 22 },
            ],
          }),
          svc('cip', { clusterIP: '10.96.0.31', ports: [{ port: 80, nodePort: 30081 }] }),
        ],
        [],
      ),
    );
    expect(plan.servers.map((s) => [s.id, s.nodePort])).toEqual([
      ['prod/cip:80/TCP', undefined],
      ['prod/np:a/TCP', 30080],
      ['prod/np:b/TCP', undefined],
    ]);
    expect(problems).toEqual([
      'service prod/np: spec.ports[1].nodePort 22 is outside the node port range 30000-32767; not opened',
    ]);
  });

  it('takes ClientIP affinity with its timeout (default 3 hours, at most a day)', () => {
    const { plan } = planProxy(
      input(
        [
          svc('a', { clusterIP: '10.96.0.40', ports: [{ port: 80 }], sessionAffinity: 'ClientIP' }),
          svc('b', {
            clusterIP: '10.96.0.41',
            ports: [{ port: 80 }],
            sessionAffinity: 'ClientIP',
            sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
          }),
          svc('c', {
            clusterIP: '10.96.0.42',
            ports: [{ port: 80 }],
            sessionAffinity: 'ClientIP',
            sessionAffinityConfig: { clientIP: { timeoutSeconds: 999_999 } },
          }),
          svc('d', { clusterIP: '10.96.0.43', ports: [{ port: 80 }], sessionAffinity: 'None' }),
        ],
        [],
      ),
    );
    expect(plan.servers.map((s) => s.affinitySeconds)).toEqual([
      affinitySecondsDefault,
      60,
      86_400,
      undefined,
    ]);
  });

  it('leaves out what could send traffic off this machine, saying why', () => {
    const { plan, problems } = planProxy(
      input(
        [
          svc('outside', { clusterIP: '8.8.8.8', ports: [{ port: 53 }] }),
          svc('remote', { clusterIP: '10.96.0.50', ports: [{ port: 80 }] }),
          svc('dns', {
            clusterIP: '10.96.0.10',
            ports: [
              { port: 53, protocol: 'UDP' },
              { name: 'x', port: 80 },
            ],
          }),
        ],
        [eps('remote', [{ addresses: [{ ip: '192.0.2.7' }, { ip: '172.17.0.8' }], ports: [{ port: 80 }] }])],
      ),
    );
    expect(problems).toEqual([
      'service prod/dns: port 53 of the cluster DNS IP 10.96.0.10 is the cluster DNS; not proxied',
      'service prod/outside: spec.clusterIP 8.8.8.8 is outside the service CIDR 10.96.0.0/16; not proxied',
      'service prod/remote: endpoint 192.0.2.7:80 is not on a local pod network (172.17.0.0/16, 127.0.0.0/8); left out',
    ]);
    expect(plan.servers.map((s) => [s.id, s.backends.map((b) => b.ip)])).toEqual([
      ['prod/dns:x/TCP', []],
      ['prod/remote:80/TCP', ['172.17.0.8']],
    ]);
    for (const s of plan.servers) expect(cidrContains(parseCidr('10.96.0.0/16'), s.clusterIP)).toBe(true);
  });

  it('serves a contested virtual IP or node port once, the first service by id keeping it', () => {
    const { plan, problems } = planProxy(
      input(
        [
          svc('b', { type: 'NodePort', clusterIP: '10.96.0.60', ports: [{ port: 80, nodePort: 30100 }] }),
          svc('a', { type: 'NodePort', clusterIP: '10.96.0.60', ports: [{ port: 80, nodePort: 30101 }] }),
          svc('c', { type: 'NodePort', clusterIP: '10.96.0.61', ports: [{ port: 80, nodePort: 30101 }] }),
        ],
        [],
      ),
    );
    expect(plan.servers.map((s) => [s.id, s.nodePort])).toEqual([
      ['prod/a:80/TCP', 30101],
      ['prod/c:80/TCP', undefined],
    ]);
    expect(problems).toEqual([
      'service prod/b: 10.96.0.60:80/TCP is already served for prod/a:80/TCP; not proxied',
      'service prod/c: node port 30101/TCP is already opened for prod/a:80/TCP; not opened',
    ]);
  });

  it('is deterministic whatever the order of services and subsets', () => {
    const services = Array.from({ length: 20 }, (_, i) =>
      svc(`s${i}`, { clusterIP: `10.96.1.${i}`, ports: [{ port: 80 }] }),
    );
    const endpoints = services.map((s, i) =>
      eps(s.metadata.name ?? '', [
        { addresses: [{ ip: `172.17.1.${i}` }], ports: [{ port: 80 }] },
        { addresses: [{ ip: `172.17.2.${i}` }], ports: [{ port: 80 }] },
      ]),
    );
    const a = planProxy(input(services, endpoints));
    const b = planProxy(
      input(
        [...services].reverse(),
        endpoints.map((e) => ({ ...e, subsets: [...(e.subsets ?? [])].reverse() })),
      ),
    );
    expect(b).toEqual(a);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoints, Service } from '../../core/objects.js';
import { resolveDns, tcpExchange, udpExchange } from '../../test/fixtures/dns-client.js';
import { decodeMessage, encodeMessage, queryMessage, Rcode, RecordType } from './dns-message.js';
import { DnsServer } from './dns-server.js';
import { type DnsView, DnsZone } from './dns-zone.js';
import { parseCidr } from './ipv4.js';

const many: Service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'many', namespace: 'prod' },
  spec: { clusterIP: 'None', ports: [{ name: 'x', port: 80 }] },
};
const manyEndpoints: Endpoints = {
  apiVersion: 'v1',
  kind: 'Endpoints',
  metadata: { name: 'many', namespace: 'prod' },
  subsets: [
    {
      addresses: Array.from({ length: 100 }, (_, i) => ({ ip: `172.17.1.${i}` })),
      ports: [{ name: 'x', port: 80 }],
    },
  ],
};
const view: DnsView = {
  version: 1,
  service: (ns, name) => (ns === 'prod' && name === 'many' ? many : undefined),
  endpoints: (ns, name) => (ns === 'prod' && name === 'many' ? manyEndpoints : undefined),
  hasNamespace: (ns) => ns === 'prod',
  services: () => [many],
};

const host = '127.0.0.1';
let server: DnsServer;
let ports: { udpPort: number; tcpPort: number };

beforeAll(async () => {
  server = new DnsServer({
    zone: new DnsZone({ domain: 'cluster.local', serviceCidr: parseCidr('10.96.0.0/16') }),
    view,
    host,
    port: 0,
  });
  ports = await server.start();
});

afterAll(async () => {
  await server.stop();
});

describe('the DNS server', () => {
  it('answers over UDP, truncating to 512 bytes with TC, and the whole answer over TCP', async () => {
    const udp = await resolveDns(host, ports.udpPort, 'many.prod.svc.cluster.local', RecordType.A);
    expect(udp.tc).toBe(true);
    expect(udp.answers.length).toBeGreaterThan(0);
    expect(udp.answers.length).toBeLessThan(100);
    const edns = await resolveDns(host, ports.udpPort, 'many.prod.svc.cluster.local', RecordType.A, {
      udpPayloadBytes: 4096,
    });
    expect(edns.tc).toBe(true);
    expect(edns.answers.length).toBeGreaterThan(udp.answers.length);
    const tcp = await resolveDns(host, ports.tcpPort, 'many.prod.svc.cluster.local', RecordType.A, {
      tcp: true,
    });
    expect(tcp.tc).toBe(false);
    expect(tcp.answers).toHaveLength(100);
    expect(server.stats.truncated).toBeGreaterThanOrEqual(2);
  });

  it('answers several queries on one TCP connection, in order', async () => {
    const names = ['many.prod.svc.cluster.local', 'nope.prod.svc.cluster.local', 'example.com'];
    const answers = await tcpExchange(
      host,
      ports.tcpPort,
      names.map((n, i) => encodeMessage(queryMessage(100 + i, n, RecordType.A))),
    );
    expect(answers.map((a) => decodeMessage(a)).map((m) => [m.id, m.rcode])).toEqual([
      [100, Rcode.NoError],
      [101, Rcode.NXDomain],
      [102, Rcode.Refused],
    ]);
  });

  it('answers FORMERR to a malformed query with a readable id, and nothing to noise', async () => {
    const q = encodeMessage(queryMessage(0x4242, 'many.prod.svc.cluster.local', RecordType.A));
    const bad = await udpExchange(host, ports.udpPort, q.slice(0, q.length - 3));
    expect(bad).toBeDefined();
    const m = decodeMessage(bad as Buffer);
    expect([m.id, m.qr, m.rcode]).toEqual([0x4242, true, Rcode.FormErr]);
    expect(await udpExchange(host, ports.udpPort, Uint8Array.from([1, 2, 3]), 300)).toBeUndefined();
    // The server still answers.
    expect((await resolveDns(host, ports.udpPort, 'prod.svc.cluster.local', RecordType.A)).rcode).toBe(
      Rcode.NoError,
    );
  });

  it('retries a taken address when told to, and serves once it is free', async () => {
    const second = new DnsServer({
      zone: new DnsZone({ domain: 'cluster.local', serviceCidr: parseCidr('10.96.0.0/16') }),
      view,
      host,
      port: ports.udpPort,
      bindRetryMs: 50,
    });
    await second.start();
    expect(second.listening).toBe(false);
    await server.stop();
    for (let i = 0; i < 100 && !second.listening; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect(second.listening).toBe(true);
    expect(
      (await resolveDns(host, ports.udpPort, 'many.prod.svc.cluster.local', RecordType.A)).answers.length,
    ).toBeGreaterThan(0);
    server = second;
  });
});

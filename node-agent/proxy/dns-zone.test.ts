import { describe, expect, it } from 'vitest';
import type { Endpoints, Service } from '../../core/objects.js';
import { type DnsMessage, type DnsRecord, queryMessage, Rcode, RecordType } from './dns-message.js';
import { type DnsView, DnsZone } from './dns-zone.js';
import { parseCidr } from './ipv4.js';

function svc(name: string, ns: string, spec: Partial<Service['spec']>): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: spec as Service['spec'],
  };
}

const services = [
  svc('web', 'prod', {
    clusterIP: '10.96.0.20',
    ports: [
      { name: 'http', port: 80 },
      { name: 'metrics', port: 9090 },
    ],
  }),
  svc('db', 'prod', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }),
  svc('empty', 'prod', { clusterIP: 'None', ports: [{ name: 'x', port: 1 }] }),
];
const endpoints: Endpoints[] = [
  {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'db', namespace: 'prod' },
    subsets: [
      {
        addresses: [
          { ip: '172.17.0.8', hostname: 'db-1' },
          { ip: '172.17.0.7', hostname: 'db-0' },
          { ip: '172.17.0.9' },
        ],
        notReadyAddresses: [{ ip: '172.17.0.10', hostname: 'db-2' }],
        ports: [{ name: 'pg', port: 5433 }],
      },
    ],
  },
];

const view: DnsView = {
  version: 1,
  service: (ns, name) => services.find((s) => s.metadata.namespace === ns && s.metadata.name === name),
  endpoints: (ns, name) => endpoints.find((e) => e.metadata.namespace === ns && e.metadata.name === name),
  hasNamespace: (ns) => services.some((s) => s.metadata.namespace === ns),
  services: () => services,
};

const zone = new DnsZone({ domain: 'cluster.local', serviceCidr: parseCidr('10.96.0.0/16') });

function ask(name: string, type: number = RecordType.A, transport: 'udp' | 'tcp' = 'tcp'): DnsMessage {
  const out = zone.respond(queryMessage(42, name, type), view, transport);
  if (out === undefined) throw new Error('no response');
  return out.response;
}

function data(records: DnsRecord[]): string[] {
  return records.map((r) => {
    switch (r.type) {
      case 'A':
        return `${r.name} A ${r.address}`;
      case 'SRV':
        return `${r.name} SRV ${r.priority} ${r.weight} ${r.port} ${r.target}`;
      case 'PTR':
        return `${r.name} PTR ${r.target}`;
      case 'SOA':
        return `${r.name} SOA`;
      default:
        return r.type;
    }
  });
}

describe('the cluster DNS zone', () => {
  it('answers a service name with its ClusterIP, authoritatively, echoing the question', () => {
    const r = ask('web.prod.svc.cluster.local');
    expect(r).toMatchObject({ id: 42, qr: true, aa: true, ra: false, rd: true, rcode: Rcode.NoError });
    expect(r.questions).toEqual([{ name: 'web.prod.svc.cluster.local', type: RecordType.A, class: 1 }]);
    expect(data(r.answers)).toEqual(['web.prod.svc.cluster.local A 10.96.0.20']);
    expect(r.answers[0]).toMatchObject({ ttl: 5 });
  });

  it('is case-insensitive, keeps the asker case, and accepts a trailing dot and the .svc short form', () => {
    expect(data(ask('WEB.Prod.svc.Cluster.Local.').answers)).toEqual([
      'WEB.Prod.svc.Cluster.Local. A 10.96.0.20',
    ]);
    expect(data(ask('web.prod.svc').answers)).toEqual(['web.prod.svc A 10.96.0.20']);
  });

  it('answers a headless service with one A per ready endpoint, and its hostnames', () => {
    expect(data(ask('db.prod.svc.cluster.local').answers)).toEqual([
      'db.prod.svc.cluster.local A 172.17.0.7',
      'db.prod.svc.cluster.local A 172.17.0.8',
      'db.prod.svc.cluster.local A 172.17.0.9',
    ]);
    expect(data(ask('db-1.db.prod.svc.cluster.local').answers)).toEqual([
      'db-1.db.prod.svc.cluster.local A 172.17.0.8',
    ]);
    expect(data(ask('172-17-0-9.db.prod.svc.cluster.local').answers)).toEqual([
      '172-17-0-9.db.prod.svc.cluster.local A 172.17.0.9',
    ]);
    // Not ready: not published.
    expect(ask('db-2.db.prod.svc.cluster.local').rcode).toBe(Rcode.NXDomain);
    // A ClusterIP service has no per-endpoint names.
    expect(ask('x.web.prod.svc.cluster.local').rcode).toBe(Rcode.NXDomain);
    // A headless service without ready endpoints exists, with no addresses.
    const none = ask('empty.prod.svc.cluster.local');
    expect(none.rcode).toBe(Rcode.NoError);
    expect(none.answers).toEqual([]);
  });

  it('serves SRV records for named ports (a ClusterIP service: the service; headless: each endpoint)', () => {
    const web = ask('_http._tcp.web.prod.svc.cluster.local', RecordType.SRV);
    expect(data(web.answers)).toEqual([
      '_http._tcp.web.prod.svc.cluster.local SRV 0 100 80 web.prod.svc.cluster.local',
    ]);
    expect(data(web.additional)).toEqual(['web.prod.svc.cluster.local A 10.96.0.20']);
    expect(data(ask('web.prod.svc.cluster.local', RecordType.SRV).answers)).toEqual([
      'web.prod.svc.cluster.local SRV 0 50 80 web.prod.svc.cluster.local',
      'web.prod.svc.cluster.local SRV 0 50 9090 web.prod.svc.cluster.local',
    ]);
    const db = ask('_pg._tcp.db.prod.svc.cluster.local', RecordType.SRV);
    expect(data(db.answers)).toEqual([
      '_pg._tcp.db.prod.svc.cluster.local SRV 0 33 5433 db-0.db.prod.svc.cluster.local',
      '_pg._tcp.db.prod.svc.cluster.local SRV 0 33 5433 db-1.db.prod.svc.cluster.local',
      '_pg._tcp.db.prod.svc.cluster.local SRV 0 33 5433 172-17-0-9.db.prod.svc.cluster.local',
    ]);
    expect(ask('_nope._tcp.web.prod.svc.cluster.local', RecordType.SRV).rcode).toBe(Rcode.NXDomain);
    expect(ask('_http._udp.web.prod.svc.cluster.local', RecordType.SRV).rcode).toBe(Rcode.NXDomain);
  });

  it('says NODATA for other types of existing names, NXDOMAIN for missing ones, both with the SOA', () => {
    for (const [name, type] of [
      ['web.prod.svc.cluster.local', RecordType.AAAA],
      ['prod.svc.cluster.local', RecordType.A],
      ['svc.cluster.local', RecordType.A],
      ['cluster.local', RecordType.A],
    ] as const) {
      const r = ask(name, type);
      expect([name, r.rcode, r.answers.length]).toEqual([name, Rcode.NoError, 0]);
      expect(data(r.authority)).toEqual(['cluster.local SOA']);
    }
    for (const name of [
      'nope.prod.svc.cluster.local',
      'web.other.svc.cluster.local',
      'other.svc.cluster.local',
      'web.prod.pod.cluster.local',
      'web.prod.svc.prod.svc.cluster.local', // a search-path expansion
      'a.b.c.d.e.svc.cluster.local',
    ]) {
      const r = ask(name);
      expect([name, r.rcode]).toEqual([name, Rcode.NXDomain]);
      expect(data(r.authority)).toEqual(['cluster.local SOA']);
    }
    expect(data(ask('cluster.local', RecordType.SOA).answers)).toEqual(['cluster.local SOA']);
  });

  it('refuses names outside the zone: nothing is forwarded', () => {
    for (const name of ['example.com', 'localhost', 'cluster.local.example.com', 'svc']) {
      const r = ask(name);
      expect([name, r.rcode, r.aa, r.answers.length]).toEqual([name, Rcode.Refused, false, 0]);
    }
    expect(ask('8.8.8.8.in-addr.arpa', RecordType.PTR).rcode).toBe(Rcode.Refused);
  });

  it('answers PTR for cluster IPs and headless endpoints', () => {
    expect(data(ask('20.0.96.10.in-addr.arpa', RecordType.PTR).answers)).toEqual([
      '20.0.96.10.in-addr.arpa PTR web.prod.svc.cluster.local',
    ]);
    expect(data(ask('8.0.17.172.in-addr.arpa', RecordType.PTR).answers)).toEqual([
      '8.0.17.172.in-addr.arpa PTR db-1.db.prod.svc.cluster.local',
    ]);
    expect(ask('99.0.96.10.in-addr.arpa', RecordType.PTR).rcode).toBe(Rcode.NXDomain);
  });

  it('echoes EDNS0 and sizes UDP answers by it; plain UDP is 512 bytes; other opcodes are NOTIMP', () => {
    const plain = zone.respond(queryMessage(1, 'db.prod.svc.cluster.local', RecordType.A), view, 'udp');
    expect(plain?.bytesMax).toBe(512);
    const edns = zone.respond(
      queryMessage(1, 'db.prod.svc.cluster.local', RecordType.A, { udpPayloadBytes: 4096 }),
      view,
      'udp',
    );
    expect(edns?.bytesMax).toBe(1232);
    expect(edns?.response.additional.at(-1)).toMatchObject({ type: 'OPT', udpPayloadBytes: 1232 });
    const tcp = zone.respond(queryMessage(1, 'db.prod.svc.cluster.local', RecordType.A), view, 'tcp');
    expect(tcp?.bytesMax).toBeUndefined();
    const notify = zone.respond(
      { ...queryMessage(1, 'cluster.local', RecordType.SOA), opcode: 4 },
      view,
      'udp',
    );
    expect(notify?.response.rcode).toBe(Rcode.NotImp);
    expect(zone.respond({ ...queryMessage(1, 'a', 1), qr: true }, view, 'udp')).toBeUndefined();
  });
});

/**
 * The cluster DNS zone, pure: a query and the agent's view of Services and Endpoints in, the
 * response out. It follows Kubernetes' DNS specification (as CoreDNS's kubernetes plugin serves
 * it), authoritative for `<domain>` (cluster.local) and the reverse zone of known addresses:
 *
 *   NAME.NS.svc.<domain>            A: the ClusterIP; headless: one A per ready endpoint
 *   HOST.NAME.NS.svc.<domain>       A: the headless endpoint with that hostname (or dashed IP)
 *   _PORT._PROTO.NAME.NS.svc.<domain>  SRV per named port (headless: per ready endpoint)
 *   NAME.NS.svc.<domain>  SRV       every named port
 *   NAME.NS.svc (and the forms above without <domain>)  the same, for clients without search paths
 *   d.c.b.a.in-addr.arpa            PTR for ClusterIPs and headless endpoints
 *
 * AAAA and other types of an existing name: NODATA (NOERROR, no answers, the SOA). A name in the
 * zone that does not exist: NXDOMAIN with the SOA. Anything else: REFUSED. Nothing is forwarded
 * upstream: no query ever leaves the machine.
 */

import type { Endpoints, Service } from '../../core/objects.js';
import {
  type DnsMessage,
  type DnsQuestion,
  type DnsRecord,
  Opcode,
  Rcode,
  RecordClass,
  RecordType,
  udpPayloadBytesDefault,
} from './dns-message.js';
import { type Cidr, cidrContains, parseIPv4 } from './ipv4.js';
import { isHeadless, virtualIP } from './plan.js';

/** What the zone reads: the agent's service catalog. */
export interface DnsView {
  /** Changes whenever any service or endpoints changed (indexes are rebuilt then). */
  readonly version: number;
  service(namespace: string, name: string): Service | undefined;
  endpoints(namespace: string, name: string): Endpoints | undefined;
  /** Whether any service exists in the namespace. */
  hasNamespace(namespace: string): boolean;
  services(): Iterable<Service>;
}

export interface ZoneConfig {
  /** `cluster.local`. */
  domain: string;
  serviceCidr: Cidr;
  /** TTL of answers and of negative answers (SOA minimum). Default 5, as CoreDNS. */
  ttlSeconds?: number;
  /** Largest UDP response we send to an EDNS0 client. Default 1,232 (DNS flag day 2020). */
  udpPayloadBytesMax?: number;
}

/** How a response is carried: UDP responses are truncated to the client's payload size. */
export type Transport = 'udp' | 'tcp';

interface Ready {
  ip: string;
  hostname?: string;
  /** name → port, protocol of the endpoints' ports. */
  ports: { name: string; port: number; protocol: string }[];
}

function readyAddresses(eps: Endpoints | undefined): Ready[] {
  const byIp = new Map<string, Ready>();
  for (const subset of eps?.subsets ?? []) {
    const ports = (subset.ports ?? []).map((p) => ({
      name: p.name ?? '',
      port: p.port,
      protocol: p.protocol ?? 'TCP',
    }));
    for (const a of subset.addresses ?? []) {
      const seen = byIp.get(a.ip);
      if (seen === undefined)
        byIp.set(a.ip, { ip: a.ip, ...(a.hostname ? { hostname: a.hostname } : {}), ports });
      else seen.ports.push(...ports);
    }
  }
  return [...byIp.values()].sort((a, b) => (parseIPv4(a.ip) ?? 0) - (parseIPv4(b.ip) ?? 0));
}

function dashed(ip: string): string {
  return ip.replace(/\./g, '-');
}

type Lookup =
  | { kind: 'answer'; records: DnsRecord[]; additional?: DnsRecord[] }
  | { kind: 'nodata' }
  | { kind: 'nxdomain' }
  | { kind: 'refused' };

/** A reply to `query` with `rcode` and no question or record (the caller adds what it has). */
export function emptyReply(query: DnsMessage, rcode: number): DnsMessage {
  return {
    id: query.id,
    qr: true,
    opcode: query.opcode,
    aa: false,
    tc: false,
    rd: query.rd,
    ra: false,
    rcode,
    questions: [],
    answers: [],
    authority: [],
    additional: [],
  };
}

export class DnsZone {
  private readonly domain: string;
  private readonly ttl: number;
  private readonly udpMax: number;
  private ptrVersion = -1;
  private ptr = new Map<string, string[]>();

  constructor(private readonly cfg: ZoneConfig) {
    this.domain = cfg.domain.toLowerCase().replace(/\.$/, '');
    this.ttl = cfg.ttlSeconds ?? 5;
    this.udpMax = cfg.udpPayloadBytesMax ?? 1232;
  }

  /**
   * The response to `query` and the byte budget it must fit over `transport` (undefined: no
   * limit). Returns undefined for messages that get no answer (responses, not queries).
   */
  respond(
    query: DnsMessage,
    view: DnsView,
    transport: Transport,
  ): { response: DnsMessage; bytesMax?: number } | undefined {
    if (query.qr) return undefined;
    const opt = query.additional.find((r) => r.type === 'OPT');
    const edns =
      opt !== undefined && opt.type === 'OPT'
        ? [
            {
              type: 'OPT' as const,
              udpPayloadBytes: this.udpMax,
              extendedRcode: 0,
              version: 0,
              dnssecOk: false,
            },
          ]
        : [];
    const base: DnsMessage = {
      ...emptyReply(query, Rcode.NoError),
      questions: query.questions.slice(0, 1),
      additional: edns,
    };
    const bytesMax =
      transport === 'tcp'
        ? undefined
        : opt !== undefined && opt.type === 'OPT'
          ? Math.min(this.udpMax, Math.max(udpPayloadBytesDefault, opt.udpPayloadBytes))
          : udpPayloadBytesDefault;
    const out = (response: DnsMessage) => ({ response, ...(bytesMax !== undefined ? { bytesMax } : {}) });
    if (query.opcode !== Opcode.Query) return out({ ...base, rcode: Rcode.NotImp });
    if (query.questions.length !== 1) return out({ ...base, rcode: Rcode.FormErr });
    const q = query.questions[0];
    if (q.class !== RecordClass.IN && q.class !== RecordClass.ANY)
      return out({ ...base, rcode: Rcode.NotImp });
    const found = this.lookup(q, view);
    switch (found.kind) {
      case 'refused':
        return out({ ...base, rcode: Rcode.Refused });
      case 'nxdomain':
        return out({ ...base, aa: true, rcode: Rcode.NXDomain, authority: [this.soa()] });
      case 'nodata':
        return out({ ...base, aa: true, authority: [this.soa()] });
      case 'answer':
        return out({
          ...base,
          aa: true,
          answers: found.records,
          additional: [...(found.additional ?? []), ...edns],
        });
      default: {
        const unknown: never = found;
        throw new Error(`dns: unknown lookup ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** The zone's SOA (also the negative-caching TTL, RFC 2308). */
  soa(): DnsRecord {
    return {
      type: 'SOA',
      name: this.domain,
      ttl: this.ttl,
      mname: `ns.dns.${this.domain}`,
      rname: `hostmaster.${this.domain}`,
      serial: 1,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: this.ttl,
    };
  }

  private lookup(q: DnsQuestion, view: DnsView): Lookup {
    const name = q.name.toLowerCase().replace(/\.$/, '');
    if (name.endsWith('.in-addr.arpa')) return this.reverse(q, name, view);
    let labels: string[];
    if (name === this.domain) labels = [];
    else if (name.endsWith(`.${this.domain}`)) labels = name.slice(0, -this.domain.length - 1).split('.');
    else if (name.endsWith('.svc')) labels = name.split('.');
    else return { kind: 'refused' };
    if (labels.length === 0) {
      return q.type === RecordType.SOA ? { kind: 'answer', records: [this.soa()] } : { kind: 'nodata' };
    }
    const n = labels.length;
    if (labels[n - 1] !== 'svc') return { kind: 'nxdomain' };
    if (n === 1) return { kind: 'nodata' };
    const ns = labels[n - 2];
    if (n === 2) return view.hasNamespace(ns) ? { kind: 'nodata' } : { kind: 'nxdomain' };
    const svc = view.service(ns, labels[n - 3]);
    if (svc === undefined) return { kind: 'nxdomain' };
    const fqdn = `${labels[n - 3]}.${ns}.svc.${this.domain}`;
    if (n === 3) return this.serviceRecords(q, svc, fqdn, view);
    if (n === 4) return this.endpointRecords(q, svc, labels[0], view);
    if (n === 5 && labels[0].startsWith('_') && labels[1].startsWith('_'))
      return this.srvRecords(q, svc, labels[0].slice(1), labels[1].slice(1), fqdn, view);
    return { kind: 'nxdomain' };
  }

  private serviceRecords(q: DnsQuestion, svc: Service, fqdn: string, view: DnsView): Lookup {
    const ip = virtualIP(svc);
    const eps = isHeadless(svc)
      ? readyAddresses(view.endpoints(svc.metadata.namespace ?? 'default', svc.metadata.name ?? ''))
      : [];
    const a: DnsRecord[] =
      ip !== undefined
        ? [{ type: 'A', name: q.name, ttl: this.ttl, address: ip }]
        : eps.map((e) => ({ type: 'A', name: q.name, ttl: this.ttl, address: e.ip }));
    switch (q.type) {
      case RecordType.A:
      case RecordType.ANY:
        return a.length > 0 ? { kind: 'answer', records: a } : { kind: 'nodata' };
      case RecordType.SRV:
        return this.srvRecords(q, svc, undefined, undefined, fqdn, view);
      default:
        return { kind: 'nodata' };
    }
  }

  private endpointRecords(q: DnsQuestion, svc: Service, host: string, view: DnsView): Lookup {
    if (!isHeadless(svc)) return { kind: 'nxdomain' };
    const eps = readyAddresses(view.endpoints(svc.metadata.namespace ?? 'default', svc.metadata.name ?? ''));
    const match = eps.filter((e) => e.hostname?.toLowerCase() === host || dashed(e.ip) === host);
    if (match.length === 0) return { kind: 'nxdomain' };
    if (q.type !== RecordType.A && q.type !== RecordType.ANY) return { kind: 'nodata' };
    return {
      kind: 'answer',
      records: match.map((e) => ({ type: 'A', name: q.name, ttl: this.ttl, address: e.ip })),
    };
  }

  /** SRV records of the service's named ports (`portName`/`proto` undefined: every named port). */
  private srvRecords(
    q: DnsQuestion,
    svc: Service,
    portName: string | undefined,
    proto: string | undefined,
    fqdn: string,
    view: DnsView,
  ): Lookup {
    if (q.type !== RecordType.SRV && q.type !== RecordType.ANY) {
      return portName === undefined ? { kind: 'nodata' } : this.srvExists(svc, portName, proto);
    }
    const ports = (svc.spec.ports ?? []).filter(
      (p) =>
        p.name !== undefined &&
        p.name !== '' &&
        (portName === undefined || p.name.toLowerCase() === portName) &&
        (proto === undefined || (p.protocol ?? 'TCP').toLowerCase() === proto),
    );
    if (ports.length === 0) return portName === undefined ? { kind: 'nodata' } : { kind: 'nxdomain' };
    const records: DnsRecord[] = [];
    const additional: DnsRecord[] = [];
    if (!isHeadless(svc)) {
      const ip = virtualIP(svc);
      if (ip === undefined) return { kind: 'nodata' };
      const weight = Math.floor(100 / ports.length);
      for (const p of ports)
        records.push({
          type: 'SRV',
          name: q.name,
          ttl: this.ttl,
          priority: 0,
          weight,
          port: p.port,
          target: fqdn,
        });
      additional.push({ type: 'A', name: fqdn, ttl: this.ttl, address: ip });
    } else {
      const eps = readyAddresses(
        view.endpoints(svc.metadata.namespace ?? 'default', svc.metadata.name ?? ''),
      );
      const targets = new Set<string>();
      for (const p of ports) {
        for (const e of eps) {
          const ep = e.ports.find((x) => x.name === p.name && x.protocol === (p.protocol ?? 'TCP'));
          if (ep === undefined) continue;
          const target = `${e.hostname ?? dashed(e.ip)}.${fqdn}`;
          records.push({
            type: 'SRV',
            name: q.name,
            ttl: this.ttl,
            priority: 0,
            weight: 0,
            port: ep.port,
            target,
          });
          if (!targets.has(target))
            additional.push({ type: 'A', name: target, ttl: this.ttl, address: e.ip });
          targets.add(target);
        }
      }
      const weight = records.length > 0 ? Math.floor(100 / records.length) : 0;
      for (const r of records) if (r.type === 'SRV') r.weight = weight;
    }
    return records.length > 0 ? { kind: 'answer', records, additional } : { kind: 'nodata' };
  }

  private srvExists(svc: Service, portName: string, proto: string | undefined): Lookup {
    const exists = (svc.spec.ports ?? []).some(
      (p) =>
        p.name?.toLowerCase() === portName &&
        (proto === undefined || (p.protocol ?? 'TCP').toLowerCase() === proto),
    );
    return exists ? { kind: 'nodata' } : { kind: 'nxdomain' };
  }

  private reverse(q: DnsQuestion, name: string, view: DnsView): Lookup {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4) return { kind: 'refused' };
    const ip = parts.reverse().join('.');
    if (parseIPv4(ip) === undefined) return { kind: 'refused' };
    const targets = this.ptrIndex(view).get(ip);
    if (targets === undefined)
      return cidrContains(this.cfg.serviceCidr, ip) ? { kind: 'nxdomain' } : { kind: 'refused' };
    if (q.type !== RecordType.PTR && q.type !== RecordType.ANY) return { kind: 'nodata' };
    return {
      kind: 'answer',
      records: targets.map((target) => ({ type: 'PTR', name: q.name, ttl: this.ttl, target })),
    };
  }

  /** IP → names, rebuilt when the view's version changed. */
  private ptrIndex(view: DnsView): Map<string, string[]> {
    if (view.version === this.ptrVersion) return this.ptr;
    const index = new Map<string, string[]>();
    const add = (ip: string, name: string) => index.set(ip, [...(index.get(ip) ?? []), name]);
    for (const svc of view.services()) {
      const ns = svc.metadata.namespace ?? 'default';
      const fqdn = `${svc.metadata.name}.${ns}.svc.${this.domain}`;
      const ip = virtualIP(svc);
      if (ip !== undefined) add(ip, fqdn);
      if (isHeadless(svc))
        for (const e of readyAddresses(view.endpoints(ns, svc.metadata.name ?? '')))
          add(e.ip, `${e.hostname ?? dashed(e.ip)}.${fqdn}`);
    }
    this.ptr = index;
    this.ptrVersion = view.version;
    return index;
  }
}

/**
 * The proxy planner: Services and Endpoints in, the virtual servers of this node out. Pure (no
 * I/O, no clock), as kube-proxy's service/endpoints change trackers: a service port with a
 * ClusterIP is one virtual server; its backends are the ready addresses (`subsets[].addresses`,
 * never `notReadyAddresses`) of the Endpoints port with the same name and protocol; `targetPort`
 * names were resolved by whoever wrote the Endpoints. Headless services (`clusterIP: None`) get
 * no virtual server (DNS serves them). NodePort services also listen on this node's IP.
 *
 * Safety (nothing may leave the machine): a ClusterIP outside the service CIDR, a nodePort outside
 * the node port range, and a backend outside the local pod networks (`backendCidrs`) are left out,
 * each with a problem line saying why, so no rule ever sends traffic anywhere else.
 */

import type { Endpoints, Service } from '../../core/objects.js';
import { type Cidr, cidrContains, parseIPv4 } from './ipv4.js';
import type { Backend, DnsRedirect, ProxyPlan, ServiceProtocol, VirtualServer } from './rules.js';

/** Kubernetes' default and bounds of `sessionAffinityConfig.clientIP.timeoutSeconds`. */
export const affinitySecondsDefault = 10_800;
export const affinitySecondsMax = 86_400;

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

export interface PlanInput {
  readonly services: Iterable<Service>;
  readonly endpoints: (namespace: string, name: string) => Endpoints | undefined;
  readonly serviceCidr: Cidr;
  readonly nodePortRange: PortRange;
  /** Where backends may be: loopback and the local pod networks. */
  readonly backendCidrs: readonly Cidr[];
  /** The cluster DNS service IP: its port 53 is the agent's DNS, never a service's. */
  readonly clusterDns?: string;
  readonly dns?: DnsRedirect;
}

export interface PlanResult {
  readonly plan: ProxyPlan;
  /** One line per thing left out, naming the service and the reason; sorted. */
  readonly problems: readonly string[];
}

/** `sessionAffinityConfig` is not in the core types yet; read it as Kubernetes has it. */
interface AffinityConfig {
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
}

function protocolOf(p: string | undefined): ServiceProtocol {
  return p === 'UDP' || p === 'SCTP' ? p : 'TCP';
}

/** The ClusterIP of a service that gets a virtual IP, or undefined (headless, not allocated). */
export function virtualIP(svc: Service): string | undefined {
  const ip = svc.spec?.clusterIP;
  return ip === undefined || ip === '' || ip === 'None' ? undefined : ip;
}

export function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === 'None';
}

/** The affinity timeout in seconds for `sessionAffinity: ClientIP`, else undefined. */
export function affinitySeconds(svc: Service): number | undefined {
  if (svc.spec?.sessionAffinity !== 'ClientIP') return undefined;
  const t = (svc.spec as AffinityConfig).sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) return affinitySecondsDefault;
  return Math.min(t, affinitySecondsMax);
}

/**
 * The ready backends of the Endpoints port named `portName` with `protocol`, sorted and
 * deduplicated. An unnamed service port matches an unnamed endpoints port.
 */
export function readyBackends(
  endpoints: Endpoints | undefined,
  portName: string,
  protocol: ServiceProtocol,
): Backend[] {
  const seen = new Map<string, Backend>();
  for (const subset of endpoints?.subsets ?? []) {
    for (const p of subset.ports ?? []) {
      if ((p.name ?? '') !== portName || protocolOf(p.protocol) !== protocol) continue;
      for (const a of subset.addresses ?? []) seen.set(`${a.ip}:${p.port}`, { ip: a.ip, port: p.port });
    }
  }
  return [...seen.values()].sort(compareBackends);
}

export function compareBackends(a: Backend, b: Backend): number {
  const ai = parseIPv4(a.ip) ?? 0;
  const bi = parseIPv4(b.ip) ?? 0;
  return ai - bi || a.port - b.port;
}

function validPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/**
 * Results per service, reused while neither the Service nor its Endpoints object changed (the
 * catalog replaces an object on every change, so identity tells). Valid for one configuration
 * (CIDRs, ranges, DNS IP): a proxy keeps one for its lifetime. It makes a sync with one changed
 * service cost one service's planning, and keeps unchanged `VirtualServer` objects identical, so
 * the kernel rendering can reuse its rules for them.
 */
export class PlanCache {
  readonly entries = new Map<
    string,
    { svc: Service; eps: Endpoints | undefined; servers: VirtualServer[]; problems: string[] }
  >();
}

/** The virtual servers of one service (unsorted) and what was left out of it. */
export function planService(
  svc: Service,
  eps: Endpoints | undefined,
  input: PlanInput,
): { servers: VirtualServer[]; problems: string[] } {
  const servers: VirtualServer[] = [];
  const problems: string[] = [];
  const ns = svc.metadata.namespace ?? 'default';
  const name = svc.metadata.name ?? '';
  const ip = virtualIP(svc);
  if (ip === undefined) return { servers, problems };
  const what = `service ${ns}/${name}`;
  if (parseIPv4(ip) === undefined || !cidrContains(input.serviceCidr, ip)) {
    problems.push(
      `${what}: spec.clusterIP ${ip} is outside the service CIDR ${input.serviceCidr.text}; not proxied`,
    );
    return { servers, problems };
  }
  const affinity = affinitySeconds(svc);
  (svc.spec.ports ?? []).forEach((sp, i) => {
    const protocol = protocolOf(sp.protocol);
    const portName = sp.name ?? '';
    if (!validPort(sp.port)) return;
    if (ip === input.clusterDns && sp.port === 53 && protocol !== 'SCTP') {
      problems.push(`${what}: port 53 of the cluster DNS IP ${ip} is the cluster DNS; not proxied`);
      return;
    }
    let nodePort: number | undefined;
    if (svc.spec.type === 'NodePort' && sp.nodePort !== undefined && sp.nodePort !== 0) {
      const { min, max } = input.nodePortRange;
      if (validPort(sp.nodePort) && sp.nodePort >= min && sp.nodePort <= max) nodePort = sp.nodePort;
      else
        problems.push(
          `${what}: spec.ports[${i}].nodePort ${sp.nodePort} is outside the node port range ${min}-${max}; not opened`,
        );
    }
    const backends: Backend[] = [];
    for (const b of readyBackends(eps, portName, protocol)) {
      if (!validPort(b.port)) continue;
      if (input.backendCidrs.some((c) => cidrContains(c, b.ip))) backends.push(b);
      else
        problems.push(
          `${what}: endpoint ${b.ip}:${b.port} is not on a local pod network (${input.backendCidrs.map((c) => c.text).join(', ')}); left out`,
        );
    }
    servers.push({
      id: `${ns}/${name}:${portName || sp.port}/${protocol}`,
      namespace: ns,
      service: name,
      portName,
      protocol,
      clusterIP: ip,
      port: sp.port,
      ...(nodePort !== undefined ? { nodePort } : {}),
      ...(affinity !== undefined ? { affinitySeconds: affinity } : {}),
      backends,
    });
  });
  return { servers, problems };
}

/** The plan of every service; with `cache`, unchanged services are not planned again. */
export function planProxy(input: PlanInput, cache?: PlanCache): PlanResult {
  const servers: VirtualServer[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const svc of input.services) {
    const ns = svc.metadata.namespace ?? 'default';
    const name = svc.metadata.name ?? '';
    const key = `${ns}/${name}`;
    const eps = input.endpoints(ns, name);
    let entry = cache?.entries.get(key);
    if (entry === undefined || entry.svc !== svc || entry.eps !== eps) {
      entry = { svc, eps, ...planService(svc, eps, input) };
      cache?.entries.set(key, entry);
    }
    seen.add(key);
    servers.push(...entry.servers);
    problems.push(...entry.problems);
  }
  if (cache !== undefined)
    for (const key of [...cache.entries.keys()]) if (!seen.has(key)) cache.entries.delete(key);
  servers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const kept = dropConflicts(servers, problems);
  return {
    plan: { servers: kept, ...(input.dns !== undefined ? { dns: input.dns } : {}) },
    problems: problems.sort(),
  };
}

/**
 * Two services claiming one ClusterIP:port/protocol, or one node port, cannot both be served:
 * the first by id keeps it (the masters' allocator prevents this; a user can still write it).
 */
function dropConflicts(servers: VirtualServer[], problems: string[]): VirtualServer[] {
  const vips = new Map<string, string>();
  const nodePorts = new Map<string, string>();
  const out: VirtualServer[] = [];
  for (const s of servers) {
    const vip = `${s.clusterIP}:${s.port}/${s.protocol}`;
    const owner = vips.get(vip);
    if (owner !== undefined) {
      problems.push(
        `service ${s.namespace}/${s.service}: ${vip} is already served for ${owner}; not proxied`,
      );
      continue;
    }
    vips.set(vip, s.id);
    if (s.nodePort !== undefined) {
      const np = `${s.nodePort}/${s.protocol}`;
      const npOwner = nodePorts.get(np);
      if (npOwner !== undefined) {
        problems.push(
          `service ${s.namespace}/${s.service}: node port ${np} is already opened for ${npOwner}; not opened`,
        );
        const { nodePort: _dropped, ...rest } = s;
        out.push(rest);
        continue;
      }
      nodePorts.set(np, s.id);
    }
    out.push(s);
  }
  return out;
}

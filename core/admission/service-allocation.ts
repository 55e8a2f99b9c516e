/**
 * Service addresses and node ports, as Kubernetes' service REST strategy allocates them:
 * a ClusterIP from the service CIDR (or the one asked for, if free), `None` for headless
 * services, node ports from the node port range for NodePort services (or the ones asked for),
 * kept across updates, released by type changes. Pure: the caller says what is in use and
 * where to start looking; the decision is a function of those.
 */

import type { Service, ServicePort } from '../objects.js';

export interface Ipv4Cidr {
  /** The network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
  /** Addresses in the range (including network and broadcast). */
  size: number;
  text: string;
}

export class AllocationError extends Error {
  override readonly name = 'AllocationError';
  constructor(
    readonly fieldPath: string,
    message: string,
    /** Invalid (a bad request) or exhausted (nothing left). */
    readonly kind: 'invalid' | 'exhausted' = 'invalid',
  ) {
    super(message);
  }
}

export function ipToInt(ip: string): number | undefined {
  if (typeof ip !== 'string') return undefined;
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parses `10.96.0.0/16` (prefix 8..30); throws with the problem. */
export function parseCidr(text: string): Ipv4Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(text);
  const ip = m ? ipToInt(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : Number.NaN;
  if (ip === undefined || !(prefix >= 8 && prefix <= 30)) {
    throw new Error(`"${text}" is not an IPv4 CIDR with a prefix of 8 to 30 bits`);
  }
  const size = 2 ** (32 - prefix);
  const base = ip - (ip % size);
  if (base !== ip) throw new Error(`"${text}" has host bits set (the network is ${intToIp(base)}/${prefix})`);
  return { base, prefix, size, text };
}

export interface PortRange {
  min: number;
  max: number;
  text: string;
}

/** Parses `30000-32767`; throws with the problem. */
export function parsePortRange(text: string): PortRange {
  const m = /^(\d+)-(\d+)$/.exec(text);
  const min = m ? Number(m[1]) : Number.NaN;
  const max = m ? Number(m[2]) : Number.NaN;
  if (!(min >= 1 && max <= 65535 && min <= max))
    throw new Error(`"${text}" is not a port range MIN-MAX within 1-65535`);
  return { min, max, text };
}

export function cidrContains(cidr: Ipv4Cidr, ip: number): boolean {
  return ip >= cidr.base && ip < cidr.base + cidr.size;
}

/**
 * Offsets in the CIDR that dynamic allocation never hands out: the network and broadcast
 * addresses, the first address (Kubernetes' `kubernetes` service) and the tenth (cluster DNS,
 * `10.96.0.10` in the default range). They can still be asked for by name.
 */
export const reservedOffsets: readonly number[] = [0, 1, 10];

export interface InUse {
  /** Is this address taken (by another object, or by a write in flight)? */
  ip(ip: number): boolean;
  port(port: number): boolean;
}

export interface AllocationSettings {
  cidr: Ipv4Cidr;
  nodePorts: PortRange;
  /** Where dynamic allocation starts looking (e.g. random, or after the last one). */
  ipStart: number;
  portStart: number;
}

export interface Allocated {
  service: Service;
  /** Addresses and ports this write takes that the previous version did not hold. */
  ips: number[];
  ports: number[];
}

function allocateIp(s: AllocationSettings, inUse: InUse): number {
  const { base, size } = s.cidr;
  for (let i = 0; i < size; i += 1) {
    const offset = (s.ipStart + i) % size;
    if (offset === size - 1 || reservedOffsets.includes(offset)) continue;
    if (!inUse.ip(base + offset)) return base + offset;
  }
  throw new AllocationError(
    'spec.clusterIP',
    `no free address left in the service range ${s.cidr.text}`,
    'exhausted',
  );
}

function allocatePort(s: AllocationSettings, inUse: InUse, taken: Set<number>): number {
  const span = s.nodePorts.max - s.nodePorts.min + 1;
  for (let i = 0; i < span; i += 1) {
    const port = s.nodePorts.min + ((s.portStart + i) % span);
    if (!inUse.port(port) && !taken.has(port)) return port;
  }
  throw new AllocationError(
    'spec.ports',
    `no free node port left in the range ${s.nodePorts.text}`,
    'exhausted',
  );
}

/**
 * The service as it is written: its cluster IP and node ports allocated or checked.
 * `prev` is the committed version on an update (its allocations are kept; a type change to
 * ClusterIP drops the node ports). Throws AllocationError with the field path.
 */
export function allocateService(
  next: Service,
  prev: Service | undefined,
  s: AllocationSettings,
  inUse: InUse,
): Allocated {
  const spec = { ...next.spec };
  const ips: number[] = [];
  const ports: number[] = [];
  const prevIp = prev?.spec.clusterIP;
  if (spec.clusterIP === undefined || spec.clusterIP === '') {
    if (prevIp !== undefined && prevIp !== '') spec.clusterIP = prevIp;
    else {
      const ip = allocateIp(s, inUse);
      spec.clusterIP = intToIp(ip);
      ips.push(ip);
    }
  } else if (spec.clusterIP !== 'None' && spec.clusterIP !== prevIp) {
    const ip = ipToInt(spec.clusterIP);
    if (ip === undefined)
      throw new AllocationError('spec.clusterIP', 'must be a valid IPv4 address or "None"');
    if (!cidrContains(s.cidr, ip) || ip === s.cidr.base || ip === s.cidr.base + s.cidr.size - 1) {
      throw new AllocationError(
        'spec.clusterIP',
        `${spec.clusterIP} is not in the valid range; the range of valid IPs is ${s.cidr.text}`,
      );
    }
    if (inUse.ip(ip))
      throw new AllocationError('spec.clusterIP', `provided IP ${spec.clusterIP} is already allocated`);
    ips.push(ip);
  }
  const type = spec.type ?? 'ClusterIP';
  const prevPorts = prev?.spec.type === 'NodePort' ? (prev.spec.ports ?? []) : [];
  const held = new Set(prevPorts.map((p) => p.nodePort).filter((p): p is number => p !== undefined));
  const taken = new Set<number>();
  spec.ports = (Array.isArray(spec.ports) ? spec.ports : []).map((port, i): ServicePort => {
    const path = `spec.ports[${i}].nodePort`;
    // Admission may see a write before validation does: a malformed port is refused here.
    if (typeof port !== 'object' || port === null || Array.isArray(port))
      throw new AllocationError(`spec.ports[${i}]`, 'must be an object');
    if (type !== 'NodePort') {
      const { nodePort: _dropped, ...rest } = port;
      return rest;
    }
    let nodePort = port.nodePort;
    if (nodePort === undefined || nodePort === 0) {
      // Kept across updates: the previous version's port for the same port and protocol.
      const same = prevPorts.find(
        (p) => p.port === port.port && (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP'),
      );
      if (same?.nodePort !== undefined && !taken.has(same.nodePort)) nodePort = same.nodePort;
      else {
        nodePort = allocatePort(s, inUse, taken);
        ports.push(nodePort);
      }
    } else {
      if (nodePort < s.nodePorts.min || nodePort > s.nodePorts.max) {
        throw new AllocationError(
          path,
          `provided port ${nodePort} is not in the valid range; the range of valid ports is ${s.nodePorts.text}`,
        );
      }
      if (taken.has(nodePort)) throw new AllocationError(path, `duplicate node port ${nodePort}`);
      if (!held.has(nodePort)) {
        if (inUse.port(nodePort))
          throw new AllocationError(path, `provided port ${nodePort} is already allocated`);
        ports.push(nodePort);
      }
    }
    taken.add(nodePort);
    return { ...port, nodePort };
  });
  return { service: { ...next, spec }, ips, ports };
}

/** The addresses and node ports a committed service holds. */
export function heldBy(svc: Service): { ips: number[]; ports: number[] } {
  const ip =
    svc.spec.clusterIP !== undefined && svc.spec.clusterIP !== 'None'
      ? ipToInt(svc.spec.clusterIP)
      : undefined;
  const ports =
    svc.spec.type === 'NodePort'
      ? (svc.spec.ports ?? []).map((p) => p.nodePort).filter((p): p is number => p !== undefined)
      : [];
  return { ips: ip === undefined ? [] : [ip], ports };
}

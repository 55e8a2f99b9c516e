/**
 * The ServiceAllocator leader admission plugin: ClusterIPs from the service CIDR and node
 * ports from the node port range (`core/admission/service-allocation.ts` decides). What is
 * allocated comes from the applied Services (kept from the change feed on every master) plus
 * the claims of writes in flight on the leader, so two concurrent creates never get the same
 * address or port; a deleted Service's address and ports are free again once its delete is
 * applied.
 */

import { randomInt } from 'node:crypto';
import {
  AllocationError,
  allocateService,
  heldBy,
  type Ipv4Cidr,
  type PortRange,
  parseCidr,
  parsePortRange,
} from '../../core/admission/service-allocation.js';
import type { Service } from '../../core/objects.js';
import { ApiError, ApiErrorCode } from '../api.js';
import type { AdmissionPlugin, AdmissionStore, Claim } from './leader-admission.js';

export const defaultServiceCidr = '10.96.0.0/16';
export const defaultNodePortRange = '30000-32767';

export interface ServiceAllocatorOptions {
  /** Default 10.96.0.0/16. */
  serviceCidr?: string;
  /** Default 30000-32767. */
  nodePortRange?: string;
  /** Where dynamic allocation starts looking; default random (like Kubernetes). */
  start?: (size: number) => number;
}

interface Held {
  ips: number[];
  ports: number[];
}

function keyOf(svc: Service): string {
  return `${svc.metadata.namespace ?? ''}/${svc.metadata.name ?? ''}`;
}

export class ServiceAllocatorPlugin implements AdmissionPlugin {
  readonly name = 'ServiceAllocator';
  readonly cidr: Ipv4Cidr;
  readonly nodePorts: PortRange;
  /** Address → the Service (namespace/name) holding it, from the applied state. */
  private readonly ips = new Map<number, string>();
  private readonly ports = new Map<number, string>();
  /** Counts of claims in flight per address and port. */
  private readonly claimedIps = new Map<number, number>();
  private readonly claimedPorts = new Map<number, number>();
  private readonly start: (size: number) => number;

  constructor(opts: ServiceAllocatorOptions = {}) {
    this.cidr = parseCidr(opts.serviceCidr ?? defaultServiceCidr);
    this.nodePorts = parsePortRange(opts.nodePortRange ?? defaultNodePortRange);
    this.start = opts.start ?? ((size) => randomInt(0, size));
  }

  handles(op: 'create' | 'update', kind: string): boolean {
    return kind === 'Service' && (op === 'create' || op === 'update');
  }

  admit(req: Parameters<AdmissionPlugin['admit']>[0]): ReturnType<AdmissionPlugin['admit']> {
    const svc = req.object as Service;
    const prev = req.prev as Service | undefined;
    const self = keyOf(svc);
    const heldByOther = (owners: Map<number, string>, claimed: Map<number, number>, v: number) =>
      (owners.has(v) && owners.get(v) !== self) || (claimed.get(v) ?? 0) > 0;
    try {
      const out = allocateService(
        svc,
        prev,
        {
          cidr: this.cidr,
          nodePorts: this.nodePorts,
          ipStart: this.start(this.cidr.size),
          portStart: this.start(this.nodePorts.max - this.nodePorts.min + 1),
        },
        {
          ip: (ip) => heldByOther(this.ips, this.claimedIps, ip),
          port: (port) => heldByOther(this.ports, this.claimedPorts, port),
        },
      );
      const value: Held = { ips: out.ips, ports: out.ports };
      return {
        object: out.service,
        ...(out.ips.length + out.ports.length > 0
          ? { claims: [{ namespace: svc.metadata.namespace ?? '', value }] }
          : {}),
      };
    } catch (err) {
      if (!(err instanceof AllocationError)) throw err;
      const name = JSON.stringify(svc.metadata.name ?? '');
      throw new ApiError(
        err.kind === 'exhausted' ? ApiErrorCode.ResourceExhausted : ApiErrorCode.Invalid,
        `services ${name}: ${err.fieldPath}: ${err.message}`,
        { fieldPath: err.fieldPath },
      );
    }
  }

  claimHeld(claim: Claim): void {
    const v = claim.value as Held;
    for (const ip of v.ips) this.claimedIps.set(ip, (this.claimedIps.get(ip) ?? 0) + 1);
    for (const p of v.ports) this.claimedPorts.set(p, (this.claimedPorts.get(p) ?? 0) + 1);
  }

  claimReleased(claim: Claim): void {
    const v = claim.value as Held;
    const dec = (m: Map<number, number>, k: number) => {
      const n = (m.get(k) ?? 0) - 1;
      if (n > 0) m.set(k, n);
      else m.delete(k);
    };
    for (const ip of v.ips) dec(this.claimedIps, ip);
    for (const p of v.ports) dec(this.claimedPorts, p);
  }

  observe(
    changes: Parameters<NonNullable<AdmissionPlugin['observe']>>[0],
    reset: boolean,
    store: AdmissionStore,
  ): void {
    if (reset) {
      this.ips.clear();
      this.ports.clear();
      for (const ns of store.namespacesWith('Service')) {
        for (const svc of store.list('Service', ns) as Service[]) this.hold(svc);
      }
      return;
    }
    for (const c of changes) {
      if (c.object.kind !== 'Service') continue;
      if (c.prev !== undefined) this.release(c.prev as Service);
      if (c.type !== 'DELETED') this.hold(c.object as Service);
    }
  }

  /** How many addresses and node ports the applied Services hold. */
  get allocated(): { ips: number; ports: number } {
    return { ips: this.ips.size, ports: this.ports.size };
  }

  private hold(svc: Service): void {
    const h = heldBy(svc);
    for (const ip of h.ips) this.ips.set(ip, keyOf(svc));
    for (const p of h.ports) this.ports.set(p, keyOf(svc));
  }

  private release(svc: Service): void {
    const h = heldBy(svc);
    const self = keyOf(svc);
    for (const ip of h.ips) if (this.ips.get(ip) === self) this.ips.delete(ip);
    for (const p of h.ports) if (this.ports.get(p) === self) this.ports.delete(p);
  }
}

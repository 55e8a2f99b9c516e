import { describe, expect, it } from 'vitest';
import type { Service } from '../objects.js';
import {
  AllocationError,
  allocateService,
  heldBy,
  type InUse,
  intToIp,
  ipToInt,
  parseCidr,
  parsePortRange,
} from './service-allocation.js';

const cidr = parseCidr('10.96.0.0/28'); // 16 addresses
const nodePorts = parsePortRange('30000-30003');
const settings = { cidr, nodePorts, ipStart: 0, portStart: 0 };
const none: InUse = { ip: () => false, port: () => false };
const taken = (ips: string[], ports: number[] = []): InUse => ({
  ip: (ip) => ips.map(ipToInt).includes(ip),
  port: (p) => ports.includes(p),
});

function svc(spec: Partial<Service['spec']> = {}): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { type: 'ClusterIP', ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }], ...spec },
  };
}

const fieldError = (f: () => unknown): AllocationError => {
  try {
    f();
  } catch (err) {
    if (err instanceof AllocationError) return err;
    throw err;
  }
  throw new Error('no AllocationError');
};

describe('service CIDR and port range parsing', () => {
  it('parses and refuses with a reason', () => {
    expect(parseCidr('10.96.0.0/16')).toMatchObject({ prefix: 16, size: 65536 });
    expect(() => parseCidr('10.96.0.1/16')).toThrow(/host bits set/);
    expect(() => parseCidr('10.96.0.0/4')).toThrow(/prefix of 8 to 30/);
    expect(() => parsePortRange('32767-30000')).toThrow(/MIN-MAX/);
    expect(intToIp(ipToInt('10.96.3.7') ?? 0)).toBe('10.96.3.7');
  });
});

describe('allocateService', () => {
  it('gives a ClusterIP from the range, skipping the network, the reserved and the used addresses', () => {
    const a = allocateService(svc(), undefined, settings, taken(['10.96.0.2']));
    expect(a.service.spec.clusterIP).toBe('10.96.0.3');
    expect(a.ips).toEqual([ipToInt('10.96.0.3')]);
  });
  it('never hands out .0, .1, .10 or the broadcast address dynamically, and says when the range is full', () => {
    const seen = new Set<string>();
    const used: string[] = [];
    for (;;) {
      let a: ReturnType<typeof allocateService>;
      try {
        a = allocateService(svc(), undefined, settings, taken(used));
      } catch (err) {
        expect((err as AllocationError).kind).toBe('exhausted');
        expect((err as Error).message).toMatch(/no free address left in the service range 10.96.0.0\/28/);
        break;
      }
      const ip = a.service.spec.clusterIP ?? '';
      seen.add(ip);
      used.push(ip);
    }
    expect(seen.size).toBe(12);
    for (const r of ['10.96.0.0', '10.96.0.1', '10.96.0.10', '10.96.0.15']) expect(seen.has(r)).toBe(false);
  });
  it('takes an asked-for address if it is free and in range; refuses others with the field path', () => {
    expect(
      allocateService(svc({ clusterIP: '10.96.0.10' }), undefined, settings, none).service.spec.clusterIP,
    ).toBe('10.96.0.10');
    const inUse = fieldError(() =>
      allocateService(svc({ clusterIP: '10.96.0.5' }), undefined, settings, taken(['10.96.0.5'])),
    );
    expect([inUse.fieldPath, inUse.message]).toEqual([
      'spec.clusterIP',
      'provided IP 10.96.0.5 is already allocated',
    ]);
    const out = fieldError(() => allocateService(svc({ clusterIP: '10.97.0.5' }), undefined, settings, none));
    expect(out.message).toBe('10.97.0.5 is not in the valid range; the range of valid IPs is 10.96.0.0/28');
  });
  it('refuses malformed ports and addresses with the field path (it may run before validation)', () => {
    const port = fieldError(() =>
      allocateService(svc({ ports: [null as never] }), undefined, settings, none),
    );
    expect([port.fieldPath, port.message]).toEqual(['spec.ports[0]', 'must be an object']);
    const ip = fieldError(() => allocateService(svc({ clusterIP: 7 as never }), undefined, settings, none));
    expect(ip.fieldPath).toBe('spec.clusterIP');
  });
  it('leaves headless services without an address', () => {
    const a = allocateService(svc({ clusterIP: 'None' }), undefined, settings, none);
    expect(a.service.spec.clusterIP).toBe('None');
    expect(a.ips).toEqual([]);
  });
  it('keeps the address and node ports across an update that omits them', () => {
    const first = allocateService(svc({ type: 'NodePort' }), undefined, settings, none).service;
    expect(first.spec.ports?.[0].nodePort).toBe(30000);
    const update = allocateService(
      svc({ type: 'NodePort' }),
      first,
      settings,
      taken([first.spec.clusterIP ?? ''], [30000]),
    );
    expect(update.service.spec.clusterIP).toBe(first.spec.clusterIP);
    expect(update.service.spec.ports?.[0].nodePort).toBe(30000);
    expect([update.ips, update.ports]).toEqual([[], []]);
    expect(heldBy(update.service)).toEqual({ ips: [ipToInt(first.spec.clusterIP ?? '')], ports: [30000] });
  });
  it('allocates node ports on a change to NodePort and drops them on a change back', () => {
    const clusterIp = allocateService(svc(), undefined, settings, none).service;
    const toNodePort = allocateService(
      svc({ type: 'NodePort', clusterIP: clusterIp.spec.clusterIP }),
      clusterIp,
      settings,
      taken([], [30000]),
    );
    expect(toNodePort.service.spec.ports?.[0].nodePort).toBe(30001);
    expect(toNodePort.ports).toEqual([30001]);
    const back = allocateService(
      svc({ type: 'ClusterIP', clusterIP: clusterIp.spec.clusterIP }),
      toNodePort.service,
      settings,
      none,
    );
    expect(back.service.spec.ports?.[0].nodePort).toBeUndefined();
    expect(heldBy(back.service).ports).toEqual([]);
  });
  it('checks asked-for node ports: range, in use, duplicates', () => {
    const outOfRange = fieldError(() =>
      allocateService(
        svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 80 }] }),
        undefined,
        settings,
        none,
      ),
    );
    expect([outOfRange.fieldPath, outOfRange.message]).toEqual([
      'spec.ports[0].nodePort',
      'provided port 80 is not in the valid range; the range of valid ports is 30000-30003',
    ]);
    const used = fieldError(() =>
      allocateService(
        svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 30002 }] }),
        undefined,
        settings,
        taken([], [30002]),
      ),
    );
    expect(used.message).toBe('provided port 30002 is already allocated');
    const dup = fieldError(() =>
      allocateService(
        svc({
          type: 'NodePort',
          ports: [
            { name: 'a', port: 80, nodePort: 30002 },
            { name: 'b', port: 81, nodePort: 30002 },
          ],
        }),
        undefined,
        settings,
        none,
      ),
    );
    expect([dup.fieldPath, dup.message]).toEqual(['spec.ports[1].nodePort', 'duplicate node port 30002']);
  });
});

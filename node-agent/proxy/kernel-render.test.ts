import { describe, expect, it } from 'vitest';
import {
  backendChain,
  chainTag,
  isOwnChain,
  matchesSaved,
  parseSaved,
  probability,
  removalInput,
  renderRules,
  restoreInput,
  serverChain,
} from './kernel-render.js';
import type { ProxyPlan, VirtualServer } from './rules.js';

const tag = chainTag('n1', '127.0.1.1');
const cfg = { tag, node: 'n1', nodeIp: '127.0.1.1', serviceCidr: '10.96.0.0/16' };

const web: VirtualServer = {
  id: 'prod/web:http/TCP',
  namespace: 'prod',
  service: 'web',
  portName: 'http',
  protocol: 'TCP',
  clusterIP: '10.96.0.20',
  port: 80,
  nodePort: 30080,
  backends: [
    { ip: '172.17.0.2', port: 8080 },
    { ip: '172.17.0.3', port: 8080 },
    { ip: '172.17.0.4', port: 8080 },
  ],
};
const sticky: VirtualServer = {
  id: 'prod/db:5432/TCP',
  namespace: 'prod',
  service: 'db',
  portName: '',
  protocol: 'TCP',
  clusterIP: '10.96.0.21',
  port: 5432,
  affinitySeconds: 600,
  backends: [
    { ip: '172.17.0.5', port: 5432 },
    { ip: '172.17.0.6', port: 5432 },
  ],
};
const plan: ProxyPlan = { servers: [sticky, web], dns: { ip: '10.96.0.10', udpPort: 40001, tcpPort: 40002 } };

describe('kernel rules rendering', () => {
  it('names chains per node, within iptables limits', () => {
    expect(tag).toMatch(/^[0-9a-f]{8}$/);
    expect(chainTag('n1', '127.0.1.1')).toBe(tag);
    expect(chainTag('n2', '127.0.1.1')).not.toBe(tag);
    expect(chainTag('n1', '127.0.1.2')).not.toBe(tag);
    const rules = renderRules(plan, cfg);
    for (const name of [...rules.nat.keys(), ...rules.filter.keys()]) {
      expect(name.length).toBeLessThanOrEqual(28);
      expect(isOwnChain(name, tag)).toBe(true);
      expect(isOwnChain(name, chainTag('n2', '127.0.1.2'))).toBe(false);
    }
  });

  it('balances with 1/(n-i) probabilities so each backend gets 1/n', () => {
    expect([0, 1, 2].map((i) => probability(3, i))).toEqual(['0.3333333333', '0.5000000000', '1.0000000000']);
    const rules = renderRules(plan, cfg);
    const s = serverChain(tag, web);
    const e = web.backends.map((b) => backendChain(tag, web, b.ip, b.port));
    expect(rules.nat.get(s)).toEqual([
      '-s 127.0.0.0/8 -j MARK --set-xmark 0x4000/0x4000',
      '-s 10.96.0.0/16 -j MARK --set-xmark 0x4000/0x4000',
      `-m statistic --mode random --probability 0.3333333333 -j ${e[0]}`,
      `-m statistic --mode random --probability 0.5000000000 -j ${e[1]}`,
      `-j ${e[2]}`,
    ]);
    expect(rules.nat.get(e[1])).toEqual([
      '-s 172.17.0.3/32 -j MARK --set-xmark 0x4000/0x4000',
      '-p tcp -m tcp -j DNAT --to-destination 172.17.0.3:8080',
    ]);
  });

  it('sends a client back to its backend with -m recent under ClientIP affinity', () => {
    const rules = renderRules(plan, cfg);
    const e = sticky.backends.map((b) => backendChain(tag, sticky, b.ip, b.port));
    expect(rules.nat.get(serverChain(tag, sticky))?.slice(2)).toEqual([
      `-m recent --rcheck --seconds 600 --reap --name ${e[0]} --mask 255.255.255.255 --rsource -j ${e[0]}`,
      `-m recent --rcheck --seconds 600 --reap --name ${e[1]} --mask 255.255.255.255 --rsource -j ${e[1]}`,
      `-m statistic --mode random --probability 0.5000000000 -j ${e[0]}`,
      `-j ${e[1]}`,
    ]);
    expect(rules.nat.get(e[0])?.[1]).toBe(
      `-p tcp -m recent --set --name ${e[0]} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 172.17.0.5:5432`,
    );
  });

  it('dispatches cluster IPs, the DNS redirect and node ports (marked for masquerade) on the node IP', () => {
    const rules = renderRules(plan, cfg);
    expect(rules.nat.get(`COX-SVC-${tag}`)).toEqual([
      '-d 10.96.0.10/32 -p udp -m udp --dport 53 -m comment --comment "cluster DNS of node n1" -j DNAT --to-destination 10.96.0.10:40001',
      '-d 10.96.0.10/32 -p tcp -m tcp --dport 53 -m comment --comment "cluster DNS of node n1" -j DNAT --to-destination 10.96.0.10:40002',
      `-d 10.96.0.21/32 -p tcp -m tcp --dport 5432 -m comment --comment "prod/db:5432 cluster IP" -j ${serverChain(tag, sticky)}`,
      `-d 10.96.0.20/32 -p tcp -m tcp --dport 80 -m comment --comment "prod/web:http cluster IP" -j ${serverChain(tag, web)}`,
    ]);
    expect(rules.nat.get(`COX-NP-${tag}`)).toEqual([
      '-d 127.0.1.1/32 -p tcp -m tcp --dport 30080 -m comment --comment "prod/web:http node port" -j MARK --set-xmark 0x4000/0x4000',
      `-d 127.0.1.1/32 -p tcp -m tcp --dport 30080 -m comment --comment "prod/web:http node port" -j ${serverChain(tag, web)}`,
    ]);
    expect(rules.jumps.map((j) => `${j.table} ${j.chain} ${j.spec}`)).toEqual([
      `nat PREROUTING -d 10.96.0.0/16 -m comment --comment "coxswain node n1 cluster IPs" -j COX-SVC-${tag}`,
      `nat PREROUTING -d 127.0.1.1/32 -m comment --comment "coxswain node n1 node ports" -j COX-NP-${tag}`,
      `nat OUTPUT -d 10.96.0.0/16 -m comment --comment "coxswain node n1 cluster IPs" -j COX-SVC-${tag}`,
      `nat OUTPUT -d 127.0.1.1/32 -m comment --comment "coxswain node n1 node ports" -j COX-NP-${tag}`,
      `nat POSTROUTING -m comment --comment "coxswain node n1 masquerade" -j COX-POST-${tag}`,
      `filter OUTPUT -d 10.96.0.0/16 -m comment --comment "coxswain node n1 guard" -j COX-FW-${tag}`,
      `filter FORWARD -d 10.96.0.0/16 -m comment --comment "coxswain node n1 guard" -j COX-FW-${tag}`,
      `filter INPUT -d 127.0.0.0/8 -m comment --comment "coxswain node n1 loopback guard" -j COX-IN-${tag}`,
    ]);
  });

  it('gives a service port without backends no translation (the local route refuses it)', () => {
    const rules = renderRules({ servers: [{ ...web, backends: [] }] }, cfg);
    expect(rules.nat.get(`COX-SVC-${tag}`)).toEqual([]);
    expect(rules.nat.get(`COX-NP-${tag}`)).toEqual([]);
    expect(rules.nat.has(serverChain(tag, web))).toBe(false);
  });
});

describe('restore input', () => {
  const first = renderRules(plan, cfg);

  it('rewrites only the chains that changed, and removes chains that went', () => {
    const fewer = renderRules(
      { ...plan, servers: [sticky, { ...web, backends: web.backends.slice(1) }] },
      cfg,
    );
    const work = restoreInput(fewer, first, undefined);
    const gone = backendChain(tag, web, '172.17.0.2', 8080);
    expect(work?.text).toBe(
      [
        '*nat',
        `:${serverChain(tag, web)} - [0:0]`,
        `:${gone} - [0:0]`,
        ...(fewer.nat.get(serverChain(tag, web)) ?? []).map((r) => `-A ${serverChain(tag, web)} ${r}`),
        `-X ${gone}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(work?.changed).toBe(2);
    expect(restoreInput(fewer, fewer, undefined)).toBeUndefined();
  });

  it('on a full apply rewrites all, removes strays, and leaves each jump exactly once', () => {
    const stray = `COX-${tag}-S0000000000`;
    const jump = first.jumps[0];
    const saved = parseSaved(
      [
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':DOCKER - [0:0]',
        `:COX-SVC-${tag} - [0:0]`,
        `:${stray} - [0:0]`,
        ':COX-SVC-other123 - [0:0]',
        `-A PREROUTING ${jump.spec}`,
        '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
        `-A PREROUTING ${jump.spec}`,
        `-A PREROUTING -d 10.99.0.0/16 -m comment --comment "coxswain node n1 cluster IPs" -j COX-SVC-${tag}`,
        '-A PREROUTING -d 10.96.0.0/16 -j COX-SVC-other123',
        'COMMIT',
        '*filter',
        ':INPUT ACCEPT [0:0]',
        'COMMIT',
      ].join('\n'),
      tag,
    );
    expect([...(saved.chains.get('nat') ?? [])]).toEqual([`COX-SVC-${tag}`, stray]);
    expect(saved.jumps).toHaveLength(3);
    const text = restoreInput(first, undefined, saved)?.text ?? '';
    const lines = text.split('\n');
    // The duplicate and the stale jump go; the other node's jump stays.
    expect(lines.filter((l) => l.startsWith('-D '))).toEqual([
      `-D PREROUTING ${jump.spec}`,
      `-D PREROUTING -d 10.99.0.0/16 -m comment --comment "coxswain node n1 cluster IPs" -j COX-SVC-${tag}`,
    ]);
    expect(lines.filter((l) => l.startsWith('-I PREROUTING'))).toEqual([
      `-I PREROUTING 1 ${first.jumps[1].spec}`,
    ]);
    expect(lines).toContain(`-X ${stray}`);
    expect(text).not.toContain('other123');
    for (const chain of first.nat.keys()) expect(lines).toContain(`:${chain} - [0:0]`);
    expect(lines.indexOf('*filter')).toBeGreaterThan(lines.indexOf('COMMIT'));
  });

  it('removes every chain and jump of this node, and nothing else', () => {
    const saved = parseSaved(
      [
        '*nat',
        `:COX-SVC-${tag} - [0:0]`,
        ':COX-SVC-other123 - [0:0]',
        `-A OUTPUT ${first.jumps[2].spec}`,
        '-A OUTPUT -j COX-SVC-other123',
        'COMMIT',
      ].join('\n'),
      tag,
    );
    expect(removalInput(saved)).toBe(
      [
        '*nat',
        `:COX-SVC-${tag} - [0:0]`,
        `-D OUTPUT ${first.jumps[2].spec}`,
        `-X COX-SVC-${tag}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(removalInput(parseSaved('*nat\nCOMMIT\n', tag))).toBeUndefined();
  });

  it('tells a kernel state that still matches from one that drifted (flushed, missing, doubled)', () => {
    const save = (mutate: (lines: string[]) => string[] = (l) => l) => {
      const lines: string[] = [];
      for (const table of ['nat', 'filter'] as const) {
        lines.push(`*${table}`);
        const chains = table === 'nat' ? first.nat : first.filter;
        for (const c of chains.keys()) lines.push(`:${c} - [0:0]`);
        for (const j of first.jumps.filter((x) => x.table === table)) lines.push(`-A ${j.chain} ${j.spec}`);
        for (const [c, rules] of chains) for (const r of rules) lines.push(`-A ${c} ${r}`);
        lines.push('COMMIT');
      }
      return parseSaved(mutate(lines).join('\n'), tag);
    };
    expect(matchesSaved(first, save())).toBe(true);
    const svcChain = `COX-SVC-${tag}`;
    expect(
      matchesSaved(
        first,
        save((l) => l.filter((x) => !x.startsWith(`-A ${svcChain} `))),
      ),
    ).toBe(false);
    expect(
      matchesSaved(
        first,
        save((l) => l.filter((x) => !x.includes(serverChain(tag, web)))),
      ),
    ).toBe(false);
    const jump = `-A ${first.jumps[0].chain} ${first.jumps[0].spec}`;
    expect(
      matchesSaved(
        first,
        save((l) => [...l.slice(0, 2), jump, ...l.slice(2)]),
      ),
    ).toBe(false);
    expect(
      matchesSaved(
        first,
        save((l) => l.filter((x) => x !== jump)),
      ),
    ).toBe(false);
  });
});

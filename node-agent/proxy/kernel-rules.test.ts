/**
 * The kernel adapter against real iptables, inside a network namespace this test creates (so
 * nothing here touches the host's tables): backends are busybox httpd processes on loopback
 * addresses of the namespace, clients are busybox wget in it. Needs root, iptables and
 * busybox (CI runs as root and installs them).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './commands.js';
import { parseCidr } from './ipv4.js';
import { chainTag, parseSaved } from './kernel-render.js';
import { KernelProxyRules } from './kernel-rules.js';
import { ensureLocalRoute } from './local-net.js';
import type { ProxyPlan, VirtualServer } from './rules.js';

const ns = `coxk-${process.pid}`;
const prefix = ['ip', 'netns', 'exec', ns];
const cidr = parseCidr('10.96.0.0/16');
const dir = mkdtempSync(join(tmpdir(), 'cox-kernel-rules-'));
const servers: ChildProcess[] = [];
const backendIps = ['127.0.0.11', '127.0.0.12', '127.0.0.13'];

function server(
  id: string,
  clusterIP: string,
  backends: string[],
  extra: Partial<VirtualServer> = {},
): VirtualServer {
  return {
    id,
    namespace: 'prod',
    service: id.split('/')[1].split(':')[0],
    portName: '',
    protocol: 'TCP',
    clusterIP,
    port: 80,
    backends: backends.map((ip) => ({ ip, port: 8080 })),
    ...extra,
  };
}

/** One HTTP GET from inside the namespace; the body, or undefined when it failed. */
async function get(url: string): Promise<string | undefined> {
  try {
    const { stdout } = await runCommand(['busybox', 'wget', '-q', '-O', '-', url], {
      prefix,
      timeoutMs: 5_000,
    });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

async function answers(url: string, tries: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < tries; i += 1) out.push((await get(url)) ?? 'failed');
  return out;
}

/** The distinct answers of up to `tries` requests, stopping once all of `expected` were seen. */
async function distinct(url: string, expected: readonly string[], tries = 80): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < tries && ![...expected].every((e) => seen.has(e)); i += 1)
    seen.add((await get(url)) ?? 'failed');
  // A few more, so an answer that should not come has its chance to show.
  for (const a of await answers(url, 5)) seen.add(a);
  return seen;
}

async function saved(tag: string) {
  const nat = await runCommand(['iptables-save', '-t', 'nat'], { prefix });
  const filter = await runCommand(['iptables-save', '-t', 'filter'], { prefix });
  return parseSaved(`${nat.stdout}\n${filter.stdout}`, tag);
}

async function counts(tag: string): Promise<{ chains: number; jumps: Record<string, number> }> {
  const s = await saved(tag);
  const jumps: Record<string, number> = {};
  for (const j of s.jumps)
    jumps[`${j.table} ${j.chain} ${j.spec}`] = (jumps[`${j.table} ${j.chain} ${j.spec}`] ?? 0) + 1;
  return { chains: [...s.chains.values()].reduce((n, c) => n + c.size, 0), jumps };
}

beforeAll(async () => {
  await runCommand(['ip', 'netns', 'add', ns]);
  await runCommand(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  // A way out of the namespace that leads nowhere: where a virtual IP would go without its local route.
  // (A veth pair with both ends in the namespace: nothing answers on it.)
  await runCommand(['ip', '-n', ns, 'link', 'add', 'nowhere0', 'type', 'veth', 'peer', 'name', 'nowhere1']);
  await runCommand(['ip', '-n', ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'nowhere0']);
  await runCommand(['ip', '-n', ns, 'link', 'set', 'nowhere0', 'up']);
  await runCommand(['ip', '-n', ns, 'link', 'set', 'nowhere1', 'up']);
  await runCommand(['ip', '-n', ns, 'route', 'add', 'default', 'via', '192.0.2.2']);
  await ensureLocalRoute(cidr, prefix);
  for (const ip of backendIps) {
    const www = join(dir, ip);
    rmSync(www, { recursive: true, force: true });
    await runCommand(['mkdir', '-p', www]);
    writeFileSync(join(www, 'index.html'), `${ip}\n`);
    servers.push(
      spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', `${ip}:8080`, '-h', www], {
        stdio: 'ignore',
      }),
    );
  }
  for (const ip of backendIps) {
    for (let i = 0; i < 50 && (await get(`http://${ip}:8080/`)) === undefined; i += 1)
      await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  for (const s of servers) if (s.pid !== undefined) process.kill(s.pid, 'SIGKILL');
  await runCommand(['ip', 'netns', 'del', ns]).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe('kernel proxy rules (iptables in a private network namespace)', () => {
  const opts = { node: 'k1', nodeIp: '127.0.1.1', serviceCidr: cidr, commandPrefix: prefix };
  const tag = chainTag('k1', '127.0.1.1');
  const web = server('prod/web:80/TCP', '10.96.0.20', backendIps, { nodePort: 30080 });
  const plan: ProxyPlan = { servers: [web] };

  it('reaches every backend through the cluster IP and the node port', async () => {
    const rules = new KernelProxyRules(opts);
    expect((await rules.apply(plan)).full).toBe(true);
    expect(await distinct('http://10.96.0.20/', backendIps)).toEqual(new Set(backendIps));
    expect(await distinct('http://127.0.1.1:30080/', backendIps)).toEqual(new Set(backendIps));
  });

  it('leaves each jump exactly once after restarts, and rewrites only what changed', async () => {
    const before = await counts(tag);
    expect(Object.values(before.jumps)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    for (let i = 0; i < 3; i += 1) {
      const restarted = new KernelProxyRules(opts);
      await restarted.apply(plan);
      expect(await counts(tag)).toEqual(before);
    }
    const rules = new KernelProxyRules(opts);
    await rules.apply(plan);
    const fewer: ProxyPlan = { servers: [{ ...web, backends: web.backends.slice(1) }] };
    const r = await rules.apply(fewer);
    expect(r).toEqual({ changed: 2, full: false }); // the service chain and the removed backend's chain
    expect(await distinct('http://10.96.0.20/', backendIps.slice(1), 60)).toEqual(
      new Set(backendIps.slice(1)),
    );
    expect((await counts(tag)).chains).toBe(before.chains - 1);
  });

  it('checks its chains on a resync, and rewrites them when someone flushed them', async () => {
    const rules = new KernelProxyRules(opts);
    await rules.apply(plan, { full: true });
    expect(await rules.apply(plan, { verify: true })).toEqual({ changed: 0, full: false });
    await runCommand(['iptables', '-t', 'nat', '-F', `COX-SVC-${tag}`], { prefix });
    expect(await get('http://10.96.0.20/')).toBeUndefined();
    expect((await rules.apply(plan)).changed).toBe(0); // an incremental apply does not look
    const healed = await rules.apply(plan, { verify: true });
    expect(healed.full).toBe(true);
    expect(backendIps).toContain(await get('http://10.96.0.20/'));
  });

  it('keeps a client on one backend under ClientIP affinity', async () => {
    const rules = new KernelProxyRules(opts);
    await rules.apply({
      servers: [server('prod/web:80/TCP', '10.96.0.20', backendIps, { affinitySeconds: 600 })],
    });
    const seen = await answers('http://10.96.0.20/', 15);
    expect(new Set(seen).size).toBe(1);
    expect(backendIps).toContain(seen[0]);
  });

  it('coexists with another node sharing the kernel; each removes only its own', async () => {
    const other = new KernelProxyRules({ ...opts, node: 'k2', nodeIp: '127.0.1.2' });
    const otherTag = chainTag('k2', '127.0.1.2');
    await other.apply({
      servers: [server('prod/web:80/TCP', '10.96.0.20', backendIps.slice(0, 1), { nodePort: 30080 })],
    });
    const mine = new KernelProxyRules(opts);
    await mine.apply(plan);
    expect(await get('http://127.0.1.2:30080/')).toBe(backendIps[0]);
    await other.close();
    expect(await counts(otherTag)).toEqual({ chains: 0, jumps: {} });
    expect(await distinct('http://10.96.0.20/', backendIps)).toEqual(new Set(backendIps));
    expect(await get('http://127.0.1.2:30080/')).toBeUndefined();
  });

  it('removes the chains of a deleted service, and everything on close', async () => {
    const rules = new KernelProxyRules(opts);
    await rules.apply({ servers: [web, server('prod/api:80/TCP', '10.96.0.21', backendIps)] });
    const two = await counts(tag);
    await rules.apply(plan);
    expect((await counts(tag)).chains).toBe(two.chains - 4); // api's service chain and its 3 backends
    await rules.apply({ servers: [] });
    expect(await get('http://10.96.0.20/')).toBeUndefined();
    expect((await counts(tag)).chains).toBe(5); // the dispatch, node port and masquerade chains, and the two guards
    await rules.close();
    expect(await counts(tag)).toEqual({ chains: 0, jumps: {} });
    const left = await runCommand(['iptables-save'], { prefix });
    expect(left.stdout).not.toContain('COX-');
  });

  it('rejects a packet to a virtual IP that would leave the machine (the guard behind the local route)', async () => {
    const rules = new KernelProxyRules(opts);
    await rules.apply(plan);
    await runCommand(['ip', 'route', 'del', 'local', cidr.text, 'dev', 'lo', 'table', 'local'], { prefix });
    try {
      // An untranslated port: without the local route it would follow the default route out.
      expect(await get('http://10.96.0.20:81/')).toBeUndefined();
      const { stdout } = await runCommand(
        ['iptables', '-t', 'filter', '-L', `COX-FW-${tag}`, '-v', '-n', '-x'],
        { prefix },
      );
      const packets = Number(
        stdout
          .split('\n')
          .find((l) => l.includes('REJECT'))
          ?.trim()
          .split(/\s+/)[0],
      );
      expect(packets).toBeGreaterThan(0);
    } finally {
      await ensureLocalRoute(cidr, prefix);
      await rules.close();
    }
  });
});

/**
 * The userspace adapter with real sockets, all on loopback (a service CIDR inside 127.0.0.0/8
 * is always local, so this needs no privileges): backends are servers of this process.
 */

import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyPlan, VirtualServer } from './rules.js';
import { UserspaceProxyRules } from './userspace-rules.js';

const vip = '127.77.0.20';
const nodeIp = '127.77.1.1';
const backends: { server: Server; port: number; name: string }[] = [];
const open: UserspaceProxyRules[] = [];
let vipPort = 0;

/** A backend answering each connection with its name, then closing. */
function nameServer(name: string): Promise<{ server: Server; port: number; name: string }> {
  const server = createServer((s) => s.end(`${name}\n`));
  return new Promise((resolve) =>
    server.listen({ host: '127.0.0.1', port: 0 }, () =>
      resolve({ server, port: (server.address() as { port: number }).port, name }),
    ),
  );
}

/** What the proxy at host:port answers (a backend's name), or the error code. */
function ask(host: string, port: number, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    s.on('close', () => resolve(out.trim() || 'closed'));
  });
}

function server(over: Partial<VirtualServer> = {}): VirtualServer {
  return {
    id: 'prod/web:80/TCP',
    namespace: 'prod',
    service: 'web',
    portName: '',
    protocol: 'TCP',
    clusterIP: vip,
    port: vipPort,
    backends: backends.map((b) => ({ ip: '127.0.0.1', port: b.port })),
    ...over,
  };
}

function rules(
  opts: Partial<ConstructorParameters<typeof UserspaceProxyRules>[0]> = {},
): UserspaceProxyRules {
  const r = new UserspaceProxyRules({ nodeIp, bindRetryMs: 50, ...opts });
  open.push(r);
  return r;
}

async function listening(r: UserspaceProxyRules, address: string): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if (r.addresses().some((a) => a.address === address && a.listening)) return;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`${address} not listening`);
}

beforeAll(async () => {
  for (const name of ['a', 'b', 'c']) backends.push(await nameServer(name));
  // A free port number for the virtual IP.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen({ host: vip, port: 0 }, () => r()));
  vipPort = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
});

afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

afterAll(() => {
  for (const b of backends) b.server.close();
});

describe('userspace proxy rules', () => {
  it('balances round robin over the ready backends of a cluster IP and a node port', async () => {
    const r = rules();
    await r.apply({ servers: [server({ nodePort: vipPort })] });
    await listening(r, `${vip}:${vipPort}`);
    await listening(r, `${nodeIp}:${vipPort}`);
    const got: string[] = [];
    for (let i = 0; i < 6; i += 1) got.push(await ask(vip, vipPort));
    expect(got.sort()).toEqual(['a', 'a', 'b', 'b', 'c', 'c']);
    const viaNode = new Set<string>();
    for (let i = 0; i < 3; i += 1) viaNode.add(await ask(nodeIp, vipPort));
    expect(viaNode).toEqual(new Set(['a', 'b', 'c']));
  });

  it('keeps each client on its backend under ClientIP affinity, until the timeout', async () => {
    let now = 1_000_000;
    const r = rules({ nowMs: () => now });
    await r.apply({ servers: [server({ affinitySeconds: 60 })] });
    await listening(r, `${vip}:${vipPort}`);
    const first = await ask(vip, vipPort, '127.0.0.5');
    for (let i = 0; i < 6; i += 1) expect(await ask(vip, vipPort, '127.0.0.5')).toBe(first);
    const other = new Set<string>();
    for (let i = 0; i < 3; i += 1) other.add(await ask(vip, vipPort, `127.0.0.${10 + i}`));
    expect(other.size).toBeGreaterThan(1);
    now += 61_000;
    const after = new Set<string>();
    for (let i = 0; i < 3; i += 1) {
      after.add(await ask(vip, vipPort, '127.0.0.6'));
      now += 61_000;
    }
    expect(after.size).toBeGreaterThan(1);
  });

  it('skips a backend that refuses', async () => {
    const dead = createServer();
    await new Promise<void>((res) => dead.listen({ host: '127.0.0.1', port: 0 }, () => res()));
    const deadPort = (dead.address() as { port: number }).port;
    await new Promise<void>((res) => dead.close(() => res()));
    const r = rules();
    await r.apply({
      servers: [
        server({
          backends: [
            { ip: '127.0.0.1', port: deadPort },
            { ip: '127.0.0.1', port: backends[0].port },
          ],
        }),
      ],
    });
    await listening(r, `${vip}:${vipPort}`);
    for (let i = 0; i < 4; i += 1) expect(await ask(vip, vipPort)).toBe('a');
  });

  it('updates backends in place, and closes the listener of a removed service or one without backends', async () => {
    const r = rules();
    await r.apply({ servers: [server()] });
    await listening(r, `${vip}:${vipPort}`);
    expect(
      (await r.apply({ servers: [server({ backends: [{ ip: '127.0.0.1', port: backends[1].port }] })] }))
        .changed,
    ).toBe(1);
    for (let i = 0; i < 3; i += 1) expect(await ask(vip, vipPort)).toBe('b');
    expect(
      (await r.apply({ servers: [server({ backends: [{ ip: '127.0.0.1', port: backends[1].port }] })] }))
        .changed,
    ).toBe(0);
    await r.apply({ servers: [server({ backends: [] })] });
    expect(r.addresses()).toEqual([]);
    expect(await ask(vip, vipPort)).toBe('ECONNREFUSED');
    await r.apply({ servers: [server()] });
    await listening(r, `${vip}:${vipPort}`);
    await r.apply({ servers: [] });
    expect(await ask(vip, vipPort)).toBe('ECONNREFUSED');
  });

  it('bounds open connections', async () => {
    const holder = createServer(() => {}); // accepts and never answers
    await new Promise<void>((res) => holder.listen({ host: '127.0.0.1', port: 0 }, () => res()));
    const port = (holder.address() as { port: number }).port;
    const r = rules({ connectionsMax: 2 });
    await r.apply({ servers: [server({ backends: [{ ip: '127.0.0.1', port }] })] });
    await listening(r, `${vip}:${vipPort}`);
    const held: Socket[] = [connect({ host: vip, port: vipPort }), connect({ host: vip, port: vipPort })];
    for (let i = 0; i < 100 && r.connections < 2; i += 1) await new Promise((res) => setTimeout(res, 10));
    expect(r.connections).toBe(2);
    expect(await ask(vip, vipPort)).toBe('closed');
    for (const s of held) s.destroy();
    for (let i = 0; i < 100 && r.connections > 0; i += 1) await new Promise((res) => setTimeout(res, 10));
    expect(r.connections).toBe(0);
    holder.close();
  });

  it('pipes large transfers both ways intact, with half-close', async () => {
    // A backend that reads everything, then answers with the hash and size of what it read.
    const hasher = createServer({ allowHalfOpen: true }, (s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      s.on('end', () => {
        const body = Buffer.alloc(8 * 1024 * 1024, 7);
        s.write(`${h.digest('hex')} ${n}\n`);
        s.end(body);
      });
    });
    await new Promise<void>((res) => hasher.listen({ host: '127.0.0.1', port: 0 }, () => res()));
    const port = (hasher.address() as { port: number }).port;
    const r = rules();
    await r.apply({ servers: [server({ backends: [{ ip: '127.0.0.1', port }] })] });
    await listening(r, `${vip}:${vipPort}`);
    const upload = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < upload.length; i += 1) upload[i] = i % 251;
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: vip, port: vipPort, allowHalfOpen: true });
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
      s.end(upload);
    });
    const newline = reply.indexOf(10);
    expect(reply.subarray(0, newline).toString()).toBe(
      `${createHash('sha256').update(upload).digest('hex')} ${upload.length}`,
    );
    expect(reply.length - newline - 1).toBe(8 * 1024 * 1024);
    hasher.close();
  });

  it('waits for a virtual IP another agent holds, and takes it over when that one stops', async () => {
    const first = rules();
    const second = rules();
    await first.apply({ servers: [server()] });
    await listening(first, `${vip}:${vipPort}`);
    await second.apply({ servers: [server()] });
    await new Promise((res) => setTimeout(res, 150));
    expect(second.addresses()).toEqual([
      { address: `${vip}:${vipPort}`, listening: false, server: 'prod/web:80/TCP' },
    ]);
    await first.close();
    await listening(second, `${vip}:${vipPort}`);
    expect(['a', 'b', 'c']).toContain(await ask(vip, vipPort));
  });

  it('serves TCP only, and says so once for other protocols', async () => {
    const lines: string[] = [];
    const r = rules({ log: (l) => lines.push(l) });
    const plan: ProxyPlan = { servers: [server({ id: 'prod/dns:53/UDP', protocol: 'UDP', port: 53 })] };
    await r.apply(plan);
    await r.apply(plan);
    expect(r.addresses()).toEqual([]);
    expect(lines).toEqual(['proxy: prod/dns:53/UDP: UDP is not served in userspace mode (TCP only)']);
  });
});

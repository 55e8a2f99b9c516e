/**
 * The kernel proxy rules of a real `cox agent` process across `kill -9` and restarts: the rules
 * outlive a killed agent (traffic keeps flowing), the restarted agent rewrites its chains with
 * every jump exactly once, a service deleted while the agent was down is gone after it returns,
 * and SIGTERM removes everything of the node. The hollow runtime runs the (pod-less) node; the
 * backends are addresses on the docker bridge no packet is sent to. Needs root and iptables.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { ApiObject } from '../../core/index.js';
import { runCommand } from '../../node-agent/proxy/commands.js';
import { chainTag, parseSaved } from '../../node-agent/proxy/kernel-render.js';
import { waitFor } from '../fixtures/e2e.js';
import { AgentProcess } from './agent-process.js';
import { MasterCluster } from './master-cluster.js';

const node = `mp-proxy-${process.pid}`;
const nodeIp = '127.0.1.3';
const cidr = '10.99.3.0/24';
const tag = chainTag(node, nodeIp);
let cluster: MasterCluster;
let api: ApiClient;
let agent: AgentProcess | undefined;
let dir: string;

async function startAgent(): Promise<AgentProcess> {
  agent = await AgentProcess.start({
    name: node,
    masters: cluster.apiAddresses(),
    dataDir: join(dir, 'agent'),
    logPath: join(dir, 'agent.log'),
    runtime: 'hollow',
    args: [
      '--node-ip',
      nodeIp,
      '--proxy-mode',
      'kernel',
      '--service-cidr',
      cidr,
      '--cluster-dns',
      '10.99.3.10',
    ],
  });
  return agent;
}

async function kernel(): Promise<{ chains: number; jumps: number[]; text: string }> {
  const nat = (await runCommand(['iptables-save', '-t', 'nat'])).stdout;
  const filter = (await runCommand(['iptables-save', '-t', 'filter'])).stdout;
  const saved = parseSaved(`${nat}\n${filter}`, tag);
  const counts = new Map<string, number>();
  for (const j of saved.jumps)
    counts.set(`${j.table} ${j.chain} ${j.spec}`, (counts.get(`${j.table} ${j.chain} ${j.spec}`) ?? 0) + 1);
  return {
    chains: [...saved.chains.values()].reduce((n, c) => n + c.size, 0),
    jumps: [...counts.values()],
    text: nat,
  };
}

/** The port the DNS redirect points at: each start of the agent picks a new one. */
function dnsPort(text: string): string | undefined {
  return /-p udp -m udp --dport 53 .*--to-destination 10\.99\.3\.10:(\d+)/.exec(text)?.[1];
}

async function service(name: string, ip: string, nodePort: number, backends: string[]): Promise<void> {
  await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { type: 'NodePort', clusterIP: ip, ports: [{ port: 80, targetPort: 8080, nodePort }] },
  } as ApiObject);
  await api.create({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'default' },
    subsets: [{ addresses: backends.map((b) => ({ ip: b })), ports: [{ port: 8080 }] }],
  } as ApiObject);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cox-mp-proxy-'));
  cluster = await MasterCluster.start({ size: 3, tickMs: 50, masterArgs: ['--service-cidr', cidr] });
  await cluster.waitForLeader(15_000);
  api = cluster.client();
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  api?.close();
  await cluster?.close();
  await runCommand(['ip', 'route', 'del', 'local', cidr, 'dev', 'lo', 'table', 'local']).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('kernel proxy rules of a cox agent process across kill -9', () => {
  it('keeps its rules once through kill -9 and restarts, drops a service deleted meanwhile, and removes all on SIGTERM', async () => {
    const first = await startAgent();
    expect(first.ready.proxy).toBe('kernel');
    await service('a', '10.99.3.20', 31003, ['172.17.254.1', '172.17.254.2']);
    await service('b', '10.99.3.21', 31004, ['172.17.254.3']);
    await waitFor(
      'both services in the rules',
      async () => {
        const k = await kernel();
        return k.text.includes('172.17.254.2:8080') && k.text.includes('172.17.254.3:8080') ? k : undefined;
      },
      30_000,
    );
    const steady = await kernel();
    expect(steady.jumps).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // 5 top chains, 2 service chains, 3 backend chains.
    expect(steady.chains).toBe(10);

    await first.kill();
    expect((await kernel()).chains).toBe(10); // a killed agent's rules keep serving
    for (let i = 0; i < 2; i += 1) {
      const before = dnsPort((await kernel()).text);
      expect(before).toBeDefined();
      const again = await startAgent();
      await waitFor(
        'the restarted agent rewrote its chains',
        async () => {
          const port = dnsPort((await kernel()).text);
          return port !== undefined && port !== before ? true : undefined;
        },
        30_000,
      );
      expect((await kernel()).chains).toBe(10);
      expect((await kernel()).jumps).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
      await again.kill();
    }

    await api.delete({ kind: 'Service', namespace: 'default', name: 'b' });
    await api.delete({ kind: 'Endpoints', namespace: 'default', name: 'b' });
    expect((await kernel()).text).toContain('10.99.3.21');
    await startAgent();
    await waitFor(
      'the service deleted while the agent was down is gone',
      async () => {
        const k = await kernel();
        return k.text.includes('10.99.3.21') || k.text.includes('31004') ? undefined : k;
      },
      30_000,
    );
    const after = await kernel();
    expect(after.chains).toBe(8);
    expect(after.jumps).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);

    await agent?.stop();
    expect(await kernel()).toMatchObject({ chains: 0, jumps: [] });
  }, 180_000);
});

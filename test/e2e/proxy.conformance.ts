/**
 * The conformance suite of the service proxy: one set of tests on real Docker, real masters and
 * the real data path, run against each proxy mode (kernel: iptables; userspace: the agent's TCP
 * proxy). Two in-process agents on the docker runtime play two nodes of a local cluster
 * (127.0.1.1 and 127.0.1.2, sharing this machine's kernel); backends are busybox httpd pods
 * answering their own names, with an httpGet readiness probe on a file the test removes.
 *
 * Services are selector-less with explicit cluster IPs and node ports (the masters do not
 * allocate them yet); their Endpoints are written by the test from the pods' readiness, as the
 * Endpoints controller writes them (test/fixtures/endpoints-writer.ts).
 *
 * Network safety: every suite uses its own service CIDR (made local by the agents before any
 * rule, removed by this suite at the end once its agents are gone); requests go only to
 * loopback, to virtual IPs of that CIDR and to containers.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { ApiObject, Container, Pod } from '../../core/index.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { DockerRuntime } from '../../node-agent/docker-runtime.js';
import { runCommand } from '../../node-agent/proxy/commands.js';
import { Rcode, RecordType } from '../../node-agent/proxy/dns-message.js';
import { chainTag, parseSaved } from '../../node-agent/proxy/kernel-render.js';
import { runtimeLabels } from '../../node-agent/runtime.js';
import { resolveDns } from '../fixtures/dns-client.js';
import { removeNodeContainers, waitFor } from '../fixtures/e2e.js';
import { EndpointsWriter } from '../fixtures/endpoints-writer.js';
import { MasterCluster } from '../multiprocess/master-cluster.js';

export interface ProxySuiteOptions {
  mode: 'kernel' | 'userspace';
  /** A /24 no other suite uses. */
  serviceCidr: string;
  /** A node port no other suite uses. */
  nodePort: number;
  /** A short word for node names. */
  tag: string;
}

const docker = new Docker();
const namespace = 'shop';

/** An HTTP GET with a fresh connection: the body, or the error code. */
export function httpGet(host: string, port: number, path = '/', timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve(body.trim()));
      res.on('error', () => resolve('error'));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

/** Whether a TCP connection to host:port is refused. */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(3_000, () => {
      s.destroy();
      resolve(false);
    });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

export function describeProxyConformance(o: ProxySuiteOptions): void {
  const net = o.serviceCidr.split('/')[0].split('.').slice(0, 3).join('.');
  const webIP = `${net}.20`;
  const stickyIP = `${net}.21`;
  const dnsIP = `${net}.10`;
  const nodes = [
    { name: `px${o.tag}1-${process.pid}`, ip: '127.0.1.1' },
    { name: `px${o.tag}2-${process.pid}`, ip: '127.0.1.2' },
  ];
  const webPods = [
    { name: 'web-0', node: 0, extra: { hostname: 'web-0', subdomain: 'db' } },
    { name: 'web-1', node: 0, extra: {} },
    { name: 'web-2', node: 1, extra: {} },
  ];
  const dir = mkdtempSync(join(tmpdir(), `cox-proxy-${o.tag}-`));
  let cluster: MasterCluster;
  let api: ApiClient;
  const agents: (NodeAgent | undefined)[] = [undefined, undefined];
  const clients: ApiClient[] = [];
  let writer: EndpointsWriter;

  function startAgent(i: number): NodeAgent {
    const client = cluster.client();
    clients.push(client);
    const n = nodes[i];
    const agent = new NodeAgent({
      node: n.name,
      nodeIp: n.ip,
      api: client,
      runtime: new DockerRuntime({ node: n.name, docker }),
      dataDir: join(dir, n.name),
      memoryDir: join('/dev/shm', `cox-${n.name}`),
      podResyncMs: 1_000,
      proxy: { mode: o.mode, serviceCidr: o.serviceCidr, clusterDns: dnsIP },
      log: process.env.COX_E2E_LOG ? (l) => console.log(`[${n.name}] ${l}`) : () => {},
    });
    agents[i] = agent;
    return agent;
  }

  async function create(obj: unknown): Promise<ApiObject> {
    return api.create(obj as ApiObject);
  }

  async function createWebPod(p: (typeof webPods)[number]): Promise<void> {
    const container: Container = {
      name: 'web',
      image: 'coxswain/busybox',
      command: [
        'sh',
        '-c',
        'mkdir -p /www && hostname > /www/index.html && echo ok > /www/ready && exec httpd -f -p 8080 -h /www',
      ],
      ports: [{ name: 'http', containerPort: 8080 }],
      readinessProbe: {
        httpGet: { path: '/ready', port: 8080 },
        periodSeconds: 1,
        timeoutSeconds: 1,
        failureThreshold: 1,
        successThreshold: 1,
      },
    };
    await create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace, labels: { app: 'web' } },
      spec: {
        nodeName: nodes[p.node].name,
        terminationGracePeriodSeconds: 1,
        containers: [container],
        ...p.extra,
      },
    });
  }

  async function pod(name: string): Promise<Pod | undefined> {
    return (await api.get({ kind: 'Pod', namespace, name }).catch(() => undefined)) as Pod | undefined;
  }

  /** The app container of `podName`. */
  async function containerOf(podName: string): Promise<string> {
    const found = await docker.listContainers({
      filters: {
        label: [
          `${runtimeLabels.podName}=${podName}`,
          `${runtimeLabels.podNamespace}=${namespace}`,
          `${runtimeLabels.role}=app`,
        ],
      },
    });
    const mine = found.filter((c) => nodes.some((n) => c.Labels[runtimeLabels.node] === n.name));
    if (mine.length === 0) throw new Error(`no running container of pod ${podName}`);
    return mine[0].Id;
  }

  /** Runs `script` with sh in the pod's container; resolves with stdout and the exit code. */
  async function inPod(podName: string, script: string): Promise<{ out: string; code: number }> {
    const runtime = new DockerRuntime({ node: nodes[0].name, docker });
    const session = await runtime.exec(await containerOf(podName), { command: ['sh', '-c', script] });
    let out = '';
    for await (const chunk of session.output)
      if (chunk.stream === 'stdout') out += Buffer.from(chunk.data).toString();
    return { out, code: await session.exitCode };
  }

  /** `n` requests from inside a pod, each on a new connection; the answers (or "failed"). */
  async function fromPod(podName: string, url: string, n: number): Promise<string[]> {
    const { out } = await inPod(
      podName,
      `for i in $(seq ${n}); do timeout 5 wget -q -O - ${url} || echo failed; done`,
    );
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }

  async function fromHost(host: string, port: number, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i += 1) out.push(await httpGet(host, port));
    return out;
  }

  /** Requests until every name in `want` answered (or `n` tries); the distinct answers. */
  async function until(
    ask: () => Promise<string[]>,
    want: readonly string[],
    rounds = 10,
  ): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < rounds && !want.every((w) => seen.has(w)); i += 1)
      for (const a of await ask()) seen.add(a);
    return seen;
  }

  async function endpointsOf(name: string): Promise<{ ready: string[]; notReady: string[] }> {
    const e = (await api.get({ kind: 'Endpoints', namespace, name }).catch(() => undefined)) as
      | { subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[] }
      | undefined;
    return {
      ready: (e?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)),
      notReady: (e?.subsets ?? []).flatMap((s) => (s.notReadyAddresses ?? []).map((a) => a.ip)),
    };
  }

  /**
   * Waits until the named pods are ready in the web Endpoints, and every running agent's rules
   * include the Services and Endpoints as they are now.
   */
  async function converged(ready: readonly string[]): Promise<void> {
    const ips = await Promise.all(ready.map((n) => ipOf(n)));
    await waitFor(
      'the pods ready in the endpoints',
      async () => {
        const e = await endpointsOf('web');
        return ips.every((ip) => e.ready.includes(ip)) ? true : undefined;
      },
      60_000,
    );
    const rv = async (kind: string) =>
      Math.max(...(await api.list(kind, { namespace })).items.map((i) => Number(i.metadata.resourceVersion)));
    const [services, endpoints] = [await rv('Service'), await rv('Endpoints')];
    for (const a of agents) {
      await a?.proxyApplied('Service', services);
      await a?.proxyApplied('Endpoints', endpoints);
    }
  }

  async function ipOf(name: string): Promise<string> {
    return waitFor(`${name} has an IP`, async () => (await pod(name))?.status?.podIP, 30_000);
  }

  /** Our chains and jumps of one node in the kernel (kernel mode). */
  async function kernelState(i: number): Promise<{ chains: number; jumps: number[]; text: string }> {
    const nat = (await runCommand(['iptables-save', '-t', 'nat'])).stdout;
    const filter = (await runCommand(['iptables-save', '-t', 'filter'])).stdout;
    const saved = parseSaved(`${nat}\n${filter}`, chainTag(nodes[i].name, nodes[i].ip));
    const counts = new Map<string, number>();
    for (const j of saved.jumps)
      counts.set(`${j.table} ${j.chain} ${j.spec}`, (counts.get(`${j.table} ${j.chain} ${j.spec}`) ?? 0) + 1);
    return {
      chains: [...saved.chains.values()].reduce((n, c) => n + c.size, 0),
      jumps: [...counts.values()],
      text: `${nat}\n${filter}`,
    };
  }

  describe(`service proxy conformance: ${o.mode} mode`, () => {
    beforeAll(async () => {
      await docker.ping();
      // The masters allocate from the suite's own CIDR (each mode has one), as the agents route it.
      cluster = await MasterCluster.start({
        size: 3,
        tickMs: 50,
        masterArgs: ['--service-cidr', o.serviceCidr],
      });
      await cluster.waitForLeader(15_000);
      api = cluster.client();
      await Promise.all([startAgent(0).start(), startAgent(1).start()]);
      await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }).catch(
        () => undefined,
      );
      const port = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' };
      await create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace },
        spec: { type: 'NodePort', clusterIP: webIP, ports: [{ ...port, nodePort: o.nodePort }] },
      });
      await create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'sticky', namespace },
        spec: { clusterIP: stickyIP, sessionAffinity: 'ClientIP', ports: [port] },
      });
      await create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'db', namespace },
        spec: { clusterIP: 'None', ports: [port] },
      });
      const ports = [{ name: 'http', port: 8080 }];
      writer = new EndpointsWriter(() => api, namespace, [
        { name: 'web', labelSelector: 'app=web', ports },
        { name: 'sticky', labelSelector: 'app=web', ports },
        { name: 'db', labelSelector: 'app=web', ports },
      ]);
      writer.start();
      for (const p of webPods) await createWebPod(p);
      // The client starts after the services exist: it gets their environment variables.
      await create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client', namespace },
        spec: {
          nodeName: nodes[0].name,
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'client', image: 'coxswain/busybox', command: ['sleep', '3600'] }],
        },
      });
      await converged(webPods.map((p) => p.name));
      await waitFor(
        'the client runs',
        async () => ((await pod('client'))?.status?.phase === 'Running' ? true : undefined),
        60_000,
      );
    }, 180_000);

    afterAll(async () => {
      await writer?.stop();
      for (const a of agents) await a?.stop();
      for (const c of clients) c.close();
      api?.close();
      await cluster?.close();
      for (const n of nodes) {
        await removeNodeContainers(docker, n.name);
        rmSync(join('/dev/shm', `cox-${n.name}`), { recursive: true, force: true });
      }
      // The agents leave the local route (see local-net.ts); this suite's CIDR is its own.
      await runCommand(['ip', 'route', 'del', 'local', o.serviceCidr, 'dev', 'lo', 'table', 'local']).catch(
        () => {},
      );
      rmSync(dir, { recursive: true, force: true });
    }, 120_000);

    it('reaches every ready backend through the cluster IP, from the host and from a container', async () => {
      const names = webPods.map((p) => p.name);
      expect(await until(() => fromHost(webIP, 80, 10), names)).toEqual(new Set(names));
      expect(await until(() => fromPod('client', `http://${webIP}/`, 12), names)).toEqual(new Set(names));
      const status = agents[0]?.proxyStatus();
      expect(status).toMatchObject({ mode: o.mode, ready: true, failures: 0 });
      expect(status?.syncLatencyMs.count).toBeGreaterThan(0);
      if (o.mode === 'kernel') {
        for (const i of [0, 1]) expect((await kernelState(i)).jumps).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
      }
    }, 120_000);

    it('keeps a client on one backend under ClientIP affinity, from the host and from a container', async () => {
      const host = new Set(await fromHost(stickyIP, 80, 12));
      expect(host.size).toBe(1);
      expect(webPods.map((p) => p.name)).toContain([...host][0]);
      const inside = new Set(await fromPod('client', `http://${stickyIP}/`, 12));
      expect(inside.size).toBe(1);
      expect(webPods.map((p) => p.name)).toContain([...inside][0]);
    }, 60_000);

    it('answers on the node port of each node IP', async () => {
      const names = webPods.map((p) => p.name);
      for (const n of nodes) {
        const seen = await until(() => fromHost(n.ip, o.nodePort, 10), names);
        expect([n.ip, seen]).toEqual([n.ip, new Set(names)]);
      }
    }, 120_000);

    it('takes a pod failing readiness out of the rotation, and back once it is ready', async () => {
      const ip = await ipOf('web-1');
      await inPod('web-1', 'rm /www/ready');
      await waitFor(
        'web-1 not ready in the endpoints',
        async () => ((await endpointsOf('web')).notReady.includes(ip) ? true : undefined),
        30_000,
      );
      // Every agent applies it; then no request reaches web-1.
      await waitFor(
        'web-1 out of the rotation',
        async () => {
          const answers = await fromHost(webIP, 80, 12);
          return answers.includes('web-1') ? undefined : answers;
        },
        30_000,
      );
      const host = await fromHost(webIP, 80, 20);
      expect(host).not.toContain('web-1');
      expect(new Set(host)).toEqual(new Set(['web-0', 'web-2']));
      expect(await fromPod('client', `http://${webIP}/`, 12)).not.toContain('web-1');
      await inPod('web-1', 'echo ok > /www/ready');
      const back = await until(() => fromHost(webIP, 80, 10), ['web-1'], 30);
      expect(back.has('web-1')).toBe(true);
    }, 120_000);

    it('lets a pod reach itself and the others through its service (hairpin)', async () => {
      const names = webPods.map((p) => p.name);
      expect(await until(() => fromPod('web-0', `http://${webIP}/`, 12), names)).toEqual(new Set(names));
    }, 60_000);

    it('resolves service, headless and pod names from inside a container, and gives pods service variables', async () => {
      const resolv = (await inPod('client', 'cat /etc/resolv.conf')).out;
      expect(resolv).toContain(`nameserver ${dnsIP}`);
      expect(resolv).toContain(`search ${namespace}.svc.cluster.local svc.cluster.local cluster.local`);
      expect(resolv).toContain('options ndots:5');
      const lookup = await inPod('client', `nslookup web.${namespace}.svc.cluster.local`);
      expect(lookup.out).toContain(webIP);
      // The short name through the search path, by a program using the C library's resolver.
      const names = webPods.map((p) => p.name);
      expect(names).toContain((await fromPod('client', 'http://web/', 1))[0]);
      expect(names).toContain((await fromPod('client', `http://web.${namespace}/`, 1))[0]);
      const web0 = await ipOf('web-0');
      expect((await inPod('client', `nslookup web-0.db.${namespace}.svc.cluster.local`)).out).toContain(web0);
      const headless = (await inPod('client', `nslookup db.${namespace}.svc.cluster.local`)).out;
      for (const p of webPods) expect(headless).toContain(await ipOf(p.name));
      const missing = await inPod('client', `nslookup nope.${namespace}.svc.cluster.local`);
      expect(missing.out).not.toContain('Address: 10.');
      // From the host, over UDP and TCP, straight to the DNS service IP.
      const a = await resolveDns(dnsIP, 53, `sticky.${namespace}.svc.cluster.local`, RecordType.A);
      expect(a.answers).toMatchObject([{ type: 'A', address: stickyIP }]);
      const nx = await resolveDns(dnsIP, 53, `nope.${namespace}.svc.cluster.local`, RecordType.A, {
        tcp: true,
      });
      expect(nx.rcode).toBe(Rcode.NXDomain);
      expect((await resolveDns(dnsIP, 53, 'example.com', RecordType.A)).rcode).toBe(Rcode.Refused);
      const env = (await inPod('client', 'env')).out;
      expect(env).toContain(`WEB_SERVICE_HOST=${webIP}`);
      expect(env).toContain('WEB_SERVICE_PORT=80');
      expect(env).toContain('WEB_SERVICE_PORT_HTTP=80');
      expect(env).toContain(`WEB_PORT_80_TCP=tcp://${webIP}:80`);
      expect(env).toContain(`STICKY_PORT_80_TCP_ADDR=${stickyIP}`);
      expect(env).not.toContain('DB_SERVICE_HOST');
    }, 120_000);

    it('stops sending to a deleted pod', async () => {
      const ip = await ipOf('web-2');
      await api.delete({ kind: 'Pod', namespace, name: 'web-2' });
      await waitFor(
        'web-2 gone from the endpoints',
        async () => {
          const e = await endpointsOf('web');
          return e.ready.includes(ip) || e.notReady.includes(ip) ? undefined : true;
        },
        60_000,
      );
      await waitFor(
        'web-2 out of the rotation',
        async () => ((await fromHost(webIP, 80, 12)).includes('web-2') ? undefined : true),
        30_000,
      );
      expect(new Set(await fromHost(webIP, 80, 20))).toEqual(new Set(['web-0', 'web-1']));
      if (o.mode === 'kernel') {
        await waitFor(
          'no rule sends to web-2',
          async () => {
            const all = [(await kernelState(0)).text];
            return all.some((t) => t.includes(`${ip}:8080`)) ? undefined : true;
          },
          30_000,
        );
      }
    }, 120_000);

    it('keeps the rules consistent across agent restarts; a deleted service leaves nothing', async () => {
      // Node 1's agent stops cleanly: its rules go, node 2's keep the cluster IPs working.
      await agents[0]?.stop();
      if (o.mode === 'kernel') expect(await kernelState(0)).toMatchObject({ chains: 0, jumps: [] });
      await waitFor(
        'the cluster IP through the other node',
        async () => (['web-0', 'web-1'].includes(await httpGet(webIP, 80)) ? true : undefined),
        30_000,
      );
      expect(await refused(nodes[0].ip, o.nodePort)).toBe(true);
      expect(['web-0', 'web-1']).toContain(await httpGet(nodes[1].ip, o.nodePort));
      // It comes back twice; each time its rules are there once.
      for (let round = 0; round < 2; round += 1) {
        const agent = startAgent(0);
        await agent.start();
        await waitFor(
          'node 1 serves its node port again',
          async () =>
            ['web-0', 'web-1'].includes(await httpGet(nodes[0].ip, o.nodePort)) ? true : undefined,
          30_000,
        );
        if (o.mode === 'kernel') {
          for (const i of [0, 1]) expect((await kernelState(i)).jumps).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
        }
        if (round === 0) await agent.stop();
      }
      // The pods of node 1 were adopted, not restarted (their readiness is probed again).
      expect((await pod('web-0'))?.status?.containerStatuses?.[0]?.restartCount).toBe(0);
      await converged(['web-0', 'web-1']);
      writer.forget('sticky');
      const deleted = [
        await api.delete({ kind: 'Service', namespace, name: 'sticky' }),
        await api.delete({ kind: 'Endpoints', namespace, name: 'sticky' }),
      ].map((o) => Number(o.metadata.resourceVersion));
      // Both agents applied the deletion (in userspace mode either may have held the address).
      for (const a of agents) {
        await a?.proxyApplied('Service', deleted[0]);
        await a?.proxyApplied('Endpoints', deleted[1]);
      }
      await waitFor(
        'nothing left of the deleted service',
        async () => {
          if (o.mode === 'kernel') {
            const text = (await kernelState(0)).text;
            return text.includes(stickyIP) ? undefined : true;
          }
          return (await refused(stickyIP, 80)) ? true : undefined;
        },
        30_000,
      );
      expect(await refused(stickyIP, 80)).toBe(true);
      // The other service still answers. (A restarted agent reports its running pods not ready
      // until their readiness probes pass again, which empties the endpoints for a moment.)
      await waitFor(
        'web still answers',
        async () => (['web-0', 'web-1'].includes(await httpGet(webIP, 80)) ? true : undefined),
        30_000,
      );
    }, 180_000);

    it('removes every rule of its node on a clean exit', async () => {
      await agents[1]?.stop();
      agents[1] = undefined;
      if (o.mode === 'kernel') expect(await kernelState(1)).toMatchObject({ chains: 0, jumps: [] });
      expect(await refused(nodes[1].ip, o.nodePort)).toBe(true);
      await agents[0]?.stop();
      agents[0] = undefined;
      if (o.mode === 'kernel') expect(await kernelState(0)).toMatchObject({ chains: 0, jumps: [] });
      expect(await refused(webIP, 80)).toBe(true);
    }, 60_000);
  });
}

/**
 * `cox port-forward` end to end: the real `cox` process against 3 real masters, a node agent
 * with the docker runtime (no service proxy: port-forward goes to a pod, never through it), and
 * busybox httpd and echo pods; plus a second agent with the process runtime (its pods listen
 * on the node IP). Needs Docker (CI starts it); never skipped.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../actors/grpc-client.js';
import type { Pod } from '../../core/index.js';
import { NodeAgent } from '../../node-agent/agent.js';
import { DockerRuntime } from '../../node-agent/docker-runtime.js';
import { ProcessRuntime } from '../../node-agent/process-runtime.js';
import { coxPath, removeNodeContainers, runCoxProcess, waitFor } from '../fixtures/e2e.js';
import { freeLoopbackPorts } from '../multiprocess/cluster.js';
import { MasterCluster } from '../multiprocess/master-cluster.js';

const node = `e2e-portfwd-${process.pid}`;
const memoryDir = join('/dev/shm', `cox-e2e-portfwd-${process.pid}`);
const docker = new Docker();
let cluster: MasterCluster;
let api: ApiClient;
let agent: NodeAgent;
let dir: string;
const processNode = `e2e-portfwd-proc-${process.pid}`;
let processAgent: NodeAgent | undefined;
let processRuntime: ProcessRuntime | undefined;

function env(): Record<string, string> {
  const servers = cluster
    .ids()
    .map((id) => `ws://${cluster.member(id).wsAddress}`)
    .join(',');
  return { COX_SERVERS: servers, COX_HOME: dir };
}

/** A running `cox port-forward`: its output so far, and its exit. */
class Forward {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', coxPath, 'port-forward', ...args], {
      env: { ...process.env, ...env() },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (d) => {
      this.stdout += d;
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** The local ports of the `Forwarding from 127.0.0.1:L -> R` lines, once `count` are printed. */
  async ports(count: number): Promise<{ local: number; remote: number }[]> {
    return waitFor(
      `port-forward prints ${count} Forwarding lines (stdout ${JSON.stringify(this.stdout)}, stderr ${JSON.stringify(this.stderr)})`,
      async () => {
        const found = [...this.stdout.matchAll(/^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$/gm)].map(
          (m) => ({
            local: Number(m[1]),
            remote: Number(m[2]),
          }),
        );
        return found.length >= count ? found : undefined;
      },
      60_000,
    );
  }

  interrupt(): void {
    this.child.kill('SIGINT');
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** One HTTP/1.0 GET over a fresh TCP connection to 127.0.0.1:port; the whole response. */
function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setTimeout(30_000, () => socket.destroy(new Error('no response in 30 s')));
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`));
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

/** Sends `data`, half-closes, and resolves with everything read until the server closes. */
function echo(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.setTimeout(60_000, () => socket.destroy(new Error('no end in 60 s')));
    socket.on('connect', () => socket.end(data));
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
  });
}

/** Connects and reads until the connection ends; resolves with what arrived (nothing when refused remotely). */
function connectAndRead(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setTimeout(30_000, () => socket.destroy(new Error('not closed in 30 s')));
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' ? resolve(text) : reject(err),
    );
  });
}

const index = 'hello from the pod';
const big = 'x'.repeat(300_000);

function httpdPod(name: string, labels: Record<string, string> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'web',
          image: 'coxswain/busybox',
          command: [
            'sh',
            '-c',
            `mkdir -p /www; echo '${index}' > /www/index.html; head -c 300000 /dev/zero | tr '\\0' x > /www/big.txt; exec httpd -f -p 8080 -h /www`,
          ],
          ports: [{ name: 'web', containerPort: 8080 }],
        },
      ],
    },
  };
}

async function running(name: string): Promise<Pod> {
  return waitFor(
    `pod ${name} Running`,
    async () => {
      const p = (await api.get({ kind: 'Pod', name })) as unknown as Pod;
      return p.status?.phase === 'Running' && p.status.podIP ? p : undefined;
    },
    90_000,
  );
}

describe('cox port-forward to docker pods through the masters', () => {
  beforeAll(async () => {
    await docker.ping();
    dir = mkdtempSync(join(tmpdir(), 'cox-portfwd-e2e-'));
    cluster = await MasterCluster.start({ size: 3, tickMs: 50 });
    await cluster.waitForLeader(15_000);
    api = cluster.client();
    agent = new NodeAgent({
      node,
      nodeIp: '127.0.0.1',
      api,
      runtime: new DockerRuntime({ node, docker }),
      dataDir: join(dir, 'agent'),
      memoryDir,
      podResyncMs: 300,
      masters: cluster.apiAddresses(),
      log: () => {},
    });
    await agent.start();
    await api.create(httpdPod('web', { app: 'web' }));
    await api.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'web' }] },
    });
    await running('web');
    // httpd is up once the content is served through the agent's exec.
    await waitFor(
      'httpd serving',
      async () => {
        const r = await runCoxProcess(['exec', 'web', '--', 'wget', '-qO-', 'http://127.0.0.1:8080/'], {
          env: env(),
          timeoutMs: 30_000,
        });
        return r.stdout.includes(index) ? true : undefined;
      },
      60_000,
      500,
    );
  }, 180_000);

  afterAll(async () => {
    await processAgent?.stop();
    if (processRuntime !== undefined) {
      for (const uid of await processRuntime.listPods()) await processRuntime.removePod(uid, 0);
      processRuntime.close();
    }
    await agent?.stop();
    api?.close();
    await cluster?.close();
    await removeNodeContainers(docker, node);
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(memoryDir, { recursive: true, force: true });
  }, 60_000);

  it('forwards a random local port to pod/NAME :8080, two connections at once and large bodies, and exits 0 on SIGINT', async () => {
    const fwd = new Forward(['pod/web', ':8080']);
    try {
      const [p] = await fwd.ports(1);
      expect(p?.remote).toBe(8080);
      const port = p?.local ?? 0;
      expect(await httpGet(port, '/index.html')).toContain(index);
      const [a, b] = await Promise.all([httpGet(port, '/big.txt'), httpGet(port, '/index.html')]);
      expect(a).toContain(big);
      expect(a.endsWith(big)).toBe(true);
      expect(b).toContain(index);
      await waitFor('three Handling lines', async () =>
        fwd.stdout.split(`Handling connection for ${port}\n`).length - 1 >= 3 ? true : undefined,
      );
      fwd.interrupt();
      expect(await fwd.exited).toBe(0);
      expect(fwd.stderr).toBe('');
    } finally {
      fwd.kill();
    }
  }, 120_000);

  it('forwards svc/NAME through its named targetPort to a pod of the service', async () => {
    const fwd = new Forward(['svc/web', ':80']);
    try {
      const [p] = await fwd.ports(1);
      expect(p?.remote).toBe(8080);
      expect(await httpGet(p?.local ?? 0, '/index.html')).toContain(index);
      fwd.interrupt();
      expect(await fwd.exited).toBe(0);
    } finally {
      fwd.kill();
    }
  }, 120_000);

  it('reports a refused connection on one line and keeps forwarding', async () => {
    const fwd = new Forward(['web', ':9999', ':8080']);
    try {
      const [closed, open] = await fwd.ports(2);
      expect(closed?.remote).toBe(9999);
      expect(await connectAndRead(closed?.local ?? 0)).toBe('');
      await waitFor('the refused error', async () =>
        fwd.stderr.includes('connection refused') ? true : undefined,
      );
      expect(fwd.stderr).toMatch(
        new RegExp(
          `^error: an error occurred forwarding ${closed?.local} -> 9999: .*connect: connection refused\\n$`,
        ),
      );
      expect(await httpGet(open?.local ?? 0, '/index.html')).toContain(index);
      expect(await connectAndRead(closed?.local ?? 0)).toBe('');
      expect(await httpGet(open?.local ?? 0, '/index.html')).toContain(index);
      fwd.interrupt();
      expect(await fwd.exited).toBe(0);
    } finally {
      fwd.kill();
    }
  }, 120_000);

  it('carries 2 MiB up and back through an echo pod, with half-close both ways', async () => {
    await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'echo' },
      spec: {
        nodeName: node,
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'echo', image: 'coxswain/busybox', command: ['nc', '-ll', '-p', '9000', '-e', 'cat'] },
        ],
      },
    });
    await running('echo');
    const fwd = new Forward(['pod/echo', ':9000']);
    try {
      const [p] = await fwd.ports(1);
      const data = Buffer.alloc(2 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
      // nc may not listen yet right after Running: a refused try prints an error and is retried.
      const back = await waitFor(
        'an echo of all 2 MiB',
        async () => {
          const r = await echo(p?.local ?? 0, data);
          return r.length > 0 ? r : undefined;
        },
        60_000,
        500,
      );
      expect(back.length).toBe(data.length);
      expect(back.equals(data)).toBe(true);
      fwd.interrupt();
      expect(await fwd.exited).toBe(0);
    } finally {
      fwd.kill();
    }
  }, 120_000);

  it('reaches a pod of the process runtime on the node IP', async () => {
    const busybox = '/bin/busybox';
    processRuntime = new ProcessRuntime({ node: processNode, root: join(dir, 'proc'), nodeIp: '127.0.0.1' });
    processAgent = new NodeAgent({
      node: processNode,
      nodeIp: '127.0.0.1',
      api,
      runtime: processRuntime,
      dataDir: join(dir, 'proc-agent'),
      memoryDir: join(dir, 'proc-memory'),
      podResyncMs: 300,
      masters: cluster.apiAddresses(),
      log: () => {},
    });
    await processAgent.start();
    const [port] = await freeLoopbackPorts(1);
    const www = join(dir, 'proc-www');
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'index.html'), 'hello from a process pod\n');
    await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'proc-web' },
      spec: {
        nodeName: processNode,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'httpd',
            image: 'coxswain/busybox',
            command: [busybox, 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', www],
            ports: [{ name: 'http', containerPort: port ?? 0 }],
          },
        ],
      },
    });
    await running('proc-web');
    const fwd = new Forward(['pod/proc-web', ':http']);
    try {
      const [p] = await fwd.ports(1);
      expect(p?.remote).toBe(port);
      const body = await waitFor(
        'httpd of the process pod',
        async () => {
          const r = await httpGet(p?.local ?? 0, '/index.html');
          return r.includes('hello from a process pod') ? r : undefined;
        },
        60_000,
        500,
      );
      expect(body).toContain('200 OK');
      fwd.interrupt();
      expect(await fwd.exited).toBe(0);
    } finally {
      fwd.kill();
    }
  }, 120_000);

  it('ends with an error when the pod is deleted', async () => {
    await api.create(httpdPod('doomed'));
    await running('doomed');
    const local = 20_000 + (process.pid % 20_000);
    const fwd = new Forward(['pod/doomed', `${local}:8080`]);
    try {
      const [p] = await fwd.ports(1);
      expect(p).toEqual({ local, remote: 8080 });
      await api.delete({ kind: 'Pod', name: 'doomed' }, { gracePeriodSeconds: 0 });
      expect(await fwd.exited).toBe(1);
      expect(fwd.stderr).toMatch(/^error: lost connection to pod\/doomed: it (was deleted|is \w+)\n$/m);
    } finally {
      fwd.kill();
    }
  }, 120_000);

  it('fails on one line for a missing pod, a missing port name and a missing service port', async () => {
    const missing = await runCoxProcess(['port-forward', 'pod/nope', '8080'], {
      env: env(),
      timeoutMs: 30_000,
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: .*nope.*not found\n$/);
    const noName = await runCoxProcess(['port-forward', 'pod/web', ':metrics'], {
      env: env(),
      timeoutMs: 30_000,
    });
    expect(noName).toMatchObject({
      code: 1,
      stderr: 'error: pod/web: has no container port named "metrics"\n',
    });
    const noSvcPort = await runCoxProcess(['port-forward', 'svc/web', '8081'], {
      env: env(),
      timeoutMs: 30_000,
    });
    expect(noSvcPort).toMatchObject({
      code: 1,
      stderr: 'error: Service web does not have a service port 8081\n',
    });
  }, 120_000);
});

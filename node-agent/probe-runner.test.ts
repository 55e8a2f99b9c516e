/**
 * The probe executor against a local HTTP server and TCP ports on 127.0.0.1 (and a scripted
 * exec session), and the pure per-pod probe bookkeeping.
 */

import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pod } from '../core/index.js';
import { containerHealth, emptyPodProbes, runProbe, stepPodProbes, trackContainers } from './probe-runner.js';
import type { ContainerRuntime, ExecSession, LogChunk } from './runtime.js';

let server: Server;
let port: number;
const seenHeaders: Record<string, string | string[] | undefined>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seenHeaders.push(req.headers);
    if (req.url === '/ok') res.writeHead(200).end('ok');
    else if (req.url === '/redirect') res.writeHead(302, { Location: '/elsewhere' }).end();
    else if (req.url === '/hang') {
      // never answers: the probe must time out
    } else res.writeHead(500).end('broken');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const noRuntime = {} as ContainerRuntime;
const http = (path: string, headers: { name: string; value: string }[] = []) =>
  ({ type: 'http', scheme: 'http', host: '127.0.0.1', port, path, headers }) as const;

describe('runProbe httpGet', () => {
  it('succeeds on 200 and on a redirect, and sends the headers', async () => {
    expect(await runProbe(noRuntime, 'c', http('/ok', [{ name: 'X-Probe', value: 'yes' }]), 1_000)).toEqual({
      ok: true,
    });
    expect(seenHeaders.at(-1)?.['x-probe']).toBe('yes');
    expect((await runProbe(noRuntime, 'c', http('/redirect'), 1_000)).ok).toBe(true);
  });

  it('fails on 500 with the status code in the message', async () => {
    const r = await runProbe(noRuntime, 'c', http('/fail'), 1_000);
    expect(r).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 500' });
  });

  it('fails when the server does not answer within the timeout', async () => {
    const start = Date.now();
    const r = await runProbe(noRuntime, 'c', http('/hang'), 300);
    expect(r.ok).toBe(false);
    expect(r.message).toContain('timed out');
    expect(Date.now() - start).toBeLessThan(2_000);
  });

  it('fails when nothing listens', async () => {
    const r = await runProbe(
      noRuntime,
      'c',
      { type: 'http', scheme: 'http', host: '127.0.0.1', port: await closedPort(), path: '/', headers: [] },
      1_000,
    );
    expect(r.ok).toBe(false);
    expect(r.message).toContain('ECONNREFUSED');
  });
});

async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

describe('runProbe tcpSocket', () => {
  it('succeeds when the port accepts and fails when it refuses', async () => {
    expect(await runProbe(noRuntime, 'c', { type: 'tcp', host: '127.0.0.1', port }, 1_000)).toEqual({
      ok: true,
    });
    const refused = await runProbe(
      noRuntime,
      'c',
      { type: 'tcp', host: '127.0.0.1', port: await closedPort() },
      1_000,
    );
    expect(refused.ok).toBe(false);
    expect(refused.message).toMatch(/^dial tcp 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });
});

/** A runtime whose exec answers with `exitCode` after `delayMs` (or never), printing `out`. */
function execRuntime(
  exitCode: number,
  delayMs: number,
  out = '',
): { runtime: ContainerRuntime; killed: () => boolean } {
  let killed = false;
  const runtime = {
    async exec(): Promise<ExecSession> {
      let finish: (code: number) => void = () => {};
      const exit = new Promise<number>((r) => {
        finish = r;
      });
      const timer = delayMs >= 0 ? setTimeout(() => finish(exitCode), delayMs) : undefined;
      async function* output(): AsyncGenerator<LogChunk> {
        if (out) yield { stream: 'stdout', data: new TextEncoder().encode(out) };
        await exit;
      }
      return {
        output: output(),
        exitCode: exit,
        write() {},
        end() {},
        kill() {
          killed = true;
          clearTimeout(timer);
          finish(137);
        },
      };
    },
  } as unknown as ContainerRuntime;
  return { runtime, killed: () => killed };
}

describe('runProbe exec', () => {
  it('succeeds on exit 0 and fails on another exit code with the output', async () => {
    expect(
      await runProbe(execRuntime(0, 10).runtime, 'c', { type: 'exec', command: ['true'] }, 1_000),
    ).toEqual({
      ok: true,
    });
    const r = await runProbe(
      execRuntime(3, 10, 'not\nhealthy\n').runtime,
      'c',
      { type: 'exec', command: ['x'] },
      1_000,
    );
    expect(r).toEqual({ ok: false, message: 'command ["x"] exited with 3: not healthy' });
  });

  it('kills a command that outlives the timeout', async () => {
    const { runtime, killed } = execRuntime(0, -1);
    const r = await runProbe(runtime, 'c', { type: 'exec', command: ['sleep', '100'] }, 200);
    expect(r.ok).toBe(false);
    expect(r.message).toContain('timed out after 200 ms');
    expect(killed()).toBe(true);
  });
});

describe('pod probes (pure)', () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', uid: 'u' },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'i',
          ports: [{ name: 'http', containerPort: 8080 }],
          livenessProbe: {
            httpGet: { path: 'healthz', port: 'http' },
            periodSeconds: 1,
            failureThreshold: 2,
          },
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
        { name: 'plain', image: 'i' },
      ],
    },
  } as unknown as Pod;

  it('probes each run from its start, resolves targets, and forgets older runs', () => {
    let step = trackContainers(
      emptyPodProbes,
      pod,
      [{ name: 'web', id: 'a', startedAtMs: 1_000 }],
      '10.0.0.2',
      1_000,
    );
    expect(step.due.map((d) => [d.probe, d.target])).toEqual([
      [
        'liveness',
        { type: 'http', scheme: 'http', host: '10.0.0.2', port: 8080, path: '/healthz', headers: [] },
      ],
      ['readiness', { type: 'tcp', host: '10.0.0.2', port: 8080 }],
    ]);
    expect(containerHealth(step.state)).toEqual({ web: { id: 'a', ready: false, started: true } });
    // Readiness passes: health changes.
    step = stepPodProbes(
      step.state,
      pod,
      { type: 'result', container: 'web', id: 'a', probe: 'readiness', ok: true, nowMs: 1_010 },
      '10.0.0.2',
    );
    expect(step.healthChanged).toBe(true);
    expect(containerHealth(step.state).web?.ready).toBe(true);
    // Two liveness failures in a row: a restart of run a.
    step = stepPodProbes(
      step.state,
      pod,
      { type: 'result', container: 'web', id: 'a', probe: 'liveness', ok: false, message: 'x', nowMs: 1_020 },
      '10.0.0.2',
    );
    expect(step.restarts).toEqual([]);
    step = stepPodProbes(step.state, pod, { type: 'tick', nowMs: 2_020 }, '10.0.0.2');
    expect(step.due.map((d) => d.probe)).toEqual(['liveness', 'readiness']);
    step = stepPodProbes(
      step.state,
      pod,
      { type: 'result', container: 'web', id: 'a', probe: 'liveness', ok: false, message: 'x', nowMs: 2_030 },
      '10.0.0.2',
    );
    expect(step.restarts).toEqual([
      { container: 'web', id: 'a', probe: 'liveness', message: 'Liveness probe failed: x' },
    ]);
    // A result of the old run after the new one started changes nothing; the new run starts unready.
    step = trackContainers(
      step.state,
      pod,
      [{ name: 'web', id: 'b', startedAtMs: 3_000 }],
      '10.0.0.2',
      3_000,
    );
    const stale = stepPodProbes(
      step.state,
      pod,
      { type: 'result', container: 'web', id: 'a', probe: 'readiness', ok: true, nowMs: 3_001 },
      '10.0.0.2',
    );
    expect(stale.healthChanged).toBe(false);
    expect(containerHealth(stale.state)).toEqual({ web: { id: 'b', ready: false, started: true } });
    expect(trackContainers(stale.state, pod, [], '10.0.0.2', 3_002).state).toEqual(emptyPodProbes);
  });

  it('reports a handler it cannot resolve as a due probe with an error', () => {
    const bad = structuredClone(pod);
    bad.spec.containers[0].livenessProbe = { httpGet: { port: 'nope' } };
    const step = trackContainers(
      emptyPodProbes,
      bad,
      [{ name: 'web', id: 'a', startedAtMs: 0 }],
      '10.0.0.2',
      0,
    );
    expect(step.due[0]).toMatchObject({
      probe: 'liveness',
      error: 'spec.containers[0].livenessProbe.httpGet.port: no port named "nope" in container "web"',
    });
  });
});

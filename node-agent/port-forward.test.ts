/**
 * The port-forward pieces in one process: the master's `portForward` op (actors/pod-streams.ts)
 * over an in-memory remote session to an agent handler that dials and relays with the real
 * {@link PortForwardRelay}, against real TCP servers on 127.0.0.1.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, type ObjectApi, type ObjectKey } from '../actors/api.js';
import { type AgentPortForwardRequest, podStreamOps } from '../actors/pod-streams.js';
import { type IncomingRequest, type RemoteHandler, RemoteSession } from '../actors/remoting.js';
import type { GatewayStream, WsGatewayApis } from '../actors/ws-gateway.js';
import type { ApiObject } from '../core/index.js';
import { waitFor } from '../test/fixtures/e2e.js';
import { dialPod, PortForwardRelay, portForwardHost } from './port-forward.js';

function agentLink(agent: RemoteHandler): RemoteSession {
  const master = new RemoteSession(() => {}, 'agent n1');
  const side = new RemoteSession(agent, 'master');
  master.attach((e) => {
    queueMicrotask(() => side.receive(structuredClone(e)));
    return true;
  });
  side.attach((e) => {
    queueMicrotask(() => master.receive(structuredClone(e)));
    return true;
  });
  return master;
}

/** The agent's side, as node-agent/agent-remote.ts serves it, counting the frames it sends. */
function fakeAgent() {
  const relays = new Map<string, PortForwardRelay>();
  const sent = { frames: 0 };
  const handler: RemoteHandler = (req: IncomingRequest) => {
    if (req.to.startsWith('stream/')) {
      const r = relays.get(req.to.slice('stream/'.length));
      const b = req.body as { frames?: number; data?: Uint8Array };
      if (req.type === 'credit') r?.grant(b.frames ?? 0);
      if (req.type === 'data' && b.data) r?.write(b.data);
      if (req.type === 'eof') r?.end();
      return;
    }
    const body = req.body as AgentPortForwardRequest;
    const respond = {
      ...req.respond,
      frame: (f: unknown) => {
        sent.frames += 1;
        req.respond.frame(f);
      },
      end: () => req.respond.end(),
      fail: (e: unknown) => req.respond.fail(e),
      reply: (x: unknown) => req.respond.reply(x),
      onCancel: (cb: () => void) => req.respond.onCancel(cb),
      get cancelled() {
        return req.respond.cancelled;
      },
    };
    dialPod(body.podIP ?? '', body.port, `pod/${body.pod}`).then(
      (socket) => {
        const relay = new PortForwardRelay(socket, respond, body.window);
        relays.set(body.streamId, relay);
        relay.start();
      },
      (err) => req.respond.fail(err),
    );
  };
  return { handler, sent };
}

const runningPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default', uid: 'uid-web' },
  spec: { nodeName: 'n1', containers: [{ name: 'main', image: 'x' }] },
  status: { phase: 'Running', podIP: '127.0.0.1' },
} as unknown as ApiObject;

function apis(objects: ApiObject[]): WsGatewayApis {
  const fake = {
    get: async (key: ObjectKey) => {
      const o = objects.find((x) => x.kind === key.kind && x.metadata.name === key.name);
      if (o === undefined) throw new ApiError('NotFound', `${key.kind} ${key.name} not found`);
      return o;
    },
  };
  return { objects: fake as unknown as ObjectApi, cluster: {} as WsGatewayApis['cluster'] };
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A server that reads until the client half-closes, then answers `<n bytes>:` and the bytes reversed, and closes. */
async function reverser(): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const chunks: Buffer[] = [];
    socket.on('error', () => {});
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      socket.end(Buffer.concat([Buffer.from(`${all.byteLength}:`), Buffer.from(all).reverse()]));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function open(port: number, window: number, sessionHandler: RemoteHandler): Promise<GatewayStream> {
  const session = agentLink(sessionHandler);
  const ops = podStreamOps({ session: () => session }, { newId: () => 's1' });
  const op = ops.portForward;
  if (op === undefined) throw new Error('no portForward op');
  return op({ id: 1, op: 'portForward', pod: 'web', port, window }, apis([runningPod]));
}

describe('port-forward relay', () => {
  it('relays bytes both ways with half-close, acks what it wrote, and ends after the pod closes', async () => {
    const port = await reverser();
    const agent = fakeAgent();
    const s = await open(port, 4, agent.handler);
    expect(await s.next()).toEqual({ connected: true });
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    for (let at = 0; at < payload.length; at += 32 * 1024)
      s.input?.({ id: 1, op: 'input', data: payload.subarray(at, at + 32 * 1024).toString('base64') });
    s.input?.({ id: 1, op: 'input', eof: true });
    let acked = 0;
    const received: Buffer[] = [];
    let eof = false;
    for (let f = await s.next(); f !== undefined; f = await s.next()) {
      s.input?.({ id: 1, op: 'input', credit: 1 });
      if (typeof f.ack === 'number') acked += f.ack;
      if (typeof f.data === 'string') received.push(Buffer.from(f.data, 'base64'));
      if (f.eof === true) eof = true;
    }
    expect(acked).toBe(payload.length);
    expect(eof).toBe(true);
    expect(Buffer.concat(received)).toEqual(
      Buffer.concat([Buffer.from(`${payload.length}:`), Buffer.from(payload).reverse()]),
    );
  });

  it('sends no more frames than the window until the client grants credit', async () => {
    // A server that sends 1 MiB at once: far more than 4 frames of 32 KiB.
    const server = createServer((socket) => {
      socket.on('error', () => {}); // reset when the stream is closed below
      socket.end(Buffer.alloc(1024 * 1024, 7));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = fakeAgent();
    const s = await open((server.address() as { port: number }).port, 4, agent.handler);
    expect(await s.next()).toEqual({ connected: true });
    // The window counts `connected` too; the master grants more only as the gateway pulls frames.
    await waitFor(
      'the agent fills the window',
      async () => (agent.sent.frames >= 4 ? true : undefined),
      10_000,
    );
    const pulled: Record<string, unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await s.next();
      if (f !== undefined) pulled.push(f);
    }
    // The client granted nothing: the gateway holds its next pull.
    let more = false;
    void s.next().then(() => {
      more = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(more).toBe(false);
    expect(pulled).toHaveLength(3);
    // At most a window beyond the 4 frames pulled, although the pod has sent 32 frames' worth.
    expect(agent.sent.frames).toBeLessThanOrEqual(4 + 4);
    s.input?.({ id: 1, op: 'input', credit: 4 });
    await waitFor('the pull resumes', async () => (more ? true : undefined), 10_000);
    s.close();
  });

  it('ends the stream with the dial error when nothing listens on the port', async () => {
    const port = await closedPort();
    const s = await open(port, 4, fakeAgent().handler);
    await expect(s.next()).rejects.toThrow(
      new RegExp(`^pod/web: dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused$`),
    );
  });

  it('refuses a pod that is not running, and a port out of range', async () => {
    const session = agentLink(fakeAgent().handler);
    const ops = podStreamOps({ session: () => session });
    const pending = { ...runningPod, status: { phase: 'Pending' } } as unknown as ApiObject;
    await expect(
      ops.portForward?.({ id: 1, op: 'portForward', pod: 'web', port: 80 }, apis([pending])),
    ).rejects.toThrow('pod/web: unable to forward port because pod is not running. Current status=Pending');
    await expect(
      ops.portForward?.({ id: 1, op: 'portForward', pod: 'web', port: 70_000 }, apis([runningPod])),
    ).rejects.toThrow('portForward: port: must be an integer in [1, 65535]');
  });
});

describe('where the agent connects', () => {
  it('is the pod IP on docker, the node IP for processes, and nowhere on hollow', () => {
    const pod = { what: 'pod/web', podIP: '172.17.0.3', node: 'n1', nodeIp: '127.0.0.2' };
    expect(portForwardHost('docker', pod)).toBe('172.17.0.3');
    expect(portForwardHost('process', pod)).toBe('127.0.0.2');
    expect(() => portForwardHost('hollow', pod)).toThrow(
      'pod/web: port-forward is not possible on node n1: the hollow runtime runs no processes',
    );
    expect(() => portForwardHost('docker', { ...pod, podIP: undefined })).toThrow('pod/web: has no IP yet');
  });
});

import { describe, expect, it } from 'vitest';
import type { ApiObject } from '../core/index.js';
import { ApiError, type ObjectApi, type ObjectKey } from './api.js';
import { type AgentSessions, podStreamLimits, podStreamOps } from './pod-streams.js';
import { type IncomingRequest, type RemoteHandler, RemoteSession } from './remoting.js';
import type { GatewayStream, WsGatewayApis, WsRequest } from './ws-gateway.js';

/** A master session joined in memory to a fake agent's session. */
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

const pod = (name: string, node: string, phase = 'Running') =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: {
      nodeName: node,
      containers: [
        { name: 'main', image: 'x' },
        { name: 'side', image: 'x' },
      ],
    },
    status: { phase },
  }) as unknown as ApiObject;

function apis(objects: ApiObject[]): WsGatewayApis {
  const fake = {
    get: async (key: ObjectKey) => {
      const o = objects.find((x) => x.kind === key.kind && x.metadata.name === key.name);
      if (o === undefined) throw new ApiError('NotFound', `${key.kind} ${key.name} not found`);
      return o;
    },
    list: async (kind: string) => ({ items: objects.filter((x) => x.kind === kind), resourceVersion: '1' }),
  };
  return { objects: fake as unknown as ObjectApi, cluster: {} as WsGatewayApis['cluster'] };
}

async function drain(s: GatewayStream): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (let f = await s.next(); f !== undefined; f = await s.next()) out.push(f);
  return out;
}

const req = (op: string, args: Record<string, unknown>): WsRequest => ({ id: 1, op, ...args });

describe('pod stream ops', () => {
  it('opens logs on the pod node agent with the default container, as base64 frames', async () => {
    const seen: IncomingRequest[] = [];
    const session = agentLink((r) => {
      seen.push(r);
      r.respond.frame({ stream: 'stdout', data: new TextEncoder().encode('hello\n') });
      r.respond.frame({ stream: 'stderr', data: new TextEncoder().encode('oops\n') });
      r.respond.end();
    });
    const ops = podStreamOps({ session: (n) => (n === 'n1' ? session : undefined) }, { newId: () => 's1' });
    const s = await ops.logs(
      req('logs', { pod: 'web', tailLines: 3, follow: true }),
      apis([pod('web', 'n1')]),
    );
    expect(await drain(s)).toEqual([
      { stream: 'stdout', data: Buffer.from('hello\n').toString('base64') },
      { stream: 'stderr', data: Buffer.from('oops\n').toString('base64') },
    ]);
    expect(seen[0]).toMatchObject({
      to: 'pod/uid-web',
      type: 'logs',
      body: {
        streamId: 's1',
        container: 'main',
        tailLines: 3,
        follow: true,
        window: podStreamLimits.windowFrames,
      },
    });
  });

  it('answers Unavailable for a node whose agent is not connected, Invalid for a bad container', async () => {
    const ops = podStreamOps({ session: () => undefined });
    await expect(ops.logs(req('logs', { pod: 'web' }), apis([pod('web', 'n1')]))).rejects.toMatchObject({
      code: 'Unavailable',
      message: 'pod/web: node "n1": its agent is not connected to this master',
    });
    await expect(
      ops.logs(req('logs', { pod: 'web', container: 'nope' }), apis([pod('web', 'n1')])),
    ).rejects.toMatchObject({ code: 'Invalid', details: { fieldPath: 'container' } });
    await expect(
      ops.exec(req('exec', { pod: 'web', command: [] }), apis([pod('web', 'n1')])),
    ).rejects.toMatchObject({
      code: 'Invalid',
      details: { fieldPath: 'command' },
    });
  });

  it('grants the agent credit only as frames are pulled', async () => {
    const credits: number[] = [];
    let sent = 0;
    const session = agentLink((r) => {
      if (r.type === 'credit') {
        credits.push((r.body as { frames: number }).frames);
        return;
      }
      // The agent's side of the contract: never more than the window ahead of the credit.
      for (; sent < podStreamLimits.windowFrames; sent++)
        r.respond.frame({ stream: 'stdout', data: new Uint8Array([1]) });
    });
    const s = await podStreamOps({ session: () => session }).logs(
      req('logs', { pod: 'web' }),
      apis([pod('web', 'n1')]),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(credits).toEqual([]); // nothing pulled, nothing granted
    const half = podStreamLimits.windowFrames / 2;
    for (let i = 0; i < half; i++) await s.next();
    await new Promise((r) => setTimeout(r, 20));
    expect(credits).toEqual([half]);
    s.close();
  });

  it('exec announces its start, forwards input as tells, and ends with the exit code', async () => {
    const tells: { to: string; type: string; body: unknown }[] = [];
    let exec: IncomingRequest | undefined;
    const session = agentLink((r) => {
      if (!r.expectsReply) {
        tells.push({ to: r.to, type: r.type, body: r.body });
        if (r.type === 'eof') {
          exec?.respond.frame({ stream: 'stdout', data: new TextEncoder().encode('hi') });
          exec?.respond.reply({ exitCode: 3 });
        }
        return;
      }
      exec = r;
    });
    const s = await podStreamOps({ session: () => session }, { newId: () => 'e1' }).exec(
      req('exec', { pod: 'web', command: ['cat'], stdin: true }),
      apis([pod('web', 'n1')]),
    );
    expect(await s.next()).toEqual({ started: true });
    s.input?.({ id: 1, op: 'input', stdin: Buffer.from('abc').toString('base64') });
    s.input?.({ id: 1, op: 'input', resize: { cols: 80, rows: 24 } });
    s.input?.({ id: 1, op: 'input', eof: true });
    expect(await drain(s)).toEqual([
      { stream: 'stdout', data: Buffer.from('hi').toString('base64') },
      { exitCode: 3 },
    ]);
    expect(exec?.body).toMatchObject({ command: ['cat'], stdin: true, tty: false, container: 'main' });
    expect(tells).toEqual([
      { to: 'stream/e1', type: 'stdin', body: { data: new Uint8Array(Buffer.from('abc')) } },
      { to: 'stream/e1', type: 'resize', body: { cols: 80, rows: 24 } },
      { to: 'stream/e1', type: 'eof', body: {} },
    ]);
  });

  it('stats: one frame of running pods per node, unreachable nodes named', async () => {
    const n1 = agentLink((r) =>
      r.respond.reply({
        containers: [
          { podUid: 'uid-a', name: 'main', cpuMillis: 5, memoryBytes: 1024 },
          { podUid: 'uid-x', name: 'main', cpuMillis: 9, memoryBytes: 1 },
        ],
      }),
    );
    const hub: AgentSessions = { session: (n) => (n === 'n1' ? n1 : undefined) };
    const s = await podStreamOps(hub).stats(
      req('stats', { target: 'pods' }),
      apis([pod('a', 'n1'), pod('b', 'n2'), pod('c', 'n1', 'Pending')]),
    );
    expect(await drain(s)).toEqual([
      {
        pods: [
          {
            namespace: 'default',
            name: 'a',
            node: 'n1',
            containers: [{ name: 'main', cpuMillis: 5, memoryBytes: 1024 }],
          },
        ],
        unreachable: [{ node: 'n2', reason: 'agent not connected to this master' }],
      },
    ]);
  });
});

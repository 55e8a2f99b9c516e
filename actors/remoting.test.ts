import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentConnector, AgentHub } from './agent-channel.js';
import { ApiError } from './api.js';
import { type Envelope, type IncomingRequest, type RemoteHandler, RemoteSession } from './remoting.js';

/** Two sessions joined by an in-memory link that can be cut and restored. */
function pair(a: RemoteHandler, b: RemoteHandler) {
  const left = new RemoteSession(a, 'left');
  const right = new RemoteSession(b, 'right');
  const wire = { up: true, sentLeft: [] as Envelope[] };
  const connect = () => {
    wire.up = true;
    left.attach((e) => {
      if (!wire.up) return false;
      wire.sentLeft.push(e);
      queueMicrotask(() => right.receive(structuredClone(e)));
      return true;
    });
    right.attach((e) => {
      if (!wire.up) return false;
      queueMicrotask(() => left.receive(structuredClone(e)));
      return true;
    });
  };
  const cut = () => {
    wire.up = false;
    left.detach();
    right.detach();
  };
  connect();
  return { left, right, wire, connect, cut };
}

const echo: RemoteHandler = (req) => {
  if (req.type === 'echo') req.respond.reply({ to: req.to, body: req.body });
  else if (req.type === 'count') {
    const n = (req.body as { n: number }).n;
    for (let i = 1; i <= n; i += 1) req.respond.frame(i);
    req.respond.end();
  } else if (req.type === 'fail') req.respond.fail(new ApiError('NotFound', 'pod "x" not found'));
  else if (req.type === 'throw') throw new Error('boom');
  else if (req.expectsReply) req.respond.fail(new ApiError('Invalid', `unknown type ${req.type}`));
};

describe('RemoteSession', () => {
  it('asks, streams and tells, with typed errors', async () => {
    const told: unknown[] = [];
    const { left } = pair(
      () => {},
      (req) => {
        if (!req.expectsReply) told.push(req.body);
        else echo(req);
      },
    );
    expect(await left.ask('pod/1', 'echo', { a: 1 }, 1_000)).toEqual({ to: 'pod/1', body: { a: 1 } });
    const frames: number[] = [];
    for await (const f of left.stream<number>('node', 'count', { n: 5 })) frames.push(f);
    expect(frames).toEqual([1, 2, 3, 4, 5]);
    await expect(left.ask('x', 'fail', {}, 1_000)).rejects.toMatchObject({
      code: 'NotFound',
      message: 'pod "x" not found',
    });
    await expect(left.ask('x', 'throw', {}, 1_000)).rejects.toMatchObject({
      code: 'Internal',
      message: 'boom',
    });
    left.tell('node', 'note', { hi: true });
    await new Promise((r) => setTimeout(r, 10));
    expect(told).toEqual([{ hi: true }]);
  });

  it('times out an unanswered ask with Timeout', async () => {
    const { left } = pair(
      () => {},
      () => {},
    );
    await expect(left.ask('x', 'silence', {}, 50)).rejects.toMatchObject({ code: 'Timeout' });
    expect(left.pendingCount).toBe(0);
  });

  it('redelivers an unanswered ask after a reconnect and the receiver runs it once', async () => {
    let runs = 0;
    let release: (() => void) | undefined;
    const slow: RemoteHandler = (req: IncomingRequest) => {
      runs += 1;
      release = () => req.respond.reply({ done: runs });
    };
    const p = pair(() => {}, slow);
    const answer = p.left.ask('pod/1', 'ensure', {}, 2_000);
    await new Promise((r) => setTimeout(r, 10));
    expect(runs).toBe(1);
    p.cut(); // the work in progress is cancelled on the serving side
    p.connect(); // the ask goes out again with the same id
    await new Promise((r) => setTimeout(r, 10));
    expect(runs).toBe(2);
    release?.();
    expect(await answer).toEqual({ done: 2 });
    // A duplicate of an answered request is answered from the cache, not run again.
    const first = p.wire.sentLeft.find((e) => e.type === 'ensure') as Envelope;
    p.right.receive(structuredClone(first));
    await new Promise((r) => setTimeout(r, 10));
    expect(runs).toBe(2);
  });

  it('ends an open stream with Unavailable when the connection drops, and cancels on early exit', async () => {
    let cancelled = 0;
    const { left, cut } = pair(
      () => {},
      (req) => {
        req.respond.frame('first');
        req.respond.onCancel(() => {
          cancelled += 1;
        });
      },
    );
    const s = left.stream<string>('x', 'follow', {});
    const it = s[Symbol.asyncIterator]();
    expect((await it.next()).value).toBe('first');
    cut();
    await expect(it.next()).rejects.toMatchObject({ code: 'Unavailable' });
    expect(cancelled).toBe(1);
  });
});

describe('AgentHub and AgentConnector over gRPC', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function master(handler: RemoteHandler, port = 0) {
    const hub = new AgentHub({ handler: () => handler });
    const server = new grpc.Server();
    hub.addTo(server);
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const stop = () => {
      hub.close();
      server.forceShutdown();
    };
    cleanups.push(stop);
    return { hub, address: `127.0.0.1:${bound}`, stop };
  }

  it('connects past a dead master, carries asks both ways, and fails over when its master dies', async () => {
    const m1 = await master(echo);
    const m2 = await master(echo);
    const connections: (string | undefined)[] = [];
    const agent = new AgentConnector({
      node: 'n1',
      masters: ['127.0.0.1:1', m1.address, m2.address],
      handler: (req) => req.respond.reply({ node: 'n1', got: req.body }),
      onConnection: (m) => connections.push(m),
      random: () => 0.5,
    });
    cleanups.push(() => agent.close());
    agent.start();
    // Agent → master.
    expect(await agent.session.ask('node', 'echo', { x: 1 }, 5_000)).toEqual({ to: 'node', body: { x: 1 } });
    expect(agent.master).toBe(m1.address);
    // Master → agent, by node name.
    const s1 = m1.hub.session('n1');
    expect(s1).toBeDefined();
    expect(await s1?.ask('pod/a', 'status', { q: 1 }, 2_000)).toEqual({ node: 'n1', got: { q: 1 } });
    // The master dies: the agent moves to the next one; asks keep working.
    m1.stop();
    expect(await agent.session.ask('node', 'echo', { x: 2 }, 10_000)).toEqual({ to: 'node', body: { x: 2 } });
    expect(agent.master).toBe(m2.address);
    expect(m2.hub.connectedNodes()).toEqual(['n1']);
    expect(connections.filter((c) => c !== undefined)).toEqual([m1.address, m2.address]);
  }, 20_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { ApiError, type ObjectApi, type WatchEvent, type WatchStream } from './api.js';
import {
  type GatewayStream,
  startWsGateway,
  type WsGateway,
  type WsGatewayOptions,
  watchFrames,
} from './ws-gateway.js';

// biome-ignore lint/suspicious/noExplicitAny: frames are untyped JSON that the assertions inspect
type Frame = Record<string, any>;

/** A bare protocol client: sends frames, collects every frame received. */
class RawClient {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()));
      this.wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
  }

  static open(url: string, opts: WebSocket.ClientOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts);
      ws.once('open', () => resolve(new RawClient(ws)));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async until<T>(check: () => T | undefined, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new Error(`timed out; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Sends a request and waits for its reply. */
  async call(frame: Frame): Promise<Frame> {
    this.send(frame);
    return this.until(() => this.frames.find((f) => f.id === frame.id && 'ok' in f));
  }

  // biome-ignore lint/suspicious/noExplicitAny: a result is untyped JSON that the assertions inspect
  async result(frame: Frame): Promise<any> {
    const reply = await this.call(frame);
    if (!reply.ok) throw new Error(`unexpected error ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  streamEvents(id: unknown): WatchEvent[] {
    return this.frames.filter((f) => f.id === id && Array.isArray(f.events)).flatMap((f) => f.events);
  }

  endOf(id: unknown): Frame | undefined {
    return this.frames.find((f) => f.id === id && f.end === true);
  }
}

const cm = (name: string, data: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name },
  data,
});

let gateways: WsGateway[] = [];
let clients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients) c.ws.terminate();
  for (const g of gateways) await g.close();
  gateways = [];
  clients = [];
});

async function setup(over: Partial<WsGatewayOptions> = {}, memory = createMemoryApi()) {
  const gw = await startWsGateway({
    ...memory,
    listen: { host: '127.0.0.1', port: 0 },
    log: () => {},
    ...over,
  });
  gateways.push(gw);
  const client = await RawClient.open(gw.url);
  clients.push(client);
  return { gw, client, memory };
}

describe('ws gateway: unary ops', () => {
  it('serves create, get, list, update, updateStatus, patch and delete', async () => {
    const { client } = await setup();
    const created = await client.result({ id: 1, op: 'create', object: cm('a', { k: '1' }) });
    expect(created.metadata).toMatchObject({ name: 'a', namespace: 'default' });

    const got = await client.result({
      id: 2,
      op: 'get',
      key: { kind: 'ConfigMap', namespace: 'default', name: 'a' },
    });
    expect(got.data).toEqual({ k: '1' });

    await client.result({ id: 3, op: 'create', object: cm('b') });
    const listed = await client.result({
      id: 4,
      op: 'list',
      kind: 'configmaps',
      options: { namespace: 'default' },
    });
    expect(listed.items.map((o: Frame) => o.metadata.name)).toEqual(['a', 'b']);
    expect(listed.resourceVersion).toBe('2');

    const updated = await client.result({
      id: 'u',
      op: 'update',
      object: { ...got, data: { k: '2' } },
    });
    expect(updated.data).toEqual({ k: '2' });
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(got.metadata.resourceVersion));

    const pod = await client.result({
      id: 5,
      op: 'create',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: { containers: [{ name: 'c', image: 'x' }] },
      },
    });
    const withStatus = await client.result({
      id: 6,
      op: 'updateStatus',
      object: { ...pod, status: { phase: 'Running' } },
    });
    expect(withStatus.status.phase).toBe('Running');

    const patched = await client.result({
      id: 7,
      op: 'patch',
      key: { kind: 'cm', name: 'a' },
      patch: { metadata: { labels: { x: 'y' } } },
    });
    expect(patched.metadata.labels).toEqual({ x: 'y' });

    const deleted = await client.result({ id: 8, op: 'delete', key: { kind: 'ConfigMap', name: 'b' } });
    expect(deleted.metadata.name).toBe('b');
    const after = await client.result({ id: 9, op: 'list', kind: 'ConfigMap' });
    expect(after.items.map((o: Frame) => o.metadata.name)).toEqual(['a']);
  });

  it('serves the cluster ops', async () => {
    const { client } = await setup();
    const status = await client.result({ id: 1, op: 'cluster.status' });
    expect(status).toMatchObject({ self: 'm1', leader: 'm1' });
    const controllers = await client.result({ id: 10, op: 'cluster.controllers' });
    expect(controllers).toMatchObject({ leader: 'm1', running: true, controllers: [] });
    const member = { id: 'm2', raftAddress: 'r', apiAddress: 'a', wsUrl: 'ws://x' };
    const added = await client.result({ id: 2, op: 'cluster.addMember', member });
    expect(added.members.map((m: Frame) => m.id)).toEqual(['m1', 'm2']);
    const moved = await client.result({ id: 3, op: 'cluster.transfer', to: 'm2' });
    expect(moved.leader).toBe('m2');
    const removed = await client.result({ id: 4, op: 'cluster.removeMember', memberId: 'm1' });
    expect(removed.members.map((m: Frame) => m.id)).toEqual(['m2']);
    const bad = await client.call({ id: 5, op: 'cluster.addMember', member: { id: 'm3' } });
    expect(bad.error).toMatchObject({ code: 'Invalid', fieldPath: 'member.raftAddress' });
  });

  it('answers with typed errors carrying field paths', async () => {
    const { client } = await setup();
    const missing = await client.call({ id: 1, op: 'get', key: { kind: 'ConfigMap', name: 'nope' } });
    expect(missing).toMatchObject({ id: 1, ok: false, error: { code: 'NotFound' } });

    await client.result({ id: 2, op: 'create', object: cm('a') });
    const dup = await client.call({ id: 3, op: 'create', object: cm('a') });
    expect(dup.error.code).toBe('AlreadyExists');

    const stale = await client.call({
      id: 4,
      op: 'update',
      object: { ...cm('a', { k: 'v' }), metadata: { name: 'a', resourceVersion: '999' } },
    });
    expect(stale.error).toMatchObject({ code: 'Conflict', fieldPath: 'metadata.resourceVersion' });

    const invalid = await client.call({
      id: 5,
      op: 'create',
      object: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web' },
        spec: {
          replicas: -1,
          selector: { matchLabels: { a: 'b' } },
          template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } },
        },
      },
    });
    expect(invalid.error).toMatchObject({ code: 'Invalid', fieldPath: 'spec.replicas' });

    const noName = await client.call({ id: 6, op: 'get', key: { kind: 'Pod' } });
    expect(noName.error).toMatchObject({ code: 'Invalid', fieldPath: 'key.name' });
    const badOpts = await client.call({ id: 7, op: 'list', kind: 'Pod', options: { limit: 'ten' } });
    expect(badOpts.error).toMatchObject({ code: 'Invalid', fieldPath: 'options.limit' });
    const unknown = await client.call({ id: 8, op: 'frobnicate' });
    expect(unknown.error).toMatchObject({ code: 'Invalid', fieldPath: 'op' });
  });

  it('passes a Forbidden refusal (quota, LimitRange) with its field path', async () => {
    const memory = createMemoryApi();
    const objects: ObjectApi = {
      ...memory.objects,
      create: async () => {
        throw new ApiError('Forbidden', 'pods "p" is forbidden: exceeded quota: q1', {
          fieldPath: 'spec.containers[0].resources.limits.cpu',
        });
      },
    };
    const { client } = await setup({ objects });
    const r = await client.call({ id: 1, op: 'create', object: cm('a', {}) });
    expect(r.error).toEqual({
      code: 'Forbidden',
      message: 'pods "p" is forbidden: exceeded quota: q1',
      fieldPath: 'spec.containers[0].resources.limits.cpu',
    });
  });

  it('reports an API that throws a non-ApiError as Internal and keeps serving', async () => {
    const memory = createMemoryApi();
    const objects: ObjectApi = {
      ...memory.objects,
      get: async () => {
        throw new TypeError('boom');
      },
      list: (kind, opts) => memory.objects.list(kind, opts),
    };
    const { client } = await setup({ objects });
    const r = await client.call({ id: 1, op: 'get', key: { kind: 'Pod', name: 'x' } });
    expect(r.error).toEqual({ code: 'Internal', message: 'boom' });
    expect((await client.result({ id: 2, op: 'list', kind: 'Pod' })).items).toEqual([]);
  });
});

describe('ws gateway: malformed frames', () => {
  it('answers each with an Invalid error and keeps the connection', async () => {
    const { client } = await setup();
    client.send('{not json');
    client.send('[1,2]');
    client.send({ op: 'get' });
    client.send({ id: { nested: true }, op: 'get' });
    client.send({ id: 'x'.repeat(1000), op: 'get' });
    client.send({ id: 5 });
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await client.until(() => (client.frames.length >= 7 ? true : undefined));
    for (const f of client.frames) expect(f).toMatchObject({ ok: false, error: { code: 'Invalid' } });
    expect(client.frames.filter((f) => f.id === null)).toHaveLength(6);
    expect(client.frames.find((f) => f.id === 5)?.error.fieldPath).toBe('op');
    expect((await client.result({ id: 6, op: 'cluster.status' })).self).toBe('m1');
  });

  it('closes a connection that sends a frame over framePayloadBytesMax', async () => {
    const { client } = await setup({ limits: { framePayloadBytesMax: 1024 } });
    client.send({ id: 1, op: 'create', object: cm('big', { k: 'x'.repeat(4096) }) });
    await client.until(() => client.closeCode);
    expect(client.closeCode).toBe(1009);
  });

  it('rejects an id already in flight', async () => {
    const memory = createMemoryApi();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const objects: ObjectApi = {
      ...memory.objects,
      get: async (key) => {
        await gate;
        return memory.objects.get(key);
      },
      watch: (k, o) => memory.objects.watch(k, o),
    };
    const { client } = await setup({ objects });
    client.send({ id: 1, op: 'get', key: { kind: 'Pod', name: 'x' } });
    const dup = await client.call({ id: 1, op: 'list', kind: 'Pod' });
    expect(dup.error).toMatchObject({ code: 'Invalid', fieldPath: 'id' });
    release();
  });
});

describe('ws gateway: limits', () => {
  it('answers requests over requestsInFlightMax with ResourceExhausted', async () => {
    const memory = createMemoryApi();
    const objects: ObjectApi = { ...memory.objects, get: () => new Promise(() => {}) };
    const { client } = await setup({ objects, limits: { requestsInFlightMax: 3 } });
    for (let i = 0; i < 4; i++) client.send({ id: i, op: 'get', key: { kind: 'Pod', name: 'x' } });
    const r = await client.until(() => client.frames.find((f) => f.id === 3));
    expect(r.error.code).toBe('ResourceExhausted');
    expect(r.error.message).toContain('requestsInFlightMax');
    expect(client.frames).toHaveLength(1);
  });

  it('ends streams over streamsPerConnectionMax with ResourceExhausted', async () => {
    const { client } = await setup({ limits: { streamsPerConnectionMax: 2 } });
    for (let i = 0; i < 3; i++) client.send({ id: i, op: 'watch', kind: 'ConfigMap' });
    const end = await client.until(() => client.endOf(2));
    expect(end.error.code).toBe('ResourceExhausted');
    expect(client.endOf(0)).toBeUndefined();
    client.send({ id: 0, op: 'cancel' });
    await client.until(() => client.endOf(0));
    client.send({ id: 3, op: 'watch', kind: 'ConfigMap' });
    await client.result({ id: 4, op: 'create', object: cm('a') });
    await client.until(() => (client.streamEvents(3).length > 0 ? true : undefined));
  });

  it('terminates a client that stops answering pings', async () => {
    const { gw } = await setup({ limits: { heartbeatIntervalMs: 50 } });
    const silent = await RawClient.open(gw.url, { autoPong: false });
    const polite = await RawClient.open(gw.url);
    clients.push(silent, polite);
    await silent.until(() => silent.closeCode, 3_000);
    expect(silent.closeCode).toBe(1006);
    expect(polite.closeCode).toBeUndefined();
  });
});

describe('ws gateway: watch', () => {
  it('streams events in order and ends on cancel', async () => {
    const { client } = await setup();
    await client.result({ id: 'c0', op: 'create', object: cm('before') });
    client.send({ id: 'w', op: 'watch', kind: 'cm', options: { resourceVersion: '1' } });
    for (let i = 0; i < 20; i++) await client.result({ id: `c${i + 1}`, op: 'create', object: cm(`o${i}`) });
    await client.result({ id: 'd', op: 'delete', key: { kind: 'ConfigMap', name: 'o3' } });
    await client.until(() => (client.streamEvents('w').length === 21 ? true : undefined));
    const events = client.streamEvents('w');
    expect(events.map((e) => Number(e.object.metadata.resourceVersion))).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 2),
    );
    expect(events.at(-1)).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'o3' } } });
    expect(client.endOf('w')).toBeUndefined();
    client.send({ id: 'w', op: 'cancel' });
    expect(await client.until(() => client.endOf('w'))).toEqual({ id: 'w', end: true });
    // Cancelling an ended stream is ignored; the connection serves on.
    client.send({ id: 'w', op: 'cancel' });
    expect((await client.result({ id: 'x', op: 'cluster.status' })).self).toBe('m1');
  });

  it('sends the initial state first when no version is given', async () => {
    const { client } = await setup();
    await client.result({ id: 1, op: 'create', object: cm('a') });
    client.send({ id: 2, op: 'watch', kind: 'ConfigMap' });
    await client.until(() => (client.streamEvents(2).length === 1 ? true : undefined));
    await client.result({ id: 3, op: 'create', object: cm('b') });
    await client.until(() => (client.streamEvents(2).length === 2 ? true : undefined));
    expect(client.streamEvents(2).map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'a'],
      ['ADDED', 'b'],
    ]);
  });

  it('splits large batches into frames of eventsPerFrameMax', async () => {
    const { client } = await setup({ limits: { eventsPerFrameMax: 3 } });
    for (let i = 0; i < 10; i++) await client.result({ id: i, op: 'create', object: cm(`o${i}`) });
    client.send({
      id: 'w',
      op: 'watch',
      kind: 'ConfigMap',
      options: { resourceVersion: '0', sendInitialEvents: true },
    });
    await client.until(() => (client.streamEvents('w').length === 10 ? true : undefined));
    const sizes = client.frames.filter((f) => f.id === 'w' && f.events).map((f) => f.events.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
  });

  it('ends a stream with Gone when the version is older than the history', async () => {
    const { client } = await setup({}, createMemoryApi({ historyEventsMax: 2 }));
    for (let i = 0; i < 5; i++) await client.result({ id: i, op: 'create', object: cm(`o${i}`) });
    client.send({ id: 'w', op: 'watch', kind: 'ConfigMap', options: { resourceVersion: '1' } });
    const end = await client.until(() => client.endOf('w'));
    expect(end.error.code).toBe('Gone');
    expect(client.streamEvents('w')).toEqual([]);
  });

  it('passes an error that ends a stream on the server', async () => {
    const { client, memory } = await setup();
    client.send({ id: 'w', op: 'watch', kind: 'ConfigMap' });
    await client.result({ id: 1, op: 'create', object: cm('a') });
    await client.until(() => (client.streamEvents('w').length === 1 ? true : undefined));
    memory.objects.failWatches(new ApiError('Unavailable', 'leader lost', { retryAfterMs: 100 }));
    const end = await client.until(() => client.endOf('w'));
    expect(end.error).toEqual({ code: 'Unavailable', message: 'leader lost', retryAfterMs: 100 });
  });

  it('closes the WatchStreams of a connection that closes', async () => {
    const memory = createMemoryApi();
    const closed: string[] = [];
    const objects: ObjectApi = {
      ...memory.objects,
      watch: async (kind, opts) => {
        const inner = await memory.objects.watch(kind, opts);
        return {
          next: () => inner.next(),
          close: () => {
            closed.push(kind);
            inner.close();
          },
        };
      },
    };
    const { client } = await setup({ objects });
    client.send({ id: 1, op: 'watch', kind: 'ConfigMap' });
    client.send({ id: 2, op: 'watch', kind: 'Pod' });
    await client.result({ id: 3, op: 'cluster.status' });
    expect(closed).toEqual([]);
    client.ws.close();
    const deadline = Date.now() + 3000;
    while (new Set(closed).size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect([...new Set(closed)].sort()).toEqual(['ConfigMap', 'Pod']);
  });

  it('stops pulling events while a slow client has wsBufferedBytesMax unsent', async () => {
    const memory = createMemoryApi();
    const payload = 'x'.repeat(16 * 1024);
    let pulled = 0;
    let closed = false;
    const endless: WatchStream = {
      next: async () => {
        if (closed) return undefined;
        pulled++;
        return [
          {
            type: 'ADDED',
            object: {
              ...cm(`o${pulled}`, { payload }),
              metadata: { name: `o${pulled}`, resourceVersion: String(pulled) },
            } as never,
          },
        ];
      },
      close: () => {
        closed = true;
      },
    };
    const objects: ObjectApi = { ...memory.objects, watch: async () => endless };
    const { client } = await setup({ objects, limits: { wsBufferedBytesMax: 64 * 1024 } });
    // Stop reading: the kernel buffers fill, then the gateway's socket buffer.
    (client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    client.send({ id: 'w', op: 'watch', kind: 'ConfigMap' });
    await new Promise((r) => setTimeout(r, 500));
    const stalled = pulled;
    await new Promise((r) => setTimeout(r, 300));
    // Bounded by the socket buffers (a few MB on loopback) plus wsBufferedBytesMax; without
    // backpressure the gateway would pull tens of thousands of events in this time.
    expect(pulled).toBe(stalled);
    expect(pulled * payload.length).toBeLessThan(64 * 1024 * 1024);
    (client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await client.until(() => (client.streamEvents('w').length > stalled + 100 ? true : undefined), 10_000);
    const names = client.streamEvents('w').map((e) => e.object.metadata.name);
    expect(names.slice(0, stalled + 100)).toEqual(
      Array.from({ length: stalled + 100 }, (_, i) => `o${i + 1}`),
    );
    client.send({ id: 'w', op: 'cancel' });
    await client.until(() => client.endOf('w'), 10_000);
  });
});

describe('ws gateway: stream ops hook', () => {
  it('runs a custom stream op with input frames', async () => {
    const opened: unknown[] = [];
    const echo = async (req: Record<string, unknown>): Promise<GatewayStream> => {
      opened.push(req.greeting);
      const inbox: string[] = [];
      let wake: (() => void) | undefined;
      let done = false;
      return {
        async next() {
          while (inbox.length === 0 && !done) await new Promise<void>((r) => (wake = r));
          if (done) return undefined;
          return { data: inbox.shift() };
        },
        input(frame) {
          inbox.push(String(frame.data));
          wake?.();
        },
        close() {
          done = true;
          wake?.();
        },
      };
    };
    const { client } = await setup({ streamOps: { echo } });
    client.send({ id: 's', op: 'echo', greeting: 'hi' });
    client.send({ id: 's', op: 'input', data: 'one' });
    client.send({ id: 's', op: 'input', data: 'two' });
    await client.until(() => (client.frames.filter((f) => f.data).length === 2 ? true : undefined));
    expect(client.frames.filter((f) => f.data)).toEqual([
      { id: 's', data: 'one' },
      { id: 's', data: 'two' },
    ]);
    expect(opened).toEqual(['hi']);
    client.send({ id: 's', op: 'cancel' });
    expect(await client.until(() => client.endOf('s'))).toEqual({ id: 's', end: true });
  });
});

describe('ws gateway: watch frames', () => {
  const ev = (name: string, rv: number): WatchEvent => ({
    type: 'DELETED',
    object: { apiVersion: 'v1', kind: 'Event', metadata: { name, resourceVersion: String(rv) } } as never,
  });

  it('never parts the events of one resourceVersion across frames (a resume would lose the rest)', async () => {
    const batches = [[ev('a', 1), ev('b', 2), ev('c', 2), ev('d', 2), ev('e', 3), ev('f', 4)]];
    const stream: WatchStream = {
      next: async () => batches.shift(),
      close: () => {},
    };
    const frames = watchFrames(stream, 2);
    const seen: string[][] = [];
    for (;;) {
      const frame = (await frames.next()) as { events: WatchEvent[] } | undefined;
      if (frame === undefined) break;
      seen.push(frame.events.map((e) => `${e.object.metadata.name}@${e.object.metadata.resourceVersion}`));
    }
    expect(seen).toEqual([
      ['a@1', 'b@2', 'c@2', 'd@2'],
      ['e@3', 'f@4'],
    ]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, type ObjectApi, type WatchEvent, type WatchStream } from '../actors/api.js';
import { startWsGateway, type WsGateway } from '../actors/ws-gateway.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { CoxClient } from './client.js';

const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: {} });
/** A port nothing listens on (connection refused at once). */
const deadUrl = 'ws://127.0.0.1:1';

let gateways: WsGateway[] = [];
let clients: CoxClient[] = [];
afterEach(async () => {
  for (const c of clients) c.close();
  for (const g of gateways) await g.close().catch(() => {});
  gateways = [];
  clients = [];
});

async function gateway(api: { objects: ObjectApi; cluster: ReturnType<typeof createMemoryApi>['cluster'] }) {
  const gw = await startWsGateway({ ...api, listen: { host: '127.0.0.1', port: 0 }, log: () => {} });
  gateways.push(gw);
  return gw;
}

function client(servers: string[], limits = {}) {
  const c = new CoxClient({ servers, limits: { retryBackoffMsMax: 20, ...limits } });
  clients.push(c);
  return c;
}

async function take(stream: WatchStream, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  while (out.length < n) {
    const batch = await stream.next();
    if (batch === undefined) throw new Error(`stream ended after ${out.length} events`);
    out.push(...batch);
  }
  return out;
}

describe('CoxClient', () => {
  it('fails over from a dead master to the next one', async () => {
    const gw = await gateway(createMemoryApi());
    const c = client([deadUrl, gw.url]);
    const created = await c.create(cm('a'));
    expect(created.metadata.name).toBe('a');
    expect(c.server).toBe(gw.url);
  });

  it('moves on after an Unavailable answer, and returns other errors as they are', async () => {
    const memory = createMemoryApi();
    const noQuorum: ObjectApi = {
      ...memory.objects,
      get: async () => {
        throw new ApiError('Unavailable', 'no quorum', { retryAfterMs: 5 });
      },
    };
    const a = await gateway({ ...memory, objects: noQuorum });
    const b = await gateway(memory);
    await memory.objects.create(cm('a'));
    const c = client([a.url, b.url]);
    expect((await c.get({ kind: 'ConfigMap', name: 'a' })).metadata.name).toBe('a');
    expect(c.server).toBe(b.url);
    await expect(c.get({ kind: 'ConfigMap', name: 'zz' })).rejects.toMatchObject({ code: 'NotFound' });
    expect(c.server).toBe(b.url);
  });

  it('returns Forbidden as a typed error without failing over', async () => {
    const memory = createMemoryApi();
    const quota: ObjectApi = {
      ...memory.objects,
      create: async () => {
        throw new ApiError('Forbidden', 'configmaps "a" is forbidden: exceeded quota: q1');
      },
    };
    const a = await gateway({ ...memory, objects: quota });
    const b = await gateway(memory);
    const c = client([a.url, b.url]);
    await expect(c.create(cm('a'))).rejects.toMatchObject({
      code: 'Forbidden',
      message: 'configmaps "a" is forbidden: exceeded quota: q1',
    });
    expect(c.server).toBe(a.url);
  });

  it('fails over when a master does not answer within requestTimeoutMs', async () => {
    const memory = createMemoryApi();
    const hung = await gateway({
      ...memory,
      objects: { ...memory.objects, list: () => new Promise(() => {}) },
    });
    const live = await gateway(memory);
    const c = client([hung.url, live.url], { requestTimeoutMs: 200 });
    expect((await c.list('ConfigMap')).items).toEqual([]);
    expect(c.server).toBe(live.url);
  });

  it('answers Unavailable naming the masters when none answers', async () => {
    const c = client([deadUrl, 'ws://127.0.0.1:2'], { failoverRoundsMax: 2 });
    const err = await c.clusterStatus().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe('Unavailable');
    expect(err.message).toMatch(/no master answered .*127\.0\.0\.1:1.*127\.0\.0\.1:2/);
  });

  it('resumes a watch on the next master from its last version, without gap or duplicate', async () => {
    const memory = createMemoryApi();
    const a = await gateway(memory);
    const b = await gateway(memory);
    const c = client([a.url, b.url]);
    const listed = await c.list('ConfigMap');
    const stream = await c.watch('ConfigMap', { resourceVersion: listed.resourceVersion });
    for (let i = 0; i < 5; i++) await memory.objects.create(cm(`o${i}`));
    const first = await take(stream, 5);
    await a.close(); // the master dies: its connections drop
    for (let i = 5; i < 10; i++) await memory.objects.create(cm(`o${i}`));
    const rest = await take(stream, 5);
    const names = [...first, ...rest].map((e) => e.object.metadata.name);
    expect(names).toEqual(Array.from({ length: 10 }, (_, i) => `o${i}`));
    expect(c.server).toBe(b.url);
    stream.close();
    expect(await stream.next()).toBeUndefined();
  });

  it('passes Gone to the caller', async () => {
    const memory = createMemoryApi({ historyEventsMax: 1 });
    const gw = await gateway(memory);
    for (let i = 0; i < 3; i++) await memory.objects.create(cm(`o${i}`));
    const c = client([gw.url]);
    const stream = await c.watch('ConfigMap', { resourceVersion: '1' });
    await expect(stream.next()).rejects.toMatchObject({ code: 'Gone' });
  });
});

/**
 * The gRPC peer link: requests between masters multiplexed over one stream per peer.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from './api.js';
import {
  GrpcPeerLink,
  type PeerHandler,
  type PeerRequest,
  type PeerResponse,
  peerServiceDefinition,
  peerServiceImplementation,
} from './peers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function servePeer(handle: (req: PeerRequest) => Promise<PeerResponse>, port = 0) {
  const server = new grpc.Server();
  const handler: PeerHandler = { handle, info: () => ({ id: 'm2' }) as ReturnType<PeerHandler['info']> };
  server.addService(
    peerServiceDefinition,
    peerServiceImplementation(() => handler),
  );
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  cleanups.push(() => server.forceShutdown());
  return { server, address: `127.0.0.1:${bound}`, port: bound };
}

function link(options?: ConstructorParameters<typeof GrpcPeerLink>[0]): GrpcPeerLink {
  const l = new GrpcPeerLink(options);
  cleanups.push(() => l.close());
  return l;
}

const propose = (id: string): PeerRequest => ({ t: 'propose', data: new Uint8Array([1, 2, 3]), id });

describe('GrpcPeerLink', () => {
  it('answers concurrent requests each with its own response, in whatever order they finish', async () => {
    const { address } = await servePeer(async (req) => {
      if (req.t !== 'propose') return { t: 'done' };
      const n = Number(req.id);
      // Later requests finish first.
      await new Promise((r) => setTimeout(r, 50 - n));
      return { t: 'proposed', index: n * 10 };
    });
    const l = link();
    l.setAddress('m2', address);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => l.request('m2', propose(String(i)), 5_000)),
    );
    expect(answers.map((a) => (a.t === 'proposed' ? a.index : -1))).toEqual(
      Array.from({ length: 40 }, (_, i) => i * 10),
    );
    expect((await l.info('m2', 5_000)).id).toBe('m2');
  });

  it('sends a large backlog in several frames and answers every request', async () => {
    const frames: number[] = [];
    const server = new grpc.Server();
    const handler: PeerHandler = {
      handle: async (req) => ({ t: 'proposed', index: req.t === 'propose' ? req.data.byteLength : 0 }),
      info: () => ({ id: 'm2' }) as ReturnType<PeerHandler['info']>,
    };
    const impl = peerServiceImplementation(() => handler);
    const stream = impl.Stream as (call: grpc.ServerDuplexStream<unknown[], unknown>) => void;
    server.addService(peerServiceDefinition, {
      ...impl,
      Stream: (call: grpc.ServerDuplexStream<unknown[], unknown>) => {
        call.on('data', (frame: unknown[]) => frames.push(frame.length));
        stream(call);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    cleanups.push(() => server.forceShutdown());
    const l = link();
    l.setAddress('m2', `127.0.0.1:${port}`);
    const big = (i: number): PeerRequest => ({
      t: 'propose',
      data: new Uint8Array(100_000 + i),
      id: String(i),
    });
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => l.request('m2', big(i), 10_000)));
    expect(answers.map((a) => (a.t === 'proposed' ? a.index : -1))).toEqual(
      Array.from({ length: 30 }, (_, i) => 100_000 + i),
    );
    // ~3 MB of requests made in one turn: frames of about 1 MiB, not one of 3.
    expect(frames.reduce((a, b) => a + b, 0)).toBe(30);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...frames)).toBeLessThanOrEqual(11);
  });

  it('carries a handler failure as an error response', async () => {
    const { address } = await servePeer(async () => {
      throw new Error('boom');
    });
    const l = link();
    l.setAddress('m2', address);
    const res = await l.request('m2', propose('1'), 5_000);
    expect(res).toMatchObject({ t: 'error', code: 'Internal' });
  });

  it('fails requests in flight with Unavailable when the peer goes away, and reconnects after', async () => {
    let release: (() => void) | undefined;
    const first = await servePeer(
      () =>
        new Promise<PeerResponse>((resolve) => {
          release = () => resolve({ t: 'done' });
        }),
    );
    const l = link();
    l.setAddress('m2', first.address);
    const inFlight = l.request('m2', propose('1'), 10_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(release).toBeDefined();
    first.server.forceShutdown();
    const err = await inFlight.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('Unavailable');
    expect((err as ApiError).details.retryAfterMs).toBe(200);

    const second = await servePeer(async () => ({ t: 'done' }), first.port);
    let answered: PeerResponse | undefined;
    for (let i = 0; i < 50 && answered === undefined; i += 1) {
      answered = await l.request('m2', propose('2'), 2_000).catch(() => undefined);
      if (answered === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(answered).toEqual({ t: 'done' });
    expect(second.address).toBe(first.address);
  });

  it('ends a request at its timeout with Unavailable', async () => {
    const { address } = await servePeer(() => new Promise<PeerResponse>(() => {}));
    const l = link();
    l.setAddress('m2', address);
    const started = Date.now();
    const err = await l.request('m2', propose('1'), 300).catch((e: unknown) => e);
    expect((err as ApiError).code).toBe('Unavailable');
    expect((err as ApiError).message).toContain('Deadline exceeded');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('refuses requests beyond requestsInFlightMax at once', async () => {
    const { address } = await servePeer(() => new Promise<PeerResponse>(() => {}));
    const l = link({ requestsInFlightMax: 2 });
    l.setAddress('m2', address);
    void l.request('m2', propose('1'), 5_000).catch(() => {});
    void l.request('m2', propose('2'), 5_000).catch(() => {});
    const err = await l.request('m2', propose('3'), 5_000).catch((e: unknown) => e);
    expect((err as ApiError).code).toBe('Unavailable');
    expect((err as ApiError).message).toContain('2 requests in flight');
  });

  it('rejects a request to a member without an address', async () => {
    const err = await link()
      .request('m9', propose('1'), 1_000)
      .catch((e: unknown) => e);
    expect((err as ApiError).code).toBe('Unavailable');
  });
});

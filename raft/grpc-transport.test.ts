import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessages } from './codec.js';
import { RaftTransportError } from './errors.js';
import { GrpcTransport, type GrpcTransportOptions, type TransportWarning } from './grpc-transport.js';
import type { RaftMessage } from './types.js';

interface TestNode {
  t: GrpcTransport;
  got: RaftMessage[];
  warnings: TransportWarning[];
}

const open: GrpcTransport[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

/** Fast reconnects so that the down/restart tests stay well under a second each. */
const fast: Partial<GrpcTransportOptions> = { reconnectBackoffMsMin: 10, reconnectBackoffMsMax: 100 };

function node(id: string, opts: Partial<GrpcTransportOptions> = {}): TestNode {
  const warnings: TransportWarning[] = [];
  const t = new GrpcTransport({
    id,
    listen: '127.0.0.1:0',
    ...fast,
    onWarning: (w) => warnings.push(w),
    ...opts,
  });
  open.push(t);
  return { t, got: [], warnings };
}

async function started(id: string, opts: Partial<GrpcTransportOptions> = {}): Promise<TestNode> {
  const n = node(id, opts);
  await n.t.start((m) => n.got.push(m));
  return n;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends `make(i)` every few ms until `cond` holds: for links that are coming back up. */
async function sendUntil(
  from: GrpcTransport,
  make: (i: number) => RaftMessage,
  cond: () => boolean,
  what: string,
): Promise<void> {
  let i = 0;
  const timer = setInterval(() => from.send([make(i++)]), 10);
  try {
    await waitFor(cond, what);
  } finally {
    clearInterval(timer);
  }
}

function hb(from: string, to: string, term: number): RaftMessage {
  return { type: 'heartbeat', from, to, term, commit: 0 };
}

function app(from: string, to: string, index: number, dataBytes = 16): RaftMessage {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index + i) & 0xff;
  return {
    type: 'app',
    from,
    to,
    term: 3,
    logTerm: 3,
    index: index - 1,
    commit: index - 1,
    entries: [{ index, term: 3, type: 'normal', data }],
  };
}

describe('GrpcTransport over loopback', () => {
  it('delivers entries and snapshot chunks intact and in order to each peer', async () => {
    const n2 = await started('n2');
    const n3 = await started('n3');
    const n1 = await started('n1', { peers: { n2: n2.t.address(), n3: n3.t.address() } });

    const to2: RaftMessage[] = [];
    const to3: RaftMessage[] = [];
    for (let turn = 0; turn < 20; turn++) {
      const batch: RaftMessage[] = [];
      for (let i = 0; i < 25; i++) {
        const k = turn * 25 + i;
        const m2 = app('n1', 'n2', k + 1, k % 300);
        const m3: RaftMessage = {
          type: 'snap',
          from: 'n1',
          to: 'n3',
          term: 3,
          snapshot: {
            index: 1000,
            term: 2,
            voters: ['n1', 'n2', 'n3'],
            learners: [],
            size: 500 * 64,
            offset: k * 64,
            data: new Uint8Array(64).fill(k & 0xff),
            done: k === 499,
          },
        };
        to2.push(m2);
        to3.push(m3);
        batch.push(m2, m3);
      }
      n1.t.send(batch);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => n2.got.length === 500 && n3.got.length === 500, 'all messages');
    expect(n2.got).toEqual(to2);
    expect(n3.got).toEqual(to3);
    expect(n2.got[7].entries?.[0].data).toBeInstanceOf(Uint8Array);
    expect(n1.t.stats().messagesDropped).toBe(0);
    expect(n2.warnings).toEqual([]);
  });

  it('writes one frame per peer per event-loop turn, however many send() calls', async () => {
    const n2 = await started('n2');
    const n1 = await started('n1', { peers: { n2: n2.t.address() } });
    n1.t.send([hb('n1', 'n2', 1)]);
    await waitFor(() => n2.got.length === 1, 'the stream to open');

    const before = n1.t.stats();
    const received = n2.t.stats().framesReceived;
    for (let call = 0; call < 10; call++) {
      const batch: RaftMessage[] = [];
      for (let i = 0; i < 200; i++) batch.push(app('n1', 'n2', call * 200 + i + 1));
      n1.t.send(batch);
    }
    await waitFor(() => n2.got.length === 2001, 'the batch');
    const after = n1.t.stats();
    expect(after.framesSent - before.framesSent).toBe(1);
    expect(after.messagesSent - before.messagesSent).toBe(2000);
    expect(n2.t.stats().framesReceived - received).toBe(1);
    expect(n2.got.slice(1).map((m) => m.entries?.[0].index)).toEqual(
      Array.from({ length: 2000 }, (_, i) => i + 1),
    );
  });

  it("packs one turn's messages into frames of about frameBytesTarget, in order", async () => {
    const n2 = await started('n2');
    const n1 = await started('n1', { peers: { n2: n2.t.address() }, frameBytesTarget: 16 * 1024 });
    n1.t.send([hb('n1', 'n2', 1)]);
    await waitFor(() => n2.got.length === 1, 'the stream to open');
    const before = n1.t.stats().framesSent;
    const batch = Array.from({ length: 20 }, (_, i) => app('n1', 'n2', i + 1, 4096));
    n1.t.send(batch);
    await waitFor(() => n2.got.length === 21, 'the batch');
    expect(n2.got.slice(1)).toEqual(batch);
    // 20 × ~4 KiB in frames of at most ~16 KiB: 3 messages each (a fourth would pass the target).
    expect(n1.t.stats().framesSent - before).toBe(7);
  });

  it('respects stream backpressure by coalescing queued messages until the stream drains', async () => {
    const n2 = await started('n2');
    const n1 = await started('n1', { peers: { n2: n2.t.address() } });
    n1.t.send([hb('n1', 'n2', 1)]);
    await waitFor(() => n2.got.length === 1, 'the stream to open');

    // 64 turns of 256 KiB each: far beyond the HTTP/2 window, so writes must wait for 'drain'.
    const turns = 64;
    for (let i = 0; i < turns; i++) {
      n1.t.send([app('n1', 'n2', i + 1, 256 * 1024)]);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => n2.got.length === turns + 1, 'every large message', 15_000);
    expect(n2.got.slice(1).map((m) => m.entries?.[0].index)).toEqual(
      Array.from({ length: turns }, (_, i) => i + 1),
    );
    const stats = n1.t.stats();
    expect(stats.messagesDropped).toBe(0);
    expect(stats.messagesSent).toBe(turns + 1);
    expect(stats.framesSent).toBeLessThan(turns + 1);
  });

  it('does not throw while a peer is down, and reaches it once it comes up', async () => {
    const placeholder = await started('n2');
    const address = placeholder.t.address();
    await placeholder.t.close();

    const n1 = await started('n1', { peers: { n2: address } });
    for (let i = 0; i < 50; i++) expect(() => n1.t.send([hb('n1', 'n2', 1)])).not.toThrow();
    await waitFor(() => n1.t.stats().reconnects >= 2, 'a few failed reconnects');

    const n2 = await started('n2', { listen: address });
    await sendUntil(
      n1.t,
      () => hb('n1', 'n2', 2),
      () => n2.got.some((m) => m.term === 2),
      'a message on the new link',
    );
    expect(n1.t.stats().reconnects).toBeGreaterThanOrEqual(2);
  });

  it('reconnects to a peer restarted on the same port', async () => {
    const n2a = await started('n2');
    const address = n2a.t.address();
    const n1 = await started('n1', { peers: { n2: address } });
    n1.t.send([hb('n1', 'n2', 1)]);
    await waitFor(() => n2a.got.length === 1, 'the first link');

    await n2a.t.close();
    await waitFor(() => n1.warnings.some((w) => w.code === 'LINK_DOWN'), 'the link-down warning');
    n1.t.send([hb('n1', 'n2', 2)]);

    const n2b = await started('n2', { listen: address });
    await sendUntil(
      n1.t,
      () => hb('n1', 'n2', 3),
      () => n2b.got.some((m) => m.term === 3),
      'a message to the restarted peer',
    );
    expect(n1.t.stats().reconnects).toBeGreaterThanOrEqual(1);
  });

  it('bounds the queue of an unreachable peer by dropping its oldest messages', async () => {
    const placeholder = await started('n2');
    const address = placeholder.t.address();
    await placeholder.t.close();

    const n1 = await started('n1', { peers: { n2: address }, peerQueueMessagesMax: 10 });
    const sent = Array.from({ length: 100 }, (_, i) => app('n1', 'n2', i + 1));
    for (const m of sent) n1.t.send([m]);
    expect(n1.t.stats().messagesDropped).toBe(90);
    expect(n1.warnings.filter((w) => w.code === 'QUEUE_FULL')).toHaveLength(1);

    const n2 = await started('n2', { listen: address });
    await waitFor(() => n2.got.length === 10, 'the queued messages');
    expect(n2.got).toEqual(sent.slice(90));
  });

  it('drops a message larger than maxFrameBytes and splits large batches into frames that fit', async () => {
    const n2 = await started('n2');
    const n1 = await started('n1', { peers: { n2: n2.t.address() }, maxFrameBytes: 64 * 1024 });
    const batch = [
      ...Array.from({ length: 20 }, (_, i) => app('n1', 'n2', i + 1, 4096)),
      app('n1', 'n2', 999, 100 * 1024),
      ...Array.from({ length: 20 }, (_, i) => app('n1', 'n2', i + 21, 4096)),
    ];
    n1.t.send(batch);
    await waitFor(() => n2.got.length === 40, 'the messages that fit');
    expect(n2.got.map((m) => m.entries?.[0].index)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(n2.got).toEqual(batch.filter((m) => m.entries?.[0].index !== 999));
    const stats = n1.t.stats();
    expect(stats.messagesDropped).toBe(1);
    expect(stats.framesSent).toBeGreaterThanOrEqual(3);
    expect(n1.warnings.map((w) => w.code)).toEqual(['MESSAGE_TOO_LARGE']);
  });

  it('survives a peer that refuses frames over its own maxFrameBytes', async () => {
    const n2 = await started('n2', { maxFrameBytes: 64 * 1024 });
    const n1 = await started('n1', { peers: { n2: n2.t.address() } });
    n1.t.send([hb('n1', 'n2', 1)]);
    await waitFor(() => n2.got.length === 1, 'the link');

    n1.t.send([app('n1', 'n2', 1, 200 * 1024)]);
    await waitFor(() => n1.warnings.some((w) => w.code === 'LINK_DOWN'), 'the refusal');
    expect(n1.warnings.find((w) => w.code === 'LINK_DOWN')?.message).toMatch(/RESOURCE_EXHAUSTED/);
    await sendUntil(
      n1.t,
      () => hb('n1', 'n2', 2),
      () => n2.got.some((m) => m.term === 2),
      'small messages after the refusal',
    );
    expect(n2.got.some((m) => m.type === 'app')).toBe(false);
  });

  it('drops malformed and misaddressed frames with a warning and keeps the stream', async () => {
    const n2 = await started('n2');
    const protoPath = fileURLToPath(new URL('../proto/raft.proto', import.meta.url));
    const service = protoLoader.loadSync(protoPath, { keepCase: true })[
      'coxswain.raft.v1.RaftTransport'
    ] as grpc.ServiceDefinition;
    const client = new grpc.Client(n2.t.address(), grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest(
      service.Stream.path,
      service.Stream.requestSerialize,
      service.Stream.responseDeserialize,
    );
    call.on('error', () => {});
    try {
      call.write({ from: 'evil', payload: Buffer.from('definitely not msgpack') });
      call.write({ from: 'evil', payload: encodeMessages([hb('evil', 'n2', 1)]).subarray(0, 5) });
      call.write({ from: 'evil' });
      call.write({ from: 'n1', payload: encodeMessages([hb('n1', 'n9', 1), hb('n1', 'n2', 7)]) });
      await waitFor(() => n2.got.length === 1, 'the valid message');
      expect(n2.got[0].term).toBe(7);
      const codes = n2.warnings.map((w) => w.code);
      expect(codes.filter((c) => c === 'MALFORMED_FRAME')).toHaveLength(3);
      expect(codes.filter((c) => c === 'MISADDRESSED')).toHaveLength(1);
      expect(n2.t.stats().framesRejected).toBe(3);
      expect(n2.t.stats().messagesMisaddressed).toBe(1);
    } finally {
      call.cancel();
      client.close();
    }
  });

  it('drops messages to unknown or removed peers, and follows a peer to a new address', async () => {
    const n2a = await started('n2');
    const n2b = await started('n2');
    const n1 = await started('n1', { peers: { n2: n2a.t.address() } });

    n1.t.send([hb('n1', 'nobody', 1), hb('n1', 'nobody', 1), hb('n1', 'n2', 1)]);
    await waitFor(() => n2a.got.length === 1, 'the first address');
    expect(n1.t.stats().messagesDropped).toBe(2);
    expect(n1.warnings.filter((w) => w.code === 'UNKNOWN_PEER')).toHaveLength(1);

    n1.t.setPeer('n2', n2b.t.address());
    n1.t.send([hb('n1', 'n2', 2)]);
    await waitFor(() => n2b.got.length === 1, 'the new address');
    expect(n2a.got).toHaveLength(1);

    n1.t.removePeer('n2');
    n1.t.send([hb('n1', 'n2', 3)]);
    expect(n1.t.stats().messagesDropped).toBe(3);
  });

  it('refuses to start twice, on a port in use, or after close; send after close is a no-op', async () => {
    const n1 = await started('n1');
    await expect(n1.t.start(() => {})).rejects.toBeInstanceOf(RaftTransportError);
    const clash = node('n2', { listen: n1.t.address() });
    await expect(clash.t.start(() => {})).rejects.toMatchObject({ code: 'TRANSPORT' });
    await n1.t.close();
    await n1.t.close();
    expect(() => n1.t.send([hb('n1', 'n2', 1)])).not.toThrow();
    await expect(n1.t.start(() => {})).rejects.toBeInstanceOf(RaftTransportError);
  });

  it('close() ends streams promptly even to a peer that never answers', async () => {
    // A listener that accepts TCP but never speaks HTTP/2: the stream stays "opening".
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    try {
      const n1 = await started('n1', {
        peers: { n2: `127.0.0.1:${port}` },
        closeGraceMs: 100,
        streamOpenTimeoutMs: 50,
      });
      n1.t.send([hb('n1', 'n2', 1)]);
      await waitFor(() => sockets.length > 0, 'the TCP connection');
      // The stream is abandoned after streamOpenTimeoutMs and retried with backoff.
      await waitFor(() => n1.t.stats().reconnects >= 2, 'retries of the unanswered stream');
      expect(n1.t.stats().framesSent).toBe(0);
      const t0 = Date.now();
      await n1.t.close();
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('leaves no handles behind: a process that uses it and closes it exits by itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coxswain-transport-'));
    try {
      const script = join(dir, 'exit-check.mts');
      const moduleUrl = new URL('./grpc-transport.ts', import.meta.url).href;
      await writeFile(
        script,
        `import { GrpcTransport } from ${JSON.stringify(moduleUrl)};
const got = [];
const b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0', onWarning: () => {} });
await b.start((m) => got.push(m));
const a = new GrpcTransport({ id: 'a', listen: '127.0.0.1:0', peers: { b: b.address(), c: '127.0.0.1:1' }, onWarning: () => {} });
await a.start(() => {});
b.setPeer('a', a.address());
a.send([{ type: 'heartbeat', from: 'a', to: 'b', term: 1 }, { type: 'heartbeat', from: 'a', to: 'c', term: 1 }]);
b.send([{ type: 'heartbeatResp', from: 'b', to: 'a', term: 1 }]);
while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
await Promise.all([a.close(), b.close()]);
console.log('closed', got.length);
`,
      );
      const repoRoot = fileURLToPath(new URL('..', import.meta.url));
      const result = await new Promise<{ code: number | null; out: string; ms: number }>(
        (resolve, reject) => {
          const t0 = Date.now();
          const child = spawn(process.execPath, ['--import', 'tsx', script], {
            cwd: repoRoot,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          child.stdout.on('data', (d) => {
            out += d;
          });
          child.stderr.on('data', (d) => {
            out += d;
          });
          const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.on('error', reject);
          child.on('exit', (code) => {
            clearTimeout(killer);
            resolve({ code, out, ms: Date.now() - t0 });
          });
        },
      );
      expect(result.out).toContain('closed 1');
      expect(result.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

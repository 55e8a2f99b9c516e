/**
 * The client side of `Objects.Calls` (proto/api.proto): unary calls multiplexed over one
 * bidirectional stream per master. grpc-js spends about 200 µs of CPU on each side of a unary
 * call (headers, a new HTTP/2 stream, trailers); a call on an open stream costs a fraction of
 * that, and calls made in one turn of the event loop travel in one message. Node agents make
 * most of the cluster's small writes (pod statuses, events, lease renewals), so this is their
 * path to the masters.
 *
 * Contract: `call` settles like the unary call it stands for. A result rejects with the status
 * the unary call would have ended with (code, message, `coxswain-*` trailers), so the client's
 * failover rule reads both alike. When the stream breaks with calls in flight, each of them
 * rejects with UNAVAILABLE and no domain code (the server may have run it: outcome unknown),
 * exactly as a unary call cut mid-way; the next call opens a new stream. A deadline rejects
 * with DEADLINE_EXCEEDED (the server may still run the call, as with a unary deadline).
 */
import * as grpc from '@grpc/grpc-js';
import {
  sizedBatches,
  statusOfCallError,
  type WireCall,
  type WireCallBatch,
  type WireCallResultBatch,
  type WireObjectResponse,
} from './grpc-api-wire.js';

/** The unary methods `Calls` carries, and the `Call` field each goes in. */
export const callFields = {
  Create: 'create',
  Update: 'update',
  UpdateStatus: 'update_status',
  Patch: 'patch',
  Delete: 'delete',
  Get: 'get',
} as const;
export type CallMethod = keyof typeof callFields;

export function isCallMethod(method: string): method is CallMethod {
  return Object.hasOwn(callFields, method);
}

export interface CallStreamOptions {
  /**
   * Calls sent on one stream and waiting for their result (the server's own bound, 1,024 by
   * default); further calls wait in this client until results come back, as HTTP/2 queues
   * streams beyond a connection's concurrency limit.
   */
  callsInFlightMax: number;
  /** Calls waiting in this client for room on the stream; beyond it a call is refused at once. */
  callsWaitingMax: number;
  /** A message of calls holds at most this many bytes of payload (one larger call goes alone). */
  messageBytesMax: number;
}

interface Pending {
  resolve: (res: WireObjectResponse) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
  /** Written to the stream (else still waiting for room in this client). */
  sent: boolean;
}

/** A status grpc-js itself would have made (no `coxswain-*` trailers). */
function transportStatus(code: grpc.status, details: string): grpc.StatusObject & Error {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), {
    code,
    details,
    metadata: new grpc.Metadata(),
  });
}

function payloadBytes(c: WireCall): number {
  const body = c.create ?? c.update ?? c.update_status;
  if (body?.object_json !== undefined) return body.object_json.byteLength + 32;
  if (c.patch?.patch_json !== undefined) return c.patch.patch_json.byteLength + 128;
  return 256;
}

export class CallStream {
  private stream: grpc.ClientDuplexStream<WireCallBatch, WireCallResultBatch> | undefined;
  /** Calls without a result yet: sent, or waiting in `queue`. */
  private readonly pending = new Map<number, Pending>();
  /** Calls not yet sent, oldest first, from `queueHead` on (entries whose deadline passed are skipped). */
  private queue: WireCall[] = [];
  private queueHead = 0;
  /**
   * Calls on the current stream whose result has not come back, those past their deadline
   * included (the server still counts them against its bound until it answers).
   */
  private onWire = 0;
  /** Pending calls not yet sent. */
  private waitingCount = 0;
  private flushScheduled = false;
  private nextId = 1;
  /** The server does not know `Calls` (an older master): callers use unary calls. */
  unimplemented = false;

  constructor(
    private readonly client: grpc.Client,
    private readonly options: CallStreamOptions,
  ) {}

  /** Calls sent and waiting for their result (for tests and metrics). */
  get inFlight(): number {
    return this.pending.size - this.waitingCount;
  }

  call(method: CallMethod, req: unknown, deadlineMs: number): Promise<WireObjectResponse> {
    if (this.waitingCount >= this.options.callsWaitingMax) {
      return Promise.reject(
        transportStatus(
          grpc.status.RESOURCE_EXHAUSTED,
          `more than ${this.options.callsInFlightMax} calls in flight to this master and ${this.options.callsWaitingMax} waiting`,
        ),
      );
    }
    const id = this.nextId;
    this.nextId = this.nextId >= Number.MAX_SAFE_INTEGER ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          const p = this.pending.get(id);
          if (p === undefined) return;
          this.pending.delete(id);
          if (!p.sent) this.waitingCount -= 1;
          reject(transportStatus(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
        },
        Math.max(0, Math.min(deadlineMs - Date.now(), 2 ** 31 - 1)),
      );
      this.pending.set(id, { resolve, reject, timer, sent: false });
      this.waitingCount += 1;
      // Calls past their deadline leave the queue when it is next sent from; while the stream
      // has no room, they are dropped here so the queue stays within twice the bound.
      if (this.queue.length - this.queueHead >= 2 * this.options.callsWaitingMax) this.compactQueue();
      this.queue.push({ id, [callFields[method]]: req } as WireCall);
      this.scheduleFlush();
    });
  }

  /** Ends the stream; calls in flight reject as cut. */
  close(): void {
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    this.failAll('the client closed the connection');
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Drops the calls before `queueHead` (sent or skipped) and those past their deadline. */
  private compactQueue(): void {
    this.queue = this.queue.slice(this.queueHead).filter((c) => this.pending.has(c.id ?? 0));
    this.queueHead = 0;
  }

  /** Sends waiting calls, oldest first, while the stream has room. */
  private flush(): void {
    this.flushScheduled = false;
    const calls: WireCall[] = [];
    while (this.queueHead < this.queue.length && this.onWire < this.options.callsInFlightMax) {
      const c = this.queue[this.queueHead++];
      const p = this.pending.get(c.id ?? 0);
      if (p === undefined) continue; // its deadline passed while it waited
      p.sent = true;
      this.waitingCount -= 1;
      this.onWire += 1;
      calls.push(c);
    }
    if (
      this.queueHead === this.queue.length ||
      (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length)
    )
      this.compactQueue();
    if (calls.length === 0) return;
    const stream = this.open();
    // grpc-js buffers what the transport cannot take yet; the in-flight bound caps that buffer.
    for (const batch of sizedBatches(calls, payloadBytes, this.options.messageBytesMax))
      stream.write({ calls: batch });
  }

  private open(): grpc.ClientDuplexStream<WireCallBatch, WireCallResultBatch> {
    if (this.stream !== undefined) return this.stream;
    const method = (
      this.client as unknown as Record<
        string,
        () => grpc.ClientDuplexStream<WireCallBatch, WireCallResultBatch>
      >
    ).Calls;
    const stream = method.call(this.client);
    this.stream = stream;
    stream.on('data', (batch: WireCallResultBatch) => {
      if (this.stream !== stream) return;
      for (const r of batch.results ?? []) {
        // Only sent calls get results, those past their deadline too.
        this.onWire = Math.max(0, this.onWire - 1);
        const p = this.pending.get(r.id ?? 0);
        if (p === undefined) continue; // its deadline passed
        this.pending.delete(r.id ?? 0);
        clearTimeout(p.timer);
        if (r.error !== undefined) p.reject(statusOfCallError(r.error));
        else p.resolve(r.ok ?? {});
      }
      if (this.queueHead < this.queue.length) this.scheduleFlush();
    });
    const broken = (err?: Partial<grpc.ServiceError>): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (err?.code === grpc.status.UNIMPLEMENTED) this.unimplemented = true;
      this.failSent(err?.details || err?.message || 'the call stream ended');
    };
    stream.on('error', (err: grpc.ServiceError) => broken(err));
    stream.on('end', () => broken());
    stream.on('close', () => broken());
    return stream;
  }

  /**
   * The stream ended: its calls in flight reject as cut. Calls still waiting were never sent:
   * they go on a new stream (a master without `Calls` rejects them as UNIMPLEMENTED, which
   * the caller retries as unary calls).
   */
  private failSent(why: string): void {
    this.onWire = 0;
    const code = this.unimplemented ? grpc.status.UNIMPLEMENTED : grpc.status.UNAVAILABLE;
    for (const [id, p] of this.pending) {
      if (!p.sent && !this.unimplemented) continue;
      this.pending.delete(id);
      if (!p.sent) this.waitingCount -= 1;
      clearTimeout(p.timer);
      p.reject(transportStatus(code, why));
    }
    if (this.unimplemented) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead < this.queue.length) this.scheduleFlush();
  }

  /** Every call without a result rejects as cut (the client closed). */
  private failAll(why: string): void {
    this.onWire = 0;
    this.waitingCount = 0;
    this.queue = [];
    this.queueHead = 0;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(transportStatus(grpc.status.UNAVAILABLE, why));
    }
  }
}

/**
 * Remote actors: envelopes between a node agent and a master over one bidi stream
 * (`proto/agent.proto`), independent of the transport.
 *
 * A `RemoteSession` is one side's view of the conversation. It sends tells, asks (one reply)
 * and streams (many frames, then an end), matches replies by request id, and dispatches
 * incoming requests to a handler. Ids are unique per session and never reused.
 *
 * Redelivery: the agent's session outlives its connections. When a connection drops, its
 * unanswered asks stay pending (until their own deadline) and are sent again, with the same
 * ids, on the next connection — possibly to another master. The receiving side remembers the
 * final replies it gave per (peer session, id) in a bounded cache and answers a redelivered
 * request from it instead of running the handler twice; a request redelivered to a master that
 * never saw it runs there, so handlers must be idempotent (level-based: "pod X should run spec
 * S", not "start another container"). Streams are not redelivered: they end with Unavailable.
 */

import { pack, unpack } from 'msgpackr';
import { ApiError, ApiErrorCode } from './api.js';

export interface Envelope {
  id: number;
  replyTo: number;
  to: string;
  type: string;
  payload: Uint8Array;
  end: boolean;
  errorCode: string;
  errorMessage: string;
  /** A tell: nobody waits for an answer. */
  oneway: boolean;
}

export const remotingLimits = {
  /** Asks and streams awaiting their answer, per session. */
  pendingRequestsMax: 10_000,
  /** Frames of one incoming stream queued for a slow consumer before the stream is failed. */
  streamQueueFramesMax: 1_024,
  /** Final replies remembered per session for redelivered requests. */
  replyCacheEntriesMax: 10_000,
  /** Envelopes queued while no connection is attached, before the oldest tells are dropped. */
  outboxEnvelopesMax: 10_000,
} as const;

/** How the handler answers one incoming request. */
export interface Responder {
  /** The single answer of an ask (also ends a stream). */
  reply(body: unknown): void;
  /** One frame of a stream. */
  frame(body: unknown): void;
  /** Ends a stream (without a final frame). */
  end(): void;
  fail(err: unknown): void;
  /** The requester went away (cancelled, disconnected): stop producing. */
  readonly cancelled: boolean;
  onCancel(cb: () => void): void;
}

export interface IncomingRequest {
  to: string;
  type: string;
  body: unknown;
  /** False for a tell: nobody waits for an answer. */
  expectsReply: boolean;
  respond: Responder;
}

export type RemoteHandler = (req: IncomingRequest) => void;

interface PendingAsk {
  env: Envelope;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

interface PendingStream {
  push: (body: unknown) => void;
  finish: (err?: unknown) => void;
}

const CANCEL_TYPE = '$cancel';

function errorOf(env: Envelope): ApiError {
  const code = (Object.values(ApiErrorCode) as string[]).includes(env.errorCode)
    ? (env.errorCode as ApiErrorCode)
    : ApiErrorCode.Internal;
  return new ApiError(code, env.errorMessage || 'remote error');
}

function encode(body: unknown): Uint8Array {
  return body === undefined ? new Uint8Array(0) : new Uint8Array(pack(body));
}

function decode(bytes: Uint8Array): unknown {
  return bytes.byteLength === 0 ? undefined : unpack(bytes);
}

/** An incoming stream as an async iterable of frame bodies; `cancel` tells the other side. */
export interface RemoteStream<T> extends AsyncIterable<T> {
  cancel(): void;
}

export class RemoteSession {
  private nextId = 1;
  private send: ((env: Envelope) => boolean) | undefined;
  private readonly outbox: Envelope[] = [];
  private readonly asks = new Map<number, PendingAsk>();
  private readonly streams = new Map<number, PendingStream>();
  /** Requests being handled here, by id, with their cancel hooks. */
  private readonly serving = new Map<number, { cancelled: boolean; onCancel: (() => void)[] }>();
  /** Final replies given, by request id (oldest first), for redelivered requests. */
  private readonly replies = new Map<number, Envelope>();
  private closed = false;

  constructor(
    private readonly handler: RemoteHandler,
    /** Names this side in errors. */
    private readonly what: string,
  ) {}

  /** Attaches a connection: queued envelopes and unanswered asks go out on it. */
  attach(send: (env: Envelope) => boolean): void {
    this.send = send;
    const queued = this.outbox.splice(0);
    for (const env of queued) this.transmit(env);
    for (const ask of this.asks.values()) this.transmit(ask.env);
  }

  /**
   * The connection dropped: streams end with Unavailable, work served for the peer is
   * cancelled (it will redeliver what it still wants), asks wait for the next connection.
   */
  detach(): void {
    this.send = undefined;
    for (const [id, s] of this.streams) {
      this.streams.delete(id);
      s.finish(
        new ApiError(ApiErrorCode.Unavailable, `${this.what}: connection lost`, { retryAfterMs: 100 }),
      );
    }
    for (const id of [...this.serving.keys()]) this.cancelServing(id);
  }

  /** Ends the session for good: everything pending fails with `err`. */
  close(err: unknown = new ApiError(ApiErrorCode.Unavailable, `${this.what}: closed`)): void {
    if (this.closed) return;
    this.detach();
    this.closed = true;
    for (const [id, a] of this.asks) {
      this.asks.delete(id);
      clearTimeout(a.timer);
      a.reject(err);
    }
    this.outbox.length = 0;
  }

  get pendingCount(): number {
    return this.asks.size + this.streams.size;
  }

  tell(to: string, type: string, body: unknown): void {
    this.transmit({ ...this.envelope(to, type, body), oneway: true });
  }

  ask<R>(to: string, type: string, body: unknown, timeoutMs: number): Promise<R> {
    if (this.closed) return Promise.reject(new ApiError(ApiErrorCode.Unavailable, `${this.what}: closed`));
    if (this.pendingCount >= remotingLimits.pendingRequestsMax) {
      return Promise.reject(
        new ApiError(
          ApiErrorCode.ResourceExhausted,
          `${this.what}: ${remotingLimits.pendingRequestsMax} requests pending (pendingRequestsMax)`,
        ),
      );
    }
    const env = this.envelope(to, type, body);
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asks.delete(env.id);
        reject(
          new ApiError(ApiErrorCode.Timeout, `${this.what}: ${type} to ${to}: no answer in ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.asks.set(env.id, { env, resolve: resolve as (v: unknown) => void, reject, timer });
      this.transmit(env);
    });
  }

  /** Opens a stream: frames arrive in order; the iterator ends at the other side's end or fails with its error. */
  stream<T>(to: string, type: string, body: unknown): RemoteStream<T> {
    const env = this.envelope(to, type, body);
    const queue: T[] = [];
    let done = false;
    let error: unknown;
    let wake: (() => void) | undefined;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      error = err;
      this.streams.delete(env.id);
      wake?.();
    };
    if (this.closed) finish(new ApiError(ApiErrorCode.Unavailable, `${this.what}: closed`));
    else {
      this.streams.set(env.id, {
        push: (b) => {
          if (queue.length >= remotingLimits.streamQueueFramesMax) {
            this.tell(to, CANCEL_TYPE, env.id);
            finish(
              new ApiError(
                ApiErrorCode.ResourceExhausted,
                `${this.what}: ${type}: consumer too slow (streamQueueFramesMax)`,
              ),
            );
            return;
          }
          queue.push(b as T);
          wake?.();
        },
        finish,
      });
      this.transmit(env);
    }
    const cancel = () => {
      if (done) return;
      this.tell(to, CANCEL_TYPE, env.id);
      finish();
    };
    return {
      cancel,
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<T>> => {
          for (;;) {
            const v = queue.shift();
            if (v !== undefined) return { value: v, done: false };
            if (done) {
              if (error !== undefined) throw error;
              return { value: undefined, done: true };
            }
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = undefined;
          }
        },
        return: async (): Promise<IteratorResult<T>> => {
          cancel();
          return { value: undefined, done: true };
        },
      }),
    };
  }

  /** Feeds one envelope from the connection. */
  receive(env: Envelope): void {
    if (this.closed) return;
    if (env.replyTo !== 0) {
      this.onReply(env);
      return;
    }
    if (env.type === CANCEL_TYPE) {
      this.cancelServing(Number(decode(env.payload)));
      return;
    }
    const cached = this.replies.get(env.id);
    if (cached !== undefined) {
      this.transmit(cached);
      return;
    }
    if (this.serving.has(env.id)) return; // a redelivery of work in progress: its answer will come
    this.serve(env);
  }

  private onReply(env: Envelope): void {
    const ask = this.asks.get(env.replyTo);
    if (ask !== undefined) {
      this.asks.delete(env.replyTo);
      clearTimeout(ask.timer);
      if (env.errorCode) ask.reject(errorOf(env));
      else ask.resolve(decode(env.payload));
      return;
    }
    const stream = this.streams.get(env.replyTo);
    if (stream === undefined) return; // late, or cancelled
    if (env.errorCode) {
      stream.finish(errorOf(env));
      return;
    }
    if (env.payload.byteLength > 0) stream.push(decode(env.payload));
    if (env.end) stream.finish();
  }

  private serve(req: Envelope): void {
    const state = { cancelled: false, onCancel: [] as (() => void)[] };
    const expectsReply = !req.oneway;
    this.serving.set(req.id, state);
    let finished = false;
    const answer = (payload: Uint8Array, end: boolean, errorCode = '', errorMessage = '') => {
      if (finished || state.cancelled) return;
      const env: Envelope = {
        id: this.nextId++,
        replyTo: req.id,
        to: '',
        type: '',
        payload,
        end,
        errorCode,
        errorMessage,
        oneway: false,
      };
      if (end) {
        finished = true;
        this.serving.delete(req.id);
        this.remember(req.id, env);
      }
      this.transmit(env);
    };
    const respond: Responder = {
      reply: (body) => answer(encode(body), true),
      frame: (body) => answer(encode(body), false),
      end: () => answer(new Uint8Array(0), true),
      fail: (err) => {
        const e =
          err instanceof ApiError
            ? err
            : new ApiError(ApiErrorCode.Internal, String(err instanceof Error ? err.message : err));
        answer(new Uint8Array(0), true, e.code, e.message);
      },
      get cancelled() {
        return state.cancelled;
      },
      onCancel: (cb) => {
        if (state.cancelled) cb();
        else state.onCancel.push(cb);
      },
    };
    let body: unknown;
    try {
      body = decode(req.payload);
    } catch (err) {
      respond.fail(
        new ApiError(ApiErrorCode.Invalid, `${this.what}: ${req.type}: undecodable payload (${String(err)})`),
      );
      return;
    }
    try {
      this.handler({ to: req.to, type: req.type, body, expectsReply, respond });
    } catch (err) {
      respond.fail(err);
    }
    if (!expectsReply) this.serving.delete(req.id);
  }

  private cancelServing(id: number): void {
    const s = this.serving.get(id);
    if (s === undefined) return;
    this.serving.delete(id);
    s.cancelled = true;
    for (const cb of s.onCancel) cb();
  }

  private remember(id: number, reply: Envelope): void {
    this.replies.set(id, reply);
    if (this.replies.size > remotingLimits.replyCacheEntriesMax) {
      const oldest = this.replies.keys().next().value;
      if (oldest !== undefined) this.replies.delete(oldest);
    }
  }

  private envelope(to: string, type: string, body: unknown): Envelope {
    return {
      id: this.nextId++,
      replyTo: 0,
      to,
      type,
      payload: encode(body),
      end: false,
      errorCode: '',
      errorMessage: '',
      oneway: false,
    };
  }

  private transmit(env: Envelope): void {
    if (this.closed) return;
    if (this.send?.(env)) return;
    // No connection (or it refused): keep it for the next one; asks are resent from `asks` anyway.
    if (env.replyTo === 0 && this.asks.has(env.id)) return;
    this.outbox.push(env);
    if (this.outbox.length > remotingLimits.outboxEnvelopesMax) this.outbox.shift();
  }
}

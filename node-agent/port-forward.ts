/**
 * One port-forward connection served by the agent (`portForward` of actors/pod-streams.ts): a
 * TCP connection to the pod's port, its bytes relayed as frames under the master's credit, and
 * the client's bytes written to it with acks.
 *
 * Bounds: at most `readBufferBytesMax` bytes read from the pod wait for credit (reading pauses
 * beyond), and the client keeps under `portForwardBufferBytesMax` unacked bytes, so the socket's
 * write buffer stays under it too; a client that overruns it ends the stream (ResourceExhausted).
 */

import { connect, type Socket } from 'node:net';
import { ApiError, ApiErrorCode } from '../actors/api.js';
import { portForwardBufferBytesMax, portForwardChunkBytesMax } from '../actors/pod-streams.js';
import type { Responder } from '../actors/remoting.js';
import type { ContainerRuntime } from './runtime.js';

export const portForwardLimits = {
  /** Bytes read from the pod and not yet sent (waiting for credit) before reading pauses. */
  readBufferBytesMax: 256 * 1024,
  /**
   * Bytes written to the pod and not yet flushed before the client counts as misbehaving: a
   * client stops reading its socket at portForwardBufferBytesMax unacked, after at most one
   * more read (64 KiB), so twice that is a client that ignores acks.
   */
  writeBufferBytesMax: 2 * portForwardBufferBytesMax,
  /** Longest wait for the pod to accept the connection. */
  connectTimeoutMs: 10_000,
} as const;

type Outgoing = { data: Uint8Array } | { eof: true };

/**
 * Where the agent connects for a pod's port, by runtime: docker pods have their own network
 * namespace at the pod IP; process pods share the node's network; hollow pods run nothing.
 */
export function portForwardHost(
  runtime: ContainerRuntime['kind'],
  pod: { what: string; podIP?: string | undefined; node: string; nodeIp?: string | undefined },
): string {
  switch (runtime) {
    case 'docker':
      if (pod.podIP === undefined || pod.podIP === '')
        throw new ApiError(ApiErrorCode.Unavailable, `${pod.what}: has no IP yet`, { retryAfterMs: 500 });
      return pod.podIP;
    case 'process':
      return pod.nodeIp ?? '127.0.0.1';
    case 'hollow':
      throw new ApiError(
        ApiErrorCode.Invalid,
        `${pod.what}: port-forward is not possible on node ${pod.node}: the hollow runtime runs no processes`,
      );
    default: {
      const never: never = runtime;
      throw new Error(`unknown runtime kind ${String(never)}`);
    }
  }
}

/** Opens a TCP connection; rejects with a NotFound ApiError in Go's dial wording on failure. */
export function dialPod(host: string, port: number, what: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ApiError(ApiErrorCode.Timeout, `${what}: dial tcp ${host}:${port}: i/o timeout`));
    }, portForwardLimits.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason = err.code === 'ECONNREFUSED' ? 'connection refused' : err.message;
      reject(new ApiError(ApiErrorCode.NotFound, `${what}: dial tcp ${host}:${port}: connect: ${reason}`));
    });
  });
}

/** Relays one connected socket over `respond` until both sides are closed or the stream is cancelled. */
export class PortForwardRelay {
  private credit: number;
  private readonly queue: Outgoing[] = [];
  private queuedBytes = 0;
  private ackPending = 0;
  private podClosed = false;
  private started = false;
  private finished = false;
  /** Resolves when the relay is over (ended, failed or cancelled). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly respond: Responder,
    window: number,
  ) {
    this.credit = window - 1; // the `connected` frame below
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
    socket.on('data', (chunk: Buffer) => this.onPodData(chunk));
    socket.on('end', () => this.push({ eof: true }, 0));
    socket.on('error', (err) =>
      this.fail(new ApiError(ApiErrorCode.Unavailable, `pod connection: ${err.message}`)),
    );
    socket.on('close', () => {
      this.podClosed = true;
      this.pump();
    });
    respond.onCancel(() => this.finish());
  }

  /** Tells the client it may send (call once the relay receives the stream's control tells). */
  start(): void {
    if (this.finished || this.started) return;
    this.started = true;
    this.respond.frame({ connected: true });
    this.pump();
  }

  /** The master granted `frames` more frames. */
  grant(frames: number): void {
    this.credit += frames;
    this.pump();
  }

  /** Bytes from the client for the pod; acked once flushed to the socket. */
  write(data: Uint8Array): void {
    if (this.finished || this.socket.writableEnded) return;
    if (this.socket.writableLength + data.byteLength > portForwardLimits.writeBufferBytesMax) {
      this.fail(
        new ApiError(
          ApiErrorCode.ResourceExhausted,
          `port-forward: client sent more than portForwardBufferBytesMax (${portForwardBufferBytesMax}) bytes unacked`,
        ),
      );
      return;
    }
    this.socket.write(data, (err) => {
      if (err) return; // 'error' ends the relay
      this.ackPending += data.byteLength;
      this.pump();
    });
  }

  /** The client half-closed: no more bytes for the pod. */
  end(): void {
    if (!this.finished && !this.socket.writableEnded) this.socket.end();
  }

  private onPodData(chunk: Buffer): void {
    for (let at = 0; at < chunk.byteLength; at += portForwardChunkBytesMax) {
      const part = chunk.subarray(at, at + portForwardChunkBytesMax);
      this.push({ data: new Uint8Array(part) }, part.byteLength);
    }
    if (this.queuedBytes >= portForwardLimits.readBufferBytesMax) this.socket.pause();
  }

  private push(o: Outgoing, bytes: number): void {
    if (this.finished) return;
    this.queue.push(o);
    this.queuedBytes += bytes;
    this.pump();
  }

  /** Sends acks and queued frames while credit lasts; ends the stream once the pod side is drained. */
  private pump(): void {
    if (this.finished || !this.started) return;
    while (this.credit > 0 && (this.ackPending > 0 || this.queue.length > 0)) {
      this.credit -= 1;
      if (this.ackPending > 0) {
        this.respond.frame({ ack: this.ackPending });
        this.ackPending = 0;
        continue;
      }
      const o = this.queue.shift() as Outgoing;
      if ('data' in o) this.queuedBytes -= o.data.byteLength;
      this.respond.frame(o);
    }
    if (this.queuedBytes < portForwardLimits.readBufferBytesMax && this.socket.isPaused())
      this.socket.resume();
    if (this.podClosed && this.queue.length === 0) {
      this.respond.end();
      this.finish();
    }
  }

  /** The agent stops: ends the relay (the master sees the stream end with an error). */
  close(): void {
    this.fail(new ApiError(ApiErrorCode.Unavailable, 'port-forward: the node agent stopped'));
  }

  private fail(err: ApiError): void {
    if (this.finished) return;
    this.respond.fail(err);
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.socket.destroy();
    this.resolveDone();
  }
}

/**
 * How masters talk to each other outside Raft: a follower forwards writes and cluster
 * operations to the leader, and `cluster status` asks every member for its view. One port,
 * two adapters: gRPC on the Raft transport's port (msgpack payloads), and in-process for
 * in-memory clusters.
 */

import * as grpc from '@grpc/grpc-js';
import { pack, unpack } from 'msgpackr';
import {
  type AddMemberRequest,
  ApiError,
  ApiErrorCode,
  type ControllersStatus,
  type MemberStatus,
} from './api.js';

/** A request a master handles for another one. */
export type PeerRequest =
  /**
   * `localOutcome`: the requester reads the outcome from its own apply of the entry (the apply
   * is deterministic), so the answer carries only the index: the leader no longer encodes every
   * forwarded write's object back to the follower that has to apply it anyway.
   */
  | { t: 'propose'; data: Uint8Array; id: string; localOutcome?: boolean }
  | { t: 'addMember'; req: AddMemberRequest }
  | { t: 'removeMember'; id: string }
  | { t: 'transfer'; to?: string }
  /** The leader's controllers and their counters (read-only). */
  | { t: 'controllers' };

export type PeerResponse =
  /** `outcome` is absent when the request asked for `localOutcome`. */
  | { t: 'proposed'; index: number; outcome?: unknown }
  | { t: 'done' }
  | { t: 'controllers'; status: ControllersStatus }
  | {
      t: 'error';
      code: string;
      message: string;
      notLeader?: boolean;
      leaderHint?: string;
      retryAfterMs?: number;
      /** The field an Invalid or Forbidden answer is about. */
      fieldPath?: string;
    };

/** What one master says about itself. */
export type PeerInfo = Omit<MemberStatus, 'raftAddress' | 'match'> & { leader?: string };

export interface PeerHandler {
  handle(req: PeerRequest): Promise<PeerResponse>;
  info(): PeerInfo;
}

/** The port. `to` is a member id; its address comes from `setAddress`. */
export interface PeerLink {
  setAddress(id: string, address: string): void;
  request(to: string, req: PeerRequest, timeoutMs: number): Promise<PeerResponse>;
  info(to: string, timeoutMs: number): Promise<PeerInfo>;
  close(): void;
}

// ------------------------------------------------------------------ in-process adapter

/** Masters of one process, by id (in-memory clusters in tests and the simulator). */
export class MemoryPeerNetwork {
  readonly handlers = new Map<string, PeerHandler>();
  /** Ids whose requests fail as if the network were down. */
  readonly down = new Set<string>();
  link(): PeerLink {
    return {
      setAddress: () => {},
      request: async (to, req) => {
        const h = this.handlers.get(to);
        if (!h || this.down.has(to)) throw unreachable(to);
        return h.handle(req);
      },
      info: async (to) => {
        const h = this.handlers.get(to);
        if (!h || this.down.has(to)) throw unreachable(to);
        return h.info();
      },
      close: () => {},
    };
  }
}

function unreachable(to: string): ApiError {
  return new ApiError(ApiErrorCode.Unavailable, `master ${to} is unreachable`, { retryAfterMs: 200 });
}

// ------------------------------------------------------------------ gRPC adapter

const serialize = (v: unknown): Buffer => pack(v);
const deserialize = (b: Buffer): unknown => unpack(b);

/** The internal service, served next to the Raft transport (msgpack, not protobuf: masters only). */
export const peerServiceDefinition: grpc.ServiceDefinition = {
  Request: {
    path: '/coxswain.internal.Peer/Request',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
  /**
   * Requests multiplexed over one stream per pair of masters (a follower forwards every write
   * of its clients: a unary call each cost more CPU than the write's own apply). Client frames
   * are `[id, PeerRequest][]`, server frames `[id, PeerResponse][]`, answered in any order.
   */
  Stream: {
    path: '/coxswain.internal.Peer/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
  Info: {
    path: '/coxswain.internal.Peer/Info',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  },
};

export function peerServiceImplementation(
  handler: () => PeerHandler | undefined,
): grpc.UntypedServiceImplementation {
  return {
    Request: (
      call: grpc.ServerUnaryCall<PeerRequest, PeerResponse>,
      cb: grpc.sendUnaryData<PeerResponse>,
    ) => {
      const h = handler();
      if (!h) return cb({ code: grpc.status.UNAVAILABLE, details: 'master starting' });
      h.handle(call.request).then(
        (r) => cb(null, r),
        (err: unknown) => cb(null, { t: 'error', code: ApiErrorCode.Internal, message: String(err) }),
      );
    },
    Stream: (call: grpc.ServerDuplexStream<[number, PeerRequest][], [number, PeerResponse][]>) => {
      let out: [number, PeerResponse][] = [];
      let ended = false;
      const answer = (id: number, res: PeerResponse): void => {
        if (ended) return;
        if (out.length === 0)
          setImmediate(() => {
            const frame = out;
            out = [];
            if (!ended) call.write(frame);
          });
        out.push([id, res]);
      };
      call.on('data', (frame: [number, PeerRequest][]) => {
        if (!Array.isArray(frame)) return;
        for (const item of frame) {
          if (!Array.isArray(item) || typeof item[0] !== 'number') continue;
          const [id, req] = item;
          const h = handler();
          if (!h) {
            answer(id, {
              t: 'error',
              code: ApiErrorCode.Unavailable,
              message: 'master starting',
              retryAfterMs: 200,
            });
            continue;
          }
          h.handle(req).then(
            (r) => answer(id, r),
            (err: unknown) => answer(id, { t: 'error', code: ApiErrorCode.Internal, message: String(err) }),
          );
        }
      });
      const stop = (): void => {
        ended = true;
      };
      call.on('end', () => {
        // The requester went away: answers still due have no reader.
        stop();
        call.end();
      });
      call.on('cancelled', stop);
      call.on('error', stop);
    },
    Info: (_call: grpc.ServerUnaryCall<unknown, PeerInfo>, cb: grpc.sendUnaryData<PeerInfo>) => {
      const h = handler();
      if (!h) return cb({ code: grpc.status.UNAVAILABLE, details: 'master starting' });
      cb(null, h.info());
    },
  };
}

const PeerClient = grpc.makeGenericClientConstructor(peerServiceDefinition, 'Peer');

/** One peer's request stream: requests in flight by id, the frame being gathered. */
interface PeerStream {
  call: grpc.ClientDuplexStream<[number, PeerRequest][], [number, PeerResponse][]>;
  pending: Map<
    number,
    { resolve: (r: PeerResponse) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }
  >;
  frame: [number, PeerRequest][];
  /** About the encoded size of `frame`. */
  frameBytes: number;
}

/** Requests are sent in frames of about this many bytes. */
const peerFrameBytesTarget = 1024 * 1024;

export interface GrpcPeerLinkOptions {
  /** Requests in flight to one master; beyond it a request fails at once (Unavailable, retry hint). Default 4,096. */
  requestsInFlightMax?: number;
}

export class GrpcPeerLink implements PeerLink {
  private readonly addresses = new Map<string, string>();
  private readonly clients = new Map<string, { address: string; client: grpc.Client }>();
  private readonly streams = new Map<string, PeerStream>();
  private nextId = 1;
  private readonly requestsInFlightMax: number;

  constructor(options: GrpcPeerLinkOptions = {}) {
    this.requestsInFlightMax = options.requestsInFlightMax ?? 4096;
  }

  setAddress(id: string, address: string): void {
    this.addresses.set(id, address);
  }

  /**
   * On the peer's request stream. A stream that breaks fails its requests in flight with
   * Unavailable (as a cut unary call: the forwarder's caller treats the outcome as unknown
   * unless the request was never sent); the next request opens a new stream.
   */
  request(to: string, req: PeerRequest, timeoutMs: number): Promise<PeerResponse> {
    const address = this.addresses.get(to);
    if (address === undefined) return Promise.reject(unreachable(to));
    const s = this.stream(to, address);
    if (s.pending.size >= this.requestsInFlightMax) {
      return Promise.reject(
        new ApiError(
          ApiErrorCode.Unavailable,
          `master ${to}: ${this.requestsInFlightMax} requests in flight`,
          {
            retryAfterMs: 100,
          },
        ),
      );
    }
    const id = this.nextId;
    this.nextId = this.nextId >= Number.MAX_SAFE_INTEGER ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          if (s.pending.delete(id))
            reject(
              new ApiError(ApiErrorCode.Unavailable, `master ${to} (${address}): Deadline exceeded`, {
                retryAfterMs: 200,
              }),
            );
        },
        Math.min(timeoutMs, 2 ** 31 - 1),
      );
      s.pending.set(id, { resolve, reject, timer });
      if (s.frame.length === 0)
        setImmediate(() => {
          const frame = s.frame;
          s.frame = [];
          s.frameBytes = 0;
          if (frame.length > 0 && this.streams.get(to) === s) s.call.write(frame);
        });
      s.frame.push([id, req]);
      // A frame is decoded in one turn on the leader: a backlog (thousands of writes queued
      // during an election) sent as one took it 1.5 s. Full frames go at once.
      s.frameBytes += req.t === 'propose' ? req.data.byteLength + 64 : 256;
      if (s.frameBytes >= peerFrameBytesTarget) {
        const frame = s.frame;
        s.frame = [];
        s.frameBytes = 0;
        s.call.write(frame);
      }
    });
  }

  private stream(to: string, address: string): PeerStream {
    const existing = this.streams.get(to);
    if (existing !== undefined && this.clients.get(to)?.address === address) return existing;
    const client = this.client(to, address) as unknown as Record<
      string,
      () => grpc.ClientDuplexStream<[number, PeerRequest][], [number, PeerResponse][]>
    >;
    const call = client.Stream.call(client);
    const s: PeerStream = { call, pending: new Map(), frame: [], frameBytes: 0 };
    this.streams.set(to, s);
    call.on('data', (frame: [number, PeerResponse][]) => {
      for (const [id, res] of frame) {
        const p = s.pending.get(id);
        if (p === undefined) continue;
        s.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(res);
      }
    });
    const broken = (err?: grpc.ServiceError): void => {
      if (this.streams.get(to) === s) this.streams.delete(to);
      const all = [...s.pending.values()];
      s.pending.clear();
      for (const p of all) {
        clearTimeout(p.timer);
        p.reject(
          new ApiError(
            ApiErrorCode.Unavailable,
            `master ${to} (${address}): ${err?.details || err?.message || 'the request stream ended'}`,
            { retryAfterMs: 200, cause: err },
          ),
        );
      }
    };
    call.on('error', broken);
    call.on('end', () => broken());
    call.on('close', () => broken());
    return s;
  }

  info(to: string, timeoutMs: number): Promise<PeerInfo> {
    return this.call<PeerInfo>(to, 'Info', {}, timeoutMs);
  }

  close(): void {
    for (const s of this.streams.values()) s.call.cancel();
    this.streams.clear();
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(to: string, address: string): grpc.Client {
    let entry = this.clients.get(to);
    if (!entry || entry.address !== address) {
      entry?.client.close();
      const old = this.streams.get(to);
      if (old !== undefined) {
        this.streams.delete(to);
        old.call.cancel();
      }
      entry = { address, client: new PeerClient(address, grpc.credentials.createInsecure()) };
      this.clients.set(to, entry);
    }
    return entry.client;
  }

  private call<R>(to: string, method: 'Request' | 'Info', req: unknown, timeoutMs: number): Promise<R> {
    const address = this.addresses.get(to);
    if (address === undefined) return Promise.reject(unreachable(to));
    const client = this.client(to, address) as unknown as Record<
      string,
      (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r: R) => void) => void
    >;
    return new Promise((resolve, reject) => {
      client[method](req, { deadline: Date.now() + timeoutMs }, (err, r) => {
        if (err)
          reject(
            new ApiError(
              ApiErrorCode.Unavailable,
              `master ${to} (${address}): ${err.details || err.message}`,
              { retryAfterMs: 200, cause: err },
            ),
          );
        else resolve(r);
      });
    });
  }
}

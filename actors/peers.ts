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
    Info: (_call: grpc.ServerUnaryCall<unknown, PeerInfo>, cb: grpc.sendUnaryData<PeerInfo>) => {
      const h = handler();
      if (!h) return cb({ code: grpc.status.UNAVAILABLE, details: 'master starting' });
      cb(null, h.info());
    },
  };
}

const PeerClient = grpc.makeGenericClientConstructor(peerServiceDefinition, 'Peer');

export class GrpcPeerLink implements PeerLink {
  private readonly addresses = new Map<string, string>();
  private readonly clients = new Map<string, { address: string; client: grpc.Client }>();

  setAddress(id: string, address: string): void {
    this.addresses.set(id, address);
  }

  request(to: string, req: PeerRequest, timeoutMs: number): Promise<PeerResponse> {
    return this.call<PeerResponse>(to, 'Request', req, timeoutMs);
  }

  info(to: string, timeoutMs: number): Promise<PeerInfo> {
    return this.call<PeerInfo>(to, 'Info', {}, timeoutMs);
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private call<R>(to: string, method: 'Request' | 'Info', req: unknown, timeoutMs: number): Promise<R> {
    const address = this.addresses.get(to);
    if (address === undefined) return Promise.reject(unreachable(to));
    let entry = this.clients.get(to);
    if (!entry || entry.address !== address) {
      entry?.client.close();
      entry = { address, client: new PeerClient(address, grpc.credentials.createInsecure()) };
      this.clients.set(to, entry);
    }
    const client = entry.client as unknown as Record<
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

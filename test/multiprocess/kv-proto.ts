/**
 * Loads `proto/raft_kv.proto` (the test/bench key-value service of kv-node.ts) and gives its
 * messages TypeScript shapes. Loader options: camelCase field names, uint64 as `number`,
 * bytes as `Buffer`, defaults filled in.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const kvProtoPath = fileURLToPath(new URL('../../proto/raft_kv.proto', import.meta.url));

export interface PutRequest {
  key: string;
  value: Uint8Array;
}
export interface PutResponse {
  index: number;
  term: number;
}
export interface PutStreamRequest {
  id: number;
  key: string;
  value: Uint8Array;
}
export interface PutStreamResponse {
  id: number;
  /** A grpc status code; 0 is OK. */
  code: number;
  index: number;
  term: number;
  message: string;
  leaderId: string;
}
export interface GetRequest {
  key: string;
  linearizable: boolean;
}
export interface GetResponse {
  found: boolean;
  value: Uint8Array;
  modIndex: number;
  applied: number;
}
export interface DumpRequest {
  fromIndex: number;
  limit: number;
}
export interface AppliedWrite {
  index: number;
  key: string;
}
export interface DumpResponse {
  writes: AppliedWrite[];
  applied: number;
  more: boolean;
  recording: boolean;
}
export interface HostStatsMessage {
  readies: number;
  fsyncs: number;
  entriesPersisted: number;
  entriesPerFsync: number;
  applied: number;
  proposalsPending: number;
}
export interface StatusResponse {
  id: string;
  role: string;
  leader: string;
  term: number;
  commit: number;
  applied: number;
  lastIndex: number;
  stats: HostStatsMessage;
  pid: number;
}

type Unary<Req, Res> = (
  req: Req,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

/** The client stub of the RaftKv service (callback style, as grpc-js generates it). */
export interface RaftKvClient extends grpc.Client {
  put: Unary<PutRequest, PutResponse>;
  putStream: (options?: grpc.CallOptions) => grpc.ClientDuplexStream<PutStreamRequest, PutStreamResponse>;
  get: Unary<GetRequest, GetResponse>;
  dump: Unary<DumpRequest, DumpResponse>;
  status: Unary<Record<string, never>, StatusResponse>;
}

/** Server-side handlers of the RaftKv service. */
export interface RaftKvHandlers extends grpc.UntypedServiceImplementation {
  put: grpc.handleUnaryCall<PutRequest, PutResponse>;
  putStream: grpc.handleBidiStreamingCall<PutStreamRequest, PutStreamResponse>;
  get: grpc.handleUnaryCall<GetRequest, GetResponse>;
  dump: grpc.handleUnaryCall<DumpRequest, DumpResponse>;
  status: grpc.handleUnaryCall<Record<string, never>, StatusResponse>;
}

/** Trailing-metadata key of a follower's FAILED_PRECONDITION answer: the leader's Raft id. */
export const leaderIdMetadataKey = 'leader-id';

interface LoadedService {
  service: grpc.ServiceDefinition;
  client: new (
    address: string,
    creds: grpc.ChannelCredentials,
    options?: grpc.ChannelOptions,
  ) => RaftKvClient;
}

let loaded: LoadedService | undefined;

/** The service definition and client constructor, loaded once per process. */
export function raftKvService(): LoadedService {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(kvProtoPath, {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [path.dirname(kvProtoPath)],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    coxswain: { raftkv: { v1: { RaftKv: grpc.ServiceClientConstructor } } };
  };
  const ctor = pkg.coxswain.raftkv.v1.RaftKv;
  loaded = { service: ctor.service, client: ctor as unknown as LoadedService['client'] };
  return loaded;
}

/** A client stub for one node's client address (`127.0.0.1:port`), on its own channel. */
export function newRaftKvClient(address: string, options: grpc.ChannelOptions = {}): RaftKvClient {
  const { client } = raftKvService();
  return new client(address, grpc.credentials.createInsecure(), options);
}

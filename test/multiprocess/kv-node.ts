/**
 * One replica of a tiny replicated key-value store, as its own OS process: a RaftHost over
 * FileStorage (fsync'd WAL) and GrpcTransport, plus the client-facing RaftKv gRPC service
 * (proto/raft_kv.proto). Used by the multi-process tests and by `npm run bench:raft`.
 *
 *   npx tsx test/multiprocess/kv-node.ts --id n1 --data-dir D --raft 127.0.0.1:P1 \
 *     --client 127.0.0.1:C1 --peers n1=127.0.0.1:P1,n2=127.0.0.1:P2,n3=127.0.0.1:P3
 *
 * Options: `--tick-ms`, `--election-ticks`, `--heartbeat-ticks`, `--snapshot-every-entries`,
 * `--compaction-margin-entries` (host defaults when unset),
 * `--record false` (keep only the key → value map, not the applied sequence: benchmarks),
 * `--exit-on-stdin-end` (exit when the parent closes our stdin, so a crashed test leaves no
 * orphan behind).
 *
 * Once both servers listen it prints one JSON line `{"ready":true,...}` on stdout; logs go to
 * stderr. SIGTERM/SIGINT stop it cleanly (exit code 0).
 *
 * Writes on a follower are not forwarded: Put answers FAILED_PRECONDITION with the leader's
 * Raft id in the trailing metadata `leader-id`, or UNAVAILABLE when no leader is known; the
 * client (cluster.ts `KvClient`) follows the hint. This keeps every acknowledged write's
 * path explicit in the test.
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { pack, unpack } from 'msgpackr';
import {
  type Entry,
  FileStorage,
  GrpcTransport,
  NotLeaderError,
  ProposalDroppedError,
  RaftHost,
  type StateMachine,
} from '../../raft/index.js';
import {
  type AppliedWrite,
  type DumpResponse,
  leaderIdMetadataKey,
  type PutStreamRequest,
  type PutStreamResponse,
  type RaftKvHandlers,
  raftKvService,
  type StatusResponse,
} from './kv-proto.js';

/** Most writes one Dump page returns. */
const dumpPageWritesMax = 10_000;
/** Puts one PutStream may have awaiting their commit; beyond it they are refused (RESOURCE_EXHAUSTED). */
const putStreamInFlightMax = 4_096;
/** How long SIGTERM waits for in-flight client calls before it cuts them. */
const shutdownGraceMs = 2_000;

interface StoredValue {
  value: Uint8Array;
  index: number;
}

/** The state machine's snapshot encoding (msgpack). */
interface KvSnapshot {
  keys: string[];
  values: Uint8Array[];
  modIndexes: number[];
  seqIndexes: number[];
  seqKeys: string[];
}

/** Encodes one write as the data of a Raft entry. */
function encodeWrite(key: string, value: Uint8Array): Uint8Array {
  return pack([key, value]);
}

function decodeWrite(data: Uint8Array): { key: string; value: Uint8Array } {
  const [key, value] = unpack(data) as [string, Uint8Array];
  return { key, value };
}

/**
 * key → value plus, when `recording`, the applied sequence of (index, key) in log order. The
 * sequence survives snapshots (it is part of the snapshot), so a replica restored from one
 * still reports the whole history.
 */
class KvStateMachine implements StateMachine {
  private values = new Map<string, StoredValue>();
  private seqIndexes: number[] = [];
  private seqKeys: string[] = [];

  constructor(readonly recording: boolean) {}

  apply(entry: Entry): void {
    if (entry.data.byteLength > 0) {
      const { key, value } = decodeWrite(entry.data);
      this.values.set(key, { value, index: entry.index });
      if (this.recording) {
        this.seqIndexes.push(entry.index);
        this.seqKeys.push(key);
      }
    }
  }

  snapshot(): Uint8Array {
    const snap: KvSnapshot = {
      keys: [],
      values: [],
      modIndexes: [],
      seqIndexes: this.seqIndexes,
      seqKeys: this.seqKeys,
    };
    for (const [k, v] of this.values) {
      snap.keys.push(k);
      snap.values.push(v.value);
      snap.modIndexes.push(v.index);
    }
    return pack(snap);
  }

  restore(data: Uint8Array): void {
    this.values.clear();
    if (data.byteLength === 0) {
      this.seqIndexes = [];
      this.seqKeys = [];
      return;
    }
    const snap = unpack(data) as KvSnapshot;
    snap.keys.forEach((k, i) => {
      this.values.set(k, { value: snap.values[i], index: snap.modIndexes[i] });
    });
    this.seqIndexes = this.recording ? snap.seqIndexes : [];
    this.seqKeys = this.recording ? snap.seqKeys : [];
  }

  get(key: string): StoredValue | undefined {
    return this.values.get(key);
  }

  /** Recorded writes with index ≥ `fromIndex`, at most `limit` of them. */
  page(fromIndex: number, limit: number): { writes: AppliedWrite[]; more: boolean } {
    let lo = 0;
    let hi = this.seqIndexes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqIndexes[mid] < fromIndex) lo = mid + 1;
      else hi = mid;
    }
    const end = Math.min(this.seqIndexes.length, lo + limit);
    const writes: AppliedWrite[] = [];
    for (let i = lo; i < end; i++) writes.push({ index: this.seqIndexes[i], key: this.seqKeys[i] });
    return { writes, more: end < this.seqIndexes.length };
  }
}

interface NodeArgs {
  id: string;
  dataDir: string;
  raft: string;
  client: string;
  peers: Record<string, string>;
  tickMs: number | undefined;
  electionTicks: number | undefined;
  heartbeatTicks: number | undefined;
  snapshotEveryEntries: number | undefined;
  compactionMarginEntries: number | undefined;
  record: boolean;
  exitOnStdinEnd: boolean;
}

function parseNodeArgs(argv: string[]): NodeArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: 'string' },
      'data-dir': { type: 'string' },
      raft: { type: 'string' },
      client: { type: 'string' },
      peers: { type: 'string' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
      'heartbeat-ticks': { type: 'string' },
      'snapshot-every-entries': { type: 'string' },
      'compaction-margin-entries': { type: 'string' },
      record: { type: 'string', default: 'true' },
      'exit-on-stdin-end': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const need = (name: string, v: string | undefined): string => {
    if (!v) throw new Error(`kv-node: --${name} is required`);
    return v;
  };
  const peers: Record<string, string> = {};
  for (const part of need('peers', values.peers).split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`kv-node: bad --peers entry '${part}' (want id=host:port)`);
    peers[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const id = need('id', values.id);
  if (!(id in peers)) throw new Error(`kv-node: --peers must list this node (${id})`);
  /** Unset flags stay undefined: the host's defaults apply. */
  const int = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`kv-node: --${name} must be a positive integer`);
    return n;
  };
  return {
    id,
    dataDir: need('data-dir', values['data-dir']),
    raft: need('raft', values.raft),
    client: need('client', values.client),
    peers,
    tickMs: int('tick-ms', values['tick-ms']),
    electionTicks: int('election-ticks', values['election-ticks']),
    heartbeatTicks: int('heartbeat-ticks', values['heartbeat-ticks']),
    snapshotEveryEntries: int('snapshot-every-entries', values['snapshot-every-entries']),
    compactionMarginEntries: int('compaction-margin-entries', values['compaction-margin-entries']),
    record: values.record !== 'false',
    exitOnStdinEnd: values['exit-on-stdin-end'] === true,
  };
}

function log(id: string, msg: string): void {
  // process.stderr is synchronous for files and pipes on Linux: the last lines before a crash reach the log.
  process.stderr.write(`${new Date().toISOString()} ${id} ${msg}\n`);
}

interface Failure {
  code: grpc.status;
  message: string;
  leaderId?: string;
}

/** Maps a propose/readIndex failure to the gRPC status the client acts on. */
function failureOf(err: unknown): Failure {
  if (err instanceof NotLeaderError) {
    return err.leaderHint
      ? { code: grpc.status.FAILED_PRECONDITION, message: err.message, leaderId: err.leaderHint }
      : { code: grpc.status.UNAVAILABLE, message: err.message };
  }
  if (err instanceof ProposalDroppedError) return { code: grpc.status.UNAVAILABLE, message: err.message };
  // Anything else (too many pending, leadership lost with the proposal pending, host
  // stopping) may be retried; for some of them the write's fate is unknown.
  return { code: grpc.status.UNAVAILABLE, message: err instanceof Error ? err.message : String(err) };
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const f = failureOf(err);
  const metadata = new grpc.Metadata();
  if (f.leaderId) metadata.set(leaderIdMetadataKey, f.leaderId);
  return { code: f.code, details: f.message, metadata };
}

function handlers(host: RaftHost, sm: KvStateMachine, id: string): RaftKvHandlers {
  return {
    put(call, cb) {
      host.propose(encodeWrite(call.request.key, call.request.value)).then(
        (r) => cb(null, { index: r.index, term: r.term }),
        (err) => cb(toServiceError(err)),
      );
    },
    putStream(call) {
      let inFlight = 0;
      let ended = false;
      const reply = (res: PutStreamResponse): void => {
        inFlight--;
        if (call.cancelled || call.destroyed) return;
        call.write(res);
        if (ended && inFlight === 0) call.end();
      };
      call.on('data', (req: PutStreamRequest) => {
        inFlight++;
        if (inFlight > putStreamInFlightMax) {
          const message = `more than ${putStreamInFlightMax} puts in flight on one stream`;
          reply({
            id: req.id,
            code: grpc.status.RESOURCE_EXHAUSTED,
            index: 0,
            term: 0,
            message,
            leaderId: '',
          });
          return;
        }
        host.propose(encodeWrite(req.key, req.value)).then(
          (r) =>
            reply({
              id: req.id,
              code: grpc.status.OK,
              index: r.index,
              term: r.term,
              message: '',
              leaderId: '',
            }),
          (err) => {
            const f = failureOf(err);
            reply({
              id: req.id,
              code: f.code,
              index: 0,
              term: 0,
              message: f.message,
              leaderId: f.leaderId ?? '',
            });
          },
        );
      });
      call.on('end', () => {
        ended = true;
        if (inFlight === 0) call.end();
      });
      call.on('error', () => {}); // the client went away: its answers are dropped
    },
    get(call, cb) {
      const serve = (): void => {
        const v = sm.get(call.request.key);
        cb(null, {
          found: v !== undefined,
          value: v?.value ?? new Uint8Array(0),
          modIndex: v?.index ?? 0,
          applied: host.stats().applied,
        });
      };
      if (!call.request.linearizable) return serve();
      // readIndex resolves once this replica has applied the read point.
      host.readIndex().then(serve, (err) => cb(toServiceError(err)));
    },
    dump(call, cb) {
      const limit = Math.min(call.request.limit || dumpPageWritesMax, dumpPageWritesMax);
      const { writes, more } = sm.page(call.request.fromIndex, limit);
      const res: DumpResponse = { writes, more, applied: host.stats().applied, recording: sm.recording };
      cb(null, res);
    },
    status(_call, cb) {
      const s = host.status();
      const st = host.stats();
      const res: StatusResponse = {
        id,
        role: s.role,
        leader: s.leader ?? '',
        term: s.term,
        commit: s.commit,
        applied: s.applied,
        lastIndex: s.lastIndex,
        stats: {
          readies: st.readies,
          fsyncs: st.fsyncs,
          entriesPersisted: st.entriesPersisted,
          entriesPerFsync: st.entriesPerFsync,
          applied: st.applied,
          proposalsPending: st.proposalsPending,
        },
        pid: process.pid,
      };
      cb(null, res);
    },
  };
}

function bindServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });
}

async function main(): Promise<void> {
  const args = parseNodeArgs(process.argv.slice(2));
  const id = args.id;
  const sm = new KvStateMachine(args.record);
  const storage = await FileStorage.open(args.dataDir, {
    onWarning: (w: unknown) => log(id, `storage: ${w}`),
  });
  const peers = Object.fromEntries(Object.entries(args.peers).filter(([p]) => p !== id));
  const transport = new GrpcTransport({ id, listen: args.raft, peers });
  const host = new RaftHost({
    id,
    voters: Object.keys(args.peers),
    storage,
    transport,
    stateMachine: sm,
    tickMs: args.tickMs,
    electionTicks: args.electionTicks,
    heartbeatTicks: args.heartbeatTicks,
    snapshotEveryEntries: args.snapshotEveryEntries,
    compactionMarginEntries: args.compactionMarginEntries,
    logger: {
      info: (msg, o) => log(id, `${msg} ${o ? JSON.stringify(o) : ''}`),
      warn: (msg, o) => log(id, `WARN ${msg} ${o ? JSON.stringify(o) : ''}`),
      error: (msg, o) =>
        log(id, `ERROR ${msg} ${o ? String((o as { err?: unknown }).err ?? JSON.stringify(o)) : ''}`),
    },
  });
  await host.start();

  const server = new grpc.Server();
  server.addService(raftKvService().service, handlers(host, sm, id));
  await bindServer(server, args.client);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(id, `stopping (${why})`);
    const forced = setTimeout(() => server.forceShutdown(), shutdownGraceMs);
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    clearTimeout(forced);
    await host.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  if (args.exitOnStdinEnd) {
    process.stdin.on('end', () => void stop('stdin closed'));
    process.stdin.resume();
  }

  log(id, `listening: raft ${args.raft}, client ${args.client}, data ${args.dataDir}`);
  process.stdout.write(
    `${JSON.stringify({ ready: true, id, pid: process.pid, raft: args.raft, client: args.client })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(
    `kv-node failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});

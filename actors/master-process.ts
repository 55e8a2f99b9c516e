/**
 * The master process: file storage in the data directory, the Raft transport and the peer
 * service on the Raft port, the gRPC API and the agents' AgentChannel on the API port, the
 * WebSocket gateway (with the pod stream ops reaching agents through the AgentHub) on the ws port.
 * `cox master` calls `runMaster`; `cox master restore` calls `restoreDataDir`.
 */

import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { pack, unpack } from 'msgpackr';
import { FileStorage, GrpcTransport } from '../raft/index.js';
import { AgentHub } from './agent-channel.js';
import { ApiError, ApiErrorCode } from './api.js';
import type { ControllerOptions } from './controllers/index.js';
import { type ApiServices, addApiServices, apiServerGrpcOptions } from './grpc-api.js';
import { MasterNode } from './master-node.js';
import { GrpcPeerLink, peerServiceDefinition, peerServiceImplementation } from './peers.js';
import { podStreamOps } from './pod-streams.js';
import type { MemberRecord } from './store.js';
import { startWsGateway, type WsGateway } from './ws-gateway.js';

export interface MasterProcessOptions {
  id: string;
  dataDir: string;
  /** `host:port` of the Raft transport and peer service (a fixed port: peers are configured with it). */
  raftListen: string;
  /** `host:port` of the gRPC API (port 0: any free port). */
  apiListen: string;
  /** `host:port` of the WebSocket gateway (port 0: any free port). */
  wsListen: string;
  /** Founding members' Raft addresses, including this one. */
  peers: Record<string, string>;
  /** Join a running cluster instead of founding one. */
  join?: boolean;
  tickMs?: number;
  electionTicks?: number;
  snapshotEveryEntries?: number;
  /** Settings of the built-in controllers (grace periods, retention). */
  controllers?: ControllerOptions;
  /** ClusterIPs come from here. Default 10.96.0.0/16. */
  serviceCidr?: string;
  /** NodePorts come from here. Default 30000-32767. */
  nodePortRange?: string;
  log?: (line: string) => void;
}

export interface RunningMaster {
  readonly node: MasterNode;
  readonly addresses: { raft: string; api: string; ws: string };
  stop(): Promise<void>;
}

/** Parses `m1=127.0.0.1:7101,m2=127.0.0.1:7102`. Throws with the bad part named. */
export function parsePeers(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(\S+:\d+)$/.exec(part);
    if (!m) throw new Error(`--peers: "${part}" is not id=host:port`);
    if (out[m[1]] !== undefined) throw new Error(`--peers: ${m[1]} given twice`);
    out[m[1]] = m[3];
  }
  return out;
}

function splitHostPort(text: string, flag: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${flag}: "${text}" is not host:port`);
  return { host: text.slice(0, i), port };
}

/** Time the API server waits for calls to finish on stop before cutting them, in ms. */
const apiCloseGraceMs = 1_000;

function unknownAgentRequest(type: string): ApiError {
  return new ApiError(ApiErrorCode.Invalid, `master: agent request "${type}": masters serve none`);
}

/** The gRPC API server: Objects, Cluster, health, reflection, and the agents' AgentChannel. */
async function startApiServer(
  listen: string,
  node: MasterNode,
  hub: AgentHub,
): Promise<{ services: ApiServices; address: string; close(): Promise<void> }> {
  const server = new grpc.Server(apiServerGrpcOptions());
  const services = addApiServices(server, { objects: node.api, cluster: node.api });
  hub.addTo(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err
        ? reject(new Error(`--api: cannot listen on ${listen}: ${err.message}`, { cause: err }))
        : resolve(p),
    ),
  );
  let closing: Promise<void> | undefined;
  return {
    services,
    address: `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        services.setServing('NOT_SERVING');
        const timer = setTimeout(() => server.forceShutdown(), apiCloseGraceMs);
        // Calls streams live as long as their clients: end them once their calls are answered.
        void services.drainCalls();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

export async function runMaster(opts: MasterProcessOptions): Promise<RunningMaster> {
  const log = opts.log ?? ((line: string) => console.error(line));
  if (!opts.join && opts.peers[opts.id] === undefined) {
    throw new Error(`--peers must include this master (${opts.id}) unless it --join's a running cluster`);
  }
  const ws = splitHostPort(opts.wsListen, '--ws');
  splitHostPort(opts.apiListen, '--api');
  await mkdir(opts.dataDir, { recursive: true });
  const storage = await FileStorage.open(join(opts.dataDir, 'raft'), {
    onWarning: (m) => log(`[storage] ${m}`),
  });
  const addresses = { raft: opts.raftListen, api: opts.apiListen, ws: '' };
  let node: MasterNode | undefined;
  const transport = new GrpcTransport({
    id: opts.id,
    listen: opts.raftListen,
    peers: Object.fromEntries(Object.entries(opts.peers).filter(([id]) => id !== opts.id)),
    services: [
      { definition: peerServiceDefinition, implementation: peerServiceImplementation(() => node?.api) },
    ],
    onWarning: (w) => log(`[raft transport ${opts.id}] ${w.code}: ${w.message}`),
  });
  node = new MasterNode({
    id: opts.id,
    storage,
    transport,
    peers: new GrpcPeerLink(),
    founders: opts.join ? {} : opts.peers,
    join: opts.join ?? false,
    addresses,
    ...(opts.controllers ? { controllerOptions: opts.controllers } : {}),
    ...(opts.serviceCidr !== undefined ? { serviceCidr: opts.serviceCidr } : {}),
    ...(opts.nodePortRange !== undefined ? { nodePortRange: opts.nodePortRange } : {}),
    host: {
      ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
      ...(opts.electionTicks !== undefined ? { electionTicks: opts.electionTicks } : {}),
      ...(opts.snapshotEveryEntries !== undefined ? { snapshotEveryEntries: opts.snapshotEveryEntries } : {}),
      logger: {
        info: (msg, o) => log(`[raft ${opts.id}] ${msg} ${o ? JSON.stringify(o) : ''}`),
        warn: (msg, o) => log(`[raft ${opts.id}] WARN ${msg} ${o ? JSON.stringify(o) : ''}`),
        error: (msg, o) => log(`[raft ${opts.id}] ERROR ${msg} ${o ? JSON.stringify(o) : ''}`),
      },
    },
  });
  let api: Awaited<ReturnType<typeof startApiServer>> | undefined;
  let gateway: WsGateway | undefined;
  // Masters call agents (logs, exec, stats); agents ask masters nothing over this channel yet.
  const hub = new AgentHub({ handler: () => (req) => req.respond.fail(unknownAgentRequest(req.type)) });
  try {
    api = await startApiServer(opts.apiListen, node, hub);
    addresses.api = api.address;
    gateway = await startWsGateway({
      objects: node.api,
      cluster: node.api,
      listen: ws,
      log,
      streamOps: podStreamOps(hub),
    });
    addresses.ws = gateway.url;
    await node.start();
  } catch (err) {
    await gateway?.close();
    hub.close();
    await api?.close();
    await node.stop();
    throw err;
  }
  await writeFile(
    join(opts.dataDir, 'master.json'),
    `${JSON.stringify({ id: opts.id, pid: process.pid, ...addresses }, null, 2)}\n`,
  );
  const running = node;
  const stalls = watchEventLoop(log, opts.id, () => node.host.status());
  let stopping: Promise<void> | undefined;
  return {
    node: running,
    addresses,
    stop: () => {
      stopping ??= (async () => {
        stalls.stop();
        api?.services.setServing('NOT_SERVING');
        await gateway?.close();
        hub.close();
        await api?.close();
        await running.stop();
      })();
      return stopping;
    },
  };
}

/** Event-loop delay over which a window is reported, ms: half the default election timeout's low end. */
const eventLoopStallReportMs = 250;
/** Length of one window of event-loop delay measurement, ms. */
const eventLoopWindowMs = 5_000;

/**
 * Logs each 5 s window in which the master's event loop was held up for longer than
 * `eventLoopStallReportMs` at once (with the Raft role and term then): a loaded master that
 * misses heartbeats shows here before the elections it causes.
 */
function watchEventLoop(
  log: (line: string) => void,
  id: string,
  raft: () => { role: string; term: number },
): { stop(): void } {
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  const timer = setInterval(() => {
    const maxMs = histogram.max / 1e6;
    if (maxMs >= eventLoopStallReportMs) {
      const st = raft();
      log(
        `[master ${id}] event loop held up ${Math.round(maxMs)} ms at most (p99 ${Math.round(histogram.percentile(99) / 1e6)} ms) in the last ${eventLoopWindowMs / 1000} s, as ${st.role} of term ${st.term}`,
      );
    }
    histogram.reset();
  }, eventLoopWindowMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      histogram.disable();
    },
  };
}

/** The file `cox cluster snapshot` writes. */
export interface BackupFile {
  format: 'coxswain-backup';
  v: 1;
  applied: number;
  takenAt: string;
  data: Uint8Array;
}

export function decodeBackup(bytes: Uint8Array): BackupFile {
  let b: BackupFile;
  try {
    b = unpack(bytes) as BackupFile;
  } catch (err) {
    throw new Error(`backup: not a Coxswain backup file (${(err as Error).message})`);
  }
  if (b?.format !== 'coxswain-backup' || b.v !== 1 || !(b.data instanceof Uint8Array)) {
    throw new Error('backup: not a Coxswain backup file (format header missing)');
  }
  return b;
}

/**
 * Prepares an empty data directory to start a new cluster from a backup, like
 * `etcdutl snapshot restore`: run it once per member with the same backup and `peers`, then
 * start every member with `cox master` (no `--join`). The Raft log starts with a snapshot at
 * the backup's index whose configuration is `peers`.
 */
export async function restoreDataDir(opts: {
  backupPath: string;
  dataDir: string;
  peers: Record<string, string>;
}): Promise<{ applied: number; objects: number }> {
  const bytes = await readFile(opts.backupPath).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--backup: cannot read ${opts.backupPath}: ${err.code ?? err.message}`);
  });
  const backup = decodeBackup(bytes);
  const raftDir = join(opts.dataDir, 'raft');
  const existing = await readdir(raftDir).catch(() => [] as string[]);
  if (existing.length > 0)
    throw new Error(`restore: ${raftDir} is not empty; restore into a fresh data directory`);
  const state = unpack(backup.data) as { v: 1; applied: number; objects: unknown[]; members: MemberRecord[] };
  if (state?.v !== 1 || !Array.isArray(state.objects))
    throw new Error('backup: state snapshot is not readable');
  state.members = Object.entries(opts.peers).map(([id, raftAddress]) => ({ id, raftAddress }));
  const data = new Uint8Array(pack(state));
  await mkdir(opts.dataDir, { recursive: true });
  const storage = await FileStorage.open(raftDir);
  try {
    const voters = Object.keys(opts.peers).sort();
    storage.applySnapshot({ index: backup.applied, term: 1, voters, learners: [], data });
    storage.setHardState({ term: 1, commit: backup.applied });
    await storage.sync();
  } finally {
    await storage.close();
  }
  return { applied: backup.applied, objects: state.objects.length };
}

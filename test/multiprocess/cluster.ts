/**
 * Spawns and drives a cluster of kv-node.ts processes on loopback: free ports, one temp dir
 * (a data dir and a log file per node), readiness, leader discovery, kill/restart by PID, and
 * a client that follows leader hints. Shared by the multi-process tests and bench/raft.ts.
 *
 * Every child is started with `--exit-on-stdin-end` and tracked here: `close()` stops them,
 * and a process 'exit' hook SIGKILLs any still running, so a failing test leaves no orphan.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  type AppliedWrite,
  type DumpResponse,
  leaderIdMetadataKey,
  newRaftKvClient,
  type PutResponse,
  type RaftKvClient,
  type StatusResponse,
} from './kv-proto.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const kvNodePath = fileURLToPath(new URL('./kv-node.ts', import.meta.url));

/** Client channel options: reconnect quickly to a restarted node (grpc's default waits 1 s–120 s). */
export const kvChannelOptions: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * On exit, SIGKILLs every child still running and removes the temp dirs of clusters not
 * closed. Tracks children of this module and those passed to {@link trackChild}.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** Has `child` (and, if given, `dir`) cleaned up by the exit hook if this process ends early. */
export function trackChild(child: ChildProcess, dir?: string): void {
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (dir !== undefined) liveDirs.add(dir);
}

/** Forgets a temp dir registered with {@link trackChild} (its owner removed it). */
export function untrackDir(dir: string): void {
  liveDirs.delete(dir);
}

/**
 * `n` loopback ports that are free now, for servers a test starts later. They are drawn at
 * random from below the kernel's ephemeral range (which outgoing connections of parallel
 * suites use up, so a port picked there may be taken again before the server binds it), and
 * each is checked by binding it; ports handed out by this process are never handed out twice.
 */
export async function freeLoopbackPorts(n: number): Promise<number[]> {
  const [ephemeralLow] = ephemeralRange();
  const low = 20_000; // below: fixed test ports (cox-up.test.ts uses 17000..19000)
  const high = Math.max(low + 1_000, Math.min(ephemeralLow, 32_768));
  const ports: number[] = [];
  for (let attempts = 0; ports.length < n; attempts++) {
    if (attempts > 1_000) throw new Error(`no ${n} free loopback ports found in ${low}..${high - 1}`);
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port) || ports.includes(port)) continue;
    if (await canBind(port)) ports.push(port);
  }
  for (const p of ports) handedOut.add(p);
  return ports;
}

const handedOut = new Set<number>();

function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = fs
      .readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) return [lo, hi];
  } catch {
    // not Linux: use the IANA range
  }
  return [49_152, 65_535];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Resolves when `child` has exited, or after `timeoutMs` with false. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface ClusterOptions {
  /** Number of nodes (ids n1..nN). Default 3. */
  size?: number;
  /** Extra kv-node flags for every node, e.g. `['--record', 'false']`. */
  nodeArgs?: string[];
  /** Extra Node.js flags for one node's process, e.g. `--cpu-prof`. */
  execArgv?: (id: string) => string[];
  /** How long a node may take to print its ready line. Default 30 s. */
  readyTimeoutMs?: number;
  /** Prefix of the temp dir under os.tmpdir(). */
  dirPrefix?: string;
}

export interface ClusterNode {
  readonly id: string;
  readonly raftAddress: string;
  readonly clientAddress: string;
  readonly dataDir: string;
  readonly logPath: string;
  proc?: ChildProcess;
  /** How many times this node has been started. */
  starts: number;
}

/** A Put that did not get an answer by its deadline: it may or may not have been applied. */
export class PutTimeoutError extends Error {
  readonly code = 'PUT_TIMEOUT';
  constructor(
    readonly key: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(`put ${key}: no acknowledgement after ${attempts} attempts`, options);
    this.name = 'PutTimeoutError';
  }
}

/** A running set of kv-node processes. Create with {@link KvCluster.start}; always `close()`. */
export class KvCluster {
  readonly nodes = new Map<string, ClusterNode>();
  private readonly rpcs = new Map<string, RaftKvClient>();

  private constructor(
    readonly dir: string,
    private readonly opts: Required<Omit<ClusterOptions, 'dirPrefix'>>,
  ) {}

  /** Creates the temp dir, picks ports and starts every node in parallel. */
  static async start(options: ClusterOptions = {}): Promise<KvCluster> {
    installExitHook();
    const size = options.size ?? 3;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), options.dirPrefix ?? 'cox-kv-'));
    if (!process.env.COX_KEEP_CLUSTER_DIR) liveDirs.add(dir);
    const cluster = new KvCluster(dir, {
      size,
      nodeArgs: options.nodeArgs ?? [],
      execArgv: options.execArgv ?? (() => []),
      readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    });
    try {
      const ports = await freeLoopbackPorts(2 * size);
      for (let i = 0; i < size; i++) {
        const id = `n${i + 1}`;
        cluster.nodes.set(id, {
          id,
          raftAddress: `127.0.0.1:${ports[2 * i]}`,
          clientAddress: `127.0.0.1:${ports[2 * i + 1]}`,
          dataDir: path.join(dir, id, 'data'),
          logPath: path.join(dir, id, 'node.log'),
          starts: 0,
        });
      }
      await Promise.all(cluster.ids().map((id) => cluster.startNode(id)));
      return cluster;
    } catch (err) {
      await cluster.close();
      throw err;
    }
  }

  ids(): string[] {
    return [...this.nodes.keys()];
  }

  node(id: string): ClusterNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  isRunning(id: string): boolean {
    const p = this.node(id).proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Starts (or restarts, on the same data dir and ports) one node; resolves on its ready line. */
  async startNode(id: string): Promise<void> {
    const n = this.node(id);
    if (this.isRunning(id)) throw new Error(`${id} is already running`);
    fs.mkdirSync(n.dataDir, { recursive: true });
    const peers = [...this.nodes.values()].map((p) => `${p.id}=${p.raftAddress}`).join(',');
    const logFd = fs.openSync(n.logPath, 'a');
    const child = spawn(
      process.execPath,
      [
        ...this.opts.execArgv(id),
        '--import',
        'tsx',
        kvNodePath,
        ...['--id', id, '--data-dir', n.dataDir, '--raft', n.raftAddress, '--client', n.clientAddress],
        ...['--peers', peers, '--exit-on-stdin-end', ...this.opts.nodeArgs],
      ],
      { cwd: repoRoot, stdio: ['pipe', 'pipe', logFd] },
    );
    fs.closeSync(logFd);
    trackChild(child);
    // A ChildProcess without an 'error' listener would crash this process on a failed spawn or kill.
    child.on('error', (err) => process.stderr.write(`${id} (pid ${child.pid}): ${err.message}\n`));
    n.proc = child;
    n.starts++;
    await this.waitReady(n, child);
  }

  private waitReady(n: ClusterNode, child: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      const lines = readline.createInterface({ input: child.stdout! });
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(new Error(`${n.id} did not start: ${why}\n--- ${n.logPath} ---\n${this.logTail(n.id)}`));
      };
      const timer = setTimeout(
        () => fail(`no ready line in ${this.opts.readyTimeoutMs} ms`),
        this.opts.readyTimeoutMs,
      );
      const onExit = (code: number | null, signal: string | null): void => fail(`exited (${code ?? signal})`);
      child.once('exit', onExit);
      child.once('error', (err) => fail(`spawn failed: ${err.message}`));
      lines.on('line', (line) => {
        let msg: { ready?: boolean } | undefined;
        try {
          msg = JSON.parse(line);
        } catch {
          return; // not ours
        }
        if (msg?.ready) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve();
        }
      });
    });
  }

  /** Sends `signal` to the node's own PID (the one this cluster spawned). */
  signal(id: string, signal: NodeJS.Signals): void {
    const p = this.node(id).proc;
    if (p?.pid === undefined || !this.isRunning(id)) throw new Error(`${id} is not running`);
    process.kill(p.pid, signal);
  }

  /** `kill -9` the node and wait until the OS has reaped it. */
  async kill(id: string): Promise<void> {
    const p = this.node(id).proc!;
    this.signal(id, 'SIGKILL');
    await waitForExit(p, 10_000);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stopNode(id: string, graceMs = 5_000): Promise<void> {
    const p = this.node(id).proc;
    if (!p || !this.isRunning(id)) return;
    process.kill(p.pid!, 'SIGTERM');
    if (!(await waitForExit(p, graceMs)) && this.isRunning(id)) {
      process.kill(p.pid!, 'SIGKILL');
      await waitForExit(p, 10_000);
    }
  }

  /** The node's client stub (one channel per node, reused). */
  rpc(id: string): RaftKvClient {
    let c = this.rpcs.get(id);
    if (!c) {
      c = newRaftKvClient(this.node(id).clientAddress, kvChannelOptions);
      this.rpcs.set(id, c);
    }
    return c;
  }

  status(id: string, timeoutMs = 1_000): Promise<StatusResponse> {
    return new Promise((resolve, reject) => {
      this.rpc(id).status({}, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res!),
      );
    });
  }

  /** Statuses of the running nodes that answered within `timeoutMs`. */
  async statuses(timeoutMs = 1_000): Promise<StatusResponse[]> {
    const running = this.ids().filter((id) => this.isRunning(id));
    const all = await Promise.allSettled(running.map((id) => this.status(id, timeoutMs)));
    return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }

  /**
   * Polls until a running node reports itself leader and no running node reports a higher
   * term; returns its id. Rejects after `timeoutMs`.
   */
  async waitForLeader(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const sts = await this.statuses(500);
      const maxTerm = Math.max(0, ...sts.map((s) => s.term));
      const leader = sts.find((s) => s.role === 'leader' && s.term === maxTerm);
      if (leader) return leader.id;
      await sleep(50);
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  /** Every write the node has applied, in log order (all Dump pages). */
  async dumpAll(id: string, timeoutMs = 5_000): Promise<AppliedWrite[]> {
    const out: AppliedWrite[] = [];
    let fromIndex = 0;
    for (;;) {
      const page = await new Promise<DumpResponse>((resolve, reject) => {
        this.rpc(id).dump({ fromIndex, limit: 0 }, { deadline: Date.now() + timeoutMs }, (err, res) =>
          err ? reject(err) : resolve(res!),
        );
      });
      if (!page.recording) throw new Error(`${id} does not record its applied sequence (--record false)`);
      out.push(...page.writes);
      if (!page.more || page.writes.length === 0) return out;
      fromIndex = page.writes[page.writes.length - 1].index + 1;
    }
  }

  /** The last `bytes` of a node's log file. */
  logTail(id: string, bytes = 4_000): string {
    try {
      const buf = fs.readFileSync(this.node(id).logPath);
      return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
    } catch {
      return '(no log)';
    }
  }

  /** Stops every node (SIGTERM, then SIGKILL), closes the stubs and removes the temp dir. */
  async close(): Promise<void> {
    await Promise.all(this.ids().map((id) => this.stopNode(id, 3_000)));
    for (const c of this.rpcs.values()) c.close();
    this.rpcs.clear();
    if (!process.env.COX_KEEP_CLUSTER_DIR) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      liveDirs.delete(this.dir);
    }
  }
}

export interface PutAck extends PutResponse {
  /** The node that acknowledged the write. */
  node: string;
  attempts: number;
}

export interface KvClientOptions {
  /** Deadline of one RPC attempt. Default 2 s. */
  callTimeoutMs?: number;
  /** Pause before retrying a node that gave no usable answer. Default 20 ms. */
  retryBackoffMs?: number;
  /** Attempts per `put` before it gives up. Default 1,000. */
  attemptsMax?: number;
}

/**
 * Writes through whichever node leads: it follows FAILED_PRECONDITION leader hints, moves on
 * to the next node on UNAVAILABLE / deadline, and remembers the last node that acknowledged.
 * A retried write may be applied more than once (the first attempt's fate is unknown); each
 * acknowledgement names the index of the entry that was applied.
 */
export class KvClient {
  private target: string;
  private readonly callTimeoutMs: number;
  private readonly retryBackoffMs: number;
  private readonly attemptsMax: number;

  constructor(
    private readonly cluster: KvCluster,
    options: KvClientOptions = {},
  ) {
    this.target = cluster.ids()[0];
    this.callTimeoutMs = options.callTimeoutMs ?? 2_000;
    this.retryBackoffMs = options.retryBackoffMs ?? 20;
    this.attemptsMax = options.attemptsMax ?? 1_000;
  }

  /** Puts `key`, retrying until acknowledged or `deadlineAtMs` (epoch ms) passes. */
  async put(key: string, value: Uint8Array, deadlineAtMs: number): Promise<PutAck> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= this.attemptsMax; attempt++) {
      const now = Date.now();
      if (now >= deadlineAtMs) throw new PutTimeoutError(key, attempt - 1, { cause: lastErr });
      const node = this.target;
      try {
        const res = await this.putOnce(node, key, value, Math.min(deadlineAtMs, now + this.callTimeoutMs));
        return { ...res, node, attempts: attempt };
      } catch (err) {
        lastErr = err;
        const hint = this.hintFrom(err);
        if (hint && hint !== node && this.cluster.nodes.has(hint)) {
          this.target = hint;
          continue;
        }
        this.target = this.nextNode(node);
        await sleep(this.retryBackoffMs);
      }
    }
    throw new PutTimeoutError(key, this.attemptsMax, { cause: lastErr });
  }

  private putOnce(node: string, key: string, value: Uint8Array, deadline: number): Promise<PutResponse> {
    return new Promise((resolve, reject) => {
      this.cluster
        .rpc(node)
        .put({ key, value }, { deadline }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  private hintFrom(err: unknown): string | undefined {
    const e = err as Partial<grpc.ServiceError>;
    if (e.code !== grpc.status.FAILED_PRECONDITION || !e.metadata) return undefined;
    const v = e.metadata.get(leaderIdMetadataKey)[0];
    return typeof v === 'string' ? v : undefined;
  }

  private nextNode(node: string): string {
    const ids = this.cluster.ids();
    return ids[(ids.indexOf(node) + 1) % ids.length];
  }
}

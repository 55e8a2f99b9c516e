/**
 * Spawns and drives a cluster of `cox master` processes on loopback, for the multi-process
 * master tests and the API benches: free ports (Raft, gRPC API and WebSocket fixed per member,
 * so a restarted member keeps its addresses), one temp dir holding a data dir and a stderr log
 * per member, ready lines, leader discovery, kill -9 / SIGSTOP / SIGCONT / restart over the
 * same data dir, `cox master restore`, joining an extra member, and a clean stop.
 *
 * Only processes this module spawned are ever signalled, always by their own PID. Every child
 * is tracked by cluster.ts's exit hook, so a failing test leaves no orphan and no temp dir
 * (set COX_KEEP_CLUSTER_DIR=1 to keep the dirs and their stderr logs).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ClusterStatus } from '../../actors/api.js';
import { ApiClient, type ApiClientOptions } from '../../actors/grpc-client.js';
import { colocatedNodeFlags } from '../../cli/node-flags.js';
import { freeLoopbackPorts, repoRoot, sleep, trackChild, waitForExit } from './cluster.js';

/**
 * The script that runs `cox master`. TEMPORARY: master-entry.ts registers the master verbs on
 * a bare commander program until cli/cox.ts does; then this becomes `cli/cox.ts`.
 */
/** Cluster starts retried when a port was taken between the check and the bind. */
const portRaceAttemptsMax = 3;

export const masterEntryPath = fileURLToPath(new URL('../../cli/cox.ts', import.meta.url));

export interface MasterClusterOptions {
  /** Number of founding members (ids m1..mN). Default 3. */
  size?: number;
  /** `--tick-ms` of every member (default: the master's own default). */
  tickMs?: number;
  /** `--election-ticks` of every member. */
  electionTicks?: number;
  /** Extra `cox master` flags for every member. */
  masterArgs?: string[];
  /** Extra Node.js flags for one member's process, e.g. `--cpu-prof`. */
  execArgv?: (id: string) => string[];
  /** How long a member may take to print its ready line. Default 30 s. */
  readyTimeoutMs?: number;
  /** Prefix of the temp dir under os.tmpdir(). Default `cox-masters-`. */
  dirPrefix?: string;
  /** Before the first start, fill every member's data dir from this backup (`cox master restore`). */
  restoreFrom?: string;
}

/** The `{ ready: true, ... }` line `cox master` prints on stdout. */
export interface ReadyLine {
  ready: true;
  id: string;
  pid: number;
  raft: string;
  api: string;
  ws: string;
}

export interface MasterMember {
  readonly id: string;
  readonly raftAddress: string;
  /** gRPC API `host:port`, fixed across restarts. */
  readonly apiAddress: string;
  /** WebSocket gateway `host:port`, fixed across restarts. */
  readonly wsAddress: string;
  readonly dataDir: string;
  /** Stderr of every start of this member, appended. */
  readonly stderrPath: string;
  /** Started with `--join` (not a founder). */
  readonly joined: boolean;
  proc?: ChildProcess;
  ready?: ReadyLine;
  /** How many times this member has been started. */
  starts: number;
}

/** A running set of master processes. Create with {@link MasterCluster.start}; always `close()`. */
export class MasterCluster {
  readonly members = new Map<string, MasterMember>();
  private readonly clients: ApiClient[] = [];
  private readonly memberClients = new Map<string, ApiClient>();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly opts: MasterClusterOptions,
  ) {}

  /** Creates the temp dir, picks ports, restores if asked, and starts every member in parallel. */
  static async start(options: MasterClusterOptions = {}): Promise<MasterCluster> {
    // A port checked free can still be taken by another suite before the master binds it:
    // such a start is retried on fresh ports (a bounded number of times).
    for (let attempt = 1; ; attempt++) {
      const cluster = MasterCluster.prepare(options);
      try {
        const size = options.size ?? 3;
        for (let i = 1; i <= size; i++) await cluster.define(`m${i}`, false);
        if (options.restoreFrom !== undefined) {
          for (const id of cluster.ids()) await cluster.restore(id, options.restoreFrom);
        }
        await Promise.all(cluster.ids().map((id) => cluster.startMember(id)));
        return cluster;
      } catch (err) {
        await cluster.close();
        if (attempt >= portRaceAttemptsMax || !/cannot listen on/.test(String(err))) throw err;
      }
    }
  }

  private static prepare(options: MasterClusterOptions): MasterCluster {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), options.dirPrefix ?? 'cox-masters-'));
    const cluster = new MasterCluster(dir, options);
    if (!process.env.COX_KEEP_CLUSTER_DIR) trackDir(dir);
    return cluster;
  }

  private async define(id: string, joined: boolean): Promise<MasterMember> {
    if (this.members.has(id)) throw new Error(`member ${id} already exists`);
    const [raft, api, ws] = await freeLoopbackPorts(3);
    const m: MasterMember = {
      id,
      raftAddress: `127.0.0.1:${raft}`,
      apiAddress: `127.0.0.1:${api}`,
      wsAddress: `127.0.0.1:${ws}`,
      dataDir: path.join(this.dir, id, 'data'),
      stderrPath: path.join(this.dir, id, 'stderr.log'),
      joined,
      starts: 0,
    };
    fs.mkdirSync(path.dirname(m.stderrPath), { recursive: true });
    this.members.set(id, m);
    return m;
  }

  ids(): string[] {
    return [...this.members.keys()];
  }

  member(id: string): MasterMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** The gRPC API addresses of the given members (default: all), in id order. */
  apiAddresses(ids: string[] = this.ids()): string[] {
    return ids.map((id) => this.member(id).apiAddress);
  }

  pid(id: string): number {
    const pid = this.member(id).proc?.pid;
    if (pid === undefined) throw new Error(`${id} has no process`);
    return pid;
  }

  isRunning(id: string): boolean {
    const p = this.member(id).proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** `--peers` of the founders (and of a joining member: the founders plus itself). */
  private peersFlag(self: MasterMember): string {
    const list = [...this.members.values()].filter((m) => !m.joined || m.id === self.id);
    return list.map((m) => `${m.id}=${m.raftAddress}`).join(',');
  }

  /** Starts (or restarts, over the same data dir and addresses) one member; resolves on its ready line. */
  async startMember(id: string): Promise<ReadyLine> {
    const m = this.member(id);
    if (this.isRunning(id)) throw new Error(`${id} is already running`);
    const args = [
      ...['--id', id, '--data-dir', m.dataDir, '--raft', m.raftAddress],
      ...['--api', m.apiAddress, '--ws', m.wsAddress, '--peers', this.peersFlag(m)],
      ...(m.joined ? ['--join'] : []),
      ...(this.opts.tickMs !== undefined ? ['--tick-ms', String(this.opts.tickMs)] : []),
      ...(this.opts.electionTicks !== undefined ? ['--election-ticks', String(this.opts.electionTicks)] : []),
      ...(this.opts.masterArgs ?? []),
    ];
    const child = this.spawnEntry(id, ['master', ...args], ['ignore', 'pipe', 'pipe']);
    m.proc = child;
    m.ready = undefined;
    m.starts++;
    m.ready = await this.waitReady(m, child);
    return m.ready;
  }

  private spawnEntry(id: string, args: string[], stdio: ['ignore', 'pipe' | 'ignore', 'pipe']): ChildProcess {
    const m = this.member(id);
    const child = spawn(
      process.execPath,
      [
        ...colocatedNodeFlags,
        ...(this.opts.execArgv?.(id) ?? []),
        '--import',
        'tsx',
        masterEntryPath,
        ...args,
      ],
      { cwd: repoRoot, stdio },
    );
    trackChild(child);
    const log = fs.createWriteStream(m.stderrPath, { flags: 'a' });
    log.write(`--- ${new Date().toISOString()} pid ${child.pid}: ${args.slice(0, 1).join(' ')}\n`);
    child.stderr!.pipe(log);
    // A ChildProcess without an 'error' listener would crash this process on a failed spawn or kill.
    child.on('error', (err) => process.stderr.write(`${id} (pid ${child.pid}): ${err.message}\n`));
    return child;
  }

  private waitReady(m: MasterMember, child: ChildProcess): Promise<ReadyLine> {
    const timeoutMs = this.opts.readyTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const lines = readline.createInterface({ input: child.stdout! });
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // Give the stderr pipe a moment to reach the file before quoting it.
        setTimeout(
          () =>
            reject(
              new Error(`${m.id} did not start: ${why}\n--- ${m.stderrPath} ---\n${this.logTail(m.id)}`),
            ),
          100,
        );
      };
      const timer = setTimeout(() => fail(`no ready line in ${timeoutMs} ms`), timeoutMs);
      const onExit = (code: number | null, signal: string | null): void => fail(`exited (${code ?? signal})`);
      child.once('exit', onExit);
      child.once('error', (err) => fail(`spawn failed: ${err.message}`));
      lines.on('line', (line) => {
        if (settled) return;
        let msg: Partial<ReadyLine> | undefined;
        try {
          msg = JSON.parse(line);
        } catch {
          return; // not the ready line
        }
        if (msg?.ready === true) {
          settled = true;
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(msg as ReadyLine);
        }
      });
    });
  }

  /** Runs `cox master restore` for one member's (empty) data dir. */
  async restore(id: string, backupPath: string): Promise<void> {
    const m = this.member(id);
    const child = this.spawnEntry(
      id,
      ['master', 'restore', '--backup', backupPath, '--data-dir', m.dataDir, '--peers', this.peersFlag(m)],
      ['ignore', 'ignore', 'pipe'],
    );
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    if (code !== 0) throw new Error(`restore of ${id} exited ${code}\n${this.logTail(id)}`);
  }

  /**
   * Defines and starts a new member with `--join` (its `--peers`: the founders and itself). The
   * caller then adds it with `ClusterApi.addMember` ({@link addMemberRequest}).
   */
  async startJoiner(id: string): Promise<MasterMember> {
    await this.define(id, true);
    await this.startMember(id);
    return this.member(id);
  }

  /** The `addMember` request for a member of this cluster. */
  addMemberRequest(id: string): { id: string; raftAddress: string; apiAddress: string; wsUrl: string } {
    const m = this.member(id);
    return { id, raftAddress: m.raftAddress, apiAddress: m.apiAddress, wsUrl: `ws://${m.wsAddress}` };
  }

  /** Sends `signal` to the member's own PID (the one this cluster spawned). */
  signal(id: string, signal: NodeJS.Signals): void {
    if (!this.isRunning(id)) throw new Error(`${id} is not running`);
    process.kill(this.pid(id), signal);
  }

  /** `kill -9` the member and wait until the OS has reaped it. */
  async kill(id: string): Promise<void> {
    const p = this.member(id).proc!;
    this.signal(id, 'SIGKILL');
    if (!(await waitForExit(p, 10_000))) throw new Error(`${id} (pid ${p.pid}) did not die on SIGKILL`);
  }

  /** SIGSTOP: the member freezes with its sockets open. */
  pause(id: string): void {
    this.signal(id, 'SIGSTOP');
  }

  /** SIGCONT after {@link pause}. */
  resume(id: string): void {
    this.signal(id, 'SIGCONT');
  }

  /** SIGTERM, then SIGKILL after `graceMs` (a stopped member is continued first). */
  async stopMember(id: string, graceMs = 5_000): Promise<void> {
    const p = this.member(id).proc;
    if (!p || !this.isRunning(id)) return;
    process.kill(p.pid!, 'SIGCONT');
    process.kill(p.pid!, 'SIGTERM');
    if (!(await waitForExit(p, graceMs)) && this.isRunning(id)) {
      process.kill(p.pid!, 'SIGKILL');
      await waitForExit(p, 10_000);
    }
  }

  /** A client over the given members' API addresses (default: all), closed by `close()`. */
  client(ids: string[] = this.ids(), options: ApiClientOptions = {}): ApiClient {
    const c = new ApiClient(this.apiAddresses(ids), {
      connectTimeoutMs: 1_000,
      reconnectBackoffMsMax: 500,
      ...options,
    });
    this.clients.push(c);
    return c;
  }

  /** A client of exactly one member (cached): its answers are that member's own view. */
  memberClient(id: string): ApiClient {
    let c = this.memberClients.get(id);
    if (!c) {
      c = new ApiClient([this.member(id).apiAddress], {
        deadlineMs: 2_000,
        connectTimeoutMs: 500,
        reconnectBackoffMsMax: 500,
      });
      this.memberClients.set(id, c);
    }
    return c;
  }

  /** One member's own cluster status (it asks its peers for their part, so allow a second per dead peer). */
  status(id: string): Promise<ClusterStatus> {
    return this.memberClient(id).status();
  }

  /**
   * Polls until a running member (among `among`, default all) says it is the leader and no
   * answering running member reports a higher term; returns its id. Rejects after `timeoutMs`.
   */
  async waitForLeader(timeoutMs: number, among: string[] = this.ids()): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const running = this.ids().filter((id) => this.isRunning(id));
      const all = await Promise.allSettled(running.map((id) => this.status(id)));
      const sts = all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const maxTerm = Math.max(0, ...sts.map((s) => s.term));
      const leader = sts.find((s) => s.leader === s.self && s.term === maxTerm && among.includes(s.self));
      if (leader) return leader.self;
      last = sts.map((s) => `${s.self}: term ${s.term} leader ${s.leader ?? '-'}`).join('; ');
      await sleep(50);
    }
    throw new Error(`no leader among ${among.join(',')} within ${timeoutMs} ms (${last})`);
  }

  /** The last `bytes` of a member's stderr log. */
  logTail(id: string, bytes = 4_000): string {
    try {
      const buf = fs.readFileSync(this.member(id).stderrPath);
      return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
    } catch {
      return '(no log)';
    }
  }

  /** The stderr tails of every member, for a failure message. */
  logTails(bytes = 2_000): string {
    return this.ids()
      .map((id) => `--- ${id} (${this.member(id).stderrPath}) ---\n${this.logTail(id, bytes)}`)
      .join('\n');
  }

  /** Closes the clients, stops every member (SIGTERM, then SIGKILL) and removes the temp dir. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.clients, ...this.memberClients.values()]) c.close();
    await Promise.all(this.ids().map((id) => this.stopMember(id, 3_000)));
    if (!process.env.COX_KEEP_CLUSTER_DIR) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      liveDirs.delete(this.dir);
    }
  }
}

const liveDirs = new Set<string>();
let dirHookInstalled = false;

/** Removes `dir` on exit unless its cluster was closed first (the children are cluster.ts's to kill). */
function trackDir(dir: string): void {
  if (!dirHookInstalled) {
    dirHookInstalled = true;
    process.once('exit', () => {
      for (const d of liveDirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  liveDirs.add(dir);
}

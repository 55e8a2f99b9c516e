/**
 * The process driver of the container runtime port, for machines without Docker. A "container"
 * is a host command run as a child process in its own session and process group
 * (`detached: true`); a pod's sandbox is a directory. There is no isolation: no network
 * namespace (the pod IP is the node IP), no mount namespace (mounts are not applied), and
 * memory and CPU limits are NOT enforced (`memoryBytes`, `cpuMillis` are ignored, so a process
 * is never OOMKilled). Images are not used: `ensureImage` accepts the base image when a busybox
 * binary exists on the host, and the command runs as the host resolves it.
 *
 * Layout under `root` (one root per node):
 *   pods/<podUid>/sandbox.json                 the sandbox (pod name, namespace, node, hostname)
 *   pods/<podUid>/<name>-<restartCount>.json   the container: argv, pid, start ticks, exit
 *   pods/<podUid>/<name>-<restartCount>.log    its output, one CRI-format line per output line:
 *                                              `<RFC 3339 ns> <stdout|stderr> <F|P> <text>`
 *   pods/<podUid>/<name>-<restartCount>.{stdout,stderr}.fifo
 *
 * A container writes into two FIFOs that it also holds open for reading, so it never gets
 * SIGPIPE when the agent dies: its output waits in the pipe buffer (64 KiB, then the writer
 * blocks) until a new ProcessRuntime over the same root adopts it and drains the FIFOs. Lines
 * are timestamped when the agent reads them. Adoption checks /proc/<pid> and the recorded start
 * time (field 22 of /proc/<pid>/stat), so a recycled pid is never taken for the container.
 *
 * Exit codes are known for processes this instance started (128+signal for a signal). A process
 * that exits while adopted (not our child, so not waitable) gets exit code 137 if this instance
 * SIGKILLed it, else no exit code and reason `ContainerStatusUnknown`, as Kubernetes reports a
 * container it lost track of.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { close as closeFd, constants as fsc, open as openFd } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { constants as osc } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { busyboxCandidates } from './images.js';
import {
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStats,
  type ContainerStatus,
  type ExecOptions,
  type ExecSession,
  ImagePullError,
  type LogChunk,
  type LogOptions,
  type PullPolicy,
  type SandboxSpec,
  type SandboxStatus,
} from './runtime.js';

const execFileAsync = promisify(execFile);
/** Raw descriptors (not FileHandles): net.Socket takes ownership of them and closes them. */
const openRaw = promisify(openFd);
const closeRaw = promisify(closeFd);

export interface ProcessRuntimeOptions {
  /** This agent's node name: recorded with every pod, and only this node's pods are listed. */
  node: string;
  /** Directory holding pod directories, state files and logs (created if missing). */
  root: string;
  /** Reported as every pod's IP (processes share the host network). */
  nodeIp?: string;
  /** The one clock (log timestamps, start and finish times). Default Date.now. */
  nowMs?: () => number;
  /** Busybox binaries that make the base image available. Default: the usual places. */
  busyboxPaths?: readonly string[];
  /** How often `logs --follow` re-reads the log file. Default 100 ms, at most 1,000 ms. */
  logPollMs?: number;
}

/** Images this driver accepts (all meaning "the host's busybox and commands"). */
const baseImageNames = new Set(['coxswain/busybox', 'coxswain/busybox:latest']);
/** Assumed `getconf CLK_TCK` (100 on every Linux architecture Node runs on). */
const clockTicksPerSecond = 100;
const nanosPerTick = 1_000_000_000 / clockTicksPerSecond;
/** A line longer than this is written as partial (`P`) entries of at most this size. */
const logLineBytesMax = 16 * 1024;
/** After the main process exits, how long to wait for its output to drain. */
const drainWaitMsMax = 2_000;
/** After SIGKILL, how long to wait for the process to disappear before giving up. */
const killWaitMsMax = 5_000;
/** How often an adopted (non-child) process is checked for exit once its output has ended. */
const exitPollMs = 50;
/**
 * How often an adopted (non-child) process is checked in /proc for its exit while its output
 * may still be held open by processes it started: bounds how late `events` reports its exit.
 */
const adoptedExitPollMs = 250;
const logPollMsMax = 1_000;
/** Exec output chunks buffered ahead of a slow reader before the command's pipes are paused. */
const execOutputChunksMax = 64;

interface SandboxRecord {
  id: string;
  podUid: string;
  name: string;
  namespace: string;
  node: string;
  hostname: string;
  createdAt: string;
}

interface ContainerRecord {
  id: string;
  podUid: string;
  name: string;
  image: string;
  restartCount: number;
  node: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  pid?: number;
  /** Field 22 of /proc/<pid>/stat at start: tells the process from a later one with its pid. */
  procStartTicks?: number;
  startedAt: string;
  exitCode?: number;
  reason?: string;
  finishedAt?: string;
}

interface ProcStat {
  state: string;
  pgrp: number;
  cpuTicks: number;
  startTicks: number;
}

/** Reads /proc/<pid>/stat; undefined when there is no such process. */
async function procStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // Fields after the command name (which may contain spaces and parentheses): field 3 first.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (field: number) => Number(f[field - 3]);
  return {
    state: f[0] ?? '?',
    pgrp: n(5),
    cpuTicks: n(14) + n(15) + n(16) + n(17),
    startTicks: n(22),
  };
}

function isSafeSegment(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** An RFC 3339 time with nanoseconds from milliseconds since the epoch. */
function rfc3339Nanos(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000000Z');
}

/** Milliseconds since the epoch of an RFC 3339 time, or NaN. */
function parseTime(text: string): number {
  return Date.parse(text);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Reads a container's FIFOs and appends their lines, timestamped, to its log file. */
class LogPump {
  readonly done: Promise<void>;
  private readonly sockets: Socket[] = [];

  constructor(
    fds: { stdout: number; stderr: number },
    logFd: import('node:fs/promises').FileHandle,
    nowMs: () => number,
  ) {
    let queue = Promise.resolve();
    const append = (line: Buffer) => {
      queue = queue.then(() => logFd.write(line).then(() => undefined)).catch(() => undefined);
    };
    const ends = (['stdout', 'stderr'] as const).map((stream) => {
      const socket = new Socket({ fd: fds[stream], readable: true, writable: false });
      this.sockets.push(socket);
      let pending: Buffer = Buffer.alloc(0);
      const entry = (text: Buffer, tag: 'F' | 'P') =>
        append(
          Buffer.concat([Buffer.from(`${rfc3339Nanos(nowMs())} ${stream} ${tag} `), text, Buffer.from('\n')]),
        );
      socket.on('data', (data: Buffer) => {
        pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
        for (;;) {
          const nl = pending.indexOf(0x0a);
          if (nl >= 0 && nl <= logLineBytesMax) {
            entry(pending.subarray(0, nl), 'F');
            pending = pending.subarray(nl + 1);
          } else if (pending.length > logLineBytesMax) {
            entry(pending.subarray(0, logLineBytesMax), 'P');
            pending = pending.subarray(logLineBytesMax);
          } else break;
        }
      });
      return new Promise<void>((resolve) => {
        const finish = () => {
          if (pending.length > 0) entry(pending, 'P');
          pending = Buffer.alloc(0);
          resolve();
        };
        socket.once('end', finish);
        socket.once('close', finish);
        socket.once('error', finish);
      });
    });
    this.done = Promise.all(ends).then(async () => {
      await queue;
      await logFd.close().catch(() => undefined);
    });
  }

  /** Stops reading (the FIFOs keep what the process writes until someone reads again). */
  close(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/**
 * The async queue of an exec's output, ended once. It holds up to `execOutputChunksMax` chunks:
 * `push` returns false when full, and the producer pauses until `onDrain` (half empty again).
 */
class ChunkQueue implements AsyncIterable<LogChunk> {
  private readonly items: LogChunk[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private full = false;

  constructor(private readonly onDrain: () => void) {}

  /** False once the queue is full: pause the producer until `onDrain`. */
  push(chunk: LogChunk): boolean {
    this.items.push(chunk);
    this.wake();
    if (this.items.length >= execOutputChunksMax) this.full = true;
    return !this.full;
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LogChunk> {
    for (;;) {
      const item = this.items.shift();
      if (this.full && this.items.length <= execOutputChunksMax / 2) {
        this.full = false;
        this.onDrain();
      }
      if (item !== undefined) yield item;
      else if (this.ended) return;
      else await new Promise<void>((r) => (this.waiter = r));
    }
  }
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Watched {
  /** Resolves once the exit is recorded in the state file. */
  finished: Promise<void>;
  pump: LogPump;
  /** Our child (exit code known), or undefined for an adopted process. */
  child?: ChildProcess;
  /** Set before SIGKILL so an adopted process that vanishes is recorded as 137. */
  killed: boolean;
}

export class ProcessRuntime implements ContainerRuntime {
  readonly kind = 'process' as const;
  private readonly node: string;
  private readonly root: string;
  private readonly nodeIp: string | undefined;
  private readonly nowMs: () => number;
  private readonly busyboxPaths: readonly string[];
  private readonly logPollMs: number;
  /** Running containers this instance started or adopted, by id. */
  private readonly watched = new Map<string, Watched>();
  /** `events` subscribers: told the pod uid of every recorded exit of a watched container. */
  private readonly exitListeners = new Set<(podUid: string) => void>();
  private closed = false;

  constructor(opts: ProcessRuntimeOptions) {
    this.node = opts.node;
    this.root = opts.root;
    this.nodeIp = opts.nodeIp;
    this.nowMs = opts.nowMs ?? Date.now;
    this.busyboxPaths = opts.busyboxPaths ?? busyboxCandidates;
    this.logPollMs = Math.min(Math.max(opts.logPollMs ?? 100, 1), logPollMsMax);
  }

  /**
   * Lets go of every process without stopping it (what `kill -9` of the agent does): stops
   * reading their output and recording their exits. A new instance over the same root adopts them.
   */
  close(): void {
    this.closed = true;
    for (const w of this.watched.values()) {
      w.pump.close();
      w.child?.unref();
    }
    this.watched.clear();
    this.exitListeners.clear();
  }

  /**
   * Reports the exit of every container this instance watches: its children (their 'exit'),
   * and the processes it adopted (found gone by a poll of /proc every {@link adoptedExitPollMs}
   * ms, or by the end of their output). A running container is watched once this instance
   * started it or once it was read (listed, inspected) after an adoption; the exit is reported
   * after it is recorded, so a pass triggered by it sees the exited container.
   */
  events(onExit: (podUid: string) => void): () => void {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const listener = (podUid: string) => onExit(podUid);
    this.exitListeners.add(listener);
    return () => {
      this.exitListeners.delete(listener);
    };
  }

  async version(): Promise<string> {
    return 'process';
  }

  async ensureImage(image: string, _policy: PullPolicy): Promise<void> {
    if (!baseImageNames.has(image)) {
      throw new ImagePullError(
        image,
        `the process runtime runs host commands; image ${image} cannot be used`,
      );
    }
    for (const path of this.busyboxPaths) {
      if (
        await access(path, fsc.X_OK).then(
          () => true,
          () => false,
        )
      )
        return;
    }
    throw new ImagePullError(
      image,
      `no busybox binary on this host (looked in ${this.busyboxPaths.join(', ')})`,
    );
  }

  async runSandbox(spec: SandboxSpec): Promise<SandboxStatus> {
    const existing = await this.readSandbox(spec.podUid);
    if (existing !== undefined) return this.sandboxStatus(existing);
    if (!isSafeSegment(spec.podUid))
      throw new Error(`pod ${spec.name}: uid ${spec.podUid} is not a safe file name`);
    await mkdir(this.podDir(spec.podUid), { recursive: true });
    const record: SandboxRecord = {
      id: `sandbox-${spec.podUid}`,
      podUid: spec.podUid,
      name: spec.name,
      namespace: spec.namespace,
      node: this.node,
      hostname: (spec.hostname ?? spec.name).slice(0, 63),
      createdAt: rfc3339Nanos(this.nowMs()),
    };
    await this.writeJson(join(this.podDir(spec.podUid), 'sandbox.json'), record);
    return this.sandboxStatus(record);
  }

  async startContainer(podUid: string, spec: ContainerSpec): Promise<ContainerStatus> {
    const sandbox = await this.readSandbox(podUid);
    if (sandbox === undefined) throw new Error(`pod ${podUid}: no sandbox on node ${this.node}`);
    if (!isSafeSegment(spec.name)) throw new Error(`container ${spec.name}: name is not a safe file name`);
    const id = `${podUid}/${spec.name}-${spec.restartCount}`;
    const base = this.pathOf(id);
    if (await this.readRecord(id)) throw new Error(`container ${id}: already exists on node ${this.node}`);
    const argv = [...(spec.command ?? []), ...(spec.args ?? [])];
    if (argv.length === 0) {
      throw new Error(
        `container ${spec.name}: command is required (the process runtime does not read images)`,
      );
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOSTNAME: sandbox.hostname,
    };
    for (const e of spec.env ?? []) env[e.name] = e.value;
    const record: ContainerRecord = {
      id,
      podUid,
      name: spec.name,
      image: spec.image,
      restartCount: spec.restartCount,
      node: this.node,
      argv,
      cwd: spec.workingDir ?? this.podDir(podUid),
      env,
      startedAt: rfc3339Nanos(this.nowMs()),
    };

    await Promise.all(
      (['stdout', 'stderr'] as const).map(async (s) => {
        await rm(`${base}.${s}.fifo`, { force: true });
        await execFileAsync('mkfifo', ['-m', '600', `${base}.${s}.fifo`]);
      }),
    );
    // The child's ends are opened read-write so it holds a reader itself (no SIGPIPE when the
    // agent dies); ours are opened after them so they never see a writer-less FIFO (EOF).
    const childOut = await openRaw(`${base}.stdout.fifo`, fsc.O_RDWR);
    const childErr = await openRaw(`${base}.stderr.fifo`, fsc.O_RDWR);
    let child: ChildProcess;
    try {
      const pump = await this.openPump(base);
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: record.cwd,
        env,
        detached: true,
        stdio: ['ignore', childOut, childErr],
      });
      const spawnError = await new Promise<Error | undefined>((resolve) => {
        child.once('spawn', () => resolve(undefined));
        child.once('error', resolve);
      });
      if (spawnError !== undefined || child.pid === undefined) {
        pump.close();
        record.exitCode = 128;
        record.reason = 'StartError';
        record.finishedAt = rfc3339Nanos(this.nowMs());
        await this.writeJson(`${base}.json`, record);
        const message = spawnError?.message ?? 'no pid';
        await writeFile(`${base}.log`, `${record.finishedAt} stderr F ${message}\n`, { flag: 'a' });
        return this.statusOf(record);
      }
      // Listened for at once: a short command may exit before the record is written.
      const exit = new Promise<ChildExit>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      child.unref();
      record.pid = child.pid;
      record.procStartTicks = (await procStat(child.pid))?.startTicks;
      await this.writeJson(`${base}.json`, record);
      this.watch(record, pump, { child, exit });
    } finally {
      await closeRaw(childOut);
      await closeRaw(childErr);
    }
    return this.statusOf(record);
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    const record = await this.readRecord(id);
    if (record === undefined || record.exitCode !== undefined || record.reason !== undefined) return;
    const w = await this.adoptIfRunning(record);
    if (w === undefined) return;
    signalGroup(record.pid!, 'SIGTERM');
    if (await this.waitFinished(w, graceSeconds * 1000)) return;
    w.killed = true;
    signalGroup(record.pid!, 'SIGKILL');
    if (!(await this.waitFinished(w, killWaitMsMax))) {
      throw new Error(`container ${id}: pid ${record.pid} still runs ${killWaitMsMax} ms after SIGKILL`);
    }
  }

  async removeContainer(id: string): Promise<void> {
    const record = await this.readRecord(id);
    if (record === undefined) return;
    if (record.exitCode === undefined && record.reason === undefined) await this.stopContainer(id, 0);
    const base = this.pathOf(id);
    await Promise.all(
      ['.json', '.log', '.stdout.fifo', '.stderr.fifo'].map((ext) => rm(`${base}${ext}`, { force: true })),
    );
  }

  async removePod(podUid: string, graceSeconds: number): Promise<void> {
    const apps = await this.listContainers({ podUid });
    await Promise.all(apps.map((c) => this.stopContainer(c.id, graceSeconds)));
    await Promise.all(apps.map((c) => this.removeContainer(c.id)));
    if (isSafeSegment(podUid)) await rm(this.podDir(podUid), { recursive: true, force: true });
  }

  async listContainers(filter: { podUid?: string } = {}): Promise<ContainerStatus[]> {
    const pods = filter.podUid !== undefined ? [filter.podUid] : await this.listPods();
    const out: ContainerStatus[] = [];
    for (const podUid of pods) {
      if (!isSafeSegment(podUid)) continue;
      const files = await readdir(this.podDir(podUid)).catch(() => [] as string[]);
      for (const f of files) {
        if (!f.endsWith('.json') || f === 'sandbox.json') continue;
        const record = await this.readRecord(`${podUid}/${f.slice(0, -'.json'.length)}`);
        if (record !== undefined && record.node === this.node) out.push(await this.refresh(record));
      }
    }
    return out;
  }

  async listPods(): Promise<string[]> {
    const dirs = await readdir(join(this.root, 'pods')).catch(() => [] as string[]);
    const out: string[] = [];
    for (const d of dirs) {
      const s = isSafeSegment(d) ? await this.readSandbox(d) : undefined;
      if (s !== undefined) out.push(d);
    }
    return out;
  }

  async inspect(id: string): Promise<ContainerStatus> {
    return this.refresh(await this.mustRecord(id));
  }

  async *logs(id: string, opts: LogOptions = {}): AsyncIterable<LogChunk> {
    // Adopts a running container first, so output it wrote while no agent read it shows up.
    let record = await this.refreshRecord(await this.mustRecord(id));
    const since = opts.sinceTime !== undefined ? parseTime(opts.sinceTime) : undefined;
    if (opts.sinceTime !== undefined && Number.isNaN(since)) {
      throw new Error(`logs of container ${id}: sinceTime ${opts.sinceTime} is not an RFC 3339 time`);
    }
    const reader = new LogFileReader(`${this.pathOf(id)}.log`);
    const toChunk = (e: LogEntry): LogChunk => {
      const text = e.partial ? e.text : Buffer.concat([e.text, Buffer.from('\n')]);
      return {
        stream: e.stream,
        data: opts.timestamps ? Buffer.concat([Buffer.from(`${e.time} `), text]) : text,
      };
    };
    const wanted = (e: LogEntry) => since === undefined || parseTime(e.time) >= since;
    let entries = (await reader.readNew()).filter(wanted);
    if (opts.tailLines !== undefined) entries = tail(entries, opts.tailLines);
    for (const e of entries) yield toChunk(e);
    if (!opts.follow) return;
    for (;;) {
      record = (await this.readRecord(id)) ?? record;
      const w = this.watched.get(id);
      const exited = record.exitCode !== undefined || record.reason !== undefined;
      if (!exited) await this.adoptIfRunning(record);
      if (exited && w === undefined) {
        for (const e of (await reader.readNew()).filter(wanted)) yield toChunk(e);
        return;
      }
      await sleep(this.logPollMs);
      for (const e of (await reader.readNew()).filter(wanted)) yield toChunk(e);
    }
  }

  async exec(id: string, opts: ExecOptions): Promise<ExecSession> {
    const record = await this.refreshRecord(await this.mustRecord(id));
    if (record.exitCode !== undefined || record.reason !== undefined) {
      throw new Error(`container ${id}: is not running, cannot exec`);
    }
    const [cmd, ...args] = opts.command;
    if (cmd === undefined) throw new Error(`exec in container ${id}: command is empty`);
    const child = spawn(cmd, args, {
      cwd: record.cwd,
      env: record.env,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const output = new ChunkQueue(() => {
      child.stdout?.resume();
      child.stderr?.resume();
    });
    // A tty is not emulated: with one, stderr is merged into stdout as a tty would show it.
    const stderrName = opts.tty ? 'stdout' : 'stderr';
    child.stdout?.on('data', (d: Buffer) => {
      if (!output.push({ stream: 'stdout', data: d })) child.stdout?.pause();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (!output.push({ stream: stderrName, data: d })) child.stderr?.pause();
    });
    child.stdin?.on('error', () => undefined);
    const exitCode = new Promise<number>((resolve) => {
      child.once('error', (err) => {
        output.push({ stream: stderrName, data: Buffer.from(`${err.message}\n`) });
        output.end();
        resolve(127);
      });
      child.once('close', (code, signal) => {
        output.end();
        resolve(code ?? 128 + (signal ? (osc.signals[signal] ?? 0) : 0));
      });
    });
    return {
      output,
      write: (data) => {
        child.stdin?.write(data);
      },
      end: () => {
        child.stdin?.end();
      },
      exitCode,
      kill: () => {
        child.kill('SIGKILL');
      },
    };
  }

  async stats(id: string): Promise<ContainerStats> {
    const record = await this.refreshRecord(await this.mustRecord(id));
    const timestamp = rfc3339Nanos(this.nowMs());
    if (record.pid === undefined || record.exitCode !== undefined || record.reason !== undefined) {
      return { cpuNanos: 0, memoryBytes: 0, timestamp };
    }
    // Every process of the container's group (the main process and what it started).
    let ticks = 0;
    let memoryBytes = 0;
    const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
    for (const p of pids) {
      const stat = await procStat(Number(p));
      if (stat === undefined || stat.pgrp !== record.pid) continue;
      ticks += stat.cpuTicks;
      const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
      const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (rss) memoryBytes += Number(rss[1]) * 1024;
    }
    return { cpuNanos: ticks * nanosPerTick, memoryBytes, timestamp };
  }

  // ---- internals ----

  private podDir(podUid: string): string {
    return join(this.root, 'pods', podUid);
  }

  /** The container's files without extension; throws for an id this driver never made. */
  private pathOf(id: string): string {
    const [podUid, rest, extra] = id.split('/');
    if (podUid === undefined || rest === undefined || extra !== undefined || !isSafeSegment(podUid)) {
      throw new Error(`container ${id}: not a process runtime container id`);
    }
    if (!isSafeSegment(rest) || !/-\d+$/.test(rest)) {
      throw new Error(`container ${id}: not a process runtime container id`);
    }
    return join(this.podDir(podUid), rest);
  }

  private async readSandbox(podUid: string): Promise<SandboxRecord | undefined> {
    if (!isSafeSegment(podUid)) return undefined;
    const s = await this.readJson<SandboxRecord>(join(this.podDir(podUid), 'sandbox.json'));
    return s?.node === this.node ? s : undefined;
  }

  private sandboxStatus(s: SandboxRecord): SandboxStatus {
    return { id: s.id, running: true, ...(this.nodeIp !== undefined ? { ip: this.nodeIp } : {}) };
  }

  private async readRecord(id: string): Promise<ContainerRecord | undefined> {
    return this.readJson<ContainerRecord>(`${this.pathOf(id)}.json`);
  }

  private async mustRecord(id: string): Promise<ContainerRecord> {
    const r = await this.readRecord(id);
    if (r === undefined) throw new Error(`container ${id}: not found on node ${this.node}`);
    return r;
  }

  private async readJson<T>(path: string): Promise<T | undefined> {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  /** Atomic: a reader (or a new agent after a crash) sees the old or the new file, never half. */
  private async writeJson(path: string, value: unknown): Promise<void> {
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(value));
    await rename(tmp, path);
  }

  private async refresh(record: ContainerRecord): Promise<ContainerStatus> {
    return this.statusOf(await this.refreshRecord(record));
  }

  /** The record with the exit filled in if the process is gone; adopts it if it still runs. */
  private async refreshRecord(record: ContainerRecord): Promise<ContainerRecord> {
    if (record.exitCode !== undefined || record.reason !== undefined) return record;
    const w = await this.adoptIfRunning(record);
    if (w !== undefined) return record;
    return (await this.readRecord(record.id)) ?? record;
  }

  private async isOurProcess(record: ContainerRecord): Promise<boolean> {
    if (record.pid === undefined) return false;
    const stat = await procStat(record.pid);
    return (
      stat !== undefined &&
      stat.state !== 'Z' &&
      stat.state !== 'X' &&
      stat.startTicks === record.procStartTicks
    );
  }

  /**
   * The watch over a running container: the existing one, or a new one reading its FIFOs (it
   * was started by an earlier instance). Undefined, with the exit recorded, if it is gone.
   */
  private async adoptIfRunning(record: ContainerRecord): Promise<Watched | undefined> {
    const existing = this.watched.get(record.id);
    if (existing !== undefined) return existing;
    if (!(await this.isOurProcess(record))) {
      await this.recordLostExit(record);
      return undefined;
    }
    if (this.closed) return undefined;
    const again = this.watched.get(record.id); // another call adopted it while we awaited
    if (again !== undefined) return again;
    const pump = await this.openPump(this.pathOf(record.id));
    return this.watch(record, pump, undefined);
  }

  private async openPump(base: string): Promise<LogPump> {
    const log = await open(`${base}.log`, 'a');
    const stdout = await openRaw(`${base}.stdout.fifo`, fsc.O_RDONLY | fsc.O_NONBLOCK);
    const stderr = await openRaw(`${base}.stderr.fifo`, fsc.O_RDONLY | fsc.O_NONBLOCK);
    return new LogPump({ stdout, stderr }, log, this.nowMs);
  }

  private watch(
    record: ContainerRecord,
    pump: LogPump,
    own: { child: ChildProcess; exit: Promise<ChildExit> } | undefined,
  ): Watched {
    let finish!: () => void;
    const w: Watched = {
      finished: new Promise<void>((r) => (finish = r)),
      pump,
      killed: false,
      ...(own !== undefined ? { child: own.child } : {}),
    };
    this.watched.set(record.id, w);
    const settle = async (exit: { exitCode?: number; reason: string }) => {
      // Let go (close): the group is no longer this instance's to kill, nor the exit to record.
      if (this.closed) return;
      // The main process is gone: kill the rest of its group, as a container's init dying does.
      signalGroup(record.pid!, 'SIGKILL');
      await Promise.race([pump.done, sleep(drainWaitMsMax)]);
      pump.close();
      if (this.closed || this.watched.get(record.id) !== w) return;
      // Recorded before the watch ends, so no reader takes the exit for a lost process. A record
      // removed meanwhile (the pod went, perhaps through another instance) is not written again.
      try {
        const current = await this.readRecord(record.id);
        if (current !== undefined && current.exitCode === undefined && current.reason === undefined) {
          await this.writeJson(`${this.pathOf(record.id)}.json`, {
            ...current,
            ...exit,
            finishedAt: rfc3339Nanos(this.nowMs()),
          });
        }
      } catch {
        // The pod directory went while we wrote: nothing is left to record the exit in.
      } finally {
        this.watched.delete(record.id);
        finish();
      }
      for (const listener of [...this.exitListeners]) {
        try {
          listener(record.podUid);
        } catch {
          // A subscriber's failure is its own; the others are still told.
        }
      }
    };
    if (own !== undefined) {
      void own.exit.then(({ code, signal }) => {
        const exitCode = code ?? 128 + (signal ? (osc.signals[signal] ?? 0) : 0);
        void settle({ exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' });
      });
    } else {
      // Not our child, so not waitable: the process is looked up in /proc every
      // adoptedExitPollMs, and more often once its FIFOs reached EOF (the last process holding
      // them exited; processes it started may hold them longer than it lives).
      let outputEnded = false;
      const ended = pump.done.then(() => {
        outputEnded = true;
      });
      void (async () => {
        while (!this.closed && this.watched.get(record.id) === w && (await this.isOurProcess(record))) {
          await (outputEnded ? sleep(exitPollMs) : Promise.race([sleep(adoptedExitPollMs), ended]));
        }
        if (this.closed || this.watched.get(record.id) !== w) return;
        await settle(w.killed ? { exitCode: 137, reason: 'Error' } : { reason: 'ContainerStatusUnknown' });
      })();
    }
    return w;
  }

  /** Records the exit of a process that ended while no instance watched it. */
  private async recordLostExit(record: ContainerRecord): Promise<void> {
    const current = (await this.readRecord(record.id)) ?? record;
    if (current.exitCode !== undefined || current.reason !== undefined || this.closed) return;
    await this.writeJson(`${this.pathOf(record.id)}.json`, {
      ...current,
      reason: 'ContainerStatusUnknown',
      finishedAt: rfc3339Nanos(this.nowMs()),
    });
  }

  private async waitFinished(w: Watched, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    const done = await Promise.race([w.finished.then(() => true), timeout]);
    clearTimeout(timer);
    return done;
  }

  private statusOf(r: ContainerRecord): ContainerStatus {
    const exited = r.exitCode !== undefined || r.reason !== undefined;
    return {
      id: r.id,
      podUid: r.podUid,
      name: r.name,
      image: r.image,
      restartCount: r.restartCount,
      phase: exited ? 'exited' : r.pid !== undefined ? 'running' : 'unknown',
      startedAt: r.startedAt,
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      ...(r.finishedAt !== undefined ? { finishedAt: r.finishedAt } : {}),
    };
  }
}

interface LogEntry {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: Buffer;
}

/** Reads a CRI-format log file incrementally (whole lines only). */
class LogFileReader {
  private offset = 0;
  private rest: Buffer = Buffer.alloc(0);

  constructor(private readonly path: string) {}

  async readNew(): Promise<LogEntry[]> {
    const fh = await open(this.path, 'r').catch(() => undefined);
    if (fh === undefined) return [];
    const chunks: Buffer[] = [this.rest];
    try {
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        chunks.push(buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
    const all = Buffer.concat(chunks);
    const out: LogEntry[] = [];
    let start = 0;
    for (let nl = all.indexOf(0x0a, start); nl >= 0; nl = all.indexOf(0x0a, start)) {
      const line = all.subarray(start, nl);
      start = nl + 1;
      const a = line.indexOf(0x20);
      const b = line.indexOf(0x20, a + 1);
      const c = line.indexOf(0x20, b + 1);
      if (a < 0 || b < 0 || c < 0) continue;
      const stream = line.subarray(a + 1, b).toString();
      out.push({
        time: line.subarray(0, a).toString(),
        stream: stream === 'stderr' ? 'stderr' : 'stdout',
        partial: line.subarray(b + 1, c).toString() === 'P',
        text: line.subarray(c + 1),
      });
    }
    this.rest = all.subarray(start);
    return out;
  }
}

/** The entries of the last `lines` lines (a line is P entries ended by an F entry or the end). */
function tail(entries: LogEntry[], lines: number): LogEntry[] {
  if (lines <= 0) return [];
  let seen = 0;
  for (let i = entries.length - 1; i >= 0; i -= 1) {
    if (!entries[i]!.partial || i === entries.length - 1) {
      seen += 1;
      if (seen > lines) return entries.slice(i + 1);
    }
  }
  return entries;
}

/**
 * Spawns `cox agent` as a real process for the multi-process agent tests: waits for its ready
 * line, appends its stderr to a log file, and kills (SIGKILL) or stops (SIGTERM) it by its own
 * PID. Every child is tracked by cluster.ts's exit hook, so a failing test leaves no orphan.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { colocatedNodeFlags } from '../../cli/node-flags.js';
import { repoRoot, trackChild, waitForExit } from './cluster.js';
import { masterEntryPath } from './master-cluster.js';

export interface AgentProcessOptions {
  /** The node name (`--name`). */
  name: string;
  /** The masters' gRPC API addresses (`--masters`). */
  masters: string[];
  /** `--data-dir`: kept across restarts of the same agent. */
  dataDir: string;
  /** Stderr of the process is appended here. */
  logPath: string;
  /** `--runtime`. Default docker. */
  runtime?: 'docker' | 'process' | 'hollow';
  /** How long the agent may take to print its ready line. Default 30 s. */
  readyTimeoutMs?: number;
  /**
   * More flags (e.g. `--node-ip`, `--proxy-mode`). Without `--proxy-mode` the agent runs with
   * `--proxy-mode none`: suites that do not test the proxy leave the host's iptables alone
   * (and an agent killed with -9 leaves no rules behind).
   */
  args?: string[];
}

/** The `{ ready: true, ... }` line `cox agent` prints on stdout. */
export interface AgentReadyLine {
  ready: true;
  node: string;
  pid: number;
  runtime: string;
  /** The proxy mode the agent chose. */
  proxy?: string;
}

/** One started `cox agent` process. */
export class AgentProcess {
  private constructor(
    readonly proc: ChildProcess,
    readonly ready: AgentReadyLine,
    private readonly logPath: string,
  ) {}

  /** Spawns the agent and resolves on its ready line (rejects with its stderr tail otherwise). */
  static async start(opts: AgentProcessOptions): Promise<AgentProcess> {
    const args = [
      ...colocatedNodeFlags,
      ...['--import', 'tsx', masterEntryPath, 'agent', '--name', opts.name],
      ...['--masters', opts.masters.join(','), '--runtime', opts.runtime ?? 'docker'],
      ...['--data-dir', opts.dataDir],
      ...(opts.args ?? []),
      ...(opts.args?.includes('--proxy-mode') ? [] : ['--proxy-mode', 'none']),
    ];
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    const log = fs.createWriteStream(opts.logPath, { flags: 'a' });
    log.write(`--- ${new Date().toISOString()} pid ${child.pid}: agent ${opts.name}\n`);
    child.stderr!.pipe(log);
    // A ChildProcess without an 'error' listener would crash this process on a failed spawn or kill.
    child.on('error', (err) =>
      process.stderr.write(`agent ${opts.name} (pid ${child.pid}): ${err.message}\n`),
    );
    const ready = await waitReady(child, opts);
    return new AgentProcess(child, ready, opts.logPath);
  }

  get pid(): number {
    const pid = this.proc.pid;
    if (pid === undefined) throw new Error('agent process has no pid');
    return pid;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** `kill -9` this agent (its own PID) and wait until the OS has reaped it. */
  async kill(): Promise<void> {
    if (!this.running) return;
    process.kill(this.pid, 'SIGKILL');
    if (!(await waitForExit(this.proc, 10_000)))
      throw new Error(`agent pid ${this.pid} did not die on SIGKILL`);
  }

  /** SIGTERM (the agent stops, its pods keep running), then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    process.kill(this.pid, 'SIGTERM');
    if (!(await waitForExit(this.proc, graceMs)) && this.running) await this.kill();
  }

  /** The last `bytes` of the agent's stderr log (all its starts). */
  logTail(bytes = 4_000): string {
    return tail(this.logPath, bytes);
  }
}

function tail(path: string, bytes: number): string {
  try {
    const buf = fs.readFileSync(path);
    return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
  } catch {
    return '(no log)';
  }
}

function waitReady(child: ChildProcess, opts: AgentProcessOptions): Promise<AgentReadyLine> {
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
        process.kill(child.pid, 'SIGKILL');
      // Give the stderr pipe a moment to reach the file before quoting it.
      setTimeout(
        () =>
          reject(
            new Error(
              `agent ${opts.name} did not start: ${why}\n--- ${opts.logPath} ---\n${tail(opts.logPath, 4_000)}`,
            ),
          ),
        100,
      );
    };
    const timer = setTimeout(() => fail(`no ready line in ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null, signal: string | null): void => fail(`exited (${code ?? signal})`);
    child.once('exit', onExit);
    lines.on('line', (line) => {
      if (settled) return;
      let msg: Partial<AgentReadyLine> | undefined;
      try {
        msg = JSON.parse(line);
      } catch {
        return; // not the ready line
      }
      if (msg?.ready === true) {
        settled = true;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(msg as AgentReadyLine);
      }
    });
  });
}

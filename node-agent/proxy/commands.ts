/**
 * Running the few host commands the proxy needs (`ip`, `iptables-save`, `iptables-restore`):
 * argument vectors only (no shell), bounded output and time, and errors that quote the command
 * and what it said. A command prefix lets tests run everything inside a network namespace they
 * created (`ip netns exec NAME`).
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

/** Output kept per stream; more is an error (a runaway command). */
export const commandOutputBytesMax = 64 * 1024 * 1024;
/** A command that has not finished by then is killed. */
export const commandTimeoutMs = 30_000;

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs `argv` (after `prefix`), feeding `input` on stdin; rejects unless it exits 0. */
export function runCommand(
  argv: readonly string[],
  opts: { prefix?: readonly string[]; input?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const full = [...(opts.prefix ?? []), ...argv];
  const shown = full.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let failed: Error | undefined;
    const take = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > commandOutputBytesMax) {
        failed ??= new CommandError(
          full,
          null,
          '',
          `${shown}: more than ${commandOutputBytesMax} bytes of output`,
        );
        child.kill('SIGKILL');
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', take(out));
    child.stderr.on('data', take(err));
    const timer = setTimeout(() => {
      failed ??= new CommandError(
        full,
        null,
        '',
        `${shown}: no exit within ${opts.timeoutMs ?? commandTimeoutMs} ms`,
      );
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? commandTimeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(full, null, '', `${shown}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (failed !== undefined) reject(failed);
      else if (code !== 0)
        reject(
          new CommandError(full, code, stderr, `${shown}: exit ${code}: ${stderr.trim() || stdout.trim()}`),
        );
      else resolve({ stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a command that exits without reading stdin
    child.stdin.end(opts.input ?? '');
  });
}

/** POSIX shell quoting of one word. */
function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs commands through one long-lived `/bin/sh` instead of spawning each from this process:
 * forking a large Node process costs tens of milliseconds (hundreds on a loaded machine), a
 * fork of a small shell a few. Commands run one at a time, in order; stderr is merged into the
 * output; input is passed as a quoted here-document (a missing final newline is added). A
 * command past its timeout kills the
 * shell's process group (which this class started) and fails; the next command starts a new
 * shell. `close` ends the shell (it also ends by itself when this process dies: its stdin closes).
 */
export class CommandShell {
  private shell: ChildProcessWithoutNullStreams | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private closed = false;

  constructor(private readonly prefix: readonly string[] = []) {}

  run(argv: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
    const next = this.queue.then(() => this.exec(argv, opts));
    this.queue = next.catch(() => {});
    return next;
  }

  close(): void {
    this.closed = true;
    this.shell?.stdin.end();
    this.shell = undefined;
  }

  private start(): ChildProcessWithoutNullStreams {
    const argv = [...this.prefix, '/bin/sh'];
    const sh = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    sh.stdin.on('error', () => {});
    sh.on('exit', () => {
      if (this.shell === sh) this.shell = undefined;
    });
    this.shell = sh;
    return sh;
  }

  private exec(
    argv: readonly string[],
    opts: { input?: string; timeoutMs?: number },
  ): Promise<CommandResult> {
    const shown = [...this.prefix, ...argv].join(' ');
    if (this.closed)
      return Promise.reject(new CommandError(argv, null, '', `${shown}: the command shell is closed`));
    const sh = this.shell ?? this.start();
    const n = ++this.seq;
    const marker = `__COX_DONE_${process.pid}_${n}`;
    const input = opts.input ?? '';
    const heredoc = `__COX_IN_${process.pid}_${n}`;
    const script = [
      `{ ${argv.map(quote).join(' ')} <<'${heredoc}'`,
      `${input}${input.endsWith('\n') || input === '' ? '' : '\n'}${heredoc}`,
      `} 2>&1; printf '\\n${marker} %s\\n' "$?"`,
      '',
    ].join('\n');
    return new Promise((resolve, reject) => {
      let out = '';
      let done = false;
      const finish = (err: Error | undefined, result?: CommandResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sh.stdout.off('data', onData);
        sh.off('exit', onExit);
        if (err) reject(err);
        else resolve(result as CommandResult);
      };
      const onData = (d: Buffer) => {
        out += d.toString('utf8');
        if (out.length > commandOutputBytesMax) {
          this.kill(sh);
          finish(
            new CommandError(argv, null, '', `${shown}: more than ${commandOutputBytesMax} bytes of output`),
          );
          return;
        }
        const at = out.indexOf(`\n${marker} `);
        if (at < 0) return;
        const end = out.indexOf('\n', at + 1 + marker.length);
        if (end < 0) return;
        const code = Number(out.slice(at + 1 + marker.length + 1, end));
        const output = out.slice(0, at);
        if (code === 0) finish(undefined, { stdout: output, stderr: '' });
        else finish(new CommandError(argv, code, output, `${shown}: exit ${code}: ${output.trim()}`));
      };
      const onExit = () =>
        finish(new CommandError(argv, null, out, `${shown}: the command shell exited: ${out.trim()}`));
      const timeoutMs = opts.timeoutMs ?? commandTimeoutMs;
      const timer = setTimeout(() => {
        this.kill(sh);
        finish(new CommandError(argv, null, out, `${shown}: no exit within ${timeoutMs} ms`));
      }, timeoutMs);
      sh.stdout.on('data', onData);
      sh.stderr.resume();
      sh.once('exit', onExit);
      sh.stdin.write(script);
    });
  }

  /** Kills the shell's process group (the shell and the command it runs). */
  private kill(sh: ChildProcessWithoutNullStreams): void {
    if (this.shell === sh) this.shell = undefined;
    if (sh.pid !== undefined) {
      try {
        process.kill(-sh.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Running the few host commands the proxy needs (`ip`, `iptables-save`, `iptables-restore`):
 * argument vectors only (no shell), bounded output and time, and errors that quote the command
 * and what it said. A command prefix lets tests run everything inside a network namespace they
 * created (`ip netns exec NAME`).
 */

import { spawn } from 'node:child_process';

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

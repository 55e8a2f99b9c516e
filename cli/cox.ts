/**
 * `cox`: the Coxswain command line (`node --import tsx cli/cox.ts ...`, or the `cox` bin).
 * The one place the CLI touches the real process: argv, stdio, environment, clock, files.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { type CliDeps, runCox } from './main.js';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

// `cox get pods | head`: a closed pipe ends the command quietly, as it does for other tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/** Writes, then waits for a drain when the stream's buffer is full (logs -f into a slow pipe). */
function writeDrained(stream: NodeJS.WriteStream, data: Uint8Array): Promise<void> {
  if (stream.write(data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

const deps: CliDeps = {
  env: process.env,
  homeDir: homedir(),
  nowMs: () => Date.now(),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  terminal: {
    writeOut: (data) => writeDrained(process.stdout, data),
    writeErr: (data) => writeDrained(process.stderr, data),
    // Lazily: touching process.stdin creates its handle, which other verbs do not need.
    get stdin() {
      return process.stdin;
    },
    size: () =>
      process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : undefined,
    // Node emits 'resize' on a TTY stdout when the terminal's size changes (SIGWINCH).
    onResize: (cb) => {
      if (!process.stdout.isTTY) return () => {};
      const emit = () => cb({ cols: process.stdout.columns, rows: process.stdout.rows });
      process.stdout.on('resize', emit);
      return () => process.stdout.off('resize', emit);
    },
  },
  onInterrupt: (cb) => {
    process.once('SIGINT', cb);
    process.once('SIGTERM', cb);
    return () => {
      process.off('SIGINT', cb);
      process.off('SIGTERM', cb);
    };
  },
  files: {
    listDir: (path) => (isDirectory(path) ? readdirSync(path) : undefined),
    readFile: (path) => readFileSync(path, 'utf8'),
    readIfExists: (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    readStdin: () => text(process.stdin),
    join,
  },
};

const code = await runCox(process.argv.slice(2), deps);
process.exitCode = code;
// Sockets are closed by now; should anything still hold the loop open, do not hang the shell.
setTimeout(() => process.exit(code), 2_000).unref();

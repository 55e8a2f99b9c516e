/**
 * `cox logs`, `cox exec` and `cox top`: stream ops of the gateway (actors/pod-streams.ts) that
 * a master serves by reaching the pod's node agent. Output bytes go to the terminal as they
 * come; a slow terminal slows the stream all the way to the agent (each write is awaited).
 */

import { ApiError, ApiErrorCode } from '../actors/api.js';
import type { NodeStatsFrame, PodStatsFrame } from '../actors/pod-streams.js';
import { parseQuantity } from '../core/quantity.js';
import type { ClientStream } from './client.js';
import { UsageError } from './errors.js';
import { formatTable } from './printers.js';

/** What the verbs need from the masters. */
export interface StreamApi {
  stream(op: string, args: Record<string, unknown>): Promise<ClientStream>;
}

/** The process's terminal as the verbs use it (the real one is in cli/cox.ts). */
export interface Terminal {
  /** Resolves once the bytes are accepted (after a drain when the pipe is full). */
  writeOut(data: Uint8Array): Promise<void>;
  writeErr(data: Uint8Array): Promise<void>;
  /** stdin, for `exec -i`. */
  stdin?: {
    readonly isTTY?: boolean;
    setRawMode?(raw: boolean): void;
    on(event: 'data', cb: (chunk: Buffer) => void): unknown;
    on(event: 'end', cb: () => void): unknown;
    pause(): unknown;
    resume(): unknown;
  };
  /** The terminal's size when stdout is a TTY. */
  size?(): { cols: number; rows: number } | undefined;
  /** Calls `cb` with the new size whenever the terminal is resized (SIGWINCH); returns the unsubscribe. */
  onResize?(cb: (size: { cols: number; rows: number }) => void): () => void;
}

export interface LogsOptions {
  namespace?: string;
  container?: string;
  follow?: boolean;
  tail?: string;
  since?: string;
  timestamps?: boolean;
  previous?: boolean;
}

/** `30s`, `5m`, `2h`, `1h30m` → seconds. */
export function parseSince(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (m === null || text.trim() === '' || (m[1] ?? m[2] ?? m[3]) === undefined) {
    throw new UsageError(`--since: "${text}" is not a duration like 30s, 5m or 2h`);
  }
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

function parseTail(text: string | undefined): number | undefined {
  if (text === undefined || text === '-1') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--tail: "${text}" must be a number of lines (>= 0)`);
  return n;
}

/** Writes output frames until the stream ends; returns the exit code frame's value, if any. */
async function pump(stream: ClientStream, term: Terminal): Promise<number | undefined> {
  let exitCode: number | undefined;
  for (;;) {
    const f = await stream.next();
    if (f === undefined) return exitCode;
    if (typeof f.exitCode === 'number') exitCode = f.exitCode;
    if (typeof f.data === 'string') {
      const bytes = Buffer.from(f.data, 'base64');
      await (f.stream === 'stderr' ? term.writeErr(bytes) : term.writeOut(bytes));
    }
  }
}

export async function runLogs(api: StreamApi, pod: string, o: LogsOptions, term: Terminal): Promise<number> {
  const args: Record<string, unknown> = { namespace: o.namespace ?? 'default', pod };
  if (o.container !== undefined) args.container = o.container;
  if (o.follow) args.follow = true;
  const tail = parseTail(o.tail);
  if (tail !== undefined) args.tailLines = tail;
  if (o.since !== undefined) args.sinceSeconds = parseSince(o.since);
  if (o.timestamps) args.timestamps = true;
  if (o.previous) args.previous = true;
  const stream = await api.stream('logs', args);
  try {
    await pump(stream, term);
  } finally {
    stream.close();
  }
  return 0;
}

export interface ExecOptions {
  namespace?: string;
  container?: string;
  stdin?: boolean;
  tty?: boolean;
}

/** Waits for the `{ started }` frame: until then, nothing was sent and another master may be tried. */
async function started(stream: ClientStream): Promise<void> {
  const first = await stream.next();
  if (first === undefined || first.started !== true)
    throw new ApiError(ApiErrorCode.Internal, 'exec: the master did not confirm the start of the command');
}

/** Runs the command; resolves with its exit code (cox's own exit code). */
export async function runExec(
  api: StreamApi,
  pod: string,
  command: string[],
  o: ExecOptions,
  term: Terminal,
): Promise<number> {
  if (command.length === 0) throw new UsageError('exec: a command is required after --');
  const stdin = o.stdin ? term.stdin : undefined;
  if (o.stdin && stdin === undefined) throw new UsageError('exec: -i: no stdin to read');
  const tty = o.tty === true;
  const args: Record<string, unknown> = {
    namespace: o.namespace ?? 'default',
    pod,
    command,
    stdin: o.stdin === true,
    tty,
  };
  if (o.container !== undefined) args.container = o.container;
  const stream = await api.stream('exec', args);
  const raw = tty && stdin?.isTTY === true && stdin.setRawMode !== undefined;
  let stopResizes: (() => void) | undefined;
  try {
    await started(stream);
    if (tty) {
      // The remote terminal takes the size of ours, now and whenever ours changes.
      const size = term.size?.();
      if (size !== undefined) stream.input({ resize: size });
      stopResizes = term.onResize?.((next) => stream.input({ resize: next }));
    }
    if (stdin !== undefined) {
      if (raw) stdin.setRawMode?.(true);
      stdin.on('data', (chunk) => stream.input({ stdin: chunk.toString('base64') }));
      stdin.on('end', () => stream.input({ eof: true }));
      stdin.resume();
    }
    const exitCode = await pump(stream, term);
    if (exitCode === undefined)
      throw new ApiError(ApiErrorCode.Unavailable, `pod/${pod}: exec ended without an exit code`);
    return exitCode;
  } finally {
    stopResizes?.();
    if (raw) stdin?.setRawMode?.(false);
    stdin?.pause();
    stream.close();
  }
}

function cpuText(millis: number): string {
  return `${Math.round(millis)}m`;
}

function memoryText(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)}Mi`;
}

function percent(used: number, capacity: string | undefined, milli: boolean): string {
  if (capacity === undefined) return '<unknown>';
  try {
    const q = parseQuantity(capacity);
    const total = Number(milli ? q.milliValue() : q.value());
    return total > 0 ? `${Math.round((used / total) * 100)}%` : '<unknown>';
  } catch {
    return '<unknown>';
  }
}

async function oneFrame(api: StreamApi, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const stream = await api.stream('stats', args);
  try {
    const f = await stream.next();
    if (f === undefined) throw new ApiError(ApiErrorCode.Internal, 'top: the master sent no stats');
    return f;
  } finally {
    stream.close();
  }
}

function warnUnreachable(list: { node: string; reason: string }[], stderr: (s: string) => void): void {
  for (const u of list) stderr(`warning: node/${u.node}: no metrics (${u.reason})\n`);
}

/** `cox top pods`: per pod, the sum of its containers. */
export async function runTopPods(
  api: StreamApi,
  o: { namespace?: string; allNamespaces?: boolean; pod?: string },
  out: { stdout(s: string): void; stderr(s: string): void },
): Promise<number> {
  const args: Record<string, unknown> = { target: 'pods' };
  if (!o.allNamespaces) args.namespace = o.namespace ?? 'default';
  if (o.pod !== undefined) args.pod = o.pod;
  const frame = (await oneFrame(api, args)) as unknown as PodStatsFrame;
  warnUnreachable(frame.unreachable ?? [], out.stderr);
  if (frame.pods.length === 0) {
    out.stderr('No resources found\n');
    return 0;
  }
  const header = ['NAME', 'CPU(cores)', 'MEMORY(bytes)'];
  const rows = frame.pods.map((p) => {
    const cpu = p.containers.reduce((s, c) => s + c.cpuMillis, 0);
    const mem = p.containers.reduce((s, c) => s + c.memoryBytes, 0);
    const cells = [p.name, cpuText(cpu), memoryText(mem)];
    return o.allNamespaces ? [p.namespace, ...cells] : cells;
  });
  out.stdout(formatTable([o.allNamespaces ? ['NAMESPACE', ...header] : header, ...rows]));
  return 0;
}

/** `cox top nodes`: per node, the sum of its running containers, against its capacity. */
export async function runTopNodes(api: StreamApi, out: { stdout(s: string): void; stderr(s: string): void }) {
  const frame = (await oneFrame(api, { target: 'nodes' })) as unknown as NodeStatsFrame;
  warnUnreachable(frame.unreachable ?? [], out.stderr);
  const rows = frame.nodes.map((n) => [
    n.name,
    cpuText(n.cpuMillis),
    percent(n.cpuMillis, n.capacity.cpu, true),
    memoryText(n.memoryBytes),
    percent(n.memoryBytes, n.capacity.memory, false),
  ]);
  if (rows.length === 0) {
    out.stderr('No resources found\n');
    return 0;
  }
  out.stdout(formatTable([['NAME', 'CPU(cores)', 'CPU%', 'MEMORY(bytes)', 'MEMORY%'], ...rows]));
  return 0;
}

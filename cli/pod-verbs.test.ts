import { describe, expect, it } from 'vitest';
import { ApiError } from '../actors/api.js';
import type { ClientStream } from './client.js';
import {
  parseSince,
  runExec,
  runLogs,
  runTopNodes,
  runTopPods,
  type StreamApi,
  type Terminal,
} from './pod-verbs.js';

/** A stream op that yields `frames` then ends (or fails with `error`), recording input. */
function fakeApi(frames: Record<string, unknown>[], error?: unknown) {
  const calls: { op: string; args: Record<string, unknown> }[] = [];
  const inputs: Record<string, unknown>[] = [];
  const api: StreamApi = {
    async stream(op, args) {
      calls.push({ op, args });
      const queue = [...frames];
      const s: ClientStream = {
        next: async () => {
          const f = queue.shift();
          if (f === undefined && error !== undefined) throw error;
          return f;
        },
        input: (b) => inputs.push(b),
        close: () => {},
      };
      return s;
    },
  };
  return { api, calls, inputs };
}

function terminal() {
  const out = { stdout: '', stderr: '' };
  const term: Terminal = {
    writeOut: async (b) => {
      out.stdout += Buffer.from(b).toString();
    },
    writeErr: async (b) => {
      out.stderr += Buffer.from(b).toString();
    },
  };
  return { out, term };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('pod verbs', () => {
  it('parses --since durations and rejects others in one line', () => {
    expect(parseSince('30s')).toBe(30);
    expect(parseSince('5m')).toBe(300);
    expect(parseSince('1h30m')).toBe(5400);
    expect(() => parseSince('5x')).toThrow('--since: "5x" is not a duration like 30s, 5m or 2h');
    expect(() => parseSince('')).toThrow('--since');
  });

  it('logs: sends the options and writes stdout and stderr apart', async () => {
    const { api, calls } = fakeApi([
      { stream: 'stdout', data: b64('a\n') },
      { stream: 'stderr', data: b64('b\n') },
    ]);
    const { out, term } = terminal();
    await runLogs(api, 'web', { follow: true, tail: '2', since: '1m', container: 'c' }, term);
    expect(calls).toEqual([
      {
        op: 'logs',
        args: {
          namespace: 'default',
          pod: 'web',
          container: 'c',
          follow: true,
          tailLines: 2,
          sinceSeconds: 60,
        },
      },
    ]);
    expect(out).toEqual({ stdout: 'a\n', stderr: 'b\n' });
  });

  it('exec: returns the remote exit code; fails when the stream ends without one', async () => {
    const { api } = fakeApi([{ started: true }, { stream: 'stdout', data: b64('hi\n') }, { exitCode: 3 }]);
    const { out, term } = terminal();
    expect(await runExec(api, 'web', ['sh'], {}, term)).toBe(3);
    expect(out.stdout).toBe('hi\n');
    const cut = fakeApi([{ started: true }], new ApiError('Unavailable', 'agent n1: connection lost'));
    await expect(runExec(cut.api, 'web', ['sh'], {}, term)).rejects.toThrow('connection lost');
    const silent = fakeApi([{ started: true }]);
    await expect(runExec(silent.api, 'web', ['sh'], {}, term)).rejects.toThrow(
      'exec ended without an exit code',
    );
  });

  it('exec -t: sends the terminal size at the start and on every resize while the command runs', async () => {
    let onResize: ((size: { cols: number; rows: number }) => void) | undefined;
    let subscriptions = 0;
    const { out, term } = terminal();
    const tty: Terminal = {
      ...term,
      size: () => ({ cols: 100, rows: 40 }),
      onResize: (cb) => {
        subscriptions += 1;
        onResize = cb;
        return () => {
          subscriptions -= 1;
          onResize = undefined;
        };
      },
    };
    const inputs: Record<string, unknown>[] = [];
    const frames: (() => Record<string, unknown> | undefined)[] = [
      () => ({ started: true }),
      () => {
        onResize?.({ cols: 120, rows: 50 }); // the user resizes the window mid-session
        return { stream: 'stdout', data: b64('50 120\r\n') };
      },
      () => ({ exitCode: 0 }),
      () => undefined,
    ];
    const api: StreamApi = {
      async stream() {
        return { next: async () => frames.shift()?.(), input: (b) => inputs.push(b), close: () => {} };
      },
    };
    expect(await runExec(api, 'web', ['sh'], { tty: true }, tty)).toBe(0);
    expect(inputs).toEqual([{ resize: { cols: 100, rows: 40 } }, { resize: { cols: 120, rows: 50 } }]);
    expect(out.stdout).toBe('50 120\r\n');
    expect(subscriptions).toBe(0); // unsubscribed once the command ended
    // Without -t no size is sent, and resizes are not watched.
    const plain = fakeApi([{ started: true }, { exitCode: 0 }]);
    expect(await runExec(plain.api, 'web', ['true'], {}, tty)).toBe(0);
    expect(plain.inputs).toEqual([]);
    expect(subscriptions).toBe(0);
  });

  it('top pods and top nodes print kubectl-like tables', async () => {
    const { out } = terminal();
    const text = { stdout: '', stderr: '' };
    const sink = { stdout: (s: string) => (text.stdout += s), stderr: (s: string) => (text.stderr += s) };
    const pods = fakeApi([
      {
        pods: [
          {
            namespace: 'default',
            name: 'web',
            node: 'n1',
            containers: [
              { name: 'a', cpuMillis: 3, memoryBytes: 2 * 1024 * 1024 },
              { name: 'b', cpuMillis: 2, memoryBytes: 1024 * 1024 },
            ],
          },
        ],
        unreachable: [{ node: 'n2', reason: 'agent not connected to this master' }],
      },
    ]);
    await runTopPods(pods.api, {}, sink);
    expect(text.stdout).toBe('NAME   CPU(cores)   MEMORY(bytes)\nweb    5m           3Mi\n');
    expect(text.stderr).toBe('warning: node/n2: no metrics (agent not connected to this master)\n');
    text.stdout = '';
    const nodes = fakeApi([
      {
        nodes: [
          {
            name: 'n1',
            cpuMillis: 500,
            memoryBytes: 512 * 1024 * 1024,
            capacity: { cpu: '2', memory: '1Gi' },
          },
        ],
        unreachable: [],
      },
    ]);
    await runTopNodes(nodes.api, sink);
    expect(text.stdout).toBe(
      'NAME   CPU(cores)   CPU%   MEMORY(bytes)   MEMORY%\nn1     500m         25%    512Mi           50%\n',
    );
    expect(out.stdout).toBe('');
  });
});

/**
 * What only the process driver does (the shared behaviour is in runtime.conformance.test.ts):
 * adoption across agent deaths with output buffered in the FIFOs, recycled pids, the log file
 * format, start errors.
 */

import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessRuntime } from './process-runtime.js';
import { ImagePullError, type LogChunk } from './runtime.js';

const node = `process-test-${process.pid}`;
let root = '';
const drivers: ProcessRuntime[] = [];
const open = () => {
  const r = new ProcessRuntime({ node, root, logPollMs: 20 });
  drivers.push(r);
  return r;
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function text(stream: AsyncIterable<LogChunk>): Promise<string> {
  let out = '';
  for await (const c of stream) out += new TextDecoder().decode(c.data);
  return out;
}

describe('process runtime', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cox-process-test-'));
  });
  afterAll(async () => {
    const last = open();
    for (const uid of await last.listPods()) await last.removePod(uid, 0);
    for (const r of drivers) r.close();
    await rm(root, { recursive: true, force: true });
  });

  it('keeps output written while no agent reads, and kills an adopted process after the grace period', async () => {
    const first = open();
    const podUid = randomUUID();
    await first.runSandbox({ podUid, namespace: 'default', name: 'adopt', node });
    const c = await first.startContainer(podUid, {
      name: 'stubborn',
      image: 'coxswain/busybox',
      command: ['sh', '-c', 'trap "" TERM; echo first; sleep 0.3; echo second; while :; do sleep 1; done'],
      restartCount: 0,
    });
    await waitFor('first line', async () =>
      (await text(first.logs(c.id))).includes('first') ? true : undefined,
    );
    first.close(); // the agent dies; "second" waits in the FIFO
    await new Promise((r) => setTimeout(r, 500));
    const second = open();
    expect(await second.inspect(c.id)).toMatchObject({ phase: 'running' });
    await waitFor('second line', async () =>
      (await text(second.logs(c.id))) === 'first\nsecond\n' ? true : undefined,
    );
    const t = Date.now();
    await second.stopContainer(c.id, 0.3);
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    // Not our child, so not waitable: but SIGKILL leaves no doubt about the exit code.
    expect(await second.inspect(c.id)).toMatchObject({ phase: 'exited', exitCode: 137, reason: 'Error' });
    const log = await readFile(join(root, 'pods', podUid, 'stubborn-0.log'), 'utf8');
    expect(log).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stdout F first\n/);
  });

  it('holds back an exec whose output nobody reads (bounded buffer), and lets it finish once read', async () => {
    const r = open();
    const podUid = randomUUID();
    await r.runSandbox({ podUid, namespace: 'default', name: 'chatty', node });
    const c = await r.startContainer(podUid, {
      name: 'box',
      image: 'coxswain/busybox',
      command: ['sleep', '30'],
      restartCount: 0,
    });
    const marker = join(root, `chatty-${podUid}`);
    // About 2 MB of output, far beyond the buffered chunks and the pipe, then a marker file.
    const session = await r.exec(c.id, {
      command: [
        'sh',
        '-c',
        `i=0; while [ $i -lt 40000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done; touch ${marker}`,
      ],
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Not read: the command is blocked writing, so it has not reached the end.
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
    const out = await text(session.output);
    expect(out.split('\n')).toHaveLength(40_001);
    expect(out.endsWith('line-39999-padding-padding-padding\n')).toBe(true);
    expect(await session.exitCode).toBe(0);
    await readFile(marker);
    await r.removePod(podUid, 0);
    await rm(marker, { force: true });
  }, 30_000);

  it('reports a process that died unwatched as ContainerStatusUnknown, and never adopts a recycled pid', async () => {
    const first = open();
    const podUid = randomUUID();
    await first.runSandbox({ podUid, namespace: 'default', name: 'lost', node });
    const spec = { image: 'coxswain/busybox', command: ['sleep', '30'], restartCount: 0 };
    const lost = await first.startContainer(podUid, { ...spec, name: 'lost' });
    const recycled = await first.startContainer(podUid, { ...spec, name: 'recycled' });
    first.close();
    const state = (name: string) => join(root, 'pods', podUid, `${name}-0.json`);
    const lostPid = JSON.parse(await readFile(state('lost'), 'utf8')).pid as number;
    process.kill(-lostPid, 'SIGKILL');
    // The recorded pid now names another process (this one), started at another time.
    const rec = JSON.parse(await readFile(state('recycled'), 'utf8'));
    const recycledPid = rec.pid as number;
    await writeFile(state('recycled'), JSON.stringify({ ...rec, pid: process.pid }));
    const second = open();
    const s = await waitFor('lost exit', async () => {
      const st = await second.inspect(lost.id);
      return st.phase === 'exited' ? st : undefined;
    });
    expect(s.reason).toBe('ContainerStatusUnknown');
    expect(s.exitCode).toBeUndefined();
    expect(await second.inspect(recycled.id)).toMatchObject({
      phase: 'exited',
      reason: 'ContainerStatusUnknown',
    });
    await second.removePod(podUid, 0); // must not signal this process
    process.kill(-recycledPid, 'SIGKILL');
  });

  it('reports a command that cannot start as StartError, and refuses other images', async () => {
    const r = open();
    const podUid = randomUUID();
    await r.runSandbox({ podUid, namespace: 'default', name: 'bad', node });
    const s = await r.startContainer(podUid, {
      name: 'missing',
      image: 'coxswain/busybox',
      command: ['/nonexistent/command'],
      restartCount: 0,
    });
    expect(s).toMatchObject({ phase: 'exited', exitCode: 128, reason: 'StartError' });
    expect(await text(r.logs(s.id))).toContain('ENOENT');
    await expect(r.ensureImage('nginx:1.27', 'IfNotPresent')).rejects.toThrow(
      new ImagePullError(
        'nginx:1.27',
        'the process runtime runs host commands; image nginx:1.27 cannot be used',
      ).message,
    );
    await expect(r.startContainer(podUid, { name: 'none', image: 'x', restartCount: 0 })).rejects.toThrow(
      /container none: command is required/,
    );
    await r.removePod(podUid, 0);
  });
});

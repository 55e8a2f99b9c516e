/**
 * The docker driver against the real engine (CI installs and starts Docker; this suite fails,
 * never skips, without one).
 */

import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pod } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { DockerRuntime, DockerStreamDemux, engineTimestamp } from './docker-runtime.js';
import { baseImage, buildImage, ImageBuildError, isStaticElf, listBuildContext } from './images.js';
import { syncPod } from './pod-sync.js';
import { type ContainerStatus, ImagePullError, type LogChunk, runtimeLabels } from './runtime.js';

const node = `test-node-${process.pid}`;
const docker = new Docker();
const runtime = new DockerRuntime({ node, docker });

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How soon a killed tty exec must have ended, output and exit code. */
const execKillMsMax = 3_000;

/** Images this file builds, removed at the end. */
const builtTag = `coxswain-test/build-${process.pid}:1`;
const failedTag = `coxswain-test/build-fails-${process.pid}:1`;

/** A one-container pod running `script` under sh. */
async function runScript(
  name: string,
  script: string,
  extra: { cpuMillis?: number } = {},
): Promise<ContainerStatus> {
  const podUid = randomUUID();
  await runtime.runSandbox({ podUid, namespace: 'default', name, node });
  return runtime.startContainer(podUid, {
    name,
    image: baseImage,
    command: ['sh', '-c', script],
    restartCount: 0,
    ...extra,
  });
}

async function waitExited(id: string): Promise<ContainerStatus> {
  return waitFor(`exit of ${id}`, async () => {
    const s = await runtime.inspect(id);
    return s.phase === 'exited' ? s : undefined;
  });
}

/** All chunks of a finite iterable, as text per stream. */
async function collect(chunks: AsyncIterable<LogChunk>): Promise<{ stdout: string; stderr: string }> {
  const text = { stdout: '', stderr: '' };
  const decoder = new TextDecoder();
  for await (const c of chunks) text[c.stream] += decoder.decode(c.data);
  return text;
}

async function cleanup(): Promise<void> {
  const mine = await docker.listContainers({
    all: true,
    filters: { label: [`${runtimeLabels.node}=${node}`] },
  });
  await Promise.all(
    mine.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}

describe('docker runtime', () => {
  beforeAll(async () => {
    await docker.ping();
    await runtime.ensureImage(baseImage, 'IfNotPresent');
  }, 120_000);
  afterAll(async () => {
    await cleanup();
    for (const tag of [builtTag, failedTag]) {
      await docker
        .getImage(tag)
        .remove({ force: true })
        .catch(() => {});
    }
  }, 60_000);

  it('builds the base image from a static busybox', async () => {
    const info = await docker.getImage(baseImage).inspect();
    expect(info.RepoTags).toContain(baseImage);
    expect(isStaticElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]))).toBe(false);
  });

  it('runs a two-container pod whose containers share localhost, and adopts it from a new driver', async () => {
    const podUid = randomUUID();
    const sandbox = await runtime.runSandbox({ podUid, namespace: 'default', name: 'web', node });
    expect(sandbox.running).toBe(true);
    expect(sandbox.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const web = await runtime.startContainer(podUid, {
      name: 'web',
      image: baseImage,
      command: [
        'sh',
        '-c',
        'mkdir -p /www && echo "hello from $GREETING" > /www/index.html && exec httpd -f -p 8080 -h /www',
      ],
      env: [{ name: 'GREETING', value: 'the web container' }],
      restartCount: 0,
    });
    expect(web.phase).toBe('running');
    const sidecar = await runtime.startContainer(podUid, {
      name: 'sidecar',
      image: baseImage,
      command: [
        'sh',
        '-c',
        'for i in $(seq 1 100); do wget -q -O /tmp/out http://127.0.0.1:8080/ && grep -q "hello from the web container" /tmp/out && exit 0; sleep 0.1; done; exit 1',
      ],
      restartCount: 0,
    });
    const done = await waitFor('sidecar exit', async () => {
      const s = await runtime.inspect(sidecar.id);
      return s.phase === 'exited' ? s : undefined;
    });
    expect(done.exitCode).toBe(0);
    expect(done.reason).toBe('Completed');

    // A new driver (an agent restarted with kill -9) finds the pod and its containers by label.
    const again = new DockerRuntime({ node, docker });
    expect(await again.listPods()).toContain(podUid);
    const adopted = await again.listContainers({ podUid });
    expect(adopted.map((c) => c.name).sort()).toEqual(['sidecar', 'web']);
    expect(adopted.find((c) => c.name === 'web')?.phase).toBe('running');
    const sameSandbox = await again.runSandbox({ podUid, namespace: 'default', name: 'web', node });
    expect(sameSandbox.id).toBe(sandbox.id);

    await again.removePod(podUid, 1);
    expect(await again.listContainers({ podUid })).toEqual([]);
    expect(await again.listPods()).not.toContain(podUid);
  }, 60_000);

  it('creates an app container while its sandbox is still starting, and starts it joined to the sandbox', async () => {
    const podUid = randomUUID();
    const sandboxStart = runtime.runSandbox({ podUid, namespace: 'default', name: 'early', node });
    const id = await runtime.createContainer(podUid, {
      name: 'app',
      image: baseImage,
      command: ['sh', '-c', 'hostname; exec sleep 3600'],
      restartCount: 0,
    });
    expect((await runtime.inspect(id)).phase).toBe('created');
    const sandbox = await sandboxStart;
    const started = await runtime.startCreated(id);
    expect(started).toMatchObject({ id, podUid, name: 'app', phase: 'running', restartCount: 0 });
    const info = await docker.getContainer(id).inspect();
    expect(info.HostConfig.NetworkMode).toBe(`container:${sandbox.id}`);
    expect(await collect(runtime.logs(id, { follow: false }))).toEqual({ stdout: 'early\n', stderr: '' });
    await runtime.removePod(podUid, 0);
  }, 30_000);

  it('lists a container as exited as soon as its exit event comes', async () => {
    const podUid = randomUUID();
    await runtime.runSandbox({ podUid, namespace: 'default', name: 'quick', node });
    const seen: string[] = [];
    let listed: ContainerStatus[] | undefined;
    const exited = new Promise<void>((resolve) => {
      const stop = runtime.events((uid) => {
        if (uid !== podUid) return;
        stop();
        // At once, as the agent's pass does: the engine's own list may still say running.
        runtime.listContainers({ podUid }).then((l) => {
          listed = l;
          resolve();
        });
      });
    });
    await new Promise((r) => setTimeout(r, 300)); // the event stream is open
    const c = await runtime.startContainer(podUid, {
      name: 'quick',
      image: baseImage,
      command: ['sh', '-c', 'sleep 0.5; exit 4'],
      restartCount: 0,
    });
    // Listed while it runs: remembered as running.
    seen.push((await runtime.listContainers({ podUid }))[0]?.phase ?? '');
    await exited;
    expect(seen).toEqual(['running']);
    expect(listed?.map((x) => [x.id, x.phase, x.exitCode])).toEqual([[c.id, 'exited', 4]]);
    await runtime.removePod(podUid, 0);
  }, 30_000);

  it('a pod pass removes a container created but never started (a pass cut short) and starts that run afresh', async () => {
    const { objects: api } = createMemoryApi();
    const pod = (await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'cut-short', namespace: 'default' },
      spec: { nodeName: node, containers: [{ name: 'app', image: baseImage, command: ['sleep', '3600'] }] },
    })) as unknown as Pod;
    const podUid = pod.metadata.uid ?? '';
    await runtime.runSandbox({ podUid, namespace: 'default', name: 'cut-short', node });
    const leftover = await runtime.createContainer(podUid, {
      name: 'app',
      image: baseImage,
      command: ['sleep', '3600'],
      restartCount: 0,
    });
    const dir = await mkdtemp(join(tmpdir(), 'cox-cut-short-'));
    try {
      const ctx = {
        node,
        nodeIp: '127.0.0.1',
        api,
        runtime,
        dataDir: dir,
        memoryDir: join(dir, 'm'),
        nowMs: Date.now,
        log: () => {},
      };
      const result = await syncPod(ctx, pod, { backoff: {} });
      expect(result.state.reported?.phase).toBe('Running');
      const apps = await runtime.listContainers({ podUid });
      expect(apps.map((c) => [c.name, c.restartCount, c.phase])).toEqual([['app', 0, 'running']]);
      expect(apps[0]?.id).not.toBe(leftover);
      await expect(docker.getContainer(leftover).inspect()).rejects.toThrow(/no such container/i);
    } finally {
      await runtime.removePod(podUid, 0);
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('stops gracefully with SIGTERM, and kills after the grace period', async () => {
    const podUid = randomUUID();
    await runtime.runSandbox({ podUid, namespace: 'default', name: 'grace', node });
    const polite = await runtime.startContainer(podUid, {
      name: 'polite',
      image: baseImage,
      command: ['sh', '-c', 'trap "exit 3" TERM; while :; do sleep 1 & wait $!; done'],
      restartCount: 0,
    });
    const stubborn = await runtime.startContainer(podUid, {
      name: 'stubborn',
      image: baseImage,
      command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
      restartCount: 2,
    });
    await new Promise((r) => setTimeout(r, 300));
    let t = Date.now();
    await runtime.stopContainer(polite.id, 10);
    expect(Date.now() - t).toBeLessThan(5_000);
    expect(await runtime.inspect(polite.id)).toMatchObject({ phase: 'exited', exitCode: 3, reason: 'Error' });
    t = Date.now();
    await runtime.stopContainer(stubborn.id, 1);
    expect(Date.now() - t).toBeGreaterThanOrEqual(900);
    expect(await runtime.inspect(stubborn.id)).toMatchObject({
      phase: 'exited',
      exitCode: 137,
      restartCount: 2,
    });
    await runtime.stopContainer(stubborn.id, 1); // stopping a stopped container is fine
    await runtime.removePod(podUid, 0);
  }, 60_000);

  it('reports a memory limit breach as OOMKilled', async () => {
    const podUid = randomUUID();
    await runtime.runSandbox({ podUid, namespace: 'default', name: 'oom', node });
    const hog = await runtime.startContainer(podUid, {
      name: 'hog',
      image: baseImage,
      // Fills a tmpfs mount: memory charged to the container's cgroup. It waits a second first:
      // an OOM kill in the first milliseconds of a container can come before the engine watches
      // for it (cgroup v1), and the engine then reports no OOMKilled at all.
      command: ['sh', '-c', 'sleep 1; exec dd if=/dev/zero of=/hog/fill bs=1M count=64'],
      mounts: [{ containerPath: '/hog', tmpfsBytes: 128 * 1024 * 1024 }],
      memoryBytes: 16 * 1024 * 1024,
      restartCount: 0,
    });
    const done = await waitFor('hog exit', async () => {
      const s = await runtime.inspect(hog.id);
      return s.phase === 'exited' ? s : undefined;
    });
    expect(done).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
    await runtime.removePod(podUid, 0);
  }, 60_000);

  it('refuses an image that is not on the node without pulling it', async () => {
    await expect(runtime.ensureImage('example.invalid/nothing:1', 'IfNotPresent')).rejects.toBeInstanceOf(
      ImagePullError,
    );
    await expect(runtime.ensureImage('example.invalid/nothing:1', 'IfNotPresent')).rejects.toThrow(
      /image example.invalid\/nothing:1: not present on this node/,
    );
  });
  it('reads logs of an exited container: streams apart, tail, timestamps, since', async () => {
    const talker = await runScript(
      'talker',
      'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 1; echo four',
    );
    expect((await waitExited(talker.id)).exitCode).toBe(0);

    expect(await collect(runtime.logs(talker.id))).toEqual({ stdout: 'one\nthree\nfour\n', stderr: 'two\n' });
    expect(await collect(runtime.logs(talker.id, { tailLines: 2 }))).toEqual({
      stdout: 'three\nfour\n',
      stderr: '',
    });
    expect(await collect(runtime.logs(talker.id, { tailLines: 0 }))).toEqual({ stdout: '', stderr: '' });

    const stamped = await collect(runtime.logs(talker.id, { timestamps: true }));
    const lines = stamped.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (one|three|four)$/);
    const fourAt = lines[2].split(' ')[0];
    const threeAt = lines[1].split(' ')[0];
    expect(Date.parse(fourAt) - Date.parse(threeAt)).toBeGreaterThanOrEqual(900);

    // Since is inclusive, to the nanosecond: from `four`'s own timestamp, only `four`.
    expect(await collect(runtime.logs(talker.id, { sinceTime: fourAt }))).toEqual({
      stdout: 'four\n',
      stderr: '',
    });
    expect(await collect(runtime.logs(talker.id, { sinceTime: threeAt }))).toEqual({
      stdout: 'three\nfour\n',
      stderr: '',
    });
    await expect(runtime.logs(talker.id, { sinceTime: 'yesterday' }).next()).rejects.toThrow(
      /sinceTime "yesterday" is not an RFC 3339 time/,
    );
    await expect(collect(runtime.logs('cox-no-such-container'))).rejects.toThrow(
      /logs of container cox-no-such-container: .*No such container/i,
    );
  }, 30_000);

  it('follows logs: new lines arrive as they are written, and the stream ends when the container exits', async () => {
    const ticker = await runScript('ticker', 'for i in $(seq 1 15); do echo tick$i; sleep 0.1; done');
    const decoder = new TextDecoder();
    let text = '';
    let runningWhenFirstSeen: boolean | undefined;
    for await (const chunk of runtime.logs(ticker.id, { follow: true })) {
      text += decoder.decode(chunk.data);
      if (runningWhenFirstSeen === undefined) {
        runningWhenFirstSeen = (await runtime.inspect(ticker.id)).phase === 'running';
      }
    }
    expect(runningWhenFirstSeen).toBe(true);
    expect(text).toBe(Array.from({ length: 15 }, (_, i) => `tick${i + 1}\n`).join(''));
    expect((await runtime.inspect(ticker.id)).phase).toBe('exited');
  }, 30_000);

  it('destroys the engine stream of a follow iterator that is abandoned', async () => {
    const spied = new Docker();
    const streams: { destroyed: boolean }[] = [];
    const dial = spied.modem.dial.bind(spied.modem);
    spied.modem.dial = (opts, callback) =>
      dial(opts, (err, result) => {
        if (result !== null && typeof result === 'object' && 'destroyed' in result) {
          streams.push(result as { destroyed: boolean });
        }
        callback?.(err, result);
      });
    const watched = new DockerRuntime({ node, docker: spied });
    const forever = await runScript('forever', 'while :; do echo alive; sleep 0.1; done');
    for await (const chunk of watched.logs(forever.id, { follow: true })) {
      expect(new TextDecoder().decode(chunk.data)).toContain('alive');
      break;
    }
    expect(streams).toHaveLength(1);
    expect(streams[0].destroyed).toBe(true);
  }, 30_000);

  it('execs a command: stdout and stderr apart, and its exit code', async () => {
    const box = await runScript('exec-box', 'exec sleep 3600');
    const session = await runtime.exec(box.id, { command: ['sh', '-c', 'echo out; echo err >&2; exit 7'] });
    expect(session.resize).toBeUndefined();
    expect(await collect(session.output)).toEqual({ stdout: 'out\n', stderr: 'err\n' });
    expect(await session.exitCode).toBe(7);
    expect(() => session.write(new Uint8Array([1]))).toThrow(/stdin is not open/);
    await expect(
      runtime.exec(box.id, { command: ['/no/such/binary'] }).then((s) => s.exitCode),
    ).resolves.toBe(126);
  }, 30_000);

  it('execs with stdin: cat echoes what is written, and end() closes its stdin', async () => {
    const box = await runScript('stdin-box', 'exec sleep 3600');
    const session = await runtime.exec(box.id, { command: ['cat'], stdin: true });
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    const output = session.output[Symbol.asyncIterator]();
    session.write(encoder.encode('hello\n'));
    let echoed = '';
    while (!echoed.includes('hello\n')) {
      const next = await output.next();
      if (next.done) throw new Error(`cat ended early after ${JSON.stringify(echoed)}`);
      echoed += decoder.decode(next.value.data);
    }
    session.write(encoder.encode('bye\n'));
    session.end();
    for (let next = await output.next(); !next.done; next = await output.next())
      echoed += decoder.decode(next.value.data);
    expect(echoed).toBe('hello\nbye\n');
    expect(await session.exitCode).toBe(0);
  }, 30_000);

  it('execs with a tty: merged output, resizable, and kill() ends the session', async () => {
    const box = await runScript('tty-box', 'exec sleep 3600');
    const session = await runtime.exec(box.id, {
      command: ['sh', '-c', '[ -t 1 ] && echo is-a-tty; echo err >&2; sleep 0.5; stty size'],
      tty: true,
    });
    session.resize?.(100, 40);
    const text = await collect(session.output);
    expect(text.stderr).toBe('');
    expect(text.stdout).toBe('is-a-tty\r\nerr\r\n40 100\r\n');
    expect(await session.exitCode).toBe(0);

    const endless = await runtime.exec(box.id, { command: ['sleep', '3600'], tty: true });
    const t = Date.now();
    endless.kill();
    expect(await collect(endless.output)).toEqual({ stdout: '', stderr: '' });
    expect(await endless.exitCode).toBeGreaterThan(0);
    expect(Date.now() - t).toBeLessThan(execKillMsMax);
  }, 30_000);

  it('reports cumulative CPU time and memory in use', async () => {
    const busy = await runScript('busy', 'while :; do :; done', { cpuMillis: 500 });
    await new Promise((r) => setTimeout(r, 500));
    const first = await runtime.stats(busy.id);
    expect(first.cpuNanos).toBeGreaterThan(0);
    expect(first.memoryBytes).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(first.timestamp))).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    const second = await runtime.stats(busy.id);
    expect(second.cpuNanos).toBeGreaterThan(first.cpuNanos);
    await runtime.stopContainer(busy.id, 0);
    await expect(runtime.stats(busy.id)).rejects.toThrow(
      new RegExp(`stats of container ${busy.id}: not running`),
    );
  }, 30_000);

  it('builds a runnable image from a Dockerfile directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cox-build-'));
    try {
      await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
      await mkdir(join(dir, 'empty'));
      await writeFile(join(dir, 'hello.txt'), 'hello from the build\n');
      await writeFile(join(dir, 'sub', 'deeper', 'deep.txt'), 'deep file\n');
      await writeFile(
        join(dir, 'Dockerfile'),
        'FROM coxswain/busybox\nCOPY hello.txt /srv/hello.txt\nCOPY sub /srv/sub\nCMD ["cat", "/srv/hello.txt", "/srv/sub/deeper/deep.txt"]\n',
      );
      expect(await listBuildContext(dir)).toEqual([
        'Dockerfile',
        'empty',
        'hello.txt',
        'sub/deeper/deep.txt',
      ]);
      const id = await buildImage(docker, dir, builtTag);
      expect((await docker.getImage(builtTag).inspect()).Id).toBe(id);

      const podUid = randomUUID();
      await runtime.runSandbox({ podUid, namespace: 'default', name: 'built', node });
      const app = await runtime.startContainer(podUid, { name: 'app', image: builtTag, restartCount: 0 });
      expect((await waitExited(app.id)).exitCode).toBe(0);
      expect(await collect(runtime.logs(app.id))).toEqual({
        stdout: 'hello from the build\ndeep file\n',
        stderr: '',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('names the Dockerfile step that failed, in one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cox-build-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM coxswain/busybox\nRUN exit 3\nCMD ["true"]\n');
      const failure = await buildImage(docker, dir, failedTag).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(ImageBuildError);
      const message = (failure as Error).message;
      expect(message).toMatch(
        /^building coxswain-test\/build-fails-\d+:1 from .*: step 2\/3 "RUN exit 3" failed: .*code: 3$/,
      );
      expect(message).not.toContain('\n');
      await rm(join(dir, 'Dockerfile'));
      await expect(buildImage(docker, dir, failedTag)).rejects.toThrow(/: no Dockerfile in the directory$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('docker stream framing', () => {
  function frame(type: number, text: string): Buffer {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  }

  async function demux(tty: boolean, pieces: Buffer[]): Promise<LogChunk[]> {
    const d = new DockerStreamDemux(tty);
    const out: LogChunk[] = [];
    d.on('data', (c: LogChunk) => out.push(c));
    for (const p of pieces) d.write(p);
    d.end();
    await new Promise((resolve, reject) => d.on('end', resolve).on('error', reject));
    return out;
  }

  it('splits frames cut anywhere and packed together', async () => {
    const bytes = Buffer.concat([
      frame(1, 'out one\n'),
      frame(2, 'err\n'),
      frame(1, ''),
      frame(1, 'out two\n'),
    ]);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      const chunks = await demux(false, [bytes.subarray(0, cut), bytes.subarray(cut)]);
      expect(chunks.map((c) => [c.stream, Buffer.from(c.data).toString()])).toEqual([
        ['stdout', 'out one\n'],
        ['stderr', 'err\n'],
        ['stdout', 'out two\n'],
      ]);
    }
  });

  it('passes tty output through as stdout, and rejects a corrupted stream', async () => {
    const raw = Buffer.from('\u0001 not a frame');
    expect((await demux(true, [raw])).map((c) => c.stream)).toEqual(['stdout']);
    await expect(demux(false, [Buffer.from('garbage!!')])).rejects.toThrow(/bad frame header/);
    await expect(demux(false, [frame(1, 'cut short').subarray(0, 10)])).rejects.toThrow(
      /ended inside a frame/,
    );
    await expect(demux(false, [frame(1, 'fine\n'), frame(3, 'exec failed\n')])).rejects.toThrow(
      /engine error: exec failed$/,
    );
  });

  it("turns RFC 3339 times into the engine's seconds.nanoseconds", () => {
    expect(engineTimestamp('2024-05-06T07:08:09.123456789Z')).toBe('1714979289.123456789');
    expect(engineTimestamp('2024-05-06T09:08:09.5+02:00')).toBe('1714979289.500000000');
    expect(engineTimestamp('2024-05-06T07:08:09Z')).toBe('1714979289.000000000');
    expect(engineTimestamp('not a time')).toBeUndefined();
  });
});

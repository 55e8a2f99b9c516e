/**
 * The conformance suite of the container runtime port: one set of vitest tests that every
 * driver (docker, process, hollow) must pass. What a driver cannot do is declared in its
 * capabilities, and only those tests are left out; everything else is the same test.
 *
 * Containers run `sh -c` scripts that work with the base image and on a host with busybox.
 * The hollow driver runs nothing, so the scripts also carry their behaviour in environment
 * variables that `conformanceScript` reads (exit code, exit delay, ignoring SIGTERM).
 */

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HollowBehaviour } from './hollow-runtime.js';
import {
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStatus,
  ImagePullError,
  type LogChunk,
} from './runtime.js';

export interface RuntimeCapabilities {
  /** Containers of a pod reach each other on 127.0.0.1. */
  sharedLocalhost: boolean;
  /** A container over its memory limit is OOMKilled. */
  enforcesMemory: boolean;
  /** Commands really run (output, exit codes, exec and signals are the scripts' own). */
  realProcesses: boolean;
}

export interface RuntimeHarness {
  /** The node name the drivers are created for. */
  node: string;
  /** The base image, as pods name it. */
  image: string;
  /** Checks the machine and prepares (e.g. builds the base image). */
  setup(): Promise<void>;
  /** The driver the tests start with. */
  open(): ContainerRuntime;
  /**
   * The driver an agent restarted with `kill -9` would make over the same node (docker,
   * process); a driver without persistent state returns the same instance (hollow).
   */
  reopen(previous: ContainerRuntime): ContainerRuntime;
  /** Removes everything the tests left on the node. */
  cleanup(): Promise<void>;
}

/** Environment variables the suite's scripts carry for drivers that run nothing. */
export const conformanceEnv = {
  exitCode: 'CONFORMANCE_EXIT_CODE',
  exitAfterMs: 'CONFORMANCE_EXIT_AFTER_MS',
  ignoreSigterm: 'CONFORMANCE_IGNORE_SIGTERM',
} as const;

/** The hollow driver's script that makes its containers behave as the suite's scripts do. */
export function conformanceScript(spec: ContainerSpec): HollowBehaviour {
  const env = new Map((spec.env ?? []).map((e) => [e.name, e.value]));
  const code = env.get(conformanceEnv.exitCode);
  const after = env.get(conformanceEnv.exitAfterMs);
  return {
    ...(code !== undefined ? { exitCode: Number(code), exitAfterMs: Number(after ?? 0) } : {}),
    ...(env.get(conformanceEnv.ignoreSigterm) === '1' ? { ignoreSigterm: true } : {}),
  };
}

const exitWaitMs = 15_000;
const logReadMs = 10_000;

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = exitWaitMs,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads a log or exec stream to its end (bounded), as text per stream. */
async function readAll(
  stream: AsyncIterable<LogChunk>,
  timeoutMs = logReadMs,
): Promise<{ stdout: string; stderr: string; all: string }> {
  const out = { stdout: '', stderr: '', all: '' };
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const c of stream) {
      const text = decoder.decode(c.data);
      out[c.stream] += text;
      out.all += text;
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream not ended within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([reading, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** Registers the suite for one driver. */
export function describeRuntimeConformance(
  name: string,
  harness: RuntimeHarness,
  caps: RuntimeCapabilities,
): void {
  describe(`container runtime conformance: ${name}`, () => {
    let runtime: ContainerRuntime;
    const { node, image } = harness;

    beforeAll(async () => {
      await harness.setup();
      runtime = harness.open();
    }, 120_000);
    afterAll(() => harness.cleanup(), 60_000);

    const sandbox = async (podName: string) => {
      const podUid = randomUUID();
      await runtime.runSandbox({ podUid, namespace: 'conformance', name: podName, node });
      return podUid;
    };
    const script = (name: string, sh: string, more: Partial<ContainerSpec> = {}): ContainerSpec => ({
      name,
      image,
      command: ['sh', '-c', sh],
      restartCount: 0,
      ...more,
    });
    const exits = (name: string, code: number, sh = `exit ${code}`): ContainerSpec =>
      script(name, sh, { env: [{ name: conformanceEnv.exitCode, value: String(code) }] });
    const exited = (r: ContainerRuntime, id: string) =>
      waitFor(`exit of ${id}`, async () => {
        const s = await r.inspect(id);
        return s.phase === 'exited' ? s : undefined;
      });

    it('reports its version as `<kind>` or `<kind>://<version>`', async () => {
      expect(await runtime.version()).toMatch(new RegExp(`^${runtime.kind}($|://\\S+$)`));
    });

    it('accepts the base image and refuses an unknown one with ImagePullError', async () => {
      await runtime.ensureImage(image, 'IfNotPresent');
      const missing = 'example.invalid/nothing:1';
      const err = await runtime.ensureImage(missing, 'IfNotPresent').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImagePullError);
      expect((err as ImagePullError).image).toBe(missing);
      expect((err as Error).message).toContain(missing);
    });

    it('returns the same sandbox for the same pod uid', async () => {
      const podUid = randomUUID();
      const spec = { podUid, namespace: 'conformance', name: 'same', node };
      const first = await runtime.runSandbox(spec);
      const second = await runtime.runSandbox(spec);
      expect(first.running).toBe(true);
      expect(second.id).toBe(first.id);
      expect(await runtime.listPods()).toContain(podUid);
      expect(await runtime.listContainers({ podUid })).toEqual([]);
      await runtime.removePod(podUid, 0);
      expect(await runtime.listPods()).not.toContain(podUid);
    });

    it('starts a container running, and reports exit codes and reasons', async () => {
      const podUid = await sandbox('exits');
      try {
        const long = await runtime.startContainer(podUid, script('long', 'sleep 30', { restartCount: 3 }));
        expect(long).toMatchObject({ podUid, name: 'long', image, restartCount: 3, phase: 'running' });
        expect(Number.isNaN(Date.parse(long.startedAt ?? ''))).toBe(false);
        const ok = await runtime.startContainer(podUid, exits('ok', 0));
        const bad = await runtime.startContainer(podUid, exits('bad', 3));
        expect(await exited(runtime, ok.id)).toMatchObject({
          phase: 'exited',
          exitCode: 0,
          reason: 'Completed',
        });
        const badDone = await exited(runtime, bad.id);
        expect(badDone).toMatchObject({ phase: 'exited', exitCode: 3, reason: 'Error', restartCount: 0 });
        expect(Date.parse(badDone.finishedAt ?? '')).toBeGreaterThanOrEqual(
          Date.parse(badDone.startedAt ?? '') - 1,
        );
        expect(await runtime.inspect(long.id)).toMatchObject({ phase: 'running', restartCount: 3 });
        const listed = await runtime.listContainers({ podUid });
        expect(listed.map((c) => `${c.name}/${c.restartCount}`).sort()).toEqual(['bad/0', 'long/3', 'ok/0']);
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    it('stops with SIGTERM within the grace period, and kills after it', async () => {
      const podUid = await sandbox('grace');
      try {
        const polite = await runtime.startContainer(
          podUid,
          script('polite', 'trap "exit 3" TERM; while :; do sleep 1 & wait $!; done'),
        );
        const stubborn = await runtime.startContainer(
          podUid,
          script('stubborn', 'trap "" TERM; while :; do sleep 1; done', {
            restartCount: 2,
            env: [{ name: conformanceEnv.ignoreSigterm, value: '1' }],
          }),
        );
        await new Promise((r) => setTimeout(r, 300)); // the traps are set
        let t = Date.now();
        await runtime.stopContainer(polite.id, 10);
        expect(Date.now() - t).toBeLessThan(5_000);
        expect(await runtime.inspect(polite.id)).toMatchObject({
          phase: 'exited',
          exitCode: caps.realProcesses ? 3 : 0,
        });
        t = Date.now();
        await runtime.stopContainer(stubborn.id, 1);
        expect(Date.now() - t).toBeGreaterThanOrEqual(900);
        expect(await runtime.inspect(stubborn.id)).toMatchObject({
          phase: 'exited',
          exitCode: 137,
          reason: 'Error',
          restartCount: 2,
        });
        await runtime.stopContainer(stubborn.id, 1); // stopping a stopped container is fine
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    it('lists and adopts pods and containers from a new driver instance', async () => {
      const podUid = await sandbox('adopt');
      const first = await runtime.runSandbox({ podUid, namespace: 'conformance', name: 'adopt', node });
      const runs = await runtime.startContainer(
        podUid,
        script('runs', 'echo before; sleep 30', { restartCount: 1 }),
      );
      const done = await runtime.startContainer(podUid, exits('done', 4));
      await exited(runtime, done.id);
      runtime = harness.reopen(runtime);
      try {
        expect(await runtime.listPods()).toContain(podUid);
        const again = await runtime.runSandbox({ podUid, namespace: 'conformance', name: 'adopt', node });
        expect(again.id).toBe(first.id);
        const all = await runtime.listContainers();
        const mine = all.filter((c) => c.podUid === podUid);
        const byName = new Map(mine.map((c) => [c.name, c]));
        expect([...byName.keys()].sort()).toEqual(['done', 'runs']);
        expect(byName.get('runs')).toMatchObject({ id: runs.id, phase: 'running', restartCount: 1 });
        expect(byName.get('done')).toMatchObject({
          id: done.id,
          phase: 'exited',
          exitCode: 4,
          reason: 'Error',
        });
        await runtime.stopContainer(runs.id, 1);
        expect((await runtime.inspect(runs.id)).phase).toBe('exited');
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    it('removes every container and the sandbox of a pod', async () => {
      const podUid = await sandbox('remove');
      const a = await runtime.startContainer(podUid, script('a', 'sleep 30'));
      const b = await runtime.startContainer(podUid, exits('b', 0));
      await runtime.removePod(podUid, 1);
      expect(await runtime.listContainers({ podUid })).toEqual([]);
      expect(await runtime.listPods()).not.toContain(podUid);
      await expect(runtime.inspect(a.id)).rejects.toThrow();
      await expect(runtime.inspect(b.id)).rejects.toThrow();
      await runtime.removePod(podUid, 1); // removing a removed pod is fine
    });

    it('serves logs: contents per stream, tail, timestamps, and of exited containers', async () => {
      const podUid = await sandbox('logs');
      try {
        const c = await runtime.startContainer(
          podUid,
          exits('talker', 0, 'echo oops >&2; sleep 0.2; echo one; echo two; echo three'),
        );
        await exited(runtime, c.id);
        const whole = await readAll(runtime.logs(c.id));
        const last = await readAll(runtime.logs(c.id, { tailLines: 1 }));
        const none = await readAll(runtime.logs(c.id, { tailLines: 0 }));
        const stamped = await readAll(runtime.logs(c.id, { timestamps: true }));
        const future = await readAll(
          runtime.logs(c.id, { sinceTime: new Date(Date.now() + 60_000).toISOString() }),
        );
        expect(none.all).toBe('');
        expect(future.all).toBe('');
        const lines = stamped.all.split('\n').filter((l) => l !== '');
        for (const l of lines) expect(Number.isNaN(Date.parse(l.slice(0, l.indexOf(' '))))).toBe(false);
        if (caps.realProcesses) {
          expect(whole.stdout).toBe('one\ntwo\nthree\n');
          expect(whole.stderr).toBe('oops\n');
          expect(last.all).toBe('three\n');
          expect(lines).toHaveLength(4);
        } else {
          expect(whole.stdout).toMatch(/talker/);
          expect(last.all).toBe(whole.all);
          expect(lines).toHaveLength(1);
        }
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    it('follows logs until the container exits', async () => {
      const podUid = await sandbox('follow');
      try {
        const c = await runtime.startContainer(podUid, {
          ...exits('ticker', 0, 'for i in 1 2 3; do echo tick $i; sleep 0.2; done'),
          env: [
            { name: conformanceEnv.exitCode, value: '0' },
            { name: conformanceEnv.exitAfterMs, value: '600' },
          ],
        });
        const t = Date.now();
        const followed = await readAll(runtime.logs(c.id, { follow: true }));
        expect(Date.now() - t).toBeGreaterThanOrEqual(caps.realProcesses ? 300 : 0);
        if (caps.realProcesses) expect(followed.stdout).toBe('tick 1\ntick 2\ntick 3\n');
        else expect(followed.stdout).toMatch(/ticker/);
        expect((await runtime.inspect(c.id)).phase).toBe('exited');
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    it('runs exec sessions and reports their exit codes', async () => {
      const podUid = await sandbox('exec');
      try {
        const c = await runtime.startContainer(podUid, script('host', 'sleep 30'));
        const session = await runtime.exec(c.id, { command: ['sh', '-c', 'echo hi; echo err >&2; exit 7'] });
        const output = await readAll(session.output);
        const code = await session.exitCode;
        if (caps.realProcesses) {
          expect(code).toBe(7);
          expect(output.stdout).toBe('hi\n');
          expect(output.stderr).toBe('err\n');
          const cat = await runtime.exec(c.id, { command: ['cat'], stdin: true });
          cat.write(new TextEncoder().encode('fed through stdin\n'));
          cat.end();
          expect((await readAll(cat.output)).stdout).toBe('fed through stdin\n');
          expect(await cat.exitCode).toBe(0);
        } else {
          expect(code).toBe(0);
          expect(output.stdout).toContain('echo hi');
        }
        await runtime.stopContainer(c.id, 0);
        await expect(runtime.exec(c.id, { command: ['true'] })).rejects.toThrow();
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    it('reports stats of a running container', async () => {
      const podUid = await sandbox('stats');
      try {
        const c = await runtime.startContainer(
          podUid,
          script('busy', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30'),
        );
        await new Promise((r) => setTimeout(r, 500));
        const s = await runtime.stats(c.id);
        expect(Number.isFinite(s.cpuNanos) && s.cpuNanos >= 0).toBe(true);
        expect(Number.isFinite(s.memoryBytes) && s.memoryBytes >= 0).toBe(true);
        expect(Number.isNaN(Date.parse(s.timestamp))).toBe(false);
        if (caps.realProcesses) {
          expect(s.cpuNanos).toBeGreaterThan(0);
          expect(s.memoryBytes).toBeGreaterThan(0);
        }
      } finally {
        await runtime.removePod(podUid, 0);
      }
    });

    if (caps.sharedLocalhost) {
      it('lets the containers of a pod reach each other on localhost', async () => {
        const podUid = await sandbox('web');
        const port = 20_000 + Math.floor(Math.random() * 30_000);
        try {
          await runtime.startContainer(
            podUid,
            // Relative to the working directory: the process driver's is the pod's directory.
            script(
              'web',
              `mkdir -p www && echo "hello $GREETING" > www/index.html && exec busybox httpd -f -p 127.0.0.1:${port} -h www`,
              { env: [{ name: 'GREETING', value: 'from web' }] },
            ),
          );
          const client = await runtime.startContainer(
            podUid,
            script(
              'client',
              `for i in $(seq 1 100); do busybox wget -q -O - http://127.0.0.1:${port}/ 2>/dev/null | grep -q "hello from web" && exit 0; sleep 0.1; done; exit 1`,
            ),
          );
          expect(await exited(runtime, client.id)).toMatchObject({ exitCode: 0 });
        } finally {
          await runtime.removePod(podUid, 0);
        }
      });
    }

    if (caps.enforcesMemory) {
      it('reports a memory limit breach as OOMKilled', async () => {
        const podUid = await sandbox('oom');
        try {
          const hog = await runtime.startContainer(
            podUid,
            // After a second: the engine may miss an OOM kill in a container's first milliseconds.
            script('hog', 'sleep 1; exec dd if=/dev/zero of=/hog/fill bs=1M count=64', {
              mounts: [{ containerPath: '/hog', tmpfsBytes: 128 * 1024 * 1024 }],
              memoryBytes: 16 * 1024 * 1024,
            }),
          );
          const done: ContainerStatus = await exited(runtime, hog.id);
          expect(done).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
        } finally {
          await runtime.removePod(podUid, 0);
        }
      });
    }
  });
}

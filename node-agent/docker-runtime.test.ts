/**
 * The docker driver against the real engine (CI installs and starts Docker; this suite fails,
 * never skips, without one).
 */

import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from './docker-runtime.js';
import { baseImage, isStaticElf } from './images.js';
import { ImagePullError, runtimeLabels } from './runtime.js';

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
  afterAll(cleanup, 60_000);

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
      // Fills a tmpfs-backed /dev/shm-like mount: memory charged to the container's cgroup.
      command: ['sh', '-c', 'exec dd if=/dev/zero of=/hog/fill bs=1M count=64'],
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
});

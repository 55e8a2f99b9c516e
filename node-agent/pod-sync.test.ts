import { mkdtemp, readdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Pod, Secret } from '../core/index.js';
import { ContainerConfigError } from './pod/errors.js';
import { observe, oldRuns, type PodSyncContext, removePodDirs, writeVolumes } from './pod-sync.js';
import type { ContainerStatus } from './runtime.js';

const run = (
  name: string,
  restartCount: number,
  phase: ContainerStatus['phase'] = 'exited',
): ContainerStatus => ({
  id: `${name}-${restartCount}`,
  podUid: 'u',
  name,
  image: 'coxswain/busybox',
  restartCount,
  phase,
  ...(phase === 'exited' ? { exitCode: 1, reason: 'Error' } : {}),
});

describe('runs of a container', () => {
  it('keeps the newest two runs per container name and removes older exited ones', () => {
    const runs = [
      run('a', 0),
      run('a', 3, 'running'),
      run('a', 1),
      run('a', 2),
      run('b', 0),
      run('b', 1, 'running'),
    ];
    expect(
      oldRuns(runs)
        .map((c) => c.id)
        .sort(),
    ).toEqual(['a-0', 'a-1']);
    expect(oldRuns([run('a', 0)])).toEqual([]);
    // A run still running is never removed, however old.
    expect(oldRuns([run('a', 0, 'running'), run('a', 1), run('a', 2)])).toEqual([]);
    // A run about to start counts: the one before the newest goes, so two remain after the start.
    expect(oldRuns([run('a', 0), run('a', 1)], [{ name: 'a', restartCount: 2 }]).map((c) => c.id)).toEqual([
      'a-0',
    ]);
    expect(oldRuns([run('a', 0)], [{ name: 'a', restartCount: 1 }])).toEqual([]);
  });

  it('observes the newest run, with the one before it as the last termination', () => {
    const seen = observe([run('a', 1, 'running'), run('a', 0)]);
    expect(seen.a).toMatchObject({ id: 'a-1', phase: 'running', restartCount: 1 });
    expect(seen.a?.lastTermination).toMatchObject({ exitCode: 1, reason: 'Error', id: 'a-0' });
  });
});

describe('volumes on the node', () => {
  const secretPod = (): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: `uid-${process.pid}` },
    spec: {
      volumes: [{ name: 'creds', secret: { secretName: 'creds' } }],
      containers: [{ name: 'a', image: 'i', volumeMounts: [{ name: 'creds', mountPath: '/creds' }] }],
    },
  });
  const config = {
    configMaps: {},
    secrets: {
      creds: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds' },
        data: { token: Buffer.from('s3cret').toString('base64') },
      } as Secret,
    },
  };
  const ctxFor = (dataDir: string, memoryDir: string) =>
    ({ dataDir, memoryDir }) as unknown as PodSyncContext;

  it('writes secrets under the memory directory when it is a tmpfs, and removes them with the pod', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'cox-volumes-'));
    const memoryDir = await mkdtemp('/dev/shm/cox-volumes-');
    try {
      expect((await statfs(memoryDir)).type).toBe(0x01021994); // the premise: /dev/shm is a tmpfs
      const ctx = ctxFor(dataDir, memoryDir);
      const mounts = await writeVolumes(ctx, secretPod(), config);
      const file = join(memoryDir, `uid-${process.pid}`, 'creds', 'token');
      expect(mounts.a).toEqual([{ containerPath: '/creds', hostPath: join(file, '..'), readOnly: true }]);
      expect(await readFile(file, 'utf8')).toBe('s3cret');
      await removePodDirs(ctx, `uid-${process.pid}`);
      await expect(stat(join(memoryDir, `uid-${process.pid}`))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
      await rm(memoryDir, { recursive: true, force: true });
    }
  });

  it('refuses to write a secret when the memory directory is not on a tmpfs', async () => {
    // Under the repository: a disk, not a tmpfs, here and in CI.
    const onDisk = await mkdtemp(join(process.cwd(), '.cox-volumes-'));
    try {
      expect((await statfs(onDisk)).type).not.toBe(0x01021994); // the premise
      const err = await writeVolumes(ctxFor(onDisk, join(onDisk, 'memory')), secretPod(), config).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ContainerConfigError);
      expect((err as Error).message).toBe(
        `spec.volumes: secret and memory volumes need a tmpfs, and this node's memory directory ${join(onDisk, 'memory')} is not on one`,
      );
      expect(await readdir(join(onDisk, 'memory'))).toEqual([]); // nothing written
    } finally {
      await rm(onDisk, { recursive: true, force: true });
    }
  });
});

import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DataDirLockedError,
  FileStorage,
  type FileStorageOptions,
  snapshotFileName,
} from './file-storage.js';
import { MemoryStorage } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { encodeFramed, StorageFailedError, WalCorruptionError } from './wal.js';

const ent = (index: number, term = 1, size = 32): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(size).fill(index & 0xff),
});
const range = (lo: number, hi: number, term = 1, size = 32): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => ent(lo + i, term, size));

describe('FileStorage', () => {
  let root: string;
  let dir: string;
  let warnings: string[];
  const open: Array<FileStorage> = [];

  const openAt = async (at: string, opts: FileStorageOptions = {}): Promise<FileStorage> => {
    const s = await FileStorage.open(at, { onWarning: (m) => warnings.push(m), ...opts });
    open.push(s);
    return s;
  };

  /** Copies the data directory as a crash would leave it (the writer's lock is stale there). */
  const crashCopy = async (): Promise<string> => {
    const copy = join(root, `crash-${open.length}-${Date.now()}`);
    await cp(dir, copy, { recursive: true });
    await unlink(join(copy, 'LOCK'));
    return copy;
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cox-file-storage-'));
    dir = join(root, 'data');
    warnings = [];
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const s of open.splice(0)) await s.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('creates the documented layout', async () => {
    const s = await openAt(dir);
    s.append(range(1, 3));
    s.setHardState({ term: 1, commit: 3 });
    s.createSnapshot(2, new Uint8Array([2]), { voters: ['a'], learners: [] });
    await s.sync();
    expect((await readdir(dir)).sort()).toEqual(['LOCK', 'snap', 'wal']);
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    expect(await readdir(join(dir, 'wal'))).toEqual(['0000000000000001-0000000000000001.wal']);
    expect(await readdir(join(dir, 'snap'))).toEqual([snapshotFileName(2, 1)]);
    expect(snapshotFileName(2, 1)).toBe('0000000000000002-0000000000000001.snap');
    await s.close();
    expect(await readdir(dir)).not.toContain('LOCK');
  });

  it('writes everything a Ready persists with one fdatasync', async () => {
    const s = await openAt(dir);
    await s.sync();
    const before = s.walStats.fdatasyncs;
    for (let b = 0; b < 50; b++) s.append(range(b * 20 + 1, b * 20 + 20));
    s.setHardState({ term: 1, vote: 'a', commit: 900 });
    await s.sync();
    expect(s.walStats.fdatasyncs - before).toBe(1);
    expect(s.walStats.recordsWritten).toBe(51);
    await s.sync(); // nothing new
    expect(s.walStats.fdatasyncs - before).toBe(1);
  });

  it('coalesces syncs; a sync started after a write covers that write', async () => {
    const s = await openAt(dir);
    s.append(range(1, 5));
    const first = s.sync();
    s.append(range(6, 7)); // the flush has not taken the queue yet: the same sync covers it
    expect(s.sync()).toBe(first);
    await new Promise((r) => setImmediate(r)); // now the flush runs with 1..7
    s.append(range(8, 10));
    const second = s.sync();
    const third = s.sync();
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    await second;
    await first;
    expect(s.walStats.fdatasyncs).toBe(2);
    const copy = await openAt(await crashCopy());
    expect(copy.lastIndex()).toBe(10);
  });

  it('survives a crash after sync: the state is what was synced', async () => {
    const s = await openAt(dir);
    s.append(range(1, 10));
    s.setHardState({ term: 2, vote: 'b', commit: 8 });
    await s.sync();
    const copy = await openAt(await crashCopy());
    expect(copy.lastIndex()).toBe(10);
    expect(copy.initialState().hardState).toEqual({ term: 2, vote: 'b', commit: 8 });
    expect(copy.entries(1, 11)).toEqual(range(1, 10));
  });

  it('makes an installed snapshot durable before sync resolves', async () => {
    const s = await openAt(dir);
    s.append(range(1, 10));
    await s.sync();
    const snap: Snapshot = {
      index: 50,
      term: 4,
      voters: ['a', 'b'],
      learners: [],
      data: new Uint8Array([5, 0]),
    };
    s.applySnapshot(snap);
    s.append(range(51, 52, 4));
    s.setHardState({ term: 4, commit: 51 });
    await s.sync();
    const copy = await openAt(await crashCopy());
    expect(copy.snapshot()).toEqual(snap);
    expect(copy.firstIndex()).toBe(51);
    expect(copy.lastIndex()).toBe(52);
    expect(copy.initialState()).toEqual({
      hardState: { term: 4, commit: 51 },
      conf: { voters: ['a', 'b'], learners: [] },
    });
  });

  it('refuses to start when the snapshot a WAL record restarts the log at is missing', async () => {
    const s = await openAt(dir);
    s.append(range(1, 3));
    s.applySnapshot({ index: 20, term: 2, voters: ['a'], learners: [], data: new Uint8Array([1]) });
    await s.close();
    await unlink(join(dir, 'snap', snapshotFileName(20, 2)));
    const err = await FileStorage.open(dir, { onWarning: () => undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptionError);
    expect((err as Error).message).toContain(snapshotFileName(20, 2));
    expect((err as Error).message).toMatch(/\.wal at byte offset \d+/);
    // A failed open leaves the directory unlocked.
    expect(await readdir(dir)).not.toContain('LOCK');
  });

  it('deletes old WAL segments on compaction, and reopens to the same state', async () => {
    const opts = { segmentBytesMax: 1024 };
    const s = await openAt(dir, opts);
    for (let b = 0; b < 20; b++) {
      s.append(range(b * 10 + 1, b * 10 + 10));
      s.setHardState({ term: 1, vote: 'a', commit: b * 10 + 10 });
      await s.sync();
    }
    const before = s.walSegmentFiles();
    expect(before.length).toBeGreaterThan(8);
    s.createSnapshot(150, new Uint8Array([1, 5, 0]), { voters: ['a', 'b', 'c'], learners: [] });
    s.compact(150);
    await s.sync();
    const after = s.walSegmentFiles();
    expect(after.length).toBeLessThan(before.length - 4);
    expect(after.at(-1)).toBe(before.at(-1)); // the current segment stays
    for (const f of before.slice(0, before.length - after.length)) await expect(stat(f)).rejects.toThrow();
    const state = {
      first: s.firstIndex(),
      last: s.lastIndex(),
      ents: s.entries(s.firstIndex(), s.lastIndex() + 1),
      init: s.initialState(),
    };
    await s.close();
    const again = await openAt(dir, opts);
    expect({
      first: again.firstIndex(),
      last: again.lastIndex(),
      ents: again.entries(again.firstIndex(), again.lastIndex() + 1),
      init: again.initialState(),
    }).toEqual(state);
    expect(again.snapshot().index).toBe(150);
    expect(warnings).toEqual([]);
  });

  it('recovers when a crash let only some of the deleted segments go', async () => {
    const opts = { segmentBytesMax: 1024 };
    const s = await openAt(dir, opts);
    for (let b = 0; b < 20; b++) {
      s.append(range(b * 10 + 1, b * 10 + 10, 1 + (b >> 3)));
      s.setHardState({ term: 1 + (b >> 3), vote: 'a', commit: b * 10 + 5 });
      await s.sync();
    }
    const saved = new Map<string, Buffer>();
    for (const f of s.walSegmentFiles()) saved.set(f, await readFile(f));
    s.createSnapshot(160, new Uint8Array([1, 6, 0]), { voters: ['a', 'b', 'c'], learners: [] });
    s.compact(160);
    await s.sync();
    const deleted = [...saved.keys()].filter((f) => !s.walSegmentFiles().includes(f));
    expect(deleted.length).toBeGreaterThan(3);
    const expected = {
      last: s.lastIndex(),
      ents: s.entries(161, s.lastIndex() + 1),
      init: s.initialState(),
      snap: s.snapshot(),
    };
    await s.close();
    // The unlinks of the oldest and of a middle segment did not reach the disk.
    for (const f of [deleted[0], deleted[2]]) await writeFile(f, saved.get(f)!);
    const again = await openAt(dir, opts);
    expect({
      last: again.lastIndex(),
      ents: again.entries(161, again.lastIndex() + 1),
      init: again.initialState(),
      snap: again.snapshot(),
    }).toEqual(expected);
    expect(again.firstIndex()).toBe(161);
    expect(warnings).toEqual([]);
    // The next compaction deletes the leftovers too.
    again.append(range(201, 260, 3));
    again.setHardState({ term: 3, commit: 250 });
    again.createSnapshot(250, new Uint8Array([2, 5, 0]), { voters: ['a'], learners: [] });
    again.compact(250);
    await again.sync();
    for (const f of deleted) await expect(stat(f)).rejects.toThrow();
  });

  it('keeps entries below a snapshot until a compaction covers them, then restarts after the snapshot', async () => {
    const s = await openAt(dir, { segmentBytesMax: 1024 });
    s.append(range(1, 100));
    s.setHardState({ term: 1, commit: 100 });
    s.createSnapshot(90, new Uint8Array([9]), { voters: ['a'], learners: [] });
    s.compact(40); // a margin for slow followers: segments up to 40 may go, the log holds 41..100
    await s.sync();
    expect(s.firstIndex()).toBe(41);
    await s.close();
    const again = await openAt(dir, { segmentBytesMax: 1024 });
    // After a reopen the log starts right after the newest snapshot.
    expect(again.firstIndex()).toBe(91);
    expect(again.entries(91, 101)).toEqual(range(91, 100));
  });

  it('keeps the newest two snapshot files', async () => {
    const s = await openAt(dir);
    s.append(range(1, 40));
    for (const at of [10, 20, 30, 40]) {
      s.createSnapshot(at, new Uint8Array([at]), { voters: ['a'], learners: [] });
      await s.sync();
    }
    expect((await readdir(join(dir, 'snap'))).sort()).toEqual([
      snapshotFileName(30, 1),
      snapshotFileName(40, 1),
    ]);
  });

  it('cleans up snapshot temp files and snapshots whose WAL record was never written', async () => {
    const s = await openAt(dir);
    s.append(range(1, 10));
    s.createSnapshot(5, new Uint8Array([5]), { voters: ['a'], learners: [] });
    await s.close();
    const snapDir = join(dir, 'snap');
    const tmp = join(snapDir, `${snapshotFileName(9, 1)}.tmp`);
    await writeFile(tmp, 'half a snapshot');
    // A complete file for index 8 whose WAL record never made it: the crash came in between.
    const orphan = join(snapDir, snapshotFileName(8, 1));
    await writeFile(
      orphan,
      encodeFramed({ index: 8, term: 1, voters: ['a'], learners: [], data: new Uint8Array([8]) }),
    );
    const again = await openAt(dir);
    expect(again.snapshot().index).toBe(5);
    expect(again.lastIndex()).toBe(10);
    expect(await readdir(snapDir)).toEqual([snapshotFileName(5, 1)]);
    expect(warnings.some((w) => w.includes(tmp))).toBe(true);
    expect(warnings.some((w) => w.includes(orphan))).toBe(true);
  });

  it('falls back to an older snapshot when the newest file is damaged and the WAL still covers it', async () => {
    const s = await openAt(dir);
    s.append(range(1, 30));
    s.setHardState({ term: 1, commit: 30 });
    s.createSnapshot(10, new Uint8Array([10]), { voters: ['a'], learners: [] });
    s.createSnapshot(20, new Uint8Array([20]), { voters: ['a'], learners: [] });
    await s.close();
    const newest = join(dir, 'snap', snapshotFileName(20, 1));
    const buf = await readFile(newest);
    buf[buf.length - 1] ^= 1;
    await writeFile(newest, buf);
    const again = await openAt(dir);
    expect(again.snapshot().index).toBe(10);
    expect(again.entries(11, 31)).toEqual(range(11, 30));
    expect(warnings.some((w) => w.includes(newest) && w.includes('CRC mismatch'))).toBe(true);
  });

  it('reports a torn WAL tail and keeps the synced records', async () => {
    const s = await openAt(dir);
    s.append(range(1, 5));
    await s.sync();
    await s.close();
    const [seg] = await readdir(join(dir, 'wal'));
    const file = join(dir, 'wal', seg);
    const size = (await stat(file)).size;
    await writeFile(file, Buffer.concat([await readFile(file), Buffer.from([40, 0, 0, 0, 1, 2, 3])]));
    const again = await openAt(dir);
    expect(again.lastIndex()).toBe(5);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${file} at byte offset ${size}`);
  });

  it('lets only one open of a data directory at a time', async () => {
    const s = await openAt(dir);
    const err = await FileStorage.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as DataDirLockedError).code).toBe('DATA_DIR_LOCKED');
    expect((err as DataDirLockedError).pid).toBe(process.pid);
    expect((err as Error).message).toContain(dir);
    s.append(range(1, 2));
    await s.close();
    const again = await openAt(dir);
    expect(again.lastIndex()).toBe(2);
  });

  it('replaces a lock left by a process that is gone', async () => {
    const s = await openAt(dir);
    await s.close();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    await writeFile(join(dir, 'LOCK'), `${dead}\n`);
    const again = await openAt(dir);
    expect(warnings.some((w) => w.includes('stale lock') && w.includes(String(dead)))).toBe(true);
    expect((await readFile(join(dir, 'LOCK'), 'utf8')).trim()).toBe(String(process.pid));
    await again.close();
  });

  it('refuses all further writes after an fdatasync fails', async () => {
    const s = await openAt(dir);
    s.append(range(1, 2));
    await s.sync();
    const fh = await import('node:fs/promises').then((fs) => fs.open(join(root, 'probe'), 'w'));
    const proto = Object.getPrototypeOf(fh) as { datasync: () => Promise<void> };
    await fh.close();
    vi.spyOn(proto, 'datasync').mockRejectedValueOnce(
      Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }),
    );
    s.append(range(3, 4));
    await expect(s.sync()).rejects.toThrow(StorageFailedError);
    expect(() => s.append(range(5, 5))).toThrow(StorageFailedError);
    await expect(s.sync()).rejects.toThrow(StorageFailedError);
    await s.close();
    expect(await readdir(dir)).not.toContain('LOCK');
  });
});

/** A small deterministic PRNG (mulberry32), so a failing seed replays exactly. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('FileStorage against MemoryStorage under random Raft-like writes', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cox-file-storage-model-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** What the file storage must show after a reopen: the model, with the log starting after the snapshot. */
  function expectEquivalent(file: FileStorage, model: MemoryStorage, seed: number): void {
    const ctx = `seed ${seed}`;
    const snap = model.snapshot();
    expect({ ...file.snapshot(), data: [...file.snapshot().data] }, ctx).toEqual({
      ...snap,
      data: [...snap.data],
    });
    expect(file.initialState(), ctx).toEqual(model.initialState());
    const first = Math.max(model.firstIndex(), snap.index + 1);
    expect(file.firstIndex(), ctx).toBe(first);
    expect(file.lastIndex(), ctx).toBe(model.lastIndex());
    expect(file.term(first - 1), ctx).toBe(model.term(first - 1));
    expect(file.entries(first, file.lastIndex() + 1), ctx).toEqual(
      model.entries(first, model.lastIndex() + 1),
    );
  }

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`matches the model after every reopen (seed ${seed})`, async () => {
      const rnd = prng(seed);
      const dir = join(root, `s${seed}`);
      const opts = {
        segmentBytesMax: 1500,
        onWarning: (m: string) => expect.fail(`unexpected warning: ${m}`),
      };
      let file = await FileStorage.open(dir, opts);
      const model = new MemoryStorage();
      let term = 1;
      let created = 0;
      let removed = 0;
      const count = (f: FileStorage) => {
        created += f.walStats.segmentsCreated;
        removed += f.walStats.segmentsRemoved;
      };
      /** Applies one write to both storages (its arguments are drawn before, once). */
      const both = (f: (s: MemoryStorage) => void) => {
        f(model);
        f(file);
      };
      try {
        for (let step = 0; step < 400; step++) {
          const { commit } = model.initialState().hardState;
          const last = model.lastIndex();
          const r = rnd(100);
          if (r < 45) {
            // Entries above the commit index may be replaced (a new leader's log); committed ones never.
            const from = Math.max(model.firstIndex(), commit + 1, last + 1 - rnd(6));
            if (rnd(4) === 0) term++;
            const batch = range(from, from + rnd(12), term, 1 + rnd(90));
            both((s) => s.append(batch));
          } else if (r < 70) {
            const hs = { term, vote: rnd(2) ? 'a' : undefined, commit: commit + rnd(last - commit + 1) };
            both((s) => s.setHardState(hs));
          } else if (r < 78 && commit > model.snapshot().index) {
            const at = model.snapshot().index + 1 + rnd(commit - model.snapshot().index);
            both((s) =>
              s.createSnapshot(at, Uint8Array.of(at & 0xff, step & 0xff), {
                voters: ['a', `v${step}`],
                learners: [],
              }),
            );
            const compactTo = at - rnd(Math.min(8, at - model.firstIndex() + 1));
            if (rnd(2)) both((s) => s.compact(compactTo));
          } else if (r < 81) {
            const at = last + 1 + rnd(20);
            term++;
            both((s) =>
              s.applySnapshot({
                index: at,
                term,
                voters: ['x'],
                learners: ['y'],
                data: Uint8Array.of(step & 0xff),
              }),
            );
          } else if (r < 95) {
            await file.sync();
          } else {
            count(file);
            await file.close();
            file = await FileStorage.open(dir, opts);
            expectEquivalent(file, model, seed);
            // Continue from what the file storage holds: entries below its first index are gone.
            if (model.firstIndex() < file.firstIndex()) model.compact(file.firstIndex() - 1);
          }
        }
        count(file);
        await file.close();
        file = await FileStorage.open(dir, opts);
        expectEquivalent(file, model, seed);
        // The run exercised rollover and segment deletion.
        expect(created, `seed ${seed}`).toBeGreaterThan(3);
        expect(removed, `seed ${seed}`).toBeGreaterThan(0);
      } finally {
        await file.close();
      }
    });
  }
});

/**
 * One conformance suite for the RaftStorage port, run against every adapter: MemoryStorage
 * and FileStorage. Durable adapters also reopen from their files at checkpoints and must come
 * back in the same state.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import { FileStorage } from './file-storage.js';
import { entrySize, MemoryStorage, type RaftStorage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

interface StorageHarness {
  /** The storage under test (a new object after each reopen). */
  readonly storage: RaftStorage;
  /** Durable adapters: closes the storage and opens it again from its files. */
  reopen?: () => Promise<RaftStorage>;
  dispose(): Promise<void>;
}

type StorageFactory = () => Promise<StorageHarness>;

const ent = (index: number, term: number, size = 8): Entry => ({
  index,
  term,
  type: index % 7 === 0 ? 'conf' : 'normal',
  data: new Uint8Array(size).fill((index * 31 + term) & 0xff),
});

const range = (lo: number, hi: number, term: number, size = 8): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => ent(lo + i, term, size));

const hex = (d: Uint8Array): string => Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex');
const plain = (e: Entry) => ({ index: e.index, term: e.term, type: e.type, data: hex(e.data) });
const plainSnap = (s: Snapshot) => ({ ...s, data: hex(s.data) });

/** Everything a reader can observe through the port. */
function stateOf(s: RaftStorage) {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const terms: number[] = [];
  for (let i = first - 1; i <= last; i++) terms.push(s.term(i));
  return {
    first,
    last,
    terms,
    entries: s.entries(first, last + 1).map(plain),
    initial: s.initialState(),
    snapshot: plainSnap(s.snapshot()),
  };
}

/** Runs the storage conformance suite against the adapter that `factory` creates. */
function describeStorage(name: string, factory: StorageFactory): void {
  describe(`RaftStorage conformance: ${name}`, () => {
    let h: StorageHarness;
    let s: RaftStorage;

    beforeEach(async () => {
      h = await factory();
      s = h.storage;
    });
    afterEach(async () => {
      await h.dispose();
    });

    /** Durable adapters: the state after a reopen equals the state before it. */
    async function expectSameAfterReopen(): Promise<void> {
      if (!h.reopen) return;
      const before = stateOf(s);
      s = await h.reopen();
      expect(stateOf(s)).toEqual(before);
    }

    it('starts empty', async () => {
      expect(s.firstIndex()).toBe(1);
      expect(s.lastIndex()).toBe(0);
      expect(s.term(0)).toBe(0);
      expect(s.entries(1, 1)).toEqual([]);
      expect(s.snapshot().index).toBe(0);
      expect(s.initialState()).toEqual({
        hardState: { term: 0, commit: 0 },
        conf: { voters: [], learners: [] },
      });
      await expectSameAfterReopen();
      expect(s.lastIndex()).toBe(0);
    });

    it('appends entries and reads them back', async () => {
      s.append(range(1, 5, 1));
      s.append(range(6, 9, 2));
      expect(s.firstIndex()).toBe(1);
      expect(s.lastIndex()).toBe(9);
      expect(s.term(5)).toBe(1);
      expect(s.term(6)).toBe(2);
      expect(s.entries(3, 7).map(plain)).toEqual([ent(3, 1), ent(4, 1), ent(5, 1), ent(6, 2)].map(plain));
      expect(s.entries(4, 4)).toEqual([]);
      await expectSameAfterReopen();
      s.append(range(10, 12, 3));
      await expectSameAfterReopen();
      expect(s.lastIndex()).toBe(12);
    });

    it('cuts entries at maxBytes but returns at least one entry', () => {
      s.append(range(1, 5, 1, 10));
      const one = entrySize(ent(1, 1, 10));
      expect(s.entries(1, 6, 0)).toHaveLength(1);
      expect(s.entries(1, 6, one - 1)).toHaveLength(1);
      expect(s.entries(1, 6, one)).toHaveLength(1);
      expect(s.entries(1, 6, 2 * one)).toHaveLength(2);
      expect(s.entries(1, 6, 2 * one + 1)).toHaveLength(2);
      expect(s.entries(2, 6, 3 * one)).toHaveLength(3);
      expect(s.entries(1, 6, 100 * one)).toHaveLength(5);
      expect(s.entries(1, 6)).toHaveLength(5);
    });

    it('throws CompactedError below the log and UnavailableError above it', async () => {
      s.append(range(1, 6, 1));
      expect(() => s.term(7)).toThrow(UnavailableError);
      expect(() => s.entries(2, 8)).toThrow(UnavailableError);
      expect(() => s.entries(0, 2)).toThrow(CompactedError);
      s.createSnapshot(3, new Uint8Array([3]), { voters: ['a'], learners: [] });
      s.compact(3);
      expect(s.firstIndex()).toBe(4);
      expect(s.term(3)).toBe(1);
      expect(() => s.term(2)).toThrow(CompactedError);
      expect(() => s.entries(3, 5)).toThrow(CompactedError);
      expect(() => s.entries(2, 5)).toThrow(CompactedError);
      expect(s.entries(4, 7).map((e) => e.index)).toEqual([4, 5, 6]);
      await expectSameAfterReopen();
      expect(() => s.term(2)).toThrow(CompactedError);
      expect(() => s.term(7)).toThrow(UnavailableError);
      const e = (() => {
        try {
          s.entries(1, 2);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(CompactedError);
      expect((e as CompactedError).code).toBe('COMPACTED');
    });

    it('replaces a conflicting suffix on append', async () => {
      s.append(range(1, 5, 1));
      s.append(range(3, 4, 2));
      expect(s.lastIndex()).toBe(4);
      expect([1, 2, 3, 4].map((i) => s.term(i))).toEqual([1, 1, 2, 2]);
      await expectSameAfterReopen();
      s.append(range(2, 2, 3));
      expect(s.lastIndex()).toBe(2);
      expect(s.term(2)).toBe(3);
      s.append(range(3, 6, 3));
      await expectSameAfterReopen();
      expect(s.entries(1, 7).map((e) => e.term)).toEqual([1, 3, 3, 3, 3, 3]);
    });

    it('refuses an append that would leave a gap, changing nothing', async () => {
      s.append(range(1, 3, 1));
      expect(() => s.append(range(5, 6, 1))).toThrow(UnavailableError);
      expect(s.lastIndex()).toBe(3);
      await expectSameAfterReopen();
      expect(s.lastIndex()).toBe(3);
    });

    it('skips the already compacted part of an append', async () => {
      s.append(range(1, 5, 1));
      s.createSnapshot(3, new Uint8Array([1, 2, 3]), { voters: ['a', 'b'], learners: ['c'] });
      s.compact(3);
      s.append(range(1, 2, 1)); // wholly compacted: no change
      expect(s.firstIndex()).toBe(4);
      expect(s.lastIndex()).toBe(5);
      s.append(range(2, 6, 2)); // 2..3 compacted, 4..6 replace the suffix
      expect(s.firstIndex()).toBe(4);
      expect(s.lastIndex()).toBe(6);
      expect(s.term(3)).toBe(1);
      expect([4, 5, 6].map((i) => s.term(i))).toEqual([2, 2, 2]);
      await expectSameAfterReopen();
    });

    it('keeps the hard state and reports it with the snapshot configuration', async () => {
      s.setHardState({ term: 3, vote: 'n2', commit: 0 });
      expect(s.initialState().hardState).toEqual({ term: 3, vote: 'n2', commit: 0 });
      await expectSameAfterReopen();
      s.append(range(1, 4, 3));
      s.setHardState({ term: 4, commit: 2 });
      expect(s.initialState().hardState).toEqual({ term: 4, commit: 2 });
      expect(s.initialState().hardState.vote).toBeUndefined();
      await expectSameAfterReopen();
      expect(s.initialState().hardState.vote).toBeUndefined();
      // The returned state is a copy: changing it changes nothing stored.
      s.initialState().hardState.term = 99;
      expect(s.initialState().hardState.term).toBe(4);
    });

    it('creates a snapshot and compacts up to it', async () => {
      s.append(range(1, 10, 1));
      s.append(range(11, 12, 2));
      s.setHardState({ term: 2, vote: 'a', commit: 12 });
      const data = new Uint8Array([9, 8, 7]);
      const snap = s.createSnapshot(11, data, { voters: ['a', 'b', 'c'], learners: ['d'] });
      expect(snap).toMatchObject({ index: 11, term: 2, voters: ['a', 'b', 'c'], learners: ['d'] });
      expect(hex(s.snapshot().data)).toBe(hex(data));
      expect(s.initialState().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
      expect(() => s.createSnapshot(11, data, { voters: ['a'], learners: [] })).toThrow(
        SnapshotOutOfDateError,
      );
      expect(() => s.createSnapshot(10, data, { voters: ['a'], learners: [] })).toThrow(
        SnapshotOutOfDateError,
      );
      expect(() => s.createSnapshot(13, data, { voters: ['a'], learners: [] })).toThrow(UnavailableError);
      expect(s.firstIndex()).toBe(1); // a snapshot alone drops nothing
      s.compact(11);
      expect(s.firstIndex()).toBe(12);
      expect(s.term(11)).toBe(2);
      expect(s.entries(12, 13).map((e) => e.index)).toEqual([12]);
      await expectSameAfterReopen();
      s.compact(5); // already compacted: no-op
      expect(s.firstIndex()).toBe(12);
      expect(() => s.compact(13)).toThrow(UnavailableError);
      s.append(range(13, 20, 2));
      s.createSnapshot(18, new Uint8Array([18]), { voters: ['a', 'b'], learners: [] });
      s.compact(18);
      await expectSameAfterReopen();
      expect(s.snapshot()).toMatchObject({ index: 18, term: 2, voters: ['a', 'b'] });
    });

    it('applySnapshot replaces the log and raises the commit index', async () => {
      s.append(range(1, 5, 1));
      s.setHardState({ term: 1, commit: 3 });
      const snap: Snapshot = {
        index: 20,
        term: 3,
        voters: ['x', 'y'],
        learners: ['z'],
        data: new Uint8Array([20]),
      };
      s.applySnapshot(snap);
      expect(s.firstIndex()).toBe(21);
      expect(s.lastIndex()).toBe(20);
      expect(s.term(20)).toBe(3);
      expect(() => s.term(5)).toThrow(CompactedError);
      expect(s.entries(21, 21)).toEqual([]);
      expect(s.initialState()).toEqual({
        hardState: { term: 1, commit: 20 },
        conf: { voters: ['x', 'y'], learners: ['z'] },
      });
      expect(plainSnap(s.snapshot())).toEqual(plainSnap(snap));
      await expectSameAfterReopen();
      s.append(range(21, 23, 3));
      s.setHardState({ term: 3, commit: 22 });
      await expectSameAfterReopen();
      const older = { ...snap, index: 10 };
      expect(() => s.applySnapshot(older)).toThrow(SnapshotOutOfDateError);
      // A later snapshot resets the log again, dropping entries past it too.
      s.applySnapshot({ ...snap, index: 22, term: 3, data: new Uint8Array([22]) });
      expect(s.lastIndex()).toBe(22);
      expect(s.firstIndex()).toBe(23);
      await expectSameAfterReopen();
    });

    it('keeps its state through a long run of appends, snapshots and compactions', async () => {
      let term = 1;
      for (let round = 0; round < 12; round++) {
        const last = s.lastIndex();
        if (round % 4 === 3) term++;
        s.append(range(last + 1, last + 40, term, 50));
        if (round % 3 === 2) s.append(range(last + 30, last + 45, ++term, 50)); // conflicting suffix
        s.setHardState({ term, vote: `n${round % 3}`, commit: s.lastIndex() - 5 });
        if (round % 2 === 1) {
          const at = s.lastIndex() - 10;
          s.createSnapshot(at, new Uint8Array([round]), { voters: ['a', 'b', 'c'], learners: [] });
          s.compact(at);
        }
        if (round % 5 === 4) await expectSameAfterReopen();
      }
      await expectSameAfterReopen();
      expect(s.lastIndex()).toBeGreaterThan(400);
    });
  });
}

describeStorage('MemoryStorage', async () => ({
  storage: new MemoryStorage(),
  dispose: async () => undefined,
}));

describeStorage('FileStorage', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cox-storage-'));
  // Small segments so that the suite also exercises rollover and segment deletion.
  const open = () => FileStorage.open(dir, { segmentBytesMax: 2048, onWarning: () => undefined });
  let storage = await open();
  return {
    get storage() {
      return storage;
    },
    reopen: async () => {
      await storage.sync();
      await storage.close();
      storage = await open();
      return storage;
    },
    dispose: async () => {
      await storage.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

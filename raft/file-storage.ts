/**
 * The durable Raft storage: {@link MemoryStorage} for the synchronous reads, plus a
 * write-ahead log and snapshot files for durability.
 *
 * Data directory layout (`<dir>` is the path given to {@link FileStorage.open}):
 *
 * ```
 * <dir>/LOCK                       pid of the process that has the directory open. Created
 *                                  atomically (link of a temp file), removed by close(). A LOCK
 *                                  whose pid is not running is stale and is replaced.
 * <dir>/wal/<seq>-<firstIndex>.wal WAL segments, both numbers 16 zero-padded decimal digits:
 *                                  seq counts segments from 1, firstIndex is the Raft index of
 *                                  the segment's first record. Records are
 *                                  `u32 length | u32 crc32c(payload) | msgpack payload`
 *                                  (little-endian): an entries batch, a hard state, or a
 *                                  snapshot record. Segments roll over at 64 MiB by default.
 * <dir>/snap/<index>-<term>.snap   snapshots, same padding; one framed record whose payload is
 *                                  msgpack { index, term, voters, learners, data }. Written to
 *                                  `<name>.tmp`, fsynced, renamed, directory fsynced; the
 *                                  newest two are kept.
 * <dir>/snap/*.tmp                 a snapshot being written; only a crash leaves one behind,
 *                                  and open() deletes it.
 * ```
 *
 * A snapshot file counts only once a WAL `snapshot` record names it (that record is written
 * after the file is durable), so a crash between the two leaves the previous state intact.
 * On open the state is: the newest snapshot that a WAL record names, then every WAL record
 * replayed over it (entries at or below the snapshot index are skipped, so after a reopen the
 * log starts right after the newest snapshot even if `compact` had kept some entries before
 * it). A torn WAL tail is truncated and reported through `onWarning`; any other damage throws
 * {@link WalCorruptionError} naming the file and byte offset.
 *
 * Writes (`append`, `setHardState`, `applySnapshot`, `createSnapshot`, `compact`) change the
 * in-memory state at once and are queued; `sync()` carries out the queue in order (a snapshot
 * file is written and fsynced before the WAL record that names it) and ends with one
 * `fdatasync` of the WAL for all the records. `compact(i)`
 * deletes whole WAL segments whose entries are all at or below `min(i, durable snapshot
 * index)`, after writing the hard state and the snapshot record again into the current segment.
 */
import { link, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RaftError, UnavailableError } from './errors.js';
import type { DurableStorage } from './ports.js';
import { MemoryStorage } from './storage.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import {
  decodePayload,
  encodeFramedWithBytes,
  ensureDir,
  fsyncDir,
  plainBytes,
  readFramedRecord,
  StorageFailedError,
  Wal,
  WalCorruptionError,
  type WalRecord,
  type WalStats,
} from './wal.js';

/** Options of {@link FileStorage.open}. */
export interface FileStorageOptions {
  /** A WAL segment rolls over before a record would take it past this many bytes. Default 64 MiB. */
  segmentBytesMax?: number;
  /** Receives recoverable problems (torn WAL tail truncated, stale lock, leftover temp files). */
  onWarning?: (msg: string) => void;
}

/** Another live process (or this one) has the data directory open. */
export class DataDirLockedError extends RaftError {
  readonly dir: string;
  /** The pid in the lock file, when it could be read. */
  readonly pid: number | undefined;
  constructor(dir: string, pid: number | undefined) {
    super(
      'DATA_DIR_LOCKED',
      `data directory ${dir} is in use by ${pid === undefined ? 'another process' : `process ${pid}`} ` +
        `(lock file ${join(dir, 'LOCK')}); stop it, or delete the lock file if no such process runs`,
    );
    this.dir = dir;
    this.pid = pid;
  }
}

/** A snapshot number padded so that file names sort by value. */
const pad16 = (n: number): string => String(n).padStart(16, '0');
const SNAP_NAME = /^(\d{16})-(\d{16})\.snap$/;
/** Snapshot files kept on disk: the newest and one before it. */
const SNAPSHOT_FILES_KEPT = 2;

/** The file name of the snapshot at `index`/`term`. */
export function snapshotFileName(index: number, term: number): string {
  return `${pad16(index)}-${pad16(term)}.snap`;
}

interface SnapshotFile {
  index: number;
  term: number;
  file: string;
}

/** A queued write, carried out in order by the next `sync()`. */
type Op =
  | { kind: 'record'; record: WalRecord }
  | { kind: 'snapshot'; snap: Snapshot; reset: boolean }
  | { kind: 'release'; index: number };

const noop = (): void => undefined;
const snapKey = (index: number, term: number): string => `${index}/${term}`;

/**
 * Durable Raft storage in a data directory (layout above). Reads are served from memory;
 * writes are durable once `sync()` resolves. One process at a time: `open` takes `<dir>/LOCK`.
 */
export class FileStorage extends MemoryStorage implements DurableStorage {
  /** The data directory. */
  readonly dir: string;
  private readonly wal: Wal;
  private readonly snapDir: string;
  private readonly lock: DirLock;
  private readonly warn: (msg: string) => void;
  private queue: Op[] = [];
  /** The flush that will take the current queue (not started yet), if one is scheduled. */
  private nextFlush: Promise<void> | undefined;
  /** The last flush scheduled; flushes run one after another. */
  private lastFlush: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;
  /** The hard state of the newest hard-state record handed to the WAL (rewritten before a purge). */
  private walHardState: HardState = { term: 0, commit: 0 };
  /** The newest snapshot whose WAL record is durable. */
  private durableSnap = { index: 0, term: 0 };

  private constructor(dir: string, wal: Wal, lock: DirLock, warn: (msg: string) => void) {
    super();
    this.dir = dir;
    this.wal = wal;
    this.snapDir = join(dir, 'snap');
    this.lock = lock;
    this.warn = warn;
  }

  /**
   * Opens the data directory `dir` (created if missing): takes its lock, loads the newest
   * snapshot and replays the WAL. Throws {@link DataDirLockedError} when another process has it
   * open and {@link WalCorruptionError} when the WAL is damaged other than at its tail.
   */
  static async open(dir: string, opts: FileStorageOptions = {}): Promise<FileStorage> {
    const warn = opts.onWarning ?? ((msg: string) => console.warn(msg));
    await ensureDir(dir);
    const lock = await DirLock.acquire(dir, warn);
    try {
      await ensureDir(join(dir, 'snap'));
      const { wal, records } = await Wal.open(join(dir, 'wal'), {
        segmentBytesMax: opts.segmentBytesMax,
        onWarning: warn,
      });
      const storage = new FileStorage(dir, wal, lock, warn);
      try {
        await storage.recover(records);
      } catch (err) {
        await wal.close().catch(noop);
        throw err;
      }
      return storage;
    } catch (err) {
      await lock.release().catch(noop);
      throw err;
    }
  }

  /** WAL counters (fdatasyncs, bytes, segments), for tests and metrics. */
  get walStats(): Readonly<WalStats> {
    return this.wal.stats;
  }

  /** Paths of the WAL segment files, oldest first. */
  walSegmentFiles(): string[] {
    return this.wal.segmentInfo().map((s) => s.file);
  }

  override append(entries: Entry[]): void {
    this.assertWritable();
    const first = this.firstIndex();
    super.append(entries);
    if (entries.length === 0 || entries[entries.length - 1].index < first) return;
    // A copy of the batch (the caller may reuse its array); entries themselves are immutable.
    const from = Math.max(0, first - entries[0].index);
    this.queue.push({ kind: 'record', record: { kind: 'entries', entries: entries.slice(from) } });
  }

  override setHardState(hs: HardState): void {
    this.assertWritable();
    super.setHardState(hs);
    this.queue.push({ kind: 'record', record: { kind: 'hardState', hardState: { ...this.hard } } });
  }

  override applySnapshot(snap: Snapshot): void {
    this.assertWritable();
    super.applySnapshot(snap);
    this.queue.push({ kind: 'snapshot', snap, reset: true });
  }

  override createSnapshot(index: number, data: Uint8Array, conf: ConfState): Snapshot {
    this.assertWritable();
    const snap = super.createSnapshot(index, data, conf);
    this.queue.push({ kind: 'snapshot', snap, reset: false });
    return snap;
  }

  override compact(index: number): void {
    this.assertWritable();
    const before = this.firstIndex();
    super.compact(index);
    if (this.firstIndex() > before) this.queue.push({ kind: 'release', index });
  }

  /**
   * Makes every write made before this call durable: snapshot files first, then the WAL
   * records with one `fdatasync`. Calls coalesce: all calls made before a flush starts share
   * it; a call made while a flush runs gets the next one. After an I/O error every call
   * rejects (the written state is unknown).
   */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.nextFlush) return this.nextFlush;
    if (this.queue.length === 0) return this.lastFlush ?? Promise.resolve();
    const prev = this.lastFlush;
    const flush = (async () => {
      await prev?.catch(noop); // also yields, so that nextFlush is set before the queue is taken
      this.nextFlush = undefined;
      if (this.failure) throw this.failure;
      const ops = this.queue;
      this.queue = [];
      try {
        await this.flush(ops);
      } catch (err) {
        this.failure ??= err instanceof RaftError ? err : new StorageFailedError(err);
        throw this.failure;
      }
    })();
    this.nextFlush = flush;
    this.lastFlush = flush;
    flush.then(
      () => this.forgetFlush(flush),
      () => this.forgetFlush(flush),
    );
    return flush;
  }

  /** Syncs outstanding writes, closes the WAL and releases the lock. Reads keep working. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.failure) await this.sync();
    } finally {
      this.closed = true;
      await this.lastFlush?.catch(noop);
      await this.wal.close().catch(noop);
      await this.lock.release();
    }
  }

  private forgetFlush(flush: Promise<void>): void {
    if (this.lastFlush === flush) this.lastFlush = undefined;
  }

  private assertWritable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error(`storage ${this.dir} is closed`);
  }

  private async flush(ops: Op[]): Promise<void> {
    let releaseTo = 0;
    let wroteSnapshot = false;
    let snap = this.durableSnap;
    for (const op of ops) {
      switch (op.kind) {
        case 'record':
          this.wal.append(op.record);
          if (op.record.kind === 'hardState') this.walHardState = op.record.hardState;
          break;
        case 'snapshot': {
          const { index, term } = op.snap;
          await this.writeSnapshotFile(op.snap);
          this.wal.append({ kind: 'snapshot', index, term, reset: op.reset });
          if (op.reset && this.walHardState.commit < index) {
            // Replay raises the commit index at this record, as applySnapshot did in memory.
            this.walHardState = { ...this.walHardState, commit: index };
          }
          snap = { index, term };
          wroteSnapshot = true;
          break;
        }
        case 'release':
          releaseTo = Math.max(releaseTo, op.index);
          break;
        default: {
          const never: never = op;
          throw new Error(`unknown storage op ${JSON.stringify(never)}`);
        }
      }
    }
    await this.wal.sync();
    this.durableSnap = snap;
    if (releaseTo > 0) await this.releaseSegments(Math.min(releaseTo, snap.index));
    if (wroteSnapshot) await this.pruneSnapshots();
  }

  /**
   * Deletes WAL segments holding only entries at or below `index`. First the records that
   * must survive them (hard state, the snapshot record) are written again and synced into the
   * last segment, which is never deleted.
   */
  private async releaseSegments(index: number): Promise<void> {
    if (index <= 0 || this.wal.releasableSegments(index) === 0) return;
    this.wal.append({ kind: 'hardState', hardState: this.walHardState });
    const { index: si, term: st } = this.durableSnap;
    if (si > 0) this.wal.append({ kind: 'snapshot', index: si, term: st, reset: false });
    await this.wal.sync();
    await this.wal.releaseSegments(index);
  }

  private async writeSnapshotFile(snap: Snapshot): Promise<void> {
    const name = snapshotFileName(snap.index, snap.term);
    const tmp = join(this.snapDir, `${name}.tmp`);
    const { index, term, voters, learners, data } = snap;
    const fh = await open(tmp, 'w');
    try {
      // In pieces, checksummed in slices: a whole-state snapshot packed and checksummed at once
      // stalled the event loop (and Raft's heartbeats) for seconds.
      for (const piece of await encodeFramedWithBytes({ index, term, voters, learners }, 'data', data)) {
        await fh.writeFile(piece);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.snapDir, name));
    await fsyncDir(this.snapDir);
  }

  /** Deletes all but the newest snapshot files (by index). */
  private async pruneSnapshots(): Promise<void> {
    const files = await this.listSnapshots();
    for (const f of files.slice(SNAPSHOT_FILES_KEPT)) await unlink(f.file);
  }

  /** Snapshot files, newest first. Deletes leftover temp files. */
  private async listSnapshots(): Promise<SnapshotFile[]> {
    const out: SnapshotFile[] = [];
    for (const name of await readdir(this.snapDir)) {
      const file = join(this.snapDir, name);
      const m = SNAP_NAME.exec(name);
      if (m) out.push({ index: Number(m[1]), term: Number(m[2]), file });
      else if (name.endsWith('.tmp')) {
        this.warn(`storage: deleting ${file}, an unfinished snapshot left by a crash`);
        await unlink(file);
      } else this.warn(`storage: ignoring unexpected file ${file}`);
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Rebuilds the in-memory state: base snapshot, then the WAL records in order. */
  private async recover(records: { record: WalRecord; file: string; offset: number }[]): Promise<void> {
    const named = new Set<string>();
    for (const { record } of records) {
      if (record.kind === 'snapshot') named.add(snapKey(record.index, record.term));
    }
    const files = await this.listSnapshots();
    let base: Snapshot | undefined;
    for (const f of files) {
      if (!named.has(snapKey(f.index, f.term))) continue;
      try {
        base = await readSnapshotFile(f);
        break;
      } catch (err) {
        this.warn(
          `storage: snapshot ${f.file} is unreadable (${(err as Error).message}); trying an older one`,
        );
      }
    }
    const baseIndex = base?.index ?? 0;
    // Newer files that no WAL record names were never acknowledged (crash before their record).
    for (const f of files) {
      if (f.index > baseIndex && !named.has(snapKey(f.index, f.term))) {
        this.warn(`storage: deleting ${f.file}, a snapshot whose WAL record was never written`);
        await unlink(f.file);
      }
    }
    if (base) {
      const hard = this.hard; // the commit index comes from the WAL records, as it was written
      super.applySnapshot(base);
      this.hard = hard;
      this.durableSnap = { index: base.index, term: base.term };
    }
    for (const { record, file, offset } of records) this.replay(record, file, offset);
    this.walHardState = { ...this.hard };
  }

  /** Applies one WAL record to the in-memory state during recovery. */
  private replay(record: WalRecord, file: string, offset: number): void {
    switch (record.kind) {
      case 'entries':
        try {
          super.append(record.entries);
        } catch (err) {
          if (!(err instanceof UnavailableError)) throw err;
          throw new WalCorruptionError(
            file,
            offset,
            `entries from index ${record.entries[0].index} leave a gap after the last index ` +
              `${this.lastIndex()} (a WAL segment or snapshot file is missing)`,
          );
        }
        return;
      case 'hardState':
        super.setHardState(record.hardState);
        return;
      case 'snapshot': {
        if (!record.reset) return; // names a snapshot; a newer one than the base is simply unused
        const { index, term } = record;
        if (index > this.snap.index || (index === this.snap.index && term !== this.snap.term)) {
          throw new WalCorruptionError(
            file,
            offset,
            `the log restarts at snapshot ${index} (term ${term}) here, but its file ` +
              `${join(this.snapDir, snapshotFileName(index, term))} is missing or unreadable`,
          );
        }
        // The log restarted at or below the base snapshot: nothing of it before the base survives.
        const commit = Math.max(this.hard.commit, index);
        super.applySnapshot(this.snap);
        this.hard = { ...this.hard, commit };
        return;
      }
      default: {
        const never: never = record;
        throw new Error(`unknown WAL record ${JSON.stringify(never)}`);
      }
    }
  }
}

/** Reads and checks one snapshot file; throws an Error saying what is wrong. */
async function readSnapshotFile(f: SnapshotFile): Promise<Snapshot> {
  const buf = await readFile(f.file);
  const r = readFramedRecord(buf, 0);
  if (!r.ok) throw new Error(r.reason);
  if (r.next !== buf.length) throw new Error(`${buf.length - r.next} unexpected bytes after the record`);
  const v = decodePayload(r.payload) as Partial<Snapshot> | null;
  const strings = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === 'string');
  if (
    v === null ||
    typeof v !== 'object' ||
    v.index !== f.index ||
    v.term !== f.term ||
    !strings(v.voters) ||
    !strings(v.learners) ||
    !(v.data instanceof Uint8Array)
  ) {
    throw new Error('malformed snapshot (fields do not match the file name or are missing)');
  }
  return { index: v.index, term: v.term, voters: v.voters, learners: v.learners, data: plainBytes(v.data) };
}

/** Distinguishes the temp files of concurrent lock attempts in one process. */
let lockAttempts = 0;

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * `<dir>/LOCK`, holding the owner's pid. Created by hard-linking a temp file that already holds
 * the pid, so the lock never exists empty. A lock whose pid is not running is stale and is
 * replaced (with a warning). Two processes replacing one stale lock at the same instant can
 * both win; a live lock is never taken over.
 */
class DirLock {
  private constructor(readonly file: string) {}

  static async acquire(dir: string, warn: (msg: string) => void): Promise<DirLock> {
    const file = join(dir, 'LOCK');
    const tmp = join(dir, `LOCK.${process.pid}.${++lockAttempts}.tmp`);
    await writeFile(tmp, `${process.pid}\n`);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await link(tmp, file);
          return new DirLock(file);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const text = (await readFile(file, 'utf8').catch(() => '')).trim();
        const pid = /^\d+$/.test(text) ? Number(text) : undefined;
        if (pid !== undefined && pidAlive(pid)) throw new DataDirLockedError(dir, pid);
        warn(`storage: replacing stale lock ${file} (its process ${text || '?'} is not running)`);
        await unlink(file).catch(noop);
      }
      throw new DataDirLockedError(dir, undefined);
    } finally {
      await unlink(tmp).catch(noop);
    }
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    const text = await readFile(this.file, 'utf8').catch(() => '');
    if (text.trim() === String(process.pid)) await unlink(this.file);
  }
}

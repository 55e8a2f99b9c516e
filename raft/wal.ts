/**
 * The segmented write-ahead log beneath {@link FileStorage}.
 *
 * Files: `<walDir>/<seq>-<firstIndex>.wal`, both numbers zero-padded to 16 decimal digits,
 * e.g. `0000000000000003-0000000000001201.wal`. `seq` starts at 1 and grows by one per new
 * segment; replay reads segments in `seq` order (gaps are allowed: they are left when a purge
 * of old segments is cut short by a crash). `firstIndex` is the Raft index the segment's first
 * record starts at (the first entry's index, or the next expected index when the segment
 * starts with another record); it is informative only.
 *
 * Every record is `u32 length | u32 crc32c(payload) | payload`, little-endian, where payload is
 * one msgpack value (see {@link WalRecord}). A record never spans two segments.
 *
 * Durability: `append` only encodes and buffers; `sync()` writes everything buffered with one
 * positional `writev` and makes it durable with ONE `fdatasync` (group commit), on the libuv
 * thread pool. A segment rolls over before a record would take it past `segmentBytesMax`:
 * the old segment is fdatasync'ed first (so a non-last segment is always complete), then the
 * new file is created and the directory fsynced.
 *
 * Recovery on open: a damaged record at the very end of the LAST segment (incomplete header or
 * payload, CRC mismatch, zero-filled space) with no valid record after it is a torn write from
 * a crash: the file is truncated there and the cut reported through `onWarning`. Damage
 * anywhere else (a valid record follows it, or it is in an earlier segment), and any record
 * whose CRC matches but which does not decode, is corruption: {@link WalCorruptionError}, and
 * the WAL refuses to open rather than drop records that were acknowledged as durable.
 */
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';
import { crc32c } from './crc32c.js';
import { RaftError } from './errors.js';
import type { Entry, HardState } from './types.js';

/** Default size at which a segment rolls over: 64 MiB. */
export const WAL_SEGMENT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Largest payload of one record (WAL record or snapshot file): 1 GiB. */
export const RECORD_PAYLOAD_BYTES_MAX = 1024 * 1024 * 1024;
/** `u32 length | u32 crc32c`. */
export const RECORD_HEADER_BYTES = 8;

const SEGMENT_NAME = /^(\d{16})-(\d{16})\.wal$/;

/**
 * A record in the WAL.
 * - `entries`: a contiguous batch of log entries; an entry whose index is already held
 *   replaces it and everything after it (truncation is implicit).
 * - `hardState`: the latest hard state; the last one replayed wins.
 * - `snapshot`: the snapshot `(index, term)` has been written to its snapshot file, which was
 *   durable before this record was written. `reset: true` (InstallSnapshot) means the log
 *   restarts after `index`; `reset: false` (a local snapshot, or a checkpoint written before old
 *   segments are deleted) leaves the log as it is.
 */
export type WalRecord =
  | { kind: 'entries'; entries: Entry[] }
  | { kind: 'hardState'; hardState: HardState }
  | { kind: 'snapshot'; index: number; term: number; reset: boolean };

/** A record read back on open, with where it was found. */
export interface ReplayedRecord {
  record: WalRecord;
  /** Path of the segment file. */
  file: string;
  /** Byte offset of the record's header in that file. */
  offset: number;
}

export interface WalOptions {
  /** A segment rolls over before a record would take it past this many bytes. Default 64 MiB. */
  segmentBytesMax?: number;
  /** Receives recoverable problems found on open (torn tail truncated, stray files). */
  onWarning?: (msg: string) => void;
}

/** Counters since the WAL was opened. */
export interface WalStats {
  /** `sync()` calls that had something to write. */
  syncs: number;
  /** `fdatasync` calls on segment files (one per sync, plus one per rollover). */
  fdatasyncs: number;
  /** `fsync` calls on the WAL directory (segment created). */
  dirSyncs: number;
  recordsWritten: number;
  bytesWritten: number;
  segmentsCreated: number;
  segmentsRemoved: number;
}

/**
 * A record that failed its CRC or did not decode, at a place where it cannot be a torn tail.
 * The data directory needs an operator: the WAL refuses to open.
 */
export class WalCorruptionError extends RaftError {
  /** Path of the damaged file. */
  readonly file: string;
  /** Byte offset of the damaged record in that file. */
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super(
      'WAL_CORRUPTION',
      `WAL corruption in ${file} at byte offset ${offset}: ${reason}; refusing to start`,
    );
    this.file = file;
    this.offset = offset;
  }
}

/** An earlier write or fsync failed; the written state is unknown, so the storage stops. */
export class StorageFailedError extends RaftError {
  constructor(cause: unknown) {
    super('STORAGE_FAILED', `storage failed after an I/O error: ${String(cause)}`, { cause });
  }
}

// ------------------------------------------------------------------ record framing

/** Frames a payload as `u32 length | u32 crc32c | payload` (little-endian) in a new buffer. */
export function frameRecord(payload: Uint8Array): Buffer {
  if (payload.byteLength > RECORD_PAYLOAD_BYTES_MAX) {
    throw new RangeError(`record of ${payload.byteLength} bytes exceeds ${RECORD_PAYLOAD_BYTES_MAX} bytes`);
  }
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.byteLength);
  buf.writeUInt32LE(payload.byteLength, 0);
  buf.writeUInt32LE(crc32c(payload), 4);
  buf.set(payload, RECORD_HEADER_BYTES);
  return buf;
}

/** The outcome of reading one framed record at an offset. `payload` is a view into the input. */
export type FramedRead = { ok: true; payload: Buffer; next: number } | { ok: false; reason: string };

/** Reads the framed record at `pos`; says why when there is no valid record there. */
export function readFramedRecord(buf: Buffer, pos: number): FramedRead {
  const avail = buf.length - pos;
  if (avail < RECORD_HEADER_BYTES) {
    return { ok: false, reason: `incomplete record header (${avail} of ${RECORD_HEADER_BYTES} bytes)` };
  }
  const len = buf.readUInt32LE(pos);
  const crc = buf.readUInt32LE(pos + 4);
  if (len === 0) {
    return { ok: false, reason: crc === 0 ? 'zero-filled space' : 'record of length 0' };
  }
  if (len > RECORD_PAYLOAD_BYTES_MAX) {
    return { ok: false, reason: `record length ${len} exceeds ${RECORD_PAYLOAD_BYTES_MAX} bytes` };
  }
  if (len > avail - RECORD_HEADER_BYTES) {
    return {
      ok: false,
      reason: `incomplete record payload (${avail - RECORD_HEADER_BYTES} of ${len} bytes)`,
    };
  }
  const payload = buf.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + len);
  const actual = crc32c(payload);
  if (actual !== crc) {
    return {
      ok: false,
      reason: `CRC mismatch (stored 0x${crc.toString(16)}, computed 0x${actual.toString(16)})`,
    };
  }
  return { ok: true, payload, next: pos + RECORD_HEADER_BYTES + len };
}

/**
 * The offset of the first valid record starting at or after `from`, or -1. Tries the framed
 * successor `hint` first (the usual case: one record's payload is damaged), then every offset.
 */
function findValidRecord(buf: Buffer, from: number, hint: number): number {
  if (hint >= from && readFramedRecord(buf, hint).ok) return hint;
  for (let p = from; p + RECORD_HEADER_BYTES < buf.length; p++) {
    const len = buf.readUInt32LE(p);
    if (len === 0 || len > buf.length - p - RECORD_HEADER_BYTES) continue;
    if (readFramedRecord(buf, p).ok) return p;
  }
  return -1;
}

interface ParsedSegment {
  /** Valid records: payload views into the segment buffer and their offsets. */
  records: { payload: Buffer; offset: number }[];
  /** Where the valid records end (the file is truncated here when `torn` is set). */
  validEnd: number;
  torn?: { offset: number; reason: string };
}

/** Splits a segment into records; throws WalCorruptionError for damage that is not a torn tail. */
function parseSegment(buf: Buffer, file: string, isLast: boolean): ParsedSegment {
  const records: { payload: Buffer; offset: number }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = readFramedRecord(buf, pos);
    if (r.ok) {
      records.push({ payload: r.payload, offset: pos });
      pos = r.next;
      continue;
    }
    const len = buf.length - pos >= RECORD_HEADER_BYTES ? buf.readUInt32LE(pos) : 0;
    const after = findValidRecord(buf, pos + 1, pos + RECORD_HEADER_BYTES + len);
    if (after !== -1) {
      throw new WalCorruptionError(file, pos, `${r.reason}, followed by a valid record at offset ${after}`);
    }
    if (!isLast) {
      throw new WalCorruptionError(file, pos, `${r.reason} in a segment that is not the last one`);
    }
    return { records, validEnd: pos, torn: { offset: pos, reason: r.reason } };
  }
  return { records, validEnd: pos };
}

// ------------------------------------------------------------------ record encoding

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

const ENTRY_TYPE_CODE = { normal: 0, conf: 1 } as const;

function toWire(rec: WalRecord): unknown {
  switch (rec.kind) {
    case 'entries': {
      const ents = rec.entries;
      for (let j = 1; j < ents.length; j++) {
        if (ents[j].index !== ents[0].index + j) {
          throw new Error(
            `WAL entries batch is not contiguous at ${ents[j].index} (starts at ${ents[0].index})`,
          );
        }
      }
      return { k: 'ents', i: ents[0].index, e: ents.map((e) => [e.term, ENTRY_TYPE_CODE[e.type], e.data]) };
    }
    case 'hardState': {
      const { term, vote, commit } = rec.hardState;
      return vote === undefined ? { k: 'hs', term, commit } : { k: 'hs', term, vote, commit };
    }
    case 'snapshot':
      return { k: 'snap', i: rec.index, t: rec.term, reset: rec.reset };
    default: {
      const never: never = rec;
      throw new Error(`unknown WAL record ${JSON.stringify(never)}`);
    }
  }
}

/** A plain Uint8Array view of msgpackr's Buffer, so decoded data looks like what was written. */
export const plainBytes = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Decodes a record payload; throws an Error naming what is wrong with it. */
function fromWire(payload: Buffer): WalRecord {
  const v = unpackr.unpack(payload) as Record<string, unknown> | null;
  if (v === null || typeof v !== 'object') throw new Error('payload is not a map');
  switch (v.k) {
    case 'ents': {
      const first = v.i;
      const raw = v.e;
      if (!isIndex(first) || first < 1 || !Array.isArray(raw) || raw.length === 0) {
        throw new Error('malformed entries record');
      }
      const entries: Entry[] = raw.map((x: unknown, j) => {
        if (
          !Array.isArray(x) ||
          !isIndex(x[0]) ||
          (x[1] !== 0 && x[1] !== 1) ||
          !(x[2] instanceof Uint8Array)
        ) {
          throw new Error(`malformed entry ${first + j}`);
        }
        return { index: first + j, term: x[0], type: x[1] === 1 ? 'conf' : 'normal', data: plainBytes(x[2]) };
      });
      return { kind: 'entries', entries };
    }
    case 'hs': {
      if (!isIndex(v.term) || !isIndex(v.commit) || (v.vote !== undefined && typeof v.vote !== 'string')) {
        throw new Error('malformed hard state record');
      }
      const hardState: HardState = { term: v.term, commit: v.commit };
      if (v.vote !== undefined) hardState.vote = v.vote as string;
      return { kind: 'hardState', hardState };
    }
    case 'snap': {
      if (!isIndex(v.i) || !isIndex(v.t) || typeof v.reset !== 'boolean') {
        throw new Error('malformed snapshot record');
      }
      return { kind: 'snapshot', index: v.i, term: v.t, reset: v.reset };
    }
    default:
      throw new Error(`unknown record kind ${JSON.stringify(v.k)}`);
  }
}

/** Encodes any msgpack-able value as a framed record (used for snapshot files too). */
export function encodeFramed(value: unknown): Buffer {
  return frameRecord(packr.pack(value));
}

/** Bytes checksummed between two yields of {@link encodeFramedWithBytes}. */
const FRAMED_CRC_SLICE_BYTES = 4 * 1024 * 1024;

/**
 * The same record as `encodeFramed({ ...fields, [key]: bytes })` (a msgpack map, `bytes` as
 * bin), as pieces to write in order, without copying `bytes` and with the checksum computed in
 * slices between which the event loop runs: a snapshot of a large state is tens of megabytes,
 * and packing and checksumming it at once stalled a master (and its Raft heartbeats) for
 * seconds.
 */
export async function encodeFramedWithBytes(
  fields: Record<string, unknown>,
  key: string,
  bytes: Uint8Array,
): Promise<Uint8Array[]> {
  const prefix = new Uint8Array(packr.pack(fields));
  const count = Object.keys(fields).length;
  // The map's header says one entry more: `key` and `bytes` follow the fields.
  if (count < 15 && prefix[0] === (0x80 | count)) {
    prefix[0] = 0x80 | (count + 1); // fixmap
  } else if (prefix[0] === 0xde && ((prefix[1] << 8) | prefix[2]) === count && count < 0xffff) {
    prefix[1] = (count + 1) >> 8; // map16 (msgpackr's header for objects)
    prefix[2] = (count + 1) & 0xff;
  } else {
    return [encodeFramed({ ...fields, [key]: bytes })];
  }
  const keyBytes = packr.pack(key);
  const binHeader = new Uint8Array(5); // bin32: 0xc6, length big-endian
  binHeader[0] = 0xc6;
  new DataView(binHeader.buffer).setUint32(1, bytes.byteLength);
  const pieces = [prefix, new Uint8Array(keyBytes), binHeader];
  const length = pieces.reduce((n, b) => n + b.byteLength, 0) + bytes.byteLength;
  if (length > RECORD_PAYLOAD_BYTES_MAX) {
    throw new RangeError(`record of ${length} bytes exceeds ${RECORD_PAYLOAD_BYTES_MAX} bytes`);
  }
  let crc = 0;
  for (const b of pieces) crc = crc32c(b, crc);
  for (let at = 0; at < bytes.byteLength; at += FRAMED_CRC_SLICE_BYTES) {
    crc = crc32c(bytes.subarray(at, Math.min(bytes.byteLength, at + FRAMED_CRC_SLICE_BYTES)), crc);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(length, 0);
  header.writeUInt32LE(crc, 4);
  return [header, ...pieces, bytes];
}

/** Decodes the msgpack payload of a framed record. */
export function decodePayload(payload: Uint8Array): unknown {
  return unpackr.unpack(payload);
}

// ------------------------------------------------------------------ files

/** fsyncs a directory so that entries created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates `dir` (and parents) if missing; when created, fsyncs its parent. */
export async function ensureDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined) await fsyncDir(dirname(dir));
}

const pad16 = (n: number): string => String(n).padStart(16, '0');

/** The file name of segment `seq` whose first record starts at Raft index `firstIndex`. */
export function segmentName(seq: number, firstIndex: number): string {
  return `${pad16(seq)}-${pad16(firstIndex)}.wal`;
}

interface Segment {
  seq: number;
  firstIndex: number;
  file: string;
  /** Bytes of valid records in the file (the append position of the last segment). */
  bytes: number;
  /** Highest entry index written in the segment (0: none). */
  maxEntryIndex: number;
}

interface PendingRecord {
  buf: Buffer;
  firstIndex: number;
  maxEntryIndex: number;
}

/** Information about one segment, for tests and diagnostics. */
export interface SegmentInfo {
  file: string;
  seq: number;
  firstIndex: number;
  bytes: number;
  maxEntryIndex: number;
}

/** The segmented write-ahead log. Create with {@link Wal.open}. */
export class Wal {
  readonly dir: string;
  private readonly segmentBytesMax: number;
  private readonly segments: Segment[];
  private fh: FileHandle;
  /** Raft index the next record starts at (names new segments). */
  private nextIndex: number;
  private pending: PendingRecord[] = [];
  /** Records appended so far / made durable so far (sequence numbers for sync coalescing). */
  private appendedSeq = 0;
  private durableSeq = 0;
  private inflight: Promise<void> | undefined;
  private failure: StorageFailedError | undefined;
  private closed = false;
  private readonly counters: WalStats = {
    syncs: 0,
    fdatasyncs: 0,
    dirSyncs: 0,
    recordsWritten: 0,
    bytesWritten: 0,
    segmentsCreated: 0,
    segmentsRemoved: 0,
  };

  private constructor(
    dir: string,
    segmentBytesMax: number,
    segments: Segment[],
    fh: FileHandle,
    next: number,
  ) {
    this.dir = dir;
    this.segmentBytesMax = segmentBytesMax;
    this.segments = segments;
    this.fh = fh;
    this.nextIndex = next;
  }

  /**
   * Opens (creating if needed) the WAL in `dir`, repairs a torn tail, and returns every record
   * in write order. Throws {@link WalCorruptionError} when a damaged record is not a torn tail.
   */
  static async open(dir: string, opts: WalOptions = {}): Promise<{ wal: Wal; records: ReplayedRecord[] }> {
    const segmentBytesMax = opts.segmentBytesMax ?? WAL_SEGMENT_BYTES_MAX_DEFAULT;
    if (!(segmentBytesMax > 0)) throw new RangeError(`segmentBytesMax must be > 0, got ${segmentBytesMax}`);
    const warn = opts.onWarning ?? ((msg: string) => console.warn(msg));
    await ensureDir(dir);

    const found: { seq: number; firstIndex: number; file: string }[] = [];
    for (const name of await readdir(dir)) {
      const m = SEGMENT_NAME.exec(name);
      if (m) found.push({ seq: Number(m[1]), firstIndex: Number(m[2]), file: join(dir, name) });
      else warn(`wal: ignoring unexpected file ${join(dir, name)}`);
    }
    found.sort((a, b) => a.seq - b.seq);

    const records: ReplayedRecord[] = [];
    const segments: Segment[] = [];
    let nextIndex = 1;
    for (let s = 0; s < found.length; s++) {
      const { seq, firstIndex, file } = found[s];
      const buf = await readFile(file);
      const parsed = parseSegment(buf, file, s === found.length - 1);
      let maxEntryIndex = 0;
      for (const { payload, offset } of parsed.records) {
        let record: WalRecord;
        try {
          // A private copy per record: entries keep views into it, not into the whole segment.
          record = fromWire(Buffer.from(payload));
        } catch (err) {
          throw new WalCorruptionError(file, offset, `undecodable record (${(err as Error).message})`);
        }
        if (record.kind === 'entries') {
          const last = record.entries[record.entries.length - 1].index;
          maxEntryIndex = Math.max(maxEntryIndex, last);
          nextIndex = last + 1;
        } else if (record.kind === 'snapshot' && record.reset) {
          nextIndex = record.index + 1;
        }
        records.push({ record, file, offset });
      }
      if (parsed.torn) {
        const cut = buf.length - parsed.validEnd;
        warn(
          `wal: torn tail in ${file} at byte offset ${parsed.torn.offset} (${parsed.torn.reason}): ` +
            `truncated ${cut} bytes`,
        );
        const fh = await open(file, 'r+');
        try {
          await fh.truncate(parsed.validEnd);
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }
      segments.push({ seq, firstIndex, file, bytes: parsed.validEnd, maxEntryIndex });
    }

    let fh: FileHandle;
    let created = false;
    if (segments.length === 0) {
      const file = join(dir, segmentName(1, nextIndex));
      fh = await open(file, 'wx');
      segments.push({ seq: 1, firstIndex: nextIndex, file, bytes: 0, maxEntryIndex: 0 });
      await fsyncDir(dir);
      created = true;
    } else {
      fh = await open(segments[segments.length - 1].file, 'r+');
    }
    const wal = new Wal(dir, segmentBytesMax, segments, fh, nextIndex);
    if (created) {
      wal.counters.segmentsCreated++;
      wal.counters.dirSyncs++;
    }
    return { wal, records };
  }

  /** Counters since open. */
  get stats(): Readonly<WalStats> {
    return { ...this.counters };
  }

  /** The segments on disk, oldest first. */
  segmentInfo(): SegmentInfo[] {
    return this.segments.map(({ file, seq, firstIndex, bytes, maxEntryIndex }) => ({
      file,
      seq,
      firstIndex,
      bytes,
      maxEntryIndex,
    }));
  }

  /** Encodes and buffers one record; it is written and made durable by the next `sync()`. */
  append(record: WalRecord): void {
    this.assertUsable();
    if (record.kind === 'entries' && record.entries.length === 0) return;
    const buf = frameRecord(packr.pack(toWire(record)));
    let firstIndex = this.nextIndex;
    let maxEntryIndex = 0;
    if (record.kind === 'entries') {
      firstIndex = record.entries[0].index;
      maxEntryIndex = record.entries[record.entries.length - 1].index;
      this.nextIndex = maxEntryIndex + 1;
    } else if (record.kind === 'snapshot' && record.reset) {
      this.nextIndex = record.index + 1;
    }
    this.pending.push({ buf, firstIndex, maxEntryIndex });
    this.appendedSeq++;
  }

  /**
   * Makes every record appended before this call durable: one positional write of all buffered
   * records and one `fdatasync`. Concurrent calls coalesce: a call made while a sync is in
   * flight waits for it and then, if its own records were not in it, runs (or joins) the next.
   */
  async sync(): Promise<void> {
    const target = this.appendedSeq;
    while (this.durableSeq < target) {
      this.assertUsable();
      if (!this.inflight) {
        this.inflight = this.writeAndSync().finally(() => {
          this.inflight = undefined;
        });
      }
      await this.inflight;
    }
  }

  /**
   * Deletes the oldest segments while every entry in them is at or below `index`, never the
   * last segment. The caller must have made durable, in a later segment, every record of
   * the deleted ones that still matters (the hard state and the snapshot record).
   * Returns the number of segments deleted.
   */
  async releaseSegments(index: number): Promise<number> {
    this.assertUsable();
    let n = 0;
    while (this.segments.length > 1 && this.segments[0].maxEntryIndex <= index) {
      const seg = this.segments[0];
      try {
        await unlink(seg.file);
      } catch (err) {
        throw this.fail(err);
      }
      this.segments.shift();
      n++;
    }
    this.counters.segmentsRemoved += n;
    return n;
  }

  /** How many segments {@link releaseSegments} would delete for `index`. */
  releasableSegments(index: number): number {
    let n = 0;
    while (n < this.segments.length - 1 && this.segments[n].maxEntryIndex <= index) n++;
    return n;
  }

  /** Syncs what is buffered (unless the WAL failed) and closes the current segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.failure) await this.sync();
    } finally {
      this.closed = true;
      await this.inflight?.catch(() => undefined);
      // After a failure the handle may already be closed (a rollover that failed half way).
      await this.fh.close().catch((err: unknown) => {
        if (!this.failure) throw err;
      });
    }
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error(`WAL ${this.dir} is closed`);
  }

  private fail(err: unknown): StorageFailedError {
    this.failure ??= err instanceof StorageFailedError ? err : new StorageFailedError(err);
    return this.failure;
  }

  private async writeAndSync(): Promise<void> {
    const batch = this.pending;
    const seq = this.appendedSeq;
    this.pending = [];
    try {
      let chunk: Buffer[] = [];
      let chunkBytes = 0;
      for (const rec of batch) {
        const cur = this.segments[this.segments.length - 1];
        const used = cur.bytes + chunkBytes;
        if (used > 0 && used + rec.buf.length > this.segmentBytesMax) {
          await this.writeChunk(chunk, chunkBytes);
          chunk = [];
          chunkBytes = 0;
          await this.rollover(rec.firstIndex);
        }
        chunk.push(rec.buf);
        chunkBytes += rec.buf.length;
        const seg = this.segments[this.segments.length - 1];
        if (rec.maxEntryIndex > seg.maxEntryIndex) seg.maxEntryIndex = rec.maxEntryIndex;
      }
      await this.writeChunk(chunk, chunkBytes);
      await this.fh.datasync();
      this.counters.fdatasyncs++;
      this.counters.syncs++;
      this.counters.recordsWritten += batch.length;
      this.durableSeq = seq;
    } catch (err) {
      throw this.fail(err);
    }
  }

  private async writeChunk(chunk: Buffer[], bytes: number): Promise<void> {
    if (bytes === 0) return;
    const seg = this.segments[this.segments.length - 1];
    const { bytesWritten } = await this.fh.writev(chunk, seg.bytes);
    if (bytesWritten !== bytes)
      throw new Error(`short write to ${seg.file}: ${bytesWritten} of ${bytes} bytes`);
    seg.bytes += bytes;
    this.counters.bytesWritten += bytes;
  }

  /** Completes the current segment (durable before the next one exists) and starts a new one. */
  private async rollover(firstIndex: number): Promise<void> {
    await this.fh.datasync();
    this.counters.fdatasyncs++;
    await this.fh.close();
    const seq = this.segments[this.segments.length - 1].seq + 1;
    const file = join(this.dir, segmentName(seq, firstIndex));
    this.fh = await open(file, 'wx');
    this.segments.push({ seq, firstIndex, file, bytes: 0, maxEntryIndex: 0 });
    await fsyncDir(this.dir);
    this.counters.segmentsCreated++;
    this.counters.dirSyncs++;
  }
}

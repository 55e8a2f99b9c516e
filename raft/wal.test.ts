import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';
import type { Entry } from './types.js';
import {
  decodePayload,
  encodeFramed,
  encodeFramedWithBytes,
  RECORD_HEADER_BYTES,
  type ReplayedRecord,
  readFramedRecord,
  Wal,
  WalCorruptionError,
  type WalRecord,
} from './wal.js';

describe('crc32c', () => {
  it('matches the published CRC-32C check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // RFC 3720 (iSCSI) appendix B.4.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('continues a checksum across pieces of every length', () => {
    const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 7 + 3) & 0xff);
    const whole = crc32c(data);
    for (let cut = 0; cut <= data.length; cut++) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    }
  });
});

const ent = (index: number, term = 1, size = 16): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(size).fill(index & 0xff),
});
const ents = (r: ReplayedRecord[]): number[] =>
  r.flatMap((x) => (x.record.kind === 'entries' ? x.record.entries.map((e) => e.index) : []));

describe('encodeFramedWithBytes', () => {
  const fields = { index: 7, term: 2, voters: ['a', 'b'], learners: [] as string[] };
  it('gives the record encodeFramed gives, in pieces, for bytes of any size', async () => {
    for (const size of [0, 10, 300, 70_000, 9 * 1024 * 1024]) {
      const data = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
      const pieces = await encodeFramedWithBytes(fields, 'data', data);
      // The bytes themselves are a piece of their own: not copied.
      expect(pieces.at(-1)).toBe(data);
      const joined = Buffer.concat(pieces);
      const r = readFramedRecord(joined, 0);
      if (!r.ok) throw new Error(r.reason);
      expect(r.next).toBe(joined.length);
      const v = decodePayload(r.payload) as typeof fields & { data: Uint8Array };
      expect({ ...v, data: undefined }).toEqual({ ...fields, data: undefined });
      expect(Buffer.from(v.data).equals(Buffer.from(data))).toBe(true);
      // msgpack's bin32 is what encodeFramed writes from 64 KiB on: the same bytes.
      if (size >= 65_536) expect(joined.equals(encodeFramed({ ...fields, data }))).toBe(true);
    }
  });
});

describe('Wal', () => {
  let dir: string;
  let warnings: string[];
  const open = (segmentBytesMax?: number) =>
    Wal.open(dir, { segmentBytesMax, onWarning: (m) => warnings.push(m) });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cox-wal-'));
    warnings = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes one entries record per index in [1, n], syncs, closes; returns the records read back. */
  async function writeEntries(n: number, segmentBytesMax?: number): Promise<ReplayedRecord[]> {
    const { wal } = await open(segmentBytesMax);
    for (let i = 1; i <= n; i++) wal.append({ kind: 'entries', entries: [ent(i)] });
    await wal.sync();
    await wal.close();
    const { wal: again, records } = await open(segmentBytesMax);
    await again.close();
    expect(warnings).toEqual([]);
    return records;
  }

  async function flipByte(file: string, offset: number): Promise<void> {
    const buf = await readFile(file);
    buf[offset] ^= 0x5a;
    await writeFile(file, buf);
  }

  it('replays every kind of record in write order, with file and offset', async () => {
    const { wal } = await open();
    const written: WalRecord[] = [
      { kind: 'entries', entries: [ent(1), ent(2, 1, 0), { ...ent(3, 2), type: 'conf' }] },
      { kind: 'hardState', hardState: { term: 2, vote: 'n1', commit: 2 } },
      { kind: 'snapshot', index: 2, term: 1, reset: false },
      { kind: 'hardState', hardState: { term: 3, commit: 3 } },
      { kind: 'snapshot', index: 10, term: 3, reset: true },
      { kind: 'entries', entries: [ent(11, 3)] },
    ];
    for (const r of written) wal.append(r);
    await wal.sync();
    await wal.close();
    const { wal: again, records } = await open();
    await again.close();
    expect(records.map((r) => r.record)).toEqual(written);
    expect(records[0].offset).toBe(0);
    expect(records.every((r) => r.file === records[0].file)).toBe(true);
    expect(basename(records[0].file)).toBe('0000000000000001-0000000000000001.wal');
    expect(records[1].offset).toBeGreaterThan(records[0].offset);
  });

  it('truncates a record cut short at the tail and reports file and offset', async () => {
    const records = await writeEntries(10);
    const { file, offset } = records[9];
    await truncate(file, offset + RECORD_HEADER_BYTES + 5); // mid-payload
    const { wal, records: after } = await open();
    expect(ents(after)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(file);
    expect(warnings[0]).toContain(`offset ${offset}`);
    expect(warnings[0]).toContain('incomplete record payload');
    expect((await stat(file)).size).toBe(offset);
    // Writing continues where the valid records end.
    wal.append({ kind: 'entries', entries: [ent(10, 2)] });
    await wal.sync();
    await wal.close();
    warnings = [];
    const { wal: third, records: final } = await open();
    await third.close();
    expect(warnings).toEqual([]);
    expect(ents(final)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('truncates a torn header at the tail', async () => {
    const records = await writeEntries(4);
    const { file, offset } = records[3];
    await truncate(file, offset + 3);
    const { wal, records: after } = await open();
    await wal.close();
    expect(ents(after)).toEqual([1, 2, 3]);
    expect(warnings[0]).toContain('incomplete record header');
    expect(warnings[0]).toContain(`${file} at byte offset ${offset}`);
  });

  it('truncates a last record whose CRC does not match', async () => {
    const records = await writeEntries(5);
    const { file, offset } = records[4];
    await flipByte(file, offset + RECORD_HEADER_BYTES + 2);
    const { wal, records: after } = await open();
    await wal.close();
    expect(ents(after)).toEqual([1, 2, 3, 4]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('CRC mismatch');
    expect((await stat(file)).size).toBe(offset);
  });

  it('truncates zero-filled space at the tail', async () => {
    const records = await writeEntries(5);
    const { file } = records[0];
    const size = (await stat(file)).size;
    await appendFile(file, Buffer.alloc(4096));
    const { wal, records: after } = await open();
    await wal.close();
    expect(ents(after)).toEqual([1, 2, 3, 4, 5]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('zero-filled');
    expect(warnings[0]).toContain(`offset ${size}`);
    expect((await stat(file)).size).toBe(size);
  });

  it('refuses to open when a record before the tail fails its CRC, naming file and offset', async () => {
    const records = await writeEntries(10);
    const { file, offset } = records[2];
    const size = (await stat(file)).size;
    await flipByte(file, offset + RECORD_HEADER_BYTES + 3);
    const err = await open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WalCorruptionError);
    const c = err as WalCorruptionError;
    expect(c.code).toBe('WAL_CORRUPTION');
    expect(c.file).toBe(file);
    expect(c.offset).toBe(offset);
    expect(c.message).toContain(file);
    expect(c.message).toContain(`byte offset ${offset}`);
    expect(c.message).toContain('CRC mismatch');
    expect((await stat(file)).size).toBe(size); // nothing was truncated
  });

  it('refuses to open when a damaged length hides valid records after it', async () => {
    const records = await writeEntries(10);
    const { file, offset } = records[4];
    const buf = await readFile(file);
    buf.writeUInt32LE(0x7fff_ffff, offset);
    await writeFile(file, buf);
    await expect(open()).rejects.toThrow(WalCorruptionError);
    buf.writeUInt32LE(buf.length, offset); // runs past the end of the file
    await writeFile(file, buf);
    await expect(open()).rejects.toThrow(`at byte offset ${offset}`);
  });

  it('refuses to open when zeros are followed by valid records', async () => {
    const records = await writeEntries(6);
    const { file, offset } = records[2];
    const buf = await readFile(file);
    buf.fill(0, offset, records[3].offset);
    await writeFile(file, buf);
    await expect(open()).rejects.toThrow(/zero-filled space, followed by a valid record/);
  });

  it('refuses to open when a record that does not decode has a valid CRC', async () => {
    const records = await writeEntries(3);
    const { file } = records[0];
    const junk = Buffer.from([0x93, 1, 2, 3]); // msgpack [1, 2, 3]: not a record
    const framed = Buffer.alloc(RECORD_HEADER_BYTES + junk.length);
    framed.writeUInt32LE(junk.length, 0);
    framed.writeUInt32LE(crc32c(junk), 4);
    junk.copy(framed, RECORD_HEADER_BYTES);
    const size = (await stat(file)).size;
    await appendFile(file, framed);
    await expect(open()).rejects.toThrow(`${file} at byte offset ${size}: undecodable record`);
  });

  it('rolls over to new segments and replays across them', async () => {
    const records = await writeEntries(60, 300);
    expect(ents(records)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const files = (await readdir(dir)).sort();
    expect(files.length).toBeGreaterThan(5);
    for (const name of files) expect(name).toMatch(/^\d{16}-\d{16}\.wal$/);
    // Each segment is named for the index of its first record, and stays within the limit.
    for (const r of records) {
      if (r.offset !== 0 || r.record.kind !== 'entries') continue;
      expect(Number(basename(r.file).slice(17, 33))).toBe(r.record.entries[0].index);
    }
    for (const name of files) expect((await stat(join(dir, name))).size).toBeLessThanOrEqual(300);
  });

  it('puts a record larger than the segment limit in a segment of its own', async () => {
    const { wal } = await open(200);
    wal.append({ kind: 'entries', entries: [ent(1)] });
    wal.append({ kind: 'entries', entries: [ent(2, 1, 1000)] });
    wal.append({ kind: 'entries', entries: [ent(3)] });
    await wal.sync();
    expect(wal.segmentInfo().map((s) => s.maxEntryIndex)).toEqual([1, 2, 3]);
    await wal.close();
    const { wal: again, records } = await open(200);
    await again.close();
    expect(ents(records)).toEqual([1, 2, 3]);
  });

  it('refuses to open when a segment before the last one is damaged at its end', async () => {
    const records = await writeEntries(30, 300);
    const firstFile = records[0].file;
    const lastOfFirst = records.filter((r) => r.file === firstFile).at(-1)!;
    await truncate(firstFile, lastOfFirst.offset + 10);
    await expect(open(300)).rejects.toThrow(/in a segment that is not the last one/);
  });

  it('makes many records durable with one fdatasync per sync', async () => {
    const { wal } = await open();
    await wal.sync(); // nothing to write
    expect(wal.stats.fdatasyncs).toBe(0);
    for (let i = 1; i <= 1000; i++) {
      wal.append({ kind: 'entries', entries: [ent(i)] });
      wal.append({ kind: 'hardState', hardState: { term: 1, commit: i } });
    }
    await wal.sync();
    expect(wal.stats).toMatchObject({ syncs: 1, fdatasyncs: 1, recordsWritten: 2000 });
    await wal.sync();
    expect(wal.stats.fdatasyncs).toBe(1);
    await wal.close();
  });

  it('coalesces concurrent syncs, and a sync started after a write covers it', async () => {
    const { wal } = await open();
    wal.append({ kind: 'entries', entries: [ent(1)] });
    const first = wal.sync();
    wal.append({ kind: 'entries', entries: [ent(2)] });
    const second = wal.sync();
    const third = wal.sync();
    await Promise.all([first, second, third]);
    expect(wal.stats.fdatasyncs).toBe(2);
    expect(wal.stats.recordsWritten).toBe(2);
    // Read the segment while the WAL is still open: both records are on disk.
    const { wal: reader, records } = await Wal.open(dir, { onWarning: () => undefined });
    await reader.close();
    expect(ents(records)).toEqual([1, 2]);
    await wal.close();
  });

  it('deletes whole old segments, never the last one', async () => {
    const { wal } = await open(300);
    for (let i = 1; i <= 40; i++) wal.append({ kind: 'entries', entries: [ent(i)] });
    await wal.sync();
    const before = wal.segmentInfo();
    expect(before.length).toBeGreaterThan(4);
    const cut = before[2].maxEntryIndex;
    expect(wal.releasableSegments(cut)).toBe(3);
    expect(await wal.releaseSegments(cut)).toBe(3);
    expect(wal.segmentInfo()).toEqual(before.slice(3));
    expect(await wal.releaseSegments(1_000)).toBe(before.length - 4);
    expect(wal.segmentInfo()).toHaveLength(1);
    await wal.close();
    const { wal: again, records } = await open(300);
    await again.close();
    expect(ents(records)[0]).toBeGreaterThan(cut);
    expect(ents(records).at(-1)).toBe(40);
  });

  it('warns about and ignores files that are not segments', async () => {
    await writeFile(join(dir, 'notes.txt'), 'hello');
    const { wal } = await open();
    await wal.close();
    expect(warnings).toEqual([`wal: ignoring unexpected file ${join(dir, 'notes.txt')}`]);
  });
});

import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/**
 * The storage port of the Raft core. Reads are synchronous: the core reads its stable log
 * through them. Writes are made by the host while it handles a Ready, before it sends that
 * Ready's messages; an adapter that buffers writes (the file storage) makes them durable in
 * its own `sync()`.
 */
export interface RaftStorage {
  /** The persisted hard state and the configuration of the latest snapshot. */
  initialState(): { hardState: HardState; conf: ConfState };
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry held, or the snapshot index when the log is empty. */
  lastIndex(): number;
  /** Term of the entry at `index`; valid from the snapshot index to the last index. */
  term(index: number): number;
  /** Entries in [lo, hi), cut after `maxBytes` but always at least one entry. */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** The latest snapshot (index 0 and empty data when there is none). */
  snapshot(): Snapshot;

  /** Replaces everything with the snapshot: the log restarts after its index. */
  applySnapshot(snap: Snapshot): void;
  /** Appends entries; an entry whose index is already held replaces it and everything after it. */
  append(entries: Entry[]): void;
  setHardState(hs: HardState): void;
  /** Records a snapshot of the state machine at `index` (which must be held). */
  createSnapshot(index: number, data: Uint8Array, conf: ConfState): Snapshot;
  /** Drops entries up to and including `index` (at most the last index; normally a snapshot index). */
  compact(index: number): void;
}

/** The byte size the core charges for an entry in size limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 24;
}

/** Cuts `ents` so their total size stays within `maxBytes`, keeping at least one entry. */
export function limitSize(ents: Entry[], maxBytes: number | undefined): Entry[] {
  if (maxBytes === undefined || ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export const emptySnapshot = (): Snapshot => ({
  index: 0,
  term: 0,
  voters: [],
  learners: [],
  data: new Uint8Array(0),
});

/**
 * The in-memory storage adapter, for tests and the simulator; also the in-memory index
 * beneath the file storage. `ents[0]` is a dummy entry at the snapshot's index and term.
 */
export class MemoryStorage implements RaftStorage {
  protected hard: HardState = { term: 0, commit: 0 };
  protected snap: Snapshot = emptySnapshot();
  protected ents: Entry[] = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; conf: ConfState } {
    return {
      hardState: { ...this.hard },
      conf: { voters: [...this.snap.voters], learners: [...this.snap.learners] },
    };
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.ents[0].index;
    if (index < offset) throw new CompactedError(index, offset + 1);
    if (index - offset >= this.ents.length) throw new UnavailableError(index, this.lastIndex());
    return this.ents[index - offset].term;
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  applySnapshot(snap: Snapshot): void {
    if (snap.index < this.snap.index) throw new SnapshotOutOfDateError(snap.index, this.snap.index);
    this.snap = snap;
    this.ents = [{ index: snap.index, term: snap.term, type: 'normal', data: new Uint8Array(0) }];
    if (this.hard.commit < snap.index) this.hard = { ...this.hard, commit: snap.index };
  }

  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // everything is already compacted
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    if (offset > this.ents.length) {
      throw new UnavailableError(entries[0].index, this.lastIndex()); // a gap would break the log
    }
    this.ents.length = offset; // drop any conflicting suffix
    for (const e of entries) this.ents.push(e);
  }

  setHardState(hs: HardState): void {
    this.hard = { ...hs };
  }

  createSnapshot(index: number, data: Uint8Array, conf: ConfState): Snapshot {
    if (index <= this.snap.index) throw new SnapshotOutOfDateError(index, this.snap.index);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.snap = {
      index,
      term: this.term(index),
      voters: [...conf.voters],
      learners: [...conf.learners],
      data,
    };
    return this.snap;
  }

  compact(index: number): void {
    const offset = this.ents[0].index;
    if (index <= offset) return; // already compacted
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    const i = index - offset;
    const head = this.ents[i];
    this.ents = [
      { index: head.index, term: head.term, type: 'normal', data: new Uint8Array(0) },
      ...this.ents.slice(i + 1),
    ];
  }
}

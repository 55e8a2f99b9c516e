import { CompactedError, UnavailableError } from './errors.js';
import { limitSize, type RaftStorage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/**
 * Entries and a snapshot not yet persisted by the host. `offsetInProgress` marks what was
 * already handed out in a Ready and awaits `advance`.
 */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot && this.snapshot.index === i ? this.snapshot.term : undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /** Entries not yet handed out in a Ready. */
  nextEntries(): Entry[] {
    const start = this.offsetInProgress - this.offset;
    return start >= this.entries.length ? [] : this.entries.slice(start);
  }

  hasNextEntries(): boolean {
    return this.offsetInProgress - this.offset < this.entries.length;
  }

  nextSnapshot(): Snapshot | undefined {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : undefined;
  }

  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /** Entries up to `i` (with term `t`) are now persisted: forget them. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: Entry[]): void {
    const from = ents[0].index;
    if (from === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      this.entries = ents.slice();
      this.offset = from;
      this.offsetInProgress = from;
    } else {
      this.entries = this.entries.slice(0, from - this.offset);
      for (const e of ents) this.entries.push(e);
      if (this.offsetInProgress > from) this.offsetInProgress = from;
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The Raft log: the host's stable storage plus the unstable tail, with commit/apply cursors. */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  committed: number;
  /** Highest index handed out in a Ready for applying. */
  applying: number;
  applied: number;
  readonly maxApplyingBytes: number;

  constructor(storage: RaftStorage, maxApplyingBytes: number) {
    this.storage = storage;
    this.maxApplyingBytes = maxApplyingBytes;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Index up to which the log is persisted (what the leader may count as its own match). */
  persistedIndex(): number {
    if (this.unstable.snapshot) return 0; // a follower mid-restore: nothing beyond is persisted yet
    return this.unstable.offset - 1;
  }

  term(i: number): number {
    const first = this.firstIndex();
    if (i < first - 1) throw new CompactedError(i, first);
    const last = this.lastIndex();
    if (i > last) throw new UnavailableError(i, last);
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  /** The term at `i`, or 0 when `i` is compacted or beyond the log. */
  termOrZero(i: number): number {
    const first = this.firstIndex();
    if (i < first - 1 || i > this.lastIndex()) return 0;
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  matchTerm(i: number, t: number): boolean {
    const first = this.firstIndex();
    if (i < first - 1 || i > this.lastIndex()) return false;
    return this.termOrZero(i) === t;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries from `lo` to the end, within `maxBytes` (at least one). Throws CompactedError. */
  entries(lo: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    if (lo >= hi) return [];
    const uOff = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < uOff) {
      ents = this.storage.entries(lo, Math.min(hi, uOff), maxBytes);
      if (ents.length < Math.min(hi, uOff) - lo) return ents; // cut by size
    }
    if (hi > uOff) {
      const u = this.unstable.slice(Math.max(lo, uOff), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }

  /** The first index in `ents` whose term disagrees with the log, or 0 if all match. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /** The largest index <= `index` whose term is <= `term` (fast backtracking). */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const first = this.firstIndex();
      if (index < first - 1) return { index, term: 0 };
      const t = this.termOrZero(index);
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * The follower's append: if the log holds (prevIndex, prevTerm), appends `ents`, truncating
   * any conflicting suffix, and returns the last new index; otherwise undefined.
   */
  maybeAppend(prevIndex: number, prevTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(
          `raft invariant: entry ${ci} conflicts with committed entry (committed ${this.committed})`,
        );
      }
      this.append(ents.slice(ci - prevIndex - 1));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    if (ents[0].index - 1 < this.committed) {
      throw new Error(`raft invariant: append at ${ents[0].index} is below commit ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  commitTo(c: number): void {
    if (c <= this.committed) return;
    if (c > this.lastIndex()) {
      throw new Error(`raft invariant: commit ${c} is beyond the last index ${this.lastIndex()}`);
    }
    this.committed = c;
  }

  /** Leader commit rule: only an entry of the current term commits by counting replicas. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applying && this.applying + 1 >= this.firstIndex();
  }

  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applying + 1, this.committed + 1, this.maxApplyingBytes);
  }

  appliedTo(i: number): void {
    if (i > this.applied) this.applied = i;
    if (i > this.applying) this.applying = i;
  }

  restore(s: Snapshot): void {
    this.committed = s.index;
    this.unstable.restore(s);
  }
}

import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type RaftStorage,
  type Snapshot,
} from '../../raft/index.js';

/** A write to the storage, kept until `sync()` makes it durable. */
export type StorageOp =
  | { kind: 'applySnapshot'; snap: Snapshot }
  | { kind: 'append'; entries: Entry[] }
  | { kind: 'setHardState'; hs: HardState }
  | { kind: 'createSnapshot'; index: number; data: Uint8Array; conf: ConfState }
  | { kind: 'compact'; index: number };

/** Called after each op is replayed onto the durable copy, with that copy in its new state. */
export type DurableObserver = (op: StorageOp, durable: RaftStorage) => void;

/** A MemoryStorage that can copy itself (the durable image becomes the volatile view on a crash). */
class CopyableMemoryStorage extends MemoryStorage {
  copy(): CopyableMemoryStorage {
    const c = new CopyableMemoryStorage();
    c.hard = { ...this.hard };
    c.snap = this.snap;
    c.ents = this.ents.slice();
    return c;
  }
}

/**
 * A storage that models durability for the simulator. Reads see every write (the process's
 * in-memory view); a write becomes durable only at the next `sync()` (the fsync). `crash()`
 * throws away the writes since the last sync (optionally keeping a prefix of them, as a
 * write-ahead log whose unsynced tail partly reached the disk) and rebuilds the view from
 * the durable image, which is what a restarted process would read.
 */
export class CrashStorage implements RaftStorage {
  private readonly durableImage = new CopyableMemoryStorage();
  private view = new CopyableMemoryStorage();
  private pending: StorageOp[] = [];

  constructor(private readonly onDurable?: DurableObserver) {}

  /** The durable image: what survives a crash. For checks only; never write to it. */
  get durable(): RaftStorage {
    return this.durableImage;
  }

  /** Writes since the last sync. */
  pendingOps(): number {
    return this.pending.length;
  }

  /** Makes every write so far durable. */
  sync(): void {
    const ops = this.pending;
    this.pending = [];
    for (const op of ops) this.replay(op);
  }

  /**
   * Loses the writes since the last sync except the first `keepOps` of them, and resets the
   * in-memory view to the durable image.
   */
  crash(keepOps = 0): void {
    const kept = this.pending.slice(0, Math.max(0, keepOps));
    this.pending = [];
    for (const op of kept) this.replay(op);
    this.view = this.durableImage.copy();
  }

  private replay(op: StorageOp): void {
    apply(this.durableImage, op);
    this.onDurable?.(op, this.durableImage);
  }

  private write(op: StorageOp): void {
    apply(this.view, op); // throws before recording when the write is invalid
    this.pending.push(op);
  }

  // ---------------------------------------------------------------- RaftStorage

  initialState(): { hardState: HardState; conf: ConfState } {
    return this.view.initialState();
  }
  firstIndex(): number {
    return this.view.firstIndex();
  }
  lastIndex(): number {
    return this.view.lastIndex();
  }
  term(index: number): number {
    return this.view.term(index);
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.view.entries(lo, hi, maxBytes);
  }
  snapshot(): Snapshot {
    return this.view.snapshot();
  }

  applySnapshot(snap: Snapshot): void {
    this.write({ kind: 'applySnapshot', snap });
  }
  append(entries: Entry[]): void {
    if (entries.length > 0) this.write({ kind: 'append', entries: entries.slice() });
  }
  setHardState(hs: HardState): void {
    this.write({ kind: 'setHardState', hs: { ...hs } });
  }
  createSnapshot(index: number, data: Uint8Array, conf: ConfState): Snapshot {
    this.write({ kind: 'createSnapshot', index, data, conf });
    return this.view.snapshot();
  }
  compact(index: number): void {
    this.write({ kind: 'compact', index });
  }
}

function apply(s: MemoryStorage, op: StorageOp): void {
  switch (op.kind) {
    case 'applySnapshot':
      s.applySnapshot(op.snap);
      return;
    case 'append':
      s.append(op.entries);
      return;
    case 'setHardState':
      s.setHardState(op.hs);
      return;
    case 'createSnapshot':
      s.createSnapshot(op.index, op.data, op.conf);
      return;
    case 'compact':
      s.compact(op.index);
      return;
    default: {
      const never: never = op;
      throw new Error(`unknown storage op ${JSON.stringify(never)}`);
    }
  }
}

/**
 * A controller's work queue over keys (`kind/namespace/name`), in the manner of client-go's
 * `workqueue`: a key is queued at most once; a key being processed is never handed out again
 * until it is done, and a key added meanwhile is processed once more afterwards; failures are
 * retried with capped exponential backoff per key; a success forgets the key's failures.
 * Delayed keys (`addAfter`) wait in a set ordered by due time. Pure data: the clock is an argument.
 */

export interface WorkQueueOptions {
  /** Keys queued or delayed at once; beyond it `add` refuses new keys (they come back on resync). Default 100,000. */
  keysMax?: number;
  /** Backoff of a key's first retry. Default 5. */
  retryBackoffMsMin?: number;
  /** Backoff cap. Default 60,000. */
  retryBackoffMsMax?: number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Added while processing: queued again when done. */
  private readonly dirty = new Set<string>();
  /** Key → due time (ms). */
  private readonly delayed = new Map<string, number>();
  /**
   * At most the earliest due time in `delayed` (exact after a scan; a key leaving `delayed`
   * may leave it early). `promote` and `nextDueMs` run after every message of the controller's
   * actor: without it each scanned every delayed key (1,000 nodes requeued by the node
   * lifecycle controller made every pod event cost 2,000 map steps).
   */
  private delayedDueMin = Number.POSITIVE_INFINITY;
  private readonly failures = new Map<string, number>();
  private readonly keysMax: number;
  private readonly backoffMin: number;
  private readonly backoffMax: number;
  /** Adds refused because the queue was full. */
  refused = 0;

  constructor(opts: WorkQueueOptions = {}) {
    this.keysMax = opts.keysMax ?? 100_000;
    this.backoffMin = opts.retryBackoffMsMin ?? 5;
    this.backoffMax = opts.retryBackoffMsMax ?? 60_000;
  }

  /** Keys waiting to be handed out (not counting delayed ones). */
  get depth(): number {
    return this.queue.length - this.head;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  get delayedCount(): number {
    return this.delayed.size;
  }

  /** Queues `key` now (a delayed entry of it is dropped). False when refused (full). */
  add(key: string): boolean {
    if (this.processing.has(key)) {
      this.dirty.add(key);
      this.delayed.delete(key);
      return true;
    }
    if (this.queued.has(key)) return true;
    if (this.size() >= this.keysMax && !this.delayed.has(key)) {
      this.refused += 1;
      return false;
    }
    this.delayed.delete(key);
    this.queued.add(key);
    this.queue.push(key);
    return true;
  }

  /** Queues `key` at `dueMs` (earliest wins if it is already delayed; no-op if queued). */
  addAt(key: string, dueMs: number): boolean {
    if (this.queued.has(key) || this.dirty.has(key)) return true;
    const current = this.delayed.get(key);
    if (current !== undefined) {
      if (dueMs < current) {
        this.delayed.set(key, dueMs);
        this.delayedDueMin = Math.min(this.delayedDueMin, dueMs);
      }
      return true;
    }
    if (this.size() >= this.keysMax) {
      this.refused += 1;
      return false;
    }
    this.delayed.set(key, dueMs);
    this.delayedDueMin = Math.min(this.delayedDueMin, dueMs);
    return true;
  }

  /** Moves delayed keys that are due into the queue. */
  promote(nowMs: number): void {
    if (this.delayed.size === 0 || nowMs < this.delayedDueMin) return;
    let min = Number.POSITIVE_INFINITY;
    for (const [key, due] of this.delayed) {
      if (due > nowMs) {
        if (due < min) min = due;
        continue;
      }
      this.delayed.delete(key);
      this.add(key);
    }
    this.delayedDueMin = min;
  }

  /** The earliest due time of a delayed key (or a little earlier: then a promote finds none due). */
  nextDueMs(): number | undefined {
    if (this.delayed.size === 0) {
      this.delayedDueMin = Number.POSITIVE_INFINITY;
      return undefined;
    }
    return this.delayedDueMin;
  }

  /** The next key to process (now marked in flight), or undefined. */
  take(): string | undefined {
    while (this.head < this.queue.length) {
      const key = this.queue[this.head];
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (!this.queued.delete(key)) continue;
      this.processing.add(key);
      return key;
    }
    return undefined;
  }

  /**
   * Marks `key` done. A failure schedules a retry after the key's backoff (returned); a
   * success forgets its failures and, with `requeueAfterMs`, schedules the next visit.
   */
  done(key: string, nowMs: number, outcome: { ok: boolean; requeueAfterMs?: number }): number | undefined {
    this.processing.delete(key);
    let retryMs: number | undefined;
    if (outcome.ok) {
      this.failures.delete(key);
    } else {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      retryMs = Math.min(this.backoffMax, this.backoffMin * 2 ** Math.min(n - 1, 30));
    }
    if (this.dirty.delete(key)) {
      // Changed while in flight: look again now (a failure still waits for its backoff).
      if (retryMs === undefined) this.add(key);
      else this.addAt(key, nowMs + retryMs);
    } else if (retryMs !== undefined) {
      this.addAt(key, nowMs + retryMs);
    } else if (outcome.requeueAfterMs !== undefined) {
      this.addAt(key, nowMs + Math.max(0, outcome.requeueAfterMs));
    }
    return retryMs;
  }

  /** Failures in a row of `key`. */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private size(): number {
    return this.queued.size + this.delayed.size;
  }
}

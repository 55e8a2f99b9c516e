/**
 * The client side of a streamed watch: batches arrive from a transport, the consumer pulls
 * them with `next()` one call at a time. Flow control: once `highWaterBatches` are queued the
 * transport is paused (its socket stops being read, so the server's own backpressure takes
 * over), and it is resumed when the consumer has drained half of them.
 */

export interface BatchFlow {
  /** Batches queued before the transport is paused. */
  readonly highWaterBatches: number;
  pause(): void;
  resume(): void;
}

export class BatchQueue<T> {
  private readonly batches: T[][] = [];
  private waiter: { resolve: (v: T[] | undefined) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: unknown;
  private paused = false;

  constructor(
    private readonly flow: BatchFlow,
    /** Names the stream in the "one call at a time" error. */
    private readonly what: string,
  ) {}

  get ended(): boolean {
    return this.done;
  }

  /** Queues a batch (ignored once ended; empty batches are dropped). */
  push(batch: T[]): void {
    if (this.done || batch.length === 0) return;
    this.batches.push(batch);
    if (this.batches.length >= this.flow.highWaterBatches && !this.paused) {
      this.paused = true;
      this.flow.pause();
    }
    this.wake();
  }

  /**
   * Ends the stream: `next()` gives the queued batches, then `undefined`, or rejects with
   * `error` once they are consumed. Idempotent.
   */
  end(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    if (error !== undefined) this.error = error;
    this.releaseFlow();
    this.wake();
  }

  /** Drops every queued batch (a consumer that closed the stream wants none of them). */
  clear(): void {
    this.batches.length = 0;
  }

  /** Resumes a paused transport now (it is being replaced or has ended). */
  releaseFlow(): void {
    if (!this.paused) return;
    this.paused = false;
    this.flow.resume();
  }

  next(): Promise<T[] | undefined> {
    if (this.waiter !== undefined) {
      return Promise.reject(new Error(`${this.what}: WatchStream.next: one call at a time`));
    }
    const ready = this.take();
    if (ready !== null) return ready;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private take(): Promise<T[] | undefined> | null {
    const batch = this.batches.shift();
    if (batch !== undefined) {
      if (this.paused && this.batches.length < this.flow.highWaterBatches / 2) this.releaseFlow();
      return Promise.resolve(batch);
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.done) return Promise.resolve(undefined);
    return null;
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    const ready = this.take();
    if (ready === null) return;
    this.waiter = undefined;
    ready.then(waiter.resolve, waiter.reject);
  }
}

/** Small statistics shared by the benches. */

/** The `p` quantile (0..1) of an ascending sample, nearest-rank; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;

/** A growable buffer of latencies in ms. */
export class Latencies {
  private values = new Float64Array(1 << 16);
  private n = 0;

  get count(): number {
    return this.n;
  }

  push(ms: number): void {
    if (this.n === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.n++] = ms;
  }

  /** The samples, sorted ascending (a view; pushing afterwards invalidates it). */
  sorted(): Float64Array {
    return this.values.subarray(0, this.n).sort();
  }
}

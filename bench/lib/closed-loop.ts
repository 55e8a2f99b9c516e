/**
 * The load generator shared by the benches: `concurrency` closed-loop workers, each issuing
 * one operation and waiting for its answer before the next, for a warm-up and then a measured
 * window. Operations that complete inside the window count toward the rate and latencies.
 */
import { Latencies, percentile, round2 } from './stats.js';

/** Issues one operation for worker `w` and calls `done` once it is answered. */
export type Issue = (w: number, done: (err: unknown) => void) => void;

export interface LevelStats {
  concurrency: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface ClosedLoopOptions {
  /** Pause of a worker after an error, so a leaderless moment does not become a busy loop. Default 10. */
  errorBackoffMs?: number;
  /** How long past its window the loop waits for operations still in flight. Default 10,000. */
  overtimeMs?: number;
  /** Runs at the window's start and end (before the result resolves), for server-side counters. */
  onEdge?: (edge: 'start' | 'end') => void;
}

/**
 * Runs `concurrency` closed-loop workers for `warmupMs + measureMs`; resolves with the measured
 * window's numbers and the count of operations in it. Workers still waiting after the overtime
 * count as errors (their answer never came).
 */
export function closedLoop(
  issue: Issue,
  concurrency: number,
  warmupMs: number,
  measureMs: number,
  options: ClosedLoopOptions = {},
): Promise<LevelStats & { writes: number }> {
  const errorBackoffMs = options.errorBackoffMs ?? 10;
  const overtimeMs = options.overtimeMs ?? 10_000;
  const onEdge = options.onEdge ?? (() => {});
  return new Promise((resolve) => {
    const t0 = performance.now();
    const windowStart = t0 + warmupMs;
    const windowEnd = windowStart + measureMs;
    const lat = new Latencies();
    let errors = 0;
    let running = concurrency;
    let windowClosed = false;
    let finished = false;
    const next = (w: number): void => {
      if (finished) return;
      const start = performance.now();
      if (start >= windowEnd) {
        if (--running === 0 && windowClosed) finish();
        return;
      }
      issue(w, (err) => {
        const end = performance.now();
        if (err) {
          if (end >= windowStart && end < windowEnd) errors++;
          setTimeout(() => next(w), errorBackoffMs);
          return;
        }
        if (end >= windowStart && end < windowEnd) lat.push(end - start);
        next(w);
      });
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(overtime);
      errors += running;
      const n = lat.count;
      const sorted = lat.sorted();
      resolve({
        concurrency,
        opsPerSec: Math.round((n * 1000) / measureMs),
        p50Ms: round2(percentile(sorted, 0.5)),
        p99Ms: round2(percentile(sorted, 0.99)),
        errors,
        writes: n,
      });
    };
    setTimeout(() => onEdge('start'), windowStart - performance.now());
    setTimeout(() => {
      onEdge('end');
      windowClosed = true;
      if (running === 0) finish();
    }, windowEnd - performance.now());
    const overtime = setTimeout(finish, warmupMs + measureMs + overtimeMs);
    for (let w = 0; w < concurrency; w++) next(w);
  });
}

import { describe, expect, it } from 'vitest';
import { WorkQueue } from './workqueue.js';

describe('WorkQueue', () => {
  it('queues a key once and hands it out in order', () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.depth).toBe(2);
    expect(q.take()).toBe('a');
    expect(q.take()).toBe('b');
    expect(q.take()).toBeUndefined();
  });
  it('never hands out a key in flight; a change meanwhile runs it once more after', () => {
    const q = new WorkQueue();
    q.add('a');
    expect(q.take()).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.take()).toBeUndefined();
    q.done('a', 0, { ok: true });
    expect(q.take()).toBe('a');
    q.done('a', 0, { ok: true });
    expect(q.take()).toBeUndefined();
  });
  it('retries failures with capped exponential backoff and forgets them on success', () => {
    const q = new WorkQueue({ retryBackoffMsMin: 10, retryBackoffMsMax: 35 });
    q.add('a');
    const delays: (number | undefined)[] = [];
    let now = 0;
    for (let i = 0; i < 4; i += 1) {
      expect(q.take()).toBe('a');
      delays.push(q.done('a', now, { ok: false }));
      expect(q.take()).toBeUndefined();
      now = q.nextDueMs() ?? now;
      q.promote(now);
    }
    expect(delays).toEqual([10, 20, 35, 35]);
    expect(q.take()).toBe('a');
    q.done('a', now, { ok: true });
    expect(q.failuresOf('a')).toBe(0);
  });
  it('requeues after a delay, earliest wins, and a direct add supersedes it', () => {
    const q = new WorkQueue();
    q.add('a');
    q.take();
    q.done('a', 100, { ok: true, requeueAfterMs: 50 });
    q.addAt('a', 120);
    expect(q.nextDueMs()).toBe(120);
    q.promote(119);
    expect(q.take()).toBeUndefined();
    q.promote(120);
    expect(q.take()).toBe('a');
    q.done('a', 130, { ok: true });
    q.addAt('b', 500);
    q.add('b');
    expect(q.delayedCount).toBe(0);
    expect(q.take()).toBe('b');
  });
  it('refuses new keys beyond keysMax and counts them', () => {
    const q = new WorkQueue({ keysMax: 2 });
    expect(q.add('a')).toBe(true);
    expect(q.add('b')).toBe(true);
    expect(q.add('c')).toBe(false);
    expect(q.add('a')).toBe(true);
    expect(q.refused).toBe(1);
  });
});

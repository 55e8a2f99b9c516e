import { describe, expect, it } from 'vitest';
import { BatchQueue } from './batch-queue.js';

function flowLog(highWaterBatches: number) {
  const log: string[] = [];
  return {
    log,
    flow: { highWaterBatches, pause: () => log.push('pause'), resume: () => log.push('resume') },
  };
}

describe('BatchQueue', () => {
  it('delivers batches in order, to a waiting and to a later next()', async () => {
    const { flow } = flowLog(10);
    const q = new BatchQueue<number>(flow, 'test');
    const waiting = q.next();
    q.push([1, 2]);
    q.push([]);
    q.push([3]);
    expect(await waiting).toEqual([1, 2]);
    expect(await q.next()).toEqual([3]);
  });

  it('pauses at the high-water mark and resumes once half is drained', async () => {
    const { log, flow } = flowLog(4);
    const q = new BatchQueue<number>(flow, 'test');
    for (let i = 0; i < 4; i += 1) q.push([i]);
    expect(log).toEqual(['pause']);
    q.push([4]);
    expect(log).toEqual(['pause']);
    await q.next();
    await q.next();
    await q.next();
    expect(log).toEqual(['pause']); // 2 left: not yet under half of 4
    await q.next();
    expect(log).toEqual(['pause', 'resume']);
  });

  it('gives queued batches before the end, then undefined or the error', async () => {
    const q = new BatchQueue<number>(flowLog(10).flow, 'test');
    q.push([1]);
    q.end();
    q.push([2]);
    expect(await q.next()).toEqual([1]);
    expect(await q.next()).toBeUndefined();
    const failed = new BatchQueue<number>(flowLog(10).flow, 'test');
    failed.push([1]);
    failed.end(new Error('gone'));
    expect(await failed.next()).toEqual([1]);
    await expect(failed.next()).rejects.toThrow('gone');
  });

  it('refuses a second concurrent next() and resolves a pending one on end', async () => {
    const q = new BatchQueue<number>(flowLog(10).flow, 'w');
    const pending = q.next();
    await expect(q.next()).rejects.toThrow('w: WatchStream.next: one call at a time');
    q.clear();
    q.end();
    expect(await pending).toBeUndefined();
    expect(q.ended).toBe(true);
  });

  it('releases a paused transport when it ends', () => {
    const { log, flow } = flowLog(1);
    const q = new BatchQueue<number>(flow, 'test');
    q.push([1]);
    q.end();
    expect(log).toEqual(['pause', 'resume']);
  });
});

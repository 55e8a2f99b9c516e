import { describe, expect, it } from 'vitest';
import { StartGate } from './start-gate.js';

/** A start that ends when its `end` is called. */
function pending() {
  let end: () => void = () => {};
  const done = new Promise<void>((r) => {
    end = r;
  });
  return { done, end };
}

describe('StartGate', () => {
  it('runs at most startsInFlightMax starts at once, urgent ones first from the queue', async () => {
    const gate = new StartGate(2);
    const order: string[] = [];
    const starts = new Map<string, ReturnType<typeof pending>>();
    const start = (name: string, urgent: boolean) =>
      gate.run(urgent, async () => {
        order.push(name);
        const p = pending();
        starts.set(name, p);
        await p.done;
      });
    const all = [
      start('s1', false),
      start('s2', false),
      start('s3', false),
      start('s4', false),
      start('a1', true),
    ];
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['s1', 's2']);
    expect(gate.queued).toBe(3);
    starts.get('s1')?.end();
    await new Promise((r) => setImmediate(r));
    // The urgent start went ahead of s3 and s4, which came before it.
    expect(order).toEqual(['s1', 's2', 'a1']);
    for (const name of ['s2', 'a1', 's3']) {
      starts.get(name)?.end();
      await new Promise((r) => setImmediate(r));
    }
    starts.get('s4')?.end();
    await Promise.all(all);
    expect(order).toEqual(['s1', 's2', 'a1', 's3', 's4']);
    expect(gate.queued).toBe(0);
  });

  it('passes failures through and frees the slot', async () => {
    const gate = new StartGate(1);
    await expect(gate.run(false, async () => Promise.reject(new Error('engine said no')))).rejects.toThrow(
      'engine said no',
    );
    expect(await gate.run(true, async () => 7)).toBe(7);
    expect(() => new StartGate(0)).toThrow('startsInFlightMax: 0: must be a positive integer');
  });
});

/**
 * What only the hollow driver does (the shared behaviour is in runtime.conformance.test.ts):
 * the injected clock and sleep, scripted exits, and staying cheap at scale.
 */

import { describe, expect, it } from 'vitest';
import { HollowRuntime } from './hollow-runtime.js';

describe('hollow runtime', () => {
  it('derives scripted exits from the injected clock and waits through the injected sleep', async () => {
    let now = 1_000_000;
    const slept: number[] = [];
    const r = new HollowRuntime({
      node: 'h',
      startDelayMs: 250,
      nowMs: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
      },
      script: (spec) => (spec.name === 'job' ? { exitAfterMs: 1_000, exitCode: 5 } : {}),
    });
    await r.runSandbox({ podUid: 'p', namespace: 'default', name: 'p', node: 'h' });
    const job = await r.startContainer('p', { name: 'job', image: 'any', restartCount: 0 });
    expect(slept).toEqual([250]);
    expect(job).toMatchObject({ phase: 'running', startedAt: new Date(1_000_250).toISOString() });
    now += 999;
    expect((await r.inspect(job.id)).phase).toBe('running');
    now += 1;
    expect(await r.inspect(job.id)).toMatchObject({
      phase: 'exited',
      exitCode: 5,
      reason: 'Error',
      finishedAt: new Date(1_001_250).toISOString(),
    });
    // A stop after the scripted exit keeps the scripted exit.
    await r.stopContainer(job.id, 30);
    expect((await r.inspect(job.id)).exitCode).toBe(5);
  });

  it('holds 1,000 nodes of 20 containers without a timer', async () => {
    const timersBefore = process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
    const t = Date.now();
    const nodes = Array.from({ length: 1_000 }, (_, i) => new HollowRuntime({ node: `n${i}` }));
    for (const [i, r] of nodes.entries()) {
      for (let p = 0; p < 2; p += 1) {
        const podUid = `pod-${i}-${p}`;
        await r.runSandbox({ podUid, namespace: 'default', name: podUid, node: `n${i}` });
        for (let c = 0; c < 10; c += 1)
          await r.startContainer(podUid, { name: `c${c}`, image: 'x', restartCount: 0 });
      }
    }
    expect(Date.now() - t).toBeLessThan(5_000);
    expect(process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length).toBe(timersBefore);
    expect(await nodes[999]!.listContainers()).toHaveLength(20);
    const ips = new Set(
      await Promise.all(
        nodes.map((r) =>
          r.runSandbox({ podUid: 'pod-x', namespace: 'd', name: 'x', node: '' }).then((s) => s.ip),
        ),
      ),
    );
    expect(ips.size).toBeGreaterThan(200); // pod IPs differ between nodes (a hash, so some collide)
  });
});

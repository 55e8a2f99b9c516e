/**
 * A pod sync that fails (its status write refused by a busy master) runs again after a short
 * backoff that honours the server's retry hint, not after the pod resync period: with a resync
 * of a minute (a large fleet's setting), a refused status write must not leave the pod
 * Pending for a minute.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, ApiErrorCode, type ObjectApi, type WriteOptions } from '../actors/api.js';
import type { Pod } from '../core/index.js';
import { createMemoryApi } from '../test/fixtures/memory-api.js';
import { NodeAgent, podSyncRetryMs } from './agent.js';
import { HollowRuntime } from './hollow-runtime.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a failed pod sync', () => {
  it('backs off from 200 ms, doubling up to the resync period, and waits at least the server’s hint', () => {
    expect([1, 2, 3, 4].map((n) => podSyncRetryMs(n, 60_000))).toEqual([200, 400, 800, 1_600]);
    expect(podSyncRetryMs(30, 60_000)).toBe(60_000);
    expect(podSyncRetryMs(1, 1_000, 700)).toBe(700);
    expect(podSyncRetryMs(1, 1_000, 5_000)).toBe(1_000);
  });

  it('runs again soon when its status write is refused, long before the resync', async () => {
    const { objects } = createMemoryApi();
    let refused = 0;
    const refusingStatus = (input: unknown, opts?: WriteOptions) => {
      if ((input as Pod).kind === 'Pod' && refused < 2) {
        refused += 1;
        return Promise.reject(
          new ApiError(ApiErrorCode.ResourceExhausted, 'too many calls in flight', { retryAfterMs: 100 }),
        );
      }
      return objects.updateStatus(input, opts);
    };
    // The in-memory API (a class: its methods bound), with updateStatus refusing twice.
    const busy = new Proxy(objects, {
      get: (target, key) => {
        if (key === 'updateStatus') return refusingStatus;
        const v = Reflect.get(target, key);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as ObjectApi;
    const dir = await mkdtemp(join(tmpdir(), 'cox-agent-retry-'));
    const lines: string[] = [];
    const agent = new NodeAgent({
      node: 'n1',
      nodeIp: '127.0.0.1',
      api: busy,
      runtime: new HollowRuntime({ node: 'n1' }),
      dataDir: join(dir, 'data'),
      memoryDir: join(dir, 'mem'),
      capacity: { cpu: '2', memory: '2Gi', pods: '10' },
      podResyncMs: 60_000,
      log: (line) => lines.push(line),
    });
    await agent.start();
    cleanups.push(async () => {
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const started = Date.now();
    await objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'default' },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'coxswain/busybox' }] },
    });
    for (;;) {
      const p = (await objects.get({ kind: 'Pod', namespace: 'default', name: 'web' })) as Pod;
      if (p.status?.phase === 'Running') break;
      if (Date.now() - started > 15_000) throw new Error(`pod still ${p.status?.phase ?? 'without a phase'}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(2);
    expect(
      lines.filter((l) => /web: sync failed: too many calls in flight \(retry in \d+ ms\)/.test(l)),
    ).toHaveLength(2);
  });
});

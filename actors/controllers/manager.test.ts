import { describe, expect, it } from 'vitest';
import { ApiError } from '../api.js';
import type { ControllerApi } from './controller.js';
import { termGuardedApi } from './manager.js';

describe('termGuardedApi', () => {
  it('passes everything while its term lives, then refuses writes (not reads) before sending them', async () => {
    const calls: string[] = [];
    const record =
      (name: string) =>
      async (..._args: unknown[]) => {
        calls.push(name);
        return {} as never;
      };
    const api = {
      create: record('create'),
      get: record('get'),
      list: record('list'),
      update: record('update'),
      updateStatus: record('updateStatus'),
      patch: record('patch'),
      delete: record('delete'),
      watch: record('watch'),
      bind: record('bind'),
    } as unknown as ControllerApi;
    let live = true;
    const guarded = termGuardedApi(api, () => live, 7);
    const key = { kind: 'Pod', namespace: 'default', name: 'p' };
    const everything = () => [
      guarded.create({}),
      guarded.get(key),
      guarded.list('Pod'),
      guarded.update({}),
      guarded.updateStatus({}),
      guarded.patch(key, {}),
      guarded.delete(key),
      guarded.watch('Pod'),
      guarded.bind({ namespace: 'default', name: 'p' }, 'u', 'n1'),
    ];
    await Promise.all(everything());
    expect(calls).toEqual([
      'create',
      'get',
      'list',
      'update',
      'updateStatus',
      'patch',
      'delete',
      'watch',
      'bind',
    ]);
    calls.length = 0;
    live = false;
    const results = await Promise.allSettled(everything());
    expect(calls).toEqual(['get', 'list', 'watch']);
    const refused = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason);
    expect(refused).toHaveLength(6);
    for (const err of refused) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe('Unavailable');
      expect((err as ApiError).message).toBe('controllers of term 7 stopped: not writing');
    }
  });

  it('keeps at most writesInFlightMax writes in flight, in call order, and refuses the waiting ones when the term ends', async () => {
    const started: string[] = [];
    const finish = new Map<string, () => void>();
    const write = async (obj: unknown) => {
      const name = (obj as { name: string }).name;
      started.push(name);
      await new Promise<void>((resolve) => finish.set(name, resolve));
      return {} as never;
    };
    const api = { create: write, update: write } as unknown as ControllerApi;
    let live = true;
    const guarded = termGuardedApi(api, () => live, 3, 2);
    const writes = ['a', 'b', 'c', 'd', 'e'].map((name) =>
      (name === 'c' ? guarded.update({ name }) : guarded.create({ name })).then(
        () => 'ok',
        (err: unknown) => (err as ApiError).code,
      ),
    );
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b']);
    finish.get('a')!();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b', 'c']);
    live = false;
    finish.get('b')!();
    finish.get('c')!();
    expect(await Promise.all(writes)).toEqual(['ok', 'ok', 'ok', 'Unavailable', 'Unavailable']);
    expect(started).toEqual(['a', 'b', 'c']);
  });
});

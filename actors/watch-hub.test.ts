import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiObject } from '../core/index.js';
import { parseLabelSelector } from '../core/index.js';
import { ApiError, type WatchEvent } from './api.js';
import { type ChangeEvent, filterChange, type WatchFilter, WatchHub } from './watch-hub.js';

function cm(name: string, rv: number, labels?: Record<string, string>, kind = 'ConfigMap'): ApiObject {
  return {
    apiVersion: 'v1',
    kind,
    metadata: { name, namespace: 'default', resourceVersion: String(rv), ...(labels ? { labels } : {}) },
  } as unknown as ApiObject;
}

function change(
  rv: number,
  type: ChangeEvent['type'],
  name: string,
  labels?: Record<string, string>,
  prevLabels?: Record<string, string>,
): ChangeEvent {
  return {
    rv,
    type,
    key: `ConfigMap/default/${name}`,
    object: cm(name, rv, labels),
    prev: type === 'ADDED' ? undefined : cm(name, rv - 1, prevLabels ?? labels),
  };
}

const all: WatchFilter = { kind: 'ConfigMap' };

async function expectRejects(p: Promise<unknown>, code: string): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(code);
    return err as ApiError;
  }
  throw new Error(`expected ${code}, got success`);
}

function summary(events: WatchEvent[] | undefined): string[] {
  return (events ?? []).map(
    (e) => `${e.type} ${e.object.metadata.name ?? ''}@${e.object.metadata.resourceVersion}`,
  );
}

const hubs: WatchHub[] = [];
function hub(opts: ConstructorParameters<typeof WatchHub>[0] = {}): WatchHub {
  const h = new WatchHub(opts);
  hubs.push(h);
  return h;
}

afterEach(() => {
  for (const h of hubs.splice(0)) h.close();
  vi.useRealTimers();
});

describe('WatchHub history', () => {
  it('keeps historyEventsMax changes; resuming exactly at the boundary works, one before is Gone', () => {
    const h = hub({ historyEventsMax: 3 });
    for (let rv = 1; rv <= 5; rv += 1) h.publish([change(rv, 'ADDED', `o${rv}`)], rv);
    // Retained: 3, 4, 5; everything after 2 is known.
    expect(h.oldestRv()).toBe(2);
    expect(h.changesSince(2).map((c) => c.rv)).toEqual([3, 4, 5]);
    expect(h.changesSince(4).map((c) => c.rv)).toEqual([5]);
    expect(h.changesSince(5)).toEqual([]);
    expect(() => h.changesSince(1)).toThrowError(/too old/);
    try {
      h.changesSince(1);
    } catch (err) {
      expect((err as ApiError).code).toBe('Gone');
    }
  });

  it('counts versions without changes: a batch of no changes still moves the index, not the history', () => {
    const h = hub({ historyEventsMax: 2 });
    h.publish([change(1, 'ADDED', 'a')], 1);
    h.publish([], 7);
    h.publish([change(8, 'ADDED', 'b')], 8);
    expect(h.oldestRv()).toBe(0);
    expect(h.changesSince(0).map((c) => c.rv)).toEqual([1, 8]);
    expect(h.changesSince(3).map((c) => c.rv)).toEqual([8]);
    h.publish([change(9, 'ADDED', 'c')], 9);
    expect(h.oldestRv()).toBe(1);
    expect(h.changesSince(5).map((c) => c.rv)).toEqual([8, 9]);
  });

  it('stays correct across many trims (ring compaction)', () => {
    const h = hub({ historyEventsMax: 10 });
    for (let rv = 1; rv <= 20_000; rv += 1) h.publish([change(rv, 'ADDED', 'o')], rv);
    expect(h.oldestRv()).toBe(19_990);
    expect(h.changesSince(19_990).map((c) => c.rv)).toEqual(Array.from({ length: 10 }, (_, i) => 19_991 + i));
    expect(() => h.changesSince(19_989)).toThrow(ApiError);
  });
});

describe('WatchHub watchers', () => {
  it('delivers changes after the watcher version, in order, in one batch per publish', async () => {
    const h = hub();
    h.publish([change(1, 'ADDED', 'a')], 1);
    const w = h.watch(all, 1, [], false);
    h.publish([change(2, 'MODIFIED', 'a'), change(3, 'ADDED', 'b')], 3);
    expect(summary(await w.next())).toEqual(['MODIFIED a@2', 'ADDED b@3']);
    const pending = w.next();
    h.publish([change(4, 'DELETED', 'b')], 4);
    expect(summary(await pending)).toEqual(['DELETED b@4']);
    expect(h.watcherCount).toBe(1);
  });

  it('skips changes at or below the version the watcher was given', async () => {
    const h = hub();
    const w = h.watch(all, 5, [], false);
    h.publish([change(5, 'ADDED', 'old'), change(6, 'ADDED', 'new')], 6);
    expect(summary(await w.next())).toEqual(['ADDED new@6']);
  });

  it('ends a watcher that falls watchBufferEventsMax behind with ResourceExhausted; at the limit it lives', async () => {
    const h = hub({ watchBufferEventsMax: 3 });
    const ok = h.watch(all, 0, [], false);
    const slow = h.watch(all, 0, [], false);
    h.publish([change(1, 'ADDED', 'a'), change(2, 'ADDED', 'b'), change(3, 'ADDED', 'c')], 3);
    expect(summary(await ok.next())).toHaveLength(3);
    h.publish([change(4, 'ADDED', 'd')], 4);
    expect(summary(await ok.next())).toEqual(['ADDED d@4']);
    const err = await expectRejects(slow.next(), 'ResourceExhausted');
    expect(err.message).toContain('watchBufferEventsMax');
    // The queued events are dropped: the client resumes from its last version.
    await expectRejects(slow.next(), 'ResourceExhausted');
    expect(h.watcherCount).toBe(1);
  });

  it('initial events beyond the buffer end the watcher at once', async () => {
    const h = hub({ watchBufferEventsMax: 1 });
    const initial: WatchEvent[] = [
      { type: 'ADDED', object: cm('a', 1) },
      { type: 'ADDED', object: cm('b', 2) },
    ];
    const w = h.watch(all, 2, initial, false);
    await expectRejects(w.next(), 'ResourceExhausted');
  });

  it('refuses more than watchersMax watchers; a closed one frees its slot', () => {
    const h = hub({ watchersMax: 1 });
    const w = h.watch(all, 0, [], false);
    expect(() => h.watch(all, 0, [], false)).toThrow(/watchersMax/);
    w.close();
    expect(() => h.watch(all, 0, [], false)).not.toThrow();
  });

  it('next() after close resolves undefined; close ends a pending next(); close is idempotent', async () => {
    const h = hub();
    const w = h.watch(all, 0, [], false);
    const pending = w.next();
    w.close();
    expect(await pending).toBeUndefined();
    w.close();
    expect(await w.next()).toBeUndefined();
    h.publish([change(1, 'ADDED', 'a')], 1);
    expect(await w.next()).toBeUndefined();
    expect(h.watcherCount).toBe(0);
  });

  it('rejects a second concurrent next()', async () => {
    const h = hub();
    const w = h.watch(all, 0, [], false);
    const first = w.next();
    await expect(w.next()).rejects.toThrow(/another call is pending/);
    w.close();
    expect(await first).toBeUndefined();
  });

  it('reset (a snapshot was installed) ends every watcher with Gone and restarts the history', async () => {
    const h = hub();
    h.publish([change(1, 'ADDED', 'a')], 1);
    const idle = h.watch(all, 1, [], false);
    const waiting = h.watch(all, 1, [], false);
    const pending = waiting.next();
    h.reset(50);
    await expectRejects(pending, 'Gone');
    await expectRejects(idle.next(), 'Gone');
    expect(h.watcherCount).toBe(0);
    expect(h.oldestRv()).toBe(50);
    expect(() => h.changesSince(1)).toThrow(ApiError);
    expect(h.changesSince(50)).toEqual([]);
    h.publish([change(51, 'ADDED', 'b')], 51);
    expect(h.changesSince(50).map((c) => c.rv)).toEqual([51]);
  });

  it('close ends watchers with Unavailable', async () => {
    const h = new WatchHub();
    const w = h.watch(all, 0, [], false);
    h.close();
    await expectRejects(w.next(), 'Unavailable');
  });
});

describe('WatchHub bookmarks', () => {
  /** A promise whose settlement can be observed without awaiting it. */
  function track<T>(p: Promise<T>): { done: () => boolean; value: Promise<T> } {
    let done = false;
    const value = p.finally(() => {
      done = true;
    });
    return { done: () => done, value };
  }

  it('only to watchers that asked, only when idle, only for a newer version', async () => {
    vi.useFakeTimers();
    const h = hub({ bookmarkIntervalMs: 100 });
    const asked = h.watch(all, 0, [], true);
    const notAsked = h.watch(all, 0, [], false);
    const busy = h.watch(all, 0, [], true);
    h.publish([change(1, 'ADDED', 'a')], 1);
    expect(summary(await asked.next())).toEqual(['ADDED a@1']);
    expect(summary(await notAsked.next())).toEqual(['ADDED a@1']);
    // `busy` leaves its event queued.
    h.publish([], 5);
    await vi.advanceTimersByTimeAsync(100);
    expect(summary(await asked.next())).toEqual(['BOOKMARK @5']);
    expect(summary(await busy.next())).toEqual(['ADDED a@1']);
    const quiet = track(notAsked.next());
    const noNewer = track(asked.next());
    await vi.advanceTimersByTimeAsync(300);
    expect(quiet.done()).toBe(false);
    expect(noNewer.done()).toBe(false);
    h.publish([change(6, 'ADDED', 'b')], 6);
    expect(summary(await quiet.value)).toEqual(['ADDED b@6']);
    expect(summary(await noNewer.value)).toEqual(['ADDED b@6']);
  });

  it('a bookmark carries the kind and the latest version only', async () => {
    vi.useFakeTimers();
    const h = hub({ bookmarkIntervalMs: 10 });
    const w = h.watch({ kind: 'Pod' }, 0, [], true);
    h.publish([change(1, 'ADDED', 'a')], 9);
    await vi.advanceTimersByTimeAsync(10);
    const [e] = (await w.next()) ?? [];
    expect(e).toEqual({ type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '9' } } });
  });
});

describe('selector semantics (filterChange)', () => {
  const web: WatchFilter = { kind: 'ConfigMap', labels: parseLabelSelector('app=web') };

  it('entering the selector is ADDED, staying is MODIFIED, leaving is DELETED, outside is nothing', () => {
    expect(filterChange(web, change(2, 'MODIFIED', 'a', { app: 'web' }, { app: 'db' }))?.type).toBe('ADDED');
    expect(filterChange(web, change(2, 'MODIFIED', 'a', { app: 'web' }, { app: 'web' }))?.type).toBe(
      'MODIFIED',
    );
    const leave = filterChange(web, change(2, 'MODIFIED', 'a', { app: 'db' }, { app: 'web' }));
    expect(leave?.type).toBe('DELETED');
    expect(leave?.object.metadata.labels).toEqual({ app: 'db' });
    expect(filterChange(web, change(2, 'MODIFIED', 'a', { app: 'db' }, { app: 'db' }))).toBeUndefined();
    expect(filterChange(web, change(2, 'ADDED', 'a', { app: 'web' }))?.type).toBe('ADDED');
    expect(filterChange(web, change(2, 'ADDED', 'a', { app: 'db' }))).toBeUndefined();
  });

  it('a delete is seen by watchers that matched it before or after', () => {
    expect(filterChange(web, change(3, 'DELETED', 'a', { app: 'web' }, { app: 'web' }))?.type).toBe(
      'DELETED',
    );
    expect(filterChange(web, change(3, 'DELETED', 'a', { app: 'web' }, { app: 'db' }))?.type).toBe('DELETED');
    expect(filterChange(web, change(3, 'DELETED', 'a', { app: 'db' }, { app: 'db' }))).toBeUndefined();
  });

  it('filters kind, namespace and name', () => {
    const pod: ChangeEvent = { ...change(2, 'ADDED', 'a'), object: cm('a', 2, undefined, 'Pod') };
    expect(filterChange(all, pod)).toBeUndefined();
    expect(filterChange({ kind: 'ConfigMap', namespace: 'other' }, change(2, 'ADDED', 'a'))).toBeUndefined();
    expect(filterChange({ kind: 'ConfigMap', namespace: 'default' }, change(2, 'ADDED', 'a'))?.type).toBe(
      'ADDED',
    );
    expect(filterChange({ kind: 'ConfigMap', name: 'b' }, change(2, 'ADDED', 'a'))).toBeUndefined();
  });

  it('a selector watcher sees an object enter and leave through the hub', async () => {
    const h = hub();
    const w = h.watch(web, 0, [], false);
    h.publish([change(1, 'ADDED', 'a', { app: 'db' })], 1);
    h.publish([change(2, 'MODIFIED', 'a', { app: 'web' }, { app: 'db' })], 2);
    h.publish([change(3, 'MODIFIED', 'a', { app: 'db' }, { app: 'web' })], 3);
    h.publish([change(4, 'DELETED', 'a', { app: 'db' }, { app: 'db' })], 4);
    expect(summary(await w.next())).toEqual(['ADDED a@2', 'DELETED a@3']);
  });
});

describe('pod watchers indexed by spec.nodeName', () => {
  const podObj = (name: string, rv: number, node: string | undefined, labels: Record<string, string>) =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default', resourceVersion: String(rv), labels },
      spec: { containers: [], ...(node !== undefined ? { nodeName: node } : {}) },
    }) as unknown as ApiObject;

  it('offers a change only to the watchers of the nodes its pod was and is on, with unchanged semantics', async () => {
    const { parseFieldSelector } = await import('../core/index.js');
    const h = hub();
    const onN1 = h.watch({ kind: 'Pod', fields: parseFieldSelector('spec.nodeName=n1') }, 0, [], false);
    const onN2 = h.watch({ kind: 'Pod', fields: parseFieldSelector('spec.nodeName=n2') }, 0, [], false);
    const unbound = h.watch({ kind: 'Pod', fields: parseFieldSelector('spec.nodeName=') }, 0, [], false);
    const every = h.watch({ kind: 'Pod' }, 0, [], false);
    const c = (
      rv: number,
      type: ChangeEvent['type'],
      node?: string,
      prevNode?: string | null,
    ): ChangeEvent => ({
      rv,
      type,
      key: 'Pod/default/p',
      object: podObj('p', rv, node, {}),
      prev: prevNode === null ? undefined : podObj('p', rv - 1, prevNode, {}),
    });
    h.publish(
      [c(1, 'ADDED', undefined, null), c(2, 'MODIFIED', 'n1', undefined), c(3, 'DELETED', 'n1', 'n1')],
      3,
    );
    expect(summary(await onN1.next())).toEqual(['ADDED p@2', 'DELETED p@3']);
    expect(summary(await unbound.next())).toEqual(['ADDED p@1', 'DELETED p@2']);
    expect(summary(await every.next())).toEqual(['ADDED p@1', 'MODIFIED p@2', 'DELETED p@3']);
    const pending = onN2.next();
    h.publish([c(4, 'ADDED', 'n2', null)], 4);
    expect(summary(await pending)).toEqual(['ADDED p@4']);
    onN1.close();
    onN2.close();
    unbound.close();
    expect(h.watcherCount).toBe(1);
  });

  it('delivers exactly what an unindexed hub would, for any changes and selectors (property)', async () => {
    const fc = (await import('fast-check')).default;
    const { parseFieldSelector } = await import('../core/index.js');
    const nodes = ['', 'n1', 'n2', 'n3'];
    const selectors = [
      'spec.nodeName=n1',
      'spec.nodeName=n2',
      'spec.nodeName=',
      'spec.nodeName!=n1',
      'spec.nodeName=n1,metadata.name=p1',
      '',
    ];
    const step = fc.record({
      pod: fc.constantFrom('p0', 'p1'),
      node: fc.nat(3),
      op: fc.constantFrom('upsert', 'delete', 'bind'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(step, { minLength: 1, maxLength: 5 }), { maxLength: 8 }),
        async (batches) => {
          const h = new WatchHub();
          try {
            const filters: WatchFilter[] = selectors.map((text) => ({
              kind: 'Pod',
              ...(text ? { fields: parseFieldSelector(text) } : {}),
            }));
            const ws = filters.map((f) => h.watch(f, 0, [], false));
            const expected: string[][] = filters.map(() => []);
            const state = new Map<string, ApiObject>();
            let rv = 0;
            for (const batch of batches) {
              const changes: ChangeEvent[] = [];
              for (const s of batch) {
                const prev = state.get(s.pod);
                rv += 1;
                let ch: ChangeEvent | undefined;
                if (s.op === 'delete') {
                  if (prev === undefined) continue;
                  ch = { rv, type: 'DELETED', key: `Pod/default/${s.pod}`, object: prev, prev };
                  state.delete(s.pod);
                } else {
                  const prevNode = (prev as { spec?: { nodeName?: string } } | undefined)?.spec?.nodeName;
                  const node =
                    s.op === 'bind' && prevNode === undefined ? nodes[s.node] || undefined : prevNode;
                  const obj = podObj(s.pod, rv, node, { r: String(rv % 2) });
                  ch = {
                    rv,
                    type: prev ? 'MODIFIED' : 'ADDED',
                    key: `Pod/default/${s.pod}`,
                    object: obj,
                    prev,
                  };
                  state.set(s.pod, obj);
                }
                changes.push(ch);
                filters.forEach((f, i) => {
                  const e = filterChange(f, ch as ChangeEvent);
                  if (e)
                    expected[i].push(
                      `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`,
                    );
                });
              }
              h.publish(changes, rv);
            }
            for (let i = 0; i < ws.length; i += 1) {
              // Whatever is queued comes at once; nothing queued loses the race to a timer.
              const got = await Promise.race([
                ws[i].next().then(summary),
                new Promise<string[]>((r) => setTimeout(() => r([]), 0)),
              ]);
              expect(got).toEqual(expected[i]);
            }
          } finally {
            h.close();
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

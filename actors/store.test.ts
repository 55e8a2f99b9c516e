import { isDeepStrictEqual } from 'node:util';
import { pack } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Command } from '../core/commands.js';
import {
  type ApiObject,
  canonicalJson,
  fieldSelectorMatches,
  parseLabelSelector,
  UnstorableJsonError,
} from '../core/index.js';
import type { Entry } from '../raft/index.js';
import { ApiError, type WatchEvent } from './api.js';
import { type ActorSystem, startActorSystem, stopActorSystem } from './runtime.js';
import {
  decodeRecord,
  encodeRecord,
  type ListQuery,
  type LogRecord,
  ObjectStore,
  type RecordOutcome,
} from './store.js';
import { filterChange } from './watch-hub.js';

const NOW = '2024-05-01T10:00:00Z';

function cm(
  name: string,
  opts: {
    data?: Record<string, string>;
    labels?: Record<string, string>;
    ns?: string;
    uid?: string;
    finalizers?: string[];
  } = {},
): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: opts.ns ?? 'default',
      uid: opts.uid ?? `uid-${name}`,
      creationTimestamp: '2024-05-01T09:00:00Z',
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.finalizers ? { finalizers: opts.finalizers } : {}),
    },
    data: opts.data ?? { k: 'v' },
  } as unknown as ApiObject;
}

function nsObj(name: string): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, uid: `uid-ns-${name}`, creationTimestamp: '2024-05-01T09:00:00Z' },
  } as unknown as ApiObject;
}

const create = (object: ApiObject): Command => ({ op: 'create', object });
const update = (object: ApiObject): Command => ({ op: 'update', object });
const remove = (name: string, ns = 'default', kind = 'ConfigMap'): Command => ({
  op: 'delete',
  key: { kind, namespace: ns, name },
  now: NOW,
});

/** Hand-built committed entries, indexes from `first`; a `null` is an empty (no-op) entry. */
function entries(first: number, items: readonly (Command | LogRecord | null)[]): Entry[] {
  return items.map((item, i) => {
    const index = first + i;
    const rec: LogRecord | undefined =
      item === null ? undefined : 't' in item ? item : { t: 'cmd', id: `e${index}`, cmd: item };
    const data = rec === undefined ? new Uint8Array(0) : encodeRecord(rec);
    return { index, term: 1, type: 'normal' as const, data };
  });
}

/** Applies one batch starting right after the store's applied index; returns its last index. */
async function batch(store: ObjectStore, items: readonly (Command | LogRecord | null)[]): Promise<number> {
  const es = entries(store.appliedIndex + 1, items);
  const last = es[es.length - 1].index;
  await store.applyBatch(es, last);
  return last;
}

function names(items: ApiObject[]): string[] {
  return items.map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}@${o.metadata.resourceVersion}`);
}

function dataOf(o: ApiObject | undefined): unknown {
  return (o as { data?: unknown } | undefined)?.data;
}

describe('ObjectStore', () => {
  let system: ActorSystem;
  const stores: ObjectStore[] = [];
  const newStore = (hub?: ConstructorParameters<typeof ObjectStore>[0]['hub']): ObjectStore => {
    const s = new ObjectStore({ system, objectBucketsCount: 4, ...(hub ? { hub } : {}) });
    stores.push(s);
    return s;
  };

  /** Whether the object actor of `key` (kind/namespace/name) runs, seen through the system's metrics. */
  const actorRuns = (sys: ActorSystem, key: string): boolean => {
    const name = key.replaceAll('/', '+');
    return sys.metrics().some((m) => m.path.endsWith(`/${name}`));
  };

  const peerSystems: ActorSystem[] = [];
  /** A store on an actor system of its own, as another master's; both end with the test. */
  const newPeerStore = (): { store: ObjectStore; system: ActorSystem } => {
    const peerSystem = startActorSystem();
    peerSystems.push(peerSystem);
    const store = new ObjectStore({ system: peerSystem, objectBucketsCount: 4 });
    stores.push(store);
    return { store, system: peerSystem };
  };

  beforeEach(() => {
    system = startActorSystem();
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) s.close();
    await stopActorSystem(system);
    for (const peer of peerSystems.splice(0)) await stopActorSystem(peer);
  });

  it('applies create, update, delete and create again of one key in ONE batch, in log order', async () => {
    const store = newStore();
    const watch = store.watch({ kind: 'ConfigMap' }, 0, false, false);
    const waits = [1, 2, 3, 4, 5, 6].map((i) => store.expectOutcome(`e${i}`).outcome);
    const last = await batch(store, [
      create(cm('a', { data: { v: '1' } })),
      update(cm('a', { data: { v: '2' } })),
      remove('a'),
      create(cm('a', { data: { v: '3' }, uid: 'uid-a2' })),
      create(cm('b')),
      update(cm('c')),
      null,
    ]);
    expect(last).toBe(7);
    expect(store.appliedIndex).toBe(7);
    const a = store.get('ConfigMap', 'default', 'a');
    expect(a?.metadata.resourceVersion).toBe('4');
    expect(a?.metadata.uid).toBe('uid-a2');
    expect(a?.metadata.generation).toBe(1);
    expect(dataOf(a)).toEqual({ v: '3' });
    expect(store.get('ConfigMap', 'default', 'c')).toBeUndefined();
    expect(store.count('ConfigMap')).toBe(2);

    const outcomes = (await Promise.all(waits)) as RecordOutcome[];
    expect(outcomes.map((o) => (o.result === 'written' ? o.event : o.result))).toEqual([
      'ADDED',
      'MODIFIED',
      'DELETED',
      'ADDED',
      'ADDED',
      'rejected',
    ]);
    expect(store.hub.changesSince(0).map((c) => `${c.type} ${c.key}@${c.rv}`)).toEqual([
      'ADDED ConfigMap/default/a@1',
      'MODIFIED ConfigMap/default/a@2',
      'DELETED ConfigMap/default/a@3',
      'ADDED ConfigMap/default/a@4',
      'ADDED ConfigMap/default/b@5',
    ]);
    const events = (await watch.next()) as WatchEvent[];
    expect(
      events.map((e) => `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`),
    ).toEqual(['ADDED a@1', 'MODIFIED a@2', 'DELETED a@3', 'ADDED a@4', 'ADDED b@5']);
    expect(actorRuns(system, 'ConfigMap/default/a')).toBe(true);
    expect(actorRuns(system, 'ConfigMap/default/b')).toBe(true);
    expect(actorRuns(system, 'ConfigMap/default/c')).toBe(false);
  });

  it('appliedIndex is exact across batches and waiters are released by it', async () => {
    const store = newStore();
    const reached = store.waitForApplied(3, 5_000);
    await batch(store, [create(cm('a'))]);
    expect(store.appliedIndex).toBe(1);
    await batch(store, [update(cm('a', { data: { x: 'y' } })), null]);
    await reached;
    expect(store.appliedIndex).toBe(3);
    await expect(store.waitForApplied(10, 20)).rejects.toMatchObject({ code: 'Timeout' });
  });

  it('stops an object actor when its object is deleted and respawns it for a new object', async () => {
    const store = newStore();
    await batch(store, [create(cm('a'))]);
    expect(actorRuns(system, 'ConfigMap/default/a')).toBe(true);
    await batch(store, [remove('a')]);
    expect(actorRuns(system, 'ConfigMap/default/a')).toBe(false);
    await batch(store, [create(cm('a', { data: { again: 'yes' } }))]);
    expect(actorRuns(system, 'ConfigMap/default/a')).toBe(true);
    expect(dataOf(store.get('ConfigMap', 'default', 'a'))).toEqual({ again: 'yes' });
    // Created and deleted within one batch: no actor left behind.
    await batch(store, [create(cm('tmp')), remove('tmp')]);
    expect(actorRuns(system, 'ConfigMap/default/tmp')).toBe(false);
    expect(store.get('ConfigMap', 'default', 'tmp')).toBeUndefined();
  });

  it('keeps the actor of an object marked for deletion until its last finalizer goes', async () => {
    const store = newStore();
    await batch(store, [create(cm('a', { finalizers: ['f'] })), remove('a')]);
    expect(store.get('ConfigMap', 'default', 'a')?.metadata.deletionTimestamp).toBe(NOW);
    expect(actorRuns(system, 'ConfigMap/default/a')).toBe(true);
    await batch(store, [update(cm('a'))]);
    expect(store.get('ConfigMap', 'default', 'a')).toBeUndefined();
    expect(actorRuns(system, 'ConfigMap/default/a')).toBe(false);
    expect(store.count('ConfigMap')).toBe(0);
  });

  it('applies a record of several commands at its one index, in order, each with its own outcome', async () => {
    const items: (Command | LogRecord)[] = [
      create(cm('a')),
      create(cm('b')),
      create(cm('c')),
      {
        t: 'cmds',
        id: 'many',
        cmds: [
          remove('a'),
          { ...remove('b'), precondition: { resourceVersion: '1' } } as Command,
          remove('missing'),
          remove('c'),
        ],
      },
      update(cm('c', { data: { v: 'again' } })),
      create(cm('a', { uid: 'uid-a2' })),
    ];
    // One store applies everything in one batch, the other one entry at a time: same result.
    const together = newStore();
    const { store: alone, system: otherSystem } = newPeerStore();
    const outcome = together.expectOutcome('many').outcome;
    await batch(together, items);
    for (const item of items) await batch(alone, [item]);
    const out = (await outcome) as Extract<RecordOutcome, { result: 'cmds' }>;
    expect(out.result).toBe('cmds');
    expect(
      out.outcomes.map((o) => (o.result === 'rejected' ? o.code : o.result === 'written' ? o.event : '')),
    ).toEqual(['DELETED', 'Conflict', 'NotFound', 'DELETED']);
    for (const [store, sys] of [
      [together, system],
      [alone, otherSystem],
    ] as const) {
      expect(store.appliedIndex).toBe(6);
      expect(names(store.list({ kind: 'ConfigMap', limit: 0 }).items)).toEqual([
        'default/a@6',
        'default/b@2',
      ]);
      expect(store.hub.changesSince(3).map((c) => `${c.type} ${c.key}@${c.rv}`)).toEqual([
        'DELETED ConfigMap/default/a@4',
        'DELETED ConfigMap/default/c@4',
        'ADDED ConfigMap/default/a@6',
      ]);
      expect(actorRuns(sys, 'ConfigMap/default/c')).toBe(false);
      expect(actorRuns(sys, 'ConfigMap/default/a')).toBe(true);
    }
  });

  it('applies records written as plain msgpack maps (the log format before records) as it applies its own', async () => {
    const rec: LogRecord = {
      t: 'cmds',
      id: 'old',
      cmds: [create(cm('a', { data: { v: '1' } })), create(cm('b')), update(cm('a', { data: { v: '2' } }))],
    };
    const mine = encodeRecord(rec);
    const before = new Uint8Array(pack(rec));
    // Each shape's keys once, not once per object.
    expect(mine.byteLength).toBeLessThan(before.byteLength);
    const current = newStore();
    const old = newPeerStore().store;
    await current.applyBatch([{ index: 1, term: 1, type: 'normal', data: mine }], 1);
    await old.applyBatch([{ index: 1, term: 1, type: 'normal', data: before }], 1);
    const a = current.list({ kind: 'ConfigMap', limit: 0 }).items;
    const b = old.list({ kind: 'ConfigMap', limit: 0 }).items;
    expect(names(b)).toEqual(['default/a@1', 'default/b@1']);
    expect(b).toEqual(a);
    expect(dataOf(b[0])).toEqual({ v: '2' });
  });

  it('applies a record it proposed from the record itself, and the same as every other master decodes it', async () => {
    const rec: LogRecord = {
      t: 'cmds',
      id: 'mine',
      cmds: [create(cm('a', { data: { v: '1' } })), create(cm('b')), update(cm('a', { data: { v: '2' } }))],
    };
    const data = encodeRecord(rec);
    const proposer = newStore();
    const other = newPeerStore().store;
    proposer.remember(data, rec);
    // Each master applies its own copy of the entry: the proposer's holds the same buffer.
    await proposer.applyBatch([{ index: 1, term: 1, type: 'normal', data }], 1);
    await other.applyBatch([{ index: 1, term: 1, type: 'normal', data: new Uint8Array(data) }], 1);
    const mine = proposer.list({ kind: 'ConfigMap', limit: 0 }).items;
    expect(mine).toEqual(other.list({ kind: 'ConfigMap', limit: 0 }).items);
    expect(names(mine)).toEqual(['default/a@1', 'default/b@1']);
    // Not decoded again: the committed object holds the proposed command's parts.
    const proposedB = (rec.cmds[1] as { object: ApiObject }).object;
    expect(dataOf(proposer.getByKey('ConfigMap/default/b'))).toBe(dataOf(proposedB));
    expect(dataOf(other.getByKey('ConfigMap/default/b'))).not.toBe(dataOf(proposedB));
  });

  it('decodes a record of canonical copies to equal copies: what a proposer applies is what the others decode', async () => {
    const fc = (await import('fast-check')).default;
    // Values no JSON client sends are in too (in-process callers): dates, maps, sparse arrays,
    // null prototypes, boxed values; strings of any UTF-16 code units, lone surrogates included.
    const value = fc.anything({
      maxDepth: 3,
      stringUnit: 'binary',
      key: fc.oneof(
        { weight: 10, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
        { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString') },
      ),
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
    });
    let refused = 0;
    fc.assert(
      fc.property(value, (v) => {
        let object: ApiObject;
        try {
          object = canonicalJson({ ...cm('a'), extra: v } as unknown as ApiObject);
        } catch (err) {
          // The one thing the codec cannot keep is refused, never stored otherwise.
          expect(err).toBeInstanceOf(UnstorableJsonError);
          refused += 1;
          return;
        }
        const rec: LogRecord = { t: 'cmd', id: 'x', cmd: { op: 'create', object } };
        // Tells -0 from 0, undefined from absent and holes from undefined, and compares
        // prototypes (toStrictEqual would compare a `constructor` member instead).
        const decoded = decodeRecord(encodeRecord(rec));
        if (!isDeepStrictEqual(decoded, rec)) expect(decoded).toStrictEqual(rec);
        expect(isDeepStrictEqual(decoded, rec)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it('rejects a command it cannot read as Invalid, on its own, and applies the rest', async () => {
    const store = newStore();
    // What an object whose prototype is an array encodes to (msgpackr writes it as an array),
    // and other shapes no admission lets through.
    const bad = [
      { op: 'create', object: [null, false, 1] },
      { op: 'create', object: { kind: 'ConfigMap' } },
      { op: 'update', object: { kind: 'ConfigMap', metadata: { name: 7 } } },
      { op: 'delete', key: null, now: NOW },
      { op: 'explode' },
    ] as unknown as Command[];
    const waits = bad.map((_, i) => store.expectOutcome(`e${i + 2}`).outcome);
    const group = store.expectOutcome('g').outcome;
    await batch(store, [
      create(cm('a')),
      ...bad,
      { t: 'cmds', id: 'g', cmds: [remove('a'), bad[0]] },
      create(cm('b')),
    ]);
    for (const w of waits) {
      expect(await w).toMatchObject({
        result: 'rejected',
        code: 'Invalid',
        message: expect.stringMatching(/^malformed command in log entry \d+: /),
      });
    }
    const g = (await group) as Extract<RecordOutcome, { result: 'cmds' }>;
    expect(g.outcomes.map((o) => (o.result === 'rejected' ? o.code : o.result))).toEqual([
      'written',
      'Invalid',
    ]);
    expect(store.appliedIndex).toBe(8);
    expect(names(store.list({ kind: 'ConfigMap', limit: 0 }).items)).toEqual(['default/b@8']);

    // Well-formed, but the apply rules throw on it (finalizers must be a list): rejected too,
    // by the object actor, which then goes on applying.
    const odd = {
      op: 'update',
      object: { ...cm('b'), metadata: { ...cm('b').metadata, finalizers: 'x/y' } },
    } as unknown as Command;
    const oddOutcome = store.expectOutcome('e9').outcome;
    await batch(store, [odd, update(cm('b', { data: { k: 'after' } }))]);
    expect(await oddOutcome).toMatchObject({
      result: 'rejected',
      code: 'Invalid',
      message: expect.stringMatching(/^cannot apply update of configmaps "b" in namespace "default": /),
    });
    expect(dataOf(store.get('ConfigMap', 'default', 'b'))).toEqual({ k: 'after' });
    expect(store.appliedIndex).toBe(10);

    const notAList = store.expectOutcome('h').outcome;
    await batch(store, [
      { t: 'cmds', id: 'h', cmds: { 0: remove('b') } } as unknown as LogRecord,
      remove('b'),
    ]);
    expect(await notAList).toMatchObject({
      result: 'rejected',
      code: 'Invalid',
      message: 'malformed record in log entry 11: cmds is not a list',
    });
    expect(store.get('ConfigMap', 'default', 'b')).toBeUndefined();
  });

  it('records members and settles their proposers', async () => {
    const store = newStore();
    const w = store.expectOutcome('m1');
    await batch(store, [
      { t: 'member', id: 'm1', member: { id: 'n1', raftAddress: 'h:1' } },
      { t: 'member', member: { id: 'n2', raftAddress: 'h:2' } },
      { t: 'memberRemoved', member: 'n1' },
    ]);
    expect(await w.outcome).toEqual({ result: 'member' });
    expect(store.memberList()).toEqual([{ id: 'n2', raftAddress: 'h:2' }]);
    expect(store.appliedIndex).toBe(3);
  });

  it('snapshot -> restore into a fresh store gives identical reads, and the restored actors hold state', async () => {
    const store = newStore();
    await batch(store, [
      create(nsObj('prod')),
      create(cm('a', { labels: { app: 'web' } })),
      create(cm('b', { ns: 'prod', labels: { app: 'db' } })),
      create(cm('c', { finalizers: ['f'] })),
      remove('c'),
      update(cm('a', { labels: { app: 'web' }, data: { k: 'w' } })),
      { t: 'member', member: { id: 'n1', raftAddress: 'h:1' } },
    ]);
    const queries: ListQuery[] = [
      { kind: 'ConfigMap', limit: 0 },
      { kind: 'ConfigMap', namespace: 'prod', limit: 0 },
      { kind: 'ConfigMap', labels: parseLabelSelector('app=web'), limit: 0 },
      { kind: 'Namespace', limit: 0 },
      { kind: 'ConfigMap', limit: 1 },
    ];
    const bytes = await store.snapshot();

    const other = startActorSystem();
    try {
      const restored = new ObjectStore({ system: other });
      stores.push(restored);
      restored.restore(bytes);
      expect(restored.appliedIndex).toBe(store.appliedIndex);
      for (const q of queries) expect(restored.list(q)).toEqual(store.list(q));
      expect(restored.memberList()).toEqual(store.memberList());
      for (const key of [
        'ConfigMap/default/a',
        'ConfigMap/prod/b',
        'ConfigMap/default/c',
        'Namespace//prod',
      ]) {
        expect(actorRuns(other, key)).toBe(true);
      }
      // The restored actors know their objects: a duplicate create is refused, an update applies.
      const dup = restored.expectOutcome('e8');
      const upd = restored.expectOutcome('e9');
      await batch(restored, [create(cm('a')), update(cm('b', { ns: 'prod', data: { n: '1' } }))]);
      expect(await dup.outcome).toMatchObject({ result: 'rejected', code: 'AlreadyExists' });
      expect(await upd.outcome).toMatchObject({ result: 'written', event: 'MODIFIED' });
      expect(restored.get('ConfigMap', 'prod', 'b')?.metadata.resourceVersion).toBe('9');
    } finally {
      await stopActorSystem(other);
    }
  });

  it('a snapshot is the cut at its call, even while it encodes over many turns and later entries apply', async () => {
    // A slice of 0 ms: the encoding yields after every object.
    const store = new ObjectStore({ system, objectBucketsCount: 4, snapshotSliceMs: 0 });
    stores.push(store);
    const many = Array.from({ length: 3_000 }, (_, i) =>
      create(cm(`o${i}`, { data: { v: 'x'.repeat(200) } })),
    );
    await batch(store, many);
    const at = store.appliedIndex;
    const encoding = store.snapshot();
    // Applied while the snapshot encodes: none of it may show up in it.
    await batch(store, [remove('o0'), create(cm('late')), update(cm('o1', { data: { v: 'changed' } }))]);
    const bytes = await encoding;
    const other = startActorSystem();
    try {
      const restored = new ObjectStore({ system: other, objectBucketsCount: 4 });
      stores.push(restored);
      restored.restore(bytes);
      expect(restored.appliedIndex).toBe(at);
      expect(restored.count('ConfigMap')).toBe(3_000);
      expect(restored.get('ConfigMap', 'default', 'o0')).toBeDefined();
      expect(restored.get('ConfigMap', 'default', 'late')).toBeUndefined();
      expect(dataOf(restored.get('ConfigMap', 'default', 'o1'))).toEqual({ v: 'x'.repeat(200) });
      expect(restored.get('ConfigMap', 'default', 'o2')).toEqual(store.get('ConfigMap', 'default', 'o2'));
    } finally {
      await stopActorSystem(other);
    }
  });

  it('a second snapshot after writes, deletes and creates holds exactly the state at its call', async () => {
    const store = newStore();
    await batch(store, [create(cm('a', { data: { v: '1' } })), create(cm('b')), create(cm('c'))]);
    const first = await store.snapshot();
    await batch(store, [update(cm('a', { data: { v: '2' } })), remove('b'), create(cm('d'))]);
    const second = await store.snapshot();
    for (const [bytes, expected] of [
      [first, { names: ['a', 'b', 'c'], a: { v: '1' } }],
      [second, { names: ['a', 'c', 'd'], a: { v: '2' } }],
    ] as const) {
      const other = startActorSystem();
      try {
        const restored = new ObjectStore({ system: other });
        stores.push(restored);
        restored.restore(bytes);
        const names = restored.list({ kind: 'ConfigMap', limit: 0 }).items.map((o) => o.metadata.name);
        expect(names).toEqual(expected.names);
        expect(dataOf(restored.get('ConfigMap', 'default', 'a'))).toEqual(expected.a);
        expect(restored.get('ConfigMap', 'default', 'c')).toEqual(store.get('ConfigMap', 'default', 'c'));
      } finally {
        await stopActorSystem(other);
      }
    }
  });

  it('restore over a live store replaces its objects, stops their actors and ends watchers with Gone', async () => {
    const donorSystem = startActorSystem();
    let bytes: Uint8Array;
    try {
      const donor = new ObjectStore({ system: donorSystem });
      stores.push(donor);
      await batch(donor, [create(cm('x')), create(cm('y'))]);
      bytes = await donor.snapshot();
    } finally {
      await stopActorSystem(donorSystem);
    }
    const store = newStore();
    await batch(store, [create(cm('old')), create(cm('x', { data: { stale: 'yes' } })), null]);
    expect(actorRuns(system, 'ConfigMap/default/old')).toBe(true);
    const w = store.watch({ kind: 'ConfigMap' }, undefined, false, false);
    const pending = w.next();
    store.restore(bytes);
    await expect(pending).rejects.toMatchObject({ code: 'Gone' });
    expect(names(store.list({ kind: 'ConfigMap', limit: 0 }).items)).toEqual(['default/x@1', 'default/y@2']);
    expect(store.get('ConfigMap', 'default', 'old')).toBeUndefined();
    expect(actorRuns(system, 'ConfigMap/default/old')).toBe(false);
    expect(actorRuns(system, 'ConfigMap/default/x')).toBe(true);
    expect(store.appliedIndex).toBe(2);
    expect(() => store.hub.changesSince(1)).toThrow(ApiError);
    // The respawned actor of x holds the restored object, not the stale one.
    const dup = store.expectOutcome('e3');
    await batch(store, [update(cm('x', { data: { k: 'v' } }))]);
    expect(await dup.outcome).toMatchObject({ result: 'unchanged' });
  });

  it('pages a list at a cut rebuilt from the history: later changes are invisible', async () => {
    const store = newStore();
    await batch(
      store,
      ['a', 'b', 'c', 'd', 'e'].map((n) => create(cm(n, { labels: { app: 'web' } }))),
    );
    const first = store.list({ kind: 'ConfigMap', limit: 2 });
    expect(names(first.items)).toEqual(['default/a@1', 'default/b@2']);
    expect(first.rv).toBe(5);
    expect(first.remaining).toBe(3);
    expect(first.nextKey).toBe('ConfigMap/default/b');

    // After the cut: a new key inside the next page, a change, a delete and a relabel.
    await batch(store, [
      create(cm('bb')),
      update(cm('c', { labels: { app: 'web' }, data: { changed: 'yes' } })),
      remove('d'),
      update(cm('e', { labels: { app: 'db' } })),
      create(cm('f')),
    ]);
    const after = { rv: first.rv, key: first.nextKey as string };
    const second = store.list({ kind: 'ConfigMap', limit: 2, after });
    expect(names(second.items)).toEqual(['default/c@3', 'default/d@4']);
    expect(dataOf(second.items[0])).toEqual({ k: 'v' });
    expect(second.rv).toBe(5);
    expect(second.remaining).toBe(1);
    const third = store.list({
      kind: 'ConfigMap',
      limit: 2,
      after: { rv: 5, key: second.nextKey as string },
    });
    expect(names(third.items)).toEqual(['default/e@5']);
    expect(third.nextKey).toBeUndefined();

    // Selectors are evaluated against the objects at the cut.
    const web = store.list({
      kind: 'ConfigMap',
      limit: 0,
      labels: parseLabelSelector('app=web'),
      after: { rv: 5, key: '' },
    });
    expect(names(web.items)).toEqual([
      'default/a@1',
      'default/b@2',
      'default/c@3',
      'default/d@4',
      'default/e@5',
    ]);
    // The current state is different.
    expect(names(store.list({ kind: 'ConfigMap', limit: 0 }).items)).toEqual([
      'default/a@1',
      'default/b@2',
      'default/bb@6',
      'default/c@7',
      'default/e@9',
      'default/f@10',
    ]);
  });

  it('a limit that ends exactly at the last match gives no continue', async () => {
    const store = newStore();
    await batch(store, [create(cm('a')), create(cm('b')), create(cm('z', { ns: 'other' }))]);
    const page = store.list({ kind: 'ConfigMap', namespace: 'default', limit: 2 });
    expect(names(page.items)).toEqual(['default/a@1', 'default/b@2']);
    expect(page.nextKey).toBeUndefined();
  });

  it('a continue whose cut left the history is Gone; exactly at the boundary it still works', async () => {
    const store = newStore({ historyEventsMax: 3 });
    await batch(store, [create(cm('a')), create(cm('b')), create(cm('c'))]);
    const page = store.list({ kind: 'ConfigMap', limit: 1 });
    expect(page.rv).toBe(3);
    const after = { rv: page.rv, key: page.nextKey as string };
    await batch(store, [update(cm('a', { data: { n: '1' } })), update(cm('b', { data: { n: '1' } }))]);
    await batch(store, [update(cm('c', { data: { n: '1' } }))]);
    // History holds 4, 5, 6: the state at 3 can still be rebuilt.
    expect(store.hub.oldestRv()).toBe(3);
    expect(names(store.list({ kind: 'ConfigMap', limit: 1, after }).items)).toEqual(['default/b@2']);
    await batch(store, [update(cm('a', { data: { n: '2' } }))]);
    let err: unknown;
    try {
      store.list({ kind: 'ConfigMap', limit: 1, after });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('Gone');
  });

  it('lists pods by spec.nodeName from its index exactly as a scan would, through binds, deletes and restores', async () => {
    const fc = (await import('fast-check')).default;
    const { parseFieldSelector } = await import('../core/index.js');
    const podOf = (name: string, ns: string, node?: string) =>
      ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: ns, uid: `uid-${name}`, creationTimestamp: '2024-05-01T09:00:00Z' },
        spec: { containers: [{ name: 'c', image: 'i' }], ...(node ? { nodeName: node } : {}) },
      }) as unknown as ApiObject;
    const op = fc.record({
      t: fc.constantFrom('create', 'bind', 'delete'),
      pod: fc.constantFrom('a', 'b', 'c', 'd'),
      ns: fc.constantFrom('default', 'other'),
      node: fc.constantFrom('n1', 'n2'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), fc.boolean(), async (ops, restore) => {
        // One actor system per case: a store registers its object actors under a fixed name.
        const own = startActorSystem();
        const mine: ObjectStore[] = [];
        const fresh = () => {
          const st = new ObjectStore({ system: own, objectBucketsCount: 4 });
          mine.push(st);
          return st;
        };
        try {
          let store = fresh();
          const cmds: Command[] = ops.map((o) =>
            o.t === 'create'
              ? create(podOf(o.pod, o.ns))
              : o.t === 'bind'
                ? {
                    op: 'bind',
                    key: { kind: 'Pod', namespace: o.ns, name: o.pod },
                    uid: `uid-${o.pod}`,
                    nodeName: o.node,
                    now: NOW,
                  }
                : remove(o.pod, o.ns, 'Pod'),
          );
          if (cmds.length > 0) await batch(store, cmds);
          if (restore) {
            const bytes = await store.snapshot();
            for (const st of mine.splice(0)) st.close();
            await stopActorSystem(own);
            const again = startActorSystem();
            try {
              store = new ObjectStore({ system: again, objectBucketsCount: 4 });
              store.restore(bytes);
              checkLists(store);
            } finally {
              store.close();
              await stopActorSystem(again);
            }
            return;
          }
          checkLists(store);
          // A node agent's watch resumed from the start replays what an unindexed replay would.
          for (const text of ['spec.nodeName=n1', 'spec.nodeName=']) {
            const filter = { kind: 'Pod', fields: parseFieldSelector(text) };
            const show = (e: WatchEvent) =>
              `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`;
            const expected = store.hub.changesSince(0).flatMap((c) => {
              const e = filterChange(filter, c);
              return e ? [show(e)] : [];
            });
            const w = store.watch(filter, 0, false, false);
            // Whatever was replayed is queued at once; nothing queued loses the race to a timer.
            const got = await Promise.race([
              w.next().then((es) => (es ?? []).map(show)),
              new Promise<string[]>((r) => setTimeout(() => r([]), 0)),
            ]);
            w.close();
            expect(got).toEqual(expected);
          }
        } finally {
          for (const st of mine) st.close();
          await stopActorSystem(own);
        }
      }),
      { numRuns: 100 },
    );
    function checkLists(store: ObjectStore): void {
      for (const text of [
        'spec.nodeName=n1',
        'spec.nodeName=n2',
        'spec.nodeName=',
        'spec.nodeName=n1,metadata.name=a',
      ]) {
        for (const namespace of [undefined, 'default', 'other']) {
          const fields = parseFieldSelector(text);
          const got = store.list({ kind: 'Pod', namespace, fields, limit: 0 }).items;
          const scanned = [...store.objectsOfKind('Pod')]
            .filter((p) => namespace === undefined || p.metadata.namespace === namespace)
            .filter((p) => fieldSelectorMatches(fields, p))
            .map((p) => `${p.metadata.namespace}/${p.metadata.name}`)
            .sort();
          expect(got.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(scanned);
        }
      }
      // Pages: limit 1 then continue gives the same pods.
      const first = store.list({ kind: 'Pod', fields: parseFieldSelector('spec.nodeName=n1'), limit: 1 });
      if (first.nextKey !== undefined) {
        const rest = store.list({
          kind: 'Pod',
          fields: parseFieldSelector('spec.nodeName=n1'),
          limit: 0,
          after: { rv: first.rv, key: first.nextKey },
        });
        expect(first.items.length + rest.items.length).toBe(first.items.length + (first.remaining ?? 0));
      }
    }
  });

  it('a watch from an old version replays the history; from a version out of it is Gone', async () => {
    const store = newStore({ historyEventsMax: 2 });
    await batch(store, [create(cm('a')), create(cm('b')), create(cm('c'))]);
    const w = store.watch({ kind: 'ConfigMap' }, 1, false, false);
    expect((await w.next())?.map((e) => e.object.metadata.name)).toEqual(['b', 'c']);
    expect(() => store.watch({ kind: 'ConfigMap' }, 0, false, false)).toThrow(ApiError);
  });
});

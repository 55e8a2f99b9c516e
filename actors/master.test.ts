import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Command } from '../core/commands.js';
import type { ApiObject, Event, Pod } from '../core/index.js';
import { systemNamespaces } from '../core/namespaces.js';
import { type MemoryCluster, startMemoryCluster } from '../test/fixtures/master-cluster.js';
import { ApiError, type WatchEvent, type WatchStream } from './api.js';
import { encodeRecord } from './store.js';

function cm(
  name: string,
  data: Record<string, string> = { k: 'v' },
  labels?: Record<string, string>,
  ns?: string,
) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ...(ns ? { namespace: ns } : {}), ...(labels ? { labels } : {}) },
    data,
  };
}

function dataOf(o: ApiObject): Record<string, string> | undefined {
  return (o as { data?: Record<string, string> }).data;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(code);
    return err as ApiError;
  }
  throw new Error(`expected ${code}, got success`);
}

/** Reads events until `n` non-bookmark events arrived. */
async function take(w: WatchStream, n: number, timeoutMs = 5_000): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const batch = await Promise.race([
      w.next(),
      new Promise<never>((_, rej) =>
        setTimeout(() => rej(new Error(`timeout after ${out.length} events`)), deadline - Date.now()),
      ),
    ]);
    if (batch === undefined) break;
    for (const e of batch) if (e.type !== 'BOOKMARK') out.push(e);
  }
  return out;
}

/**
 * Waits until the leader's controllers have written the system namespaces: the cluster's own
 * startup writes are done, so a test that counts entries sees only its own.
 */
async function settled(c: MemoryCluster): Promise<void> {
  const l = await c.leader();
  const deadline = Date.now() + 5_000;
  while (systemNamespaces.some((name) => l.store.get('Namespace', '', name) === undefined)) {
    if (Date.now() > deadline) throw new Error('system namespaces not created in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('masters: objects on the Raft log', () => {
  let c: MemoryCluster;
  beforeEach(async () => {
    c = await startMemoryCluster(3);
    await settled(c);
  });
  afterEach(async () => {
    await c.stop();
  });

  it('creates on a follower, reads the applied object back on every master', async () => {
    const f = await c.follower();
    const created = await f.api.create(cm('a'));
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata.namespace).toBe('default');
    expect(created.metadata.generation).toBe(1);
    expect(created.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const rv = Number(created.metadata.resourceVersion);
    expect(rv).toBeGreaterThan(0);
    for (const n of c.nodes.values()) {
      const got = await n.api.get({ kind: 'ConfigMap', namespace: 'default', name: 'a' });
      expect(got).toEqual(created);
    }
  });

  it('rejects a duplicate create, a stale update and a missing object with typed errors', async () => {
    const l = await c.leader();
    const a = await l.api.create(cm('a'));
    const dup = await expectCode(l.api.create(cm('a')), 'AlreadyExists');
    expect(dup.message).toContain('configmaps "a"');
    const updated = await l.api.update({ ...a, data: { k: 'v2' } });
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    expect(updated.metadata.uid).toBe(a.metadata.uid);
    await expectCode(l.api.update({ ...a, data: { k: 'v3' } }), 'Conflict');
    await expectCode(l.api.get({ kind: 'ConfigMap', name: 'nope' }), 'NotFound');
    await expectCode(l.api.update(cm('nope')), 'NotFound');
    expect(dataOf(await l.api.get({ kind: 'ConfigMap', name: 'a' }))).toEqual({ k: 'v2' });
  });

  it("a write bound to a leader term is proposed only by that term's leader, never forwarded", async () => {
    const l = await c.leader();
    const term = l.host.status().term;
    const ok = await l.api.create(cm('in-term'), { leaderTerm: term });
    expect(ok.metadata.name).toBe('in-term');
    // A follower would forward an ordinary write; one bound to a term it does not lead is refused.
    const f = await c.follower();
    const onFollower = await expectCode(f.api.create(cm('forwarded'), { leaderTerm: term }), 'Unavailable');
    expect(onFollower.message).toBe(`this master no longer leads term ${term}: not writing`);
    await expectCode(l.api.create(cm('old-term'), { leaderTerm: term - 1 }), 'Unavailable');
    const pod = await l.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await expectCode(
      f.api.bind({ namespace: 'default', name: 'p' }, pod.metadata.uid ?? '', 'n1', {}, { leaderTerm: term }),
      'Unavailable',
    );
    for (const name of ['forwarded', 'old-term'])
      await expectCode(l.api.get({ kind: 'ConfigMap', name }), 'NotFound');
    expect(((await l.api.get({ kind: 'Pod', name: 'p' })) as Pod).spec.nodeName).toBeUndefined();
  });

  it('deletes several objects in one entry, each by its own preconditions, and every master applies them alike', async () => {
    const l = await c.leader();
    const a = await l.api.create(cm('many-a'));
    const b = await l.api.create(cm('many-b'));
    await l.api.create(cm('many-c'));
    await l.api.update({ ...b, data: { k: 'renewed' } } as ApiObject);
    const watch = await l.api.watch('ConfigMap', { resourceVersion: l.store.appliedIndex.toString() });
    const before = l.store.appliedIndex;
    const f = await c.follower();
    const key = (name: string) => ({ kind: 'ConfigMap', namespace: 'default', name });
    const results = await l.api.deleteMany(
      [
        { key: key('many-a'), preconditions: { uid: a.metadata.uid ?? '' } },
        { key: key('many-b'), preconditions: { resourceVersion: b.metadata.resourceVersion ?? '' } },
        { key: key('many-none') },
        { key: key('many-c') },
      ],
      { leaderTerm: l.host.status().term },
    );
    expect(results.map((r) => (r instanceof ApiError ? r.code : (r as ApiObject).metadata.name))).toEqual([
      'many-a',
      'Conflict',
      'NotFound',
      'many-c',
    ]);
    expect(l.store.appliedIndex).toBe(before + 1);
    const events = await take(watch, 2);
    expect(
      events.map((e) => `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`),
    ).toEqual([`DELETED many-a@${before + 1}`, `DELETED many-c@${before + 1}`]);
    watch.close();
    await f.store.waitForApplied(before + 1, 5_000);
    for (const m of [l, f]) {
      expect(m.store.get('ConfigMap', 'default', 'many-b')).toBeDefined();
      expect(m.store.get('ConfigMap', 'default', 'many-a')).toBeUndefined();
      expect(m.store.get('ConfigMap', 'default', 'many-c')).toBeUndefined();
    }
    // Forwarded from a follower as any write; a term it does not lead is refused.
    expect(await f.api.deleteMany([{ key: key('many-b') }])).toHaveLength(1);
    await expectCode(
      f.api.deleteMany([{ key: key('x') }], { leaderTerm: l.host.status().term }),
      'Unavailable',
    );
    await expectCode(l.api.deleteMany([{ key: { kind: 'Namespace', name: 'default' } }]), 'Invalid');
    const tooMany = Array.from({ length: 1_001 }, (_, i) => ({ key: key(`n${i}`) }));
    const refused = await expectCode(l.api.deleteMany(tooMany), 'Invalid');
    expect(refused.message).toBe('deleteMany: 1001 items, more than 1000');
  });

  it('proposes Event creates that arrive together as one entry, each with its own outcome', async () => {
    const l = await c.leader();
    const f = await c.follower();
    const ev = (name: string, namespace = 'default') => ({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: { kind: 'Pod', namespace, name: 'p' },
      reason: 'Started',
      message: name,
      type: 'Normal',
    });
    await l.api.create(ev('taken'));
    const before = l.store.appliedIndex;
    // Forwarded by a follower: one record; a name already taken fails alone.
    const results = await Promise.allSettled(['g1', 'g2', 'taken', 'g3'].map((n) => f.api.create(ev(n))));
    // One entry: the three share its index as their resourceVersion.
    const rv = results[0].status === 'fulfilled' ? results[0].value.metadata.resourceVersion : 'none';
    expect(Number(rv)).toBeGreaterThan(before);
    expect(
      results.map((r) => (r.status === 'fulfilled' ? r.value.metadata.resourceVersion : r.reason.code)),
    ).toEqual([rv, rv, 'AlreadyExists', rv]);
    await f.store.waitForApplied(Number(rv), 5_000);
    for (const m of [l, f])
      expect((m.store.get('Event', 'default', 'g2') as Event | undefined)?.message).toBe('g2');

    // One refused by admission (its namespace does not exist): the others are written all the same.
    const mixed = await Promise.allSettled([l.api.create(ev('m1')), l.api.create(ev('m2', 'nowhere'))]);
    expect(mixed.map((r) => (r.status === 'fulfilled' ? r.value.metadata.name : r.reason.code))).toEqual([
      'm1',
      'NotFound',
    ]);
    expect(l.store.get('Event', 'nowhere', 'm2')).toBeUndefined();

    // The controllers' Events: grouped within their term, refused whole once it has ended.
    const term = l.host.status().term;
    const mine = await Promise.all(['t1', 't2'].map((n) => l.api.create(ev(n), { leaderTerm: term })));
    expect(mine[0].metadata.resourceVersion).toBe(mine[1].metadata.resourceVersion);
    const stale = await Promise.allSettled(
      ['s1', 's2'].map((n) => l.api.create(ev(n), { leaderTerm: term - 1 })),
    );
    expect(stale.map((r) => (r.status === 'rejected' ? r.reason.code : 'written'))).toEqual([
      'Unavailable',
      'Unavailable',
    ]);
    // A dry run is not grouped (nor written).
    const dry = await l.api.create(ev('dry'), { dryRun: true });
    expect(dry.metadata.resourceVersion).toBeUndefined();
    expect(l.store.get('Event', 'default', 'dry')).toBeUndefined();
  });

  it('proposes the writes that arrive while one is in flight as one entry, each with its own outcome', async () => {
    const l = await c.leader();
    const f = await c.follower();
    await l.api.create(cm('old', { k: 'v0' }));
    const stale = await l.api.create(cm('stale'));
    await l.api.update({ ...stale, data: { k: 'v1' } });
    await f.store.waitForApplied(l.store.appliedIndex, 5_000);
    // On a follower: the first write finds its lane idle and goes at once; the others arrive
    // while it is in flight and go together in the next entry, forwarded as one record.
    const writes = [
      f.api.create(cm('first')),
      f.api.create(cm('a')),
      f.api.update({ ...stale, data: { k: 'lost' } }), // a stale resourceVersion
      f.api.delete({ kind: 'ConfigMap', namespace: 'default', name: 'old' }),
      f.api.create(cm('b')),
      f.api.create(cm('first')), // taken by the first
      f.api.updateStatus(cm('nowhere') as ApiObject),
    ];
    const results = await Promise.allSettled(writes);
    const out = results.map((r) =>
      r.status === 'fulfilled' ? Number(r.value.metadata.resourceVersion) : (r.reason as ApiError).code,
    );
    const [first, a] = out as number[];
    expect(a).toBeGreaterThan(first);
    expect(out).toEqual([first, a, 'Conflict', a, a, 'AlreadyExists', 'NotFound']);
    await f.store.waitForApplied(a, 5_000);
    for (const m of c.nodes.values()) {
      await m.store.waitForApplied(a, 5_000);
      expect(m.store.get('ConfigMap', 'default', 'a')).toBeDefined();
      expect(m.store.get('ConfigMap', 'default', 'old')).toBeUndefined();
      expect(dataOf(m.store.get('ConfigMap', 'default', 'stale') as ApiObject)).toEqual({ k: 'v1' });
    }

    // A command the leader's admission refuses (no such namespace) refuses its record, and
    // the proposer writes the others alone: only that one fails, nothing of it is written.
    const mixed = await Promise.allSettled([
      l.api.create(cm('c')),
      l.api.create(cm('d')),
      l.api.create(cm('e', {}, undefined, 'nowhere')),
      l.api.create(cm('f')),
    ]);
    expect(mixed.map((r) => (r.status === 'fulfilled' ? r.value.metadata.name : r.reason.code))).toEqual([
      'c',
      'd',
      'NotFound',
      'f',
    ]);
    expect(l.store.get('ConfigMap', 'nowhere', 'e')).toBeUndefined();
  });

  it('applies a forwarded record that mixes kinds of write, each command admitted as its own write', async () => {
    const l = await c.leader();
    await l.api.create(cm('gone'));
    const create = (name: string, namespace = 'default') => ({
      op: 'create' as const,
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, uid: name } } as ApiObject,
    });
    // As a follower forwards a record to the leader (the record's id is the request's).
    const propose = (cmds: Command[]) => {
      const id = randomUUID();
      const data = encodeRecord({ t: 'cmds', id, cmds });
      return l.api.handle({ t: 'propose', data, id, localOutcome: true });
    };
    const del = (name: string): Command => ({
      op: 'delete',
      key: { kind: 'ConfigMap', namespace: 'default', name },
      now: '2026-01-01T00:00:00Z',
    });
    expect(await propose([create('x'), del('gone'), create('y')])).not.toMatchObject({ t: 'error' });
    expect(l.store.get('ConfigMap', 'default', 'x')).toBeDefined();
    expect(l.store.get('ConfigMap', 'default', 'y')).toBeDefined();
    expect(l.store.get('ConfigMap', 'default', 'gone')).toBeUndefined();
    // One command admission refuses: the record is refused whole, nothing of it written.
    expect(await propose([create('z'), create('w', 'nowhere')])).toMatchObject({
      t: 'error',
      code: 'NotFound',
    });
    expect(l.store.get('ConfigMap', 'default', 'z')).toBeUndefined();
  });

  it('writes at once when nothing of its lane is in flight, however long the linger', async () => {
    await c.stop();
    c = await startMemoryCluster(3, { writeGroup: { writeGroupLingerMs: 600_000 } });
    const l = await c.leader();
    const f = await c.follower();
    // Alone, then two together: each goes when its lane has nothing in flight (never by the timer).
    await f.api.create(cm('solo'));
    const [p, q] = await Promise.all([l.api.create(cm('p')), l.api.create(cm('q'))]);
    expect(Number(q.metadata.resourceVersion)).toBeGreaterThan(Number(p.metadata.resourceVersion));
    const bound = await Promise.all(
      ['r', 's', 't'].map((n) => l.api.create(cm(n), { leaderTerm: l.host.status().term })),
    );
    expect(new Set(bound.slice(1).map((o) => o.metadata.resourceVersion)).size).toBe(1);
  }, 10_000);

  it('names the invalid field and writes nothing', async () => {
    const l = await c.leader();
    const before = l.store.appliedIndex;
    const err = await expectCode(
      l.api.create({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web' },
        spec: { replicas: -1 },
      }),
      'Invalid',
    );
    expect(err.details.fieldPath).toMatch(/^spec\./);
    expect(err.message).toMatch(/^deployment\/web: spec\./);
    await expectCode(l.api.create({ kind: 'Gizmo', metadata: { name: 'x' } }), 'Invalid');
    await expectCode(l.api.create('not an object'), 'Invalid');
    expect(l.store.appliedIndex).toBe(before);
    const list = await l.api.list('Deployment');
    expect(list.items).toEqual([]);
  });

  it('bumps generation on spec changes only; status updates keep spec, updates keep status', async () => {
    const l = await c.leader();
    const pod = await l.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const withStatus = await l.api.updateStatus({ ...pod, status: { phase: 'Running' } });
    expect(withStatus.metadata.generation).toBe(1);
    expect((withStatus as { status?: { phase?: string } }).status?.phase).toBe('Running');
    const relabeled = await l.api.update({
      ...withStatus,
      metadata: { ...withStatus.metadata, labels: { a: 'b' } },
      status: {},
    });
    expect(relabeled.metadata.generation).toBe(1);
    expect((relabeled as { status?: { phase?: string } }).status?.phase).toBe('Running');
    const unchanged = await l.api.update(relabeled);
    expect(unchanged.metadata.resourceVersion).toBe(relabeled.metadata.resourceVersion);
  });

  it('drops a client status on create and refuses immutable changes with the field path', async () => {
    const l = await c.leader();
    const pod = await l.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'imm' },
      // Another scheduler's pod: the default scheduler leaves it (and its resourceVersion) alone.
      spec: { containers: [{ name: 'c', image: 'busybox' }], schedulerName: 'elsewhere' },
      status: { phase: 'Running' },
    });
    expect((pod as { status?: unknown }).status).toEqual({ phase: 'Pending', qosClass: 'BestEffort' });
    const err = await expectCode(
      l.api.patch({ kind: 'Pod', name: 'imm' }, { spec: { restartPolicy: 'Never' } }),
      'Invalid',
    );
    expect(err.details.fieldPath).toBe('spec.restartPolicy');
    // The image may change (a full update keeps the defaulted fields of the container).
    const spec = (pod as unknown as { spec: { containers: Record<string, unknown>[] } }).spec;
    const image = await l.api.update({
      ...pod,
      spec: { ...spec, containers: [{ ...spec.containers[0], image: 'busybox:2' }] },
    });
    expect(Number(image.metadata.resourceVersion)).toBeGreaterThan(Number(pod.metadata.resourceVersion));
  });

  it('patches with a JSON merge patch and retries lost races', async () => {
    const l = await c.leader();
    const f = await c.follower();
    await l.api.create(cm('p', { a: '1', b: '2' }));
    const patched = await f.api.patch({ kind: 'ConfigMap', name: 'p' }, { data: { b: null, c: '3' } });
    expect(dataOf(patched)).toEqual({ a: '1', c: '3' });
    // Concurrent patches of different keys all land.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? l : f).api.patch({ kind: 'ConfigMap', name: 'p' }, { data: { [`k${i}`]: 'x' } }),
      ),
    );
    const got = await l.api.get({ kind: 'ConfigMap', name: 'p' });
    expect(Object.keys(dataOf(got) ?? {}).length).toBe(12);
    await expectCode(
      l.api.patch({ kind: 'ConfigMap', name: 'p' }, { metadata: { resourceVersion: '1' }, data: { z: 'z' } }),
      'Conflict',
    );
  });

  it('lists with label and field selectors, across and within namespaces', async () => {
    const l = await c.leader();
    await l.api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } });
    await l.api.create(cm('a', {}, { app: 'web', tier: 'fe' }));
    await l.api.create(cm('b', {}, { app: 'web', tier: 'be' }));
    await l.api.create(cm('c', {}, { app: 'db' }, 'prod'));
    const names = (r: { items: ApiObject[] }) =>
      r.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
    expect(names(await l.api.list('ConfigMap'))).toEqual(['default/a', 'default/b', 'prod/c']);
    expect(names(await l.api.list('ConfigMap', { namespace: 'prod' }))).toEqual(['prod/c']);
    expect(names(await l.api.list('ConfigMap', { labelSelector: 'app=web,tier!=be' }))).toEqual([
      'default/a',
    ]);
    expect(names(await l.api.list('ConfigMap', { labelSelector: 'app in (web,db),!tier' }))).toEqual([
      'prod/c',
    ]);
    expect(names(await l.api.list('ConfigMap', { fieldSelector: 'metadata.name=b' }))).toEqual(['default/b']);
    await expectCode(l.api.list('ConfigMap', { labelSelector: 'app in (' }), 'Invalid');
    await expectCode(l.api.list('ConfigMap', { fieldSelector: 'spec.bogus=1' }), 'Invalid');
  });

  it('pages a list at one consistent cut while writes continue', async () => {
    const l = await c.leader();
    const f = await c.follower();
    for (let i = 0; i < 10; i += 1) await l.api.create(cm(`o${i}`));
    const page1 = await l.api.list('ConfigMap', { limit: 4 });
    expect(page1.items.map((o) => o.metadata.name)).toEqual(['o0', 'o1', 'o2', 'o3']);
    expect(page1.remainingItemCount).toBe(6);
    // Writes after the cut: a delete, an update, a create. Later pages must not see them.
    await l.api.delete({ kind: 'ConfigMap', name: 'o5' });
    await l.api.patch({ kind: 'ConfigMap', name: 'o6' }, { data: { k: 'changed' } });
    await l.api.create(cm('o45'));
    const page2 = await f.api.list('ConfigMap', { limit: 4, continue: page1.continue });
    expect(page2.resourceVersion).toBe(page1.resourceVersion);
    expect(page2.items.map((o) => o.metadata.name)).toEqual(['o4', 'o5', 'o6', 'o7']);
    expect(dataOf(page2.items[2])).toEqual({ k: 'v' });
    const page3 = await l.api.list('ConfigMap', { limit: 4, continue: page2.continue });
    expect(page3.items.map((o) => o.metadata.name)).toEqual(['o8', 'o9']);
    expect(page3.continue).toBeUndefined();
    await expectCode(l.api.list('ConfigMap', { continue: 'garbage!' }), 'Invalid');
  });

  it('deletes: finalizers mark, bound pods get a grace period, preconditions hold', async () => {
    const l = await c.leader();
    const a = await l.api.create({
      ...cm('fin'),
      metadata: { name: 'fin', finalizers: ['example.com/hold'] },
    });
    const marked = await l.api.delete({ kind: 'ConfigMap', name: 'fin' });
    expect(marked.metadata.deletionTimestamp).toBeDefined();
    expect((await l.api.get({ kind: 'ConfigMap', name: 'fin' })).metadata.uid).toBe(a.metadata.uid);
    await expectCode(
      l.api.update({
        ...marked,
        metadata: { ...marked.metadata, finalizers: ['example.com/hold', 'x.io/new'] },
      }),
      'Invalid',
    );
    await l.api.update({ ...marked, metadata: { ...marked.metadata, finalizers: [] } });
    await expectCode(l.api.get({ kind: 'ConfigMap', name: 'fin' }), 'NotFound');

    const pod = await l.api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bound' },
      spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }] },
    });
    await expectCode(
      l.api.delete({ kind: 'Pod', name: 'bound' }, { preconditions: { uid: 'other' } }),
      'Conflict',
    );
    const graceful = await l.api.delete({ kind: 'Pod', name: 'bound' });
    expect(graceful.metadata.deletionGracePeriodSeconds).toBe(30);
    await l.api.delete({ kind: 'Pod', name: 'bound' }, { gracePeriodSeconds: 0 });
    await expectCode(l.api.get({ kind: 'Pod', name: 'bound' }), 'NotFound');
    expect(pod.metadata.uid).toBeDefined();
  });

  it('generateName gives distinct names; dryRun writes nothing', async () => {
    const l = await c.leader();
    const made = await Promise.all(
      Array.from({ length: 5 }, () =>
        l.api.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } }),
      ),
    );
    expect(new Set(made.map((o) => o.metadata.name)).size).toBe(5);
    for (const o of made) expect(o.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);
    const before = l.store.appliedIndex;
    const dry = await l.api.create(cm('dry'), { dryRun: true });
    expect(dry.metadata.name).toBe('dry');
    await expectCode(l.api.get({ kind: 'ConfigMap', name: 'dry' }), 'NotFound');
    expect(l.store.appliedIndex).toBe(before + 0 >= before ? l.store.appliedIndex : -1);
    expect(l.store.count('ConfigMap')).toBe(5);
  });

  it('watches from a version gap-free and duplicate-free, and from now with the current state first', async () => {
    const l = await c.leader();
    const f = await c.follower();
    const first = await l.api.create(cm('w0'));
    const fromNow = await f.api.watch('ConfigMap');
    const fromV = await f.api.watch('ConfigMap', { resourceVersion: first.metadata.resourceVersion });
    const writes: ApiObject[] = [];
    for (let i = 1; i <= 20; i += 1) writes.push(await (i % 2 ? l : f).api.create(cm(`w${i}`)));
    await l.api.delete({ kind: 'ConfigMap', name: 'w3' });
    const a = await take(fromNow, 22);
    expect(a[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'w0' } } });
    expect(a.slice(1, 21).map((e) => e.object.metadata.name)).toEqual(writes.map((w) => w.metadata.name));
    expect(a[21]).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'w3' } } });
    const b = await take(fromV, 21);
    expect(b.map((e) => e.object.metadata.resourceVersion)).toEqual([
      ...writes.map((w) => w.metadata.resourceVersion),
      b[20].object.metadata.resourceVersion,
    ]);
    const rvs = b.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    fromNow.close();
    fromV.close();
    expect(await fromNow.next()).toBeUndefined();
  });

  it('a selector watch sees objects enter and leave as ADDED and DELETED', async () => {
    const l = await c.leader();
    const w = await l.api.watch('ConfigMap', { labelSelector: 'app=web' });
    const a = await l.api.create(cm('x', {}, { app: 'db' }));
    const moved = await l.api.update({ ...a, metadata: { ...a.metadata, labels: { app: 'web' } } });
    await l.api.update({ ...moved, metadata: { ...moved.metadata, labels: { app: 'db' } } });
    const events = await take(w, 2);
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
    w.close();
  });

  it('a linearizable read on any master sees every acknowledged write; serializable reads never go back', async () => {
    const l = await c.leader();
    const followers = [...c.nodes.values()].filter((n) => n !== l);
    let lastSeen = 0;
    for (let i = 0; i < 15; i += 1) {
      const w = await l.api.create(cm(`lin${i}`));
      const r = await followers[i % 2].api.get({ kind: 'ConfigMap', name: `lin${i}` });
      expect(r.metadata.resourceVersion).toBe(w.metadata.resourceVersion);
      const s = await followers[0].api.list('ConfigMap', { consistency: 'serializable' });
      expect(Number(s.resourceVersion)).toBeGreaterThanOrEqual(lastSeen);
      lastSeen = Number(s.resourceVersion);
    }
  });

  it('a watch resumes on another master after the leader dies, gap-free', async () => {
    const l = await c.leader();
    const f = await c.follower();
    const seed = await f.api.create(cm('r0'));
    let w = await l.api.watch('ConfigMap', { resourceVersion: seed.metadata.resourceVersion });
    const acked: string[] = [];
    for (let i = 1; i <= 5; i += 1)
      acked.push((await f.api.create(cm(`r${i}`))).metadata.resourceVersion as string);
    const seen = await take(w, 5);
    const last = seen[seen.length - 1].object.metadata.resourceVersion;
    await c.kill(l.id);
    await expect(w.next()).rejects.toBeInstanceOf(ApiError);
    w = await f.api.watch('ConfigMap', { resourceVersion: last });
    for (let i = 6; i <= 10; i += 1)
      acked.push((await f.api.create(cm(`r${i}`))).metadata.resourceVersion as string);
    const rest = await take(w, 5);
    expect([...seen, ...rest].map((e) => e.object.metadata.resourceVersion)).toEqual(acked);
    w.close();
  });

  it('cluster status, membership add and remove, leadership transfer', async () => {
    const l = await c.leader();
    let st = await l.api.status();
    expect(st.members.map((m) => m.id)).toEqual(['m1', 'm2', 'm3']);
    expect(st.members.filter((m) => m.role === 'leader').map((m) => m.id)).toEqual([l.id]);
    const f = await c.follower();
    st = await f.api.transferLeadership(f.id);
    expect(st.leader).toBe(f.id);
    await f.api.create(cm('before-join'));
    const joined = c.start('m4', true);
    st = await l.api.addMember({ id: 'm4', raftAddress: 'm4', apiAddress: 'm4:api', wsUrl: 'ws://m4' });
    const m4 = await joined;
    expect(st.members.map((m) => m.id)).toContain('m4');
    await m4.store.waitForApplied(
      (await f.api.create(cm('after-join'))).metadata.resourceVersion as unknown as number,
      5_000,
    );
    expect(
      (await m4.api.get({ kind: 'ConfigMap', name: 'before-join' }, { consistency: 'serializable' })).metadata
        .name,
    ).toBe('before-join');
    st = await m4.api.removeMember('m4');
    expect(st.members.map((m) => m.id)).not.toContain('m4');
    await expectCode(l.api.removeMember('nobody'), 'NotFound');
  });

  it('snapshot and restore round trip gives the same objects and versions', async () => {
    const l = await c.leader();
    for (let i = 0; i < 5; i += 1) await l.api.create(cm(`s${i}`, { i: String(i) }));
    const data = await l.store.snapshot();
    const other = await c.follower();
    await other.store.waitForApplied(l.store.appliedIndex, 5_000);
    const before = (await other.api.list('ConfigMap', { consistency: 'serializable' })).items;
    other.store.restore(data);
    const after = (await other.api.list('ConfigMap', { consistency: 'serializable' })).items;
    expect(after).toEqual(before);
    expect(other.store.appliedIndex).toBe(l.store.appliedIndex);
  });
});

describe('masters without a quorum', () => {
  it('refuse writes and linearizable reads with Unavailable and a retry hint; serializable reads still work', async () => {
    const c = await startMemoryCluster(3, { writeTimeoutMs: 800, host: { readTimeoutMs: 800 } });
    try {
      const l = await c.leader();
      await l.api.create(cm('before'));
      const survivor = await c.follower();
      await survivor.store.waitForApplied(l.store.appliedIndex, 5_000);
      for (const n of [...c.nodes.values()]) if (n !== survivor) await c.kill(n.id);
      const w = await expectCode(survivor.api.create(cm('after')), 'Unavailable');
      expect(w.details.retryAfterMs).toBeGreaterThan(0);
      const r = await expectCode(survivor.api.get({ kind: 'ConfigMap', name: 'before' }), 'Unavailable');
      expect(r.details.retryAfterMs).toBeGreaterThan(0);
      const s = await survivor.api.get(
        { kind: 'ConfigMap', name: 'before' },
        { consistency: 'serializable' },
      );
      expect(s.metadata.name).toBe('before');
      expect(survivor.store.get('ConfigMap', 'default', 'after')).toBeUndefined();
    } finally {
      await c.stop();
    }
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ApplyOutcome,
  applyCommand,
  type Command,
  deepEqual,
  FinalizerForeground,
  FinalizerOrphan,
  statusUpdateCommand,
} from './commands.js';
import type { ApiObject, ObjectMeta } from './objects.js';

const NOW = '2024-05-01T10:00:00Z';
const LATER = '2024-05-01T10:00:05Z';

function meta(name: string, extra: Partial<ObjectMeta> = {}, namespace: string | undefined = 'default') {
  return {
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    uid: `uid-${name}`,
    creationTimestamp: '2024-05-01T09:00:00Z',
    ...extra,
  };
}

function cm(name: string, data: Record<string, string> = { k: 'v' }, extra: Partial<ObjectMeta> = {}) {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(name, extra), data } as unknown as ApiObject;
}

function pod(name: string, spec: Record<string, unknown> = {}, extra: Partial<ObjectMeta> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta(name, extra),
    spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
    status: { phase: 'Pending' },
  } as unknown as ApiObject;
}

function ns(name: string, extra: Partial<ObjectMeta> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: meta(name, extra, undefined),
    status: { phase: 'Active' },
  } as unknown as ApiObject;
}

/** The stored object after a create at `index`. */
function created(obj: ApiObject, index = 1): ApiObject {
  const out = applyCommand(undefined, { op: 'create', object: obj }, index);
  if (out.result !== 'written') throw new Error(`create failed: ${JSON.stringify(out)}`);
  return out.object;
}

function written(out: ApplyOutcome): Extract<ApplyOutcome, { result: 'written' }> {
  if (out.result !== 'written') throw new Error(`expected written, got ${JSON.stringify(out)}`);
  return out;
}

function rejected(out: ApplyOutcome, code: string): string {
  if (out.result !== 'rejected') throw new Error(`expected rejected ${code}, got ${JSON.stringify(out)}`);
  expect(out.code).toBe(code);
  return out.message;
}

function del(kind: string, name: string, extra: Partial<Extract<Command, { op: 'delete' }>> = {}): Command {
  const namespace = kind === 'Namespace' ? '' : 'default';
  return { op: 'delete', key: { kind, namespace, name }, now: NOW, ...extra };
}

function dataOf(o: ApiObject): unknown {
  return (o as { data?: unknown }).data;
}

describe('applyCommand: create', () => {
  it('writes the object with resourceVersion = index and generation 1', () => {
    const out = written(applyCommand(undefined, { op: 'create', object: cm('a') }, 7));
    expect(out.event).toBe('ADDED');
    expect(out.prev).toBeUndefined();
    expect(out.object.metadata.resourceVersion).toBe('7');
    expect(out.object.metadata.generation).toBe(1);
    expect(out.object.metadata.uid).toBe('uid-a');
    expect(dataOf(out.object)).toEqual({ k: 'v' });
  });

  it('strips deletion marks and ignores a client generation and version', () => {
    const obj = cm('a', undefined, {
      deletionTimestamp: NOW,
      deletionGracePeriodSeconds: 3,
      generation: 9,
      resourceVersion: '99',
    });
    const out = written(applyCommand(undefined, { op: 'create', object: obj }, 4));
    expect(out.object.metadata.deletionTimestamp).toBeUndefined();
    expect(out.object.metadata.deletionGracePeriodSeconds).toBeUndefined();
    expect('deletionTimestamp' in out.object.metadata).toBe(false);
    expect(out.object.metadata.generation).toBe(1);
    expect(out.object.metadata.resourceVersion).toBe('4');
  });

  it('rejects AlreadyExists when the key holds an object', () => {
    const msg = rejected(
      applyCommand(created(cm('a')), { op: 'create', object: cm('a') }, 2),
      'AlreadyExists',
    );
    expect(msg).toContain('configmaps "a"');
    expect(msg).toContain('namespace "default"');
  });
});

describe('applyCommand: update', () => {
  it('rejects NotFound when nothing is at the key', () => {
    rejected(applyCommand(undefined, { op: 'update', object: cm('a') }, 2), 'NotFound');
  });

  it('checks resourceVersion and uid preconditions (Conflict), and passes matching ones', () => {
    const cur = created(cm('a'), 3);
    const next = cm('a', { k: 'w' });
    const rvMsg = rejected(
      applyCommand(cur, { op: 'update', object: next, precondition: { resourceVersion: '2' } }, 5),
      'Conflict',
    );
    expect(rvMsg).toContain('resourceVersion 3');
    const uidMsg = rejected(
      applyCommand(cur, { op: 'update', object: next, precondition: { uid: 'other' } }, 5),
      'Conflict',
    );
    expect(uidMsg).toContain('uid');
    const ok = written(
      applyCommand(
        cur,
        { op: 'update', object: next, precondition: { resourceVersion: '3', uid: 'uid-a' } },
        5,
      ),
    );
    expect(ok.event).toBe('MODIFIED');
    expect(ok.object.metadata.resourceVersion).toBe('5');
    expect(ok.prev).toBe(cur);
  });

  it('keeps uid, creationTimestamp, name, namespace, generateName, deletion marks and status', () => {
    const cur = created(pod('p', {}, { generateName: 'p-' }), 2);
    const attempt = {
      ...pod(
        'p',
        { nodeName: 'n1' },
        {
          uid: 'forged',
          creationTimestamp: '1999-01-01T00:00:00Z',
          namespace: 'elsewhere',
          deletionTimestamp: NOW,
          deletionGracePeriodSeconds: 1,
          generation: 42,
        },
      ),
      status: { phase: 'Running' },
    } as unknown as ApiObject;
    delete (attempt.metadata as ObjectMeta).generateName;
    const out = written(applyCommand(cur, { op: 'update', object: attempt }, 3));
    const m = out.object.metadata;
    expect(m.uid).toBe('uid-p');
    expect(m.creationTimestamp).toBe('2024-05-01T09:00:00Z');
    expect(m.namespace).toBe('default');
    expect(m.name).toBe('p');
    expect(m.generateName).toBe('p-');
    expect(m.deletionTimestamp).toBeUndefined();
    expect(m.deletionGracePeriodSeconds).toBeUndefined();
    expect(m.generation).toBe(2);
    expect((out.object as { status?: unknown }).status).toEqual({ phase: 'Pending' });
    expect((out.object as { spec: { nodeName?: string } }).spec.nodeName).toBe('n1');
  });

  it('bumps generation when spec-ish fields change and not for metadata-only changes', () => {
    const cur = created(cm('a'), 2);
    const labelled = written(
      applyCommand(cur, { op: 'update', object: cm('a', { k: 'v' }, { labels: { x: 'y' } }) }, 3),
    );
    expect(labelled.object.metadata.generation).toBe(1);
    expect(labelled.object.metadata.labels).toEqual({ x: 'y' });
    const changed = written(applyCommand(labelled.object, { op: 'update', object: cm('a', { k: 'w' }) }, 4));
    expect(changed.object.metadata.generation).toBe(2);
    expect(changed.object.metadata.labels).toBeUndefined();
  });

  it('an update that changes nothing writes no version', () => {
    const cur = created(cm('a', { k: 'v' }, { labels: { x: 'y' } }), 2);
    const same = cm('a', { k: 'v' }, { labels: { x: 'y' }, resourceVersion: '2' });
    const out = applyCommand(cur, { op: 'update', object: same }, 9);
    expect(out).toEqual({ result: 'unchanged', object: cur });
    // A status in the request is ignored by update, so it changes nothing either.
    const withStatus = { ...pod('p'), status: { phase: 'Failed' } } as unknown as ApiObject;
    const p = created(pod('p'), 2);
    expect(applyCommand(p, { op: 'update', object: withStatus }, 9).result).toBe('unchanged');
  });

  it('refuses new finalizers while the object is being deleted (Invalid), allows keeping them', () => {
    const cur = written(
      applyCommand(created(cm('a', undefined, { finalizers: ['f1'] })), del('ConfigMap', 'a'), 2),
    ).object;
    expect(cur.metadata.deletionTimestamp).toBe(NOW);
    const msg = rejected(
      applyCommand(cur, { op: 'update', object: cm('a', undefined, { finalizers: ['f1', 'f2'] }) }, 3),
      'Invalid',
    );
    expect(msg).toContain('metadata.finalizers');
    const relabel = written(
      applyCommand(
        cur,
        { op: 'update', object: cm('a', undefined, { finalizers: ['f1'], labels: { a: 'b' } }) },
        3,
      ),
    );
    expect(relabel.event).toBe('MODIFIED');
    expect(relabel.object.metadata.deletionTimestamp).toBe(NOW);
  });

  it('adding finalizers to a live object is fine', () => {
    const out = written(
      applyCommand(created(cm('a')), { op: 'update', object: cm('a', undefined, { finalizers: ['f'] }) }, 3),
    );
    expect(out.object.metadata.finalizers).toEqual(['f']);
  });

  it('removing the last finalizer of a deleting object deletes it (DELETED with the last state)', () => {
    const cur = written(
      applyCommand(created(cm('a', undefined, { finalizers: ['f1', 'f2'] })), del('ConfigMap', 'a'), 2),
    ).object;
    const one = written(
      applyCommand(cur, { op: 'update', object: cm('a', undefined, { finalizers: ['f2'] }) }, 3),
    );
    expect(one.event).toBe('MODIFIED');
    const gone = written(applyCommand(one.object, { op: 'update', object: cm('a') }, 4));
    expect(gone.event).toBe('DELETED');
    expect(gone.object.metadata.resourceVersion).toBe('4');
    expect(gone.object.metadata.finalizers).toBeUndefined();
    expect(gone.prev).toBe(one.object);
  });

  it('an update of a gracefully terminating pod (no finalizers) keeps it until its grace ends', () => {
    const bound = created(pod('p', { nodeName: 'n1', terminationGracePeriodSeconds: 30 }));
    const terminating = written(applyCommand(bound, del('Pod', 'p'), 2)).object;
    expect(terminating.metadata.deletionGracePeriodSeconds).toBe(30);
    const relabel = pod('p', { nodeName: 'n1', terminationGracePeriodSeconds: 30 }, { labels: { a: 'b' } });
    const out = written(applyCommand(terminating, { op: 'update', object: relabel }, 3));
    expect(out.event).toBe('MODIFIED');
    expect(out.object.metadata.deletionTimestamp).toBe(NOW);
  });
});

describe('applyCommand: updateStatus', () => {
  it('rejects NotFound and failed preconditions', () => {
    rejected(applyCommand(undefined, { op: 'updateStatus', object: pod('p') }, 2), 'NotFound');
    const cur = created(pod('p'), 2);
    rejected(
      applyCommand(cur, { op: 'updateStatus', object: pod('p'), precondition: { resourceVersion: '1' } }, 3),
      'Conflict',
    );
    rejected(
      applyCommand(cur, { op: 'updateStatus', object: pod('p'), precondition: { uid: 'x' } }, 3),
      'Conflict',
    );
  });

  it('changes only status; metadata and spec of the request are ignored', () => {
    const cur = created(pod('p'), 2);
    const req = {
      ...pod('p', { nodeName: 'elsewhere' }, { labels: { a: 'b' }, uid: 'forged' }),
      status: { phase: 'Running', podIP: '10.0.0.1' },
    } as unknown as ApiObject;
    const out = written(applyCommand(cur, { op: 'updateStatus', object: req }, 3));
    expect(out.event).toBe('MODIFIED');
    expect(out.prev).toBe(cur);
    expect((out.object as { status?: unknown }).status).toEqual({ phase: 'Running', podIP: '10.0.0.1' });
    expect(out.object.metadata).toEqual({ ...cur.metadata, resourceVersion: '3' });
    expect((out.object as { spec?: unknown }).spec).toEqual((cur as { spec?: unknown }).spec);
  });

  it('removes status when the request has none; the same status is unchanged', () => {
    const cur = created(pod('p'), 2);
    const same = applyCommand(cur, { op: 'updateStatus', object: pod('p') }, 3);
    expect(same).toEqual({ result: 'unchanged', object: cur });
    const bare = { ...pod('p') } as Record<string, unknown>;
    delete bare.status;
    const out = written(applyCommand(cur, { op: 'updateStatus', object: bare as unknown as ApiObject }, 3));
    expect('status' in out.object).toBe(false);
  });
});

describe('statusUpdateCommand', () => {
  it('carries the identity and status only, and applies as the whole object does', () => {
    const cur = created(pod('p'), 2);
    const req = {
      ...pod('p', { nodeName: 'n1' }, { labels: { a: 'b' }, resourceVersion: '2' }),
      status: { phase: 'Running', podIP: '10.0.0.1' },
    } as unknown as ApiObject;
    const pre = { uid: 'uid-p', resourceVersion: '2' };
    const slim = statusUpdateCommand(req, pre);
    expect(slim).toEqual({
      op: 'updateStatus',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', namespace: 'default' },
        status: { phase: 'Running', podIP: '10.0.0.1' },
      },
      precondition: pre,
    });
    const whole: Command = { op: 'updateStatus', object: req, precondition: pre };
    expect(applyCommand(cur, slim, 3)).toEqual(applyCommand(cur, whole, 3));
    // A stale version is refused alike.
    const stale = { uid: 'uid-p', resourceVersion: '1' };
    expect(applyCommand(cur, statusUpdateCommand(req, stale), 3)).toEqual(
      applyCommand(cur, { op: 'updateStatus', object: req, precondition: stale }, 3),
    );
  });

  it('keeps an absent status absent and a cluster-scoped object without a namespace', () => {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1', uid: 'u' },
    } as unknown as ApiObject;
    const cmd = statusUpdateCommand(node, undefined);
    expect(cmd).toEqual({
      op: 'updateStatus',
      object: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } },
    });
    const cur = created({ ...node, status: { phase: 'x' } } as unknown as ApiObject, 2);
    expect('status' in written(applyCommand(cur, cmd, 3)).object).toBe(false);
  });
});

describe('applyCommand: delete', () => {
  it('rejects NotFound and failed preconditions', () => {
    rejected(applyCommand(undefined, del('ConfigMap', 'a'), 2), 'NotFound');
    const cur = created(cm('a'), 2);
    rejected(applyCommand(cur, del('ConfigMap', 'a', { precondition: { uid: 'x' } }), 3), 'Conflict');
    rejected(
      applyCommand(cur, del('ConfigMap', 'a', { precondition: { resourceVersion: '1' } }), 3),
      'Conflict',
    );
    expect(
      written(
        applyCommand(cur, del('ConfigMap', 'a', { precondition: { uid: 'uid-a', resourceVersion: '2' } }), 3),
      ).event,
    ).toBe('DELETED');
  });

  it('Background without finalizers deletes at once, with the last state at the new version', () => {
    const cur = created(cm('a'), 2);
    const out = written(applyCommand(cur, del('ConfigMap', 'a', { propagationPolicy: 'Background' }), 5));
    expect(out.event).toBe('DELETED');
    expect(out.object.metadata.resourceVersion).toBe('5');
    expect(out.object.metadata.deletionTimestamp).toBeUndefined();
    expect(dataOf(out.object)).toEqual({ k: 'v' });
  });

  it('Foreground and Orphan add their finalizer once and mark the object', () => {
    for (const [policy, fin] of [
      ['Foreground', FinalizerForeground],
      ['Orphan', FinalizerOrphan],
    ] as const) {
      const cur = created(cm('a', undefined, { finalizers: [fin] }), 2);
      const out = written(applyCommand(cur, del('ConfigMap', 'a', { propagationPolicy: policy }), 3));
      expect(out.event).toBe('MODIFIED');
      expect(out.object.metadata.finalizers).toEqual([fin]);
      expect(out.object.metadata.deletionTimestamp).toBe(NOW);
      expect(out.object.metadata.deletionGracePeriodSeconds).toBe(0);
      const fresh = written(
        applyCommand(created(cm('b')), del('ConfigMap', 'b', { propagationPolicy: policy }), 3),
      );
      expect(fresh.object.metadata.finalizers).toEqual([fin]);
    }
  });

  it('an object with finalizers is marked, keeping them', () => {
    const out = written(
      applyCommand(created(cm('a', undefined, { finalizers: ['x'] })), del('ConfigMap', 'a'), 3),
    );
    expect(out.event).toBe('MODIFIED');
    expect(out.object.metadata.finalizers).toEqual(['x']);
    expect(out.object.metadata.resourceVersion).toBe('3');
  });

  it('a bound pod gets its grace period from the request, its spec, or 30 s', () => {
    const spec = { nodeName: 'n1', terminationGracePeriodSeconds: 12 };
    const fromSpec = written(applyCommand(created(pod('p', spec)), del('Pod', 'p'), 3));
    expect(fromSpec.event).toBe('MODIFIED');
    expect(fromSpec.object.metadata.deletionGracePeriodSeconds).toBe(12);
    expect(fromSpec.object.metadata.deletionTimestamp).toBe(NOW);
    const fromReq = written(
      applyCommand(created(pod('p', spec)), del('Pod', 'p', { gracePeriodSeconds: 4 }), 3),
    );
    expect(fromReq.object.metadata.deletionGracePeriodSeconds).toBe(4);
    const dflt = written(applyCommand(created(pod('p', { nodeName: 'n1' })), del('Pod', 'p'), 3));
    expect(dflt.object.metadata.deletionGracePeriodSeconds).toBe(30);
    const negative = written(
      applyCommand(created(pod('p', spec)), del('Pod', 'p', { gracePeriodSeconds: -5 }), 3),
    );
    expect(negative.event).toBe('DELETED');
  });

  it('an unbound pod is deleted at once, whatever grace is asked', () => {
    const out = written(applyCommand(created(pod('p')), del('Pod', 'p', { gracePeriodSeconds: 10 }), 3));
    expect(out.event).toBe('DELETED');
  });

  it('force (grace 0) deletes a bound pod at once', () => {
    const out = written(
      applyCommand(created(pod('p', { nodeName: 'n1' })), del('Pod', 'p', { gracePeriodSeconds: 0 }), 3),
    );
    expect(out.event).toBe('DELETED');
  });

  it('an object already being deleted changes only for a shorter grace period', () => {
    const terminating = written(
      applyCommand(created(pod('p', { nodeName: 'n1' })), del('Pod', 'p'), 2),
    ).object;
    expect(applyCommand(terminating, del('Pod', 'p', { now: LATER }), 3)).toEqual({
      result: 'unchanged',
      object: terminating,
    });
    expect(applyCommand(terminating, del('Pod', 'p', { gracePeriodSeconds: 30 }), 3).result).toBe(
      'unchanged',
    );
    expect(applyCommand(terminating, del('Pod', 'p', { gracePeriodSeconds: 60 }), 3).result).toBe(
      'unchanged',
    );
    const shorter = written(
      applyCommand(terminating, del('Pod', 'p', { gracePeriodSeconds: 5, now: LATER }), 3),
    );
    expect(shorter.event).toBe('MODIFIED');
    expect(shorter.object.metadata.deletionGracePeriodSeconds).toBe(5);
    expect(shorter.object.metadata.deletionTimestamp).toBe(NOW);
    expect(shorter.object.metadata.resourceVersion).toBe('3');
    const force = written(applyCommand(shorter.object, del('Pod', 'p', { gracePeriodSeconds: 0 }), 4));
    expect(force.event).toBe('DELETED');
  });

  it('force on a deleting object with finalizers keeps it until they are gone', () => {
    const cur = written(
      applyCommand(created(pod('p', { nodeName: 'n1' }, { finalizers: ['f'] })), del('Pod', 'p'), 2),
    ).object;
    const out = written(applyCommand(cur, del('Pod', 'p', { gracePeriodSeconds: 0 }), 3));
    expect(out.event).toBe('MODIFIED');
    expect(out.object.metadata.deletionGracePeriodSeconds).toBe(0);
    expect(out.object.metadata.finalizers).toEqual(['f']);
  });

  it('a non-pod already being deleted is unchanged by another delete', () => {
    const cur = written(
      applyCommand(created(cm('a', undefined, { finalizers: ['f'] })), del('ConfigMap', 'a'), 2),
    ).object;
    expect(applyCommand(cur, del('ConfigMap', 'a', { gracePeriodSeconds: 0 }), 3).result).toBe('unchanged');
  });

  it('a namespace with finalizers is marked Terminating; without them it is deleted', () => {
    const marked = written(
      applyCommand(created(ns('prod', { finalizers: ['kubernetes'] })), del('Namespace', 'prod'), 3),
    );
    expect(marked.event).toBe('MODIFIED');
    expect((marked.object as { status?: { phase?: string } }).status?.phase).toBe('Terminating');
    expect(marked.object.metadata.deletionTimestamp).toBe(NOW);
    const prevStatus = (marked.prev as { status?: { phase?: string } }).status;
    expect(prevStatus?.phase).toBe('Active');
    const gone = written(applyCommand(created(ns('dev')), del('Namespace', 'dev'), 3));
    expect(gone.event).toBe('DELETED');
  });
});

describe('applyCommand: namespace finalizers (spec.finalizers) and finalizers of pods in their grace', () => {
  const nsWith = (name: string, specFinalizers: string[] | undefined, extra: Partial<ObjectMeta> = {}) =>
    ({
      ...ns(name, extra),
      ...(specFinalizers !== undefined ? { spec: { finalizers: specFinalizers } } : {}),
    }) as ApiObject;
  const specFinalizersOf = (o: ApiObject) => (o as { spec?: { finalizers?: string[] } }).spec?.finalizers;

  it('spec.finalizers keep a deleted namespace Terminating until an update empties them', () => {
    const marked = written(
      applyCommand(created(nsWith('prod', ['kubernetes'])), del('Namespace', 'prod'), 2),
    );
    expect(marked.event).toBe('MODIFIED');
    expect((marked.object as { status?: { phase?: string } }).status?.phase).toBe('Terminating');
    const withOther = nsWith('prod', ['kubernetes', 'example.com/x']);
    const other = written(applyCommand(created(withOther), del('Namespace', 'prod'), 2)).object;
    const one = written(applyCommand(other, { op: 'update', object: nsWith('prod', ['example.com/x']) }, 3));
    expect(one.event).toBe('MODIFIED');
    expect(specFinalizersOf(one.object)).toEqual(['example.com/x']);
    const gone = written(applyCommand(one.object, { op: 'update', object: nsWith('prod', []) }, 4));
    expect(gone.event).toBe('DELETED');
  });

  it('an update that omits spec.finalizers keeps them; an explicit list replaces them', () => {
    const cur = created(nsWith('prod', ['kubernetes']));
    const relabel = nsWith('prod', undefined, { labels: { team: 'a' } });
    const kept = written(applyCommand(cur, { op: 'update', object: relabel }, 2)).object;
    expect(specFinalizersOf(kept)).toEqual(['kubernetes']);
    expect(kept.metadata.labels).toEqual({ team: 'a' });
    const added = written(
      applyCommand(kept, { op: 'update', object: nsWith('prod', ['kubernetes', 'example.com/x']) }, 3),
    ).object;
    expect(specFinalizersOf(added)).toEqual(['kubernetes', 'example.com/x']);
    const removed = written(applyCommand(added, { op: 'update', object: nsWith('prod', ['kubernetes']) }, 4));
    expect(specFinalizersOf(removed.object)).toEqual(['kubernetes']);
  });

  it('refuses a new spec.finalizer on a Terminating namespace (Invalid, spec.finalizers)', () => {
    const marked = written(
      applyCommand(created(nsWith('prod', ['kubernetes'])), del('Namespace', 'prod'), 2),
    );
    const out = applyCommand(
      marked.object,
      { op: 'update', object: nsWith('prod', ['kubernetes', 'example.com/late']) },
      3,
    );
    expect(rejected(out, 'Invalid')).toContain('spec.finalizers: no new finalizers');
    expect(out.result === 'rejected' && out.fieldPath).toBe('spec.finalizers');
  });

  it('a force delete of a Terminating namespace does not bypass its spec.finalizers', () => {
    const marked = written(
      applyCommand(created(nsWith('prod', ['kubernetes'])), del('Namespace', 'prod'), 2),
    );
    expect(applyCommand(marked.object, del('Namespace', 'prod', { gracePeriodSeconds: 0 }), 3).result).toBe(
      'unchanged',
    );
  });

  it('removing the last finalizer of a pod in its grace period keeps it until a grace-0 delete', () => {
    const bound = created(
      pod('p', { nodeName: 'n1', terminationGracePeriodSeconds: 30 }, { finalizers: ['f'] }),
    );
    const terminating = written(applyCommand(bound, del('Pod', 'p'), 2)).object;
    expect(terminating.metadata.deletionGracePeriodSeconds).toBe(30);
    const noFinalizer = pod('p', { nodeName: 'n1', terminationGracePeriodSeconds: 30 });
    const kept = written(applyCommand(terminating, { op: 'update', object: noFinalizer }, 3));
    expect(kept.event).toBe('MODIFIED');
    expect(written(applyCommand(kept.object, del('Pod', 'p', { gracePeriodSeconds: 0 }), 4)).event).toBe(
      'DELETED',
    );
    // The other order: the node confirmed (grace 0) first, then the finalizer goes.
    const confirmed = written(applyCommand(terminating, del('Pod', 'p', { gracePeriodSeconds: 0 }), 3));
    expect(confirmed.event).toBe('MODIFIED');
    expect(written(applyCommand(confirmed.object, { op: 'update', object: noFinalizer }, 4)).event).toBe(
      'DELETED',
    );
  });
});

describe('applyCommand: bind', () => {
  const bind = (name: string, extra: Partial<Extract<Command, { op: 'bind' }>> = {}): Command => ({
    op: 'bind',
    key: { kind: 'Pod', namespace: 'default', name },
    uid: `uid-${name}`,
    nodeName: 'n1',
    now: LATER,
    ...extra,
  });
  it('sets spec.nodeName and PodScheduled=True at a new version', () => {
    const out = written(applyCommand(created(pod('p')), bind('p'), 7));
    expect(out.event).toBe('MODIFIED');
    const p = out.object as { spec: { nodeName?: string }; status?: { conditions?: unknown[] } };
    expect(p.spec.nodeName).toBe('n1');
    expect(out.object.metadata.resourceVersion).toBe('7');
    expect(p.status?.conditions).toEqual([
      { type: 'PodScheduled', status: 'True', lastTransitionTime: LATER },
    ]);
  });
  it('sets and removes annotations as a Kubernetes Binding does', () => {
    const base = created(pod('p'));
    const cur = { ...base, metadata: { ...base.metadata, annotations: { keep: '1', stale: 'x' } } };
    const out = written(
      applyCommand(cur, bind('p', { annotations: { placed: 'n1' }, removeAnnotations: ['stale'] }), 7),
    );
    expect(out.object.metadata.annotations).toEqual({ keep: '1', placed: 'n1' });
    const none = written(applyCommand(created(pod('p')), bind('p', { removeAnnotations: ['x'] }), 7));
    expect(none.object.metadata.annotations).toBeUndefined();
    expect(cur.metadata.annotations).toEqual({ keep: '1', stale: 'x' });
  });
  it('rejects a stale decision: another uid, an already bound or a deleting pod, a missing pod', () => {
    expect(rejected(applyCommand(created(pod('p')), bind('p', { uid: 'old' }), 7), 'Conflict')).toMatch(
      /uid/,
    );
    expect(rejected(applyCommand(created(pod('p', { nodeName: 'n2' })), bind('p'), 7), 'Conflict')).toMatch(
      /already bound to node "n2"/,
    );
    const deleting = created(pod('p', {}, { deletionTimestamp: NOW, finalizers: ['f'] }));
    expect(
      rejected(
        applyCommand(
          { ...deleting, metadata: { ...deleting.metadata, deletionTimestamp: NOW } },
          bind('p'),
          7,
        ),
        'Conflict',
      ),
    ).toMatch(/being deleted/);
    rejected(applyCommand(undefined, bind('p'), 7), 'NotFound');
  });
});

// ------------------------------------------------------------------ properties

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

const names = fc.constantFrom('a', 'b');
const finalizerSets = fc.subarray(['f1', 'f2', FinalizerForeground, FinalizerOrphan], { maxLength: 3 });
const labelSets = fc.option(fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('x', 'y')), {
  nil: undefined,
});

const metaArb = (kind: string) =>
  fc
    .record(
      {
        name: names,
        uid: fc.constantFrom('u1', 'u2'),
        resourceVersion: fc.constantFrom('1', '2', '3'),
        generation: fc.integer({ min: 1, max: 3 }),
        creationTimestamp: fc.constant('2024-05-01T09:00:00Z'),
        generateName: fc.constantFrom('a-', 'b-'),
        labels: labelSets,
        finalizers: finalizerSets,
        deletionTimestamp: fc.constant(NOW),
        deletionGracePeriodSeconds: fc.integer({ min: 0, max: 60 }),
      },
      { requiredKeys: ['name', 'uid', 'resourceVersion', 'creationTimestamp'] },
    )
    .map((m) => ({ ...m, ...(kind === 'Namespace' ? {} : { namespace: 'default' }) }));

const objectArb: fc.Arbitrary<ApiObject> = fc.oneof(
  fc
    .record({
      metadata: metaArb('ConfigMap'),
      data: fc.option(fc.dictionary(fc.constantFrom('k', 'l'), fc.constantFrom('v', 'w')), {
        nil: undefined,
      }),
    })
    .map((r) => ({ apiVersion: 'v1', kind: 'ConfigMap', ...r }) as unknown as ApiObject),
  fc
    .record({
      metadata: metaArb('Pod'),
      spec: fc.record(
        {
          containers: fc.constant([{ name: 'c', image: 'busybox' }]),
          nodeName: fc.constantFrom('n1', ''),
          terminationGracePeriodSeconds: fc.integer({ min: 0, max: 60 }),
        },
        { requiredKeys: ['containers'] },
      ),
      status: fc.option(fc.record({ phase: fc.constantFrom('Pending', 'Running') }), { nil: undefined }),
    })
    .map((r) => ({ apiVersion: 'v1', kind: 'Pod', ...r }) as unknown as ApiObject),
  fc
    .record({
      metadata: metaArb('Namespace'),
      status: fc.option(fc.record({ phase: fc.constantFrom('Active', 'Terminating') }), { nil: undefined }),
    })
    .map((r) => ({ apiVersion: 'v1', kind: 'Namespace', ...r }) as unknown as ApiObject),
);

const preconditionArb = fc.option(
  fc.record(
    { uid: fc.constantFrom('u1', 'u2'), resourceVersion: fc.constantFrom('1', '2', '3') },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  objectArb.map((object): Command => ({ op: 'create', object })),
  fc.tuple(objectArb, preconditionArb).map(
    ([object, precondition]): Command => ({
      op: 'update',
      object,
      ...(precondition ? { precondition } : {}),
    }),
  ),
  fc.tuple(objectArb, preconditionArb).map(
    ([object, precondition]): Command => ({
      op: 'updateStatus',
      object,
      ...(precondition ? { precondition } : {}),
    }),
  ),
  fc
    .record(
      {
        kind: fc.constantFrom('ConfigMap', 'Pod', 'Namespace'),
        name: names,
        precondition: preconditionArb,
        propagationPolicy: fc.constantFrom('Background', 'Foreground', 'Orphan'),
        gracePeriodSeconds: fc.integer({ min: -2, max: 60 }),
      },
      { requiredKeys: ['kind', 'name'] },
    )
    .map(
      (r): Command => ({
        op: 'delete',
        key: { kind: r.kind, namespace: r.kind === 'Namespace' ? '' : 'default', name: r.name },
        now: LATER,
        ...(r.precondition ? { precondition: r.precondition } : {}),
        ...(r.propagationPolicy ? { propagationPolicy: r.propagationPolicy } : {}),
        ...(r.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: r.gracePeriodSeconds } : {}),
      }),
    ),
  fc.tuple(names, fc.constantFrom('uid-a', 'uid-b', 'u1'), fc.constantFrom('n1', 'n2')).map(
    ([name, uid, nodeName]): Command => ({
      op: 'bind',
      key: { kind: 'Pod', namespace: 'default', name },
      uid,
      nodeName,
      now: LATER,
    }),
  ),
);

/** The current object of the command's kind and name (or none), so every branch is reached. */
const caseArb = fc
  .tuple(commandArb, fc.option(objectArb, { nil: undefined }), fc.integer({ min: 1, max: 1_000 }))
  .map(([cmd, cur, index]) => {
    if (cur === undefined) return { cmd, cur, index };
    const key =
      cmd.op === 'delete' || cmd.op === 'bind'
        ? cmd.key
        : { kind: cmd.object.kind, name: cmd.object.metadata.name ?? '', namespace: '' };
    return {
      cmd,
      index,
      cur:
        cur.kind === key.kind
          ? ({ ...cur, metadata: { ...cur.metadata, name: key.name } } as ApiObject)
          : undefined,
    };
  });

describe('applyCommand: properties', () => {
  it('is deterministic and never mutates its inputs', () => {
    fc.assert(
      fc.property(caseArb, ({ cmd, cur, index }) => {
        const cmdCopy = structuredClone(cmd);
        const curCopy = structuredClone(cur);
        deepFreeze(cmd);
        deepFreeze(cur);
        const a = applyCommand(cur, cmd, index);
        const b = applyCommand(structuredClone(curCopy), structuredClone(cmdCopy), index);
        expect(a).toEqual(b);
        expect(cmd).toEqual(cmdCopy);
        expect(cur).toEqual(curCopy);
      }),
      { numRuns: 2_000 },
    );
  });

  it('every write carries resourceVersion = index; unchanged and rejected carry the inputs', () => {
    fc.assert(
      fc.property(caseArb, ({ cmd, cur, index }) => {
        const out = applyCommand(deepFreeze(cur), deepFreeze(cmd), index);
        if (out.result === 'written') {
          expect(out.object.metadata.resourceVersion).toBe(String(index));
          expect(out.prev).toBe(cur);
          if (out.event === 'ADDED') expect(out.object.metadata.generation).toBe(1);
          if (out.event === 'MODIFIED') expect(out.object.metadata.uid).toBe(cur?.metadata.uid);
        } else if (out.result === 'unchanged') {
          expect(out.object).toBe(cur);
        } else {
          expect(out.message.length).toBeGreaterThan(0);
        }
        if (cur === undefined) expect(out.result === 'written' ? out.event : out.result).not.toBe('MODIFIED');
        expect(deepEqual(out, structuredClone(out))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});

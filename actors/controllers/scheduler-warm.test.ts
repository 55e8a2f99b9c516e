/**
 * The scheduler's snapshot on a master that does not run it: `observe` keeps it current, so
 * a new leader's `start` does not build it again (a ~1 s turn at 30,000 pods).
 */
import { describe, expect, it } from 'vitest';
import type { Node, Pod } from '../../core/index.js';
import type { ChangeEvent } from '../watch-hub.js';
import type { ClusterCache } from './cache.js';
import type { ControllerContext } from './controller.js';
import { schedulerController } from './scheduler.js';

function node(name: string): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: `uid-${name}` },
    spec: {},
    status: {
      capacity: { cpu: '4', memory: '8Gi', pods: '110' },
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  } as Node;
}

function pod(name: string, nodeName?: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: {
      containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '1' } } }],
      ...(nodeName ? { nodeName } : {}),
    },
  } as Pod;
}

const key = (o: Node | Pod) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function change(type: ChangeEvent['type'], object: Node | Pod, prev?: Node | Pod): ChangeEvent {
  return { rv: 1, type, key: key(object), object, ...(prev ? { prev } : {}) } as ChangeEvent;
}

/** A cache holding `objects`; `reads` counts the lists a rebuild makes. */
function cacheOf(objects: (Node | Pod)[]) {
  const state = { reads: 0 };
  const cache = {
    list: (kind: string) => {
      state.reads += 1;
      return objects.filter((o) => o.kind === kind);
    },
    keyOf: (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`,
    getByKey: (k: string) => objects.find((o) => key(o) === k),
  } as unknown as ClusterCache;
  return { cache, state };
}

function ctxOf(cache: ClusterCache): ControllerContext {
  return {
    cache,
    api: {} as ControllerContext['api'],
    events: { record: () => {} },
    nowMs: () => 0,
    log: () => {},
  };
}

describe('scheduler snapshot on a master that does not run the scheduler', () => {
  it('is built once at the first batch, follows every change, and start() does not rebuild it', () => {
    const s = schedulerController();
    const objects: (Node | Pod)[] = [node('n1'), pod('a', 'n1')];
    const { cache, state } = cacheOf(objects);
    s.observe([change('ADDED', pod('a', 'n1'))], cache);
    expect(state.reads).toBe(2); // nodes and pods, once
    expect(s.counters()).toMatchObject({ nodes: 1, podsOnNodes: 1 });

    objects.push(node('n2'), pod('b', 'n2'), pod('c'));
    s.observe(
      [change('ADDED', node('n2')), change('ADDED', pod('b', 'n2')), change('ADDED', pod('c'))],
      cache,
    );
    expect(s.counters()).toMatchObject({ nodes: 2, podsOnNodes: 2 });
    objects.splice(1, 1);
    s.observe([change('DELETED', pod('a', 'n1'))], cache);
    expect(s.counters()).toMatchObject({ nodes: 2, podsOnNodes: 1 });
    expect(state.reads).toBe(2);

    s.start(ctxOf(cache));
    expect(state.reads).toBe(2);
    expect(s.counters()).toMatchObject({ nodes: 2, podsOnNodes: 1, assumed: 0 });
    // The first resync after start lists pending pods without building the snapshot again.
    const pending = [...s.initialKeys(cache)];
    expect(pending).toEqual(['Pod/default/c']);
    expect(state.reads).toBe(3); // the pods' list for pending ones only
    // A periodic resync counts the bound pods (one list) and finds the snapshot current.
    [...s.initialKeys(cache)];
    expect(state.reads).toBe(5);
    expect(s.counters()).toMatchObject({ snapshotRebuilds: 0, podsOnNodes: 1 });
    // A pod the snapshot missed (a bug in the incremental path): the next resync rebuilds.
    objects.push(pod('d', 'n1'));
    [...s.initialKeys(cache)];
    expect(s.counters()).toMatchObject({ snapshotRebuilds: 1, podsOnNodes: 2 });
    s.stop();
  });

  it('is rebuilt after a snapshot restore (observeReset)', () => {
    const s = schedulerController();
    const { cache, state } = cacheOf([node('n1')]);
    s.observe([], cache);
    expect(state.reads).toBe(2);
    s.observeReset();
    s.observe([], cache);
    expect(state.reads).toBe(4);
    s.observeReset();
    s.start(ctxOf(cache));
    expect(state.reads).toBe(6);
    // A restore while running: the next resync builds it again even right after start.
    s.observeReset();
    [...s.initialKeys(cache)];
    expect(state.reads).toBe(9); // nodes and pods, then pods for the pending ones
    s.stop();
  });
});

/**
 * The controllers' cluster cache follows the store's changes: its indexes (by namespace, owner,
 * node, orphans, terminated pods) move with the fields they index, and stay put through
 * changes that keep those fields (a status write).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Command } from '../../core/commands.js';
import type { ApiObject, Pod } from '../../core/index.js';
import { type ActorSystem, startActorSystem, stopActorSystem } from '../runtime.js';
import { encodeRecord, ObjectStore } from '../store.js';
import { ClusterCache } from './cache.js';

const NOW = '2024-05-01T10:00:00Z';

function pod(opts: { controller?: boolean; nodeName?: string; phase?: string; rs?: string }): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-1',
      namespace: 'default',
      uid: 'uid-web-1',
      creationTimestamp: NOW,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: opts.rs ?? 'web',
          uid: `uid-rs-${opts.rs ?? 'web'}`,
          ...(opts.controller === false ? {} : { controller: true }),
        },
      ],
    },
    spec: {
      containers: [{ name: 'c', image: 'busybox' }],
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
    },
    ...(opts.phase ? { status: { phase: opts.phase } } : {}),
  } as unknown as Pod;
}

describe('ClusterCache', () => {
  let system: ActorSystem;
  let store: ObjectStore;
  let cache: ClusterCache;
  let index = 0;
  const apply = async (cmd: Command) => {
    index += 1;
    await store.applyBatch(
      [{ index, term: 1, type: 'normal', data: encodeRecord({ t: 'cmd', cmd }) }],
      index,
    );
  };
  const names = (objs: ApiObject[]) => objs.map((o) => o.metadata.name);

  beforeEach(() => {
    system = startActorSystem();
    store = new ObjectStore({ system, objectBucketsCount: 4 });
    cache = new ClusterCache(store);
    store.subscribe((changes) => cache.apply(changes));
    index = 0;
  });
  afterEach(async () => {
    store.close();
    await stopActorSystem(system);
  });

  it('moves an object between indexes as its indexed fields change, and keeps it through other changes', async () => {
    await apply({ op: 'create', object: pod({}) });
    expect(names(cache.dependents('uid-rs-web', 'Pod'))).toEqual(['web-1']);
    expect(cache.orphansIn('Pod', 'default')).toEqual([]);
    expect(cache.nodesWithPods()).toEqual([]);

    await apply({
      op: 'bind',
      key: { kind: 'Pod', namespace: 'default', name: 'web-1' },
      uid: 'uid-web-1',
      nodeName: 'n1',
      now: NOW,
    });
    expect(names(cache.podsOnNode('n1'))).toEqual(['web-1']);

    // A status write keeps every indexed field: still found everywhere, now at its new version.
    await apply({ op: 'updateStatus', object: pod({ nodeName: 'n1', phase: 'Running' }) });
    const [running] = cache.podsOnNode('n1');
    expect(running.status?.phase).toBe('Running');
    expect(names(cache.dependents('uid-rs-web', 'Pod'))).toEqual(['web-1']);
    expect(cache.terminatedPodCount).toBe(0);

    await apply({ op: 'updateStatus', object: pod({ nodeName: 'n1', phase: 'Succeeded' }) });
    expect(names(cache.terminatedPods())).toEqual(['web-1']);

    // Released by its controller (the reference stays, not as controller): an orphan now.
    await apply({ op: 'update', object: pod({ nodeName: 'n1', controller: false }) });
    expect(names(cache.orphansIn('Pod', 'default'))).toEqual(['web-1']);
    expect(names(cache.dependents('uid-rs-web', 'Pod'))).toEqual(['web-1']);

    // Adopted by another ReplicaSet.
    await apply({ op: 'update', object: pod({ nodeName: 'n1', rs: 'other' }) });
    expect(cache.orphansIn('Pod', 'default')).toEqual([]);
    expect(cache.dependents('uid-rs-web')).toEqual([]);
    expect(names(cache.dependents('uid-rs-other', 'Pod'))).toEqual(['web-1']);

    await apply({
      op: 'delete',
      key: { kind: 'Pod', namespace: 'default', name: 'web-1' },
      gracePeriodSeconds: 0,
      now: NOW,
    });
    expect(cache.podsOnNode('n1')).toEqual([]);
    expect(cache.terminatedPodCount).toBe(0);
    expect(cache.dependents('uid-rs-other')).toEqual([]);
  });
});

/**
 * The controllers' read-only view of the cluster on the leader: the committed objects of the
 * local store (a consistent cut after every applied batch) plus the secondary indexes
 * controllers need — objects by namespace, dependents by owner uid, pods by node. Built when
 * the controllers start and kept current from the store's change feed. Objects are the
 * store's own: never modify them (copy first), as client-go's informer caches demand.
 */

import { keyOfObject, objectKey } from '../../core/commands.js';
import type { ApiObject, Pod } from '../../core/index.js';
import type { ObjectStore } from '../store.js';
import type { ChangeEvent } from '../watch-hub.js';

/** Kinds indexed by namespace (list by namespace without a scan of the kind). */
type Index = Map<string, Set<string>>;

function addTo(index: Index, at: string, key: string): void {
  let keys = index.get(at);
  if (keys === undefined) {
    keys = new Set();
    index.set(at, keys);
  }
  keys.add(key);
}

function removeFrom(index: Index, at: string, key: string): void {
  const keys = index.get(at);
  if (keys === undefined) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(at);
}

function isTerminal(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/**
 * The kinds controllers adopt by selector (pods: ReplicaSets, Jobs, DaemonSets, StatefulSets;
 * ReplicaSets: Deployments; ControllerRevisions: DaemonSets, StatefulSets): only their orphans
 * are indexed (an Event, a Lease or a ConfigMap is never claimed).
 */
export const adoptableKinds = ['Pod', 'ReplicaSet', 'ControllerRevision'] as const;
export type AdoptableKind = (typeof adoptableKinds)[number];
const adoptable: ReadonlySet<string> = new Set(adoptableKinds);

function hasController(obj: ApiObject): boolean {
  return obj.metadata.ownerReferences?.some((r) => r.controller === true) ?? false;
}

/** Whether two versions of one object sit at the same places in every index of the cache. */
function sameIndexedFields(a: ApiObject, b: ApiObject): boolean {
  const am = a.metadata;
  const bm = b.metadata;
  if (a.kind !== b.kind || am.namespace !== bm.namespace || am.uid !== bm.uid) return false;
  const ar = am.ownerReferences ?? [];
  const br = bm.ownerReferences ?? [];
  if (ar !== br) {
    if (ar.length !== br.length) return false;
    for (let i = 0; i < ar.length; i += 1) {
      if (ar[i].uid !== br[i].uid || (ar[i].controller === true) !== (br[i].controller === true))
        return false;
    }
  }
  if (a.kind === 'Pod' && b.kind === 'Pod') {
    return a.spec.nodeName === b.spec.nodeName && isTerminal(a) === isTerminal(b);
  }
  return true;
}

export class ClusterCache {
  /** `kind/namespace` → keys. */
  private readonly byNamespace: Index = new Map();
  /** owner uid → keys of the objects listing it in ownerReferences. */
  private readonly byOwner: Index = new Map();
  /** node name → keys of pods bound to it. */
  private readonly podsByNode: Index = new Map();
  /** `kind/namespace` → keys of objects of an adoptable kind without a controller reference (adoption candidates). */
  private readonly orphans: Index = new Map();
  /** uid → key, for owner lookups by uid. */
  private readonly byUid = new Map<string, string>();
  /** Keys of pods in phase Succeeded or Failed (the pod garbage collector's threshold). */
  private readonly terminated = new Set<string>();

  constructor(private readonly store: ObjectStore) {
    this.rebuild();
  }

  /** Index everything the store holds now (at start and after a snapshot restore). */
  rebuild(): void {
    this.byNamespace.clear();
    this.byOwner.clear();
    this.podsByNode.clear();
    this.orphans.clear();
    this.byUid.clear();
    this.terminated.clear();
    for (const obj of this.store.allObjects()) this.index(keyOfObject(obj), obj);
  }

  /** Applies one batch of changes (in log order) to the indexes. */
  apply(changes: readonly ChangeEvent[]): void {
    for (const c of changes) {
      // Most changes (status writes) keep every indexed field: the indexes stay as they are.
      if (c.type === 'MODIFIED' && c.prev !== undefined && sameIndexedFields(c.prev, c.object)) continue;
      if (c.prev !== undefined) this.unindex(c.key, c.prev);
      if (c.type !== 'DELETED') this.index(c.key, c.object);
    }
  }

  get appliedIndex(): number {
    return this.store.appliedIndex;
  }

  get<T extends ApiObject = ApiObject>(kind: T['kind'], namespace: string, name: string): T | undefined {
    return this.store.get(kind, namespace, name) as T | undefined;
  }

  getByKey(key: string): ApiObject | undefined {
    return this.store.getByKey(key);
  }

  getByUid(uid: string): ApiObject | undefined {
    const key = this.byUid.get(uid);
    return key === undefined ? undefined : this.store.getByKey(key);
  }

  /** Objects of `kind` in `namespace` (every namespace when undefined). */
  list<T extends ApiObject = ApiObject>(kind: T['kind'], namespace?: string): T[] {
    if (namespace === undefined) return [...this.store.objectsOfKind(kind)] as T[];
    return this.resolve(this.byNamespace.get(`${kind}/${namespace}`)) as T[];
  }

  /** How many objects of `kind` live in `namespace`. */
  count(kind: string, namespace: string): number {
    return this.byNamespace.get(`${kind}/${namespace}`)?.size ?? 0;
  }

  /** Namespaces holding at least one object of any kind. */
  hasObjectsIn(namespace: string): boolean {
    for (const at of this.byNamespace.keys()) if (at.endsWith(`/${namespace}`)) return true;
    return false;
  }

  /** The kinds with objects in `namespace`. */
  kindsIn(namespace: string): string[] {
    const out: string[] = [];
    for (const at of this.byNamespace.keys()) {
      const slash = at.indexOf('/');
      if (at.slice(slash + 1) === namespace) out.push(at.slice(0, slash));
    }
    return out;
  }

  /** Objects with an ownerReference to `uid` (any kind; `kind` filters). */
  dependents<T extends ApiObject = ApiObject>(uid: string, kind?: T['kind']): T[] {
    const objs = this.resolve(this.byOwner.get(uid));
    return (kind === undefined ? objs : objs.filter((o) => o.kind === kind)) as T[];
  }

  /** Objects of `kind` in `namespace` without a controller reference. */
  orphansIn<T extends ApiObject = ApiObject>(kind: T['kind'] & AdoptableKind, namespace: string): T[] {
    return this.resolve(this.orphans.get(`${kind}/${namespace}`)) as T[];
  }

  /** The objects of `kind` in `namespace` controlled by `uid`, plus the orphans (claim candidates). */
  claimable<T extends ApiObject = ApiObject>(
    kind: T['kind'] & AdoptableKind,
    namespace: string,
    uid: string | undefined,
  ): T[] {
    const owned = uid === undefined ? [] : this.dependents<T>(uid, kind);
    return [...owned, ...this.orphansIn<T>(kind, namespace)];
  }

  podsOnNode(node: string): Pod[] {
    return this.resolve(this.podsByNode.get(node)) as Pod[];
  }

  /** Names of the nodes pods are bound to (whether or not a Node object exists). */
  nodesWithPods(): string[] {
    return [...this.podsByNode.keys()];
  }

  /** How many objects of `kind` exist in the whole cluster. */
  countOfKind(kind: string): number {
    return this.store.count(kind);
  }

  /** Pods in phase Succeeded or Failed. */
  terminatedPods(): Pod[] {
    return this.resolve(this.terminated) as Pod[];
  }

  get terminatedPodCount(): number {
    return this.terminated.size;
  }

  keyOf(kind: string, namespace: string, name: string): string {
    return objectKey(kind, namespace, name);
  }

  private resolve(keys: Set<string> | undefined): ApiObject[] {
    if (keys === undefined) return [];
    const out: ApiObject[] = [];
    for (const key of keys) {
      const obj = this.store.getByKey(key);
      if (obj !== undefined) out.push(obj);
    }
    return out;
  }

  private index(key: string, obj: ApiObject): void {
    const m = obj.metadata;
    if (m.namespace) addTo(this.byNamespace, `${obj.kind}/${m.namespace}`, key);
    if (m.namespace && adoptable.has(obj.kind) && !hasController(obj)) {
      addTo(this.orphans, `${obj.kind}/${m.namespace}`, key);
    }
    if (m.uid) this.byUid.set(m.uid, key);
    for (const ref of m.ownerReferences ?? []) addTo(this.byOwner, ref.uid, key);
    if (obj.kind === 'Pod' && obj.spec.nodeName) addTo(this.podsByNode, obj.spec.nodeName, key);
    if (obj.kind === 'Pod' && isTerminal(obj)) this.terminated.add(key);
  }

  private unindex(key: string, obj: ApiObject): void {
    const m = obj.metadata;
    if (m.namespace) removeFrom(this.byNamespace, `${obj.kind}/${m.namespace}`, key);
    if (m.namespace && adoptable.has(obj.kind) && !hasController(obj)) {
      removeFrom(this.orphans, `${obj.kind}/${m.namespace}`, key);
    }
    if (m.uid && this.byUid.get(m.uid) === key) this.byUid.delete(m.uid);
    for (const ref of m.ownerReferences ?? []) removeFrom(this.byOwner, ref.uid, key);
    if (obj.kind === 'Pod' && obj.spec.nodeName) removeFrom(this.podsByNode, obj.spec.nodeName, key);
    if (obj.kind === 'Pod') this.terminated.delete(key);
  }
}

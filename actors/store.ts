/**
 * The master's replicated state machine: the apply loop over committed Raft entries, one
 * object actor per API object, per-kind indexes for get/list/selectors, the watch hub, and
 * snapshot/restore as a consistent cut.
 *
 * A batch of committed entries is dispatched to the object actors in log order (each key's
 * mailbox keeps that order; an idle actor applies in the loop's own turn: `askInline`), then
 * the outcomes are committed to the indexes and the watch hub in log order, and only then
 * does `appliedIndex` move to the batch's last index. So `appliedIndex` is exact: every entry
 * up to it is fully applied everywhere, and reads of the indexes always see a consistent cut.
 */

import { Packr, unpack } from 'msgpackr';
import {
  type ApplyOutcome,
  applyCommandSafely,
  type Command,
  commandKey,
  keyOfObject,
  malformedCommand,
  objectKey,
  reject as rejected,
} from '../core/commands.js';
import type { ApiObject, FieldSelector, ParsedLabelSelector } from '../core/index.js';
import type { Entry } from '../raft/index.js';
import { ApiError, ApiErrorCode, type WatchEvent, type WatchStream } from './api.js';
import { type ObjectMsg, objectActorSpec } from './object-actor.js';
import type { ActorRef, ActorSystem, Registry } from './runtime.js';
import {
  type ChangeEvent,
  filterChange,
  indexedNodeOf,
  matchesFilter,
  type WatchFilter,
  WatchHub,
  type WatchHubOptions,
} from './watch-hub.js';

/** A master of the Raft group as recorded in the replicated state (addresses for the transport). */
export interface MemberRecord {
  id: string;
  raftAddress: string;
}

/** One Raft log entry of the master, msgpack-encoded. `id` correlates the proposer's waiter. */
export type LogRecord =
  | { t: 'cmd'; id?: string; cmd: Command }
  /**
   * Several commands in one entry (the Event cap's deletions, Event creates proposed
   * together): each applies as if alone, in order, at the entry's index, and settles as
   * `id/i` as well as with the record; their changes share that resourceVersion.
   */
  | { t: 'cmds'; id?: string; cmds: Command[] }
  | { t: 'member'; id?: string; member: MemberRecord }
  | { t: 'memberRemoved'; id?: string; member: string };

/** What the proposer of a record learns once it is applied. */
export type RecordOutcome =
  | ApplyOutcome
  | { result: 'cmds'; outcomes: ApplyOutcome[] }
  | { result: 'member' };

/**
 * Log records are msgpack with records (msgpackr's `useRecords`): each object shape's keys are
 * written once per log record, not once per object, so a record of many commands (a lane's
 * pod creates, bindings and statuses) is smaller and decodes faster. No shared structures:
 * every record carries its own definitions, so any master decodes any entry whatever it
 * decoded before, and records written as plain maps (before) decode as they did.
 */
const recordPackr = new Packr({ useRecords: true });

export function encodeRecord(rec: LogRecord): Uint8Array {
  // Copy: msgpackr's buffers are views of a shared slab, and log entries are retained.
  return new Uint8Array(recordPackr.pack(rec));
}

export function decodeRecord(data: Uint8Array): LogRecord {
  const rec = unpack(data) as LogRecord;
  if (typeof rec !== 'object' || rec === null || typeof rec.t !== 'string') {
    throw new Error('malformed log record');
  }
  return rec;
}

interface SnapshotData {
  v: 1;
  applied: number;
  objects: ApiObject[];
  members: MemberRecord[];
}

export interface StoreOptions {
  system: ActorSystem;
  hub?: WatchHubOptions;
  /** Bucket actors under the object registry (each holds at most 1,000 objects). Default 256. */
  objectBucketsCount?: number;
  /** How long one object actor may take to apply a command before the master fails loudly. Default 60,000. */
  applyTimeoutMs?: number;
  /** Called after a batch changed the member directory (or a restore replaced it). */
  onMembersChanged?: (members: readonly MemberRecord[]) => void;
  /** A snapshot encodes objects for this long before letting the event loop turn. Default 10. */
  snapshotSliceMs?: number;
}

export interface ListQuery {
  kind: string;
  namespace?: string;
  labels?: ParsedLabelSelector;
  fields?: FieldSelector;
  /** 0: no limit. */
  limit: number;
  /** Continue after this key at version `rv`. */
  after?: { rv: number; key: string };
}

export interface ListPage {
  items: ApiObject[];
  rv: number;
  /** Last key of this page when more items follow. */
  nextKey?: string;
  remaining?: number;
}

class KindIndex {
  readonly keys = new Set<string>();
  private sorted: string[] | undefined;
  add(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.sorted = undefined;
  }
  delete(key: string): void {
    if (this.keys.delete(key)) this.sorted = undefined;
  }
  sortedKeys(): string[] {
    this.sorted ??= [...this.keys].sort();
    return this.sorted;
  }
}

interface AppliedWaiter {
  index: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

function actorName(key: string): string {
  // Keys are kind/namespace/name; '+' is not valid in any of them and is valid in actor names.
  return key.replaceAll('/', '+');
}

/**
 * Called synchronously after each applied batch with its changes in log order (indexes and
 * `appliedIndex` already updated), and with `reset: true` after a snapshot restore replaced
 * the state (consumers rebuild from the store). Must not throw and must not block.
 */
export type StoreListener = (changes: readonly ChangeEvent[], appliedIndex: number, reset: boolean) => void;

/**
 * Called synchronously with the id of each record as the apply loop settles it (written,
 * unchanged or rejected), before the batch's `StoreListener`s run and with no await in
 * between: leader admission releases the record's claims here, in the same step that makes
 * its object visible. Must not throw and must not block.
 */
export type SettledListener = (id: string) => void;

export class ObjectStore {
  /** Every entry up to here is applied in every actor, index and the hub. */
  appliedIndex = 0;
  readonly hub: WatchHub;
  private readonly system: ActorSystem;
  private readonly registry: Registry;
  private readonly objects = new Map<string, ApiObject>();
  private readonly kinds = new Map<string, KindIndex>();
  /**
   * Pod keys by `spec.nodeName` (`""`: unbound): a node agent's list of its pods reads its own
   * node's pods instead of scanning every pod (1,000 agents relisting would scan 1,000 times).
   */
  private readonly podsByNode = new Map<string, Set<string>>();
  private readonly members = new Map<string, MemberRecord>();
  private readonly outcomeWaiters = new Map<string, (o: RecordOutcome) => void>();
  private appliedWaiters: AppliedWaiter[] = [];
  private readonly applyTimeoutMs: number;
  private readonly onMembersChanged: ((m: readonly MemberRecord[]) => void) | undefined;
  private readonly listeners = new Set<StoreListener>();
  private readonly settledListeners = new Set<SettledListener>();
  private readonly snapshotSliceMs: number;

  constructor(opts: StoreOptions) {
    this.system = opts.system;
    this.hub = new WatchHub(opts.hub);
    this.registry = opts.system.createRegistry('objects', { bucketsCount: opts.objectBucketsCount ?? 256 });
    this.applyTimeoutMs = opts.applyTimeoutMs ?? 60_000;
    this.onMembersChanged = opts.onMembersChanged;
    this.snapshotSliceMs = opts.snapshotSliceMs ?? 10;
  }

  /**
   * Records proposed by this master, by their encoding: a leader applies the entries it proposed
   * with these instead of decoding them again (14% of a leader's apply time at 10,000 pods).
   * Weakly keyed: an entry that never commits takes its record with it.
   */
  private readonly proposed = new WeakMap<Uint8Array, LogRecord>();

  /**
   * Notes that `data` is `rec` encoded, before `data` is proposed. The objects `rec` carries
   * then become the committed ones when this master applies that entry: like committed
   * objects, they must never be modified (no proposer does: each builds or decodes its own).
   * Decoding `data` must give `rec` back exactly, as the other masters apply that: admission
   * copies what clients send with `canonicalJson`, which makes it so (a lone surrogate, -0 or a
   * `__proto__` member would not survive the codec).
   */
  remember(data: Uint8Array, rec: LogRecord): void {
    this.proposed.set(data, rec);
  }

  // ------------------------------------------------------------------ StateMachine

  apply(entry: Entry): Promise<void> {
    return this.applyBatch([entry], entry.index);
  }

  /** Applies `entries` (normal entries with data) and moves `appliedIndex` to `lastIndex`. */
  async applyBatch(entries: readonly Entry[], lastIndex: number): Promise<void> {
    const steps: {
      rec: LogRecord;
      index: number;
      key?: string;
      outcome: Promise<ApplyOutcome> | ApplyOutcome | undefined;
    }[] = [];
    /** `cmds` records: their steps are `count` from `from`, settled together. */
    const groups: { id: string | undefined; from: number; count: number }[] = [];
    const step = (rec: LogRecord, cmd: Command, index: number) => {
      const malformed = malformedCommand(cmd);
      if (malformed !== undefined) {
        steps.push({
          rec,
          index,
          outcome: rejected('Invalid', `malformed command in log entry ${index}: ${malformed}`),
        });
        return;
      }
      const k = commandKey(cmd);
      const key = objectKey(k.kind, k.namespace, k.name);
      // Each key's commands reach its actor in log order; keys do not depend on each other.
      steps.push({ rec, index, key, outcome: this.dispatch(key, cmd, index) });
    };
    for (const e of entries) {
      if (e.data.byteLength === 0) continue;
      const known = this.proposed.get(e.data);
      if (known !== undefined) this.proposed.delete(e.data);
      const rec = known ?? decodeRecord(e.data);
      if (rec.t === 'cmd') step(rec, rec.cmd, e.index);
      else if (rec.t === 'cmds' && !Array.isArray(rec.cmds)) {
        steps.push({
          rec,
          index: e.index,
          outcome: rejected('Invalid', `malformed record in log entry ${e.index}: cmds is not a list`),
        });
      } else if (rec.t === 'cmds') {
        groups.push({ id: rec.id, from: steps.length, count: rec.cmds.length });
        // Each command settles as `id/i` too: leader admission held its claims under that id.
        for (const [i, cmd] of rec.cmds.entries()) {
          const id = rec.id === undefined ? undefined : `${rec.id}/${i}`;
          step(id === undefined ? { t: 'cmd', cmd } : { t: 'cmd', id, cmd }, cmd, e.index);
        }
      } else steps.push({ rec, index: e.index, outcome: undefined });
    }
    const outcomes = steps.some((s) => s.outcome instanceof Promise)
      ? await Promise.all(steps.map((s) => s.outcome))
      : steps.map((s) => s.outcome as ApplyOutcome | undefined);
    const changes: ChangeEvent[] = [];
    const touched = new Set<string>();
    let membersChanged = false;
    for (let i = 0; i < steps.length; i += 1) {
      const s = steps[i];
      const outcome = outcomes[i];
      if (s.rec.t === 'member') {
        this.members.set(s.rec.member.id, s.rec.member);
        membersChanged = true;
        this.settle(s.rec.id, { result: 'member' });
        continue;
      }
      if (s.rec.t === 'memberRemoved') {
        this.members.delete(s.rec.member);
        membersChanged = true;
        this.settle(s.rec.id, { result: 'member' });
        continue;
      }
      if (outcome === undefined) throw new Error('apply: command without outcome');
      if (outcome.result === 'written') {
        if (s.key === undefined) throw new Error('apply: written without a key');
        if (outcome.event === 'DELETED') this.removeObject(s.key);
        else this.putObject(s.key, outcome.object);
        changes.push({
          rv: s.index,
          type: outcome.event,
          key: s.key,
          object: outcome.object,
          prev: outcome.prev,
        });
        touched.add(s.key);
      }
      this.settle(s.rec.id, outcome);
    }
    for (const g of groups) {
      this.settle(g.id, {
        result: 'cmds',
        outcomes: outcomes.slice(g.from, g.from + g.count) as ApplyOutcome[],
      });
    }
    for (const key of touched) if (!this.objects.has(key)) this.registry.stop(actorName(key));
    this.appliedIndex = Math.max(this.appliedIndex, lastIndex);
    this.notify(changes, false);
    this.hub.publish(changes, this.appliedIndex);
    this.releaseAppliedWaiters();
    if (membersChanged) this.onMembersChanged?.([...this.members.values()]);
  }

  /** Adds a listener of applied changes; returns its removal. */
  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adds a listener of settled record ids; returns its removal. */
  onSettled(listener: SettledListener): () => void {
    this.settledListeners.add(listener);
    return () => this.settledListeners.delete(listener);
  }

  private notify(changes: readonly ChangeEvent[], reset: boolean): void {
    if (this.listeners.size === 0 || (changes.length === 0 && !reset)) return;
    for (const l of this.listeners) {
      try {
        l(changes, this.appliedIndex, reset);
      } catch (err) {
        console.error('store listener threw (ignored)', err);
      }
    }
  }

  /** The committed object with key `kind/namespace/name`; callers never modify it. */
  getByKey(key: string): ApiObject | undefined {
    return this.objects.get(key);
  }

  /** Every committed object (callers never modify them). */
  allObjects(): IterableIterator<ApiObject> {
    return this.objects.values();
  }

  /** Every object of `kind` (the committed objects: callers never modify them). */
  *objectsOfKind(kind: string): IterableIterator<ApiObject> {
    const keys = this.kinds.get(kind)?.keys;
    if (keys === undefined) return;
    for (const key of keys) {
      const obj = this.objects.get(key);
      if (obj !== undefined) yield obj;
    }
  }

  private dispatch(key: string, cmd: Command, index: number): Promise<ApplyOutcome> | ApplyOutcome {
    const name = actorName(key);
    let ref = this.registry.get<ObjectMsg>(name);
    if (ref === undefined) {
      // No actor: the key has no object (actors live exactly as long as their object, plus
      // the batch that deletes it). Only a create can give it one.
      if (cmd.op !== 'create') return applyCommandSafely(undefined, cmd, index);
      ref = this.spawnActor(key);
    }
    // An idle actor (nearly always: nothing else sends to object actors) applies in this turn
    // and answers with the outcome itself; a busy one gets the command behind its mailbox.
    return this.system.askInline(ref, { type: 'apply' as const, cmd, index }, this.applyTimeoutMs);
  }

  private spawnActor(key: string): ActorRef<ObjectMsg> {
    return this.registry.spawn(
      actorName(key),
      objectActorSpec(() => this.objects.get(key)),
    );
  }

  private putObject(key: string, obj: ApiObject): void {
    if (obj.kind === 'Pod') this.indexPodNode(key, this.objects.get(key), obj);
    this.objects.set(key, obj);
    let k = this.kinds.get(obj.kind);
    if (!k) {
      k = new KindIndex();
      this.kinds.set(obj.kind, k);
    }
    k.add(key);
  }

  private removeObject(key: string): void {
    const obj = this.objects.get(key);
    if (!obj) return;
    if (obj.kind === 'Pod') this.indexPodNode(key, obj, undefined);
    this.objects.delete(key);
    this.kinds.get(obj.kind)?.delete(key);
  }

  private indexPodNode(key: string, before: ApiObject | undefined, after: ApiObject | undefined): void {
    const from = before?.kind === 'Pod' ? (before.spec.nodeName ?? '') : undefined;
    const to = after?.kind === 'Pod' ? (after.spec.nodeName ?? '') : undefined;
    if (from === to) return;
    if (from !== undefined) {
      const keys = this.podsByNode.get(from);
      keys?.delete(key);
      if (keys?.size === 0) this.podsByNode.delete(from);
    }
    if (to !== undefined) {
      let keys = this.podsByNode.get(to);
      if (keys === undefined) {
        keys = new Set();
        this.podsByNode.set(to, keys);
      }
      keys.add(key);
    }
  }

  /**
   * The state at the applied index, msgpack-encoded (restore with `restore`). The cut is taken
   * at the call (objects are immutable: a write stores a new object), and the objects are
   * encoded in slices of `snapshotSliceMs` with a turn of the event loop in between, so a large
   * state (~1 s of encoding at 30,000 pods) does not stall the master while later entries apply.
   */
  snapshot(): Promise<Uint8Array> {
    const applied = this.appliedIndex;
    const objects = [...this.objects.values()];
    const members = [...this.members.values()];
    return encodeSnapshot(applied, objects, members, this.snapshotSliceMs);
  }

  restore(bytes: Uint8Array): void {
    const data = unpack(bytes) as SnapshotData;
    if (data?.v !== 1 || !Array.isArray(data.objects))
      throw new Error('restore: not a Coxswain state snapshot');
    for (const key of this.objects.keys()) this.registry.stop(actorName(key));
    this.objects.clear();
    this.kinds.clear();
    this.podsByNode.clear();
    for (const obj of data.objects) {
      const key = keyOfObject(obj);
      this.putObject(key, obj);
      this.spawnActor(key);
    }
    this.members.clear();
    for (const m of data.members ?? []) this.members.set(m.id, m);
    this.appliedIndex = data.applied;
    this.hub.reset(data.applied);
    this.notify([], true);
    this.releaseAppliedWaiters();
    this.onMembersChanged?.([...this.members.values()]);
  }

  // ------------------------------------------------------------------ proposers

  /**
   * Registers interest in the outcome of the record with `id`, before it is proposed.
   * The returned cancel function drops the waiter (on a failed proposal).
   */
  expectOutcome(id: string): { outcome: Promise<RecordOutcome>; cancel: () => void } {
    let cancel = () => {};
    const outcome = new Promise<RecordOutcome>((resolve) => {
      this.outcomeWaiters.set(id, resolve);
      cancel = () => this.outcomeWaiters.delete(id);
    });
    return { outcome, cancel };
  }

  private settle(id: string | undefined, o: RecordOutcome): void {
    if (id === undefined) return;
    for (const l of this.settledListeners) l(id);
    const w = this.outcomeWaiters.get(id);
    if (!w) return;
    this.outcomeWaiters.delete(id);
    w(o);
  }

  /** Resolves once `appliedIndex >= index`; rejects with Timeout after `timeoutMs`. */
  waitForApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w: AppliedWaiter = {
        index,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.appliedWaiters = this.appliedWaiters.filter((x) => x !== w);
          reject(
            new ApiError(
              ApiErrorCode.Timeout,
              `this master has not applied index ${index} within ${timeoutMs} ms`,
              {
                retryAfterMs: 100,
              },
            ),
          );
        }, timeoutMs),
      };
      this.appliedWaiters.push(w);
    });
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const keep: AppliedWaiter[] = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.appliedIndex) {
        clearTimeout(w.timer);
        w.resolve();
      } else keep.push(w);
    }
    this.appliedWaiters = keep;
  }

  // ------------------------------------------------------------------ reads

  memberList(): MemberRecord[] {
    return [...this.members.values()];
  }

  /** The committed object at `key`; callers never modify it. */
  get(kind: string, namespace: string, name: string): ApiObject | undefined {
    return this.objects.get(objectKey(kind, namespace, name));
  }

  count(kind: string): number {
    return this.kinds.get(kind)?.keys.size ?? 0;
  }

  /**
   * One page of a list at a consistent cut: the current state, or, for a continue, the state
   * at `after.rv` rebuilt from the history (Gone once the history no longer reaches back).
   */
  list(q: ListQuery): ListPage {
    const rv = q.after?.rv ?? this.appliedIndex;
    if (rv > this.appliedIndex) throw new Error('list: cut is ahead of this master (wait for it first)');
    const node = rv === this.appliedIndex ? selectedNode(q) : undefined;
    const view =
      node !== undefined
        ? { keys: [...(this.podsByNode.get(node) ?? [])].sort(), get: (k: string) => this.objects.get(k) }
        : this.viewAt(q.kind, rv);
    let keys = view.keys;
    if (q.namespace) {
      const prefix = `${q.kind}/${q.namespace}/`;
      // '0' sorts right after '/': the range holds exactly the keys under the prefix.
      keys = keys.slice(lowerBound(keys, prefix), lowerBound(keys, `${q.kind}/${q.namespace}0`));
    }
    let start = 0;
    if (q.after) start = upperBound(keys, q.after.key);
    const items: ApiObject[] = [];
    const filter: WatchFilter = { kind: q.kind, namespace: q.namespace, labels: q.labels, fields: q.fields };
    let i = start;
    for (; i < keys.length; i += 1) {
      const obj = view.get(keys[i]);
      if (obj === undefined || !matchesFilter(filter, obj)) continue;
      if (q.limit > 0 && items.length === q.limit) break;
      items.push(obj);
    }
    if (i >= keys.length) return { items, rv };
    let remaining = 0;
    for (let j = i; j < keys.length; j += 1) {
      const obj = view.get(keys[j]);
      if (obj !== undefined && matchesFilter(filter, obj)) remaining += 1;
    }
    if (remaining === 0) return { items, rv };
    return { items, rv, nextKey: keyOfObject(items[items.length - 1]), remaining };
  }

  private viewAt(kind: string, rv: number): { keys: string[]; get: (k: string) => ApiObject | undefined } {
    const current = this.kinds.get(kind)?.sortedKeys() ?? [];
    if (rv === this.appliedIndex) return { keys: current, get: (k) => this.objects.get(k) };
    const before = new Map<string, ApiObject | undefined>();
    for (const c of this.hub.changesSince(rv)) {
      if (c.object.kind !== kind || before.has(c.key)) continue;
      before.set(c.key, c.prev);
    }
    const extra = [...before.keys()].filter((k) => !this.objects.has(k));
    const keys = extra.length > 0 ? [...current, ...extra].sort() : current;
    return { keys, get: (k) => (before.has(k) ? before.get(k) : this.objects.get(k)) };
  }

  /**
   * A watch at this master's applied index: from `fromRv` (changes after it, from the history;
   * Gone when too old), or from now with the current state first as ADDED events.
   */
  watch(
    filter: WatchFilter,
    fromRv: number | undefined,
    sendInitial: boolean,
    bookmarks: boolean,
  ): WatchStream {
    const initial: WatchEvent[] = [];
    let from = this.appliedIndex;
    if (fromRv !== undefined) {
      from = fromRv;
      if (fromRv < this.appliedIndex) {
        // A node agent resuming its pod watch: only its node's pods can match; skip the rest
        // cheaply (1,000 agents resuming after a failover each replay the history).
        const node = indexedNodeOf(filter);
        for (const c of this.hub.changesSince(fromRv)) {
          if (node !== undefined && !onNode(c, node)) continue;
          const e = filterChange(filter, c);
          if (e) initial.push(e);
        }
      }
    } else if (sendInitial) {
      for (const obj of this.list({
        kind: filter.kind,
        namespace: filter.namespace,
        labels: filter.labels,
        fields: filter.fields,
        limit: 0,
      }).items) {
        if (filter.name === undefined || obj.metadata.name === filter.name)
          initial.push({ type: 'ADDED', object: obj });
      }
      if (bookmarks) {
        initial.push({
          type: 'BOOKMARK',
          object: { kind: filter.kind, metadata: { resourceVersion: String(from) } } as unknown as ApiObject,
        });
      }
    }
    return this.hub.watch(filter, from, initial, bookmarks);
  }

  close(): void {
    this.hub.close();
    for (const w of this.appliedWaiters) {
      clearTimeout(w.timer);
      w.reject(new ApiError(ApiErrorCode.Unavailable, 'master shutting down', { retryAfterMs: 100 }));
    }
    this.appliedWaiters = [];
  }
}

/** Whether the change's pod was or is on `node` (`""`: unbound). */
function onNode(c: ChangeEvent, node: string): boolean {
  const now = c.object.kind === 'Pod' ? (c.object.spec?.nodeName ?? '') : undefined;
  const before = c.prev?.kind === 'Pod' ? (c.prev.spec?.nodeName ?? '') : undefined;
  return now === node || before === node;
}

/** The node a pod list selects with `spec.nodeName=<node>` (its candidates are that node's pods). */
function selectedNode(q: ListQuery): string | undefined {
  if (q.kind !== 'Pod' || q.fields === undefined) return undefined;
  for (const r of q.fields.requirements) if (r.field === 'spec.nodeName' && r.op === '=') return r.value;
  return undefined;
}

/** Plain msgpack maps (no records): separately packed objects concatenate into one array. */
const snapshotPackr = new Packr({ useRecords: false });

/** Bytes of the buffers a snapshot's objects are packed into, one after another. */
const snapshotChunkBytes = 1024 * 1024;

/**
 * `{ v: 1, applied, objects, members }` as one msgpack map that `unpack` reads back, built
 * from the objects packed one by one in time slices, into buffers of `snapshotChunkBytes`.
 * No object's encoding is kept between snapshots: a cache of them (one buffer per object,
 * weakly keyed) allocated ~150,000 buffers at once for a first snapshot at 30,000 pods, and
 * kept a second copy of the state; at that index all three masters were held up for most of a
 * second, mostly collecting. Encoding every object again costs ~0.35 s per 120,000, in slices.
 */
async function encodeSnapshot(
  applied: number,
  objects: readonly ApiObject[],
  members: readonly MemberRecord[],
  sliceMs: number,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let chunk = new Uint8Array(snapshotChunkBytes);
  let used = 0;
  const put = (b: Uint8Array) => {
    if (b.byteLength > chunk.byteLength - used) {
      if (used > 0) parts.push(chunk.subarray(0, used));
      chunk = new Uint8Array(Math.max(snapshotChunkBytes, b.byteLength));
      used = 0;
    }
    chunk.set(b, used);
    used += b.byteLength;
  };
  put(Uint8Array.of(0x84)); // a map of 4 entries
  put(snapshotPackr.pack('v'));
  put(snapshotPackr.pack(1));
  put(snapshotPackr.pack('applied'));
  put(snapshotPackr.pack(applied));
  put(snapshotPackr.pack('members'));
  put(snapshotPackr.pack(members));
  put(snapshotPackr.pack('objects'));
  const header = new Uint8Array(5); // array32: 0xdd, length big-endian
  header[0] = 0xdd;
  new DataView(header.buffer).setUint32(1, objects.length);
  put(header);
  let sliceStart = performance.now();
  for (const obj of objects) {
    // `pack` returns a view of msgpackr's own buffer, valid until its next call: copied at once.
    put(snapshotPackr.pack(obj));
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  if (used > 0) parts.push(chunk.subarray(0, used));
  return concatSliced(parts, sliceMs);
}

/** `parts` joined, copying for at most about `sliceMs` per event-loop turn (a state of 100+ MB took 0.5 s in one go). */
async function concatSliced(parts: readonly Uint8Array[], sliceMs: number): Promise<Uint8Array> {
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  let sliceStart = performance.now();
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  return out;
}

function lowerBound(a: string[], x: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(a: string[], x: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Commands (what one Raft log entry asks for) and the deterministic rules that apply them.
 *
 * A command carries every nondeterministic value (uid, timestamps, generated names) chosen by
 * the proposer, and a precondition. `applyCommand` reads no clock and no randomness: on every
 * replica, for the same current object and command, it gives the same outcome, so replicas
 * never diverge. `metadata.resourceVersion` of a written object is the index of its entry.
 */

import { deepEqual } from './deep-equal.js';
import { namespaceFinalizers } from './namespaces.js';
import type { ApiObject, Namespace, ObjectMeta } from './objects.js';
import { validateUpdate } from './update-rules.js';
import { formatFieldError } from './validation.js';

export { deepEqual } from './deep-equal.js';

/** Must hold for a write to apply; a failed precondition is a Conflict. */
export interface Precondition {
  uid?: string;
  resourceVersion?: string;
}

export interface CommandKey {
  kind: string;
  /** '' for cluster-scoped kinds. */
  namespace: string;
  name: string;
}

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

export type Command =
  /** A fully formed object (name, uid, creationTimestamp chosen by the proposer); must not exist. */
  | { op: 'create'; object: ApiObject }
  /** Replaces metadata and spec; status, uid, creationTimestamp and deletion marks are kept. */
  | { op: 'update'; object: ApiObject; precondition?: Precondition }
  /**
   * Replaces status only: of `object`, only its kind, name, namespace and status are read. The
   * proposer sends just those ({@link statusUpdateCommand}); records written before carry the
   * whole object, which applies the same.
   */
  | { op: 'updateStatus'; object: ApiObject; precondition?: Precondition }
  | {
      op: 'delete';
      key: CommandKey;
      precondition?: Precondition;
      propagationPolicy?: PropagationPolicy;
      /** Pods bound to a node: seconds the node has to stop them; 0 removes at once. */
      gracePeriodSeconds?: number;
      /** The proposer's clock, RFC 3339: becomes `deletionTimestamp` when the object is only marked. */
      now: string;
    }
  /**
   * Binds a pod to a node (the scheduler's decision): applies only while the pod with `uid`
   * exists, is not being deleted and is not bound yet, so a stale decision is rejected. As
   * Kubernetes' Binding, it may carry annotations for the pod (`annotations` set, `removeAnnotations` dropped).
   */
  | {
      op: 'bind';
      key: CommandKey;
      uid: string;
      nodeName: string;
      now: string;
      annotations?: Record<string, string>;
      removeAnnotations?: string[];
    };

export type CommandOp = Command['op'];

/** Finalizers the API itself puts on objects deleted with these propagation policies. */
export const FinalizerForeground = 'foregroundDeletion';
export const FinalizerOrphan = 'orphan';

export type RejectCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Invalid';

export type ApplyOutcome =
  /** `prev` is the object before (absent for ADDED); `object` after (the last state for DELETED). */
  | { result: 'written'; event: 'ADDED' | 'MODIFIED' | 'DELETED'; object: ApiObject; prev?: ApiObject }
  /** A write that changes nothing: no new version, no event. */
  | { result: 'unchanged'; object: ApiObject }
  | { result: 'rejected'; code: RejectCode; message: string; fieldPath?: string };

/** The key of an object: `kind/namespace/name` (namespace '' when cluster-scoped). */
export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export function keyOfObject(obj: ApiObject): string {
  return objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name ?? '');
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const optionalString = (v: unknown) => v === undefined || typeof v === 'string';

/**
 * Why `cmd`, as decoded from a log entry, is not a command {@link applyCommand} can take (a
 * one-line reason), or undefined. Admission only lets well-formed commands through, but the
 * apply loop checks again: an entry it cannot read must be rejected on every master alike,
 * never crash them all.
 */
export function malformedCommand(cmd: unknown): string | undefined {
  if (!isPlainRecord(cmd)) return 'not an object';
  switch (cmd.op) {
    case 'create':
    case 'update':
    case 'updateStatus': {
      const obj = cmd.object;
      if (!isPlainRecord(obj)) return `${cmd.op}: object is not an object`;
      if (typeof obj.kind !== 'string') return `${cmd.op}: object.kind is not a string`;
      const m = obj.metadata;
      if (!isPlainRecord(m)) return `${cmd.op}: object.metadata is not an object`;
      if (!optionalString(m.name) || !optionalString(m.namespace))
        return `${cmd.op}: metadata.name or metadata.namespace is not a string`;
      return undefined;
    }
    case 'delete':
    case 'bind': {
      const k = cmd.key;
      if (!isPlainRecord(k)) return `${cmd.op}: key is not an object`;
      if (typeof k.kind !== 'string' || typeof k.name !== 'string' || !optionalString(k.namespace))
        return `${cmd.op}: key.kind, key.name or key.namespace is not a string`;
      return undefined;
    }
    default:
      return `unknown op ${JSON.stringify(String(cmd.op)).slice(0, 40)}`;
  }
}

/**
 * The `updateStatus` command of `obj`: its identity and status only. A pod's status write
 * carries its whole spec, which every master would decode from the log and then drop (half of
 * a bench pod's record).
 */
export function statusUpdateCommand(obj: ApiObject, precondition: Precondition | undefined): Command {
  const m = obj.metadata;
  const metadata: ObjectMeta = { name: m.name };
  if (m.namespace !== undefined) metadata.namespace = m.namespace;
  const object = { apiVersion: obj.apiVersion, kind: obj.kind, metadata } as ApiObject;
  const status = (obj as { status?: unknown }).status;
  if (status !== undefined) (object as { status?: unknown }).status = status;
  return precondition === undefined
    ? { op: 'updateStatus', object }
    : { op: 'updateStatus', object, precondition };
}

export function commandKey(cmd: Command): CommandKey {
  if (cmd.op === 'delete' || cmd.op === 'bind') return cmd.key;
  const m = cmd.object.metadata;
  return { kind: cmd.object.kind, namespace: m.namespace ?? '', name: m.name ?? '' };
}

/** How users name an object in messages: `pods "web-1"`, `namespaces "prod"`. */
export function describeKey(key: CommandKey): string {
  const plural = `${key.kind.toLowerCase()}${key.kind.endsWith('s') ? 'es' : 's'}`;
  // JSON quoting keeps the message one line whatever the client sent as a name.
  const where = key.namespace ? ` in namespace ${JSON.stringify(key.namespace)}` : '';
  return `${plural} ${JSON.stringify(key.name)}${where}`;
}

/**
 * Applies `cmd` to `current` (the object at the command's key, if any) as entry `index`.
 * Pure and deterministic; never throws for any command a proposer can build.
 */
export function applyCommand(current: ApiObject | undefined, cmd: Command, index: number): ApplyOutcome {
  switch (cmd.op) {
    case 'create':
      return applyCreate(current, cmd.object, index);
    case 'update':
      return applyUpdate(current, cmd.object, cmd.precondition, index);
    case 'updateStatus':
      return applyUpdateStatus(current, cmd.object, cmd.precondition, index);
    case 'delete':
      return applyDelete(current, cmd, index);
    case 'bind':
      return applyBind(current, cmd, index);
    default: {
      const unknown: never = cmd;
      throw new Error(`unhandled command ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * {@link applyCommand} for the apply loop: a command it throws on (one no admission lets
 * through, read from the log) is rejected as Invalid instead. Every master reads the same
 * entry and rejects it alike, where a throw would stop every master's apply.
 */
export function applyCommandSafely(
  current: ApiObject | undefined,
  cmd: Command,
  index: number,
): ApplyOutcome {
  try {
    return applyCommand(current, cmd, index);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 200);
    return reject('Invalid', `cannot apply ${String(cmd.op)} of ${describeKey(commandKey(cmd))}: ${why}`);
  }
}

function applyCreate(current: ApiObject | undefined, obj: ApiObject, index: number): ApplyOutcome {
  const key = keyOf(obj);
  if (current !== undefined) return reject('AlreadyExists', `${describeKey(key)} already exists`);
  const metadata: ObjectMeta = { ...obj.metadata, resourceVersion: String(index), generation: 1 };
  delete metadata.deletionTimestamp;
  delete metadata.deletionGracePeriodSeconds;
  return { result: 'written', event: 'ADDED', object: { ...obj, metadata } as ApiObject };
}

function applyUpdate(
  current: ApiObject | undefined,
  request: ApiObject,
  pre: Precondition | undefined,
  index: number,
): ApplyOutcome {
  const key = keyOf(request);
  if (current === undefined) return reject('NotFound', `${describeKey(key)} not found`);
  const conflict = checkPrecondition(key, current, pre);
  if (conflict) return conflict;
  const cur = current.metadata;
  const obj = keepNamespaceFinalizers(request, current);
  const newFinalizers = pendingFinalizers(obj).filter((f) => !pendingFinalizers(current).includes(f));
  if (cur.deletionTimestamp !== undefined && newFinalizers.length > 0) {
    const field = (obj.metadata.finalizers ?? []).includes(newFinalizers[0])
      ? 'metadata.finalizers'
      : 'spec.finalizers';
    return reject(
      'Invalid',
      `${describeKey(key)}: ${field}: no new finalizers can be added while the object is being deleted`,
      field,
    );
  }
  const metadata: ObjectMeta = {
    ...obj.metadata,
    name: cur.name,
    namespace: cur.namespace,
    uid: cur.uid,
    creationTimestamp: cur.creationTimestamp,
    generation: cur.generation,
    resourceVersion: cur.resourceVersion,
  };
  if (cur.generateName !== undefined) metadata.generateName = cur.generateName;
  else delete metadata.generateName;
  setOrDelete(metadata, 'deletionTimestamp', cur.deletionTimestamp);
  setOrDelete(metadata, 'deletionGracePeriodSeconds', cur.deletionGracePeriodSeconds);
  const next = withStatusOf({ ...obj, metadata } as ApiObject, current);
  if (deepEqual(next, current)) return { result: 'unchanged', object: current };
  const forbidden = validateUpdate(current, next);
  if (forbidden.length > 0) {
    return reject('Invalid', `${describeKey(key)}: ${formatFieldError(forbidden[0])}`, forbidden[0].path);
  }
  if (!deepEqual(specOf(next), specOf(current))) metadata.generation = (cur.generation ?? 1) + 1;
  metadata.resourceVersion = String(index);
  // Deleted once the last finalizer goes, unless it is in its grace period: a terminating pod
  // stays until its node (or, for an unreachable node, the pod garbage collector) deletes it
  // with grace 0, as Kubernetes does.
  const finalizersGone = pendingFinalizers(next).length === 0 && (cur.deletionGracePeriodSeconds ?? 0) === 0;
  if (metadata.deletionTimestamp !== undefined && finalizersGone) {
    return { result: 'written', event: 'DELETED', object: next, prev: current };
  }
  return { result: 'written', event: 'MODIFIED', object: next, prev: current };
}

function applyUpdateStatus(
  current: ApiObject | undefined,
  obj: ApiObject,
  pre: Precondition | undefined,
  index: number,
): ApplyOutcome {
  const key = keyOf(obj);
  if (current === undefined) return reject('NotFound', `${describeKey(key)} not found`);
  const conflict = checkPrecondition(key, current, pre);
  if (conflict) return conflict;
  const status = (obj as { status?: unknown }).status;
  if (deepEqual(status, (current as { status?: unknown }).status))
    return { result: 'unchanged', object: current };
  const next = { ...current, metadata: { ...current.metadata, resourceVersion: String(index) } } as Record<
    string,
    unknown
  >;
  if (status === undefined) delete next.status;
  else next.status = status;
  return { result: 'written', event: 'MODIFIED', object: next as unknown as ApiObject, prev: current };
}

function applyDelete(
  current: ApiObject | undefined,
  cmd: Extract<Command, { op: 'delete' }>,
  index: number,
): ApplyOutcome {
  if (current === undefined) return reject('NotFound', `${describeKey(cmd.key)} not found`);
  const conflict = checkPrecondition(cmd.key, current, cmd.precondition);
  if (conflict) return conflict;
  const cur = current.metadata;
  const finalizers = [...(cur.finalizers ?? [])];
  const policy = cmd.propagationPolicy ?? 'Background';
  const marker =
    policy === 'Foreground' ? FinalizerForeground : policy === 'Orphan' ? FinalizerOrphan : undefined;
  if (marker !== undefined && !finalizers.includes(marker)) finalizers.push(marker);
  const grace = podGraceSeconds(current, cmd.gracePeriodSeconds);
  if (cur.deletionTimestamp !== undefined) {
    // Already being deleted: only a shorter grace period (or a force delete) changes anything.
    const shorter = grace !== undefined && grace < (cur.deletionGracePeriodSeconds ?? 0);
    if (!shorter) return { result: 'unchanged', object: current };
    if (grace === 0 && pendingFinalizers(current).length === 0) return deleted(current, index);
    return marked(current, { ...cur, deletionGracePeriodSeconds: grace }, index);
  }
  const specFinalizers = current.kind === 'Namespace' ? (current.spec?.finalizers ?? []) : [];
  if (finalizers.length === 0 && specFinalizers.length === 0 && (grace === undefined || grace === 0))
    return deleted(current, index);
  const metadata: ObjectMeta = {
    ...cur,
    finalizers: finalizers.length > 0 ? finalizers : undefined,
    deletionTimestamp: cmd.now,
    deletionGracePeriodSeconds: grace ?? 0,
  };
  if (metadata.finalizers === undefined) delete metadata.finalizers;
  return marked(current, metadata, index);
}

function applyBind(
  current: ApiObject | undefined,
  cmd: Extract<Command, { op: 'bind' }>,
  index: number,
): ApplyOutcome {
  if (current === undefined || current.kind !== 'Pod')
    return reject('NotFound', `${describeKey(cmd.key)} not found`);
  const conflict = checkPrecondition(cmd.key, current, { uid: cmd.uid });
  if (conflict) return conflict;
  if (current.metadata.deletionTimestamp !== undefined) {
    return reject('Conflict', `${describeKey(cmd.key)}: is being deleted; not binding it`);
  }
  if (current.spec.nodeName) {
    return reject(
      'Conflict',
      `${describeKey(cmd.key)}: is already bound to node ${JSON.stringify(current.spec.nodeName)}`,
    );
  }
  const conditions = (current.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled');
  conditions.push({ type: 'PodScheduled', status: 'True', lastTransitionTime: cmd.now });
  const metadata: ObjectMeta = {
    ...current.metadata,
    resourceVersion: String(index),
    generation: (current.metadata.generation ?? 1) + 1,
  };
  if (cmd.annotations !== undefined || cmd.removeAnnotations !== undefined) {
    const annotations = { ...current.metadata.annotations, ...cmd.annotations };
    for (const k of cmd.removeAnnotations ?? []) delete annotations[k];
    if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
    else delete metadata.annotations;
  }
  const object: ApiObject = {
    ...current,
    metadata,
    spec: { ...current.spec, nodeName: cmd.nodeName },
    status: { ...current.status, conditions },
  };
  return { result: 'written', event: 'MODIFIED', object, prev: current };
}

/** Pods bound to a node are stopped by their node first: they get a grace period. */
function podGraceSeconds(obj: ApiObject, requested: number | undefined): number | undefined {
  if (obj.kind !== 'Pod' || !obj.spec.nodeName) return undefined;
  if (requested !== undefined) return Math.max(0, requested);
  return obj.spec.terminationGracePeriodSeconds ?? 30;
}

function marked(current: ApiObject, metadata: ObjectMeta, index: number): ApplyOutcome {
  const next = { ...current, metadata: { ...metadata, resourceVersion: String(index) } } as ApiObject;
  if (next.kind === 'Namespace') next.status = { ...next.status, phase: 'Terminating' };
  return { result: 'written', event: 'MODIFIED', object: next, prev: current };
}

function deleted(current: ApiObject, index: number): ApplyOutcome {
  const object = {
    ...current,
    metadata: { ...current.metadata, resourceVersion: String(index) },
  } as ApiObject;
  return { result: 'written', event: 'DELETED', object, prev: current };
}

/**
 * What keeps a deleted object: its `metadata.finalizers`, and for a namespace also its
 * `spec.finalizers` (the `kubernetes` finalizer of the namespace controller, and others).
 */
function pendingFinalizers(obj: ApiObject): string[] {
  return obj.kind === 'Namespace' ? namespaceFinalizers(obj) : (obj.metadata.finalizers ?? []);
}

/**
 * A namespace update that does not mention `spec.finalizers` keeps them (they belong to the
 * system, as Kubernetes' PrepareForUpdate keeps them); an explicit list replaces them, so a
 * finalizer can be added and removed (`[]` removes all).
 */
function keepNamespaceFinalizers(obj: ApiObject, current: ApiObject): ApiObject {
  if (obj.kind !== 'Namespace' || current.kind !== 'Namespace') return obj;
  const kept = current.spec?.finalizers;
  if (obj.spec?.finalizers !== undefined || kept === undefined) return obj;
  return { ...obj, spec: { ...obj.spec, finalizers: kept } } as Namespace;
}

function checkPrecondition(
  key: CommandKey,
  current: ApiObject,
  pre: Precondition | undefined,
): ApplyOutcome | undefined {
  if (pre === undefined) return undefined;
  if (pre.uid !== undefined && pre.uid !== current.metadata.uid) {
    return reject(
      'Conflict',
      `${describeKey(key)}: precondition failed: uid is ${current.metadata.uid}, not ${pre.uid}`,
    );
  }
  if (pre.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) {
    return reject(
      'Conflict',
      `${describeKey(key)}: the object has been modified (resourceVersion ${current.metadata.resourceVersion}, not ${pre.resourceVersion}); read it again and retry`,
    );
  }
  return undefined;
}

function keyOf(obj: ApiObject): CommandKey {
  return { kind: obj.kind, namespace: obj.metadata.namespace ?? '', name: obj.metadata.name ?? '' };
}

/** A command's rejection (also the apply loop's, for a log entry it cannot read). */
export function reject(code: RejectCode, message: string, fieldPath?: string): ApplyOutcome {
  return fieldPath === undefined
    ? { result: 'rejected', code, message }
    : { result: 'rejected', code, message, fieldPath };
}

function setOrDelete<K extends keyof ObjectMeta>(m: ObjectMeta, k: K, v: ObjectMeta[K] | undefined): void {
  if (v === undefined) delete m[k];
  else m[k] = v;
}

function withStatusOf(obj: ApiObject, current: ApiObject): ApiObject {
  const out = { ...obj } as Record<string, unknown>;
  const status = (current as { status?: unknown }).status;
  if (status === undefined) delete out.status;
  else out.status = status;
  return out as unknown as ApiObject;
}

/** Everything but metadata and status: what a change of bumps `generation`. */
function specOf(obj: ApiObject): Record<string, unknown> {
  const { metadata: _m, status: _s, ...rest } = obj as unknown as Record<string, unknown>;
  return rest;
}

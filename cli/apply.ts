/**
 * `cox apply`: create each object, or update it when it exists, with kubectl's outcome words.
 *
 * Update semantics are kubectl's three-way merge, with JSON merge patch rules: the manifest
 * applied last is kept in the annotation `coxswain.io/last-applied-configuration`; an update
 * removes the fields that manifest had and the new one dropped, sets every field the new one
 * gives (objects merge, arrays replace), and leaves everything else as it is on the server
 * (fields set by controllers, the scheduler or defaults: `spec.nodeName`, `status`, ...).
 * It is written with the current resourceVersion as precondition; a Conflict (someone wrote
 * in between) re-reads and retries, at most `conflictRetriesMax` times. An object whose every
 * manifest field already holds, applied from the same manifest, is `unchanged` and not written.
 */

import { ApiErrorCode, isApiError, type ObjectApi, type ObjectKey } from '../actors/api.js';
import { applyMergePatch, createMergePatch, isKnownKind, kindInfo } from '../core/index.js';
import { UsageError } from './errors.js';

type Obj = Record<string, unknown>;

export const applyLimits = {
  /** Re-reads after a Conflict before apply gives up on one object. */
  conflictRetriesMax: 5,
};

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

export interface ApplyOptions {
  /** `-n`: the namespace of objects that name none; one that names another is an error. */
  namespace?: string;
  dryRun?: boolean;
}

function isRecord(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isNamespaced(kind: string): boolean {
  return isKnownKind(kind) ? kindInfo[kind].namespaced : true;
}

/** The manifest with its namespace settled (namespaced kinds only). */
export function withNamespace(manifest: Obj, namespace: string | undefined): Obj {
  const kind = String(manifest.kind);
  const meta = isRecord(manifest.metadata) ? manifest.metadata : {};
  if (!isNamespaced(kind)) return manifest;
  const own = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
  if (own !== undefined && namespace !== undefined && own !== namespace) {
    throw new UsageError(
      `${kind.toLowerCase()}/${String(meta.name)}: metadata.namespace: "${own}" does not match --namespace "${namespace}"`,
    );
  }
  return { ...manifest, metadata: { ...meta, namespace: own ?? namespace ?? 'default' } };
}

/**
 * Whether every field given in `want` holds in `have` (objects: each key recursively; arrays:
 * same length and each element; scalars: equal). Fields only in `have` (defaults, status,
 * system metadata) do not matter.
 */
export function isSubset(want: unknown, have: unknown): boolean {
  if (Array.isArray(want)) {
    return Array.isArray(have) && want.length === have.length && want.every((w, i) => isSubset(w, have[i]));
  }
  if (isRecord(want)) {
    return isRecord(have) && Object.entries(want).every(([k, v]) => v === undefined || isSubset(v, have[k]));
  }
  return want === have;
}

/** Where the manifest applied last is kept (as kubectl's `kubectl.kubernetes.io/last-applied-configuration`). */
export const lastAppliedAnnotation = 'coxswain.io/last-applied-configuration';

/** The configuration a manifest stands for: without status and without the annotation itself. */
function configOf(manifest: Obj): Obj {
  const { status: _status, ...config } = manifest;
  const meta = isRecord(config.metadata) ? { ...config.metadata } : {};
  if (isRecord(meta.annotations)) {
    const { [lastAppliedAnnotation]: _last, ...rest } = meta.annotations;
    if (Object.keys(rest).length > 0) meta.annotations = rest;
    else delete meta.annotations;
  }
  return { ...config, metadata: meta };
}

/** The manifest to send on create: its configuration, recorded as the last applied. */
export function withLastApplied(manifest: Obj): Obj {
  const config = configOf(manifest);
  const meta = config.metadata as Obj;
  const annotations = isRecord(meta.annotations) ? meta.annotations : {};
  return {
    ...config,
    metadata: { ...meta, annotations: { ...annotations, [lastAppliedAnnotation]: JSON.stringify(config) } },
  };
}

function lastApplied(current: Obj): Obj {
  const meta = isRecord(current.metadata) ? current.metadata : {};
  const text = isRecord(meta.annotations) ? meta.annotations[lastAppliedAnnotation] : undefined;
  if (typeof text !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** Only the removals (nulls) of a merge patch. */
function removalsOf(patch: unknown): Obj {
  const out: Obj = {};
  if (!isRecord(patch)) return out;
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out[k] = null;
    else if (isRecord(v)) {
      const inner = removalsOf(v);
      if (Object.keys(inner).length > 0) out[k] = inner;
    }
  }
  return out;
}

/** Whether applying `manifest` over `current` would change nothing. */
export function isUnchanged(manifest: Obj, current: Obj): boolean {
  const config = configOf(manifest);
  return (
    isSubset(config, current) &&
    Object.keys(removalsOf(createMergePatch(lastApplied(current), config))).length === 0
  );
}

/**
 * The object `update` receives: the current object with the fields the last manifest had and
 * this one dropped removed, this manifest's fields merged in, the new last-applied annotation,
 * and the current version as the precondition.
 */
export function desiredUpdate(manifest: Obj, current: Obj): Obj {
  const config = configOf(manifest);
  const removed = removalsOf(createMergePatch(lastApplied(current), config));
  const merged = applyMergePatch(applyMergePatch(current, removed), config) as Obj;
  const { status: _status, ...rest } = merged;
  const meta = isRecord(rest.metadata) ? rest.metadata : {};
  const annotations = isRecord(meta.annotations) ? meta.annotations : {};
  const cur = isRecord(current.metadata) ? current.metadata : {};
  return {
    ...rest,
    metadata: {
      ...meta,
      annotations: { ...annotations, [lastAppliedAnnotation]: JSON.stringify(config) },
      resourceVersion: cur.resourceVersion,
    },
  };
}

export function keyOf(obj: Obj): ObjectKey {
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const key: ObjectKey = { kind: String(obj.kind), name: String(meta.name ?? '') };
  if (typeof meta.namespace === 'string') key.namespace = meta.namespace;
  return key;
}

/** Applies one manifest object (namespace already settled). */
export async function applyObject(
  api: ObjectApi,
  manifest: Obj,
  opts: ApplyOptions = {},
): Promise<{ outcome: ApplyOutcome; object: Obj }> {
  const write = opts.dryRun ? { dryRun: true } : undefined;
  const meta = isRecord(manifest.metadata) ? manifest.metadata : {};
  if (typeof meta.name !== 'string' || meta.name === '') {
    return {
      outcome: 'created',
      object: (await api.create(withLastApplied(manifest), write)) as unknown as Obj,
    };
  }
  const key = keyOf(manifest);
  let lastConflict: unknown;
  for (let attempt = 0; attempt <= applyLimits.conflictRetriesMax; attempt++) {
    let current: Obj;
    try {
      current = (await api.get(key)) as unknown as Obj;
    } catch (err) {
      if (!isApiError(err) || err.code !== ApiErrorCode.NotFound) throw err;
      try {
        return {
          outcome: 'created',
          object: (await api.create(withLastApplied(manifest), write)) as unknown as Obj,
        };
      } catch (createErr) {
        // Created by someone else in between: read it and update.
        if (isApiError(createErr) && createErr.code === ApiErrorCode.AlreadyExists) continue;
        throw createErr;
      }
    }
    if (isUnchanged(manifest, current)) return { outcome: 'unchanged', object: current };
    try {
      return {
        outcome: 'configured',
        object: (await api.update(desiredUpdate(manifest, current), write)) as unknown as Obj,
      };
    } catch (err) {
      if (!isApiError(err) || err.code !== ApiErrorCode.Conflict) throw err;
      lastConflict = err;
    }
  }
  throw lastConflict;
}

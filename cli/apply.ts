/**
 * `cox apply`: create each object, or update it when it exists, with kubectl's outcome words.
 *
 * Update semantics: read the current object, then write the manifest's top-level fields
 * (spec, data, ...) with metadata merged over the current metadata (system fields such as uid
 * and creationTimestamp kept) and the current resourceVersion as the precondition; a Conflict
 * (someone wrote in between) re-reads and retries, at most `conflictRetriesMax` times. An
 * object whose every manifest field already holds is `unchanged` and not written.
 */

import { ApiErrorCode, isApiError, type ObjectApi, type ObjectKey } from '../actors/api.js';
import { isKnownKind, kindInfo } from '../core/index.js';
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

/** The object `update` receives: the manifest's fields, metadata merged, current version as precondition. */
export function desiredUpdate(manifest: Obj, current: Obj): Obj {
  const { metadata, status: _status, ...rest } = manifest;
  const cur = isRecord(current.metadata) ? current.metadata : {};
  const mine = isRecord(metadata) ? metadata : {};
  return { ...rest, metadata: { ...cur, ...mine, resourceVersion: cur.resourceVersion } };
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
    return { outcome: 'created', object: (await api.create(manifest, write)) as unknown as Obj };
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
        return { outcome: 'created', object: (await api.create(manifest, write)) as unknown as Obj };
      } catch (createErr) {
        // Created by someone else in between: read it and update.
        if (isApiError(createErr) && createErr.code === ApiErrorCode.AlreadyExists) continue;
        throw createErr;
      }
    }
    if (isSubset(manifest, current)) return { outcome: 'unchanged', object: current };
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

/**
 * JSON merge patch (RFC 7386), as Kubernetes' `application/merge-patch+json`.
 *
 * An object patch merges into the target member by member: `null` deletes a member, an
 * object recurses, anything else (arrays included) replaces. A non-object patch replaces the
 * whole target. Functions here never modify their inputs, and results share no object or
 * array with them, so a result may be changed freely (e.g. after reading from a read-only cache).
 */

import { CoreError } from './errors.js';

/** Deepest nesting of objects and arrays accepted in a target or patch (bounds recursion). */
export const mergePatchDepthMax = 100;

/** A patch or target too deeply nested to process. */
export class MergePatchError extends CoreError {
  constructor(reason: string) {
    super('INVALID_PATCH', `merge patch: ${reason}`);
  }
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Defines an own data property; plain assignment of `__proto__` would set the prototype instead. */
function put(obj: Json, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function tooDeep(depth: number): void {
  if (depth > mergePatchDepthMax)
    throw new MergePatchError(`nested deeper than ${mergePatchDepthMax} levels`);
}

/** A deep copy of a JSON value (own enumerable members only). */
function copy(value: unknown, depth: number): unknown {
  if (Array.isArray(value)) {
    tooDeep(depth);
    return value.map((item) => copy(item, depth + 1));
  }
  if (!isRecord(value)) return value;
  tooDeep(depth);
  const out: Json = {};
  for (const key of Object.keys(value)) put(out, key, copy(value[key], depth + 1));
  return out;
}

/** `target` with `patch` applied per RFC 7386. Throws `MergePatchError` past `mergePatchDepthMax`. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  return merge(target, patch, 0);
}

/** Builds the result fresh, keeping the target's member order and then adding new members. */
function merge(target: unknown, patch: unknown, depth: number): unknown {
  if (!isRecord(patch)) return copy(patch, depth);
  tooDeep(depth);
  const base = isRecord(target) ? target : {};
  const out: Json = {};
  for (const key of Object.keys(base)) {
    if (!Object.hasOwn(patch, key)) put(out, key, copy(base[key], depth + 1));
    else if (patch[key] !== null) put(out, key, merge(base[key], patch[key], depth + 1));
  }
  for (const key of Object.keys(patch)) {
    if (!Object.hasOwn(base, key) && patch[key] !== null)
      put(out, key, merge(undefined, patch[key], depth + 1));
  }
  return out;
}

/**
 * A merge patch that turns `from` into `to`: `applyMergePatch(from, createMergePatch(from, to))`
 * deep-equals `to` whenever `to` holds no `null` inside an object (merge patches cannot set a
 * member to null).
 */
export function createMergePatch(from: unknown, to: unknown): unknown {
  return diff(from, to, 0);
}

function diff(from: unknown, to: unknown, depth: number): unknown {
  if (!isRecord(from) || !isRecord(to)) return copy(to, depth);
  tooDeep(depth);
  const patch: Json = {};
  for (const key of Object.keys(from)) {
    if (!Object.hasOwn(to, key)) put(patch, key, null);
  }
  for (const key of Object.keys(to)) {
    const next = to[key];
    if (!Object.hasOwn(from, key)) {
      put(patch, key, copy(next, depth + 1));
    } else if (!jsonEqual(from[key], next, depth + 1)) {
      put(patch, key, diff(from[key], next, depth + 1));
    }
  }
  return patch;
}

/** Structural equality of JSON values; object member order does not matter. */
function jsonEqual(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  tooDeep(depth);
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((x, i) => jsonEqual(x, b[i], depth + 1))
    );
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key], depth + 1))
  );
}

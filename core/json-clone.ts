/** Deep copies of JSON values. */

/**
 * A deep copy of a JSON value (objects, arrays, strings, numbers, booleans, null): own
 * enumerable members, `undefined` members kept as such. About seven times as fast as
 * `structuredClone` on an API object, which serializes through V8's value serializer; every
 * write's admission copies its object once (applyDefaults).
 */
export function cloneJson<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i += 1) out[i] = cloneJson(value[i]);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    const v = cloneJson((value as Record<string, unknown>)[k]);
    // Assigning `__proto__` would set the copy's prototype (an array's, say: msgpackr then
    // encodes the object as an array); JSON.parse makes it an own member, and so does this.
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out as T;
}

/** `String.prototype.isWellFormed` and `toWellFormed` (ES2024; Node 20 has them, lib ES2022 does not). */
interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

function wellFormed(s: string): string {
  const w = s as unknown as WellFormedString;
  return w.isWellFormed() ? s : w.toWellFormed();
}

/** A member name that cannot be stored: the log's codec (msgpackr) decodes `__proto__` as `__proto_`. */
const unsupportedMemberName = '__proto__';

/**
 * Most levels of objects and arrays `canonicalJson` copies, the value itself counting as one
 * (a merge patch has the same bound, `mergePatchDepthMax`). Deeper input would exhaust the
 * stack of a recursive copy, validation or codec.
 */
export const jsonDepthMax = 100;

/**
 * {@link canonicalJson} met what cannot be stored: a `__proto__` member, or nesting deeper than
 * {@link jsonDepthMax}. `path` names the field (`data.__proto__`, `spec.items[1].x`); the
 * message is one line whatever the member names hold, with a path past 80 characters cut in
 * the middle.
 */
export class UnstorableJsonError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    const shown = JSON.stringify(path).slice(1, -1);
    super(`${shown.length > 80 ? `${shown.slice(0, 60)}…${shown.slice(-16)}` : shown}: ${problem}`);
    this.name = 'UnstorableJsonError';
  }
}

/**
 * A deep copy of a JSON value as the log's codec gives it back, so that what a leader applies
 * from the records it proposed equals what every other master decodes from their bytes:
 * strings and member names with lone surrogates get U+FFFD in their place (as Go's
 * encoding/json, and so Kubernetes, reads them), -0 becomes 0, and a function or symbol (never
 * in JSON) becomes undefined, as the codec drops or refuses them. A `__proto__` member (msgpackr
 * would silently rename it) or nesting deeper than {@link jsonDepthMax} throws
 * {@link UnstorableJsonError}. Otherwise as {@link cloneJson}; admission copies every object
 * written through the API with this.
 */
export function canonicalJson<T>(value: T): T {
  try {
    return canonical(value, 0);
  } catch (err) {
    if (err === unstorable) {
      const found = findUnstorable(value, 0, '');
      if (found !== undefined) throw new UnstorableJsonError(found.path, found.problem);
    }
    throw err;
  }
}

/** Thrown inside {@link canonical}; what and where are found again only then, off the fast path. */
const unstorable = new Error('unstorable JSON');

function canonical<T>(value: T, depth: number): T {
  if (typeof value === 'string') return wellFormed(value) as T;
  if (value === 0) return 0 as T;
  // Not JSON, from in-process callers only: the codec drops a function and throws on a symbol.
  if (typeof value === 'function' || typeof value === 'symbol') return undefined as T;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= jsonDepthMax) throw unstorable;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i += 1) out[i] = canonical(value[i], depth + 1);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    if (k === unsupportedMemberName) throw unstorable;
    out[wellFormed(k)] = canonical((value as Record<string, unknown>)[k], depth + 1);
  }
  return out as T;
}

/** The first thing {@link canonical} throws on, in the order it walks. */
function findUnstorable(
  value: unknown,
  depth: number,
  path: string,
): { path: string; problem: string } | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (depth >= jsonDepthMax) return { path, problem: `nested more than ${jsonDepthMax} levels deep` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = findUnstorable(value[i], depth + 1, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const k of Object.keys(value)) {
    const p = path === '' ? k : `${path}.${k}`;
    if (k === unsupportedMemberName)
      return { path: p, problem: `member name "${unsupportedMemberName}" is not supported` };
    const found = findUnstorable((value as Record<string, unknown>)[k], depth + 1, p);
    if (found !== undefined) return found;
  }
  return undefined;
}

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
  for (const k of Object.keys(value)) out[k] = cloneJson((value as Record<string, unknown>)[k]);
  return out as T;
}

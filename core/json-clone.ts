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

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoreError } from './errors.js';
import { applyMergePatch, createMergePatch, MergePatchError, mergePatchDepthMax } from './patch.js';

describe('applyMergePatch: RFC 7386 appendix A', () => {
  it.each<[unknown, unknown, unknown]>([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('%j + %j → %j', (target, patch, result) => {
    expect(applyMergePatch(target, patch)).toEqual(result);
  });

  it('section 3 example', () => {
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    expect(applyMergePatch(target, patch)).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });
});

describe('applyMergePatch', () => {
  it('keeps the target member order and appends new members', () => {
    const result = applyMergePatch({ a: 1, b: 2, c: 3 }, { d: 4, b: 5, a: null });
    expect(Object.keys(result as object)).toEqual(['b', 'c', 'd']);
  });

  it('keeps nulls inside arrays and treats a missing target as {}', () => {
    expect(applyMergePatch(undefined, { a: [null, { b: null }] })).toEqual({ a: [null, { b: null }] });
    expect(applyMergePatch('text', { a: 1 })).toEqual({ a: 1 });
  });

  it('sets __proto__ as a member, never the prototype', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const result = applyMergePatch({}, patch) as Record<string, unknown>;
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.hasOwn(result, '__proto__')).toBe(true);
    expect((result as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('bounds nesting depth with a typed error', () => {
    let deep: unknown = 1;
    for (let i = 0; i <= mergePatchDepthMax + 1; i++) deep = { a: deep };
    let thrown: unknown;
    try {
      applyMergePatch({}, deep);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(MergePatchError);
    expect(thrown).toBeInstanceOf(CoreError);
    expect((thrown as MergePatchError).code).toBe('INVALID_PATCH');
    expect(() => applyMergePatch(deep, {})).toThrow(MergePatchError);
    let shallow: unknown = 1;
    for (let i = 0; i < mergePatchDepthMax; i++) shallow = { a: shallow };
    expect(applyMergePatch({}, shallow)).toEqual(shallow);
  });
});

/** Every object and array inside `value`, itself included. */
function containers(value: unknown, out = new Set<object>()): Set<object> {
  if (typeof value === 'object' && value !== null) {
    out.add(value);
    for (const v of Object.values(value)) containers(v, out);
  }
  return out;
}

describe('properties', () => {
  const json = fc.jsonValue({ maxDepth: 4 });
  const object = fc.dictionary(fc.string({ maxLength: 3 }), json, { maxKeys: 5 });

  it('never mutates its inputs and shares no object or array with them', () => {
    fc.assert(
      fc.property(json, json, (target, patch) => {
        const targetBefore = structuredClone(target);
        const patchBefore = structuredClone(patch);
        const result = applyMergePatch(target, patch);
        expect(target).toEqual(targetBefore);
        expect(patch).toEqual(patchBefore);
        const inputs = new Set([...containers(target), ...containers(patch)]);
        for (const c of containers(result)) expect(inputs.has(c)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  /** JSON without null members in objects: what a merge patch can produce. */
  const withoutNullMembers = (value: unknown): unknown => {
    if (Array.isArray(value)) return value;
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, withoutNullMembers(v)]),
    );
  };

  it('applying createMergePatch(from, to) to from gives to', () => {
    fc.assert(
      fc.property(object, object, (from, rawTo) => {
        const to = withoutNullMembers(rawTo);
        expect(applyMergePatch(from, createMergePatch(from, to))).toEqual(to);
      }),
      { numRuns: 1000 },
    );
  });

  it('a patch is idempotent', () => {
    fc.assert(
      fc.property(json, json, (target, patch) => {
        const once = applyMergePatch(target, patch);
        expect(applyMergePatch(once, patch)).toEqual(once);
      }),
      { numRuns: 500 },
    );
  });

  it('createMergePatch of equal objects is empty', () => {
    fc.assert(
      fc.property(object, (obj) => {
        expect(createMergePatch(obj, structuredClone(obj))).toEqual({});
      }),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { canonicalJson, cloneJson, jsonDepthMax, UnstorableJsonError } from './json-clone.js';

describe('cloneJson', () => {
  it('copies a JSON value deeply: equal, sharing nothing', () => {
    const v = { a: [1, { b: 'x', c: null }], d: { e: true, f: undefined }, g: 2.5 };
    const c = cloneJson(v);
    expect(c).toStrictEqual(v);
    expect(c).not.toBe(v);
    expect(c.a).not.toBe(v.a);
    expect(c.a[1]).not.toBe(v.a[1]);
    expect(c.d).not.toBe(v.d);
    expect(Object.hasOwn(c.d, 'f')).toBe(true);
    (c.a[1] as { b: string }).b = 'changed';
    expect((v.a[1] as { b: string }).b).toBe('x');
  });

  it('copies a __proto__ member as a member, leaving the prototype alone', () => {
    const v = JSON.parse('{"__proto__": [1, 2], "length": 2, "a": {"__proto__": {"x": 1}}}');
    const c = cloneJson(v);
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
    expect(Object.hasOwn(c, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(c, '__proto__')?.value).toEqual([1, 2]);
    expect(Object.getPrototypeOf(c.a)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(c.a, '__proto__')?.value).toEqual({ x: 1 });
    expect(c).toStrictEqual(v);
  });

  it('returns scalars as they are', () => {
    expect(cloneJson('s')).toBe('s');
    expect(cloneJson(3)).toBe(3);
    expect(cloneJson(null)).toBeNull();
  });
});

describe('canonicalJson', () => {
  it('copies deeply, with lone surrogates replaced in values and member names, and -0 as 0', () => {
    const v = { a: ['x\ud800y', -0, 0, 1.5, { b: '\udc00' }], 'k\ud83d': 'ok 😀', n: null, u: undefined };
    const c = canonicalJson(v);
    expect(c).toStrictEqual({
      a: ['x\ufffdy', 0, 0, 1.5, { b: '\ufffd' }],
      'k\ufffd': 'ok 😀',
      n: null,
      u: undefined,
    });
    expect(Object.is(c.a[1], 0)).toBe(true);
    expect(c.a).not.toBe(v.a);
    expect(c.a[4]).not.toBe(v.a[4]);
    // Well-formed strings, surrogate pairs included, are the same strings.
    expect(c['k\ufffd' as 'k\ud83d']).toBe('ok 😀');
  });

  it('refuses a __proto__ member, naming where it is', () => {
    expect(() => canonicalJson(JSON.parse('{"__proto__": 1}'))).toThrow(
      new UnstorableJsonError('__proto__', 'member name "__proto__" is not supported'),
    );
    const deep = JSON.parse('{"data": {"k": "v"}, "spec": {"items": [{}, {"x": {"__proto__": []}}]}}');
    expect(() => canonicalJson(deep)).toThrow(
      'spec.items[1].x.__proto__: member name "__proto__" is not supported',
    );
    // The message stays one line whatever the names on the way hold.
    expect(() => canonicalJson(JSON.parse('{"a\\nb": {"__proto__": 1}}'))).toThrow(
      'a\\nb.__proto__: member name "__proto__" is not supported',
    );
    // A member named like it is fine.
    expect(canonicalJson({ __proto_: 1, constructor: 2 })).toStrictEqual({ __proto_: 1, constructor: 2 });
  });

  it(`copies ${jsonDepthMax} levels of nesting and refuses one more, naming where, without exhausting the stack`, () => {
    const nested = (levels: number): unknown => JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`);
    expect(canonicalJson({ x: nested(jsonDepthMax - 1) })).toEqual({ x: nested(jsonDepthMax - 1) });
    const err = (() => {
      try {
        canonicalJson({ a: 1, x: nested(jsonDepthMax) });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnstorableJsonError);
    expect((err as UnstorableJsonError).path).toBe(`x${'[0]'.repeat(jsonDepthMax - 1)}`);
    expect((err as UnstorableJsonError).problem).toBe(`nested more than ${jsonDepthMax} levels deep`);
    // The message cuts a long path in the middle: its first 60 characters and last 16.
    expect((err as Error).message).toBe(
      `x${'[0]'.repeat(19)}[0…]${'[0]'.repeat(5)}: nested more than ${jsonDepthMax} levels deep`,
    );
    // Far deeper than any stack would take recursively.
    expect(() => canonicalJson({ x: nested(200_000) })).toThrow(UnstorableJsonError);
  });

  it('drops functions and symbols, as the codec does, and copies a Date or Map as an empty object', () => {
    expect(canonicalJson({ f: () => 1, s: Symbol('s'), d: new Date(0), m: new Map([[1, 2]]) })).toStrictEqual(
      {
        f: undefined,
        s: undefined,
        d: {},
        m: {},
      },
    );
  });
});

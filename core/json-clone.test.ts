import { describe, expect, it } from 'vitest';
import { cloneJson } from './json-clone.js';

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

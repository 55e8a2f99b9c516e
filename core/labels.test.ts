import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkLabels,
  InvalidLabelError,
  type LabelSelector,
  LabelSelectorError,
  labelKeyProblems,
  labelSelectorFromApi,
  labelSelectorMatches,
  labelSelectorToString,
  labelValueProblems,
  parseLabelSelector,
} from './labels.js';

function errorOf(run: () => unknown): LabelSelectorError {
  try {
    run();
  } catch (e) {
    if (e instanceof LabelSelectorError) return e;
    throw e;
  }
  throw new Error('expected a LabelSelectorError');
}

describe('parseLabelSelector', () => {
  // Input → canonical string (requirements sorted by key; `==` written `=`; sets sorted, distinct).
  it.each([
    ['', ''],
    ['   ', ''],
    ['x=a', 'x=a'],
    ['x==a', 'x=a'],
    ['x!=a', 'x!=a'],
    ['x=', 'x='],
    ['x!=', 'x!='],
    ['x', 'x'],
    ['!x', '!x'],
    [' ! x ', '!x'],
    ['x in (b,a)', 'x in (a,b)'],
    ['x in(a)', 'x in (a)'],
    ['x notin (a, a, b)', 'x notin (a,b)'],
    ['a=b, c==d, e!=f, g in (x,y), h notin (x), i, !j', 'a=b,c=d,e!=f,g in (x,y),h notin (x),i,!j'],
    ['z=1,a=2', 'a=2,z=1'],
    ['  a = b ,  c  in  ( x , y )  ', 'a=b,c in (x,y)'],
    ['example.com/app=web', 'example.com/app=web'],
    ['in=notin', 'in=notin'],
    ['app=in', 'app=in'],
    ['x=a,x!=b', 'x!=b,x=a'],
  ])('%j → %j', (text, canonical) => {
    expect(labelSelectorToString(parseLabelSelector(text))).toBe(canonical);
  });

  it('parses into structured requirements', () => {
    expect(parseLabelSelector('a=b, g in (y,x), !j, i').requirements).toEqual([
      { key: 'a', op: '=', value: 'b' },
      { key: 'g', op: 'in', values: ['x', 'y'] },
      { key: 'i', op: 'exists' },
      { key: 'j', op: '!' },
    ]);
  });

  it.each([
    ['a in ()', 'values for "in" must not be empty'],
    ['a notin ( )', 'values for "notin" must not be empty'],
    ['a in (x,)', `expected a value in "in" set, found ')'`],
    ['a in x', `expected '(' after "in", found "x"`],
    ['a in (x', `expected ',' or ')' in "in" set, found end of input`],
    ['a in', `expected '(' after "in", found end of input`],
    ['a b', 'expected an operator after "a", found "b"'],
    ['a=b c', `expected ',' or end of input, found "c"`],
    ['a=b,', 'expected a key, found end of input'],
    [',a', `expected a key, found ','`],
    ['=b', `expected a key, found '='`],
    ['!', `expected a key after '!', found end of input`],
    ['!a=b', `expected ',' or end of input, found '='`],
    ['a>1', `operator ">" is not supported`],
    ['a=b=c', `expected ',' or end of input, found '='`],
    ['a/b/c=x', `key "a/b/c": must contain at most one '/'`],
    ['/a=x', `key "/a": prefix part must not be empty`],
    ['Example.com/a=x', 'key "Example.com/a": prefix part must be a DNS subdomain'],
    ['a/=x', 'key "a/": name part must not be empty'],
    [`${'k'.repeat(64)}=x`, 'name part must be at most 63 characters'],
    ['-a=x', 'key "-a": name part must consist of'],
    ['a=-x', 'value "-x": must consist of'],
    [`a=${'v'.repeat(64)}`, 'must be at most 63 characters'],
    ['a in (x, -y)', 'value "-y": must consist of'],
  ])('rejects %j: %s', (text, reason) => {
    const error = errorOf(() => parseLabelSelector(text));
    expect(error.code).toBe('INVALID_LABEL_SELECTOR');
    expect(error.name).toBe('LabelSelectorError');
    expect(error.source).toBe(JSON.stringify(text));
    expect(error.message.startsWith(`label selector ${JSON.stringify(text)}: `)).toBe(true);
    expect(error.message).toContain(reason);
  });

  it('names the input in the message exactly as documented', () => {
    expect(() => parseLabelSelector('a in ()')).toThrow(
      'label selector "a in ()": values for "in" must not be empty',
    );
  });

  it('bounds the input size', () => {
    expect(() => parseLabelSelector('a'.repeat(5000))).toThrow(/longer than 4096 characters/);
    const many = Array.from({ length: 65 }, (_, i) => `k${i}`).join(',');
    expect(() => parseLabelSelector(many)).toThrow(/more than 64 requirements/);
  });
});

describe('labelSelectorMatches', () => {
  const labels = { app: 'web', tier: 'frontend', env: '' };
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app!=web', false],
    ['missing!=x', true],
    ['missing=x', false],
    ['env=', true],
    ['missing=', false],
    ['app in (web,db)', true],
    ['app in (db)', false],
    ['missing in (x)', false],
    ['app notin (db)', true],
    ['app notin (web)', false],
    ['missing notin (x)', true],
    ['app', true],
    ['missing', false],
    ['env', true],
    ['!missing', true],
    ['!app', false],
    ['app=web,tier=frontend', true],
    ['app=web,tier=backend', false],
    ['app=web, !missing, tier in (frontend), env', true],
  ])('%j → %s', (text, expected) => {
    expect(labelSelectorMatches(parseLabelSelector(text), labels)).toBe(expected);
  });

  it('the empty selector matches an object without labels', () => {
    expect(labelSelectorMatches(parseLabelSelector(''), {})).toBe(true);
  });

  it('does not read inherited properties as labels', () => {
    expect(labelSelectorMatches(parseLabelSelector('constructor'), {})).toBe(false);
    expect(labelSelectorMatches(parseLabelSelector('!toString'), {})).toBe(true);
  });
});

describe('labelSelectorFromApi', () => {
  it('combines matchLabels and matchExpressions', () => {
    const selector: LabelSelector = {
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['frontend', 'edge'] },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
        { key: 'team', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist', values: [] },
      ],
    };
    const parsed = labelSelectorFromApi(selector);
    expect(labelSelectorToString(parsed)).toBe(
      'app=web,env notin (dev),!legacy,team,tier in (edge,frontend)',
    );
    expect(labelSelectorMatches(parsed, { app: 'web', tier: 'edge', team: 'a' })).toBe(true);
    expect(labelSelectorMatches(parsed, { app: 'web', tier: 'edge', team: 'a', env: 'dev' })).toBe(false);
    expect(labelSelectorMatches(parsed, { app: 'web', tier: 'edge' })).toBe(false);
  });

  it('the empty selector matches everything', () => {
    expect(labelSelectorMatches(labelSelectorFromApi({}), { any: 'thing' })).toBe(true);
    expect(labelSelectorFromApi({ matchLabels: {}, matchExpressions: [] }).requirements).toEqual([]);
  });

  it('agrees with the string syntax', () => {
    const api = labelSelectorFromApi({
      matchExpressions: [{ key: 'a', operator: 'In', values: ['y', 'x'] }],
    });
    expect(api).toEqual(parseLabelSelector('a in (x,y)'));
  });

  it.each([
    [
      { matchExpressions: [{ key: 'a', operator: 'In' }] },
      'matchExpressions[0]',
      'values for "In" must not be empty',
    ],
    [
      {
        matchExpressions: [
          { key: 'a', operator: 'Exists' },
          { key: 'b', operator: 'NotIn', values: [] },
        ],
      },
      'matchExpressions[1]',
      'values for "NotIn" must not be empty',
    ],
    [
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      'matchExpressions[0]',
      'values for "Exists" must be empty',
    ],
    [
      { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
      'matchExpressions[0]',
      'unknown operator "Gt"',
    ],
    [
      { matchLabels: { 'bad key': 'x' } },
      'matchLabels["bad key"]',
      'key "bad key": name part must consist of',
    ],
    [{ matchLabels: { a: 'bad value' } }, 'matchLabels["a"]', 'value "bad value": must consist of'],
    [
      { matchExpressions: [{ key: 'a', operator: 'In', values: ['x', ''] }] },
      'matchExpressions[0]',
      'values for "in" on "a" must not be empty strings',
    ],
  ])('rejects %j at %s', (selector, path, reason) => {
    const error = errorOf(() => labelSelectorFromApi(selector as LabelSelector));
    expect(error.source).toBe(path);
    expect(error.message).toContain(`label selector ${path}: ${reason}`);
  });
});

describe('label validation', () => {
  it.each([
    'a',
    'A',
    '9',
    'app',
    'app.kubernetes.io/name',
    'example.com/a_b-c.d',
    'a-b_c.D',
    'k'.repeat(63),
    `${'p'.repeat(63)}.${'q'.repeat(63)}.${'r'.repeat(63)}.${'s'.repeat(61)}/n`,
  ])('key %j is valid', (key) => {
    expect(labelKeyProblems(key)).toEqual([]);
  });

  it.each([
    ['', 'name part must not be empty'],
    ['-a', 'name part must consist of'],
    ['a-', 'name part must consist of'],
    ['a b', 'name part must consist of'],
    ['k'.repeat(64), 'name part must be at most 63 characters'],
    ['a/b/c', "must contain at most one '/'"],
    ['/a', 'prefix part must not be empty'],
    ['UPPER.com/a', 'prefix part must be a DNS subdomain'],
    ['a_b.com/a', 'prefix part must be a DNS subdomain'],
    [`${'p'.repeat(254)}/a`, 'prefix part must be at most 253 characters'],
  ])('key %j: %s', (key, problem) => {
    const problems = labelKeyProblems(key);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`key ${JSON.stringify(key)}: ${problem}`);
  });

  it.each(['', 'a', 'web-1', 'A.b_c', 'v'.repeat(63)])('value %j is valid', (value) => {
    expect(labelValueProblems(value)).toEqual([]);
  });

  it.each([
    ['v'.repeat(64), 'must be at most 63 characters'],
    ['-a', 'must consist of'],
    ['a.', 'must consist of'],
    ['a/b', 'must consist of'],
    ['a b', 'must consist of'],
  ])('value %j: %s', (value, problem) => {
    expect(labelValueProblems(value)[0]).toContain(`value ${JSON.stringify(value)}: ${problem}`);
  });

  it('checkLabels names the field path and every problem', () => {
    expect(() => checkLabels({ ok: 'yes' })).not.toThrow();
    let caught: unknown;
    try {
      checkLabels({ '-bad': 'x', good: 'bad value' }, 'spec.template.metadata.labels');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvalidLabelError);
    const error = caught as InvalidLabelError;
    expect(error.code).toBe('INVALID_LABEL');
    expect(error.problems).toHaveLength(2);
    expect(error.message).toMatch(/^spec\.template\.metadata\.labels: key "-bad": .*; value "bad value": /);
  });
});

describe('properties', () => {
  const alnum = fc.constantFrom(...'abcXYZ019');
  const inner = fc.constantFrom(...'abz09-_.');
  const name = fc
    .tuple(alnum, fc.array(inner, { maxLength: 5 }), alnum)
    .map(([a, mid, b]) => `${a}${mid.join('')}${b}`);
  const shortName = fc.oneof(alnum, name);
  const key = fc.oneof(
    shortName,
    fc.tuple(fc.constantFrom('example.com', 'a.b-c', 'k8s.io'), shortName).map(([p, n]) => `${p}/${n}`),
  );
  const value = fc.oneof(fc.constant(''), shortName);
  const requirement = fc.oneof(
    fc.record({ key, op: fc.constantFrom('=' as const, '!=' as const), value }),
    fc.record({
      key,
      op: fc.constantFrom('in' as const, 'notin' as const),
      values: fc.uniqueArray(shortName, { minLength: 1, maxLength: 4 }).map((v) => v.sort()),
    }),
    fc.record({ key, op: fc.constantFrom('exists' as const, '!' as const) }),
  );
  type Generated = typeof requirement extends fc.Arbitrary<infer R> ? R : never;
  const spell = (reqs: Generated[]): string =>
    reqs
      .map((r) => {
        if (r.op === 'in' || r.op === 'notin') return ` ${r.key}  ${r.op}( ${r.values.join(' , ')} ) `;
        if ('value' in r) return `${r.key} ${r.op === '=' ? '==' : '!='} ${r.value}`;
        return r.op === 'exists' ? r.key : `! ${r.key}`;
      })
      .join(' , ');
  const requirements = fc.array(requirement, { maxLength: 6 });
  const selectorText = requirements.map(spell);

  it('parse(toString(parse(text))) equals parse(text), and toString is canonical', () => {
    fc.assert(
      fc.property(selectorText, (text) => {
        const parsed = parseLabelSelector(text);
        const canonical = labelSelectorToString(parsed);
        const reparsed = parseLabelSelector(canonical);
        expect(reparsed).toEqual(parsed);
        expect(labelSelectorToString(reparsed)).toBe(canonical);
      }),
      { numRuns: 1000 },
    );
  });

  it('matching agrees with a dumb reference over the generated requirements', () => {
    const reference = (r: Generated, ls: Record<string, string>): boolean => {
      const v = Object.keys(ls).includes(r.key) ? ls[r.key] : undefined;
      if ('value' in r) return r.op === '=' ? v === r.value : v !== r.value;
      if (r.op === 'in') return v !== undefined && r.values.includes(v);
      if (r.op === 'notin') return v === undefined || !r.values.includes(v);
      return r.op === 'exists' ? v !== undefined : v === undefined;
    };
    const keyPool = fc.constantFrom('a', 'b', 'example.com/a');
    const labels = fc.dictionary(fc.oneof(key, keyPool), fc.oneof(value, fc.constantFrom('a', 'b')), {
      maxKeys: 5,
    });
    fc.assert(
      fc.property(requirements, labels, (reqs, ls) => {
        const expected = reqs.every((r) => reference(r, ls));
        expect(labelSelectorMatches(parseLabelSelector(spell(reqs)), ls)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});

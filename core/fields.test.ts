import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkFieldSelector,
  escapeFieldValue,
  FieldSelectorError,
  fieldSelectorMatches,
  fieldSelectorToString,
  parseFieldSelector,
  readField,
  readSelectableField,
} from './fields.js';

function errorOf(run: () => unknown): FieldSelectorError {
  try {
    run();
  } catch (e) {
    if (e instanceof FieldSelectorError) return e;
    throw e;
  }
  throw new Error('expected a FieldSelectorError');
}

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'default', labels: { app: 'web' } },
  spec: { nodeName: 'n1', hostNetwork: false, containers: [{ name: 'c' }] },
  status: { phase: 'Running', podIP: '10.0.0.5' },
};
const pendingPod = {
  kind: 'Pod',
  metadata: { name: 'web-2', namespace: 'default' },
  spec: {},
  status: { phase: 'Pending' },
};

describe('parseFieldSelector', () => {
  it.each([
    ['', ''],
    ['  ', ''],
    ['metadata.name=x', 'metadata.name=x'],
    ['metadata.name==x', 'metadata.name=x'],
    ['metadata.name!=x', 'metadata.name!=x'],
    [' spec.nodeName = n1 , status.phase=Running', 'spec.nodeName=n1,status.phase=Running'],
    ['status.phase=Running,metadata.namespace=y', 'metadata.namespace=y,status.phase=Running'],
    ['spec.nodeName=', 'spec.nodeName='],
    ['metadata.name=a\\,b\\=c\\\\d', 'metadata.name=a\\,b\\=c\\\\d'],
  ])('%j → %j', (text, canonical) => {
    expect(fieldSelectorToString(parseFieldSelector(text))).toBe(canonical);
  });

  it('parses into structured requirements and unescapes values', () => {
    expect(parseFieldSelector('metadata.name=a\\,b, spec.nodeName!=n1').requirements).toEqual([
      { field: 'metadata.name', op: '=', value: 'a,b' },
      { field: 'spec.nodeName', op: '!=', value: 'n1' },
    ]);
  });

  it.each([
    ['metadata.name', `term "metadata.name" has no operator ('=', '==' or '!=')`],
    ['metadata.name=x,', `term "" has no operator`],
    ['=x', 'invalid field path ""'],
    ['metadata..name=x', 'invalid field path "metadata..name"'],
    ['meta data=x', 'invalid field path "meta data"'],
    ['metadata.name=a=b', 'unescaped "=" in value "a=b"'],
    ['metadata.name=a\\b', 'invalid escape sequence in value "a\\\\b"'],
    ['metadata.name=a\\', 'invalid escape sequence'],
  ])('rejects %j: %s', (text, reason) => {
    const error = errorOf(() => parseFieldSelector(text));
    expect(error.code).toBe('INVALID_FIELD_SELECTOR');
    expect(error.subject).toBe(text);
    expect(error.message).toContain(`field selector ${JSON.stringify(text)}: ${reason}`);
  });

  it('bounds the input size', () => {
    expect(() => parseFieldSelector('a'.repeat(5000))).toThrow(/longer than 4096 characters/);
    const many = Array.from({ length: 33 }, (_, i) => `metadata.name=n${i}`).join(',');
    expect(() => parseFieldSelector(many)).toThrow(/more than 32 terms/);
  });
});

describe('fieldSelectorMatches', () => {
  it.each([
    ['', true],
    ['metadata.name=web-1', true],
    ['metadata.name=web-2', false],
    ['metadata.name!=web-2', true],
    ['metadata.namespace=default', true],
    ['spec.nodeName=n1', true],
    ['spec.nodeName=n2', false],
    ['spec.nodeName!=n1', false],
    ['spec.nodeName=', false],
    ['status.phase=Running', true],
    ['status.phase=Running,spec.nodeName=n1', true],
    ['status.phase=Running,spec.nodeName=n2', false],
    ['spec.hostNetwork=false', true],
    ['status.missing.deep=', true],
    ['metadata.name.deeper=', true],
    ['spec.containers=', false],
    ['spec.containers!=', true],
    ['metadata.labels!=x', true],
  ])('%j on a scheduled running pod → %s', (text, expected) => {
    expect(fieldSelectorMatches(parseFieldSelector(text), pod)).toBe(expected);
  });

  it('an absent field reads as "" (unscheduled pods)', () => {
    const unscheduled = parseFieldSelector('spec.nodeName=');
    expect(fieldSelectorMatches(unscheduled, pendingPod)).toBe(true);
    expect(fieldSelectorMatches(unscheduled, pod)).toBe(false);
    expect(fieldSelectorMatches(parseFieldSelector('spec.nodeName!=n1'), pendingPod)).toBe(true);
  });

  it('does not read inherited properties', () => {
    expect(readField({}, 'constructor')).toBe('');
    expect(readField({ a: {} }, 'a.toString')).toBe('');
  });

  it.each([
    [{ a: { b: 'x' } }, 'a.b', 'x'],
    [{ a: { b: 3 } }, 'a.b', '3'],
    [{ a: { b: true } }, 'a.b', 'true'],
    [{ a: { b: null } }, 'a.b', ''],
    [{ a: { b: [1] } }, 'a.b', undefined],
    [{ a: { b: {} } }, 'a.b', undefined],
    [{ a: [{ b: 'x' }] }, 'a.b', ''],
    [null, 'a', ''],
    ['str', 'a', ''],
  ])('readField(%j, %j) → %j', (obj, path, expected) => {
    expect(readField(obj, path)).toBe(expected);
  });
});

describe('checkFieldSelector', () => {
  it.each([
    ['Pod', 'metadata.name=x,metadata.namespace=y,spec.nodeName=n1,status.phase=Running'],
    ['Node', 'metadata.name=n1,spec.unschedulable=false'],
    ['Service', 'metadata.name=s'],
    ['Secret', 'type=Opaque'],
    ['Job', 'status.successful=1'],
    [
      'Event',
      'involvedObject.kind=Pod,involvedObject.name=web-0,involvedObject.uid=u1,reason=Started,type=Normal,source=kubelet',
    ],
    ['Lease', 'metadata.name=n1'],
    ['Widget', 'metadata.namespace=default'],
  ])('%s allows %j', (kind, text) => {
    expect(() => checkFieldSelector(parseFieldSelector(text), kind)).not.toThrow();
  });

  it.each([
    ['Pod', 'spec.foo=x', 'spec.foo'],
    ['Pod', 'metadata.name=x,metadata.labels=y', 'metadata.labels'],
    ['Node', 'spec.nodeName=n1', 'spec.nodeName'],
    ['Service', 'status.phase=Running', 'status.phase'],
    ['Job', 'status.succeeded=1', 'status.succeeded'],
    ['Endpoints', 'subsets=x', 'subsets'],
    ['Lease', 'spec.holderIdentity=n1', 'spec.holderIdentity'],
    ['constructor', 'spec.x=1', 'spec.x'],
  ])('%s rejects %j', (kind, text, field) => {
    const error = errorOf(() => checkFieldSelector(parseFieldSelector(text), kind));
    expect(error.code).toBe('UNSUPPORTED_FIELD_SELECTOR');
    expect(error.subject).toBe(field);
    expect(error.message).toBe(`field selector "${field}": not supported for ${kind}`);
  });

  it('takes a custom allow-list', () => {
    const fields = { Widget: ['spec.size'] };
    expect(() => checkFieldSelector(parseFieldSelector('spec.size=3'), 'Widget', fields)).not.toThrow();
    expect(() => checkFieldSelector(parseFieldSelector('spec.nodeName=n1'), 'Pod', fields)).toThrow(
      'field selector "spec.nodeName": not supported for Pod',
    );
  });
});

describe('properties', () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9_-]{1,6}$/);
  const field = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('.'));
  const value = fc.string({ maxLength: 8 }).filter((v) => v.trim() === v);
  const requirement = fc.record({ field, op: fc.constantFrom('=' as const, '!=' as const), value });

  it('parse(toString(s)) equals s for any values, escapes included', () => {
    fc.assert(
      fc.property(fc.array(requirement, { maxLength: 5 }), (reqs) => {
        const text = reqs.map((r) => `${r.field}${r.op}${escapeFieldValue(r.value)}`).join(',');
        const parsed = parseFieldSelector(text);
        expect(parseFieldSelector(fieldSelectorToString(parsed))).toEqual(parsed);
        expect([...parsed.requirements].map((r) => `${r.field}${r.op}${r.value}`).sort()).toEqual(
          reqs.map((r) => `${r.field}${r.op}${r.value}`).sort(),
        );
      }),
      { numRuns: 1000 },
    );
  });
});

describe('derived selectable fields', () => {
  const node = { kind: 'Node', metadata: { name: 'n1' }, spec: {} };
  const cordoned = { kind: 'Node', metadata: { name: 'n2' }, spec: { unschedulable: true } };
  const job = { kind: 'Job', metadata: { name: 'j' }, status: { succeeded: 2 } };
  const newJob = { kind: 'Job', metadata: { name: 'k' } };
  const event = { kind: 'Event', metadata: { name: 'e' }, source: { component: 'kubelet', host: 'n1' } };
  const matches = (text: string, obj: unknown) => fieldSelectorMatches(parseFieldSelector(text), obj);

  it('Node spec.unschedulable reads false when absent', () => {
    expect(matches('spec.unschedulable=false', node)).toBe(true);
    expect(matches('spec.unschedulable=false', cordoned)).toBe(false);
    expect(matches('spec.unschedulable=true', cordoned)).toBe(true);
    expect(matches('spec.unschedulable=', node)).toBe(false);
  });

  it('Job status.successful reads status.succeeded, 0 when absent', () => {
    expect(matches('status.successful=2', job)).toBe(true);
    expect(matches('status.successful=0', newJob)).toBe(true);
    expect(matches('status.successful!=0', job)).toBe(true);
  });

  it('Event source reads source.component', () => {
    expect(matches('source=kubelet', event)).toBe(true);
    expect(matches('source=n1', event)).toBe(false);
    expect(readSelectableField(event, 'source.host')).toBe('n1');
  });

  it('applies only to the kind named by the object', () => {
    expect(readSelectableField({ kind: 'Pod', spec: {} }, 'spec.unschedulable')).toBe('');
    expect(readSelectableField({ spec: {} }, 'spec.unschedulable')).toBe('');
    expect(readSelectableField({ kind: 'Pod', spec: {} }, 'spec.hostNetwork')).toBe('false');
    expect(readSelectableField({ kind: 'ReplicaSet' }, 'status.replicas')).toBe('0');
  });
});

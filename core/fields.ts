/**
 * Field selectors with Kubernetes semantics: `metadata.name=x,spec.nodeName!=n1`.
 *
 * Terms are comma-separated and ANDed; operators are `=`, `==` (same as `=`) and `!=`.
 * In values, `\`, `,` and `=` are escaped with a backslash, as Kubernetes does. A field that
 * is absent from the object reads as the empty string, so `spec.nodeName=` selects pods not
 * yet scheduled. Each kind selects only on an allow-listed set of fields
 * (`checkFieldSelector`). A few fields read elsewhere or with a zero value when absent, as
 * Kubernetes reads them from typed structs (`derivedSelectableFields`).
 */

import { CoreError } from './errors.js';

/** Longest selector text accepted by `parseFieldSelector`. */
export const fieldSelectorTextLengthMax = 4096;
/** Most terms a field selector may hold. */
export const fieldSelectorRequirementsMax = 32;

export interface FieldRequirement {
  /** Dotted path into the object, e.g. `spec.nodeName`. */
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

/** A parsed field selector: all requirements must hold. The empty selector matches everything. */
export interface FieldSelector {
  readonly requirements: readonly FieldRequirement[];
}

export const FieldSelectorErrorCode = {
  Invalid: 'INVALID_FIELD_SELECTOR',
  Unsupported: 'UNSUPPORTED_FIELD_SELECTOR',
} as const;
export type FieldSelectorErrorCode = (typeof FieldSelectorErrorCode)[keyof typeof FieldSelectorErrorCode];

export class FieldSelectorError extends CoreError {
  /** The selector text or the field that is wrong. */
  readonly subject: string;
  constructor(code: FieldSelectorErrorCode, subject: string, reason: string) {
    super(code, `field selector ${JSON.stringify(subject)}: ${reason}`);
    this.subject = subject;
  }
}

/** The selector that matches every object. */
export const everythingFieldSelector: FieldSelector = { requirements: [] };

/** Fields every kind can be selected on. */
export const commonSelectableFields: readonly string[] = ['metadata.name', 'metadata.namespace'];

/** Extra selectable fields per kind, following Kubernetes; kinds not listed allow only the common ones. */
export const selectableFieldsByKind: Readonly<Record<string, readonly string[]>> = {
  Pod: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
  Node: ['spec.unschedulable'],
  Namespace: ['status.phase'],
  Secret: ['type'],
  ReplicaSet: ['status.replicas'],
  Job: ['status.successful'],
  Event: [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
};

/** How a selectable field is read when it is not simply the value at its own path (or `""`). */
export interface DerivedField {
  /** Dotted path actually read. */
  readonly path: string;
  /** The value when absent: Kubernetes formats Go zero values (`0`, `false`). */
  readonly absent: string;
}

/** Per kind, the selectable fields with a different path or a non-empty absent value. */
export const derivedSelectableFields: Readonly<Record<string, Readonly<Record<string, DerivedField>>>> = {
  Pod: { 'spec.hostNetwork': { path: 'spec.hostNetwork', absent: 'false' } },
  Node: { 'spec.unschedulable': { path: 'spec.unschedulable', absent: 'false' } },
  ReplicaSet: { 'status.replicas': { path: 'status.replicas', absent: '0' } },
  Job: { 'status.successful': { path: 'status.succeeded', absent: '0' } },
  Event: { source: { path: 'source.component', absent: '' } },
};

const fieldPathPattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Parses `field=value` terms separated by commas; the empty string is the everything selector. */
export function parseFieldSelector(text: string): FieldSelector {
  const subject = text.length > fieldSelectorTextLengthMax ? `${text.slice(0, 32)}...` : text;
  const fail = (reason: string): never => {
    throw new FieldSelectorError(FieldSelectorErrorCode.Invalid, subject, reason);
  };
  if (text.length > fieldSelectorTextLengthMax) fail(`longer than ${fieldSelectorTextLengthMax} characters`);
  if (text.trim() === '') return everythingFieldSelector;
  const terms = splitUnescaped(text, ',');
  if (terms.length > fieldSelectorRequirementsMax) fail(`more than ${fieldSelectorRequirementsMax} terms`);
  const requirements = terms.map((term) => parseTerm(term, fail));
  requirements.sort((a, b) => compareStrings(requirementToString(a), requirementToString(b)));
  return { requirements };
}

function parseTerm(term: string, fail: (reason: string) => never): FieldRequirement {
  const at = findOperator(term);
  if (at === undefined)
    return fail(`term ${JSON.stringify(term.trim())} has no operator ('=', '==' or '!=')`);
  const field = term.slice(0, at.index).trim();
  if (!fieldPathPattern.test(field)) return fail(`invalid field path ${JSON.stringify(field)}`);
  const value = unescapeValue(term.slice(at.index + at.op.length).trim(), fail);
  return { field, op: at.op === '!=' ? '!=' : '=', value };
}

/** The first unescaped operator in a term. */
function findOperator(term: string): { index: number; op: '=' | '==' | '!=' } | undefined {
  for (let i = 0; i < term.length; i++) {
    const c = term[i];
    if (c === '\\') i += 1;
    else if (c === '!' && term[i + 1] === '=') return { index: i, op: '!=' };
    else if (c === '=') return { index: i, op: term[i + 1] === '=' ? '==' : '=' };
  }
  return undefined;
}

function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i += 1;
    else if (text[i] === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function unescapeValue(raw: string, fail: (reason: string) => never): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\') {
      const escaped = raw[i + 1];
      if (escaped !== '\\' && escaped !== ',' && escaped !== '=') {
        fail(`invalid escape sequence in value ${JSON.stringify(raw)}`);
      }
      out += escaped;
      i += 1;
    } else if (c === ',' || c === '=') {
      fail(`unescaped ${JSON.stringify(c)} in value ${JSON.stringify(raw)}`);
    } else {
      out += c;
    }
  }
  return out;
}

/** Escapes `\`, `,` and `=` so the value survives `parseFieldSelector`. */
export function escapeFieldValue(value: string): string {
  return value.replace(/[\\,=]/g, (c) => `\\${c}`);
}

function requirementToString(r: FieldRequirement): string {
  return `${r.field}${r.op}${escapeFieldValue(r.value)}`;
}

/** The canonical string form; `parseFieldSelector` of it equals `selector`. */
export function fieldSelectorToString(selector: FieldSelector): string {
  return selector.requirements.map(requirementToString).join(',');
}

function compareStrings(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

/**
 * Throws `FieldSelectorError` (code `UNSUPPORTED_FIELD_SELECTOR`) for the first field that
 * `kind` cannot be selected on.
 */
export function checkFieldSelector(
  selector: FieldSelector,
  kind: string,
  fieldsByKind: Readonly<Record<string, readonly string[]>> = selectableFieldsByKind,
): void {
  const extra = Object.hasOwn(fieldsByKind, kind) ? fieldsByKind[kind] : [];
  for (const { field } of selector.requirements) {
    if (!commonSelectableFields.includes(field) && !extra.includes(field)) {
      throw new FieldSelectorError(FieldSelectorErrorCode.Unsupported, field, `not supported for ${kind}`);
    }
  }
}

/**
 * Whether every requirement holds for `obj`. Absent fields (and null) read as `""`, or as the
 * zero value of a derived field of `obj.kind`; strings, numbers and booleans compare by their
 * string form; objects and arrays equal no value.
 */
export function fieldSelectorMatches(selector: FieldSelector, obj: unknown): boolean {
  return selector.requirements.every((r) => {
    const actual = readSelectableField(obj, r.field);
    const equal = actual !== undefined && actual === r.value;
    return r.op === '=' ? equal : !equal;
  });
}

/** The value `field` has for field selectors on `obj`, following `derivedSelectableFields` for `obj.kind`. */
export function readSelectableField(obj: unknown, field: string): string | undefined {
  const kind =
    typeof obj === 'object' && obj !== null && Object.hasOwn(obj, 'kind')
      ? (obj as { kind: unknown }).kind
      : undefined;
  const derived =
    typeof kind === 'string' &&
    Object.hasOwn(derivedSelectableFields, kind) &&
    Object.hasOwn(derivedSelectableFields[kind], field)
      ? derivedSelectableFields[kind][field]
      : undefined;
  if (!derived) return readField(obj, field);
  const value = readField(obj, derived.path);
  return value === '' ? derived.absent : value;
}

/** The string form of the scalar at `path`, `""` when absent, `undefined` when not a scalar. */
export function readField(obj: unknown, path: string): string | undefined {
  let current: unknown = obj;
  for (const segment of path.split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return '';
    if (!Object.hasOwn(current, segment)) return '';
    current = (current as Record<string, unknown>)[segment];
  }
  switch (typeof current) {
    case 'string':
      return current;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(current);
    case 'undefined':
      return '';
    default:
      return current === null ? '' : undefined;
  }
}

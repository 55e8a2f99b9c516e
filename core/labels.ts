/**
 * Labels and label selectors with Kubernetes semantics.
 *
 * Two input forms produce one parsed form (`ParsedLabelSelector`):
 * - the string syntax used in list/watch requests: `a=b, c==d, e!=f, g in (x,y), h notin (x), i, !j`;
 * - the API object `LabelSelector` (`matchLabels`, `matchExpressions`) found in specs.
 * Requirements are ANDed; the empty selector matches everything. Whether an absent API
 * selector means "everything" or "nothing" is the caller's decision (Kubernetes: nothing).
 *
 * Deliberately stricter than Kubernetes: a set (`in (...)`) must not be empty and must not
 * contain the empty value; Kubernetes reads `in ()` as `in ("")`.
 */

import { CoreError } from './errors.js';

/** Longest selector text accepted by `parseLabelSelector`. */
export const labelSelectorTextLengthMax = 4096;
/** Most requirements a selector may hold. */
export const labelSelectorRequirementsMax = 64;
/** Longest label value, and longest name part of a label key. */
export const labelNameLengthMax = 63;
/** Longest DNS-subdomain prefix of a label key. */
export const labelPrefixLengthMax = 253;

/** Kubernetes `LabelSelectorRequirement` operators (API form). */
export const LabelSelectorOperator = {
  In: 'In',
  NotIn: 'NotIn',
  Exists: 'Exists',
  DoesNotExist: 'DoesNotExist',
} as const;
export type LabelSelectorOperator = (typeof LabelSelectorOperator)[keyof typeof LabelSelectorOperator];

/** Kubernetes `LabelSelectorRequirement` (API form). */
export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  values?: string[];
}

/** Kubernetes `LabelSelector` (API form). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** One parsed requirement. `values` of `in`/`notin` are sorted and distinct. */
export type LabelRequirement =
  | { readonly key: string; readonly op: '=' | '!='; readonly value: string }
  | { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'exists' | '!' };

/** A validated selector: requirements sorted by key, all of which must hold. */
export interface ParsedLabelSelector {
  readonly requirements: readonly LabelRequirement[];
}

export const LabelErrorCode = {
  InvalidLabelSelector: 'INVALID_LABEL_SELECTOR',
  InvalidLabel: 'INVALID_LABEL',
} as const;

/** A selector that cannot be parsed or holds an invalid key or value. */
export class LabelSelectorError extends CoreError {
  /** The selector text (quoted) or the API field path that is wrong. */
  readonly source: string;
  readonly reason: string;
  constructor(source: string, reason: string) {
    super(LabelErrorCode.InvalidLabelSelector, `label selector ${source}: ${reason}`);
    this.source = source;
    this.reason = reason;
  }
}

/** A label map entry with an invalid key or value. */
export class InvalidLabelError extends CoreError {
  readonly fieldPath: string;
  readonly problems: readonly string[];
  constructor(fieldPath: string, problems: readonly string[]) {
    super(LabelErrorCode.InvalidLabel, `${fieldPath}: ${problems.join('; ')}`);
    this.fieldPath = fieldPath;
    this.problems = problems;
  }
}

/** The selector that matches every label set. */
export const everythingLabelSelector: ParsedLabelSelector = { requirements: [] };

// ---------------------------------------------------------------- validation

const dns1123Label = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainPattern = new RegExp(`^${dns1123Label}(\\.${dns1123Label})*$`);
const qualifiedNamePattern = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const nameCharsRule = "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric";

/** Problems with a label key (empty when valid): `[prefix/]name`, Kubernetes qualified-name rules. */
export function labelKeyProblems(key: string): string[] {
  const parts = key.split('/');
  if (parts.length > 2) return [`key ${JSON.stringify(key)}: must contain at most one '/'`];
  const name = parts.length === 2 ? parts[1] : parts[0];
  const problems: string[] = [];
  if (parts.length === 2) problems.push(...prefixProblems(key, parts[0]));
  if (name.length === 0) problems.push(`key ${JSON.stringify(key)}: name part must not be empty`);
  else if (name.length > labelNameLengthMax) {
    problems.push(`key ${JSON.stringify(key)}: name part must be at most ${labelNameLengthMax} characters`);
  } else if (!qualifiedNamePattern.test(name)) {
    problems.push(`key ${JSON.stringify(key)}: name part must consist of ${nameCharsRule}`);
  }
  return problems;
}

function prefixProblems(key: string, prefix: string): string[] {
  if (prefix.length === 0) return [`key ${JSON.stringify(key)}: prefix part must not be empty`];
  if (prefix.length > labelPrefixLengthMax) {
    return [`key ${JSON.stringify(key)}: prefix part must be at most ${labelPrefixLengthMax} characters`];
  }
  if (!dns1123SubdomainPattern.test(prefix)) {
    return [
      `key ${JSON.stringify(key)}: prefix part must be a DNS subdomain (lowercase alphanumerics, '-' and '.')`,
    ];
  }
  return [];
}

/** Problems with a label value (empty when valid); the empty value is valid. */
export function labelValueProblems(value: string): string[] {
  if (value.length > labelNameLengthMax) {
    return [`value ${JSON.stringify(value)}: must be at most ${labelNameLengthMax} characters`];
  }
  if (!labelValuePattern.test(value))
    return [`value ${JSON.stringify(value)}: must consist of ${nameCharsRule}`];
  return [];
}

/** Throws `InvalidLabelError` naming `fieldPath` and every bad key or value. */
export function checkLabels(labels: Readonly<Record<string, string>>, fieldPath = 'metadata.labels'): void {
  const problems = Object.entries(labels).flatMap(([k, v]) => [
    ...labelKeyProblems(k),
    ...labelValueProblems(v),
  ]);
  if (problems.length > 0) throw new InvalidLabelError(fieldPath, problems);
}

// ---------------------------------------------------------------- string syntax

type Token =
  | { readonly kind: 'word'; readonly text: string }
  | { readonly kind: '=' | '==' | '!=' | '!' | '(' | ')' | ',' | 'end' };

const specialChars = new Set(['=', '!', '(', ')', ',', '<', '>']);
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';

function tokenize(text: string, fail: (reason: string) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (isSpace(c)) {
      i += 1;
    } else if (c === '<' || c === '>') {
      fail(`operator ${JSON.stringify(c)} is not supported`);
    } else if ((c === '=' || c === '!') && text[i + 1] === '=') {
      tokens.push({ kind: c === '=' ? '==' : '!=' });
      i += 2;
    } else if (specialChars.has(c)) {
      tokens.push({ kind: c as '=' | '!' | '(' | ')' | ',' });
      i += 1;
    } else {
      let end = i;
      while (end < text.length && !isSpace(text[end]) && !specialChars.has(text[end])) end += 1;
      tokens.push({ kind: 'word', text: text.slice(i, end) });
      i = end;
    }
  }
  tokens.push({ kind: 'end' });
  return tokens;
}

function describe(token: Token): string {
  if (token.kind === 'word') return JSON.stringify(token.text);
  return token.kind === 'end' ? 'end of input' : `'${token.kind}'`;
}

/** Parses the string syntax; the empty (or all-blank) string is the everything selector. */
export function parseLabelSelector(text: string): ParsedLabelSelector {
  const source = JSON.stringify(text.length > labelSelectorTextLengthMax ? `${text.slice(0, 32)}...` : text);
  const fail = (reason: string): never => {
    throw new LabelSelectorError(source, reason);
  };
  if (text.length > labelSelectorTextLengthMax) fail(`longer than ${labelSelectorTextLengthMax} characters`);
  const tokens = tokenize(text, fail);
  if (tokens.length === 1) return everythingLabelSelector;
  let pos = 0;
  const next = (): Token => tokens[Math.min(pos++, tokens.length - 1)];
  const peek = (): Token => tokens[pos];
  const requirements: LabelRequirement[] = [];
  for (;;) {
    requirements.push(parseRequirement(next, peek, fail));
    const after = next();
    if (after.kind === 'end') break;
    if (after.kind !== ',') fail(`expected ',' or end of input, found ${describe(after)}`);
  }
  return buildSelector(requirements, fail);
}

function parseRequirement(
  next: () => Token,
  peek: () => Token,
  fail: (reason: string) => never,
): LabelRequirement {
  const first = next();
  if (first.kind === '!') {
    const key = next();
    if (key.kind !== 'word') return fail(`expected a key after '!', found ${describe(key)}`);
    return { key: key.text, op: '!' };
  }
  if (first.kind !== 'word') return fail(`expected a key, found ${describe(first)}`);
  const key = first.text;
  const op = peek();
  switch (op.kind) {
    case 'end':
    case ',':
      return { key, op: 'exists' };
    case '=':
    case '==':
    case '!=': {
      next();
      const value = peek();
      if (value.kind === 'word') next();
      return { key, op: op.kind === '!=' ? '!=' : '=', value: value.kind === 'word' ? value.text : '' };
    }
    case 'word':
      if (op.text === 'in' || op.text === 'notin') {
        next();
        return { key, op: op.text, values: parseValueSet(op.text, next, fail) };
      }
      return fail(`expected an operator after ${JSON.stringify(key)}, found ${describe(op)}`);
    default:
      return fail(`expected an operator after ${JSON.stringify(key)}, found ${describe(op)}`);
  }
}

function parseValueSet(op: string, next: () => Token, fail: (reason: string) => never): string[] {
  const open = next();
  if (open.kind !== '(') fail(`expected '(' after "${op}", found ${describe(open)}`);
  const values: string[] = [];
  let token = next();
  if (token.kind === ')') fail(`values for "${op}" must not be empty`);
  for (;;) {
    if (token.kind !== 'word') return fail(`expected a value in "${op}" set, found ${describe(token)}`);
    values.push(token.text);
    const separator = next();
    if (separator.kind === ')') return values;
    if (separator.kind !== ',')
      return fail(`expected ',' or ')' in "${op}" set, found ${describe(separator)}`);
    token = next();
  }
}

// ---------------------------------------------------------------- API form

/** Builds the parsed form from a Kubernetes `LabelSelector`; errors name the field path. */
export function labelSelectorFromApi(selector: LabelSelector): ParsedLabelSelector {
  const requirements: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const requirement: LabelRequirement = { key, op: '=', value };
    checkRequirement(requirement, failAt(`matchLabels[${JSON.stringify(key)}]`));
    requirements.push(requirement);
  }
  (selector.matchExpressions ?? []).forEach((expression, index) => {
    const fail = failAt(`matchExpressions[${index}]`);
    const requirement = requirementFromApi(expression, fail);
    checkRequirement(requirement, fail);
    requirements.push(requirement);
  });
  return buildSelector(requirements, failAt('LabelSelector'));
}

function failAt(path: string): (reason: string) => never {
  return (reason) => {
    throw new LabelSelectorError(path, reason);
  };
}

function requirementFromApi(
  expression: LabelSelectorRequirement,
  fail: (reason: string) => never,
): LabelRequirement {
  const values = expression.values ?? [];
  switch (expression.operator) {
    case LabelSelectorOperator.In:
    case LabelSelectorOperator.NotIn:
      if (values.length === 0) fail(`values for "${expression.operator}" must not be empty`);
      return { key: expression.key, op: expression.operator === 'In' ? 'in' : 'notin', values };
    case LabelSelectorOperator.Exists:
    case LabelSelectorOperator.DoesNotExist:
      if (values.length > 0) fail(`values for "${expression.operator}" must be empty`);
      return { key: expression.key, op: expression.operator === 'Exists' ? 'exists' : '!' };
    default: {
      const unknown: never = expression.operator;
      return fail(`unknown operator ${JSON.stringify(unknown)}`);
    }
  }
}

// ---------------------------------------------------------------- shared

function checkRequirement(requirement: LabelRequirement, fail: (reason: string) => never): void {
  const keyProblems = labelKeyProblems(requirement.key);
  if (keyProblems.length > 0) fail(keyProblems[0]);
  switch (requirement.op) {
    case '=':
    case '!=':
      checkValue(requirement.value, fail);
      return;
    case 'in':
    case 'notin':
      for (const value of requirement.values) {
        if (value === '')
          fail(
            `values for "${requirement.op}" on ${JSON.stringify(requirement.key)} must not be empty strings`,
          );
        checkValue(value, fail);
      }
      return;
    case 'exists':
    case '!':
      return;
    default: {
      const unknown: never = requirement;
      throw new Error(`unknown label requirement ${JSON.stringify(unknown)}`);
    }
  }
}

function checkValue(value: string, fail: (reason: string) => never): void {
  const problems = labelValueProblems(value);
  if (problems.length > 0) fail(problems[0]);
}

/** Checks limits, normalizes sets (sorted, distinct) and sorts requirements into canonical order. */
function buildSelector(
  requirements: LabelRequirement[],
  fail: (reason: string) => never,
): ParsedLabelSelector {
  if (requirements.length > labelSelectorRequirementsMax) {
    fail(`more than ${labelSelectorRequirementsMax} requirements`);
  }
  const normalized = requirements.map((r): LabelRequirement => {
    checkRequirement(r, fail);
    return r.op === 'in' || r.op === 'notin'
      ? { key: r.key, op: r.op, values: [...new Set(r.values)].sort() }
      : r;
  });
  const keyed = normalized.map((r) => ({ r, text: requirementToString(r) }));
  keyed.sort((a, b) => compareStrings(a.r.key, b.r.key) || compareStrings(a.text, b.text));
  return { requirements: keyed.map(({ r }) => r) };
}

function compareStrings(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

function requirementToString(r: LabelRequirement): string {
  switch (r.op) {
    case '=':
    case '!=':
      return `${r.key}${r.op}${r.value}`;
    case 'in':
    case 'notin':
      return `${r.key} ${r.op} (${r.values.join(',')})`;
    case 'exists':
      return r.key;
    case '!':
      return `!${r.key}`;
    default: {
      const unknown: never = r;
      throw new Error(`unknown label requirement ${JSON.stringify(unknown)}`);
    }
  }
}

/** The string syntax, canonical: `parseLabelSelector(labelSelectorToString(s))` equals `s`. */
export function labelSelectorToString(selector: ParsedLabelSelector): string {
  return selector.requirements.map(requirementToString).join(',');
}

/** Whether every requirement holds for `labels`. `!=`/`notin` hold when the key is absent. */
export function labelSelectorMatches(
  selector: ParsedLabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  return selector.requirements.every((r) => requirementMatches(r, labels));
}

function requirementMatches(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.op) {
    case '=':
      return value === r.value;
    case '!=':
      return value !== r.value;
    case 'in':
      return value !== undefined && r.values.includes(value);
    case 'notin':
      return value === undefined || !r.values.includes(value);
    case 'exists':
      return has;
    case '!':
      return !has;
    default: {
      const unknown: never = r;
      throw new Error(`unknown label requirement ${JSON.stringify(unknown)}`);
    }
  }
}

/** Whether the selector is empty, i.e. matches everything. */
export function isEverythingLabelSelector(selector: ParsedLabelSelector): boolean {
  return selector.requirements.length === 0;
}

/**
 * Validation of API objects with Kubernetes rules and field paths.
 *
 * `validateObject` takes `unknown` (anything decoded from the wire) and never throws on
 * malformed input: every problem becomes a `FieldError` naming its field path, e.g.
 * `spec.template.spec.containers[0].image: required`. Validation runs on objects as
 * submitted (before or after `applyDefaults`); absent optional fields are not errors.
 */

import { cronProblem } from './cron.js';
import { defaultDaemonSetMaxSurge, defaultDaemonSetMaxUnavailable } from './defaults.js';
import { CoreError } from './errors.js';
import {
  type LabelSelector,
  LabelSelectorError,
  labelKeyProblems,
  labelSelectorFromApi,
  labelSelectorMatches,
  labelValueProblems,
} from './labels.js';
import { isKnownKind, type Kind, kindInfo } from './objects.js';
import { parseQuantity, QuantityError } from './quantity.js';

export const FieldErrorType = {
  Required: 'required',
  Invalid: 'invalid',
  NotSupported: 'notSupported',
  Duplicate: 'duplicate',
  TooLong: 'tooLong',
  Forbidden: 'forbidden',
} as const;
export type FieldErrorType = (typeof FieldErrorType)[keyof typeof FieldErrorType];

/** One problem at one field. `message` is complete (`required`, `must be >= 0`, ...). */
export interface FieldError {
  path: string;
  type: FieldErrorType;
  message: string;
}

/** `path: message`, or just the message for the object itself (empty path). */
export function formatFieldError(error: FieldError): string {
  return error.path === '' ? error.message : `${error.path}: ${error.message}`;
}

/** An object that failed validation; `errors` holds every problem found. */
export class InvalidObjectError extends CoreError {
  readonly kind: string;
  readonly objectName: string;
  readonly errors: readonly FieldError[];
  constructor(kind: string, objectName: string, errors: readonly FieldError[]) {
    const first = errors.length > 0 ? formatFieldError(errors[0]) : 'invalid';
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    super('INVALID', `${kind} ${JSON.stringify(objectName)} is invalid: ${first}${more}`);
    this.kind = kind;
    this.objectName = objectName;
    this.errors = errors;
  }
}

/** Longest DNS-1123 subdomain (most object names). */
export const dnsSubdomainLengthMax = 253;
/** Longest DNS-1123 label (Namespace and Service names, container and volume names). */
export const dnsLabelLengthMax = 63;
/** Largest total size of a map of annotations, in UTF-8 bytes (key + value). */
export const annotationsSizeBytesMax = 256 * 1024;
/** Largest total size of a ConfigMap's or Secret's data, in bytes. */
export const dataSizeBytesMax = 1024 * 1024;
/** Longest ConfigMap or Secret key. */
export const configKeyLengthMax = 253;
/** Longest IANA service name (named ports). */
export const portNameLengthMax = 15;
/** Largest `completions` and `parallelism` of an Indexed Job. */
export const indexedJobCompletionsMax = 100_000;

const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomainPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const configKeyPattern = /^[-._a-zA-Z0-9]+$/;
const envNamePattern = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const portNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const percentPattern = /^[0-9]+%$/;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const hexGroupPattern = /^[0-9a-fA-F]{1,4}$/;

/**
 * Bytes of `text` in UTF-8 (a lone surrogate counts as U+FFFD, 3 bytes, as TextEncoder writes
 * it), without encoding it: every pod's annotations are measured at each write.
 */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i += 1;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** IPv4 dotted quad without leading zeros. */
export function isIPv4(text: string): boolean {
  return ipv4Pattern.test(text);
}

/** IPv6 in RFC 4291 text form (`::` compression, trailing dotted IPv4); no zone (`%eth0`). */
export function isIPv6(text: string): boolean {
  if (text.length > 45 || !text.includes(':')) return false;
  let s = text;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!ipv4Pattern.test(tail)) return false;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const all = halves.flatMap(groups);
  if (!all.every((g) => hexGroupPattern.test(g))) return false;
  return halves.length === 2 ? all.length <= 7 : all.length === 8;
}

/** `address/prefix` with an IPv4 (prefix 0-32) or IPv6 (prefix 0-128) address. */
export function isCIDR(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const address = text.slice(0, slash);
  const prefix = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefix)) return false;
  if (isIPv4(address)) return Number(prefix) <= 32;
  return isIPv6(address) && Number(prefix) <= 128;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own property only: input keys such as `__proto__` or `constructor` must not reach the prototype. */
function get(obj: Json, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function child(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

function quote(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/** Accumulates errors; each check reports and returns whether the value is usable further. */
class Checker {
  readonly errors: FieldError[] = [];

  add(path: string, type: FieldErrorType, message: string): false {
    this.errors.push({ path, type, message });
    return false;
  }
  required(path: string): false {
    return this.add(path, FieldErrorType.Required, 'required');
  }
  invalid(path: string, message: string): false {
    return this.add(path, FieldErrorType.Invalid, message);
  }

  /** A present value must be a record; absent is fine unless `required`. */
  record(value: unknown, path: string, required = false): value is Json {
    if (value === undefined || value === null) return required ? this.required(path) : false;
    return isRecord(value) || this.invalid(path, 'must be an object');
  }
  array(value: unknown, path: string, required = false): value is unknown[] {
    if (value === undefined || value === null) return required ? this.required(path) : false;
    return Array.isArray(value) || this.invalid(path, 'must be an array');
  }
  string(value: unknown, path: string, required = false): value is string {
    if (value === undefined || value === null || value === '') {
      return required ? this.required(path) : false;
    }
    return typeof value === 'string' || this.invalid(path, 'must be a string');
  }
  boolean(value: unknown, path: string): void {
    if (value !== undefined && value !== null && typeof value !== 'boolean') {
      this.invalid(path, 'must be a boolean');
    }
  }
  /** A present value must be an integer >= `min` (and <= `max`). */
  integer(value: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER, required = false): void {
    if (value === undefined || value === null) {
      if (required) this.required(path);
      return;
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      this.invalid(path, 'must be an integer');
    } else if (value < min) {
      this.invalid(path, `must be >= ${min}`);
    } else if (value > max) {
      this.invalid(path, `must be <= ${max}`);
    }
  }
  oneOf(value: unknown, path: string, supported: readonly string[]): void {
    if (value === undefined || value === null) return;
    if (typeof value !== 'string' || !supported.includes(value)) {
      this.add(
        path,
        FieldErrorType.NotSupported,
        `unsupported value ${JSON.stringify(value)}: supported values: ${quote(supported)}`,
      );
    }
  }
  dnsLabel(value: string, path: string): void {
    if (value.length > dnsLabelLengthMax) {
      this.add(path, FieldErrorType.TooLong, `must be no more than ${dnsLabelLengthMax} characters`);
    } else if (!dnsLabelPattern.test(value)) {
      this.invalid(
        path,
        "must be a DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric",
      );
    }
  }
  dnsSubdomain(value: string, path: string): void {
    if (value.length > dnsSubdomainLengthMax) {
      this.add(path, FieldErrorType.TooLong, `must be no more than ${dnsSubdomainLengthMax} characters`);
    } else if (!dnsSubdomainPattern.test(value)) {
      this.invalid(
        path,
        "must be a DNS-1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric",
      );
    }
  }
  /** A map of strings; returns its entries (only string-valued ones). */
  stringMap(value: unknown, path: string): [string, string][] {
    if (!this.record(value, path)) return [];
    const entries: [string, string][] = [];
    for (const [key, v] of Object.entries(value)) {
      if (typeof v === 'string') entries.push([key, v]);
      else this.invalid(`${path}[${key}]`, 'must be a string');
    }
    return entries;
  }
  labels(value: unknown, path: string): void {
    for (const [key, v] of this.stringMap(value, path)) {
      for (const problem of [...labelKeyProblems(key), ...labelValueProblems(v)]) this.invalid(path, problem);
    }
  }
  /** A port number 1-65535 or an IANA service name. */
  intOrPortName(value: unknown, path: string, required: boolean): void {
    if (value === undefined || value === null || value === '') {
      if (required) this.required(path);
    } else if (typeof value === 'number') {
      this.integer(value, path, 1, 65535);
    } else if (typeof value === 'string') {
      this.portName(value, path);
    } else {
      this.invalid(path, 'must be a port number or name');
    }
  }
  portName(value: string, path: string): void {
    if (value.length > portNameLengthMax) {
      this.add(path, FieldErrorType.TooLong, `must be no more than ${portNameLengthMax} characters`);
    } else if (!portNamePattern.test(value) || !/[a-z]/.test(value) || value.includes('--')) {
      this.invalid(
        path,
        "must be an IANA service name: lowercase alphanumerics or '-', with at least one letter",
      );
    }
  }
  /** Reports `duplicate` when `key` was seen before under `seen`. */
  unique(seen: Set<string>, key: string, path: string, shown: string = key): void {
    if (seen.has(key)) this.add(path, FieldErrorType.Duplicate, `duplicate value ${JSON.stringify(shown)}`);
    seen.add(key);
  }
  /** Items of a present array that are records; reports the others. */
  records(value: unknown, path: string, required = false): [Json, string][] {
    if (!this.array(value, path, required)) return [];
    if (required && value.length === 0) {
      this.required(path);
      return [];
    }
    const items: [Json, string][] = [];
    // An index loop, not forEach: holes in an array are visited (and refused) too.
    for (let index = 0; index < value.length; index += 1) {
      const item = value[index];
      if (this.record(item, `${path}[${index}]`, true)) items.push([item, `${path}[${index}]`]);
    }
    return items;
  }
}

// ---------------------------------------------------------------- entry points

/** Every problem with `obj`; empty when valid. Never throws. */
export function validateObject(obj: unknown): FieldError[] {
  const c = new Checker();
  if (!isRecord(obj)) {
    c.invalid('', 'must be an object');
    return c.errors;
  }
  const kind = get(obj, 'kind');
  if (!c.string(kind, 'kind', true)) return c.errors;
  if (!isKnownKind(kind)) {
    c.oneOf(kind, 'kind', Object.keys(kindInfo));
    return c.errors;
  }
  const apiVersion = get(obj, 'apiVersion');
  if (c.string(apiVersion, 'apiVersion', true) && apiVersion !== kindInfo[kind].apiVersion) {
    c.oneOf(apiVersion, 'apiVersion', [kindInfo[kind].apiVersion]);
  }
  const metadata = get(obj, 'metadata');
  if (c.record(metadata, 'metadata', true)) checkObjectMeta(c, metadata, kind);
  checkKind(c, obj, kind);
  return c.errors;
}

/** Throws `InvalidObjectError` unless `obj` is valid. */
export function assertValidObject(obj: unknown): void {
  const errors = validateObject(obj);
  if (errors.length === 0) return;
  const kind =
    isRecord(obj) && typeof get(obj, 'kind') === 'string' ? (get(obj, 'kind') as string) : 'object';
  const metadata = isRecord(obj) ? get(obj, 'metadata') : undefined;
  const name = isRecord(metadata) ? get(metadata, 'name') : undefined;
  throw new InvalidObjectError(kind, typeof name === 'string' ? name : '', errors);
}

function checkKind(c: Checker, obj: Json, kind: Kind): void {
  switch (kind) {
    case 'Namespace':
      checkNamespace(c, obj);
      return;
    case 'Pod':
      if (c.record(get(obj, 'spec'), 'spec', true))
        checkPodSpec(c, get(obj, 'spec') as Json, 'spec', anyRestart);
      checkPodStatus(c, get(obj, 'status'));
      return;
    case 'ConfigMap':
      checkConfigMap(c, obj);
      return;
    case 'Secret':
      checkSecret(c, obj);
      return;
    case 'Service':
      if (c.record(get(obj, 'spec'), 'spec', true)) checkServiceSpec(c, get(obj, 'spec') as Json);
      return;
    case 'ReplicaSet':
    case 'Deployment':
    case 'DaemonSet':
    case 'StatefulSet':
    case 'Job':
      if (c.record(get(obj, 'spec'), 'spec', true)) checkWorkloadSpec(c, get(obj, 'spec') as Json, kind);
      checkWorkloadStatus(c, get(obj, 'status'), kind);
      return;
    case 'Node':
      checkNode(c, obj);
      return;
    case 'Endpoints':
      checkEndpoints(c, obj);
      return;
    case 'Event':
      checkEvent(c, obj);
      return;
    case 'Lease':
      checkLease(c, obj);
      return;
    case 'CronJob':
      checkCronJob(c, obj);
      return;
    case 'ControllerRevision':
      c.integer(get(obj, 'revision'), 'revision', 0, Number.MAX_SAFE_INTEGER, true);
      return;
    case 'LimitRange':
      checkLimitRange(c, obj);
      return;
    case 'ResourceQuota':
      checkResourceQuota(c, obj);
      return;
    case 'EndpointSlice':
      checkEndpointSlice(c, obj);
      return;
    default: {
      const unknown: never = kind;
      throw new Error(`unhandled kind ${unknown}`);
    }
  }
}

// ---------------------------------------------------------------- metadata

function checkObjectMeta(c: Checker, meta: Json, kind: Kind): void {
  const nameIsLabel = kind === 'Namespace' || kind === 'Service';
  const checkName = (value: string, path: string) =>
    nameIsLabel ? c.dnsLabel(value, path) : c.dnsSubdomain(value, path);
  const name = get(meta, 'name');
  const generateName = get(meta, 'generateName');
  const hasGenerateName = c.string(generateName, 'metadata.generateName');
  if (c.string(name, 'metadata.name', !hasGenerateName)) checkName(name, 'metadata.name');
  else if (hasGenerateName) checkName(`${generateName}a`, 'metadata.generateName');

  const namespace = get(meta, 'namespace');
  if (!kindInfo[kind].namespaced) {
    if (namespace !== undefined && namespace !== null && namespace !== '') {
      c.add('metadata.namespace', FieldErrorType.Forbidden, 'not allowed on this type');
    }
  } else if (c.string(namespace, 'metadata.namespace', true)) {
    c.dnsLabel(namespace, 'metadata.namespace');
  }

  c.labels(get(meta, 'labels'), 'metadata.labels');
  checkAnnotations(c, get(meta, 'annotations'), 'metadata.annotations');
  for (const field of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp']) {
    c.string(get(meta, field), `metadata.${field}`);
  }
  c.integer(get(meta, 'generation'), 'metadata.generation', 0);
  c.integer(get(meta, 'deletionGracePeriodSeconds'), 'metadata.deletionGracePeriodSeconds', 0);
  for (const [ref, path] of c.records(get(meta, 'ownerReferences'), 'metadata.ownerReferences')) {
    for (const field of ['apiVersion', 'kind', 'name', 'uid'])
      c.string(get(ref, field), child(path, field), true);
    c.boolean(get(ref, 'controller'), child(path, 'controller'));
    c.boolean(get(ref, 'blockOwnerDeletion'), child(path, 'blockOwnerDeletion'));
  }
  checkFinalizers(c, get(meta, 'finalizers'), 'metadata.finalizers');
}

function checkAnnotations(c: Checker, value: unknown, path: string): void {
  let sizeBytes = 0;
  for (const [key, v] of c.stringMap(value, path)) {
    for (const problem of labelKeyProblems(key)) c.invalid(path, problem);
    sizeBytes += utf8ByteLength(key) + utf8ByteLength(v);
  }
  if (sizeBytes > annotationsSizeBytesMax) {
    c.add(path, FieldErrorType.TooLong, `must have at most ${annotationsSizeBytesMax} bytes`);
  }
}

function checkFinalizers(c: Checker, value: unknown, path: string): void {
  if (!c.array(value, path)) return;
  const seen = new Set<string>();
  // An index loop, not forEach: holes in an array are visited (and refused) too.
  for (let index = 0; index < value.length; index += 1) {
    const finalizer = value[index];
    const at = `${path}[${index}]`;
    if (!c.string(finalizer, at, true)) continue;
    for (const problem of labelKeyProblems(finalizer)) c.invalid(at, problem);
    c.unique(seen, finalizer, at);
  }
}

// ---------------------------------------------------------------- Namespace

function checkNamespace(c: Checker, obj: Json): void {
  const spec = get(obj, 'spec');
  if (c.record(spec, 'spec')) checkFinalizers(c, get(spec, 'finalizers'), 'spec.finalizers');
  const status = get(obj, 'status');
  if (c.record(status, 'status')) {
    c.oneOf(get(status, 'phase'), 'status.phase', ['Active', 'Terminating']);
    checkConditions(c, get(status, 'conditions'), 'status.conditions');
  }
}

// ---------------------------------------------------------------- Pod

/** Which `restartPolicy` values a pod spec may have, and whether it must be set. */
interface RestartRule {
  readonly allowed: readonly string[];
  readonly required: boolean;
}
const anyRestart: RestartRule = { allowed: ['Always', 'OnFailure', 'Never'], required: false };
/** Pods of ReplicaSets, Deployments, DaemonSets and StatefulSets. */
const alwaysRestart: RestartRule = { allowed: ['Always'], required: false };
/** Pods of Jobs: the default `Always` is not allowed, so the field must be given. */
const jobRestart: RestartRule = { allowed: ['OnFailure', 'Never'], required: true };

/** Validates a pod spec at `path`. */
function checkPodSpec(c: Checker, spec: Json, path: string, restart: RestartRule): void {
  const volumeNames = checkVolumes(c, get(spec, 'volumes'), child(path, 'volumes'));
  const containerNames = new Set<string>();
  const groups: [string, boolean][] = [
    ['containers', true],
    ['initContainers', false],
  ];
  for (const [field, required] of groups) {
    for (const [container, at] of c.records(get(spec, field), child(path, field), required)) {
      checkContainer(c, container, at, volumeNames, containerNames, field === 'initContainers');
    }
  }
  const restartPolicy = get(spec, 'restartPolicy');
  if (restart.required && (restartPolicy == null || restartPolicy === '')) {
    c.required(child(path, 'restartPolicy'));
  }
  c.oneOf(restartPolicy, child(path, 'restartPolicy'), restart.allowed);
  c.integer(get(spec, 'terminationGracePeriodSeconds'), child(path, 'terminationGracePeriodSeconds'), 0);
  c.oneOf(get(spec, 'dnsPolicy'), child(path, 'dnsPolicy'), ['ClusterFirst', 'Default', 'None']);
  const nodeName = get(spec, 'nodeName');
  if (c.string(nodeName, child(path, 'nodeName'))) c.dnsSubdomain(nodeName, child(path, 'nodeName'));
  c.labels(get(spec, 'nodeSelector'), child(path, 'nodeSelector'));
  for (const [toleration, at] of c.records(get(spec, 'tolerations'), child(path, 'tolerations'))) {
    checkToleration(c, toleration, at);
  }
  c.integer(get(spec, 'activeDeadlineSeconds'), child(path, 'activeDeadlineSeconds'), 1);
  for (const field of ['hostname', 'subdomain']) {
    const value = get(spec, field);
    if (c.string(value, child(path, field))) c.dnsLabel(value, child(path, field));
  }
  c.string(get(spec, 'schedulerName'), child(path, 'schedulerName'));
  c.boolean(get(spec, 'enableServiceLinks'), child(path, 'enableServiceLinks'));
  const affinity = get(spec, 'affinity');
  if (c.record(affinity, child(path, 'affinity'))) checkAffinity(c, affinity, child(path, 'affinity'));
}

const nodeSelectorOperators = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;

/** Node affinity terms, pod (anti-)affinity terms; weights 1-100. */
function checkAffinity(c: Checker, affinity: Json, path: string): void {
  const nodeAffinity = get(affinity, 'nodeAffinity');
  if (c.record(nodeAffinity, child(path, 'nodeAffinity'))) {
    const at = child(path, 'nodeAffinity');
    const required = get(nodeAffinity, 'requiredDuringSchedulingIgnoredDuringExecution');
    const requiredAt = child(at, 'requiredDuringSchedulingIgnoredDuringExecution');
    if (c.record(required, requiredAt)) {
      const termsAt = child(requiredAt, 'nodeSelectorTerms');
      for (const [term, termAt] of c.records(get(required, 'nodeSelectorTerms'), termsAt, true)) {
        checkNodeSelectorTerm(c, term, termAt);
      }
    }
    const preferredAt = child(at, 'preferredDuringSchedulingIgnoredDuringExecution');
    for (const [pref, prefAt] of c.records(
      get(nodeAffinity, 'preferredDuringSchedulingIgnoredDuringExecution'),
      preferredAt,
    )) {
      c.integer(get(pref, 'weight'), child(prefAt, 'weight'), 1, 100, true);
      const preference = get(pref, 'preference');
      if (c.record(preference, child(prefAt, 'preference'), true)) {
        checkNodeSelectorTerm(c, preference, child(prefAt, 'preference'));
      }
    }
  }
  for (const field of ['podAffinity', 'podAntiAffinity']) {
    const rules = get(affinity, field);
    const at = child(path, field);
    if (!c.record(rules, at)) continue;
    const requiredAt = child(at, 'requiredDuringSchedulingIgnoredDuringExecution');
    for (const [term, termAt] of c.records(
      get(rules, 'requiredDuringSchedulingIgnoredDuringExecution'),
      requiredAt,
    )) {
      checkPodAffinityTerm(c, term, termAt);
    }
    const preferredAt = child(at, 'preferredDuringSchedulingIgnoredDuringExecution');
    for (const [pref, prefAt] of c.records(
      get(rules, 'preferredDuringSchedulingIgnoredDuringExecution'),
      preferredAt,
    )) {
      c.integer(get(pref, 'weight'), child(prefAt, 'weight'), 1, 100, true);
      const term = get(pref, 'podAffinityTerm');
      if (c.record(term, child(prefAt, 'podAffinityTerm'), true)) {
        checkPodAffinityTerm(c, term, child(prefAt, 'podAffinityTerm'));
      }
    }
  }
}

function checkNodeSelectorTerm(c: Checker, term: Json, path: string): void {
  for (const field of ['matchExpressions', 'matchFields']) {
    for (const [req, at] of c.records(get(term, field), child(path, field))) {
      const key = get(req, 'key');
      if (c.string(key, child(at, 'key'), true) && field === 'matchExpressions') {
        for (const problem of labelKeyProblems(key)) c.invalid(child(at, 'key'), problem);
      }
      if (field === 'matchFields' && typeof key === 'string' && key !== 'metadata.name') {
        c.oneOf(key, child(at, 'key'), ['metadata.name']);
      }
      const operator = get(req, 'operator');
      if (c.string(operator, child(at, 'operator'), true)) {
        c.oneOf(operator, child(at, 'operator'), nodeSelectorOperators);
      }
      const values = get(req, 'values');
      if (values != null && (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))) {
        c.invalid(child(at, 'values'), 'must be an array of strings');
        continue;
      }
      const count = Array.isArray(values) ? values.length : 0;
      if ((operator === 'In' || operator === 'NotIn') && count === 0) {
        c.required(child(at, 'values'));
      } else if ((operator === 'Exists' || operator === 'DoesNotExist') && count > 0) {
        c.add(
          child(at, 'values'),
          FieldErrorType.Forbidden,
          'may not be specified when `operator` is Exists or DoesNotExist',
        );
      } else if (operator === 'Gt' || operator === 'Lt') {
        if (count !== 1 || !/^-?\d+$/.test(String((values as string[])[0]))) {
          c.invalid(child(at, 'values'), 'must be a single integer for Gt and Lt');
        }
      }
    }
  }
}

function checkPodAffinityTerm(c: Checker, term: Json, path: string): void {
  const key = get(term, 'topologyKey');
  if (c.string(key, child(path, 'topologyKey'), true)) {
    for (const problem of labelKeyProblems(key)) c.invalid(child(path, 'topologyKey'), problem);
  }
  const selector = get(term, 'labelSelector');
  if (selector != null) checkSelector(c, selector, child(path, 'labelSelector'), true);
  const namespaces = get(term, 'namespaces');
  if (c.array(namespaces, child(path, 'namespaces'))) {
    // An index loop, not forEach: holes in an array are visited (and refused) too.
    for (let i = 0; i < namespaces.length; i += 1) {
      const ns = namespaces[i];
      const at = `${child(path, 'namespaces')}[${i}]`;
      if (c.string(ns, at, true)) c.dnsLabel(ns, at);
    }
  }
}

function checkVolumes(c: Checker, value: unknown, path: string): Set<string> {
  const names = new Set<string>();
  for (const [volume, at] of c.records(value, path)) {
    const name = get(volume, 'name');
    if (c.string(name, child(at, 'name'), true)) {
      c.dnsLabel(name, child(at, 'name'));
      c.unique(names, name, child(at, 'name'));
    }
    const sources = ['emptyDir', 'hostPath', 'configMap', 'secret'].filter((s) => get(volume, s) != null);
    if (sources.length === 0) c.required(`${at}.volumeSource`);
    if (sources.length > 1) {
      c.add(child(at, sources[1]), FieldErrorType.Forbidden, 'may not specify more than 1 volume type');
    }
    const emptyDir = get(volume, 'emptyDir');
    if (c.record(emptyDir, child(at, 'emptyDir'))) {
      c.oneOf(get(emptyDir, 'medium'), child(at, 'emptyDir.medium'), ['', 'Memory']);
      checkQuantity(c, get(emptyDir, 'sizeLimit'), child(at, 'emptyDir.sizeLimit'));
    }
    const hostPath = get(volume, 'hostPath');
    if (c.record(hostPath, child(at, 'hostPath')))
      c.string(get(hostPath, 'path'), child(at, 'hostPath.path'), true);
    const configMap = get(volume, 'configMap');
    if (c.record(configMap, child(at, 'configMap'))) {
      c.string(get(configMap, 'name'), child(at, 'configMap.name'), true);
      checkKeyToPaths(c, get(configMap, 'items'), child(at, 'configMap.items'));
    }
    const secret = get(volume, 'secret');
    if (c.record(secret, child(at, 'secret'))) {
      c.string(get(secret, 'secretName'), child(at, 'secret.secretName'), true);
      checkKeyToPaths(c, get(secret, 'items'), child(at, 'secret.items'));
    }
  }
  return names;
}

function checkKeyToPaths(c: Checker, value: unknown, path: string): void {
  for (const [item, at] of c.records(value, path)) {
    const key = get(item, 'key');
    if (c.string(key, child(at, 'key'), true)) checkConfigKey(c, key, child(at, 'key'));
    c.string(get(item, 'path'), child(at, 'path'), true);
  }
}

function checkContainer(
  c: Checker,
  container: Json,
  path: string,
  volumeNames: ReadonlySet<string>,
  containerNames: Set<string>,
  isInit: boolean,
): void {
  const name = get(container, 'name');
  if (c.string(name, child(path, 'name'), true)) {
    c.dnsLabel(name, child(path, 'name'));
    c.unique(containerNames, name, child(path, 'name'));
  }
  c.string(get(container, 'image'), child(path, 'image'), true);
  for (const field of ['command', 'args']) checkStrings(c, get(container, field), child(path, field));
  c.string(get(container, 'workingDir'), child(path, 'workingDir'));
  checkContainerPorts(c, get(container, 'ports'), child(path, 'ports'));
  checkEnv(c, get(container, 'env'), child(path, 'env'));
  checkEnvFrom(c, get(container, 'envFrom'), child(path, 'envFrom'));
  checkResources(c, get(container, 'resources'), child(path, 'resources'));
  for (const [mount, at] of c.records(get(container, 'volumeMounts'), child(path, 'volumeMounts'))) {
    const volume = get(mount, 'name');
    if (c.string(volume, child(at, 'name'), true) && !volumeNames.has(volume)) {
      c.invalid(child(at, 'name'), `volume ${JSON.stringify(volume)} not found`);
    }
    c.string(get(mount, 'mountPath'), child(at, 'mountPath'), true);
    c.string(get(mount, 'subPath'), child(at, 'subPath'));
    c.boolean(get(mount, 'readOnly'), child(at, 'readOnly'));
  }
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const value = get(container, probe);
    if (value == null) continue;
    if (isInit) c.add(child(path, probe), FieldErrorType.Forbidden, 'may not be set for init containers');
    else if (c.record(value, child(path, probe))) checkProbe(c, value, child(path, probe), probe);
  }
  const lifecycle = get(container, 'lifecycle');
  if (c.record(lifecycle, child(path, 'lifecycle'))) {
    for (const hook of ['postStart', 'preStop']) {
      const handler = get(lifecycle, hook);
      if (c.record(handler, child(path, `lifecycle.${hook}`))) {
        checkHandler(c, handler, child(path, `lifecycle.${hook}`));
      }
    }
  }
  c.oneOf(get(container, 'imagePullPolicy'), child(path, 'imagePullPolicy'), [
    'Always',
    'IfNotPresent',
    'Never',
  ]);
  c.string(get(container, 'terminationMessagePath'), child(path, 'terminationMessagePath'));
}

function checkStrings(c: Checker, value: unknown, path: string): void {
  if (!c.array(value, path)) return;
  // An index loop, not forEach: holes in an array are visited (and refused) too.
  for (let index = 0; index < value.length; index += 1) {
    const item = value[index];
    if (typeof item !== 'string') c.invalid(`${path}[${index}]`, 'must be a string');
  }
}

function checkContainerPorts(c: Checker, value: unknown, path: string): void {
  const names = new Set<string>();
  for (const [port, at] of c.records(value, path)) {
    c.integer(get(port, 'containerPort'), child(at, 'containerPort'), 1, 65535, true);
    c.integer(get(port, 'hostPort'), child(at, 'hostPort'), 1, 65535);
    c.oneOf(get(port, 'protocol'), child(at, 'protocol'), ['TCP', 'UDP', 'SCTP']);
    const name = get(port, 'name');
    if (c.string(name, child(at, 'name'))) {
      c.portName(name, child(at, 'name'));
      c.unique(names, name, child(at, 'name'));
    }
  }
}

/** The pod fields an env var may take with `fieldRef`, as Kubernetes allows. */
const envFieldPaths = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.podIP',
] as const;
/** `metadata.labels['key']` / `metadata.annotations['key']` (an Indexed Job's completion index). */
const envMapFieldPattern = /^metadata\.(labels|annotations)\['[^']+'\]$/;
const envResourceFields = ['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory'] as const;

function checkEnvFrom(c: Checker, value: unknown, path: string): void {
  for (const [src, at] of c.records(value, path)) {
    c.string(get(src, 'prefix'), child(at, 'prefix'));
    const refs = ['configMapRef', 'secretRef'].filter((k) => get(src, k) != null);
    if (refs.length !== 1) {
      c.invalid(at, 'must specify exactly one of configMapRef and secretRef');
      continue;
    }
    const ref = get(src, refs[0]);
    if (!c.record(ref, child(at, refs[0]))) continue;
    c.string(get(ref, 'name'), child(at, `${refs[0]}.name`), true);
    c.boolean(get(ref, 'optional'), child(at, `${refs[0]}.optional`));
  }
}

function checkEnv(c: Checker, value: unknown, path: string): void {
  for (const [env, at] of c.records(value, path)) {
    const name = get(env, 'name');
    if (c.string(name, child(at, 'name'), true) && !envNamePattern.test(name)) {
      c.invalid(
        child(at, 'name'),
        "must consist of alphabetic characters, digits, '_', '-' or '.', and must not start with a digit",
      );
    }
    const envValue = get(env, 'value');
    c.string(envValue, child(at, 'value'));
    const valueFrom = get(env, 'valueFrom');
    if (!c.record(valueFrom, child(at, 'valueFrom'))) continue;
    if (typeof envValue === 'string' && envValue !== '') {
      c.invalid(child(at, 'valueFrom'), 'may not be specified when `value` is not empty');
    }
    const sources = ['configMapKeyRef', 'secretKeyRef', 'fieldRef', 'resourceFieldRef'].filter(
      (s) => get(valueFrom, s) != null,
    );
    if (sources.length === 0) c.required(child(at, 'valueFrom'));
    if (sources.length > 1) {
      c.add(child(at, 'valueFrom'), FieldErrorType.Forbidden, 'may not have more than one field specified');
    }
    for (const source of sources) {
      const ref = get(valueFrom, source);
      const refPath = child(at, `valueFrom.${source}`);
      if (!c.record(ref, refPath)) continue;
      if (source === 'fieldRef') {
        const fieldPath = get(ref, 'fieldPath');
        if (c.string(fieldPath, child(refPath, 'fieldPath'), true) && !envMapFieldPattern.test(fieldPath)) {
          c.oneOf(fieldPath, child(refPath, 'fieldPath'), envFieldPaths);
        }
        continue;
      }
      if (source === 'resourceFieldRef') {
        const resource = get(ref, 'resource');
        if (c.string(resource, child(refPath, 'resource'), true)) {
          c.oneOf(resource, child(refPath, 'resource'), envResourceFields);
        }
        c.string(get(ref, 'containerName'), child(refPath, 'containerName'));
        checkQuantity(c, get(ref, 'divisor'), child(refPath, 'divisor'));
        continue;
      }
      c.string(get(ref, 'name'), child(refPath, 'name'), true);
      const key = get(ref, 'key');
      if (c.string(key, child(refPath, 'key'), true)) checkConfigKey(c, key, child(refPath, 'key'));
      c.boolean(get(ref, 'optional'), child(refPath, 'optional'));
    }
  }
}

function checkQuantity(c: Checker, value: unknown, path: string): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') {
    c.invalid(path, 'must be a quantity');
    return undefined;
  }
  try {
    const nanos = parseQuantity(text).nanos;
    if (nanos < 0n) c.invalid(path, 'must be >= 0');
    return nanos;
  } catch (e) {
    if (!(e instanceof QuantityError)) throw e;
    c.invalid(path, e.message);
    return undefined;
  }
}

function checkResources(c: Checker, value: unknown, path: string): void {
  if (!c.record(value, path)) return;
  const parsed = (field: string): Map<string, bigint> => {
    const quantities = new Map<string, bigint>();
    const map = get(value, field);
    if (!c.record(map, child(path, field))) return quantities;
    for (const [name, q] of Object.entries(map)) {
      const nanos = checkQuantity(c, q, `${path}.${field}[${name}]`);
      if (nanos !== undefined) quantities.set(name, nanos);
    }
    return quantities;
  };
  const requests = parsed('requests');
  const limits = parsed('limits');
  for (const [name, request] of requests) {
    const limit = limits.get(name);
    if (limit !== undefined && request > limit) {
      c.invalid(`${path}.requests[${name}]`, `must be less than or equal to ${name} limit`);
    }
  }
}

function checkProbe(c: Checker, probe: Json, path: string, kind: string): void {
  checkHandler(c, probe, path);
  c.integer(get(probe, 'initialDelaySeconds'), child(path, 'initialDelaySeconds'), 0);
  for (const field of ['periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold']) {
    c.integer(get(probe, field), child(path, field), 1);
  }
  const success = get(probe, 'successThreshold');
  if (kind !== 'readinessProbe' && typeof success === 'number' && success > 1) {
    c.invalid(child(path, 'successThreshold'), 'must be 1');
  }
}

/** Exactly one of `exec`, `httpGet`, `tcpSocket`. */
function checkHandler(c: Checker, handler: Json, path: string): void {
  const kinds = ['exec', 'httpGet', 'tcpSocket'].filter((k) => get(handler, k) != null);
  if (kinds.length === 0) c.add(path, FieldErrorType.Required, 'must specify a handler type');
  if (kinds.length > 1) {
    c.add(child(path, kinds[1]), FieldErrorType.Forbidden, 'may not specify more than 1 handler type');
  }
  const exec = get(handler, 'exec');
  if (c.record(exec, child(path, 'exec'))) {
    const command = get(exec, 'command');
    if (Array.isArray(command) && command.length === 0) c.required(child(path, 'exec.command'));
    else if (c.array(command, child(path, 'exec.command'), true))
      checkStrings(c, command, child(path, 'exec.command'));
  }
  const httpGet = get(handler, 'httpGet');
  if (c.record(httpGet, child(path, 'httpGet'))) {
    c.intOrPortName(get(httpGet, 'port'), child(path, 'httpGet.port'), true);
    c.string(get(httpGet, 'path'), child(path, 'httpGet.path'));
    c.string(get(httpGet, 'host'), child(path, 'httpGet.host'));
    c.oneOf(get(httpGet, 'scheme'), child(path, 'httpGet.scheme'), ['HTTP', 'HTTPS']);
  }
  const tcpSocket = get(handler, 'tcpSocket');
  if (c.record(tcpSocket, child(path, 'tcpSocket'))) {
    c.intOrPortName(get(tcpSocket, 'port'), child(path, 'tcpSocket.port'), true);
    c.string(get(tcpSocket, 'host'), child(path, 'tcpSocket.host'));
  }
}

function checkToleration(c: Checker, toleration: Json, path: string): void {
  const key = get(toleration, 'key');
  if (c.string(key, child(path, 'key'))) {
    for (const problem of labelKeyProblems(key)) c.invalid(child(path, 'key'), problem);
  }
  const operator = get(toleration, 'operator');
  c.oneOf(operator, child(path, 'operator'), ['Exists', 'Equal']);
  const value = get(toleration, 'value');
  if (c.string(value, child(path, 'value')) && operator === 'Exists') {
    c.invalid(child(path, 'value'), "must be empty when `operator` is 'Exists'");
  }
  if (operator !== 'Exists' && (key === undefined || key === '')) {
    c.invalid(child(path, 'operator'), 'must be Exists when `key` is empty');
  }
  c.oneOf(get(toleration, 'effect'), child(path, 'effect'), [
    '',
    'NoSchedule',
    'PreferNoSchedule',
    'NoExecute',
  ]);
  const seconds = get(toleration, 'tolerationSeconds');
  c.integer(seconds, child(path, 'tolerationSeconds'), Number.MIN_SAFE_INTEGER);
  if (seconds != null && get(toleration, 'effect') !== 'NoExecute') {
    c.invalid(child(path, 'effect'), 'must be NoExecute when `tolerationSeconds` is set');
  }
}

function checkPodStatus(c: Checker, status: unknown): void {
  if (!c.record(status, 'status')) return;
  c.oneOf(get(status, 'phase'), 'status.phase', ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']);
  for (const field of ['podIP', 'hostIP', 'startTime', 'reason', 'message']) {
    c.string(get(status, field), `status.${field}`);
  }
  for (const [condition, at] of c.records(get(status, 'conditions'), 'status.conditions')) {
    c.string(get(condition, 'type'), child(at, 'type'), true);
    c.oneOf(get(condition, 'status'), child(at, 'status'), ['True', 'False', 'Unknown']);
  }
  for (const field of ['containerStatuses', 'initContainerStatuses']) {
    for (const [status_, at] of c.records(get(status, field), `status.${field}`)) {
      c.string(get(status_, 'name'), child(at, 'name'), true);
      c.integer(get(status_, 'restartCount'), child(at, 'restartCount'), 0);
      c.boolean(get(status_, 'ready'), child(at, 'ready'));
    }
  }
}

// ---------------------------------------------------------------- ConfigMap, Secret

function checkConfigKey(c: Checker, key: string, path: string): void {
  if (key.length > configKeyLengthMax) {
    c.add(path, FieldErrorType.TooLong, `must be no more than ${configKeyLengthMax} characters`);
  } else if (!configKeyPattern.test(key)) {
    c.invalid(path, "must consist of alphanumeric characters, '-', '_' or '.'");
  } else if (key === '.' || key === '..') {
    c.invalid(path, `must not be ${JSON.stringify(key)}`);
  }
}

/** Checks keys (recording them in `seen`) and values (base64 when asked); returns the data size in bytes. */
function checkDataMap(c: Checker, value: unknown, path: string, base64: boolean, seen: Set<string>): number {
  let sizeBytes = 0;
  for (const [key, v] of c.stringMap(value, path)) {
    const at = `${path}[${key}]`;
    checkConfigKey(c, key, at);
    c.unique(seen, key, at);
    if (base64 && !base64Pattern.test(v)) c.invalid(at, 'must be base64-encoded');
    sizeBytes += base64 ? Math.floor((v.length * 3) / 4) : utf8ByteLength(v);
  }
  return sizeBytes;
}

function checkDataSize(c: Checker, sizeBytes: number, path: string): void {
  if (sizeBytes > dataSizeBytesMax) {
    c.add(path, FieldErrorType.TooLong, `must have at most ${dataSizeBytesMax} bytes`);
  }
}

function checkConfigMap(c: Checker, obj: Json): void {
  const seen = new Set<string>();
  const size =
    checkDataMap(c, get(obj, 'data'), 'data', false, seen) +
    checkDataMap(c, get(obj, 'binaryData'), 'binaryData', true, seen);
  checkDataSize(c, size, 'data');
  c.boolean(get(obj, 'immutable'), 'immutable');
}

function checkSecret(c: Checker, obj: Json): void {
  const size = checkDataMap(c, get(obj, 'data'), 'data', true, new Set());
  checkDataMap(c, get(obj, 'stringData'), 'stringData', false, new Set());
  checkDataSize(c, size, 'data');
  c.string(get(obj, 'type'), 'type');
  c.boolean(get(obj, 'immutable'), 'immutable');
}

// ---------------------------------------------------------------- Service

function checkServiceSpec(c: Checker, spec: Json): void {
  const type = get(spec, 'type') ?? 'ClusterIP';
  c.oneOf(get(spec, 'type'), 'spec.type', ['ClusterIP', 'NodePort']);
  const clusterIP = get(spec, 'clusterIP');
  const headless = clusterIP === 'None';
  if (c.string(clusterIP, 'spec.clusterIP') && !headless && !ipv4Pattern.test(clusterIP)) {
    c.invalid('spec.clusterIP', 'must be a valid IPv4 address or "None"');
  }
  if (headless && type === 'NodePort') {
    c.invalid('spec.clusterIP', "may not be set to 'None' for NodePort services");
  }
  const ports = c.records(get(spec, 'ports'), 'spec.ports', !headless);
  const names = new Set<string>();
  const portKeys = new Set<string>();
  for (const [port, at] of ports) {
    const name = get(port, 'name');
    if (c.string(name, child(at, 'name'), ports.length > 1)) {
      c.dnsLabel(name, child(at, 'name'));
      c.unique(names, name, child(at, 'name'));
    }
    const protocol = get(port, 'protocol') ?? 'TCP';
    c.oneOf(get(port, 'protocol'), child(at, 'protocol'), ['TCP', 'UDP', 'SCTP']);
    const number = get(port, 'port');
    c.integer(number, child(at, 'port'), 1, 65535, true);
    if (typeof number === 'number')
      c.unique(portKeys, `${number}/${String(protocol)}`, child(at, 'port'), `${number}`);
    c.intOrPortName(get(port, 'targetPort'), child(at, 'targetPort'), false);
    const nodePort = get(port, 'nodePort');
    if (nodePort == null || nodePort === 0) continue;
    if (type !== 'NodePort') {
      c.add(
        child(at, 'nodePort'),
        FieldErrorType.Forbidden,
        `may not be used when \`type\` is '${String(type)}'`,
      );
    } else {
      c.integer(nodePort, child(at, 'nodePort'), 1, 65535);
    }
  }
  c.labels(get(spec, 'selector'), 'spec.selector');
  c.oneOf(get(spec, 'sessionAffinity'), 'spec.sessionAffinity', ['None', 'ClientIP']);
}

// ---------------------------------------------------------------- workloads

type WorkloadKind = 'ReplicaSet' | 'Deployment' | 'DaemonSet' | 'StatefulSet' | 'Job';

/**
 * A workload's selector and pod template, then its kind's own fields. A Job's selector may be
 * absent (the proposer generates it from the uid) unless `manualSelector` is true.
 */
function checkWorkloadSpec(c: Checker, spec: Json, kind: WorkloadKind, base = 'spec'): void {
  if (kind !== 'DaemonSet' && kind !== 'Job') c.integer(get(spec, 'replicas'), `${base}.replicas`, 0);
  if (kind !== 'Job') c.integer(get(spec, 'minReadySeconds'), `${base}.minReadySeconds`, 0);
  const rawSelector = get(spec, 'selector');
  const selectorOptional = kind === 'Job' && get(spec, 'manualSelector') !== true && rawSelector == null;
  const selector = selectorOptional ? undefined : checkSelector(c, rawSelector, `${base}.selector`);
  const template = get(spec, 'template');
  if (c.record(template, `${base}.template`, true)) {
    const metadata = get(template, 'metadata');
    let labels: Record<string, string> = {};
    if (c.record(metadata, `${base}.template.metadata`)) {
      c.labels(get(metadata, 'labels'), `${base}.template.metadata.labels`);
      checkAnnotations(c, get(metadata, 'annotations'), `${base}.template.metadata.annotations`);
      const raw = get(metadata, 'labels');
      if (isRecord(raw))
        labels = Object.fromEntries(
          Object.entries(raw).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
        );
    }
    if (selector !== undefined && !labelSelectorMatches(selector, labels)) {
      c.invalid(`${base}.template.metadata.labels`, 'does not match spec.selector');
    }
    const podSpec = get(template, 'spec');
    const restart = kind === 'Job' ? jobRestart : alwaysRestart;
    if (c.record(podSpec, `${base}.template.spec`, true))
      checkPodSpec(c, podSpec, `${base}.template.spec`, restart);
  }
  switch (kind) {
    case 'Deployment':
      checkDeploymentFields(c, spec);
      return;
    case 'DaemonSet':
      checkDaemonSetFields(c, spec);
      return;
    case 'StatefulSet':
      checkStatefulSetFields(c, spec);
      return;
    case 'Job':
      checkJobFields(c, spec, base);
      return;
    case 'ReplicaSet':
      return;
    default: {
      const unknown: never = kind;
      throw new Error(`unhandled kind ${unknown}`);
    }
  }
}

/** A required, non-empty API label selector; returns it parsed when valid. */
function checkSelector(
  c: Checker,
  value: unknown,
  path: string,
  allowEmpty = false,
): ReturnType<typeof labelSelectorFromApi> | undefined {
  if (!c.record(value, path, true)) return undefined;
  const matchLabels = get(value, 'matchLabels');
  const matchExpressions = get(value, 'matchExpressions');
  let wellFormed = true;
  if (matchLabels != null) {
    const entries = c.stringMap(matchLabels, child(path, 'matchLabels'));
    wellFormed = isRecord(matchLabels) && entries.length === Object.keys(matchLabels).length;
  }
  const expressions = c.records(matchExpressions, child(path, 'matchExpressions'));
  if (
    matchExpressions != null &&
    (!Array.isArray(matchExpressions) || expressions.length !== matchExpressions.length)
  ) {
    wellFormed = false;
  }
  for (const [expression, at] of expressions) {
    if (!c.string(get(expression, 'key'), child(at, 'key'), true)) wellFormed = false;
    if (!c.string(get(expression, 'operator'), child(at, 'operator'), true)) wellFormed = false;
    const values = get(expression, 'values');
    if (values != null && (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))) {
      wellFormed = c.invalid(child(at, 'values'), 'must be an array of strings');
    }
  }
  if (!wellFormed) return undefined;
  try {
    const parsed = labelSelectorFromApi(value as LabelSelector);
    if (parsed.requirements.length === 0 && !allowEmpty) {
      c.invalid(path, 'empty selector is invalid');
      return undefined;
    }
    return parsed;
  } catch (e) {
    if (!(e instanceof LabelSelectorError)) throw e;
    c.invalid(e.source === 'LabelSelector' ? path : `${path}.${e.source}`, e.reason);
    return undefined;
  }
}

function checkDeploymentFields(c: Checker, spec: Json): void {
  c.integer(get(spec, 'revisionHistoryLimit'), 'spec.revisionHistoryLimit', 0);
  const deadline = get(spec, 'progressDeadlineSeconds');
  c.integer(deadline, 'spec.progressDeadlineSeconds', 1);
  const minReady = get(spec, 'minReadySeconds');
  if (typeof deadline === 'number' && typeof minReady === 'number' && deadline <= minReady) {
    c.invalid('spec.progressDeadlineSeconds', 'must be greater than minReadySeconds');
  }
  c.boolean(get(spec, 'paused'), 'spec.paused');
  const strategy = get(spec, 'strategy');
  if (!c.record(strategy, 'spec.strategy')) return;
  const type = get(strategy, 'type');
  c.oneOf(type, 'spec.strategy.type', ['RollingUpdate', 'Recreate']);
  const rolling = get(strategy, 'rollingUpdate');
  if (type === 'Recreate' && rolling != null) {
    c.add(
      'spec.strategy.rollingUpdate',
      FieldErrorType.Forbidden,
      "may not be specified when strategy `type` is 'Recreate'",
    );
    return;
  }
  if (!c.record(rolling, 'spec.strategy.rollingUpdate')) return;
  const surge = checkIntOrPercent(c, get(rolling, 'maxSurge'), 'spec.strategy.rollingUpdate.maxSurge');
  const unavailable = checkIntOrPercent(
    c,
    get(rolling, 'maxUnavailable'),
    'spec.strategy.rollingUpdate.maxUnavailable',
  );
  if (unavailable?.percent && unavailable.value > 100) {
    c.invalid('spec.strategy.rollingUpdate.maxUnavailable', 'must not be greater than 100%');
  }
  if (surge?.value === 0 && unavailable?.value === 0) {
    c.invalid('spec.strategy.rollingUpdate.maxUnavailable', 'may not be 0 when maxSurge is 0');
  }
}

/** An integer >= 0 or a percentage `N%`; returns it when valid. */
function checkIntOrPercent(
  c: Checker,
  value: unknown,
  path: string,
): { value: number; percent: boolean } | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') {
    c.integer(value, path, 0);
    return Number.isSafeInteger(value) && value >= 0 ? { value, percent: false } : undefined;
  }
  if (typeof value === 'string' && percentPattern.test(value)) {
    return { value: Number(value.slice(0, -1)), percent: true };
  }
  c.invalid(path, "must be an integer or percentage (e.g. '5%')");
  return undefined;
}

/** `maxUnavailable` and `maxSurge` after defaulting: exactly one of them must be non-zero. */
function checkDaemonSetFields(c: Checker, spec: Json): void {
  c.integer(get(spec, 'revisionHistoryLimit'), 'spec.revisionHistoryLimit', 0);
  const strategy = get(spec, 'updateStrategy');
  if (!c.record(strategy, 'spec.updateStrategy')) return;
  c.oneOf(get(strategy, 'type'), 'spec.updateStrategy.type', ['RollingUpdate', 'OnDelete']);
  const rolling = get(strategy, 'rollingUpdate');
  if (!c.record(rolling, 'spec.updateStrategy.rollingUpdate')) return;
  const path = 'spec.updateStrategy.rollingUpdate';
  const unavailable = checkIntOrPercent(c, get(rolling, 'maxUnavailable'), child(path, 'maxUnavailable'));
  const surge = checkIntOrPercent(c, get(rolling, 'maxSurge'), child(path, 'maxSurge'));
  checkAtMost100Percent(c, unavailable, child(path, 'maxUnavailable'));
  checkAtMost100Percent(c, surge, child(path, 'maxSurge'));
  const rawUnavailable = get(rolling, 'maxUnavailable');
  const rawSurge = get(rolling, 'maxSurge');
  if ((rawUnavailable != null && !unavailable) || (rawSurge != null && !surge)) return;
  const hasUnavailable = (unavailable?.value ?? defaultDaemonSetMaxUnavailable) !== 0;
  const hasSurge = (surge?.value ?? defaultDaemonSetMaxSurge) !== 0;
  if (hasUnavailable && hasSurge)
    c.invalid(child(path, 'maxSurge'), 'may not be set when maxUnavailable is non-zero');
  if (!hasUnavailable && !hasSurge)
    c.invalid(child(path, 'maxUnavailable'), 'may not be 0 when maxSurge is 0');
}

function checkStatefulSetFields(c: Checker, spec: Json): void {
  c.integer(get(spec, 'revisionHistoryLimit'), 'spec.revisionHistoryLimit', 0);
  const serviceName = get(spec, 'serviceName');
  if (c.string(serviceName, 'spec.serviceName')) c.dnsLabel(serviceName, 'spec.serviceName');
  c.oneOf(get(spec, 'podManagementPolicy'), 'spec.podManagementPolicy', ['OrderedReady', 'Parallel']);
  const strategy = get(spec, 'updateStrategy');
  if (!c.record(strategy, 'spec.updateStrategy')) return;
  const type = get(strategy, 'type');
  c.oneOf(type, 'spec.updateStrategy.type', ['RollingUpdate', 'OnDelete']);
  const rolling = get(strategy, 'rollingUpdate');
  const path = 'spec.updateStrategy.rollingUpdate';
  if (type === 'OnDelete' && rolling != null) {
    c.invalid(path, "only allowed for updateStrategy 'RollingUpdate'");
    return;
  }
  if (!c.record(rolling, path)) return;
  c.integer(get(rolling, 'partition'), child(path, 'partition'), 0);
  const unavailable = checkIntOrPercent(c, get(rolling, 'maxUnavailable'), child(path, 'maxUnavailable'));
  if (unavailable?.value === 0) c.invalid(child(path, 'maxUnavailable'), 'must be greater than 0');
  checkAtMost100Percent(c, unavailable, child(path, 'maxUnavailable'));
}

function checkJobFields(c: Checker, spec: Json, base: string): void {
  for (const field of [
    'parallelism',
    'completions',
    'backoffLimit',
    'activeDeadlineSeconds',
    'ttlSecondsAfterFinished',
  ]) {
    c.integer(get(spec, field), `${base}.${field}`, 0);
  }
  c.boolean(get(spec, 'suspend'), `${base}.suspend`);
  c.boolean(get(spec, 'manualSelector'), `${base}.manualSelector`);
  checkPodFailurePolicy(c, spec, base);
  const mode = get(spec, 'completionMode');
  c.oneOf(mode, `${base}.completionMode`, ['NonIndexed', 'Indexed']);
  if (mode !== 'Indexed') return;
  const completions = get(spec, 'completions');
  if (completions == null)
    c.add(`${base}.completions`, FieldErrorType.Required, 'required when completion mode is Indexed');
  for (const field of ['completions', 'parallelism']) {
    const value = get(spec, field);
    if (typeof value === 'number' && value > indexedJobCompletionsMax) {
      c.invalid(`${base}.${field}`, `must be <= ${indexedJobCompletionsMax} when completion mode is Indexed`);
    }
  }
}

/** Rules in a Job's podFailurePolicy, and patterns per rule. */
export const podFailurePolicyRulesMax = 20;
/** Exit codes listed by one `onExitCodes`. */
export const podFailurePolicyExitCodesMax = 255;

/** As Kubernetes: exactly one matcher per rule, sorted distinct exit codes, `Never` restarts. */
function checkPodFailurePolicy(c: Checker, spec: Json, base: string): void {
  const policy = get(spec, 'podFailurePolicy');
  const path = `${base}.podFailurePolicy`;
  if (!c.record(policy, path)) return;
  const template = get(spec, 'template');
  const podSpec = isRecord(template) ? get(template, 'spec') : undefined;
  const restart = isRecord(podSpec) ? get(podSpec, 'restartPolicy') : undefined;
  if (restart !== undefined && restart !== 'Never') {
    c.add(
      `${base}.template.spec.restartPolicy`,
      FieldErrorType.NotSupported,
      'only "Never" is supported when podFailurePolicy is specified',
    );
  }
  const containers = new Set<string>();
  for (const list of ['containers', 'initContainers']) {
    const items = isRecord(podSpec) ? get(podSpec, list) : undefined;
    if (Array.isArray(items))
      for (const item of items)
        if (isRecord(item) && typeof item.name === 'string') containers.add(item.name);
  }
  const rules = c.records(get(policy, 'rules'), child(path, 'rules'), true);
  if (rules.length > podFailurePolicyRulesMax)
    c.invalid(child(path, 'rules'), `must have at most ${podFailurePolicyRulesMax} items`);
  for (const [rule, at] of rules) {
    const action = get(rule, 'action');
    if (action === 'FailIndex') {
      c.add(
        child(at, 'action'),
        FieldErrorType.NotSupported,
        'FailIndex requires backoffLimitPerIndex, which is not supported',
      );
    } else if (c.string(action, child(at, 'action'), true)) {
      c.oneOf(action, child(at, 'action'), ['FailJob', 'Ignore', 'Count']);
    }
    const onExitCodes = get(rule, 'onExitCodes');
    const onPodConditions = get(rule, 'onPodConditions');
    if (onExitCodes != null && onPodConditions != null) {
      c.invalid(at, 'specifying both onExitCodes and onPodConditions is not supported');
    } else if (onExitCodes == null && onPodConditions == null) {
      c.invalid(at, 'specifying one of onExitCodes and onPodConditions is required');
    }
    if (c.record(onExitCodes, child(at, 'onExitCodes')))
      checkOnExitCodes(c, onExitCodes, child(at, 'onExitCodes'), containers);
    const patterns = c.records(onPodConditions, child(at, 'onPodConditions'));
    if (patterns.length > podFailurePolicyRulesMax)
      c.invalid(child(at, 'onPodConditions'), `must have at most ${podFailurePolicyRulesMax} items`);
    for (const [pattern, p] of patterns) {
      c.string(get(pattern, 'type'), child(p, 'type'), true);
      c.oneOf(get(pattern, 'status'), child(p, 'status'), ['True', 'False', 'Unknown']);
    }
  }
}

function checkOnExitCodes(c: Checker, req: Json, path: string, containers: ReadonlySet<string>): void {
  const operator = get(req, 'operator');
  if (c.string(operator, child(path, 'operator'), true))
    c.oneOf(operator, child(path, 'operator'), ['In', 'NotIn']);
  const name = get(req, 'containerName');
  if (c.string(name, child(path, 'containerName')) && !containers.has(name)) {
    c.invalid(
      child(path, 'containerName'),
      'must be one of the container or initContainer names in the pod template',
    );
  }
  const values = get(req, 'values');
  if (!c.array(values, child(path, 'values'), true)) return;
  if (values.length === 0) c.required(child(path, 'values'));
  if (values.length > podFailurePolicyExitCodesMax)
    c.invalid(child(path, 'values'), `must have at most ${podFailurePolicyExitCodesMax} items`);
  let prev: number | undefined;
  // An index loop, not forEach: holes in an array are visited (and refused) too.
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    const at = `${child(path, 'values')}[${i}]`;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      c.invalid(at, 'must be an integer');
      continue;
    }
    if (operator === 'In' && v === 0) c.invalid(at, 'must not be 0 for the In operator');
    if (prev !== undefined && v === prev) c.add(at, FieldErrorType.Duplicate, `duplicate value ${v}`);
    else if (prev !== undefined && v < prev) c.invalid(at, 'must be ordered');
    prev = v;
  }
}

function checkAtMost100Percent(
  c: Checker,
  value: { value: number; percent: boolean } | undefined,
  path: string,
): void {
  if (value?.percent && value.value > 100) c.invalid(path, 'must not be greater than 100%');
}

/** Counters in each workload kind's status; all must be integers >= 0. */
const workloadStatusCounts: Readonly<Record<WorkloadKind, readonly string[]>> = {
  ReplicaSet: [
    'replicas',
    'fullyLabeledReplicas',
    'readyReplicas',
    'availableReplicas',
    'observedGeneration',
  ],
  Deployment: [
    'replicas',
    'updatedReplicas',
    'readyReplicas',
    'availableReplicas',
    'unavailableReplicas',
    'observedGeneration',
    'collisionCount',
  ],
  DaemonSet: [
    'currentNumberScheduled',
    'numberMisscheduled',
    'desiredNumberScheduled',
    'numberReady',
    'updatedNumberScheduled',
    'numberAvailable',
    'numberUnavailable',
    'observedGeneration',
    'collisionCount',
  ],
  StatefulSet: [
    'replicas',
    'readyReplicas',
    'currentReplicas',
    'updatedReplicas',
    'availableReplicas',
    'observedGeneration',
    'collisionCount',
  ],
  Job: ['active', 'succeeded', 'failed', 'ready'],
};

function checkWorkloadStatus(c: Checker, status: unknown, kind: WorkloadKind): void {
  if (!c.record(status, 'status')) return;
  for (const field of workloadStatusCounts[kind]) c.integer(get(status, field), `status.${field}`, 0);
  checkConditions(c, get(status, 'conditions'), 'status.conditions');
  if (kind !== 'Job') return;
  for (const field of ['startTime', 'completionTime', 'completedIndexes']) {
    c.string(get(status, field), `status.${field}`);
  }
}

function checkConditions(c: Checker, value: unknown, path: string): void {
  for (const [condition, at] of c.records(value, path)) {
    c.string(get(condition, 'type'), child(at, 'type'), true);
    c.oneOf(get(condition, 'status'), child(at, 'status'), ['True', 'False', 'Unknown']);
  }
}

// ---------------------------------------------------------------- Node

function checkNode(c: Checker, obj: Json): void {
  const spec = get(obj, 'spec');
  if (c.record(spec, 'spec')) {
    const podCIDR = get(spec, 'podCIDR');
    if (c.string(podCIDR, 'spec.podCIDR') && !isCIDR(podCIDR))
      c.invalid('spec.podCIDR', 'must be a valid CIDR');
    const podCIDRs = get(spec, 'podCIDRs');
    if (c.array(podCIDRs, 'spec.podCIDRs')) {
      // An index loop, not forEach: holes in an array are visited (and refused) too.
      for (let index = 0; index < podCIDRs.length; index += 1) {
        const cidr = podCIDRs[index];
        const at = `spec.podCIDRs[${index}]`;
        if (c.string(cidr, at, true) && !isCIDR(cidr)) c.invalid(at, 'must be a valid CIDR');
      }
    }
    c.boolean(get(spec, 'unschedulable'), 'spec.unschedulable');
    c.string(get(spec, 'providerID'), 'spec.providerID');
    checkTaints(c, get(spec, 'taints'), 'spec.taints');
  }
  const status = get(obj, 'status');
  if (!c.record(status, 'status')) return;
  for (const field of ['capacity', 'allocatable']) {
    const resources = get(status, field);
    if (!c.record(resources, `status.${field}`)) continue;
    for (const [name, quantity] of Object.entries(resources)) {
      checkQuantity(c, quantity, `status.${field}[${name}]`);
    }
  }
  checkConditions(c, get(status, 'conditions'), 'status.conditions');
  for (const [address, at] of c.records(get(status, 'addresses'), 'status.addresses')) {
    const type = get(address, 'type');
    if (c.string(type, child(at, 'type'), true)) {
      c.oneOf(type, child(at, 'type'), [
        'Hostname',
        'InternalIP',
        'ExternalIP',
        'InternalDNS',
        'ExternalDNS',
      ]);
    }
    c.string(get(address, 'address'), child(at, 'address'), true);
  }
  const nodeInfo = get(status, 'nodeInfo');
  if (c.record(nodeInfo, 'status.nodeInfo')) {
    for (const [field, value] of Object.entries(nodeInfo)) c.string(value, `status.nodeInfo.${field}`);
  }
}

/** Taints are unique by key and effect. */
function checkTaints(c: Checker, value: unknown, path: string): void {
  const seen = new Set<string>();
  for (const [taint, at] of c.records(value, path)) {
    const key = get(taint, 'key');
    if (c.string(key, child(at, 'key'), true)) {
      for (const problem of labelKeyProblems(key)) c.invalid(child(at, 'key'), problem);
    }
    const taintValue = get(taint, 'value');
    if (c.string(taintValue, child(at, 'value'))) {
      for (const problem of labelValueProblems(taintValue)) c.invalid(child(at, 'value'), problem);
    }
    const effect = get(taint, 'effect');
    if (c.string(effect, child(at, 'effect'), true)) {
      c.oneOf(effect, child(at, 'effect'), ['NoSchedule', 'PreferNoSchedule', 'NoExecute']);
    }
    c.string(get(taint, 'timeAdded'), child(at, 'timeAdded'));
    if (typeof key === 'string' && typeof effect === 'string') {
      c.unique(seen, `${key}:${effect}`, at, `${key}:${effect}`);
    }
  }
}

// ---------------------------------------------------------------- Endpoints

/**
 * Each subset needs an address (ready or not) and a port. Addresses must be IPs; unlike
 * Kubernetes, loopback addresses are allowed, since local clusters give nodes 127.0.0.0/8 IPs.
 */
function checkEndpoints(c: Checker, obj: Json): void {
  for (const [subset, at] of c.records(get(obj, 'subsets'), 'subsets')) {
    const ready = c.records(get(subset, 'addresses'), child(at, 'addresses'));
    const notReady = c.records(get(subset, 'notReadyAddresses'), child(at, 'notReadyAddresses'));
    if (ready.length === 0 && notReady.length === 0) {
      c.add(at, FieldErrorType.Required, 'must specify `addresses` or `notReadyAddresses`');
    }
    for (const [address, addressAt] of [...ready, ...notReady]) checkEndpointAddress(c, address, addressAt);
    const ports = c.records(get(subset, 'ports'), child(at, 'ports'), true);
    const names = new Set<string>();
    for (const [port, portAt] of ports) {
      const name = get(port, 'name');
      if (c.string(name, child(portAt, 'name'), ports.length > 1)) {
        c.dnsLabel(name, child(portAt, 'name'));
        c.unique(names, name, child(portAt, 'name'));
      }
      c.integer(get(port, 'port'), child(portAt, 'port'), 1, 65535, true);
      c.oneOf(get(port, 'protocol'), child(portAt, 'protocol'), ['TCP', 'UDP', 'SCTP']);
    }
  }
}

function checkEndpointAddress(c: Checker, address: Json, path: string): void {
  const ip = get(address, 'ip');
  if (c.string(ip, child(path, 'ip'), true) && !isIPv4(ip) && !isIPv6(ip)) {
    c.invalid(child(path, 'ip'), 'must be a valid IP address');
  }
  const hostname = get(address, 'hostname');
  if (c.string(hostname, child(path, 'hostname'))) c.dnsLabel(hostname, child(path, 'hostname'));
  const nodeName = get(address, 'nodeName');
  if (c.string(nodeName, child(path, 'nodeName'))) c.dnsSubdomain(nodeName, child(path, 'nodeName'));
  const targetRef = get(address, 'targetRef');
  if (c.record(targetRef, child(path, 'targetRef')))
    checkObjectReference(c, targetRef, child(path, 'targetRef'));
}

function checkObjectReference(c: Checker, ref: Json, path: string): void {
  for (const field of ['apiVersion', 'kind', 'namespace', 'name', 'uid', 'resourceVersion', 'fieldPath']) {
    c.string(get(ref, field), child(path, field));
  }
}

// ---------------------------------------------------------------- Event

/**
 * As Kubernetes (core/v1 events): `involvedObject.namespace` must equal the event's
 * namespace, or be empty (a cluster-scoped object) with the event in `default`.
 */
function checkEvent(c: Checker, obj: Json): void {
  const involved = get(obj, 'involvedObject');
  if (c.record(involved, 'involvedObject', true)) {
    checkObjectReference(c, involved, 'involvedObject');
    c.string(get(involved, 'kind'), 'involvedObject.kind', true);
    c.string(get(involved, 'name'), 'involvedObject.name', true);
    const metadata = get(obj, 'metadata');
    const namespace = isRecord(metadata) ? get(metadata, 'namespace') : undefined;
    const involvedNamespace = get(involved, 'namespace') ?? '';
    const expected = involvedNamespace === '' ? 'default' : involvedNamespace;
    if (
      typeof namespace === 'string' &&
      namespace !== '' &&
      typeof involvedNamespace === 'string' &&
      namespace !== expected
    ) {
      c.invalid('involvedObject.namespace', 'does not match event.namespace');
    }
  }
  for (const field of [
    'reason',
    'message',
    'firstTimestamp',
    'lastTimestamp',
    'reportingComponent',
    'reportingInstance',
  ]) {
    c.string(get(obj, field), field);
  }
  c.oneOf(get(obj, 'type'), 'type', ['Normal', 'Warning']);
  c.integer(get(obj, 'count'), 'count', 0);
  const source = get(obj, 'source');
  if (c.record(source, 'source')) {
    c.string(get(source, 'component'), 'source.component');
    c.string(get(source, 'host'), 'source.host');
  }
}

// ---------------------------------------------------------------- Lease

function checkLease(c: Checker, obj: Json): void {
  const spec = get(obj, 'spec');
  if (!c.record(spec, 'spec')) return;
  c.string(get(spec, 'holderIdentity'), 'spec.holderIdentity');
  c.integer(get(spec, 'leaseDurationSeconds'), 'spec.leaseDurationSeconds', 1);
  c.integer(get(spec, 'leaseTransitions'), 'spec.leaseTransitions', 0);
  c.string(get(spec, 'acquireTime'), 'spec.acquireTime');
  c.string(get(spec, 'renewTime'), 'spec.renewTime');
}

// ---------------------------------------------------------------- CronJob

/** Schedules are evaluated in UTC; other zones are refused rather than silently run in UTC. */
const cronTimeZones: readonly string[] = ['UTC', 'Etc/UTC'];

/** Longest CronJob name: its Jobs are named `<name>-<minutes>` (up to 11 more characters) and labelled with it. */
export const cronJobNameLengthMax = 52;

function checkCronJob(c: Checker, obj: Json): void {
  const objectMeta = get(obj, 'metadata');
  const name = isRecord(objectMeta) ? get(objectMeta, 'name') : undefined;
  if (typeof name === 'string' && name.length > cronJobNameLengthMax) {
    c.add('metadata.name', FieldErrorType.TooLong, `must be no more than ${cronJobNameLengthMax} characters`);
  }
  const spec = get(obj, 'spec');
  if (!c.record(spec, 'spec', true)) return;
  const schedule = get(spec, 'schedule');
  if (c.string(schedule, 'spec.schedule', true)) {
    const problem = cronProblem(schedule);
    if (problem !== undefined) c.invalid('spec.schedule', problem);
  }
  const timeZone = get(spec, 'timeZone');
  if (c.string(timeZone, 'spec.timeZone') && !cronTimeZones.includes(timeZone)) {
    c.oneOf(timeZone, 'spec.timeZone', cronTimeZones);
  }
  c.oneOf(get(spec, 'concurrencyPolicy'), 'spec.concurrencyPolicy', ['Allow', 'Forbid', 'Replace']);
  c.boolean(get(spec, 'suspend'), 'spec.suspend');
  c.integer(get(spec, 'startingDeadlineSeconds'), 'spec.startingDeadlineSeconds', 0);
  c.integer(get(spec, 'successfulJobsHistoryLimit'), 'spec.successfulJobsHistoryLimit', 0);
  c.integer(get(spec, 'failedJobsHistoryLimit'), 'spec.failedJobsHistoryLimit', 0);
  const template = get(spec, 'jobTemplate');
  if (!c.record(template, 'spec.jobTemplate', true)) return;
  const metadata = get(template, 'metadata');
  if (c.record(metadata, 'spec.jobTemplate.metadata')) {
    c.labels(get(metadata, 'labels'), 'spec.jobTemplate.metadata.labels');
    checkAnnotations(c, get(metadata, 'annotations'), 'spec.jobTemplate.metadata.annotations');
  }
  const jobSpec = get(template, 'spec');
  if (c.record(jobSpec, 'spec.jobTemplate.spec', true)) {
    checkWorkloadSpec(c, jobSpec, 'Job', 'spec.jobTemplate.spec');
  }
}

// ---------------------------------------------------------------- LimitRange, ResourceQuota

const limitRangeFields = ['max', 'min', 'default', 'defaultRequest', 'maxLimitRequestRatio'] as const;

function checkResourceMap(c: Checker, value: unknown, path: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  if (!c.record(value, path)) return out;
  for (const [name, quantity] of Object.entries(value)) {
    const q = checkQuantity(c, quantity, `${path}[${name}]`);
    if (q !== undefined) out.set(name, q);
  }
  return out;
}

/** As Kubernetes: min <= defaultRequest <= default <= max for each resource; defaults only for containers. */
function checkLimitRange(c: Checker, obj: Json): void {
  const spec = get(obj, 'spec');
  if (!c.record(spec, 'spec', true)) return;
  for (const [item, at] of c.records(get(spec, 'limits'), 'spec.limits', true)) {
    const type = get(item, 'type');
    if (c.string(type, child(at, 'type'), true)) c.oneOf(type, child(at, 'type'), ['Container', 'Pod']);
    const maps = Object.fromEntries(
      limitRangeFields.map((f) => [f, checkResourceMap(c, get(item, f), child(at, f))]),
    ) as Record<(typeof limitRangeFields)[number], Map<string, bigint>>;
    if (type === 'Pod') {
      for (const f of ['default', 'defaultRequest'] as const) {
        if (maps[f].size > 0)
          c.add(child(at, f), FieldErrorType.Forbidden, 'may not be specified when `type` is Pod');
      }
    }
    const order: (typeof limitRangeFields)[number][] = ['min', 'defaultRequest', 'default', 'max'];
    for (let i = 0; i < order.length; i += 1) {
      for (let j = i + 1; j < order.length; j += 1) {
        for (const [name, low] of maps[order[i]]) {
          const high = maps[order[j]].get(name);
          if (high !== undefined && low > high) {
            c.invalid(
              `${child(at, order[j])}[${name}]`,
              `must be greater than or equal to ${order[i]} (${String(get(get(item, order[i]) as Json, name))})`,
            );
          }
        }
      }
    }
  }
}

const quotaScopes = ['Terminating', 'NotTerminating', 'BestEffort', 'NotBestEffort'] as const;
const quotaResourcePattern =
  /^(requests\.(cpu|memory)|limits\.(cpu|memory)|cpu|memory|pods|services|configmaps|secrets|replicationcontrollers|resourcequotas|services\.nodeports|count\/[a-z0-9.]+)$/;

function checkResourceQuota(c: Checker, obj: Json): void {
  const spec = get(obj, 'spec');
  if (!c.record(spec, 'spec', true)) return;
  const hard = get(spec, 'hard');
  const hardMap = checkResourceMap(c, hard, 'spec.hard');
  for (const name of hardMap.keys()) {
    if (!quotaResourcePattern.test(name)) {
      c.add(
        `spec.hard[${name}]`,
        FieldErrorType.NotSupported,
        'unsupported resource: supported: requests.cpu, requests.memory, limits.cpu, limits.memory, cpu, memory, pods, services, services.nodeports, configmaps, secrets, count/<resource>',
      );
    }
  }
  const scopes = get(spec, 'scopes');
  if (c.array(scopes, 'spec.scopes')) {
    // An index loop, not forEach: holes in an array are visited (and refused) too.
    for (let i = 0; i < scopes.length; i += 1) {
      const scope = scopes[i];
      c.oneOf(scope, `spec.scopes[${i}]`, quotaScopes);
    }
    if (scopes.includes('BestEffort') && scopes.includes('NotBestEffort')) {
      c.invalid('spec.scopes', 'conflicting scopes BestEffort and NotBestEffort');
    }
    if (scopes.includes('Terminating') && scopes.includes('NotTerminating')) {
      c.invalid('spec.scopes', 'conflicting scopes Terminating and NotTerminating');
    }
  }
  const status = get(obj, 'status');
  if (c.record(status, 'status')) {
    checkResourceMap(c, get(status, 'hard'), 'status.hard');
    checkResourceMap(c, get(status, 'used'), 'status.used');
  }
}

// ---------------------------------------------------------------- EndpointSlice

function checkEndpointSlice(c: Checker, obj: Json): void {
  const addressType = get(obj, 'addressType');
  if (c.string(addressType, 'addressType', true))
    c.oneOf(addressType, 'addressType', ['IPv4', 'IPv6', 'FQDN']);
  for (const [endpoint, at] of c.records(get(obj, 'endpoints'), 'endpoints')) {
    const addresses = get(endpoint, 'addresses');
    if (c.array(addresses, child(at, 'addresses'), true)) {
      if (addresses.length === 0) c.required(child(at, 'addresses'));
      // An index loop, not forEach: holes in an array are visited (and refused) too.
      for (let i = 0; i < addresses.length; i += 1) {
        const a = addresses[i];
        const aat = `${child(at, 'addresses')}[${i}]`;
        if (!c.string(a, aat, true)) continue;
        if (addressType === 'IPv4' && !isIPv4(a)) c.invalid(aat, 'must be a valid IPv4 address');
        if (addressType === 'IPv6' && !isIPv6(a)) c.invalid(aat, 'must be a valid IPv6 address');
      }
    }
    const conditions = get(endpoint, 'conditions');
    if (c.record(conditions, child(at, 'conditions'))) {
      for (const f of ['ready', 'serving', 'terminating'])
        c.boolean(get(conditions, f), child(at, `conditions.${f}`));
    }
    const hostname = get(endpoint, 'hostname');
    if (c.string(hostname, child(at, 'hostname'))) c.dnsLabel(hostname, child(at, 'hostname'));
    c.string(get(endpoint, 'nodeName'), child(at, 'nodeName'));
    const targetRef = get(endpoint, 'targetRef');
    if (c.record(targetRef, child(at, 'targetRef')))
      checkObjectReference(c, targetRef, child(at, 'targetRef'));
  }
  for (const [port, at] of c.records(get(obj, 'ports'), 'ports')) {
    const name = get(port, 'name');
    if (c.string(name, child(at, 'name'))) c.dnsLabel(name, child(at, 'name'));
    c.integer(get(port, 'port'), child(at, 'port'), 1, 65535);
    c.oneOf(get(port, 'protocol'), child(at, 'protocol'), ['TCP', 'UDP', 'SCTP']);
  }
}

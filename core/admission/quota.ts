/**
 * ResourceQuota decisions, as Kubernetes' quota admission and quota controller make them.
 *
 * Usage is kept as **aggregates** per namespace: every object adds a contribution to one
 * aggregate — its kind, and for pods its kind and scope class
 * (`Pod/BestEffort|NotBestEffort/Terminating|NotTerminating`). A quota's usage of a resource
 * is then a sum over the few aggregates its scopes match, whatever the number of objects.
 *
 * Semantics (Kubernetes'): `pods`, `cpu`/`requests.cpu`, `memory`/`requests.memory`,
 * `limits.cpu`, `limits.memory` count pods that are not terminal (Succeeded/Failed);
 * `count/pods` counts every pod object; requests default to limits; a pod's amount is its
 * containers' sum, raised to its largest init container. `services.nodeports` counts the ports
 * of NodePort services. `count/<plural>[.<group>]` counts objects of that kind. A quota with
 * scopes matches pods only (BestEffort: no cpu/memory request or limit anywhere; Terminating:
 * `activeDeadlineSeconds` set). A quota that limits a compute resource requires every
 * container of a matching pod to set it (`must specify requests.cpu for: app`). Pure.
 */

import { resolveKindName } from '../kind-names.js';
import type { ApiObject, Pod, ResourceQuota, Service } from '../objects.js';
import {
  amountsOf,
  containerAmounts,
  countNanos,
  formatAmount,
  isBestEffort,
  isTerminatingPod,
  podLimits,
  podRequests,
  type ResourceAmounts,
} from './resources.js';

/** Aggregate name → summed amounts (fields: `count`, `pods`, `requests.cpu`, ...). */
export type Aggregates = Map<string, ResourceAmounts>;

/** What one object adds to its namespace's usage. */
export interface Contribution {
  aggregate: string;
  amounts: ResourceAmounts;
}

const countField = 'count';

function podAggregate(pod: Pod): string {
  return `Pod/${isBestEffort(pod) ? 'BestEffort' : 'NotBestEffort'}/${isTerminatingPod(pod) ? 'Terminating' : 'NotTerminating'}`;
}

/** Succeeded or Failed: no longer uses quota (it still counts in `count/pods`). */
function isTerminal(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** The contribution of `obj` to its namespace's usage. */
export function contributionOf(obj: ApiObject): Contribution {
  const amounts: ResourceAmounts = new Map([[countField, countNanos(1)]]);
  switch (obj.kind) {
    case 'Pod': {
      if (!isTerminal(obj)) {
        amounts.set('pods', countNanos(1));
        const requests = podRequests(obj);
        const limits = podLimits(obj);
        for (const r of ['cpu', 'memory']) {
          const req = requests.get(r);
          const lim = limits.get(r);
          if (req !== undefined) amounts.set(`requests.${r}`, req);
          if (lim !== undefined) amounts.set(`limits.${r}`, lim);
        }
      }
      return { aggregate: podAggregate(obj), amounts };
    }
    case 'Service': {
      const svc = obj as Service;
      if (svc.spec?.type === 'NodePort')
        amounts.set('services.nodeports', countNanos(svc.spec.ports?.length ?? 0));
      return { aggregate: 'Service', amounts };
    }
    default:
      return { aggregate: obj.kind, amounts };
  }
}

/** Adds (`sign` 1n) or removes (-1n) a contribution; aggregates that reach zero are dropped. */
export function addContribution(aggs: Aggregates, c: Contribution, sign: 1n | -1n): void {
  let sums = aggs.get(c.aggregate);
  if (sums === undefined) {
    sums = new Map();
    aggs.set(c.aggregate, sums);
  }
  for (const [field, n] of c.amounts) {
    const v = (sums.get(field) ?? 0n) + sign * n;
    if (v === 0n) sums.delete(field);
    else sums.set(field, v);
  }
  if (sums.size === 0) aggs.delete(c.aggregate);
}

/** The aggregates of a set of objects (the reference the incremental index must equal). */
export function aggregatesOf(objects: Iterable<ApiObject>): Aggregates {
  const aggs: Aggregates = new Map();
  for (const obj of objects) addContribution(aggs, contributionOf(obj), 1n);
  return aggs;
}

/** Where the usage of a quota resource comes from: a kind's aggregates and one field. */
export function usageSource(resource: string): { kind: string; field: string } | undefined {
  switch (resource) {
    case 'pods':
      return { kind: 'Pod', field: 'pods' };
    case 'cpu':
    case 'memory':
      return { kind: 'Pod', field: `requests.${resource}` };
    case 'requests.cpu':
    case 'requests.memory':
    case 'limits.cpu':
    case 'limits.memory':
      return { kind: 'Pod', field: resource };
    case 'services':
      return { kind: 'Service', field: countField };
    case 'services.nodeports':
      return { kind: 'Service', field: 'services.nodeports' };
    case 'configmaps':
      return { kind: 'ConfigMap', field: countField };
    case 'secrets':
      return { kind: 'Secret', field: countField };
    case 'resourcequotas':
      return { kind: 'ResourceQuota', field: countField };
    case 'replicationcontrollers':
      // No ReplicationController kind here: always 0.
      return { kind: 'ReplicationController', field: countField };
    default: {
      if (!resource.startsWith('count/')) return undefined;
      const kind = resolveKindName(resource.slice('count/'.length));
      return kind === undefined ? undefined : { kind, field: countField };
    }
  }
}

/** Whether quota `q` counts the aggregate `aggregate` (of kind `kind`). */
function matches(q: ResourceQuota, aggregate: string, kind: string): boolean {
  if (aggregate !== kind && !aggregate.startsWith(`${kind}/`)) return false;
  const scopes = q.spec?.scopes ?? [];
  if (scopes.length === 0) return true;
  if (kind !== 'Pod') return false;
  const [, effort, terminating] = aggregate.split('/');
  return scopes.every((s) => s === effort || s === terminating);
}

/** Quota `q`'s usage of each resource in its `spec.hard`, from the namespace's aggregates. */
export function quotaUsage(q: ResourceQuota, aggs: Aggregates): ResourceAmounts {
  const out: ResourceAmounts = new Map();
  for (const resource of Object.keys(q.spec?.hard ?? {})) {
    out.set(resource, sumFor(q, resource, aggs));
  }
  return out;
}

function sumFor(q: ResourceQuota, resource: string, aggs: Aggregates): bigint {
  const source = usageSource(resource);
  if (source === undefined) return 0n;
  let sum = 0n;
  for (const [aggregate, amounts] of aggs) {
    if (matches(q, aggregate, source.kind)) sum += amounts.get(source.field) ?? 0n;
  }
  return sum;
}

/** The status the quota controller writes: `hard` as in the spec, `used` for each of its resources. */
export function quotaStatus(q: ResourceQuota, usage: ResourceAmounts): NonNullable<ResourceQuota['status']> {
  const hard = { ...(q.spec?.hard ?? {}) };
  const used: Record<string, string> = {};
  for (const resource of Object.keys(hard).sort()) {
    used[resource] = formatAmount(resource, usage.get(resource) ?? 0n);
  }
  return { hard, used };
}

/** The one-line reasons a write is refused by a quota. */
export interface QuotaRejection {
  quota: string;
  /** `exceeded quota: q1, requested: ..., used: ..., limited: ...` or `failed quota: q1: must specify ...`. */
  message: string;
}

export interface QuotaCheck {
  /** The object being written (after defaults and LimitRanges). */
  object: ApiObject;
  /** For an update, the object it replaces. */
  prev?: ApiObject;
  /** The namespace's quotas. */
  quotas: readonly ResourceQuota[];
  /** Each quota's usage now, including writes admitted but not applied yet. */
  usage: (q: ResourceQuota) => ResourceAmounts;
}

/** The resources a write adds under quota `q` (only those that grow). */
function requested(q: ResourceQuota, changes: readonly [Contribution, 1n | -1n][]): ResourceAmounts {
  const aggs: Aggregates = new Map();
  for (const [c, sign] of changes) addContribution(aggs, c, sign);
  const out: ResourceAmounts = new Map();
  for (const resource of Object.keys(q.spec?.hard ?? {})) {
    const n = sumFor(q, resource, aggs);
    if (n > 0n) out.set(resource, n);
  }
  return out;
}

/**
 * The write's usage change as contributions: its own, minus what it replaces. Undefined when
 * the write cannot change usage (an update of anything but a Service's ports and type).
 */
export function usageChange(object: ApiObject, prev?: ApiObject): [Contribution, 1n | -1n][] | undefined {
  if (prev === undefined) return [[contributionOf(object), 1n]];
  if (object.kind !== 'Service') return undefined;
  return [
    [contributionOf(object), 1n],
    [contributionOf(prev), -1n],
  ];
}

/** Compute resources a quota requires every container of a matching pod to set. */
const requiredByQuota: Readonly<Record<string, { field: 'requests' | 'limits'; resource: string }>> = {
  cpu: { field: 'requests', resource: 'cpu' },
  memory: { field: 'requests', resource: 'memory' },
  'requests.cpu': { field: 'requests', resource: 'cpu' },
  'requests.memory': { field: 'requests', resource: 'memory' },
  'limits.cpu': { field: 'limits', resource: 'cpu' },
  'limits.memory': { field: 'limits', resource: 'memory' },
};

function missingCompute(q: ResourceQuota, pod: Pod): string | undefined {
  const missing = new Map<string, string[]>();
  for (const resource of Object.keys(q.spec?.hard ?? {}).sort()) {
    const need = requiredByQuota[resource];
    if (need === undefined) continue;
    for (const c of [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])]) {
      if (containerAmounts(c)[need.field].has(need.resource)) continue;
      const names = missing.get(resource) ?? [];
      names.push(c.name);
      missing.set(resource, names);
    }
  }
  if (missing.size === 0) return undefined;
  return [...missing].map(([resource, names]) => `${resource} for: ${names.sort().join(',')}`).join('; ');
}

/**
 * The first quota (by name) the write violates, or undefined when every quota allows it.
 * Only resources the write increases are checked, so a namespace already over a lowered
 * quota can still delete and shrink.
 */
export function checkQuotas(input: QuotaCheck): QuotaRejection | undefined {
  const changes = usageChange(input.object, input.prev);
  if (changes === undefined) return undefined;
  const pod = input.object.kind === 'Pod' && input.prev === undefined ? input.object : undefined;
  const sorted = [...input.quotas].sort((a, b) =>
    (a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1,
  );
  for (const q of sorted) {
    const name = q.metadata.name ?? '';
    const adds = requested(q, changes);
    if (pod !== undefined && matchesPod(q, pod)) {
      const missing = missingCompute(q, pod);
      if (missing !== undefined)
        return { quota: name, message: `failed quota: ${name}: must specify ${missing}` };
    }
    if (adds.size === 0) continue;
    const hard = amountsOf(q.spec?.hard);
    const used = input.usage(q);
    const exceeded = [...adds.keys()]
      .filter((r) => {
        const limit = hard.get(r);
        return limit !== undefined && (used.get(r) ?? 0n) + (adds.get(r) ?? 0n) > limit;
      })
      .sort();
    if (exceeded.length === 0) continue;
    const list = (f: (r: string) => bigint) => exceeded.map((r) => `${r}=${formatAmount(r, f(r))}`).join(',');
    return {
      quota: name,
      message: `exceeded quota: ${name}, requested: ${list((r) => adds.get(r) ?? 0n)}, used: ${list((r) => used.get(r) ?? 0n)}, limited: ${list((r) => hard.get(r) ?? 0n)}`,
    };
  }
  return undefined;
}

function matchesPod(q: ResourceQuota, pod: Pod): boolean {
  return matches(q, podAggregate(pod), 'Pod');
}

/** Whether two objects contribute the same usage (a change between them moves no quota). */
export function sameContribution(a: ApiObject, b: ApiObject): boolean {
  const ca = contributionOf(a);
  const cb = contributionOf(b);
  if (ca.aggregate !== cb.aggregate || ca.amounts.size !== cb.amounts.size) return false;
  for (const [field, n] of ca.amounts) if (cb.amounts.get(field) !== n) return false;
  return true;
}

/**
 * LimitRange admission of a pod, as Kubernetes' LimitRanger: first defaults, then limits.
 *
 * Defaults (`type: Container` items): a container without a limit for a resource gets the
 * item's `default`; without a request, the item's `defaultRequest`. As Kubernetes'
 * `SetDefaults_LimitRangeItem`, `default` falls back to `max` and `defaultRequest` to
 * `default`, then to `min`; and, as `SetDefaults_Pod`, a request the user left out equals the
 * user's limit. The first LimitRange (by name) that defaults a resource wins.
 *
 * Limits: `min`, `max` and `maxLimitRequestRatio` of every item, per container (`Container`)
 * or on the pod's totals (`Pod`), with Kubernetes' wording (`maximum cpu usage per Container
 * is 500m, but limit is 1`). Applied to pods at create only (Kubernetes does not apply them to
 * pod templates). Pure.
 */

import type { Container, LimitRange, LimitRangeItem, Pod } from '../objects.js';
import {
  amountsOf,
  containerAmounts,
  formatAmount,
  podLimits,
  podRequests,
  type ResourceAmounts,
} from './resources.js';

export interface LimitRangeViolation {
  /** The LimitRange's name. */
  limitRange: string;
  /** `spec.containers[0].resources.limits.cpu`; `spec.containers` for a Pod item. */
  path: string;
  /** Kubernetes' wording: `maximum cpu usage per Container is 500m, but limit is 1`. */
  message: string;
}

export interface LimitRangeResult {
  /** The pod with defaults applied (the input itself when no LimitRange has a Container item). */
  pod: Pod;
  /** What the defaults set, for the `kubernetes.io/limit-ranger` annotation; empty when nothing. */
  defaulted: string[];
  violations: LimitRangeViolation[];
}

/** The annotation Kubernetes' LimitRanger leaves on a pod it defaulted. */
export const limitRangerAnnotation = 'kubernetes.io/limit-ranger';

/** An item's defaults after Kubernetes' `SetDefaults_LimitRangeItem`. */
export function effectiveDefaults(item: LimitRangeItem): {
  limits: Record<string, string>;
  requests: Record<string, string>;
} {
  if (item.type !== 'Container') return { limits: {}, requests: {} };
  const limits = { ...(item.max ?? {}), ...(item.default ?? {}) };
  const requests = { ...(item.min ?? {}), ...limits, ...(item.defaultRequest ?? {}) };
  return { limits, requests };
}

/** Applies the namespace's LimitRanges to a pod being created. */
export function applyLimitRanges(pod: Pod, ranges: readonly LimitRange[]): LimitRangeResult {
  const sorted = [...ranges].sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
  const { pod: defaultedPod, defaulted } = applyDefaults(pod, sorted);
  const violations: LimitRangeViolation[] = [];
  for (const lr of sorted) {
    for (const item of lr.spec?.limits ?? []) {
      if (item.type === 'Container') checkContainers(defaultedPod, lr, item, violations);
      else if (item.type === 'Pod') checkPod(defaultedPod, lr, item, violations);
    }
  }
  return { pod: defaultedPod, defaulted, violations };
}

type Json = Record<string, unknown>;

function applyDefaults(pod: Pod, ranges: readonly LimitRange[]): { pod: Pod; defaulted: string[] } {
  const items = ranges.flatMap((lr) => (lr.spec?.limits ?? []).filter((i) => i.type === 'Container'));
  if (items.length === 0) return { pod, defaulted: [] };
  const defaulted: string[] = [];
  const fill = (c: Container): Container => {
    const limits = { ...(c.resources?.limits ?? {}) };
    const requests = { ...(c.resources?.requests ?? {}) };
    // SetDefaults_Pod: a request left out equals the user's own limit.
    for (const [name, q] of Object.entries(limits)) if (requests[name] === undefined) requests[name] = q;
    for (const item of items) {
      const d = effectiveDefaults(item);
      for (const [name, q] of Object.entries(d.limits)) {
        if (limits[name] !== undefined) continue;
        limits[name] = q;
        defaulted.push(`${name} limit for container ${c.name}`);
      }
      for (const [name, q] of Object.entries(d.requests)) {
        if (requests[name] !== undefined) continue;
        requests[name] = q;
        defaulted.push(`${name} request for container ${c.name}`);
      }
    }
    const resources: Json = { ...(c.resources ?? {}) };
    if (Object.keys(limits).length > 0) resources.limits = limits;
    if (Object.keys(requests).length > 0) resources.requests = requests;
    return Object.keys(resources).length > 0 ? { ...c, resources } : c;
  };
  const spec = { ...pod.spec, containers: (pod.spec.containers ?? []).map(fill) };
  if (pod.spec.initContainers !== undefined) spec.initContainers = pod.spec.initContainers.map(fill);
  if (defaulted.length === 0) return { pod: { ...pod, spec }, defaulted };
  const annotations = {
    ...(pod.metadata.annotations ?? {}),
    [limitRangerAnnotation]: `LimitRanger plugin set: ${defaulted.join('; ')}`,
  };
  return { pod: { ...pod, metadata: { ...pod.metadata, annotations }, spec }, defaulted };
}

function checkContainers(pod: Pod, lr: LimitRange, item: LimitRangeItem, out: LimitRangeViolation[]): void {
  const groups: [string, Container[] | undefined][] = [
    ['containers', pod.spec.containers],
    ['initContainers', pod.spec.initContainers],
  ];
  for (const [field, containers] of groups) {
    (containers ?? []).forEach((c, i) => {
      const { requests, limits } = containerAmounts(c);
      const at = `spec.${field}[${i}].resources`;
      checkAmounts(lr, item, 'Container', requests, limits, at, out);
    });
  }
}

function checkPod(pod: Pod, lr: LimitRange, item: LimitRangeItem, out: LimitRangeViolation[]): void {
  // A resource counts as requested (limited) by the pod only if every container sets it.
  const all = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])];
  const everywhere = (pick: 'requests' | 'limits', total: ResourceAmounts): ResourceAmounts => {
    const out: ResourceAmounts = new Map();
    for (const [name, n] of total)
      if (all.every((c) => containerAmounts(c)[pick].has(name))) out.set(name, n);
    return out;
  };
  const requests = everywhere('requests', podRequests(pod));
  const limits = everywhere('limits', podLimits(pod));
  checkAmounts(lr, item, 'Pod', requests, limits, 'spec.containers[*].resources', out);
}

function checkAmounts(
  lr: LimitRange,
  item: LimitRangeItem,
  type: 'Container' | 'Pod',
  requests: ResourceAmounts,
  limits: ResourceAmounts,
  at: string,
  out: LimitRangeViolation[],
): void {
  const limitRange = lr.metadata.name ?? '';
  const add = (field: 'requests' | 'limits', name: string, message: string) =>
    out.push({ limitRange, path: `${at}.${field}.${name}`, message });
  for (const [name, min] of amountsOf(item.min)) {
    const shown = formatAmount(name, min);
    const req = requests.get(name);
    const lim = limits.get(name);
    if (req === undefined)
      add('requests', name, `minimum ${name} usage per ${type} is ${shown}; no request is specified`);
    else if (req < min)
      add(
        'requests',
        name,
        `minimum ${name} usage per ${type} is ${shown}, but request is ${formatAmount(name, req)}`,
      );
    if (lim !== undefined && lim < min)
      add(
        'limits',
        name,
        `minimum ${name} usage per ${type} is ${shown}, but limit is ${formatAmount(name, lim)}`,
      );
  }
  for (const [name, max] of amountsOf(item.max)) {
    const shown = formatAmount(name, max);
    const req = requests.get(name);
    const lim = limits.get(name);
    if (lim === undefined)
      add('limits', name, `maximum ${name} usage per ${type} is ${shown}; no limit is specified`);
    else if (lim > max)
      add(
        'limits',
        name,
        `maximum ${name} usage per ${type} is ${shown}, but limit is ${formatAmount(name, lim)}`,
      );
    if (req !== undefined && req > max)
      add(
        'requests',
        name,
        `maximum ${name} usage per ${type} is ${shown}, but request is ${formatAmount(name, req)}`,
      );
  }
  for (const [name, ratio] of amountsOf(item.maxLimitRequestRatio)) {
    const shown = formatAmount('', ratio);
    const req = requests.get(name) ?? 0n;
    const lim = limits.get(name) ?? 0n;
    if (req === 0n) {
      add(
        'requests',
        name,
        `${name} max limit to request ratio per ${type} is ${shown}, but no request is specified or request is 0`,
      );
    } else if (lim === 0n) {
      add(
        'limits',
        name,
        `${name} max limit to request ratio per ${type} is ${shown}, but no limit is specified or limit is 0`,
      );
    } else if (lim * 1_000_000_000n > ratio * req) {
      add(
        'limits',
        name,
        `${name} max limit to request ratio per ${type} is ${shown}, but provided ratio is ${ratioText(lim, req)}`,
      );
    }
  }
}

/** `lim / req` with up to three decimals, trailing zeros dropped. */
function ratioText(lim: bigint, req: bigint): string {
  const thousandths = (lim * 1000n + req / 2n) / req;
  const whole = thousandths / 1000n;
  const frac = (thousandths % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return frac === '' ? `${whole}` : `${whole}.${frac}`;
}

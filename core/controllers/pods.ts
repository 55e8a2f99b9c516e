/**
 * Pure helpers the workload controllers share: owner references, pods from templates,
 * readiness and availability, template hashes, and the order in which surplus pods go.
 * Time is always an argument (`nowMs`).
 */

import { cloneJson } from '../json-clone.js';
import type { ApiObject, Condition, OwnerReference, Pod, PodTemplateSpec } from '../objects.js';

/** The owner reference with `controller: true`, if any. */
export function controllerRef(obj: ApiObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** A controller owner reference to `owner` (blocking its foreground deletion). */
export function newControllerRef(owner: ApiObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when `obj` is controlled by the object with `uid`. */
export function isControlledBy(obj: ApiObject, uid: string | undefined): boolean {
  return uid !== undefined && controllerRef(obj)?.uid === uid;
}

/** Succeeded or Failed: it will never run again. */
export function isPodTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/** Counted by a controller: not terminal and not being deleted. */
export function isPodActive(pod: Pod): boolean {
  return !isPodTerminal(pod) && pod.metadata.deletionTimestamp === undefined;
}

export function podCondition(pod: Pod, type: string): Condition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

export function isPodReady(pod: Pod): boolean {
  return podCondition(pod, 'Ready')?.status === 'True';
}

/** When the pod last became Ready (ms), if it is Ready. */
export function podReadySinceMs(pod: Pod): number | undefined {
  const c = podCondition(pod, 'Ready');
  if (c?.status !== 'True') return undefined;
  const t = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : Number.NaN;
  return Number.isNaN(t) ? 0 : t;
}

/**
 * Ready for at least `minReadySeconds` at `nowMs`. `msUntil` tells when a ready pod becomes
 * available (for a requeue); 0 when it already is or never will be on its own.
 */
export function podAvailability(
  pod: Pod,
  minReadySeconds: number,
  nowMs: number,
): { available: boolean; msUntil: number } {
  const since = podReadySinceMs(pod);
  if (since === undefined) return { available: false, msUntil: 0 };
  if (minReadySeconds <= 0) return { available: true, msUntil: 0 };
  const at = since + minReadySeconds * 1000;
  return at <= nowMs ? { available: true, msUntil: 0 } : { available: false, msUntil: at - nowMs };
}

/** Restarts over all containers. */
export function podRestarts(pod: Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((n, s) => n + (s.restartCount ?? 0), 0);
}

const phaseRank: Readonly<Record<string, number>> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * Orders pods for scale-down as Kubernetes' ActivePods does: the first ones go first —
 * unscheduled before scheduled, Pending before Unknown before Running, not ready before
 * ready, ready more recently before ready longer, more restarts before fewer, newer before older.
 */
export function comparePodsForDeletion(a: Pod, b: Pod): number {
  const boundA = a.spec.nodeName ? 1 : 0;
  const boundB = b.spec.nodeName ? 1 : 0;
  if (boundA !== boundB) return boundA - boundB;
  const phaseA = phaseRank[a.status?.phase ?? 'Pending'] ?? 0;
  const phaseB = phaseRank[b.status?.phase ?? 'Pending'] ?? 0;
  if (phaseA !== phaseB) return phaseA - phaseB;
  const readyA = isPodReady(a) ? 1 : 0;
  const readyB = isPodReady(b) ? 1 : 0;
  if (readyA !== readyB) return readyA - readyB;
  if (readyA === 1) {
    const sinceA = podReadySinceMs(a) ?? 0;
    const sinceB = podReadySinceMs(b) ?? 0;
    if (sinceA !== sinceB) return sinceB - sinceA;
  }
  const restartsA = podRestarts(a);
  const restartsB = podRestarts(b);
  if (restartsA !== restartsB) return restartsB - restartsA;
  const createdA = a.metadata.creationTimestamp ?? '';
  const createdB = b.metadata.creationTimestamp ?? '';
  if (createdA !== createdB) return createdA < createdB ? 1 : -1;
  return (a.metadata.name ?? '') < (b.metadata.name ?? '') ? 1 : -1;
}

/**
 * A new pod for `owner` from `template`: the template's labels and annotations, the
 * controller reference, and `generateName` `<prefix>` unless `name` is given.
 */
export function podFromTemplate(
  template: PodTemplateSpec,
  owner: ApiObject,
  opts: {
    generateName?: string;
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = {},
): Pod {
  const tm = template.metadata ?? {};
  const labels = { ...(tm.labels ?? {}), ...(opts.labels ?? {}) };
  const annotations = { ...(tm.annotations ?? {}), ...(opts.annotations ?? {}) };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(opts.name !== undefined
        ? { name: opts.name }
        : { generateName: opts.generateName ?? `${owner.metadata.name}-` }),
      namespace: owner.metadata.namespace,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      ownerReferences: [newControllerRef(owner)],
      ...(tm.finalizers ? { finalizers: [...tm.finalizers] } : {}),
    },
    spec: cloneJson(template.spec),
  };
}

/** Canonical JSON (sorted keys) so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const hashAlphabet = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * A short, label-safe hash of a pod template (and a collision count), as Kubernetes'
 * `pod-template-hash`: FNV-1a 32 over canonical JSON, written in a vowel-free alphabet.
 */
export function templateHash(template: unknown, collisionCount = 0): string {
  let h = 0x811c9dc5;
  const text = canonicalJson(template) + (collisionCount > 0 ? `#${collisionCount}` : '');
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let out = '';
  do {
    out += hashAlphabet[h % hashAlphabet.length];
    h = Math.floor(h / hashAlphabet.length);
  } while (h > 0);
  return out;
}

/** Condition list with `cond` set (lastTransitionTime kept when the status did not change). */
export function setCondition<C extends Condition>(conditions: readonly C[] | undefined, cond: C): C[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === cond.type);
  if (i < 0) return [...list, cond];
  const prev = list[i];
  list[i] =
    prev.status === cond.status && prev.lastTransitionTime !== undefined
      ? { ...cond, lastTransitionTime: prev.lastTransitionTime }
      : cond;
  return list;
}

export function removeCondition<C extends Condition>(
  conditions: readonly C[] | undefined,
  type: string,
): C[] | undefined {
  if (conditions === undefined) return undefined;
  const out = conditions.filter((c) => c.type !== type);
  return out.length === 0 ? undefined : out;
}

/** RFC 3339 at second precision. */
export function rfc3339(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

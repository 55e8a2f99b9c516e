/**
 * Compute resources of containers and pods as admission and quota see them: exact quantities
 * (bigint nano-units, see `core/quantity.ts`), requests defaulting to limits as Kubernetes'
 * `SetDefaults_Pod` does, and the pod total as Kubernetes' `PodRequests`/`PodLimits`: the sum
 * over app containers, raised to the largest single init container where that is larger.
 */

import type { Container, Pod, PodSpec } from '../objects.js';
import { parseQuantity, Quantity, QuantityFormat } from '../quantity.js';

/** Resource name → amount in nano-units. */
export type ResourceAmounts = Map<string, bigint>;

/** The compute resources quota and QoS look at. */
export const computeResources = ['cpu', 'memory'] as const;

/** Nano-units of a quantity string; undefined when it does not parse (validation rejects those). */
export function quantityNanos(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    return parseQuantity(text).nanos;
  } catch {
    return undefined;
  }
}

/** The amounts of a resource map (`{ cpu: '500m' }`), skipping what does not parse. */
export function amountsOf(list: Record<string, string> | undefined): ResourceAmounts {
  const out: ResourceAmounts = new Map();
  for (const [name, text] of Object.entries(list ?? {})) {
    const n = quantityNanos(text);
    if (n !== undefined) out.set(name, n);
  }
  return out;
}

/** A container's requests and limits; a resource with a limit and no request requests the limit. */
export function containerAmounts(c: Container): { requests: ResourceAmounts; limits: ResourceAmounts } {
  const limits = amountsOf(c.resources?.limits);
  const requests = amountsOf(c.resources?.requests);
  for (const [name, n] of limits) if (!requests.has(name)) requests.set(name, n);
  return { requests, limits };
}

function total(spec: PodSpec, pick: (c: Container) => ResourceAmounts): ResourceAmounts {
  const out: ResourceAmounts = new Map();
  for (const c of spec.containers ?? []) {
    for (const [name, n] of pick(c)) out.set(name, (out.get(name) ?? 0n) + n);
  }
  for (const c of spec.initContainers ?? []) {
    for (const [name, n] of pick(c)) if (n > (out.get(name) ?? 0n)) out.set(name, n);
  }
  return out;
}

/** The pod's requests: app containers summed, each resource at least any one init container's. */
export function podRequests(pod: Pod): ResourceAmounts {
  return total(pod.spec, (c) => containerAmounts(c).requests);
}

/** The pod's limits, summed as `podRequests`. */
export function podLimits(pod: Pod): ResourceAmounts {
  return total(pod.spec, (c) => containerAmounts(c).limits);
}

/** Kubernetes' QoS class BestEffort: no container sets a cpu or memory request or limit. */
export function isBestEffort(pod: Pod): boolean {
  for (const c of [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])]) {
    for (const name of computeResources) {
      if (c.resources?.requests?.[name] !== undefined || c.resources?.limits?.[name] !== undefined) {
        return false;
      }
    }
  }
  return true;
}

/** Kubernetes' quota scope Terminating: the pod sets `activeDeadlineSeconds`. */
export function isTerminatingPod(pod: Pod): boolean {
  return typeof pod.spec.activeDeadlineSeconds === 'number' && pod.spec.activeDeadlineSeconds >= 0;
}

const nanosPerUnit = 1_000_000_000n;

/** Nano-units of a count of objects. */
export function countNanos(n: number | bigint): bigint {
  return BigInt(n) * nanosPerUnit;
}

/**
 * An amount of `resource` as Kubernetes prints it: memory in binary suffixes when whole
 * (`512Mi`), cpu and counts in decimal (`1500m`, `2`).
 */
export function formatAmount(resource: string, nanos: bigint): string {
  const format = resource === 'memory' || resource.endsWith('.memory') ? 'BinarySI' : 'DecimalSI';
  return Quantity.fromNanos(nanos, QuantityFormat[format]).toString();
}

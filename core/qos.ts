/**
 * Kubernetes' pod QoS class, computed from the spec alone (`status.qosClass`, set when a pod is
 * created and reported again by its agent). Pure.
 */

import type { PodSpec } from './objects.js';
import { parseQuantity } from './quantity.js';

export const QOSClass = {
  Guaranteed: 'Guaranteed',
  Burstable: 'Burstable',
  BestEffort: 'BestEffort',
} as const;
export type QOSClass = (typeof QOSClass)[keyof typeof QOSClass];

const qosResources = ['cpu', 'memory'] as const;

/**
 * Kubernetes' QoS class: BestEffort without any cpu/memory request or limit; Guaranteed when
 * every container (init included) limits both cpu and memory and the pod's requests equal its
 * limits; Burstable otherwise. A missing request counts as its limit, as the API defaults it.
 */
export function qosClass(spec: PodSpec): QOSClass {
  const requests = new Map<string, bigint>();
  const limits = new Map<string, bigint>();
  let guaranteed = true;
  const add = (sums: Map<string, bigint>, name: string, nanos: bigint): void => {
    if (nanos > 0n) sums.set(name, (sums.get(name) ?? 0n) + nanos);
  };
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    for (const name of qosResources) {
      const limit = nanosOf(c.resources?.limits?.[name]);
      const request = nanosOf(c.resources?.requests?.[name]) ?? limit;
      if (request !== undefined) add(requests, name, request);
      if (limit !== undefined) add(limits, name, limit);
      if (limit === undefined || limit === 0n) guaranteed = false;
    }
  }
  if (requests.size === 0 && limits.size === 0) return QOSClass.BestEffort;
  for (const [name, request] of requests) if (limits.get(name) !== request) guaranteed = false;
  return guaranteed && requests.size === limits.size ? QOSClass.Guaranteed : QOSClass.Burstable;
}

function nanosOf(text: string | undefined): bigint | undefined {
  return text === undefined ? undefined : parseQuantity(String(text)).nanos;
}

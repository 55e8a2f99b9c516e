/**
 * Resources as the scheduler counts them: plain numbers, parsed once per pod or node (never per
 * pod × node). CPU is in millicores, every other resource in units (bytes for memory and
 * ephemeral-storage, counts for extended resources), rounded up as Kubernetes' `MilliValue` /
 * `Value` do.
 */

import type { Container, Node, PodSpec } from '../objects.js';
import { parseQuantity } from '../quantity.js';

/** Requests or capacity. `scalars` holds every resource but cpu and memory (absent when none). */
export interface Resources {
  milliCpu: number;
  memory: number;
  scalars?: Record<string, number>;
}

/** What a node offers the scheduler: allocatable resources and how many pods it takes. */
export interface Allocatable {
  resources: Resources;
  pods: number;
}

/** Kubernetes' defaults for a container that requests no cpu / memory, used in scores only. */
export const defaultMilliCpuRequest = 100;
export const defaultMemoryRequest = 200 * 1024 * 1024;

/** Parsed quantity texts kept (templates repeat the same few strings across thousands of pods). */
const quantityCacheEntriesMax = 4_096;
const milliCache = new Map<string, number>();
const unitCache = new Map<string, number>();

function cached(cache: Map<string, number>, text: string, parse: (t: string) => number): number {
  let v = cache.get(text);
  if (v === undefined) {
    try {
      v = parse(text);
    } catch {
      v = 0; // validation rejects malformed quantities; a leftover counts as nothing
    }
    if (cache.size >= quantityCacheEntriesMax) cache.clear();
    cache.set(text, v);
  }
  return v;
}

/** `500m` → 500, `2` → 2000. */
export function milliOf(text: string): number {
  return cached(milliCache, String(text), (t) => Number(parseQuantity(t).milliValue()));
}

/** `128Mi` → 134217728, `1500m` → 2 (rounded up). */
export function unitsOf(text: string): number {
  return cached(unitCache, String(text), (t) => Number(parseQuantity(t).value()));
}

export function emptyResources(): Resources {
  return { milliCpu: 0, memory: 0 };
}

/** A resource map (`{cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1'}`) as numbers; `pods` is skipped. */
export function resourcesOf(map: Readonly<Record<string, string>> | undefined): Resources {
  const out = emptyResources();
  if (map === undefined) return out;
  for (const [name, text] of Object.entries(map)) {
    if (name === 'cpu') out.milliCpu = milliOf(text);
    else if (name === 'memory') out.memory = unitsOf(text);
    else if (name !== 'pods') {
      out.scalars ??= {};
      out.scalars[name] = unitsOf(text);
    }
  }
  return out;
}

/** A container's requests; a resource with a limit and no request requests its limit (API defaulting). */
function containerRequests(c: Container): Resources {
  const requests = c.resources?.requests;
  const limits = c.resources?.limits;
  if (limits === undefined) return resourcesOf(requests);
  if (requests === undefined) return resourcesOf(limits);
  return resourcesOf({ ...limits, ...requests });
}

function addInto(sum: Resources, r: Resources): void {
  sum.milliCpu += r.milliCpu;
  sum.memory += r.memory;
  if (r.scalars === undefined) return;
  sum.scalars ??= {};
  for (const [name, v] of Object.entries(r.scalars)) sum.scalars[name] = (sum.scalars[name] ?? 0) + v;
}

function maxInto(acc: Resources, r: Resources): void {
  acc.milliCpu = Math.max(acc.milliCpu, r.milliCpu);
  acc.memory = Math.max(acc.memory, r.memory);
  if (r.scalars === undefined) return;
  acc.scalars ??= {};
  for (const [name, v] of Object.entries(r.scalars)) acc.scalars[name] = Math.max(acc.scalars[name] ?? 0, v);
}

/**
 * What a pod needs on its node, as Kubernetes computes it: per resource, the larger of the sum
 * of the app containers and the largest init container (init containers run one at a time,
 * before the app containers).
 */
export function podRequests(spec: PodSpec): Resources {
  const sum = emptyResources();
  for (const c of spec.containers) addInto(sum, containerRequests(c));
  for (const c of spec.initContainers ?? []) maxInto(sum, containerRequests(c));
  return sum;
}

/**
 * The requests scores use: a container without a cpu or memory request counts Kubernetes'
 * defaults (100m, 200Mi), so best-effort pods still spread by load.
 */
export function podNonZeroRequests(spec: PodSpec): { milliCpu: number; memory: number } {
  const nonZero = (c: Container) => {
    const r = containerRequests(c);
    return {
      milliCpu: r.milliCpu === 0 && !hasRequest(c, 'cpu') ? defaultMilliCpuRequest : r.milliCpu,
      memory: r.memory === 0 && !hasRequest(c, 'memory') ? defaultMemoryRequest : r.memory,
    };
  };
  let milliCpu = 0;
  let memory = 0;
  for (const c of spec.containers) {
    const r = nonZero(c);
    milliCpu += r.milliCpu;
    memory += r.memory;
  }
  for (const c of spec.initContainers ?? []) {
    const r = nonZero(c);
    milliCpu = Math.max(milliCpu, r.milliCpu);
    memory = Math.max(memory, r.memory);
  }
  return { milliCpu, memory };
}

function hasRequest(c: Container, name: string): boolean {
  return c.resources?.requests?.[name] !== undefined || c.resources?.limits?.[name] !== undefined;
}

/** A node's allocatable resources (its capacity when it reports none). */
export function nodeAllocatable(node: Node): Allocatable {
  const map = node.status?.allocatable ?? node.status?.capacity;
  const pods = map?.pods;
  return { resources: resourcesOf(map), pods: pods === undefined ? 0 : unitsOf(pods) };
}

/** `a + sign * b`, in place (scalars created as needed). */
export function addResources(a: Resources, b: Resources, sign: 1 | -1): void {
  a.milliCpu += sign * b.milliCpu;
  a.memory += sign * b.memory;
  if (b.scalars === undefined) return;
  a.scalars ??= {};
  for (const [name, v] of Object.entries(b.scalars)) a.scalars[name] = (a.scalars[name] ?? 0) + sign * v;
}

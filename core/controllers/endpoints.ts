/**
 * What the Endpoints and EndpointSlice controllers decide for one Service, as Kubernetes'
 * endpoints and endpointslice controllers do. Pure: the caller passes the service, the pods
 * of its namespace and the current objects; time plays no part.
 *
 * A pod backs a service when the selector matches its labels, it has an IP and it is not
 * terminal (Succeeded/Failed). Endpoints list ready pods in `addresses` and the others in
 * `notReadyAddresses`, and leave out terminating pods; slices keep terminating pods with
 * `conditions.terminating` (and `serving` as their readiness), as Kubernetes does. A service
 * port's `targetPort` is a number, or a container port name resolved per pod; pods that
 * resolve the ports differently land in different subsets (and different slices); a pod that
 * resolves none of them is left out.
 */

import type {
  EndpointAddress,
  EndpointPort,
  EndpointSlice,
  EndpointSubset,
  Endpoints,
  ObjectReference,
  Pod,
  Service,
  SliceEndpoint,
  SlicePort,
} from '../objects.js';
import { isIPv4 } from '../validation.js';
import { canonicalJson, isPodReady, isPodTerminal } from './pods.js';

/** The label naming a slice's service. */
export const serviceNameLabel = 'kubernetes.io/service-name';
/** The label naming the controller that manages a slice. */
export const managedByLabel = 'endpointslice.kubernetes.io/managed-by';
export const managedByValue = 'endpointslice-controller.k8s.io';
/**
 * Kubernetes' endpoints controller marks the Endpoints it manages with this label (so slice
 * mirroring skips them); here it also tells a leftover Endpoints of a deleted service from one
 * a user created without a service.
 */
export const skipMirrorLabel = 'endpointslice.kubernetes.io/skip-mirror';
/** The label Kubernetes puts on the endpoints of a headless service. */
export const headlessLabel = 'service.kubernetes.io/headless';
/** Endpoints per EndpointSlice (Kubernetes' default `--max-endpoints-per-slice`). */
export const endpointsPerSliceMax = 100;

/** The service's selector, or undefined when it has none (its endpoints are the user's). */
export function serviceSelector(svc: Service): Record<string, string> | undefined {
  const sel = svc.spec?.selector;
  return sel !== undefined && Object.keys(sel).length > 0 ? sel : undefined;
}

export function selects(selector: Record<string, string>, pod: Pod): boolean {
  const labels = pod.metadata.labels ?? {};
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** One pod's place behind a service. */
interface Backend {
  pod: Pod;
  ip: string;
  ready: boolean;
  terminating: boolean;
  ports: EndpointPort[];
  /** Canonical form of `ports` (the subset / slice group). */
  portsKey: string;
  hostname?: string;
  nodeName?: string;
  targetRef: ObjectReference;
}

/** The container port a service port reaches on `pod`, or undefined when the pod has none. */
export function resolveTargetPort(
  pod: Pod,
  port: NonNullable<Service['spec']['ports']>[number],
): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  const protocol = port.protocol ?? 'TCP';
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

function backendsOf(svc: Service, pods: readonly Pod[]): Backend[] {
  const selector = serviceSelector(svc);
  if (selector === undefined) return [];
  const out: Backend[] = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip || isPodTerminal(pod) || !selects(selector, pod)) continue;
    if (pod.metadata.namespace !== svc.metadata.namespace) continue;
    const ports: EndpointPort[] = [];
    for (const sp of svc.spec.ports ?? []) {
      const port = resolveTargetPort(pod, sp);
      if (port === undefined) continue;
      ports.push({ ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol ?? 'TCP' });
    }
    if (ports.length === 0 && (svc.spec.ports ?? []).length > 0) continue;
    ports.sort((a, b) => cmp(a.name ?? '', b.name ?? '') || a.port - b.port);
    const m = pod.metadata;
    out.push({
      pod,
      ip,
      ready: isPodReady(pod),
      terminating: m.deletionTimestamp !== undefined,
      ports,
      portsKey: canonicalJson(ports),
      ...(pod.spec.hostname && pod.spec.subdomain === svc.metadata.name
        ? { hostname: pod.spec.hostname }
        : {}),
      ...(pod.spec.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: {
        kind: 'Pod',
        namespace: m.namespace ?? '',
        name: m.name ?? '',
        ...(m.uid ? { uid: m.uid } : {}),
      },
    });
  }
  return out.sort((a, b) => cmp(a.ip, b.ip) || cmp(a.targetRef.name ?? '', b.targetRef.name ?? ''));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isHeadless(svc: Service): boolean {
  return svc.spec?.clusterIP === 'None';
}

/** The service's labels as its endpoints carry them. */
function endpointLabels(svc: Service): Record<string, string> {
  const labels = { ...(svc.metadata.labels ?? {}) };
  if (isHeadless(svc)) labels[headlessLabel] = '';
  else delete labels[headlessLabel];
  return labels;
}

/** The subsets of the service's Endpoints, grouped by resolved ports, in a stable order. */
export function endpointSubsets(svc: Service, pods: readonly Pod[]): EndpointSubset[] {
  const groups = new Map<
    string,
    { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }
  >();
  for (const b of backendsOf(svc, pods)) {
    if (b.terminating) continue;
    let g = groups.get(b.portsKey);
    if (g === undefined) {
      g = { ports: b.ports, ready: [], notReady: [] };
      groups.set(b.portsKey, g);
    }
    const address: EndpointAddress = {
      ip: b.ip,
      ...(b.hostname ? { hostname: b.hostname } : {}),
      ...(b.nodeName ? { nodeName: b.nodeName } : {}),
      targetRef: b.targetRef,
    };
    (b.ready ? g.ready : g.notReady).push(address);
  }
  return [...groups.keys()].sort().map((key) => {
    const g = groups.get(key) as NonNullable<ReturnType<typeof groups.get>>;
    return {
      ...(g.ready.length > 0 ? { addresses: g.ready } : {}),
      ...(g.notReady.length > 0 ? { notReadyAddresses: g.notReady } : {}),
      ports: g.ports,
    };
  });
}

/**
 * The Endpoints object the service should have; `current` (if any) supplies the version to
 * update. Returns undefined when `current` already says exactly that.
 */
export function desiredEndpoints(
  svc: Service,
  pods: readonly Pod[],
  current: Endpoints | undefined,
): Endpoints | undefined {
  const subsets = endpointSubsets(svc, pods);
  const labels = { ...endpointLabels(svc), [skipMirrorLabel]: 'true' };
  const sameLabels = canonicalJson(current?.metadata.labels ?? {}) === canonicalJson(labels);
  if (
    current !== undefined &&
    sameLabels &&
    canonicalJson(current.subsets ?? []) === canonicalJson(subsets)
  ) {
    return undefined;
  }
  const metadata = {
    ...(current?.metadata ?? {}),
    name: svc.metadata.name ?? '',
    namespace: svc.metadata.namespace ?? '',
  };
  metadata.labels = labels;
  return { apiVersion: 'v1', kind: 'Endpoints', metadata, ...(subsets.length > 0 ? { subsets } : {}) };
}

// ---------------------------------------------------------------- EndpointSlices

/** What to write so the service's managed slices say exactly its endpoints. */
export interface SlicePlan {
  /** New slices (`metadata.generateName` set). */
  create: EndpointSlice[];
  /** Existing slices with new content (same metadata, version as read). */
  update: EndpointSlice[];
  delete: EndpointSlice[];
}

function sliceEndpoint(b: Backend): SliceEndpoint {
  return {
    addresses: [b.ip],
    conditions: { ready: b.ready && !b.terminating, serving: b.ready, terminating: b.terminating },
    ...(b.hostname ? { hostname: b.hostname } : {}),
    ...(b.nodeName ? { nodeName: b.nodeName } : {}),
    targetRef: b.targetRef,
  };
}

function slicePorts(ports: readonly EndpointPort[]): SlicePort[] {
  return ports.map((p) => ({
    ...(p.name ? { name: p.name } : {}),
    port: p.port,
    protocol: p.protocol ?? 'TCP',
  }));
}

function endpointId(e: SliceEndpoint): string {
  return e.targetRef?.uid ?? e.addresses[0] ?? '';
}

/** Slices this controller manages for `svc` (by label), among the namespace's slices. */
export function isManagedSliceOf(slice: EndpointSlice, svc: Service | { name: string }): boolean {
  const name = 'metadata' in svc ? svc.metadata.name : svc.name;
  const labels = slice.metadata.labels ?? {};
  return labels[serviceNameLabel] === name && labels[managedByLabel] === managedByValue;
}

function sliceLabels(svc: Service): Record<string, string> {
  return {
    ...endpointLabels(svc),
    [serviceNameLabel]: svc.metadata.name ?? '',
    [managedByLabel]: managedByValue,
  };
}

function newSlice(svc: Service, ports: SlicePort[], endpoints: SliceEndpoint[]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      generateName: `${svc.metadata.name}-`,
      namespace: svc.metadata.namespace ?? '',
      labels: sliceLabels(svc),
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: svc.metadata.name ?? '',
          uid: svc.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType: 'IPv4',
    endpoints,
    ...(ports.length > 0 ? { ports } : {}),
  };
}

function portsKeyOf(slice: EndpointSlice): string {
  return canonicalJson(
    [...(slice.ports ?? [])]
      .map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port ?? 0, protocol: p.protocol ?? 'TCP' }))
      .sort((a, b) => cmp(a.name ?? '', b.name ?? '') || a.port - b.port),
  );
}

function sortEndpoints(list: SliceEndpoint[]): SliceEndpoint[] {
  return list.sort(
    (a, b) => cmp(a.addresses[0] ?? '', b.addresses[0] ?? '') || cmp(endpointId(a), endpointId(b)),
  );
}

/**
 * Plans the service's slices from its pods and its current managed slices (`existing`),
 * keeping endpoints in the slice they are in, filling slices with room before creating new
 * ones (at most `endpointsPerSliceMax` each), one group of slices per distinct port mapping,
 * and, with no endpoints at all, one empty placeholder slice (as Kubernetes).
 */
export function planEndpointSlices(
  svc: Service,
  pods: readonly Pod[],
  existing: readonly EndpointSlice[],
  perSliceMax = endpointsPerSliceMax,
): SlicePlan {
  const plan: SlicePlan = { create: [], update: [], delete: [] };
  const groups = new Map<string, { ports: SlicePort[]; wanted: Map<string, SliceEndpoint> }>();
  for (const b of backendsOf(svc, pods)) {
    if (!isIPv4(b.ip)) continue;
    let g = groups.get(b.portsKey);
    if (g === undefined) {
      g = { ports: slicePorts(b.ports), wanted: new Map() };
      groups.set(b.portsKey, g);
    }
    const e = sliceEndpoint(b);
    g.wanted.set(endpointId(e), e);
  }
  const labels = sliceLabels(svc);
  const owned = [...existing]
    .filter((s) => isManagedSliceOf(s, svc))
    .sort((a, b) => cmp(a.metadata.name ?? '', b.metadata.name ?? ''));
  // Kept slices per group, with the endpoints they will hold.
  const kept = new Map<string, { slice: EndpointSlice; endpoints: SliceEndpoint[] }[]>();
  for (const slice of owned) {
    const ownerOk = (slice.metadata.ownerReferences ?? []).some((r) => r.uid === svc.metadata.uid);
    const key = portsKeyOf(slice);
    const g = groups.get(key);
    if (!ownerOk || g === undefined) {
      plan.delete.push(slice);
      continue;
    }
    const endpoints: SliceEndpoint[] = [];
    for (const e of slice.endpoints ?? []) {
      const id = endpointId(e);
      const want = g.wanted.get(id);
      if (want === undefined || endpoints.length >= perSliceMax) continue;
      endpoints.push(want);
      g.wanted.delete(id);
    }
    const list = kept.get(key) ?? [];
    list.push({ slice, endpoints });
    kept.set(key, list);
  }
  for (const [key, g] of groups) {
    const rest = sortEndpoints([...g.wanted.values()]);
    const slots = kept.get(key) ?? [];
    for (const slot of slots) {
      while (slot.endpoints.length < perSliceMax && rest.length > 0)
        slot.endpoints.push(rest.shift() as SliceEndpoint);
    }
    for (let i = 0; i < rest.length; i += perSliceMax) {
      plan.create.push(newSlice(svc, g.ports, sortEndpoints(rest.slice(i, i + perSliceMax))));
    }
    for (const slot of slots) {
      if (slot.endpoints.length === 0) {
        plan.delete.push(slot.slice);
        continue;
      }
      const next: EndpointSlice = {
        ...slot.slice,
        metadata: { ...slot.slice.metadata, labels },
        addressType: 'IPv4',
        endpoints: sortEndpoints(slot.endpoints),
        ...(g.ports.length > 0 ? { ports: g.ports } : {}),
      };
      if (g.ports.length === 0) delete next.ports;
      if (!sameSlice(slot.slice, next)) plan.update.push(next);
    }
  }
  if (groups.size === 0) placeholder(svc, plan, labels);
  return plan;
}

/** No endpoints: keep (or make) exactly one empty slice, as Kubernetes does. */
function placeholder(svc: Service, plan: SlicePlan, labels: Record<string, string>): void {
  const reusable = plan.delete.find((s) =>
    (s.metadata.ownerReferences ?? []).some((r) => r.uid === svc.metadata.uid),
  );
  if (reusable === undefined) {
    plan.create.push(newSlice(svc, [], []));
    return;
  }
  plan.delete = plan.delete.filter((s) => s !== reusable);
  const next: EndpointSlice = {
    ...reusable,
    metadata: { ...reusable.metadata, labels },
    addressType: 'IPv4',
    endpoints: [],
  };
  delete next.ports;
  if (!sameSlice(reusable, next)) plan.update.push(next);
}

function sameSlice(a: EndpointSlice, b: EndpointSlice): boolean {
  return (
    canonicalJson(a.metadata.labels ?? {}) === canonicalJson(b.metadata.labels ?? {}) &&
    a.addressType === b.addressType &&
    canonicalJson(a.endpoints ?? []) === canonicalJson(b.endpoints ?? []) &&
    canonicalJson(a.ports ?? []) === canonicalJson(b.ports ?? [])
  );
}

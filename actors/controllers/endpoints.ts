/**
 * The Endpoints and EndpointSlice controller: for each Service with a selector, an Endpoints
 * object of the same name and a set of EndpointSlices (`kubernetes.io/service-name`), both
 * listing the pods behind it. Decisions come from `core/controllers/endpoints.ts`.
 *
 * A pod change maps to the services of its namespace that select it (before or after the
 * change), and only when something endpoints show changed (IP, readiness, phase, labels,
 * ports, deletion, node, hostname). Services without a selector are left alone: their
 * Endpoints belong to the user. When a service goes, its Endpoints and managed slices go.
 */

import {
  desiredEndpoints,
  isManagedSliceOf,
  managedByLabel,
  managedByValue,
  planEndpointSlices,
  selects,
  serviceNameLabel,
  serviceSelector,
  skipMirrorLabel,
} from '../../core/controllers/endpoints.js';
import { canonicalJson, isPodReady } from '../../core/controllers/pods.js';
import type { EndpointSlice, Endpoints, Pod, Service } from '../../core/objects.js';
import type { ClusterCache } from './cache.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { deleteObject, isGoneOrConflict, keyOf, parseKey } from './workload.js';

/** What of a pod its endpoints show; a change elsewhere (status details) moves nothing. */
function podFingerprint(pod: Pod): string {
  return canonicalJson([
    pod.metadata.labels ?? {},
    pod.metadata.deletionTimestamp ?? '',
    pod.status?.podIP ?? '',
    pod.status?.phase ?? '',
    isPodReady(pod),
    pod.spec.nodeName ?? '',
    pod.spec.hostname ?? '',
    pod.spec.subdomain ?? '',
    (pod.spec.containers ?? []).map((c) => c.ports ?? []),
  ]);
}

function* servicesSelecting(pod: Pod, prev: Pod | undefined, cache: ClusterCache): Iterable<string> {
  const ns = pod.metadata.namespace ?? '';
  for (const svc of cache.list<Service>('Service', ns)) {
    const sel = serviceSelector(svc);
    if (sel === undefined) continue;
    if (selects(sel, pod) || (prev !== undefined && selects(sel, prev))) yield keyOf(svc);
  }
}

export function endpointsController(): Controller {
  return {
    name: 'endpoints',
    watches: ['Service', 'Pod', 'Endpoints', 'EndpointSlice'],
    workers: 4,
    *keysFor(change, cache) {
      const obj = change.object;
      const ns = obj.metadata.namespace ?? '';
      switch (obj.kind) {
        case 'Service':
          yield change.key;
          return;
        case 'Pod': {
          // No Service in the pod's namespace: no endpoints to follow (nor a fingerprint to take).
          if (cache.count('Service', ns) === 0) return;
          const prev = change.prev as Pod | undefined;
          if (
            change.type === 'MODIFIED' &&
            prev !== undefined &&
            podFingerprint(prev) === podFingerprint(obj)
          )
            return;
          yield* servicesSelecting(obj, prev, cache);
          return;
        }
        case 'Endpoints': {
          const svc = cache.get<Service>('Service', ns, obj.metadata.name ?? '');
          if (svc !== undefined || obj.metadata.labels?.[skipMirrorLabel] === 'true') {
            yield `Service/${ns}/${obj.metadata.name ?? ''}`;
          }
          return;
        }
        case 'EndpointSlice': {
          const labels = obj.metadata.labels ?? {};
          const name = labels[serviceNameLabel];
          if (name !== undefined && labels[managedByLabel] === managedByValue) yield `Service/${ns}/${name}`;
          return;
        }
        default:
          return;
      }
    },
    *initialKeys(cache) {
      const keys = new Set<string>();
      for (const svc of cache.list<Service>('Service')) keys.add(keyOf(svc));
      // Leftovers of services deleted while no leader ran the controller.
      for (const ep of cache.list<Endpoints>('Endpoints')) {
        if (ep.metadata.labels?.[skipMirrorLabel] === 'true') keys.add(keyOf(ep, 'Service'));
      }
      for (const slice of cache.list<EndpointSlice>('EndpointSlice')) {
        const labels = slice.metadata.labels ?? {};
        const name = labels[serviceNameLabel];
        if (name !== undefined && labels[managedByLabel] === managedByValue) {
          keys.add(`Service/${slice.metadata.namespace ?? ''}/${name}`);
        }
      }
      yield* keys;
    },
    reconcile: reconcileService,
  };
}

async function reconcileService(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const svc = ctx.cache.get<Service>('Service', namespace, name);
  const slices = ctx.cache
    .list<EndpointSlice>('EndpointSlice', namespace)
    .filter((s) => isManagedSliceOf(s, { name }));
  const current = ctx.cache.get<Endpoints>('Endpoints', namespace, name);
  if (svc === undefined) {
    if (current?.metadata.labels?.[skipMirrorLabel] === 'true') await deleteObject(ctx, current);
    for (const s of slices) await deleteObject(ctx, s);
    return undefined;
  }
  if (serviceSelector(svc) === undefined) return undefined; // the user's endpoints
  const pods = ctx.cache.list<Pod>('Pod', namespace);
  await syncEndpoints(ctx, svc, pods, current);
  await syncSlices(ctx, svc, pods, slices);
  return undefined;
}

async function syncEndpoints(
  ctx: ControllerContext,
  svc: Service,
  pods: readonly Pod[],
  current: Endpoints | undefined,
): Promise<void> {
  const next = desiredEndpoints(svc, pods, current);
  if (next === undefined) return;
  if (current === undefined) {
    await ctx.api.create(next);
    return;
  }
  try {
    await ctx.api.update(next);
  } catch (err) {
    if (!isGoneOrConflict(err)) throw err;
    throw new Error(`endpoints ${svc.metadata.namespace}/${svc.metadata.name} changed meanwhile; retrying`);
  }
}

async function syncSlices(
  ctx: ControllerContext,
  svc: Service,
  pods: readonly Pod[],
  slices: readonly EndpointSlice[],
): Promise<void> {
  const plan = planEndpointSlices(svc, pods, slices);
  // Creates and updates first, deletes last: readers never see the endpoints vanish midway.
  for (const s of plan.create) await ctx.api.create(s);
  for (const s of plan.update) await ctx.api.update(s);
  for (const s of plan.delete) await deleteObject(ctx, s);
}

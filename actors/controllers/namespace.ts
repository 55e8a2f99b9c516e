/**
 * The namespace controller. A deleted namespace is Terminating while its `kubernetes`
 * finalizer (in `spec.finalizers`) stays: this controller deletes everything inside (every
 * namespaced kind; pods get their grace period), reports progress in the namespace's status
 * conditions as Kubernetes does, and removes the finalizer once nothing is left, so the
 * namespace goes. Finalizers that hold objects inside, or the namespace itself, stay visible
 * in NamespaceFinalizersRemaining. It also creates the system namespaces (`default`,
 * `kube-system`, `kube-public`, `kube-node-lease`) when they are missing.
 * Decisions come from `core/controllers/namespace.ts`.
 */

import { type NamespaceContent, planNamespaceDeletion } from '../../core/controllers/namespace.js';
import { rfc3339 } from '../../core/controllers/pods.js';
import { type Kind, kindInfo, type Namespace } from '../../core/index.js';
import { FinalizerKubernetes, isSystemNamespace, systemNamespaces } from '../../core/namespaces.js';
import { ApiErrorCode, isApiError } from '../api.js';
import type { Controller, ControllerContext, ReconcileResult } from './controller.js';
import { requeueOnConflict } from './requeue.js';
import { deleteObject, errorText, parseKey, writeStatus } from './workload.js';

const namespacedKinds = (Object.keys(kindInfo) as Kind[]).filter((k) => kindInfo[k].namespaced);

/** Deletes in flight at once while emptying a namespace. */
const namespaceDeletesInFlightMax = 50;
/** Look at a Terminating namespace again after this even without a change (pods in their grace). */
const namespaceRecheckMs = 5_000;
/** ... and sooner after a failed delete. */
const namespaceRetryMs = 1_000;

const nsKey = (name: string) => `Namespace//${name}`;

export function namespaceController(): Controller {
  return {
    name: 'namespace',
    watches: ['Namespace', ...namespacedKinds],
    workers: 2,
    *keysFor(change, cache) {
      const obj = change.object;
      if (obj.kind === 'Namespace') {
        yield change.key;
        return;
      }
      // Content of a Terminating namespace went away, or its finalizers changed.
      const ns = obj.metadata.namespace ?? '';
      if (cache.get<Namespace>('Namespace', '', ns)?.metadata.deletionTimestamp === undefined) return;
      const finalizersChanged =
        change.prev !== undefined &&
        (change.prev.metadata.finalizers ?? []).join() !== (obj.metadata.finalizers ?? []).join();
      if (change.type === 'DELETED' || finalizersChanged) yield nsKey(ns);
    },
    *initialKeys(cache) {
      for (const name of systemNamespaces) yield nsKey(name);
      for (const ns of cache.list<Namespace>('Namespace')) {
        if (ns.metadata.deletionTimestamp !== undefined) yield nsKey(ns.metadata.name ?? '');
      }
    },
    reconcile: (key, ctx) => requeueOnConflict(() => reconcileNamespace(key, ctx)),
  };
}

async function reconcileNamespace(key: string, ctx: ControllerContext): Promise<ReconcileResult> {
  const { name } = parseKey(key);
  const ns = ctx.cache.get<Namespace>('Namespace', '', name);
  if (ns === undefined) {
    if (isSystemNamespace(name)) await createNamespace(ctx, name);
    return undefined;
  }
  if (ns.metadata.deletionTimestamp === undefined) return undefined;

  const first = planNamespaceDeletion(ns, contentsOf(ctx, name), [], rfc3339(ctx.nowMs()));
  const errors: string[] = [];
  for (let i = 0; i < first.delete.length; i += namespaceDeletesInFlightMax) {
    await Promise.all(
      first.delete.slice(i, i + namespaceDeletesInFlightMax).map(async (obj) => {
        try {
          await deleteObject(ctx, obj, { propagationPolicy: 'Background' });
        } catch (err) {
          errors.push(`${obj.kind.toLowerCase()} ${JSON.stringify(obj.metadata.name)}: ${errorText(err)}`);
        }
      }),
    );
  }

  // Report what is left after this pass's deletes (the cache holds their results).
  const plan = planNamespaceDeletion(ns, contentsOf(ctx, name), errors, rfc3339(ctx.nowMs()));
  const current = ctx.cache.get<Namespace>('Namespace', '', name);
  if (current === undefined || current.metadata.uid !== ns.metadata.uid) return undefined;
  const written = await writeStatus(ctx, current, plan.status);
  if (plan.finalize) {
    const rest = (written.spec?.finalizers ?? []).filter((f) => f !== FinalizerKubernetes);
    // An explicit list: an update without `spec.finalizers` would keep them.
    await ctx.api.update({ ...written, spec: { ...written.spec, finalizers: rest } });
    return undefined;
  }
  if (errors.length > 0) return { requeueAfterMs: namespaceRetryMs };
  return plan.status?.conditions?.some((c) => c.type === 'NamespaceContentRemaining' && c.status === 'True')
    ? { requeueAfterMs: namespaceRecheckMs }
    : undefined;
}

function contentsOf(ctx: ControllerContext, namespace: string): NamespaceContent[] {
  return namespacedKinds.map((kind) => ({ kind, objects: ctx.cache.list(kind, namespace) }));
}

async function createNamespace(ctx: ControllerContext, name: string): Promise<void> {
  try {
    await ctx.api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  } catch (err) {
    if (!(isApiError(err) && err.code === ApiErrorCode.AlreadyExists)) throw err;
  }
}

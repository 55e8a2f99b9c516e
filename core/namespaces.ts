/**
 * Namespace rules shared by the API and the namespace controller: the system namespaces that
 * always exist and may not be deleted, and the `kubernetes` finalizer that keeps a deleted
 * namespace (Terminating) until the namespace controller has emptied it. Pure.
 */

import type { Namespace } from './objects.js';

/**
 * In `spec.finalizers` of every namespace from its creation (as Kubernetes puts it there):
 * the namespace controller removes it once everything inside is gone.
 */
export const FinalizerKubernetes = 'kubernetes';

/** Created by the leader when missing; deleting them is refused. */
export const systemNamespaces: readonly string[] = [
  'default',
  'kube-system',
  'kube-public',
  'kube-node-lease',
];

export function isSystemNamespace(name: string): boolean {
  return systemNamespaces.includes(name);
}

/**
 * Why deleting the object at `key` is refused, or undefined when it may be deleted (Kubernetes'
 * NamespaceLifecycle admission: `namespaces "default" is forbidden: this namespace may not be deleted`).
 */
export function namespaceDeletionForbidden(key: { kind: string; name: string }): string | undefined {
  if (key.kind !== 'Namespace' || !isSystemNamespace(key.name)) return undefined;
  return `namespaces ${JSON.stringify(key.name)}: metadata.name: this namespace may not be deleted (a system namespace)`;
}

/** The namespace as stored on create: `kubernetes` appended to `spec.finalizers` unless there. */
export function withNamespaceFinalizer(ns: Namespace): Namespace {
  const finalizers = ns.spec?.finalizers ?? [];
  if (finalizers.includes(FinalizerKubernetes)) return ns;
  return { ...ns, spec: { ...ns.spec, finalizers: [...finalizers, FinalizerKubernetes] } };
}

/** A namespace's own pending finalizers: `metadata.finalizers` and `spec.finalizers`. */
export function namespaceFinalizers(ns: Namespace): string[] {
  return [...(ns.metadata.finalizers ?? []), ...(ns.spec?.finalizers ?? [])];
}

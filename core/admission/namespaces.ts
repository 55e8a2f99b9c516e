/**
 * Namespace lifecycle admission, as Kubernetes' NamespaceLifecycle plugin: a namespaced
 * object may be created only in a namespace that exists and is not being terminated. The
 * system namespaces are always accepted, even before their Namespace objects exist (the
 * leader creates them at start, and they cannot be deleted). Pure.
 */

import { kindNames } from '../kind-names.js';
import type { Kind, Namespace } from '../objects.js';

/** Namespaces that always accept new objects. */
export const systemNamespaces: ReadonlySet<string> = new Set([
  'default',
  'kube-system',
  'kube-public',
  'kube-node-lease',
]);

export interface NamespaceRejection {
  code: 'NotFound' | 'Forbidden';
  message: string;
}

/**
 * Why an object of `kind` named `name` may not be created in `namespace` (whose Namespace
 * object is `ns`, if any); undefined when it may.
 */
export function namespaceRejection(
  kind: Kind,
  name: string,
  namespace: string,
  ns: Namespace | undefined,
): NamespaceRejection | undefined {
  if (systemNamespaces.has(namespace)) return undefined;
  if (ns === undefined)
    return { code: 'NotFound', message: `namespaces ${JSON.stringify(namespace)} not found` };
  if (ns.metadata.deletionTimestamp !== undefined || ns.status?.phase === 'Terminating') {
    return {
      code: 'Forbidden',
      message: forbidden(
        kind,
        name,
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      ),
    };
  }
  return undefined;
}

/** Kubernetes' 403 wording: `pods "web-1" is forbidden: <reason>`. */
export function forbidden(kind: Kind, name: string, reason: string): string {
  return `${kindNames[kind].plural} ${JSON.stringify(name)} is forbidden: ${reason}`;
}

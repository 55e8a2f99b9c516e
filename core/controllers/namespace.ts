/**
 * The namespace controller's decisions, pure: what to delete inside a Terminating namespace,
 * the deletion conditions Kubernetes reports in its status (what remains, which finalizers
 * hold it), and when its `kubernetes` finalizer can go.
 */

import { kindNames } from '../kind-names.js';
import { FinalizerKubernetes } from '../namespaces.js';
import { type ApiObject, type Condition, type Kind, kindInfo, type Namespace } from '../objects.js';
import { setCondition } from './pods.js';

/** Deletes one pass issues at most; the rest come on the next pass. */
export const namespaceDeletesPerPassMax = 1_000;

export const NamespaceConditionType = {
  ContentFailure: 'NamespaceDeletionContentFailure',
  ContentRemaining: 'NamespaceContentRemaining',
  FinalizersRemaining: 'NamespaceFinalizersRemaining',
} as const;

export interface NamespaceContent {
  kind: Kind;
  objects: readonly ApiObject[];
}

export interface NamespaceDeletionPlan {
  /** Objects not yet marked for deletion (at most `namespaceDeletesPerPassMax`). */
  delete: ApiObject[];
  /** Nothing is left inside: remove the `kubernetes` finalizer. */
  finalize: boolean;
  /** The status to report (phase Terminating and the deletion conditions). */
  status: Namespace['status'];
}

/** `pods.`, `deployments.apps`: Kubernetes' group-resource text in the conditions. */
export function groupResource(kind: Kind): string {
  const apiVersion = kindInfo[kind].apiVersion;
  const slash = apiVersion.indexOf('/');
  return `${kindNames[kind].plural}.${slash < 0 ? '' : apiVersion.slice(0, slash)}`;
}

function sortedCounts(counts: Map<string, number>): [string, number][] {
  return [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The plan for a namespace being deleted. `contents` is everything inside, by kind;
 * `deleteErrors` are the failures of the previous pass's deletes, reported in
 * NamespaceDeletionContentFailure. `now` is RFC 3339.
 */
export function planNamespaceDeletion(
  ns: Namespace,
  contents: readonly NamespaceContent[],
  deleteErrors: readonly string[],
  now: string,
): NamespaceDeletionPlan {
  // Without the `kubernetes` finalizer (removed by hand to force the namespace out) nothing
  // is deleted: what is left stays visible in the conditions.
  const deleting = (ns.spec?.finalizers ?? []).includes(FinalizerKubernetes);
  const toDelete: ApiObject[] = [];
  const remaining = new Map<string, number>();
  const finalizers = new Map<string, number>();
  for (const { kind, objects } of contents) {
    if (objects.length === 0) continue;
    remaining.set(groupResource(kind), objects.length);
    for (const obj of objects) {
      for (const f of obj.metadata.finalizers ?? []) finalizers.set(f, (finalizers.get(f) ?? 0) + 1);
      if (
        deleting &&
        obj.metadata.deletionTimestamp === undefined &&
        toDelete.length < namespaceDeletesPerPassMax
      )
        toDelete.push(obj);
    }
  }
  const own = (ns.spec?.finalizers ?? []).filter((f) => f !== FinalizerKubernetes);
  const ownMeta = ns.metadata.finalizers ?? [];
  let conditions = ns.status?.conditions;
  conditions = setCondition(
    conditions,
    deleteErrors.length > 0
      ? {
          type: NamespaceConditionType.ContentFailure,
          status: 'True',
          reason: 'ContentDeletionFailed',
          message: `Failed to delete all resource types, ${deleteErrors.length} remaining: ${deleteErrors.join(', ')}`,
          lastTransitionTime: now,
        }
      : {
          type: NamespaceConditionType.ContentFailure,
          status: 'False',
          reason: 'ContentDeleted',
          message: 'All content successfully deleted, may be waiting on finalization',
          lastTransitionTime: now,
        },
  );
  conditions = setCondition(
    conditions,
    remaining.size > 0
      ? {
          type: NamespaceConditionType.ContentRemaining,
          status: 'True',
          reason: 'SomeResourcesRemain',
          message: `Some resources are remaining: ${sortedCounts(remaining)
            .map(([gr, n]) => `${gr} has ${n} resource instances`)
            .join(', ')}`,
          lastTransitionTime: now,
        }
      : {
          type: NamespaceConditionType.ContentRemaining,
          status: 'False',
          reason: 'ContentRemoved',
          message: 'All content successfully removed',
          lastTransitionTime: now,
        },
  );
  const held: string[] = [];
  if (finalizers.size > 0) {
    held.push(
      `Some content in the namespace has finalizers remaining: ${sortedCounts(finalizers)
        .map(([f, n]) => `${f} in ${n} resource instances`)
        .join(', ')}`,
    );
  }
  // The namespace's own finalizers hold it once its content is gone: say so too (they are
  // what leaves a namespace stuck in Terminating).
  if (remaining.size === 0 && own.length + ownMeta.length > 0) {
    held.push(`The namespace itself has finalizers remaining: ${[...ownMeta, ...own].join(', ')}`);
  }
  conditions = setCondition(
    conditions,
    held.length > 0
      ? {
          type: NamespaceConditionType.FinalizersRemaining,
          status: 'True',
          reason: 'SomeFinalizersRemain',
          message: held.join('; '),
          lastTransitionTime: now,
        }
      : {
          type: NamespaceConditionType.FinalizersRemaining,
          status: 'False',
          reason: 'ContentHasNoFinalizers',
          message: 'All content-preserving finalizers have been removed',
          lastTransitionTime: now,
        },
  );
  return {
    delete: toDelete,
    finalize: deleting && remaining.size === 0,
    status: { ...ns.status, phase: 'Terminating', conditions: conditions as Condition[] },
  };
}

/** `cox delete`: delete named objects, objects of manifests, or all matching a selector. */

import { type DeleteOptions, isApiError, type ObjectApi, type ObjectKey } from '../actors/api.js';
import { isNamespaced, keyOf, withNamespace } from './apply.js';
import { describeError, UsageError } from './errors.js';
import type { Output } from './get.js';
import type { ManifestObject } from './manifests.js';
import type { ResourceTargets } from './options.js';
import { refOf } from './printers.js';

export interface DeleteCliOptions {
  namespace?: string;
  labelSelector?: string;
  all: boolean;
  propagationPolicy?: DeleteOptions['propagationPolicy'];
  gracePeriodSeconds?: number;
}

function deleteOptions(opts: DeleteCliOptions): DeleteOptions {
  const o: DeleteOptions = {};
  if (opts.propagationPolicy !== undefined) o.propagationPolicy = opts.propagationPolicy;
  if (opts.gracePeriodSeconds !== undefined) o.gracePeriodSeconds = opts.gracePeriodSeconds;
  return o;
}

/** The keys `delete KIND NAME...` (or `-l`/`--all`) names. */
export async function keysFromTargets(
  api: ObjectApi,
  targets: ResourceTargets,
  opts: DeleteCliOptions,
): Promise<ObjectKey[]> {
  const keys: ObjectKey[] = [];
  for (const kind of targets.kinds) {
    const namespace = isNamespaced(kind) ? (opts.namespace ?? 'default') : undefined;
    const names = targets.names.get(kind) ?? [];
    if (names.length > 0) {
      if (opts.all || opts.labelSelector !== undefined) {
        throw new UsageError('delete: give names, or --all / -l, not both');
      }
      for (const name of names) keys.push({ kind, namespace, name });
      continue;
    }
    if (!opts.all && opts.labelSelector === undefined) {
      throw new UsageError(`delete ${kind.toLowerCase()}: a NAME, -l SELECTOR or --all is required`);
    }
    const listed = await api.list(kind, { namespace, labelSelector: opts.labelSelector });
    for (const o of listed.items) keys.push({ kind, namespace, name: o.metadata.name ?? '' });
  }
  return keys;
}

export function keysFromManifests(
  manifests: readonly ManifestObject[],
  namespace: string | undefined,
): ObjectKey[] {
  return manifests.map((m) => keyOf(withNamespace(m.object, namespace)));
}

/** Deletes each key, printing `pod "x" deleted` or one error line; returns the exit code. */
export async function runDelete(
  api: ObjectApi,
  keys: readonly ObjectKey[],
  opts: DeleteCliOptions,
  out: Output,
): Promise<number> {
  let failed = false;
  for (const key of keys) {
    try {
      await api.delete(key, deleteOptions(opts));
      out.stdout(`${key.kind.toLowerCase()} "${key.name}" deleted\n`);
    } catch (err) {
      if (!isApiError(err)) throw err;
      failed = true;
      out.stderr(`error: ${describeError(err, refOf(key.kind, key.name), true)}\n`);
    }
  }
  return failed ? 1 : 0;
}

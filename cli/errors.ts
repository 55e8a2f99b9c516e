/** The CLI's errors and the one line it prints for any failure. */

import { ApiErrorCode, isApiError } from '../actors/api.js';

/** A mistake in the command line (unknown kind, bad flag value): exit code 1 with a usage hint. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A problem with a manifest (unparsable YAML, missing kind), naming the file and document. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

/**
 * The text after `error: ` for a failure about one object (`ref` like `deployment/web`):
 * `deployment/web: spec.replicas: must be >= 0`. An Invalid error is cut to start at its field
 * path when the message contains it. With `refIsTarget` (the request named exactly that object),
 * NotFound and AlreadyExists read plainly: `pod/x: not found`.
 */
export function describeError(err: unknown, ref?: string, refIsTarget = false): string {
  if (!isApiError(err)) return err instanceof Error ? err.message : String(err);
  let text = err.message;
  const field = err.details.fieldPath;
  if (field !== undefined && field !== '') {
    const at = text.indexOf(`${field}:`);
    if (at >= 0) text = text.slice(at);
    else if (err.code === ApiErrorCode.Invalid) text = `${field}: ${text}`;
  }
  if (ref === undefined) return text;
  if (refIsTarget && err.code === ApiErrorCode.NotFound && field === undefined) text = 'not found';
  if (refIsTarget && err.code === ApiErrorCode.AlreadyExists && field === undefined) text = 'already exists';
  return `${ref}: ${text}`;
}

/** Parsing of the CLI's arguments and flag values. Pure; every mistake is a UsageError. */

import type { Consistency, PropagationPolicy } from '../actors/api.js';
import { kindNames, resolveKindName } from '../core/kind-names.js';
import { UsageError } from './errors.js';

export const outputFormats = ['table', 'wide', 'yaml', 'json', 'name'] as const;
export type OutputFormat = (typeof outputFormats)[number];

/** `-o` value; absent: the table. */
export function parseOutputFormat(text: string | undefined): OutputFormat {
  if (text === undefined || text === '') return 'table';
  if ((outputFormats as readonly string[]).includes(text) && text !== 'table') return text as OutputFormat;
  throw new UsageError(`unknown output format "${text}": use one of wide, yaml, json, name`);
}

/** A Kind from what a user typed (`po`, `pods`, `Pod`), or a UsageError listing the known ones. */
export function parseKind(text: string): string {
  const kind = resolveKindName(text);
  if (kind === undefined) {
    const known = Object.values(kindNames).map((k) => k.plural);
    throw new UsageError(`unknown kind "${text}": use one of ${known.join(', ')}`);
  }
  return kind;
}

/** `pods,deploy` → [`Pod`, `Deployment`] (duplicates dropped, order kept). */
export function parseKindList(text: string): string[] {
  const parts = text.split(',').filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError(`no kind in "${text}"`);
  return [...new Set(parts.map(parseKind))];
}

/** The objects a verb names: per kind, the names (empty: every object of the kind). */
export interface ResourceTargets {
  kinds: string[];
  /** Names per kind, in the order given. */
  names: Map<string, string[]>;
}

/**
 * kubectl's two forms: `KIND[,KIND...] [NAME...]`, or only `KIND/NAME` arguments
 * (`pod/a deploy/b`). Mixing them is a UsageError.
 */
export function parseResourceArgs(args: readonly string[]): ResourceTargets {
  if (args.length === 0) throw new UsageError('a kind is required, e.g. `pods` or `pod/NAME`');
  const names = new Map<string, string[]>();
  if (args[0].includes('/')) {
    for (const arg of args) {
      const slash = arg.indexOf('/');
      if (slash <= 0 || slash === arg.length - 1) {
        throw new UsageError(`"${arg}": expected KIND/NAME when the first argument is KIND/NAME`);
      }
      const kind = parseKind(arg.slice(0, slash));
      const list = names.get(kind) ?? [];
      list.push(arg.slice(slash + 1));
      names.set(kind, list);
    }
    return { kinds: [...names.keys()], names };
  }
  const kinds = parseKindList(args[0]);
  const rest = args.slice(1);
  for (const n of rest) {
    if (n.includes('/')) throw new UsageError(`"${n}": NAME may not contain "/" after a KIND argument`);
  }
  for (const k of kinds) names.set(k, [...rest]);
  return { kinds, names };
}

/** `--cascade`: background (default), foreground, orphan; kubectl's old true/false too. */
export function parseCascade(text: string | undefined): PropagationPolicy | undefined {
  switch (text) {
    case undefined:
      return undefined;
    case 'background':
    case 'true':
      return 'Background';
    case 'foreground':
      return 'Foreground';
    case 'orphan':
    case 'false':
      return 'Orphan';
    default:
      throw new UsageError(`--cascade: "${text}": use background, foreground or orphan`);
  }
}

/** `--grace-period`: seconds ≥ 0, or -1 (the default: the object's own). */
export function parseGracePeriod(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text)) throw new UsageError(`--grace-period: "${text}": must be an integer`);
  const n = Number(text);
  if (n < -1) throw new UsageError(`--grace-period: ${n}: must be >= -1`);
  return n === -1 ? undefined : n;
}

/** `--consistency`: linearizable (default) or serializable. */
export function parseConsistency(text: string | undefined): Consistency | undefined {
  if (text === undefined) return undefined;
  if (text === 'linearizable' || text === 'serializable') return text;
  throw new UsageError(`--consistency: "${text}": use linearizable or serializable`);
}

/** One `<number><unit>` term of a duration, as Go's `time.ParseDuration` writes them. */
const durationTerm = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
const durationUnitMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * A duration as kubectl and kubelet flags take it (`500ms`, `10s`, `5m`, `1h30m`, `1.5s`) →
 * milliseconds. `flag` names the flag in the UsageError.
 */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  let ms = 0;
  let at = 0;
  while (at < t.length) {
    durationTerm.lastIndex = at;
    const m = durationTerm.exec(t);
    if (m === null) break;
    ms += Number(m[1]) * (durationUnitMs[m[2]] ?? 0);
    at = durationTerm.lastIndex;
  }
  if (t === '' || at !== t.length || !Number.isFinite(ms)) {
    throw new UsageError(`${flag}: "${text}" is not a duration like 500ms, 10s, 5m or 1h30m`);
  }
  return ms;
}

/**
 * The scheduler's matching rules, as Kubernetes defines them: node selector terms (node
 * affinity), taints against tolerations, and the pod affinity terms' label selectors and
 * namespaces. Compiled once per pod; matched per node.
 */

import { labelSelectorFromApi, labelSelectorMatches, type ParsedLabelSelector } from '../labels.js';
import type {
  NodeSelectorRequirement,
  NodeSelectorTerm,
  PodAffinityTerm,
  Taint,
  Toleration,
} from '../objects.js';

/** One requirement, with `In`/`NotIn` values as a set and `Gt`/`Lt` bounds parsed. */
export interface CompiledRequirement {
  readonly key: string;
  readonly operator: NodeSelectorRequirement['operator'];
  readonly values: ReadonlySet<string>;
  /** `Gt`/`Lt`: the bound; undefined when it is not an integer (then nothing matches). */
  readonly bound?: number;
}

/** The requirements of one term are ANDed; a term with none matches no node. */
export interface CompiledTerm {
  readonly expressions: readonly CompiledRequirement[];
  readonly fields: readonly CompiledRequirement[];
}

const integerText = /^[+-]?\d+$/;

function compileRequirement(r: NodeSelectorRequirement): CompiledRequirement {
  const values = r.values ?? [];
  if (r.operator === 'Gt' || r.operator === 'Lt') {
    const text = values[0];
    const bound = values.length === 1 && integerText.test(text) ? Number(text) : undefined;
    return { key: r.key, operator: r.operator, values: new Set(), ...(bound !== undefined ? { bound } : {}) };
  }
  return { key: r.key, operator: r.operator, values: new Set(values) };
}

export function compileTerm(term: NodeSelectorTerm): CompiledTerm {
  return {
    expressions: (term.matchExpressions ?? []).map(compileRequirement),
    fields: (term.matchFields ?? []).map(compileRequirement),
  };
}

function requirementMatches(r: CompiledRequirement, value: string | undefined): boolean {
  switch (r.operator) {
    case 'In':
      return value !== undefined && r.values.has(value);
    case 'NotIn':
      return value === undefined || !r.values.has(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || r.bound === undefined || !integerText.test(value)) return false;
      const n = Number(value);
      return r.operator === 'Gt' ? n > r.bound : n < r.bound;
    }
    default: {
      const unknown: never = r.operator;
      throw new Error(`unknown node selector operator ${String(unknown)}`);
    }
  }
}

/** Whether a node (its labels and name) matches one term: every expression and field holds. */
export function termMatches(
  term: CompiledTerm,
  labels: Readonly<Record<string, string>>,
  nodeName: string,
): boolean {
  if (term.expressions.length === 0 && term.fields.length === 0) return false;
  for (const r of term.expressions) {
    if (!requirementMatches(r, Object.hasOwn(labels, r.key) ? labels[r.key] : undefined)) return false;
  }
  for (const r of term.fields) {
    // Only metadata.name is a node field (validation refuses others).
    if (!requirementMatches(r, r.key === 'metadata.name' ? nodeName : undefined)) return false;
  }
  return true;
}

/** Terms are ORed; no terms match no node. */
export function anyTermMatches(
  terms: readonly CompiledTerm[],
  labels: Readonly<Record<string, string>>,
  nodeName: string,
): boolean {
  for (const t of terms) if (termMatches(t, labels, nodeName)) return true;
  return false;
}

/** Kubernetes' `Toleration.ToleratesTaint`. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Exists':
      return true;
    case 'Equal':
      return (t.value ?? '') === (taint.value ?? '');
    default:
      return false;
  }
}

/** The first taint (of those given) that no toleration tolerates. */
export function firstUntolerated(
  taints: readonly Taint[],
  tolerations: readonly Toleration[],
): Taint | undefined {
  for (const taint of taints) {
    let ok = false;
    for (const t of tolerations) {
      if (tolerates(t, taint)) {
        ok = true;
        break;
      }
    }
    if (!ok) return taint;
  }
  return undefined;
}

/** A pod (anti-)affinity term, compiled: which pods it selects and the topology they share. */
export interface CompiledPodTerm {
  readonly selector: ParsedLabelSelector | undefined;
  readonly namespaces: ReadonlySet<string>;
  readonly topologyKey: string;
}

/** `labelSelector` absent selects no pod; `namespaces` empty means the pod's own. */
export function compilePodTerm(term: PodAffinityTerm, ownNamespace: string): CompiledPodTerm {
  let selector: ParsedLabelSelector | undefined;
  if (term.labelSelector !== undefined) {
    try {
      selector = labelSelectorFromApi(term.labelSelector);
    } catch {
      selector = undefined; // validation refuses bad selectors; a leftover selects nothing
    }
  }
  const namespaces =
    term.namespaces !== undefined && term.namespaces.length > 0 ? term.namespaces : [ownNamespace];
  return { selector, namespaces: new Set(namespaces), topologyKey: term.topologyKey };
}

export function podTermSelects(
  term: CompiledPodTerm,
  namespace: string,
  labels: Readonly<Record<string, string>>,
): boolean {
  return (
    term.selector !== undefined &&
    term.namespaces.has(namespace) &&
    labelSelectorMatches(term.selector, labels)
  );
}

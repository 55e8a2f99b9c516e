/**
 * ControllerRevisions as Kubernetes keeps them for DaemonSets and StatefulSets, pure: one
 * immutable snapshot per distinct pod template, owned by the set (controller reference),
 * named `<set>-<hash>`, labelled `controller-revision-hash: <hash>`, holding
 * `data: { spec: { template } }` and a `revision` number that increases with each new
 * template. A template equal to an older revision reuses that revision and renumbers it to
 * the next number (a rollback, not a new revision). History beyond `revisionHistoryLimit` is
 * trimmed oldest first, never the revisions in use.
 */

import { labelSelectorMatches } from '../labels.js';
import type { ControllerRevision, DaemonSet, PodTemplateSpec, StatefulSet } from '../objects.js';
import { canonicalJson, controllerRef, newControllerRef, templateHash } from './pods.js';
import { selectorOf } from './replicaset.js';

/** The label holding a revision's hash (on revisions, and on the pods made from them). */
export const revisionHashLabel = 'controller-revision-hash';

/** Hash collisions tried (each with the next collision count) before giving up on a pass. */
export const revisionCollisionsMax = 16;

export type RevisionOwner = DaemonSet | StatefulSet;

/** What a revision stores: the owner's patch that recreates its template. */
export interface RevisionData {
  spec: { template: PodTemplateSpec };
}

export function revisionData(template: PodTemplateSpec): RevisionData {
  return { spec: { template } };
}

/** The template a revision recorded (undefined for a revision that is not ours in shape). */
export function revisionTemplate(rev: ControllerRevision): PodTemplateSpec | undefined {
  const data = rev.data as Partial<RevisionData> | undefined;
  const template = data?.spec?.template;
  return typeof template === 'object' && template !== null ? template : undefined;
}

/** The hash of a revision: its label, else the part of its name after the owner's. */
export function revisionHashOf(rev: ControllerRevision): string {
  return rev.metadata.labels?.[revisionHashLabel] ?? '';
}

export function revisionName(owner: RevisionOwner, hash: string): string {
  return `${owner.metadata.name ?? ''}-${hash}`;
}

/** Same snapshot: equal data. */
export function equalRevisionData(rev: ControllerRevision, data: RevisionData): boolean {
  return canonicalJson(rev.data) === canonicalJson(data);
}

/** Ascending revision number, then name (Kubernetes' SortControllerRevisions). */
export function compareRevisions(a: ControllerRevision, b: ControllerRevision): number {
  if (a.revision !== b.revision) return a.revision - b.revision;
  const an = a.metadata.name ?? '';
  const bn = b.metadata.name ?? '';
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** A new revision of `owner` for its current template. */
export function newRevision(
  owner: RevisionOwner,
  hash: string,
  revision: number,
  data: RevisionData,
): ControllerRevision {
  const labels = { ...(owner.spec.template.metadata?.labels ?? {}), [revisionHashLabel]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: revisionName(owner, hash),
      namespace: owner.metadata.namespace,
      labels,
      ownerReferences: [newControllerRef(owner)],
    },
    data,
    revision,
  };
}

export interface RevisionClaim {
  /** Revisions controlled by the owner after claiming, oldest first. */
  owned: ControllerRevision[];
  /** Orphans matching the selector: take them. */
  adopt: ControllerRevision[];
  /** Owned revisions no longer matching the selector: let them go. */
  release: ControllerRevision[];
}

/** Claims revisions as Kubernetes' ClaimControllerRevisions does (by selector, through owner references). */
export function claimRevisions(
  owner: RevisionOwner,
  candidates: readonly ControllerRevision[],
): RevisionClaim {
  const uid = owner.metadata.uid;
  const selector = selectorOf(owner.spec.selector);
  const deleting = owner.metadata.deletionTimestamp !== undefined;
  const owned: ControllerRevision[] = [];
  const adopt: ControllerRevision[] = [];
  const release: ControllerRevision[] = [];
  for (const rev of candidates) {
    const ref = controllerRef(rev);
    const matches = selector !== undefined && labelSelectorMatches(selector, rev.metadata.labels ?? {});
    if (ref !== undefined) {
      if (ref.uid !== uid) continue;
      if (matches) owned.push(rev);
      else release.push(rev);
      continue;
    }
    if (matches && !deleting && rev.metadata.deletionTimestamp === undefined) {
      adopt.push(rev);
      owned.push(rev);
    }
  }
  owned.sort(compareRevisions);
  return { owned, adopt, release };
}

/** How the revision of the current template comes to be. */
export type CurrentRevisionAction =
  /** It exists and is the newest: nothing to write. */
  | { kind: 'keep'; revision: ControllerRevision }
  /** It exists but is older than another: renumber it to `revision.revision` (a rollback). */
  | { kind: 'renumber'; revision: ControllerRevision }
  /** Create `revision`. */
  | { kind: 'create'; revision: ControllerRevision };

export interface CurrentRevisionPlan {
  action: CurrentRevisionAction;
  /** The owner's collision count after this plan (raised when a hash collided). */
  collisionCount: number;
  /** Extra revisions equal to the current template (a race left several): delete them. */
  duplicates: ControllerRevision[];
}

/**
 * The revision of `owner`'s current template among `owned` (claimed, any order).
 * `named(name)` returns any revision in the namespace with that name (owned or not), to detect
 * hash collisions: a name taken by a different snapshot raises the collision count and
 * hashes again, as Kubernetes does. Undefined when `revisionCollisionsMax` names collided.
 */
export function planCurrentRevision(
  owner: RevisionOwner,
  owned: readonly ControllerRevision[],
  named: (name: string) => ControllerRevision | undefined,
): CurrentRevisionPlan | undefined {
  const data = revisionData(owner.spec.template);
  const sorted = [...owned].sort(compareRevisions);
  const newest = sorted.at(-1);
  const next = (newest?.revision ?? 0) + 1;
  const collisionStart = owner.status?.collisionCount ?? 0;
  const equal = sorted.filter((r) => equalRevisionData(r, data));
  const match = equal.at(-1);
  if (match !== undefined) {
    const duplicates = equal.slice(0, -1);
    const action: CurrentRevisionAction =
      match === newest
        ? { kind: 'keep', revision: match }
        : { kind: 'renumber', revision: { ...match, revision: next } };
    return { action, collisionCount: collisionStart, duplicates };
  }
  for (let count = collisionStart; count < collisionStart + revisionCollisionsMax; count += 1) {
    const hash = templateHash(owner.spec.template, count);
    const existing = named(revisionName(owner, hash));
    if (existing === undefined) {
      return {
        action: { kind: 'create', revision: newRevision(owner, hash, next, data) },
        collisionCount: count,
        duplicates: [],
      };
    }
  }
  return undefined;
}

/**
 * Revisions to delete so that at most `limit` old revisions remain, oldest first, never one in
 * `live` (the current/update revisions and those pods still run).
 * `countLive`: whether live old revisions count toward the limit (DaemonSets: yes — the limit
 * bounds all old revisions; StatefulSets: no — it bounds the ones no pod uses).
 */
export function revisionsToTrim(
  owned: readonly ControllerRevision[],
  live: ReadonlySet<string>,
  limit: number,
  countLive: boolean,
): ControllerRevision[] {
  const sorted = [...owned].sort(compareRevisions);
  const old = sorted.filter((r) => !live.has(r.metadata.name ?? ''));
  const total = countLive ? sorted.length - 1 : old.length;
  let excess = total - Math.max(0, limit);
  const out: ControllerRevision[] = [];
  for (const rev of old) {
    if (excess <= 0) break;
    out.push(rev);
    excess -= 1;
  }
  return out;
}

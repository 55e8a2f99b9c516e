/**
 * ControllerRevision writes shared by the DaemonSet and StatefulSet controllers: claim the
 * owner's revisions, make sure the current template has its revision (create it, or renumber
 * an equal older one: a rollback), and trim the history. Decisions come from
 * `core/controllers/revisions.ts`; every write carries a precondition.
 */

import {
  claimRevisions,
  planCurrentRevision,
  type RevisionOwner,
  revisionsToTrim,
} from '../../core/controllers/revisions.js';
import type { ControllerRevision } from '../../core/objects.js';
import type { ControllerContext } from './controller.js';
import { adopt, deleteObject, release } from './workload.js';

export interface RevisionState {
  /** The revision of the owner's current template, as stored. */
  current: ControllerRevision;
  /** The owner's revisions after this pass (including `current`), oldest first. */
  owned: ControllerRevision[];
  /** The owner's `status.collisionCount` to report. */
  collisionCount: number;
}

/** Thrown when every hash tried for a new revision collided: retried with backoff. */
export class RevisionCollisionError extends Error {
  override readonly name = 'RevisionCollisionError';
}

/** Claims the owner's revisions and makes sure its current template has one. */
export async function syncRevisions(ctx: ControllerContext, owner: RevisionOwner): Promise<RevisionState> {
  const ns = owner.metadata.namespace ?? '';
  const candidates = ctx.cache.claimable<ControllerRevision>('ControllerRevision', ns, owner.metadata.uid);
  const claim = claimRevisions(owner, candidates);
  for (const rev of claim.release) await release(ctx, rev, owner.metadata.uid);
  for (const rev of claim.adopt) await adopt(ctx, rev, owner);
  const owned = claim.owned;
  const plan = planCurrentRevision(owner, owned, (name) =>
    ctx.cache.get<ControllerRevision>('ControllerRevision', ns, name),
  );
  if (plan === undefined) {
    throw new RevisionCollisionError(
      `${owner.kind.toLowerCase()}s "${owner.metadata.name}": every revision name tried is taken by another revision`,
    );
  }
  let current: ControllerRevision;
  switch (plan.action.kind) {
    case 'keep':
      current = plan.action.revision;
      break;
    case 'renumber':
      current = (await ctx.api.update(plan.action.revision)) as ControllerRevision;
      break;
    case 'create':
      current = (await ctx.api.create(plan.action.revision)) as ControllerRevision;
      break;
    default: {
      const unknown: never = plan.action;
      throw new Error(`revisions: unknown action ${JSON.stringify(unknown)}`);
    }
  }
  for (const dup of plan.duplicates) await deleteObject(ctx, dup);
  const dupNames = new Set(plan.duplicates.map((d) => d.metadata.name));
  const others = owned.filter(
    (r) => r.metadata.name !== current.metadata.name && !dupNames.has(r.metadata.name),
  );
  return {
    current,
    owned: [...others, current].sort((a, b) => a.revision - b.revision),
    collisionCount: plan.collisionCount,
  };
}

/** Deletes old revisions beyond `limit` that no pod uses (see `revisionsToTrim`). */
export async function trimRevisions(
  ctx: ControllerContext,
  owned: readonly ControllerRevision[],
  live: ReadonlySet<string>,
  limit: number,
  countLive: boolean,
): Promise<void> {
  for (const rev of revisionsToTrim(owned, live, limit, countLive)) await deleteObject(ctx, rev);
}

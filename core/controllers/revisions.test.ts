import { describe, expect, it } from 'vitest';
import type { ControllerRevision, DaemonSet, PodTemplateSpec } from '../objects.js';
import { templateHash } from './pods.js';
import {
  claimRevisions,
  newRevision,
  planCurrentRevision,
  revisionCollisionsMax,
  revisionData,
  revisionHashLabel,
  revisionsToTrim,
} from './revisions.js';

const template = (image: string): PodTemplateSpec => ({
  metadata: { labels: { app: 'a' } },
  spec: { containers: [{ name: 'c', image }] },
});

function ds(image: string, collisionCount?: number): DaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'a', namespace: 'default', uid: 'ds-uid', generation: 1 },
    spec: { selector: { matchLabels: { app: 'a' } }, template: template(image) },
    ...(collisionCount !== undefined
      ? {
          status: {
            collisionCount,
            currentNumberScheduled: 0,
            numberMisscheduled: 0,
            desiredNumberScheduled: 0,
            numberReady: 0,
          },
        }
      : {}),
  };
}

/** A stored revision of `owner` for `image` numbered `n`. */
function rev(image: string, n: number, owner = ds(image)): ControllerRevision {
  const r = newRevision(owner, templateHash(template(image)), n, revisionData(template(image)));
  return { ...r, metadata: { ...r.metadata, resourceVersion: String(n) } };
}

const none = () => undefined;

describe('ControllerRevisions', () => {
  it('a new template makes a revision named <set>-<hash>, labelled, owned, numbered after the newest', () => {
    const plan = planCurrentRevision(ds('v3'), [rev('v1', 1), rev('v2', 2)], none);
    expect(plan?.action.kind).toBe('create');
    const r = plan!.action.revision;
    const hash = templateHash(template('v3'));
    expect(r).toMatchObject({
      kind: 'ControllerRevision',
      revision: 3,
      data: { spec: { template: template('v3') } },
      metadata: {
        name: `a-${hash}`,
        namespace: 'default',
        labels: { app: 'a', [revisionHashLabel]: hash },
        ownerReferences: [
          { kind: 'DaemonSet', name: 'a', uid: 'ds-uid', controller: true, blockOwnerDeletion: true },
        ],
      },
    });
    expect(plan?.collisionCount).toBe(0);
  });

  it('the newest revision matching the template is kept as is', () => {
    const plan = planCurrentRevision(ds('v2'), [rev('v1', 1), rev('v2', 2)], none);
    expect(plan?.action).toMatchObject({ kind: 'keep', revision: { revision: 2 } });
  });

  it('an older revision matching the template is renumbered (a rollback, not a new revision)', () => {
    const plan = planCurrentRevision(ds('v1'), [rev('v1', 1), rev('v2', 2)], none);
    expect(plan?.action.kind).toBe('renumber');
    expect(plan?.action.revision).toMatchObject({
      revision: 3,
      metadata: { name: rev('v1', 1).metadata.name, resourceVersion: '1' },
    });
  });

  it('duplicates of the current template are reported, the newest kept', () => {
    const dup = { ...rev('v2', 1), metadata: { ...rev('v2', 1).metadata, name: 'a-dup' } };
    const plan = planCurrentRevision(ds('v2'), [dup, rev('v2', 3)], none);
    expect(plan?.action).toMatchObject({ kind: 'keep', revision: { revision: 3 } });
    expect(plan?.duplicates.map((d) => d.metadata.name)).toEqual(['a-dup']);
  });

  it('a name taken by a different revision raises the collision count and hashes again', () => {
    const owner = ds('v2');
    const taken = `a-${templateHash(template('v2'))}`;
    const plan = planCurrentRevision(owner, [], (name) => (name === taken ? rev('other', 1) : undefined));
    expect(plan?.collisionCount).toBe(1);
    expect(plan?.action.revision.metadata.name).toBe(`a-${templateHash(template('v2'), 1)}`);
    expect(plan?.action.revision.metadata.labels?.[revisionHashLabel]).toBe(templateHash(template('v2'), 1));
  });

  it('starts from the stored collision count, and gives up after revisionCollisionsMax names', () => {
    const plan = planCurrentRevision(ds('v2', 4), [], none);
    expect(plan?.action.revision.metadata.name).toBe(`a-${templateHash(template('v2'), 4)}`);
    expect(planCurrentRevision(ds('v2'), [], () => rev('x', 1))).toBeUndefined();
    expect(revisionCollisionsMax).toBeGreaterThan(1);
  });

  it('claims: owned ones kept, matching orphans adopted, owned ones not matching released, others ignored', () => {
    const owner = ds('v1');
    const owned = rev('v1', 1);
    const orphan = { ...rev('v2', 2), metadata: { ...rev('v2', 2).metadata, ownerReferences: undefined } };
    const foreign = {
      ...rev('v3', 3),
      metadata: {
        ...rev('v3', 3).metadata,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'b', uid: 'b', controller: true },
        ],
      },
    };
    const relabelled = { ...rev('v4', 4), metadata: { ...rev('v4', 4).metadata, labels: { app: 'zzz' } } };
    const claim = claimRevisions(owner, [relabelled, foreign, orphan, owned]);
    expect(claim.owned.map((r) => r.revision)).toEqual([1, 2]);
    expect(claim.adopt).toEqual([orphan]);
    expect(claim.release).toEqual([relabelled]);
  });

  it('trims old revisions oldest first beyond the limit, never a live one', () => {
    const revs = [1, 2, 3, 4, 5].map((n) => rev(`v${n}`, n));
    const name = (n: number) => revs[n - 1].metadata.name!;
    // DaemonSet rule: every old revision counts toward the limit; live ones are skipped.
    const ds1 = revisionsToTrim(revs, new Set([name(5), name(1)]), 2, true);
    expect(ds1.map((r) => r.revision)).toEqual([2, 3]);
    // StatefulSet rule: only revisions no pod uses count.
    const sts = revisionsToTrim(revs, new Set([name(5), name(1)]), 2, false);
    expect(sts.map((r) => r.revision)).toEqual([2]);
    expect(revisionsToTrim(revs, new Set([name(5)]), 10, true)).toEqual([]);
    expect(revisionsToTrim(revs, new Set([name(5)]), 0, true).map((r) => r.revision)).toEqual([1, 2, 3, 4]);
  });
});

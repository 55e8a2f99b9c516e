import { describe, expect, it } from 'vitest';
import { kindNames, resolveKindName } from './kind-names.js';
import { kindInfo } from './objects.js';

describe('resolveKindName', () => {
  it.each([
    ['Deployment', 'Deployment'],
    ['deployment', 'Deployment'],
    ['deployments', 'Deployment'],
    ['deploy', 'Deployment'],
    ['DEPLOY', 'Deployment'],
    ['deployments.apps', 'Deployment'],
    ['deployments.v1.apps', 'Deployment'],
    ['po', 'Pod'],
    ['pods.v1', 'Pod'],
    ['no', 'Node'],
    ['ep', 'Endpoints'],
    ['endpoints', 'Endpoints'],
    ['ev', 'Event'],
    ['cm', 'ConfigMap'],
    ['sts', 'StatefulSet'],
    ['ds', 'DaemonSet'],
    ['jobs.batch', 'Job'],
    ['job.v1.batch', 'Job'],
    ['leases.coordination.k8s.io', 'Lease'],
    ['lease.v1.coordination.k8s.io', 'Lease'],
  ])('%s → %s', (text, kind) => {
    expect(resolveKindName(text)).toBe(kind);
  });

  it.each([
    '',
    'widgets',
    'deployments.batch',
    'pods.apps',
    'jobs.v2.batch',
    'deploy.',
    '.apps',
    'constructor',
  ])('%j → undefined', (text) => {
    expect(resolveKindName(text)).toBeUndefined();
  });

  it('names every known kind and no other, without ambiguous names', () => {
    expect(Object.keys(kindNames).sort()).toEqual(Object.keys(kindInfo).sort());
    // Endpoints is its own plural; a name may repeat within one kind but never across kinds.
    const owner = new Map<string, string>();
    for (const [kind, n] of Object.entries(kindNames)) {
      for (const name of [kind.toLowerCase(), n.plural, ...n.short]) {
        expect(owner.get(name) ?? kind).toBe(kind);
        owner.set(name, kind);
      }
    }
  });
});

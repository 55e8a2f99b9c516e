import { describe, expect, it } from 'vitest';
import { namespaceDeletionForbidden, namespaceFinalizers, systemNamespaces } from './namespaces.js';

describe('namespaceDeletionForbidden', () => {
  it('refuses the system namespaces with one line naming the field, and nothing else', () => {
    expect(systemNamespaces).toEqual(['default', 'kube-system', 'kube-public', 'kube-node-lease']);
    for (const name of systemNamespaces) {
      expect(namespaceDeletionForbidden({ kind: 'Namespace', name })).toBe(
        `namespaces "${name}": metadata.name: this namespace may not be deleted (a system namespace)`,
      );
    }
    expect(namespaceDeletionForbidden({ kind: 'Namespace', name: 'prod' })).toBeUndefined();
    expect(namespaceDeletionForbidden({ kind: 'ConfigMap', name: 'default' })).toBeUndefined();
  });

  it('counts metadata and spec finalizers as the namespace own', () => {
    expect(
      namespaceFinalizers({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'x', finalizers: ['a'] },
        spec: { finalizers: ['kubernetes'] },
      }),
    ).toEqual(['a', 'kubernetes']);
  });
});

import { describe, expect, it } from 'vitest';
import type { Namespace } from '../objects.js';
import { namespaceRejection, systemNamespaces } from './namespaces.js';

const ns = (name: string, terminating = false): Namespace => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, ...(terminating ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}) },
  status: { phase: terminating ? 'Terminating' : 'Active' },
});

describe('namespaceRejection', () => {
  it('accepts an active namespace and the system namespaces even without their objects', () => {
    expect(namespaceRejection('Pod', 'p', 'prod', ns('prod'))).toBeUndefined();
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      expect(systemNamespaces.has(name)).toBe(true);
      expect(namespaceRejection('ConfigMap', 'c', name, undefined)).toBeUndefined();
    }
  });

  it('answers NotFound for a missing namespace, as Kubernetes words it', () => {
    expect(namespaceRejection('Pod', 'p', 'x', undefined)).toEqual({
      code: 'NotFound',
      message: 'namespaces "x" not found',
    });
  });

  it('answers Forbidden for a terminating namespace, naming the object', () => {
    expect(namespaceRejection('ConfigMap', 'cfg', 'x', ns('x', true))).toEqual({
      code: 'Forbidden',
      message:
        'configmaps "cfg" is forbidden: unable to create new content in namespace x because it is being terminated',
    });
  });
});

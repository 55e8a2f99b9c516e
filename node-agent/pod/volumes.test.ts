import { describe, expect, it } from 'vitest';
import type { ConfigMap, Container, Pod, Secret } from '../../core/objects.js';
import { ContainerConfigError } from './errors.js';
import { type PodVolume, planVolumes, type VolumePlanInput } from './volumes.js';

const settings: ConfigMap = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'settings' },
  data: { 'app.conf': 'mode=fast\n', other: 'x' },
  binaryData: { 'logo.bin': Buffer.from([1, 2, 3]).toString('base64') },
};
const creds: Secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'creds' },
  data: { password: Buffer.from('s3cr3t').toString('base64') },
};

function plan(volumes: PodVolume[], containers: Container[], over: Partial<VolumePlanInput> = {}) {
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', uid: 'u' },
    spec: { volumes, containers },
  };
  return planVolumes({
    pod,
    diskDir: '/var/lib/cox/u',
    memoryDir: '/dev/shm/cox/u',
    configMaps: { settings },
    secrets: { creds },
    ...over,
  });
}
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
function failure(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ContainerConfigError) return e.message;
    throw e;
  }
  return 'no ContainerConfigError';
}

describe('emptyDir', () => {
  it('is a pod directory shared by the containers, with subPath and readOnly', () => {
    const p = plan(
      [{ name: 'scratch', emptyDir: {} }],
      [
        { name: 'a', image: 'i', volumeMounts: [{ name: 'scratch', mountPath: '/data' }] },
        {
          name: 'b',
          image: 'i',
          volumeMounts: [{ name: 'scratch', mountPath: '/in', subPath: 'sub', readOnly: true }],
        },
      ],
    );
    expect(p.directories).toEqual(['/var/lib/cox/u/scratch', '/var/lib/cox/u/scratch/sub']);
    expect(p.mounts).toEqual({
      a: [{ containerPath: '/data', hostPath: '/var/lib/cox/u/scratch', readOnly: false }],
      b: [{ containerPath: '/in', hostPath: '/var/lib/cox/u/scratch/sub', readOnly: true }],
    });
  });

  it('with medium Memory is a tmpfs of sizeLimit bytes for its one container', () => {
    const p = plan(
      [{ name: 'fast', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }],
      [{ name: 'a', image: 'i', volumeMounts: [{ name: 'fast', mountPath: '/fast' }] }],
    );
    expect(p.mounts.a).toEqual([{ containerPath: '/fast', tmpfsBytes: 16 * 1024 * 1024, readOnly: false }]);
    expect(p.directories).toEqual([]);
    const unsized = plan(
      [{ name: 'fast', emptyDir: { medium: 'Memory' } }],
      [{ name: 'a', image: 'i', volumeMounts: [{ name: 'fast', mountPath: '/fast' }] }],
      { tmpfsBytesDefault: 1000 },
    );
    expect(unsized.mounts.a[0].tmpfsBytes).toBe(1000);
  });

  it('with medium Memory shared by two containers lives in the memory directory', () => {
    const mounts = [{ name: 'fast', mountPath: '/fast' }];
    const p = plan(
      [{ name: 'fast', emptyDir: { medium: 'Memory' } }],
      [
        { name: 'a', image: 'i', volumeMounts: mounts },
        { name: 'b', image: 'i', volumeMounts: mounts },
      ],
    );
    expect(p.directories).toEqual(['/dev/shm/cox/u/fast']);
    expect(p.mounts.b).toEqual([
      { containerPath: '/fast', hostPath: '/dev/shm/cox/u/fast', readOnly: false },
    ]);
  });
});

describe('hostPath', () => {
  it('binds the host path and asks for its type to be checked', () => {
    const p = plan(
      [{ name: 'logs', hostPath: { path: '/var/log', type: 'Directory' } }],
      [{ name: 'a', image: 'i', volumeMounts: [{ name: 'logs', mountPath: '/host-logs', readOnly: true }] }],
    );
    expect(p.mounts.a).toEqual([{ containerPath: '/host-logs', hostPath: '/var/log', readOnly: true }]);
    expect(p.hostPathChecks).toEqual([{ path: '/var/log', type: 'Directory' }]);
  });
});

describe('configMap and secret', () => {
  it('writes every key of a configMap (data and binaryData) read-only on disk', () => {
    const p = plan(
      [{ name: 'conf', configMap: { name: 'settings' } }],
      [{ name: 'a', image: 'i', volumeMounts: [{ name: 'conf', mountPath: '/etc/app' }] }],
    );
    expect(p.files.map((f) => [f.path, f.mode])).toEqual([
      ['/var/lib/cox/u/conf/logo.bin', 0o644],
      ['/var/lib/cox/u/conf/app.conf', 0o644],
      ['/var/lib/cox/u/conf/other', 0o644],
    ]);
    expect([...p.files[0].content]).toEqual([1, 2, 3]);
    expect(text(p.files[1].content)).toBe('mode=fast\n');
    expect(p.mounts.a).toEqual([
      { containerPath: '/etc/app', hostPath: '/var/lib/cox/u/conf', readOnly: true },
    ]);
  });

  it('writes only the items, at their paths and modes', () => {
    const p = plan(
      [
        {
          name: 'conf',
          configMap: {
            name: 'settings',
            defaultMode: 0o600,
            items: [
              { key: 'app.conf', path: 'nested/app.conf', mode: 0o400 },
              { key: 'other', path: 'o' },
            ],
          },
        },
      ],
      [
        {
          name: 'a',
          image: 'i',
          volumeMounts: [{ name: 'conf', mountPath: '/etc/app.conf', subPath: 'nested/app.conf' }],
        },
      ],
    );
    expect(p.directories).toEqual(['/var/lib/cox/u/conf', '/var/lib/cox/u/conf/nested']);
    expect(p.files.map((f) => [f.path, f.mode])).toEqual([
      ['/var/lib/cox/u/conf/nested/app.conf', 0o400],
      ['/var/lib/cox/u/conf/o', 0o600],
    ]);
    expect(p.mounts.a).toEqual([
      { containerPath: '/etc/app.conf', hostPath: '/var/lib/cox/u/conf/nested/app.conf', readOnly: true },
    ]);
  });

  it('puts secrets, decoded, in the memory directory', () => {
    const p = plan(
      [{ name: 'creds', secret: { secretName: 'creds' } }],
      [{ name: 'a', image: 'i', volumeMounts: [{ name: 'creds', mountPath: '/run/secrets' }] }],
    );
    expect(p.files).toHaveLength(1);
    expect(p.files[0].path).toBe('/dev/shm/cox/u/creds/password');
    expect(text(p.files[0].content)).toBe('s3cr3t');
    expect(p.mounts.a[0]).toEqual({
      containerPath: '/run/secrets',
      hostPath: '/dev/shm/cox/u/creds',
      readOnly: true,
    });
  });

  it('tolerates missing optional sources and keys', () => {
    const p = plan(
      [
        { name: 'm', configMap: { name: 'absent', optional: true } },
        { name: 's', secret: { secretName: 'creds', optional: true, items: [{ key: 'nope', path: 'x' }] } },
      ],
      [],
    );
    expect(p.files).toEqual([]);
    expect(p.directories).toEqual(['/var/lib/cox/u/m', '/dev/shm/cox/u/s']);
  });

  it('fails with the field for missing sources, keys, volumes and unsafe paths', () => {
    const mount = (name: string, subPath?: string): Container[] => [
      { name: 'a', image: 'i', volumeMounts: [{ name, mountPath: '/x', subPath }] },
    ];
    expect(failure(() => plan([{ name: 'v', configMap: { name: 'absent' } }], []))).toBe(
      'spec.volumes[0].configMap: configmap "absent" not found',
    );
    expect(failure(() => plan([{ name: 'v', secret: { secretName: 'absent' } }], []))).toBe(
      'spec.volumes[0].secret: secret "absent" not found',
    );
    expect(
      failure(() =>
        plan([{ name: 'v', configMap: { name: 'settings', items: [{ key: 'k', path: 'k' }] } }], []),
      ),
    ).toBe('spec.volumes[0].configMap.items[0].key: key "k" not found in configmap "settings"');
    expect(
      failure(() =>
        plan([{ name: 'v', configMap: { name: 'settings', items: [{ key: 'other', path: '../x' }] } }], []),
      ),
    ).toBe(`spec.volumes[0].configMap.items[0].path: "../x" must be a relative path without '..'`);
    expect(failure(() => plan([], mount('nope')))).toBe(
      'spec.containers[0].volumeMounts[0].name: volume "nope" not found',
    );
    expect(failure(() => plan([{ name: 'v', emptyDir: {} }], mount('v', '/abs')))).toBe(
      `spec.containers[0].volumeMounts[0].subPath: "/abs" must be a relative path without '..'`,
    );
    expect(
      failure(() => plan([{ name: 'v', emptyDir: { medium: 'Memory', sizeLimit: 'lots' } }], mount('v'))),
    ).toContain('spec.volumes[0].emptyDir.sizeLimit: quantity "lots"');
  });
});

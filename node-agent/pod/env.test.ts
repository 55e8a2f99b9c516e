import { describe, expect, it } from 'vitest';
import type { ConfigMap, Container, Pod, Secret } from '../../core/objects.js';
import {
  containerEnv,
  containerPath,
  type EnvInput,
  expandCommand,
  expandVars,
  needsPodIP,
  type PodEnvVar,
} from './env.js';
import { ContainerConfigError } from './errors.js';

const pod: Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'prod', uid: 'u-1', labels: { app: 'web' } },
  spec: {
    nodeName: 'n1',
    initContainers: [{ name: 'setup', image: 'i' }],
    containers: [{ name: 'app', image: 'i' }],
  },
};
const settings: ConfigMap = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'settings' },
  data: { mode: 'fast' },
  binaryData: { blob: Buffer.from('bin').toString('base64') },
};
const creds: Secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'creds' },
  data: { password: Buffer.from('s3cr3t').toString('base64') },
};
const input: EnvInput = {
  pod,
  podIP: '10.0.0.5',
  hostIP: '127.0.1.1',
  configMaps: { settings },
  secrets: { creds },
};
const envOf = (env: PodEnvVar[]): Record<string, string> => {
  const container: Container = { name: 'app', image: 'i', env };
  return Object.fromEntries(
    containerEnv(container, 'spec.containers[0]', input).map((e) => [e.name, e.value]),
  );
};
function configError(env: PodEnvVar[]): string {
  try {
    envOf(env);
  } catch (e) {
    if (e instanceof ContainerConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a ContainerConfigError');
}

describe('expandVars', () => {
  const values = new Map([
    ['A', 'x'],
    ['B', 'y'],
  ]);
  it.each([
    ['$(A)', 'x'],
    ['pre-$(A)-$(B)-post', 'pre-x-y-post'],
    ['$(UNDEFINED)', '$(UNDEFINED)'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$x'],
    ['$$', '$'],
    ['a$', 'a$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['$()', '$()'],
    ['', ''],
  ])('%j → %j', (text, expected) => {
    expect(expandVars(text, values)).toBe(expected);
  });
});

describe('containerEnv', () => {
  it('expands values against earlier entries only', () => {
    const env = envOf([
      { name: 'LATER_REF', value: '$(HOST)' },
      { name: 'HOST', value: 'db' },
      { name: 'URL', value: 'http://$(HOST):$(PORT)/' },
      { name: 'ESCAPED', value: '$$(HOST)' },
    ]);
    expect(env).toEqual({ LATER_REF: '$(HOST)', HOST: 'db', URL: 'http://db:$(PORT)/', ESCAPED: '$(HOST)' });
  });

  it('reads ConfigMap keys (data and binaryData) and decoded Secret keys, without expanding them', () => {
    const env = envOf([
      { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
      { name: 'BLOB', valueFrom: { configMapKeyRef: { name: 'settings', key: 'blob' } } },
      { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
      { name: 'BOTH', value: '$(MODE)/$(PASSWORD)' },
    ]);
    expect(env).toEqual({ MODE: 'fast', BLOB: 'bin', PASSWORD: 's3cr3t', BOTH: 'fast/s3cr3t' });
  });

  it('skips optional references that are missing', () => {
    const env = envOf([
      { name: 'A', valueFrom: { configMapKeyRef: { name: 'settings', key: 'nope', optional: true } } },
      { name: 'B', valueFrom: { configMapKeyRef: { name: 'absent', key: 'k', optional: true } } },
      { name: 'C', valueFrom: { secretKeyRef: { name: 'absent', key: 'k', optional: true } } },
      { name: 'D', value: 'ok' },
    ]);
    expect(env).toEqual({ D: 'ok' });
  });

  it('fails with one line naming the field for missing required references', () => {
    expect(
      configError([
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
        { name: 'C', valueFrom: { configMapKeyRef: { name: 'x', key: 'k' } } },
      ]),
    ).toBe('spec.containers[0].env[2].valueFrom.configMapKeyRef: configmap "x" not found');
    expect(configError([{ name: 'A', valueFrom: { configMapKeyRef: { name: 'settings', key: 'k' } } }])).toBe(
      'spec.containers[0].env[0].valueFrom.configMapKeyRef: key "k" not found in configmap "settings"',
    );
    expect(configError([{ name: 'A', valueFrom: { secretKeyRef: { name: 'creds', key: 'k' } } }])).toBe(
      'spec.containers[0].env[0].valueFrom.secretKeyRef: key "k" not found in secret "creds"',
    );
    expect(configError([{ name: 'A', valueFrom: { fieldRef: { fieldPath: 'spec.bogus' } } }])).toBe(
      'spec.containers[0].env[0].valueFrom.fieldRef: unsupported fieldPath "spec.bogus"',
    );
  });

  it('resolves pod fields (the downward API)', () => {
    const field = (fieldPath: string): PodEnvVar => ({
      name: fieldPath,
      valueFrom: { fieldRef: { fieldPath } },
    });
    const paths = [
      'metadata.name',
      'metadata.namespace',
      'metadata.uid',
      'spec.nodeName',
      'status.podIP',
      'status.hostIP',
      "metadata.labels['app']",
    ];
    expect(Object.values(envOf(paths.map(field)))).toEqual([
      'web',
      'prod',
      'u-1',
      'n1',
      '10.0.0.5',
      '127.0.1.1',
      'web',
    ]);
  });

  it('lets a later entry replace an earlier one of the same name', () => {
    expect(
      envOf([
        { name: 'A', value: '1' },
        { name: 'A', value: '$(A)2' },
      ]),
    ).toEqual({ A: '12' });
  });
});

describe('expandCommand and containerPath', () => {
  it('expands command words against the environment', () => {
    const env = [{ name: 'PORT', value: '80' }];
    expect(expandCommand(['httpd', '-p', '$(PORT)', '$(NOPE)'], env)).toEqual([
      'httpd',
      '-p',
      '80',
      '$(NOPE)',
    ]);
    expect(expandCommand(undefined, env)).toBeUndefined();
  });

  it('names init and app containers', () => {
    expect(containerPath(pod, 'setup')).toBe('spec.initContainers[0]');
    expect(containerPath(pod, 'app')).toBe('spec.containers[0]');
  });
});

describe('needsPodIP', () => {
  it('is true only for a container whose env refers to status.podIP', () => {
    const c = (env: Container['env']): Container => ({ name: 'a', image: 'i', env });
    expect(
      needsPodIP(c([{ name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } } as never])),
    ).toBe(true);
    expect(
      needsPodIP(c([{ name: 'H', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } } as never])),
    ).toBe(false);
    expect(needsPodIP(c([{ name: 'X', value: 'status.podIP' }]))).toBe(false);
    expect(needsPodIP(c(undefined))).toBe(false);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyDefaults } from './defaults.js';
import { CoreError } from './errors.js';
import type { ApiObject } from './objects.js';
import {
  assertValidObject,
  type FieldError,
  formatFieldError,
  InvalidObjectError,
  validateObject,
} from './validation.js';

// biome-ignore lint/suspicious/noExplicitAny: tests poke arbitrary (possibly wrong) shapes into objects
type Loose = any;

const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } };

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-0', namespace: 'default', labels: { app: 'web' } },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'nginx:1.27',
        command: ['nginx'],
        args: ['-g', 'daemon off;'],
        workingDir: '/srv',
        ports: [{ name: 'http', containerPort: 80 }],
        env: [
          { name: 'MODE', value: 'prod' },
          { name: 'DB_HOST', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'db.host' } } },
          { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
        ],
        resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '128Mi' } },
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
        livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
        readinessProbe: { tcpSocket: { port: 80 } },
        startupProbe: { exec: { command: ['true'] }, failureThreshold: 30 },
        lifecycle: { preStop: { exec: { command: ['nginx', '-s', 'quit'] } } },
      },
    ],
    initContainers: [{ name: 'init', image: 'busybox', command: ['sh', '-c', 'true'] }],
    volumes: [
      { name: 'data', emptyDir: {} },
      { name: 'host', hostPath: { path: '/var/log' } },
      { name: 'cfg', configMap: { name: 'cfg' } },
      { name: 'creds', secret: { secretName: 'creds' } },
    ],
    restartPolicy: 'OnFailure',
    nodeSelector: { disk: 'ssd' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'web', effect: 'NoSchedule' }],
    terminationGracePeriodSeconds: 10,
  },
};

const configMap = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'cfg', namespace: 'default' },
  data: { 'db.host': 'db', 'app.conf': 'x=1' },
  binaryData: { blob: 'AAEC' },
};

const secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'creds', namespace: 'default' },
  data: { password: 'aHVudGVyMg==' },
  stringData: { user: 'admin' },
};

const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    type: 'NodePort',
    selector: { app: 'web' },
    ports: [
      { name: 'http', port: 80, targetPort: 'http', nodePort: 30080 },
      { name: 'metrics', port: 9090, targetPort: 9090, protocol: 'TCP' },
    ],
    sessionAffinity: 'ClientIP',
  },
};

const template = {
  metadata: { labels: { app: 'web', tier: 'front' } },
  spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] },
};

const replicaSet = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: 'web-abc12', namespace: 'default' },
  spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template },
};

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    replicas: 3,
    selector: {
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'edge'] }],
    },
    template,
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: '10%' } },
    minReadySeconds: 5,
    revisionHistoryLimit: 3,
    progressDeadlineSeconds: 120,
    paused: false,
  },
};

const validObjects: [string, unknown][] = [
  ['Namespace', namespace],
  ['Pod', pod],
  ['ConfigMap', configMap],
  ['Secret', secret],
  ['Service', service],
  ['headless Service without ports', { ...service, spec: { clusterIP: 'None', selector: { app: 'web' } } }],
  ['ReplicaSet', replicaSet],
  ['Deployment', deployment],
  [
    'Deployment with Recreate',
    { ...deployment, spec: { ...deployment.spec, strategy: { type: 'Recreate' } } },
  ],
  ['generateName instead of name', { ...pod, metadata: { generateName: 'web-', namespace: 'default' } }],
];

/** A deep copy of `base` changed by `change`. */
function edit(base: unknown, change: (o: Loose) => void): unknown {
  const copy = structuredClone(base) as Loose;
  change(copy);
  return copy;
}

const messages = (obj: unknown): string[] => validateObject(obj).map(formatFieldError);

describe('validateObject accepts', () => {
  it.each(validObjects)('%s', (_, obj) => {
    expect(messages(obj)).toEqual([]);
  });

  it.each(validObjects)('%s after applyDefaults', (_, obj) => {
    expect(messages(applyDefaults(obj as ApiObject))).toEqual([]);
  });
});

describe('validateObject rejects', () => {
  const c0 = 'spec.containers[0]';
  const t0 = 'spec.template.spec.containers[0]';
  it.each<[string, unknown, string[]]>([
    // ------------------------------------------------ envelope and metadata
    ['a non-object', 42, ['must be an object']],
    ['a missing kind', { apiVersion: 'v1', metadata: { name: 'a' } }, ['kind: required']],
    [
      'an unknown kind',
      { apiVersion: 'v1', kind: 'Gizmo', metadata: { name: 'a' } },
      [
        'kind: unsupported value "Gizmo": supported values: "Namespace", "Pod", "ConfigMap", "Secret", "Service", "ReplicaSet", "Deployment"',
      ],
    ],
    [
      'a core kind in apps/v1',
      edit(pod, (o) => {
        o.apiVersion = 'apps/v1';
      }),
      ['apiVersion: unsupported value "apps/v1": supported values: "v1"'],
    ],
    [
      'a Deployment in v1',
      edit(deployment, (o) => {
        o.apiVersion = 'v1';
      }),
      ['apiVersion: unsupported value "v1": supported values: "apps/v1"'],
    ],
    ['missing metadata', { apiVersion: 'v1', kind: 'Namespace' }, ['metadata: required']],
    [
      'a missing name',
      edit(configMap, (o) => {
        delete o.metadata.name;
      }),
      ['metadata.name: required'],
    ],
    [
      'an uppercase name',
      edit(configMap, (o) => {
        o.metadata.name = 'Cfg';
      }),
      [
        "metadata.name: must be a DNS-1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric",
      ],
    ],
    [
      'a 254-character name',
      edit(configMap, (o) => {
        o.metadata.name = 'a'.repeat(254);
      }),
      ['metadata.name: must be no more than 253 characters'],
    ],
    [
      'a dotted Service name (DNS label)',
      edit(service, (o) => {
        o.metadata.name = 'web.v1';
      }),
      [
        "metadata.name: must be a DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric",
      ],
    ],
    [
      'a 64-character Namespace name',
      { ...namespace, metadata: { name: 'n'.repeat(64) } },
      ['metadata.name: must be no more than 63 characters'],
    ],
    [
      'a bad generateName',
      edit(pod, (o) => {
        o.metadata = { generateName: 'Web-', namespace: 'default' };
      }),
      [
        "metadata.generateName: must be a DNS-1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric",
      ],
    ],
    [
      'a namespaced kind without namespace',
      edit(pod, (o) => {
        delete o.metadata.namespace;
      }),
      ['metadata.namespace: required'],
    ],
    [
      'a Namespace with a namespace',
      { ...namespace, metadata: { name: 'a', namespace: 'b' } },
      ['metadata.namespace: not allowed on this type'],
    ],
    [
      'a bad label key and value',
      edit(configMap, (o) => {
        o.metadata.labels = { 'a/b/c': 'ok', good: 'bad value' };
      }),
      [
        `metadata.labels: key "a/b/c": must contain at most one '/'`,
        `metadata.labels: value "bad value": must consist of alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric`,
      ],
    ],
    [
      'annotations over 256 KiB',
      edit(configMap, (o) => {
        o.metadata.annotations = { a: 'x'.repeat(256 * 1024) };
      }),
      ['metadata.annotations: must have at most 262144 bytes'],
    ],
    [
      'duplicate finalizers and a negative generation',
      edit(configMap, (o) => {
        o.metadata.finalizers = ['example.com/f', 'example.com/f'];
        o.metadata.generation = -1;
      }),
      ['metadata.generation: must be >= 0', 'metadata.finalizers[1]: duplicate value "example.com/f"'],
    ],
    [
      'an owner reference without uid',
      edit(pod, (o) => {
        o.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc12' }];
      }),
      ['metadata.ownerReferences[0].uid: required'],
    ],
    // ------------------------------------------------ Pod
    [
      'a Pod without containers',
      edit(pod, (o) => {
        o.spec.containers = [];
      }),
      ['spec.containers: required'],
    ],
    [
      'a container without image',
      edit(pod, (o) => {
        delete o.spec.containers[0].image;
      }),
      [`${c0}.image: required`],
    ],
    [
      'duplicate container names across init containers',
      edit(pod, (o) => {
        o.spec.initContainers[0].name = 'app';
      }),
      ['spec.initContainers[0].name: duplicate value "app"'],
    ],
    [
      'a container name that is not a DNS label',
      edit(pod, (o) => {
        o.spec.containers[0].name = 'App_1';
      }),
      [
        `${c0}.name: must be a DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric`,
      ],
    ],
    [
      'bad container ports',
      edit(pod, (o) => {
        o.spec.containers[0].ports = [
          { name: 'http', containerPort: 0 },
          { name: 'http', containerPort: 65536, protocol: 'HTTP' },
          { containerPort: 8080.5 },
        ];
      }),
      [
        `${c0}.ports[0].containerPort: must be >= 1`,
        `${c0}.ports[1].containerPort: must be <= 65535`,
        `${c0}.ports[1].protocol: unsupported value "HTTP": supported values: "TCP", "UDP", "SCTP"`,
        `${c0}.ports[1].name: duplicate value "http"`,
        `${c0}.ports[2].containerPort: must be an integer`,
      ],
    ],
    [
      'a port name that is too long',
      edit(pod, (o) => {
        o.spec.containers[0].ports[0].name = 'a-very-long-port-name';
      }),
      [`${c0}.ports[0].name: must be no more than 15 characters`],
    ],
    [
      'bad env entries',
      edit(pod, (o) => {
        o.spec.containers[0].env = [
          { name: '1BAD', value: 'x' },
          { name: 'BOTH', value: 'x', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
          { name: 'NONE', valueFrom: {} },
          {
            name: 'TWO',
            valueFrom: { configMapKeyRef: { name: 'c', key: 'k' }, secretKeyRef: { name: 's', key: 'k' } },
          },
          { name: 'NOKEY', valueFrom: { secretKeyRef: { name: 's' } } },
        ];
      }),
      [
        `${c0}.env[0].name: must consist of alphabetic characters, digits, '_', '-' or '.', and must not start with a digit`,
        `${c0}.env[1].valueFrom: may not be specified when \`value\` is not empty`,
        `${c0}.env[2].valueFrom: required`,
        `${c0}.env[3].valueFrom: may not have more than one field specified`,
        `${c0}.env[4].valueFrom.secretKeyRef.key: required`,
      ],
    ],
    [
      'a bad quantity and requests above limits',
      edit(pod, (o) => {
        o.spec.containers[0].resources = {
          requests: { cpu: '2', memory: '1Gx' },
          limits: { cpu: '500m', memory: '1Gi' },
        };
      }),
      [
        `${c0}.resources.requests[memory]: quantity "1Gx": unknown suffix "Gx"`,
        `${c0}.resources.requests[cpu]: must be less than or equal to cpu limit`,
      ],
    ],
    [
      'a probe without handler and one with two',
      edit(pod, (o) => {
        o.spec.containers[0].livenessProbe = { periodSeconds: 0 };
        o.spec.containers[0].readinessProbe = { exec: { command: ['true'] }, tcpSocket: { port: 80 } };
      }),
      [
        `${c0}.livenessProbe: must specify a handler type`,
        `${c0}.livenessProbe.periodSeconds: must be >= 1`,
        `${c0}.readinessProbe.tcpSocket: may not specify more than 1 handler type`,
      ],
    ],
    [
      'bad probe ports and a liveness successThreshold above 1',
      edit(pod, (o) => {
        o.spec.containers[0].livenessProbe = { httpGet: { port: 70000 }, successThreshold: 2 };
        o.spec.containers[0].readinessProbe = { tcpSocket: {} };
      }),
      [
        `${c0}.livenessProbe.httpGet.port: must be <= 65535`,
        `${c0}.livenessProbe.successThreshold: must be 1`,
        `${c0}.readinessProbe.tcpSocket.port: required`,
      ],
    ],
    [
      'a lifecycle hook without handler',
      edit(pod, (o) => {
        o.spec.containers[0].lifecycle = { postStart: {} };
      }),
      [`${c0}.lifecycle.postStart: must specify a handler type`],
    ],
    [
      'an unknown restartPolicy',
      edit(pod, (o) => {
        o.spec.restartPolicy = 'Sometimes';
      }),
      ['spec.restartPolicy: unsupported value "Sometimes": supported values: "Always", "OnFailure", "Never"'],
    ],
    [
      'duplicate volumes, a volume without source and a mount of an unknown volume',
      edit(pod, (o) => {
        o.spec.volumes = [
          { name: 'data', emptyDir: {} },
          { name: 'data', hostPath: { path: '/x' } },
          { name: 'empty' },
          { name: 'two', emptyDir: {}, hostPath: { path: '/y' } },
        ];
        o.spec.containers[0].volumeMounts.push({ name: 'logs', mountPath: '/logs' });
      }),
      [
        'spec.volumes[1].name: duplicate value "data"',
        'spec.volumes[2].volumeSource: required',
        'spec.volumes[3].hostPath: may not specify more than 1 volume type',
        `${c0}.volumeMounts[1].name: volume "logs" not found`,
      ],
    ],
    [
      'a toleration with Exists and a value',
      edit(pod, (o) => {
        o.spec.tolerations = [{ key: 'k', operator: 'Exists', value: 'v' }];
      }),
      ["spec.tolerations[0].value: must be empty when `operator` is 'Exists'"],
    ],
    [
      'a negative terminationGracePeriodSeconds',
      edit(pod, (o) => {
        o.spec.terminationGracePeriodSeconds = -1;
      }),
      ['spec.terminationGracePeriodSeconds: must be >= 0'],
    ],
    // ------------------------------------------------ ConfigMap, Secret
    [
      'bad ConfigMap keys and a key in data and binaryData',
      edit(configMap, (o) => {
        o.data = { 'a/b': 'x', '..': 'y', blob: 'z', n: 1 };
      }),
      [
        'data[n]: must be a string',
        "data[a/b]: must consist of alphanumeric characters, '-', '_' or '.'",
        'data[..]: must not be ".."',
        'binaryData[blob]: duplicate value "blob"',
      ],
    ],
    [
      'a ConfigMap key longer than 253',
      edit(configMap, (o) => {
        o.data = { ['k'.repeat(254)]: 'x' };
      }),
      [`data[${'k'.repeat(254)}]: must be no more than 253 characters`],
    ],
    [
      'Secret data that is not base64',
      edit(secret, (o) => {
        o.data = { password: 'hunter2!' };
      }),
      ['data[password]: must be base64-encoded'],
    ],
    // ------------------------------------------------ Service
    [
      'Service ports: duplicate, out of range, unnamed among several',
      edit(service, (o) => {
        o.spec.ports = [{ name: 'http', port: 80 }, { name: 'http', port: 80 }, { port: 0 }];
      }),
      [
        'spec.ports[1].name: duplicate value "http"',
        'spec.ports[1].port: duplicate value "80"',
        'spec.ports[2].name: required',
        'spec.ports[2].port: must be >= 1',
      ],
    ],
    [
      'a nodePort on a ClusterIP Service',
      edit(service, (o) => {
        o.spec.type = 'ClusterIP';
      }),
      ["spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'"],
    ],
    [
      'a headless NodePort Service',
      edit(service, (o) => {
        o.spec.clusterIP = 'None';
      }),
      ["spec.clusterIP: may not be set to 'None' for NodePort services"],
    ],
    [
      'an unsupported Service type and a Service without ports',
      edit(service, (o) => {
        o.spec.type = 'LoadBalancer';
        delete o.spec.ports;
      }),
      [
        'spec.type: unsupported value "LoadBalancer": supported values: "ClusterIP", "NodePort"',
        'spec.ports: required',
      ],
    ],
    [
      'a bad targetPort',
      edit(service, (o) => {
        o.spec.ports[1].targetPort = 'Metrics';
      }),
      [
        "spec.ports[1].targetPort: must be an IANA service name: lowercase alphanumerics or '-', with at least one letter",
      ],
    ],
    // ------------------------------------------------ ReplicaSet, Deployment
    [
      'negative replicas',
      edit(deployment, (o) => {
        o.spec.replicas = -1;
      }),
      ['spec.replicas: must be >= 0'],
    ],
    [
      'a ReplicaSet without selector',
      edit(replicaSet, (o) => {
        delete o.spec.selector;
      }),
      ['spec.selector: required'],
    ],
    [
      'an empty selector',
      edit(replicaSet, (o) => {
        o.spec.selector = {};
      }),
      ['spec.selector: empty selector is invalid'],
    ],
    [
      'a selector with a bad operator',
      edit(replicaSet, (o) => {
        o.spec.selector = { matchExpressions: [{ key: 'app', operator: 'Near' }] };
      }),
      ['spec.selector.matchExpressions[0]: unknown operator "Near"'],
    ],
    [
      'template labels that do not match the selector',
      edit(deployment, (o) => {
        o.spec.template.metadata.labels = { app: 'api', tier: 'front' };
      }),
      ['spec.template.metadata.labels: does not match spec.selector'],
    ],
    [
      'a template container without image and restartPolicy Never',
      edit(deployment, (o) => {
        delete o.spec.template.spec.containers[0].image;
        o.spec.template.spec.restartPolicy = 'Never';
      }),
      [
        `${t0}.image: required`,
        'spec.template.spec.restartPolicy: unsupported value "Never": supported values: "Always"',
      ],
    ],
    [
      'maxSurge and maxUnavailable both 0',
      edit(deployment, (o) => {
        o.spec.strategy.rollingUpdate = { maxSurge: '0%', maxUnavailable: 0 };
      }),
      ['spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0'],
    ],
    [
      'bad percentages',
      edit(deployment, (o) => {
        o.spec.strategy.rollingUpdate = { maxSurge: '1.5%', maxUnavailable: '150%' };
      }),
      [
        "spec.strategy.rollingUpdate.maxSurge: must be an integer or percentage (e.g. '5%')",
        'spec.strategy.rollingUpdate.maxUnavailable: must not be greater than 100%',
      ],
    ],
    [
      'rollingUpdate with Recreate',
      edit(deployment, (o) => {
        o.spec.strategy.type = 'Recreate';
      }),
      ["spec.strategy.rollingUpdate: may not be specified when strategy `type` is 'Recreate'"],
    ],
    [
      'a progress deadline not above minReadySeconds',
      edit(deployment, (o) => {
        o.spec.progressDeadlineSeconds = 5;
        o.spec.revisionHistoryLimit = -2;
      }),
      [
        'spec.revisionHistoryLimit: must be >= 0',
        'spec.progressDeadlineSeconds: must be greater than minReadySeconds',
      ],
    ],
  ])('%s', (_, obj, expected) => {
    expect(messages(obj)).toEqual(expected);
  });
});

describe('FieldError', () => {
  it('carries a type', () => {
    const errors = validateObject(
      edit(deployment, (o) => {
        o.spec.replicas = -1;
        delete o.spec.template.spec.containers[0].image;
        o.spec.template.spec.containers.push({ name: 'app', image: 'x' });
      }),
    );
    expect(errors).toEqual<FieldError[]>([
      { path: 'spec.replicas', type: 'invalid', message: 'must be >= 0' },
      { path: 'spec.template.spec.containers[0].image', type: 'required', message: 'required' },
      { path: 'spec.template.spec.containers[1].name', type: 'duplicate', message: 'duplicate value "app"' },
    ]);
  });
});

describe('assertValidObject', () => {
  it('accepts a valid object', () => {
    expect(() => assertValidObject(deployment)).not.toThrow();
  });

  it('throws InvalidObjectError naming the kind, name, first error and the count of the rest', () => {
    const bad = edit(deployment, (o) => {
      o.spec.replicas = -1;
      o.spec.revisionHistoryLimit = -1;
      o.spec.paused = 'yes';
    });
    let thrown: unknown;
    try {
      assertValidObject(bad);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(InvalidObjectError);
    expect(thrown).toBeInstanceOf(CoreError);
    const error = thrown as InvalidObjectError;
    expect(error.code).toBe('INVALID');
    expect(error.name).toBe('InvalidObjectError');
    expect(error.message).toBe('Deployment "web" is invalid: spec.replicas: must be >= 0 (and 2 more)');
    expect(error.errors.map(formatFieldError)).toEqual([
      'spec.replicas: must be >= 0',
      'spec.revisionHistoryLimit: must be >= 0',
      'spec.paused: must be a boolean',
    ]);
  });

  it('names a single error without a count', () => {
    expect(() => assertValidObject({ ...namespace, metadata: { name: 'A' } })).toThrow(
      /^Namespace "A" is invalid: metadata\.name: must be a DNS-1123 label: .*[^)]$/,
    );
  });
});

describe('validateObject never throws', () => {
  const kinds = fc.constantFrom(
    ['v1', 'Namespace'],
    ['v1', 'Pod'],
    ['v1', 'ConfigMap'],
    ['v1', 'Secret'],
    ['v1', 'Service'],
    ['apps/v1', 'ReplicaSet'],
    ['apps/v1', 'Deployment'],
  );

  it('on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(Array.isArray(validateObject(value))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('on known kinds with arbitrary JSON in every field', () => {
    const anything = fc.jsonValue({ maxDepth: 3 });
    const container = fc.oneof(
      anything,
      fc.record(
        {
          name: anything,
          image: anything,
          ports: fc.array(fc.oneof(anything, fc.record({ containerPort: anything, name: anything }))),
          env: fc.array(fc.oneof(anything, fc.record({ name: anything, valueFrom: anything }))),
          resources: fc.oneof(anything, fc.record({ requests: anything, limits: anything })),
          volumeMounts: anything,
          livenessProbe: fc.oneof(anything, fc.record({ httpGet: anything, exec: anything })),
          lifecycle: anything,
        },
        { requiredKeys: [] },
      ),
    );
    const podSpec = fc.oneof(
      anything,
      fc.record(
        {
          containers: fc.array(container),
          initContainers: fc.array(container),
          volumes: fc.array(anything),
          tolerations: anything,
          restartPolicy: anything,
          nodeSelector: anything,
        },
        { requiredKeys: [] },
      ),
    );
    const object = fc
      .tuple(
        kinds,
        fc.oneof(
          anything,
          fc.record({ name: anything, namespace: anything, labels: anything }, { requiredKeys: [] }),
        ),
        fc.oneof(
          anything,
          podSpec,
          fc.record(
            {
              selector: fc.oneof(
                anything,
                fc.record({ matchLabels: anything, matchExpressions: anything }, { requiredKeys: [] }),
              ),
              template: fc.oneof(
                anything,
                fc.record({ metadata: fc.record({ labels: anything }), spec: podSpec }, { requiredKeys: [] }),
              ),
              strategy: fc.oneof(anything, fc.record({ type: anything, rollingUpdate: anything })),
              ports: fc.array(anything),
              replicas: anything,
            },
            { requiredKeys: [] },
          ),
        ),
        anything,
      )
      .map(([[apiVersion, kind], metadata, spec, data]) => ({ apiVersion, kind, metadata, spec, data }));
    fc.assert(
      fc.property(object, (value) => {
        expect(Array.isArray(validateObject(value))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('on valid objects with one field replaced by arbitrary JSON', () => {
    const arbitrary = fc.tuple(
      fc.constantFrom(...validObjects.map(([, obj]) => obj)),
      fc.nat(),
      fc.jsonValue({ maxDepth: 2 }),
    );
    fc.assert(
      fc.property(arbitrary, ([base, pick, replacement]) => {
        const copy = structuredClone(base) as Loose;
        const slots = collectSlots(copy);
        const [parent, key] = slots[pick % slots.length];
        parent[key] = replacement;
        expect(Array.isArray(validateObject(copy))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

/** Every (container, key) pair inside `value`, for replacing one field at a time. */
function collectSlots(value: Loose, slots: [Loose, string | number][] = []): [Loose, string | number][] {
  if (typeof value !== 'object' || value === null) return slots;
  for (const key of Object.keys(value)) {
    slots.push([value, Array.isArray(value) ? Number(key) : key]);
    collectSlots(value[key], slots);
  }
  return slots;
}

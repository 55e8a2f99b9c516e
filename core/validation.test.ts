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
  isCIDR,
  isIPv4,
  isIPv6,
  utf8ByteLength,
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

const daemonSet = {
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { name: 'agent', namespace: 'kube-system' },
  spec: {
    selector: { matchLabels: { app: 'web' } },
    template,
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '10%' } },
    minReadySeconds: 1,
    revisionHistoryLimit: 5,
  },
  status: { currentNumberScheduled: 2, numberMisscheduled: 0, desiredNumberScheduled: 2, numberReady: 1 },
};

const statefulSet = {
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'db', namespace: 'default' },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    template,
    serviceName: 'db',
    podManagementPolicy: 'Parallel',
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1, maxUnavailable: '50%' } },
    revisionHistoryLimit: 10,
  },
  status: { replicas: 3, readyReplicas: 2, currentRevision: 'db-1', updateRevision: 'db-2' },
};

const job = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'pi', namespace: 'default' },
  spec: {
    parallelism: 2,
    completions: 5,
    completionMode: 'Indexed',
    backoffLimit: 4,
    activeDeadlineSeconds: 600,
    ttlSecondsAfterFinished: 100,
    suspend: false,
    template: {
      metadata: { labels: { app: 'pi' } },
      spec: { containers: [{ name: 'pi', image: 'perl:5' }], restartPolicy: 'Never' },
    },
  },
  status: {
    active: 2,
    succeeded: 3,
    failed: 0,
    startTime: '2026-01-01T00:00:00Z',
    completedIndexes: '0-2',
    conditions: [{ type: 'Complete', status: 'False' }],
  },
};

const node = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'n1.example.com', labels: { 'kubernetes.io/hostname': 'n1' } },
  spec: {
    podCIDR: '10.244.1.0/24',
    podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'],
    unschedulable: false,
    taints: [
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
      { key: 'dedicated', value: 'gpu', effect: 'NoExecute', timeAdded: '2026-01-01T00:00:00Z' },
    ],
  },
  status: {
    capacity: { cpu: '2', memory: '4Gi', pods: '110' },
    allocatable: { cpu: '1900m', memory: '3Gi', pods: '110' },
    conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z' }],
    addresses: [
      { type: 'InternalIP', address: '127.0.0.2' },
      { type: 'Hostname', address: 'n1' },
    ],
    nodeInfo: { kernelVersion: '6.1.0', architecture: 'amd64', operatingSystem: 'linux' },
  },
};

const endpoints = {
  apiVersion: 'v1',
  kind: 'Endpoints',
  metadata: { name: 'web', namespace: 'default' },
  subsets: [
    {
      addresses: [
        { ip: '10.244.1.5', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'web-0', namespace: 'default' } },
        { ip: 'fd00::5', hostname: 'web-1' },
      ],
      notReadyAddresses: [{ ip: '127.0.0.3' }],
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'metrics', port: 9090 },
      ],
    },
    { notReadyAddresses: [{ ip: '::ffff:10.0.0.1' }], ports: [{ port: 53, protocol: 'UDP' }] },
  ],
};

const event = {
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: 'web-0.17f3a', namespace: 'default' },
  involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: 'default', uid: 'u1' },
  reason: 'FailedScheduling',
  message: '0/3 nodes are available',
  type: 'Warning',
  count: 3,
  firstTimestamp: '2026-01-01T00:00:00Z',
  lastTimestamp: '2026-01-01T00:01:00Z',
  source: { component: 'scheduler', host: 'm1' },
};

const lease = {
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name: 'n1', namespace: 'kube-node-lease' },
  spec: {
    holderIdentity: 'n1',
    leaseDurationSeconds: 40,
    acquireTime: '2026-01-01T00:00:00.000000Z',
    renewTime: '2026-01-01T00:00:10.000000Z',
    leaseTransitions: 0,
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
  ['DaemonSet', daemonSet],
  [
    'DaemonSet with OnDelete',
    { ...daemonSet, spec: { ...daemonSet.spec, updateStrategy: { type: 'OnDelete' } } },
  ],
  ['StatefulSet', statefulSet],
  [
    'StatefulSet with OnDelete',
    { ...statefulSet, spec: { ...statefulSet.spec, updateStrategy: { type: 'OnDelete' } } },
  ],
  ['Job', job],
  [
    'Job with a selector matching its template',
    edit(job, (o) => {
      o.spec.selector = { matchLabels: { app: 'pi' } };
      o.spec.manualSelector = true;
      o.spec.completionMode = 'NonIndexed';
      delete o.spec.completions;
    }),
  ],
  ['Node', node],
  ['Node without spec and status', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n2' } }],
  ['Endpoints', endpoints],
  ['Endpoints without subsets', { ...endpoints, subsets: [] }],
  ['Event', event],
  [
    'Event about a Node in default',
    { ...event, involvedObject: { kind: 'Node', name: 'n1' }, type: 'Normal', source: undefined },
  ],
  ['Lease', lease],
  ['Lease without spec', { ...lease, spec: undefined }],
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
        'kind: unsupported value "Gizmo": supported values: "Namespace", "Node", "Pod", "ConfigMap", "Secret", "Service", "Endpoints", "Event", "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Lease", "ControllerRevision", "LimitRange", "ResourceQuota", "EndpointSlice"',
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
    // ------------------------------------------------ DaemonSet, StatefulSet, Job
    [
      'a DaemonSet in apps/v1beta2 without selector',
      edit(daemonSet, (o) => {
        o.apiVersion = 'apps/v1beta2';
        delete o.spec.selector;
      }),
      [
        'apiVersion: unsupported value "apps/v1beta2": supported values: "apps/v1"',
        'spec.selector: required',
      ],
    ],
    [
      'a DaemonSet whose template labels do not match and restartPolicy OnFailure',
      edit(daemonSet, (o) => {
        o.spec.template.metadata.labels = { app: 'other' };
        o.spec.template.spec.restartPolicy = 'OnFailure';
      }),
      [
        'spec.template.metadata.labels: does not match spec.selector',
        'spec.template.spec.restartPolicy: unsupported value "OnFailure": supported values: "Always"',
      ],
    ],
    [
      'a DaemonSet with maxUnavailable and maxSurge both non-zero',
      edit(daemonSet, (o) => {
        o.spec.updateStrategy.rollingUpdate = { maxUnavailable: 1, maxSurge: 1 };
      }),
      ['spec.updateStrategy.rollingUpdate.maxSurge: may not be set when maxUnavailable is non-zero'],
    ],
    [
      'a DaemonSet with only maxSurge (maxUnavailable defaults to 1)',
      edit(daemonSet, (o) => {
        o.spec.updateStrategy.rollingUpdate = { maxSurge: 1 };
      }),
      ['spec.updateStrategy.rollingUpdate.maxSurge: may not be set when maxUnavailable is non-zero'],
    ],
    [
      'a DaemonSet with maxUnavailable 0% and no maxSurge, a bad type and a negative history',
      edit(daemonSet, (o) => {
        o.spec.updateStrategy = { type: 'Recreate', rollingUpdate: { maxUnavailable: '0%' } };
        o.spec.revisionHistoryLimit = -1;
      }),
      [
        'spec.revisionHistoryLimit: must be >= 0',
        'spec.updateStrategy.type: unsupported value "Recreate": supported values: "RollingUpdate", "OnDelete"',
        'spec.updateStrategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0',
      ],
    ],
    [
      'a DaemonSet with maxSurge above 100% and negative status counts',
      edit(daemonSet, (o) => {
        o.spec.updateStrategy.rollingUpdate.maxSurge = '120%';
        o.status.numberReady = -1;
      }),
      [
        'spec.updateStrategy.rollingUpdate.maxSurge: must not be greater than 100%',
        'status.numberReady: must be >= 0',
      ],
    ],
    [
      'a StatefulSet with bad replicas, policy and service name',
      edit(statefulSet, (o) => {
        o.spec.replicas = -1;
        o.spec.podManagementPolicy = 'Random';
        o.spec.serviceName = 'DB';
      }),
      [
        'spec.replicas: must be >= 0',
        "spec.serviceName: must be a DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric",
        'spec.podManagementPolicy: unsupported value "Random": supported values: "OrderedReady", "Parallel"',
      ],
    ],
    [
      'a StatefulSet with a negative partition and maxUnavailable 0',
      edit(statefulSet, (o) => {
        o.spec.updateStrategy.rollingUpdate = { partition: -1, maxUnavailable: 0 };
      }),
      [
        'spec.updateStrategy.rollingUpdate.partition: must be >= 0',
        'spec.updateStrategy.rollingUpdate.maxUnavailable: must be greater than 0',
      ],
    ],
    [
      'a StatefulSet with rollingUpdate under OnDelete',
      edit(statefulSet, (o) => {
        o.spec.updateStrategy.type = 'OnDelete';
      }),
      ["spec.updateStrategy.rollingUpdate: only allowed for updateStrategy 'RollingUpdate'"],
    ],
    [
      'a StatefulSet whose template labels do not match',
      edit(statefulSet, (o) => {
        o.spec.selector = { matchLabels: { app: 'db' } };
      }),
      ['spec.template.metadata.labels: does not match spec.selector'],
    ],
    [
      'a Job template with restartPolicy Always',
      edit(job, (o) => {
        o.spec.template.spec.restartPolicy = 'Always';
      }),
      [
        'spec.template.spec.restartPolicy: unsupported value "Always": supported values: "OnFailure", "Never"',
      ],
    ],
    [
      'a Job template without restartPolicy',
      edit(job, (o) => {
        delete o.spec.template.spec.restartPolicy;
      }),
      ['spec.template.spec.restartPolicy: required'],
    ],
    [
      'negative Job counts and an unknown completion mode',
      edit(job, (o) => {
        o.spec.parallelism = -1;
        o.spec.backoffLimit = -1;
        o.spec.activeDeadlineSeconds = 1.5;
        o.spec.completionMode = 'Sometimes';
        o.status.failed = -1;
      }),
      [
        'spec.parallelism: must be >= 0',
        'spec.backoffLimit: must be >= 0',
        'spec.activeDeadlineSeconds: must be an integer',
        'spec.completionMode: unsupported value "Sometimes": supported values: "NonIndexed", "Indexed"',
        'status.failed: must be >= 0',
      ],
    ],
    [
      'an Indexed Job without completions and with too much parallelism',
      edit(job, (o) => {
        delete o.spec.completions;
        o.spec.parallelism = 100_001;
      }),
      [
        'spec.completions: required when completion mode is Indexed',
        'spec.parallelism: must be <= 100000 when completion mode is Indexed',
      ],
    ],
    [
      'a Job with manualSelector and no selector',
      edit(job, (o) => {
        o.spec.manualSelector = true;
      }),
      ['spec.selector: required'],
    ],
    [
      'a Job selector that does not match its template',
      edit(job, (o) => {
        o.spec.selector = { matchLabels: { app: 'other' } };
      }),
      ['spec.template.metadata.labels: does not match spec.selector'],
    ],
    // ------------------------------------------------ Node, Endpoints, Event, Lease
    [
      'a Node with a namespace and bad CIDRs',
      edit(node, (o) => {
        o.metadata.namespace = 'default';
        o.spec.podCIDR = '10.244.1.0/33';
        o.spec.podCIDRs = ['10.244.1.0', 'fd00::/129'];
        o.spec.unschedulable = 'yes';
      }),
      [
        'metadata.namespace: not allowed on this type',
        'spec.podCIDR: must be a valid CIDR',
        'spec.podCIDRs[0]: must be a valid CIDR',
        'spec.podCIDRs[1]: must be a valid CIDR',
        'spec.unschedulable: must be a boolean',
      ],
    ],
    [
      'bad Node taints',
      edit(node, (o) => {
        o.spec.taints = [
          { value: 'x', effect: 'NoSchedule' },
          { key: 'k', effect: 'Sometimes' },
          { key: 'k' },
          { key: 'dup', effect: 'NoExecute' },
          { key: 'dup', effect: 'NoExecute' },
        ];
      }),
      [
        'spec.taints[0].key: required',
        'spec.taints[1].effect: unsupported value "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        'spec.taints[2].effect: required',
        'spec.taints[4]: duplicate value "dup:NoExecute"',
      ],
    ],
    [
      'a bad Node status',
      edit(node, (o) => {
        o.status.capacity.memory = '4Gx';
        o.status.allocatable.cpu = '-1';
        o.status.addresses = [{ type: 'PublicIP', address: '1.2.3.4' }, { type: 'Hostname' }];
        o.status.conditions = [{ status: 'Maybe' }];
      }),
      [
        'status.capacity[memory]: quantity "4Gx": unknown suffix "Gx"',
        'status.allocatable[cpu]: must be >= 0',
        'status.conditions[0].type: required',
        'status.conditions[0].status: unsupported value "Maybe": supported values: "True", "False", "Unknown"',
        'status.addresses[0].type: unsupported value "PublicIP": supported values: "Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS"',
        'status.addresses[1].address: required',
      ],
    ],
    [
      'bad Endpoints addresses',
      edit(endpoints, (o) => {
        o.subsets[0].addresses = [
          { ip: '10.0.0.256' },
          { ip: 'fd00::1::2' },
          {},
          { ip: '10.0.0.1', hostname: 'Web_1', nodeName: 'N1' },
        ];
      }),
      [
        'subsets[0].addresses[0].ip: must be a valid IP address',
        'subsets[0].addresses[1].ip: must be a valid IP address',
        'subsets[0].addresses[2].ip: required',
        "subsets[0].addresses[3].hostname: must be a DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric",
        "subsets[0].addresses[3].nodeName: must be a DNS-1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric",
      ],
    ],
    [
      'bad Endpoints ports',
      edit(endpoints, (o) => {
        o.subsets[0].ports = [
          { name: 'http', port: 0 },
          { name: 'http', port: 65536, protocol: 'ICMP' },
          { port: 81 },
        ];
        o.subsets[1].ports = [];
      }),
      [
        'subsets[0].ports[0].port: must be >= 1',
        'subsets[0].ports[1].name: duplicate value "http"',
        'subsets[0].ports[1].port: must be <= 65535',
        'subsets[0].ports[1].protocol: unsupported value "ICMP": supported values: "TCP", "UDP", "SCTP"',
        'subsets[0].ports[2].name: required',
        'subsets[1].ports: required',
      ],
    ],
    [
      'an Endpoints subset without addresses',
      edit(endpoints, (o) => {
        o.subsets[1].notReadyAddresses = [];
      }),
      ['subsets[1]: must specify `addresses` or `notReadyAddresses`'],
    ],
    [
      'an Event without involvedObject',
      edit(event, (o) => {
        delete o.involvedObject;
      }),
      ['involvedObject: required'],
    ],
    [
      'an Event without involvedObject kind and name, a bad type and a negative count',
      edit(event, (o) => {
        o.involvedObject = { namespace: 'default' };
        o.type = 'Error';
        o.count = -1;
      }),
      [
        'involvedObject.kind: required',
        'involvedObject.name: required',
        'type: unsupported value "Error": supported values: "Normal", "Warning"',
        'count: must be >= 0',
      ],
    ],
    [
      'an Event in another namespace than its object',
      edit(event, (o) => {
        o.metadata.namespace = 'team-a';
      }),
      ['involvedObject.namespace: does not match event.namespace'],
    ],
    [
      'an Event about a cluster-scoped object outside default',
      edit(event, (o) => {
        o.metadata.namespace = 'team-a';
        o.involvedObject = { kind: 'Node', name: 'n1' };
        o.source = { component: 7 };
      }),
      ['involvedObject.namespace: does not match event.namespace', 'source.component: must be a string'],
    ],
    [
      'Lease durations below 1 and negative transitions',
      edit(lease, (o) => {
        o.spec.leaseDurationSeconds = 0;
        o.spec.leaseTransitions = -1;
      }),
      ['spec.leaseDurationSeconds: must be >= 1', 'spec.leaseTransitions: must be >= 0'],
    ],
    [
      'a Lease without namespace and a bad holder',
      edit(lease, (o) => {
        delete o.metadata.namespace;
        o.spec.holderIdentity = 5;
      }),
      ['metadata.namespace: required', 'spec.holderIdentity: must be a string'],
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
    ['apps/v1', 'DaemonSet'],
    ['apps/v1', 'StatefulSet'],
    ['batch/v1', 'Job'],
    ['v1', 'Node'],
    ['v1', 'Endpoints'],
    ['v1', 'Event'],
    ['coordination.k8s.io/v1', 'Lease'],
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
              updateStrategy: fc.oneof(anything, fc.record({ type: anything, rollingUpdate: anything })),
              taints: fc.array(anything),
              podCIDRs: anything,
            },
            { requiredKeys: [] },
          ),
        ),
        anything,
      )
      .map(([[apiVersion, kind], metadata, spec, data]) => ({
        apiVersion,
        kind,
        metadata,
        spec,
        data,
        status: data,
        subsets: data,
        involvedObject: data,
      }));
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

describe('IP and CIDR checks', () => {
  it.each([
    ['10.0.0.1', true, false],
    ['255.255.255.255', true, false],
    ['01.0.0.1', false, false],
    ['1.2.3', false, false],
    ['::', false, true],
    ['::1', false, true],
    ['fd00::5', false, true],
    ['2001:db8:0:0:0:0:0:1', false, true],
    ['2001:db8:0:0:0:0:0:0:1', false, false],
    ['1:2:3:4:5:6:7::', false, true],
    ['::ffff:10.0.0.1', false, true],
    ['::ffff:10.0.0.256', false, false],
    ['fd00::1::2', false, false],
    ['fe80::1%eth0', false, false],
    ['12345::', false, false],
    [':1', false, false],
    ['1::2:', false, false],
  ])('%s: IPv4 %s, IPv6 %s', (text, v4, v6) => {
    expect(isIPv4(text)).toBe(v4);
    expect(isIPv6(text)).toBe(v6);
  });

  it.each([
    ['10.0.0.0/8', true],
    ['0.0.0.0/0', true],
    ['10.0.0.0/33', false],
    ['10.0.0.0/08', false],
    ['fd00::/64', true],
    ['fd00::/128', true],
    ['fd00::/129', false],
    ['10.0.0.0', false],
    ['/8', false],
  ])('isCIDR(%s) → %s', (text, expected) => {
    expect(isCIDR(text)).toBe(expected);
  });
});

describe('env fieldRef, resourceFieldRef and envFrom', () => {
  const podWith = (container: Record<string, unknown>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'busybox', ...container }] },
  });

  it('accepts the pod fields and resources Kubernetes allows', () => {
    expect(
      validateObject(
        podWith({
          env: [
            { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          ],
          envFrom: [
            { prefix: 'CFG_', configMapRef: { name: 'cfg' } },
            { secretRef: { name: 's', optional: true } },
          ],
        }),
      ),
    ).toEqual([]);
  });

  it('names the bad field', () => {
    const errs = validateObject(
      podWith({
        env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.containers' } } }],
        envFrom: [{ configMapRef: { name: 'a' }, secretRef: { name: 'b' } }],
      }),
    ).map((e) => e.path);
    expect(errs).toEqual([
      'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath',
      'spec.containers[0].envFrom[0]',
    ]);
  });
});

describe('scheduling fields and the policy kinds', () => {
  const withSpec = (f: (spec: Loose) => void) => edit(pod, (o) => f(o.spec));
  it('accepts affinity, hostname, subdomain and activeDeadlineSeconds', () => {
    const ok = withSpec((s) => {
      s.hostname = 'web-0';
      s.subdomain = 'web';
      s.activeDeadlineSeconds = 30;
      s.affinity = {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] },
              { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
            ],
          },
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 10,
              preference: { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4'] }] },
            },
          ],
        },
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' },
          ],
        },
      };
    });
    expect(messages(ok)).toEqual([]);
  });
  it('names the bad affinity fields', () => {
    const bad = withSpec((s) => {
      s.activeDeadlineSeconds = 0;
      s.hostname = 'Web_0';
      s.affinity = {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In' }] }],
          },
          preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 101, preference: {} }],
        },
        podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: {} }] },
      };
    });
    expect(messages(bad)).toEqual([
      'spec.activeDeadlineSeconds: must be >= 1',
      "spec.hostname: must be a DNS-1123 label: lowercase alphanumerics or '-', starting and ending with an alphanumeric",
      'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: required',
      'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be <= 100',
      'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required',
    ]);
  });
  it('checks LimitRange ordering and ResourceQuota resources', () => {
    const limitRange = {
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: 'lr', namespace: 'default' },
      spec: { limits: [{ type: 'Container', min: { cpu: '200m' }, default: { cpu: '100m' } }] },
    };
    expect(messages(limitRange)).toEqual([
      'spec.limits[0].default[cpu]: must be greater than or equal to min (200m)',
    ]);
    const quota = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'q', namespace: 'default' },
      spec: { hard: { pods: '10', 'requests.cpu': '2', gpus: '1' }, scopes: ['BestEffort', 'NotBestEffort'] },
    };
    expect(messages(quota)).toEqual([
      'spec.hard[gpus]: unsupported resource: supported: requests.cpu, requests.memory, limits.cpu, limits.memory, cpu, memory, pods, services, services.nodeports, configmaps, secrets, count/<resource>',
      'spec.scopes: conflicting scopes BestEffort and NotBestEffort',
    ]);
  });
  it('checks a CronJob schedule and its job template with their paths', () => {
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'nightly', namespace: 'default' },
      spec: {
        schedule: '0 25 * * *',
        jobTemplate: { spec: { template: { spec: { containers: [{ name: 'a', image: 'x' }] } } } },
      },
    };
    expect(messages(cronJob)).toEqual([
      'spec.schedule: hour: 25 is out of range 0-23',
      'spec.jobTemplate.spec.template.spec.restartPolicy: required',
    ]);
  });
  it('checks EndpointSlice addresses against their type', () => {
    const slice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abc', namespace: 'default' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1', 'nope'], conditions: { ready: 'yes' } }],
      ports: [{ name: 'http', port: 80 }],
    };
    expect(messages(slice)).toEqual([
      'endpoints[0].addresses[1]: must be a valid IPv4 address',
      'endpoints[0].conditions.ready: must be a boolean',
    ]);
  });
});

describe('utf8ByteLength', () => {
  it('counts what TextEncoder writes, surrogate pairs and lone surrogates included', () => {
    const encoder = new TextEncoder();
    const samples = [
      '',
      'abc',
      'é',
      '€',
      '😀',
      'a😀b',
      '\ud83d',
      '\ude00',
      'x\ud83dy',
      '\ud83d\ud83d\ude00',
      'ß€😀\u0000',
    ];
    for (const s of samples) expect(utf8ByteLength(s), JSON.stringify(s)).toBe(encoder.encode(s).length);
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => utf8ByteLength(s) === encoder.encode(s).length),
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyDefaults, defaultImagePullPolicy } from './defaults.js';
import type {
  ApiObject,
  DaemonSet,
  Deployment,
  Endpoints,
  Event,
  Job,
  Lease,
  Node,
  Pod,
  ReplicaSet,
  Secret,
  Service,
  StatefulSet,
} from './objects.js';

const pod: Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-0', namespace: 'default' },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'nginx:1.27',
        ports: [{ containerPort: 80 }],
        livenessProbe: { httpGet: { port: 80 } },
        readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 2, failureThreshold: 1 },
      },
      { name: 'sidecar', image: 'busybox' },
    ],
    initContainers: [{ name: 'init', image: 'registry:5000/tools:latest' }],
  },
};

const service: Service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    selector: { app: 'web' },
    ports: [
      { name: 'http', port: 80 },
      { name: 'alt', port: 81, targetPort: 'http' },
    ],
  },
};

const template = {
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'app', image: 'nginx' }] },
};

const deployment: Deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'web' } }, template },
};

const replicaSet: ReplicaSet = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name: 'web-1', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'web' } }, template },
};

const secret: Secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' } };

const daemonSet: DaemonSet = {
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { name: 'agent', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'web' } }, template },
};

const statefulSet: StatefulSet = {
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'db', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'web' } }, template, serviceName: 'db' },
};

const job: Job = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'pi', namespace: 'default' },
  spec: {
    template: {
      metadata: { labels: { app: 'pi' } },
      spec: { containers: [{ name: 'pi', image: 'perl:5' }], restartPolicy: 'Never' },
    },
  },
};

const node: Node = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'n1' },
  status: { capacity: { cpu: '2', memory: '4Gi' } },
};

const endpoints: Endpoints = {
  apiVersion: 'v1',
  kind: 'Endpoints',
  metadata: { name: 'web', namespace: 'default' },
  subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] }],
};

const event: Event = {
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: 'e1', namespace: 'default' },
  involvedObject: { kind: 'Pod', name: 'web-0', namespace: 'default' },
};

const lease: Lease = {
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name: 'n1', namespace: 'kube-node-lease' },
  spec: { holderIdentity: 'n1' },
};

const allObjects: ApiObject[] = [
  pod,
  service,
  deployment,
  replicaSet,
  secret,
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: { a: 'b' } },
  daemonSet,
  statefulSet,
  job,
  node,
  endpoints,
  event,
  lease,
];

describe('applyDefaults', () => {
  it('fills Pod fields', () => {
    expect(applyDefaults(pod).spec).toEqual({
      containers: [
        {
          name: 'app',
          image: 'nginx:1.27',
          imagePullPolicy: 'IfNotPresent',
          terminationMessagePath: '/dev/termination-log',
          ports: [{ containerPort: 80, protocol: 'TCP' }],
          livenessProbe: {
            httpGet: { port: 80 },
            periodSeconds: 10,
            timeoutSeconds: 1,
            successThreshold: 1,
            failureThreshold: 3,
          },
          readinessProbe: {
            tcpSocket: { port: 80 },
            periodSeconds: 2,
            timeoutSeconds: 1,
            successThreshold: 1,
            failureThreshold: 1,
          },
        },
        {
          name: 'sidecar',
          image: 'busybox',
          imagePullPolicy: 'Always',
          terminationMessagePath: '/dev/termination-log',
        },
      ],
      initContainers: [
        {
          name: 'init',
          image: 'registry:5000/tools:latest',
          imagePullPolicy: 'Always',
          terminationMessagePath: '/dev/termination-log',
        },
      ],
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
    });
  });

  it('keeps values that are already set', () => {
    const custom: Pod = {
      ...pod,
      spec: {
        containers: [{ name: 'app', image: 'nginx', imagePullPolicy: 'Never' }],
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 0,
      },
    };
    const spec = applyDefaults(custom).spec;
    expect(spec.restartPolicy).toBe('Never');
    expect(spec.terminationGracePeriodSeconds).toBe(0);
    expect(spec.containers[0].imagePullPolicy).toBe('Never');
  });

  it('fills Service fields; targetPort defaults to port', () => {
    expect(applyDefaults(service).spec).toEqual({
      type: 'ClusterIP',
      sessionAffinity: 'None',
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 80 },
        { name: 'alt', port: 81, protocol: 'TCP', targetPort: 'http' },
      ],
    });
  });

  it('fills Deployment fields and its pod template', () => {
    const spec = applyDefaults(deployment).spec;
    expect({ ...spec, template: undefined }).toEqual({
      selector: { matchLabels: { app: 'web' } },
      template: undefined,
      replicas: 1,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      minReadySeconds: 0,
    });
    expect(spec.template.spec.restartPolicy).toBe('Always');
    expect(spec.template.spec.containers[0].imagePullPolicy).toBe('Always');
  });

  it('completes a partial rolling update and leaves Recreate alone', () => {
    const partial: Deployment = {
      ...deployment,
      spec: { ...deployment.spec, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0 } } },
    };
    expect(applyDefaults(partial).spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 0, maxUnavailable: '25%' },
    });
    const recreate: Deployment = {
      ...deployment,
      spec: { ...deployment.spec, strategy: { type: 'Recreate' } },
    };
    expect(applyDefaults(recreate).spec.strategy).toEqual({ type: 'Recreate' });
  });

  it('fills ReplicaSet replicas and its pod template', () => {
    const spec = applyDefaults(replicaSet).spec;
    expect(spec.replicas).toBe(1);
    expect(spec.template.spec.dnsPolicy).toBe('ClusterFirst');
    expect(applyDefaults({ ...replicaSet, spec: { ...replicaSet.spec, replicas: 0 } }).spec.replicas).toBe(0);
  });

  it('fills DaemonSet fields: RollingUpdate with maxUnavailable 1 and maxSurge 0', () => {
    const spec = applyDefaults(daemonSet).spec;
    expect({ ...spec, template: undefined }).toEqual({
      selector: { matchLabels: { app: 'web' } },
      template: undefined,
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      revisionHistoryLimit: 10,
      minReadySeconds: 0,
    });
    expect(spec.template.spec.restartPolicy).toBe('Always');
    const onDelete: DaemonSet = {
      ...daemonSet,
      spec: { ...daemonSet.spec, updateStrategy: { type: 'OnDelete' } },
    };
    expect(applyDefaults(onDelete).spec.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('fills StatefulSet fields: 1 replica, OrderedReady, RollingUpdate at partition 0', () => {
    const spec = applyDefaults(statefulSet).spec;
    expect({ ...spec, template: undefined }).toEqual({
      selector: { matchLabels: { app: 'web' } },
      template: undefined,
      serviceName: 'db',
      replicas: 1,
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      revisionHistoryLimit: 10,
      minReadySeconds: 0,
    });
    expect(spec.template.spec.dnsPolicy).toBe('ClusterFirst');
    const partial: StatefulSet = {
      ...statefulSet,
      spec: {
        ...statefulSet.spec,
        replicas: 0,
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } },
      },
    };
    expect(applyDefaults(partial).spec.replicas).toBe(0);
    expect(applyDefaults(partial).spec.updateStrategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { partition: 2 },
    });
  });

  it('fills Job fields and copies template labels to a Job without labels', () => {
    const defaulted = applyDefaults(job);
    expect({ ...defaulted.spec, template: undefined }).toEqual({
      template: undefined,
      completions: 1,
      parallelism: 1,
      backoffLimit: 6,
      completionMode: 'NonIndexed',
      suspend: false,
    });
    expect(defaulted.spec.selector).toBeUndefined();
    expect(defaulted.spec.template.spec.restartPolicy).toBe('Never');
    expect(defaulted.metadata.labels).toEqual({ app: 'pi' });
    expect(defaulted.metadata.labels).not.toBe(defaulted.spec.template.metadata?.labels);
    const labelled: Job = { ...job, metadata: { ...job.metadata, labels: { team: 'a' } } };
    expect(applyDefaults(labelled).metadata.labels).toEqual({ team: 'a' });
  });

  it('leaves completions unset for a work-queue Job (parallelism without completions)', () => {
    const queue: Job = { ...job, spec: { ...job.spec, parallelism: 4 } };
    const spec = applyDefaults(queue).spec;
    expect(spec.parallelism).toBe(4);
    expect(spec.completions).toBeUndefined();
    const fixed: Job = { ...job, spec: { ...job.spec, completions: 5 } };
    expect(applyDefaults(fixed).spec).toMatchObject({ completions: 5, parallelism: 1 });
  });

  it('defaults Node allocatable to a copy of capacity', () => {
    const status = applyDefaults(node).status;
    expect(status?.allocatable).toEqual({ cpu: '2', memory: '4Gi' });
    expect(status?.allocatable).not.toBe(status?.capacity);
    const given: Node = { ...node, status: { capacity: { cpu: '2' }, allocatable: { cpu: '1' } } };
    expect(applyDefaults(given).status?.allocatable).toEqual({ cpu: '1' });
  });

  it('defaults Endpoints port protocols to TCP', () => {
    expect(applyDefaults(endpoints).subsets?.[0].ports).toEqual([
      { port: 80, protocol: 'TCP' },
      { port: 53, protocol: 'UDP' },
    ]);
  });

  it('gives a Secret type Opaque', () => {
    expect(applyDefaults(secret).type).toBe('Opaque');
  });

  it.each(allObjects.map((o) => [o.kind, o] as const))(
    '%s: idempotent and does not mutate input',
    (_, obj) => {
      const before = structuredClone(obj);
      const once = applyDefaults(obj);
      expect(obj).toEqual(before);
      expect(once).not.toBe(obj);
      const twice = applyDefaults(once);
      expect(twice).toEqual(once);
      expect(twice).not.toBe(once);
    },
  );

  it('leaves Namespace, ConfigMap, Event and Lease unchanged', () => {
    const unchanged = ['Namespace', 'ConfigMap', 'Event', 'Lease'];
    for (const obj of allObjects.filter((o) => unchanged.includes(o.kind))) {
      expect(applyDefaults(obj)).toEqual(obj);
    }
  });

  it('does not throw on malformed specs', () => {
    const anything = fc.jsonValue({ maxDepth: 4 });
    const kind = fc.constantFrom<ApiObject['kind']>(
      'Namespace',
      'Pod',
      'ConfigMap',
      'Secret',
      'Service',
      'ReplicaSet',
      'Deployment',
      'DaemonSet',
      'StatefulSet',
      'Job',
      'Node',
      'Endpoints',
      'Event',
      'Lease',
    );
    fc.assert(
      fc.property(kind, anything, (k, spec) => {
        const obj = {
          apiVersion: 'v1',
          kind: k,
          metadata: {},
          spec,
          status: spec,
          subsets: spec,
        } as unknown as ApiObject;
        const before = structuredClone(obj);
        const once = applyDefaults(obj);
        expect(obj).toEqual(before);
        expect(applyDefaults(once)).toEqual(once);
      }),
      { numRuns: 500 },
    );
  });
});

describe('defaultImagePullPolicy', () => {
  it.each([
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['nginx:1.27', 'IfNotPresent'],
    ['registry:5000/nginx', 'Always'],
    ['registry:5000/nginx:1.27', 'IfNotPresent'],
    ['nginx@sha256:abcd', 'IfNotPresent'],
  ])('%s → %s', (image, policy) => {
    expect(defaultImagePullPolicy(image)).toBe(policy);
  });
});

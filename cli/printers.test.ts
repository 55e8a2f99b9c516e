import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { printClusterStatus } from './cluster-status.js';
import {
  formatTable,
  objectRef,
  podStatusText,
  printNames,
  printStructured,
  printTable,
  type TableOptions,
} from './printers.js';

const now = Date.parse('2026-01-01T01:00:00Z');
const created = '2026-01-01T00:00:00Z';
const table: TableOptions = { wide: false, withNamespace: false, withKind: false, nowMs: now };

const pod = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', creationTimestamp: created },
  spec: {
    containers: [
      { name: 'a', image: 'x' },
      { name: 'b', image: 'y' },
    ],
    nodeName: 'n1',
  },
  status: {
    phase: 'Running',
    podIP: '10.0.0.7',
    containerStatuses: [
      { name: 'a', image: 'x', ready: true, restartCount: 2, state: { running: {} } },
      {
        name: 'b',
        image: 'y',
        ready: false,
        restartCount: 1,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
      },
    ],
  },
  ...extra,
});

describe('tables', () => {
  it('prints pods as NAME READY STATUS RESTARTS AGE, aligned three spaces apart', () => {
    expect(printTable('Pod', [pod('web-1'), pod('w')], table)).toBe(
      'NAME    READY   STATUS             RESTARTS   AGE\n' +
        'web-1   1/2     CrashLoopBackOff   3          60m\n' +
        'w       1/2     CrashLoopBackOff   3          60m\n',
    );
  });
  it('adds IP and NODE with wide, NAMESPACE with -A, kind/name with several kinds', () => {
    const out = printTable('Pod', [pod('p')], { ...table, wide: true, withNamespace: true, withKind: true });
    expect(out.split('\n')[0].split(/\s+/)).toEqual([
      'NAMESPACE',
      'NAME',
      'READY',
      'STATUS',
      'RESTARTS',
      'AGE',
      'IP',
      'NODE',
    ]);
    expect(out.split('\n')[1].split(/\s+/)).toEqual([
      'default',
      'pod/p',
      '1/2',
      'CrashLoopBackOff',
      '3',
      '60m',
      '10.0.0.7',
      'n1',
    ]);
  });
  it('prints deployments as NAME READY UP-TO-DATE AVAILABLE AGE', () => {
    const d = {
      kind: 'Deployment',
      metadata: { name: 'web', creationTimestamp: created },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'web' } },
        template: { spec: { containers: [{ name: 'c', image: 'nginx' }] } },
      },
      status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
    };
    expect(printTable('Deployment', [d], table)).toBe(
      'NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    2/3     3            2           60m\n',
    );
    expect(
      printTable('Deployment', [d], { ...table, wide: true })
        .split('\n')[1]
        .split(/\s+/)
        .slice(-3),
    ).toEqual(['c', 'nginx', 'app=web']);
  });
  it('prints services, configmaps and an unknown kind', () => {
    const svc = {
      kind: 'Service',
      metadata: { name: 's', creationTimestamp: created },
      spec: {
        type: 'NodePort',
        clusterIP: '10.96.0.1',
        ports: [
          { port: 80, nodePort: 30080 },
          { port: 53, protocol: 'UDP' },
        ],
      },
    };
    expect(printTable('Service', [svc], table).split('\n')[1].split(/\s+/)).toEqual([
      's',
      'NodePort',
      '10.96.0.1',
      '<none>',
      '80:30080/TCP,53/UDP',
      '60m',
    ]);
    const cm = {
      kind: 'ConfigMap',
      metadata: { name: 'c', creationTimestamp: created },
      data: { a: '1', b: '2' },
    };
    expect(printTable('ConfigMap', [cm], table)).toBe('NAME   DATA   AGE\nc      2      60m\n');
    expect(printTable('Widget', [{ metadata: { name: 'x' } }], table)).toBe('NAME   AGE\nx      <unknown>\n');
  });
  it("prints nodes as kubectl does, with the agent's system info under -o wide", () => {
    const n1 = {
      kind: 'Node',
      metadata: {
        name: 'n1',
        creationTimestamp: created,
        labels: { 'node-role.kubernetes.io/worker': '', 'node-role.kubernetes.io/edge': 'true', zone: 'a' },
      },
      spec: { unschedulable: true },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [
          { type: 'InternalIP', address: '127.0.1.1' },
          { type: 'Hostname', address: 'n1' },
        ],
        nodeInfo: {
          kubeletVersion: 'v0.1.0',
          osImage: 'Debian GNU/Linux 12 (bookworm)',
          kernelVersion: '6.1.0-18-amd64',
          containerRuntimeVersion: 'docker://20.10.24',
        },
      },
    };
    const n2 = {
      kind: 'Node',
      metadata: { name: 'n2', creationTimestamp: created, labels: { 'kubernetes.io/role': 'master' } },
      status: { conditions: [{ type: 'Ready', status: 'False' }], nodeInfo: { kubeletVersion: 'v0.1.0' } },
    };
    expect(printTable('Node', [n1, n2], table)).toBe(
      'NAME   STATUS                     ROLES         AGE   VERSION\n' +
        'n1     Ready,SchedulingDisabled   edge,worker   60m   v0.1.0\n' +
        'n2     NotReady                   master        60m   v0.1.0\n',
    );
    expect(printTable('Node', [n1, n2], { ...table, wide: true })).toBe(
      'NAME   STATUS                     ROLES         AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE                         KERNEL-VERSION   CONTAINER-RUNTIME\n' +
        'n1     Ready,SchedulingDisabled   edge,worker   60m   v0.1.0    127.0.1.1     <none>        Debian GNU/Linux 12 (bookworm)   6.1.0-18-amd64   docker://20.10.24\n' +
        'n2     NotReady                   master        60m   v0.1.0    <none>        <none>        <unknown>                        <unknown>        <unknown>\n',
    );
    expect(
      printTable('Node', [{ kind: 'Node', metadata: { name: 'bare', creationTimestamp: created } }], table),
    ).toBe('NAME   STATUS    ROLES    AGE   VERSION\nbare   Unknown   <none>   60m\n');
  });
  it('prints nothing for no objects', () => {
    expect(printTable('Pod', [], table)).toBe('');
  });
  it('does not pad the last column', () => {
    expect(
      formatTable([
        ['A', 'LONG'],
        ['BBBB', 'x'],
      ]),
    ).toBe('A      LONG\nBBBB   x\n');
  });
});

describe('pod STATUS', () => {
  it('is Terminating once deletion started, else the phase', () => {
    expect(podStatusText(pod('p', { metadata: { name: 'p', deletionTimestamp: created } }))).toBe(
      'Terminating',
    );
    expect(podStatusText({ status: { phase: 'Succeeded' } })).toBe('Succeeded');
    expect(podStatusText({})).toBe('Pending');
    expect(
      podStatusText({
        status: { phase: 'Failed', containerStatuses: [{ state: { terminated: { exitCode: 3 } } }] },
      }),
    ).toBe('ExitCode:3');
  });
});

describe('other formats', () => {
  const objs = [pod('a'), pod('b')];
  it('-o name prints kind/name lines', () => {
    expect(printNames(objs)).toBe('pod/a\npod/b\n');
    expect(objectRef({ kind: 'Deployment', metadata: { name: 'web' } })).toBe('deployment/web');
  });
  it('-o json and yaml print one object as itself and several as a List', () => {
    expect(JSON.parse(printStructured([objs[0]], 'json', false)).metadata.name).toBe('a');
    const list = parseYaml(printStructured(objs, 'yaml', false));
    expect(list.kind).toBe('List');
    expect(list.items.map((o: { metadata: { name: string } }) => o.metadata.name)).toEqual(['a', 'b']);
    expect(JSON.parse(printStructured([objs[0]], 'json', true)).kind).toBe('List');
  });
});

describe('cluster status', () => {
  it('prints ID ROLE TERM COMMIT APPLIED API WS and marks the leader', () => {
    const out = printClusterStatus({
      self: 'm2',
      leader: 'm1',
      term: 4,
      members: [
        {
          id: 'm1',
          role: 'leader',
          term: 4,
          commit: 10,
          applied: 10,
          raftAddress: 'r',
          apiAddress: 'h:1',
          wsUrl: 'ws://h:2',
        },
        { id: 'm2', role: 'follower', raftAddress: 'r', apiAddress: 'h:3', wsUrl: 'ws://h:4' },
      ],
    });
    expect(out).toBe(
      'ID    ROLE       TERM   COMMIT   APPLIED   API   WS\n' +
        'm1*   leader     4      10       10        h:1   ws://h:2\n' +
        'm2    follower   -      -        -         h:3   ws://h:4\n',
    );
  });
});

/**
 * How `cox get` prints objects: kubectl-like tables per kind (AGE from an injected "now"),
 * `-o name`, `-o json` and `-o yaml`. Pure: objects and options in, text out.
 */

import { stringify as toYaml } from 'yaml';
import { kindNames } from '../core/kind-names.js';
import { formatAge } from './age.js';

type Obj = Record<string, unknown>;

/** The value at a dotted path, or undefined. */
function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Obj)[part];
  }
  return cur;
}

const str = (v: unknown, none = '<none>'): string =>
  v === undefined || v === null || v === '' ? none : String(v);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const record = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};

/** `deployment/web`: the lowercase Kind and the name, as kubectl's `-o name` prints it. */
export function objectRef(obj: unknown): string {
  return `${str(at(obj, 'kind'), 'unknown').toLowerCase()}/${str(at(obj, 'metadata.name'), '')}`;
}

/** `deployment/web` for a kind and a name. */
export function refOf(kind: string, name: string): string {
  return `${kind.toLowerCase()}/${name}`;
}

export interface Column {
  header: string;
  /** Shown with `-o wide` only. */
  wide?: boolean;
  value(obj: Obj, nowMs: number): string;
}

const ageColumn: Column = {
  header: 'AGE',
  value: (o, now) => formatAge(at(o, 'metadata.creationTimestamp') as string | undefined, now),
};

function selectorText(sel: unknown): string {
  const labels = record(at(sel, 'matchLabels'));
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${String(v)}`);
  for (const e of list(at(sel, 'matchExpressions'))) {
    const key = str(at(e, 'key'), '');
    const op = str(at(e, 'operator'), '');
    const values = list(at(e, 'values')).map(String).join(',');
    if (op === 'Exists') parts.push(key);
    else if (op === 'DoesNotExist') parts.push(`!${key}`);
    else parts.push(`${key} ${op.toLowerCase()} (${values})`);
  }
  return parts.length === 0 ? '<none>' : parts.join(',');
}

const templateColumns: Column[] = [
  {
    header: 'CONTAINERS',
    wide: true,
    value: (o) =>
      str(
        list(at(o, 'spec.template.spec.containers'))
          .map((c) => str(at(c, 'name'), ''))
          .join(','),
      ),
  },
  {
    header: 'IMAGES',
    wide: true,
    value: (o) =>
      str(
        list(at(o, 'spec.template.spec.containers'))
          .map((c) => str(at(c, 'image'), ''))
          .join(','),
      ),
  },
  { header: 'SELECTOR', wide: true, value: (o) => selectorText(at(o, 'spec.selector')) },
];

/** kubectl's pod STATUS: Terminating, else the most telling container reason, else the phase. */
export function podStatusText(pod: Obj): string {
  if (at(pod, 'metadata.deletionTimestamp') !== undefined) return 'Terminating';
  let reason = str(at(pod, 'status.reason'), '') || str(at(pod, 'status.phase'), 'Pending');
  let running = false;
  const statuses = list(at(pod, 'status.containerStatuses'));
  for (let i = statuses.length - 1; i >= 0; i--) {
    const s = statuses[i];
    const waiting = at(s, 'state.waiting.reason');
    const terminated = at(s, 'state.terminated');
    if (typeof waiting === 'string' && waiting !== '') reason = waiting;
    else if (terminated !== undefined) {
      const r = at(terminated, 'reason');
      reason = typeof r === 'string' && r !== '' ? r : `ExitCode:${num(at(terminated, 'exitCode'))}`;
    } else if (at(s, 'ready') === true && at(s, 'state.running') !== undefined) running = true;
  }
  if (reason === 'Completed' && running) reason = 'Running';
  return reason;
}

const podColumns: Column[] = [
  {
    header: 'READY',
    value: (o) => {
      const total = list(at(o, 'spec.containers')).length;
      const ready = list(at(o, 'status.containerStatuses')).filter((s) => at(s, 'ready') === true).length;
      return `${ready}/${total}`;
    },
  },
  { header: 'STATUS', value: podStatusText },
  {
    header: 'RESTARTS',
    value: (o) =>
      String(
        list(at(o, 'status.containerStatuses')).reduce<number>((n, s) => n + num(at(s, 'restartCount')), 0),
      ),
  },
  ageColumn,
  { header: 'IP', wide: true, value: (o) => str(at(o, 'status.podIP')) },
  { header: 'NODE', wide: true, value: (o) => str(at(o, 'spec.nodeName')) },
];

const replicas = (o: Obj) => (at(o, 'spec.replicas') === undefined ? 1 : num(at(o, 'spec.replicas')));

const deploymentColumns: Column[] = [
  { header: 'READY', value: (o) => `${num(at(o, 'status.readyReplicas'))}/${replicas(o)}` },
  { header: 'UP-TO-DATE', value: (o) => String(num(at(o, 'status.updatedReplicas'))) },
  { header: 'AVAILABLE', value: (o) => String(num(at(o, 'status.availableReplicas'))) },
  ageColumn,
  ...templateColumns,
];

const replicaSetColumns: Column[] = [
  { header: 'DESIRED', value: (o) => String(replicas(o)) },
  { header: 'CURRENT', value: (o) => String(num(at(o, 'status.replicas'))) },
  { header: 'READY', value: (o) => String(num(at(o, 'status.readyReplicas'))) },
  ageColumn,
  ...templateColumns,
];

const statefulSetColumns: Column[] = [
  { header: 'READY', value: (o) => `${num(at(o, 'status.readyReplicas'))}/${replicas(o)}` },
  ageColumn,
  ...templateColumns.slice(0, 2),
];

const daemonSetColumns: Column[] = [
  { header: 'DESIRED', value: (o) => String(num(at(o, 'status.desiredNumberScheduled'))) },
  { header: 'CURRENT', value: (o) => String(num(at(o, 'status.currentNumberScheduled'))) },
  { header: 'READY', value: (o) => String(num(at(o, 'status.numberReady'))) },
  { header: 'UP-TO-DATE', value: (o) => String(num(at(o, 'status.updatedNumberScheduled'))) },
  { header: 'AVAILABLE', value: (o) => String(num(at(o, 'status.numberAvailable'))) },
  ageColumn,
  ...templateColumns,
];

const jobColumns: Column[] = [
  {
    header: 'COMPLETIONS',
    value: (o) =>
      `${num(at(o, 'status.succeeded'))}/${at(o, 'spec.completions') === undefined ? 1 : num(at(o, 'spec.completions'))}`,
  },
  ageColumn,
  ...templateColumns.slice(0, 2),
];

function portsText(o: Obj): string {
  const ports = list(at(o, 'spec.ports')).map((p) => {
    const node = at(p, 'nodePort');
    return `${num(at(p, 'port'))}${node === undefined ? '' : `:${num(node)}`}/${str(at(p, 'protocol'), 'TCP')}`;
  });
  return str(ports.join(','));
}

const serviceColumns: Column[] = [
  { header: 'TYPE', value: (o) => str(at(o, 'spec.type'), 'ClusterIP') },
  { header: 'CLUSTER-IP', value: (o) => str(at(o, 'spec.clusterIP')) },
  { header: 'EXTERNAL-IP', value: () => '<none>' },
  { header: 'PORT(S)', value: portsText },
  ageColumn,
  {
    header: 'SELECTOR',
    wide: true,
    value: (o) =>
      str(
        Object.entries(record(at(o, 'spec.selector')))
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(','),
      ),
  },
];

const dataCount = (o: Obj) => Object.keys(record(o.data)).length + Object.keys(record(o.binaryData)).length;

/** A node address of `type` (InternalIP, ExternalIP...), or `<none>`. */
function nodeAddress(o: Obj, type: string): string {
  return str(
    at(
      list(at(o, 'status.addresses')).find((a) => at(a, 'type') === type),
      'address',
    ),
  );
}

const nodeRolePrefix = 'node-role.kubernetes.io/';

/** kubectl's ROLES: `node-role.kubernetes.io/<role>` label names and `kubernetes.io/role` values. */
export function nodeRoles(o: Obj): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(record(at(o, 'metadata.labels')))) {
    if (key.startsWith(nodeRolePrefix) && key.length > nodeRolePrefix.length)
      roles.add(key.slice(nodeRolePrefix.length));
    else if (key === 'kubernetes.io/role' && value !== '') roles.add(String(value));
  }
  return roles.size === 0 ? '<none>' : [...roles].sort().join(',');
}

const nodeColumns: Column[] = [
  {
    header: 'STATUS',
    value: (o) => {
      const ready = list(at(o, 'status.conditions')).find((c) => at(c, 'type') === 'Ready');
      const base = at(ready, 'status') === 'True' ? 'Ready' : ready === undefined ? 'Unknown' : 'NotReady';
      return at(o, 'spec.unschedulable') === true ? `${base},SchedulingDisabled` : base;
    },
  },
  { header: 'ROLES', value: nodeRoles },
  ageColumn,
  { header: 'VERSION', value: (o) => str(at(o, 'status.nodeInfo.kubeletVersion'), '') },
  { header: 'INTERNAL-IP', wide: true, value: (o) => nodeAddress(o, 'InternalIP') },
  { header: 'EXTERNAL-IP', wide: true, value: (o) => nodeAddress(o, 'ExternalIP') },
  { header: 'OS-IMAGE', wide: true, value: (o) => str(at(o, 'status.nodeInfo.osImage'), '<unknown>') },
  {
    header: 'KERNEL-VERSION',
    wide: true,
    value: (o) => str(at(o, 'status.nodeInfo.kernelVersion'), '<unknown>'),
  },
  {
    header: 'CONTAINER-RUNTIME',
    wide: true,
    value: (o) => str(at(o, 'status.nodeInfo.containerRuntimeVersion'), '<unknown>'),
  },
];

const cronJobColumns: Column[] = [
  { header: 'SCHEDULE', value: (o) => str(at(o, 'spec.schedule')) },
  { header: 'SUSPEND', value: (o) => String(at(o, 'spec.suspend') === true) },
  { header: 'ACTIVE', value: (o) => String(list(at(o, 'status.active')).length) },
  {
    header: 'LAST SCHEDULE',
    value: (o, now) => {
      const t = at(o, 'status.lastScheduleTime');
      return typeof t === 'string' ? formatAge(t, now) : '<none>';
    },
  },
  ageColumn,
];

/** `used/hard` of each resource of a quota, requests and limits apart as kubectl shows them. */
function quotaText(o: Obj, filter: (name: string) => boolean): string {
  const hard = record(at(o, 'spec.hard'));
  const used = record(at(o, 'status.used'));
  const parts = Object.keys(hard)
    .filter(filter)
    .sort()
    .map((k) => `${k}: ${str(used[k], '0')}/${str(hard[k])}`);
  return parts.join(', ');
}

const endpointSliceColumns: Column[] = [
  { header: 'ADDRESSTYPE', value: (o) => str(o.addressType) },
  {
    header: 'PORTS',
    value: (o) =>
      str(
        list(o.ports)
          .map((p) => num(at(p, 'port')))
          .join(','),
      ),
  },
  {
    header: 'ENDPOINTS',
    value: (o) =>
      str(
        list(o.endpoints)
          .flatMap((e) => list(at(e, 'addresses')).map(String))
          .join(','),
      ),
  },
  ageColumn,
];

/** The columns after NAME (and NAMESPACE) for each kind; unknown kinds get AGE only. */
const columnsByKind: Readonly<Record<string, readonly Column[]>> = {
  Pod: podColumns,
  Deployment: deploymentColumns,
  ReplicaSet: replicaSetColumns,
  StatefulSet: statefulSetColumns,
  DaemonSet: daemonSetColumns,
  Job: jobColumns,
  Service: serviceColumns,
  ConfigMap: [{ header: 'DATA', value: (o) => String(dataCount(o)) }, ageColumn],
  Secret: [
    { header: 'TYPE', value: (o) => str(o.type, 'Opaque') },
    { header: 'DATA', value: (o) => String(dataCount(o)) },
    ageColumn,
  ],
  Namespace: [{ header: 'STATUS', value: (o) => str(at(o, 'status.phase'), 'Active') }, ageColumn],
  Node: nodeColumns,
  Lease: [{ header: 'HOLDER', value: (o) => str(at(o, 'spec.holderIdentity'), '') }, ageColumn],
  CronJob: cronJobColumns,
  ResourceQuota: [
    ageColumn,
    { header: 'REQUEST', value: (o) => quotaText(o, (k) => !k.startsWith('limits.')) },
    { header: 'LIMIT', value: (o) => quotaText(o, (k) => k.startsWith('limits.')) },
  ],
  EndpointSlice: endpointSliceColumns,
  ControllerRevision: [
    {
      header: 'CONTROLLER',
      value: (o) => {
        const owner = list(at(o, 'metadata.ownerReferences')).find((r) => at(r, 'controller') === true);
        return owner === undefined
          ? '<none>'
          : `${str(at(owner, 'kind'), '').toLowerCase()}.apps/${str(at(owner, 'name'), '')}`;
      },
    },
    { header: 'REVISION', value: (o) => String(num(o.revision)) },
    ageColumn,
  ],
};

export function columnsFor(kind: string, wide: boolean): Column[] {
  const cols = columnsByKind[kind] ?? [ageColumn];
  return cols.filter((c) => wide || !c.wide);
}

export interface TableOptions {
  wide: boolean;
  /** `-A`: a NAMESPACE column first. */
  withNamespace: boolean;
  /** Several kinds in one `get`: NAME is `kind/name`. */
  withKind: boolean;
  nowMs: number;
}

/** Header cells then one row of cells per object. */
export function tableHeader(kind: string, opts: TableOptions): string[] {
  const head = opts.withNamespace ? ['NAMESPACE', 'NAME'] : ['NAME'];
  return [...head, ...columnsFor(kind, opts.wide).map((c) => c.header)];
}

export function tableRow(kind: string, obj: Obj, opts: TableOptions): string[] {
  const name = opts.withKind ? objectRef(obj) : str(at(obj, 'metadata.name'), '');
  const head = opts.withNamespace ? [str(at(obj, 'metadata.namespace'), ''), name] : [name];
  return [...head, ...columnsFor(kind, opts.wide).map((c) => c.value(obj, opts.nowMs))];
}

/** Aligns cells into columns three spaces apart (kubectl's tabwriter); no trailing spaces. */
export function formatTable(rows: readonly (readonly string[])[], widths?: number[]): string {
  const w = widths ?? columnWidths(rows);
  return rows
    .map((cells) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i] ?? c.length)))
        .join('   ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const w: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) w[i] = Math.max(w[i] ?? 0, c.length);
  }
  return w;
}

/** A whole table for objects of one kind (header included). Empty input: empty string. */
export function printTable(kind: string, objects: readonly Obj[], opts: TableOptions): string {
  if (objects.length === 0) return '';
  return formatTable([tableHeader(kind, opts), ...objects.map((o) => tableRow(kind, o, opts))]);
}

/** `-o json|yaml`: one object as itself, several (or a list request) as a `List`. */
export function printStructured(objects: readonly Obj[], format: 'json' | 'yaml', asList: boolean): string {
  const value =
    asList || objects.length !== 1 ? { apiVersion: 'v1', kind: 'List', items: objects } : objects[0];
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value);
}

/** `-o name`: one `kind/name` a line. */
export function printNames(objects: readonly Obj[]): string {
  return objects.map((o) => `${objectRef(o)}\n`).join('');
}

/** `No resources found in default namespace.` as kubectl says it (on stderr). */
export function noResourcesMessage(namespace: string | undefined): string {
  return namespace === undefined ? 'No resources found' : `No resources found in ${namespace} namespace.`;
}

/** The plural of a Kind for messages (`deployments`). */
export function pluralOf(kind: string): string {
  const names: Readonly<Record<string, { plural: string } | undefined>> = kindNames;
  return names[kind]?.plural ?? `${kind.toLowerCase()}s`;
}

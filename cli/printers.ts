/**
 * How `cox get` prints objects: kubectl-like tables per kind (AGE from an injected "now"),
 * `-o name`, `-o json` and `-o yaml`. Pure: objects and options in, text out.
 */

import { stringify as toYaml } from 'yaml';
import { kindNames } from '../core/kind-names.js';
import { formatAge, formatDuration } from './age.js';

export type Obj = Record<string, unknown>;

/** The value at a dotted path, or undefined. */
export function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Obj)[part];
  }
  return cur;
}

export const str = (v: unknown, none = '<none>'): string =>
  v === undefined || v === null || v === '' ? none : String(v);
export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const record = (v: unknown): Obj =>
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
  {
    header: 'NODE SELECTOR',
    value: (o) =>
      str(
        Object.entries(record(at(o, 'spec.template.spec.nodeSelector')))
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(','),
      ),
  },
  ageColumn,
  ...templateColumns,
];

/** kubectl's Job STATUS: the finished condition, else Suspended, Terminating or Running. */
function jobStatusText(o: Obj): string {
  const conditions = list(at(o, 'status.conditions'));
  const isTrue = (type: string) =>
    conditions.some((c) => at(c, 'type') === type && at(c, 'status') === 'True');
  if (isTrue('Complete')) return 'Complete';
  if (isTrue('Failed')) return 'Failed';
  if (at(o, 'metadata.deletionTimestamp') !== undefined) return 'Terminating';
  if (isTrue('FailureTarget')) return 'FailureTarget';
  if (isTrue('SuccessCriteriaMet')) return 'SuccessCriteriaMet';
  if (isTrue('Suspended')) return 'Suspended';
  return 'Running';
}

const jobColumns: Column[] = [
  { header: 'STATUS', value: jobStatusText },
  {
    header: 'COMPLETIONS',
    value: (o) => {
      const succeeded = num(at(o, 'status.succeeded'));
      const completions = at(o, 'spec.completions');
      // A work queue: kubectl shows how many of the parallel pods must succeed (one).
      if (completions === undefined) {
        const parallelism = num(at(o, 'spec.parallelism'));
        return parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`;
      }
      return `${succeeded}/${num(completions)}`;
    },
  },
  {
    header: 'DURATION',
    value: (o, now) => {
      const start = Date.parse(str(at(o, 'status.startTime'), ''));
      if (Number.isNaN(start)) return '';
      const end = Date.parse(str(at(o, 'status.completionTime'), ''));
      return formatDuration((Number.isNaN(end) ? now : end) - start);
    },
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
  { header: 'TIMEZONE', value: (o) => str(at(o, 'spec.timeZone')) },
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
/** kubectl's ENDPOINTS: `ip:port` pairs of the ready addresses, the first three then `+ N more...`. */
export function endpointsText(o: Obj): string {
  const pairs: string[] = [];
  for (const subset of list(o.subsets)) {
    const ports = list(at(subset, 'ports'));
    for (const a of list(at(subset, 'addresses'))) {
      if (ports.length === 0) pairs.push(str(at(a, 'ip'), ''));
      for (const p of ports) pairs.push(`${str(at(a, 'ip'), '')}:${num(at(p, 'port'))}`);
    }
  }
  if (pairs.length === 0) return '<none>';
  return pairs.length > 3 ? `${pairs.slice(0, 3).join(',')} + ${pairs.length - 3} more...` : pairs.join(',');
}

const endpointsColumns: Column[] = [
  { header: 'ENDPOINTS', value: endpointsText },
  ageColumn,
  {
    header: 'NOT-READY',
    wide: true,
    value: (o) =>
      str(
        list(o.subsets)
          .flatMap((s) => list(at(s, 'notReadyAddresses')).map((a) => str(at(a, 'ip'), '')))
          .join(','),
      ),
  },
];

const columnsByKind: Readonly<Record<string, readonly Column[]>> = {
  Pod: podColumns,
  Endpoints: endpointsColumns,
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

// ---------------------------------------------------------------- rollout history

/** `rollout history`: the object, then REVISION and CHANGE-CAUSE per revision (oldest first). */
export function printRolloutHistory(
  ref: string,
  revisions: readonly { revision: string; changeCause?: string }[],
): string {
  if (revisions.length === 0) return 'No rollout history found.\n';
  const rows = revisions.map((r) => [r.revision, str(r.changeCause)]);
  return `${ref}\n${formatTable([['REVISION', 'CHANGE-CAUSE'], ...rows])}`;
}

/** `key=value` lines for a map, the first after `label`, the rest tab-indented (kubectl describe). */
function mapLines(indent: string, label: string, values: unknown, sep: string): string {
  const entries = Object.entries(record(values)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return `${indent}${label}:\t<none>\n`;
  return entries
    .map(([k, v], i) => `${i === 0 ? `${indent}${label}:\t` : '\t'}${k}${sep}${String(v)}\n`)
    .join('');
}

/** A pod template as `kubectl describe` prints one (`rollout history --revision N`). */
export function describePodTemplate(template: unknown): string {
  const lines = ['Pod Template:\n'];
  lines.push(mapLines('  ', 'Labels', at(template, 'metadata.labels'), '='));
  lines.push(mapLines('  ', 'Annotations', at(template, 'metadata.annotations'), ': '));
  const section = (title: string, containers: unknown[]) => {
    if (containers.length === 0) return;
    lines.push(`  ${title}:\n`);
    for (const c of containers) {
      lines.push(`   ${str(at(c, 'name'), '')}:\n`);
      lines.push(`    Image:\t${str(at(c, 'image'))}\n`);
      const ports = list(at(c, 'ports')).map(
        (p) => `${num(at(p, 'containerPort'))}/${str(at(p, 'protocol'), 'TCP')}`,
      );
      lines.push(`    Port${ports.length > 1 ? 's' : ''}:\t${str(ports.join(', '))}\n`);
      for (const field of ['command', 'args'] as const) {
        const words = list(at(c, field)).map(String);
        if (words.length === 0) continue;
        lines.push(`    ${field === 'command' ? 'Command' : 'Args'}:\n`);
        for (const w of words) lines.push(`      ${w}\n`);
      }
      const env = list(at(c, 'env'));
      if (env.length === 0) lines.push('    Environment:\t<none>\n');
      else {
        lines.push('    Environment:\n');
        for (const e of env) {
          const from = at(e, 'valueFrom');
          lines.push(
            `      ${str(at(e, 'name'), '')}:\t${from === undefined ? str(at(e, 'value'), '') : '<set from a reference>'}\n`,
          );
        }
      }
      const mounts = list(at(c, 'volumeMounts')).map(
        (m) =>
          `${str(at(m, 'mountPath'), '')} from ${str(at(m, 'name'), '')} (${at(m, 'readOnly') === true ? 'ro' : 'rw'})`,
      );
      if (mounts.length === 0) lines.push('    Mounts:\t<none>\n');
      else lines.push(`    Mounts:\n${mounts.map((m) => `      ${m}\n`).join('')}`);
    }
  };
  section('Init Containers', list(at(template, 'spec.initContainers')));
  section('Containers', list(at(template, 'spec.containers')));
  const volumes = list(at(template, 'spec.volumes')).map((v) => str(at(v, 'name'), ''));
  lines.push(`  Volumes:\t${str(volumes.join(', '))}\n`);
  return lines.join('');
}

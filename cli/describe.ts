/**
 * `cox describe` and `cox events`: an object in words as kubectl describes it — its fields,
 * the objects related to it (a Deployment's ReplicaSets, a workload's pods, a node's pods, a
 * service's endpoints, a namespace's quotas) and its events. Fetching is in `runDescribe`;
 * the text is built by pure functions of the fetched objects and "now".
 */

import { stringify as toYaml } from 'yaml';
import type { ObjectApi } from '../actors/api.js';
import { isApiError } from '../actors/api.js';
import { formatAge, formatDuration } from './age.js';
import { isNamespaced } from './apply.js';
import { describeError, UsageError } from './errors.js';
import type { Output } from './get.js';
import type { ResourceTargets } from './options.js';
import { at, formatTable, list, num, type Obj, podStatusText, record, refOf, str } from './printers.js';

/**
 * Lines of `Key:  value` as kubectl's describe writer: the values of the fields at one
 * indentation line up (a tab writer per level), nested blocks are indented by two.
 */
class Writer {
  private readonly lines: (
    | { kind: 'field'; indent: number; key: string; value: string }
    | { kind: 'text'; text: string }
  )[] = [];
  field(key: string, value: string, indent = 0): void {
    this.lines.push({ kind: 'field', indent, key, value });
  }
  line(text: string, indent = 0): void {
    this.lines.push({ kind: 'text', text: `${' '.repeat(indent)}${text}`.trimEnd() });
  }
  table(rows: string[][], indent = 2): void {
    for (const l of formatTable(rows).split('\n')) if (l !== '') this.line(l, indent);
  }
  text(): string {
    const width = new Map<number, number>();
    for (const l of this.lines) {
      if (l.kind === 'field') width.set(l.indent, Math.max(width.get(l.indent) ?? 0, l.key.length + 2));
    }
    const out: string[] = [];
    for (const l of this.lines) {
      if (l.kind === 'text') {
        out.push(l.text);
        continue;
      }
      const pad = ' '.repeat(l.indent);
      const w = (width.get(l.indent) ?? 0) + 1;
      const [first, ...rest] = l.value.split('\n');
      out.push(`${pad}${`${l.key}:`.padEnd(w)}${first}`.trimEnd());
      for (const r of rest) out.push(`${pad}${' '.repeat(w)}${r}`.trimEnd());
    }
    return `${out.join('\n')}\n`;
  }
}

function mapText(m: unknown, sep = '='): string {
  const entries = Object.entries(record(m));
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}${sep}${String(v)}`).join('\n');
}

function selectorText(sel: unknown): string {
  const parts = Object.entries(record(at(sel, 'matchLabels'))).map(([k, v]) => `${k}=${String(v)}`);
  for (const e of list(at(sel, 'matchExpressions'))) {
    const op = str(at(e, 'operator'), '');
    const key = str(at(e, 'key'), '');
    if (op === 'Exists') parts.push(key);
    else if (op === 'DoesNotExist') parts.push(`!${key}`);
    else parts.push(`${key} ${op.toLowerCase()} (${list(at(e, 'values')).map(String).join(',')})`);
  }
  return parts.length === 0 ? '<none>' : parts.join(',');
}

function controlledBy(obj: Obj): string | undefined {
  const ref = list(at(obj, 'metadata.ownerReferences')).find((r) => at(r, 'controller') === true);
  return ref === undefined ? undefined : `${str(at(ref, 'kind'), '')}/${str(at(ref, 'name'), '')}`;
}

function header(w: Writer, obj: Obj, nowMs: number): void {
  w.field('Name', str(at(obj, 'metadata.name'), ''));
  if (at(obj, 'metadata.namespace') !== undefined) w.field('Namespace', str(at(obj, 'metadata.namespace')));
  w.field('Labels', mapText(at(obj, 'metadata.labels')));
  const annotations = Object.fromEntries(
    Object.entries(record(at(obj, 'metadata.annotations'))).filter(
      ([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration',
    ),
  );
  w.field('Annotations', mapText(annotations, ': '));
  const created = at(obj, 'metadata.creationTimestamp');
  if (typeof created === 'string')
    w.field('CreationTimestamp', `${created} (${formatAge(created, nowMs)} ago)`);
  const deleting = at(obj, 'metadata.deletionTimestamp');
  if (typeof deleting === 'string') {
    w.field(
      'Terminating',
      `since ${deleting} (grace ${num(at(obj, 'metadata.deletionGracePeriodSeconds'))}s)`,
    );
  }
  const finalizers = list(at(obj, 'metadata.finalizers'));
  if (finalizers.length > 0) w.field('Finalizers', finalizers.map(String).join(', '));
  const owner = controlledBy(obj);
  if (owner !== undefined) w.field('Controlled By', owner);
}

function conditionsTable(w: Writer, conditions: unknown, withReason = true): void {
  const cs = list(conditions);
  if (cs.length === 0) return;
  w.line('Conditions:');
  const head = withReason ? ['Type', 'Status', 'Reason', 'Message'] : ['Type', 'Status'];
  const rows = cs.map((c) =>
    withReason
      ? [
          str(at(c, 'type'), ''),
          str(at(c, 'status'), ''),
          str(at(c, 'reason'), ''),
          str(at(c, 'message'), ''),
        ]
      : [str(at(c, 'type'), ''), str(at(c, 'status'), '')],
  );
  w.table([head, ...rows]);
}

function probeText(p: unknown): string {
  const target = at(p, 'httpGet')
    ? `http-get ${str(at(p, 'httpGet.scheme'), 'http').toLowerCase()}://:${str(at(p, 'httpGet.port'), '')}${str(at(p, 'httpGet.path'), '/')}`
    : at(p, 'tcpSocket')
      ? `tcp-socket :${str(at(p, 'tcpSocket.port'), '')}`
      : `exec [${list(at(p, 'exec.command')).map(String).join(' ')}]`;
  return `${target} delay=${num(at(p, 'initialDelaySeconds'))}s timeout=${num(at(p, 'timeoutSeconds')) || 1}s period=${num(at(p, 'periodSeconds')) || 10}s #success=${num(at(p, 'successThreshold')) || 1} #failure=${num(at(p, 'failureThreshold')) || 3}`;
}

function stateText(w: Writer, label: string, state: unknown, indent: number): void {
  const s = record(state);
  if (s.running !== undefined) {
    w.field(label, 'Running', indent);
    w.field('Started', str(at(s, 'running.startedAt')), indent + 2);
  } else if (s.terminated !== undefined) {
    w.field(label, 'Terminated', indent);
    w.field('Reason', str(at(s, 'terminated.reason')), indent + 2);
    if (at(s, 'terminated.message') !== undefined)
      w.field('Message', str(at(s, 'terminated.message')), indent + 2);
    w.field('Exit Code', String(num(at(s, 'terminated.exitCode'))), indent + 2);
    w.field('Started', str(at(s, 'terminated.startedAt')), indent + 2);
    w.field('Finished', str(at(s, 'terminated.finishedAt')), indent + 2);
  } else if (s.waiting !== undefined) {
    w.field(label, 'Waiting', indent);
    w.field('Reason', str(at(s, 'waiting.reason')), indent + 2);
    if (at(s, 'waiting.message') !== undefined) w.field('Message', str(at(s, 'waiting.message')), indent + 2);
  } else {
    w.field(label, '<none>', indent);
  }
}

function containersBlock(w: Writer, title: string, containers: unknown, statuses: unknown, indent = 0): void {
  const cs = list(containers);
  if (cs.length === 0) return;
  w.line(`${title}:`, indent);
  for (const c of cs) {
    const name = str(at(c, 'name'), '');
    const st = list(statuses).find((s) => at(s, 'name') === name);
    w.line(`${name}:`, indent + 2);
    const i = indent + 4;
    if (st !== undefined && at(st, 'containerID') !== undefined)
      w.field('Container ID', str(at(st, 'containerID')), i);
    w.field('Image', str(at(c, 'image')), i);
    const ports = list(at(c, 'ports')).map(
      (p) => `${num(at(p, 'containerPort'))}/${str(at(p, 'protocol'), 'TCP')}`,
    );
    w.field('Port', ports.length === 0 ? '<none>' : ports.join(', '), i);
    if (list(at(c, 'command')).length > 0)
      w.field('Command', list(at(c, 'command')).map(String).join('\n'), i);
    if (list(at(c, 'args')).length > 0) w.field('Args', list(at(c, 'args')).map(String).join('\n'), i);
    if (st !== undefined) {
      stateText(w, 'State', at(st, 'state'), i);
      if (Object.keys(record(at(st, 'lastState'))).length > 0)
        stateText(w, 'Last State', at(st, 'lastState'), i);
      w.field('Ready', String(at(st, 'ready') === true), i);
      w.field('Restart Count', String(num(at(st, 'restartCount'))), i);
    }
    const limits = record(at(c, 'resources.limits'));
    const requests = record(at(c, 'resources.requests'));
    if (Object.keys(limits).length > 0) w.field('Limits', mapText(limits, ': '), i);
    if (Object.keys(requests).length > 0) w.field('Requests', mapText(requests, ': '), i);
    for (const [field, label] of [
      ['livenessProbe', 'Liveness'],
      ['readinessProbe', 'Readiness'],
      ['startupProbe', 'Startup'],
    ] as const) {
      if (at(c, field) !== undefined) w.field(label, probeText(at(c, field)), i);
    }
    const env = list(at(c, 'env')).map((e) => {
      const from = at(e, 'valueFrom');
      const value =
        from === undefined
          ? str(at(e, 'value'), '')
          : at(from, 'configMapKeyRef')
            ? `<set to the key '${str(at(from, 'configMapKeyRef.key'), '')}' of config map '${str(at(from, 'configMapKeyRef.name'), '')}'>`
            : at(from, 'secretKeyRef')
              ? `<set to the key '${str(at(from, 'secretKeyRef.key'), '')}' in secret '${str(at(from, 'secretKeyRef.name'), '')}'>`
              : at(from, 'fieldRef')
                ? `(${str(at(from, 'fieldRef.fieldPath'), '')})`
                : '<set from a resource>';
      return `${str(at(e, 'name'), '')}: ${value}`;
    });
    w.field('Environment', env.length === 0 ? '<none>' : env.join('\n'), i);
    const mounts = list(at(c, 'volumeMounts')).map(
      (m) =>
        `${str(at(m, 'mountPath'), '')} from ${str(at(m, 'name'), '')} (${at(m, 'readOnly') === true ? 'ro' : 'rw'})`,
    );
    w.field('Mounts', mounts.length === 0 ? '<none>' : mounts.join('\n'), i);
  }
}

function volumesBlock(w: Writer, volumes: unknown): void {
  const vs = list(volumes);
  if (vs.length === 0) return;
  w.line('Volumes:');
  for (const v of vs) {
    w.line(`${str(at(v, 'name'), '')}:`, 2);
    const source = Object.keys(record(v)).find((k) => k !== 'name') ?? 'unknown';
    const detail = record(at(v, source));
    w.field('Type', source, 4);
    for (const [k, val] of Object.entries(detail)) {
      if (typeof val !== 'object') w.field(k, String(val), 4);
    }
  }
}

function tolerationsText(tolerations: unknown): string {
  const ts = list(tolerations).map((t) => {
    const key = str(at(t, 'key'), '');
    const op = str(at(t, 'operator'), 'Equal');
    const value = op === 'Exists' ? '' : `=${str(at(t, 'value'), '')}`;
    const effect = at(t, 'effect') ? `:${str(at(t, 'effect'), '')}` : '';
    const secs = at(t, 'tolerationSeconds') !== undefined ? ` for ${num(at(t, 'tolerationSeconds'))}s` : '';
    return `${key === '' ? '<all>' : key}${value}${effect}${op === 'Exists' && key !== '' ? ' op=Exists' : ''}${secs}`;
  });
  return ts.length === 0 ? '<none>' : ts.join('\n');
}

function podTemplateBlock(w: Writer, template: unknown): void {
  w.line('Pod Template:');
  w.field('Labels', mapText(at(template, 'metadata.labels')), 2);
  containersBlock(w, 'Containers', at(template, 'spec.containers'), undefined, 2);
  if (list(at(template, 'spec.initContainers')).length > 0) {
    containersBlock(w, 'Init Containers', at(template, 'spec.initContainers'), undefined, 2);
  }
}

function podsStatusText(pods: readonly Obj[]): string {
  const count = (phase: string) => pods.filter((p) => str(at(p, 'status.phase'), 'Pending') === phase).length;
  return `${count('Running')} Running / ${count('Pending')} Waiting / ${count('Succeeded')} Succeeded / ${count('Failed')} Failed`;
}

/** A resource quantity in base units (cpu cores, memory bytes) for sums; 0 when absent or unparsable. */
function quantityValue(q: unknown): number {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return 0;
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) return 0;
  const scale: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  return Number(m[1]) * (m[2] ? (scale[m[2]] ?? 1) : 1);
}

function sumContainers(pod: unknown, field: string, resource: string): number {
  return list(at(pod, 'spec.containers')).reduce<number>(
    (n, c) => n + quantityValue(at(c, `resources.${field}.${resource}`)),
    0,
  );
}

const cpuText = (cores: number) => `${Math.round(cores * 1000)}m`;
const memText = (bytes: number) => (bytes === 0 ? '0' : `${Math.round(bytes / 1024 ** 2)}Mi`);
const percent = (used: number, total: number) => (total > 0 ? ` (${Math.round((used / total) * 100)}%)` : '');

/** The related objects and events `describe` prints with an object. */
export interface Related {
  events: Obj[];
  pods?: Obj[];
  replicaSets?: Obj[];
  endpoints?: Obj;
  quotas?: Obj[];
  limitRanges?: Obj[];
  lease?: Obj;
}

/** kubectl's events table: Type, Reason, Age (`3m (x4 over 5m)`), From, Message, oldest first. */
export function eventsBlock(events: readonly Obj[], nowMs: number): string {
  if (events.length === 0) return 'Events:  <none>\n';
  const rows = sortEvents(events).map((e) => {
    const last = str(at(e, 'lastTimestamp') ?? at(e, 'metadata.creationTimestamp'), '');
    const first = str(at(e, 'firstTimestamp') ?? last, '');
    const count = num(at(e, 'count')) || 1;
    const age =
      count > 1
        ? `${formatAge(last, nowMs)} (x${count} over ${formatDuration(Date.parse(last) - Date.parse(first))})`
        : formatAge(last, nowMs);
    return [
      str(at(e, 'type'), 'Normal'),
      str(at(e, 'reason'), ''),
      age,
      str(at(e, 'source.component') ?? at(e, 'reportingComponent'), ''),
      str(at(e, 'message'), ''),
    ];
  });
  const w = new Writer();
  w.line('Events:');
  w.table([
    ['Type', 'Reason', 'Age', 'From', 'Message'],
    ['----', '------', '----', '----', '-------'],
    ...rows,
  ]);
  return w.text();
}

export function sortEvents(events: readonly Obj[]): Obj[] {
  const t = (e: Obj) => str(at(e, 'lastTimestamp') ?? at(e, 'metadata.creationTimestamp'), '');
  return [...events].sort((a, b) => (t(a) < t(b) ? -1 : t(a) > t(b) ? 1 : 0));
}

/** The description of one object (without its events). Pure. */
export function describeObject(obj: Obj, related: Related, nowMs: number): string {
  const w = new Writer();
  const kind = str(obj.kind, '');
  header(w, obj, nowMs);
  switch (kind) {
    case 'Pod':
      describePod(w, obj);
      break;
    case 'Deployment':
      describeDeployment(w, obj, related);
      break;
    case 'ReplicaSet':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'Job':
      describeWorkload(w, obj, related);
      break;
    case 'Node':
      describeNode(w, obj, related, nowMs);
      break;
    case 'Service':
      describeService(w, obj, related);
      break;
    case 'Namespace':
      describeNamespace(w, obj, related);
      break;
    default: {
      const body = { ...obj };
      delete body.metadata;
      delete body.apiVersion;
      delete body.kind;
      if (Object.keys(body).length > 0) for (const l of toYaml(body).trimEnd().split('\n')) w.line(l);
    }
  }
  return w.text() + eventsBlock(related.events, nowMs);
}

function describePod(w: Writer, pod: Obj): void {
  w.field(
    'Node',
    at(pod, 'spec.nodeName')
      ? `${str(at(pod, 'spec.nodeName'))}/${str(at(pod, 'status.hostIP'), '')}`
      : '<none>',
  );
  if (at(pod, 'status.startTime') !== undefined) w.field('Start Time', str(at(pod, 'status.startTime')));
  w.field('Status', podStatusText(pod));
  if (at(pod, 'status.reason') !== undefined) w.field('Reason', str(at(pod, 'status.reason')));
  if (at(pod, 'status.message') !== undefined) w.field('Message', str(at(pod, 'status.message')));
  w.field('IP', str(at(pod, 'status.podIP')));
  containersBlock(
    w,
    'Init Containers',
    at(pod, 'spec.initContainers'),
    at(pod, 'status.initContainerStatuses'),
  );
  containersBlock(w, 'Containers', at(pod, 'spec.containers'), at(pod, 'status.containerStatuses'));
  conditionsTable(w, at(pod, 'status.conditions'), false);
  volumesBlock(w, at(pod, 'spec.volumes'));
  w.field('QoS Class', str(at(pod, 'status.qosClass')));
  w.field('Node-Selectors', mapText(at(pod, 'spec.nodeSelector')));
  w.field('Tolerations', tolerationsText(at(pod, 'spec.tolerations')));
  const scheduled = list(at(pod, 'status.conditions')).find((c) => at(c, 'type') === 'PodScheduled');
  if (at(scheduled, 'status') === 'False')
    w.field(
      'Scheduling',
      `${str(at(scheduled, 'reason'), '')}: ${str(at(scheduled, 'message'), '')} (see: cox why pod/${str(at(pod, 'metadata.name'), '')})`,
    );
}

function strategyText(obj: Obj): string {
  const type = str(at(obj, 'spec.strategy.type'), 'RollingUpdate');
  return type;
}

function describeDeployment(w: Writer, d: Obj, related: Related): void {
  w.field('Selector', selectorText(at(d, 'spec.selector')));
  w.field(
    'Replicas',
    `${num(at(d, 'spec.replicas'))} desired | ${num(at(d, 'status.updatedReplicas'))} updated | ${num(at(d, 'status.replicas'))} total | ${num(at(d, 'status.availableReplicas'))} available | ${num(at(d, 'status.unavailableReplicas'))} unavailable`,
  );
  w.field('StrategyType', strategyText(d));
  w.field('MinReadySeconds', String(num(at(d, 'spec.minReadySeconds'))));
  if (str(at(d, 'spec.strategy.type'), 'RollingUpdate') === 'RollingUpdate') {
    w.field(
      'RollingUpdateStrategy',
      `${str(at(d, 'spec.strategy.rollingUpdate.maxUnavailable'), '25%')} max unavailable, ${str(at(d, 'spec.strategy.rollingUpdate.maxSurge'), '25%')} max surge`,
    );
  }
  if (at(d, 'spec.paused') === true) w.field('Paused', 'true');
  podTemplateBlock(w, at(d, 'spec.template'));
  conditionsTable(w, at(d, 'status.conditions'));
  const rss = related.replicaSets ?? [];
  const rev = (rs: Obj) =>
    Number(record(at(rs, 'metadata.annotations'))['deployment.kubernetes.io/revision'] ?? 0);
  const newest = [...rss].sort((a, b) => rev(b) - rev(a))[0];
  const rsText = (rs: Obj) =>
    `${str(at(rs, 'metadata.name'), '')} (${num(at(rs, 'status.replicas'))}/${num(at(rs, 'spec.replicas'))} replicas created)`;
  const old = rss.filter((rs) => rs !== newest && num(at(rs, 'spec.replicas')) > 0);
  w.field('OldReplicaSets', old.length === 0 ? '<none>' : old.map(rsText).join('\n'));
  w.field('NewReplicaSet', newest === undefined ? '<none>' : rsText(newest));
}

function describeWorkload(w: Writer, obj: Obj, related: Related): void {
  const kind = str(obj.kind, '');
  w.field('Selector', selectorText(at(obj, 'spec.selector')));
  const pods = related.pods ?? [];
  switch (kind) {
    case 'ReplicaSet':
    case 'StatefulSet':
      w.field(
        'Replicas',
        `${num(at(obj, 'status.replicas'))} current / ${num(at(obj, 'spec.replicas'))} desired`,
      );
      if (kind === 'StatefulSet') {
        w.field('Update Strategy', str(at(obj, 'spec.updateStrategy.type'), 'RollingUpdate'));
        if (at(obj, 'spec.updateStrategy.rollingUpdate.partition') !== undefined) {
          w.field('Partition', String(num(at(obj, 'spec.updateStrategy.rollingUpdate.partition'))));
        }
        w.field('Pod Management Policy', str(at(obj, 'spec.podManagementPolicy'), 'OrderedReady'));
      }
      break;
    case 'DaemonSet':
      w.field('Desired Number of Nodes Scheduled', String(num(at(obj, 'status.desiredNumberScheduled'))));
      w.field('Current Number of Nodes Scheduled', String(num(at(obj, 'status.currentNumberScheduled'))));
      w.field(
        'Number of Nodes Scheduled with Up-to-date Pods',
        String(num(at(obj, 'status.updatedNumberScheduled'))),
      );
      w.field(
        'Number of Nodes Scheduled with Available Pods',
        String(num(at(obj, 'status.numberAvailable'))),
      );
      w.field('Number of Nodes Misscheduled', String(num(at(obj, 'status.numberMisscheduled'))));
      break;
    case 'Job':
      w.field('Parallelism', String(num(at(obj, 'spec.parallelism'))));
      w.field(
        'Completions',
        at(obj, 'spec.completions') === undefined ? '<unset>' : String(num(at(obj, 'spec.completions'))),
      );
      w.field('Completion Mode', str(at(obj, 'spec.completionMode'), 'NonIndexed'));
      if (at(obj, 'status.startTime') !== undefined) w.field('Start Time', str(at(obj, 'status.startTime')));
      if (at(obj, 'status.completionTime') !== undefined)
        w.field('Completed At', str(at(obj, 'status.completionTime')));
      w.field('Backoff Limit', String(num(at(obj, 'spec.backoffLimit'))));
      if (at(obj, 'status.completedIndexes') !== undefined)
        w.field('Completed Indexes', str(at(obj, 'status.completedIndexes')));
      break;
    default:
      break;
  }
  w.field('Pods Status', podsStatusText(pods));
  podTemplateBlock(w, at(obj, 'spec.template'));
  conditionsTable(w, at(obj, 'status.conditions'));
}

function describeNode(w: Writer, node: Obj, related: Related, nowMs: number): void {
  const taints = list(at(node, 'spec.taints')).map(
    (t) =>
      `${str(at(t, 'key'), '')}${at(t, 'value') ? `=${str(at(t, 'value'), '')}` : ''}:${str(at(t, 'effect'), '')}`,
  );
  w.field('Taints', taints.length === 0 ? '<none>' : taints.join('\n'));
  w.field('Unschedulable', String(at(node, 'spec.unschedulable') === true));
  if (related.lease !== undefined) {
    w.line('Lease:');
    w.field('HolderIdentity', str(at(related.lease, 'spec.holderIdentity')), 2);
    w.field('RenewTime', str(at(related.lease, 'spec.renewTime')), 2);
  }
  const conditions = list(at(node, 'status.conditions'));
  if (conditions.length > 0) {
    w.line('Conditions:');
    w.table([
      ['Type', 'Status', 'LastHeartbeatTime', 'LastTransitionTime', 'Reason', 'Message'],
      ...conditions.map((c) => [
        str(at(c, 'type'), ''),
        str(at(c, 'status'), ''),
        str(at(c, 'lastHeartbeatTime'), ''),
        str(at(c, 'lastTransitionTime'), ''),
        str(at(c, 'reason'), ''),
        str(at(c, 'message'), ''),
      ]),
    ]);
  }
  w.line('Addresses:');
  for (const a of list(at(node, 'status.addresses')))
    w.field(str(at(a, 'type'), ''), str(at(a, 'address'), ''), 2);
  w.line('Capacity:');
  for (const [k, v] of Object.entries(record(at(node, 'status.capacity')))) w.field(k, String(v), 2);
  w.line('Allocatable:');
  for (const [k, v] of Object.entries(record(at(node, 'status.allocatable')))) w.field(k, String(v), 2);
  const info = record(at(node, 'status.nodeInfo'));
  if (Object.keys(info).length > 0) {
    w.line('System Info:');
    for (const [k, v] of Object.entries(info))
      w.field(
        k.replace(/^./, (c) => c.toUpperCase()),
        str(v, ''),
        2,
      );
  }
  const pods = (related.pods ?? []).filter(
    (p) => !['Succeeded', 'Failed'].includes(str(at(p, 'status.phase'), '')),
  );
  w.line(`Non-terminated Pods:          (${pods.length} in total)`);
  if (pods.length > 0) {
    w.table([
      ['Namespace', 'Name', 'CPU Requests', 'CPU Limits', 'Memory Requests', 'Memory Limits', 'Age'],
      ...pods.map((p) => [
        str(at(p, 'metadata.namespace'), ''),
        str(at(p, 'metadata.name'), ''),
        cpuText(sumContainers(p, 'requests', 'cpu')),
        cpuText(sumContainers(p, 'limits', 'cpu')),
        memText(sumContainers(p, 'requests', 'memory')),
        memText(sumContainers(p, 'limits', 'memory')),
        formatAge(at(p, 'metadata.creationTimestamp') as string | undefined, nowMs),
      ]),
    ]);
  }
  const alloc = record(at(node, 'status.allocatable'));
  const cpuAlloc = quantityValue(alloc.cpu);
  const memAlloc = quantityValue(alloc.memory);
  const sum = (field: string, res: string) =>
    pods.reduce<number>((n, p) => n + sumContainers(p, field, res), 0);
  w.line('Allocated resources:');
  w.table([
    ['Resource', 'Requests', 'Limits'],
    [
      'cpu',
      `${cpuText(sum('requests', 'cpu'))}${percent(sum('requests', 'cpu'), cpuAlloc)}`,
      `${cpuText(sum('limits', 'cpu'))}${percent(sum('limits', 'cpu'), cpuAlloc)}`,
    ],
    [
      'memory',
      `${memText(sum('requests', 'memory'))}${percent(sum('requests', 'memory'), memAlloc)}`,
      `${memText(sum('limits', 'memory'))}${percent(sum('limits', 'memory'), memAlloc)}`,
    ],
  ]);
}

function describeService(w: Writer, svc: Obj, related: Related): void {
  w.field('Selector', mapText(at(svc, 'spec.selector')).replaceAll('\n', ','));
  w.field('Type', str(at(svc, 'spec.type'), 'ClusterIP'));
  w.field('IP', str(at(svc, 'spec.clusterIP')));
  for (const p of list(at(svc, 'spec.ports'))) {
    const name = str(at(p, 'name'), '<unset>');
    w.field('Port', `${name}  ${num(at(p, 'port'))}/${str(at(p, 'protocol'), 'TCP')}`);
    w.field(
      'TargetPort',
      `${str(at(p, 'targetPort'), String(num(at(p, 'port'))))}/${str(at(p, 'protocol'), 'TCP')}`,
    );
    if (at(p, 'nodePort') !== undefined)
      w.field('NodePort', `${name}  ${num(at(p, 'nodePort'))}/${str(at(p, 'protocol'), 'TCP')}`);
    const addrs = list(at(related.endpoints, 'subsets')).flatMap((s) => {
      const ports = list(at(s, 'ports'));
      const port = ports.find((ep) => str(at(ep, 'name'), '') === str(at(p, 'name'), '')) ?? ports[0];
      return list(at(s, 'addresses')).map((a) => `${str(at(a, 'ip'), '')}:${num(at(port, 'port'))}`);
    });
    w.field('Endpoints', addrs.length === 0 ? '<none>' : addrs.join(','));
  }
  w.field('Session Affinity', str(at(svc, 'spec.sessionAffinity'), 'None'));
}

function describeNamespace(w: Writer, ns: Obj, related: Related): void {
  w.field('Status', str(at(ns, 'status.phase'), 'Active'));
  conditionsTable(w, at(ns, 'status.conditions'));
  const quotas = related.quotas ?? [];
  if (quotas.length === 0) w.line('No resource quota.');
  for (const q of quotas) {
    w.line('');
    w.field('Resource Quotas', str(at(q, 'metadata.name'), ''));
    const hard = record(at(q, 'spec.hard'));
    const used = record(at(q, 'status.used'));
    w.table([
      ['Resource', 'Used', 'Hard'],
      ['--------', '---', '---'],
      ...Object.keys(hard)
        .sort()
        .map((k) => [k, str(used[k], '0'), str(hard[k])]),
    ]);
  }
  const lrs = related.limitRanges ?? [];
  if (lrs.length === 0) w.line('No LimitRange resource.');
  for (const lr of lrs) {
    w.line('');
    w.field('Resource Limits', str(at(lr, 'metadata.name'), ''));
    const rows: string[][] = [
      ['Type', 'Resource', 'Min', 'Max', 'Default Request', 'Default Limit', 'Max Limit/Request Ratio'],
    ];
    for (const item of list(at(lr, 'spec.limits'))) {
      const resources = new Set<string>();
      for (const f of ['min', 'max', 'defaultRequest', 'default', 'maxLimitRequestRatio']) {
        for (const r of Object.keys(record(at(item, f)))) resources.add(r);
      }
      for (const r of resources) {
        rows.push([
          str(at(item, 'type'), ''),
          r,
          str(record(at(item, 'min'))[r], '-'),
          str(record(at(item, 'max'))[r], '-'),
          str(record(at(item, 'defaultRequest'))[r], '-'),
          str(record(at(item, 'default'))[r], '-'),
          str(record(at(item, 'maxLimitRequestRatio'))[r], '-'),
        ]);
      }
    }
    w.table(rows);
  }
}

// ------------------------------------------------------------------ fetching

async function listed(
  api: ObjectApi,
  kind: string,
  namespace: string | undefined,
  fieldSelector?: string,
): Promise<Obj[]> {
  try {
    const res = await api.list(kind, {
      ...(namespace !== undefined ? { namespace } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
    });
    return res.items as unknown as Obj[];
  } catch (err) {
    if (isApiError(err)) return [];
    throw err;
  }
}

const ownedBy = (uid: unknown) => (o: Obj) =>
  list(at(o, 'metadata.ownerReferences')).some((r) => at(r, 'uid') === uid);

/** The events about `obj` (by uid, and by kind+name for events that carry no uid). */
async function eventsFor(api: ObjectApi, obj: Obj): Promise<Obj[]> {
  const ns = (at(obj, 'metadata.namespace') as string | undefined) ?? 'default';
  const uid = at(obj, 'metadata.uid');
  const byName = await listed(
    api,
    'Event',
    ns,
    `involvedObject.kind=${str(obj.kind, '')},involvedObject.name=${str(at(obj, 'metadata.name'), '')}`,
  );
  return byName.filter(
    (e) => at(e, 'involvedObject.uid') === undefined || at(e, 'involvedObject.uid') === uid,
  );
}

async function relatedTo(api: ObjectApi, obj: Obj): Promise<Related> {
  const kind = str(obj.kind, '');
  const ns = at(obj, 'metadata.namespace') as string | undefined;
  const uid = at(obj, 'metadata.uid');
  const related: Related = { events: await eventsFor(api, obj) };
  switch (kind) {
    case 'Deployment':
      related.replicaSets = (await listed(api, 'ReplicaSet', ns)).filter(ownedBy(uid));
      break;
    case 'ReplicaSet':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'Job':
      related.pods = (await listed(api, 'Pod', ns)).filter(ownedBy(uid));
      break;
    case 'Node': {
      const name = str(at(obj, 'metadata.name'), '');
      related.pods = await listed(api, 'Pod', undefined, `spec.nodeName=${name}`);
      try {
        related.lease = (await api.get({
          kind: 'Lease',
          namespace: 'kube-node-lease',
          name,
        })) as unknown as Obj;
      } catch (err) {
        if (!isApiError(err)) throw err;
      }
      break;
    }
    case 'Service':
      try {
        related.endpoints = (await api.get({
          kind: 'Endpoints',
          namespace: ns,
          name: str(at(obj, 'metadata.name'), ''),
        })) as unknown as Obj;
      } catch (err) {
        if (!isApiError(err)) throw err;
      }
      break;
    case 'Namespace': {
      const name = str(at(obj, 'metadata.name'), '');
      related.quotas = await listed(api, 'ResourceQuota', name);
      related.limitRanges = await listed(api, 'LimitRange', name);
      break;
    }
    default:
      break;
  }
  return related;
}

/** Describes each named object (or every object of a kind given without names); returns the exit code. */
export async function runDescribe(
  api: ObjectApi,
  targets: ResourceTargets,
  opts: { namespace?: string; labelSelector?: string },
  out: Output,
  nowMs: () => number,
): Promise<number> {
  const texts: string[] = [];
  let failed = false;
  for (const kind of targets.kinds) {
    const namespace = isNamespaced(kind) ? (opts.namespace ?? 'default') : undefined;
    const names = targets.names.get(kind) ?? [];
    let objects: Obj[] = [];
    if (names.length === 0) {
      const res = await api.list(kind, {
        ...(namespace ? { namespace } : {}),
        ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
      });
      objects = res.items as unknown as Obj[];
      if (objects.length === 0)
        out.stderr(`No resources found${namespace ? ` in ${namespace} namespace` : ''}.\n`);
    } else {
      for (const name of names) {
        try {
          objects.push((await api.get({ kind, namespace, name })) as unknown as Obj);
        } catch (err) {
          if (!isApiError(err)) throw err;
          failed = true;
          out.stderr(`error: ${describeError(err, refOf(kind, name), true)}\n`);
        }
      }
    }
    for (const obj of objects) texts.push(describeObject(obj, await relatedTo(api, obj), nowMs()));
  }
  out.stdout(texts.join('\n\n'));
  return failed ? 1 : 0;
}

export interface EventsOptions {
  namespace?: string;
  allNamespaces: boolean;
  /** `kind/name`: only events about that object. */
  for?: string;
  /** Only these types (Normal, Warning). */
  types?: string[];
  watch: boolean;
}

/** `cox events`: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, oldest first; `-w` keeps printing. */
export function eventRows(events: readonly Obj[], opts: EventsOptions, nowMs: number): string[][] {
  return sortEvents(events).map((e) => {
    const last = str(at(e, 'lastTimestamp') ?? at(e, 'metadata.creationTimestamp'), '');
    const count = num(at(e, 'count')) || 1;
    const row = [
      `${formatAge(last, nowMs)}${count > 1 ? ` (x${count})` : ''}`,
      str(at(e, 'type'), 'Normal'),
      str(at(e, 'reason'), ''),
      `${str(at(e, 'involvedObject.kind'), '').toLowerCase()}/${str(at(e, 'involvedObject.name'), '')}`,
      str(at(e, 'message'), ''),
    ];
    return opts.allNamespaces ? [str(at(e, 'metadata.namespace'), ''), ...row] : row;
  });
}

export async function runEvents(
  api: ObjectApi,
  opts: EventsOptions,
  out: Output,
  nowMs: () => number,
): Promise<number> {
  const namespace = opts.allNamespaces ? undefined : (opts.namespace ?? 'default');
  const selectors: string[] = [];
  if (opts.for !== undefined) {
    const slash = opts.for.indexOf('/');
    if (slash <= 0) throw new UsageError(`--for: "${opts.for}": expected KIND/NAME`);
    const { parseKind } = await import('./options.js');
    selectors.push(
      `involvedObject.kind=${parseKind(opts.for.slice(0, slash))}`,
      `involvedObject.name=${opts.for.slice(slash + 1)}`,
    );
  }
  for (const t of opts.types ?? []) {
    if (t !== 'Normal' && t !== 'Warning') throw new UsageError(`--types: "${t}": use Normal and/or Warning`);
  }
  const keep = (e: Obj) =>
    opts.types === undefined || opts.types.length === 0
      ? true
      : opts.types.includes(str(at(e, 'type'), 'Normal'));
  const fieldSelector = selectors.join(',');
  const res = await api.list('Event', {
    ...(namespace ? { namespace } : {}),
    ...(fieldSelector ? { fieldSelector } : {}),
  });
  const items = (res.items as unknown as Obj[]).filter(keep);
  const head = opts.allNamespaces
    ? ['NAMESPACE', 'LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE']
    : ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'];
  if (items.length === 0 && !opts.watch) {
    out.stderr(`No events found${namespace ? ` in ${namespace} namespace` : ''}.\n`);
    return 0;
  }
  if (items.length > 0) out.stdout(formatTable([head, ...eventRows(items, opts, nowMs())]));
  if (!opts.watch) return 0;
  const stream = await api.watch('Event', {
    ...(namespace ? { namespace } : {}),
    ...(fieldSelector ? { fieldSelector } : {}),
    resourceVersion: res.resourceVersion,
    sendInitialEvents: false,
  });
  try {
    for (;;) {
      const events = await stream.next();
      if (events === undefined) return 0;
      const objs = events
        .filter((e) => e.type !== 'BOOKMARK' && e.type !== 'DELETED')
        .map((e) => e.object as unknown as Obj)
        .filter(keep);
      if (objs.length > 0) out.stdout(formatTable(eventRows(objs, opts, nowMs())));
    }
  } finally {
    stream.close();
  }
}

/**
 * `cox why pod/NAME`: why a pod is where it is, or why it is nowhere, in plain words. It reads
 * what the scheduler recorded on the pod (the PodScheduled condition, the per-node reasons of
 * the last attempt, the placement and its score) and prints the pod, its phase, QoS class and
 * requests, the summary line, then one line per node — or, when there are many nodes, one line
 * per reason with some node names.
 */

import type { ObjectApi } from '../actors/api.js';
import { defaultSchedulerName } from '../core/defaults.js';
import type { Pod } from '../core/index.js';
import { qosClass } from '../core/qos.js';
import { Quantity, QuantityFormat } from '../core/quantity.js';
import {
  podRequests,
  type RecordedPlacement,
  type RecordedReasons,
  readPlacement,
  readReasons,
  reasonNodesMax,
  scoreWeights,
} from '../core/scheduler/index.js';
import { formatAge } from './age.js';
import { describeError, UsageError } from './errors.js';
import type { Output } from './get.js';
import { parseKind } from './options.js';

/** Up to this many nodes, reasons are listed per node; beyond, per reason. */
export const whyNodeLinesMax = reasonNodesMax;
/** Node names shown per reason in the per-reason form. */
const namesPerReasonShown = 5;

/** `pod/NAME`, `pod NAME`, `pods NAME`, or just `NAME` → the pod's name. */
export function parseWhyTarget(args: readonly string[]): string {
  const [first, second, ...rest] = args;
  if (first === undefined) throw new UsageError('why: a pod is required: cox why pod/NAME');
  if (rest.length > 0) throw new UsageError('why: one pod at a time: cox why pod/NAME');
  const podKind = (text: string) => {
    if (parseKind(text) !== 'Pod') throw new UsageError(`why: only pods are explained, not "${text}"`);
  };
  if (second !== undefined) {
    podKind(first);
    return second;
  }
  const slash = first.indexOf('/');
  if (slash < 0) return first;
  podKind(first.slice(0, slash));
  const name = first.slice(slash + 1);
  if (name === '') throw new UsageError(`why: "${first}": expected pod/NAME`);
  return name;
}

function cpuText(milli: number): string {
  return Quantity.fromMilli(BigInt(milli)).toString();
}

function memoryText(bytes: number): string {
  return Quantity.fromUnits(BigInt(bytes), QuantityFormat.BinarySI).toString();
}

/** `cpu 600m, memory 128Mi` (what the scheduler counts), or `none`. */
export function requestsText(pod: Pod): string {
  const r = podRequests(pod.spec);
  const parts: string[] = [];
  if (r.milliCpu > 0) parts.push(`cpu ${cpuText(r.milliCpu)}`);
  if (r.memory > 0) parts.push(`memory ${memoryText(r.memory)}`);
  for (const [name, v] of Object.entries(r.scalars ?? {})) if (v > 0) parts.push(`${name} ${v}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function phaseText(pod: Pod): string {
  if (pod.metadata.deletionTimestamp !== undefined) return 'Terminating';
  return pod.status?.phase ?? 'Pending';
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The per-node or per-reason lines of a recorded failure. */
function reasonLines(r: RecordedReasons): string[] {
  const complete = r.reasons.every((x) => x.nodes.length === x.count) && r.otherReasons === undefined;
  const nodes = new Map<string, string[]>();
  if (complete) {
    for (const x of r.reasons) {
      for (const n of x.nodes) nodes.set(n, [...(nodes.get(n) ?? []), x.reason]);
    }
  }
  if (complete && nodes.size <= whyNodeLinesMax) {
    const names = [...nodes.keys()].sort();
    const width = Math.max(...names.map((n) => n.length));
    return [
      'Nodes:',
      ...names.map((n) => `  ${`${n}:`.padEnd(width + 1)} ${(nodes.get(n) ?? []).join('; ')}`),
    ];
  }
  const lines = ['By reason:'];
  for (const x of r.reasons) {
    const shown = x.nodes.slice(0, namesPerReasonShown);
    const more = x.count - shown.length;
    lines.push(
      `  ${x.reason}: ${plural(x.count, 'node')} (${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''})`,
    );
  }
  if (r.otherReasons !== undefined) lines.push(`  ... and ${plural(r.otherReasons, 'other reason')}`);
  return lines;
}

function placementLines(p: RecordedPlacement, when: string | undefined): string[] {
  const scores = (Object.keys(scoreWeights) as (keyof typeof scoreWeights)[])
    .filter((k) => p.scores[k] !== undefined)
    .map((k) => `${k} ${p.scores[k]}${scoreWeights[k] !== 1 ? ` (x${scoreWeights[k]})` : ''}`);
  const of = p.evaluated < p.nodes ? `, ${p.evaluated} of ${p.nodes} nodes evaluated` : '';
  return [
    `Scheduled by ${defaultSchedulerName}${when !== undefined ? ` ${when} ago` : ''}: node ${p.node} had the best score, ${p.score}, of ${plural(p.feasible, 'feasible node')}${of}.`,
    ...(scores.length > 0 ? [`Scores: ${scores.join(', ')}`] : []),
  ];
}

/** The explanation of one pod, as printed. */
export function explainPod(pod: Pod, nowMs: number): string {
  const ns = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name ?? '';
  const node = pod.spec.nodeName;
  const scheduler = pod.spec.schedulerName ?? defaultSchedulerName;
  const cond = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const when = cond?.lastTransitionTime !== undefined ? formatAge(cond.lastTransitionTime, nowMs) : undefined;
  const lines = [
    `Pod ${ns}/${name}: ${phaseText(pod)}${node ? ` on node ${node}` : ''}`,
    `QoS class: ${pod.status?.qosClass ?? qosClass(pod.spec)}; requests: ${requestsText(pod)}`,
  ];
  const placement = readPlacement(pod.metadata.annotations);
  if (node) {
    if (placement !== undefined && placement.node === node) lines.push(...placementLines(placement, when));
    else if (scheduler !== defaultSchedulerName)
      lines.push(
        `It names scheduler "${scheduler}", which placed it on ${node}; ${defaultSchedulerName} did not.`,
      );
    else lines.push(`spec.nodeName was set to ${node} when it was created: no scheduler placed it.`);
    return `${lines.join('\n')}\n`;
  }
  if (pod.metadata.deletionTimestamp !== undefined) {
    lines.push('It is being deleted before it was scheduled.');
    return `${lines.join('\n')}\n`;
  }
  if (scheduler !== defaultSchedulerName) {
    lines.push(`It asks for scheduler "${scheduler}"; ${defaultSchedulerName} leaves it alone.`);
    return `${lines.join('\n')}\n`;
  }
  const reasons = readReasons(pod.metadata.annotations);
  const failed = cond?.status === 'False' && cond.reason === 'Unschedulable';
  if (!failed && reasons === undefined) {
    lines.push('Not scheduled yet: the scheduler has not tried it, or is binding it now.');
    return `${lines.join('\n')}\n`;
  }
  const summary = (failed ? cond.message : undefined) ?? reasons?.message ?? '';
  lines.push(`Not scheduled${when !== undefined ? ` (unschedulable for ${when})` : ''}: ${summary}`);
  if (reasons !== undefined) lines.push(...reasonLines(reasons));
  lines.push('The scheduler tries again when a node is added or changes, or when pods go away.');
  return `${lines.join('\n')}\n`;
}

/** Reads the pod and prints why; returns the exit code. */
export async function runWhy(
  api: ObjectApi,
  name: string,
  namespace: string | undefined,
  out: Output,
  nowMs: number,
): Promise<number> {
  let pod: Pod;
  try {
    pod = (await api.get({ kind: 'Pod', namespace: namespace ?? 'default', name })) as Pod;
  } catch (err) {
    out.stderr(`error: ${describeError(err, `pod/${name}`, true)}\n`);
    return 1;
  }
  out.stdout(explainPod(pod, nowMs));
  return 0;
}

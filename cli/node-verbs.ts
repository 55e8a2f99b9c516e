/**
 * `cox cordon|uncordon|drain NODE`, as kubectl does them. Cordon marks the node
 * unschedulable (`spec.unschedulable`; the node controller adds the unschedulable taint).
 * Drain cordons, then evicts every pod on the node and waits until they are gone: pods of
 * DaemonSets are refused unless `--ignore-daemonsets` (then left alone), pods without a
 * controller unless `--force`, pods with emptyDir data unless `--delete-emptydir-data`;
 * finished pods always go. There is no eviction API (nor PodDisruptionBudget) yet, so a pod
 * is evicted by deleting it, with `--grace-period` or its own.
 */

import type { Command } from 'commander';
import { ApiErrorCode, isApiError, type ObjectApi } from '../actors/api.js';
import type { Node, Pod } from '../core/index.js';
import { describeError, UsageError } from './errors.js';
import type { Output } from './get.js';
import { parseGracePeriod } from './options.js';

export interface DrainOptions {
  ignoreDaemonsets: boolean;
  force: boolean;
  deleteEmptydirData: boolean;
  /** Seconds each pod gets to stop; undefined: its own. */
  gracePeriodSeconds?: number;
  /** Give up waiting for the pods after this; 0: wait as long as it takes. */
  timeoutMs: number;
}

/** How often a drain looks whether the evicted pods are gone. */
const drainPollMs = 250;

/** `30s`, `5m`, `1h30m`, `0s` → ms, for `--timeout`. */
export function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 0;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (m === null || (m[1] ?? m[2] ?? m[3]) === undefined) {
    throw new UsageError(`--timeout: "${text}" is not a duration like 30s, 5m or 1h`);
  }
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
}

async function getNode(api: ObjectApi, name: string, out: Output): Promise<Node | undefined> {
  try {
    return (await api.get({ kind: 'Node', name })) as Node;
  } catch (err) {
    if (!isApiError(err)) throw err;
    out.stderr(`error: ${describeError(err, `node/${name}`, true)}\n`);
    return undefined;
  }
}

/** Sets `spec.unschedulable` (cordon) or clears it (uncordon); prints what happened. */
async function setUnschedulable(api: ObjectApi, name: string, on: boolean, out: Output): Promise<boolean> {
  const node = await getNode(api, name, out);
  if (node === undefined) return false;
  const verb = on ? 'cordoned' : 'uncordoned';
  if ((node.spec?.unschedulable === true) === on) {
    out.stdout(`node/${name} already ${verb}\n`);
    return true;
  }
  await api.patch({ kind: 'Node', name }, { spec: { unschedulable: on ? true : null } });
  out.stdout(`node/${name} ${verb}\n`);
  return true;
}

export async function runCordon(api: ObjectApi, name: string, out: Output): Promise<number> {
  return (await setUnschedulable(api, name, true, out)) ? 0 : 1;
}

export async function runUncordon(api: ObjectApi, name: string, out: Output): Promise<number> {
  return (await setUnschedulable(api, name, false, out)) ? 0 : 1;
}

const ref = (pod: Pod) => `${pod.metadata.namespace}/${pod.metadata.name}`;

/** Which pods a drain evicts, which it leaves alone with a warning, and what stops it. */
export function classifyForDrain(
  pods: readonly Pod[],
  opts: Pick<DrainOptions, 'ignoreDaemonsets' | 'force' | 'deleteEmptydirData'>,
): { evict: Pod[]; warnings: string[]; errors: string[] } {
  const evict: Pod[] = [];
  const daemons: Pod[] = [];
  const unmanaged: Pod[] = [];
  const local: Pod[] = [];
  for (const pod of pods) {
    const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    const controller = pod.metadata.ownerReferences?.find((r) => r.controller === true);
    if (!finished && controller?.kind === 'DaemonSet') {
      daemons.push(pod);
      continue;
    }
    if (!finished && controller === undefined) unmanaged.push(pod);
    if (!finished && (pod.spec.volumes ?? []).some((v) => v.emptyDir !== undefined)) local.push(pod);
    evict.push(pod);
  }
  const warnings: string[] = [];
  const errors: string[] = [];
  const list = (ps: Pod[]) => ps.map(ref).join(', ');
  if (daemons.length > 0) {
    if (opts.ignoreDaemonsets) warnings.push(`ignoring DaemonSet-managed Pods: ${list(daemons)}`);
    else
      errors.push(
        `cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ${list(daemons)}`,
      );
  }
  if (unmanaged.length > 0) {
    if (opts.force) warnings.push(`deleting Pods that declare no controller: ${list(unmanaged)}`);
    else
      errors.push(
        `cannot delete Pods that declare no controller (use --force to override): ${list(unmanaged)}`,
      );
  }
  if (local.length > 0) {
    if (opts.deleteEmptydirData) warnings.push(`deleting Pods with local storage: ${list(local)}`);
    else
      errors.push(
        `cannot delete Pods with local storage (use --delete-emptydir-data to override): ${list(local)}`,
      );
  }
  return { evict, warnings, errors };
}

/** Whether the pod `pod` (that very uid) still exists. */
async function stillThere(api: ObjectApi, pod: Pod): Promise<boolean> {
  try {
    const now = await api.get({
      kind: 'Pod',
      namespace: pod.metadata.namespace,
      name: pod.metadata.name ?? '',
    });
    return now.metadata.uid === pod.metadata.uid;
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) return false;
    throw err;
  }
}

/** Cordons `name`, evicts its pods and waits until they are gone; returns the exit code. */
export async function runDrain(
  api: ObjectApi,
  name: string,
  opts: DrainOptions,
  out: Output,
  nowMs: () => number,
): Promise<number> {
  if (!(await setUnschedulable(api, name, true, out))) return 1;
  const listed = await api.list('Pod', { fieldSelector: `spec.nodeName=${name}` });
  const plan = classifyForDrain(listed.items as Pod[], opts);
  if (plan.errors.length > 0) {
    out.stderr(`error: unable to drain node "${name}": ${plan.errors.join('; ')}\n`);
    return 1;
  }
  for (const w of plan.warnings) out.stderr(`Warning: ${w}\n`);
  const started = nowMs();
  let pending: Pod[] = [];
  for (const pod of plan.evict) {
    out.stdout(`evicting pod ${ref(pod)}\n`);
    try {
      await api.delete(
        { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name ?? '' },
        {
          preconditions: { uid: pod.metadata.uid ?? '' },
          ...(opts.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: opts.gracePeriodSeconds } : {}),
        },
      );
    } catch (err) {
      // Gone already, or replaced by another pod of that name: nothing to wait for.
      if (!(isApiError(err) && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict))) {
        out.stderr(
          `error: unable to drain node "${name}": ${describeError(err, `pod/${pod.metadata.name}`)}\n`,
        );
        return 1;
      }
    }
    pending.push(pod);
  }
  while (pending.length > 0) {
    const left: Pod[] = [];
    for (const pod of pending) {
      if (await stillThere(api, pod)) left.push(pod);
      else out.stdout(`pod/${pod.metadata.name} evicted\n`);
    }
    pending = left;
    if (pending.length === 0) break;
    if (opts.timeoutMs > 0 && nowMs() - started >= opts.timeoutMs) {
      out.stderr(
        `error: unable to drain node "${name}": timed out after ${opts.timeoutMs / 1000}s waiting for pods to be deleted: ${pending.map(ref).join(', ')}\n`,
      );
      return 1;
    }
    await new Promise((r) => setTimeout(r, drainPollMs));
  }
  out.stdout(`node/${name} drained\n`);
  return 0;
}

/** Adds `cordon`, `uncordon` and `drain` to `program`; `setCode` receives each verb's exit code. */
export function registerNodeVerbs(
  program: Command,
  connect: (cmd: Command) => ObjectApi,
  deps: Output & { nowMs(): number },
  setCode: (code: number) => void,
): void {
  program
    .command('cordon')
    .description('mark a node unschedulable (new pods are not placed on it)')
    .argument('<node>')
    .action(async (node: string, _o: unknown, cmd: Command) => {
      setCode(await runCordon(connect(cmd), node, deps));
    });
  program
    .command('uncordon')
    .description('mark a node schedulable again')
    .argument('<node>')
    .action(async (node: string, _o: unknown, cmd: Command) => {
      setCode(await runUncordon(connect(cmd), node, deps));
    });
  program
    .command('drain')
    .description('cordon a node, then evict its pods and wait until they are gone')
    .argument('<node>')
    .option('--ignore-daemonsets', 'leave DaemonSet-managed pods alone instead of refusing')
    .option('--force', 'also evict pods that no controller will replace')
    .option('--delete-emptydir-data', 'also evict pods with emptyDir volumes (their data is lost)')
    .option('--grace-period <seconds>', 'seconds each pod gets to stop; -1: its own (default)')
    .option('--timeout <duration>', 'give up after this long (30s, 5m); 0s: wait as long as it takes', '0s')
    .action(async (node: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const opts: DrainOptions = {
        ignoreDaemonsets: o.ignoreDaemonsets === true,
        force: o.force === true,
        deleteEmptydirData: o.deleteEmptydirData === true,
        timeoutMs: parseTimeout(o.timeout as string | undefined),
      };
      const grace = parseGracePeriod(o.gracePeriod as string | undefined);
      if (grace !== undefined) opts.gracePeriodSeconds = grace;
      setCode(await runDrain(connect(cmd), node, opts, deps, () => deps.nowMs()));
    });
}

/**
 * `cox scale` and `cox rollout status|history|undo|pause|resume|restart`, with kubectl's
 * messages. Rollouts apply to Deployments (revisions are their ReplicaSets), DaemonSets and
 * StatefulSets (revisions are their ControllerRevisions). Rollback is client-side, as in
 * kubectl: the chosen revision's pod template is written back into the object, and the
 * controller then treats it as a new revision. Every write carries the object's
 * resourceVersion and is retried a bounded number of times on conflict.
 */

import type { Command } from 'commander';
import { ApiErrorCode, isApiError, type ObjectApi, type WatchStream } from '../actors/api.js';
import {
  changeCauseAnnotation,
  DeploymentConditionType,
  DeploymentReason,
  equalIgnoreHash,
  podTemplateHashLabel,
  restartedAtAnnotation,
  revisionAnnotation,
  revisionHistoryAnnotation,
  revisionOf,
} from '../core/controllers/deployment.js';
import { controllerRef, rfc3339 } from '../core/controllers/pods.js';
import type {
  ApiObject,
  DaemonSet,
  Deployment,
  PodTemplateSpec,
  ReplicaSet,
  StatefulSet,
} from '../core/index.js';
import type { ControllerRevision } from '../core/objects.js';
import { describeError, UsageError } from './errors.js';
import type { Output } from './get.js';
import { parseResourceArgs } from './options.js';
import { describePodTemplate, pluralOf, printRolloutHistory, refOf } from './printers.js';

/** Writes retried after a conflict (someone else changed the object meanwhile). */
export const conflictRetriesMax = 5;

/** A rollout that failed or could not be followed: one line, exit 1. */
export class RolloutError extends Error {
  override readonly name = 'RolloutError';
}

const rolloutKinds: readonly string[] = ['Deployment', 'DaemonSet', 'StatefulSet'];
const scaleKinds: readonly string[] = ['Deployment', 'ReplicaSet', 'StatefulSet'];

export interface Target {
  kind: string;
  name: string;
}

/** `deploy/web`, `deploy web`, ... of the kinds a verb supports; at least one name. */
export function parseTargets(args: readonly string[], verb: string, kinds: readonly string[]): Target[] {
  const parsed = parseResourceArgs(args);
  const out: Target[] = [];
  for (const kind of parsed.kinds) {
    if (!kinds.includes(kind)) {
      throw new UsageError(
        `${verb}: ${pluralOf(kind)} are not supported (only ${kinds.map(pluralOf).join(', ')})`,
      );
    }
    for (const name of parsed.names.get(kind) ?? []) out.push({ kind, name });
  }
  if (out.length === 0) throw new UsageError(`${verb}: a name is required, e.g. deploy/web`);
  return out;
}

/** Go-style durations for `--timeout`: `90s`, `5m`, `1h30m`, `500ms`, `0` (no limit); a bare number is seconds. */
export function parseTimeout(text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text);
  if (m === null || (m[1] ?? m[2] ?? m[3] ?? m[4]) === undefined) {
    throw new UsageError(`--timeout: "${text}" is not a duration like 30s, 5m or 1h`);
  }
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000 + Number(m[4] ?? 0);
}

/** `--replicas` / `--current-replicas` / `--revision`-like flags: an integer >= min. */
function parseCount(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag}: "${text}" must be an integer`);
  const n = Number(text);
  if (n < min) throw new UsageError(`${flag}: ${n}: must be >= ${min}`);
  return n;
}

function parseRevision(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,19}$/.test(text)) throw new UsageError(`--revision: "${text}" must be a revision number`);
  return BigInt(text);
}

// ---------------------------------------------------------------- status

export interface RolloutState {
  /** One line, newline-terminated, as kubectl prints it. */
  message: string;
  done: boolean;
}

/** kubectl's DeploymentStatusViewer; throws RolloutError past the progress deadline. */
export function deploymentRolloutState(d: Deployment, revision?: bigint): RolloutState {
  const name = d.metadata.name ?? '';
  if (revision !== undefined && revision > 0n) {
    const current = revisionOf(d);
    if (current !== revision) {
      throw new RolloutError(
        `desired revision (${revision}) is different from the running revision (${current ?? 'unknown'})`,
      );
    }
  }
  const s = d.status ?? {};
  if ((d.metadata.generation ?? 0) > (s.observedGeneration ?? 0)) {
    return { message: 'Waiting for deployment spec update to be observed...\n', done: false };
  }
  const progressing = s.conditions?.find((c) => c.type === DeploymentConditionType.Progressing);
  if (progressing?.reason === DeploymentReason.ProgressDeadlineExceeded) {
    throw new RolloutError(`deployment "${name}" exceeded its progress deadline`);
  }
  const replicas = d.spec.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  const waiting = (what: string) => ({
    message: `Waiting for deployment "${name}" rollout to finish: ${what}...\n`,
    done: false,
  });
  if (updated < replicas) return waiting(`${updated} out of ${replicas} new replicas have been updated`);
  if (total > updated) return waiting(`${total - updated} old replicas are pending termination`);
  if (available < updated) return waiting(`${available} of ${updated} updated replicas are available`);
  return { message: `deployment "${name}" successfully rolled out\n`, done: true };
}

/** kubectl's DaemonSetStatusViewer. */
export function daemonSetRolloutState(ds: DaemonSet): RolloutState {
  const name = ds.metadata.name ?? '';
  if (ds.spec.updateStrategy !== undefined && ds.spec.updateStrategy.type !== 'RollingUpdate') {
    throw new RolloutError('rollout status is only available for RollingUpdate strategy type');
  }
  const s = ds.status;
  if (s === undefined || (ds.metadata.generation ?? 0) > (s.observedGeneration ?? 0)) {
    return { message: 'Waiting for daemon set spec update to be observed...\n', done: false };
  }
  const desired = s.desiredNumberScheduled ?? 0;
  const updated = s.updatedNumberScheduled ?? 0;
  const available = s.numberAvailable ?? 0;
  if (updated < desired) {
    return {
      message: `Waiting for daemon set "${name}" rollout to finish: ${updated} out of ${desired} new pods have been updated...\n`,
      done: false,
    };
  }
  if (available < desired) {
    return {
      message: `Waiting for daemon set "${name}" rollout to finish: ${available} of ${desired} updated pods are available...\n`,
      done: false,
    };
  }
  return { message: `daemon set "${name}" successfully rolled out\n`, done: true };
}

/** kubectl's StatefulSetStatusViewer (with a partition, progress counts pods at or above it). */
export function statefulSetRolloutState(sts: StatefulSet): RolloutState {
  const strategy = sts.spec.updateStrategy;
  if (strategy !== undefined && strategy.type !== 'RollingUpdate') {
    throw new RolloutError('rollout status is only available for RollingUpdate strategy type');
  }
  const s = sts.status;
  const observed = s?.observedGeneration ?? 0;
  if (s === undefined || observed === 0 || (sts.metadata.generation ?? 0) > observed) {
    return { message: 'Waiting for statefulset spec update to be observed...\n', done: false };
  }
  const replicas = sts.spec.replicas ?? 1;
  const ready = s.readyReplicas ?? 0;
  if (ready < replicas)
    return { message: `Waiting for ${replicas - ready} pods to be ready...\n`, done: false };
  const updated = s.updatedReplicas ?? 0;
  const partition = strategy?.type === 'RollingUpdate' ? strategy.rollingUpdate?.partition : undefined;
  if (partition !== undefined) {
    if (updated < replicas - partition) {
      return {
        message: `Waiting for partitioned roll out to finish: ${updated} out of ${replicas - partition} new pods have been updated...\n`,
        done: false,
      };
    }
    return {
      message: `partitioned roll out complete: ${updated} new pods have been updated...\n`,
      done: true,
    };
  }
  if (s.updateRevision !== s.currentRevision) {
    return {
      message: `waiting for statefulset rolling update to complete ${updated} pods at revision ${s.updateRevision}...\n`,
      done: false,
    };
  }
  return {
    message: `statefulset rolling update complete ${s.currentReplicas ?? 0} pods at revision ${s.currentRevision}...\n`,
    done: true,
  };
}

export function rolloutState(obj: ApiObject, revision?: bigint): RolloutState {
  switch (obj.kind) {
    case 'Deployment':
      return deploymentRolloutState(obj, revision);
    case 'DaemonSet':
      return daemonSetRolloutState(obj);
    case 'StatefulSet':
      return statefulSetRolloutState(obj);
    default:
      throw new UsageError(`rollout status: ${pluralOf(obj.kind)} have no rollouts`);
  }
}

export interface StatusOptions {
  namespace?: string;
  /** Keep following until done (default); false prints the state once. */
  watch: boolean;
  /** 0: no limit. */
  timeoutMs: number;
  /** Deployments: fail unless this is the running revision. */
  revision?: bigint;
}

/** Reads the object, with NotFound as `deployment/web: not found`. */
async function getTarget(api: ObjectApi, t: Target, namespace: string | undefined): Promise<ApiObject> {
  try {
    return await api.get({ kind: t.kind, namespace: namespace ?? 'default', name: t.name });
  } catch (err) {
    if (isApiError(err) && err.code === ApiErrorCode.NotFound) {
      throw new RolloutError(describeError(err, refOf(t.kind, t.name), true));
    }
    throw err;
  }
}

/**
 * `rollout status`: prints the state, then follows the object by a watch (through any
 * master, resuming after failover; relisting on Gone) and prints each new state until done.
 * Exit 0 when rolled out (or at once with `watch: false`); throws RolloutError past the progress
 * deadline, on timeout, or when the object is deleted.
 */
export async function runRolloutStatus(
  api: ObjectApi,
  target: Target,
  opts: StatusOptions,
  out: Output,
): Promise<number> {
  const namespace = opts.namespace ?? 'default';
  let timedOut = false;
  let stream: WatchStream | undefined;
  const timer =
    opts.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          stream?.close();
        }, opts.timeoutMs)
      : undefined;
  let last: string | undefined;
  const show = (obj: ApiObject): boolean => {
    const state = rolloutState(obj, opts.revision);
    if (state.message !== last) out.stdout(state.message);
    last = state.message;
    return state.done;
  };
  const timeout = () => new RolloutError('timed out waiting for the condition');
  try {
    for (;;) {
      const obj = await getTarget(api, target, namespace);
      if (show(obj) || !opts.watch) return 0;
      if (timedOut) throw timeout();
      stream = await api.watch(target.kind, {
        namespace,
        name: target.name,
        resourceVersion: obj.metadata.resourceVersion,
      });
      if (timedOut) throw timeout();
      try {
        for (;;) {
          const events = await stream.next();
          if (events === undefined) {
            if (timedOut) throw timeout();
            break; // the stream ended: read the object again
          }
          for (const e of events) {
            if (e.type === 'BOOKMARK') continue;
            if (e.type === 'DELETED')
              throw new RolloutError(`${refOf(target.kind, target.name)}: object has been deleted`);
            if (show(e.object)) return 0;
          }
        }
      } catch (err) {
        if (isApiError(err) && err.code === ApiErrorCode.Gone) continue; // too far behind: read again
        throw err;
      } finally {
        stream.close();
        stream = undefined;
      }
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- history

interface Revision {
  revision: bigint;
  template: PodTemplateSpec;
  changeCause?: string;
  /** The ReplicaSet or ControllerRevision that holds it. */
  source: ApiObject;
}

/** The object's revisions, oldest first: its ReplicaSets' or its ControllerRevisions'. */
async function revisionsOf(api: ObjectApi, obj: ApiObject): Promise<Revision[]> {
  const namespace = obj.metadata.namespace ?? 'default';
  const uid = obj.metadata.uid;
  const owned = (o: ApiObject) => uid !== undefined && controllerRef(o)?.uid === uid;
  const out: Revision[] = [];
  if (obj.kind === 'Deployment') {
    const sets = (await api.list('ReplicaSet', { namespace })).items as ReplicaSet[];
    for (const rs of sets.filter(owned)) {
      const revision = revisionOf(rs);
      if (revision === undefined) continue;
      const cause = rs.metadata.annotations?.[changeCauseAnnotation];
      out.push({
        revision,
        template: rs.spec.template,
        ...(cause ? { changeCause: cause } : {}),
        source: rs,
      });
    }
  } else {
    const revisions = (await api.list('ControllerRevision', { namespace })).items as ControllerRevision[];
    for (const cr of revisions.filter(owned)) {
      const template = (cr.data as { spec?: { template?: PodTemplateSpec } } | undefined)?.spec?.template;
      if (template === undefined || !Number.isSafeInteger(cr.revision)) continue;
      const cause = cr.metadata.annotations?.[changeCauseAnnotation];
      out.push({
        revision: BigInt(cr.revision),
        template,
        ...(cause ? { changeCause: cause } : {}),
        source: cr,
      });
    }
  }
  return out.sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
}

const revisionNotFound = (n: bigint) => new RolloutError(`unable to find specified revision ${n} in history`);

/** `rollout history`: the revisions, or one revision's pod template. */
export async function runRolloutHistory(
  api: ObjectApi,
  target: Target,
  opts: { namespace?: string; revision?: bigint },
  out: Output,
): Promise<number> {
  const obj = await getTarget(api, target, opts.namespace);
  const revisions = await revisionsOf(api, obj);
  const ref = refOf(target.kind, target.name);
  if (opts.revision !== undefined && opts.revision > 0n) {
    const r = revisions.find((x) => x.revision === opts.revision);
    if (r === undefined) throw revisionNotFound(opts.revision);
    out.stdout(`${ref} with revision #${r.revision}\n${describePodTemplate(r.template)}`);
    return 0;
  }
  out.stdout(
    printRolloutHistory(
      ref,
      revisions.map((r) => ({
        revision: r.revision.toString(),
        ...(r.changeCause !== undefined ? { changeCause: r.changeCause } : {}),
      })),
    ),
  );
  return 0;
}

// ---------------------------------------------------------------- writes

/** Reads, changes and writes with the read resourceVersion, again on conflict (bounded). */
async function updateWithRetries<T extends ApiObject>(
  api: ObjectApi,
  target: Target,
  namespace: string | undefined,
  change: (obj: T) => Promise<T | undefined> | T | undefined,
): Promise<T | undefined> {
  for (let attempt = 0; ; attempt += 1) {
    const obj = (await getTarget(api, target, namespace)) as T;
    const next = await change(obj);
    if (next === undefined) return undefined;
    try {
      return (await api.update(next)) as T;
    } catch (err) {
      if (!(isApiError(err) && err.code === ApiErrorCode.Conflict) || attempt >= conflictRetriesMax)
        throw err;
    }
  }
}

/** Deployment annotations that stay when a revision's annotations are restored (kubectl's annotationsToSkip). */
const keptOnRollback = [
  'kubectl.kubernetes.io/last-applied-configuration',
  'coxswain.io/last-applied-configuration',
  revisionAnnotation,
  revisionHistoryAnnotation,
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
];

function withoutHashLabels(t: PodTemplateSpec): PodTemplateSpec {
  const copy = structuredClone(t);
  const labels = copy.metadata?.labels;
  if (labels !== undefined) {
    delete labels[podTemplateHashLabel];
    delete labels['controller-revision-hash'];
  }
  return copy;
}

/**
 * `rollout undo`: writes revision `toRevision`'s template (0: the one before the current)
 * back into the object; a Deployment also takes that ReplicaSet's annotations (kubectl's
 * rollback). Prints `… rolled back` or `… skipped rollback (…)`.
 */
export async function runRolloutUndo(
  api: ObjectApi,
  target: Target,
  opts: { namespace?: string; toRevision: bigint },
  out: Output,
): Promise<number> {
  const ref = refOf(target.kind, target.name);
  let skipped: bigint | undefined;
  await updateWithRetries<ApiObject>(api, target, opts.namespace, async (obj) =>
    rollbackObject(obj, await revisionsOf(api, obj), opts.toRevision, (n) => {
      skipped = n;
    }),
  );
  out.stdout(
    skipped !== undefined
      ? `${ref} skipped rollback (current template already matches revision ${skipped})\n`
      : `${ref} rolled back\n`,
  );
  return 0;
}

/** The object with the chosen revision's template, or undefined when it already has it. */
function rollbackObject(
  obj: ApiObject,
  revisions: Revision[],
  toRevision: bigint,
  skip: (n: bigint) => void,
): ApiObject | undefined {
  if (obj.kind === 'Deployment' && obj.spec.paused === true) {
    throw new RolloutError(
      `${refOf(obj.kind, obj.metadata.name ?? '')}: you cannot rollback a paused deployment; resume it first with 'cox rollout resume' and try again`,
    );
  }
  let chosen: Revision | undefined;
  if (toRevision > 0n) {
    chosen = revisions.find((r) => r.revision === toRevision);
    if (chosen === undefined) throw revisionNotFound(toRevision);
  } else {
    if (revisions.length < 2) {
      throw new RolloutError(
        obj.kind === 'Deployment'
          ? `no rollout history found for deployment "${obj.metadata.name}"`
          : 'no last revision to roll back to',
      );
    }
    chosen = revisions[revisions.length - 2];
  }
  const current = (obj as Deployment | DaemonSet | StatefulSet).spec.template;
  const template = withoutHashLabels(chosen.template);
  if (equalIgnoreHash(withoutHashLabels(current), template)) {
    skip(chosen.revision);
    return undefined;
  }
  const next = structuredClone(obj) as Deployment | DaemonSet | StatefulSet;
  next.spec.template = template;
  if (next.kind === 'Deployment') {
    const annotations: Record<string, string> = {};
    for (const k of keptOnRollback) {
      const v = obj.metadata.annotations?.[k];
      if (v !== undefined) annotations[k] = v;
    }
    for (const [k, v] of Object.entries(chosen.source.metadata.annotations ?? {})) {
      if (!keptOnRollback.includes(k)) annotations[k] = v;
    }
    next.metadata.annotations = annotations;
  }
  return next;
}

/** `rollout pause` / `resume`: sets `spec.paused` (Deployments only). */
export async function runRolloutPause(
  api: ObjectApi,
  target: Target,
  opts: { namespace?: string; paused: boolean },
  out: Output,
): Promise<number> {
  const ref = refOf(target.kind, target.name);
  const verb = opts.paused ? 'paused' : 'resumed';
  if (target.kind !== 'Deployment') {
    throw new RolloutError(`${ref}: ${opts.paused ? 'pausing' : 'resuming'} is not supported`);
  }
  const written = await updateWithRetries<Deployment>(api, target, opts.namespace, (d) =>
    (d.spec.paused === true) === opts.paused ? undefined : { ...d, spec: { ...d.spec, paused: opts.paused } },
  );
  out.stdout(`${ref} ${written === undefined ? 'already ' : ''}${verb}\n`);
  return 0;
}

/** `rollout restart`: stamps the pod template with `kubectl.kubernetes.io/restartedAt`, so every pod is replaced. */
export async function runRolloutRestart(
  api: ObjectApi,
  target: Target,
  opts: { namespace?: string; nowMs: number },
  out: Output,
): Promise<number> {
  const ref = refOf(target.kind, target.name);
  await updateWithRetries<Deployment | DaemonSet | StatefulSet>(api, target, opts.namespace, (obj) => {
    if (obj.kind === 'Deployment' && obj.spec.paused === true) {
      throw new RolloutError(`${ref}: can't restart paused deployment (run rollout resume first)`);
    }
    const template = structuredClone(obj.spec.template);
    template.metadata = {
      ...(template.metadata ?? {}),
      annotations: {
        ...(template.metadata?.annotations ?? {}),
        [restartedAtAnnotation]: rfc3339(opts.nowMs),
      },
    };
    return { ...obj, spec: { ...obj.spec, template } } as typeof obj;
  });
  out.stdout(`${ref} restarted\n`);
  return 0;
}

/** `scale`: sets `spec.replicas`, first checking `--current-replicas` against the value read. */
export async function runScale(
  api: ObjectApi,
  targets: readonly Target[],
  opts: { namespace?: string; replicas: number; currentReplicas?: number },
  out: Output,
): Promise<number> {
  for (const t of targets) {
    const ref = refOf(t.kind, t.name);
    await updateWithRetries<Deployment | ReplicaSet | StatefulSet>(api, t, opts.namespace, (obj) => {
      const now = obj.spec.replicas ?? 1;
      if (opts.currentReplicas !== undefined && now !== opts.currentReplicas) {
        throw new RolloutError(`${ref}: expected replicas to be ${opts.currentReplicas}, was ${now}`);
      }
      return { ...obj, spec: { ...obj.spec, replicas: opts.replicas } } as typeof obj;
    });
    out.stdout(`${ref} scaled\n`);
  }
  return 0;
}

// ---------------------------------------------------------------- commands

export interface RolloutContext {
  connect(cmd: Command): ObjectApi;
  out: Output;
  nowMs(): number;
  setCode(code: number): void;
}

/** kubectl's `-w=false` spelling arrives as `=false`; a non-boolean value was the resource. */
function watchFlag(value: unknown, resources: string[]): boolean {
  if (value === undefined || value === true) return true;
  const text = String(value).replace(/^=/, '');
  if (text === 'true') return true;
  if (text === 'false') return false;
  resources.unshift(String(value));
  return true;
}

/** Registers `scale` and `rollout` on the program. */
export function registerRolloutCommands(program: Command, ctx: RolloutContext): void {
  program
    .command('scale')
    .description('set replicas: scale deploy/NAME|rs/NAME|sts/NAME... --replicas=N [--current-replicas=M]')
    .argument('<resources...>')
    .requiredOption('--replicas <n>', 'the new replica count')
    .option('--current-replicas <n>', 'only scale when the replica count is now this')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .action(async (resources: string[], o: Record<string, string | undefined>, cmd: Command) => {
      const targets = parseTargets(resources, 'scale', scaleKinds);
      const replicas = parseCount('--replicas', o.replicas, 0) ?? 0;
      const currentReplicas = parseCount('--current-replicas', o.currentReplicas, 0);
      ctx.setCode(
        await runScale(
          ctx.connect(cmd),
          targets,
          {
            namespace: o.namespace,
            replicas,
            ...(currentReplicas !== undefined ? { currentReplicas } : {}),
          },
          ctx.out,
        ),
      );
    });

  const rollout = program
    .command('rollout')
    .description('manage rollouts of deployments, daemon sets and stateful sets');
  const one = (resources: string[], verb: string): Target => {
    const targets = parseTargets(resources, verb, rolloutKinds);
    if (targets.length !== 1) throw new UsageError(`${verb}: give one object`);
    return targets[0];
  };

  rollout
    .command('status')
    .description('follow a rollout until it completes (exit 1 past its progress deadline or --timeout)')
    .argument('[resources...]')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-w, --watch [bool]', 'follow until done (default); -w=false prints the state once')
    .option('--timeout <duration>', 'give up after this long (30s, 5m; default: never)')
    .option('--revision <n>', 'deployments: fail unless this is the running revision')
    .action(async (resources: string[], o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const rest = [...resources];
      const watch = watchFlag(o.watch, rest);
      const target = one(rest, 'rollout status');
      const revision = parseRevision(o.revision as string | undefined);
      ctx.setCode(
        await runRolloutStatus(
          ctx.connect(cmd),
          target,
          {
            namespace: o.namespace as string | undefined,
            watch,
            timeoutMs: parseTimeout(o.timeout as string | undefined),
            ...(revision !== undefined ? { revision } : {}),
          },
          ctx.out,
        ),
      );
    });

  rollout
    .command('history')
    .description('list revisions, or show one with --revision N')
    .argument('<resources...>')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('--revision <n>', "this revision's pod template")
    .action(async (resources: string[], o: Record<string, string | undefined>, cmd: Command) => {
      const target = one(resources, 'rollout history');
      const revision = parseRevision(o.revision);
      ctx.setCode(
        await runRolloutHistory(
          ctx.connect(cmd),
          target,
          { namespace: o.namespace, ...(revision !== undefined ? { revision } : {}) },
          ctx.out,
        ),
      );
    });

  rollout
    .command('undo')
    .description('roll back to the previous revision, or to --to-revision N')
    .argument('<resources...>')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('--to-revision <n>', 'the revision to roll back to (default: the previous one)')
    .action(async (resources: string[], o: Record<string, string | undefined>, cmd: Command) => {
      const targets = parseTargets(resources, 'rollout undo', rolloutKinds);
      const toRevision = parseRevision(o.toRevision) ?? 0n;
      const api = ctx.connect(cmd);
      for (const t of targets) await runRolloutUndo(api, t, { namespace: o.namespace, toRevision }, ctx.out);
    });

  for (const [verb, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    rollout
      .command(verb)
      .description(
        paused
          ? 'stop a deployment from rolling out template changes'
          : 'let a paused deployment roll out again',
      )
      .argument('<resources...>')
      .option('-n, --namespace <ns>', 'namespace (default: default)')
      .action(async (resources: string[], o: { namespace?: string }, cmd: Command) => {
        const targets = parseTargets(resources, `rollout ${verb}`, rolloutKinds);
        const api = ctx.connect(cmd);
        for (const t of targets) await runRolloutPause(api, t, { namespace: o.namespace, paused }, ctx.out);
      });
  }

  rollout
    .command('restart')
    .description('replace every pod (stamps the pod template with kubectl.kubernetes.io/restartedAt)')
    .argument('<resources...>')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .action(async (resources: string[], o: { namespace?: string }, cmd: Command) => {
      const targets = parseTargets(resources, 'rollout restart', rolloutKinds);
      const api = ctx.connect(cmd);
      for (const t of targets)
        await runRolloutRestart(api, t, { namespace: o.namespace, nowMs: ctx.nowMs() }, ctx.out);
    });
}

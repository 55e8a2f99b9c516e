/**
 * One reconcile pass of a pod on this node (the I/O half of the pod actor): make the runtime
 * match the pod's spec as far as the restart rules allow, then report the pod's status. Level
 * based and idempotent: it reads what runs (by label) every time, so a pass that was cut short
 * (a crash, an agent restart) is finished by the next one and never starts a container twice.
 */

import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectApi } from '../actors/api.js';
import { ApiErrorCode, isApiError } from '../actors/api.js';
import type { EventSink, EventType } from '../actors/events.js';
import { deepEqual } from '../core/deep-equal.js';
import type {
  ApiObject,
  ConfigMap,
  Container,
  Handler,
  Pod,
  PodStatus,
  Secret,
  Service,
} from '../core/index.js';
import { parseQuantity } from '../core/index.js';
import { activeDeadlineAtMs, deadlineExceeded, pastActiveDeadline } from './pod/deadline.js';
import { type ClusterDns, podDnsSettings } from './pod/dns-config.js';
import { containerEnv, containerPath, expandCommand, needsPodIP } from './pod/env.js';
import { ContainerConfigError } from './pod/errors.js';
import { containerRef, crashBackOffMessage, pulledMessage } from './pod/events.js';
import { type ContainerObservation, timeMs, type WaitingReason } from './pod/observation.js';
import { probeTarget } from './pod/probes.js';
import {
  type Backoff,
  type BackoffPolicy,
  type ContainerStart,
  crashLoopBackOff,
  defaultBackoffPolicy,
  planRestarts,
} from './pod/restart.js';
import { podStatus } from './pod/status.js';
import { planVolumes } from './pod/volumes.js';
import { type ContainerHealth, type RunningContainer, runProbe } from './probe-runner.js';
import {
  type ContainerRuntime,
  type ContainerStatus,
  ImagePullError,
  type MountSpec,
  type ContainerSpec as RuntimeContainerSpec,
} from './runtime.js';

export interface PodSyncContext {
  node: string;
  nodeIp: string;
  api: ObjectApi;
  runtime: ContainerRuntime;
  /** Per-pod volume directories live under `<dataDir>/pods/<uid>`. */
  dataDir: string;
  /** A tmpfs directory for secrets and memory emptyDirs (e.g. under /dev/shm). */
  memoryDir: string;
  nowMs: () => number;
  log: (line: string) => void;
  /** Crash-loop and image-pull backoff. Default kubelet's: 10 s doubling to 5 min. */
  backoffPolicy?: BackoffPolicy;
  /**
   * The services of a namespace for service environment variables (the proxy's catalog), or
   * undefined until they have been listed (containers wait for that, as kubelet's do). Absent:
   * no service variables.
   */
  services?: (namespace: string) => readonly Service[] | undefined;
  /** The cluster DNS for dnsPolicy ClusterFirst; absent or undefined: the node's resolver. */
  clusterDns?: () => ClusterDns | undefined;
  /** Where kubelet's events go (Pulled, Created, Started, Killing, BackOff, Failed). Absent: none. */
  events?: EventSink;
}

/** Records a container event; returns at once (the recorder queues it). */
function say(
  ctx: PodSyncContext,
  pod: Pod,
  container: string,
  type: EventType,
  reason: string,
  message: string,
) {
  ctx.events?.record(containerRef(pod, container), type, reason, message);
}

/** The image of one container could not be had: retried after `untilMs` (ImagePullBackOff). */
export interface ImagePullBackoff {
  image: string;
  delayMs: number;
  untilMs: number;
  /** The ImagePullError's message. */
  message: string;
  /** The `BackOff` event of this backoff was recorded. */
  backOffRecorded?: boolean;
}

export interface PodSyncState {
  backoff: Record<string, Backoff>;
  /** The status reported last (keeps transition times). */
  reported?: PodStatus;
  /** Per container name: the failed image pull being backed off. */
  imagePull?: Record<string, ImagePullBackoff>;
  /** Readiness and startup from the pod actor's probes (by container name, for one run id). */
  health?: ContainerHealth;
  /** The pod finished and its sandbox was stopped. */
  sandboxStopped?: boolean;
}

export interface PodSyncResult {
  state: PodSyncState;
  /** When the next pass is due without a new observation (a backoff ending). */
  wakeAtMs?: number;
  /** The pod is gone from this node: stop its actor. */
  finished: boolean;
  /** The app containers running after this pass (to be probed). */
  running: RunningContainer[];
  /** Where probes and hooks reach the pod: its IP, or the node's IP for runtimes without one. */
  podIP?: string;
}

/** A postStart hook that has not finished by then has failed (the container is stopped). */
const postStartHookTimeoutMs = 30_000;
const defaultGraceSeconds = 30;

/** The newest container per name, with the run before it as `lastTermination`. */
export function observe(containers: readonly ContainerStatus[]): Record<string, ContainerObservation> {
  const byName = new Map<string, ContainerStatus[]>();
  for (const c of containers) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  const out: Record<string, ContainerObservation> = {};
  for (const [name, runs] of byName) {
    runs.sort((a, b) => b.restartCount - a.restartCount);
    const [newest, previous] = runs;
    out[name] = {
      id: newest.id,
      phase: newest.phase,
      restartCount: newest.restartCount,
      ...(newest.exitCode !== undefined ? { exitCode: newest.exitCode } : {}),
      ...(newest.reason !== undefined ? { reason: newest.reason } : {}),
      ...(newest.startedAt !== undefined ? { startedAt: newest.startedAt } : {}),
      ...(newest.finishedAt !== undefined ? { finishedAt: newest.finishedAt } : {}),
      ...(previous !== undefined && previous.phase === 'exited'
        ? {
            lastTermination: {
              exitCode: previous.exitCode ?? 0,
              ...(previous.reason !== undefined ? { reason: previous.reason } : {}),
              ...(previous.startedAt !== undefined ? { startedAt: previous.startedAt } : {}),
              ...(previous.finishedAt !== undefined ? { finishedAt: previous.finishedAt } : {}),
              id: previous.id,
            },
          }
        : {}),
    };
  }
  return out;
}

/**
 * Runs of a container kept per container name: the newest and the one before it (its
 * `lastState` and `logs --previous`); older exited runs are removed, as kubelet's container GC
 * does (MaxPerPodContainer 1), so a crash-looping container does not pile up dead containers.
 */
export const containerRunsKeptPerName = 2;

/**
 * The exited runs beyond the newest `containerRunsKeptPerName` of each container name, a run
 * about to start (`starting`) counting as the newest.
 */
export function oldRuns(
  containers: readonly ContainerStatus[],
  starting: readonly { name: string; restartCount: number }[] = [],
): ContainerStatus[] {
  const newest = new Map<string, number>();
  for (const c of [...containers, ...starting])
    newest.set(c.name, Math.max(newest.get(c.name) ?? c.restartCount, c.restartCount));
  return containers.filter(
    (c) => c.phase === 'exited' && c.restartCount <= (newest.get(c.name) ?? 0) - containerRunsKeptPerName,
  );
}

/** Removes the old runs; resolves with their ids. */
async function removeOldRuns(
  ctx: PodSyncContext,
  containers: readonly ContainerStatus[],
  starting: readonly { name: string; restartCount: number }[],
): Promise<Set<string>> {
  const old = oldRuns(containers, starting);
  await Promise.all(old.map((c) => ctx.runtime.removeContainer(c.id)));
  return new Set(old.map((c) => c.id));
}

function bytesOf(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  return Number(parseQuantity(q).nanos / 1_000_000_000n);
}

function millisOf(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  return Number(parseQuantity(q).nanos / 1_000_000n);
}

/** The ConfigMaps and Secrets a pod refers to (env and volumes), read from the API. */
async function podConfig(
  api: ObjectApi,
  pod: Pod,
): Promise<{
  configMaps: Record<string, ConfigMap | undefined>;
  secrets: Record<string, Secret | undefined>;
}> {
  const cms = new Set<string>();
  const secrets = new Set<string>();
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.configMapKeyRef) cms.add(e.valueFrom.configMapKeyRef.name);
      if (e.valueFrom?.secretKeyRef) secrets.add(e.valueFrom.secretKeyRef.name);
    }
    for (const f of c.envFrom ?? []) {
      if (f.configMapRef) cms.add(f.configMapRef.name);
      if (f.secretRef) secrets.add(f.secretRef.name);
    }
  }
  for (const v of pod.spec.volumes ?? []) {
    if (v.configMap) cms.add(v.configMap.name);
    if (v.secret) secrets.add(v.secret.secretName);
  }
  const ns = pod.metadata.namespace ?? 'default';
  const read = async <T>(kind: string, name: string): Promise<T | undefined> => {
    try {
      return (await api.get({ kind, namespace: ns, name }, { consistency: 'serializable' })) as unknown as T;
    } catch (err) {
      if (isApiError(err) && err.code === ApiErrorCode.NotFound) return undefined;
      throw err;
    }
  };
  const out = {
    configMaps: {} as Record<string, ConfigMap | undefined>,
    secrets: {} as Record<string, Secret | undefined>,
  };
  await Promise.all([
    ...[...cms].map(async (n) => {
      out.configMaps[n] = await read<ConfigMap>('ConfigMap', n);
    }),
    ...[...secrets].map(async (n) => {
      out.secrets[n] = await read<Secret>('Secret', n);
    }),
  ]);
  return out;
}

/** Where probes and hooks reach the pod when its status has no IP yet: the node. */
function podAddress(ctx: PodSyncContext, pod: Pod, sandboxIp?: string): string {
  return sandboxIp ?? pod.status?.podIP ?? ctx.nodeIp;
}

/**
 * Runs a lifecycle hook of `container` (run `id`) within `timeoutMs`; a failure is logged and
 * returned as a message, never thrown.
 */
async function runHook(
  ctx: PodSyncContext,
  pod: Pod,
  container: Container,
  hook: 'postStart' | 'preStop',
  handler: Handler,
  id: string,
  podIP: string,
  timeoutMs: number,
): Promise<string | undefined> {
  const index = pod.spec.containers.indexOf(container);
  const field = `spec.containers[${index}].lifecycle.${hook}`;
  let message: string | undefined;
  try {
    const result = await runProbe(ctx.runtime, id, probeTarget(handler, container, podIP, field), timeoutMs);
    if (!result.ok) message = result.message ?? 'failed';
  } catch (err) {
    if (!(err instanceof ContainerConfigError)) throw err;
    message = err.message;
  }
  if (message !== undefined) {
    ctx.log(
      `pod ${pod.metadata.namespace}/${pod.metadata.name} container ${container.name}: ${hook} hook: ${message}`,
    );
    say(
      ctx,
      pod,
      container.name,
      'Warning',
      hook === 'postStart' ? 'FailedPostStartHook' : 'FailedPreStopHook',
      message,
    );
  }
  return message;
}

/** The grace period of stopping this pod's containers: the deletion's, else the spec's. */
export function graceSecondsOf(pod: Pod): number {
  return (
    pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? defaultGraceSeconds
  );
}

/**
 * Stops one run of an app container as kubelet kills it (a failed liveness probe, a deletion):
 * its preStop hook first, then SIGTERM and SIGKILL within what is left of the grace period.
 */
export async function stopContainerGracefully(
  ctx: PodSyncContext,
  pod: Pod,
  name: string,
  id: string,
  graceSeconds: number = graceSecondsOf(pod),
  why = `Stopping container ${name}`,
): Promise<void> {
  say(ctx, pod, name, 'Normal', 'Killing', why);
  const startMs = ctx.nowMs();
  const container = pod.spec.containers.find((c) => c.name === name);
  const preStop = container?.lifecycle?.preStop;
  if (container !== undefined && preStop !== undefined && graceSeconds > 0) {
    await runHook(ctx, pod, container, 'preStop', preStop, id, podAddress(ctx, pod), graceSeconds * 1000);
  }
  const leftSeconds = Math.max(0, graceSeconds - (ctx.nowMs() - startMs) / 1000);
  await ctx.runtime.stopContainer(id, leftSeconds);
}

/** Stops the pod's running app and init containers (preStop hooks first) within `graceSeconds`. */
async function stopRunning(ctx: PodSyncContext, pod: Pod, graceSeconds: number): Promise<void> {
  const uid = pod.metadata.uid ?? '';
  const running = (await ctx.runtime.listContainers({ podUid: uid })).filter((c) => c.phase === 'running');
  await Promise.all(running.map((c) => stopContainerGracefully(ctx, pod, c.name, c.id, graceSeconds)));
}

/** Stops (preStop hooks first) and removes the pod, then removes it from the API (grace already spent here). */
async function terminate(ctx: PodSyncContext, pod: Pod): Promise<void> {
  const grace = graceSecondsOf(pod);
  const uid = pod.metadata.uid ?? '';
  await stopRunning(ctx, pod, grace);
  await ctx.runtime.removePod(uid, grace);
  await removePodDirs(ctx, uid);
  try {
    await ctx.api.delete(
      { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name ?? '' },
      { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid ?? '' } },
    );
  } catch (err) {
    if (!(isApiError(err) && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict)))
      throw err;
  }
}

/**
 * Writes `status` as the pod's status unless the API has it already. False when the pod is gone
 * or was replaced by a pod of the same name (another uid): this pod is over here.
 */
async function reportStatus(ctx: PodSyncContext, pod: Pod, status: PodStatus): Promise<boolean> {
  if (deepEqual(status, pod.status)) return true;
  try {
    await ctx.api.updateStatus({
      ...pod,
      metadata: { ...pod.metadata, resourceVersion: undefined },
      status,
    } as unknown as ApiObject);
    return true;
  } catch (err) {
    if (isApiError(err) && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict)) {
      return false;
    }
    throw err;
  }
}

/**
 * Fails the pod as kubelet does for `reason` (its active deadline passed): stops its running
 * containers gracefully, restarts nothing, and reports phase Failed with the reason.
 */
async function failPod(
  ctx: PodSyncContext,
  pod: Pod,
  state: PodSyncState,
  failure: { reason: string; message: string },
): Promise<PodSyncResult> {
  const uid = pod.metadata.uid ?? '';
  ctx.log(`pod ${pod.metadata.namespace}/${pod.metadata.name}: ${failure.message}; stopping its containers`);
  await stopRunning(ctx, pod, graceSecondsOf(pod));
  const previous = state.reported ?? pod.status;
  const status = podStatus({
    pod,
    observed: observe(await ctx.runtime.listContainers({ podUid: uid })),
    ...(previous?.podIP !== undefined ? { podIP: previous.podIP } : {}),
    hostIP: ctx.nodeIp,
    nowMs: ctx.nowMs(),
    ...(previous !== undefined ? { previous } : {}),
    runtime: ctx.runtime.kind,
    failure,
  });
  if (!(await reportStatus(ctx, pod, status))) return { state, finished: true, running: [] };
  return { state: { ...state, reported: status }, finished: false, running: [] };
}

/** `statfs` types of memory-backed filesystems: tmpfs and ramfs. */
const memoryFsTypes = new Set([0x01021994, 0x858458f6]);

/** Where a pod's volumes live on this node: `<dataDir>/pods/<uid>` and `<memoryDir>/<uid>`. */
export function podDirs(ctx: Pick<PodSyncContext, 'dataDir' | 'memoryDir'>, uid: string) {
  return { disk: join(ctx.dataDir, 'pods', uid), memory: join(ctx.memoryDir, uid) };
}

/** Removes a pod's volume directories (secrets included) once its containers are gone. */
export async function removePodDirs(
  ctx: Pick<PodSyncContext, 'dataDir' | 'memoryDir'>,
  uid: string,
): Promise<void> {
  if (uid === '') return;
  const dirs = podDirs(ctx, uid);
  await Promise.all([
    rm(dirs.disk, { recursive: true, force: true }),
    rm(dirs.memory, { recursive: true, force: true }),
  ]);
}

/**
 * Writes the pod's volumes (directories, configMap and secret files) and returns each
 * container's mounts. Secrets and memory emptyDirs go only to a memory filesystem: when the
 * agent's memoryDir is not on one, that is a ContainerConfigError and nothing is written there.
 */
export async function writeVolumes(
  ctx: PodSyncContext,
  pod: Pod,
  config: Awaited<ReturnType<typeof podConfig>>,
): Promise<Record<string, MountSpec[]>> {
  const dirs = podDirs(ctx, pod.metadata.uid ?? '');
  const volumes = planVolumes({
    pod,
    diskDir: join(dirs.disk, 'volumes'),
    memoryDir: dirs.memory,
    ...config,
  });
  const inMemory = (path: string) => path === dirs.memory || path.startsWith(`${dirs.memory}/`);
  if ([...volumes.directories, ...volumes.files.map((f) => f.path)].some(inMemory)) {
    await mkdir(ctx.memoryDir, { recursive: true, mode: 0o700 });
    const { type } = await statfs(ctx.memoryDir);
    if (!memoryFsTypes.has(type)) {
      throw new ContainerConfigError(
        'spec.volumes',
        `secret and memory volumes need a tmpfs, and this node's memory directory ${ctx.memoryDir} is not on one`,
      );
    }
  }
  for (const d of volumes.directories) await mkdir(d, { recursive: true });
  for (const f of volumes.files) {
    await mkdir(join(f.path, '..'), { recursive: true });
    await writeFile(f.path, f.content, { mode: f.mode });
  }
  return volumes.mounts;
}

/** One pass over `pod` (its latest version from the API). */
export async function syncPod(ctx: PodSyncContext, pod: Pod, state: PodSyncState): Promise<PodSyncResult> {
  const uid = pod.metadata.uid ?? '';
  if (pod.metadata.deletionTimestamp !== undefined) {
    await terminate(ctx, pod);
    return { state, finished: true, running: [] };
  }
  // Terminal for good (the API's version may lag the status this actor reported last).
  const phase = (state.reported ?? pod.status)?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    // As kubelet: a finished pod's sandbox is stopped (its containers stay, for logs).
    if (state.sandboxStopped === true || ctx.runtime.stopSandbox === undefined) {
      return { state, finished: false, running: [] };
    }
    await ctx.runtime.stopSandbox(uid);
    return { state: { ...state, sandboxStopped: true }, finished: false, running: [] };
  }
  if (pastActiveDeadline(pod, state.reported ?? pod.status, ctx.nowMs())) {
    return failPod(ctx, pod, state, deadlineExceeded);
  }
  const policy = ctx.backoffPolicy ?? defaultBackoffPolicy;

  // The sandbox starts (the slow part of a new pod) while the containers are looked at and their
  // configuration and volumes prepared; containers start once it runs.
  const sandboxStart = ctx.runtime.runSandbox({
    podUid: uid,
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name ?? '',
    node: ctx.node,
    ...dnsOf(ctx, pod),
  });
  sandboxStart.catch(() => {}); // awaited below; a failure meanwhile must not go unobserved
  const found = await ctx.runtime.listContainers({ podUid: uid });
  // Created but never started (a pass cut short): removed, so the plan starts that run afresh.
  const leftovers = found.filter((c) => c.phase === 'created');
  await Promise.all(leftovers.map((c) => ctx.runtime.removeContainer(c.id)));
  const listed = found.filter((c) => c.phase !== 'created');
  let observed = observe(listed);
  const nowMs = ctx.nowMs();
  const imagePull: Record<string, ImagePullBackoff> = { ...state.imagePull };
  let wakeAtMs: number | undefined;
  const plan = planRestarts({
    restartPolicy: pod.spec.restartPolicy,
    initContainers: (pod.spec.initContainers ?? []).map((c) => c.name),
    containers: pod.spec.containers.map((c) => c.name),
    observed,
    backoff: state.backoff,
    nowMs,
    policy,
  });
  wakeAtMs = plan.wakeAtMs;
  recordBackOff(ctx, pod, plan.waiting, state.reported ?? pod.status);
  // Before the new runs start: with them, the newest two runs of a name remain.
  const removed = await removeOldRuns(ctx, listed, plan.start);
  const waiting: Record<string, WaitingReason> = { ...plan.waiting };
  if (plan.start.length > 0) {
    const config = await podConfig(ctx.api, pod);
    let mounts: Record<string, MountSpec[]> = {};
    try {
      mounts = await writeVolumes(ctx, pod, config);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      for (const s of plan.start) {
        waiting[s.name] = { reason: err.code, message: err.message };
        say(ctx, pod, s.name, 'Warning', 'Failed', `Error: ${err.message}`);
      }
      plan.start.length = 0;
    }
    // Images first: a container whose image cannot be had waits (ImagePullBackOff).
    const ready: { start: ContainerStart; spec: Container }[] = [];
    for (const start of plan.start) {
      const spec = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
        (c) => c.name === start.name,
      );
      if (spec === undefined) continue;
      const pulling = imagePull[start.name];
      if (pulling !== undefined && pulling.image === spec.image && nowMs < pulling.untilMs) {
        waiting[start.name] = { reason: 'ImagePullBackOff', message: pulling.message };
        if (pulling.backOffRecorded !== true) {
          // Once per backoff window (kubelet's count grows per sync; ours per pull attempt).
          say(ctx, pod, start.name, 'Normal', 'BackOff', `Back-off pulling image "${spec.image}"`);
          say(ctx, pod, start.name, 'Warning', 'Failed', 'Error: ImagePullBackOff');
          imagePull[start.name] = { ...pulling, backOffRecorded: true };
        }
        wakeAtMs = Math.min(wakeAtMs ?? pulling.untilMs, pulling.untilMs);
        if (start.init) break;
        continue;
      }
      let pullStartMs: number | undefined;
      try {
        await ctx.runtime.ensureImage(spec.image, spec.imagePullPolicy ?? 'IfNotPresent', () => {
          pullStartMs = ctx.nowMs();
          say(ctx, pod, start.name, 'Normal', 'Pulling', `Pulling image "${spec.image}"`);
        });
        delete imagePull[start.name];
        say(
          ctx,
          pod,
          start.name,
          'Normal',
          'Pulled',
          pullStartMs === undefined
            ? `Container image "${spec.image}" already present on machine`
            : pulledMessage(spec.image, ctx.nowMs() - pullStartMs),
        );
      } catch (err) {
        if (!(err instanceof ImagePullError)) throw err;
        const why = err.message.replace(`image ${spec.image}: `, '');
        say(ctx, pod, start.name, 'Warning', 'Failed', `Failed to pull image "${spec.image}": ${why}`);
        say(ctx, pod, start.name, 'Warning', 'Failed', 'Error: ErrImagePull');
        // Kubelet's image backoff: 10 s doubling to 5 min, per container and image.
        const delayMs =
          pulling?.image === spec.image
            ? Math.min(pulling.delayMs * 2, policy.backoffMsMax)
            : policy.backoffMsInitial;
        const untilMs = ctx.nowMs() + delayMs;
        imagePull[start.name] = { image: spec.image, delayMs, untilMs, message: err.message };
        // The first failure is ErrImagePull; a failed retry shows that the pull is backing off.
        const reason = pulling?.image === spec.image ? 'ImagePullBackOff' : 'ErrImagePull';
        waiting[start.name] = { reason, message: err.message };
        wakeAtMs = Math.min(wakeAtMs ?? untilMs, untilMs);
        if (start.init) break;
        continue;
      }
      ready.push({ start, spec });
      if (start.init) break; // init containers run one at a time
    }
    /** The runtime's spec of a container, or undefined when its environment cannot be made. */
    const runtimeSpec = (start: ContainerStart, spec: Container, podIP: string | undefined) => {
      try {
        const env = containerEnv(spec, containerPath(pod, spec.name), {
          pod,
          ...(podIP !== undefined ? { podIP } : {}),
          hostIP: ctx.nodeIp,
          ...config,
          services: servicesFor(ctx, pod),
        });
        return containerSpec(spec, env, mounts[spec.name] ?? [], start.restartCount);
      } catch (err) {
        if (!(err instanceof ContainerConfigError)) throw err;
        waiting[start.name] = { reason: err.code, message: err.message };
        say(ctx, pod, start.name, 'Warning', 'Failed', `Error: ${err.message}`);
        return undefined;
      }
    };
    // Created while the sandbox starts, where the runtime can and the pod IP is not needed.
    const { createContainer, startCreated } = ctx.runtime;
    const early = new Map<string, string>();
    if (createContainer !== undefined && startCreated !== undefined) {
      await Promise.all(
        ready
          .filter(({ spec }) => !needsPodIP(spec))
          .map(async ({ start, spec }) => {
            const rs = runtimeSpec(start, spec, undefined);
            if (rs === undefined) return;
            early.set(
              start.name,
              await failedSays(ctx, pod, start.name, createContainer.call(ctx.runtime, uid, rs)),
            );
            say(ctx, pod, start.name, 'Normal', 'Created', `Created container ${start.name}`);
          }),
      );
    }
    const sandbox = await sandboxStart;
    const podIP = podAddress(ctx, pod, sandbox.ip);
    const startedRuns: ContainerStatus[] = [];
    let stopped = false;
    for (const { start, spec } of ready) {
      const created = early.get(start.name);
      let started: ContainerStatus;
      if (created !== undefined && startCreated !== undefined) {
        started = await failedSays(ctx, pod, start.name, startCreated.call(ctx.runtime, created));
      } else {
        if (waiting[start.name] !== undefined) continue; // its environment failed above
        const rs = runtimeSpec(start, spec, sandbox.ip);
        if (rs === undefined) continue;
        started = await failedSays(ctx, pod, start.name, ctx.runtime.startContainer(uid, rs));
        say(ctx, pod, start.name, 'Normal', 'Created', `Created container ${start.name}`);
      }
      say(ctx, pod, start.name, 'Normal', 'Started', `Started container ${start.name}`);
      const postStart = spec.lifecycle?.postStart;
      if (!start.init && postStart !== undefined) {
        // As kubelet: the hook runs right after the start; if it fails, the run is killed.
        const failed = await runHook(
          ctx,
          pod,
          spec,
          'postStart',
          postStart,
          started.id,
          podIP,
          postStartHookTimeoutMs,
        );
        if (failed !== undefined) {
          await ctx.runtime.stopContainer(started.id, 0);
          stopped = true;
        }
      }
      startedRuns.push(started);
    }
    // What runs now: the runs listed and kept, and the ones just started (as the start saw
    // them), unless a failed hook stopped one since — then the runtime is asked again.
    observed = observe(
      stopped
        ? await ctx.runtime.listContainers({ podUid: uid })
        : [...listed.filter((c) => !removed.has(c.id)), ...startedRuns],
    );
  }
  const sandbox = await sandboxStart;
  observed = withHealth(observed, state.health);
  const status = podStatus({
    pod,
    observed,
    waiting,
    ...(sandbox.ip !== undefined ? { podIP: sandbox.ip } : {}),
    hostIP: ctx.nodeIp,
    nowMs: ctx.nowMs(),
    ...(state.reported !== undefined
      ? { previous: state.reported }
      : pod.status
        ? { previous: pod.status }
        : {}),
    runtime: ctx.runtime.kind,
  });
  if (!(await reportStatus(ctx, pod, status))) return { state, finished: true, running: [] };
  // The deadline counts from the start time just reported: the pass at its end fails the pod.
  const deadlineAtMs = activeDeadlineAtMs(pod, status);
  if (deadlineAtMs !== undefined) wakeAtMs = Math.min(wakeAtMs ?? deadlineAtMs, deadlineAtMs);
  return {
    state: {
      backoff: plan.backoff,
      reported: status,
      ...(Object.keys(imagePull).length > 0 ? { imagePull } : {}),
      ...(state.health !== undefined ? { health: state.health } : {}),
    },
    ...(wakeAtMs !== undefined ? { wakeAtMs } : {}),
    finished: false,
    running: runningApps(pod, observed, ctx.nowMs()),
    podIP: podAddress(ctx, pod, sandbox.ip),
  };
}

/** Resolves as `step`; a failure is said as kubelet's `Failed` event (`Error: ...`) and thrown. */
async function failedSays<T>(ctx: PodSyncContext, pod: Pod, container: string, step: Promise<T>): Promise<T> {
  try {
    return await step;
  } catch (err) {
    say(
      ctx,
      pod,
      container,
      'Warning',
      'Failed',
      `Error: ${err instanceof Error ? err.message : String(err)}`,
    );
    throw err;
  }
}

/**
 * `BackOff` for each container that starts waiting out a crash-loop backoff: once per exit
 * (the status reported before did not show this run waiting), so a crash loop moves one
 * Event's count by one per restart.
 */
function recordBackOff(
  ctx: PodSyncContext,
  pod: Pod,
  waiting: Record<string, WaitingReason>,
  previous: PodStatus | undefined,
): void {
  for (const [name, w] of Object.entries(waiting)) {
    if (w.reason !== crashLoopBackOff) continue;
    const before = [...(previous?.initContainerStatuses ?? []), ...(previous?.containerStatuses ?? [])].find(
      (c) => c.name === name,
    );
    if (before?.state?.waiting?.reason === crashLoopBackOff) continue;
    say(ctx, pod, name, 'Warning', 'BackOff', crashBackOffMessage(pod, name));
  }
}

/** What the runtime gets for one run of `spec`. */
function containerSpec(
  spec: Container,
  env: { name: string; value: string }[],
  mounts: MountSpec[],
  restartCount: number,
): RuntimeContainerSpec {
  const limits = spec.resources?.limits ?? {};
  return {
    name: spec.name,
    image: spec.image,
    ...(spec.command !== undefined ? { command: expandCommand(spec.command, env) } : {}),
    ...(spec.args !== undefined ? { args: expandCommand(spec.args, env) } : {}),
    ...(spec.workingDir !== undefined ? { workingDir: spec.workingDir } : {}),
    env,
    mounts,
    ...(limits.memory !== undefined ? { memoryBytes: bytesOf(limits.memory) } : {}),
    ...(limits.cpu !== undefined ? { cpuMillis: millisOf(limits.cpu) } : {}),
    restartCount,
  };
}

/** The sandbox's DNS settings (dnsPolicy), when they differ from the runtime's default. */
function dnsOf(ctx: PodSyncContext, pod: Pod): { dns?: NonNullable<ReturnType<typeof podDnsSettings>> } {
  const dns = podDnsSettings(pod, ctx.clusterDns?.());
  return dns !== undefined ? { dns } : {};
}

/** The services a starting container sees; throws (the pass is retried) until they are listed. */
function servicesFor(ctx: PodSyncContext, pod: Pod): readonly Service[] {
  if (ctx.services === undefined || pod.spec.enableServiceLinks === false) return [];
  const services = ctx.services(pod.metadata.namespace ?? 'default');
  if (services === undefined)
    throw new Error('services have not been listed yet; cannot make service environment variables');
  return services;
}

/** Readiness and startup from the probes, for the runs they were measured on. */
function withHealth(
  observed: Record<string, ContainerObservation>,
  health: ContainerHealth | undefined,
): Record<string, ContainerObservation> {
  if (health === undefined) return observed;
  const out = { ...observed };
  for (const [name, h] of Object.entries(health)) {
    const seen = out[name];
    if (seen === undefined || seen.id !== h.id || seen.phase !== 'running') continue;
    out[name] = { ...seen, ready: h.ready, started: h.started };
  }
  return out;
}

/** The running app containers (init containers are never probed). */
function runningApps(
  pod: Pod,
  observed: Record<string, ContainerObservation>,
  nowMs: number,
): RunningContainer[] {
  const out: RunningContainer[] = [];
  for (const c of pod.spec.containers) {
    const seen = observed[c.name];
    if (seen?.phase !== 'running' || seen.id === undefined) continue;
    out.push({ name: c.name, id: seen.id, startedAtMs: timeMs(seen.startedAt) ?? nowMs });
  }
  return out;
}

/**
 * One reconcile pass of a pod on this node (the I/O half of the pod actor): make the runtime
 * match the pod's spec as far as the restart rules allow, then report the pod's status. Level
 * based and idempotent: it reads what runs (by label) every time, so a pass that was cut short
 * (a crash, an agent restart) is finished by the next one and never starts a container twice.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectApi } from '../actors/api.js';
import { ApiErrorCode, isApiError } from '../actors/api.js';
import { deepEqual } from '../core/deep-equal.js';
import type { ApiObject, ConfigMap, Pod, PodStatus, Secret } from '../core/index.js';
import { parseQuantity } from '../core/index.js';
import { containerEnv, containerPath, expandCommand } from './pod/env.js';
import { ContainerConfigError } from './pod/errors.js';
import type { ContainerObservation, WaitingReason } from './pod/observation.js';
import { type Backoff, planRestarts } from './pod/restart.js';
import { podStatus } from './pod/status.js';
import { planVolumes } from './pod/volumes.js';
import { type ContainerRuntime, type ContainerStatus, ImagePullError } from './runtime.js';

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
}

export interface PodSyncState {
  backoff: Record<string, Backoff>;
  /** The status reported last (keeps transition times). */
  reported?: PodStatus;
}

export interface PodSyncResult {
  state: PodSyncState;
  /** When the next pass is due without a new observation (a backoff ending). */
  wakeAtMs?: number;
  /** The pod is gone from this node: stop its actor. */
  finished: boolean;
}

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

/** Stops and removes the pod, then removes it from the API (grace already spent here). */
async function terminate(ctx: PodSyncContext, pod: Pod): Promise<void> {
  const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
  await ctx.runtime.removePod(pod.metadata.uid ?? '', grace);
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

/** One pass over `pod` (its latest version from the API). */
export async function syncPod(ctx: PodSyncContext, pod: Pod, state: PodSyncState): Promise<PodSyncResult> {
  const uid = pod.metadata.uid ?? '';
  if (pod.metadata.deletionTimestamp !== undefined) {
    await terminate(ctx, pod);
    return { state, finished: true };
  }
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return { state, finished: false };

  const sandbox = await ctx.runtime.runSandbox({
    podUid: uid,
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name ?? '',
    node: ctx.node,
  });
  let observed = observe(await ctx.runtime.listContainers({ podUid: uid }));
  const nowMs = ctx.nowMs();
  const plan = planRestarts({
    restartPolicy: pod.spec.restartPolicy,
    initContainers: (pod.spec.initContainers ?? []).map((c) => c.name),
    containers: pod.spec.containers.map((c) => c.name),
    observed,
    backoff: state.backoff,
    nowMs,
  });
  const waiting: Record<string, WaitingReason> = { ...plan.waiting };
  if (plan.start.length > 0) {
    const config = await podConfig(ctx.api, pod);
    const podDir = join(ctx.dataDir, 'pods', uid);
    let mounts: Record<string, import('./runtime.js').MountSpec[]> = {};
    try {
      const volumes = planVolumes({
        pod,
        diskDir: join(podDir, 'volumes'),
        memoryDir: join(ctx.memoryDir, uid),
        ...config,
      });
      for (const d of volumes.directories) await mkdir(d, { recursive: true });
      for (const f of volumes.files) {
        await mkdir(join(f.path, '..'), { recursive: true });
        await writeFile(f.path, f.content, { mode: f.mode });
      }
      mounts = volumes.mounts;
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      for (const s of plan.start) waiting[s.name] = { reason: err.code, message: err.message };
      plan.start.length = 0;
    }
    for (const start of plan.start) {
      const spec = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
        (c) => c.name === start.name,
      );
      if (spec === undefined) continue;
      try {
        await ctx.runtime.ensureImage(spec.image, spec.imagePullPolicy ?? 'IfNotPresent');
      } catch (err) {
        if (!(err instanceof ImagePullError)) throw err;
        waiting[start.name] = { reason: 'ErrImagePull', message: err.message };
        continue;
      }
      let env: { name: string; value: string }[];
      try {
        env = containerEnv(spec, containerPath(pod, spec.name), {
          pod,
          ...(sandbox.ip !== undefined ? { podIP: sandbox.ip } : {}),
          hostIP: ctx.nodeIp,
          ...config,
        });
      } catch (err) {
        if (!(err instanceof ContainerConfigError)) throw err;
        waiting[start.name] = { reason: err.code, message: err.message };
        continue;
      }
      const limits = spec.resources?.limits ?? {};
      await ctx.runtime.startContainer(uid, {
        name: spec.name,
        image: spec.image,
        ...(spec.command !== undefined ? { command: expandCommand(spec.command, env) } : {}),
        ...(spec.args !== undefined ? { args: expandCommand(spec.args, env) } : {}),
        ...(spec.workingDir !== undefined ? { workingDir: spec.workingDir } : {}),
        env,
        mounts: mounts[spec.name] ?? [],
        ...(limits.memory !== undefined ? { memoryBytes: bytesOf(limits.memory) } : {}),
        ...(limits.cpu !== undefined ? { cpuMillis: millisOf(limits.cpu) } : {}),
        restartCount: start.restartCount,
      });
      if (start.init) break; // init containers run one at a time
    }
    observed = observe(await ctx.runtime.listContainers({ podUid: uid }));
  }
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
  let reported = state.reported;
  if (!deepEqual(status, pod.status)) {
    try {
      await ctx.api.updateStatus({
        ...pod,
        metadata: { ...pod.metadata, resourceVersion: undefined },
        status,
      } as unknown as ApiObject);
      reported = status;
    } catch (err) {
      // Gone, or replaced by a pod of the same name (another uid): this pod is over here.
      if (isApiError(err) && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict)) {
        return { state, finished: true };
      }
      throw err;
    }
  }
  return {
    state: { backoff: plan.backoff, ...(reported !== undefined ? { reported } : {}) },
    ...(plan.wakeAtMs !== undefined ? { wakeAtMs: plan.wakeAtMs } : {}),
    finished: false,
  };
}

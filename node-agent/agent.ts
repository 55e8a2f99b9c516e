/**
 * The node agent: registers its Node, renews its Lease as a heartbeat, watches the pods bound
 * to it, and runs one supervised pod actor per pod. Pod actors reconcile through `syncPod`
 * (one pass at a time per pod, level-based), so a restarted agent adopts what runs by label
 * and a master failover restarts nothing. Pods keep running while no master is reachable: the
 * runtime holds them, and the agent reconciles when the API answers again.
 */

import { readdir } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ObjectApi, WatchEvent } from '../actors/api.js';
import { ApiErrorCode, isApiError } from '../actors/api.js';
import { EventRecorder, type EventRecorderOptions } from '../actors/events.js';
import {
  type ActorRef,
  type ActorSpec,
  type ActorSystem,
  type Registry,
  restartBackoffMs,
  run,
  startActorSystem,
  stopActorSystem,
  timer,
} from '../actors/runtime.js';
import { deepEqual } from '../core/deep-equal.js';
import type { ApiObject, Node, Pod, PodStatus } from '../core/index.js';
import { unitsOf } from '../core/scheduler/resources.js';
import { AgentRemote } from './agent-remote.js';
import { nodeSystemInfo } from './node-info.js';
import {
  agentEventComponent,
  containerRef,
  nodeRef,
  probeFailedMessage,
  probeKillMessage,
} from './pod/events.js';
import type { ProbeKind } from './pod/probes.js';
import type { BackoffPolicy } from './pod/restart.js';
import {
  type PodSyncContext,
  type PodSyncResult,
  type PodSyncState,
  removePodDirs,
  stopContainerGracefully,
  syncPod,
} from './pod-sync.js';
import {
  containerHealth,
  type DueProbe,
  emptyPodProbes,
  type PodProbeStep,
  type PodProbes,
  type ProbeRestart,
  runProbe,
  stepPodProbes,
  trackContainers,
} from './probe-runner.js';
import { type ProxyOptions, type ProxyStatus, ServiceProxy } from './proxy/service-proxy.js';
import type { ContainerRuntime } from './runtime.js';

export interface NodeAgentOptions {
  node: string;
  nodeIp: string;
  api: ObjectApi;
  runtime: ContainerRuntime;
  dataDir: string;
  memoryDir: string;
  /** Reported capacity; default: this machine's CPUs and memory, 110 pods. */
  capacity?: { cpu?: string; memory?: string; pods?: string };
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  /** Lease duration; the lease is renewed every quarter of it. Default 40. */
  leaseDurationSeconds?: number;
  /** A pod is reconciled at least this often (container exits are seen by then). Default 1,000. */
  podResyncMs?: number;
  /** Crash-loop and image-pull backoff of containers. Default 10 s doubling to 5 min. */
  restartBackoff?: BackoffPolicy;
  nowMs?: () => number;
  log?: (line: string) => void;
  /** The masters' gRPC API addresses: the agent then serves logs/exec/stats to each of them. */
  masters?: string[];
  /**
   * Run the service proxy and cluster DNS of this node (node-agent/proxy/): its catalog also
   * gives pods their service environment variables and ClusterFirst DNS. Absent: none of that.
   */
  proxy?: ProxyOptions;
  /**
   * Limits of the agent's EventRecorder (kubelet's events about its pods and node, written
   * through `api`): rate, burst, queue (oldest dropped while no master answers), dedup entries.
   */
  events?: Pick<
    EventRecorderOptions,
    'writesPerSecond' | 'writesBurst' | 'queueEventsMax' | 'dedupEntriesMax'
  >;
}

/** The pod capacity a node reports (a quantity, default 110); 110 when it cannot be read. */
function podsCapacityOf(text: string | undefined): number {
  try {
    const n = unitsOf(text ?? '110');
    return Number.isFinite(n) && n > 0 ? n : 110;
  } catch {
    return 110;
  }
}

/** Spawn options of every pod actor. */
const podActorOptions = {
  restart: { restartBackoffMsMin: 100, restartBackoffMsMax: 10_000, restartsMax: 1_000 },
} as const;

type PodMsg =
  | { readonly type: 'pod'; readonly pod: Pod }
  | { readonly type: 'sync' }
  | { readonly type: 'synced'; readonly result: PodSyncResult }
  | { readonly type: 'failed'; readonly error: string; readonly retryAfterMs?: number }
  | { readonly type: 'probeTick' }
  | {
      readonly type: 'probed';
      readonly container: string;
      readonly id: string;
      readonly probe: ProbeKind;
      readonly ok: boolean;
      readonly message?: string;
    };

type PodEffect =
  | { kind: 'sync'; pod: Pod; state: PodSyncState }
  /** Started in the background: its result comes back as a `probed` message. */
  | { kind: 'probe'; probe: DueProbe; pod: Pod }
  /** A failed liveness/startup probe: stop the run (in the background), then sync. */
  | { kind: 'kill'; pod: Pod; restart: ProbeRestart };

interface PodActorState {
  pod: Pod | undefined;
  sync: PodSyncState;
  probes: PodProbes;
  /** Where probes reach the pod (from the last sync). */
  podIP?: string;
  /** Syncs failed in a row (a status write refused by a busy master, say): the retry backs off. */
  failures?: number;
}

/** The first retry of a failed pod sync, ms; it doubles with each failure in a row, up to the resync period. */
const podSyncRetryMsMin = 200;

/** When a pod sync that failed `failures` times in a row runs again: backoff, the server's hint, at most `resyncMs`. */
export function podSyncRetryMs(failures: number, resyncMs: number, retryAfterMs = 0): number {
  const backoff = restartBackoffMs(
    { restartBackoffMsMin: podSyncRetryMsMin, restartBackoffMsMax: resyncMs },
    failures,
  );
  return Math.max(backoff, Math.min(retryAfterMs, resyncMs));
}

export const leaseNamespace = 'kube-node-lease';

/** Tries of registering a Node that others (the node controller) write at the same time. */
const registerAttemptsMax = 10;
/** How long a new kubelet event waits before it is written, in ms (behind the pod's status). */
const agentEventDelayMs = 250;
/** How long stop() waits for the pod watch's API call in flight, in ms. */
const stopWatchWaitMs = 2_000;

const sleepUnref = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

function rfc3339Micro(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '000Z');
}

/**
 * Whether `next` differs from `previous` only by carrying the status this agent reported last:
 * the same spec and deletion, so a sync would find nothing new.
 */
export function isStatusEcho(previous: Pod | undefined, next: Pod, reported: PodStatus | undefined): boolean {
  return (
    previous !== undefined &&
    reported !== undefined &&
    previous.metadata.uid === next.metadata.uid &&
    previous.metadata.deletionTimestamp === next.metadata.deletionTimestamp &&
    previous.metadata.deletionGracePeriodSeconds === next.metadata.deletionGracePeriodSeconds &&
    deepEqual(previous.spec, next.spec) &&
    deepEqual(next.status, reported)
  );
}

export class NodeAgent {
  private readonly system: ActorSystem;
  private readonly pods: Registry;
  private readonly ctx: PodSyncContext;
  private readonly refs = new Map<string, ActorRef<PodMsg>>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private watchLoop: Promise<void> | undefined;
  private stopped = false;
  private closeWatch: (() => void) | undefined;
  private closeExits: (() => void) | undefined;
  private remote: AgentRemote | undefined;
  private readonly proxy: ServiceProxy | undefined;
  private readonly nowMs: () => number;
  private readonly log: (line: string) => void;
  /** Kubelet's events: never awaited by a pod's pass; bounded, deduplicated, rate-limited. */
  private readonly recorder: EventRecorder;
  private podSpec: ActorSpec<PodActorState, PodMsg, PodEffect> | undefined;

  constructor(private readonly opts: NodeAgentOptions) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log ?? ((line) => console.error(`[agent ${opts.node}] ${line}`));
    this.recorder = new EventRecorder({
      api: opts.api,
      component: agentEventComponent,
      host: opts.node,
      nowMs: this.nowMs,
      // Created/Started follow a start by a moment: the pod's status write goes first.
      firstWriteDelayMs: agentEventDelayMs,
      // One line per failed write would flood a log while no master answers: they are counted.
      ...opts.events,
    });
    this.system = startActorSystem({ log: (line, detail) => this.log(`${line} ${detail ?? ''}`) });
    // One bucket per 500 pods of capacity (each holds up to 1,000): a bucket is an actor of its
    // own, and a node runs 110 pods by default.
    this.pods = this.system.createRegistry('pods', {
      bucketsCount: Math.max(1, Math.ceil(podsCapacityOf(opts.capacity?.pods) / 500)),
    });
    this.ctx = {
      node: opts.node,
      nodeIp: opts.nodeIp,
      api: opts.api,
      runtime: opts.runtime,
      dataDir: opts.dataDir,
      memoryDir: opts.memoryDir,
      nowMs: this.nowMs,
      log: this.log,
      events: this.recorder,
      ...(opts.restartBackoff !== undefined ? { backoffPolicy: opts.restartBackoff } : {}),
    };
    if (opts.proxy !== undefined) {
      const proxy = new ServiceProxy({
        node: opts.node,
        nodeIp: opts.nodeIp,
        api: opts.api,
        system: this.system,
        options: opts.proxy,
        nowMs: this.nowMs,
        log: this.log,
      });
      this.proxy = proxy;
      this.ctx.services = (ns) => proxy.servicesIn(ns);
      this.ctx.clusterDns = () => proxy.clusterDns();
    }
  }

  /** The agent's event counters: written, dropped (queue or rate), failed writes. */
  eventStats(): { written: number; dropped: number; failed: number } {
    return { written: this.recorder.written, dropped: this.recorder.dropped, failed: this.recorder.failed };
  }

  /** The service proxy's mode and counters (undefined without a proxy). */
  proxyStatus(): ProxyStatus | undefined {
    return this.proxy?.status();
  }

  /** Resolves once the proxy's rules include every change of `kind` up to `resourceVersion`. */
  async proxyApplied(kind: 'Service' | 'Endpoints', resourceVersion: number): Promise<void> {
    await this.proxy?.waitApplied(kind, resourceVersion);
  }

  async start(): Promise<void> {
    this.recorder.record(nodeRef(this.opts.node), 'Normal', 'Starting', 'Starting kubelet.');
    await this.proxy?.start();
    await this.register();
    this.recorder.record(
      nodeRef(this.opts.node),
      'Normal',
      'NodeReady',
      `Node ${this.opts.node} status is now: NodeReady`,
    );
    await this.renewLease();
    const period = ((this.opts.leaseDurationSeconds ?? 40) * 1000) / 4;
    this.leaseTimer = setInterval(() => {
      this.renewLease().catch((err) => this.log(`lease renewal failed: ${String(err)}`));
    }, period);
    // A container exit reconciles its pod at once (the resync would see it within podResyncMs).
    this.closeExits = this.opts.runtime.events?.((uid) => {
      const ref = this.refs.get(uid);
      if (ref !== undefined) this.system.tell(ref, { type: 'sync' });
    });
    this.watchLoop = this.watchPods();
    if (this.opts.masters !== undefined && this.opts.masters.length > 0) {
      const remote = new AgentRemote({ ...this.opts, masters: this.opts.masters, log: this.log });
      this.remote = remote;
      remote.start();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.remote?.stop();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.closeExits?.();
    this.closeWatch?.();
    // The loop ends once its API call in flight returns; a call to an unreachable master may
    // take its whole timeout, and stopping must not (whatever it returns is ignored).
    await Promise.race([this.watchLoop?.catch(() => {}), sleepUnref(stopWatchWaitMs)]);
    // A clean exit removes this node's proxy rules (pods keep running; a restart rewrites them).
    await this.proxy?.stop();
    await stopActorSystem(this.system);
    this.recorder.close();
  }

  /** Creates the Node, or refreshes its status (and labels/taints from the flags). */
  private async register(): Promise<void> {
    const cap = {
      cpu: this.opts.capacity?.cpu ?? String(cpus().length),
      memory: this.opts.capacity?.memory ?? `${Math.floor(totalmem() / 1024 / 1024)}Mi`,
      pods: this.opts.capacity?.pods ?? '110',
    };
    const now = rfc3339Micro(this.nowMs()).replace(/\.\d+Z$/, 'Z');
    const status = {
      capacity: cap,
      allocatable: cap,
      addresses: [
        { type: 'InternalIP', address: this.opts.nodeIp },
        { type: 'Hostname', address: this.opts.node },
      ],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AgentReady',
          message: 'coxswain agent is posting ready status',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      nodeInfo: await nodeSystemInfo(this.opts.runtime),
    };
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.opts.node,
        labels: { 'kubernetes.io/hostname': this.opts.node, ...this.opts.labels },
      },
      spec: { ...(this.opts.taints ? { taints: this.opts.taints } : {}) },
      status,
    };
    for (let attempt = 1; ; attempt += 1) {
      try {
        const current = (await this.opts.api.get({ kind: 'Node', name: this.opts.node })) as Node;
        // The node controller's taints (`node.kubernetes.io/...`) and a cordon stay: they are
        // not the agent's to clear; it sets the taints of its flags.
        const own = this.opts.taints ?? [];
        const managed = (current.spec?.taints ?? []).filter(
          (t) =>
            t.key.startsWith('node.kubernetes.io/') &&
            !own.some((o) => o.key === t.key && o.effect === t.effect),
        );
        const taints = [...own, ...managed];
        const updated = await this.opts.api.update({
          ...current,
          metadata: { ...current.metadata, labels: node.metadata.labels },
          spec: { ...current.spec, taints: taints.length > 0 ? taints : undefined },
        } as unknown as ApiObject);
        await this.opts.api.updateStatus({ ...updated, status } as unknown as ApiObject);
        return;
      } catch (err) {
        if (isApiError(err) && err.code === ApiErrorCode.NotFound) {
          await this.opts.api.create(node);
          return;
        }
        // The node controller wrote the Node meanwhile: read it again.
        if (!(isApiError(err) && err.code === ApiErrorCode.Conflict) || attempt >= registerAttemptsMax)
          throw err;
      }
    }
  }

  private async renewLease(): Promise<void> {
    const key = { kind: 'Lease', namespace: leaseNamespace, name: this.opts.node };
    const renewTime = rfc3339Micro(this.nowMs());
    const duration = this.opts.leaseDurationSeconds ?? 40;
    try {
      await this.opts.api.patch(key, {
        spec: { holderIdentity: this.opts.node, leaseDurationSeconds: duration, renewTime },
      });
    } catch (err) {
      if (!(isApiError(err) && err.code === ApiErrorCode.NotFound)) throw err;
      await this.opts.api.create({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.node, namespace: leaseNamespace },
        spec: {
          holderIdentity: this.opts.node,
          leaseDurationSeconds: duration,
          acquireTime: renewTime,
          renewTime,
        },
      });
    }
  }

  /** Lists this node's pods, removes runtime pods the API no longer has, then watches. */
  private async watchPods(): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.opts.node}`;
    while (!this.stopped) {
      try {
        const list = await this.opts.api.list('Pod', { fieldSelector });
        if (this.stopped) return;
        const known = new Set<string>();
        for (const obj of list.items) {
          const pod = obj as unknown as Pod;
          known.add(pod.metadata.uid ?? '');
          this.deliver(pod);
        }
        for (const uid of await this.opts.runtime.listPods()) {
          if (!known.has(uid)) {
            this.log(`removing pod ${uid}: it is no longer bound to this node`);
            await this.opts.runtime.removePod(uid, 0);
          }
        }
        await this.removeOrphanDirs(known);
        const w = await this.opts.api.watch('Pod', { fieldSelector, resourceVersion: list.resourceVersion });
        this.closeWatch = () => w.close();
        // stop() may have run while the list or the watch call was in flight.
        if (this.stopped) w.close();
        for (;;) {
          const events = await w.next();
          if (events === undefined) break;
          for (const e of events) this.onEvent(e);
        }
      } catch (err) {
        if (this.stopped) return;
        this.log(`pod watch: ${String(err instanceof Error ? err.message : err)}; relisting`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Volume directories (secrets included) of pods this node no longer has: removed. */
  private async removeOrphanDirs(known: ReadonlySet<string>): Promise<void> {
    const roots = [join(this.opts.dataDir, 'pods'), this.opts.memoryDir];
    for (const root of roots) {
      const uids = await readdir(root).catch(() => [] as string[]);
      for (const uid of uids) if (!known.has(uid)) await removePodDirs(this.ctx, uid);
    }
  }

  private onEvent(e: WatchEvent): void {
    if (e.type === 'BOOKMARK' || this.stopped) return;
    const pod = e.object as unknown as Pod;
    if (e.type === 'DELETED') {
      // Gone from the API: whatever still runs of it goes too.
      const uid = pod.metadata.uid ?? '';
      this.refs.delete(uid);
      this.pods.stop(uid);
      this.opts.runtime
        .removePod(uid, 0)
        .then(() => removePodDirs(this.ctx, uid))
        .catch((err) => this.log(`removing pod ${uid}: ${String(err)}`));
      return;
    }
    this.deliver(pod);
  }

  private deliver(pod: Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata.uid ?? '';
    let ref = this.pods.get<PodMsg>(uid);
    if (ref === undefined) {
      // One spec for all of this node's pods: it holds no pod's data (that is the state).
      this.podSpec ??= this.podActor();
      ref = this.pods.spawn(uid, this.podSpec, podActorOptions);
      this.refs.set(uid, ref);
    }
    this.system.tell(ref, { type: 'pod', pod });
  }

  /**
   * A pod actor: keeps the newest pod and runs one sync at a time, again when due. It also
   * holds the probe state of the pod's running containers: probes run in the background and
   * answer with `probed`; readiness changes sync the status, liveness failures stop the run.
   */
  private podActor(): ActorSpec<PodActorState, PodMsg, PodEffect> {
    const resyncMs = this.opts.podResyncMs ?? 1_000;
    // "Sync now" (a new pod version, a health change) has its own timer key: the 'synced' of a
    // pass in flight, queued behind it, resets the 'sync' timer to the resync and would drop it.
    const syncNowTimer = 'syncNow';
    const probeEffects = (pod: Pod, step: PodProbeStep) => [
      ...step.due.map((probe) => run<PodEffect>({ kind: 'probe', probe, pod })),
      ...step.restarts.map((restart) => run<PodEffect>({ kind: 'kill', pod, restart })),
      ...(step.healthChanged ? [timer(syncNowTimer, 0, { type: 'sync' } as PodMsg)] : []),
      ...(step.wakeAtMs !== undefined
        ? [timer('probe', Math.max(0, step.wakeAtMs - this.nowMs()), { type: 'probeTick' } as PodMsg)]
        : []),
    ];
    return {
      init: () => ({ pod: undefined, sync: { backoff: {} }, probes: emptyPodProbes }),
      receive: (state, msg) => {
        switch (msg.type) {
          case 'pod':
            // The echo of this actor's own status write changes nothing to do: the resync covers it.
            return {
              state: { ...state, pod: msg.pod },
              effects: isStatusEcho(state.pod, msg.pod, state.sync.reported)
                ? []
                : [timer(syncNowTimer, 0, { type: 'sync' } as PodMsg)],
            };
          case 'sync':
            if (state.pod === undefined) return { state, effects: [] };
            return {
              state,
              effects: [
                run<PodEffect>({
                  kind: 'sync',
                  pod: state.pod,
                  state: { ...state.sync, health: containerHealth(state.probes) },
                }),
              ],
            };
          case 'synced': {
            if (msg.result.finished) return { state, effects: [{ kind: 'stop' }] };
            const due =
              msg.result.wakeAtMs !== undefined ? Math.max(0, msg.result.wakeAtMs - this.nowMs()) : resyncMs;
            const podIP = msg.result.podIP ?? this.opts.nodeIp;
            const pod = state.pod;
            const step =
              pod === undefined
                ? undefined
                : trackContainers(state.probes, pod, msg.result.running, podIP, this.nowMs());
            return {
              state: {
                ...state,
                sync: msg.result.state,
                probes: step?.state ?? state.probes,
                podIP,
                failures: 0,
              },
              effects: [
                timer('sync', Math.min(due, resyncMs), { type: 'sync' } as PodMsg),
                ...(pod !== undefined && step !== undefined ? probeEffects(pod, step) : []),
              ],
            };
          }
          case 'probeTick':
          case 'probed': {
            if (state.pod === undefined) return { state, effects: [] };
            const nowMs = this.nowMs();
            const step = stepPodProbes(
              state.probes,
              state.pod,
              msg.type === 'probeTick' ? { type: 'tick', nowMs } : { ...msg, type: 'result', nowMs },
              state.podIP ?? this.opts.nodeIp,
            );
            return { state: { ...state, probes: step.state }, effects: probeEffects(state.pod, step) };
          }
          case 'failed': {
            const failures = (state.failures ?? 0) + 1;
            const retryMs = podSyncRetryMs(failures, resyncMs, msg.retryAfterMs);
            this.log(
              `pod ${state.pod?.metadata.namespace}/${state.pod?.metadata.name}: sync failed: ${msg.error} (retry in ${retryMs} ms)`,
            );
            return {
              state: { ...state, failures },
              effects: [timer('sync', retryMs, { type: 'sync' } as PodMsg)],
            };
          }
          default: {
            const unknown: never = msg;
            throw new Error(`pod actor: unknown message ${JSON.stringify(unknown)}`);
          }
        }
      },
      run: async (effect, self) => {
        switch (effect.kind) {
          case 'sync':
            try {
              return { type: 'synced', result: await syncPod(this.ctx, effect.pod, effect.state) };
            } catch (err) {
              return {
                type: 'failed',
                error: err instanceof Error ? err.message : String(err),
                ...(isApiError(err) && err.details.retryAfterMs !== undefined
                  ? { retryAfterMs: err.details.retryAfterMs }
                  : {}),
              };
            }
          case 'probe':
            this.startProbe(effect.probe, self, effect.pod);
            return undefined;
          case 'kill':
            this.startKill(effect.pod, effect.restart, self);
            return undefined;
          default: {
            const unknown: never = effect;
            throw new Error(`pod actor: unknown effect ${JSON.stringify(unknown)}`);
          }
        }
      },
    };
  }

  /** Runs one probe in the background; its result comes back to the pod actor as `probed`. */
  private startProbe(probe: DueProbe, self: ActorRef<PodMsg>, pod: Pod): void {
    const answer = (ok: boolean, message?: string): void => {
      const { container, id } = probe;
      if (!ok) {
        this.recorder.record(
          containerRef(pod, container),
          'Warning',
          'Unhealthy',
          probeFailedMessage(probe.probe, message),
        );
      }
      this.system.tell(self, {
        type: 'probed',
        container,
        id,
        probe: probe.probe,
        ok,
        ...(message !== undefined ? { message } : {}),
      });
    };
    if (probe.target === undefined) {
      answer(false, probe.error);
      return;
    }
    runProbe(this.opts.runtime, probe.id, probe.target, probe.timeoutMs).then(
      (r) => answer(r.ok, r.message),
      (err) => answer(false, String(err)),
    );
  }

  /** Stops a run whose liveness or startup probe failed, then syncs (its restart policy decides). */
  private startKill(pod: Pod, restart: ProbeRestart, self: ActorRef<PodMsg>): void {
    this.log(
      `pod ${pod.metadata.namespace}/${pod.metadata.name} container ${restart.container}: ${restart.message}, will be restarted`,
    );
    stopContainerGracefully(
      this.ctx,
      pod,
      restart.container,
      restart.id,
      undefined,
      probeKillMessage(restart.container, restart.probe),
    )
      .catch((err) => this.log(`stopping container ${restart.id}: ${String(err)}`))
      .finally(() => this.system.tell(self, { type: 'sync' }));
  }
}

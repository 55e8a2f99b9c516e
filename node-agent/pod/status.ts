/**
 * A pod's Kubernetes status from what the pod actor observed, as kubelet computes it: phase,
 * conditions, container statuses with state and lastState, IPs, start time and QoS class.
 * Pure: the previous status (for condition transition times and startTime) and "now" come in
 * as data.
 */

import type {
  Condition,
  Container,
  ContainerState,
  ContainerStatus,
  Pod,
  PodPhase,
  PodSpec,
  PodStatus,
} from '../../core/objects.js';
import { QOSClass, qosClass } from '../../core/qos.js';
import {
  type ContainerObservation,
  type ContainerTermination,
  terminationReason,
  type WaitingReason,
} from './observation.js';

/** The QoS class moved to core (the API sets it on create); re-exported for the agent's callers. */
export { QOSClass, qosClass };

/** `PodStatus` plus the fields the core types do not have yet. */
export interface PodStatusReport extends PodStatus {
  podIPs?: { ip: string }[];
  qosClass?: QOSClass;
}

export interface PodStatusInput {
  pod: Pod;
  /** The newest container per container name (init and app); absent: not created. */
  observed: Readonly<Record<string, ContainerObservation | undefined>>;
  /** Why a container waits (ImagePullBackOff, ErrImagePull, CrashLoopBackOff, CreateContainerConfigError...). */
  waiting?: Readonly<Record<string, WaitingReason | undefined>>;
  /** The sandbox's IP. */
  podIP?: string;
  /** The node's IP. */
  hostIP?: string;
  nowMs: number;
  /** The status last reported: keeps condition transition times and startTime. */
  previous?: PodStatus;
  /** The scheme of container ids (`docker://<id>`). Default `docker`. */
  runtime?: string;
  /**
   * The pod was failed by the agent (e.g. `DeadlineExceeded`): phase Failed whatever its
   * containers show, with this reason and message.
   */
  failure?: { reason: string; message: string };
}

/** The status to report for `input.pod`. */
export function podStatus(input: PodStatusInput): PodStatusReport {
  const { pod, nowMs } = input;
  const initSpecs = pod.spec.initContainers ?? [];
  const initStatuses = initSpecs.map((c) => containerStatus(c, input, true, 'PodInitializing'));
  const initDone = initStatuses.every(initSucceeded);
  const appWaiting = initDone ? 'ContainerCreating' : 'PodInitializing';
  const appStatuses = pod.spec.containers.map((c) => containerStatus(c, input, false, appWaiting));
  const phase = input.failure !== undefined ? 'Failed' : podPhase(pod.spec, initStatuses, appStatuses);

  const status: PodStatusReport = {
    phase,
    conditions: conditions(phase, initStatuses, appStatuses, input),
    hostIP: input.hostIP,
    podIP: input.podIP,
    podIPs: input.podIP === undefined ? undefined : [{ ip: input.podIP }],
    startTime: input.previous?.startTime ?? new Date(nowMs).toISOString(),
    initContainerStatuses: initSpecs.length > 0 ? initStatuses : undefined,
    containerStatuses: appStatuses,
    qosClass: qosClass(pod.spec),
    reason: input.failure?.reason,
    message: input.failure?.message,
  };
  for (const key of Object.keys(status) as (keyof PodStatusReport)[]) {
    if (status[key] === undefined) delete status[key];
  }
  return status;
}

function terminated(t: ContainerTermination): ContainerState {
  const state: NonNullable<ContainerState['terminated']> = {
    exitCode: t.exitCode,
    reason: terminationReason(t.exitCode, t.reason),
  };
  if (t.message !== undefined) state.message = t.message;
  if (t.startedAt !== undefined) state.startedAt = t.startedAt;
  if (t.finishedAt !== undefined) state.finishedAt = t.finishedAt;
  return { terminated: state };
}

function waitingState(w: WaitingReason): ContainerState {
  return {
    waiting: w.message === undefined ? { reason: w.reason } : { reason: w.reason, message: w.message },
  };
}

function containerStatus(
  container: Container,
  input: PodStatusInput,
  init: boolean,
  defaultWaiting: string,
): ContainerStatus {
  const seen = input.observed[container.name];
  const waiting = input.waiting?.[container.name];
  const base = { name: container.name, image: container.image };
  if (seen === undefined) {
    return {
      ...base,
      ready: false,
      started: false,
      restartCount: 0,
      state: waitingState(waiting ?? { reason: defaultWaiting }),
      lastState: {},
    };
  }
  const ids: Partial<ContainerStatus> = {};
  if (seen.imageID !== undefined) ids.imageID = seen.imageID;
  if (seen.id !== undefined) ids.containerID = `${input.runtime ?? 'docker'}://${seen.id}`;
  const previousRun: ContainerState = seen.lastTermination ? terminated(seen.lastTermination) : {};
  const common = { ...base, ...ids, restartCount: seen.restartCount };
  switch (seen.phase) {
    case 'running': {
      const started = seen.started ?? container.startupProbe === undefined;
      const ready = !init && started && (seen.ready ?? container.readinessProbe === undefined);
      const running = seen.startedAt === undefined ? {} : { startedAt: seen.startedAt };
      return { ...common, ready, started, state: { running }, lastState: previousRun };
    }
    case 'exited': {
      const exitCode = seen.exitCode ?? 0;
      const thisRun = terminated({ ...seen, exitCode });
      const ready = init && exitCode === 0;
      // Waiting for a restart: the exit moves to lastState, as kubelet shows CrashLoopBackOff.
      if (waiting !== undefined)
        return { ...common, ready, started: false, state: waitingState(waiting), lastState: thisRun };
      return { ...common, ready, started: false, state: thisRun, lastState: previousRun };
    }
    case 'created':
    case 'unknown':
      return {
        ...common,
        ready: false,
        started: false,
        state: waitingState(waiting ?? { reason: 'ContainerCreating' }),
        lastState: previousRun,
      };
    default: {
      const unknown: never = seen.phase;
      throw new Error(`container ${container.name}: unknown phase ${String(unknown)}`);
    }
  }
}

function initSucceeded(s: ContainerStatus): boolean {
  return s.state?.terminated?.exitCode === 0;
}

/** Has run before (now terminated, or waiting after a termination). */
function hasRun(s: ContainerStatus): boolean {
  return (
    s.state?.running !== undefined ||
    s.state?.terminated !== undefined ||
    s.lastState?.terminated !== undefined
  );
}

/** Kubelet's `getPhase`. */
export function podPhase(
  spec: PodSpec,
  init: readonly ContainerStatus[],
  app: readonly ContainerStatus[],
): PodPhase {
  const policy = spec.restartPolicy ?? 'Always';
  let pendingInit = 0;
  let failedInit = 0;
  for (const s of init) {
    if (s.state?.terminated !== undefined) {
      if (s.state.terminated.exitCode !== 0) failedInit++;
    } else if (s.state?.waiting !== undefined && s.lastState?.terminated !== undefined) {
      if (s.lastState.terminated.exitCode !== 0) failedInit++;
    } else {
      pendingInit++;
    }
  }
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of app) {
    if (s.state?.running !== undefined) running++;
    else if (s.state?.terminated !== undefined) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.lastState?.terminated !== undefined) stopped++;
    else waiting++;
  }
  if (failedInit > 0 && policy === 'Never') return 'Failed';
  if ((pendingInit > 0 && !app.some(hasRun)) || waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped === 0) return 'Pending';
  if (policy === 'Always') return 'Running';
  if (stopped === succeeded) return 'Succeeded';
  return policy === 'Never' ? 'Failed' : 'Running';
}

function conditions(
  phase: PodPhase,
  init: readonly ContainerStatus[],
  app: readonly ContainerStatus[],
  input: PodStatusInput,
): Condition[] {
  const previous = input.previous?.conditions ?? [];
  const now = new Date(input.nowMs).toISOString();
  const make = (type: string, ok: boolean, reason?: string, message?: string): Condition => {
    const status = ok ? 'True' : 'False';
    const before = previous.find((c) => c.type === type);
    const lastTransitionTime =
      before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : now;
    const c: Condition = { type, status, lastTransitionTime };
    if (!ok && reason !== undefined) c.reason = reason;
    if (!ok && message !== undefined) c.message = message;
    return c;
  };
  const incomplete = init.filter((s) => !initSucceeded(s)).map((s) => s.name);
  const initialized = incomplete.length === 0 || app.some(hasRun);
  const unready = app.filter((s) => !s.ready).map((s) => s.name);
  const completed = phase === 'Succeeded';
  const readyReason = completed ? 'PodCompleted' : 'ContainersNotReady';
  const readyMessage = completed ? undefined : `containers with unready status: [${unready.join(' ')}]`;
  const ready = !completed && unready.length === 0;
  return [
    make(
      'Initialized',
      initialized,
      'ContainersNotInitialized',
      `containers with incomplete status: [${incomplete.join(' ')}]`,
    ),
    make('Ready', ready, readyReason, readyMessage),
    make('ContainersReady', ready, readyReason, readyMessage),
    make('PodScheduled', true),
  ];
}

/**
 * Probe scheduling of one container run, as kubelet's probe workers do it, as a pure state
 * machine: `nextProbes(state, event)` returns the new state, the probes due now (for an
 * executor, which is I/O and lives elsewhere), the actions for the pod actor, and when to call
 * again. Time is `nowMs` carried by each event.
 *
 * - A probe first runs `initialDelaySeconds` after the container started, then every
 *   `periodSeconds` (never two at once: the executor answers within `timeoutSeconds`, a
 *   timeout counts as a failure).
 * - A startup probe gates the others: liveness and readiness do not run before it succeeded.
 *   `failureThreshold` failures of the startup or liveness probe ask for a restart, after
 *   which nothing more is probed in this run.
 * - Readiness starts false; `successThreshold` consecutive successes make the container ready,
 *   `failureThreshold` consecutive failures unready. Without a readiness probe a container is
 *   ready once started.
 *
 * Also resolves a probe's or hook's handler into a target (`probeTarget`).
 */

import {
  defaultProbeFailureThreshold,
  defaultProbePeriodSeconds,
  defaultProbeSuccessThreshold,
  defaultProbeTimeoutSeconds,
} from '../../core/defaults.js';
import type { Container, Handler, HttpGetAction, IntOrString, Probe } from '../../core/objects.js';
import { ContainerConfigError } from './errors.js';

export type ProbeKind = 'startup' | 'liveness' | 'readiness';

/** A probe's settings in milliseconds, defaults applied. */
export interface ProbeTiming {
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

export function probeTiming(probe: Probe): ProbeTiming {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: (probe.periodSeconds ?? defaultProbePeriodSeconds) * 1000,
    timeoutMs: (probe.timeoutSeconds ?? defaultProbeTimeoutSeconds) * 1000,
    successThreshold: probe.successThreshold ?? defaultProbeSuccessThreshold,
    failureThreshold: probe.failureThreshold ?? defaultProbeFailureThreshold,
  };
}

export interface ProbeWorker {
  timing: ProbeTiming;
  /** When the next probe may run. */
  nextDueMs: number;
  /** A probe was handed out and its result has not come back. */
  inFlight: boolean;
  successes: number;
  failures: number;
}

/** The probe state of one run of one container. */
export interface ContainerProbes {
  workers: Partial<Record<ProbeKind, ProbeWorker>>;
  /** The startup probe succeeded (true without one). */
  started: boolean;
  ready: boolean;
  /** A restart was asked for: nothing more is probed in this run. */
  stopped: boolean;
}

export type ProbeEvent =
  | { type: 'tick'; nowMs: number }
  | { type: 'result'; probe: ProbeKind; ok: boolean; nowMs: number; message?: string };

export type ProbeAction =
  /** Kill the container (and let its restart policy decide); `message` is for the event. */
  | { type: 'restart'; probe: 'startup' | 'liveness'; message: string }
  | { type: 'ready'; ready: boolean }
  | { type: 'started' };

export interface ProbeStep {
  state: ContainerProbes;
  /** Probes to run now, each to be answered by a `result` event. */
  due: { probe: ProbeKind; timeoutMs: number }[];
  actions: ProbeAction[];
  /** When the next probe falls due (absent: nothing to wait for). */
  wakeAtMs?: number;
}

const probeFields = {
  startup: 'startupProbe',
  liveness: 'livenessProbe',
  readiness: 'readinessProbe',
} as const;
const kinds: readonly ProbeKind[] = ['startup', 'liveness', 'readiness'];

/** The probe state of a container run that started at `startedAtMs`. */
export function initialProbes(container: Container, startedAtMs: number): ContainerProbes {
  const workers: Partial<Record<ProbeKind, ProbeWorker>> = {};
  for (const kind of kinds) {
    const probe = container[probeFields[kind]];
    if (probe === undefined) continue;
    const timing = probeTiming(probe);
    workers[kind] = {
      timing,
      nextDueMs: startedAtMs + timing.initialDelayMs,
      inFlight: false,
      successes: 0,
      failures: 0,
    };
  }
  const started = workers.startup === undefined;
  return { workers, started, ready: started && workers.readiness === undefined, stopped: false };
}

/** Applies one event; then hands out every probe due at the event's time. */
export function nextProbes(state: ContainerProbes, event: ProbeEvent): ProbeStep {
  const next: ContainerProbes = { ...state, workers: { ...state.workers } };
  const actions: ProbeAction[] = [];
  if (event.type === 'result') applyResult(next, event, actions);
  const due: ProbeStep['due'] = [];
  let wakeAtMs: number | undefined;
  if (!next.stopped) {
    for (const kind of kinds) {
      const worker = next.workers[kind];
      if (worker === undefined || !isActive(next, kind) || worker.inFlight) continue;
      if (event.nowMs >= worker.nextDueMs) {
        next.workers[kind] = { ...worker, inFlight: true, nextDueMs: event.nowMs + worker.timing.periodMs };
        due.push({ probe: kind, timeoutMs: worker.timing.timeoutMs });
      } else {
        wakeAtMs = Math.min(wakeAtMs ?? worker.nextDueMs, worker.nextDueMs);
      }
    }
  }
  return wakeAtMs === undefined ? { state: next, due, actions } : { state: next, due, actions, wakeAtMs };
}

/** Startup runs until it succeeded; liveness and readiness only after. */
function isActive(state: ContainerProbes, kind: ProbeKind): boolean {
  return kind === 'startup' ? !state.started : state.started;
}

function applyResult(
  state: ContainerProbes,
  event: Extract<ProbeEvent, { type: 'result' }>,
  actions: ProbeAction[],
): void {
  const worker = state.workers[event.probe];
  // A stale answer (after a restart was asked for, or never asked) changes nothing.
  if (worker === undefined || !worker.inFlight || state.stopped) return;
  const updated: ProbeWorker = {
    ...worker,
    inFlight: false,
    successes: event.ok ? worker.successes + 1 : 0,
    failures: event.ok ? 0 : worker.failures + 1,
  };
  state.workers[event.probe] = updated;
  const { successThreshold, failureThreshold } = updated.timing;
  const failed = updated.failures >= failureThreshold;
  const succeeded = updated.successes >= successThreshold;
  const detail = event.message === undefined ? '' : `: ${event.message}`;
  switch (event.probe) {
    case 'startup':
      if (succeeded) {
        state.started = true;
        actions.push({ type: 'started' });
        if (state.workers.readiness === undefined) setReady(state, true, actions);
      } else if (failed) {
        state.stopped = true;
        actions.push({ type: 'restart', probe: 'startup', message: `Startup probe failed${detail}` });
      }
      return;
    case 'liveness':
      if (failed) {
        state.stopped = true;
        setReady(state, false, actions);
        actions.push({ type: 'restart', probe: 'liveness', message: `Liveness probe failed${detail}` });
      }
      return;
    case 'readiness':
      if (succeeded) setReady(state, true, actions);
      else if (failed) setReady(state, false, actions);
      return;
    default: {
      const unknown: never = event.probe;
      throw new Error(`probe ${String(unknown)}: unknown kind`);
    }
  }
}

function setReady(state: ContainerProbes, ready: boolean, actions: ProbeAction[]): void {
  if (state.ready === ready) return;
  state.ready = ready;
  actions.push({ type: 'ready', ready });
}

// ---------------------------------------------------------------- targets

/** Kubernetes `HTTPHeader`, not yet in the core types. */
export interface HttpHeader {
  name: string;
  value: string;
}
/** A handler whose `httpGet` may carry `httpHeaders`. */
export type ProbeHandler = Handler & { httpGet?: HttpGetAction & { httpHeaders?: HttpHeader[] } };

/** What an executor runs for one probe or hook. */
export type ProbeTarget =
  | { type: 'http'; scheme: 'http'; host: string; port: number; path: string; headers: HttpHeader[] }
  | { type: 'tcp'; host: string; port: number }
  | { type: 'exec'; command: string[] };

/**
 * The target of `handler` of `container` (at field path `field`, e.g.
 * `spec.containers[0].livenessProbe`): the host defaults to the pod IP; a port may name one of
 * the container's ports. Only plain HTTP is supported. Throws ContainerConfigError.
 */
export function probeTarget(
  handler: ProbeHandler,
  container: Container,
  podIP: string,
  field: string,
): ProbeTarget {
  if (handler.exec !== undefined) return { type: 'exec', command: [...handler.exec.command] };
  if (handler.httpGet !== undefined) {
    const get = handler.httpGet;
    if ((get.scheme ?? 'HTTP') !== 'HTTP') {
      throw new ContainerConfigError(
        `${field}.httpGet.scheme`,
        `scheme ${get.scheme} is not supported (HTTP only)`,
      );
    }
    const path =
      get.path === undefined || get.path === '' ? '/' : get.path.startsWith('/') ? get.path : `/${get.path}`;
    return {
      type: 'http',
      scheme: 'http',
      host: get.host || podIP,
      port: resolvePort(get.port, container, `${field}.httpGet.port`),
      path,
      headers: (get.httpHeaders ?? []).map((h) => ({ name: h.name, value: h.value })),
    };
  }
  if (handler.tcpSocket !== undefined) {
    const tcp = handler.tcpSocket;
    return {
      type: 'tcp',
      host: tcp.host || podIP,
      port: resolvePort(tcp.port, container, `${field}.tcpSocket.port`),
    };
  }
  throw new ContainerConfigError(field, 'must specify exec, httpGet or tcpSocket');
}

const portMax = 65535;

/** A port number, or the number of the container port of that name. */
export function resolvePort(port: IntOrString, container: Container, field: string): number {
  const number = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : undefined;
  if (number === undefined) {
    const named = container.ports?.find((p) => p.name === port);
    if (named === undefined)
      throw new ContainerConfigError(field, `no port named "${port}" in container "${container.name}"`);
    return named.containerPort;
  }
  if (!Number.isInteger(number) || number < 1 || number > portMax) {
    throw new ContainerConfigError(field, `port ${number} is not in 1-${portMax}`);
  }
  return number;
}

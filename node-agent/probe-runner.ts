/**
 * Probes of a pod's containers, in two halves:
 * - `PodProbes` (pure): the probe state of every running app container of one pod, kept in the
 *   pod actor's state. It follows container runs (a new container id starts fresh probes, as
 *   kubelet's probe workers do per container), hands out the probes due, and turns the state
 *   machine's actions (`pod/probes.ts`) into restarts and health for the pod status.
 * - `runProbe` (I/O): executes one probe or hook target (httpGet, tcpSocket, exec) within its
 *   timeout; a timeout or error is a failure with a one-line message, never a throw.
 */

import { request } from 'node:http';
import { connect } from 'node:net';
import type { Container, Pod } from '../core/index.js';
import { ContainerConfigError } from './pod/errors.js';
import {
  type ContainerProbes,
  initialProbes,
  nextProbes,
  type ProbeEvent,
  type ProbeHandler,
  type ProbeKind,
  type ProbeTarget,
  probeTarget,
} from './pod/probes.js';
import type { ContainerRuntime } from './runtime.js';

// ---------------------------------------------------------------- pure: a pod's probes

/** A running app container as the pod sync saw it. */
export interface RunningContainer {
  name: string;
  /** The runtime's container id: a new id is a new run with fresh probes. */
  id: string;
  /** When this run started, ms since the epoch. */
  startedAtMs: number;
}

export interface PodProbes {
  /** Per container name: the run being probed and its probe state. */
  containers: Record<string, { id: string; probes: ContainerProbes }>;
}

/** Readiness and startup of the runs being probed, for the pod status (by container name). */
export type ContainerHealth = Record<string, { id: string; ready: boolean; started: boolean }>;

/** One probe to execute, answered by a `result` event with the same container, id and probe. */
export interface DueProbe {
  container: string;
  id: string;
  probe: ProbeKind;
  timeoutMs: number;
  /** Undefined when the handler cannot be resolved (`error` says why): a failed probe. */
  target?: ProbeTarget;
  error?: string;
}

/** A container run a startup or liveness probe failed: stop it, its restart policy decides. */
export interface ProbeRestart {
  container: string;
  id: string;
  /** The probe that failed. */
  probe: 'startup' | 'liveness';
  message: string;
}

export interface PodProbeStep {
  state: PodProbes;
  due: DueProbe[];
  restarts: ProbeRestart[];
  /** A container's readiness or startup changed: the pod status should be reported again. */
  healthChanged: boolean;
  /** When the next probe falls due. */
  wakeAtMs?: number;
}

export type PodProbeEvent =
  | { type: 'tick'; nowMs: number }
  | {
      type: 'result';
      container: string;
      id: string;
      probe: ProbeKind;
      ok: boolean;
      message?: string;
      nowMs: number;
    };

export const emptyPodProbes: PodProbes = { containers: {} };

const probeFields = {
  startup: 'startupProbe',
  liveness: 'livenessProbe',
  readiness: 'readinessProbe',
} as const;

function appContainer(pod: Pod, name: string): { container: Container; index: number } | undefined {
  const index = pod.spec.containers.findIndex((c) => c.name === name);
  return index < 0 ? undefined : { container: pod.spec.containers[index], index };
}

/**
 * Follows the runs in `running` (the app containers running now): a run not probed yet gets
 * fresh probes from its start time, runs no longer running are forgotten. Then a tick.
 */
export function trackContainers(
  state: PodProbes,
  pod: Pod,
  running: readonly RunningContainer[],
  podIP: string,
  nowMs: number,
): PodProbeStep {
  const containers: PodProbes['containers'] = {};
  for (const run of running) {
    const spec = appContainer(pod, run.name);
    if (spec === undefined) continue;
    const known = state.containers[run.name];
    containers[run.name] =
      known !== undefined && known.id === run.id
        ? known
        : { id: run.id, probes: initialProbes(spec.container, run.startedAtMs) };
  }
  return stepPodProbes({ containers }, pod, { type: 'tick', nowMs }, podIP);
}

/** Applies a tick (every container) or a probe result (its container only). */
export function stepPodProbes(state: PodProbes, pod: Pod, event: PodProbeEvent, podIP: string): PodProbeStep {
  const out: PodProbeStep = {
    state: { containers: { ...state.containers } },
    due: [],
    restarts: [],
    healthChanged: false,
  };
  for (const [name, entry] of Object.entries(state.containers)) {
    let probeEvent: ProbeEvent = { type: 'tick', nowMs: event.nowMs };
    if (event.type === 'result') {
      // A result of an older run of this container changes nothing.
      if (event.container !== name || event.id !== entry.id) continue;
      probeEvent = {
        type: 'result',
        probe: event.probe,
        ok: event.ok,
        nowMs: event.nowMs,
        ...(event.message !== undefined ? { message: event.message } : {}),
      };
    }
    const step = nextProbes(entry.probes, probeEvent);
    out.state.containers[name] = { id: entry.id, probes: step.state };
    for (const action of step.actions) {
      if (action.type === 'restart')
        out.restarts.push({ container: name, id: entry.id, probe: action.probe, message: action.message });
      else out.healthChanged = true;
    }
    for (const d of step.due) out.due.push(dueProbe(pod, name, entry.id, d.probe, d.timeoutMs, podIP));
    if (step.wakeAtMs !== undefined) out.wakeAtMs = Math.min(out.wakeAtMs ?? step.wakeAtMs, step.wakeAtMs);
  }
  return out;
}

function dueProbe(
  pod: Pod,
  name: string,
  id: string,
  probe: ProbeKind,
  timeoutMs: number,
  podIP: string,
): DueProbe {
  const base = { container: name, id, probe, timeoutMs };
  const spec = appContainer(pod, name);
  const handler = spec?.container[probeFields[probe]];
  if (spec === undefined || handler === undefined)
    return { ...base, error: `container ${name}: no ${probe} probe` };
  const field = `spec.containers[${spec.index}].${probeFields[probe]}`;
  try {
    return { ...base, target: probeTarget(handler as ProbeHandler, spec.container, podIP, field) };
  } catch (err) {
    if (!(err instanceof ContainerConfigError)) throw err;
    return { ...base, error: err.message };
  }
}

/** The readiness and startup of every run being probed. */
export function containerHealth(state: PodProbes): ContainerHealth {
  const out: ContainerHealth = {};
  for (const [name, entry] of Object.entries(state.containers)) {
    out[name] = { id: entry.id, ready: entry.probes.ready, started: entry.probes.started };
  }
  return out;
}

// ---------------------------------------------------------------- I/O: executing a probe

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or the command's output), one line. */
  message?: string;
}

/** Output of an exec probe kept for its message; the rest is read and dropped. */
const execOutputBytesMax = 10 * 1024;
/** The response body of an HTTP probe is read (to free the socket) but never kept. */
const httpStatusOkMin = 200;
const httpStatusOkMax = 399;

/** Runs `target` in (exec) or against (http, tcp) container `containerId` within `timeoutMs`. */
export async function runProbe(
  runtime: ContainerRuntime,
  containerId: string,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeResult> {
  switch (target.type) {
    case 'http':
      return httpProbe(target, timeoutMs);
    case 'tcp':
      return tcpProbe(target.host, target.port, timeoutMs);
    case 'exec':
      return execProbe(runtime, containerId, target.command, timeoutMs);
    default: {
      const unknown: never = target;
      throw new Error(`probe target ${JSON.stringify(unknown)}: unknown type`);
    }
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** GET; success is a status in 200..399 (redirects are not followed, as a success). */
function httpProbe(target: Extract<ProbeTarget, { type: 'http' }>, timeoutMs: number): Promise<ProbeResult> {
  const url = `http://${hostPort(target.host, target.port)}${target.path}`;
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'User-Agent': 'coxswain-probe/1.0', Accept: '*/*' };
    for (const h of target.headers) headers[h.name] = h.value;
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: target.path,
        method: 'GET',
        headers,
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
        agent: false,
      },
      (res) => {
        const code = res.statusCode ?? 0;
        res.resume();
        res.on('error', () => {});
        if (code >= httpStatusOkMin && code <= httpStatusOkMax) resolve({ ok: true });
        else resolve({ ok: false, message: `HTTP probe failed with statuscode: ${code}` });
        req.destroy();
      },
    );
    req.on('error', (err) => {
      const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError';
      const why = timedOut ? `timed out after ${timeoutMs} ms` : errorText(err);
      resolve({ ok: false, message: `Get "${url}": ${why}` });
    });
    req.end();
  });
}

/** Success: a TCP connection opens within the timeout (then is closed at once). */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, message: `dial tcp ${hostPort(host, port)}: timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: true });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, message: `dial tcp ${hostPort(host, port)}: ${errorText(err)}` });
    });
  });
}

/** Success: the command exits 0 within the timeout; on timeout the session is killed. */
async function execProbe(
  runtime: ContainerRuntime,
  containerId: string,
  command: string[],
  timeoutMs: number,
): Promise<ProbeResult> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const session = await Promise.race([runtime.exec(containerId, { command }), timedOut]);
    if (session === 'timeout') return { ok: false, message: `command timed out after ${timeoutMs} ms` };
    const chunks: Uint8Array[] = [];
    let kept = 0;
    const read = (async () => {
      for await (const chunk of session.output) {
        if (kept >= execOutputBytesMax) continue;
        const part = chunk.data.subarray(0, execOutputBytesMax - kept);
        chunks.push(part);
        kept += part.length;
      }
      return session.exitCode;
    })();
    const outcome = await Promise.race([read, timedOut]);
    if (outcome === 'timeout') {
      session.kill();
      read.catch(() => {});
      return { ok: false, message: `command ${JSON.stringify(command)} timed out after ${timeoutMs} ms` };
    }
    if (outcome === 0) return { ok: true };
    const output = Buffer.concat(chunks).toString().trim().replace(/\s+/g, ' ');
    return {
      ok: false,
      message: `command ${JSON.stringify(command)} exited with ${outcome}${output ? `: ${output}` : ''}`,
    };
  } catch (err) {
    return { ok: false, message: `command ${JSON.stringify(command)}: ${errorText(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

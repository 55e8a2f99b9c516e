/**
 * What the pod actor has observed of one container, as plain data: the input of the restart
 * decisions (restart.ts) and of the pod status (status.ts).
 */

import type { ContainerPhase } from '../runtime.js';

/** How one run of a container ended. */
export interface ContainerTermination {
  exitCode: number;
  /** `Completed`, `Error`, `OOMKilled`... Default: `Completed` for exit 0, else `Error`. */
  reason?: string;
  message?: string;
  /** RFC 3339. */
  startedAt?: string;
  /** RFC 3339. */
  finishedAt?: string;
  /** The runtime's id of the container that ran. */
  id?: string;
}

/** The newest container of one pod container name (absent: never created). */
export interface ContainerObservation {
  /** The runtime's container id. */
  id?: string;
  imageID?: string;
  phase: ContainerPhase;
  exitCode?: number;
  reason?: string;
  message?: string;
  /** RFC 3339. */
  startedAt?: string;
  /** RFC 3339. */
  finishedAt?: string;
  restartCount: number;
  /** From the readiness probe; absent: ready when running and started (no readiness probe). */
  ready?: boolean;
  /** From the startup probe; absent: started when running (no startup probe). */
  started?: boolean;
  /** The run before this one, for `lastState`. */
  lastTermination?: ContainerTermination;
}

/** A reason the container is waiting, e.g. `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerConfigError`. */
export interface WaitingReason {
  reason: string;
  message?: string;
}

/** Milliseconds since the epoch of an RFC 3339 time, or undefined when absent or unparsable. */
export function timeMs(rfc3339: string | undefined): number | undefined {
  if (rfc3339 === undefined) return undefined;
  const ms = Date.parse(rfc3339);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The default termination reason Kubernetes reports for an exit code. */
export function terminationReason(exitCode: number, reason: string | undefined): string {
  return reason ?? (exitCode === 0 ? 'Completed' : 'Error');
}

/**
 * Restart decisions of a pod actor, as kubelet makes them: which containers to (re)start now,
 * which wait in `CrashLoopBackOff` and until when. Pure: the observations and "now" come in as
 * data, the new backoff state goes out; the actor stores it and calls again on any change or
 * at `wakeAtMs`.
 *
 * - restartPolicy Always restarts any exit, OnFailure a non-zero exit, Never none.
 * - Every restart waits a capped exponential backoff measured from the exit (by default 10 s,
 *   20 s, 40 s ... 300 s), reset to the initial delay when the run lasted at least
 *   `backoffResetAfterRunMs` (10 min, kubelet's "ran 10 minutes without problems").
 * - Init containers run one at a time in order, each to exit 0 before the next starts; a failed
 *   one is restarted with backoff unless the policy is Never, which fails the pod. App
 *   containers start (all together) only after the last init container succeeded.
 */

import type { RestartPolicy } from '../../core/objects.js';
import { type ContainerObservation, timeMs, type WaitingReason } from './observation.js';

export interface BackoffPolicy {
  /** Delay before the first restart. */
  backoffMsInitial: number;
  /** The delay doubles per restart up to this. */
  backoffMsMax: number;
  /** A run at least this long resets the delay to `backoffMsInitial`. */
  backoffResetAfterRunMs: number;
}

/** Kubelet's defaults: 10 s doubling to 5 min, reset after 10 min of running. */
export const defaultBackoffPolicy: Readonly<BackoffPolicy> = {
  backoffMsInitial: 10_000,
  backoffMsMax: 300_000,
  backoffResetAfterRunMs: 600_000,
};

/** The waiting reason of a container whose restart is being delayed. */
export const crashLoopBackOff = 'CrashLoopBackOff';

/** The backoff chosen for one exit of one container name. */
export interface Backoff {
  /** The `restartCount` of the run that exited (makes repeated decisions idempotent). */
  restartCount: number;
  /** When that run exited, ms since the epoch. */
  exitAtMs: number;
  delayMs: number;
}

/** Whether `policy` restarts a container that exited with `exitCode`. */
export function shouldRestart(policy: RestartPolicy, exitCode: number): boolean {
  switch (policy) {
    case 'Always':
      return true;
    case 'OnFailure':
      return exitCode !== 0;
    case 'Never':
      return false;
    default: {
      const unknown: never = policy;
      throw new Error(`restartPolicy ${String(unknown)}: unknown`);
    }
  }
}

/**
 * The backoff for the exit of `run`, given the one chosen for the previous exit: the initial
 * delay the first time or after a long run, else double the previous delay, capped.
 */
export function backoffAfterExit(
  previous: Backoff | undefined,
  run: { restartCount: number; startedAtMs?: number; exitAtMs: number },
  policy: BackoffPolicy = defaultBackoffPolicy,
): Backoff {
  if (previous !== undefined && previous.restartCount === run.restartCount) return previous;
  const ranMs = run.startedAtMs === undefined ? 0 : run.exitAtMs - run.startedAtMs;
  const fresh = previous === undefined || ranMs >= policy.backoffResetAfterRunMs;
  const delayMs = fresh ? policy.backoffMsInitial : Math.min(previous.delayMs * 2, policy.backoffMsMax);
  return { restartCount: run.restartCount, exitAtMs: run.exitAtMs, delayMs };
}

export interface RestartInput {
  /** Default Always, as the API defaults it. */
  restartPolicy?: RestartPolicy;
  /** Init container names in spec order. */
  initContainers: readonly string[];
  /** App container names in spec order. */
  containers: readonly string[];
  /** The newest container per name; absent: never created. */
  observed: Readonly<Record<string, ContainerObservation | undefined>>;
  /** The state returned by the previous call (empty at first). */
  backoff: Readonly<Record<string, Backoff>>;
  nowMs: number;
  policy?: BackoffPolicy;
}

export interface ContainerStart {
  name: string;
  init: boolean;
  /** The restart count of the container to create (0 for the first). */
  restartCount: number;
}

export interface RestartPlan {
  /** Containers to create and start now, in order. */
  start: ContainerStart[];
  /** Containers waiting out a backoff: reason `CrashLoopBackOff` until `untilMs`. */
  waiting: Record<string, WaitingReason & { untilMs: number }>;
  /** The backoff state to pass to the next call. */
  backoff: Record<string, Backoff>;
  /** Every init container exited 0 (true when there are none). */
  initialized: boolean;
  /** Nothing will ever be started again: an init container failed under Never, or every app container exited for good. */
  terminal: boolean;
  /** The earliest backoff end, when the plan changes without a new observation. */
  wakeAtMs?: number;
}

type Step = { kind: 'start' } | { kind: 'wait'; untilMs: number; delayMs: number } | { kind: 'none' };

/** What to do about each container of a pod now. */
export function planRestarts(input: RestartInput): RestartPlan {
  const policy = input.restartPolicy ?? 'Always';
  const backoffPolicy = input.policy ?? defaultBackoffPolicy;
  const plan: RestartPlan = {
    start: [],
    waiting: {},
    backoff: { ...input.backoff },
    initialized: true,
    terminal: false,
  };

  const decide = (name: string, restartable: (exitCode: number) => boolean): Step => {
    const seen = input.observed[name];
    if (seen === undefined) return { kind: 'start' };
    if (seen.phase !== 'exited' || !restartable(seen.exitCode ?? 0)) return { kind: 'none' };
    const exitAtMs = timeMs(seen.finishedAt) ?? plan.backoff[name]?.exitAtMs ?? input.nowMs;
    const run = { restartCount: seen.restartCount, startedAtMs: timeMs(seen.startedAt), exitAtMs };
    const backoff = backoffAfterExit(input.backoff[name], run, backoffPolicy);
    plan.backoff[name] = backoff;
    const untilMs = backoff.exitAtMs + backoff.delayMs;
    if (input.nowMs >= untilMs) return { kind: 'start' };
    return { kind: 'wait', untilMs, delayMs: backoff.delayMs };
  };

  const apply = (name: string, init: boolean, step: Step): void => {
    if (step.kind === 'start') {
      const seen = input.observed[name];
      plan.start.push({ name, init, restartCount: seen === undefined ? 0 : seen.restartCount + 1 });
    } else if (step.kind === 'wait') {
      plan.waiting[name] = {
        reason: crashLoopBackOff,
        message: `back-off ${formatDelay(step.delayMs)} restarting failed container=${name}`,
        untilMs: step.untilMs,
      };
      plan.wakeAtMs = Math.min(plan.wakeAtMs ?? step.untilMs, step.untilMs);
    }
  };

  for (const name of input.initContainers) {
    const seen = input.observed[name];
    if (seen?.phase === 'exited' && (seen.exitCode ?? 0) === 0) continue;
    plan.initialized = false;
    if (seen?.phase === 'exited' && policy === 'Never') {
      plan.terminal = true;
      return plan;
    }
    // Init containers restart on failure whatever the policy (Never was handled above).
    apply(
      name,
      true,
      decide(name, (exitCode) => exitCode !== 0),
    );
    return plan;
  }

  let finished = 0;
  for (const name of input.containers) {
    const step = decide(name, (exitCode) => shouldRestart(policy, exitCode));
    apply(name, false, step);
    const seen = input.observed[name];
    if (step.kind === 'none' && seen?.phase === 'exited') finished++;
  }
  plan.terminal = input.containers.length > 0 && finished === input.containers.length;
  return plan;
}

/** Kubelet's rendering of a delay in its back-off message: `10s`, `1m20s`, `5m0s`. */
export function formatDelay(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${seconds % 60}s`;
}

/**
 * `spec.activeDeadlineSeconds`, as kubelet enforces it: a pod that has been active on its node
 * for longer than the deadline, counted from `status.startTime`, is failed — its containers
 * are stopped (gracefully) and never restarted, and its status becomes phase `Failed` with
 * reason `DeadlineExceeded`. Pure: the start time and "now" come in as data.
 */

import type { Pod, PodStatus } from '../../core/objects.js';
import { timeMs } from './observation.js';

/** Kubelet's reason and message for a pod failed by its active deadline. */
export const deadlineExceeded = {
  reason: 'DeadlineExceeded',
  message: 'Pod was active on the node longer than the specified deadline',
} as const;

/**
 * When the pod's active deadline passes (ms since the epoch), given the status last reported
 * for it; undefined without a deadline or before the pod has a start time.
 */
export function activeDeadlineAtMs(pod: Pod, reported: PodStatus | undefined): number | undefined {
  const seconds = pod.spec.activeDeadlineSeconds;
  const startMs = timeMs(reported?.startTime);
  if (seconds === undefined || startMs === undefined) return undefined;
  return startMs + seconds * 1000;
}

/** Whether the pod is past its active deadline at `nowMs` (kubelet's `pastActiveDeadline`). */
export function pastActiveDeadline(pod: Pod, reported: PodStatus | undefined, nowMs: number): boolean {
  const at = activeDeadlineAtMs(pod, reported);
  return at !== undefined && nowMs >= at;
}

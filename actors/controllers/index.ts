/** The controllers that run on the leader, and their framework. */

import type { Controller } from './controller.js';
import { replicaSetController } from './replicaset.js';
import { schedulerController } from './scheduler.js';

export { ClusterCache } from './cache.js';
export type {
  Controller,
  ControllerApi,
  ControllerContext,
  ControllerStats,
  ReconcileResult,
} from './controller.js';
export { ControllerManager, type ControllerManagerStatus } from './manager.js';
export { type SchedulerCounters, type SchedulerOptions, schedulerController } from './scheduler.js';

/** Every built-in controller, each a fresh instance (controllers may keep per-term state). */
export function defaultControllers(): Controller[] {
  return [replicaSetController(), schedulerController()];
}

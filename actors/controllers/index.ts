/** The controllers that run on the leader, and their framework. */

import type { Controller } from './controller.js';
import { cronJobController } from './cronjob.js';
import { daemonSetController } from './daemonset.js';
import { jobController } from './job.js';
import { replicaSetController } from './replicaset.js';
import { statefulSetController } from './statefulset.js';

export { ClusterCache } from './cache.js';
export type {
  Controller,
  ControllerApi,
  ControllerContext,
  ControllerStats,
  ReconcileResult,
} from './controller.js';
export { ControllerManager, type ControllerManagerStatus } from './manager.js';

/** Every built-in controller, each a fresh instance (controllers may keep per-term state). */
export function defaultControllers(): Controller[] {
  return [
    replicaSetController(),
    daemonSetController(),
    statefulSetController(),
    jobController(),
    cronJobController(),
  ];
}

/** The controllers that run on the leader, and their framework. */

import type { QuotaUsageSource } from '../admission/index.js';
import type { Controller } from './controller.js';
import { cronJobController } from './cronjob.js';
import { daemonSetController } from './daemonset.js';
import { deploymentController } from './deployment.js';
import { endpointsController } from './endpoints.js';
import { type EventRetentionOptions, eventRetentionController } from './events.js';
import { garbageCollector } from './gc.js';
import { jobController } from './job.js';
import { namespaceController } from './namespace.js';
import { type NodeLifecycleOptions, nodeLifecycleController } from './nodelifecycle.js';
import { type PodGcOptions, podGcController } from './podgc.js';
import { replicaSetController } from './replicaset.js';
import { resourceQuotaController } from './resourcequota.js';
import { type SchedulerOptions, schedulerController } from './scheduler.js';
import { statefulSetController } from './statefulset.js';

export { ClusterCache } from './cache.js';
export type {
  Controller,
  ControllerApi,
  ControllerContext,
  ControllerStats,
  ReconcileResult,
} from './controller.js';
export { endpointsController } from './endpoints.js';
export { ControllerManager, type ControllerManagerStatus } from './manager.js';
export { resourceQuotaController } from './resourcequota.js';
export { type SchedulerCounters, type SchedulerOptions, schedulerController } from './scheduler.js';

/** What the built-in controllers share with the rest of the master. */
export interface DefaultControllerDeps {
  /** Leader admission's quota usage (else the quota controller sums usage from its cache). */
  quotaUsage?: QuotaUsageSource;
}

/** Settings of the built-in controllers (`cox master` flags); each has a Kubernetes-like default. */
export interface ControllerOptions extends NodeLifecycleOptions, PodGcOptions, EventRetentionOptions {
  /** The scheduler's settings. */
  scheduler?: SchedulerOptions;
}

/** Every built-in controller, each a fresh instance (controllers may keep per-term state). */
export function defaultControllers(opts: ControllerOptions & DefaultControllerDeps = {}): Controller[] {
  return [
    replicaSetController(),
    deploymentController(),
    daemonSetController(),
    statefulSetController(),
    jobController(),
    cronJobController(),
    resourceQuotaController(opts.quotaUsage),
    endpointsController(),
    garbageCollector(),
    namespaceController(),
    nodeLifecycleController(opts),
    podGcController(opts),
    eventRetentionController(opts),
    schedulerController(opts.scheduler),
  ];
}

/** The controllers that run on the leader, and their framework. */

import type { Controller } from './controller.js';
import { type EventRetentionOptions, eventRetentionController } from './events.js';
import { garbageCollector } from './gc.js';
import { namespaceController } from './namespace.js';
import { type NodeLifecycleOptions, nodeLifecycleController } from './nodelifecycle.js';
import { type PodGcOptions, podGcController } from './podgc.js';
import { replicaSetController } from './replicaset.js';

export { ClusterCache } from './cache.js';
export type {
  Controller,
  ControllerApi,
  ControllerContext,
  ControllerStats,
  ReconcileResult,
} from './controller.js';
export { ControllerManager, type ControllerManagerStatus } from './manager.js';

/** Settings of the built-in controllers (`cox master` flags); each has a Kubernetes-like default. */
export interface ControllerOptions extends NodeLifecycleOptions, PodGcOptions, EventRetentionOptions {}

/** Every built-in controller, each a fresh instance (controllers may keep per-term state). */
export function defaultControllers(opts: ControllerOptions = {}): Controller[] {
  return [
    replicaSetController(),
    garbageCollector(),
    namespaceController(),
    nodeLifecycleController(opts),
    podGcController(opts),
    eventRetentionController(opts),
  ];
}

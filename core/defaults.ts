/**
 * Kubernetes defaulting for API objects.
 *
 * `applyDefaults` returns a new object and never modifies its input (objects may come from
 * a read-only cache). It is idempotent: `applyDefaults(applyDefaults(o))` deep-equals
 * `applyDefaults(o)`. Only absent fields are filled; present values, valid or not, are kept
 * for `validateObject` to judge, and malformed structure is left alone rather than thrown on.
 */

import { cloneJson } from './json-clone.js';
import type { ApiObject } from './objects.js';

export const defaultTerminationGracePeriodSeconds = 30;
export const defaultTerminationMessagePath = '/dev/termination-log';
export const defaultProbePeriodSeconds = 10;
export const defaultProbeTimeoutSeconds = 1;
export const defaultProbeSuccessThreshold = 1;
export const defaultProbeFailureThreshold = 3;
export const defaultMaxSurge = '25%';
export const defaultMaxUnavailable = '25%';
export const defaultRevisionHistoryLimit = 10;
export const defaultProgressDeadlineSeconds = 600;
export const defaultDaemonSetMaxUnavailable = 1;
export const defaultDaemonSetMaxSurge = 0;
export const defaultJobBackoffLimit = 6;
export const defaultSchedulerName = 'default-scheduler';
export const defaultSuccessfulJobsHistoryLimit = 3;
export const defaultFailedJobsHistoryLimit = 1;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets `obj[key]` to `value` when absent (undefined or null). */
function setDefault(obj: Json, key: string, value: unknown): void {
  if (!Object.hasOwn(obj, key) || obj[key] === undefined || obj[key] === null) obj[key] = value;
}

function ownRecord(obj: Json, key: string): Json | undefined {
  const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return isRecord(value) ? value : undefined;
}

function ownRecords(obj: Json, key: string): Json[] {
  const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

/** A copy of `obj` with every absent defaultable field filled in. */
export function applyDefaults<T extends ApiObject>(obj: T): T {
  return fillDefaults(cloneJson(obj));
}

/**
 * Fills in `copy`'s absent defaultable fields, in place, and returns it: for a copy the caller
 * made and owns (admission's `canonicalJson` copy). {@link applyDefaults} copies first.
 */
export function fillDefaults<T extends ApiObject>(copy: T): T {
  if (!isRecord(copy)) return copy;
  const json = copy as unknown as Json;
  const spec = ownRecord(json, 'spec');
  const kind: ApiObject['kind'] = copy.kind;
  switch (kind) {
    case 'Pod':
      if (spec) defaultPodSpec(spec);
      break;
    case 'Service':
      if (spec) defaultServiceSpec(spec);
      break;
    case 'ReplicaSet':
      if (spec) defaultReplicaSetSpec(spec);
      break;
    case 'Deployment':
      if (spec) defaultDeploymentSpec(spec);
      break;
    case 'DaemonSet':
      if (spec) defaultDaemonSetSpec(spec);
      break;
    case 'StatefulSet':
      if (spec) defaultStatefulSetSpec(spec);
      break;
    case 'Job':
      if (spec) defaultJobSpec(spec);
      defaultJobLabels(json, spec);
      break;
    case 'Node': {
      const status = ownRecord(json, 'status');
      if (status) defaultNodeStatus(status);
      break;
    }
    case 'Endpoints':
      for (const subset of ownRecords(json, 'subsets')) {
        for (const port of ownRecords(subset, 'ports')) setDefault(port, 'protocol', 'TCP');
      }
      break;
    case 'Secret':
      setDefault(json, 'type', 'Opaque');
      break;
    case 'CronJob':
      if (spec) defaultCronJobSpec(spec);
      break;
    case 'EndpointSlice':
      for (const port of ownRecords(json, 'ports')) setDefault(port, 'protocol', 'TCP');
      break;
    case 'Namespace':
    case 'ConfigMap':
    case 'Event':
    case 'Lease':
    case 'ControllerRevision':
    case 'LimitRange':
    case 'ResourceQuota':
      break;
    default: {
      const unknown: never = kind;
      throw new Error(`unhandled kind ${JSON.stringify(unknown)}`);
    }
  }
  return copy;
}

/**
 * `Always` when the image has no tag or the tag `latest`; `IfNotPresent` otherwise
 * (including digest references). The tag is the part after the last ':' of the last path segment.
 */
export function defaultImagePullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.lastIndexOf(':');
  const tag = colon < 0 ? '' : lastSegment.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultPodSpec(spec: Json): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'schedulerName', defaultSchedulerName);
  setDefault(spec, 'terminationGracePeriodSeconds', defaultTerminationGracePeriodSeconds);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  for (const container of [...ownRecords(spec, 'containers'), ...ownRecords(spec, 'initContainers')]) {
    defaultContainer(container);
  }
}

function defaultContainer(container: Json): void {
  const image = container.image;
  if (typeof image === 'string') setDefault(container, 'imagePullPolicy', defaultImagePullPolicy(image));
  setDefault(container, 'terminationMessagePath', defaultTerminationMessagePath);
  for (const port of ownRecords(container, 'ports')) setDefault(port, 'protocol', 'TCP');
  for (const field of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const probe = ownRecord(container, field);
    if (probe) defaultProbe(probe);
  }
}

function defaultProbe(probe: Json): void {
  setDefault(probe, 'periodSeconds', defaultProbePeriodSeconds);
  setDefault(probe, 'timeoutSeconds', defaultProbeTimeoutSeconds);
  setDefault(probe, 'successThreshold', defaultProbeSuccessThreshold);
  setDefault(probe, 'failureThreshold', defaultProbeFailureThreshold);
}

function defaultServiceSpec(spec: Json): void {
  setDefault(spec, 'type', 'ClusterIP');
  setDefault(spec, 'sessionAffinity', 'None');
  for (const port of ownRecords(spec, 'ports')) {
    setDefault(port, 'protocol', 'TCP');
    if (typeof port.port === 'number') setDefault(port, 'targetPort', port.port);
  }
}

function defaultTemplate(spec: Json): void {
  const template = ownRecord(spec, 'template');
  const podSpec = template ? ownRecord(template, 'spec') : undefined;
  if (podSpec) defaultPodSpec(podSpec);
}

function defaultReplicaSetSpec(spec: Json): void {
  setDefault(spec, 'replicas', 1);
  setDefault(spec, 'minReadySeconds', 0);
  defaultTemplate(spec);
}

function defaultDeploymentSpec(spec: Json): void {
  setDefault(spec, 'replicas', 1);
  setDefault(spec, 'revisionHistoryLimit', defaultRevisionHistoryLimit);
  setDefault(spec, 'progressDeadlineSeconds', defaultProgressDeadlineSeconds);
  setDefault(spec, 'minReadySeconds', 0);
  setDefault(spec, 'strategy', {});
  const strategy = ownRecord(spec, 'strategy');
  if (strategy) {
    setDefault(strategy, 'type', 'RollingUpdate');
    if (strategy.type === 'RollingUpdate') {
      setDefault(strategy, 'rollingUpdate', {});
      const rolling = ownRecord(strategy, 'rollingUpdate');
      if (rolling) {
        setDefault(rolling, 'maxSurge', defaultMaxSurge);
        setDefault(rolling, 'maxUnavailable', defaultMaxUnavailable);
      }
    }
  }
  defaultTemplate(spec);
}

function defaultDaemonSetSpec(spec: Json): void {
  setDefault(spec, 'revisionHistoryLimit', defaultRevisionHistoryLimit);
  setDefault(spec, 'minReadySeconds', 0);
  setDefault(spec, 'updateStrategy', {});
  const strategy = ownRecord(spec, 'updateStrategy');
  if (strategy) {
    setDefault(strategy, 'type', 'RollingUpdate');
    if (strategy.type === 'RollingUpdate') {
      setDefault(strategy, 'rollingUpdate', {});
      const rolling = ownRecord(strategy, 'rollingUpdate');
      if (rolling) {
        setDefault(rolling, 'maxUnavailable', defaultDaemonSetMaxUnavailable);
        setDefault(rolling, 'maxSurge', defaultDaemonSetMaxSurge);
      }
    }
  }
  defaultTemplate(spec);
}

/** Kubernetes without feature gates: no `maxUnavailable` default (it needs MaxUnavailableStatefulSet). */
function defaultStatefulSetSpec(spec: Json): void {
  setDefault(spec, 'replicas', 1);
  setDefault(spec, 'podManagementPolicy', 'OrderedReady');
  setDefault(spec, 'revisionHistoryLimit', defaultRevisionHistoryLimit);
  setDefault(spec, 'minReadySeconds', 0);
  setDefault(spec, 'updateStrategy', {});
  const strategy = ownRecord(spec, 'updateStrategy');
  if (strategy) {
    setDefault(strategy, 'type', 'RollingUpdate');
    if (strategy.type === 'RollingUpdate') {
      setDefault(strategy, 'rollingUpdate', {});
      const rolling = ownRecord(strategy, 'rollingUpdate');
      if (rolling) setDefault(rolling, 'partition', 0);
    }
  }
  defaultTemplate(spec);
}

/**
 * As Kubernetes: `completions` and `parallelism` both become 1 only when both are absent;
 * a Job with `parallelism` but no `completions` is a work queue and keeps `completions` unset.
 * The selector and the controller-uid labels are not generated here: they need the uid, which
 * the proposer chooses.
 */
function defaultJobSpec(spec: Json): void {
  if (spec.completions == null && spec.parallelism == null) setDefault(spec, 'completions', 1);
  setDefault(spec, 'parallelism', 1);
  setDefault(spec, 'backoffLimit', defaultJobBackoffLimit);
  setDefault(spec, 'completionMode', 'NonIndexed');
  setDefault(spec, 'suspend', false);
  defaultTemplate(spec);
}

function defaultCronJobSpec(spec: Json): void {
  setDefault(spec, 'concurrencyPolicy', 'Allow');
  setDefault(spec, 'suspend', false);
  setDefault(spec, 'successfulJobsHistoryLimit', defaultSuccessfulJobsHistoryLimit);
  setDefault(spec, 'failedJobsHistoryLimit', defaultFailedJobsHistoryLimit);
  const template = ownRecord(spec, 'jobTemplate');
  const jobSpec = template ? ownRecord(template, 'spec') : undefined;
  if (jobSpec) defaultJobSpec(jobSpec);
}

/** As Kubernetes (batch/v1): a Job without labels takes its pod template's labels. */
function defaultJobLabels(job: Json, spec: Json | undefined): void {
  const template = spec ? ownRecord(spec, 'template') : undefined;
  const templateMeta = template ? ownRecord(template, 'metadata') : undefined;
  const templateLabels = templateMeta ? ownRecord(templateMeta, 'labels') : undefined;
  const metadata = ownRecord(job, 'metadata');
  if (!templateLabels || !metadata) return;
  const labels = ownRecord(metadata, 'labels');
  if (metadata.labels == null || (labels && Object.keys(labels).length === 0)) {
    metadata.labels = structuredClone(templateLabels);
  }
}

/** `allocatable` defaults to a copy of `capacity`. */
function defaultNodeStatus(status: Json): void {
  const capacity = ownRecord(status, 'capacity');
  if (capacity) setDefault(status, 'allocatable', structuredClone(capacity));
}

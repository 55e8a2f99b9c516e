/**
 * Kubernetes defaulting for API objects.
 *
 * `applyDefaults` returns a new object and never modifies its input (objects may come from
 * a read-only cache). It is idempotent: `applyDefaults(applyDefaults(o))` deep-equals
 * `applyDefaults(o)`. Only absent fields are filled; present values, valid or not, are kept
 * for `validateObject` to judge, and malformed structure is left alone rather than thrown on.
 */

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
  const copy = structuredClone(obj);
  if (!isRecord(copy)) return copy;
  const json = copy as unknown as Json;
  const spec = ownRecord(json, 'spec');
  const kind: ApiObject['kind'] = obj.kind;
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
    case 'Secret':
      setDefault(json, 'type', 'Opaque');
      break;
    case 'Namespace':
    case 'ConfigMap':
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

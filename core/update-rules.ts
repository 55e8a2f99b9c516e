/**
 * What a create may set and what an update may not change.
 *
 * Updates: what an update may not change, as Kubernetes' `ValidateUpdate` rules: fields that identify
 * what a controller owns or what a node runs are immutable once created. Pure; the apply
 * rules call it, so every replica rejects the same updates with the same field path.
 */

import { deepEqual } from './deep-equal.js';
import { withNamespaceFinalizer } from './namespaces.js';
import type { ApiObject, Job } from './objects.js';
import { qosClass } from './qos.js';
import { withDefaultTolerations } from './taints.js';
import { type FieldError, FieldErrorType } from './validation.js';

type Json = Record<string, unknown>;

function at(obj: unknown, path: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Json)[p];
  }
  return cur;
}

function immutable(errors: FieldError[], prev: ApiObject, next: ApiObject, path: string[]): void {
  if (!deepEqual(at(prev, path), at(next, path))) {
    errors.push({ path: path.join('.'), type: FieldErrorType.Invalid, message: 'field is immutable' });
  }
}

/** Pod spec fields a running pod may change (Kubernetes allows these and nothing else). */
const podMutableSpecFields = new Set([
  'activeDeadlineSeconds',
  'tolerations',
  'terminationGracePeriodSeconds',
]);

function podSpecChanges(errors: FieldError[], prev: ApiObject, next: ApiObject): void {
  const a = (at(prev, ['spec']) ?? {}) as Json;
  const b = (at(next, ['spec']) ?? {}) as Json;
  // Container images may change (a restart of that container); everything else of a container may not.
  const withoutImages = (spec: Json): Json => {
    const strip = (cs: unknown) =>
      Array.isArray(cs) ? cs.map((c) => ({ ...(c as Json), image: undefined })) : cs;
    return { ...spec, containers: strip(spec.containers), initContainers: strip(spec.initContainers) };
  };
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const wa = withoutImages(a);
  const wb = withoutImages(b);
  for (const k of [...keys].sort()) {
    if (podMutableSpecFields.has(k)) continue;
    // `nodeName` may be set once (binding), never changed or cleared.
    if (k === 'nodeName' && (a.nodeName === undefined || a.nodeName === '')) continue;
    if (!deepEqual(wa[k], wb[k])) {
      errors.push({
        path: `spec.${k}`,
        type: FieldErrorType.Forbidden,
        message:
          'pod updates may not change fields other than spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds, spec.tolerations (only additions), or spec.terminationGracePeriodSeconds',
      });
      return;
    }
  }
}

/**
 * The field errors of updating `prev` to `next` (same kind, name and namespace; both valid on
 * their own). Empty when the update is allowed.
 */
export function validateUpdate(prev: ApiObject, next: ApiObject): FieldError[] {
  const errors: FieldError[] = [];
  switch (next.kind) {
    case 'Pod':
      podSpecChanges(errors, prev, next);
      break;
    case 'Deployment':
    case 'ReplicaSet':
    case 'DaemonSet':
      immutable(errors, prev, next, ['spec', 'selector']);
      break;
    case 'StatefulSet':
      immutable(errors, prev, next, ['spec', 'selector']);
      immutable(errors, prev, next, ['spec', 'serviceName']);
      immutable(errors, prev, next, ['spec', 'podManagementPolicy']);
      break;
    case 'Job':
      immutable(errors, prev, next, ['spec', 'selector']);
      immutable(errors, prev, next, ['spec', 'template']);
      immutable(errors, prev, next, ['spec', 'completionMode']);
      break;
    case 'ControllerRevision':
      // A revision is a snapshot: only its number moves (a rollback renumbers it).
      immutable(errors, prev, next, ['data']);
      break;
    case 'Service': {
      // A cluster IP, once allocated, stays (changing the type to ExternalName releases it elsewhere).
      const ip = at(prev, ['spec', 'clusterIP']);
      if (typeof ip === 'string' && ip !== '' && at(next, ['spec', 'clusterIP']) !== undefined) {
        immutable(errors, prev, next, ['spec', 'clusterIP']);
      }
      break;
    }
    case 'Secret':
    case 'ConfigMap':
      if ((prev as { immutable?: boolean }).immutable === true) {
        immutable(errors, prev, next, ['data']);
        if (prev.kind === 'Secret') immutable(errors, prev, next, ['stringData']);
        if (prev.kind === 'ConfigMap') immutable(errors, prev, next, ['binaryData']);
        immutable(errors, prev, next, ['immutable']);
      }
      break;
    default:
      break;
  }
  return errors;
}

/**
 * The object as it is stored on create, as Kubernetes' `PrepareForCreate`: status belongs to
 * controllers and agents, so a client's status is dropped (pods start Pending with their QoS
 * class, namespaces Active). Nodes keep theirs: the agent that registers a node reports its
 * capacity in it.
 * Create-only defaults: pods get the not-ready/unreachable NoExecute tolerations (300 s)
 * unless they tolerate those taints themselves; namespaces get the `kubernetes` finalizer.
 */
export function prepareForCreate(obj: ApiObject): ApiObject {
  if (obj.kind === 'Node') return obj;
  const out = { ...obj } as Json;
  if (obj.kind === 'Pod') {
    out.status = { phase: 'Pending', qosClass: qosClass(obj.spec) };
    out.spec = withDefaultTolerations(obj).spec;
  } else if (obj.kind === 'Namespace') {
    out.status = { phase: 'Active' };
    out.spec = withNamespaceFinalizer(obj).spec;
  } else delete out.status;
  return out as unknown as ApiObject;
}

/** The label selecting a Job's pods (its uid), as Kubernetes generates it. */
export const jobControllerUidLabel = 'batch.kubernetes.io/controller-uid';
export const jobNameLabel = 'batch.kubernetes.io/job-name';
/** The pre-1.27 spellings, which Kubernetes still sets beside the new ones. */
export const legacyJobControllerUidLabel = 'controller-uid';
export const legacyJobNameLabel = 'job-name';

/**
 * Fields the proposer fills in once it chose the uid (Kubernetes' `generateSelector` for
 * Jobs): unless `spec.manualSelector` is true, a Job's pod template gets the job-name and
 * controller-uid labels (values the user set are kept) and its selector the controller-uid,
 * so its pods match this Job alone. A contradicting template label then fails validation
 * (the template no longer matches the selector). Other kinds are returned as they are.
 */
export function withGeneratedFields(obj: ApiObject): ApiObject {
  if (obj.kind !== 'Job' || obj.spec.manualSelector === true) return obj;
  const job: Job = obj;
  const uid = job.metadata.uid ?? '';
  const name = job.metadata.name ?? '';
  const template = job.spec.template;
  const labels = {
    [legacyJobNameLabel]: name,
    [jobNameLabel]: name,
    [legacyJobControllerUidLabel]: uid,
    [jobControllerUidLabel]: uid,
    ...(template.metadata?.labels ?? {}),
  };
  const selector = job.spec.selector ?? {};
  const matchLabels = { [jobControllerUidLabel]: uid, ...(selector.matchLabels ?? {}) };
  return {
    ...job,
    spec: {
      ...job.spec,
      selector: { ...selector, matchLabels },
      template: { ...template, metadata: { ...template.metadata, labels } },
    },
  };
}

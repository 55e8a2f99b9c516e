/**
 * What a node agent says about pods and its node as Events, in kubelet's words (reasons and
 * messages as `kubectl describe` shows them). The agent's EventRecorder deduplicates repeats
 * (a crash loop moves one Event's `count`), rate-limits and bounds them; nothing here waits.
 */

import type { EventSink } from '../../actors/events.js';
import type { ObjectReference, Pod } from '../../core/index.js';
import type { ProbeKind } from './probes.js';

/** `source.component` and `reportingComponent` of agents' events, as kubelet's. */
export const agentEventComponent = 'kubelet';

/** The reference kubelet gives a container's events: the pod, `fieldPath: spec.containers{name}`. */
export function containerRef(pod: Pod, name: string): ObjectReference {
  const init = (pod.spec.initContainers ?? []).some((c) => c.name === name);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name ?? '',
    ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
    fieldPath: `${init ? 'spec.initContainers' : 'spec.containers'}{${name}}`,
  };
}

/** The reference of a node's own events (kubelet uses the node name as its uid). */
export function nodeRef(node: string): ObjectReference {
  return { apiVersion: 'v1', kind: 'Node', name: node, uid: node };
}

const probeNames: Record<ProbeKind, string> = {
  liveness: 'Liveness',
  readiness: 'Readiness',
  startup: 'Startup',
};

/** `Unhealthy`: `Liveness probe failed: <why>`. */
export function probeFailedMessage(probe: ProbeKind, message: string | undefined): string {
  return `${probeNames[probe]} probe failed: ${message ?? 'failed'}`;
}

/** `Killing` after a failed liveness/startup probe. */
export function probeKillMessage(container: string, probe: ProbeKind): string {
  return `Container ${container} failed ${probe} probe, will be restarted`;
}

/** `BackOff` of a crash-looping container. */
export function crashBackOffMessage(pod: Pod, container: string): string {
  return `Back-off restarting failed container ${container} in pod ${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}(${pod.metadata.uid ?? ''})`;
}

/** `Pulled`: how long a pull took, as kubelet prints it (`1.234s`). */
export function pulledMessage(image: string, tookMs: number): string {
  return `Successfully pulled image "${image}" in ${(tookMs / 1000).toFixed(3)}s`;
}

/** A sink that says nothing (agents built without events). */
export const silentEvents: EventSink = { record: () => {} };

/** Resolving the names users type (`pods`, `po`, `deploy`, `Deployment`) to a Kind. */

import { type Kind, kindInfo } from './objects.js';

/** Every kind of the API, with its resource (plural) name and short names as kubectl knows them. */
export const kindNames: Readonly<
  Record<Kind, { readonly plural: string; readonly short: readonly string[] }>
> = {
  Namespace: { plural: 'namespaces', short: ['ns'] },
  Node: { plural: 'nodes', short: ['no'] },
  Pod: { plural: 'pods', short: ['po'] },
  ReplicaSet: { plural: 'replicasets', short: ['rs'] },
  Deployment: { plural: 'deployments', short: ['deploy'] },
  DaemonSet: { plural: 'daemonsets', short: ['ds'] },
  Job: { plural: 'jobs', short: [] },
  StatefulSet: { plural: 'statefulsets', short: ['sts'] },
  Service: { plural: 'services', short: ['svc'] },
  Endpoints: { plural: 'endpoints', short: ['ep'] },
  ConfigMap: { plural: 'configmaps', short: ['cm'] },
  Secret: { plural: 'secrets', short: [] },
  Event: { plural: 'events', short: ['ev'] },
  Lease: { plural: 'leases', short: [] },
  CronJob: { plural: 'cronjobs', short: ['cj'] },
  ControllerRevision: { plural: 'controllerrevisions', short: [] },
  LimitRange: { plural: 'limitranges', short: ['limits'] },
  ResourceQuota: { plural: 'resourcequotas', short: ['quota'] },
  EndpointSlice: { plural: 'endpointslices', short: [] },
};

const byName = new Map<string, Kind>();
for (const [kind, { plural, short }] of Object.entries(kindNames) as [Kind, (typeof kindNames)[Kind]][]) {
  byName.set(kind.toLowerCase(), kind);
  byName.set(plural, kind);
  for (const s of short) byName.set(s, kind);
}

/** The suffixes kubectl accepts after a name for `kind`: `.group` and `.version.group` (`.v1` for core kinds). */
function qualifiers(kind: Kind): string[] {
  const apiVersion = kindInfo[kind].apiVersion;
  const slash = apiVersion.indexOf('/');
  if (slash < 0) return [apiVersion];
  const group = apiVersion.slice(0, slash);
  return [group, `${apiVersion.slice(slash + 1)}.${group}`];
}

/**
 * The Kind a user-typed name stands for (case-insensitive), or undefined. Takes the kind,
 * plural and short names, optionally qualified as kubectl does: `deployments.apps`,
 * `deployments.v1.apps`, `leases.coordination.k8s.io`, `pods.v1`.
 */
export function resolveKindName(text: string): Kind | undefined {
  const t = text.toLowerCase();
  const plain = byName.get(t);
  if (plain) return plain;
  const dot = t.indexOf('.');
  if (dot < 0) return undefined;
  const kind = byName.get(t.slice(0, dot));
  return kind && qualifiers(kind).includes(t.slice(dot + 1)) ? kind : undefined;
}

/**
 * A container's environment from its pod spec, as kubelet builds it: `value` with `$(VAR)`
 * expansion against the entries before it, `valueFrom` ConfigMap and Secret keys (with
 * `optional`) and pod fields, then the service variables (`FOO_SERVICE_HOST`, ... see
 * service-env.ts) of the services given, which `$(VAR)` may refer to and the container's own
 * entries override, as kubelet does. Pure: the ConfigMaps, Secrets and Services come in as
 * data. `envFrom` is not in the core types yet.
 *
 * Failures are `ContainerConfigError`s naming the field, e.g.
 * `spec.containers[0].env[2].valueFrom.configMapKeyRef: configmap "x" not found`; the agent
 * reports them as the waiting reason `CreateContainerConfigError`.
 */

import type { ConfigMap, Container, EnvVar, EnvVarSource, Pod, Secret, Service } from '../../core/objects.js';
import { ContainerConfigError } from './errors.js';
import { serviceEnv } from './service-env.js';

/** Kubernetes `ObjectFieldSelector` (the downward API), not yet in the core types. */
export interface ObjectFieldSelector {
  fieldPath: string;
  apiVersion?: string;
}
/** An `EnvVar` that may also use `valueFrom.fieldRef`. */
export type PodEnvVar = EnvVar & { valueFrom?: EnvVarSource & { fieldRef?: ObjectFieldSelector } };

export interface EnvInput {
  /** The pod (metadata and spec.nodeName are read). */
  pod: Pod;
  /** The pod's IP (`status.podIP`), once its sandbox has one. */
  podIP?: string;
  /** The node's IP (`status.hostIP`). */
  hostIP?: string;
  /** ConfigMaps of the pod's namespace, by name. */
  configMaps: Readonly<Record<string, ConfigMap | undefined>>;
  /** Secrets of the pod's namespace, by name. */
  secrets: Readonly<Record<string, Secret | undefined>>;
  /** The services that exist as the container starts (service links; none when absent). */
  services?: readonly Service[];
}

/** The field path of a container in a pod: `spec.containers[0]` or `spec.initContainers[1]`. */
export function containerPath(pod: Pod, name: string): string {
  const init = (pod.spec.initContainers ?? []).findIndex((c) => c.name === name);
  if (init >= 0) return `spec.initContainers[${init}]`;
  const app = pod.spec.containers.findIndex((c) => c.name === name);
  if (app < 0) throw new Error(`pod ${pod.metadata.name}: no container ${JSON.stringify(name)}`);
  return `spec.containers[${app}]`;
}

/**
 * The environment of `container` (at field path `path`), in order of first definition; a
 * later entry of the same name replaces the value. Throws ContainerConfigError.
 */
export function containerEnv(
  container: Container,
  path: string,
  input: EnvInput,
): { name: string; value: string }[] {
  const values = new Map<string, string>();
  const services = new Map(
    serviceEnv(
      input.services ?? [],
      input.pod.metadata.namespace ?? 'default',
      input.pod.spec.enableServiceLinks,
    ).map((e) => [e.name, e.value]),
  );
  const lookup = { get: (name: string) => values.get(name) ?? services.get(name) };
  (container.env ?? []).forEach((env: PodEnvVar, index) => {
    const at = `${path}.env[${index}]`;
    const value =
      env.valueFrom === undefined ? expandVars(env.value ?? '', lookup) : valueFrom(env.valueFrom, at, input);
    if (value !== undefined) values.set(env.name, value);
  });
  for (const [name, value] of services) if (!values.has(name)) values.set(name, value);
  return [...values].map(([name, value]) => ({ name, value }));
}

/** `command` and `args` with `$(VAR)` references to the container's environment expanded. */
export function expandCommand(
  words: readonly string[] | undefined,
  env: readonly { name: string; value: string }[],
): string[] | undefined {
  if (words === undefined) return undefined;
  const values = new Map(env.map((e) => [e.name, e.value]));
  return words.map((w) => expandVars(w, values));
}

/**
 * Kubernetes' `$(VAR)` expansion: a reference to a defined variable becomes its value, one to
 * an undefined variable stays as written, `$$` is an escaped `$`, and any other `$` is kept.
 */
export function expandVars(text: string, values: { get(name: string): string | undefined }): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0 || dollar === text.length - 1) break;
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '(' && text.indexOf(')', dollar + 2) >= 0) {
      const close = text.indexOf(')', dollar + 2);
      const name = text.slice(dollar + 2, close);
      out += values.get(name) ?? `$(${name})`;
      i = close + 1;
    } else {
      out += `$${next}`;
      i = dollar + 2;
    }
  }
  return out + text.slice(i);
}

type Source = EnvVarSource & { fieldRef?: ObjectFieldSelector };

/** The value of one `valueFrom`, or undefined when an optional reference is missing. */
function valueFrom(source: Source, at: string, input: EnvInput): string | undefined {
  if (source.configMapKeyRef !== undefined) {
    const ref = source.configMapKeyRef;
    const field = `${at}.valueFrom.configMapKeyRef`;
    const map = input.configMaps[ref.name];
    if (map === undefined) return missing(ref.optional, field, `configmap "${ref.name}" not found`);
    const value = map.data?.[ref.key] ?? decodeBase64(map.binaryData?.[ref.key]);
    if (value === undefined)
      return missing(ref.optional, field, `key "${ref.key}" not found in configmap "${ref.name}"`);
    return value;
  }
  if (source.secretKeyRef !== undefined) {
    const ref = source.secretKeyRef;
    const field = `${at}.valueFrom.secretKeyRef`;
    const secret = input.secrets[ref.name];
    if (secret === undefined) return missing(ref.optional, field, `secret "${ref.name}" not found`);
    const value = secretData(secret)[ref.key];
    if (value === undefined)
      return missing(ref.optional, field, `key "${ref.key}" not found in secret "${ref.name}"`);
    return value;
  }
  if (source.fieldRef !== undefined)
    return fieldValue(source.fieldRef.fieldPath, `${at}.valueFrom.fieldRef`, input);
  throw new ContainerConfigError(`${at}.valueFrom`, 'must have configMapKeyRef, secretKeyRef or fieldRef');
}

function missing(optional: boolean | undefined, field: string, detail: string): undefined {
  if (optional === true) return undefined;
  throw new ContainerConfigError(field, detail);
}

/** A Secret's values decoded (`stringData`, if present, wins over `data`, as the API merges it). */
export function secretData(secret: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, encoded] of Object.entries(secret.data ?? {}))
    out[key] = Buffer.from(encoded, 'base64').toString('utf8');
  return { ...out, ...secret.stringData };
}

function decodeBase64(encoded: string | undefined): string | undefined {
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
}

const mapFieldPattern = /^metadata\.(labels|annotations)\['(.+)'\]$/;

function fieldValue(fieldPath: string, field: string, input: EnvInput): string {
  const { metadata, spec } = input.pod;
  switch (fieldPath) {
    case 'metadata.name':
      return metadata.name ?? '';
    case 'metadata.namespace':
      return metadata.namespace ?? '';
    case 'metadata.uid':
      return metadata.uid ?? '';
    case 'spec.nodeName':
      return spec.nodeName ?? '';
    case 'status.podIP':
      return input.podIP ?? '';
    case 'status.hostIP':
      return input.hostIP ?? '';
  }
  const map = mapFieldPattern.exec(fieldPath);
  if (map !== null) return (map[1] === 'labels' ? metadata.labels : metadata.annotations)?.[map[2]] ?? '';
  throw new ContainerConfigError(field, `unsupported fieldPath "${fieldPath}"`);
}

/** Whether the container's environment refers to the pod's IP (so it is known only once the sandbox runs). */
export function needsPodIP(container: Container): boolean {
  return (container.env ?? []).some((e: PodEnvVar) => {
    const path = e.valueFrom?.fieldRef?.fieldPath;
    return path === 'status.podIP' || path === 'status.podIPs';
  });
}

/**
 * A pod's volumes as a plan of data: the directories and files the agent must write before the
 * containers start, the hostPath checks it must make, and each container's mounts for the
 * runtime. Pure: the ConfigMaps and Secrets come in as data; nothing is written here.
 *
 * Where things live (the agent picks the two roots per pod):
 * - `diskDir/<volume>`: emptyDir (default medium) and configMap volumes.
 * - `memoryDir/<volume>`: secret volumes, and memory emptyDirs shared by several containers or
 *   mounted with a subPath. `memoryDir` must be on a tmpfs (e.g. under /dev/shm), so secrets
 *   never touch a disk; a shared memory emptyDir there is not held to its sizeLimit.
 * - A memory emptyDir mounted whole by one container is a tmpfs of the runtime's own
 *   (`MountSpec.tmpfsBytes` = sizeLimit), which enforces the limit.
 * - hostPath volumes are bound as they are.
 *
 * ConfigMap and secret volumes are mounted read-only, as kubelet does. Failures are
 * ContainerConfigErrors naming the field.
 */

import { posix } from 'node:path';
import type { ConfigMap, Container, KeyToPath, Pod, Secret, Volume } from '../../core/objects.js';
import { parseQuantity } from '../../core/quantity.js';
import type { MountSpec } from '../runtime.js';
import { ContainerConfigError } from './errors.js';

/** Kubernetes' default file mode of configMap and secret volume files (0644). */
export const defaultVolumeFileMode = 0o644;
/** Size of a memory emptyDir's tmpfs without a sizeLimit: 64 MiB. */
export const defaultTmpfsBytes = 64 * 1024 * 1024;

/** `KeyToPath` with the `mode` the core types do not have yet. */
export type KeyToPathWithMode = KeyToPath & { mode?: number };
/** A `Volume` whose configMap and secret sources may carry `defaultMode` and item modes. */
export type PodVolume = Volume & {
  configMap?: { defaultMode?: number; items?: KeyToPathWithMode[] };
  secret?: { defaultMode?: number; items?: KeyToPathWithMode[] };
};

export interface VolumePlanInput {
  pod: Pod;
  /** The pod's directory for disk-backed volumes. */
  diskDir: string;
  /** The pod's directory on a tmpfs, for secrets and shared memory emptyDirs. */
  memoryDir: string;
  configMaps: Readonly<Record<string, ConfigMap | undefined>>;
  secrets: Readonly<Record<string, Secret | undefined>>;
  /** Size of a memory emptyDir's tmpfs without a sizeLimit. Default `defaultTmpfsBytes`. */
  tmpfsBytesDefault?: number;
}

export interface VolumeFile {
  /** Absolute host path. */
  path: string;
  content: Uint8Array;
  mode: number;
}

export interface VolumePlan {
  /** Host directories to create (parents first), before any file. */
  directories: string[];
  files: VolumeFile[];
  /** hostPath volumes whose `type` the agent must check (or create, for `*OrCreate`) on the host. */
  hostPathChecks: { path: string; type: string }[];
  /** Each container's (init and app) mounts, by container name. */
  mounts: Record<string, MountSpec[]>;
}

/** Where one volume lives. */
type Backing =
  | { kind: 'dir'; hostPath: string; readOnly: boolean }
  | { kind: 'tmpfs'; bytes: number; hostPath: string };

/** The volume plan of `input.pod`. Throws ContainerConfigError. */
export function planVolumes(input: VolumePlanInput): VolumePlan {
  const plan: VolumePlan = { directories: [], files: [], hostPathChecks: [], mounts: {} };
  const containers = [
    ...(input.pod.spec.initContainers ?? []).map((c, i) => ({ c, path: `spec.initContainers[${i}]` })),
    ...input.pod.spec.containers.map((c, i) => ({ c, path: `spec.containers[${i}]` })),
  ];
  const backings = new Map<string, Backing>();
  (input.pod.spec.volumes ?? []).forEach((volume: PodVolume, index) => {
    const users = containers.flatMap(({ c }) => (c.volumeMounts ?? []).filter((m) => m.name === volume.name));
    const ownTmpfs = users.length === 1 && users[0].subPath === undefined;
    backings.set(volume.name, planVolume(volume, `spec.volumes[${index}]`, ownTmpfs, input, plan));
  });
  for (const { c, path } of containers) plan.mounts[c.name] = containerMounts(c, path, backings, plan);
  return plan;
}

function planVolume(
  volume: PodVolume,
  at: string,
  ownTmpfs: boolean,
  input: VolumePlanInput,
  plan: VolumePlan,
): Backing {
  const onDisk = posix.join(input.diskDir, volume.name);
  const inMemory = posix.join(input.memoryDir, volume.name);
  if (volume.emptyDir !== undefined) {
    if (volume.emptyDir.medium !== 'Memory') {
      plan.directories.push(onDisk);
      return { kind: 'dir', hostPath: onDisk, readOnly: false };
    }
    const limit = volume.emptyDir.sizeLimit;
    const bytes =
      limit === undefined
        ? (input.tmpfsBytesDefault ?? defaultTmpfsBytes)
        : sizeBytes(limit, `${at}.emptyDir.sizeLimit`);
    if (!ownTmpfs) plan.directories.push(inMemory);
    return ownTmpfs
      ? { kind: 'tmpfs', bytes, hostPath: inMemory }
      : { kind: 'dir', hostPath: inMemory, readOnly: false };
  }
  if (volume.hostPath !== undefined) {
    const type = volume.hostPath.type ?? '';
    if (type !== '') plan.hostPathChecks.push({ path: volume.hostPath.path, type });
    return { kind: 'dir', hostPath: volume.hostPath.path, readOnly: false };
  }
  if (volume.configMap !== undefined) {
    const source = volume.configMap;
    const map = input.configMaps[source.name];
    if (map === undefined && source.optional !== true) {
      throw new ContainerConfigError(`${at}.configMap`, `configmap "${source.name}" not found`);
    }
    const data = { ...decodeAll(map?.binaryData), ...utf8All(map?.data) };
    writeKeys(data, source, `${at}.configMap`, `configmap "${source.name}"`, onDisk, plan);
    return { kind: 'dir', hostPath: onDisk, readOnly: true };
  }
  if (volume.secret !== undefined) {
    const source = volume.secret;
    const secret = input.secrets[source.secretName];
    if (secret === undefined && source.optional !== true) {
      throw new ContainerConfigError(`${at}.secret`, `secret "${source.secretName}" not found`);
    }
    const data = { ...decodeAll(secret?.data), ...utf8All(secret?.stringData) };
    writeKeys(data, source, `${at}.secret`, `secret "${source.secretName}"`, inMemory, plan);
    return { kind: 'dir', hostPath: inMemory, readOnly: true };
  }
  throw new ContainerConfigError(at, 'must have emptyDir, hostPath, configMap or secret');
}

/** The files of a configMap or secret volume: every key, or only `items` (a missing item key fails unless optional). */
function writeKeys(
  data: Record<string, Uint8Array>,
  source: { items?: KeyToPathWithMode[]; optional?: boolean; defaultMode?: number },
  at: string,
  what: string,
  dir: string,
  plan: VolumePlan,
): void {
  const mode = source.defaultMode ?? defaultVolumeFileMode;
  plan.directories.push(dir);
  const items = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
  items.forEach((item: KeyToPathWithMode, index) => {
    const content = data[item.key];
    if (content === undefined) {
      if (source.optional === true) return;
      throw new ContainerConfigError(`${at}.items[${index}].key`, `key "${item.key}" not found in ${what}`);
    }
    const path = relativePath(item.path, `${at}.items[${index}].path`);
    const file = posix.join(dir, path);
    const parent = posix.dirname(file);
    if (parent !== dir && !plan.directories.includes(parent)) plan.directories.push(parent);
    plan.files.push({ path: file, content, mode: item.mode ?? mode });
  });
}

function containerMounts(
  container: Container,
  at: string,
  backings: Map<string, Backing>,
  plan: VolumePlan,
): MountSpec[] {
  return (container.volumeMounts ?? []).map((mount, index) => {
    const field = `${at}.volumeMounts[${index}]`;
    const backing = backings.get(mount.name);
    if (backing === undefined)
      throw new ContainerConfigError(`${field}.name`, `volume "${mount.name}" not found`);
    if (backing.kind === 'tmpfs') {
      return { containerPath: mount.mountPath, tmpfsBytes: backing.bytes, readOnly: mount.readOnly === true };
    }
    let hostPath = backing.hostPath;
    if (mount.subPath !== undefined && mount.subPath !== '') {
      hostPath = posix.join(hostPath, relativePath(mount.subPath, `${field}.subPath`));
      // kubelet creates a missing subPath directory in writable volumes.
      if (!backing.readOnly && !plan.directories.includes(hostPath)) plan.directories.push(hostPath);
    }
    return {
      containerPath: mount.mountPath,
      hostPath,
      readOnly: backing.readOnly || mount.readOnly === true,
    };
  });
}

/** A path inside a volume: relative, without `..` elements. */
function relativePath(path: string, field: string): string {
  if (path === '' || path.startsWith('/') || path.split('/').includes('..')) {
    throw new ContainerConfigError(field, `"${path}" must be a relative path without '..'`);
  }
  return posix.normalize(path);
}

function sizeBytes(text: string, field: string): number {
  try {
    return Number(parseQuantity(String(text)).value());
  } catch (e) {
    throw new ContainerConfigError(field, e instanceof Error ? e.message : String(e));
  }
}

function decodeAll(values: Record<string, string> | undefined): Record<string, Uint8Array> {
  return Object.fromEntries(
    Object.entries(values ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
  );
}

function utf8All(values: Record<string, string> | undefined): Record<string, Uint8Array> {
  return Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, new TextEncoder().encode(v)]));
}

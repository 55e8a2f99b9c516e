/**
 * What a node agent reports about its machine in `Node.status.nodeInfo`, as kubelet does:
 * kernel, OS image (`/etc/os-release`'s PRETTY_NAME), container runtime and version, so
 * `cox get nodes -o wide` shows them.
 */

import { readFile } from 'node:fs/promises';
import { arch, platform, release } from 'node:os';
import type { NodeSystemInfo } from '../core/objects.js';
import type { ContainerRuntime } from './runtime.js';

/** Where the OS describes itself, in the order systemd's os-release(5) reads them. */
const osReleasePaths = ['/etc/os-release', '/usr/lib/os-release'] as const;

/** `PRETTY_NAME` of an os-release file (shell-style quoting undone), or undefined. */
export function prettyName(osRelease: string): string | undefined {
  for (const line of osRelease.split('\n')) {
    const m = /^\s*PRETTY_NAME=(.*)$/.exec(line);
    if (m === null) continue;
    const raw = m[1].trim();
    const quoted = /^(["'])(.*)\1$/.exec(raw);
    const value =
      quoted === null ? raw : quoted[1] === '"' ? quoted[2].replace(/\\(["\\$`])/g, '$1') : quoted[2];
    return value === '' ? undefined : value;
  }
  return undefined;
}

/** Go's GOARCH names, which Kubernetes reports, for Node's `process.arch`. */
export function goArch(nodeArch: string): string {
  const names: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64' };
  return names[nodeArch] ?? nodeArch;
}

async function readOsImage(): Promise<string | undefined> {
  for (const path of osReleasePaths) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) return prettyName(text);
  }
  return undefined;
}

async function agentVersion(): Promise<string> {
  const text = await readFile(new URL('../package.json', import.meta.url), 'utf8').catch(() => '{}');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? `v${version}` : 'unknown';
}

/** This machine's and runtime's system info (read once, at registration). */
export async function nodeSystemInfo(runtime: ContainerRuntime): Promise<NodeSystemInfo> {
  const [osImage, containerRuntimeVersion, kubeletVersion] = await Promise.all([
    readOsImage(),
    runtime.version(),
    agentVersion(),
  ]);
  return {
    kernelVersion: release(),
    ...(osImage !== undefined ? { osImage } : {}),
    containerRuntimeVersion,
    kubeletVersion,
    operatingSystem: platform(),
    architecture: goArch(arch()),
  };
}

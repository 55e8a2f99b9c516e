/**
 * The host network facts and settings the proxy depends on:
 * - the service CIDR is made local (`ip route replace local <cidr> dev lo table local`) before
 *   any rule or listener exists, so a packet to a virtual IP that no rule translates is
 *   delivered to this machine (and refused) instead of following the default route out;
 * - the local pod networks (directly connected subnets of bridge interfaces, e.g. docker0) are
 *   where backends may be, with loopback;
 * - `route_localnet` on those bridges, so loopback-originated traffic (a NodePort on 127.0.1.N)
 *   may be translated to a container (kube-proxy sets it on every interface; we only on bridges).
 *
 * The local route is left in place on exit: with it, a virtual IP can only ever reach this
 * machine, and another agent sharing the kernel may still depend on it.
 */

import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { runCommand } from './commands.js';
import { type Cidr, cidrWithin, loopbackCidr, parseCidr } from './ipv4.js';

export class LocalRouteError extends Error {
  override readonly name = 'LocalRouteError';
  readonly code = 'SERVICE_CIDR_NOT_LOCAL';
}

/** Whether every address of `cidr` is already delivered locally (tested at its first address). */
export async function isLocal(cidr: Cidr, prefix?: readonly string[]): Promise<boolean> {
  if (cidrWithin(cidr, loopbackCidr)) return true;
  const first = cidr.text.split('/')[0];
  try {
    const { stdout } = await runCommand(['ip', '-o', 'route', 'get', first], prefix ? { prefix } : {});
    return stdout.trimStart().startsWith('local ');
  } catch {
    return false;
  }
}

/**
 * Makes `cidr` local. Throws LocalRouteError when that is impossible (not root) and the block
 * is not inside 127.0.0.0/8, which is always local.
 */
export async function ensureLocalRoute(
  cidr: Cidr,
  prefix?: readonly string[],
): Promise<'added' | 'loopback'> {
  if (cidrWithin(cidr, loopbackCidr)) return 'loopback';
  try {
    await runCommand(
      ['ip', 'route', 'replace', 'local', cidr.text, 'dev', 'lo', 'table', 'local'],
      prefix ? { prefix } : {},
    );
    return 'added';
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new LocalRouteError(
      `proxy: cannot make the service CIDR ${cidr.text} local (${why}); run the agent as root, or use a --service-cidr inside 127.0.0.0/8 (always local) with --proxy-mode userspace`,
    );
  }
}

/** A directly connected subnet of a bridge interface. */
export interface PodNetwork {
  readonly cidr: Cidr;
  readonly dev: string;
}

/**
 * Parses `ip -4 -o route show table main`: the `proto kernel scope link` routes (directly
 * connected subnets) whose device is in `bridges`.
 */
export function parsePodNetworks(routes: string, bridges: ReadonlySet<string>): PodNetwork[] {
  const out: PodNetwork[] = [];
  for (const line of routes.split('\n')) {
    const words = line.trim().split(/\s+/);
    const dev = words[words.indexOf('dev') + 1];
    if (words.indexOf('dev') < 0 || !bridges.has(dev) || !line.includes('scope link')) continue;
    try {
      out.push({ cidr: parseCidr(words[0]), dev });
    } catch {
      // not a plain prefix (e.g. "default"): not a pod network
    }
  }
  return out;
}

/**
 * The bridge interfaces of this host (those with /sys/class/net/<dev>/bridge) whose ports are
 * all virtual: a bridge holding a physical NIC (br0 on a hypervisor) carries the LAN, which is
 * no pod network.
 */
async function bridgesOf(devs: readonly string[]): Promise<Set<string>> {
  const exists = (path: string) =>
    stat(path).then(
      () => true,
      () => false,
    );
  const out = new Set<string>();
  for (const dev of devs) {
    if (!/^[\w.@-]+$/.test(dev)) continue;
    if (!(await exists(`/sys/class/net/${dev}/bridge`))) continue;
    const ports = await readdir(`/sys/class/net/${dev}/brif`).catch(() => [] as string[]);
    let physical = false;
    for (const port of ports) if (await exists(`/sys/class/net/${port}/device`)) physical = true;
    if (!physical) out.add(dev);
  }
  return out;
}

/** The local pod networks: subnets of bridge interfaces (docker0 and the like). */
export async function localPodNetworks(prefix?: readonly string[]): Promise<PodNetwork[]> {
  const { stdout } = await runCommand(
    ['ip', '-4', '-o', 'route', 'show', 'table', 'main'],
    prefix ? { prefix } : {},
  );
  const devs = [
    ...new Set(
      stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .map((w) => w[w.indexOf('dev') + 1])
        .filter((d): d is string => d !== undefined),
    ),
  ];
  return parsePodNetworks(stdout, await bridgesOf(devs));
}

/** Sets `route_localnet` on `dev` (see the file comment). Resolves with whether it changed. */
export async function enableRouteLocalnet(dev: string): Promise<boolean> {
  if (!/^[\w.@-]+$/.test(dev)) throw new Error(`not an interface name: ${dev}`);
  const path = `/proc/sys/net/ipv4/conf/${dev}/route_localnet`;
  const now = (await readFile(path, 'utf8')).trim();
  if (now === '1') return false;
  await writeFile(path, '1');
  return true;
}

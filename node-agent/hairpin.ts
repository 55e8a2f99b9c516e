/**
 * Hairpin mode on a sandbox's bridge port, as kubelet's `--hairpin-mode=hairpin-veth` sets it:
 * a pod that reaches its own service and is translated (DNAT) back to itself sends the packet
 * out of the bridge port it came in by, which a bridge only does with `hairpin_mode` on.
 * Needs root (sysfs); without it the pod simply cannot reach itself through a virtual IP.
 */

import { readdir, readFile, writeFile } from 'node:fs/promises';

/**
 * Finds the host end of the veth whose other end is eth0 of the network namespace of `pid`
 * (its `iflink` is the host interface's index) and turns hairpin mode on for it. Resolves
 * with the interface name, or undefined when there is no such bridge port.
 */
export async function enableHairpin(pid: number): Promise<string | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const iflink = (await readFile(`/proc/${pid}/root/sys/class/net/eth0/iflink`, 'utf8')).trim();
  for (const dev of await readdir('/sys/class/net')) {
    const index = await readFile(`/sys/class/net/${dev}/ifindex`, 'utf8').catch(() => '');
    if (index.trim() !== iflink) continue;
    const path = `/sys/class/net/${dev}/brport/hairpin_mode`;
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === undefined) return undefined;
    if (now.trim() !== '1') await writeFile(path, '1');
    return dev;
  }
  return undefined;
}

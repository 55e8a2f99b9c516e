/**
 * A pod's resolv.conf, as kubelet decides it (`pkg/kubelet/network/dns`), pure:
 * - `ClusterFirst` (the default): the cluster DNS as the only nameserver, searching
 *   `<ns>.svc.<domain> svc.<domain> <domain>`, `options ndots:5`; without a cluster DNS on this
 *   node it falls back to `Default`, as kubelet does;
 * - `Default`: the node's resolver (the runtime's own resolv.conf): no settings;
 * - `None`: only what `spec.dnsConfig` says.
 * `spec.dnsConfig` is merged into the first two (nameservers and searches appended without
 * duplicates, options replaced by name), within Kubernetes' limits (3 nameservers, 32 search
 * domains of 2,048 characters in all).
 */

import type { Pod } from '../../core/objects.js';

export interface DnsSettings {
  nameservers: string[];
  searches: string[];
  /** `name` or `name:value`, as resolv.conf writes them. */
  options: string[];
}

/** Kubernetes' `PodDNSConfig` (not in the core types yet). */
export interface PodDnsConfig {
  nameservers?: string[];
  searches?: string[];
  options?: { name: string; value?: string }[];
}

export interface ClusterDns {
  nameserver: string;
  domain: string;
}

export const dnsLimits = { nameserversMax: 3, searchesMax: 32, searchCharsMax: 2048 } as const;

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

function mergeOptions(base: readonly string[], extra: PodDnsConfig['options']): string[] {
  const byName = new Map<string, string>();
  for (const o of base) byName.set(o.split(':')[0], o);
  for (const o of extra ?? []) byName.set(o.name, o.value !== undefined ? `${o.name}:${o.value}` : o.name);
  return [...byName.values()];
}

function limitSearches(searches: string[]): string[] {
  const out: string[] = [];
  let chars = 0;
  for (const s of searches) {
    if (
      out.length >= dnsLimits.searchesMax ||
      chars + s.length + (out.length > 0 ? 1 : 0) > dnsLimits.searchCharsMax
    )
      break;
    chars += s.length + (out.length > 0 ? 1 : 0);
    out.push(s);
  }
  return out;
}

/** The pod's DNS settings, or undefined to keep the runtime's (the node's) resolver. */
export function podDnsSettings(pod: Pod, cluster: ClusterDns | undefined): DnsSettings | undefined {
  const policy = pod.spec.dnsPolicy ?? 'ClusterFirst';
  const extra = (pod.spec as { dnsConfig?: PodDnsConfig }).dnsConfig;
  let base: DnsSettings | undefined;
  if (policy === 'None') base = { nameservers: [], searches: [], options: [] };
  else if (policy === 'ClusterFirst' && cluster !== undefined) {
    const ns = pod.metadata.namespace ?? 'default';
    const d = cluster.domain;
    base = {
      nameservers: [cluster.nameserver],
      searches: [`${ns}.svc.${d}`, `svc.${d}`, d],
      options: ['ndots:5'],
    };
  }
  if (extra === undefined) return base;
  const start = base ?? { nameservers: [], searches: [], options: [] };
  return {
    nameservers: unique([...start.nameservers, ...(extra.nameservers ?? [])]).slice(
      0,
      dnsLimits.nameserversMax,
    ),
    searches: limitSearches(unique([...start.searches, ...(extra.searches ?? [])])),
    options: mergeOptions(start.options, extra.options),
  };
}

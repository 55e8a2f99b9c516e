/**
 * The kernel mode's rules as text, pure: a `ProxyPlan` becomes iptables chains owned by one
 * agent (named with a per-node tag, so agents sharing a kernel never touch each other's chains),
 * and the difference between two rule sets becomes one `iptables-restore --noflush` input that
 * rewrites whole chains in one transaction. Nothing here runs a command.
 *
 * Layout (nat table), after kube-proxy's:
 *   PREROUTING, OUTPUT  -d <service CIDR>  → COX-SVC-<tag>   ClusterIPs (and the DNS redirect)
 *   PREROUTING, OUTPUT  -d <node IP>/32    → COX-NP-<tag>    NodePorts on this node's IP
 *   POSTROUTING                            → COX-POST-<tag>  masquerade what was marked
 *   COX-<tag>-S<hash>   one per service port: mark host- and loopback-originated traffic, then
 *                       ClientIP affinity (`-m recent --rcheck`) and random balancing
 *                       (`-m statistic --mode random --probability 1/(n-i)`) over
 *   COX-<tag>-E<hash>   one per backend: mark hairpin traffic (a pod reaching itself), DNAT
 *                       (`-m recent --set` with affinity).
 * And the filter table: OUTPUT, FORWARD -d <service CIDR> → COX-FW-<tag>, which rejects a packet
 * to a virtual IP that is about to leave through a real interface (it was not translated and the
 * CIDR's local route is gone): a second guard that no packet to a virtual IP leaves the machine;
 * INPUT -d 127.0.0.0/8 → COX-IN-<tag>, which drops packets to loopback addresses that come from
 * elsewhere (a pod, now that its bridge has route_localnet) unless we translated them.
 */

import { createHash } from 'node:crypto';
import type { ProxyPlan, VirtualServer } from './rules.js';

/** The packet mark asking COX-POST to masquerade (kube-proxy's bit). */
export const masqueradeMark = '0x4000';
/** iptables' limit on chain names (XT_EXTENSION_MAXNAMELEN - 1). */
export const chainNameCharsMax = 28;

export type Table = 'nat' | 'filter';

export interface KernelRenderConfig {
  /** From `chainTag`: 8 hex digits. */
  readonly tag: string;
  readonly node: string;
  readonly nodeIp: string;
  readonly serviceCidr: string;
}

/** A rule in a built-in chain that enters one of ours; `spec` is in iptables-save's form. */
export interface Jump {
  readonly table: Table;
  readonly chain: string;
  readonly spec: string;
}

/** Chains (name → rule specs after `-A <name> `) per table, and the jumps into them. */
export interface RuleSet {
  readonly nat: ReadonlyMap<string, readonly string[]>;
  readonly filter: ReadonlyMap<string, readonly string[]>;
  readonly jumps: readonly Jump[];
}

/** A per-node tag for chain names: stable across restarts of the agent, distinct per node. */
export function chainTag(node: string, nodeIp: string): string {
  return createHash('sha256').update(`${node}\0${nodeIp}`).digest('hex').slice(0, 8);
}

export function topChains(tag: string): { svc: string; np: string; post: string; fw: string; in: string } {
  return {
    svc: `COX-SVC-${tag}`,
    np: `COX-NP-${tag}`,
    post: `COX-POST-${tag}`,
    fw: `COX-FW-${tag}`,
    in: `COX-IN-${tag}`,
  };
}

/** Whether `chain` is one of the chains of the agent with this tag. */
export function isOwnChain(chain: string, tag: string): boolean {
  const t = topChains(tag);
  return (
    chain === t.svc ||
    chain === t.np ||
    chain === t.post ||
    chain === t.fw ||
    chain === t.in ||
    chain.startsWith(`COX-${tag}-`)
  );
}

function hash10(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}

export function serverChain(tag: string, s: VirtualServer): string {
  return `COX-${tag}-S${hash10(s.id)}`;
}

export function backendChain(tag: string, s: VirtualServer, ip: string, port: number): string {
  return `COX-${tag}-E${hash10(`${s.id}>${ip}:${port}`)}`;
}

/** A comment as iptables-save prints it (quoted when it has spaces). */
function comment(text: string): string {
  const clean = text.replace(/["\\]/g, '').slice(0, 255);
  return `-m comment --comment ${/\s/.test(clean) ? `"${clean}"` : clean}`;
}

function protoMatch(s: VirtualServer, port: number): string {
  const p = s.protocol.toLowerCase();
  return `-p ${p} -m ${p} --dport ${port}`;
}

/** `1/(n-i)` with kube-proxy's ten decimals, so each of n backends gets 1/n. */
export function probability(n: number, i: number): string {
  return (1 / (n - i)).toFixed(10);
}

const mark = `-j MARK --set-xmark ${masqueradeMark}/${masqueradeMark}`;

/** The rules of one virtual server: its dispatch lines and its own chains. */
interface ServerRules {
  readonly dispatch: readonly string[];
  readonly nodePort: readonly string[];
  readonly chains: readonly (readonly [string, readonly string[]])[];
}

/**
 * Rendered servers, reused while the planner hands back the same `VirtualServer` object (it
 * does for unchanged services, see PlanCache). Valid for one configuration.
 */
export type RenderMemo = WeakMap<VirtualServer, ServerRules>;

function renderServer(s: VirtualServer, cfg: KernelRenderConfig): ServerRules {
  if (s.backends.length === 0) return { dispatch: [], nodePort: [], chains: [] }; // the local route answers "refused"
  const chain = serverChain(cfg.tag, s);
  const name = `${s.namespace}/${s.service}:${s.portName || s.port}`;
  const dispatch = [
    `-d ${s.clusterIP}/32 ${protoMatch(s, s.port)} ${comment(`${name} cluster IP`)} -j ${chain}`,
  ];
  const nodePort: string[] = [];
  if (s.nodePort !== undefined) {
    const match = `-d ${cfg.nodeIp}/32 ${protoMatch(s, s.nodePort)} ${comment(`${name} node port`)}`;
    nodePort.push(`${match} ${mark}`, `${match} -j ${chain}`);
  }
  const rules = [`-s 127.0.0.0/8 ${mark}`, `-s ${cfg.serviceCidr} ${mark}`];
  const ends = s.backends.map((b) => backendChain(cfg.tag, s, b.ip, b.port));
  if (s.affinitySeconds !== undefined) {
    for (const e of ends)
      rules.push(
        `-m recent --rcheck --seconds ${s.affinitySeconds} --reap --name ${e} --mask 255.255.255.255 --rsource -j ${e}`,
      );
  }
  ends.forEach((e, i) => {
    rules.push(
      i === ends.length - 1
        ? `-j ${e}`
        : `-m statistic --mode random --probability ${probability(ends.length, i)} -j ${e}`,
    );
  });
  const chains: [string, string[]][] = [[chain, rules]];
  s.backends.forEach((b, i) => {
    const p = s.protocol.toLowerCase();
    const recent =
      s.affinitySeconds !== undefined
        ? ` -m recent --set --name ${ends[i]} --mask 255.255.255.255 --rsource`
        : '';
    chains.push([
      ends[i],
      [`-s ${b.ip}/32 ${mark}`, `-p ${p}${recent} -m ${p} -j DNAT --to-destination ${b.ip}:${b.port}`],
    ]);
  });
  return { dispatch, nodePort, chains };
}

export function renderRules(plan: ProxyPlan, cfg: KernelRenderConfig, memo?: RenderMemo): RuleSet {
  const top = topChains(cfg.tag);
  const nat = new Map<string, readonly string[]>();
  const svc: string[] = [];
  const np: string[] = [];
  if (plan.dns !== undefined) {
    const d = plan.dns;
    const note = comment(`cluster DNS of node ${cfg.node}`);
    svc.push(
      `-d ${d.ip}/32 -p udp -m udp --dport 53 ${note} -j DNAT --to-destination ${d.ip}:${d.udpPort}`,
      `-d ${d.ip}/32 -p tcp -m tcp --dport 53 ${note} -j DNAT --to-destination ${d.ip}:${d.tcpPort}`,
    );
  }
  for (const s of plan.servers) {
    let r = memo?.get(s);
    if (r === undefined) {
      r = renderServer(s, cfg);
      memo?.set(s, r);
    }
    svc.push(...r.dispatch);
    np.push(...r.nodePort);
    for (const [name, rules] of r.chains) nat.set(name, rules);
  }
  nat.set(top.svc, svc);
  nat.set(top.np, np);
  nat.set(top.post, [
    `-m mark ! --mark ${masqueradeMark}/${masqueradeMark} -j RETURN`,
    `-j MARK --set-xmark 0x0/${masqueradeMark}`,
    '-j MASQUERADE',
  ]);
  const filter = new Map<string, readonly string[]>([
    [
      top.fw,
      [
        `-d ${cfg.serviceCidr} ! -o lo ${comment('virtual IPs never leave this machine')} -j REJECT --reject-with icmp-port-unreachable`,
      ],
    ],
    // route_localnet (set on pod bridges for node ports on 127.0.1.N) would also let a pod
    // reach the host's loopback services (masters' ports): dropped unless translated by us
    // (kube-proxy's guard for CVE-2020-8558).
    [
      top.in,
      [
        `-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT ${comment('loopback is not reachable from outside it')} -j DROP`,
      ],
    ],
  ]);
  const note = (what: string) => comment(`coxswain node ${cfg.node} ${what}`);
  const cidrJump = `-d ${cfg.serviceCidr} ${note('cluster IPs')} -j ${top.svc}`;
  const nodeJump = `-d ${cfg.nodeIp}/32 ${note('node ports')} -j ${top.np}`;
  const guard = `-d ${cfg.serviceCidr} ${note('guard')} -j ${top.fw}`;
  const jumps: Jump[] = [
    { table: 'nat', chain: 'PREROUTING', spec: cidrJump },
    { table: 'nat', chain: 'PREROUTING', spec: nodeJump },
    { table: 'nat', chain: 'OUTPUT', spec: cidrJump },
    { table: 'nat', chain: 'OUTPUT', spec: nodeJump },
    { table: 'nat', chain: 'POSTROUTING', spec: `${note('masquerade')} -j ${top.post}` },
    { table: 'filter', chain: 'OUTPUT', spec: guard },
    { table: 'filter', chain: 'FORWARD', spec: guard },
    { table: 'filter', chain: 'INPUT', spec: `-d 127.0.0.0/8 ${note('loopback guard')} -j ${top.in}` },
  ];
  for (const names of [nat.keys(), filter.keys()])
    for (const n of names)
      if (n.length > chainNameCharsMax)
        throw new Error(`chain name ${n} is longer than ${chainNameCharsMax}`);
  return { nat, filter, jumps };
}

// ---------------------------------------------------------------- what the kernel has

/** Our chains and jumps as `iptables-save` shows them (one table or several). */
export interface SavedRules {
  /** Own chains present, per table. */
  readonly chains: ReadonlyMap<Table, ReadonlySet<string>>;
  /** Rules in built-in chains that jump to one of our chains, in order. */
  readonly jumps: readonly Jump[];
  /** Rules per own chain (`table chain` → count). */
  readonly ruleCounts: ReadonlyMap<string, number>;
}

const builtins = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'FORWARD', 'POSTROUTING']);

/** Reads the chains and jumps of the agent with `tag` from `iptables-save` output. */
export function parseSaved(text: string, tag: string): SavedRules {
  const chains = new Map<Table, Set<string>>();
  const jumps: Jump[] = [];
  const ruleCounts = new Map<string, number>();
  let table: Table | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      const t = line.slice(1);
      table = t === 'nat' || t === 'filter' ? t : undefined;
      if (table !== undefined && !chains.has(table)) chains.set(table, new Set());
      continue;
    }
    if (table === undefined) continue;
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0];
      if (isOwnChain(name, tag)) chains.get(table)?.add(name);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const rest = line.slice(3);
    const space = rest.indexOf(' ');
    const chain = rest.slice(0, space);
    const spec = rest.slice(space + 1);
    if (isOwnChain(chain, tag)) {
      ruleCounts.set(`${table} ${chain}`, (ruleCounts.get(`${table} ${chain}`) ?? 0) + 1);
      continue;
    }
    const target = / -j (\S+)/.exec(` ${spec}`)?.[1];
    if (builtins.has(chain) && target !== undefined && isOwnChain(target, tag))
      jumps.push({ table, chain, spec });
  }
  return { chains, jumps, ruleCounts };
}

/**
 * Whether the kernel still has exactly what `desired` wrote: the same own chains with as many
 * rules each, and each jump once. (Rule texts are not compared: iptables-save normalizes them.)
 * A drift (someone flushed or deleted our chains, a jump went or doubled) calls for a full apply.
 */
export function matchesSaved(desired: RuleSet, saved: SavedRules): boolean {
  for (const table of ['nat', 'filter'] as const) {
    const want = chainsOf(desired, table);
    const have = saved.chains.get(table) ?? new Set<string>();
    if (have.size !== want.size) return false;
    for (const [chain, rules] of want) {
      if (!have.has(chain) || (saved.ruleCounts.get(`${table} ${chain}`) ?? 0) !== rules.length) return false;
    }
  }
  const wanted = new Set(desired.jumps.map(jumpKey));
  const seen = new Set<string>();
  for (const j of saved.jumps) {
    const key = jumpKey(j);
    if (!wanted.has(key) || seen.has(key)) return false;
    seen.add(key);
  }
  return seen.size === wanted.size;
}

// ---------------------------------------------------------------- restore input

/** What one restore must do. */
export interface RestoreWork {
  readonly text: string;
  /** Chains written or removed. */
  readonly changed: number;
}

function chainsOf(set: RuleSet, table: Table): ReadonlyMap<string, readonly string[]> {
  return table === 'nat' ? set.nat : set.filter;
}

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  if (a === b) return true;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function jumpKey(j: Jump): string {
  return `${j.table} ${j.chain} ${j.spec}`;
}

/**
 * The restore input that turns `current` into `desired`.
 * - Incremental (`saved` undefined): `current` is what the last successful apply wrote; only
 *   chains whose rules differ are rewritten (a `:CHAIN` line flushes it), chains gone are removed.
 * - Full (`saved` from iptables-save): every desired chain is rewritten, every other chain of
 *   ours that exists is removed, and the jumps are made exactly the desired ones, once each
 *   (duplicates and strays from earlier runs are deleted; missing ones inserted first in their
 *   built-in chain, ahead of other programs' rules).
 * Returns undefined when there is nothing to do.
 */
export function restoreInput(
  desired: RuleSet,
  current: RuleSet | undefined,
  saved: SavedRules | undefined,
): RestoreWork | undefined {
  const out: string[] = [];
  let changed = 0;
  for (const table of ['nat', 'filter'] as const) {
    const want = chainsOf(desired, table);
    const had =
      saved !== undefined ? undefined : current !== undefined ? chainsOf(current, table) : undefined;
    const present = saved?.chains.get(table) ?? new Set<string>(had?.keys() ?? []);
    const write = [...want.keys()].filter((c) => saved !== undefined || !sameRules(want.get(c), had?.get(c)));
    const remove = [...present].filter((c) => !want.has(c));
    const jumpLines: string[] = [];
    if (saved !== undefined) {
      const existing = saved.jumps.filter((j) => j.table === table);
      const wanted = desired.jumps.filter((j) => j.table === table);
      const wantedKeys = new Set(wanted.map(jumpKey));
      const seen = new Set<string>();
      for (const j of existing) {
        const key = jumpKey(j);
        if (!wantedKeys.has(key) || seen.has(key)) jumpLines.push(`-D ${j.chain} ${j.spec}`);
        seen.add(key);
      }
      for (const j of wanted) if (!seen.has(jumpKey(j))) jumpLines.push(`-I ${j.chain} 1 ${j.spec}`);
    }
    if (write.length === 0 && remove.length === 0 && jumpLines.length === 0) continue;
    changed += write.length + remove.length;
    out.push(`*${table}`);
    for (const c of [...write, ...remove]) out.push(`:${c} - [0:0]`);
    for (const c of write) for (const r of want.get(c) ?? []) out.push(`-A ${c} ${r}`);
    out.push(...jumpLines);
    for (const c of remove) out.push(`-X ${c}`);
    out.push('COMMIT');
  }
  if (out.length === 0) return undefined;
  return { text: `${out.join('\n')}\n`, changed };
}

/** The restore input that removes every chain and jump of ours that `saved` shows. */
export function removalInput(saved: SavedRules): string | undefined {
  const out: string[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const chains = [...(saved.chains.get(table) ?? [])];
    const jumps = saved.jumps.filter((j) => j.table === table);
    if (chains.length === 0 && jumps.length === 0) continue;
    out.push(`*${table}`);
    for (const c of chains) out.push(`:${c} - [0:0]`);
    for (const j of jumps) out.push(`-D ${j.chain} ${j.spec}`);
    for (const c of chains) out.push(`-X ${c}`);
    out.push('COMMIT');
  }
  return out.length === 0 ? undefined : `${out.join('\n')}\n`;
}

/**
 * The proxy of one node agent: the service catalog (list+watch of Services and Endpoints), a
 * supervised proxy actor that turns every change into one coalesced apply of the pure plan
 * through the `ProxyRules` port, and the cluster DNS server. Modes:
 * - kernel: iptables chains of this node (kernel-rules.ts); needs root;
 * - userspace: a TCP proxy in the agent (userspace-rules.ts); needs no privileges when the
 *   service CIDR is inside 127.0.0.0/8;
 * - auto: kernel when root and iptables answers, else userspace (the log says which and why);
 * - none: only the catalog (service environment variables), no rules and no DNS.
 *
 * Safety order at start: the service CIDR is made local before any rule or listener exists.
 * Applies are coalesced: a burst of changes becomes one apply, and a change that arrives during
 * an apply is taken by the next one. The time from the first change seen to its apply finishing
 * is measured (`status().syncLatencyMs`) and logged.
 */

import type { ObjectApi } from '../../actors/api.js';
import type { ActorRef, ActorSpec, ActorSystem } from '../../actors/runtime.js';
import { run, timer } from '../../actors/runtime.js';
import type { Service } from '../../core/objects.js';
import { type CatalogKind, ServiceCatalog } from './catalog.js';
import { DnsServer, type DnsServerStats } from './dns-server.js';
import { DnsZone } from './dns-zone.js';
import { type Cidr, CidrError, cidrContains, loopbackCidr, parseCidr, parseIPv4 } from './ipv4.js';
import { KernelProxyRules, whyNoKernelRules } from './kernel-rules.js';
import { enableRouteLocalnet, ensureLocalRoute, localPodNetworks } from './local-net.js';
import { PlanCache, type PortRange, planProxy } from './plan.js';
import type { DnsRedirect, ProxyRules } from './rules.js';
import { UserspaceProxyRules } from './userspace-rules.js';

export type ProxyModeFlag = 'kernel' | 'userspace' | 'auto' | 'none';

/** The masters' defaults (service CIDR, node ports, DNS IP, domain). */
export const proxyDefaults = {
  mode: 'auto',
  serviceCidr: '10.96.0.0/16',
  nodePortRange: '30000-32767',
  clusterDns: '10.96.0.10',
  clusterDomain: 'cluster.local',
} as const;

export interface ProxyOptions {
  mode?: ProxyModeFlag;
  /** Default 10.96.0.0/16. */
  serviceCidr?: string;
  /** `min-max`, default 30000-32767: node ports outside it are never opened. */
  nodePortRange?: string;
  /** The cluster DNS service IP (inside the service CIDR). Default 10.96.0.10. */
  clusterDns?: string;
  /** Default cluster.local. */
  clusterDomain?: string;
  /** Where backends may be. Default: 127.0.0.0/8 and the subnets of this host's bridges. */
  backendCidrs?: string[];
  /** Changes within this window after the first are applied together. Default 20. */
  syncCoalesceMs?: number;
  /**
   * This often the rules are checked against the data path (kernel: our chains, their rule
   * counts and the jumps, from iptables-save), and rewritten whole if they drifted. Default 60,000.
   */
  fullResyncMs?: number;
  /** Change-to-applied samples kept for the percentiles. Default 1,000. */
  syncLatencySamplesMax?: number;
  /** First and largest wait before retrying a failed apply. Default 100 / 10,000. */
  applyRetryBackoffMsMin?: number;
  applyRetryBackoffMsMax?: number;
  /** An adapter to use instead of the mode's (unit tests: MemoryProxyRules). */
  rules?: ProxyRules;
  /** Runs host commands after this prefix (tests in a private network namespace). */
  commandPrefix?: readonly string[];
}

export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError';
  readonly code = 'PROXY_CONFIG';
}

/** Validated configuration. */
export interface ProxyConfig {
  mode: ProxyModeFlag;
  serviceCidr: Cidr;
  nodePortRange: PortRange;
  clusterDns: string;
  clusterDomain: string;
  backendCidrs?: Cidr[];
}

/** Parses and checks the flags; throws ProxyConfigError with the flag's name. */
export function proxyConfig(o: ProxyOptions): ProxyConfig {
  const mode = o.mode ?? proxyDefaults.mode;
  if (!['kernel', 'userspace', 'auto', 'none'].includes(mode))
    throw new ProxyConfigError(`--proxy-mode: "${mode}" is not one of kernel, userspace, auto, none`);
  let serviceCidr: Cidr;
  let backendCidrs: Cidr[] | undefined;
  try {
    serviceCidr = parseCidr(o.serviceCidr ?? proxyDefaults.serviceCidr, '--service-cidr');
    backendCidrs = o.backendCidrs?.map((c) => parseCidr(c, '--backend-cidrs'));
  } catch (err) {
    if (err instanceof CidrError) throw new ProxyConfigError(err.message);
    throw err;
  }
  if (serviceCidr.prefix < 8)
    throw new ProxyConfigError(`--service-cidr "${serviceCidr.text}": wider than a /8; pick a smaller block`);
  const range = /^(\d{1,5})-(\d{1,5})$/.exec(o.nodePortRange ?? proxyDefaults.nodePortRange);
  const min = Number(range?.[1]);
  const max = Number(range?.[2]);
  if (range === null || min < 1 || max > 65535 || min > max)
    throw new ProxyConfigError(`--node-port-range "${o.nodePortRange}": not a range like 30000-32767`);
  const clusterDns = o.clusterDns ?? proxyDefaults.clusterDns;
  if (parseIPv4(clusterDns) === undefined || !cidrContains(serviceCidr, clusterDns))
    throw new ProxyConfigError(
      `--cluster-dns "${clusterDns}": must be an address inside the service CIDR ${serviceCidr.text}`,
    );
  const clusterDomain = (o.clusterDomain ?? proxyDefaults.clusterDomain).toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(clusterDomain))
    throw new ProxyConfigError(`--cluster-domain "${o.clusterDomain}": not a DNS domain`);
  return {
    mode,
    serviceCidr,
    nodePortRange: { min, max },
    clusterDns,
    clusterDomain,
    ...(backendCidrs ? { backendCidrs } : {}),
  };
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ProxyStatus {
  mode: 'kernel' | 'userspace' | 'memory' | 'none';
  /** The first apply (with the full catalog) is done. */
  ready: boolean;
  services: number;
  endpoints: number;
  /** Virtual servers (service ports with a ClusterIP) and their ready backends. */
  servers: number;
  backends: number;
  syncs: number;
  fullSyncs: number;
  failures: number;
  lastError?: string;
  /** Duration of the last apply alone. */
  lastApplyMs?: number;
  /** From the first change seen (a watch event) to its apply finishing, over recent syncs. */
  syncLatencyMs: LatencySummary;
  /** Per kind: every change of it up to this resourceVersion (a Raft index) is in the rules. */
  appliedResourceVersions: Record<CatalogKind, number>;
  /** What the planner left out, and why. */
  problems: readonly string[];
  dns?: { address: string; udpPort: number; tcpPort: number; listening: boolean } & DnsServerStats;
}

export interface ServiceProxyDeps {
  node: string;
  nodeIp: string;
  api: ObjectApi;
  system: ActorSystem;
  options: ProxyOptions;
  nowMs?: () => number;
  log?: (line: string) => void;
}

type ProxyMsg =
  | { readonly type: 'changed' }
  | { readonly type: 'sync' }
  | { readonly type: 'resync' }
  | { readonly type: 'applied' }
  | { readonly type: 'failed'; readonly sinceMs: number | undefined };

type ProxyEffect = { kind: 'apply'; full: boolean; verify: boolean; retrySinceMs: number | undefined };

interface ProxyActorState {
  /** A sync timer is set. */
  armed: boolean;
  /** The next apply rewrites everything (first apply, after a failure). */
  full: boolean;
  /** The next apply checks the data path first (the periodic resync). */
  verify: boolean;
  failures: number;
  /** The first change of a failed apply, carried into the retry. */
  retrySinceMs?: number;
}

/** Percentiles of `samples` (nearest rank). */
export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) return { count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  const r = (n: number) => Math.round(n * 100) / 100;
  return { count: s.length, p50Ms: r(at(0.5)), p99Ms: r(at(0.99)), maxMs: r(s[s.length - 1]) };
}

export class ServiceProxy {
  readonly config: ProxyConfig;
  readonly catalog: ServiceCatalog;
  private rules: ProxyRules | undefined;
  private dns: DnsServer | undefined;
  private dnsRedirect: DnsRedirect | undefined;
  private ref: ActorRef<ProxyMsg> | undefined;
  private readonly nowMs: () => number;
  private readonly log: (line: string) => void;
  private pendingSinceMs: number | undefined;
  private applying: Promise<unknown> | undefined;
  private stopped = false;
  private backendCidrs: Cidr[] = [loopbackCidr];
  private problems: readonly string[] = [];
  private readonly planCache = new PlanCache();
  private readonly latencies: number[] = [];
  private latencyNext = 0;
  private readonly counters = { syncs: 0, fullSyncs: 0, failures: 0, servers: 0, backends: 0 };
  private lastError: string | undefined;
  private lastApplyMs: number | undefined;
  private readonly appliedRv: Record<CatalogKind, number> = { Service: 0, Endpoints: 0 };
  private firstApplied = false;
  private readonly appliedWaiters: (() => void)[] = [];

  constructor(private readonly deps: ServiceProxyDeps) {
    this.config = proxyConfig(deps.options);
    this.nowMs = deps.nowMs ?? Date.now;
    this.log = deps.log ?? (() => {});
    this.catalog = new ServiceCatalog({ api: deps.api, log: this.log });
  }

  get mode(): ProxyStatus['mode'] {
    return this.rules?.mode ?? 'none';
  }

  /**
   * Chooses the mode, makes the service CIDR local, starts DNS, the actor and the watches.
   * Throws (LocalRouteError, ProxyConfigError) when the proxy cannot run safely.
   */
  async start(): Promise<void> {
    const injected = this.deps.options.rules;
    if (injected !== undefined) {
      // Unit tests: no host network at all.
      this.rules = injected;
      this.backendCidrs = this.config.backendCidrs ?? [loopbackCidr];
    } else {
      const mode = await this.chooseMode();
      if (mode !== 'none') await this.prepareHost(mode);
      this.rules = this.createRules(mode);
      if (this.rules !== undefined && this.rules.mode !== 'memory') await this.startDns(this.rules.mode);
    }
    this.ref = this.deps.system.spawn('proxy', this.actor(), {
      mailboxMessagesMax: 64,
      restart: { restartBackoffMsMin: 100, restartBackoffMsMax: 10_000, restartsMax: 100 },
    });
    this.catalog.start(() => this.onChange());
  }

  /** `auto`: kernel when root and iptables answers, else userspace; says which and why. */
  private async chooseMode(): Promise<'kernel' | 'userspace' | 'none'> {
    const wanted = this.config.mode;
    if (wanted === 'userspace' || wanted === 'none') return wanted;
    const why = await whyNoKernelRules(this.deps.options.commandPrefix);
    if (why === undefined) return 'kernel';
    if (wanted === 'kernel') throw new ProxyConfigError(`--proxy-mode kernel: iptables unusable (${why})`);
    this.log(`proxy: auto: kernel mode unavailable (${why})`);
    return 'userspace';
  }

  /** Before any rule or listener: the virtual IPs become this machine's, so nothing can leave. */
  private async prepareHost(mode: 'kernel' | 'userspace'): Promise<void> {
    const cidr = this.config.serviceCidr;
    const how = await ensureLocalRoute(cidr, this.deps.options.commandPrefix);
    this.log(
      how === 'loopback'
        ? `proxy: service CIDR ${cidr.text} is inside 127.0.0.0/8 (always local)`
        : `proxy: service CIDR ${cidr.text} is local (ip route replace local ${cidr.text} dev lo table local)`,
    );
    await this.findBackendNetworks(mode);
  }

  private createRules(mode: 'kernel' | 'userspace' | 'none'): ProxyRules | undefined {
    const prefix = this.deps.options.commandPrefix;
    switch (mode) {
      case 'kernel': {
        const k = new KernelProxyRules({
          node: this.deps.node,
          nodeIp: this.deps.nodeIp,
          serviceCidr: this.config.serviceCidr,
          ...(prefix !== undefined ? { commandPrefix: prefix } : {}),
        });
        this.log(`proxy: kernel mode (iptables chains COX-SVC-${k.tag}, COX-NP-${k.tag}, COX-${k.tag}-*)`);
        return k;
      }
      case 'userspace':
        this.log('proxy: userspace mode (a TCP proxy in this agent)');
        return new UserspaceProxyRules({ nodeIp: this.deps.nodeIp, log: this.log, nowMs: this.nowMs });
      case 'none':
        this.log('proxy: none (no proxy rules, no cluster DNS; service environment variables only)');
        return undefined;
      default: {
        const unknown: never = mode;
        throw new Error(`proxy: unknown mode ${String(unknown)}`);
      }
    }
  }

  /** Stops the watches and the actor, then removes every rule and listener (clean exit). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.catalog.stop();
    if (this.ref !== undefined) this.deps.system.stop(this.ref);
    await this.applying?.catch(() => {});
    await this.dns?.stop();
    try {
      await this.rules?.close();
    } catch (err) {
      this.log(`proxy: removing rules: ${err instanceof Error ? err.message : String(err)}`);
    }
    for (const w of this.appliedWaiters.splice(0)) w();
  }

  /** Services of a namespace once both kinds were listed (pods wait for that), else undefined. */
  servicesIn(namespace: string): Service[] | undefined {
    return this.catalog.ready ? this.catalog.servicesIn(namespace) : undefined;
  }

  /** The cluster DNS pods use with dnsPolicy ClusterFirst, when this proxy serves one. */
  clusterDns(): { nameserver: string; domain: string } | undefined {
    return this.dns !== undefined
      ? { nameserver: this.config.clusterDns, domain: this.config.clusterDomain }
      : undefined;
  }

  /**
   * Resolves once the rules include every change of `kind` up to `resourceVersion` (the version
   * a write returned), or the proxy stops. `resourceVersion` 0: the first apply.
   */
  async waitApplied(kind: CatalogKind, resourceVersion: number): Promise<void> {
    while (!this.stopped && !(this.firstApplied && this.appliedRv[kind] >= resourceVersion)) {
      await new Promise<void>((r) => this.appliedWaiters.push(r));
    }
  }

  status(): ProxyStatus {
    const dns = this.dns;
    return {
      mode: this.mode,
      ready: this.firstApplied,
      ...this.catalog.size,
      servers: this.counters.servers,
      backends: this.counters.backends,
      syncs: this.counters.syncs,
      fullSyncs: this.counters.fullSyncs,
      failures: this.counters.failures,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.lastApplyMs !== undefined ? { lastApplyMs: this.lastApplyMs } : {}),
      syncLatencyMs: summarize(this.latencies),
      appliedResourceVersions: { ...this.appliedRv },
      problems: this.problems,
      ...(dns !== undefined
        ? {
            dns: {
              address: this.config.clusterDns,
              udpPort: dns.udpPort,
              tcpPort: dns.tcpPort,
              listening: dns.listening,
              ...dns.stats,
            },
          }
        : {}),
    };
  }

  private async findBackendNetworks(mode: 'kernel' | 'userspace', quiet = false): Promise<void> {
    const configured = this.config.backendCidrs;
    if (configured !== undefined) {
      this.backendCidrs = configured;
      return;
    }
    let networks: Awaited<ReturnType<typeof localPodNetworks>> = [];
    try {
      networks = await localPodNetworks(this.deps.options.commandPrefix);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      // A recheck that cannot read the table keeps what it knew (dropping every backend would be an outage).
      if (quiet)
        return this.log(`proxy: cannot read the routing table (${why}); keeping the known pod networks`);
      this.log(`proxy: cannot read the routing table (${why}); backends on loopback only`);
    }
    const before = this.backendCidrs.map((c) => c.text).join(', ');
    this.backendCidrs = [loopbackCidr, ...networks.map((n) => n.cidr)];
    const now = this.backendCidrs.map((c) => c.text).join(', ');
    if (!quiet || now !== before) this.log(`proxy: backends may be on ${now}`);
    if (mode !== 'kernel' || this.deps.options.commandPrefix !== undefined) return;
    for (const n of networks) {
      try {
        if (await enableRouteLocalnet(n.dev))
          this.log(
            `proxy: net.ipv4.conf.${n.dev}.route_localnet=1 (node ports on loopback addresses reach pods)`,
          );
      } catch (err) {
        this.log(
          `proxy: cannot set route_localnet on ${n.dev}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  }

  private async startDns(mode: 'kernel' | 'userspace'): Promise<void> {
    const ip = this.config.clusterDns;
    const zone = new DnsZone({ domain: this.config.clusterDomain, serviceCidr: this.config.serviceCidr });
    const dns = new DnsServer({
      zone,
      view: this.catalog,
      host: ip,
      port: mode === 'kernel' ? 0 : 53,
      ...(mode === 'userspace' ? { bindRetryMs: 1_000 } : {}),
      log: this.log,
    });
    try {
      const ports = await dns.start();
      this.dns = dns;
      if (mode === 'kernel') this.dnsRedirect = { ip, ...ports };
      this.log(
        mode === 'kernel'
          ? `proxy: cluster DNS ${ip}:53 → this agent (udp ${ports.udpPort}, tcp ${ports.tcpPort}), zone ${this.config.clusterDomain}`
          : `proxy: cluster DNS on ${ip}:53, zone ${this.config.clusterDomain}`,
      );
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      // Userspace without privileges: port 53 is out of reach (pods then keep the node's resolver).
      this.log(`proxy: no cluster DNS: ${why}`);
    }
  }

  private onChange(): void {
    if (this.pendingSinceMs !== undefined || this.stopped || this.ref === undefined) return;
    this.pendingSinceMs = this.nowMs();
    this.deps.system.tell(this.ref, { type: 'changed' });
  }

  private actor(): ActorSpec<ProxyActorState, ProxyMsg, ProxyEffect> {
    const coalesceMs = this.deps.options.syncCoalesceMs ?? 20;
    const resyncMs = this.deps.options.fullResyncMs ?? 60_000;
    const backoffMin = this.deps.options.applyRetryBackoffMsMin ?? 100;
    const backoffMax = this.deps.options.applyRetryBackoffMsMax ?? 10_000;
    return {
      init: () => ({ armed: false, full: true, verify: false, failures: 0 }),
      receive: (state, msg) => {
        switch (msg.type) {
          case 'changed':
            if (state.armed) return { state, effects: [] };
            return {
              state: { ...state, armed: true },
              effects: [timer('sync', coalesceMs, { type: 'sync' } as ProxyMsg)],
            };
          case 'resync':
            return {
              state: { ...state, verify: true, armed: true },
              effects: [
                ...(state.armed ? [] : [timer('sync', 0, { type: 'sync' } as ProxyMsg)]),
                timer('resync', resyncMs, { type: 'resync' } as ProxyMsg),
              ],
            };
          case 'sync':
            return {
              state: { ...state, armed: false },
              effects: [
                run<ProxyEffect>({
                  kind: 'apply',
                  full: state.full,
                  verify: state.verify,
                  retrySinceMs: state.retrySinceMs,
                }),
              ],
            };
          case 'applied': {
            const { retrySinceMs: _done, ...rest } = state;
            return {
              state: { ...rest, full: false, verify: false, failures: 0 },
              effects:
                state.failures > 0 || state.full || state.verify
                  ? [timer('resync', resyncMs, { type: 'resync' } as ProxyMsg)]
                  : [],
            };
          }
          case 'failed': {
            const failures = state.failures + 1;
            const delay = Math.min(backoffMax, backoffMin * 2 ** Math.min(20, failures - 1));
            return {
              state: {
                armed: true,
                full: true,
                verify: false,
                failures,
                ...(msg.sinceMs !== undefined ? { retrySinceMs: msg.sinceMs } : {}),
              },
              effects: [timer('sync', delay, { type: 'sync' } as ProxyMsg)],
            };
          }
          default: {
            const unknown: never = msg;
            throw new Error(`proxy actor: unknown message ${JSON.stringify(unknown)}`);
          }
        }
      },
      run: async (effect) => {
        const p = this.apply(effect.full, effect.verify, effect.retrySinceMs);
        this.applying = p;
        return p;
      },
    };
  }

  /** One apply of the plan of the catalog as it is now. Never throws: answers applied/failed. */
  /** The periodic check of the host: the local route is still there, the pod networks as they are now. */
  private async recheckHost(): Promise<void> {
    const mode = this.rules?.mode;
    if (this.deps.options.rules !== undefined || (mode !== 'kernel' && mode !== 'userspace')) return;
    try {
      await ensureLocalRoute(this.config.serviceCidr, this.deps.options.commandPrefix);
    } catch (err) {
      this.log(`proxy: ${err instanceof Error ? err.message : String(err)}`);
    }
    const before = this.backendCidrs.map((c) => c.text).join(',');
    await this.findBackendNetworks(mode, true);
    if (this.backendCidrs.map((c) => c.text).join(',') !== before) this.planCache.entries.clear();
  }

  private async apply(
    full: boolean,
    verify: boolean,
    retrySinceMs: number | undefined,
  ): Promise<ProxyMsg | undefined> {
    if (this.stopped || this.rules === undefined) return undefined;
    if (!this.catalog.ready) return undefined; // the first change after both lists brings us back
    if (verify) await this.recheckHost();
    const taken = this.pendingSinceMs;
    this.pendingSinceMs = undefined;
    const sinceMs =
      retrySinceMs !== undefined && taken !== undefined
        ? Math.min(retrySinceMs, taken)
        : (retrySinceMs ?? taken);
    const rv = { ...this.catalog.resourceVersions };
    const startMs = this.nowMs();
    const { plan, problems } = planProxy(
      {
        services: this.catalog.services(),
        endpoints: (ns, name) => this.catalog.endpoints(ns, name),
        serviceCidr: this.config.serviceCidr,
        nodePortRange: this.config.nodePortRange,
        backendCidrs: this.backendCidrs,
        clusterDns: this.config.clusterDns,
        ...(this.dnsRedirect !== undefined ? { dns: this.dnsRedirect } : {}),
      },
      this.planCache,
    );
    this.noteProblems(problems);
    try {
      const result = await this.rules.apply(plan, { full, verify });
      const doneMs = this.nowMs();
      this.counters.syncs += 1;
      if (result.full) this.counters.fullSyncs += 1;
      this.counters.servers = plan.servers.length;
      this.counters.backends = plan.servers.reduce((n, s) => n + s.backends.length, 0);
      this.lastApplyMs = doneMs - startMs;
      this.lastError = undefined;
      this.appliedRv.Service = rv.Service;
      this.appliedRv.Endpoints = rv.Endpoints;
      this.firstApplied = true;
      if (sinceMs !== undefined) this.recordLatency(doneMs - sinceMs);
      this.log(
        `proxy: applied ${plan.servers.length} service ports (${this.counters.backends} backends)${result.full ? ', full' : ''}: ${result.changed} changed in ${this.lastApplyMs} ms${sinceMs !== undefined ? `, ${doneMs - sinceMs} ms after the change` : ''}`,
      );
      for (const w of this.appliedWaiters.splice(0)) w();
      return { type: 'applied' };
    } catch (err) {
      this.counters.failures += 1;
      this.lastError = err instanceof Error ? err.message : String(err);
      this.log(`proxy: apply failed (will retry, rewriting everything): ${this.lastError}`);
      return { type: 'failed', sinceMs };
    }
  }

  private recordLatency(ms: number): void {
    const max = this.deps.options.syncLatencySamplesMax ?? 1_000;
    if (this.latencies.length < max) this.latencies.push(ms);
    else this.latencies[this.latencyNext] = ms;
    this.latencyNext = (this.latencyNext + 1) % max;
  }

  private noteProblems(problems: readonly string[]): void {
    const before = new Set(this.problems);
    for (const p of problems) if (!before.has(p)) this.log(`proxy: ${p}`);
    this.problems = problems;
  }
}

/**
 * The userspace adapter of the proxy rules port: a TCP proxy inside the agent, no iptables and
 * no privileges. Each service port with ready backends gets a listener on ClusterIP:port (the
 * service CIDR is local, so binding a virtual IP works) and, for NodePort services, one on
 * nodeIP:nodePort. A connection goes to the next backend in round-robin order, or to the
 * client's previous backend under ClientIP affinity; a backend that refuses is skipped for the
 * next one. Bytes are piped both ways with backpressure (a slow reader pauses the writer) and
 * half-closes pass through. Connections are bounded per agent.
 *
 * Several agents on one machine (local clusters) may want the same ClusterIP listener: the
 * first binds it, the others retry every `bindRetryMs`, so when one agent stops another takes
 * the address over. UDP and SCTP service ports are not served in this mode (logged once).
 */

import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ApplyResult, Backend, ProxyPlan, ProxyRules, VirtualServer } from './rules.js';

export interface UserspaceRulesOptions {
  nodeIp: string;
  /** Open client connections across all listeners; more are closed at once. Default 10,000. */
  connectionsMax?: number;
  /** A backend that has not accepted by then is skipped for the next one. Default 3,000. */
  connectTimeoutMs?: number;
  /** A listener whose address is taken retries this often. Default 1,000. */
  bindRetryMs?: number;
  /** Clients remembered per listener for ClientIP affinity (oldest forgotten first). Default 10,000. */
  affinityClientsMax?: number;
  nowMs?: () => number;
  log?: (line: string) => void;
}

interface AffinityEntry {
  backend: string;
  lastMs: number;
}

/** One listening address and the service port it serves. */
class Listener {
  server: VirtualServer;
  private readonly tcp: Server;
  private next = 0;
  private readonly affinity = new Map<string, AffinityEntry>();
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private busyLogged = false;
  listening = false;

  constructor(
    readonly ip: string,
    readonly port: number,
    server: VirtualServer,
    private readonly owner: UserspaceProxyRules,
  ) {
    this.server = server;
    this.tcp = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.accept(s));
    this.tcp.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    this.tcp.on('listening', () => {
      if (this.closed) {
        // Closed while the listen was in flight.
        this.tcp.close();
        return;
      }
      this.listening = true;
      if (this.busyLogged) this.owner.log(`proxy: ${this.address()} is free now; serving ${this.server.id}`);
    });
    this.bind();
  }

  address(): string {
    return `${this.ip}:${this.port}`;
  }

  private bind(): void {
    if (this.closed) return;
    this.tcp.listen({ host: this.ip, port: this.port, exclusive: true });
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (this.closed) return;
    if (!this.listening) {
      if (!this.busyLogged) {
        const why =
          err.code === 'EACCES'
            ? 'EACCES: ports below 1024 need root, CAP_NET_BIND_SERVICE or a lower net.ipv4.ip_unprivileged_port_start'
            : (err.code ?? err.message);
        this.owner.log(
          `proxy: cannot listen on ${this.address()} for ${this.server.id} (${why}); retrying every ${this.owner.bindRetryMs} ms`,
        );
        this.busyLogged = true;
      }
      this.retry = setTimeout(() => this.bind(), this.owner.bindRetryMs);
      return;
    }
    this.owner.log(`proxy: listener ${this.address()}: ${err.message}`);
  }

  close(): void {
    this.closed = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    if (this.listening) this.tcp.close();
    this.listening = false;
  }

  /** The backends to try for a client, in order: its sticky one first, then round robin. */
  private order(clientIp: string): Backend[] {
    const backends = this.server.backends;
    const n = backends.length;
    const start = this.next % Math.max(1, n);
    this.next = (start + 1) % Math.max(1, n);
    const rr = [...backends.slice(start), ...backends.slice(0, start)];
    const seconds = this.server.affinitySeconds;
    if (seconds === undefined) return rr;
    const entry = this.affinity.get(clientIp);
    const now = this.owner.nowMs();
    if (entry === undefined || now - entry.lastMs > seconds * 1000) return rr;
    const sticky = backends.find((b) => key(b) === entry.backend);
    return sticky === undefined ? rr : [sticky, ...rr.filter((b) => b !== sticky)];
  }

  private remember(clientIp: string, b: Backend): void {
    if (this.server.affinitySeconds === undefined) return;
    this.affinity.delete(clientIp);
    this.affinity.set(clientIp, { backend: key(b), lastMs: this.owner.nowMs() });
    while (this.affinity.size > this.owner.affinityClientsMax) {
      const oldest = this.affinity.keys().next().value;
      if (oldest === undefined) break;
      this.affinity.delete(oldest);
    }
  }

  /** Drops affinity entries of backends that are gone. */
  prune(): void {
    const live = new Set(this.server.backends.map(key));
    for (const [client, e] of this.affinity) if (!live.has(e.backend)) this.affinity.delete(client);
  }

  private accept(client: Socket): void {
    if (!this.owner.admit(client)) {
      client.destroy();
      return;
    }
    client.once('close', () => this.owner.release(client));
    client.on('error', () => client.destroy());
    const clientIp = client.remoteAddress ?? '';
    const candidates = this.order(clientIp);
    const attempt = (i: number): void => {
      if (client.destroyed) return;
      const b = candidates[i];
      if (b === undefined) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: b.ip, port: b.port, allowHalfOpen: true });
      const timer = setTimeout(
        () => upstream.destroy(new Error('connect timeout')),
        this.owner.connectTimeoutMs,
      );
      const onFail = (): void => {
        clearTimeout(timer);
        upstream.destroy();
        attempt(i + 1);
      };
      upstream.once('error', onFail);
      upstream.once('connect', () => {
        clearTimeout(timer);
        upstream.off('error', onFail);
        // The client left while this backend was being dialed: nothing to splice.
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        this.remember(clientIp, b);
        splice(client, upstream);
      });
    };
    attempt(0);
  }
}

function sameService(a: VirtualServer, b: VirtualServer): boolean {
  return (
    a.affinitySeconds === b.affinitySeconds &&
    a.backends.length === b.backends.length &&
    a.backends.every((x, i) => key(x) === key(b.backends[i]))
  );
}

function key(b: Backend): string {
  return `${b.ip}:${b.port}`;
}

/**
 * Pipes both ways with backpressure; an end in one direction ends the other side's writes
 * (half-close), an error or close on either side ends both.
 */
function splice(client: Socket, upstream: Socket): void {
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}

export class UserspaceProxyRules implements ProxyRules {
  readonly mode = 'userspace' as const;
  readonly connectionsMax: number;
  readonly connectTimeoutMs: number;
  readonly bindRetryMs: number;
  readonly affinityClientsMax: number;
  readonly nowMs: () => number;
  readonly log: (line: string) => void;
  private readonly listeners = new Map<string, Listener>();
  private readonly unsupportedLogged = new Set<string>();
  private readonly clients = new Set<Socket>();
  private closed = false;

  constructor(private readonly opts: UserspaceRulesOptions) {
    this.connectionsMax = opts.connectionsMax ?? 10_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3_000;
    this.bindRetryMs = opts.bindRetryMs ?? 1_000;
    this.affinityClientsMax = opts.affinityClientsMax ?? 10_000;
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log ?? (() => {});
  }

  /** Open proxied connections now. */
  get connections(): number {
    return this.clients.size;
  }

  /** Addresses with a listener (bound or waiting for the address), sorted. */
  addresses(): { address: string; listening: boolean; server: string }[] {
    return [...this.listeners.values()]
      .map((l) => ({ address: l.address(), listening: l.listening, server: l.server.id }))
      .sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  /** Counts a new client connection in, unless the bound is reached or the adapter is closed. */
  admit(client: Socket): boolean {
    if (this.closed || this.clients.size >= this.connectionsMax) return false;
    this.clients.add(client);
    return true;
  }

  release(client: Socket): void {
    this.clients.delete(client);
  }

  async apply(plan: ProxyPlan, opts: { full?: boolean } = {}): Promise<ApplyResult> {
    if (this.closed) throw new Error('proxy: userspace rules are closed');
    const wanted = new Map<string, VirtualServer>();
    for (const s of plan.servers) {
      if (s.protocol !== 'TCP') {
        if (!this.unsupportedLogged.has(s.id))
          this.log(`proxy: ${s.id}: ${s.protocol} is not served in userspace mode (TCP only)`);
        this.unsupportedLogged.add(s.id);
        continue;
      }
      if (s.backends.length === 0) continue; // no listener: the local route refuses, as in kernel mode
      wanted.set(`${s.clusterIP}:${s.port}`, s);
      if (s.nodePort !== undefined) wanted.set(`${this.opts.nodeIp}:${s.nodePort}`, s);
    }
    let changed = 0;
    for (const [address, l] of this.listeners) {
      const s = wanted.get(address);
      if (s === undefined || s.id !== l.server.id) {
        l.close();
        this.listeners.delete(address);
        changed += 1;
      } else if (!sameService(s, l.server)) {
        l.server = s;
        l.prune();
        changed += 1;
      }
    }
    for (const [address, s] of wanted) {
      if (this.listeners.has(address)) continue;
      const colon = address.lastIndexOf(':');
      this.listeners.set(
        address,
        new Listener(address.slice(0, colon), Number(address.slice(colon + 1)), s, this),
      );
      changed += 1;
    }
    return { changed, full: opts.full === true };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of this.listeners.values()) l.close();
    this.listeners.clear();
    for (const c of this.clients) c.destroy();
    this.clients.clear();
  }
}

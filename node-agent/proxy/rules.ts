/**
 * The proxy rules port: what the proxy actor asks of the node's data path. One interface,
 * three adapters — kernel (iptables nat chains owned by this agent), userspace (a TCP proxy in
 * the agent) and memory (unit tests) — and one desired state, the `ProxyPlan`, that the pure
 * planner computes from Services and Endpoints. `apply` is level-based: it makes the data path
 * say exactly the plan, whatever it said before (including what a previous run of the agent
 * left), so a restarted agent converges without duplicates.
 */

export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';

/** A ready endpoint of a service port. */
export interface Backend {
  readonly ip: string;
  readonly port: number;
}

/** One port of one service, as the data path sees it. */
export interface VirtualServer {
  /** `namespace/name:port/PROTO` (the port's name, or its number when unnamed): stable and unique. */
  readonly id: string;
  readonly namespace: string;
  readonly service: string;
  /** The service port's name ('' when unnamed). */
  readonly portName: string;
  readonly protocol: ServiceProtocol;
  /** The virtual IP (the ClusterIP) and port. */
  readonly clusterIP: string;
  readonly port: number;
  /** On this node's IP, when the service is a NodePort service. */
  readonly nodePort?: number;
  /** `sessionAffinity: ClientIP`: a client sticks to its backend for this many idle seconds. */
  readonly affinitySeconds?: number;
  /** Ready backends, sorted by IP and port, without duplicates; may be empty. */
  readonly backends: readonly Backend[];
}

/** Where the cluster DNS service IP (`<dnsIP>:53`) is redirected to in kernel mode. */
export interface DnsRedirect {
  readonly ip: string;
  readonly udpPort: number;
  readonly tcpPort: number;
}

export interface ProxyPlan {
  readonly servers: readonly VirtualServer[];
  readonly dns?: DnsRedirect;
}

/** What one apply did (for the log and the metrics). */
export interface ApplyResult {
  /** Units the adapter rewrote (kernel: chains; userspace: listeners opened, closed or updated). */
  readonly changed: number;
  /** Whether this was a full rewrite (first apply, or the periodic resync). */
  readonly full: boolean;
}

export type ProxyMode = 'kernel' | 'userspace';

export interface ProxyRules {
  readonly mode: ProxyMode | 'memory';
  /**
   * Makes the data path match `plan`. `full` rewrites everything this adapter owns (and removes
   * strays and duplicates left by an earlier run); otherwise only what changed since the last
   * successful apply. `verify` first checks that what the last apply wrote is still in place
   * (the periodic resync), and rewrites everything if not. A rejection leaves the previous state
   * in place (kernel: the restore is one transaction) and the next apply is full.
   */
  apply(plan: ProxyPlan, opts?: { full?: boolean; verify?: boolean }): Promise<ApplyResult>;
  /** Removes everything this adapter installed (clean exit). Idempotent. */
  close(): Promise<void>;
}

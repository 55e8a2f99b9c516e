/**
 * The hollow driver of the container runtime port: it pretends, in memory, for scale tests
 * (a thousand nodes in one process). Nothing runs. A container "runs" from its start until it
 * is stopped (exit code 0 on SIGTERM, or 137 after the grace period when scripted to ignore
 * SIGTERM) or until its scripted exit. State is computed from the injected clock when read, so
 * a container costs one small object and no timer; a timer exists only while someone follows
 * the logs of a container with a scripted exit, and one per runtime (for the soonest scripted
 * exit) while someone subscribed to `events`.
 */

import {
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStats,
  type ContainerStatus,
  type ExecOptions,
  type ExecSession,
  ImagePullError,
  type LogChunk,
  type LogOptions,
  type PullPolicy,
  type SandboxSpec,
  type SandboxStatus,
} from './runtime.js';

/** How a pretend container behaves, decided once per start. */
export interface HollowBehaviour {
  /** Exits on its own this long after it started. Default: runs until stopped. */
  exitAfterMs?: number;
  /** The exit code of the scripted exit. Default 0. */
  exitCode?: number;
  /** Ignores SIGTERM, so a stop waits the whole grace period and then kills (137). */
  ignoreSigterm?: boolean;
}

export interface HollowRuntimeOptions {
  node: string;
  /** Every `startContainer` resolves after this long (a pretend image unpack and start). Default 0. */
  startDelayMs?: number;
  /** The one clock. Default Date.now. */
  nowMs?: () => number;
  /** Waits this long (start delay, grace periods). Default: a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Per-start behaviour. Default: run until stopped. */
  script?: (spec: ContainerSpec) => HollowBehaviour;
  /** Images present on the "node"; others are ImagePullErrors. Default: every image is present. */
  images?: readonly string[];
  /** The IP of pod number N on this node. Default 10.<hash of node>.N (never routed anywhere). */
  podIp?: (podIndex: number) => string;
}

interface HollowContainer {
  status: ContainerStatus;
  startedMs: number;
  behaviour: HollowBehaviour;
  /** Set when stopped (scripted exits are derived from `startedMs` instead). */
  exit?: { code: number; atMs: number };
}

interface HollowPod {
  sandbox: SandboxStatus;
  containers: Map<string, HollowContainer>;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sigkillExitCode = 137;

function nodeOctet(node: string): number {
  let h = 0;
  for (let i = 0; i < node.length; i += 1) h = (h * 31 + node.charCodeAt(i)) % 251;
  return h + 1;
}

export class HollowRuntime implements ContainerRuntime {
  readonly kind = 'hollow' as const;
  private readonly node: string;
  private readonly startDelayMs: number;
  private readonly nowMs: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly script: ((spec: ContainerSpec) => HollowBehaviour) | undefined;
  private readonly images: ReadonlySet<string> | undefined;
  private readonly podIp: (podIndex: number) => string;
  private readonly pods = new Map<string, HollowPod>();
  /** Container id → pod uid. */
  private readonly podOf = new Map<string, string>();
  private podsCreated = 0;
  /** `events` subscribers. */
  private readonly exitListeners = new Set<(podUid: string) => void>();
  /** While subscribed: scripted exits not yet reported, soonest first. */
  private pendingExits: { atMs: number; id: string }[] = [];
  private exitTimer: { handle: NodeJS.Timeout; atMs: number } | undefined;

  constructor(opts: HollowRuntimeOptions) {
    this.node = opts.node;
    this.startDelayMs = opts.startDelayMs ?? 0;
    this.nowMs = opts.nowMs ?? Date.now;
    this.sleep = opts.sleep ?? realSleep;
    this.script = opts.script;
    this.images = opts.images !== undefined ? new Set(opts.images) : undefined;
    const octet = nodeOctet(opts.node);
    this.podIp = opts.podIp ?? ((n) => `10.${octet}.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`);
  }

  async version(): Promise<string> {
    return 'hollow';
  }

  async ensureImage(image: string, _policy: PullPolicy): Promise<void> {
    if (this.images !== undefined && !this.images.has(image)) {
      throw new ImagePullError(image, `not present on hollow node ${this.node}`);
    }
  }

  async runSandbox(spec: SandboxSpec): Promise<SandboxStatus> {
    const existing = this.pods.get(spec.podUid);
    if (existing !== undefined) return { ...existing.sandbox };
    const sandbox: SandboxStatus = {
      id: `hollow-sandbox-${spec.podUid}`,
      ip: this.podIp(this.podsCreated),
      running: true,
    };
    this.podsCreated += 1;
    this.pods.set(spec.podUid, { sandbox, containers: new Map() });
    return { ...sandbox };
  }

  async startContainer(podUid: string, spec: ContainerSpec): Promise<ContainerStatus> {
    const pod = this.pods.get(podUid);
    if (pod === undefined) throw new Error(`pod ${podUid}: no sandbox on node ${this.node}`);
    const id = `${podUid}/${spec.name}-${spec.restartCount}`;
    if (pod.containers.has(id)) throw new Error(`container ${id}: already exists on node ${this.node}`);
    if (this.startDelayMs > 0) await this.sleep(this.startDelayMs);
    const startedMs = this.nowMs();
    const c: HollowContainer = {
      status: {
        id,
        podUid,
        name: spec.name,
        image: spec.image,
        restartCount: spec.restartCount,
        phase: 'running',
        startedAt: new Date(startedMs).toISOString(),
      },
      startedMs,
      behaviour: this.script?.(spec) ?? {},
    };
    pod.containers.set(id, c);
    this.podOf.set(id, podUid);
    if (this.exitListeners.size > 0 && this.scheduleExit(id, c)) this.armExitTimer();
    return this.statusOf(c);
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    const c = this.find(id);
    if (c === undefined || this.exitOf(c) !== undefined) return;
    if (c.behaviour.ignoreSigterm) {
      await this.sleep(graceSeconds * 1000);
      if (this.exitOf(c) === undefined) c.exit = { code: sigkillExitCode, atMs: this.nowMs() };
      return;
    }
    c.exit = { code: 0, atMs: this.nowMs() };
  }

  async removeContainer(id: string): Promise<void> {
    const podUid = this.podOf.get(id);
    if (podUid === undefined) return;
    this.podOf.delete(id);
    this.pods.get(podUid)?.containers.delete(id);
  }

  async removePod(podUid: string, graceSeconds: number): Promise<void> {
    const pod = this.pods.get(podUid);
    if (pod === undefined) return;
    await Promise.all([...pod.containers.keys()].map((id) => this.stopContainer(id, graceSeconds)));
    for (const id of pod.containers.keys()) this.podOf.delete(id);
    this.pods.delete(podUid);
  }

  async listContainers(filter: { podUid?: string } = {}): Promise<ContainerStatus[]> {
    const pods =
      filter.podUid !== undefined
        ? [this.pods.get(filter.podUid)].filter((p): p is HollowPod => p !== undefined)
        : [...this.pods.values()];
    return pods.flatMap((p) => [...p.containers.values()].map((c) => this.statusOf(c)));
  }

  async listPods(): Promise<string[]> {
    return [...this.pods.keys()];
  }

  async inspect(id: string): Promise<ContainerStatus> {
    return this.statusOf(this.mustFind(id));
  }

  /** One line per start: `hollow container <name> started (restart <n>)`. */
  async *logs(id: string, opts: LogOptions = {}): AsyncIterable<LogChunk> {
    const c = this.mustFind(id);
    const time = new Date(c.startedMs).toISOString();
    const since = opts.sinceTime !== undefined ? Date.parse(opts.sinceTime) : undefined;
    const shown =
      (opts.tailLines === undefined || opts.tailLines > 0) && (since === undefined || c.startedMs >= since);
    if (shown) {
      const line = `hollow container ${c.status.name} started (restart ${c.status.restartCount})\n`;
      yield { stream: 'stdout', data: new TextEncoder().encode(opts.timestamps ? `${time} ${line}` : line) };
    }
    if (!opts.follow) return;
    // Following: wait for the exit (a stop, seen by polling the state, or the scripted exit).
    const followPollMs = 100;
    while (this.exitOf(c) === undefined && this.find(id) !== undefined) {
      const { exitAfterMs } = c.behaviour;
      const left = exitAfterMs !== undefined ? c.startedMs + exitAfterMs - this.nowMs() : followPollMs;
      await this.sleep(Math.max(1, Math.min(left, followPollMs)));
    }
  }

  async exec(id: string, opts: ExecOptions): Promise<ExecSession> {
    const c = this.mustFind(id);
    if (this.exitOf(c) !== undefined) throw new Error(`container ${id}: is not running, cannot exec`);
    const data = new TextEncoder().encode(`${opts.command.join(' ')}\n`);
    return {
      output: (async function* () {
        yield { stream: 'stdout' as const, data };
      })(),
      write: () => {},
      end: () => {},
      exitCode: Promise.resolve(0),
      kill: () => {},
    };
  }

  async stats(id: string): Promise<ContainerStats> {
    this.mustFind(id);
    return { cpuNanos: 0, memoryBytes: 0, timestamp: new Date(this.nowMs()).toISOString() };
  }

  /**
   * Reports scripted exits at their time (stops are not reported: the agent stopped them).
   * Only while subscribed: one real timer per runtime, for the soonest pending exit, whose
   * delay is computed from the injected clock (an exit is reported once the clock says it is
   * due when the timer fires).
   */
  events(onExit: (podUid: string) => void): () => void {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const listener = (podUid: string) => onExit(podUid);
    if (this.exitListeners.size === 0) {
      for (const pod of this.pods.values()) for (const [id, c] of pod.containers) this.scheduleExit(id, c);
    }
    this.exitListeners.add(listener);
    this.armExitTimer();
    return () => {
      this.exitListeners.delete(listener);
      if (this.exitListeners.size > 0) return;
      this.pendingExits = [];
      this.armExitTimer();
    };
  }

  /** Adds a scripted exit still to come to the pending ones; false if there is none. */
  private scheduleExit(id: string, c: HollowContainer): boolean {
    if (c.behaviour.exitAfterMs === undefined || this.exitOf(c) !== undefined) return false;
    const atMs = c.startedMs + c.behaviour.exitAfterMs;
    // Binary search for the insertion point (pending exits stay sorted).
    let lo = 0;
    let hi = this.pendingExits.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.pendingExits[mid]!.atMs <= atMs) lo = mid + 1;
      else hi = mid;
    }
    this.pendingExits.splice(lo, 0, { atMs, id });
    return true;
  }

  /** Keeps one timer for the soonest pending exit, or none. */
  private armExitTimer(): void {
    const next = this.pendingExits[0];
    if (this.exitTimer !== undefined && next !== undefined && this.exitTimer.atMs <= next.atMs) return;
    if (this.exitTimer !== undefined) clearTimeout(this.exitTimer.handle);
    this.exitTimer = undefined;
    if (next === undefined || this.exitListeners.size === 0) return;
    const handle = setTimeout(() => this.fireExits(), Math.max(1, next.atMs - this.nowMs()));
    handle.unref();
    this.exitTimer = { handle, atMs: next.atMs };
  }

  private fireExits(): void {
    this.exitTimer = undefined;
    const nowMs = this.nowMs();
    const due: string[] = [];
    while (this.pendingExits.length > 0 && this.pendingExits[0]!.atMs <= nowMs) {
      const { atMs, id } = this.pendingExits.shift()!;
      const c = this.find(id);
      const podUid = this.podOf.get(id);
      // Removed, or stopped before its scripted time: not an exit of its own.
      if (c === undefined || podUid === undefined || (c.exit !== undefined && c.exit.atMs < atMs)) continue;
      due.push(podUid);
    }
    this.armExitTimer();
    for (const podUid of due) {
      for (const listener of [...this.exitListeners]) {
        try {
          listener(podUid);
        } catch {
          // A subscriber's failure is its own; the others are still told.
        }
      }
    }
  }

  private find(id: string): HollowContainer | undefined {
    const podUid = this.podOf.get(id);
    return podUid === undefined ? undefined : this.pods.get(podUid)?.containers.get(id);
  }

  private mustFind(id: string): HollowContainer {
    const c = this.find(id);
    if (c === undefined) throw new Error(`container ${id}: not found on hollow node ${this.node}`);
    return c;
  }

  /** The exit as of now: a stop, or the scripted exit once its time has come. */
  private exitOf(c: HollowContainer): { code: number; atMs: number } | undefined {
    const { exitAfterMs, exitCode } = c.behaviour;
    const scripted = exitAfterMs !== undefined ? c.startedMs + exitAfterMs : undefined;
    if (
      scripted !== undefined &&
      (c.exit === undefined || scripted < c.exit.atMs) &&
      this.nowMs() >= scripted
    ) {
      return { code: exitCode ?? 0, atMs: scripted };
    }
    return c.exit;
  }

  private statusOf(c: HollowContainer): ContainerStatus {
    const exit = this.exitOf(c);
    if (exit === undefined) return { ...c.status };
    return {
      ...c.status,
      phase: 'exited',
      exitCode: exit.code,
      reason: exit.code === 0 ? 'Completed' : 'Error',
      finishedAt: new Date(exit.atMs).toISOString(),
    };
  }
}

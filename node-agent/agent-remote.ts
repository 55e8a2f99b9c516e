/**
 * The agent's remote side: one {@link AgentConnector} per master (each dials only its master
 * and reconnects to it with backoff), so any master reaches this agent directly and one
 * master's failure interrupts nothing served through the others. It serves the requests of
 * actors/pod-streams.ts (see its protocol table): `logs` and `exec` of a pod's container,
 * `portForward` to a pod's TCP port (node-agent/port-forward.ts) and `stats` of the node's
 * running containers, with credit-based flow control per stream.
 */

import { AgentConnector } from '../actors/agent-channel.js';
import { ApiError, ApiErrorCode } from '../actors/api.js';
import type {
  AgentExecRequest,
  AgentLogsRequest,
  AgentPortForwardRequest,
  AgentStatsReply,
  AgentStatsRequest,
  ContainerUsage,
} from '../actors/pod-streams.js';
import type { IncomingRequest, Responder } from '../actors/remoting.js';
import { dialPod, PortForwardRelay, portForwardHost } from './port-forward.js';
import { cidrContains, loopbackCidr } from './proxy/ipv4.js';
import { localPodNetworks } from './proxy/local-net.js';
import type { ContainerRuntime, ContainerStats, ExecSession, LogOptions } from './runtime.js';

export const agentRemoteLimits = {
  /** Largest flow-control window a master may ask for, in frames. */
  windowFramesMax: 512,
  /** Streams (logs, exec, port-forward connections) served at once, over all masters. */
  streamsMax: 256,
  /** Exec input tells held while the exec starts, per stream. */
  pendingInputsMax: 1_024,
  /** Time between the two samples `stats` takes to compute CPU use, in ms. */
  statsSampleMs: 500,
} as const;

export interface AgentRemoteOptions {
  node: string;
  /** The masters' gRPC API addresses (`host:port`), the same list the agent's ApiClient uses. */
  masters: string[];
  runtime: ContainerRuntime;
  /** Where port-forwards reach pods of the process runtime (they share the node's network). */
  nodeIp?: string;
  nowMs?: () => number;
  log?: (line: string) => void;
}

type ExecInput =
  | { type: 'stdin'; data: Uint8Array }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'eof' };

/** Credit and input of one stream served here, addressed as `stream/<id>`. */
class StreamControl {
  private credit: number;
  private wake: (() => void) | undefined;
  private closed = false;
  private exec: ExecSession | undefined;
  private readonly pending: ExecInput[] = [];

  constructor(window: number) {
    this.credit = window;
  }

  grant(frames: number): void {
    this.credit += frames;
    this.wake?.();
  }

  /** Waits for credit for one frame; false once the stream is closed. */
  async take(): Promise<boolean> {
    while (this.credit <= 0 && !this.closed) {
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = undefined;
    }
    if (this.closed) return false;
    this.credit -= 1;
    return true;
  }

  input(i: ExecInput): void {
    if (this.exec === undefined) {
      if (this.pending.length < agentRemoteLimits.pendingInputsMax) this.pending.push(i);
      return;
    }
    applyInput(this.exec, i);
  }

  attach(exec: ExecSession): void {
    this.exec = exec;
    for (const i of this.pending.splice(0)) applyInput(exec, i);
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }
}

function applyInput(exec: ExecSession, i: ExecInput): void {
  switch (i.type) {
    case 'stdin':
      exec.write(i.data);
      return;
    case 'resize':
      exec.resize?.(i.cols, i.rows);
      return;
    case 'eof':
      exec.end();
      return;
    default: {
      const never: never = i;
      throw new Error(`unknown exec input ${JSON.stringify(never)}`);
    }
  }
}

function windowOf(req: { window?: unknown }): number {
  const w = Number(req.window);
  return Number.isInteger(w) && w > 0 ? Math.min(w, agentRemoteLimits.windowFramesMax) : 1;
}

/** What is wrong with a portForward request, if anything. */
function portForwardProblem(
  body: AgentPortForwardRequest | undefined,
  open: number,
): { code: ApiErrorCode; message: string } | undefined {
  if (typeof body?.streamId !== 'string' || body.streamId === '')
    return { code: ApiErrorCode.Invalid, message: 'streamId: required' };
  if (!Number.isInteger(body.port) || body.port < 1 || body.port > 65_535)
    return { code: ApiErrorCode.Invalid, message: 'port: must be an integer in [1, 65535]' };
  if (open >= agentRemoteLimits.streamsMax)
    return {
      code: ApiErrorCode.ResourceExhausted,
      message: `${agentRemoteLimits.streamsMax} streams open (streamsMax)`,
    };
  return undefined;
}

function relayControl(relay: PortForwardRelay, type: string, body: unknown): void {
  const b = (body ?? {}) as { frames?: unknown; data?: unknown };
  if (type === 'credit' && typeof b.frames === 'number' && b.frames > 0) relay.grant(b.frames);
  else if (type === 'data' && b.data instanceof Uint8Array) relay.write(b.data);
  else if (type === 'eof') relay.end();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Serves masters' requests for one node; `start()` dials every master, `stop()` hangs up. */
export class AgentRemote {
  private readonly connectors: AgentConnector[];
  private readonly streams = new Map<string, StreamControl>();
  /** Port-forward connections by stream id (their control tells: credit, data, eof). */
  private readonly relays = new Map<string, PortForwardRelay | 'dialing'>();
  private readonly nowMs: () => number;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: AgentRemoteOptions) {
    if (opts.masters.length === 0)
      throw new ApiError(ApiErrorCode.Invalid, 'agent: masters: at least one master is required');
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log ?? (() => {});
    this.connectors = opts.masters.map(
      (master) =>
        new AgentConnector({
          node: opts.node,
          masters: [master],
          handler: (req) => this.handle(req),
          onConnection: (m) => this.log(m ? `connected to master ${m}` : `lost master ${master}`),
        }),
    );
  }

  start(): void {
    for (const c of this.connectors) c.start();
  }

  stop(): void {
    for (const c of this.connectors) c.close();
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
    for (const r of this.relays.values()) if (r !== 'dialing') r.close();
    this.relays.clear();
  }

  /** The masters currently connected. */
  connectedMasters(): string[] {
    return this.connectors.map((c) => c.master).filter((m): m is string => m !== undefined);
  }

  private handle(req: IncomingRequest): void {
    if (req.to.startsWith('stream/')) {
      this.control(req.to.slice('stream/'.length), req.type, req.body);
      return;
    }
    switch (req.type) {
      case 'logs':
        this.serveStream(req, (control) =>
          this.logs(req.to, req.body as AgentLogsRequest, req.respond, control),
        );
        return;
      case 'exec':
        this.serveStream(req, (control) =>
          this.exec(req.to, req.body as AgentExecRequest, req.respond, control),
        );
        return;
      case 'portForward':
        this.portForward(req);
        return;
      case 'stats':
        this.stats(req.body as AgentStatsRequest).then(
          (reply) => req.respond.reply(reply),
          (err) => req.respond.fail(err),
        );
        return;
      default:
        if (req.expectsReply)
          req.respond.fail(
            new ApiError(ApiErrorCode.Invalid, `agent ${this.opts.node}: unknown request ${req.type}`),
          );
    }
  }

  private control(streamId: string, type: string, body: unknown): void {
    const relay = this.relays.get(streamId);
    if (relay !== undefined) {
      if (relay !== 'dialing') relayControl(relay, type, body);
      return;
    }
    const s = this.streams.get(streamId);
    if (s === undefined) return; // ended already: late tells are harmless
    const b = (body ?? {}) as { frames?: unknown; data?: unknown; cols?: unknown; rows?: unknown };
    if (type === 'credit' && typeof b.frames === 'number' && b.frames > 0) s.grant(b.frames);
    else if (type === 'stdin' && b.data instanceof Uint8Array) s.input({ type: 'stdin', data: b.data });
    else if (type === 'resize' && typeof b.cols === 'number' && typeof b.rows === 'number')
      s.input({ type: 'resize', cols: b.cols, rows: b.rows });
    else if (type === 'eof') s.input({ type: 'eof' });
  }

  /** Registers the stream's control synchronously (tells may follow the request at once), then runs it. */
  private serveStream(req: IncomingRequest, run: (control: StreamControl) => Promise<void>): void {
    const body = req.body as { streamId?: unknown; window?: unknown };
    if (typeof body?.streamId !== 'string' || body.streamId === '') {
      req.respond.fail(
        new ApiError(ApiErrorCode.Invalid, `agent ${this.opts.node}: ${req.type}: streamId: required`),
      );
      return;
    }
    if (this.streams.size + this.relays.size >= agentRemoteLimits.streamsMax) {
      req.respond.fail(
        new ApiError(
          ApiErrorCode.ResourceExhausted,
          `agent ${this.opts.node}: ${agentRemoteLimits.streamsMax} streams open (streamsMax)`,
        ),
      );
      return;
    }
    const id = body.streamId;
    const control = new StreamControl(windowOf(body));
    this.streams.set(id, control);
    req.respond.onCancel(() => control.close());
    run(control)
      .catch((err) => req.respond.fail(err))
      .finally(() => {
        control.close();
        this.streams.delete(id);
      });
  }

  /**
   * Connects to the pod's port and relays it. Tells sent before the connection is up are
   * dropped: the client sends nothing before the `connected` frame.
   */
  private portForward(req: IncomingRequest): void {
    const body = req.body as AgentPortForwardRequest;
    const problem = portForwardProblem(body, this.streams.size + this.relays.size);
    if (problem !== undefined) {
      req.respond.fail(
        new ApiError(problem.code, `agent ${this.opts.node}: portForward: ${problem.message}`),
      );
      return;
    }
    const id = body.streamId;
    if (this.relays.has(id)) {
      req.respond.fail(
        new ApiError(ApiErrorCode.Invalid, `agent ${this.opts.node}: portForward: streamId: in use`),
      );
      return;
    }
    this.relays.set(id, 'dialing');
    this.openRelay(req.to, body, req.respond)
      .then(async (relay) => {
        if (relay === undefined) return;
        this.relays.set(id, relay);
        relay.start();
        await relay.done;
      })
      .catch((err) => req.respond.fail(err))
      .finally(() => this.relays.delete(id));
  }

  private async openRelay(
    to: string,
    body: AgentPortForwardRequest,
    respond: Responder,
  ): Promise<PortForwardRelay | undefined> {
    const podUid = to.startsWith('pod/') ? to.slice('pod/'.length) : '';
    const what = typeof body.pod === 'string' && body.pod !== '' ? `pod/${body.pod}` : `pod ${podUid}`;
    const host = portForwardHost(this.opts.runtime.kind, {
      what,
      podIP: body.podIP,
      node: this.opts.node,
      nodeIp: this.opts.nodeIp,
    });
    // The pod IP comes from the pod's status (anyone may write it): dial only this node's IP,
    // its pod networks (its bridges) or loopback, never elsewhere.
    if (host !== this.opts.nodeIp && !(await isLocalPodAddress(host)))
      throw new ApiError(
        ApiErrorCode.Invalid,
        `${what}: status.podIP ${host} is not on a pod network of node ${this.opts.node}`,
      );
    const running = (await this.opts.runtime.listContainers({ podUid })).some((c) => c.phase === 'running');
    if (!running)
      throw new ApiError(ApiErrorCode.NotFound, `${what}: no running container on node ${this.opts.node}`);
    const socket = await dialPod(host, body.port, what);
    if (respond.cancelled) {
      socket.destroy();
      return undefined;
    }
    return new PortForwardRelay(socket, respond, windowOf(body));
  }

  /** The container of a pod: the newest start of `name`, or the one before it with `previous`. */
  private async container(to: string, name: string, previous: boolean): Promise<string> {
    const podUid = to.startsWith('pod/') ? to.slice('pod/'.length) : '';
    const starts = (await this.opts.runtime.listContainers({ podUid }))
      .filter((c) => c.name === name)
      .sort((a, b) => b.restartCount - a.restartCount);
    const c = previous ? starts[1] : starts[0];
    if (c === undefined) {
      const what = previous ? 'has no previous terminated run' : 'has not started';
      throw new ApiError(
        ApiErrorCode.NotFound,
        `pod ${podUid}: container "${name}" ${what} on node ${this.opts.node}`,
      );
    }
    return c.id;
  }

  private async logs(
    to: string,
    body: AgentLogsRequest,
    respond: Responder,
    control: StreamControl,
  ): Promise<void> {
    const id = await this.container(to, body.container, body.previous === true);
    const opts: LogOptions = {};
    if (body.follow) opts.follow = true;
    if (body.tailLines !== undefined) opts.tailLines = body.tailLines;
    if (body.timestamps) opts.timestamps = true;
    if (body.sinceSeconds !== undefined)
      opts.sinceTime = new Date(this.nowMs() - body.sinceSeconds * 1000).toISOString();
    const it = this.opts.runtime.logs(id, opts)[Symbol.asyncIterator]();
    // A cancelled follow may wait for output forever: ending the iterator stops the read.
    respond.onCancel(() => void it.return?.().catch(() => {}));
    try {
      for (;;) {
        if (!(await control.take())) return;
        const r = await it.next();
        if (r.done || respond.cancelled) break;
        respond.frame({ stream: r.value.stream, data: r.value.data });
      }
      respond.end();
    } finally {
      await it.return?.().catch(() => {});
    }
  }

  private async exec(
    to: string,
    body: AgentExecRequest,
    respond: Responder,
    control: StreamControl,
  ): Promise<void> {
    const id = await this.container(to, body.container, false);
    const session = await this.opts.runtime.exec(id, {
      command: body.command,
      ...(body.tty ? { tty: true } : {}),
      ...(body.stdin ? { stdin: true } : {}),
    });
    if (respond.cancelled) {
      session.kill();
      return;
    }
    respond.onCancel(() => session.kill());
    control.attach(session);
    for await (const chunk of session.output) {
      if (!(await control.take())) {
        session.kill();
        return;
      }
      respond.frame({ stream: chunk.stream, data: chunk.data });
    }
    const exitCode = await session.exitCode;
    respond.reply({ exitCode });
  }

  /** CPU from two samples `statsSampleMs` apart, memory from the second. */
  private async stats(body: AgentStatsRequest): Promise<AgentStatsReply> {
    const wanted = body?.podUids !== undefined ? new Set(body.podUids) : undefined;
    const running = (await this.opts.runtime.listContainers()).filter(
      (c) => c.phase === 'running' && (wanted === undefined || wanted.has(c.podUid)),
    );
    const sample = () =>
      Promise.all(running.map((c) => this.opts.runtime.stats(c.id).catch(() => undefined)));
    const t0 = this.nowMs();
    const first = await sample();
    await sleep(agentRemoteLimits.statsSampleMs);
    const second = await sample();
    const elapsedNanos = Math.max(1, this.nowMs() - t0) * 1e6;
    const containers: ContainerUsage[] = [];
    running.forEach((c, i) => {
      const a: ContainerStats | undefined = first[i];
      const b: ContainerStats | undefined = second[i];
      if (a === undefined || b === undefined) return; // exited meanwhile
      containers.push({
        podUid: c.podUid,
        name: c.name,
        cpuMillis: Math.max(0, Math.round(((b.cpuNanos - a.cpuNanos) / elapsedNanos) * 1000)),
        memoryBytes: b.memoryBytes,
      });
    });
    return { containers };
  }
}

/** Whether `ip` is on loopback or on one of this host's pod bridges (docker0 and the like). */
async function isLocalPodAddress(ip: string): Promise<boolean> {
  if (cidrContains(loopbackCidr, ip)) return true;
  const networks = await localPodNetworks().catch(() => []);
  return networks.some((n) => cidrContains(n.cidr, ip));
}

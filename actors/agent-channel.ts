/**
 * The gRPC transport of remote actors (`proto/agent.proto`): the agent dials a master and
 * keeps one bidi stream open, failing over to the next master with jittered backoff; the
 * master's `AgentHub` keeps one `RemoteSession` per agent session, re-attached when the same
 * agent process reconnects, so redelivered requests are answered from its reply cache.
 */

import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ApiError, ApiErrorCode } from './api.js';
import { type Envelope, type RemoteHandler, RemoteSession } from './remoting.js';

const PROTO_PATH = fileURLToPath(new URL('../proto/agent.proto', import.meta.url));

export const agentChannelLimits = {
  /** Largest envelope either way. */
  envelopeBytesMax: 16 * 1024 * 1024,
  reconnectBackoffMsMin: 50,
  reconnectBackoffMsMax: 2_000,
  /** Agent sessions a master keeps after their connection dropped, for a reconnect. */
  detachedSessionsMax: 10_000,
  /** How long a detached agent session is kept. */
  detachedSessionTtlMs: 5 * 60_000,
} as const;

interface WireEnvelope {
  id?: number | string;
  reply_to?: number | string;
  to?: string;
  type?: string;
  payload?: Uint8Array;
  end?: boolean;
  error_code?: string;
  error_message?: string;
  oneway?: boolean;
}

function toWire(e: Envelope): WireEnvelope {
  return {
    id: e.id,
    reply_to: e.replyTo,
    to: e.to,
    type: e.type,
    payload: e.payload,
    end: e.end,
    error_code: e.errorCode,
    error_message: e.errorMessage,
    oneway: e.oneway,
  };
}

function fromWire(w: WireEnvelope): Envelope {
  return {
    id: Number(w.id ?? 0),
    replyTo: Number(w.reply_to ?? 0),
    to: w.to ?? '',
    type: w.type ?? '',
    payload: w.payload ?? new Uint8Array(0),
    end: w.end ?? false,
    errorCode: w.error_code ?? '',
    errorMessage: w.error_message ?? '',
    oneway: w.oneway ?? false,
  };
}

let serviceDef: grpc.ServiceDefinition | undefined;
function loadService(): grpc.ServiceDefinition {
  if (serviceDef === undefined) {
    const def = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      coxswain: { agent: { v1: { AgentChannel: grpc.ServiceClientConstructor } } };
    };
    serviceDef = pkg.coxswain.agent.v1.AgentChannel.service;
  }
  return serviceDef;
}

type ServerCall = grpc.ServerDuplexStream<WireEnvelope, WireEnvelope>;
type ClientCall = grpc.ClientDuplexStream<WireEnvelope, WireEnvelope>;

// ------------------------------------------------------------------------------- master side

export interface AgentHubOptions {
  /** The handler of requests from agents; `node` names the agent. */
  handler: (node: string) => RemoteHandler;
  /** Called when an agent's stream opens (connected) or drops (disconnected). */
  onAgent?: (node: string, connected: boolean) => void;
}

/** The master side: one session per agent process, reachable by node name. */
export class AgentHub {
  private readonly sessions = new Map<
    string,
    { node: string; session: RemoteSession; call?: ServerCall; detachedAt?: number }
  >();
  private readonly byNode = new Map<string, string>();

  constructor(private readonly opts: AgentHubOptions) {}

  /** Adds the AgentChannel service to a gRPC server. */
  addTo(server: grpc.Server): void {
    server.addService(loadService(), { Connect: (call: ServerCall) => this.accept(call) });
  }

  /** The live session of `node`'s agent, if it is connected here. */
  session(node: string): RemoteSession | undefined {
    const id = this.byNode.get(node);
    const entry = id !== undefined ? this.sessions.get(id) : undefined;
    return entry?.call !== undefined ? entry.session : undefined;
  }

  connectedNodes(): string[] {
    return [...this.byNode.entries()]
      .filter(([, id]) => this.sessions.get(id)?.call !== undefined)
      .map(([n]) => n);
  }

  close(): void {
    for (const e of this.sessions.values()) {
      e.call?.end();
      e.session.close();
    }
    this.sessions.clear();
    this.byNode.clear();
  }

  private accept(call: ServerCall): void {
    const node = String(call.metadata.get('node-name')[0] ?? '');
    const sessionId = String(call.metadata.get('agent-session')[0] ?? '');
    if (node === '' || sessionId === '') {
      call.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: 'node-name and agent-session metadata are required',
      });
      return;
    }
    this.evictDetached();
    let entry = this.sessions.get(sessionId);
    if (entry === undefined) {
      const session = new RemoteSession(this.opts.handler(node), `agent ${node}`);
      entry = { node, session };
      this.sessions.set(sessionId, entry);
    }
    // A newer agent process for the same node replaces the older one's session.
    const previous = this.byNode.get(node);
    if (previous !== undefined && previous !== sessionId) {
      const old = this.sessions.get(previous);
      old?.call?.end();
      old?.session.close();
      this.sessions.delete(previous);
    }
    this.byNode.set(node, sessionId);
    entry.call?.end();
    entry.call = call;
    entry.detachedAt = undefined;
    const current = entry;
    const send = (e: Envelope): boolean => {
      if (current.call !== call) return false;
      call.write(toWire(e));
      return true;
    };
    current.session.attach(send);
    call.sendMetadata(new grpc.Metadata()); // tells the agent its stream is open
    this.opts.onAgent?.(node, true);
    call.on('data', (w: WireEnvelope) => current.session.receive(fromWire(w)));
    const drop = () => {
      if (current.call !== call) return;
      current.call = undefined;
      current.detachedAt = Date.now();
      current.session.detach();
      this.opts.onAgent?.(node, false);
    };
    call.on('end', () => {
      drop();
      call.end();
    });
    call.on('error', drop);
    call.on('cancelled', drop);
  }

  private evictDetached(): void {
    const now = Date.now();
    for (const [id, e] of this.sessions) {
      const stale =
        e.detachedAt !== undefined && now - e.detachedAt > agentChannelLimits.detachedSessionTtlMs;
      if (
        stale ||
        (e.detachedAt !== undefined && this.sessions.size > agentChannelLimits.detachedSessionsMax)
      ) {
        e.session.close();
        this.sessions.delete(id);
        if (this.byNode.get(e.node) === id) this.byNode.delete(e.node);
      }
    }
  }
}

// -------------------------------------------------------------------------------- agent side

export interface AgentConnectorOptions {
  node: string;
  /** Master addresses (`host:port` of the port serving AgentChannel), tried in order. */
  masters: string[];
  handler: RemoteHandler;
  /** Called on each (re)connection with the master's address, and on each loss. */
  onConnection?: (master: string | undefined) => void;
  /** Randomness for backoff jitter, in [0, 1). */
  random?: () => number;
}

/** The agent side: one session for the agent's life, over whichever master answers. */
export class AgentConnector {
  readonly session: RemoteSession;
  readonly sessionId = randomUUID();
  private client: grpc.Client | undefined;
  private call: ClientCall | undefined;
  private index = 0;
  private failures = 0;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly random: () => number;

  constructor(private readonly opts: AgentConnectorOptions) {
    if (opts.masters.length === 0)
      throw new ApiError(ApiErrorCode.Invalid, 'agent: --masters: at least one master is required');
    this.session = new RemoteSession(opts.handler, `master (from ${opts.node})`);
    this.random = opts.random ?? Math.random;
  }

  start(): void {
    this.connect();
  }

  /** The master currently connected, if any. */
  get master(): string | undefined {
    return this.call !== undefined ? this.opts.masters[this.index % this.opts.masters.length] : undefined;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.call?.end();
    this.client?.close();
    this.session.close();
  }

  private connect(): void {
    if (this.closed) return;
    const address = this.opts.masters[this.index % this.opts.masters.length];
    const Client = grpc.makeGenericClientConstructor(loadService(), 'AgentChannel');
    this.client?.close();
    const client = new Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': agentChannelLimits.envelopeBytesMax,
      'grpc.max_receive_message_length': agentChannelLimits.envelopeBytesMax,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
    this.client = client;
    const md = new grpc.Metadata();
    md.set('node-name', this.opts.node);
    md.set('agent-session', this.sessionId);
    const call = (client as unknown as { Connect: (md: grpc.Metadata) => ClientCall }).Connect(md);
    this.call = call;
    // Writes are buffered by grpc-js until the stream is up, so the session attaches at once;
    // the master's response headers prove the stream is open.
    let opened = false;
    this.session.attach((e) => {
      if (this.call !== call) return false;
      call.write(toWire(e));
      return true;
    });
    const open = () => {
      if (opened || this.call !== call) return;
      opened = true;
      this.failures = 0;
      this.opts.onConnection?.(address);
    };
    call.on('metadata', open);
    call.on('data', (w: WireEnvelope) => {
      open();
      this.session.receive(fromWire(w));
    });
    const lost = () => {
      if (this.call !== call) return;
      this.call = undefined;
      this.session.detach();
      if (opened) this.opts.onConnection?.(undefined);
      this.failures += 1;
      this.index += 1; // fail over to the next master
      const base = Math.min(
        agentChannelLimits.reconnectBackoffMsMax,
        agentChannelLimits.reconnectBackoffMsMin * 2 ** Math.min(this.failures - 1, 10),
      );
      this.timer = setTimeout(() => this.connect(), Math.round(base * (0.5 + this.random() / 2)));
    };
    call.on('error', lost);
    call.on('end', lost);
  }
}

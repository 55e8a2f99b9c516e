/**
 * The Raft transport over gRPC (proto/raft.proto): one long-lived bidi stream per peer,
 * opened by the sender, carrying frames of msgpackr-encoded message batches.
 *
 * Delivery is best-effort (the {@link Transport} contract): a full queue drops its oldest
 * messages, a broken stream loses what it had in flight, and the core recovers from both on
 * later ticks. Within one healthy stream, messages to a peer keep their order.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeMessages, encodeMessages } from './codec.js';
import { RaftTransportError } from './errors.js';
import type { MessageHandler, Transport } from './ports.js';
import type { NodeId, RaftMessage } from './types.js';

export type TransportWarningCode =
  /** A received frame did not decode to Raft messages; the whole frame was dropped. */
  | 'MALFORMED_FRAME'
  /** A received message was addressed to another node; it was dropped. */
  | 'MISADDRESSED'
  /** `send` got a message for a node with no known address; it was dropped (warned once per id). */
  | 'UNKNOWN_PEER'
  /** One message alone encodes to more than `maxFrameBytes`; it was dropped. */
  | 'MESSAGE_TOO_LARGE'
  /** A peer's queue hit `peerQueueMessagesMax`; its oldest messages are being dropped. */
  | 'QUEUE_FULL'
  /** An established stream to a peer ended; the transport reconnects with backoff. */
  | 'LINK_DOWN';

/** Something was dropped or broke; the transport carries on. */
export interface TransportWarning {
  code: TransportWarningCode;
  message: string;
  peer?: NodeId;
  cause?: unknown;
}

export interface GrpcTransportOptions {
  /** This node's id: received messages must be addressed to it. */
  id: NodeId;
  /** `host:port` to listen on; port 0 picks a free port (see {@link GrpcTransport.address}). */
  listen: string;
  /** Peer ids and their `host:port` addresses. */
  peers?: Record<NodeId, string>;
  /** Largest frame sent or accepted, in bytes (gRPC max message size, both ways). Default 64 MiB. */
  maxFrameBytes?: number;
  /** Messages are packed into frames of about this many bytes (a larger message goes alone). Default 1 MiB. */
  frameBytesTarget?: number;
  /** Messages queued per peer while its stream is down or backed up; the oldest go first. Default 8192. */
  peerQueueMessagesMax?: number;
  /** First reconnect delay after a stream fails, in ms (doubled per failure, with jitter). Default 50. */
  reconnectBackoffMsMin?: number;
  /** Cap of the reconnect delay, in ms. Default 2000. */
  reconnectBackoffMsMax?: number;
  /** Time a new stream may take to be accepted by the peer before it is abandoned, in ms. Default 5000. */
  streamOpenTimeoutMs?: number;
  /** HTTP/2 keepalive ping interval, in ms (detects a frozen peer). Default 10000. */
  keepaliveTimeMs?: number;
  /** Time to wait for a keepalive ping's answer before dropping the connection, in ms. Default 5000. */
  keepaliveTimeoutMs?: number;
  /** Time `close()` waits for streams to end gracefully before cutting them, in ms. Default 250. */
  closeGraceMs?: number;
  /** Default: insecure (loopback clusters). */
  serverCredentials?: grpc.ServerCredentials;
  /** Default: insecure (loopback clusters). */
  channelCredentials?: grpc.ChannelCredentials;
  /** Default: `console.warn`. */
  onWarning?: (warning: TransportWarning) => void;
  /** More services served on the same port (e.g. the master's internal peer service). */
  services?: { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }[];
}

/** Counters since construction. "Sent" means handed to a gRPC stream, not acknowledged. */
export interface GrpcTransportStats {
  framesSent: number;
  messagesSent: number;
  bytesSent: number;
  /** Dropped on the sending side: queue overflow, unknown peer, too large, removed peer, close. */
  messagesDropped: number;
  /** Stream (re)open attempts after a failure. */
  reconnects: number;
  framesReceived: number;
  messagesReceived: number;
  /** Received frames dropped as malformed. */
  framesRejected: number;
  /** Received messages dropped because they were addressed to another node. */
  messagesMisaddressed: number;
}

interface RaftFrame {
  from: string;
  payload: Uint8Array;
}

interface RaftAck {
  frames?: number;
}

type FrameCall = grpc.ClientDuplexStream<RaftFrame, RaftAck>;
type InboundCall = grpc.ServerDuplexStream<RaftFrame, RaftAck>;

const PROTO_PATH = fileURLToPath(new URL('../proto/raft.proto', import.meta.url));
const SERVICE_NAME = 'coxswain.raft.v1.RaftTransport';
const MiB = 1024 * 1024;
/** Protobuf framing around the payload: two tags, two varint lengths, the sender id. */
const FRAME_OVERHEAD_BYTES = 32;

/** About what `m` encodes to: its entries' and snapshot chunk's data plus a little per field. */
function estimatedBytes(m: RaftMessage): number {
  let bytes = 64;
  for (const e of m.entries ?? []) bytes += e.data.byteLength + 24;
  if (m.snapshot !== undefined) bytes += m.snapshot.data.byteLength + 64;
  if (m.context !== undefined) bytes += m.context.byteLength;
  return bytes;
}

let raftService: grpc.ServiceDefinition | undefined;

function loadRaftService(): grpc.ServiceDefinition {
  if (raftService === undefined) {
    const def = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: Number, defaults: false });
    const service = def[SERVICE_NAME] as grpc.ServiceDefinition | undefined;
    if (service?.Stream === undefined)
      throw new Error(`${PROTO_PATH} does not define ${SERVICE_NAME}.Stream`);
    raftService = service;
  }
  return raftService;
}

type LinkState = 'idle' | 'opening' | 'open' | 'backoff';

/** The sending side of the connection to one peer. */
class PeerLink {
  queue: RaftMessage[] = [];
  state: LinkState = 'idle';
  client: grpc.Client | undefined;
  call: FrameCall | undefined;
  /** `write()` returned false: wait for 'drain' before the next frame. */
  awaitingDrain = false;
  /** Last reconnect backoff in ms; 0 until a stream fails, reset when one opens. */
  backoffMs = 0;
  timer: NodeJS.Timeout | undefined;
  /** Queued since the last flush (listed in the transport's dirty list). */
  dirty = false;
  /** Dropping from a full queue; warned once until the queue drains. */
  overflowing = false;
  removed = false;

  constructor(
    readonly id: NodeId,
    public address: string,
  ) {}
}

/** A {@link Transport} over real gRPC streams. */
export class GrpcTransport implements Transport {
  readonly id: NodeId;
  private readonly listen: string;
  private readonly maxFrameBytes: number;
  private readonly frameBytesTarget: number;
  private readonly peerQueueMessagesMax: number;
  private readonly reconnectBackoffMsMin: number;
  private readonly reconnectBackoffMsMax: number;
  private readonly streamOpenTimeoutMs: number;
  private readonly closeGraceMs: number;
  private readonly channelCredentials: grpc.ChannelCredentials;
  private readonly serverCredentials: grpc.ServerCredentials;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly serverOptions: grpc.ServerOptions;
  private readonly warn: (warning: TransportWarning) => void;
  private readonly service: grpc.ServiceDefinition;

  private readonly links = new Map<NodeId, PeerLink>();
  private readonly dirty: PeerLink[] = [];
  private readonly unknownPeersWarned = new Set<NodeId>();
  private readonly inbound = new Set<InboundCall>();
  private flushScheduled: NodeJS.Immediate | undefined;
  private server: grpc.Server | undefined;
  private readonly extraServices: NonNullable<GrpcTransportOptions['services']>;
  private boundAddress: string | undefined;
  private handler: MessageHandler | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly counters: GrpcTransportStats = {
    framesSent: 0,
    messagesSent: 0,
    bytesSent: 0,
    messagesDropped: 0,
    reconnects: 0,
    framesReceived: 0,
    messagesReceived: 0,
    framesRejected: 0,
    messagesMisaddressed: 0,
  };

  constructor(opts: GrpcTransportOptions) {
    this.id = opts.id;
    this.listen = opts.listen;
    this.maxFrameBytes = positive('maxFrameBytes', opts.maxFrameBytes ?? 64 * MiB);
    this.frameBytesTarget = positive('frameBytesTarget', opts.frameBytesTarget ?? 1 * MiB);
    this.peerQueueMessagesMax = positive('peerQueueMessagesMax', opts.peerQueueMessagesMax ?? 8192);
    this.reconnectBackoffMsMin = positive('reconnectBackoffMsMin', opts.reconnectBackoffMsMin ?? 50);
    this.reconnectBackoffMsMax = positive('reconnectBackoffMsMax', opts.reconnectBackoffMsMax ?? 2000);
    if (this.reconnectBackoffMsMax < this.reconnectBackoffMsMin) {
      throw new RaftTransportError('reconnectBackoffMsMax must be >= reconnectBackoffMsMin');
    }
    this.streamOpenTimeoutMs = positive('streamOpenTimeoutMs', opts.streamOpenTimeoutMs ?? 5000);
    this.closeGraceMs = positive('closeGraceMs', opts.closeGraceMs ?? 250);
    const keepaliveTimeMs = positive('keepaliveTimeMs', opts.keepaliveTimeMs ?? 10_000);
    const keepaliveTimeoutMs = positive('keepaliveTimeoutMs', opts.keepaliveTimeoutMs ?? 5000);
    this.channelCredentials = opts.channelCredentials ?? grpc.credentials.createInsecure();
    this.serverCredentials = opts.serverCredentials ?? grpc.ServerCredentials.createInsecure();
    this.warn =
      opts.onWarning ?? ((w) => console.warn(`[raft transport ${this.id}] ${w.code}: ${w.message}`));
    const common = {
      'grpc.max_send_message_length': this.maxFrameBytes,
      'grpc.max_receive_message_length': this.maxFrameBytes,
      'grpc.keepalive_time_ms': keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
    };
    this.channelOptions = {
      ...common,
      // Our own backoff paces reconnects; a fresh channel per attempt must not inherit a
      // shared subchannel that is sitting in grpc-js's own (much longer) backoff.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': this.reconnectBackoffMsMin,
      'grpc.max_reconnect_backoff_ms': this.reconnectBackoffMsMax,
      // Frames are written only once the stream is established: nothing to replay.
      'grpc.enable_retries': 0,
    };
    this.serverOptions = common;
    this.service = loadRaftService();
    this.extraServices = opts.services ?? [];
    for (const [id, address] of Object.entries(opts.peers ?? {})) this.setPeer(id, address);
  }

  /** Binds the server and starts passing messages addressed to this node to `handler`. */
  async start(handler: MessageHandler): Promise<void> {
    if (this.closed) throw new RaftTransportError('transport is closed');
    if (this.server !== undefined) throw new RaftTransportError('transport already started');
    this.handler = handler;
    const server = new grpc.Server(this.serverOptions);
    server.addService(this.service, { Stream: (call: InboundCall) => this.accept(call) });
    for (const extra of this.extraServices) server.addService(extra.definition, extra.implementation);
    this.server = server;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(this.listen, this.serverCredentials, (err, boundPort) =>
        err
          ? reject(new RaftTransportError(`cannot listen on ${this.listen}`, { cause: err }))
          : resolve(boundPort),
      );
    }).catch((err: unknown) => {
      server.forceShutdown();
      this.server = undefined;
      throw err;
    });
    this.boundAddress = withPort(this.listen, port);
  }

  /** The bound `host:port` (the real port when `listen` asked for port 0). */
  address(): string {
    if (this.boundAddress === undefined) throw new RaftTransportError('transport not started');
    return this.boundAddress;
  }

  /**
   * Queues messages; each peer's queue goes out as one frame at the end of this event-loop
   * turn (or once its stream is up). Never throws, never blocks.
   */
  send(msgs: RaftMessage[]): void {
    if (this.closed) {
      this.counters.messagesDropped += msgs.length;
      return;
    }
    for (const msg of msgs) {
      const link = this.links.get(msg.to);
      if (link === undefined) {
        this.dropForUnknownPeer(msg.to);
        continue;
      }
      link.queue.push(msg);
      this.markDirty(link);
    }
    for (const link of this.dirty) this.trimQueue(link);
  }

  /** Adds or re-addresses a peer. A new address drops the old stream; queued messages stay. */
  setPeer(id: NodeId, address: string): void {
    if (this.closed || id === this.id) return;
    this.unknownPeersWarned.delete(id);
    const link = this.links.get(id);
    if (link === undefined) {
      this.links.set(id, new PeerLink(id, address));
      return;
    }
    if (link.address === address) return;
    this.disconnect(link);
    link.address = address;
    link.backoffMs = 0;
    if (link.queue.length > 0) this.markDirty(link);
  }

  /** Forgets a peer: its stream is closed and its queued messages are dropped. */
  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    this.links.delete(id);
    link.removed = true;
    this.disconnect(link);
    this.counters.messagesDropped += link.queue.length;
    link.queue = [];
  }

  /** A snapshot of the counters. */
  stats(): GrpcTransportStats {
    return { ...this.counters };
  }

  /**
   * Ends every stream and stops the server: streams get `closeGraceMs` to finish, then are
   * cut. Leaves no timers or sockets behind. Queued messages are dropped. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.handler = undefined;
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    const ended: Promise<unknown>[] = [];
    const outbound: FrameCall[] = [];
    for (const link of this.links.values()) {
      clearTimeout(link.timer);
      link.timer = undefined;
      this.counters.messagesDropped += link.queue.length;
      link.queue = [];
      const call = link.call;
      if (call !== undefined) {
        outbound.push(call);
        ended.push(new Promise((resolve) => call.once('status', resolve)));
        call.end();
      }
    }
    for (const call of this.inbound) call.end();
    const server = this.server;
    if (server !== undefined) ended.push(new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, this.closeGraceMs);
    });
    const allEnded = Promise.all(ended);
    await Promise.race([allEnded, grace]);
    clearTimeout(graceTimer);
    for (const call of outbound) call.cancel();
    server?.forceShutdown();
    await allEnded;
    for (const link of this.links.values()) {
      link.call = undefined;
      link.client?.close();
      link.client = undefined;
    }
  }

  // --- sending ---

  private markDirty(link: PeerLink): void {
    if (!link.dirty) {
      link.dirty = true;
      this.dirty.push(link);
    }
    this.flushScheduled ??= setImmediate(this.flush);
  }

  /** Drops the oldest messages beyond the bound: fresher Raft messages supersede older ones. */
  private trimQueue(link: PeerLink): void {
    const excess = link.queue.length - this.peerQueueMessagesMax;
    if (excess <= 0) return;
    link.queue.splice(0, excess);
    this.counters.messagesDropped += excess;
    if (!link.overflowing) {
      link.overflowing = true;
      this.warn({
        code: 'QUEUE_FULL',
        peer: link.id,
        message: `queue to ${link.id} (${link.address}) is full (${this.peerQueueMessagesMax} messages, link ${link.state}); dropping the oldest`,
      });
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = undefined;
    for (const link of this.dirty) {
      link.dirty = false;
      if (!link.removed) this.pump(link);
    }
    this.dirty.length = 0;
  };

  /** Moves the link's queue forward as far as its state allows. */
  private pump(link: PeerLink): void {
    if (link.queue.length === 0) return;
    switch (link.state) {
      case 'idle':
        this.open(link);
        return;
      case 'opening':
      case 'backoff':
        return;
      case 'open':
        if (!link.awaitingDrain) this.writeQueue(link);
        return;
      default: {
        const never: never = link.state;
        throw new Error(`unknown link state ${String(never)}`);
      }
    }
  }

  /**
   * Writes the queue in frames of about `frameBytesTarget` each (a larger message goes alone):
   * a peer decodes a frame in one event-loop turn, and a backlog sent as one 64 MiB frame (a
   * follower back from a pause, a burst of appends) held it for over a second at 30,000 pods,
   * longer than the election timeout.
   */
  private writeQueue(link: PeerLink): void {
    const msgs = link.queue;
    link.queue = [];
    link.overflowing = false;
    let frame: RaftMessage[] = [];
    let bytes = 0;
    for (const m of msgs) {
      const size = estimatedBytes(m);
      if (frame.length > 0 && bytes + size > this.frameBytesTarget) {
        this.writeBatch(link, frame);
        frame = [];
        bytes = 0;
      }
      frame.push(m);
      bytes += size;
    }
    if (frame.length > 0) this.writeBatch(link, frame);
  }

  /** Writes `msgs` as one frame, or splits it in halves until each frame fits `maxFrameBytes`. */
  private writeBatch(link: PeerLink, msgs: RaftMessage[]): void {
    const call = link.call;
    if (call === undefined) {
      this.counters.messagesDropped += msgs.length;
      return;
    }
    const payload = encodeMessages(msgs);
    if (payload.byteLength + FRAME_OVERHEAD_BYTES + this.id.length * 4 > this.maxFrameBytes) {
      this.splitOversized(link, msgs, payload.byteLength);
      return;
    }
    this.counters.framesSent++;
    this.counters.messagesSent += msgs.length;
    this.counters.bytesSent += payload.byteLength;
    if (!call.write({ from: this.id, payload })) link.awaitingDrain = true;
  }

  private splitOversized(link: PeerLink, msgs: RaftMessage[], bytes: number): void {
    if (msgs.length === 1) {
      this.counters.messagesDropped++;
      this.warn({
        code: 'MESSAGE_TOO_LARGE',
        peer: link.id,
        message: `dropped a ${msgs[0].type} message to ${link.id}: ${bytes} bytes encoded, maxFrameBytes is ${this.maxFrameBytes}`,
      });
      return;
    }
    const half = msgs.length >>> 1;
    this.writeBatch(link, msgs.slice(0, half));
    this.writeBatch(link, msgs.slice(half));
  }

  private dropForUnknownPeer(id: NodeId): void {
    this.counters.messagesDropped++;
    if (this.unknownPeersWarned.has(id)) return;
    this.unknownPeersWarned.add(id);
    this.warn({
      code: 'UNKNOWN_PEER',
      peer: id,
      message: `no address for peer ${id}; dropping its messages`,
    });
  }

  // --- link lifecycle: idle -> opening -> open -> (error) -> backoff -> opening ... ---

  private open(link: PeerLink): void {
    // After a failure (backoff not yet reset by an open stream), whether the backoff timer or a
    // later send opens it.
    if (link.backoffMs > 0) this.counters.reconnects++;
    link.state = 'opening';
    const method = this.service.Stream;
    let call: FrameCall;
    try {
      link.client ??= new grpc.Client(link.address, this.channelCredentials, this.channelOptions);
      call = link.client.makeBidiStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        new grpc.Metadata(),
      );
    } catch (err) {
      // An unusable address: keep retrying with backoff until setPeer() corrects it.
      this.disconnect(link);
      this.warn({
        code: 'LINK_DOWN',
        peer: link.id,
        message: `cannot open a stream to ${link.id} (${link.address}): ${(err as Error).message}`,
        cause: err,
      });
      this.scheduleReconnect(link);
      return;
    }
    link.call = call;
    link.timer = setTimeout(() => {
      link.timer = undefined;
      if (link.call === call && link.state === 'opening') call.cancel();
    }, this.streamOpenTimeoutMs);
    // The peer's handler answers with headers at once: that is the proof the stream is up.
    call.on('metadata', () => this.onOpen(link, call));
    call.on('drain', () => this.onDrain(link, call));
    call.on('data', () => {});
    call.on('error', () => {}); // every end also emits 'status', handled there
    call.on('status', (status: grpc.StatusObject) => this.onStreamEnd(link, call, status));
  }

  private onOpen(link: PeerLink, call: FrameCall): void {
    if (link.call !== call || link.state !== 'opening') return;
    clearTimeout(link.timer);
    link.timer = undefined;
    link.state = 'open';
    link.backoffMs = 0;
    this.pump(link);
  }

  private onDrain(link: PeerLink, call: FrameCall): void {
    if (link.call !== call) return;
    link.awaitingDrain = false;
    this.pump(link);
  }

  private onStreamEnd(link: PeerLink, call: FrameCall, status: grpc.StatusObject): void {
    if (link.call !== call) return;
    const wasOpen = link.state === 'open';
    this.disconnect(link);
    if (this.closed || link.removed) return;
    if (wasOpen) {
      this.warn({
        code: 'LINK_DOWN',
        peer: link.id,
        message: `stream to ${link.id} (${link.address}) ended: ${grpc.status[status.code]} ${status.details}`,
      });
    }
    this.scheduleReconnect(link);
  }

  /** Drops the link's stream and channel (a fresh channel per attempt connects at once). */
  private disconnect(link: PeerLink): void {
    clearTimeout(link.timer);
    link.timer = undefined;
    const call = link.call;
    link.call = undefined;
    link.awaitingDrain = false;
    link.state = 'idle';
    call?.cancel();
    link.client?.close();
    link.client = undefined;
  }

  private scheduleReconnect(link: PeerLink): void {
    link.state = 'backoff';
    link.backoffMs =
      link.backoffMs === 0
        ? this.reconnectBackoffMsMin
        : Math.min(this.reconnectBackoffMsMax, link.backoffMs * 2);
    // Equal jitter: peers that lost the same node do not reconnect in lockstep.
    const delayMs = link.backoffMs / 2 + (Math.random() * link.backoffMs) / 2;
    link.timer = setTimeout(() => {
      link.timer = undefined;
      if (this.closed || link.removed || link.state !== 'backoff') return;
      link.state = 'idle';
      // Reconnect only when there is something to send; the next send() opens lazily.
      if (link.queue.length > 0) this.open(link);
    }, delayMs);
    link.timer.unref();
  }

  // --- receiving ---

  private accept(call: InboundCall): void {
    if (this.closed) {
      call.end();
      return;
    }
    this.inbound.add(call);
    call.sendMetadata(new grpc.Metadata());
    call.on('data', (frame: RaftFrame) => this.receive(frame));
    call.on('end', () => call.end());
    call.on('error', () => {});
    call.on('cancelled', () => this.inbound.delete(call));
    call.on('close', () => this.inbound.delete(call));
  }

  private receive(frame: RaftFrame): void {
    const handler = this.handler;
    if (handler === undefined) return;
    this.counters.framesReceived++;
    let msgs: RaftMessage[];
    try {
      msgs = decodeMessages(frame.payload ?? EMPTY);
    } catch (err) {
      this.counters.framesRejected++;
      this.warn({
        code: 'MALFORMED_FRAME',
        peer: frame.from,
        message: `dropped a malformed frame from ${frame.from || '(unnamed)'}: ${(err as Error).message}`,
        cause: err,
      });
      return;
    }
    let misaddressed = 0;
    for (const msg of msgs) {
      if (msg.to !== this.id) {
        misaddressed++;
        continue;
      }
      this.counters.messagesReceived++;
      handler(msg);
    }
    if (misaddressed > 0) {
      this.counters.messagesMisaddressed += misaddressed;
      this.warn({
        code: 'MISADDRESSED',
        peer: frame.from,
        message: `dropped ${misaddressed} message(s) from ${frame.from} not addressed to ${this.id}`,
      });
    }
  }
}

const EMPTY = new Uint8Array(0);

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RaftTransportError(`${name} must be a positive number`);
  return value;
}

/** `listen` with its port replaced by the bound one (handles `[::1]:0` and `host:0`). */
function withPort(listen: string, port: number): string {
  const colon = listen.lastIndexOf(':');
  const host = colon > 0 && !listen.endsWith(']') ? listen.slice(0, colon) : listen;
  return `${host}:${port}`;
}

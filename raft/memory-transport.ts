/**
 * An in-process network for host-level tests: several Raft hosts in one process, each with
 * a {@link MemoryTransport} on one shared {@link MemoryNetwork}. Messages are delivered on a
 * later event-loop turn (never re-entrantly from `send`), in send order, unless a partition,
 * an isolation or the filter drops them.
 *
 * The deterministic simulator (test/sim) has its own network; this one runs on real timers.
 */
import { decodeMessages, encodeMessages } from './codec.js';
import { RaftTransportError } from './errors.js';
import type { MessageHandler, Transport } from './ports.js';
import type { NodeId, RaftMessage } from './types.js';

export interface MemoryNetworkOptions {
  /**
   * Pass every batch through the wire codec, so nodes never share objects or byte arrays
   * (as over a real network) and the codec is exercised. Default true.
   */
  copyMessages?: boolean;
  /** Messages in flight across the whole network; newer ones are dropped beyond it. Default 100000. */
  inFlightMessagesMax?: number;
}

/** Decides the fate of one message at delivery time: false drops it. */
export type MessageFilter = (msg: RaftMessage) => boolean;

/** Counters since construction. */
export interface MemoryNetworkStats {
  delivered: number;
  /** Dropped by a partition, isolation, the filter, a full network, or a missing/closed receiver. */
  dropped: number;
}

interface InFlight {
  address: string;
  msg: RaftMessage;
}

/** The hub: addresses, links and the in-flight queue of an in-process cluster. */
export class MemoryNetwork {
  private readonly copyMessages: boolean;
  private readonly inFlightMessagesMax: number;
  private readonly bound = new Map<string, MemoryTransport>();
  /** Cut directed links, keyed `from\0to`. */
  private readonly cut = new Set<string>();
  private readonly isolated = new Set<NodeId>();
  private filter: MessageFilter | undefined;
  private inFlight: InFlight[] = [];
  private deliveryScheduled: NodeJS.Immediate | undefined;
  private readonly counters: MemoryNetworkStats = { delivered: 0, dropped: 0 };

  constructor(opts: MemoryNetworkOptions = {}) {
    this.copyMessages = opts.copyMessages ?? true;
    this.inFlightMessagesMax = opts.inFlightMessagesMax ?? 100_000;
  }

  /** A transport for node `id`, reachable at `address` (default: its id) once started. */
  createTransport(
    id: NodeId,
    opts: { address?: string; peers?: Record<NodeId, string> } = {},
  ): MemoryTransport {
    return new MemoryTransport({ network: this, id, ...opts });
  }

  /** Cuts every link between the nodes of `a` and those of `b`, both ways. */
  partition(a: NodeId | NodeId[], b: NodeId | NodeId[]): void {
    for (const x of typeof a === 'string' ? [a] : a) {
      for (const y of typeof b === 'string' ? [b] : b) {
        this.cut.add(linkKey(x, y));
        this.cut.add(linkKey(y, x));
      }
    }
  }

  /** Cuts the link from `from` to `to` only (an asymmetric partition). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(linkKey(from, to));
  }

  /** Cuts `id` off from every other node, both ways, until {@link heal}. */
  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Restores every cut link and isolated node. The filter stays. */
  heal(): void {
    this.cut.clear();
    this.isolated.clear();
  }

  /** Installs (or with undefined, removes) a filter that sees every message at delivery. */
  setFilter(filter: MessageFilter | undefined): void {
    this.filter = filter;
  }

  /** Whether a message from `from` to `to` would currently be delivered by the links. */
  linked(from: NodeId, to: NodeId): boolean {
    return !this.isolated.has(from) && !this.isolated.has(to) && !this.cut.has(linkKey(from, to));
  }

  stats(): MemoryNetworkStats {
    return { ...this.counters };
  }

  /** @internal Called by MemoryTransport.start. */
  bind(address: string, transport: MemoryTransport): void {
    const current = this.bound.get(address);
    if (current !== undefined && current !== transport) {
      throw new RaftTransportError(`memory address ${address} is in use by ${current.id}`);
    }
    this.bound.set(address, transport);
  }

  /** @internal Called by MemoryTransport.close. */
  unbind(address: string, transport: MemoryTransport): void {
    if (this.bound.get(address) === transport) this.bound.delete(address);
  }

  /** @internal Queues one batch from `send`; `addresses[i]` is where `msgs[i]` goes. */
  enqueue(msgs: RaftMessage[], addresses: string[]): void {
    const copies = this.copyMessages ? decodeMessages(encodeMessages(msgs)) : msgs;
    for (let i = 0; i < copies.length; i++) {
      if (this.inFlight.length >= this.inFlightMessagesMax) {
        this.counters.dropped += copies.length - i;
        break;
      }
      this.inFlight.push({ address: addresses[i], msg: copies[i] });
    }
    this.deliveryScheduled ??= setImmediate(this.deliver);
  }

  private readonly deliver = (): void => {
    this.deliveryScheduled = undefined;
    // Messages sent by handlers during this delivery go out on the next turn.
    const batch = this.inFlight;
    this.inFlight = [];
    for (const { address, msg } of batch) {
      const target = this.bound.get(address);
      const ok =
        target !== undefined &&
        target.id === msg.to &&
        this.linked(msg.from, msg.to) &&
        (this.filter === undefined || this.filter(msg)) &&
        target.deliver(msg);
      if (ok) this.counters.delivered++;
      else this.counters.dropped++;
    }
  };
}

export interface MemoryTransportOptions {
  network: MemoryNetwork;
  id: NodeId;
  /** Where this node is reachable on the network. Default: its id. */
  address?: string;
  /** Peer addresses; a peer not listed is reachable at its id (until {@link MemoryTransport.removePeer}). */
  peers?: Record<NodeId, string>;
}

/** Counters since construction. */
export interface MemoryTransportStats {
  messagesSent: number;
  messagesReceived: number;
  /** Dropped at send: removed peer, or the transport is closed. */
  messagesDropped: number;
}

/** A {@link Transport} over a {@link MemoryNetwork}. */
export class MemoryTransport implements Transport {
  readonly id: NodeId;
  readonly address: string;
  private readonly network: MemoryNetwork;
  /** null: removed by removePeer, so unreachable even at its id. */
  private readonly peers = new Map<NodeId, string | null>();
  private handler: MessageHandler | undefined;
  private closed = false;
  private readonly counters: MemoryTransportStats = {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
  };

  constructor(opts: MemoryTransportOptions) {
    this.network = opts.network;
    this.id = opts.id;
    this.address = opts.address ?? opts.id;
    for (const [id, address] of Object.entries(opts.peers ?? {})) this.peers.set(id, address);
  }

  /** Binds this node's address; messages for it reach `handler` from then on. */
  async start(handler: MessageHandler): Promise<void> {
    if (this.closed) throw new RaftTransportError('transport is closed');
    if (this.handler !== undefined) throw new RaftTransportError('transport already started');
    this.network.bind(this.address, this);
    this.handler = handler;
  }

  send(msgs: RaftMessage[]): void {
    if (this.closed) {
      this.counters.messagesDropped += msgs.length;
      return;
    }
    const routed: RaftMessage[] = [];
    const addresses: string[] = [];
    for (const msg of msgs) {
      const address = this.peers.has(msg.to) ? this.peers.get(msg.to) : msg.to;
      if (address === null || address === undefined || msg.to === this.id) {
        this.counters.messagesDropped++;
        continue;
      }
      routed.push(msg);
      addresses.push(address);
    }
    if (routed.length === 0) return;
    this.counters.messagesSent += routed.length;
    this.network.enqueue(routed, addresses);
  }

  setPeer(id: NodeId, address: string): void {
    this.peers.set(id, address);
  }

  removePeer(id: NodeId): void {
    this.peers.set(id, null);
  }

  stats(): MemoryTransportStats {
    return { ...this.counters };
  }

  /** Unbinds the address (a new transport may then take it, as after a restart). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.handler = undefined;
    this.network.unbind(this.address, this);
  }

  /** @internal Called by MemoryNetwork; false when this transport no longer receives. */
  deliver(msg: RaftMessage): boolean {
    const handler = this.handler;
    if (handler === undefined) return false;
    this.counters.messagesReceived++;
    handler(msg);
    return true;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

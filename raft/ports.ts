import type { RaftStorage } from './storage.js';
import type { Entry, NodeId, RaftMessage } from './types.js';

/**
 * A storage whose writes become durable only at `sync()`. The host calls the RaftStorage
 * writes for one Ready, then `sync()` once (group commit), then sends the Ready's messages.
 */
export interface DurableStorage extends RaftStorage {
  /** Makes every write so far durable (one fsync for all of them). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Handler for messages arriving from peers. */
export type MessageHandler = (msg: RaftMessage) => void;

/**
 * The transport port: best-effort, unordered-tolerant delivery of Raft messages between
 * nodes. `send` never throws and never blocks; a message that cannot be delivered is dropped
 * (the core recovers by itself on later ticks).
 */
export interface Transport {
  /** Starts receiving; messages for this node are passed to `handler`. */
  start(handler: MessageHandler): Promise<void>;
  /** Queues messages for delivery; messages for one peer keep their order on a healthy link. */
  send(msgs: RaftMessage[]): void;
  /** Adds or replaces a peer's address (membership changes). */
  setPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  close(): Promise<void>;
}

/** The application state machine that the host applies committed entries to. */
export interface StateMachine {
  /** Applies one committed entry (normal entries only; empty data is the leader's no-op). */
  apply(entry: Entry): void | Promise<void>;
  /**
   * Optional: applies the normal entries with data of one Ready at once (in log order; the
   * state machine may apply independent entries in parallel), then counts everything up to
   * `lastIndex` (which may be a no-op or configuration entry) as applied. Used instead of
   * `apply` when present.
   */
  applyBatch?(entries: Entry[], lastIndex: number): Promise<void>;
  /**
   * A consistent cut of the state at the last applied entry. The cut is taken when this is
   * called; the encoding may finish later (a returned promise) while further entries are
   * applied, and must not reflect them.
   */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot's data. */
  restore(data: Uint8Array): void | Promise<void>;
}

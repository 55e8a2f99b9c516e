/**
 * Admission that depends on cluster state, run on the Raft leader — the port.
 *
 * Stateless admission (parse, default, validate) runs on the master that received a request.
 * Checks that read other objects (does the namespace exist, what do the LimitRanges default,
 * would the quota be exceeded) run here instead: on the leader, serialized, just before the
 * write is proposed, against the leader's store plus a **ledger** of claims made by writes
 * that passed admission but are not applied yet. The leader is the only proposer of its
 * term and every write passes here first, so "store + ledger" is exactly what the log will
 * hold once everything in flight is applied: two concurrent creates can never both pass a
 * quota only one of them fits.
 *
 * A plugin decides (and may rewrite the object: defaults, allocations) synchronously; claims
 * it makes are held until the write is applied (released in the same synchronous step of the
 * apply loop that makes the object visible to the store, so nothing is counted twice or not
 * at all) or its proposal fails. A new leader first waits until its store holds every entry
 * of earlier terms (a ReadIndex barrier, once per term) and starts with an empty ledger.
 */

import type { Command } from '../../core/commands.js';
import type { ApiObject, Kind } from '../../core/index.js';
import type { ChangeEvent } from '../watch-hub.js';

/** The committed objects a plugin reads (the leader's store; a dry run's local store). */
export interface AdmissionStore {
  get(kind: Kind, namespace: string, name: string): ApiObject | undefined;
  /** Objects of `kind` in `namespace`, by name. Meant for small kinds (LimitRange, ResourceQuota). */
  list(kind: Kind, namespace: string): ApiObject[];
  /** Namespaces holding at least one object of `kind`. */
  namespacesWith(kind: Kind): Set<string>;
}

/** A write as plugins see it. */
export interface AdmissionRequest {
  op: 'create' | 'update';
  /** The object as it would be written (after stateless admission and earlier plugins). */
  object: ApiObject;
  /** Update: the committed object it replaces. */
  prev?: ApiObject;
  /** A dry run: decide, but claims will not be kept. */
  dryRun: boolean;
}

/** Something a write holds from admission until it is applied (quota usage, an IP, a port). */
export interface Claim {
  /** The plugin that made it; only that plugin interprets `value`. */
  plugin: string;
  namespace: string;
  value: unknown;
}

export interface AdmissionView {
  readonly store: AdmissionStore;
  /** Claims of `plugin` held by earlier writes not applied yet (in `namespace` when given). */
  claims(plugin: string, namespace?: string): Iterable<Claim>;
}

export interface AdmissionVerdict {
  /** The object to write instead (defaults, allocations); later plugins see it. */
  object?: ApiObject;
  /** Held until the write is applied or fails (dropped in a dry run). */
  claims?: Omit<Claim, 'plugin'>[];
}

/**
 * One admission step. `admit` is synchronous: it may not await, so the check and the claims
 * it makes are atomic with respect to every other write. It rejects by throwing an ApiError.
 */
export interface AdmissionPlugin {
  readonly name: string;
  /** Whether it looks at writes of `kind` with `op` (cheap: no barrier is taken when no plugin does). */
  handles(op: AdmissionRequest['op'], kind: Kind): boolean;
  admit(req: AdmissionRequest, view: AdmissionView): AdmissionVerdict | undefined;
  /**
   * The ledger took (`claimHeld`) or dropped (`claimReleased`: applied, failed, expired, or
   * of an ended term) one of this plugin's claims; for running sums over claims in flight.
   * Synchronous.
   */
  claimHeld?(claim: Claim): void;
  claimReleased?(claim: Claim): void;
  /**
   * Sees every applied batch on every master (`reset` after a snapshot restore replaced the
   * state), to keep incremental state such as quota usage or allocated IPs. Synchronous.
   */
  observe?(changes: readonly ChangeEvent[], reset: boolean, store: AdmissionStore): void;
}

/** A write that passed leader admission, about to be proposed. */
export interface AdmittedWrite {
  /** The command to propose (the input itself unless a plugin rewrote the object). */
  readonly cmd: Command;
  /**
   * The proposal failed. `definite`: it was never proposed or provably not committed, so its
   * claims go now; otherwise (outcome unknown) they stay until the record is applied, the
   * term ends, or they expire.
   */
  failed(definite: boolean): void;
}

/** The port the master calls. */
export interface LeaderAdmission {
  /**
   * On the leader, just before proposing the record `id` holding `cmd`: waits (once per term)
   * for the barrier, then runs the plugins and holds their claims. Rejects with an ApiError
   * (NotFound, Forbidden, Invalid, ResourceExhausted), or NotLeaderError when this master is
   * not (or no longer) the leader.
   */
  admit(cmd: Command, id: string): Promise<AdmittedWrite>;
  /**
   * A dry run on any master: the same plugins against this master's state (and, on the
   * leader, the ledger), nothing held. Returns the command as it would be proposed.
   */
  check(cmd: Command): Command;
}

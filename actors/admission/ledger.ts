/**
 * The leader's claims of admitted writes not applied yet, by record id. Bounded by
 * `claimsMax` (entries) and `claimTtlMs` (a claim whose record never shows up is dropped).
 */

import type { Claim } from './leader-admission.js';

export interface ClaimLedgerOptions {
  /** Told of each claim the ledger takes (synchronously). */
  onHold?: (claim: Claim) => void;
  /** Told of each claim the ledger drops: applied, failed, expired, or of an ended term. */
  onRelease?: (claim: Claim) => void;
  /** Writes holding claims at once; beyond it admission answers ResourceExhausted. Default 50,000. */
  claimsMax?: number;
  /** Age after which a claim is dropped even if its record was not seen applied. Default 60,000. */
  claimTtlMs?: number;
}

interface Entry {
  readonly id: string;
  readonly term: number;
  readonly atMs: number;
  readonly claims: readonly Claim[];
}

export class ClaimLedger {
  readonly claimsMax: number;
  readonly claimTtlMs: number;
  private readonly onHold: ((claim: Claim) => void) | undefined;
  private readonly onRelease: ((claim: Claim) => void) | undefined;
  /** In the order added, so oldest first (`add` re-inserts). */
  private readonly entries = new Map<string, Entry>();
  /** `plugin/namespace` and `plugin` → record ids holding claims there. */
  private readonly byPlace = new Map<string, Set<string>>();

  constructor(opts: ClaimLedgerOptions = {}) {
    this.claimsMax = opts.claimsMax ?? 50_000;
    this.claimTtlMs = opts.claimTtlMs ?? 60_000;
    this.onHold = opts.onHold;
    this.onRelease = opts.onRelease;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether another entry fits (after dropping expired ones). */
  hasRoom(nowMs: number): boolean {
    this.expire(nowMs);
    return this.entries.size < this.claimsMax;
  }

  /** Holds `claims` for record `id` (replacing what `id` held before). */
  add(id: string, term: number, nowMs: number, claims: readonly Claim[]): void {
    this.release(id);
    if (claims.length === 0) return;
    this.entries.set(id, { id, term, atMs: nowMs, claims });
    for (const c of claims) {
      for (const place of [`${c.plugin}/${c.namespace}`, c.plugin]) {
        let ids = this.byPlace.get(place);
        if (ids === undefined) {
          ids = new Set();
          this.byPlace.set(place, ids);
        }
        ids.add(id);
      }
      this.onHold?.(c);
    }
  }

  /** Drops what record `id` held (applied, or its proposal failed). */
  release(id: string): void {
    // Every applied record is released, claims or not; most hold none (no quota in their namespace).
    if (this.entries.size === 0) return;
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    for (const c of e.claims) {
      for (const place of [`${c.plugin}/${c.namespace}`, c.plugin]) {
        const ids = this.byPlace.get(place);
        ids?.delete(id);
        if (ids?.size === 0) this.byPlace.delete(place);
      }
      this.onRelease?.(c);
    }
  }

  /** Claims of `plugin` (in `namespace` when given). */
  *claims(plugin: string, namespace?: string): Iterable<Claim> {
    const place = namespace === undefined ? plugin : `${plugin}/${namespace}`;
    for (const id of this.byPlace.get(place) ?? []) {
      for (const c of this.entries.get(id)?.claims ?? []) {
        if (c.plugin === plugin && (namespace === undefined || c.namespace === namespace)) yield c;
      }
    }
  }

  /** A new term: entries of earlier terms were applied or lost before its barrier passed. */
  keepOnlyTerm(term: number): void {
    for (const e of [...this.entries.values()]) if (e.term !== term) this.release(e.id);
  }

  /** Drops claims older than `claimTtlMs` (oldest first, so it stops at the first young one). */
  expire(nowMs: number): void {
    for (const e of this.entries.values()) {
      if (nowMs - e.atMs < this.claimTtlMs) return;
      this.release(e.id);
    }
  }
}

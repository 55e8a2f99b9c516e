/**
 * The leader's claims of admitted writes not applied yet, by record id. Bounded by
 * `claimsMax` (entries) and `claimTtlMs` (a claim whose record never shows up is dropped).
 */

import type { Claim } from './leader-admission.js';

export interface ClaimLedgerOptions {
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
  private readonly entries = new Map<string, Entry>();
  /** `plugin/namespace` → record ids holding claims there. */
  private readonly byPlace = new Map<string, Set<string>>();

  constructor(opts: ClaimLedgerOptions = {}) {
    this.claimsMax = opts.claimsMax ?? 50_000;
    this.claimTtlMs = opts.claimTtlMs ?? 60_000;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether another entry fits (after dropping expired ones). */
  hasRoom(nowMs: number): boolean {
    if (this.entries.size < this.claimsMax) return true;
    this.expire(nowMs);
    return this.entries.size < this.claimsMax;
  }

  /** Holds `claims` for record `id` (replacing what `id` held before). */
  add(id: string, term: number, nowMs: number, claims: readonly Claim[]): void {
    this.release(id);
    if (claims.length === 0) return;
    this.entries.set(id, { id, term, atMs: nowMs, claims });
    for (const c of claims) {
      const place = `${c.plugin}/${c.namespace}`;
      let ids = this.byPlace.get(place);
      if (ids === undefined) {
        ids = new Set();
        this.byPlace.set(place, ids);
      }
      ids.add(id);
    }
  }

  /** Drops what record `id` held (applied, or its proposal failed). */
  release(id: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    for (const c of e.claims) {
      const place = `${c.plugin}/${c.namespace}`;
      const ids = this.byPlace.get(place);
      ids?.delete(id);
      if (ids?.size === 0) this.byPlace.delete(place);
    }
  }

  /** Claims of `plugin` (in `namespace` when given). */
  *claims(plugin: string, namespace?: string): Iterable<Claim> {
    if (namespace !== undefined) {
      for (const id of this.byPlace.get(`${plugin}/${namespace}`) ?? []) {
        for (const c of this.entries.get(id)?.claims ?? []) {
          if (c.plugin === plugin && c.namespace === namespace) yield c;
        }
      }
      return;
    }
    for (const e of this.entries.values()) for (const c of e.claims) if (c.plugin === plugin) yield c;
  }

  /** A new term: entries of earlier terms were applied or lost before its barrier passed. */
  keepOnlyTerm(term: number): void {
    for (const e of [...this.entries.values()]) if (e.term !== term) this.release(e.id);
  }

  expire(nowMs: number): void {
    for (const e of [...this.entries.values()]) if (nowMs - e.atMs >= this.claimTtlMs) this.release(e.id);
  }
}

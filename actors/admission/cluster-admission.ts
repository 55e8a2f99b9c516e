/**
 * The master's LeaderAdmission: the plugins in order, the claim ledger, and the per-term
 * barrier. Every master builds one (plugins keep their incremental state from the store's
 * change feed everywhere, so dry runs work on any master and a new leader is ready at once);
 * only the leader holds claims.
 */

import type { Command } from '../../core/commands.js';
import { type ApiObject, type Kind, kindInfo } from '../../core/index.js';
import { NotLeaderError } from '../../raft/index.js';
import { ApiError, ApiErrorCode } from '../api.js';
import type { ObjectStore } from '../store.js';
import type {
  AdmissionPlugin,
  AdmissionRequest,
  AdmissionStore,
  AdmissionView,
  AdmittedWrite,
  Claim,
  LeaderAdmission,
} from './leader-admission.js';
import { ClaimLedger, type ClaimLedgerOptions } from './ledger.js';

/** What admission needs of the Raft host: leadership and the read barrier. */
export interface AdmissionHost {
  status(): { role: string; term: number; leader?: string };
  readIndex(): Promise<number>;
}

export interface ClusterAdmissionOptions extends ClaimLedgerOptions {
  store: ObjectStore;
  host: AdmissionHost;
  /** Run in this order; each sees the object as the ones before left it. */
  plugins: readonly AdmissionPlugin[];
  /** The one clock (claim ages). Default Date.now. */
  nowMs?: () => number;
}

/** An AdmissionStore over the master's ObjectStore. */
export function storeReader(store: ObjectStore): AdmissionStore {
  return {
    get: (kind, namespace, name) => store.get(kind, namespace, name),
    list: (kind, namespace) => store.list({ kind, namespace, limit: 0 }).items,
    namespacesWith: (kind) => {
      const out = new Set<string>();
      for (const obj of store.objectsOfKind(kind))
        if (obj.metadata.namespace) out.add(obj.metadata.namespace);
      return out;
    },
  };
}

const noop: AdmittedWrite['failed'] = () => {};

export class ClusterAdmission implements LeaderAdmission {
  readonly ledger: ClaimLedger;
  private readonly store: ObjectStore;
  private readonly reader: AdmissionStore;
  private readonly host: AdmissionHost;
  private readonly plugins: readonly AdmissionPlugin[];
  private readonly nowMs: () => number;
  /** The term whose barrier has passed on this master. */
  private readyTerm: number | undefined;
  private barrierInFlight: { term: number; done: Promise<void> } | undefined;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(opts: ClusterAdmissionOptions) {
    this.store = opts.store;
    this.reader = storeReader(opts.store);
    this.host = opts.host;
    this.plugins = opts.plugins;
    this.nowMs = opts.nowMs ?? Date.now;
    const byName = new Map(opts.plugins.map((p) => [p.name, p]));
    this.ledger = new ClaimLedger({
      ...opts,
      onHold: (c) => byName.get(c.plugin)?.claimHeld?.(c),
      onRelease: (c) => byName.get(c.plugin)?.claimReleased?.(c),
    });
    this.unsubscribe.push(opts.store.onSettled((id) => this.ledger.release(id)));
    this.unsubscribe.push(
      opts.store.subscribe((changes, _applied, reset) => {
        for (const p of this.plugins) p.observe?.(changes, reset, this.reader);
      }),
    );
    // State already in the store (a restart over a snapshot) is seen as a reset.
    for (const p of this.plugins) p.observe?.([], true, this.reader);
  }

  close(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }

  async admit(cmd: Command, id: string): Promise<AdmittedWrite> {
    if (!this.concerns(cmd)) return { cmd, failed: noop };
    const term = await this.barrier();
    // From here on, synchronous: the check and the claims are atomic.
    const st = this.host.status();
    if (st.role !== 'leader' || st.term !== term) throw new NotLeaderError(st.leader);
    const now = this.nowMs();
    if (!this.ledger.hasRoom(now)) {
      throw new ApiError(
        ApiErrorCode.ResourceExhausted,
        `admission: ${this.ledger.claimsMax} writes (claimsMax) are waiting to be applied; retry`,
        { retryAfterMs: 200 },
      );
    }
    // A record admitted again (a retried proposal) replaces what it held.
    this.ledger.release(id);
    const { cmd: out, claims } = this.run(cmd, false);
    this.ledger.add(id, term, now, claims);
    return {
      cmd: out,
      failed: (definite) => {
        if (definite) this.ledger.release(id);
      },
    };
  }

  check(cmd: Command): Command {
    if (!this.concerns(cmd)) return cmd;
    return this.run(cmd, true).cmd;
  }

  /** Whether any plugin looks at `cmd` (creates and updates only). */
  private concerns(cmd: Command): boolean {
    if (cmd.op !== 'create' && cmd.op !== 'update') return false;
    const kind = cmd.object.kind as Kind;
    return this.plugins.some((p) => p.handles(cmd.op as AdmissionRequest['op'], kind));
  }

  private run(cmd: Command, dryRun: boolean): { cmd: Command; claims: Claim[] } {
    if (cmd.op !== 'create' && cmd.op !== 'update') return { cmd, claims: [] };
    let object: ApiObject = cmd.object;
    const kind = object.kind as Kind;
    let prev: ApiObject | undefined;
    if (cmd.op === 'update') {
      const m = object.metadata;
      prev = this.store.get(kind, kindInfo[kind].namespaced ? (m.namespace ?? '') : '', m.name ?? '');
      // Nothing to update: the apply answers NotFound.
      if (prev === undefined) return { cmd, claims: [] };
    }
    const view: AdmissionView = {
      store: this.reader,
      claims: (plugin, namespace) => this.ledger.claims(plugin, namespace),
    };
    const claims: Claim[] = [];
    for (const p of this.plugins) {
      if (!p.handles(cmd.op, kind)) continue;
      const req: AdmissionRequest = { op: cmd.op, object, dryRun, ...(prev ? { prev } : {}) };
      const verdict = p.admit(req, view);
      if (verdict?.object !== undefined) object = verdict.object;
      for (const c of verdict?.claims ?? []) claims.push({ plugin: p.name, ...c });
    }
    return { cmd: object === cmd.object ? cmd : { ...cmd, object }, claims: dryRun ? [] : claims };
  }

  /**
   * Resolves with the current term once this master, as its leader, has applied every entry
   * of earlier terms (a ReadIndex needs an entry of the new term committed, and resolves once
   * it is applied here). Claims of earlier terms are dropped then: their records were applied
   * by now, or will never be.
   */
  private async barrier(): Promise<number> {
    for (;;) {
      const st = this.host.status();
      if (st.role !== 'leader') throw new NotLeaderError(st.leader);
      if (this.readyTerm === st.term) return st.term;
      let inFlight = this.barrierInFlight;
      if (inFlight?.term !== st.term) {
        const term = st.term;
        const done = this.host.readIndex().then(
          () => {
            const now = this.host.status();
            if (now.role === 'leader' && now.term === term) {
              this.ledger.keepOnlyTerm(term);
              this.readyTerm = term;
            }
          },
          (err: unknown) => {
            if (this.barrierInFlight?.term === term) this.barrierInFlight = undefined;
            throw err;
          },
        );
        inFlight = { term, done };
        this.barrierInFlight = inFlight;
      }
      await inFlight.done;
      const now = this.host.status();
      if (now.role !== 'leader' || now.term !== inFlight.term) throw new NotLeaderError(now.leader);
    }
  }
}

/**
 * A master: the Raft host, the object store (object actors, indexes, watch hub) and the
 * domain API over them (ObjectApi, ClusterApi). Any master serves any request: reads are
 * local (after a ReadIndex barrier unless serializable), writes are proposed on the leader
 * (a follower forwards them), and the client gets the applied object back.
 *
 * Admission (parse, default, validate, size limit) runs on the master that received the
 * request; it chooses every nondeterministic value (uid, timestamps, generated names) and
 * puts it in the command, so the apply on every replica is deterministic. Admission that reads
 * cluster state (namespaces, LimitRanges, quotas: `admission/`) runs on the leader, just
 * before the write is proposed, whichever master received it.
 */

import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { pack } from 'msgpackr';
import {
  type ApplyOutcome,
  applyCommand,
  type Command,
  type CommandKey,
  describeKey,
  statusUpdateCommand,
} from '../core/commands.js';
import {
  type ApiObject,
  canonicalJson,
  checkFieldSelector,
  FieldSelectorError,
  fillDefaults,
  formatFieldError,
  isKnownKind,
  kindInfo,
  LabelSelectorError,
  MergePatchError,
  parseFieldSelector,
  parseLabelSelector,
  UnstorableJsonError,
  validateObject,
} from '../core/index.js';
import { namespaceDeletionForbidden } from '../core/namespaces.js';
import { applyMergePatch } from '../core/patch.js';
import { prepareForCreate, withGeneratedFields } from '../core/update-rules.js';
import {
  HostStoppedError,
  LeaderWaitTimeoutError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalLostError,
  ProposalOutcomeUnknownError,
  type RaftHost,
  ReadIndexTimeoutError,
  ResourceExhaustedError,
} from '../raft/index.js';
import {
  type AdmittedWrite,
  ClusterAdmission,
  defaultAdmissionPlugins,
  type LeaderAdmission,
} from './admission/index.js';
import {
  type AddMemberRequest,
  ApiError,
  ApiErrorCode,
  apiLimits,
  type ClusterApi,
  type ClusterStatus,
  type Consistency,
  type ControllersStatus,
  type DeleteOptions,
  type GetOptions,
  type ListOptions,
  type ListResult,
  type MemberStatus,
  type ObjectApi,
  type ObjectKey,
  type PatchOptions,
  type WatchOptions,
  type WatchStream,
  type WriteOptions,
} from './api.js';
import type { ControllerManagerStatus } from './controllers/manager.js';
import type { PeerHandler, PeerInfo, PeerLink, PeerRequest, PeerResponse } from './peers.js';
import { decodeRecord, encodeRecord, type LogRecord, type ObjectStore, type RecordOutcome } from './store.js';

export interface MasterApiOptions {
  id: string;
  host: RaftHost;
  store: ObjectStore;
  peers: PeerLink;
  /** This master's own addresses, reported by `cluster status`. */
  addresses: { raft: string; api: string; ws: string };
  /**
   * How long a write waits for others to share its Raft entry, in ms, when writes of its lane
   * are already in flight (an Event create always waits; a write of an idle lane goes at once).
   * Default 5. Under load, the writes that arrive while one entry is being committed are
   * proposed together: one entry, one forward, one waiter, not one each.
   */
  writeGroupLingerMs?: number;
  /** Writes proposed in one Raft entry at most. Default 256. */
  writeGroupItemsMax?: number;
  /** The one clock. Default Date.now. */
  nowMs?: () => number;
  /** How long a write may wait for a leader and its apply. Default 15,000. */
  writeTimeoutMs?: number;
  /** Attempts of a write whose leader changed before it was proposed. Default 5. */
  writeAttemptsMax?: number;
  /** Attempts of a patch that lost a race with another write (within writeTimeoutMs). Default 50. */
  patchAttemptsMax?: number;
  /** Time to answer a peer's info request in `cluster status`. Default 1,000. */
  peerInfoTimeoutMs?: number;
  /** Admission that reads cluster state, on the leader. Default: the built-in plugins. */
  admission?: LeaderAdmission;
  /** This master's controllers and their counters (`controllers()` answers with the leader's). */
  controllerStatus?: () => ControllerManagerStatus;
}

/** Annotations a binding sets on (and removes from) its pod. */
export interface BindAnnotations {
  set?: Record<string, string>;
  remove?: string[];
}

const GENERATED_SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const GENERATED_SUFFIX_LENGTH = 5;
const GENERATE_NAME_ATTEMPTS_MAX = 8;

/** RFC 3339 at second precision, as Kubernetes writes timestamps. */
export function rfc3339(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

interface ContinueToken {
  rv: number;
  key: string;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decodeContinue(text: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(text, 'base64url').toString()) as ContinueToken;
    if (Number.isSafeInteger(t.rv) && t.rv >= 0 && typeof t.key === 'string') return t;
  } catch {
    // fall through
  }
  throw new ApiError(ApiErrorCode.Invalid, 'continue: malformed token', { fieldPath: 'continue' });
}

/** One object of `MasterApi.deleteMany`. */
export interface DeleteManyItem {
  key: ObjectKey;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** A write waiting in its lane to share a Raft entry (see `MasterApi.write`). */
interface PendingWrite {
  cmd: Command;
  resolve: (obj: ApiObject) => void;
  reject: (err: unknown) => void;
}

/**
 * The writes bound to one leader term (or none): those gathering for the next entry, and how
 * many entries of the lane are being proposed.
 */
interface WriteLane {
  leaderTerm: number | undefined;
  pending: PendingWrite[];
  inFlight: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Whether the group's failure said nothing about its items one by one, so each is written alone
 * (a rejected item, say an Event in a namespace being deleted, must not take the others with
 * it; an older leader refuses the group whole; a group larger than `objectBytesMax`). Not when
 * the outcome is unknown, no leader took it, or the apply answered nonsense: the items would
 * meet the same.
 */
function retryItemsAlone(err: unknown): boolean {
  return !(
    err instanceof ApiError &&
    (err.code === ApiErrorCode.Timeout ||
      err.code === ApiErrorCode.Unavailable ||
      err.code === ApiErrorCode.Internal)
  );
}

/** Whether `cmd` is an Event create: it waits for company even in an idle lane (nobody waits on it). */
function isEventCreate(cmd: Command): boolean {
  return cmd.op === 'create' && cmd.object.kind === 'Event';
}

/** The ApiError of a command's rejection at apply. */
function rejection(outcome: Extract<ApplyOutcome, { result: 'rejected' }>): ApiError {
  return new ApiError(
    outcome.code,
    outcome.message,
    outcome.fieldPath !== undefined ? { fieldPath: outcome.fieldPath } : {},
  );
}

export class MasterApi implements ObjectApi, ClusterApi, PeerHandler {
  private readonly id: string;
  private readonly host: RaftHost;
  private readonly store: ObjectStore;
  private readonly peers: PeerLink;
  private readonly addresses: MasterApiOptions['addresses'];
  private readonly nowMs: () => number;
  private readonly writeTimeoutMs: number;
  private readonly writeAttemptsMax: number;
  private readonly patchAttemptsMax: number;
  private readonly peerInfoTimeoutMs: number;
  private readonly admission: LeaderAdmission;
  private readonly controllerStatus: (() => ControllerManagerStatus) | undefined;
  private readonly writeGroupLingerMs: number;
  private readonly writeGroupItemsMax: number;
  /** Writes gathering for one entry, by leader term ('' for writes bound to none). */
  private readonly lanes = new Map<string, WriteLane>();

  constructor(opts: MasterApiOptions) {
    this.writeGroupLingerMs = opts.writeGroupLingerMs ?? 5;
    this.writeGroupItemsMax = Math.max(1, opts.writeGroupItemsMax ?? 256);
    this.controllerStatus = opts.controllerStatus;
    this.id = opts.id;
    this.host = opts.host;
    this.store = opts.store;
    this.peers = opts.peers;
    this.addresses = opts.addresses;
    this.nowMs = opts.nowMs ?? Date.now;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 15_000;
    this.writeAttemptsMax = opts.writeAttemptsMax ?? 5;
    this.patchAttemptsMax = opts.patchAttemptsMax ?? 50;
    this.peerInfoTimeoutMs = opts.peerInfoTimeoutMs ?? 1_000;
    this.admission =
      opts.admission ??
      new ClusterAdmission({
        store: opts.store,
        host: opts.host,
        plugins: defaultAdmissionPlugins().plugins,
        nowMs: this.nowMs,
      });
  }

  // ================================================================== ObjectApi

  async create(input: unknown, opts: WriteOptions = {}): Promise<ApiObject> {
    const obj = prepareForCreate(this.admit(input, 'create'));
    const m = obj.metadata;
    const generate = !m.name && m.generateName !== undefined;
    for (let attempt = 1; ; attempt += 1) {
      const created = {
        ...obj,
        metadata: {
          ...m,
          name: generate ? `${m.generateName}${this.randomSuffix()}` : m.name,
          uid: randomUUID(),
          creationTimestamp: rfc3339(this.nowMs()),
        },
      } as ApiObject;
      const object = withGeneratedFields(created);
      if (object !== created) this.checkGenerated(object);
      delete object.metadata.resourceVersion;
      delete object.metadata.deletionTimestamp;
      delete object.metadata.deletionGracePeriodSeconds;
      try {
        return await this.write({ op: 'create', object }, opts);
      } catch (err) {
        if (!(generate && err instanceof ApiError && err.code === ApiErrorCode.AlreadyExists)) throw err;
        if (attempt >= GENERATE_NAME_ATTEMPTS_MAX) throw err;
      }
    }
  }

  async get(key: ObjectKey, opts: GetOptions = {}): Promise<ApiObject> {
    const k = this.key(key);
    await this.readBarrier(opts.consistency);
    const obj = this.store.get(k.kind, k.namespace, k.name);
    if (!obj) throw new ApiError(ApiErrorCode.NotFound, `${describeKey(k)} not found`);
    return obj;
  }

  async list(kind: string, opts: ListOptions = {}): Promise<ListResult> {
    const k = this.kind(kind);
    const labels = this.parseLabels(opts.labelSelector);
    const fields = this.parseFields(k, opts.fieldSelector);
    const limit = Math.min(Math.max(0, Math.trunc(opts.limit ?? 0)), apiLimits.listLimitMax);
    const token = opts.continue ? decodeContinue(opts.continue) : undefined;
    await this.readBarrier(opts.consistency);
    if (token && token.rv > this.store.appliedIndex) {
      // After a linearizable barrier nothing real is ahead of this master: the token is forged.
      if (opts.consistency !== 'serializable') {
        throw new ApiError(
          ApiErrorCode.Invalid,
          `continue: token version ${token.rv} is ahead of the cluster`,
          {
            fieldPath: 'continue',
          },
        );
      }
      await this.store.waitForApplied(token.rv, this.writeTimeoutMs);
    }
    let page: ReturnType<ObjectStore['list']>;
    try {
      page = this.store.list({
        kind: k,
        namespace: kindInfo[k].namespaced ? opts.namespace || undefined : undefined,
        labels,
        fields,
        limit: limit === 0 && token ? apiLimits.listLimitMax : limit,
        after: token,
      });
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.Gone && token) {
        throw new ApiError(
          ApiErrorCode.Gone,
          `continue token expired (its version ${token.rv} left the history); list again`,
        );
      }
      throw err;
    }
    const out: ListResult = { items: page.items, resourceVersion: String(page.rv) };
    if (page.nextKey !== undefined) {
      out.continue = encodeContinue({ rv: page.rv, key: page.nextKey });
      out.remainingItemCount = page.remaining;
    }
    return out;
  }

  async update(input: unknown, opts: WriteOptions = {}): Promise<ApiObject> {
    const obj = this.admit(input, 'update');
    return this.write({ op: 'update', object: obj, precondition: this.preconditionOf(obj) }, opts);
  }

  async updateStatus(input: unknown, opts: WriteOptions = {}): Promise<ApiObject> {
    const obj = this.admit(input, 'update');
    return this.write(statusUpdateCommand(obj, this.preconditionOf(obj)), opts);
  }

  async patch(key: ObjectKey, patch: unknown, opts: PatchOptions = {}): Promise<ApiObject> {
    const k = this.key(key);
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw new ApiError(
        ApiErrorCode.Invalid,
        `${describeKey(k)}: patch: must be a JSON object (merge patch)`,
        {
          fieldPath: 'patch',
        },
      );
    }
    const meta = (patch as { metadata?: { resourceVersion?: unknown } }).metadata;
    const pinned = typeof meta?.resourceVersion === 'string';
    const deadline = this.nowMs() + this.writeTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      await this.readBarrier('linearizable');
      const current = this.store.get(k.kind, k.namespace, k.name);
      if (!current) throw new ApiError(ApiErrorCode.NotFound, `${describeKey(k)} not found`);
      const merged = mergePatchOrInvalid(k, current, patch);
      const mm = (merged.metadata ?? {}) as Record<string, unknown>;
      // The patch may not move the object: its identity comes from the key.
      merged.kind = current.kind;
      merged.apiVersion = current.apiVersion;
      merged.metadata = {
        ...mm,
        name: current.metadata.name,
        namespace: current.metadata.namespace,
        uid: current.metadata.uid,
        resourceVersion: pinned ? meta?.resourceVersion : current.metadata.resourceVersion,
      };
      const obj = this.admit(merged, 'update');
      const cmd: Command =
        opts.subresource === 'status'
          ? statusUpdateCommand(obj, this.preconditionOf(obj))
          : { op: 'update', object: obj, precondition: this.preconditionOf(obj) };
      try {
        return await this.write(cmd, opts);
      } catch (err) {
        // Another write won the race: re-read and re-apply the patch, as Kubernetes does.
        const retry = !pinned && err instanceof ApiError && err.code === ApiErrorCode.Conflict;
        if (!retry || attempt >= this.patchAttemptsMax || this.nowMs() > deadline) throw err;
        await sleep(randomInt(0, 5 * Math.min(attempt, 10) + 1));
      }
    }
  }

  async delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<ApiObject> {
    const k = this.key(key);
    const forbidden = namespaceDeletionForbidden(k);
    if (forbidden) throw new ApiError(ApiErrorCode.Invalid, forbidden, { fieldPath: 'metadata.name' });
    const policy = opts.propagationPolicy;
    if (policy !== undefined && !['Background', 'Foreground', 'Orphan'].includes(policy)) {
      throw new ApiError(
        ApiErrorCode.Invalid,
        `${describeKey(k)}: propagationPolicy: must be Background, Foreground or Orphan`,
        { fieldPath: 'propagationPolicy' },
      );
    }
    const grace = opts.gracePeriodSeconds;
    if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) {
      throw new ApiError(
        ApiErrorCode.Invalid,
        `${describeKey(k)}: gracePeriodSeconds: must be an integer >= 0`,
        {
          fieldPath: 'gracePeriodSeconds',
        },
      );
    }
    const cmd: Command = {
      op: 'delete',
      key: k,
      now: rfc3339(this.nowMs()),
      ...(opts.preconditions ? { precondition: opts.preconditions } : {}),
      ...(policy ? { propagationPolicy: policy } : {}),
      ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
    };
    return this.write(cmd, opts);
  }

  /**
   * Deletes several objects in one Raft entry (the Event cap's pass: one entry instead of one
   * per Event). Each item applies as a delete of its own with its preconditions; the result
   * per item, in order, is the deleted (or marked) object or the ApiError it met (NotFound,
   * Conflict). At most `apiLimits.deleteManyItemsMax` items.
   */
  async deleteMany(
    items: readonly DeleteManyItem[],
    opts: Pick<WriteOptions, 'leaderTerm'> = {},
  ): Promise<(ApiObject | ApiError)[]> {
    if (items.length === 0) return [];
    if (items.length > apiLimits.deleteManyItemsMax) {
      throw new ApiError(
        ApiErrorCode.Invalid,
        `deleteMany: ${items.length} items, more than ${apiLimits.deleteManyItemsMax}`,
        { fieldPath: 'items' },
      );
    }
    const now = rfc3339(this.nowMs());
    const cmds = items.map((item): Command => {
      const k = this.key(item.key);
      const forbidden = namespaceDeletionForbidden(k);
      if (forbidden) throw new ApiError(ApiErrorCode.Invalid, forbidden, { fieldPath: 'metadata.name' });
      return {
        op: 'delete',
        key: k,
        now,
        ...(item.preconditions ? { precondition: item.preconditions } : {}),
      };
    });
    return this.proposeCommands('deleteMany', cmds, opts.leaderTerm);
  }

  /**
   * `cmds` proposed as one record of several commands; per command, in order, the object
   * written or the ApiError it met at apply. ResourceExhausted when the record is larger than
   * `objectBytesMax`.
   */
  private async proposeCommands(
    what: string,
    cmds: Command[],
    leaderTerm: number | undefined,
  ): Promise<(ApiObject | ApiError)[]> {
    const rec: LogRecord & { id: string } = { t: 'cmds', id: randomUUID(), cmds };
    const data = encodeRecord(rec);
    if (data.byteLength > apiLimits.objectBytesMax) {
      throw new ApiError(
        ApiErrorCode.ResourceExhausted,
        `${what}: request is ${data.byteLength} bytes, more than objectBytesMax (${apiLimits.objectBytesMax})`,
      );
    }
    const { outcome } = await this.propose(data, rec, leaderTerm);
    if (outcome.result !== 'cmds' || outcome.outcomes.length !== cmds.length) {
      throw new ApiError(ApiErrorCode.Internal, `${what}: unexpected outcome ${outcome.result}`);
    }
    return outcome.outcomes.map((o) => (o.result === 'rejected' ? rejection(o) : o.object));
  }

  /**
   * Binds a pending pod to a node (the scheduler's write). Rejected with Conflict when the
   * decision is stale: the pod with `uid` is gone, already bound, or being deleted. As a
   * Kubernetes Binding, it may set and remove annotations of the pod.
   */
  async bind(
    key: { namespace: string; name: string },
    uid: string,
    nodeName: string,
    annotations: BindAnnotations = {},
    opts: Pick<WriteOptions, 'leaderTerm'> = {},
  ): Promise<ApiObject> {
    const k = this.key({ kind: 'Pod', namespace: key.namespace, name: key.name });
    return this.write(
      {
        op: 'bind',
        key: k,
        uid,
        nodeName,
        now: rfc3339(this.nowMs()),
        ...(annotations.set !== undefined ? { annotations: annotations.set } : {}),
        ...(annotations.remove !== undefined ? { removeAnnotations: annotations.remove } : {}),
      },
      opts,
    );
  }

  async watch(kind: string, opts: WatchOptions = {}): Promise<WatchStream> {
    const k = this.kind(kind);
    const labels = this.parseLabels(opts.labelSelector);
    const fields = this.parseFields(k, opts.fieldSelector);
    let fromRv: number | undefined;
    if (opts.resourceVersion !== undefined && opts.resourceVersion !== '' && opts.resourceVersion !== '0') {
      fromRv = Number(opts.resourceVersion);
      if (!Number.isSafeInteger(fromRv) || fromRv < 0) {
        throw new ApiError(
          ApiErrorCode.Invalid,
          `watch ${k}: resourceVersion: must be a non-negative integer`,
          {
            fieldPath: 'resourceVersion',
          },
        );
      }
    } else {
      // "From now" is a linearizable point: everything acknowledged before the watch is in its initial state.
      await this.readBarrier('linearizable');
    }
    return this.store.watch(
      {
        kind: k,
        namespace: kindInfo[k].namespaced ? opts.namespace || undefined : undefined,
        name: opts.name || undefined,
        labels,
        fields,
      },
      fromRv,
      opts.sendInitialEvents ?? true,
      opts.allowBookmarks ?? false,
    );
  }

  // ================================================================== ClusterApi

  async status(): Promise<ClusterStatus> {
    const st = this.host.status();
    const progress = this.host.progress();
    const directory = new Map(this.store.memberList().map((m) => [m.id, m.raftAddress]));
    const ids = [...new Set([...st.voters, ...st.learners])].sort();
    const members = await Promise.all(
      ids.map(async (id): Promise<MemberStatus> => {
        const base = { id, raftAddress: directory.get(id) ?? (id === this.id ? this.addresses.raft : '') };
        const match = progress?.[id]?.match;
        let info: PeerInfo | undefined;
        if (id === this.id) info = this.info();
        else info = await this.peers.info(id, this.peerInfoTimeoutMs).catch(() => undefined);
        if (!info) {
          return {
            ...base,
            apiAddress: '',
            wsUrl: '',
            role: 'unreachable',
            ...(match !== undefined ? { match } : {}),
          };
        }
        const role = st.learners.includes(id) ? 'learner' : info.role;
        return {
          ...base,
          apiAddress: info.apiAddress,
          wsUrl: info.wsUrl,
          role,
          term: info.term,
          commit: info.commit,
          applied: info.applied,
          ...(match !== undefined ? { match } : {}),
        };
      }),
    );
    return { self: this.id, ...(st.leader ? { leader: st.leader } : {}), term: st.term, members };
  }

  async addMember(req: AddMemberRequest): Promise<ClusterStatus> {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(req.id ?? '')) {
      throw new ApiError(ApiErrorCode.Invalid, 'member id: must be a DNS label (a-z, 0-9, -)', {
        fieldPath: 'id',
      });
    }
    if (typeof req.raftAddress !== 'string' || !/^\S+$/.test(req.raftAddress)) {
      throw new ApiError(ApiErrorCode.Invalid, `member ${req.id}: raftAddress: must be host:port`, {
        fieldPath: 'raftAddress',
      });
    }
    await this.onLeader({ t: 'addMember', req });
    return this.status();
  }

  async removeMember(id: string): Promise<ClusterStatus> {
    const st = this.host.status();
    if (!st.voters.includes(id) && !st.learners.includes(id)) {
      throw new ApiError(ApiErrorCode.NotFound, `member ${id} not found`);
    }
    await this.onLeader({ t: 'removeMember', id });
    return this.status();
  }

  async transferLeadership(to?: string): Promise<ClusterStatus> {
    await this.onLeader({ t: 'transfer', to });
    return this.status();
  }

  async controllers(): Promise<ControllersStatus> {
    const resp = await this.leaderAnswer({ t: 'controllers' });
    if (resp.t !== 'controllers') {
      throw new ApiError(ApiErrorCode.Internal, `controllers: the leader answered ${resp.t}`);
    }
    return resp.status;
  }

  /** The controllers' counters, on the leader only (a follower's would be stale or empty). */
  private controllersOnLeader(): ControllersStatus {
    const st = this.host.status();
    if (st.role !== 'leader') throw new NotLeaderError(st.leader);
    const status = this.controllerStatus?.();
    return {
      leader: this.id,
      running: status?.running ?? false,
      ...(status?.term !== undefined ? { term: status.term } : {}),
      controllers: status?.controllers ?? [],
      events: status?.events ?? { written: 0, dropped: 0, failed: 0 },
    };
  }

  async *snapshot(): AsyncIterable<Uint8Array> {
    await this.readBarrier('linearizable');
    const applied = this.store.appliedIndex;
    const data = await this.store.snapshot(); // its cut is taken at the call, at `applied`
    const backup = pack({
      format: 'coxswain-backup',
      v: 1,
      applied,
      takenAt: rfc3339(this.nowMs()),
      data,
    });
    const chunkBytes = 1 << 20;
    for (let i = 0; i < backup.byteLength; i += chunkBytes)
      yield new Uint8Array(backup.subarray(i, i + chunkBytes));
  }

  // ================================================================== PeerHandler (on the leader)

  info(): PeerInfo {
    const st = this.host.status();
    return {
      id: this.id,
      apiAddress: this.addresses.api,
      wsUrl: this.addresses.ws,
      role: st.role,
      term: st.term,
      commit: st.commit,
      applied: this.store.appliedIndex,
      ...(st.leader ? { leader: st.leader } : {}),
    };
  }

  async handle(req: PeerRequest): Promise<PeerResponse> {
    try {
      switch (req.t) {
        case 'propose': {
          const r = await this.proposeOnLeader(req.data, req.id);
          return req.localOutcome
            ? { t: 'proposed', index: r.index }
            : { t: 'proposed', index: r.index, outcome: r.outcome };
        }
        case 'addMember':
          await this.addMemberOnLeader(req.req);
          return { t: 'done' };
        case 'removeMember':
          await this.host.removeMember(req.id);
          await this.proposeLocal(encodeRecord({ t: 'memberRemoved', id: randomUUID(), member: req.id }));
          return { t: 'done' };
        case 'transfer':
          await this.transferOnLeader(req.to);
          return { t: 'done' };
        case 'controllers':
          return { t: 'controllers', status: this.controllersOnLeader() };
        default: {
          const unknown: never = req;
          throw new ApiError(ApiErrorCode.Invalid, `unknown peer request ${JSON.stringify(unknown)}`);
        }
      }
    } catch (err) {
      if (err instanceof NotLeaderError) {
        return {
          t: 'error',
          code: ApiErrorCode.Unavailable,
          message: err.message,
          notLeader: true,
          leaderHint: err.leaderHint,
        };
      }
      const e = toApiError(err);
      return {
        t: 'error',
        code: e.code,
        message: e.message,
        ...(e.details.retryAfterMs !== undefined ? { retryAfterMs: e.details.retryAfterMs } : {}),
        ...(e.details.fieldPath !== undefined ? { fieldPath: e.details.fieldPath } : {}),
      };
    }
  }

  private async addMemberOnLeader(req: AddMemberRequest): Promise<void> {
    this.peers.setAddress(req.id, req.raftAddress);
    // The address goes into the replicated directory first, so every member can reach it.
    await this.proposeLocal(
      encodeRecord({ t: 'member', id: randomUUID(), member: { id: req.id, raftAddress: req.raftAddress } }),
    );
    await this.host.addMember(req.id, { address: req.raftAddress });
  }

  private async transferOnLeader(to: string | undefined): Promise<void> {
    const st = this.host.status();
    if (st.role !== 'leader') throw new NotLeaderError(st.leader);
    let target = to;
    if (target === undefined) {
      const progress = this.host.progress() ?? {};
      target = st.voters
        .filter((v) => v !== this.id)
        .sort((a, b) => (progress[b]?.match ?? 0) - (progress[a]?.match ?? 0))[0];
      if (target === undefined)
        throw new ApiError(ApiErrorCode.Invalid, 'transfer: no other voter to hand leadership to');
    }
    if (target === this.id) return;
    if (!st.voters.includes(target)) {
      throw new ApiError(ApiErrorCode.Invalid, `transfer: ${target} is not a voter`, { fieldPath: 'to' });
    }
    this.host.transferLeadership(target);
    const deadline = this.nowMs() + this.writeTimeoutMs;
    while (this.host.status().leader !== target) {
      if (this.nowMs() > deadline)
        throw new ApiError(ApiErrorCode.Timeout, `transfer to ${target} did not finish in time`);
      await sleep(20);
    }
  }

  // ================================================================== writes

  /**
   * Writes `cmd` in its lane (its leader term): at once when the lane has nothing in flight,
   * else in the next entry of the lane, which is proposed when the entries in flight are
   * applied, after `writeGroupLingerMs`, or once it holds `writeGroupItemsMax` writes. Each
   * write of an entry applies as if alone and its caller gets its own outcome.
   */
  private write(cmd: Command, opts: WriteOptions): Promise<ApiObject> {
    if (opts.dryRun) return Promise.resolve().then(() => this.dryRun(this.admission.check(cmd)));
    const key = opts.leaderTerm === undefined ? '' : String(opts.leaderTerm);
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { leaderTerm: opts.leaderTerm, pending: [], inFlight: 0, timer: undefined };
      this.lanes.set(key, lane);
    }
    const l = lane;
    return new Promise<ApiObject>((resolve, reject) => {
      l.pending.push({ cmd, resolve, reject });
      if ((l.inFlight === 0 && !isEventCreate(cmd)) || l.pending.length >= this.writeGroupItemsMax) {
        this.flushLane(key, l);
      } else if (l.timer === undefined) {
        l.timer = setTimeout(() => this.flushLane(key, l), this.writeGroupLingerMs);
        l.timer.unref();
      }
    });
  }

  /** Proposes the lane's pending writes as one entry; the next gathers meanwhile. */
  private flushLane(key: string, lane: WriteLane): void {
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const items = lane.pending.splice(0);
    if (items.length === 0) return;
    lane.inFlight += 1;
    void this.proposeGroup(items, lane.leaderTerm).finally(() => {
      lane.inFlight -= 1;
      if (lane.pending.length > 0) {
        if (lane.inFlight === 0) this.flushLane(key, lane);
      } else if (lane.inFlight === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
    });
  }

  /** Writes `cmd` in an entry of its own. */
  private async writeAlone(cmd: Command, opts: WriteOptions): Promise<ApiObject> {
    const rec: LogRecord & { id: string } = { t: 'cmd', id: randomUUID(), cmd };
    const data = encodeRecord(rec);
    if (data.byteLength > apiLimits.objectBytesMax) {
      const k = this.cmdKey(cmd);
      throw new ApiError(
        ApiErrorCode.ResourceExhausted,
        `${describeKey(k)}: request is ${data.byteLength} bytes, more than objectBytesMax (${apiLimits.objectBytesMax})`,
      );
    }
    const { outcome } = await this.propose(data, rec, opts.leaderTerm);
    return this.result(outcome as ApplyOutcome);
  }

  /**
   * Proposes `items` as one record of several commands (one alone as a plain write); settles
   * each item with its own outcome. Never rejects.
   */
  private async proposeGroup(items: PendingWrite[], leaderTerm: number | undefined): Promise<void> {
    const alone = (item: PendingWrite) =>
      this.writeAlone(item.cmd, { leaderTerm }).then(item.resolve, item.reject);
    if (items.length === 1) {
      await alone(items[0]);
      return;
    }
    let results: (ApiObject | ApiError)[];
    try {
      results = await this.proposeCommands(
        'grouped writes',
        items.map((i) => i.cmd),
        leaderTerm,
      );
    } catch (err) {
      if (retryItemsAlone(err)) await Promise.all(items.map(alone));
      else for (const item of items) item.reject(err);
      return;
    }
    items.forEach((item, i) => {
      const r = results[i];
      if (r instanceof ApiError) item.reject(r);
      else item.resolve(r);
    });
  }

  private dryRun(cmd: Command): ApiObject {
    const k = this.cmdKey(cmd);
    const outcome = applyCommand(
      this.store.get(k.kind, k.namespace, k.name),
      cmd,
      this.store.appliedIndex + 1,
    );
    const obj = this.result(outcome);
    // A dry run has no version: it was not written.
    return {
      ...obj,
      metadata: {
        ...obj.metadata,
        resourceVersion: this.store.get(k.kind, k.namespace, k.name)?.metadata.resourceVersion,
      },
    } as ApiObject;
  }

  private result(outcome: ApplyOutcome): ApiObject {
    if (outcome.result === 'rejected') throw rejection(outcome);
    return outcome.object;
  }

  /**
   * Proposes on the leader (forwarding `data` from a follower; the leader runs its admission
   * either way); resolves once applied here too.
   */
  private async propose(
    data: Uint8Array,
    rec: LogRecord & { id: string },
    leaderTerm?: number,
  ): Promise<{ index: number; outcome: RecordOutcome }> {
    if (leaderTerm !== undefined) return this.proposeInTerm(data, rec, leaderTerm);
    const id = rec.id;
    const deadline = this.nowMs() + this.writeTimeoutMs;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= this.writeAttemptsMax; attempt += 1) {
      const remaining = deadline - this.nowMs();
      if (remaining <= 0) break;
      const leader = await this.leader(remaining);
      if (leader === this.id) {
        try {
          return await this.proposeOnLeader(data, id, rec);
        } catch (err) {
          if (!notProposed(err)) throw proposalFailure(err);
          // Safe to retry.
          lastErr = err;
          await sleep(Math.min(50 * attempt, 500));
          continue;
        }
      }
      let resp: PeerResponse;
      // Registered before the request: the entry may be applied here before the answer arrives.
      const local = this.store.expectOutcome(id);
      try {
        resp = await this.peers.request(leader, { t: 'propose', data, id, localOutcome: true }, remaining);
      } catch (err) {
        local.cancel();
        // Retried only when the request provably never reached the leader (no connection).
        if (!isConnectFailure(err)) {
          throw new ApiError(
            ApiErrorCode.Timeout,
            `write outcome unknown: lost contact with the leader ${leader} during the request`,
            { cause: err },
          );
        }
        lastErr = err;
        await sleep(Math.min(100 * attempt, 500));
        continue;
      }
      if (resp.t === 'proposed' && resp.outcome === undefined) {
        return { index: resp.index, outcome: await this.appliedOutcome(local, resp.index, deadline) };
      }
      local.cancel();
      if (resp.t === 'proposed') {
        // A leader that answers with the outcome (an older master).
        await this.store.waitForApplied(resp.index, Math.max(1, deadline - this.nowMs())).catch(() => {});
        return { index: resp.index, outcome: resp.outcome as RecordOutcome };
      }
      if (resp.t === 'error' && resp.notLeader) {
        lastErr = new ApiError(ApiErrorCode.Unavailable, resp.message, { retryAfterMs: 100 });
        await sleep(Math.min(50 * attempt, 500));
        continue;
      }
      if (resp.t === 'error') {
        throw new ApiError(resp.code as ApiErrorCode, resp.message, {
          ...(resp.retryAfterMs !== undefined ? { retryAfterMs: resp.retryAfterMs } : {}),
          ...(resp.fieldPath !== undefined ? { fieldPath: resp.fieldPath } : {}),
        });
      }
      throw new ApiError(ApiErrorCode.Internal, `unexpected peer response ${resp.t}`);
    }
    throw new ApiError(
      ApiErrorCode.Unavailable,
      `no leader accepted the write in time (${describeErr(lastErr)})`,
      {
        retryAfterMs: 500,
      },
    );
  }

  /**
   * The outcome of a forwarded write, from this master's own apply of its entry at `index`.
   * Unknown (Timeout: the write may well have applied) when this master does not apply it in
   * time or skips it by installing a snapshot past it.
   */
  private async appliedOutcome(
    expected: { outcome: Promise<RecordOutcome>; cancel: () => void },
    index: number,
    deadline: number,
  ): Promise<RecordOutcome> {
    try {
      await this.store.waitForApplied(index, Math.max(1, deadline - this.nowMs()));
    } catch {
      expected.cancel();
      throw new ApiError(
        ApiErrorCode.Timeout,
        `write outcome unknown: committed at index ${index}, not applied on this master in time`,
        { retryAfterMs: 100 },
      );
    }
    // Settled during the apply, before the applied index moved: already resolved unless skipped.
    const outcome = await Promise.race([expected.outcome, Promise.resolve(undefined)]);
    if (outcome !== undefined) return outcome;
    expected.cancel();
    throw new ApiError(
      ApiErrorCode.Timeout,
      `write outcome unknown: this master installed a snapshot past index ${index}`,
      { retryAfterMs: 100 },
    );
  }

  /** `propose` for a write of the leader's controllers of `term`: here, in that term, or not at all. */
  private async proposeInTerm(
    data: Uint8Array,
    rec: LogRecord & { id: string },
    term: number,
  ): Promise<{ index: number; outcome: RecordOutcome }> {
    const notLeader = () =>
      new ApiError(ApiErrorCode.Unavailable, `this master no longer leads term ${term}: not writing`, {
        retryAfterMs: 500,
      });
    const st = this.host.status();
    if (st.role !== 'leader' || st.term !== term) throw notLeader();
    try {
      return await this.proposeOnLeader(data, rec.id, rec, term);
    } catch (err) {
      throw notProposed(err) ? notLeader() : proposalFailure(err);
    }
  }

  /**
   * On the leader: leader admission (which may rewrite the command: defaults), then the
   * proposal. A forwarded write arrives encoded and is decoded here. With `term`, the proposal
   * is placed only while this master still leads that term (checked in the same turn).
   */
  private async proposeOnLeader(
    data: Uint8Array,
    id: string,
    known?: LogRecord,
    term?: number,
  ): Promise<{ index: number; outcome: RecordOutcome }> {
    const rec = known ?? decodeRecord(data);
    if (rec.t === 'cmds') return this.proposeCommandsOnLeader(data, id, rec, term);
    if (rec.t !== 'cmd') return this.proposeLocal(data, id, term, rec);
    const admitted = await this.admission.admit(rec.cmd, id);
    const outRec = admitted.cmd === rec.cmd ? rec : { ...rec, cmd: admitted.cmd };
    const out = outRec === rec ? data : encodeRecord(outRec);
    try {
      return await this.proposeLocal(out, id, term, outRec);
    } catch (err) {
      // Outcome unknown: the entry may still commit, so its claims stay until it is applied.
      admitted.failed(!(err instanceof ProposalOutcomeUnknownError));
      throw err;
    }
  }

  /**
   * A record of several commands on the leader (a lane's writes, or `deleteMany`), each
   * admitted as a write of its own (`id/i`: the store settles each command under that id,
   * which releases its claims). One refused command refuses the record, and nothing of it
   * stays held: the proposer then writes each alone, so only the refused one fails.
   */
  private async proposeCommandsOnLeader(
    data: Uint8Array,
    id: string,
    rec: Extract<LogRecord, { t: 'cmds' }>,
    term?: number,
  ): Promise<{ index: number; outcome: RecordOutcome }> {
    if (rec.cmds.every((c) => c.op === 'delete')) return this.proposeLocal(data, id, term, rec);
    const admitted: AdmittedWrite[] = [];
    try {
      for (const [i, cmd] of rec.cmds.entries()) admitted.push(await this.admission.admit(cmd, `${id}/${i}`));
    } catch (err) {
      for (const a of admitted) a.failed(true);
      throw err;
    }
    const changed = admitted.some((a, i) => a.cmd !== rec.cmds[i]);
    const outRec = changed ? { ...rec, cmds: admitted.map((a) => a.cmd) } : rec;
    const out = changed ? encodeRecord(outRec) : data;
    try {
      return await this.proposeLocal(out, id, term, outRec);
    } catch (err) {
      for (const a of admitted) a.failed(!(err instanceof ProposalOutcomeUnknownError));
      throw err;
    }
  }

  /** Proposes `data` here (the leader); `rec`, when given, is what it encodes (applied as is). */
  private async proposeLocal(
    data: Uint8Array,
    id?: string,
    term?: number,
    rec?: LogRecord,
  ): Promise<{ index: number; outcome: RecordOutcome }> {
    if (term !== undefined) {
      const st = this.host.status();
      if (st.role !== 'leader' || st.term !== term) throw new NotLeaderError(st.leader);
    }
    const expected = id !== undefined ? this.store.expectOutcome(id) : undefined;
    if (rec !== undefined) this.store.remember(data, rec);
    try {
      const { index } = await this.host.propose(data);
      const outcome = expected ? await expected.outcome : ({ result: 'member' } as RecordOutcome);
      return { index, outcome };
    } catch (err) {
      expected?.cancel();
      throw err;
    }
  }

  private async onLeader(req: PeerRequest): Promise<void> {
    await this.leaderAnswer(req);
  }

  /** `req` handled by the leader (here, or forwarded), following leadership as it moves. */
  private async leaderAnswer(req: PeerRequest): Promise<Exclude<PeerResponse, { t: 'error' }>> {
    const deadline = this.nowMs() + this.writeTimeoutMs;
    for (let attempt = 1; attempt <= this.writeAttemptsMax; attempt += 1) {
      const leader = await this.leader(Math.max(1, deadline - this.nowMs()));
      const resp =
        leader === this.id
          ? await this.handle(req)
          : await this.peers.request(leader, req, deadline - this.nowMs());
      if (resp.t !== 'error') return resp;
      if (resp.notLeader) {
        await sleep(100);
        continue;
      }
      throw new ApiError(resp.code as ApiErrorCode, resp.message);
    }
    throw new ApiError(ApiErrorCode.Unavailable, 'leadership kept moving; retry', { retryAfterMs: 500 });
  }

  private async leader(timeoutMs: number): Promise<string> {
    try {
      return await this.host.waitForLeader(timeoutMs);
    } catch (err) {
      throw toApiError(err);
    }
  }

  private async readBarrier(consistency: Consistency | undefined): Promise<void> {
    if (consistency === 'serializable') return;
    if (consistency !== undefined && consistency !== 'linearizable') {
      throw new ApiError(ApiErrorCode.Invalid, 'consistency: must be linearizable or serializable', {
        fieldPath: 'consistency',
      });
    }
    try {
      await this.host.readIndex();
    } catch (err) {
      throw toApiError(err);
    }
  }

  // ================================================================== admission

  /** Parses, defaults and validates an object from a client. */
  private admit(input: unknown, mode: 'create' | 'update'): ApiObject {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new ApiError(ApiErrorCode.Invalid, 'object: must be a JSON object', { fieldPath: '' });
    }
    const raw = input as Record<string, unknown>;
    const kind = this.kind(raw.kind);
    const metadata = { ...((raw.metadata ?? {}) as Record<string, unknown>) };
    if (kindInfo[kind].namespaced && (metadata.namespace === undefined || metadata.namespace === '')) {
      metadata.namespace = 'default';
    }
    const candidate = { ...raw, apiVersion: raw.apiVersion ?? kindInfo[kind].apiVersion, metadata };
    // Only for messages: never String() a client value (`{"toString": 1}` throws).
    const name =
      typeof metadata.name === 'string'
        ? metadata.name
        : typeof metadata.generateName === 'string'
          ? metadata.generateName
          : '';
    if (mode === 'update' && !metadata.name) {
      throw new ApiError(ApiErrorCode.Invalid, `${kind.toLowerCase()}: metadata.name: Required value`, {
        fieldPath: 'metadata.name',
      });
    }
    const errors = validateObject(candidate);
    // The name as JSON without its quotes: one line whatever the client sent.
    const invalid = (path: string, message: string) =>
      new ApiError(
        ApiErrorCode.Invalid,
        `${kind.toLowerCase()}/${JSON.stringify(name).slice(1, -1)}: ${message}`,
        {
          fieldPath: path,
        },
      );
    if (errors.length > 0) throw invalid(errors[0].path, formatFieldError(errors[0]));
    // The record this master proposes carries this copy, and a leader applies it as is: it must
    // be what the other masters decode from the record's bytes.
    let copy: ApiObject;
    try {
      copy = canonicalJson(candidate as unknown as ApiObject);
    } catch (err) {
      if (err instanceof UnstorableJsonError) throw invalid(err.path, err.message);
      throw err;
    }
    return fillDefaults(copy);
  }

  /** Validates what `withGeneratedFields` added (a Job template label contradicting its uid). */
  private checkGenerated(obj: ApiObject): void {
    const errors = validateObject(obj);
    if (errors.length === 0) return;
    const shown = JSON.stringify(obj.metadata.name ?? '').slice(1, -1);
    throw new ApiError(
      ApiErrorCode.Invalid,
      `${obj.kind.toLowerCase()}/${shown}: ${formatFieldError(errors[0])}`,
      {
        fieldPath: errors[0].path,
      },
    );
  }

  private preconditionOf(obj: ApiObject): { resourceVersion?: string; uid?: string } | undefined {
    const m = obj.metadata;
    if (m.resourceVersion === undefined && m.uid === undefined) return undefined;
    return {
      ...(m.resourceVersion !== undefined && m.resourceVersion !== ''
        ? { resourceVersion: m.resourceVersion }
        : {}),
      ...(m.uid !== undefined && m.uid !== '' ? { uid: m.uid } : {}),
    };
  }

  private kind(kind: unknown): keyof typeof kindInfo {
    if (!isKnownKind(kind)) {
      throw new ApiError(
        ApiErrorCode.Invalid,
        `kind: unknown kind ${JSON.stringify(kind)} (known: ${Object.keys(kindInfo).join(', ')})`,
        { fieldPath: 'kind' },
      );
    }
    return kind;
  }

  private key(key: ObjectKey): CommandKey {
    const kind = this.kind(key?.kind);
    if (typeof key.name !== 'string' || key.name === '') {
      throw new ApiError(ApiErrorCode.Invalid, `${kind.toLowerCase()}: name: Required value`, {
        fieldPath: 'name',
      });
    }
    const namespace = kindInfo[kind].namespaced ? key.namespace || 'default' : '';
    return { kind, namespace, name: key.name };
  }

  private cmdKey(cmd: Command): CommandKey {
    if (cmd.op === 'delete' || cmd.op === 'bind') return cmd.key;
    const m = cmd.object.metadata;
    return { kind: cmd.object.kind, namespace: m.namespace ?? '', name: m.name ?? '' };
  }

  private parseLabels(text: string | undefined) {
    if (!text) return undefined;
    try {
      return parseLabelSelector(text);
    } catch (err) {
      if (err instanceof LabelSelectorError) {
        throw new ApiError(ApiErrorCode.Invalid, `labelSelector: ${err.message}`, {
          fieldPath: 'labelSelector',
        });
      }
      throw err;
    }
  }

  private parseFields(kind: string, text: string | undefined) {
    if (!text) return undefined;
    try {
      const selector = parseFieldSelector(text);
      checkFieldSelector(selector, kind);
      return selector;
    } catch (err) {
      if (err instanceof FieldSelectorError) {
        throw new ApiError(ApiErrorCode.Invalid, `fieldSelector: ${err.message}`, {
          fieldPath: 'fieldSelector',
        });
      }
      throw err;
    }
  }

  private randomSuffix(): string {
    let s = '';
    for (const b of pooledRandomBytes(GENERATED_SUFFIX_LENGTH)) {
      s += GENERATED_SUFFIX_ALPHABET[b % GENERATED_SUFFIX_ALPHABET.length];
    }
    return s;
  }
}

/** Random bytes drawn `RANDOM_POOL_BYTES` at a time: one system call per ~800 generated names, not one each. */
const RANDOM_POOL_BYTES = 4_096;
let randomPool = Buffer.alloc(0);
let randomPoolAt = 0;

function pooledRandomBytes(n: number): Uint8Array {
  if (randomPoolAt + n > randomPool.byteLength) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomPoolAt = 0;
  }
  const out = randomPool.subarray(randomPoolAt, randomPoolAt + n);
  randomPoolAt += n;
  return out;
}

/** A proposal on this master that was not placed at all (leadership lost first) or proven not committed. */
function notProposed(err: unknown): boolean {
  return (
    err instanceof NotLeaderError || err instanceof ProposalLostError || err instanceof ProposalDroppedError
  );
}

/** Any other failure of a write proposed on this master: a stop mid-write leaves its outcome unknown. */
function proposalFailure(err: unknown): ApiError {
  if (err instanceof HostStoppedError) {
    return new ApiError(
      ApiErrorCode.Timeout,
      'write outcome unknown: this master stopped while the write was pending',
    );
  }
  return toApiError(err);
}

/** Maps Raft and other failures to the API's typed errors. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof NotLeaderError || err instanceof LeaderWaitTimeoutError) {
    return new ApiError(ApiErrorCode.Unavailable, 'no leader: the masters have no quorum right now', {
      retryAfterMs: 500,
      cause: err,
    });
  }
  if (err instanceof ReadIndexTimeoutError) {
    return new ApiError(ApiErrorCode.Unavailable, 'read barrier timed out: no quorum right now', {
      retryAfterMs: 500,
      cause: err,
    });
  }
  if (err instanceof ProposalDroppedError || err instanceof ProposalLostError) {
    return new ApiError(ApiErrorCode.Unavailable, `write not accepted: ${err.message}; retry`, {
      retryAfterMs: 100,
      cause: err,
    });
  }
  if (err instanceof ResourceExhaustedError) {
    return new ApiError(ApiErrorCode.ResourceExhausted, err.message, { retryAfterMs: 200, cause: err });
  }
  if (err instanceof ProposalOutcomeUnknownError) {
    return new ApiError(ApiErrorCode.Timeout, `write outcome unknown: ${err.message}`, { cause: err });
  }
  if (err instanceof HostStoppedError) {
    return new ApiError(ApiErrorCode.Unavailable, 'master shutting down', { retryAfterMs: 100, cause: err });
  }
  return new ApiError(ApiErrorCode.Internal, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

/** The merge patch applied to `current`; a patch past the nesting limit is Invalid. */
function mergePatchOrInvalid(k: CommandKey, current: ApiObject, patch: unknown): Record<string, unknown> {
  try {
    return applyMergePatch(current, patch) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof MergePatchError)) throw err;
    throw new ApiError(ApiErrorCode.Invalid, `${describeKey(k)}: patch: ${err.message}`, {
      fieldPath: 'patch',
    });
  }
}

function isConnectFailure(err: unknown): boolean {
  const text =
    err instanceof Error ? `${err.message} ${String((err as { cause?: unknown }).cause ?? '')}` : '';
  return /ECONNREFUSED|No connection established|is unreachable/.test(text);
}

function describeErr(err: unknown): string {
  return err instanceof Error ? err.message : String(err ?? 'timed out');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

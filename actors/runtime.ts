/**
 * The one typed wrapper over nact 7.6.2 (see notes/nact.md). Every Coxswain actor goes through
 * here. It fixes nact's pitfalls:
 * - named actors only, names checked against nact's pattern; refs carry an incarnation so a
 *   stale ref never reaches a new actor of the same name;
 * - request/response with our own monotonically increasing request ids (never nact's query);
 * - every timer delay goes through {@link clampDelayMs} (nact wraps delays ≥ 2^31 ms to ~0);
 * - bounded fan-out: a parent holds at most `childrenMax` children, and {@link Registry} puts
 *   large sets of children under hashed bucket actors;
 * - explicit depth-first stop (nact's stop leaves descendants running);
 * - supervision is ours: a crash is answered only with restart (reset) or stop, never resume,
 *   with capped exponential backoff and a restart budget per window;
 * - bounded mailboxes with per-actor metrics; a process-level unhandledRejection handler.
 *
 * An actor's logic is pure: `(state, msg, self) => { state, effects }`. Effects are plain data
 * that the wrapper carries out, in order, after the step. The only impure hook is the optional
 * `run` of {@link ActorSpec}, which executes caller-defined I/O effects (awaited, one at a time,
 * so the actor still handles one message at a time).
 */

import nact from 'nact';

// ---------------------------------------------------------------------------------------------
// Errors

/** Stable codes of the expected actor failures. */
export const ActorErrorCode = {
  MailboxFull: 'ACTOR_MAILBOX_FULL',
  NotFound: 'ACTOR_NOT_FOUND',
  InvalidName: 'ACTOR_INVALID_NAME',
  NameTaken: 'ACTOR_NAME_TAKEN',
  ChildrenLimit: 'ACTOR_CHILDREN_LIMIT',
  AskTimeout: 'ACTOR_ASK_TIMEOUT',
  SystemStopped: 'ACTOR_SYSTEM_STOPPED',
} as const;
export type ActorErrorCode = (typeof ActorErrorCode)[keyof typeof ActorErrorCode];

/** Base class of the expected actor failures: a `name`, a stable `code`, and the actor path. */
export class ActorError extends Error {
  readonly code: ActorErrorCode;
  readonly path: string;
  constructor(code: ActorErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.path = path;
    this.name = new.target.name;
  }
}

/** A tell was refused because the target's mailbox already holds `mailboxMessagesMax` messages. */
export class MailboxFullError extends ActorError {
  readonly mailboxMessagesMax: number;
  constructor(path: string, mailboxMessagesMax: number) {
    super(ActorErrorCode.MailboxFull, path, `actor ${path}: mailbox full (${mailboxMessagesMax} messages)`);
    this.mailboxMessagesMax = mailboxMessagesMax;
  }
}

/** The target actor is stopped, was never spawned, or the ref names an older incarnation. */
export class ActorNotFoundError extends ActorError {
  constructor(path: string) {
    super(ActorErrorCode.NotFound, path, `actor ${path}: stopped or never existed`);
  }
}

/** An ask got no reply within its timeout. The message is not cancelled. */
export class AskTimeoutError extends ActorError {
  readonly timeoutMs: number;
  constructor(path: string, timeoutMs: number) {
    super(ActorErrorCode.AskTimeout, path, `actor ${path}: no reply within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

// ---------------------------------------------------------------------------------------------
// Time

/** setTimeout's delay is a signed 32-bit integer; nact and Node misbehave at or above 2^31 ms. */
export const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

/**
 * The one clamp used for every timer in this module: a finite, non-negative integer delay no
 * greater than `maxMs`, and always below 2^31 ms.
 */
export function clampDelayMs(delayMs: number, maxMs: number = TIMER_DELAY_MS_MAX): number {
  const cap = Math.min(Math.max(0, Math.floor(maxMs)), TIMER_DELAY_MS_MAX);
  if (!Number.isFinite(delayMs)) return delayMs > 0 ? cap : 0;
  return Math.min(Math.max(0, Math.floor(delayMs)), cap);
}

function setClampedTimeout(fn: () => void, delayMs: number, maxMs?: number): NodeJS.Timeout {
  const handle = setTimeout(fn, clampDelayMs(delayMs, maxMs));
  handle.unref?.();
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Names and refs

/** nact's allowed actor name pattern. */
export const ACTOR_NAME_PATTERN = /^[a-z0-9-$_.+!*'(),]+$/i;
const ACTOR_NAME_CHARS_MAX = 253;

/** True if `name` can be used as an actor name. */
export function isValidActorName(name: string): boolean {
  return name.length > 0 && name.length <= ACTOR_NAME_CHARS_MAX && ACTOR_NAME_PATTERN.test(name);
}

/**
 * Turns a key such as `ns/name` or `kind/ns/name` into a valid actor name, injectively: segments
 * are joined with `+`, and any character outside `[A-Za-z0-9._-]` is written as `$` plus its
 * UTF-16 code in hex and a `$` (so `a/b` → `a+b`, `a+b` → `a$2b$b`).
 */
export function actorNameFromKey(key: string): string {
  return key
    .split('/')
    .map((segment) => segment.replace(/[^A-Za-z0-9._-]/g, (ch) => `$${ch.charCodeAt(0).toString(16)}$`))
    .join('+');
}

declare const messageBrand: unique symbol;
declare const responseBrand: unique symbol;

/** Untyped address of an actor: its path plus the incarnation it was spawned as. */
export interface UntypedActorRef {
  readonly path: string;
  readonly incarnation: number;
}

/**
 * A typed actor address. The brand is invariant in `M`, so refs of different message types
 * cannot be mixed (unlike nact's phantom `Ref<T>`).
 */
export interface ActorRef<M> extends UntypedActorRef {
  readonly [messageBrand]: (msg: M) => M;
}

/** Correlates one ask with its reply; `R` is the type of the expected reply value. */
export type RequestId<R> = number & { readonly [responseBrand]: (value: R) => R };

/**
 * The reply type of a message union, by convention from its `replyTo: RequestId<R>` field;
 * {@link ActorSystem.ask} uses it so callers need not name `R`.
 */
export type ReplyOf<M> = M extends { readonly replyTo: RequestId<infer R> } ? R : never;

/** The request messages of `M` without their `replyTo`, which {@link ActorSystem.ask} fills in. */
export type RequestOf<M> = M extends { readonly replyTo: RequestId<infer _R> } ? Omit<M, 'replyTo'> : never;

/** `T`, but not a site for inferring `T` (so a ref, not a message literal, fixes the type). */
type Exact<T> = [T][T extends unknown ? 0 : never];

// ---------------------------------------------------------------------------------------------
// Effects

export type SendEffect = { readonly kind: 'send'; readonly to: UntypedActorRef; readonly msg: unknown };
export type ReplyEffect = { readonly kind: 'reply'; readonly requestId: number; readonly value: unknown };
export type StopEffect = { readonly kind: 'stop' };
export type SpawnEffect<M> = {
  readonly kind: 'spawn';
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: the child's state/message types are erased here; `spawn()` checks them.
  readonly spec: ActorSpec<any, any, any>;
  readonly options: SpawnOptions;
  /** Message to send to self with the new child's ref (refs carry an incarnation, so they cannot be computed). */
  // biome-ignore lint/suspicious/noExplicitAny: see spec.
  readonly notify: ((ref: ActorRef<any>) => M) | undefined;
};
export type TimerEffect<M> = {
  readonly kind: 'timer';
  readonly key: string;
  readonly afterMs: number;
  readonly msg: M;
};
export type CancelTimerEffect = { readonly kind: 'cancelTimer'; readonly key: string };
export type RunEffect<E> = { readonly kind: 'run'; readonly effect: E };

/** Everything a step may ask the wrapper to do. `E` is the caller's own I/O effect type. */
export type Effect<M, E = never> =
  | SendEffect
  | ReplyEffect
  | StopEffect
  | SpawnEffect<M>
  | TimerEffect<M>
  | CancelTimerEffect
  | RunEffect<E>;

/** The result of one pure step. */
export interface Step<S, M, E = never> {
  readonly state: S;
  readonly effects: readonly Effect<M, E>[];
}

/** Sends `msg` to `to` (refused silently, and counted, if the target is full or gone). */
export function send<T>(to: ActorRef<T>, msg: Exact<T>): SendEffect {
  return { kind: 'send', to, msg };
}
/** Resolves the ask that carried `requestId`. Replies to expired asks are ignored. */
export function reply<R>(requestId: RequestId<R>, value: R): ReplyEffect {
  return { kind: 'reply', requestId, value };
}
/** Stops this actor (depth-first) after the step's earlier effects. */
export const stopSelf: StopEffect = { kind: 'stop' };
/** Sets (or replaces) the timer `key`: after `afterMs`, `msg` is sent to self. */
export function timer<M>(key: string, afterMs: number, msg: M): TimerEffect<M> {
  return { kind: 'timer', key, afterMs, msg };
}
export function cancelTimer(key: string): CancelTimerEffect {
  return { kind: 'cancelTimer', key };
}
/** Hands `effect` to the actor's `run` (caller-defined I/O). */
export function run<E>(effect: E): RunEffect<E> {
  return { kind: 'run', effect };
}
/** Spawns a child of this actor; if `notify` is given, its result is sent to self with the child's ref. */
export function spawn<CS, CM, CE, M>(
  name: string,
  spec: ActorSpec<CS, CM, CE>,
  notify?: (ref: ActorRef<CM>) => M,
  options: SpawnOptions = {},
): SpawnEffect<M> {
  return { kind: 'spawn', name, spec, options, notify: notify as SpawnEffect<M>['notify'] };
}

// ---------------------------------------------------------------------------------------------
// Specs and options

/** What an actor is: its initial state, its pure logic, and optional hooks. */
export interface ActorSpec<S, M, E = never> {
  /** Initial state; also the state after a restart. */
  init: () => S;
  /** Pure logic. A throw is a crash, handled by the supervision policy. */
  receive: (state: S, msg: M, self: ActorRef<M>) => Step<S, M, E>;
  /**
   * Carries out a `run` effect (I/O). Awaited before the next effect and the next message.
   * A returned message is sent to self. A rejection is a crash.
   */
  run?: (effect: E, self: ActorRef<M>) => Promise<M | undefined> | M | undefined;
  /** Called once when the actor stops (after its descendants). Must not throw; a throw is logged. */
  onStop?: (state: S) => void;
}

/** How a crashing actor is treated. Restart = reset state, stop children, cancel timers. */
export interface RestartPolicy {
  restartBackoffMsMin: number;
  restartBackoffMsMax: number;
  /** Restarts allowed within `restartWindowMs`; one more crash stops the actor and reports. */
  restartsMax: number;
  restartWindowMs: number;
}

/** What a crash came to. */
export interface CrashReport {
  readonly path: string;
  readonly error: unknown;
  readonly crashes: number;
  readonly decision: 'restart' | 'stop';
  /** Delay before the next message, when restarting. */
  readonly backoffMs: number;
}

export interface SpawnOptions {
  mailboxMessagesMax?: number;
  restart?: Partial<RestartPolicy>;
  /** Called when the actor gives up after `restartsMax` (after it has been stopped). */
  onGiveUp?: (report: CrashReport) => void;
}

export interface ActorSystemConfig {
  /** Default bound on queued messages per actor. */
  mailboxMessagesMax?: number;
  /** Bound on direct children of any actor (use a {@link Registry} for more). */
  childrenMax?: number;
  /** Upper bound on any ask timeout. */
  askTimeoutMsMax?: number;
  restart?: Partial<RestartPolicy>;
  /** The one clock (used for restart windows). */
  nowMs?: () => number;
  log?: (line: string, detail?: unknown) => void;
  /** Called on every crash (after the decision). */
  onCrash?: (report: CrashReport) => void;
  /** Called on an unhandled promise rejection anywhere in the process. Default: log. */
  onUnhandledRejection?: (reason: unknown) => void;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  restartBackoffMsMin: 10,
  restartBackoffMsMax: 10_000,
  restartsMax: 5,
  restartWindowMs: 60_000,
};
const MAILBOX_MESSAGES_MAX_DEFAULT = 10_000;
const CHILDREN_MAX_DEFAULT = 1_000;
const ASK_TIMEOUT_MS_MAX_DEFAULT = 10 * 60_000;

/** Backoff before restart number `restart` (1-based): min·2^(n−1), capped at max. */
export function restartBackoffMs(
  policy: Pick<RestartPolicy, 'restartBackoffMsMin' | 'restartBackoffMsMax'> & Partial<RestartPolicy>,
  restart: number,
): number {
  const exp = Math.min(Math.max(0, restart - 1), 30);
  return Math.min(policy.restartBackoffMsMax, policy.restartBackoffMsMin * 2 ** exp);
}

// ---------------------------------------------------------------------------------------------
// Metrics

export interface ActorMetrics {
  readonly path: string;
  /** Messages accepted but not yet started. */
  readonly depth: number;
  readonly processed: number;
  /** Tells refused because the mailbox was full. */
  readonly dropped: number;
  readonly crashes: number;
  readonly restarts: number;
  readonly children: number;
}

export interface SystemMetrics {
  readonly actors: number;
  readonly deadLetters: number;
  readonly droppedTotal: number;
  readonly crashesTotal: number;
  readonly unhandledRejections: number;
}

// ---------------------------------------------------------------------------------------------
// nact, typed minimally (its own typings are phantom and incomplete)

interface NactRef {
  readonly path: unknown;
  readonly name: string;
}
interface NactDecisions {
  stop: symbol;
  stopChild: symbol;
  /** nact's path object of the crashing actor (its toString names it). */
  path?: unknown;
}
interface NactApi {
  start(options: { name: string }): NactRef;
  spawn(
    parent: NactRef,
    f: (state: undefined, msg: unknown) => Promise<undefined> | undefined,
    name: string,
    properties: { onCrash: (msg: unknown, err: unknown, ctx: NactDecisions, child?: NactRef) => symbol },
  ): NactRef;
  dispatch(ref: NactRef, msg: unknown): void;
  stop(ref: NactRef): void;
}
const nactApi = nact as unknown as NactApi;

// ---------------------------------------------------------------------------------------------
// Process-level rejection handler (installed once per process)

const liveSystems = new Set<ActorSystem>();
let rejectionHandlerInstalled = false;

function installRejectionHandler(): void {
  if (rejectionHandlerInstalled) return;
  rejectionHandlerInstalled = true;
  process.on('unhandledRejection', function coxswainActorsUnhandledRejection(reason: unknown) {
    for (const system of liveSystems) system.noteUnhandledRejection(reason);
    if (liveSystems.size === 0) console.error('unhandled rejection (no actor system running)', reason);
  });
}

// ---------------------------------------------------------------------------------------------
// Cells: our record of each actor

interface Envelope {
  readonly msg: unknown;
  /**
   * Set instead of a message: the unfinished step of a message handled in the caller's turn
   * (`askInline`), which the mailbox waits for before its next message.
   */
  readonly gate?: Promise<undefined>;
}

interface PendingAsk {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

/** Where an inline ask's reply lands when its step replies in the caller's turn. */
interface InlineReply {
  readonly requestId: number;
  replied: boolean;
  value: unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: cells hold actors of every type; the typed surface is ActorRef<M>.
type AnySpec = ActorSpec<any, any, any>;

/**
 * One per actor, so its empty parts are allocated on first use: most actors (one per API
 * object) never get children, timers or restarts.
 */
class Cell {
  private childMap: Map<string, Cell> | undefined;
  private timerMap: Map<string, NodeJS.Timeout> | undefined;
  private restartTimes: number[] | undefined;
  state: unknown;
  depth = 0;
  /** A step is running (or awaiting its `run` effects or a restart's backoff). */
  busy = false;
  processed = 0;
  dropped = 0;
  crashes = 0;
  restarts = 0;
  stopped = false;
  get children(): Map<string, Cell> {
    this.childMap ??= new Map();
    return this.childMap;
  }
  get timers(): Map<string, NodeJS.Timeout> {
    this.timerMap ??= new Map();
    return this.timerMap;
  }
  get restartTimesMs(): number[] {
    this.restartTimes ??= [];
    return this.restartTimes;
  }
  get childCount(): number {
    return this.childMap?.size ?? 0;
  }
  backoff: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  readonly ref: UntypedActorRef;
  /**
   * The actor's nact process: its mailbox. Created the first time a message must wait in it
   * (see {@link ActorSystem.mailboxOf}); an actor whose messages are all handled in the
   * caller's turn (`askInline` to an idle actor: the object actors) never needs one.
   */
  nactRef: NactRef | undefined;

  constructor(
    readonly name: string,
    readonly parent: Cell | undefined,
    readonly spec: AnySpec,
    readonly mailboxMessagesMax: number,
    readonly policy: RestartPolicy,
    readonly onGiveUp: ((report: CrashReport) => void) | undefined,
    path: string,
    incarnation: number,
  ) {
    this.ref = { path, incarnation };
    this.state = spec.init();
  }

  clearTimers(): void {
    if (this.timerMap !== undefined) {
      for (const handle of this.timerMap.values()) clearTimeout(handle);
      this.timerMap.clear();
    }
    if (this.backoff !== undefined) {
      clearTimeout(this.backoff.timer);
      this.backoff.resolve();
      this.backoff = undefined;
    }
  }
}

const ROOT_SPEC: AnySpec = { init: () => undefined, receive: (state) => ({ state, effects: [] }) };
const GROUP_SPEC = ROOT_SPEC;

let systemsStarted = 0;

/** A running actor system. Create with {@link startActorSystem}. */
export class ActorSystem {
  private readonly nactSystem: NactRef;
  private readonly root: Cell;
  private readonly cells = new Map<string, Cell>();
  private readonly pending = new Map<number, PendingAsk>();
  /** The inline ask whose step is running (see {@link askInline}). */
  private inlineReply: InlineReply | undefined;
  private nextRequestId = 1;
  private nextIncarnation = 1;
  private running = true;
  private deadLetters = 0;
  private droppedTotal = 0;
  private crashesTotal = 0;
  private unhandledRejections = 0;
  private readonly mailboxMessagesMax: number;
  private readonly childrenMax: number;
  private readonly askTimeoutMsMax: number;
  private readonly restartPolicy: RestartPolicy;
  private readonly nowMs: () => number;
  private readonly log: (line: string, detail?: unknown) => void;

  /** Shared by every spawn (one object, not one per actor: there may be 100k actors). */
  private readonly nactSpawnOptions = {
    // Our handler never throws, so nact's supervision should never run; if it does, stop.
    onCrash: (_msg: unknown, err: unknown, ctx: NactDecisions, child?: NactRef) => {
      this.log(`actor ${String(ctx.path ?? '?')}: unexpected nact crash`, err);
      return child === undefined ? ctx.stop : ctx.stopChild;
    },
  };

  constructor(private readonly config: ActorSystemConfig = {}) {
    this.mailboxMessagesMax = config.mailboxMessagesMax ?? MAILBOX_MESSAGES_MAX_DEFAULT;
    this.childrenMax = config.childrenMax ?? CHILDREN_MAX_DEFAULT;
    this.askTimeoutMsMax = config.askTimeoutMsMax ?? ASK_TIMEOUT_MS_MAX_DEFAULT;
    this.restartPolicy = { ...DEFAULT_RESTART_POLICY, ...config.restart };
    this.nowMs = config.nowMs ?? Date.now;
    this.log = config.log ?? ((line, detail) => console.error(line, detail ?? ''));
    systemsStarted += 1;
    const name = `coxswain-actors-${process.pid}-${systemsStarted}`;
    this.nactSystem = nactApi.start({ name });
    this.root = new Cell('', undefined, ROOT_SPEC, 0, this.restartPolicy, undefined, '', 0);
    this.root.nactRef = this.nactSystem;
  }

  // -- spawning -------------------------------------------------------------------------------

  /** Spawns a top-level actor. Throws {@link ActorError} on an invalid or taken name or a full parent. */
  spawn<S, M, E = never>(name: string, spec: ActorSpec<S, M, E>, options: SpawnOptions = {}): ActorRef<M> {
    return this.spawnUnder(this.root, name, spec as AnySpec, options).ref as ActorRef<M>;
  }

  /** Spawns a direct child of `parent` (at most `childrenMax` per parent; use a {@link Registry} for more). */
  spawnChild<S, M, E = never>(
    parent: UntypedActorRef,
    name: string,
    spec: ActorSpec<S, M, E>,
    options: SpawnOptions = {},
  ): ActorRef<M> {
    const cell = this.lookup(parent);
    if (cell === undefined) throw new ActorNotFoundError(parent.path);
    return this.spawnUnder(cell, name, spec as AnySpec, options).ref as ActorRef<M>;
  }

  /** Creates a bucketed registry of children under `parent` (or at top level). */
  createRegistry(name: string, options: RegistryOptions = {}, parent?: UntypedActorRef): Registry {
    const parentCell = parent === undefined ? this.root : this.lookup(parent);
    if (parentCell === undefined) throw new ActorNotFoundError(parent?.path ?? '');
    const group = this.spawnUnder(parentCell, name, GROUP_SPEC, {});
    return new Registry(this, group.ref, options);
  }

  private spawnUnder(parent: Cell, name: string, spec: AnySpec, options: SpawnOptions): Cell {
    const path = `${parent.ref.path}/${name}`;
    if (!this.running)
      throw new ActorError(ActorErrorCode.SystemStopped, path, `actor ${path}: system stopped`);
    if (!isValidActorName(name)) {
      throw new ActorError(
        ActorErrorCode.InvalidName,
        path,
        `actor name ${JSON.stringify(name)}: must match ${ACTOR_NAME_PATTERN}`,
      );
    }
    if (parent.children.has(name))
      throw new ActorError(ActorErrorCode.NameTaken, path, `actor ${path}: name taken`);
    if (parent.children.size >= this.childrenMax) {
      throw new ActorError(
        ActorErrorCode.ChildrenLimit,
        path,
        `actor ${parent.ref.path || '/'}: ${this.childrenMax} children already`,
      );
    }
    const policy =
      options.restart === undefined ? this.restartPolicy : { ...this.restartPolicy, ...options.restart };
    const mailboxMax = options.mailboxMessagesMax ?? this.mailboxMessagesMax;
    const cell = new Cell(
      name,
      parent,
      spec,
      mailboxMax,
      policy,
      options.onGiveUp,
      path,
      this.nextIncarnation++,
    );
    parent.children.set(name, cell);
    this.cells.set(path, cell);
    return cell;
  }

  // -- messaging ------------------------------------------------------------------------------

  /**
   * Queues `msg` for `to`. Returns false (and counts) if the mailbox is full or the actor is gone.
   */
  tell<M>(to: ActorRef<M>, msg: Exact<M>): boolean {
    return this.tellUntyped(to, msg) === undefined;
  }

  /** Like {@link tell} but throws {@link MailboxFullError} or {@link ActorNotFoundError}. */
  tellOrThrow<M>(to: ActorRef<M>, msg: Exact<M>): void {
    const error = this.tellUntyped(to, msg);
    if (error !== undefined) throw error;
  }

  private tellUntyped(to: UntypedActorRef, msg: unknown): ActorError | undefined {
    const cell = this.lookup(to);
    if (cell === undefined) {
      this.deadLetters += 1;
      return new ActorNotFoundError(to.path);
    }
    if (cell.depth >= cell.mailboxMessagesMax) {
      cell.dropped += 1;
      this.droppedTotal += 1;
      return new MailboxFullError(to.path, cell.mailboxMessagesMax);
    }
    cell.depth += 1;
    const envelope: Envelope = { msg };
    nactApi.dispatch(this.mailboxOf(cell), envelope);
    return undefined;
  }

  /**
   * The nact actor that queues `cell`'s messages, spawned under its parent's (recursively) the
   * first time one is needed. Until then the actor is our cell alone: nact's actor (about
   * 1.2 KB of heap, a spawn, and a stop with its own turn) would only ever sit idle for an
   * actor that is always asked inline while idle.
   */
  private mailboxOf(cell: Cell): NactRef {
    if (cell.nactRef !== undefined) return cell.nactRef;
    // Only the root has no parent, and its nact actor is the system.
    const nactRef = nactApi.spawn(
      this.mailboxOf(cell.parent ?? this.root),
      (_state, envelope) => this.handle(cell, envelope as Envelope),
      cell.name,
      this.nactSpawnOptions,
    );
    cell.nactRef = nactRef;
    return nactRef;
  }

  /**
   * Sends `{ ...request, replyTo: requestId }` to `to` and resolves with the value of the
   * matching `reply(requestId, value)`. Request ids are our own, increasing by one per ask.
   * Rejects with {@link AskTimeoutError} after `timeoutMs` (clamped to `askTimeoutMsMax`), or at
   * once if the tell is refused.
   */
  ask<M, Q extends RequestOf<M>>(
    to: ActorRef<M>,
    request: Q,
    timeoutMs: number,
  ): Promise<ReplyOf<Extract<M, Q>>> {
    type R = ReplyOf<Extract<M, Q>>;
    const requestId = this.nextRequestId++ as RequestId<R>;
    return new Promise<R>((resolve, reject) => {
      const handle = this.askTimer(requestId, to, timeoutMs, reject);
      this.pending.set(requestId, { resolve: resolve as (value: unknown) => void, reject, timer: handle });
      const error = this.tellUntyped(to, { ...request, replyTo: requestId });
      if (error !== undefined) {
        clearTimeout(handle);
        this.pending.delete(requestId);
        reject(error);
      }
    });
  }

  /**
   * Like {@link ask}, but an idle actor (nothing in its mailbox, no step running, not in a
   * restart's backoff) handles the request in the caller's turn, and its reply is returned as
   * a value, not a promise. The actor's guarantees are the same: one message at a time, in
   * order (a busy actor gets the request through its mailbox, as `ask` sends it), and a step
   * left unfinished (async `run` effects, a crash's backoff) holds the mailbox until it ends.
   * What it saves is nact's turn per message (a `setImmediate`, a context, a promise) and the
   * ask's timer: the object actors apply every committed command this way.
   */
  askInline<M, Q extends RequestOf<M>>(
    to: ActorRef<M>,
    request: Q,
    timeoutMs: number,
  ): ReplyOf<Extract<M, Q>> | Promise<ReplyOf<Extract<M, Q>>> {
    type R = ReplyOf<Extract<M, Q>>;
    const cell = this.lookup(to);
    if (cell === undefined || !this.running || cell.depth > 0 || cell.busy || cell.backoff !== undefined) {
      return this.ask(to, request, timeoutMs);
    }
    const requestId = this.nextRequestId++ as RequestId<R>;
    // The step's reply is caught by `settle` in this slot: no pending entry, no closures.
    const slot: InlineReply = { requestId, replied: false, value: undefined };
    const outer = this.inlineReply;
    this.inlineReply = slot;
    cell.depth += 1;
    let unfinished: Promise<undefined> | undefined;
    try {
      unfinished = this.handle(cell, { msg: { ...request, replyTo: requestId } });
    } finally {
      this.inlineReply = outer;
    }
    if (unfinished !== undefined) {
      // The mailbox holds the actor's next messages until this step ends.
      cell.depth += 1;
      nactApi.dispatch(this.mailboxOf(cell), { msg: undefined, gate: unfinished } satisfies Envelope);
    }
    if (slot.replied) return slot.value as R;
    // No reply within the step (it comes from a `run` effect, or the actor crashed): wait
    // for it as an ask waits.
    return new Promise<R>((resolve, reject) => {
      this.pending.set(requestId, {
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: this.askTimer(requestId, to, timeoutMs, reject),
      });
    });
  }

  /** The timer that gives up on ask `requestId` after `timeoutMs` (clamped to `askTimeoutMsMax`). */
  private askTimer(
    requestId: number,
    to: UntypedActorRef,
    timeoutMs: number,
    reject: (error: unknown) => void,
  ): NodeJS.Timeout {
    const boundedMs = clampDelayMs(timeoutMs, this.askTimeoutMsMax);
    return setClampedTimeout(() => {
      this.pending.delete(requestId);
      reject(new AskTimeoutError(to.path, boundedMs));
    }, boundedMs);
  }

  private settle(requestId: number, value: unknown): void {
    const inline = this.inlineReply;
    if (inline !== undefined && inline.requestId === requestId && !inline.replied) {
      inline.replied = true;
      inline.value = value;
      return;
    }
    const pending = this.pending.get(requestId);
    if (pending === undefined) return;
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.resolve(value);
  }

  private lookup(ref: UntypedActorRef): Cell | undefined {
    const cell = this.cells.get(ref.path);
    return cell !== undefined && cell.ref.incarnation === ref.incarnation && !cell.stopped ? cell : undefined;
  }

  // -- handling -------------------------------------------------------------------------------

  private handle(cell: Cell, envelope: Envelope): Promise<undefined> | undefined {
    if (cell.stopped) return undefined;
    cell.depth -= 1;
    if (envelope.gate !== undefined) return envelope.gate;
    cell.busy = true;
    const unfinished = this.handleStep(cell, envelope);
    if (unfinished === undefined) {
      cell.busy = false;
      return undefined;
    }
    return unfinished.finally(() => {
      cell.busy = false;
    });
  }

  private handleStep(cell: Cell, envelope: Envelope): Promise<undefined> | undefined {
    let step: Step<unknown, unknown, unknown>;
    try {
      step = cell.spec.receive(cell.state, envelope.msg, cell.ref as ActorRef<unknown>);
    } catch (error) {
      return this.crash(cell, error);
    }
    cell.state = step.state;
    cell.processed += 1;
    for (let i = 0; i < step.effects.length; i += 1) {
      const effect = step.effects[i] as Effect<unknown, unknown>;
      if (effect.kind === 'run') return this.runEffects(cell, step.effects, i);
      try {
        this.applyEffect(cell, effect);
      } catch (error) {
        return this.crash(cell, error);
      }
      if (cell.stopped) return undefined;
    }
    return undefined;
  }

  /** Continues a step's effects from index `from`, awaiting each `run`. */
  private async runEffects(
    cell: Cell,
    effects: readonly Effect<unknown, unknown>[],
    from: number,
  ): Promise<undefined> {
    for (let i = from; i < effects.length; i += 1) {
      if (cell.stopped) return undefined;
      const effect = effects[i] as Effect<unknown, unknown>;
      try {
        if (effect.kind === 'run') {
          if (cell.spec.run === undefined)
            throw new Error(`actor ${cell.ref.path}: run effect without a runner`);
          const next = await cell.spec.run(effect.effect, cell.ref as ActorRef<unknown>);
          if (next !== undefined && !cell.stopped) this.tellUntyped(cell.ref, next);
        } else {
          this.applyEffect(cell, effect);
        }
      } catch (error) {
        if (!cell.stopped) await this.crash(cell, error);
        return undefined;
      }
    }
    return undefined;
  }

  private applyEffect(cell: Cell, effect: Exclude<Effect<unknown, unknown>, RunEffect<unknown>>): void {
    switch (effect.kind) {
      case 'send':
        this.tellUntyped(effect.to, effect.msg);
        return;
      case 'reply':
        this.settle(effect.requestId, effect.value);
        return;
      case 'stop':
        this.stopCell(cell);
        return;
      case 'spawn': {
        const child = this.spawnUnder(cell, effect.name, effect.spec, effect.options);
        if (effect.notify !== undefined)
          this.tellUntyped(cell.ref, effect.notify(child.ref as ActorRef<unknown>));
        return;
      }
      case 'timer':
        this.setTimer(cell, effect.key, effect.afterMs, effect.msg);
        return;
      case 'cancelTimer': {
        const handle = cell.timers.get(effect.key);
        if (handle !== undefined) clearTimeout(handle);
        cell.timers.delete(effect.key);
        return;
      }
      default: {
        const never: never = effect;
        throw new Error(`unknown effect ${JSON.stringify(never)}`);
      }
    }
  }

  private setTimer(cell: Cell, key: string, afterMs: number, msg: unknown): void {
    const previous = cell.timers.get(key);
    if (previous !== undefined) clearTimeout(previous);
    const handle = setClampedTimeout(() => {
      cell.timers.delete(key);
      if (!cell.stopped) this.tellUntyped(cell.ref, msg);
    }, afterMs);
    cell.timers.set(key, handle);
  }

  // -- supervision ----------------------------------------------------------------------------

  /**
   * A crash is answered with restart (reset state, stop children, cancel timers, then pause the
   * mailbox for the backoff) or, past the restart budget, with stop. Never resume.
   */
  private crash(cell: Cell, error: unknown): Promise<undefined> | undefined {
    cell.crashes += 1;
    this.crashesTotal += 1;
    const policy = cell.policy;
    const now = this.nowMs();
    while (
      cell.restartTimesMs.length > 0 &&
      now - (cell.restartTimesMs[0] as number) >= policy.restartWindowMs
    ) {
      cell.restartTimesMs.shift();
    }
    if (cell.restartTimesMs.length >= policy.restartsMax) {
      const report: CrashReport = {
        path: cell.ref.path,
        error,
        crashes: cell.crashes,
        decision: 'stop',
        backoffMs: 0,
      };
      this.log(`actor ${cell.ref.path}: crashed ${cell.crashes} times, giving up`, error);
      this.stopCell(cell);
      this.notify(() => this.config.onCrash?.(report));
      this.notify(() => cell.onGiveUp?.(report));
      return undefined;
    }
    cell.restartTimesMs.push(now);
    cell.restarts += 1;
    const backoffMs = restartBackoffMs(policy, cell.restartTimesMs.length);
    const report: CrashReport = {
      path: cell.ref.path,
      error,
      crashes: cell.crashes,
      decision: 'restart',
      backoffMs,
    };
    this.notify(() => this.config.onCrash?.(report));
    for (const child of [...(cell.childCount > 0 ? cell.children.values() : [])]) this.stopCell(child);
    cell.clearTimers();
    try {
      cell.state = cell.spec.init();
    } catch (initError) {
      this.log(`actor ${cell.ref.path}: init failed on restart`, initError);
      this.stopCell(cell);
      return undefined;
    }
    return new Promise<undefined>((resolve) => {
      const done = () => resolve(undefined);
      cell.backoff = { timer: setClampedTimeout(done, backoffMs), resolve: done };
    }).then(() => {
      cell.backoff = undefined;
      return undefined;
    });
  }

  /** Runs a caller hook; a throw is logged, never allowed to escape into nact. */
  private notify(hook: () => void): void {
    try {
      hook();
    } catch (error) {
      this.log('actor hook threw', error);
    }
  }

  // -- stopping -------------------------------------------------------------------------------

  /** Stops `ref` and all its descendants, depth-first. Returns false if it was not running. */
  stop(ref: UntypedActorRef): boolean {
    const cell = this.lookup(ref);
    if (cell === undefined) return false;
    this.stopCell(cell);
    return true;
  }

  private stopCell(cell: Cell): void {
    if (cell.stopped) return;
    cell.stopped = true;
    for (const child of [...(cell.childCount > 0 ? cell.children.values() : [])]) this.stopCell(child);
    cell.clearTimers();
    this.notify(() => cell.spec.onStop?.(cell.state));
    cell.parent?.children.delete(cell.name);
    this.cells.delete(cell.ref.path);
    if (cell.nactRef !== undefined) nactApi.stop(cell.nactRef);
  }

  /** Stops every actor depth-first and rejects outstanding asks. Idempotent. */
  async shutdown(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const child of [...this.root.children.values()]) this.stopCell(child);
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ActorError(ActorErrorCode.SystemStopped, '', 'actor system stopped'));
      this.pending.delete(id);
    }
    nactApi.stop(this.nactSystem);
    liveSystems.delete(this);
    // Let nact's queued afterStop callbacks (setImmediate) run.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  // -- metrics --------------------------------------------------------------------------------

  /** True while `ref`'s incarnation runs (what `actorMetrics` tells, without building them). */
  isRunning(ref: UntypedActorRef): boolean {
    return this.lookup(ref) !== undefined;
  }

  /** Direct children of `ref` (0 if it is not running). */
  childCountOf(ref: UntypedActorRef): number {
    return this.lookup(ref)?.childCount ?? 0;
  }

  /** Per-actor metrics of `ref`, or undefined if it is not running. */
  actorMetrics(ref: UntypedActorRef): ActorMetrics | undefined {
    const cell = this.lookup(ref);
    return cell === undefined ? undefined : cellMetrics(cell);
  }

  /** Per-actor metrics of every running actor. */
  metrics(): ActorMetrics[] {
    return [...this.cells.values()].map(cellMetrics);
  }

  systemMetrics(): SystemMetrics {
    return {
      actors: this.cells.size,
      deadLetters: this.deadLetters,
      droppedTotal: this.droppedTotal,
      crashesTotal: this.crashesTotal,
      unhandledRejections: this.unhandledRejections,
    };
  }

  /** Number of asks awaiting a reply. */
  get pendingAsks(): number {
    return this.pending.size;
  }

  /** The nact system name (for diagnostics and tests that inspect nact). */
  get nactSystemName(): string {
    return this.nactSystem.name;
  }

  /** @internal Called by the process-level handler. */
  noteUnhandledRejection(reason: unknown): void {
    this.unhandledRejections += 1;
    if (this.config.onUnhandledRejection !== undefined)
      this.notify(() => this.config.onUnhandledRejection?.(reason));
    else this.log('unhandled rejection', reason);
  }
}

function cellMetrics(cell: Cell): ActorMetrics {
  return {
    path: cell.ref.path,
    depth: cell.depth,
    processed: cell.processed,
    dropped: cell.dropped,
    crashes: cell.crashes,
    restarts: cell.restarts,
    children: cell.childCount,
  };
}

// ---------------------------------------------------------------------------------------------
// Registry: bucketed children

export interface RegistryOptions {
  bucketsCount?: number;
  bucketChildrenMax?: number;
}

/** FNV-1a, 32-bit. */
export function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i += 1) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Many children of one logical parent, placed under `bucketsCount` bucket actors by a hash of
 * their name, so no nact parent holds more than `bucketChildrenMax` children (nact copies a
 * parent's child map on every message). Lookup by name is O(1).
 */
export class Registry {
  private readonly buckets = new Map<number, UntypedActorRef>();
  private readonly members = new Map<string, UntypedActorRef>();
  readonly bucketsCount: number;
  readonly bucketChildrenMax: number;

  constructor(
    private readonly system: ActorSystem,
    readonly ref: UntypedActorRef,
    options: RegistryOptions,
  ) {
    this.bucketsCount = options.bucketsCount ?? 64;
    this.bucketChildrenMax = Math.min(
      options.bucketChildrenMax ?? CHILDREN_MAX_DEFAULT,
      CHILDREN_MAX_DEFAULT,
    );
  }

  /** Spawns `name` in its bucket. Throws {@link ActorError} (`ACTOR_CHILDREN_LIMIT`) if the bucket is full. */
  spawn<S, M, E = never>(name: string, spec: ActorSpec<S, M, E>, options: SpawnOptions = {}): ActorRef<M> {
    const index = hashName(name) % this.bucketsCount;
    let bucket = this.buckets.get(index);
    if (bucket === undefined || !this.system.isRunning(bucket)) {
      bucket = this.system.spawnChild(this.ref, `bucket-${index}`, GROUP_SPEC);
      this.buckets.set(index, bucket);
    }
    if (this.system.childCountOf(bucket) >= this.bucketChildrenMax) {
      const path = `${bucket.path}/${name}`;
      throw new ActorError(
        ActorErrorCode.ChildrenLimit,
        path,
        `registry bucket ${bucket.path}: ${this.bucketChildrenMax} children already`,
      );
    }
    const ref = this.system.spawnChild(bucket, name, spec, options);
    this.members.set(name, ref);
    return ref;
  }

  /** The ref of a running member, if any. The caller asserts its message type. */
  get<M>(name: string): ActorRef<M> | undefined {
    const ref = this.members.get(name);
    if (ref === undefined) return undefined;
    if (!this.system.isRunning(ref)) {
      this.members.delete(name);
      return undefined;
    }
    return ref as ActorRef<M>;
  }

  /** Stops a member depth-first. */
  stop(name: string): boolean {
    const ref = this.members.get(name);
    this.members.delete(name);
    return ref !== undefined && this.system.stop(ref);
  }

  get size(): number {
    return this.members.size;
  }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

/**
 * Starts an actor system. The first call in a process installs one `unhandledRejection`
 * handler, which counts the rejection in every live system and calls its
 * `onUnhandledRejection` (default: log).
 */
export function startActorSystem(config: ActorSystemConfig = {}): ActorSystem {
  installRejectionHandler();
  const system = new ActorSystem(config);
  liveSystems.add(system);
  return system;
}

/** Stops every actor of `system` depth-first (running each `onStop`) and rejects pending asks. */
export function stopActorSystem(system: ActorSystem): Promise<void> {
  return system.shutdown();
}

import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ActorErrorCode,
  type ActorRef,
  type ActorSpec,
  type ActorSystem,
  AskTimeoutError,
  actorNameFromKey,
  clampDelayMs,
  isValidActorName,
  MailboxFullError,
  type RequestId,
  reply,
  restartBackoffMs,
  type Step,
  send,
  spawn,
  startActorSystem,
  stopActorSystem,
  stopSelf,
  TIMER_DELAY_MS_MAX,
  timer,
} from './index.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: RequestId<number> } | { type: 'boom' };

const counter: ActorSpec<number, CounterMsg> = {
  init: () => 0,
  receive: (state, msg): Step<number, CounterMsg> => {
    switch (msg.type) {
      case 'add':
        return { state: state + msg.n, effects: [] };
      case 'get':
        return { state, effects: [reply(msg.replyTo, state)] };
      case 'boom':
        throw new Error('boom');
      default: {
        const never: never = msg;
        return never;
      }
    }
  },
};

const quietLog = () => {};
let system: ActorSystem;
afterEach(async () => {
  if (system !== undefined) await stopActorSystem(system);
});

describe('names and clamp', () => {
  it('validates names and encodes keys injectively', () => {
    expect(isValidActorName('ns/name')).toBe(false);
    expect(isValidActorName('')).toBe(false);
    expect(actorNameFromKey('default/web-1')).toBe('default+web-1');
    expect(actorNameFromKey('a+b/c')).not.toBe(actorNameFromKey('a/b/c'));
    expect(isValidActorName(actorNameFromKey('pods/ns/ünï code:x'))).toBe(true);
  });

  it('clamps every delay below 2^31 ms', () => {
    expect(clampDelayMs(30 * 24 * 3600_000)).toBe(TIMER_DELAY_MS_MAX);
    expect(clampDelayMs(-5)).toBe(0);
    expect(clampDelayMs(Number.NaN)).toBe(0);
    expect(clampDelayMs(Number.POSITIVE_INFINITY, 1000)).toBe(1000);
    expect(clampDelayMs(5000, 2 ** 40)).toBe(5000);
    expect(
      restartBackoffMs(
        { restartBackoffMsMin: 10, restartBackoffMsMax: 100, restartsMax: 9, restartWindowMs: 1 },
        1,
      ),
    ).toBe(10);
    expect(
      restartBackoffMs(
        { restartBackoffMsMin: 10, restartBackoffMsMax: 100, restartsMax: 9, restartWindowMs: 1 },
        3,
      ),
    ).toBe(40);
    expect(
      restartBackoffMs(
        { restartBackoffMsMin: 10, restartBackoffMsMax: 100, restartsMax: 9, restartWindowMs: 1 },
        9,
      ),
    ).toBe(100);
  });
});

describe('pure logic and effects', () => {
  it('does not let refs of different message types mix', () => {
    system = startActorSystem({ log: quietLog });
    const c = system.spawn('c', counter);
    // @ts-expect-error an ActorRef<CounterMsg> is not an ActorRef<{ type: 'other' }>
    const other: ActorRef<{ type: 'other' }> = c;
    // @ts-expect-error a message of the wrong type
    system.tell(c, { type: 'other' });
    expect(other).toBe(c);
  });

  it('keeps state and carries out send, reply, timer, stop and spawn effects', async () => {
    system = startActorSystem({ log: quietLog });
    const sink = system.spawn('sink', counter);
    type RelayMsg =
      | { type: 'fwd'; n: number }
      | { type: 'later'; n: number }
      | { type: 'spawnChild' }
      | { type: 'child'; ref: ActorRef<CounterMsg> }
      | { type: 'quit' };
    const stopped: string[] = [];
    const relay: ActorSpec<{ child?: ActorRef<CounterMsg> }, RelayMsg> = {
      init: () => ({}),
      receive: (state, msg) => {
        switch (msg.type) {
          case 'fwd':
            return { state, effects: [send(sink, { type: 'add', n: msg.n })] };
          case 'later':
            return { state, effects: [timer('t', 5, { type: 'fwd', n: msg.n } as RelayMsg)] };
          case 'spawnChild':
            return {
              state,
              effects: [
                spawn(
                  'kid',
                  { ...counter, onStop: () => stopped.push('kid') },
                  (ref): RelayMsg => ({ type: 'child', ref }),
                ),
              ],
            };
          case 'child':
            return { state: { child: msg.ref }, effects: [send(msg.ref, { type: 'add', n: 7 })] };
          case 'quit':
            return { state, effects: [stopSelf] };
        }
      },
      onStop: () => stopped.push('relay'),
    };
    const r = system.spawn('relay', relay);
    expect(system.tell(r, { type: 'fwd', n: 2 })).toBe(true);
    system.tell(r, { type: 'later', n: 3 });
    system.tell(r, { type: 'spawnChild' });
    // The timer fires after 5 ms; on a loaded machine, later: poll rather than sleep a guess.
    const sum = async () => (await system.ask(sink, { type: 'get' }, 1000)) as number;
    for (let i = 0; i < 200 && (await sum()) < 5; i++) await sleep(10);
    expect(await sum()).toBe(5);
    const kid = system.metrics().find((m) => m.path === '/relay/kid');
    expect(kid?.processed).toBe(1);
    system.tell(r, { type: 'quit' });
    for (let i = 0; i < 200 && stopped.length < 2; i++) await sleep(10);
    expect(stopped).toEqual(['kid', 'relay']);
    expect(system.tell(r, { type: 'fwd', n: 1 })).toBe(false);
    expect(system.systemMetrics().deadLetters).toBe(1);
  });

  it('awaits caller-supplied run effects one at a time and feeds results back', async () => {
    system = startActorSystem({ log: quietLog });
    type Io = { op: 'fetch'; n: number };
    type Msg =
      | { type: 'go'; n: number }
      | { type: 'got'; n: number }
      | { type: 'get'; replyTo: RequestId<number[]> };
    let active = 0;
    let maxActive = 0;
    const spec: ActorSpec<number[], Msg, Io> = {
      init: () => [],
      receive: (state, msg) => {
        switch (msg.type) {
          case 'go':
            return { state, effects: [{ kind: 'run', effect: { op: 'fetch', n: msg.n } }] };
          case 'got':
            return { state: [...state, msg.n], effects: [] };
          case 'get':
            return { state, effects: [reply(msg.replyTo, state)] };
        }
      },
      run: async (io) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await sleep(2);
        active -= 1;
        return { type: 'got', n: io.n * 10 };
      },
    };
    const a = system.spawn('io', spec);
    for (let n = 1; n <= 5; n += 1) system.tell(a, { type: 'go', n });
    await sleep(60);
    const got = await system.ask(a, { type: 'get' }, 1000);
    expect([...got].sort((x, y) => x - y)).toEqual([10, 20, 30, 40, 50]);
    expect(maxActive).toBe(1);
  });
});

describe('ask', () => {
  it('correlates 20,000 concurrent asks with no wrong answers', async () => {
    system = startActorSystem({ log: quietLog });
    type EchoMsg = { type: 'echo'; value: number; replyTo: RequestId<number> };
    const echo: ActorSpec<null, EchoMsg> = {
      init: () => null,
      receive: (state, msg) => ({ state, effects: [reply(msg.replyTo, msg.value)] }),
    };
    const refs = [0, 1, 2, 3].map((i) => system.spawn(`echo-${i}`, echo, { mailboxMessagesMax: 20_000 }));
    const asks: Promise<number>[] = [];
    for (let i = 0; i < 20_000; i += 1) {
      const ref = refs[i % refs.length] as ActorRef<EchoMsg>;
      asks.push(system.ask(ref, { type: 'echo', value: i }, 10_000));
    }
    const answers = await Promise.all(asks);
    const wrong = answers.filter((value, i) => value !== i).length;
    expect(wrong).toBe(0);
    expect(system.pendingAsks).toBe(0);
  });

  it('times out, ignores late replies, and rejects asks to stopped actors at once', async () => {
    system = startActorSystem({ log: quietLog });
    type Msg = { type: 'get'; replyTo: RequestId<number> };
    const silent = system.spawn<null, Msg>('silent', {
      init: () => null,
      receive: (state) => ({ state, effects: [] }),
    });
    const started = Date.now();
    await expect(system.ask(silent, { type: 'get' }, 30)).rejects.toBeInstanceOf(AskTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(system.pendingAsks).toBe(0);
    system.stop(silent);
    await expect(system.ask(silent, { type: 'get' }, 1000)).rejects.toMatchObject({
      code: ActorErrorCode.NotFound,
    });
  });
});

/** The names of the nact actors under the system's root, as paths (`a/b`). */
function nactActors(system: ActorSystem): string[] {
  const require = createRequire(import.meta.url);
  const systemMap = require('nact/lib/system-map') as { find(name: string): NactNode };
  type NactNode = { children: Map<string, NactNode> };
  const out: string[] = [];
  const walk = (node: NactNode, prefix: string) => {
    for (const [name, child] of node.children) {
      out.push(`${prefix}${name}`);
      walk(child, `${prefix}${name}/`);
    }
  };
  walk(systemMap.find(system.nactSystemName), '');
  return out.sort();
}

describe('askInline', () => {
  it('needs no nact actor while every message is handled inline; the first queued one spawns it', async () => {
    system = startActorSystem({ log: quietLog });
    const registry = system.createRegistry('objects', { bucketsCount: 1 });
    const a = registry.spawn('a', counter);
    const b = registry.spawn('b', counter);
    expect(system.askInline(a, { type: 'get' }, 1_000)).toBe(0);
    expect(system.askInline(b, { type: 'get' }, 1_000)).toBe(0);
    expect(nactActors(system)).toEqual([]);
    // A tell waits in a mailbox: `b`'s nact actor is spawned, under its bucket's and the
    // registry's, which come first.
    system.tell(b, { type: 'add', n: 4 });
    expect(nactActors(system)).toEqual(['objects', 'objects/bucket-0', 'objects/bucket-0/b']);
    expect(await system.askInline(b, { type: 'get' }, 1_000)).toBe(4);
    expect(system.askInline(a, { type: 'get' }, 1_000)).toBe(0);
    // Stopping stops both kinds, and a new actor of a stopped one's name starts without one.
    expect(registry.stop('b')).toBe(true);
    expect(registry.stop('a')).toBe(true);
    expect(nactActors(system)).toEqual(['objects', 'objects/bucket-0']);
    const b2 = registry.spawn('b', counter);
    expect(system.askInline(b2, { type: 'get' }, 1_000)).toBe(0);
    system.tell(b2, { type: 'add', n: 1 });
    expect(nactActors(system)).toEqual(['objects', 'objects/bucket-0', 'objects/bucket-0/b']);
    expect(await system.ask(b2, { type: 'get' }, 1_000)).toBe(1);
  });

  it('answers in the caller turn when the actor is idle, through the mailbox when it is not', async () => {
    system = startActorSystem({ log: quietLog });
    const c = system.spawn('c', counter);
    // Idle: the step runs now and the reply is a value, not a promise.
    expect(system.askInline(c, { type: 'get' }, 1_000)).toBe(0);
    // Queued messages come first: the ask waits behind them, in order.
    system.tell(c, { type: 'add', n: 2 });
    system.tell(c, { type: 'add', n: 3 });
    const behind = system.askInline(c, { type: 'get' }, 1_000);
    expect(behind).toBeInstanceOf(Promise);
    expect(await behind).toBe(5);
    expect(system.askInline(c, { type: 'get' }, 1_000)).toBe(5);
    expect(system.actorMetrics(c)).toMatchObject({ processed: 5, depth: 0 });
    expect(system.pendingAsks).toBe(0);
    system.stop(c);
    await expect(system.askInline(c, { type: 'get' }, 1_000)).rejects.toMatchObject({
      code: ActorErrorCode.NotFound,
    });
  });

  it('holds the mailbox while an inline step awaits its run effect', async () => {
    system = startActorSystem({ log: quietLog });
    type Msg =
      | { type: 'slow'; replyTo: RequestId<string> }
      | { type: 'done' }
      | { type: 'log'; entry: string; replyTo: RequestId<string[]> };
    let release: () => void = () => {};
    const spec: ActorSpec<string[], Msg, 'wait'> = {
      init: () => [],
      receive: (state, msg) => {
        switch (msg.type) {
          case 'slow':
            return {
              state: [...state, 'slow'],
              effects: [reply(msg.replyTo, 'started'), { kind: 'run', effect: 'wait' }],
            };
          case 'done':
            return { state: [...state, 'done'], effects: [] };
          case 'log':
            return { state: [...state, msg.entry], effects: [reply(msg.replyTo, [...state, msg.entry])] };
        }
      },
      run: () =>
        new Promise<Msg>((resolve) => {
          release = () => resolve({ type: 'done' });
        }),
    };
    const a = system.spawn('a', spec);
    expect(system.askInline(a, { type: 'slow' }, 1_000)).toBe('started');
    // The step is unfinished: the next request queues behind it (and behind its result).
    const next = system.askInline(a, { type: 'log', entry: 'next' }, 1_000);
    expect(next).toBeInstanceOf(Promise);
    let answered = false;
    void Promise.resolve(next).then(() => {
      answered = true;
    });
    await sleep(20);
    expect(answered).toBe(false);
    expect(system.actorMetrics(a)?.processed).toBe(1);
    release();
    // The run's result is a message of its own, sent once the run ends: after `next`.
    expect(await next).toEqual(['slow', 'next']);
    expect(await system.askInline(a, { type: 'log', entry: 'last' }, 1_000)).toEqual([
      'slow',
      'next',
      'done',
      'last',
    ]);
  });

  it('a reply that only a run effect gives comes as a promise, and inline replies leave no pending ask', async () => {
    system = startActorSystem({ log: quietLog });
    type Msg =
      | { type: 'fetch'; replyTo: RequestId<string> }
      | { type: 'fetched'; replyTo: RequestId<string>; value: string }
      | { type: 'get'; replyTo: RequestId<number> };
    const spec: ActorSpec<number, Msg, { replyTo: RequestId<string> }> = {
      init: () => 0,
      receive: (state, msg) => {
        switch (msg.type) {
          case 'fetch':
            return { state, effects: [{ kind: 'run', effect: { replyTo: msg.replyTo } }] };
          case 'fetched':
            return { state: state + 1, effects: [reply(msg.replyTo, msg.value)] };
          case 'get':
            return { state, effects: [reply(msg.replyTo, state)] };
        }
      },
      run: async ({ replyTo }) => {
        await sleep(5);
        return { type: 'fetched', replyTo, value: 'from the run' };
      },
    };
    const a = system.spawn('a', spec);
    const fetched = system.askInline(a, { type: 'fetch' }, 1_000);
    expect(fetched).toBeInstanceOf(Promise);
    expect(system.pendingAsks).toBe(1);
    expect(await fetched).toBe('from the run');
    expect(system.askInline(a, { type: 'get' }, 1_000)).toBe(1);
    expect(system.pendingAsks).toBe(0);
  });

  it('a crash in an inline step restarts the actor and its backoff holds later messages', async () => {
    system = startActorSystem({ log: quietLog });
    type Msg = { type: 'boom'; replyTo: RequestId<number> } | { type: 'get'; replyTo: RequestId<number> };
    const spec: ActorSpec<number, Msg> = {
      init: () => 7,
      receive: (state, msg) => {
        if (msg.type === 'boom') throw new Error('boom');
        return { state, effects: [reply(msg.replyTo, state)] };
      },
    };
    const a = system.spawn('a', spec, {
      restart: { restartBackoffMsMin: 40, restartBackoffMsMax: 40, restartsMax: 5, restartWindowMs: 60_000 },
    });
    const started = Date.now();
    // No reply comes: the ask times out as an ask to a crashed actor does.
    await expect(system.askInline(a, { type: 'boom' }, 20)).rejects.toBeInstanceOf(AskTimeoutError);
    expect(await system.askInline(a, { type: 'get' }, 1_000)).toBe(7);
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
    expect(system.actorMetrics(a)).toMatchObject({ crashes: 1, restarts: 1 });
    expect(system.pendingAsks).toBe(0);
  });
});

describe('registry', () => {
  it('keeps every nact parent at or under the bucket bound with 5,000 children', async () => {
    system = startActorSystem({ log: quietLog });
    const registry = system.createRegistry('pods', { bucketsCount: 16, bucketChildrenMax: 1000 });
    const refs = Array.from({ length: 5_000 }, (_, i) =>
      registry.spawn(actorNameFromKey(`default/pod-${i}`), counter),
    );
    expect(registry.size).toBe(5_000);
    // A tell queues in the mailbox, so each actor (and its bucket) gets its nact actor.
    for (const ref of refs) system.tell(ref, { type: 'add', n: 1 });

    // Inspect nact itself: its actor tree, and the widest parent in it.
    const actors = nactActors(system);
    const children = new Map<string, number>();
    for (const path of actors) {
      const parent = path.slice(0, Math.max(0, path.lastIndexOf('/')));
      children.set(parent, (children.get(parent) ?? 0) + 1);
    }
    const widest = Math.max(...children.values());
    expect(actors).toHaveLength(5_000 + 16 + 1);
    expect(widest).toBeLessThanOrEqual(1000);
    expect(Math.max(...system.metrics().map((m) => m.children))).toBeLessThanOrEqual(1000);

    const ref = registry.get<CounterMsg>(actorNameFromKey('default/pod-4321'));
    expect(ref).toBeDefined();
    const target = ref as ActorRef<CounterMsg>;
    const started = performance.now();
    for (let i = 0; i < 1_000; i += 1) system.tell(target, { type: 'add', n: 1 });
    expect(await system.ask(target, { type: 'get' }, 5_000)).toBe(1_001);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('refuses a child beyond the direct-children bound', () => {
    system = startActorSystem({ log: quietLog, childrenMax: 3 });
    for (let i = 0; i < 3; i += 1) system.spawn(`a${i}`, counter);
    expect(() => system.spawn('a3', counter)).toThrow(
      expect.objectContaining({ code: ActorErrorCode.ChildrenLimit }),
    );
    expect(() => system.spawn('bad/name', counter)).toThrow(
      expect.objectContaining({ code: ActorErrorCode.InvalidName }),
    );
    expect(() => system.spawn('a0', counter)).toThrow(
      expect.objectContaining({ code: ActorErrorCode.NameTaken }),
    );
  });
});

describe('stop', () => {
  it('stops descendants depth-first, runs onStop, and cancels their timers', async () => {
    system = startActorSystem({ log: quietLog });
    const order: string[] = [];
    let fired = 0;
    type Msg = { type: 'arm' } | { type: 'tick' };
    const ticking = (label: string): ActorSpec<null, Msg> => ({
      init: () => null,
      receive: (state, msg) =>
        msg.type === 'arm'
          ? { state, effects: [timer('tick', 20, { type: 'tick' } as Msg)] }
          : (() => {
              fired += 1;
              return { state, effects: [] };
            })(),
      onStop: () => order.push(label),
    });
    const top = system.spawn('top', ticking('top'));
    const mid = system.spawnChild(top, 'mid', ticking('mid'));
    const leafA = system.spawnChild(mid, 'leaf-a', ticking('leaf-a'));
    const leafB = system.spawnChild(mid, 'leaf-b', ticking('leaf-b'));
    for (const ref of [top, mid, leafA, leafB]) system.tell(ref, { type: 'arm' });
    await sleep(5);
    expect(system.stop(top)).toBe(true);
    expect(order).toEqual(['leaf-a', 'leaf-b', 'mid', 'top']);
    expect(system.systemMetrics().actors).toBe(0);
    await sleep(50);
    expect(fired).toBe(0);
    expect(system.stop(top)).toBe(false);
  });

  it('stopActorSystem stops everything depth-first', async () => {
    const local = startActorSystem({ log: quietLog });
    const order: string[] = [];
    const a = local.spawn('a', { ...counter, onStop: () => order.push('a') });
    local.spawnChild(a, 'b', { ...counter, onStop: () => order.push('b') });
    await stopActorSystem(local);
    expect(order).toEqual(['b', 'a']);
    expect(() => local.spawn('c', counter)).toThrow(
      expect.objectContaining({ code: ActorErrorCode.SystemStopped }),
    );
  });
});

describe('supervision', () => {
  it('restarts with capped exponential backoff, then gives up after restartsMax', async () => {
    const reports: { decision: string; backoffMs: number }[] = [];
    const givenUp: string[] = [];
    system = startActorSystem({
      log: quietLog,
      onCrash: (r) => reports.push({ decision: r.decision, backoffMs: r.backoffMs }),
    });
    const stops: string[] = [];
    const parent = system.spawn('parent', counter);
    const child = system.spawnChild(
      parent,
      'child',
      { ...counter, onStop: () => stops.push('child') },
      {
        restart: {
          restartBackoffMsMin: 10,
          restartBackoffMsMax: 25,
          restartsMax: 3,
          restartWindowMs: 60_000,
        },
        onGiveUp: (r) => givenUp.push(r.path),
      },
    );
    const grandchild = system.spawnChild(child, 'grandchild', counter);

    system.tell(child, { type: 'add', n: 5 });
    system.tell(child, { type: 'boom' });
    system.tell(child, { type: 'add', n: 1 });
    const started = Date.now();
    // The restart resets state (5 is lost) and keeps the mailbox after the backoff.
    expect(await system.ask(child, { type: 'get' }, 1_000)).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(8);
    expect(system.actorMetrics(grandchild)).toBeUndefined(); // children stopped on restart

    system.tell(child, { type: 'boom' });
    system.tell(child, { type: 'boom' });
    system.tell(child, { type: 'boom' });
    await sleep(120);
    expect(reports).toEqual([
      { decision: 'restart', backoffMs: 10 },
      { decision: 'restart', backoffMs: 20 },
      { decision: 'restart', backoffMs: 25 },
      { decision: 'stop', backoffMs: 0 },
    ]);
    expect(givenUp).toEqual(['/parent/child']);
    expect(stops).toEqual(['child']);
    expect(system.tell(child, { type: 'add', n: 1 })).toBe(false);
    expect(system.systemMetrics().crashesTotal).toBe(4);
    expect(system.actorMetrics(parent)?.crashes).toBe(0);
  });
});

describe('mailbox bound', () => {
  it('refuses tells beyond mailboxMessagesMax and counts them', async () => {
    system = startActorSystem({ log: quietLog });
    const ref = system.spawn('small', counter, { mailboxMessagesMax: 3 });
    expect([1, 2, 3, 4, 5].map((n) => system.tell(ref, { type: 'add', n }))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(() => system.tellOrThrow(ref, { type: 'add', n: 9 })).toThrow(MailboxFullError);
    expect(system.actorMetrics(ref)).toMatchObject({ depth: 3, dropped: 3 });
    await expect(system.ask(ref, { type: 'get' }, 1_000)).rejects.toMatchObject({
      code: ActorErrorCode.MailboxFull,
    });
    await sleep(10);
    expect(await system.ask(ref, { type: 'get' }, 1_000)).toBe(6);
    expect(system.actorMetrics(ref)).toMatchObject({ depth: 0, processed: 4, dropped: 4 });
    expect(system.systemMetrics().droppedTotal).toBe(4);
  });
});

describe('timers and process handler', () => {
  it('a 30-day timer does not fire immediately', async () => {
    system = startActorSystem({ log: quietLog });
    let ticks = 0;
    type Msg = { type: 'arm' } | { type: 'tick' };
    const ref = system.spawn<null, Msg>('late', {
      init: () => null,
      receive: (state, msg) => {
        if (msg.type === 'arm')
          return { state, effects: [timer('t', 30 * 24 * 3600_000, { type: 'tick' } as Msg)] };
        ticks += 1;
        return { state, effects: [] };
      },
    });
    system.tell(ref, { type: 'arm' });
    type Get = { type: 'get'; replyTo: RequestId<number> };
    const silent = system.spawn<null, Get>('silent', {
      init: () => null,
      receive: (state) => ({ state, effects: [] }),
    });
    let settled = false;
    const pending = system.ask(silent, { type: 'get' }, 30 * 24 * 3600_000).then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await sleep(30);
    expect(settled).toBe(false);
    expect(system.pendingAsks).toBe(1);
    await stopActorSystem(system);
    await pending;
    expect(settled).toBe(true);
    expect(ticks).toBe(0);
  });

  it('installs one unhandledRejection handler that counts and reports', () => {
    const seen: unknown[] = [];
    system = startActorSystem({ log: quietLog, onUnhandledRejection: (reason) => seen.push(reason) });
    const second = startActorSystem({ log: quietLog });
    const ours = process
      .listeners('unhandledRejection')
      .filter((l) => l.name === 'coxswainActorsUnhandledRejection');
    expect(ours).toHaveLength(1);
    const reason = new Error('detached');
    (ours[0] as (reason: unknown, promise: Promise<unknown>) => void)(reason, Promise.resolve());
    expect(seen).toEqual([reason]);
    expect(system.systemMetrics().unhandledRejections).toBe(1);
    expect(second.systemMetrics().unhandledRejections).toBe(1);
    void stopActorSystem(second);
  });
});

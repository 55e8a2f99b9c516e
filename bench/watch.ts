/**
 * `npm run bench:watch`: watch fan-out of 3 Coxswain masters. 100 watchers (each its own
 * ApiClient, spread round-robin over the masters) watch ConfigMaps from one version while
 * closed-loop writers replace ConfigMaps (256 bytes of data) for a fixed time; then the
 * watchers drain. Every event delivered to every watcher counts.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object:
 * `{ watchers, eventsPerSec, writers, writes, writesPerSec, events, expectedEvents, elapsedMs,
 *    drainMs }` where eventsPerSec = events delivered across all watchers / elapsedMs (from the
 * first write to the last delivery), and expectedEvents = watchers × acknowledged writes.
 *
 * Flags: `--watchers 100`, `--writers 16`, `--measure-ms 5000`, `--tick-ms N`.
 */
import { parseArgs } from 'node:util';
import type { WatchStream } from '../actors/api.js';
import { sleep } from '../test/multiprocess/cluster.js';
import { MasterCluster } from '../test/multiprocess/master-cluster.js';
import { closedLoop } from './lib/closed-loop.js';
import { progressTo, runBench } from './lib/output.js';

const namespace = 'default';
const payloadBytes = 256;
const leaderWaitMs = 15_000;
/** How long the watchers may take to deliver the last write after the writers stop. */
const drainTimeoutMs = 60_000;

const progress = progressTo('watch');

interface Watcher {
  stream: WatchStream;
  events: number;
  lastRv: number;
  lastAtMs: number;
  error?: unknown;
  done: Promise<void>;
}

function startWatcher(stream: WatchStream): Watcher {
  const w: Watcher = { stream, events: 0, lastRv: 0, lastAtMs: 0, done: Promise.resolve() };
  w.done = (async () => {
    try {
      for (;;) {
        const batch = await stream.next();
        if (batch === undefined) return;
        for (const e of batch) {
          if (e.type === 'BOOKMARK') continue;
          w.events++;
          w.lastRv = Number(e.object.metadata.resourceVersion);
        }
        w.lastAtMs = performance.now();
      }
    } catch (err) {
      w.error = err;
    }
  })();
  return w;
}

async function main(): Promise<unknown> {
  const { values } = parseArgs({
    options: {
      watchers: { type: 'string', default: '100' },
      writers: { type: 'string', default: '16' },
      'measure-ms': { type: 'string', default: '5000' },
      'tick-ms': { type: 'string' },
    },
    strict: true,
  });
  const watchersCount = Number(values.watchers);
  const writersCount = Number(values.writers);
  const measureMs = Number(values['measure-ms']);
  const tickMs = values['tick-ms'] === undefined ? undefined : Number(values['tick-ms']);
  if (![watchersCount, writersCount, measureMs].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('bad --watchers / --writers / --measure-ms');

  progress('starting 3 Coxswain masters');
  const cluster = await MasterCluster.start({
    dirPrefix: 'cox-bench-watch-',
    ...(tickMs !== undefined ? { tickMs } : {}),
  });
  try {
    const leader = await cluster.waitForLeader(leaderWaitMs);
    progress(`leader is ${leader}; cluster dir ${cluster.dir}`);
    const ids = cluster.ids();
    const writer = cluster.client([leader, ...ids.filter((id) => id !== leader)], { deadlineMs: 10_000 });
    const value = 'x'.repeat(payloadBytes);
    const objects = Array.from({ length: writersCount }, (_, w) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `watch-bench-${w}`, namespace },
      data: { v: value },
    }));
    let fromRv = 0;
    for (const o of objects) fromRv = Number((await writer.create(o)).metadata.resourceVersion);

    progress(`opening ${watchersCount} watchers from version ${fromRv}`);
    const watchers: Watcher[] = [];
    for (let i = 0; i < watchersCount; i++) {
      const first = ids[i % ids.length];
      const client = cluster.client([first, ...ids.filter((id) => id !== first)]);
      const stream = await client.watch('ConfigMap', { namespace, resourceVersion: String(fromRv) });
      watchers.push(startWatcher(stream));
    }

    progress(`writing with ${writersCount} writers for ${measureMs} ms`);
    let lastWriteRv = fromRv;
    let acked = 0;
    let seq = 0;
    const t0 = performance.now();
    const stats = await closedLoop(
      (w, done) => {
        // A new value each time: a replace with identical content is a no-op that makes no event.
        const stamp = (++seq).toString(36).padStart(8, '0');
        const o = objects[w];
        writer.update({ ...o, data: { v: stamp + value.slice(stamp.length) } }).then((o) => {
          lastWriteRv = Math.max(lastWriteRv, Number(o.metadata.resourceVersion));
          acked++;
          done(null);
        }, done);
      },
      writersCount,
      0,
      measureMs,
    );
    const writesEndMs = performance.now();
    progress(`writes: ${JSON.stringify(stats)}; draining to version ${lastWriteRv}`);
    const drainDeadline = Date.now() + drainTimeoutMs;
    while (
      watchers.some((w) => w.lastRv < lastWriteRv && w.error === undefined) &&
      Date.now() < drainDeadline
    )
      await sleep(20);
    const lastDeliveryMs = Math.max(...watchers.map((w) => w.lastAtMs));
    for (const w of watchers) w.stream.close();
    await Promise.all(watchers.map((w) => w.done));
    const failed = watchers.filter((w) => w.error !== undefined);
    if (failed.length > 0)
      progress(`WARNING: ${failed.length} watchers failed, e.g. ${String(failed[0].error)}`);
    const behind = watchers.filter((w) => w.lastRv < lastWriteRv).length;
    if (behind > 0) progress(`WARNING: ${behind} watchers did not reach version ${lastWriteRv}`);

    const events = watchers.reduce((n, w) => n + w.events, 0);
    // Writes acknowledged after the window (still in flight at its end) are delivered too.
    const writes = acked;
    const elapsedMs = lastDeliveryMs - t0;
    return {
      watchers: watchersCount,
      eventsPerSec: Math.round((events * 1000) / elapsedMs),
      writers: writersCount,
      writes,
      writesPerSec: stats.opsPerSec,
      events,
      expectedEvents: writes * watchersCount,
      elapsedMs: Math.round(elapsedMs),
      drainMs: Math.round(lastDeliveryMs - writesEndMs),
      watchersFailed: failed.length,
    };
  } finally {
    await cluster.close();
  }
}

runBench('watch', main);

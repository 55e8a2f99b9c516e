/**
 * `npm run bench:apply`: the apply loop alone, in one process — committed entries (pod creates,
 * then status writes, then deletes) applied to an ObjectStore in batches, the way every master
 * applies the log. The reference, measured in the same run and interleaved with it: the same
 * store with every command sent to its object actor as a plain `ask` (a nact turn, a promise
 * and a timer each) instead of `askInline`.
 *
 * Flags: `--commands N` (pods; each gets a create, a status write and a delete; default 20,000),
 * `--batch N` (entries per applied batch; default 200), `--rounds N` (of each mode; default 3).
 * Prints `{ commands, batch, rounds, inline: { createUs, statusUs, deleteUs }, ask: { same },
 * ratio: { same } }`: microseconds of wall time per command (medians over the rounds), and
 * inline over ask.
 */

import { parseArgs } from 'node:util';
import { startActorSystem, stopActorSystem } from '../actors/runtime.js';
import { encodeRecord, ObjectStore } from '../actors/store.js';
import type { Command } from '../core/commands.js';
import type { ApiObject } from '../core/index.js';
import type { Entry } from '../raft/index.js';
import { progressTo, runBench } from './lib/output.js';
import { benchPod } from './lib/pods.js';

const progress = progressTo('apply');

type Mode = 'inline' | 'ask';
interface Round {
  createUs: number;
  statusUs: number;
  deleteUs: number;
}

async function round(mode: Mode, pods: number, batch: number): Promise<Round> {
  const system = startActorSystem();
  if (mode === 'ask') {
    // The reference: every command through nact's mailbox as a plain ask.
    system.askInline = system.ask.bind(system) as typeof system.askInline;
  }
  const store = new ObjectStore({ system });
  let index = 0;
  const entries = (cmds: Command[]): Entry[] =>
    cmds.map(
      (cmd) => ({ index: ++index, term: 1, type: 'normal', data: encodeRecord({ t: 'cmd', cmd }) }) as Entry,
    );
  const timed = async (all: Entry[]): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < all.length; i += batch) {
      const b = all.slice(i, i + batch);
      await store.applyBatch(b, b[b.length - 1].index);
    }
    return ((performance.now() - started) * 1000) / all.length;
  };
  const createUs = await timed(
    entries(Array.from({ length: pods }, (_, i) => ({ op: 'create', object: benchPod(i) }))),
  );
  const statusUs = await timed(
    entries(
      Array.from({ length: pods }, (_, i) => {
        const p = benchPod(i) as ApiObject & { status: unknown };
        return { op: 'updateStatus', object: { ...p, status: { phase: 'Running' } } } as Command;
      }),
    ),
  );
  const deleteUs = await timed(
    entries(
      Array.from({ length: pods }, (_, i) => ({
        op: 'delete',
        key: { kind: 'Pod', namespace: 'default', name: `web-${i}` },
        now: '2026-01-01T00:00:01Z',
        gracePeriodSeconds: 0,
      })) as Command[],
    ),
  );
  if (store.count('Pod') !== 0) throw new Error(`${store.count('Pod')} pods left after the deletes`);
  store.close();
  await stopActorSystem(system);
  return { createUs, statusUs, deleteUs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round2 = (x: number) => Math.round(x * 100) / 100;

runBench('apply', async () => {
  const { values } = parseArgs({
    options: {
      commands: { type: 'string', default: '20000' },
      batch: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const pods = Number(values.commands);
  const batch = Number(values.batch);
  const rounds = Number(values.rounds);
  for (const [name, n] of [
    ['commands', pods],
    ['batch', batch],
    ['rounds', rounds],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name}: a positive integer, not ${n}`);
  }
  const results: Record<Mode, Round[]> = { inline: [], ask: [] };
  // A warm-up round of each, not counted (JIT).
  await round('inline', Math.min(pods, 2_000), batch);
  await round('ask', Math.min(pods, 2_000), batch);
  for (let r = 0; r < rounds; r += 1) {
    for (const mode of ['inline', 'ask'] as const) {
      const got = await round(mode, pods, batch);
      results[mode].push(got);
      progress(
        `${mode} round ${r + 1}: create ${got.createUs.toFixed(1)} µs, status ${got.statusUs.toFixed(1)} µs, delete ${got.deleteUs.toFixed(1)} µs`,
      );
    }
  }
  const summary = (mode: Mode) => ({
    createUs: round2(median(results[mode].map((x) => x.createUs))),
    statusUs: round2(median(results[mode].map((x) => x.statusUs))),
    deleteUs: round2(median(results[mode].map((x) => x.deleteUs))),
  });
  const inline = summary('inline');
  const ask = summary('ask');
  return {
    commands: pods,
    batch,
    rounds,
    inline,
    ask,
    ratio: {
      createUs: round2(inline.createUs / ask.createUs),
      statusUs: round2(inline.statusUs / ask.statusUs),
      deleteUs: round2(inline.deleteUs / ask.deleteUs),
    },
  };
});

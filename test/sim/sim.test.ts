import { describe, expect, it } from 'vitest';
import { RaftNode, type Ready } from '../../raft/index.js';
import { runSeed, SIM_STEPS_DEFAULT, type SimResult } from './cluster.js';

/** CI runs at least this many seeds; `npm run sim -- --seeds N` runs more. */
const CI_SEEDS = 2000;
const CHUNKS = 4;
const CHUNK_TIMEOUT_MS = 60_000;

function describeFailure(r: SimResult): string {
  const f = r.failure;
  if (!f) return `seed ${r.seed} ok`;
  return [
    `seed ${r.seed} violates ${f.invariant} (${f.phase} phase, step ${f.step}): ${f.message}`,
    `replay: npm run sim -- --seed ${r.seed} --steps ${SIM_STEPS_DEFAULT} --verbose`,
    `profile: ${r.profile}`,
    ...f.trace.slice(-40),
  ].join('\n');
}

function firstFailure(from: number, count: number): SimResult | undefined {
  for (let seed = from; seed < from + count; seed++) {
    const r = runSeed(seed, { steps: SIM_STEPS_DEFAULT });
    if (!r.ok) return r;
  }
  return undefined;
}

/** Runs `body` with RaftNode.prototype.ready wrapped by `corrupt`, restoring it afterwards. */
function withCorruptedReady<T>(corrupt: (rd: Ready) => void, body: () => T): T {
  const original = RaftNode.prototype.ready;
  RaftNode.prototype.ready = function (this: RaftNode): Ready {
    const rd = original.call(this);
    corrupt(rd);
    return rd;
  };
  try {
    return body();
  } finally {
    RaftNode.prototype.ready = original;
  }
}

describe('deterministic simulation of the Raft core', () => {
  const perChunk = CI_SEEDS / CHUNKS;
  for (let c = 0; c < CHUNKS; c++) {
    const from = 1 + c * perChunk;
    it(
      `seeds ${from}..${from + perChunk - 1} keep every invariant and recover`,
      () => {
        const failure = firstFailure(from, perChunk);
        expect(failure === undefined, failure ? describeFailure(failure) : '').toBe(true);
      },
      CHUNK_TIMEOUT_MS,
    );
  }

  it('replays a seed exactly', () => {
    const lines: string[][] = [[], []];
    const a = runSeed(42, { steps: 300, onTrace: (l) => lines[0].push(l) });
    const b = runSeed(42, { steps: 300, onTrace: (l) => lines[1].push(l) });
    expect(a.ok, describeFailure(a)).toBe(true);
    expect(b.stats).toEqual(a.stats);
    expect(lines[0].length).toBeGreaterThan(300);
    expect(lines[1]).toEqual(lines[0]);
    expect(runSeed(42, { steps: 300 }).stats).toEqual(a.stats); // tracing does not change the run
  });

  it('catches a core that forgets to persist its vote', () => {
    const r = withCorruptedReady(
      (rd) => {
        if (rd.hardState?.vote !== undefined)
          rd.hardState = { term: rd.hardState.term, commit: rd.hardState.commit };
      },
      () => firstFailure(1, 50),
    );
    expect(r?.failure?.invariant).toBe('persist-before-send');
  });

  it('catches a ReadIndex answer below what was committed before the read', () => {
    const r = withCorruptedReady(
      (rd) => {
        rd.readStates = rd.readStates.map((s) => ({ index: s.index - 1, ctx: s.ctx }));
      },
      () => firstFailure(1, 500),
    );
    expect(r?.failure?.invariant).toBe('read-index');
  });
});

/**
 * Runs the deterministic Raft simulator over many seeds.
 *
 *   npm run sim -- --seeds 100000 [--start S] [--steps N]
 *   npm run sim -- --seed S [--steps N] [--verbose]
 *
 * Progress goes to stderr. On the first failing seed it prints the seed, the violated
 * invariant and the tail of the trace, and exits 1. `--seed S` replays exactly that seed.
 */
import { runSeed, SIM_STEPS_DEFAULT, type SimResult, type SimStats } from './cluster.js';

/** Trace lines printed for a failure. */
const FAILURE_TRACE_LINES = 120;

interface Args {
  seeds: number;
  start: number;
  steps: number;
  seed: number | undefined;
  verbose: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 1000, start: 1, steps: SIM_STEPS_DEFAULT, seed: undefined, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      return v;
    };
    switch (a) {
      case '--seeds':
        args.seeds = num();
        break;
      case '--start':
        args.start = num();
        break;
      case '--steps':
        args.steps = num();
        break;
      case '--seed':
        args.seed = num();
        break;
      case '--verbose':
      case '-v':
        args.verbose = true;
        break;
      case '--':
        break;
      default:
        throw new Error(`unknown argument ${a} (use --seeds N --start S --steps N --seed S --verbose)`);
    }
  }
  return args;
}

function printFailure(r: SimResult, steps: number): void {
  const f = r.failure;
  if (!f) return;
  const tail = f.trace.slice(-FAILURE_TRACE_LINES);
  process.stderr.write(
    [
      '',
      `FAIL seed ${r.seed}: ${f.invariant} (${f.phase} phase, step ${f.step})`,
      `  ${f.message}`,
      `  profile: ${r.profile}`,
      `  trace (last ${tail.length} lines):`,
      ...tail.map((l) => `    ${l}`),
      f.stack ? `  stack: ${f.stack}` : '',
      `  replay: npm run sim -- --seed ${r.seed} --steps ${steps} --verbose`,
      '',
    ].join('\n'),
  );
}

function addStats(total: SimStats, s: SimStats): void {
  for (const k of Object.keys(total) as Array<keyof SimStats>) total[k] += s[k];
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.seed !== undefined) {
    const r = runSeed(args.seed, {
      steps: args.steps,
      onTrace: args.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
    });
    if (!r.ok) {
      printFailure(r, args.steps);
      process.exit(1);
    }
    process.stderr.write(`seed ${args.seed} ok: ${JSON.stringify(r.stats)}\n  profile: ${r.profile}\n`);
    return;
  }
  const started = performance.now();
  let lastReport = started;
  let total: SimStats | undefined;
  const end = args.start + args.seeds;
  for (let seed = args.start; seed < end; seed++) {
    const r = runSeed(seed, { steps: args.steps });
    if (!r.ok) {
      printFailure(r, args.steps);
      process.exit(1);
    }
    if (total) addStats(total, r.stats);
    else total = { ...r.stats };
    const now = performance.now();
    if (now - lastReport > 2000) {
      lastReport = now;
      const done = seed - args.start + 1;
      const rate = done / ((now - started) / 1000);
      process.stderr.write(
        `  ${done}/${args.seeds} seeds ok (${rate.toFixed(0)} seeds/s), at seed ${seed}\n`,
      );
    }
  }
  const secs = (performance.now() - started) / 1000;
  process.stderr.write(
    `${args.seeds} seeds ok (seeds ${args.start}..${end - 1}, ${args.steps} steps each) in ${secs.toFixed(1)} s, ` +
      `${(args.seeds / secs).toFixed(0)} seeds/s\n  totals: ${JSON.stringify(total)}\n`,
  );
}

main();

/**
 * How every bench talks: progress lines on stderr, exactly one JSON object as the last line of
 * stdout, exit 0 on success and 1 (with the error on stderr) on failure. Ctrl-C / SIGTERM exit
 * through process.exit so the exit hooks kill the clusters and remove their dirs.
 */

/** A `[bench:NAME] msg` line writer for stderr. */
export function progressTo(name: string): (msg: string) => void {
  return (msg) => {
    process.stderr.write(`[bench:${name}] ${msg}\n`);
  };
}

/** Runs `main`, prints the object it resolves with as one JSON line on stdout, and exits. */
export function runBench(name: string, main: () => Promise<unknown>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  main().then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(
        `bench:${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}

/**
 * A bound on the container starts a runtime asks of its engine at once. With many pods starting
 * together, an engine given every start at once finishes them all late (each start slows the
 * others on a small machine); given a few at a time, with the starts that complete a pod first,
 * pods come up one after another and most of them sooner, in about the same total time.
 */
export class StartGate {
  private inFlight = 0;
  /** Waiting starts: urgent ones (completing a pod) ahead of the others, each kind in arrival order. */
  private readonly waiting: { urgent: boolean; go: () => void }[] = [];

  constructor(readonly startsInFlightMax: number) {
    if (!Number.isInteger(startsInFlightMax) || startsInFlightMax < 1)
      throw new Error(`startsInFlightMax: ${startsInFlightMax}: must be a positive integer`);
  }

  /** Runs `start` once fewer than `startsInFlightMax` starts are running. */
  async run<T>(urgent: boolean, start: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.startsInFlightMax) {
      await new Promise<void>((go) => {
        const firstOther = urgent ? this.waiting.findIndex((w) => !w.urgent) : -1;
        if (firstOther >= 0) this.waiting.splice(firstOther, 0, { urgent, go });
        else this.waiting.push({ urgent, go });
      });
    } else {
      this.inFlight += 1;
    }
    try {
      return await start();
    } finally {
      // The slot passes straight to the next waiter, if any.
      const next = this.waiting.shift();
      if (next !== undefined) next.go();
      else this.inFlight -= 1;
    }
  }

  /** Starts waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}

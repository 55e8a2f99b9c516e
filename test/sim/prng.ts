/**
 * The simulator's only source of randomness: xoshiro128** seeded through splitmix32.
 * Every choice the simulator makes, and every `random()` a simulated RaftNode draws, comes
 * from a Prng derived from the run's seed, so one seed replays exactly.
 */
export class Prng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `seed` is any safe integer; its high and low 32 bits both shape the stream. */
  constructor(seed: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    let sm = (lo ^ Math.imul(hi, 0x27d4eb2d)) | 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      sm = (sm + 0x9e3779b9) | 0;
      let z = sm;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      out.push((z ^ (z >>> 16)) >>> 0);
    }
    [this.s0, this.s1, this.s2, this.s3] = out;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Prng.pick from an empty list');
    return items[this.int(items.length)];
  }

  /** An independent stream derived from this one (for a node's `random`). */
  fork(): Prng {
    return new Prng(this.nextU32() * 0x1_0000 + (this.nextU32() & 0xffff));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

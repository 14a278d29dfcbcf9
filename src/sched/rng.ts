// Seeded PRNG (xorshift32 with a splitmix-style seed scramble). Math.random is never
// used in the simulation: a run must be a pure function of its seed.

export class Rng {
  private s: number;

  constructor(seed: number) {
    // Scramble so that nearby seeds (1, 2, 3) give unrelated streams, and never 0.
    let z = (seed | 0) + 0x9e3779b9;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    this.s = z === 0 ? 0x6d2b79f5 : z;
  }

  /** Uniform uint32. */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return x >>> 0;
  }

  /** Uniform integer in [0, n), n <= 2^32. */
  below(n: number): number {
    if (n <= 1) return 0;
    // Rejection sampling: modulo bias would make some schedules likelier than others.
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const v = this.next();
      if (v < limit) return v % n;
    }
  }
}

// Scheduling policies: who runs the next step.
//
// The Scheduler asks pick() before every step with the ready threads in spawn order
// (never empty). Only steps with two or more ready threads are choices; their picked
// indices form the run's schedule (Scheduler.schedule), which ReplayPolicy replays
// whatever policy produced it.

import { Rng } from './rng.js';
import type { SimThread } from './core.js';

export interface Policy {
  readonly name: string;
  /** Re-seeds; the Scheduler calls it when given a seed, so (policy, seed) fixes the run. */
  seed?(seed: number): void;
  /** Called once per thread when it is spawned (PCT assigns its priority here). */
  onSpawn?(t: SimThread): void;
  /**
   * Index into `ready` of the thread to run. `last` is the thread that ran the previous
   * step (it may no longer be ready); `step` counts steps since the scheduler began.
   */
  pick(ready: readonly SimThread[], last: SimThread | null, step: number): number;
}

/** Uniformly random among ready threads at every step. */
export class RandomPolicy implements Policy {
  readonly name = 'random';
  private rng: Rng;

  constructor(seed = 1) {
    this.rng = new Rng(seed);
  }

  seed(seed: number): void {
    this.rng = new Rng(seed);
  }

  pick(ready: readonly SimThread[]): number {
    return ready.length === 1 ? 0 : this.rng.below(ready.length);
  }
}

/**
 * Keeps running the last thread until it stops being ready, then the next one in
 * spawn order: no preemption at all. Handy for reading traces and for setup phases.
 */
export class RoundRobinPolicy implements Policy {
  readonly name = 'round-robin';

  pick(ready: readonly SimThread[], last: SimThread | null): number {
    if (last === null) return 0;
    const i = ready.indexOf(last);
    if (i >= 0) return i;
    for (let k = 0; k < ready.length; k++) if (ready[k]!.id > last.id) return k;
    return 0;
  }
}

/**
 * PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010). Threads get random
 * distinct priorities >= depth; d-1 change points are drawn uniformly from the first k
 * steps; when step number k_i is reached the thread about to run drops to priority i
 * (below every initial priority). The highest-priority ready thread always runs.
 * A bug of depth d is then found with probability >= 1/(n * k^(d-1)) per run.
 *
 * Strict priorities starve: a thread that busy-waits at a preemption point (a guest
 * spinning on another vCPU) never lets the lower-priority thread it waits for run.
 * The guarantee only covers the first k steps, so `afterK: 'random'` switches to
 * uniform random choice from then on, which bounds such livelocks.
 */
export class PctPolicy implements Policy {
  readonly name = 'pct';
  readonly depth: number;
  readonly k: number;
  readonly afterK: 'priority' | 'random';
  private rng: Rng;
  private readonly prio = new Map<number, number>();
  private readonly used = new Set<number>();
  /** step number -> new priority */
  private changes = new Map<number, number>();

  constructor(opts: { seed?: number; depth?: number; k?: number; afterK?: 'priority' | 'random' } = {}) {
    this.depth = Math.max(1, opts.depth ?? 3);
    this.k = Math.max(1, opts.k ?? 1000);
    this.afterK = opts.afterK ?? 'priority';
    this.rng = new Rng(opts.seed ?? 1);
    this.drawChangePoints();
  }

  seed(seed: number): void {
    this.rng = new Rng(seed);
    this.prio.clear();
    this.used.clear();
    this.drawChangePoints();
  }

  private drawChangePoints(): void {
    this.changes = new Map();
    const n = Math.min(this.depth - 1, this.k);
    for (let i = 1; i <= n; i++) {
      let s: number;
      do s = 1 + this.rng.below(this.k);
      while (this.changes.has(s));
      // The i-th change point (drawn in random step order) lowers to priority i, as in the paper.
      this.changes.set(s, i);
    }
  }

  onSpawn(t: SimThread): void {
    // Random distinct priority above every change-point priority; a wide range
    // keeps the order uniformly random even for threads spawned mid-run.
    let p: number;
    do p = this.depth + 1 + this.rng.below(0x40000000);
    while (this.used.has(p));
    this.used.add(p);
    this.prio.set(t.id, p);
  }

  priorityOf(t: SimThread): number {
    return this.prio.get(t.id) ?? 0;
  }

  pick(ready: readonly SimThread[], _last: SimThread | null, step: number): number {
    if (step >= this.k && this.afterK === 'random') return ready.length === 1 ? 0 : this.rng.below(ready.length);
    let best = this.highest(ready);
    const change = this.changes.get(step + 1);
    if (change !== undefined) {
      this.prio.set(ready[best]!.id, change);
      best = this.highest(ready);
    }
    return best;
  }

  private highest(ready: readonly SimThread[]): number {
    let best = 0;
    let bp = -1;
    for (let i = 0; i < ready.length; i++) {
      const p = this.prio.get(ready[i]!.id) ?? 0;
      if (p > bp) {
        bp = p;
        best = i;
      }
    }
    return best;
  }
}

/**
 * Replays a recorded schedule (choice indices at steps with 2+ ready threads); past its
 * end, keeps the last thread running while it can (no further preemptions).
 */
export class ReplayPolicy implements Policy {
  readonly name = 'replay';
  private pos = 0;
  readonly choices: readonly number[];

  constructor(choices: readonly number[]) {
    this.choices = choices;
  }

  pick(ready: readonly SimThread[], last: SimThread | null): number {
    if (ready.length === 1) return 0;
    if (this.pos < this.choices.length) {
      const c = this.choices[this.pos++]!;
      if (c >= ready.length) {
        throw new Error(
          `replay diverged at choice ${this.pos - 1}: recorded index ${c} but only ${ready.length} threads are ready ` +
            `(the scenario is not deterministic)`,
        );
      }
      return c;
    }
    const i = last === null ? -1 : ready.indexOf(last);
    return i >= 0 ? i : 0;
  }
}

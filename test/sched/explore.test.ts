import { describe, expect, it } from 'vitest';
import { Mutex, PctPolicy, Scheduler, SpinLock, explore, preempt, replay, type Task } from '../../src/sched/index.js';

/**
 * Thread A has 2 steps (one preemption point), thread B has 3 (two points): a step is
 * the code between two yields, and a body with k yields runs in k+1 steps.
 */
function twoThreads(seen: string[]) {
  return (s: Scheduler) => {
    const order: string[] = [];
    const body = (name: string, points: number) =>
      function* (): Task {
        for (let i = 0; i < points; i++) {
          order.push(name);
          yield* preempt();
        }
        order.push(name);
      };
    s.spawn('A', body('A', 1));
    s.spawn('B', body('B', 2));
    return () => {
      seen.push(order.join(''));
    };
  };
}

describe('explore (bounded-preemption DFS)', () => {
  // Interleavings of AA with BBB: C(5,2) = 10. Switching away from a thread that is
  // still ready costs one preemption; switching after it finished is free. By the
  // number of runs (maximal blocks of one thread) in the sequence:
  //   2 runs  AABBB BBBAA                 0 preemptions  -> 2
  //   3 runs  ABBBA                       1 (A->B; B done)
  //           BAABB BBAAB                 1 (B->A; A done) -> 3
  //   4 runs  ABABB ABBAB (A B A B)       2
  //           BABBA BBABA (B A B A)       2               -> 4
  //   5 runs  BABAB                       3               -> 1
  // so bound 0 -> 2, bound 1 -> 5, bound 2 -> 9, bound >= 3 -> 10.
  it.each([
    [0, 2],
    [1, 5],
    [2, 9],
    [3, 10],
    [100, 10],
  ])('preemption bound %i explores %i schedules, all distinct', (bound, count) => {
    const seen: string[] = [];
    const r = explore(twoThreads(seen), { preemptionBound: bound });
    expect(r.complete).toBe(true);
    expect(r.failures).toEqual([]);
    expect(r.schedules).toBe(count);
    expect(new Set(seen).size).toBe(count);
    if (bound === 0) expect(seen.sort()).toEqual(['AABBB', 'BBBAA']);
  });

  it('the full tree is exactly the 10 interleavings', () => {
    const seen: string[] = [];
    explore(twoThreads(seen), { preemptionBound: Infinity });
    expect(seen.sort()).toEqual(
      ['AABBB', 'ABABB', 'ABBAB', 'ABBBA', 'BAABB', 'BABAB', 'BABBA', 'BBAAB', 'BBABA', 'BBBAA'].sort(),
    );
  });

  it('three threads of two steps each: 6!/(2!2!2!) = 90 interleavings', () => {
    const r = explore(
      (s) => {
        for (const n of ['x', 'y', 'z']) {
          s.spawn(n, function* () {
            yield* preempt();
          });
        }
      },
      { preemptionBound: 10 },
    );
    expect(r.schedules).toBe(90);
  });

  /** Unlocked read-modify-write with a preemption point in the middle: a lost update. */
  const racyCounter = (s: Scheduler) => {
    let counter = 0;
    for (const n of ['t1', 't2']) {
      s.spawn(n, function* () {
        const v = counter;
        yield* preempt();
        counter = v + 1;
      });
    }
    return () => {
      if (counter !== 2) throw new Error(`lost update: counter = ${counter}`);
    };
  };

  it('finds a lost update with one preemption, and replay reproduces it', () => {
    expect(explore(racyCounter, { preemptionBound: 0 }).failures).toEqual([]);
    const r = explore(racyCounter, { preemptionBound: 1 });
    expect(r.failures.length).toBeGreaterThan(0);
    const f = r.failures[0]!;
    expect(String(f.error)).toMatch(/lost update/);
    const again = replay(racyCounter, f.schedule);
    expect(String(again.error)).toMatch(/lost update/);
    expect(again.scheduler.trace!.length).toBeGreaterThan(0);
  });

  it('a mutex closes the race in every schedule', () => {
    const guarded = (s: Scheduler) => {
      let counter = 0;
      const m = new Mutex('counter_lock');
      for (const n of ['t1', 't2', 't3']) {
        s.spawn(n, function* () {
          yield* m.lock();
          const v = counter;
          yield* preempt();
          counter = v + 1;
          m.unlock();
        });
      }
      return () => expect(counter).toBe(3);
    };
    const r = explore(guarded, { preemptionBound: 3 });
    expect(r.complete).toBe(true);
    expect(r.failures).toEqual([]);
    expect(r.schedules).toBeGreaterThan(10);
  });

  it('reports ABBA as a failure (inversion in strict mode, deadlock otherwise)', () => {
    const abba = (s: Scheduler) => {
      const a = new SpinLock('A');
      const b = new SpinLock('B');
      s.spawn('t1', function* () {
        yield* a.lock();
        yield* b.lock();
        b.unlock();
        a.unlock();
      });
      s.spawn('t2', function* () {
        yield* b.lock();
        yield* a.lock();
        a.unlock();
        b.unlock();
      });
    };
    const strict = explore(abba, { preemptionBound: 2 });
    expect(strict.failures.length).toBe(strict.schedules);
    expect(String(strict.failures[0]!.error)).toMatch(/lock-inversion/);
    const lax = explore(abba, { preemptionBound: 2, strict: false });
    const deadlocks = lax.failures.filter((f) => /wait cycle/.test(String(f.error)));
    expect(deadlocks.length).toBeGreaterThan(0);
  });

  it('maxSchedules caps the search', () => {
    const seen: string[] = [];
    const r = explore(twoThreads(seen), { preemptionBound: 10, maxSchedules: 4 });
    expect(r.schedules).toBe(4);
    expect(r.complete).toBe(false);
  });
});

describe('PCT', () => {
  /**
   * Depth-2 bug: t2's check must fall between t1's two writes (t1 sets x, t2 reads
   * it, then t1 clears it). Without a priority change one thread runs to completion
   * first and the bug never shows; one change point at the right step finds it.
   */
  const window = (s: Scheduler) => {
    let x = 0;
    let hit = false;
    s.spawn('t1', function* () {
      for (let i = 0; i < 5; i++) yield* preempt();
      x = 1;
      for (let i = 0; i < 5; i++) yield* preempt();
      x = 0;
    });
    s.spawn('t2', function* () {
      for (let i = 0; i < 3; i++) yield* preempt();
      if (x === 1) hit = true;
    });
    return () => hit;
  };

  const hits = (depth: number, seeds: number) => {
    let n = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const s = new Scheduler({ policy: new PctPolicy({ depth, k: 16 }), seed });
      const found = window(s);
      expect(s.run().status).toBe('done');
      if (found()) n++;
    }
    return n;
  };

  it('depth 1 (no change points) never finds the depth-2 bug', () => {
    expect(hits(1, 100)).toBe(0);
  });

  it('depth 2 finds it with some seeds, about as often as the PCT bound promises', () => {
    // Bound: 1/(n k^(d-1)) = 1/(2*16) per run, so >= ~6 of 200 expected.
    const n = hits(2, 200);
    expect(n).toBeGreaterThanOrEqual(3);
  });
});

describe('PCT starvation', () => {
  const spinWait = (s: Scheduler) => {
    let flag = false;
    s.spawn('spinner', function* () {
      while (!flag) yield* preempt();
    });
    s.spawn('setter', function* () {
      yield* preempt();
      flag = true;
    });
  };
  it("afterK: 'random' lets a busy-wait finish once the k steps are over", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const s = new Scheduler({ policy: new PctPolicy({ depth: 1, k: 20, afterK: 'random' }), seed });
      spinWait(s);
      expect(s.run({ maxSteps: 10_000 }).status).toBe('done');
    }
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fcParams } from '../fc-params.js';
import {
  Clock,
  Mutex,
  RandomPolicy,
  ReplayPolicy,
  RwSem,
  Scheduler,
  SpinLock,
  Srcu,
  preempt,
  sleepTicks,
  type Task,
} from '../../src/sched/index.js';

/** A scenario shape fast-check can vary: per thread, a list of actions. */
type Action = { k: 'lock'; lock: number } | { k: 'sleep'; ticks: number } | { k: 'preempt' } | { k: 'read' } | { k: 'sync' };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ k: fc.constant('lock' as const), lock: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ k: fc.constant('sleep' as const), ticks: fc.integer({ min: 0, max: 20 }) }),
  fc.constant({ k: 'preempt' as const }),
  fc.constant({ k: 'read' as const }),
  fc.constant({ k: 'sync' as const }),
);
const scenarioArb = fc.array(fc.array(actionArb, { maxLength: 6 }), { minLength: 1, maxLength: 4 });

/**
 * Builds the scenario. Critical sections take one lock at a time (no order to
 * invert), so every run must finish; the shared counters check exclusion.
 */
function build(s: Scheduler, threads: Action[][]) {
  const locks = [new Mutex('m'), new SpinLock('s'), new RwSem('r')];
  const srcu = new Srcu('srcu');
  let inside = [0, 0, 0];
  let violations = 0;
  const log: string[] = [];
  threads.forEach((acts, ti) => {
    s.spawn(`t${ti}`, function* (): Task {
      for (const a of acts) {
        switch (a.k) {
          case 'lock': {
            const l = locks[a.lock]!;
            if (l instanceof RwSem) yield* l.downWrite();
            else yield* l.lock();
            if (++inside[a.lock]! > 1) violations++;
            log.push(`t${ti}+${a.lock}`);
            yield* preempt();
            inside[a.lock]!--;
            if (l instanceof RwSem) l.upWrite();
            else l.unlock();
            break;
          }
          case 'sleep':
            yield* sleepTicks(a.ticks, 'io');
            break;
          case 'preempt':
            yield* preempt();
            break;
          case 'read': {
            const i = srcu.readLock();
            yield* preempt();
            srcu.readUnlock(i);
            break;
          }
          case 'sync':
            yield* srcu.synchronize();
            break;
        }
      }
    });
  });
  return { log, violations: () => violations, srcu, reset: () => (inside = [0, 0, 0]) };
}

describe('scheduler properties', () => {
  it('any scenario finishes, excludes, and replays from its seed and from its schedule', () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer({ min: 0, max: 0x7fffffff }), (threads, seed) => {
        const run = (s: Scheduler) => {
          const b = build(s, threads);
          const r = s.run({ maxSteps: 10_000 });
          return { r, b };
        };
        const s1 = new Scheduler({ seed, trace: true });
        const a = run(s1);
        expect(a.r.status).toBe('done');
        expect(a.b.violations()).toBe(0);
        expect(s1.bugs).toEqual([]);
        expect(a.b.srcu.readers).toEqual([0, 0]);

        const s2 = new Scheduler({ policy: new RandomPolicy(), seed, trace: true });
        run(s2);
        expect(s2.trace).toEqual(s1.trace);

        const s3 = new Scheduler({ policy: new ReplayPolicy(s1.schedule), trace: true });
        run(s3);
        expect(s3.trace).toEqual(s1.trace);
      }),
      fcParams(150),
    );
  });

  it('Clock fires in time order, FIFO among equal times, cancelled never', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.boolean()), { maxLength: 60, size: 'max' }), (evs) => {
        const c = new Clock();
        const fired: number[] = [];
        const handles = evs.map(([t], i) => c.at(t, () => fired.push(i)));
        evs.forEach(([, cancel], i) => cancel && c.cancel(handles[i]!));
        while (c.jumpToNext());
        const expected = evs
          .map(([t, cancel], i) => ({ t, cancel, i }))
          .filter((e) => !e.cancel)
          .sort((x, y) => x.t - y.t || x.i - y.i)
          .map((e) => e.i);
        expect(fired).toEqual(expected);
        expect(c.pending).toBe(0);
      }),
      fcParams(100),
    );
  });
});

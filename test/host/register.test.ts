// mmu_notifier_register against an rmap walk in flight: registration takes
// mm_take_all_locks (the 2008 mm_lock), so a subscription never joins between a
// range_start and its range_end. Reclaim's try_to_unmap takes no mmap_lock, so
// mmap_lock alone does not exclude it; with the all-locks gate switched off
// (mn.debug.noTakeAllLocks) the new subscriber gets the end of a range whose start it
// never saw. A GRU that joins that way fills, inside the range, the very page the walk
// is unmapping (nothing told it a range is active) and keeps the translation after
// the host pte became a swap entry.

import { describe, expect, it } from 'vitest';
import { hostDebugView, secondaryMmuHost } from '../../src/host/index.js';
import type { MmuNotifierOps } from '../../src/host/index.js';
import { auditGru } from '../../src/gru/audit.js';
import { GruDevice } from '../../src/gru/gru.js';
import { sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { PAGE, createHost, writePages } from './harness.js';

/** A subscriber whose range_start sleeps on swap-out, holding the rmap walk open. */
const slowRecall: MmuNotifierOps = {
  *invalidateRangeStart(r): Task<number> {
    if (r.event === 'clear') yield* sleepTicks(200, 'slow');
    return 0;
  },
};

function registerDuringWalk(noTakeAllLocks: boolean): { unbalanced: number; events: string[] } {
  const h = createHost({ kswapd: false });
  h.k.mn.debug.noTakeAllLocks = noTakeAllLocks;
  const p = h.k.createProcess('guest');
  const events: string[] = [];
  let open = 0;
  let unbalanced = 0;
  const second: MmuNotifierOps = {
    *invalidateRangeStart(): Task<number> {
      events.push('start');
      open++;
      return 0;
    },
    *invalidateRangeEnd(): Task {
      events.push('end');
      if (--open < 0) unbalanced++;
    },
  };
  let walking = false;
  h.sched.spawn('main', function* () {
    const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
    yield* writePages(h, p.mm, hva, 8, 1);
    yield* h.k.mmuNotifierRegister(p.mm, 'slow', {
      *invalidateRangeStart(r): Task<number> {
        walking = true;
        return yield* slowRecall.invalidateRangeStart!(r);
      },
    });
    h.sched.spawn('reclaim', function* () {
      for (let i = 0; i < 10 && p.mm.swapEnts === 0; i++) yield* h.k.reclaim(64);
    });
    h.sched.spawn('register', function* () {
      while (!walking) yield* sleepTicks(1, 'wait');
      yield* h.k.mmuNotifierRegister(p.mm, 'second', second);
    });
  });
  const r = h.sched.run({ maxSteps: 1_000_000 });
  expect(r.status).toBe('done');
  h.k.shutdown();
  return { unbalanced, events };
}

describe('registration against an rmap walk in flight', () => {
  it('with mm_take_all_locks the new subscriber sees every end after its start', () => {
    const r = registerDuringWalk(false);
    expect(r.unbalanced).toBe(0);
    expect(r.events.length).toBeGreaterThan(0);
  });

  it('without it (noTakeAllLocks) it gets the end of a range it never saw start', () => {
    const r = registerDuringWalk(true);
    expect(r.unbalanced).toBeGreaterThan(0);
    expect(r.events[0]).toBe('end');
  });

  for (const noTakeAllLocks of [false, true]) {
    it(`a GRU registered during the walk ${noTakeAllLocks ? 'fills the page inside the range and keeps it past range_end (stale)' : 'joins after it and its fill sees the new pte'}`, () => {
      const h = createHost({ kswapd: false });
      h.k.mn.debug.noTakeAllLocks = noTakeAllLocks;
      const p = h.k.createProcess('gru-client');
      let walkHva = -1;
      let dev: GruDevice | null = null;
      h.sched.spawn('main', function* () {
        const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
        yield* writePages(h, p.mm, hva, 8, 1);
        yield* h.k.mmuNotifierRegister(p.mm, 'slow', {
          *invalidateRangeStart(r): Task<number> {
            if (walkHva < 0 && r.event === 'clear') walkHva = r.start;
            return yield* slowRecall.invalidateRangeStart!(r);
          },
        });
        h.sched.spawn('reclaim', function* () {
          for (let i = 0; i < 10 && p.mm.swapEnts === 0; i++) yield* h.k.reclaim(64);
        });
        h.sched.spawn('register', function* () {
          while (walkHva < 0) yield* sleepTicks(1, 'wait');
          const d = yield* GruDevice.create(secondaryMmuHost(h.k), p.mm);
          dev = d;
          // The device reads the very page the walk is unmapping.
          expect(yield* d!.submit({ op: 'read', hva: walkHva, dst: new Uint8Array(PAGE) })).toBe(0);
        });
      });
      expect(h.sched.run({ maxSteps: 1_000_000 }).status).toBe('done');
      const problems = auditGru(hostDebugView(h.k), dev!);
      if (noTakeAllLocks) expect(problems.some((x) => x.includes('not present'))).toBe(true);
      else expect(problems).toEqual([]);
      h.k.shutdown();
    });
  }
});

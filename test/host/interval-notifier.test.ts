// mmu_interval_notifier (docs/interval-notifier.md): the odd/even counter, which ranges
// call which subs, deferred insert/remove while the tree is frozen, read_begin's wait,
// the non-blockable refusal, and release at exit.

import { describe, expect, it } from 'vitest';
import { EAGAIN, MADV_DONTNEED } from '../../src/host/index.js';
import type { MmuNotifierRange } from '../../src/host/index.js';
import { EOVERFLOW, mmuIntervalReadRetry, mmuIntervalSetSeq } from '../../src/host/interval-notifier.js';
import type { MmuIntervalCore, MmuIntervalNotifier, MmuIntervalNotifierOps } from '../../src/host/interval-notifier.js';
import { zapPageRange } from '../../src/host/memory.js';
import { Completion, sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { PAGE, createHost, expectAllFree, runAll, runThread, writePages } from './harness.js';

interface Call {
  sub: string;
  start: number;
  end: number;
  event: string;
  seq: number;
}

/** Records its calls; sets the seq; optionally sleeps inside (a driver waiting for its device). */
function recorder(calls: Call[], opts: { sleep?: number; entered?: Completion; refuseNonBlockable?: boolean } = {}): MmuIntervalNotifierOps {
  return {
    *invalidate(sub: MmuIntervalNotifier, r: MmuNotifierRange, curSeq: number): Task<boolean> {
      if (!r.blockable && opts.refuseNonBlockable) return false;
      mmuIntervalSetSeq(sub, curSeq);
      calls.push({ sub: sub.name, start: r.start, end: r.end, event: r.event, seq: curSeq });
      opts.entered?.complete();
      if (opts.sleep) yield* sleepTicks(opts.sleep, 'device');
      return true;
    },
  };
}

function sub(x: MmuIntervalNotifier | number): MmuIntervalNotifier {
  if (typeof x === 'number') throw new Error(`insert failed: ${x}`);
  return x;
}

describe('mmu_interval_notifier', () => {
  it('counter is even when idle, odd with cur_seq inside a hit range; only overlapping subs are called', () => {
    const h = createHost();
    const p = h.k.createProcess('p');
    const calls: Call[] = [];
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
      yield* writePages(h, p.mm, hva, 8, 1);
      const a = sub(yield* h.k.mn.itree.insert(p.mm, 'a', hva, 4 * PAGE, recorder(calls)));
      const b = sub(yield* h.k.mn.itree.insert(p.mm, 'b', hva + 4 * PAGE, 4 * PAGE, recorder(calls)));
      const subs = p.mm.subscriptions!;
      expect(subs.invalidateSeq).toBe(2);
      expect(a.invalidateSeq).toBe(1);
      // read_begin does not wait when idle and returns the sub's own seq.
      const seq = yield* h.k.mn.itree.readBegin(a);
      expect(seq).toBe(1);
      expect(yield* h.k.madvise(p.mm, hva + PAGE, PAGE, MADV_DONTNEED)).toBe(0);
      expect(calls).toEqual([{ sub: 'a', start: hva + PAGE, end: hva + 2 * PAGE, event: 'clear', seq: 3 }]);
      expect(subs.invalidateSeq).toBe(4);
      expect(subs.activeInvalidateRanges).toBe(0);
      expect(mmuIntervalReadRetry(a, seq)).toBe(true);
      expect(mmuIntervalReadRetry(b, yield* h.k.mn.itree.readBegin(b))).toBe(false);
      // A range outside every interval leaves the counter even.
      const other = yield* h.k.mmap(p.mm, PAGE);
      yield* writePages(h, p.mm, other, 1, 1);
      expect(yield* h.k.munmap(p.mm, other, PAGE)).toBe(0);
      expect(subs.invalidateSeq).toBe(4);
      expect(calls.length).toBe(1);
      // munmap across both: each called once with the same odd cur_seq.
      expect(yield* h.k.munmap(p.mm, hva, 8 * PAGE)).toBe(0);
      expect(calls.slice(1).map((c) => [c.sub, c.seq])).toEqual([
        ['a', 5],
        ['b', 5],
      ]);
      expect(subs.invalidateSeq).toBe(6);
      yield* h.k.mn.itree.remove(a);
      yield* h.k.mn.itree.remove(b);
      expect(subs.itree).toEqual([]);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('swap-out calls invalidate before the pte changes', () => {
    const h = createHost();
    const p = h.k.createProcess('p');
    const calls: Call[] = [];
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      yield* writePages(h, p.mm, hva, 4, 1);
      const a = sub(yield* h.k.mn.itree.insert(p.mm, 'a', hva, 4 * PAGE, recorder(calls)));
      yield* h.k.reclaim(64);
      expect(h.k.stats().pswpout).toBeGreaterThan(0);
      expect(calls.filter((c) => c.event === 'clear').length).toBeGreaterThan(0);
      yield* h.k.mn.itree.remove(a);
      yield* h.k.exitProcess(p);
    });
  });

  it('refuses a 2008-era mm and an empty or wrapping interval', () => {
    const h = createHost();
    const old = h.k.createProcess('old', { era: '2008' });
    const p = h.k.createProcess('p');
    runThread(h, 'main', function* () {
      expect(yield* h.k.mn.itree.insert(old.mm, 'x', 0x10000, PAGE, recorder([]))).toBeLessThan(0);
      expect(yield* h.k.mn.itree.insert(p.mm, 'x', 0x10000, 0, recorder([]))).toBe(-EOVERFLOW);
      expect(yield* h.k.mn.itree.insert(p.mm, 'x', 0xffff_f000, 2 * PAGE, recorder([]))).toBe(-EOVERFLOW);
    });
  });

  describe('while a range that hits the tree is active', () => {
    type Frozen = { hva: number; a: MmuIntervalNotifier; itree: MmuIntervalCore };
    function frozen(body: (ctx: Frozen) => Task<void>, after: (calls: Call[]) => void): void {
      const h = createHost();
      const p = h.k.createProcess('p');
      const calls: Call[] = [];
      const entered = new Completion('entered');
      let hva = 0;
      let a: MmuIntervalNotifier | null = null;
      const ready = new Completion('ready');
      h.sched.spawn('setup', function* () {
        hva = yield* h.k.mmap(p.mm, 8 * PAGE);
        yield* writePages(h, p.mm, hva, 8, 1);
        a = sub(yield* h.k.mn.itree.insert(p.mm, 'a', hva, 4 * PAGE, recorder(calls, { sleep: 200, entered })));
        ready.completeAll();
        // The invalidation that freezes the tree: 'a' sleeps 200 ticks inside it.
        expect(yield* h.k.madvise(p.mm, hva, 8 * PAGE, MADV_DONTNEED)).toBe(0);
      });
      h.sched.spawn('driver', function* () {
        yield* ready.wait();
        yield* entered.wait();
        expect(p.mm.subscriptions!.isInvalidating()).toBe(true);
        yield* body({ hva, a: a!, itree: h.k.mn.itree });
      });
      runAll(h);
      after(calls);
    }

    it('an insert is deferred to the last end, and its read_begin waits for it', () => {
      let b: MmuIntervalNotifier | null = null;
      let beganAt = 0;
      let seqAtEnd = 0;
      frozen(
        function* ({ hva, a, itree }) {
          const subs = a.mm.subscriptions!;
          b = sub(yield* itree.insert(a.mm, 'b', hva + 4 * PAGE, 4 * PAGE, recorder([])));
          expect(b.inTree).toBe(false);
          expect(subs.deferredList).toContain(b);
          expect(b.invalidateSeq).toBe(subs.invalidateSeq);
          yield* itree.readBegin(b);
          beganAt = subs.invalidateSeq;
          seqAtEnd = subs.activeInvalidateRanges;
          expect(b.inTree).toBe(true);
        },
        (calls) => {
          // 'b' was not in the tree for the range that was already running.
          expect(calls.map((c) => c.sub)).toEqual(['a']);
        },
      );
      expect(beganAt % 2).toBe(0);
      expect(seqAtEnd).toBe(0);
    });

    it('a remove is deferred and waits: no invalidate of the sub runs after it returns', () => {
      frozen(
        function* ({ a, itree }) {
          const subs = a.mm.subscriptions!;
          yield* itree.remove(a);
          expect(subs.isInvalidating()).toBe(false);
          expect(subs.activeInvalidateRanges).toBe(0);
          expect(subs.itree).toEqual([]);
        },
        (calls) => expect(calls.length).toBe(1),
      );
    });
  });

  it('an insert while an unrelated range is active sets the counter odd; read_begin waits for the end', () => {
    const h = createHost();
    const p = h.k.createProcess('p');
    const entered = new Completion('entered');
    const order: string[] = [];
    h.sched.spawn('setup', function* () {
      const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
      yield* writePages(h, p.mm, hva, 8, 1);
      // An hlist notifier that sleeps inside range_start keeps the range active.
      yield* h.k.mmuNotifierRegister(p.mm, 'slow', {
        *invalidateRangeStart(): Task<number> {
          entered.complete();
          yield* sleepTicks(200, 'slow');
          return 0;
        },
        *invalidateRangeEnd(): Task {
          order.push('end');
        },
      });
      h.sched.spawn('driver', function* () {
        yield* entered.wait();
        const subs = p.mm.subscriptions!;
        expect(subs.activeInvalidateRanges).toBe(1);
        expect(subs.isInvalidating()).toBe(false);
        const b = sub(yield* h.k.mn.itree.insert(p.mm, 'b', hva + 4 * PAGE, 4 * PAGE, recorder([])));
        expect(b.inTree).toBe(true);
        expect(subs.isInvalidating()).toBe(true);
        yield* h.k.mn.itree.readBegin(b);
        order.push('read_begin');
        yield* h.k.mn.itree.remove(b);
      });
      // A first sub makes the subscriptions exist before the range starts.
      sub(yield* h.k.mn.itree.insert(p.mm, 'a', hva + 0x100000, PAGE, recorder([])));
      expect(yield* h.k.madvise(p.mm, hva, PAGE, MADV_DONTNEED)).toBe(0);
    });
    runAll(h);
    // read_begin returned only once the range ended (the itree end wakes it; the hlist
    // end runs in the same step).
    expect(order).toEqual(['end', 'read_begin']);
  });

  it('a non-blockable range that a sub refuses ends its itree half and returns -EAGAIN, ptes untouched', () => {
    const h = createHost();
    const p = h.k.createProcess('p');
    const calls: Call[] = [];
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      yield* writePages(h, p.mm, hva, 4, 1);
      const a = sub(yield* h.k.mn.itree.insert(p.mm, 'a', hva, 4 * PAGE, recorder(calls, { refuseNonBlockable: true })));
      yield* p.mm.mmapLock.downRead();
      const r = yield* zapPageRange(h.k, p.mm, hva, hva + 4 * PAGE, 'oom-reap', false);
      p.mm.mmapLock.upRead();
      expect(r).toBe(-EAGAIN);
      const subs = p.mm.subscriptions!;
      expect(subs.activeInvalidateRanges).toBe(0);
      expect(subs.isInvalidating()).toBe(false);
      expect(p.mm.anonRss).toBe(4);
      yield* h.k.mn.itree.remove(a);
      yield* h.k.exitProcess(p);
    });
    expect(calls).toEqual([]);
    expectAllFree(h);
  });

  it('exit calls invalidate with a release range over everything, then the unmaps', () => {
    const h = createHost();
    const p = h.k.createProcess('p');
    const calls: Call[] = [];
    let a: MmuIntervalNotifier | null = null;
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      yield* writePages(h, p.mm, hva, 4, 1);
      a = sub(yield* h.k.mn.itree.insert(p.mm, 'a', hva, 4 * PAGE, recorder(calls)));
      yield* h.k.exitProcess(p);
      // Removal after exit is still the driver's job, and legal.
      yield* h.k.mn.itree.remove(a);
    });
    expect(calls.map((c) => c.event)).toEqual(['release', 'unmap']);
    expect(calls[0]!.start).toBe(0);
    expect(p.mm.subscriptions!.activeInvalidateRanges).toBe(0);
    expectAllFree(h);
  });
});

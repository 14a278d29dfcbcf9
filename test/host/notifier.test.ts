// KERNEL-NOTES §1: what the primary pte and the page look like INSIDE each callback,
// for both eras, on every caller (swap-out, MADV_DONTNEED, munmap, mprotect, exit).

import { describe, expect, it } from 'vitest';
import { EAGAIN, PG_free, PTE_NONE, PTE_WRITE, PTE_YOUNG, ptePfn, ptePresent, pteIsSwap } from '../../src/host/index.js';
import type { HostKernel, Mm, MmuNotifierOps, MmuNotifierRange, NotifierEra } from '../../src/host/index.js';
import { sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { KiB, PAGE, createHost, expectAllFree, runAll, runThread, verifyPages, writePages } from './harness.js';

interface Probe {
  /** The page under watch and the pfn it had when watching began. */
  hva: number;
  pfn: number;
}

/** A secondary MMU that checks the §1 promises at the moment each callback runs. */
function recordingNotifier(k: HostKernel, mm: Mm, probe: Probe, log: string[]): MmuNotifierOps {
  const page = () => probe.hva >>> 12;
  const inRange = (r: MmuNotifierRange) => probe.hva >= r.start && probe.hva < r.end;
  const fr = k.frames;
  return {
    *invalidateRangeStart(r: MmuNotifierRange): Task<number> {
      if (inRange(r) && probe.pfn >= 0) {
        const pte = mm.pt.get(page());
        // Unchanged: still present, still the same page, page mapped and referenced.
        expect(ptePresent(pte), `start(${r.event}): pte present`).toBe(true);
        expect(ptePfn(pte)).toBe(probe.pfn);
        expect(fr.mapcount[probe.pfn]).toBeGreaterThanOrEqual(1);
        expect(fr.refcount[probe.pfn]).toBeGreaterThanOrEqual(1);
        if (r.event === 'protection') expect(pte & PTE_WRITE).not.toBe(0);
        log.push(`start:${r.event}`);
      }
      return 0;
    },
    *invalidateRangeEnd(r: MmuNotifierRange): Task {
      if (inRange(r) && probe.pfn >= 0) {
        const pte = mm.pt.get(page());
        if (r.event === 'protection') {
          expect(ptePresent(pte) && (pte & PTE_WRITE) === 0, 'end(protection): pte read-only').toBe(true);
        } else if (r.event === 'clear' && pteIsSwap(pte)) {
          log.push('end:swapout');
          return;
        } else {
          expect(pte, `end(${r.event}): pte gone`).toBe(PTE_NONE);
        }
        log.push(`end:${r.event}`);
      }
    },
    invalidatePage(m: Mm, hva: number): void {
      if (hva !== probe.hva) return;
      expect(m).toBe(mm);
      // Already cleared, page not yet freed, PT lock held.
      expect(mm.pt.get(page())).toBe(PTE_NONE);
      expect(fr.flags[probe.pfn]! & PG_free).toBe(0);
      expect(fr.refcount[probe.pfn]).toBeGreaterThanOrEqual(1);
      expect(mm.ptl.holder).not.toBeNull();
      log.push('invalidate_page');
    },
    clearFlushYoung(m: Mm, start: number, end: number): boolean {
      if (probe.hva >= start && probe.hva < end) {
        const pte = mm.pt.get(page());
        expect(ptePresent(pte)).toBe(true);
        expect(pte & PTE_YOUNG, 'clear_flush_young: host young already cleared').toBe(0);
        expect(mm.ptl.holder).not.toBeNull();
        log.push('clear_flush_young');
      }
      void m;
      return false;
    },
    agePage(m: Mm, hva: number): boolean {
      if (hva === probe.hva) {
        const pte = mm.pt.get(page());
        expect(ptePresent(pte)).toBe(true);
        expect(pte & PTE_YOUNG, 'age_page: host young already cleared').toBe(0);
        log.push('age_page');
      }
      void m;
      return false;
    },
    *release(m: Mm): Task {
      expect(m).toBe(mm);
      // All still mapped: the probe page is present and its frame is not free.
      const pte = mm.pt.get(page());
      expect(ptePresent(pte), 'release: still mapped').toBe(true);
      expect(fr.flags[ptePfn(pte)]! & PG_free).toBe(0);
      expect(mm.anonRss).toBeGreaterThan(0);
      log.push('release');
    },
  };
}

function* swapOut(k: HostKernel, mm: Mm, hva: number): Task<void> {
  for (let i = 0; i < 50 && !pteIsSwap(mm.pt.get(hva >>> 12)); i++) yield* k.reclaim(64);
  expect(pteIsSwap(mm.pt.get(hva >>> 12)), 'page was swapped out').toBe(true);
}

describe.each<NotifierEra>(['modern', '2008'])('mmu_notifier callbacks, era %s', (era) => {
  it('swap-out (try_to_unmap) and aging', () => {
    const h = createHost({ era, kswapd: false, ramBytes: 256 * KiB });
    const p = h.k.createProcess('guest');
    const log: string[] = [];
    const probe: Probe = { hva: 0, pfn: -1 };
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 16 * PAGE);
      yield* writePages(h, p.mm, hva, 16, 1);
      probe.hva = hva + 3 * PAGE;
      probe.pfn = ptePfn(p.mm.pt.get(probe.hva >>> 12));
      const sub = yield* h.k.mmuNotifierRegister(p.mm, 'recorder', recordingNotifier(h.k, p.mm, probe, log));
      expect(sub).not.toBeNull();
      yield* swapOut(h.k, p.mm, probe.hva);
      // Fault it back, then unregister: release must still see it mapped.
      expect(yield* verifyPages(h, p.mm, hva, 16, 1)).toEqual([]);
      probe.pfn = ptePfn(p.mm.pt.get(probe.hva >>> 12));
      yield* h.k.mmuNotifierUnregister(sub!);
      yield* h.k.exitProcess(p);
    });
    if (era === 'modern') {
      expect(log).toContain('clear_flush_young');
      expect(log).toContain('start:clear');
      expect(log).toContain('end:swapout');
      expect(log).not.toContain('invalidate_page');
      expect(log.indexOf('start:clear')).toBeLessThan(log.indexOf('end:swapout'));
    } else {
      expect(log).toContain('age_page');
      expect(log).toContain('invalidate_page');
      expect(log).not.toContain('start:clear');
    }
    expect(log.filter((l) => l === 'release')).toHaveLength(1);
    expectAllFree(h);
  });

  it('MADV_DONTNEED, mprotect, munmap and exit', () => {
    const h = createHost({ era, kswapd: false });
    const p = h.k.createProcess('guest');
    const log: string[] = [];
    const probe: Probe = { hva: 0, pfn: -1 };
    runThread(h, 'main', function* () {
      const sub = yield* h.k.mmuNotifierRegister(p.mm, 'recorder', recordingNotifier(h.k, p.mm, probe, log));
      const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
      const watch = function* (i: number): Task<void> {
        yield* writePages(h, p.mm, hva, 8, i);
        probe.hva = hva + i * PAGE;
        probe.pfn = ptePfn(p.mm.pt.get(probe.hva >>> 12));
      };
      yield* watch(1);
      expect(yield* h.k.madvise(p.mm, hva, 4 * PAGE, 4)).toBe(0);
      yield* watch(2);
      expect(yield* h.k.mprotect(p.mm, hva, 8 * PAGE, 1)).toBe(0);
      expect(yield* h.k.mprotect(p.mm, hva, 8 * PAGE, 3)).toBe(0);
      yield* watch(5);
      expect(yield* h.k.munmap(p.mm, hva + 4 * PAGE, 4 * PAGE)).toBe(0);
      const hva2 = yield* h.k.mmap(p.mm, 2 * PAGE);
      yield* writePages(h, p.mm, hva2, 2, 9);
      probe.hva = hva2;
      probe.pfn = ptePfn(p.mm.pt.get(hva2 >>> 12));
      yield* h.k.exitProcess(p);
      // exit released and unhashed it: unregister must not call release again.
      yield* h.k.mmuNotifierUnregister(sub!);
    });
    expect(log).toEqual(['start:clear', 'end:clear', 'start:protection', 'end:protection', 'start:unmap', 'end:unmap', 'release']);
    expectAllFree(h);
  });
});

describe('mmu_notifier lifetime', () => {
  it('unregister returns only after a sleeping callback in another thread finished', () => {
    const h = createHost({ kswapd: false });
    const p = h.k.createProcess('guest');
    let started = false;
    let finished = false;
    let releases = 0;
    let unregisteredAt = -1;
    let finishedAt = -1;
    const ops: MmuNotifierOps = {
      *invalidateRangeStart(): Task<number> {
        started = true;
        yield* sleepTicks(500, 'slow secondary MMU');
        finished = true;
        finishedAt = h.sched.now;
        return 0;
      },
      *release(): Task {
        releases++;
      },
    };
    let hva = 0;
    h.sched.spawn('setup', function* () {
      hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      yield* writePages(h, p.mm, hva, 4, 1);
      const sub = yield* h.k.mmuNotifierRegister(p.mm, 'slow', ops);
      h.sched.spawn('zapper', function* () {
        expect(yield* h.k.madvise(p.mm, hva, 4 * PAGE, 4)).toBe(0);
      });
      h.sched.spawn('unregister', function* () {
        while (!started) yield* sleepTicks(1, 'wait for callback');
        expect(finished).toBe(false);
        yield* h.k.mmuNotifierUnregister(sub!);
        unregisteredAt = h.sched.now;
        expect(finished, 'unregister returned while a callback ran').toBe(true);
      });
    });
    runAll(h);
    expect(releases).toBe(1);
    expect(unregisteredAt).toBeGreaterThanOrEqual(finishedAt);
    runThread(h, 'exit', () => h.k.exitProcess(p));
    expectAllFree(h);
  });

  it('registration waits for an rmap walk in flight (mm_take_all_locks)', () => {
    const h = createHost({ kswapd: false });
    const p = h.k.createProcess('guest');
    const events: string[] = [];
    const slow: MmuNotifierOps = {
      *invalidateRangeStart(r): Task<number> {
        if (r.event === 'clear') {
          events.push('first:start');
          yield* sleepTicks(200, 'slow');
        }
        return 0;
      },
      *invalidateRangeEnd(r): Task {
        if (r.event === 'clear') events.push('first:end');
      },
    };
    const second: MmuNotifierOps = {
      *invalidateRangeStart(): Task<number> {
        events.push('second:start');
        return 0;
      },
      *invalidateRangeEnd(): Task {
        events.push('second:end');
      },
    };
    h.sched.spawn('main', function* () {
      const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
      yield* writePages(h, p.mm, hva, 8, 1);
      yield* h.k.mmuNotifierRegister(p.mm, 'slow', slow);
      h.sched.spawn('reclaim', function* () {
        for (let i = 0; i < 10 && p.mm.swapEnts === 0; i++) yield* h.k.reclaim(64);
      });
      h.sched.spawn('register', function* () {
        while (!events.includes('first:start')) yield* sleepTicks(1, 'wait');
        yield* h.k.mmuNotifierRegister(p.mm, 'second', second);
        events.push('registered');
      });
    });
    runAll(h);
    // The second subscriber never sees an end without its start.
    const firstEnd = events.indexOf('first:end');
    const registered = events.indexOf('registered');
    expect(firstEnd).toBeGreaterThanOrEqual(0);
    expect(registered).toBeGreaterThan(firstEnd);
    let open = 0;
    for (const e of events) {
      if (e === 'second:start') open++;
      if (e === 'second:end') {
        open--;
        expect(open).toBeGreaterThanOrEqual(0);
      }
    }
    runThread(h, 'exit', () => h.k.exitProcess(p));
    expectAllFree(h);
  });

  it('a non-blockable start that fails with EAGAIN backs out the starts that succeeded', () => {
    const h = createHost({ kswapd: false });
    const p = h.k.createProcess('guest');
    const calls: string[] = [];
    const ok: MmuNotifierOps = {
      *invalidateRangeStart(): Task<number> {
        calls.push('ok:start');
        return 0;
      },
      *invalidateRangeEnd(): Task {
        calls.push('ok:end');
      },
    };
    const busy: MmuNotifierOps = {
      *invalidateRangeStart(r): Task<number> {
        calls.push('busy:start');
        return r.blockable ? 0 : -EAGAIN;
      },
      *invalidateRangeEnd(): Task {
        calls.push('busy:end');
      },
    };
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, PAGE);
      yield* writePages(h, p.mm, hva, 1, 1);
      yield* h.k.mmuNotifierRegister(p.mm, 'busy', busy);
      yield* h.k.mmuNotifierRegister(p.mm, 'ok', ok); // at the head: called first
      const r = yield* h.k.mn.invalidateRangeStart({ mm: p.mm, start: hva, end: hva + PAGE, event: 'oom-reap', blockable: false });
      expect(r).toBe(-EAGAIN);
      yield* h.k.exitProcess(p);
    });
    expect(calls).toEqual(['ok:start', 'busy:start', 'ok:end']);
    expectAllFree(h);
  });
});

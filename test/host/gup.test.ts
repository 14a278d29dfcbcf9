// get_user_pages / pin_user_pages against reclaim, and the OOM killer.

import { describe, expect, it } from 'vitest';
import { EFAULT, ENOMEM, EINTR, PG_free, PROT_READ, checkInvariants, ptePfn, ptePresent, pteIsSwap } from '../../src/host/index.js';
import { sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { KiB, MiB, PAGE, createHost, expectAllFree, pattern, runAll, runThread, verifyPages, writePages } from './harness.js';

function frameEquals(bytes: Uint8Array, pfn: number, want: Uint8Array): boolean {
  const off = pfn * PAGE;
  for (let i = 0; i < PAGE; i++) if (bytes[off + i] !== want[i]) return false;
  return true;
}

describe('get_user_pages and pin_user_pages under reclaim', () => {
  it('pinned pages are never swapped while 3x RAM churns around them', () => {
    const h = createHost({ ramBytes: 256 * KiB, swapBytes: 2 * MiB });
    const dev = h.k.createProcess('rdma');
    const hog = h.k.createProcess('hog');
    const pinned: number[] = [];
    let devHva = 0;
    h.sched.spawn('rdma', function* () {
      devHva = yield* h.k.mmap(dev.mm, 8 * PAGE);
      yield* writePages(h, dev.mm, devHva, 8, 7);
      for (let i = 0; i < 8; i++) {
        const pfn = yield* h.k.pinUserPages(dev.mm, devHva + i * PAGE, true);
        expect(pfn).toBeGreaterThanOrEqual(0);
        pinned.push(pfn);
      }
      h.sched.spawn('hog', function* () {
        const n = (3 * 256 * KiB) / PAGE;
        const hva = yield* h.k.mmap(hog.mm, n * PAGE);
        yield* writePages(h, hog.mm, hva, n, 1);
        expect(yield* verifyPages(h, hog.mm, hva, n, 1)).toEqual([]);
        yield* h.k.exitProcess(hog);
      });
    });
    runAll(h);
    expect(h.k.stats().pswpout).toBeGreaterThan(0);
    expect(h.k.stats().pgkeepPinned).toBeGreaterThan(0);
    for (let i = 0; i < 8; i++) {
      const pte = dev.mm.pt.get((devHva >>> 12) + i);
      expect(ptePresent(pte)).toBe(true);
      expect(ptePfn(pte)).toBe(pinned[i]);
      expect(frameEquals(h.k.frames.bytes, pinned[i]!, pattern(i, 7))).toBe(true);
    }
    checkInvariants(h.k);
    for (const pfn of pinned) h.k.unpinUserPage(pfn);
    runThread(h, 'exit', () => h.k.exitProcess(dev));
    expectAllFree(h);
  });

  for (const unkillable of [false, true]) {
    it(`pinning more than RAM ends in a clear OOM report, not a hang (${unkillable ? 'unkillable' : 'killable'} pinner)`, () => {
      const h = createHost({ ramBytes: 128 * KiB, swapBytes: 1 * MiB });
      const p = h.k.createProcess('pinner', { oomUnkillable: unkillable });
      const pfns: number[] = [];
      let err = 0;
      runThread(h, 'pinner', function* () {
        const n = (2 * 128 * KiB) / PAGE;
        const hva = yield* h.k.mmap(p.mm, n * PAGE);
        for (let i = 0; i < n; i++) {
          const pfn = yield* h.k.pinUserPages(p.mm, hva + i * PAGE, true);
          if (pfn < 0) {
            err = pfn;
            break;
          }
          pfns.push(pfn);
        }
        yield* h.k.exitProcess(p);
      });
      expect(pfns.length).toBeLessThan(h.k.frames.nrFrames);
      const log = h.k.ctx.log.join('\n');
      if (unkillable) {
        // Nobody to kill: the allocation fails and the report says why.
        expect(err).toBe(-ENOMEM);
        const last = h.k.oomReports.at(-1)!;
        expect(last.victim).toBeNull();
        expect(last.message).toMatch(/no killable processes/);
        expect(last.message).toMatch(new RegExp(`${pfns.length} of \\d+ pages .* are pinned`));
        expect(last.pinnedPages).toBe(pfns.length);
      } else {
        // The pinner is the victim; reaping cannot free pinned memory, and says so.
        expect(err).toBe(-EINTR);
        expect(log).toMatch(/Out of memory: Killed process 1 \(pinner\)/);
        expect(log).toMatch(new RegExp(`oom_reaper: reaped process 1 \\(pinner\\).*${pfns.length} pinned pages stay allocated`));
      }
      // Exit could not free pinned pages: they are allocated, unmapped, and balanced.
      checkInvariants(h.k);
      expect(h.k.frames.nrFree).toBe(h.k.frames.nrFrames - pfns.length);
      for (const pfn of pfns) h.k.unpinUserPage(pfn);
      expectAllFree(h);
    });
  }

  it('a pinner that reads an unpinned page before every pin (pin-mode KVM walking a guest table) is OOM-killed, not thrashed', () => {
    // Once the pins fill RAM, that page is the only one reclaim can free: each pin's
    // allocation used to take it, the next read faulted it back by reclaiming the
    // one before, and so on for ever. A node that reclaim can never lift to its high
    // watermark sends the allocation to the OOM killer instead.
    const h = createHost({ ramBytes: 128 * KiB, swapBytes: 1 * MiB });
    const p = h.k.createProcess('pinner');
    const pfns: number[] = [];
    let err = 0;
    let reads = 0;
    runThread(h, 'pinner', function* () {
      const table = yield* h.k.mmap(p.mm, PAGE);
      yield* writePages(h, p.mm, table, 1, 3);
      const n = (2 * 128 * KiB) / PAGE;
      const hva = yield* h.k.mmap(p.mm, n * PAGE);
      const word = new Uint8Array(4);
      for (let i = 0; i < n && err === 0; i++) {
        // Read (and touch) the table page, then pin a data page, retrying as the
        // KVM fault path does when the table page was reclaimed meanwhile.
        for (let attempt = 0; ; attempt++) {
          expect(attempt).toBeLessThan(1000);
          err = yield* h.k.accessRead(p.mm, table, word);
          reads++;
          if (err !== 0) break;
          const pfn = yield* h.k.pinUserPages(p.mm, hva + i * PAGE, true);
          if (pfn < 0) {
            err = pfn;
            break;
          }
          if (ptePresent(p.mm.pt.get(table >>> 12))) {
            pfns.push(pfn);
            break;
          }
          h.k.unpinUserPage(pfn);
        }
      }
      yield* h.k.exitProcess(p);
    });
    expect(err).toBe(-EINTR);
    expect(reads).toBeLessThan(2 * pfns.length + 64);
    expect(h.k.stats().oomKill).toBe(1);
    const report = h.k.oomReports.at(-1)!;
    expect(report.victim?.name).toBe('pinner');
    expect(report.report).toMatch(/pinner \(pid 1\) invoked oom-killer[\s\S]*all_unreclaimable\? yes[\s\S]*Out of memory: Killed process 1 \(pinner\)/);
    checkInvariants(h.k);
    for (const pfn of pfns) h.k.unpinUserPage(pfn);
    expectAllFree(h);
  });

  it('a page with a gup reference survives reclaim until put, then is reclaimed', () => {
    const h = createHost({ ramBytes: 256 * KiB, kswapd: false });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 16 * PAGE);
      yield* writePages(h, p.mm, hva, 16, 3);
      const pfn = yield* h.k.getUserPages(p.mm, hva + 5 * PAGE, false);
      expect(pfn).toBeGreaterThanOrEqual(0);
      const page = (hva >>> 12) + 5;
      for (let i = 0; i < 20 && !pteIsSwap(p.mm.pt.get(page)); i++) yield* h.k.reclaim(64);
      // Unmapped (its pte is a swap entry) but not freed: the reference keeps it.
      expect(pteIsSwap(p.mm.pt.get(page))).toBe(true);
      expect(h.k.frames.flags[pfn]! & PG_free).toBe(0);
      expect(frameEquals(h.k.frames.bytes, pfn, pattern(5, 3))).toBe(true);
      for (let i = 0; i < 5; i++) yield* h.k.reclaim(64);
      expect(h.k.frames.flags[pfn]! & PG_free).toBe(0);
      expect(h.k.stats().pgkeepRefd).toBeGreaterThan(0);
      checkInvariants(h.k);
      h.k.putPage(pfn);
      for (let i = 0; i < 5 && !h.k.frames.isFree(pfn); i++) yield* h.k.reclaim(64);
      expect(h.k.frames.isFree(pfn)).toBe(true);
      expect(yield* verifyPages(h, p.mm, hva, 16, 3)).toEqual([]);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('a fault racing with pageout of the same page maps the swap-cache page', () => {
    const h = createHost({ ramBytes: 256 * KiB, kswapd: false, swapWriteLatency: 400, swapReadLatency: 50 });
    const p = h.k.createProcess('guest');
    let hva = 0;
    h.sched.spawn('main', function* () {
      hva = yield* h.k.mmap(p.mm, 16 * PAGE);
      yield* writePages(h, p.mm, hva, 16, 4);
      h.sched.spawn('reclaim', function* () {
        for (let i = 0; i < 6; i++) yield* h.k.reclaim(64);
      });
      h.sched.spawn('toucher', function* (): Task<void> {
        // Poll until a page is unmapped and under writeback, then read it.
        for (let t = 0; t < 5000; t++) {
          for (let i = 0; i < 16; i++) {
            const pte = p.mm.pt.get((hva >>> 12) + i);
            if (pteIsSwap(pte) && h.k.swap.lookup(pte >>> 8) >= 0) {
              const buf = new Uint8Array(PAGE);
              expect(yield* h.k.accessRead(p.mm, hva + i * PAGE, buf)).toBe(0);
              expect(buf).toEqual(pattern(i, 4));
              return;
            }
          }
          yield* sleepTicks(1, 'poll');
        }
      });
    });
    runAll(h);
    expect(h.k.stats().swapCacheHit).toBeGreaterThan(0);
    runThread(h, 'verify', function* () {
      expect(yield* verifyPages(h, p.mm, hva, 16, 4)).toEqual([]);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });
});

describe('syscalls', () => {
  it('MADV_DONTNEED then touch reads zeroes; mprotect read-only then write fails', () => {
    const h = createHost({ kswapd: false });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      yield* writePages(h, p.mm, hva, 4, 1);
      expect(yield* h.k.madvise(p.mm, hva + PAGE, PAGE, 4)).toBe(0);
      const buf = new Uint8Array(PAGE);
      expect(yield* h.k.accessRead(p.mm, hva + PAGE, buf)).toBe(0);
      expect(buf.every((b) => b === 0)).toBe(true);
      expect(yield* h.k.accessRead(p.mm, hva, buf)).toBe(0);
      expect(buf).toEqual(pattern(0, 1));

      expect(yield* h.k.mprotect(p.mm, hva, 4 * PAGE, 1)).toBe(0);
      expect(yield* h.k.accessWrite(p.mm, hva + 2 * PAGE, pattern(2, 9))).toBe(-EFAULT);
      expect(yield* h.k.getUserPages(p.mm, hva + 2 * PAGE, true)).toBe(-EFAULT);
      expect(yield* h.k.accessRead(p.mm, hva + 2 * PAGE, buf)).toBe(0);
      expect(buf).toEqual(pattern(2, 1));
      expect(yield* h.k.mprotect(p.mm, hva, 4 * PAGE, 3)).toBe(0);
      expect(yield* h.k.accessWrite(p.mm, hva + 2 * PAGE, pattern(2, 9))).toBe(0);

      expect(yield* h.k.accessRead(p.mm, hva + 8 * PAGE, buf)).toBe(-EFAULT);
      expect(yield* h.k.madvise(p.mm, hva + 8 * PAGE, PAGE, 4)).toBe(-ENOMEM);
      expect(yield* h.k.munmap(p.mm, hva, 2 * PAGE)).toBe(0);
      expect(yield* h.k.accessRead(p.mm, hva, buf)).toBe(-EFAULT);
      checkInvariants(h.k);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('the OOM killer picks the largest killable process and the rest survive', () => {
    const h = createHost({ ramBytes: 256 * KiB, swapBytes: 64 * KiB });
    const small = h.k.createProcess('small');
    const hog = h.k.createProcess('hog');
    let smallHva = 0;
    let hogErr = 0;
    h.sched.spawn('small', function* () {
      smallHva = yield* h.k.mmap(small.mm, 8 * PAGE);
      yield* writePages(h, small.mm, smallHva, 8, 5);
      h.sched.spawn('hog', function* () {
        const n = (2 * 256 * KiB) / PAGE;
        const hva = yield* h.k.mmap(hog.mm, n * PAGE);
        for (let i = 0; i < n; i++) {
          const r = yield* h.k.accessWrite(hog.mm, hva + i * PAGE, pattern(i, 1));
          if (r !== 0) {
            hogErr = r;
            break;
          }
        }
        yield* h.k.exitProcess(hog);
      });
    });
    runAll(h);
    expect(hogErr).toBe(-EINTR);
    expect(h.k.stats().oomKill).toBe(1);
    expect(h.k.ctx.log.join('\n')).toMatch(/Out of memory: Killed process 2 \(hog\) total-vm:\d+kB, anon-rss:\d+kB/);
    expect(small.killed).toBe(false);
    runThread(h, 'small-verify', function* () {
      expect(yield* verifyPages(h, small.mm, smallHva, 8, 5)).toEqual([]);
      yield* h.k.exitProcess(small);
    });
    expectAllFree(h);
  });
});

describe('get_user_page_fast_only (the driver probe: no sleep, no fault, no touch)', () => {
  it('takes a reference only on a present page, writable only for a writable pte, and leaves the pte as it was', () => {
    const h = createHost({ ramBytes: 256 * KiB, swapBytes: 1 * MiB });
    const p = h.k.createProcess('drv');
    runThread(h, 'drv', function* () {
      const hva = yield* h.k.mmap(p.mm, 3 * PAGE);
      yield* writePages(h, p.mm, hva, 2, 1);
      // Never touched: no pte, and the probe does not fault it in.
      expect(h.k.getUserPageFastOnly(p.mm, hva + 2 * PAGE, false)).toBe(-1);
      expect(p.mm.pt.get((hva >>> 12) + 2)).toBe(0);
      const pte = p.mm.pt.get(hva >>> 12);
      const pfn = h.k.getUserPageFastOnly(p.mm, hva, true);
      expect(pfn).toBe(ptePfn(pte));
      expect(h.k.frames.gupRefs[pfn]).toBe(1);
      expect(p.mm.pt.get(hva >>> 12)).toBe(pte);
      // Reclaim cannot free a page the probe holds; put gives it back.
      h.k.putPage(pfn);
      expect(h.k.frames.gupRefs[pfn]).toBe(0);
      // Read-only: a read probe succeeds, a write probe fails (no COW break, no fault).
      expect(yield* h.k.mprotect(p.mm, hva, PAGE, PROT_READ)).toBe(0);
      expect(h.k.getUserPageFastOnly(p.mm, hva, true)).toBe(-1);
      const ro = h.k.getUserPageFastOnly(p.mm, hva, false);
      expect(ro).toBe(pfn);
      h.k.putPage(ro);
      // Swapped out: nothing, and the page stays on swap.
      yield* h.k.reclaimUserPage(p.mm, hva + PAGE);
      expect(pteIsSwap(p.mm.pt.get((hva >>> 12) + 1))).toBe(true);
      expect(h.k.getUserPageFastOnly(p.mm, hva + PAGE, false)).toBe(-1);
      expect(pteIsSwap(p.mm.pt.get((hva >>> 12) + 1))).toBe(true);
      checkInvariants(h.k);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });
});

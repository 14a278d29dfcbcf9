// reclaimUserPage: reclaim_pages() for one page (the console's `swapout GFN`), with
// the notifier zap it causes, and every way it can decline: pinned, an extra
// reference, already swapped, never touched.

import { describe, expect, it } from 'vitest';
import { PTE_YOUNG, ptePresent, pteIsSwap, pteSwapSlot } from '../../src/host/index.js';
import type { MmuNotifierOps, MmuNotifierRange, UserPageReclaim } from '../../src/host/index.js';
import type { Task } from '../../src/sched/index.js';
import { KiB, MiB, PAGE, createHost, expectAllFree, expectBalanced, runThread, verifyPages, writePages } from './harness.js';

function setup(era: 'modern' | '2008' = 'modern') {
  const h = createHost({ ramBytes: 256 * KiB, swapBytes: 1 * MiB, kswapd: false });
  const p = h.k.createProcess('vmm', { era });
  const log: string[] = [];
  const ops: MmuNotifierOps = {
    *invalidateRangeStart(r: MmuNotifierRange): Task<number> {
      log.push(`start ${r.event} 0x${r.start.toString(16)}-0x${r.end.toString(16)}`);
      return 0;
    },
    *invalidateRangeEnd(r: MmuNotifierRange): Task {
      log.push(`end ${r.event}`);
    },
    invalidatePage: (_mm, hva) => void log.push(`invalidate_page 0x${hva.toString(16)}`),
  };
  return { h, p, log, ops };
}

describe('reclaimUserPage (reclaim_pages for one page)', () => {
  it('swaps one dirty page out through the notifier, leaves its neighbours, and a touch swaps it back in', () => {
    const { h, p, log, ops } = setup();
    let r: UserPageReclaim | null = null;
    runThread(h, 'vmm', function* () {
      expect(yield* h.k.mmuNotifierRegister(p.mm, 'probe', ops)).not.toBeNull();
      const hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      yield* writePages(h, p.mm, hva, 4, 1);
      // Young (just written): reclaim_pages ignores references, as MADV_PAGEOUT does.
      expect(p.mm.pt.get(hva / PAGE + 2) & PTE_YOUNG).not.toBe(0);
      log.length = 0;
      r = yield* h.k.reclaimUserPage(p.mm, hva + 2 * PAGE + 123);
      const pte = p.mm.pt.get(hva / PAGE + 2);
      expect(pteIsSwap(pte)).toBe(true);
      for (const i of [0, 1, 3]) expect(ptePresent(p.mm.pt.get(hva / PAGE + i))).toBe(true);
      expect(log).toEqual([`start clear 0x${(hva + 2 * PAGE).toString(16)}-0x${(hva + 3 * PAGE).toString(16)}`, 'end clear']);
      expect(h.k.stats().pswpout).toBe(1);
      expect(yield* h.k.reclaimUserPage(p.mm, hva + 2 * PAGE)).toEqual({ kind: 'swapped', slot: pteSwapSlot(pte) });
      expect(yield* verifyPages(h, p.mm, hva, 4, 1)).toEqual([]);
      expect(h.k.stats().pswpin).toBe(1);
      expectBalanced(h);
      yield* h.k.exitProcess(p);
    });
    expect(r).toMatchObject({ kind: 'freed', written: true });
    expectAllFree(h);
  });

  it('says so for a page never touched', () => {
    const { h, p } = setup();
    runThread(h, 'vmm', function* () {
      const hva = yield* h.k.mmap(p.mm, 4 * PAGE);
      expect(yield* h.k.reclaimUserPage(p.mm, hva)).toEqual({ kind: 'none' });
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('leaves a pinned page mapped and where it was, with the reason; unpinned, it goes', () => {
    const { h, p, log, ops } = setup();
    runThread(h, 'vmm', function* () {
      expect(yield* h.k.mmuNotifierRegister(p.mm, 'probe', ops)).not.toBeNull();
      const hva = yield* h.k.mmap(p.mm, 2 * PAGE);
      yield* writePages(h, p.mm, hva, 2, 1);
      const pfn = yield* h.k.pinUserPages(p.mm, hva, true);
      const refs = h.k.frames.refcount[pfn];
      log.length = 0;
      const r = yield* h.k.reclaimUserPage(p.mm, hva);
      expect(r).toMatchObject({ kind: 'kept', pfn });
      expect(r.kind === 'kept' && r.why).toMatch(/pinned/);
      expect(log).toEqual([]);
      expect(ptePresent(p.mm.pt.get(hva / PAGE))).toBe(true);
      expect(h.k.frames.refcount[pfn]).toBe(refs);
      expect(h.k.nrIsolated).toBe(0);
      expect(h.k.stats().pswpout).toBe(0);
      expectBalanced(h);
      h.k.unpinUserPage(pfn, true);
      expect(yield* h.k.reclaimUserPage(p.mm, hva)).toMatchObject({ kind: 'freed', pfn });
      expect(yield* verifyPages(h, p.mm, hva, 2, 1)).toEqual([]);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('unmaps a page someone holds a reference to, but the frame stays in the swap cache (v7 KVM keeps one)', () => {
    const { h, p } = setup();
    runThread(h, 'vmm', function* () {
      const hva = yield* h.k.mmap(p.mm, PAGE);
      yield* writePages(h, p.mm, hva, 1, 1);
      const pfn = yield* h.k.getUserPages(p.mm, hva, false);
      const r = yield* h.k.reclaimUserPage(p.mm, hva);
      expect(r).toMatchObject({ kind: 'swapcache', pfn });
      expect(r.kind === 'swapcache' && r.why).toMatch(/1 extra reference/);
      expect(pteIsSwap(p.mm.pt.get(hva / PAGE))).toBe(true);
      expectBalanced(h);
      h.k.putPage(pfn);
      // The next touch finds it in the swap cache: no read from the device.
      expect(yield* verifyPages(h, p.mm, hva, 1, 1)).toEqual([]);
      expect(h.k.stats().pswpin).toBe(0);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('says a clean page kept for an extra reference was not written (its slot still holds its data)', () => {
    const { h, p } = setup();
    runThread(h, 'vmm', function* () {
      const hva = yield* h.k.mmap(p.mm, PAGE);
      yield* writePages(h, p.mm, hva, 1, 1);
      expect(yield* h.k.reclaimUserPage(p.mm, hva)).toMatchObject({ kind: 'freed', written: true });
      // A read swap-in keeps the slot: the page is clean in the swap cache.
      expect(yield* verifyPages(h, p.mm, hva, 1, 1)).toEqual([]);
      const pfn = yield* h.k.getUserPages(p.mm, hva, false);
      const pswpout = h.k.stats().pswpout;
      const r = yield* h.k.reclaimUserPage(p.mm, hva);
      expect(r).toMatchObject({ kind: 'swapcache', pfn });
      expect(r.kind === 'swapcache' && r.why).toMatch(/^clean in the swap cache .*, but 1 extra reference/);
      expect(h.k.stats().pswpout).toBe(pswpout);
      expectBalanced(h);
      h.k.putPage(pfn);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('2008 era: invalidate_page after the pte is cleared; a young page is kept once (try_to_unmap_one), then goes', () => {
    const { h, p, log, ops } = setup('2008');
    runThread(h, 'vmm', function* () {
      expect(yield* h.k.mmuNotifierRegister(p.mm, 'probe', ops)).not.toBeNull();
      const hva = yield* h.k.mmap(p.mm, PAGE);
      yield* writePages(h, p.mm, hva, 1, 1);
      const first = yield* h.k.reclaimUserPage(p.mm, hva);
      expect(first).toMatchObject({ kind: 'kept' });
      expect(first.kind === 'kept' && first.why).toMatch(/young under the 2008 protocol/);
      expect(ptePresent(p.mm.pt.get(hva / PAGE))).toBe(true);
      log.length = 0;
      expect(yield* h.k.reclaimUserPage(p.mm, hva)).toMatchObject({ kind: 'freed', written: true });
      expect(log).toEqual([`invalidate_page 0x${hva.toString(16)}`]);
      expect(yield* verifyPages(h, p.mm, hva, 1, 1)).toEqual([]);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });
});

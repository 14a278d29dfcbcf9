// Swap-in keeps the swap copy (should_try_to_free_swap): a page read back from swap
// stays in the swap cache, clean and mapped writable, so reclaim can drop it again
// without a write; a write fault, or swap more than half full, drops the copy.

import { describe, expect, it } from 'vitest';
import {
  PG_dirty,
  PG_swapcache,
  PROT_READ,
  PROT_WRITE,
  PTE_DIRTY,
  PTE_WRITE,
  PTE_YOUNG,
  checkInvariants,
  ptePfn,
  ptePresent,
  pteIsSwap,
  pteSwapSlot,
} from '../../src/host/index.js';
import type { Mm } from '../../src/host/index.js';
import type { Task } from '../../src/sched/index.js';
import { KiB, PAGE, createHost, expectAllFree, pattern, runThread, verifyPages, writePages } from './harness.js';
import type { TestHost } from './harness.js';

const NR = 8;

/** Writes NR pages (generation 1) and reclaims until every one is out in swap. */
function* allSwappedOut(h: TestHost, mm: Mm): Task<number> {
  const hva = yield* h.k.mmap(mm, NR * PAGE);
  yield* writePages(h, mm, hva, NR, 1);
  const out = () => Array.from({ length: NR }, (_, i) => mm.pt.get((hva >>> 12) + i)).every(pteIsSwap);
  for (let i = 0; i < 30 && !out(); i++) yield* h.k.reclaim(64);
  expect(out()).toBe(true);
  return hva;
}

function* read(h: TestHost, mm: Mm, hva: number): Task<Uint8Array> {
  const buf = new Uint8Array(PAGE);
  expect(yield* h.k.accessRead(mm, hva, buf)).toBe(0);
  return buf;
}

/** Reclaims until the page at hva is a swap pte again. */
function* reclaimPage(h: TestHost, mm: Mm, hva: number): Task {
  for (let i = 0; i < 30 && !pteIsSwap(mm.pt.get(hva >>> 12)); i++) yield* h.k.reclaim(64);
  expect(pteIsSwap(mm.pt.get(hva >>> 12))).toBe(true);
}

describe('swap cache after swap-in', () => {
  it('a read swap-in leaves a clean page in the swap cache, mapped writable and clean', () => {
    const h = createHost({ kswapd: false, ramBytes: 256 * KiB });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* allSwappedOut(h, p.mm);
      const at = hva + 2 * PAGE;
      const slot = pteSwapSlot(p.mm.pt.get(at >>> 12));
      const used = h.k.swap.nrUsed;
      expect(yield* read(h, p.mm, at)).toEqual(pattern(2, 1));
      const pte = p.mm.pt.get(at >>> 12);
      expect(ptePresent(pte)).toBe(true);
      expect(pte & (PTE_WRITE | PTE_YOUNG | PTE_DIRTY)).toBe(PTE_WRITE | PTE_YOUNG);
      const pfn = ptePfn(pte);
      expect(h.k.frames.flags[pfn]! & (PG_swapcache | PG_dirty)).toBe(PG_swapcache);
      expect(h.k.swap.lookup(slot)).toBe(pfn);
      expect(h.k.swap.swapMap[slot]).toBe(0);
      expect(h.k.swap.nrUsed).toBe(used);
      checkInvariants(h.k);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('a write swap-in maps the pte dirty and frees the swap slot', () => {
    const h = createHost({ kswapd: false, ramBytes: 256 * KiB });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* allSwappedOut(h, p.mm);
      const at = hva + 3 * PAGE;
      const slot = pteSwapSlot(p.mm.pt.get(at >>> 12));
      const used = h.k.swap.nrUsed;
      expect(yield* h.k.accessWrite(p.mm, at, pattern(3, 2))).toBe(0);
      const pte = p.mm.pt.get(at >>> 12);
      expect(pte & (PTE_WRITE | PTE_DIRTY)).toBe(PTE_WRITE | PTE_DIRTY);
      const pfn = ptePfn(pte);
      expect(h.k.frames.flags[pfn]! & (PG_swapcache | PG_dirty)).toBe(PG_dirty);
      expect(h.k.swap.lookup(slot)).toBe(-1);
      expect(h.k.swap.nrUsed).toBe(used - 1);
      checkInvariants(h.k);
      // Only RAM holds it now: reclaim must write it again.
      const out0 = h.k.stats().pswpout;
      yield* reclaimPage(h, p.mm, at);
      expect(h.k.stats().pswpout).toBe(out0 + 1);
      expect(yield* read(h, p.mm, at)).toEqual(pattern(3, 2));
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('a clean swap-cache page is reclaimed without a pageout and reads back correctly', () => {
    const h = createHost({ kswapd: false, ramBytes: 256 * KiB });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* allSwappedOut(h, p.mm);
      const at = hva + 5 * PAGE;
      expect(yield* read(h, p.mm, at)).toEqual(pattern(5, 1));
      const before = h.k.stats();
      yield* reclaimPage(h, p.mm, at);
      const after = h.k.stats();
      expect(after.pswpout).toBe(before.pswpout);
      expect(after.pgsteal).toBeGreaterThan(before.pgsteal);
      expect(yield* read(h, p.mm, at)).toEqual(pattern(5, 1));
      expect(h.k.stats().pswpin).toBe(after.pswpin + 1);
      checkInvariants(h.k);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('a write to a swap-cache page dirties its pte and reclaim rewrites the slot (never the stale copy)', () => {
    const h = createHost({ kswapd: false, ramBytes: 256 * KiB });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* allSwappedOut(h, p.mm);
      // Page 1: written through its writable, clean pte (no fault: the "hardware" sets
      // D). Page 4: written after mprotect made it read-only and writable again (the
      // wp fault reuses the exclusive page). Neither drops the slot (Linux keeps it
      // for a mapped exclusive page); the pte's dirty bit must reach the page at unmap.
      for (const i of [1, 4]) expect(yield* read(h, p.mm, hva + i * PAGE)).toEqual(pattern(i, 1));
      expect(yield* h.k.mprotect(p.mm, hva + 4 * PAGE, PAGE, PROT_READ)).toBe(0);
      expect(yield* h.k.mprotect(p.mm, hva + 4 * PAGE, PAGE, PROT_READ | PROT_WRITE)).toBe(0);
      expect(p.mm.pt.get((hva >>> 12) + 4) & PTE_WRITE).toBe(0);
      for (const i of [1, 4]) {
        const at = hva + i * PAGE;
        expect(yield* h.k.accessWrite(p.mm, at, pattern(i, 2))).toBe(0);
        const pte = p.mm.pt.get(at >>> 12);
        expect(pte & (PTE_WRITE | PTE_DIRTY)).toBe(PTE_WRITE | PTE_DIRTY);
        expect(h.k.frames.flags[ptePfn(pte)]! & PG_swapcache).toBe(PG_swapcache);
      }
      checkInvariants(h.k);
      const out0 = h.k.stats().pswpout;
      for (const i of [1, 4]) yield* reclaimPage(h, p.mm, hva + i * PAGE);
      expect(h.k.stats().pswpout).toBe(out0 + 2);
      for (const i of [1, 4]) expect(yield* read(h, p.mm, hva + i * PAGE)).toEqual(pattern(i, 2));
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });

  it('with swap more than half full, a read swap-in frees the slot', () => {
    // 12 slots: NR = 8 pages out fill 8 of them (more than half).
    const h = createHost({ kswapd: false, ramBytes: 256 * KiB, swapBytes: 12 * PAGE });
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* allSwappedOut(h, p.mm);
      expect(h.k.swap.full).toBe(true);
      const at = hva + 2 * PAGE;
      const slot = pteSwapSlot(p.mm.pt.get(at >>> 12));
      const used = h.k.swap.nrUsed;
      expect(yield* read(h, p.mm, at)).toEqual(pattern(2, 1));
      const pte = p.mm.pt.get(at >>> 12);
      expect(pte & (PTE_WRITE | PTE_DIRTY)).toBe(PTE_WRITE); // the pte stays clean on a read fault...
      expect(h.k.frames.flags[ptePfn(pte)]! & (PG_swapcache | PG_dirty)).toBe(PG_dirty); // ...the page is dirty
      expect(h.k.swap.lookup(slot)).toBe(-1);
      expect(h.k.swap.nrUsed).toBe(used - 1);
      checkInvariants(h.k);
      expect(yield* verifyPages(h, p.mm, hva, NR, 1)).toEqual([]);
      yield* h.k.exitProcess(p);
    });
    expectAllFree(h);
  });
});

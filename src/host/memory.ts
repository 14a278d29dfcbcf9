// Counterpart: mm/memory.c (zap_page_range_single / unmap_vmas / zap_pte_range,
// vmf_insert_pfn_prot, zap_vma_ptes) and mm/swapfile.c free_swap_and_cache
//
// A range zap is bracketed by invalidate_range_start/end: start sees every pte of
// the range unchanged, end runs after they are gone and after the pages that lost
// their last reference went back to the free list (the strongest case for a
// secondary MMU: "pages may already be freed").

import type { Task } from '../sched/index.js';
import { PG_dirty, PG_swapcache } from './frames.js';
import { folioRemoveRmap } from './rmap.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import type { MmuNotifierRange, MmuNotifyEvent } from './mmu-notifier.js';
import { EBUSY, EFAULT } from './fault.js';
import { PAGE_SHIFT, PTE_DIRTY, PTE_NONE, PTE_SPECIAL, PTE_WRITE, PTE_YOUNG, pfnPte, ptePfn, ptePresent, pteSwapSlot } from './pte.js';
import { PROT_WRITE } from './vma.js';

/**
 * Clears every pte in [start, end) (hva bytes, page aligned). The caller holds
 * mmap_lock (read for MADV_DONTNEED, write for munmap/exit), or is the OOM reaper
 * (read, non-blockable). Returns 0, or -EAGAIN when a non-blockable start failed
 * and nothing was changed.
 */
export function* zapPageRange(k: HostKernel, mm: Mm, start: number, end: number, event: MmuNotifyEvent, blockable = true): Task<number> {
  const range: MmuNotifierRange = { mm, start, end, event, blockable };
  const r = yield* k.mn.invalidateRangeStart(range);
  if (r !== 0) return r;

  const fr = k.frames;
  const toPut: number[] = [];
  const cachedSlots: number[] = [];
  yield* mm.ptl.lock();
  mm.pt.forEachInRange(start >>> PAGE_SHIFT, end >>> PAGE_SHIFT, (page, pte) => {
    mm.pt.set(page, PTE_NONE);
    // A driver's special pte: no mapping, no reference; the driver puts its own.
    if (pte & PTE_SPECIAL) return;
    if (ptePresent(pte)) {
      const pfn = ptePfn(pte);
      if (pte & PTE_DIRTY) fr.setFlag(pfn, PG_dirty);
      // A page fork shared stays mapped, and named by its rmap, in the other mms.
      folioRemoveRmap(fr, pfn);
      mm.anonRss--;
      toPut.push(pfn);
    } else {
      mm.swapEnts--;
      const cachePfn = k.swap.swapFree(pteSwapSlot(pte));
      if (cachePfn >= 0) cachedSlots.push(cachePfn);
    }
  });
  mm.ptl.unlock();
  // tlb_finish_mmu -> free_pages_and_swap_cache: the pages go back only after the
  // ptes are gone and "flushed"; an unmapped page still caching a slot drops it too.
  for (const pfn of toPut) {
    if (fr.flags[pfn]! & PG_swapcache && fr.mapcount[pfn] === 0) k.freeSwapCache(pfn);
    k.folioPut(pfn);
  }
  for (const pfn of cachedSlots) k.freeSwapCache(pfn);
  if (k.ctx.tracing()) k.ctx.trace({ type: 'zap', mm: mm.id, start, end, event, pages: toPut.length, swapEntries: cachedSlots.length });

  yield* k.mn.invalidateRangeEnd(range);
  return 0;
}

/** free_swap_and_cache: a cache page no pte refers to goes, unless someone holds its lock. */
export function freeSwapCache(k: HostKernel, pfn: number): void {
  const fr = k.frames;
  fr.refcount[pfn]!++;
  if (fr.trylockPage(pfn)) {
    freeSwapCacheLocked(k, pfn);
    fr.unlockPage(pfn);
  }
  k.folioPut(pfn);
}

/** free_swap_and_cache's second half: drop a cache page no pte refers to, if nobody is using it. */
export function freeSwapCacheLocked(k: HostKernel, pfn: number): void {
  const fr = k.frames;
  if (!(fr.flags[pfn]! & PG_swapcache)) return;
  if (k.swap.swapMap[fr.swapSlot[pfn]!] !== 0 || fr.mapcount[pfn] !== 0) return;
  k.swap.deleteFromSwapCache(pfn);
}

/**
 * vmf_insert_pfn_prot, from a driver's ->fault: a special pte for pfn at hva, which
 * must lie in a driver VMA. The pte holds no reference (the driver keeps its own)
 * and is writable only if asked for and the VMA allows it. An existing special pte
 * for the same pfn is upgraded; any other pte is left alone. 0 or -EBUSY / -EFAULT.
 */
export function* vmfInsertPfn(k: HostKernel, mm: Mm, hva: number, pfn: number, write: boolean): Task<number> {
  const vma = mm.vmas.find(hva);
  if (vma?.ops === undefined || pfn < 0 || pfn >= k.frames.nrFrames) return -EFAULT;
  const page = hva >>> PAGE_SHIFT;
  const flags = PTE_SPECIAL | PTE_YOUNG | (write && vma.prot & PROT_WRITE ? PTE_WRITE | PTE_DIRTY : 0);
  yield* mm.ptl.lock();
  const cur = mm.pt.get(page);
  let r = 0;
  if (cur === 0) mm.pt.set(page, pfnPte(pfn, flags));
  else if (ptePresent(cur) && cur & PTE_SPECIAL && ptePfn(cur) === pfn) mm.pt.set(page, cur | flags);
  else r = -EBUSY;
  mm.ptl.unlock();
  return r;
}

/**
 * zap_vma_ptes: clears the special ptes of [hva, hva + len) in a driver VMA, inside
 * invalidate_range_start/end of that mm (its own secondary MMUs drop them too).
 * The caller holds whatever keeps the VMA alive (XPMEM: its segment mutex).
 */
export function* zapVmaPtes(k: HostKernel, mm: Mm, hva: number, len: number): Task {
  const vma = mm.vmas.find(hva);
  if (vma?.ops === undefined || hva + len > vma.end) return;
  yield* zapPageRange(k, mm, hva, hva + len, 'clear');
}

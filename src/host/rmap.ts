// Counterpart: mm/rmap.c (folio_referenced, try_to_unmap_one)
//
// Anon rmap: with no fork, an anon page has at most one mapping, recorded in the
// frame as (rmapMm, rmapHvaPage). A walker trusts it only after taking the PT lock
// and seeing a present pte that still names the page; exit, munmap and the OOM
// reaper may have zapped it meanwhile.
//
// Walkers hold the mm's rmap lock (anon_vma lock) for the whole walk, notifier
// calls included, so mmu_notifier_register (mm_take_all_locks) can wait them out and
// a new subscriber never sees an end without its start.

import type { Task } from '../sched/index.js';
import { PG_dirty } from './frames.js';
import type { HostKernel } from './kernel.js';
import type { MmuNotifierRange } from './mmu-notifier.js';
import { PAGE_SIZE, PTE_DIRTY, PTE_NONE, PTE_YOUNG, ptePfn, ptePresent, swpEntryToPte } from './pte.js';

/**
 * folio_referenced: how many mappings saw an access since the last call. Clears each
 * pte's young bit, then asks the secondary MMUs (clear_flush_young, or age_page in
 * the 2008 era) and ORs their answer in. -1 when the rmap lock was contended
 * (reclaim then activates the page, as the kernel does).
 */
export function* folioReferenced(k: HostKernel, pfn: number): Task<number> {
  const fr = k.frames;
  if (fr.mapcount[pfn] === 0) return 0;
  const mm = k.mmById(fr.rmapMm[pfn]!);
  if (mm === undefined) return 0;
  if (!mm.rmapTryLock()) return -1;
  try {
    const page = fr.rmapHvaPage[pfn]!;
    const hva = page * PAGE_SIZE;
    yield* mm.ptl.lock();
    let referenced = 0;
    const pte = mm.pt.get(page);
    if (ptePresent(pte) && ptePfn(pte) === pfn) {
      let young = false;
      if (pte & PTE_YOUNG) {
        mm.pt.set(page, pte & ~PTE_YOUNG);
        young = true;
      }
      // ptep_clear_flush_young_notify: the host bit first, then the secondary MMUs.
      if (k.mn.clearFlushYoung(mm, hva, hva + PAGE_SIZE)) young = true;
      if (young) referenced++;
    }
    mm.ptl.unlock();
    return referenced;
  } finally {
    mm.rmapUnlock();
  }
}

/**
 * try_to_unmap for a locked, isolated page that is in the swap cache: replaces its
 * pte by the swap entry. Returns true when no mapping remains.
 *
 * modern: range_start -> clear pte + flush -> carry dirty -> swap entry -> range_end.
 * 2008:   young check (ptep_clear_flush_young_notify: a young page is kept) ->
 *         clear pte + flush + invalidate_page under the PT lock -> dirty -> swap entry.
 */
export function* tryToUnmap(k: HostKernel, pfn: number): Task<boolean> {
  const fr = k.frames;
  if (fr.mapcount[pfn] === 0) return true;
  const mm = k.mmById(fr.rmapMm[pfn]!);
  if (mm === undefined) return fr.mapcount[pfn] === 0;
  const slot = fr.swapSlot[pfn]!;
  const modern = mm.era === 'modern';
  yield* mm.rmapLock();
  try {
    const page = fr.rmapHvaPage[pfn]!;
    const hva = page * PAGE_SIZE;
    let range: MmuNotifierRange | null = null;
    if (modern) {
      range = { mm, start: hva, end: hva + PAGE_SIZE, event: 'clear', blockable: true };
      yield* k.mn.invalidateRangeStart(range);
    }
    yield* mm.ptl.lock();
    let unmapped = false;
    const pte = mm.pt.get(page);
    if (!ptePresent(pte) || ptePfn(pte) !== pfn) {
      unmapped = fr.mapcount[pfn] === 0;
    } else if (fr.maybePinned(pfn)) {
      // folio_try_share_anon_rmap_pte fails: a pin may have come in since the check.
      unmapped = false;
    } else if (!modern && ((pte & PTE_YOUNG) !== 0 || k.mn.clearFlushYoung(mm, hva, hva + PAGE_SIZE))) {
      mm.pt.set(page, pte & ~PTE_YOUNG);
      unmapped = false;
    } else {
      mm.pt.set(page, PTE_NONE);
      // ptep_clear_flush_notify (2008): the pte is gone, the page not yet freed.
      if (!modern) k.mn.invalidatePage(mm, hva);
      if (pte & PTE_DIRTY) fr.flags[pfn]! |= PG_dirty;
      k.swap.swapDuplicate(slot);
      mm.pt.set(page, swpEntryToPte(slot));
      mm.anonRss--;
      mm.swapEnts++;
      fr.mapcount[pfn]!--;
      fr.rmapMm[pfn] = 0;
      // The mapping's reference; isolation and the swap cache still hold theirs.
      fr.refcount[pfn]!--;
      unmapped = fr.mapcount[pfn] === 0;
      if (k.ctx.tracing()) k.ctx.trace({ type: 'unmap', mm: mm.id, hva, pfn, slot, dirty: (pte & PTE_DIRTY) !== 0 });
    }
    mm.ptl.unlock();
    if (range !== null) yield* k.mn.invalidateRangeEnd(range);
    return unmapped;
  } finally {
    mm.rmapUnlock();
  }
}

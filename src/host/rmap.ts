// Counterpart: mm/rmap.c (folio_referenced, try_to_unmap_one)
//
// Anon rmap: a frame names the mm that made it and its hva page (rmapMm,
// rmapHvaPage); since fork, the page may be mapped at that hva in any mm of that mm's
// anon_vma (mm.ts), so a walk visits each member. A walker trusts a mapping only
// after taking that member's PT lock and seeing a present pte that still names the
// page; exit, munmap, COW and the OOM reaper may have replaced it meanwhile.
//
// The functions below are the only writers of a frame's mapcount and rmap fields
// (FrameTable.freeFrame clears them for a free frame).
//
// Walkers hold each member's rmap lock (anon_vma lock) while they work on it,
// notifier calls included, so mmu_notifier_register (mm_take_all_locks) can wait them
// out and a new subscriber never sees an end without its start.

import type { Task } from '../sched/index.js';
import { PG_anon_shared, PG_dirty } from './frames.js';
import type { FrameTable } from './frames.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import type { MmuNotifierRange } from './mmu-notifier.js';
import { PAGE_SIZE, PTE_DIRTY, PTE_NONE, PTE_YOUNG, ptePfn, ptePresent, swpEntryToPte } from './pte.js';

/** folio_add_new_anon_rmap: a page just made for `page` of mm gets its first mapping. */
export function folioAddNewAnonRmap(fr: FrameTable, pfn: number, mm: Mm, page: number): void {
  fr.mapcount[pfn] = 1;
  fr.rmapMm[pfn] = mm.id;
  fr.rmapHvaPage[pfn] = page;
}

/**
 * folio_add_anon_rmap_pte (do_swap_page): one more mapping of a cached page, which
 * then names the mm that maps it now (any mm of the fork tree leads to the others).
 */
export function folioAddAnonRmap(fr: FrameTable, pfn: number, mm: Mm, page: number): void {
  fr.mapcount[pfn]!++;
  fr.rmapMm[pfn] = mm.id;
  fr.rmapHvaPage[pfn] = page;
}

/** folio_try_dup_anon_rmap (fork's copy_present_pte): the child maps the page at the same hva; both share it now. */
export function folioDupAnonRmap(fr: FrameTable, pfn: number): void {
  fr.mapcount[pfn]!++;
  fr.setFlag(pfn, PG_anon_shared);
}

/** folio_remove_rmap_pte: one mapping fewer; true when it was the last (the page is nobody's to share). */
export function folioRemoveRmap(fr: FrameTable, pfn: number): boolean {
  if (--fr.mapcount[pfn]! !== 0) return false;
  fr.rmapMm[pfn] = 0;
  fr.clearFlag(pfn, PG_anon_shared);
  return true;
}

/** The mms a walk of pfn visits, in fork order; a snapshot, since walks sleep. */
function rmapMms(k: HostKernel, pfn: number): readonly Mm[] {
  const av = k.anonVmaOf(k.frames.rmapMm[pfn]!);
  return av === undefined ? [] : av.mms.length === 1 ? av.mms : [...av.mms];
}

/**
 * folio_referenced: how many mappings saw an access since the last call. Clears each
 * pte's young bit, then asks the secondary MMUs (clear_flush_young, or age_page in
 * the 2008 era) and ORs their answer in. -1 when an rmap lock was contended
 * (reclaim then activates the page, as the kernel does).
 */
export function* folioReferenced(k: HostKernel, pfn: number): Task<number> {
  const fr = k.frames;
  if (fr.mapcount[pfn] === 0) return 0;
  const page = fr.rmapHvaPage[pfn]!;
  const hva = page * PAGE_SIZE;
  let referenced = 0;
  for (const mm of rmapMms(k, pfn)) {
    if (fr.mapcount[pfn] === 0) break;
    if (!mm.rmapTryLock()) return -1;
    try {
      yield* mm.ptl.lock();
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
    } finally {
      mm.rmapUnlock();
    }
  }
  return referenced;
}

/**
 * try_to_unmap for a locked, isolated page that is in the swap cache: replaces each
 * of its ptes by the swap entry, one mm at a time, and counts each in swap_map.
 * Returns true when no mapping remains.
 *
 * modern: range_start -> clear pte + flush -> carry dirty -> swap entry -> range_end.
 * 2008:   young check (ptep_clear_flush_young_notify: a young page is kept) ->
 *         clear pte + flush + invalidate_page under the PT lock -> dirty -> swap entry.
 */
export function* tryToUnmap(k: HostKernel, pfn: number): Task<boolean> {
  const fr = k.frames;
  for (const mm of rmapMms(k, pfn)) {
    if (fr.mapcount[pfn] === 0) break;
    // try_to_unmap_one stops the walk at a mapping it must keep.
    if (!(yield* tryToUnmapOne(k, mm, pfn))) break;
  }
  return fr.mapcount[pfn] === 0;
}

/** One mm's mapping of pfn, if it has one. False when the mapping must stay (young, pinned). */
function* tryToUnmapOne(k: HostKernel, mm: Mm, pfn: number): Task<boolean> {
  const fr = k.frames;
  const slot = fr.swapSlot[pfn]!;
  const modern = mm.era === 'modern';
  const page = fr.rmapHvaPage[pfn]!;
  const hva = page * PAGE_SIZE;
  // A member that never mapped the page (a sibling's own page, a copied one) costs no
  // notifier round trip.
  const pte0 = mm.pt.get(page);
  if (!ptePresent(pte0) || ptePfn(pte0) !== pfn) return true;
  yield* mm.rmapLock();
  try {
    let range: MmuNotifierRange | null = null;
    if (modern) {
      range = { mm, start: hva, end: hva + PAGE_SIZE, event: 'clear', blockable: true };
      yield* k.mn.invalidateRangeStart(range);
    }
    yield* mm.ptl.lock();
    let keep = false;
    const pte = mm.pt.get(page);
    if (!ptePresent(pte) || ptePfn(pte) !== pfn) {
      keep = false;
    } else if (fr.maybePinned(pfn)) {
      // folio_try_share_anon_rmap_pte fails: a pin may have come in since the check.
      keep = true;
    } else if (!modern && ((pte & PTE_YOUNG) !== 0 || k.mn.clearFlushYoung(mm, hva, hva + PAGE_SIZE))) {
      mm.pt.set(page, pte & ~PTE_YOUNG);
      keep = true;
    } else {
      mm.pt.set(page, PTE_NONE);
      // ptep_clear_flush_notify (2008): the pte is gone, the page not yet freed.
      if (!modern) k.mn.invalidatePage(mm, hva);
      if (pte & PTE_DIRTY) fr.setFlag(pfn, PG_dirty);
      k.swap.swapDuplicate(slot);
      mm.pt.set(page, swpEntryToPte(slot));
      mm.anonRss--;
      mm.swapEnts++;
      // The swap entry carries the exclusivity now; the swap-in that maps the page
      // again works it out from swap_map (fault.ts).
      folioRemoveRmap(fr, pfn);
      // The mapping's reference; isolation and the swap cache still hold theirs.
      fr.refcount[pfn]!--;
      if (k.ctx.tracing()) k.ctx.trace({ type: 'unmap', mm: mm.id, hva, pfn, slot, dirty: (pte & PTE_DIRTY) !== 0 });
    }
    mm.ptl.unlock();
    if (range !== null) yield* k.mn.invalidateRangeEnd(range);
    return !keep;
  } finally {
    mm.rmapUnlock();
  }
}

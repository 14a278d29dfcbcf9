// Counterpart: mm/gup.c (get_user_pages, pin_user_pages, gup-fast, put/unpin)
//
// FOLL_GET takes one reference: reclaim may still unmap the page (that is what the
// notifiers are for) but cannot free it, so the data stays in the frame and in the
// swap cache until put_page. FOLL_PIN adds GUP_PIN_COUNTING_BIAS: reclaim sees
// folio_maybe_dma_pinned and leaves the page mapped and resident.
//
// The returned pfn is the handle; the caller reads/writes frames.bytes at
// frames.offsetOf(pfn) and must put what it got, passing dirty = true if it wrote
// (set_page_dirty_lock before put), or the write may be lost if the page was clean
// in the swap cache.

import type { Task } from '../sched/index.js';
import { GUP_PIN_COUNTING_BIAS, PG_dirty } from './frames.js';
import { EFAULT, EINTR, faultToErrno, handleMmFault } from './fault.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PAGE_SHIFT, PTE_DIRTY, PTE_SPECIAL, PTE_WRITE, PTE_YOUNG, ptePfn, ptePresent } from './pte.js';
import { PROT_READ, PROT_WRITE } from './vma.js';

/**
 * follow_page_pte under the PT lock: the reference is taken while the pte still maps
 * the page, so it cannot be freed in between. -1 when a fault is needed.
 */
function* followPage(k: HostKernel, mm: Mm, page: number, write: boolean, refs: number): Task<number> {
  yield* mm.ptl.lock();
  const pte = mm.pt.get(page);
  let pfn = -1;
  if (ptePresent(pte) && (!write || pte & PTE_WRITE)) {
    pfn = ptePfn(pte);
    k.frames.refcount[pfn]! += refs;
    k.frames.gupRefs[pfn]! += refs;
    // FOLL_TOUCH: the access counts for aging; a write access dirties.
    mm.pt.set(page, pte | PTE_YOUNG | (write ? PTE_DIRTY : 0));
  }
  mm.ptl.unlock();
  return pfn;
}

function* gupOne(k: HostKernel, mm: Mm, hva: number, write: boolean, refs: number): Task<number> {
  yield* mm.mmapLock.downRead();
  try {
    const page = hva >>> PAGE_SHIFT;
    for (;;) {
      if (mm.owner !== null && mm.owner.killed) return -EINTR;
      const vma = mm.vmas.find(hva);
      // VM_PFNMAP: no struct page behind the pte for gup to take (follow_page fails).
      if (vma === undefined || vma.ops !== undefined || !(vma.prot & (write ? PROT_WRITE : PROT_READ))) return -EFAULT;
      const pfn = yield* followPage(k, mm, page, write, refs);
      if (pfn >= 0) {
        if (k.ctx.tracing()) k.ctx.trace({ type: refs === 1 ? 'gup' : 'pin', mm: mm.id, hva, pfn, write });
        return pfn;
      }
      const r = yield* handleMmFault(k, mm, hva, write);
      if (r !== 0) return faultToErrno(r);
    }
  } finally {
    mm.mmapLock.upRead();
  }
}

/** get_user_pages (one page, FOLL_GET): pfn with a reference, or a negative errno. May sleep. */
export function getUserPages(k: HostKernel, mm: Mm, hva: number, write: boolean): Task<number> {
  return gupOne(k, mm, hva, write, 1);
}

/**
 * get_user_page_fast_only: the lockless walk alone, for callers that may not sleep
 * (KVM's hva_to_pfn_fast, its atomic prefetch under mmu_lock). pfn with a reference,
 * or -1 when the pte is not present, not writable for a write, or special (VM_PFNMAP:
 * no struct page). Never faults, takes no lock and, like gup-fast, leaves the pte's
 * young and dirty bits alone (no FOLL_TOUCH). Put it with putPage.
 */
export function getUserPageFastOnly(k: HostKernel, mm: Mm, hva: number, write: boolean): number {
  const pte = mm.pt.get(hva >>> PAGE_SHIFT);
  if (!ptePresent(pte) || (pte & PTE_SPECIAL) !== 0 || (write && (pte & PTE_WRITE) === 0)) return -1;
  const pfn = ptePfn(pte);
  k.frames.refcount[pfn]! += 1;
  k.frames.gupRefs[pfn]! += 1;
  if (k.ctx.tracing()) k.ctx.trace({ type: 'gup-fast', mm: mm.id, hva, pfn, write });
  return pfn;
}

/** pin_user_pages (one page, FOLL_PIN | FOLL_LONGTERM): pfn with a pin, or a negative errno. */
export function pinUserPages(k: HostKernel, mm: Mm, hva: number, write: boolean): Task<number> {
  return gupOne(k, mm, hva, write, GUP_PIN_COUNTING_BIAS);
}

function dropRefs(k: HostKernel, pfn: number, refs: number, dirty: boolean, what: string): void {
  const fr = k.frames;
  if (fr.gupRefs[pfn]! < refs || fr.refcount[pfn]! < refs) {
    throw new Error(`BUG: ${what} of pfn ${pfn} without a matching reference (${fr.describe(pfn)})`);
  }
  if (dirty) fr.setFlag(pfn, PG_dirty);
  fr.gupRefs[pfn]! -= refs;
  fr.refcount[pfn]! -= refs - 1;
  if (k.ctx.tracing()) k.ctx.trace({ type: what, pfn, dirty });
  k.folioPut(pfn);
}

/** put_page for a reference from getUserPages. */
export function putPage(k: HostKernel, pfn: number, dirty = false): void {
  dropRefs(k, pfn, 1, dirty, 'put_page');
}

/** unpin_user_page (unpin_user_pages_dirty_lock when dirty). */
export function unpinUserPage(k: HostKernel, pfn: number, dirty = false): void {
  dropRefs(k, pfn, GUP_PIN_COUNTING_BIAS, dirty, 'unpin_user_page');
}

// Counterpart: mm/memory.c (handle_mm_fault: do_anonymous_page, do_swap_page, wp reuse)
//
// The fault handler runs with mmap_lock held for read and sleeps without the PT lock
// (allocation, swap read). Everything it learned before sleeping is re-checked under
// the PT lock (pte_same) before it installs a pte; a fault that lost a race returns 0
// and the caller walks the page table again.
//
// Swap-in and the swap cache: the first fault on a swap entry allocates a page, puts
// it in the swap cache locked, reads, unlocks. Every other fault on that entry (or a
// fault racing with reclaim's pageout of the page) finds the cached page, takes a
// reference and waits for the page lock, so all of them map the same frame.
//
// After a swap-in the page normally STAYS in the swap cache, clean, with its slot
// (should_try_to_free_swap): as long as nobody writes it, the swap copy is up to date
// and reclaim can drop the frame without writing it again. A read fault maps the
// (exclusive) page writable but clean (pte_mkwrite without pte_mkdirty); only a write
// fault sets the pte dirty. The copy is dropped at swap-in (folio_free_swap) when swap
// is more than half full (vm_swap_full), or on a write fault when we are the only
// user. Otherwise the first write dirties the pte (or, through a secondary MMU, only
// its spte) and the copy goes stale while the slot is kept: the dirty bit must reach
// PG_dirty before reclaim frees the frame (try_to_unmap carries the pte's, KVM the
// spte's at range_start), and pageout then rewrites the slot.

import { preempt } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { PG_anon_shared, PG_dirty, PG_locked, PG_swapbacked, PG_swapcache, PG_uptodate } from './frames.js';
import { folioAddAnonRmap, folioAddNewAnonRmap, folioRemoveRmap } from './rmap.js';
import type { HostKernel } from './kernel.js';
import { freeSwapCacheLocked } from './memory.js';
import type { Mm } from './mm.js';
import type { MmuNotifierRange } from './mmu-notifier.js';
import {
  PAGE_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
  PTE_DIRTY,
  PTE_NONE,
  PTE_WRITE,
  PTE_YOUNG,
  pfnPte,
  ptePfn,
  ptePresent,
  pteSwapSlot,
} from './pte.js';
import { PROT_READ, PROT_WRITE } from './vma.js';
import type { Vma } from './vma.js';

export const VM_FAULT_SIGSEGV = 1;
export const VM_FAULT_OOM = 2;
export const VM_FAULT_SIGKILL = 4;

export const EINTR = 4;
export const EBUSY = 16;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EINVAL = 22;

/** The errno a user access or GUP returns for a VM_FAULT_* code (negative). */
export function faultToErrno(vmFault: number): number {
  if (vmFault & VM_FAULT_SIGKILL) return -EINTR;
  if (vmFault & VM_FAULT_OOM) return -ENOMEM;
  return -EFAULT;
}

function fatalSignalPending(mm: Mm): boolean {
  return mm.owner !== null && mm.owner.killed;
}

/** handle_mm_fault. Caller holds mm.mmapLock for read. Returns 0 (retry the access) or VM_FAULT_*. */
export function* handleMmFault(k: HostKernel, mm: Mm, hva: number, write: boolean): Task<number> {
  k.ctx.stats.pgfault++;
  if (fatalSignalPending(mm) || mm.oomReaped) return VM_FAULT_SIGKILL;
  const vma = mm.vmas.find(hva);
  if (vma === undefined) return VM_FAULT_SIGSEGV;
  if (!(vma.prot & (write ? PROT_WRITE : PROT_READ))) return VM_FAULT_SIGSEGV;
  // A driver's VM_PFNMAP mapping: its ->fault installs the pte, or says why not.
  if (vma.ops !== undefined) return yield* vma.ops.fault(mm, hva, write);
  const page = hva >>> PAGE_SHIFT;
  const pte = mm.pt.get(page);
  if (k.ctx.tracing()) k.ctx.trace({ type: 'fault', mm: mm.id, hva, write, pte });
  if (pte === PTE_NONE) return yield* doAnonymousPage(k, mm, vma, page, write);
  if (!ptePresent(pte)) return yield* doSwapPage(k, mm, vma, page, pte, write);

  // Present and read-only on a write: do_wp_page (copy-on-write after fork, or an
  // mprotect that made the VMA writable again).
  if (write && !(pte & PTE_WRITE)) return yield* doWpPage(k, mm, page, pte);
  // Present: an access/dirty update.
  yield* mm.ptl.lock();
  const cur = mm.pt.get(page);
  if (cur === pte) mm.pt.set(page, pte | PTE_YOUNG | (write ? PTE_WRITE | PTE_DIRTY : 0));
  mm.ptl.unlock();
  return 0;
}

/**
 * do_wp_page. An exclusive page (or a shared one whose writer is now its only user,
 * wp_can_reuse_anon_folio) is written in place: wp_page_reuse keeps its swap slot, the
 * dirty pte is carried to the page at unmap and pageout rewrites the slot. Any other
 * page is copied (wp_page_copy).
 */
function* doWpPage(k: HostKernel, mm: Mm, page: number, pte: number): Task<number> {
  const fr = k.frames;
  const pfn = ptePfn(pte);
  yield* mm.ptl.lock();
  const cur = mm.pt.get(page);
  if (!ptePresent(cur) || ptePfn(cur) !== pfn || cur & PTE_WRITE) {
    mm.ptl.unlock();
    return 0;
  }
  if (!(fr.flags[pfn]! & PG_anon_shared) || canReuseAnonPage(k, pfn)) {
    fr.clearFlag(pfn, PG_anon_shared);
    mm.pt.set(page, cur | PTE_YOUNG | PTE_WRITE | PTE_DIRTY);
    mm.ptl.unlock();
    return 0;
  }
  mm.ptl.unlock();
  return yield* wpPageCopy(k, mm, page, pfn);
}

/**
 * wp_can_reuse_anon_folio: the writer's pte is the page's only reference apart from
 * the swap cache, and no swap pte elsewhere names its slot (a swap-in there would
 * map this very page again). A gup reference or an isolating reclaimer means copy.
 */
function canReuseAnonPage(k: HostKernel, pfn: number): boolean {
  const fr = k.frames;
  if (fr.mapcount[pfn] !== 1) return false;
  const cached = (fr.flags[pfn]! & PG_swapcache) !== 0;
  if (fr.refcount[pfn] !== 1 + (cached ? 1 : 0)) return false;
  return !cached || k.swap.swapMap[fr.swapSlot[pfn]!] === 0;
}

/**
 * wp_page_copy: a new exclusive page with the old one's data replaces it in this mm.
 * The old page stays mapped elsewhere, so every secondary MMU of this mm must drop
 * its translation of it here: modern, inside invalidate_range_start/end around the
 * pte change; 2008, invalidate_page after ptep_clear_flush, under the PT lock (one of
 * the call sites of the seeds). A device left holding the old page reads data the
 * process no longer sees.
 */
function* wpPageCopy(k: HostKernel, mm: Mm, page: number, oldPfn: number): Task<number> {
  const fr = k.frames;
  const npfn = yield* k.allocPage(mm);
  if (npfn < 0) return fatalSignalPending(mm) ? VM_FAULT_SIGKILL : VM_FAULT_OOM;
  const hva = page * PAGE_SIZE;
  const notify = !k.forkDebug.noWpCopyNotify;
  let range: MmuNotifierRange | null = null;
  if (notify && mm.era === 'modern') {
    range = { mm, start: hva, end: hva + PAGE_SIZE, event: 'clear', blockable: true };
    yield* k.mn.invalidateRangeStart(range);
  }
  yield* mm.ptl.lock();
  const cur = mm.pt.get(page);
  if (!ptePresent(cur) || ptePfn(cur) !== oldPfn || cur & PTE_WRITE || mm.oomReaped) {
    mm.ptl.unlock();
    if (range !== null) yield* k.mn.invalidateRangeEnd(range);
    k.folioPut(npfn);
    return mm.oomReaped ? VM_FAULT_SIGKILL : 0;
  }
  // The copy is taken under the PT lock with the old pte still in place: no write to
  // the old page through this mm can come after it.
  fr.bytes.copyWithin(npfn << PAGE_SHIFT, oldPfn << PAGE_SHIFT, (oldPfn + 1) << PAGE_SHIFT);
  mm.pt.set(page, PTE_NONE);
  if (notify && mm.era === '2008') k.mn.invalidatePage(mm, hva);
  if (cur & PTE_DIRTY) fr.setFlag(oldPfn, PG_dirty);
  fr.setFlag(npfn, PG_swapbacked | PG_uptodate);
  folioAddNewAnonRmap(fr, npfn, mm, page);
  mm.pt.set(page, pfnPte(npfn, PTE_YOUNG | PTE_WRITE | PTE_DIRTY));
  k.lru.add(npfn);
  // page_remove_rmap on the old page; the mapping's reference goes after the unlock.
  folioRemoveRmap(fr, oldPfn);
  mm.ptl.unlock();
  k.ctx.stats.cowFault++;
  if (k.ctx.tracing()) k.ctx.trace({ type: 'wp-copy', mm: mm.id, hva, oldPfn, pfn: npfn });
  if (fr.flags[oldPfn]! & PG_swapcache && fr.mapcount[oldPfn] === 0) k.freeSwapCache(oldPfn);
  k.folioPut(oldPfn);
  if (range !== null) yield* k.mn.invalidateRangeEnd(range);
  return 0;
}

function* doAnonymousPage(k: HostKernel, mm: Mm, vma: Vma, page: number, write: boolean): Task<number> {
  const pfn = yield* k.allocPage(mm);
  if (pfn < 0) return fatalSignalPending(mm) ? VM_FAULT_SIGKILL : VM_FAULT_OOM;
  const fr = k.frames;
  fr.bytes.fill(0, pfn << PAGE_SHIFT, (pfn + 1) << PAGE_SHIFT);

  yield* mm.ptl.lock();
  if (mm.pt.get(page) !== PTE_NONE || mm.oomReaped) {
    mm.ptl.unlock();
    k.folioPut(pfn);
    return mm.oomReaped ? VM_FAULT_SIGKILL : 0;
  }
  // The allocation reference becomes the mapping's reference.
  fr.setFlag(pfn, PG_swapbacked | PG_uptodate);
  folioAddNewAnonRmap(fr, pfn, mm, page);
  mm.pt.set(page, pfnPte(pfn, PTE_YOUNG | (vma.prot & PROT_WRITE ? PTE_WRITE : 0) | (write ? PTE_DIRTY : 0)));
  mm.anonRss++;
  k.lru.add(pfn);
  mm.ptl.unlock();
  if (k.ctx.tracing()) k.ctx.trace({ type: 'map-anon', mm: mm.id, hva: page * PAGE_SIZE, pfn });
  return 0;
}

function* doSwapPage(k: HostKernel, mm: Mm, vma: Vma, page: number, pte: number, write: boolean): Task<number> {
  const fr = k.frames;
  const swap = k.swap;
  const slot = pteSwapSlot(pte);
  let major = false;

  let pfn = swap.lookup(slot);
  if (pfn >= 0) {
    fr.refcount[pfn]!++;
    k.ctx.stats.swapCacheHit++;
  } else {
    const np = yield* k.allocPage(mm);
    if (np < 0) return fatalSignalPending(mm) ? VM_FAULT_SIGKILL : VM_FAULT_OOM;
    // Allocation may have slept: the entry may be gone, or another fault cached it.
    if (mm.pt.get(page) !== pte) {
      k.folioPut(np);
      return 0;
    }
    pfn = swap.lookup(slot);
    if (pfn >= 0) {
      k.folioPut(np);
      fr.refcount[pfn]!++;
      k.ctx.stats.swapCacheHit++;
    } else {
      pfn = np;
      major = true;
      fr.setFlag(pfn, PG_locked | PG_swapbacked);
      swap.addToSwapCache(pfn, slot);
      k.lru.add(pfn);
      yield* swap.readPage(pfn);
      fr.unlockPage(pfn);
    }
  }

  yield* fr.lockPage(pfn);
  yield* mm.ptl.lock();
  const stillOurs =
    mm.pt.get(page) === pte &&
    !mm.oomReaped &&
    (fr.flags[pfn]! & (PG_swapcache | PG_uptodate)) === (PG_swapcache | PG_uptodate) &&
    fr.swapSlot[pfn] === slot;
  if (!stillOurs) {
    mm.ptl.unlock();
    freeSwapCacheLocked(k, pfn);
    fr.unlockPage(pfn);
    k.folioPut(pfn);
    return mm.oomReaped ? VM_FAULT_SIGKILL : 0;
  }
  // should_try_to_free_swap, judged before our reference becomes the mapping's: on a
  // write fault only if nobody but us and the swap cache holds the page (a GUP user
  // or an isolating reclaimer may still expect to find it there).
  // Exclusive unless another swap pte names the slot or another mm mapped the cached
  // page already (both only after fork); a shared page maps read-only, and a write
  // fault comes back through do_wp_page.
  const exclusive = swap.swapMap[slot] === 1 && fr.mapcount[pfn] === 0;
  const freeSwap = exclusive && (swap.full || (write && fr.refcount[pfn] === 2));
  if (exclusive) fr.clearFlag(pfn, PG_anon_shared);
  else fr.setFlag(pfn, PG_anon_shared);
  const writable = exclusive && (vma.prot & PROT_WRITE) !== 0;
  // Our lookup reference becomes the mapping's reference.
  folioAddAnonRmap(fr, pfn, mm, page);
  // Exclusive anon page: writable if the VMA is, dirty only on a write fault.
  mm.pt.set(page, pfnPte(pfn, PTE_YOUNG | (writable ? PTE_WRITE : 0) | (write && writable ? PTE_DIRTY : 0)));
  mm.anonRss++;
  mm.swapEnts--;
  // swap_free: our page caches the slot, so the slot itself survives this.
  swap.swapFree(slot);
  const freed = freeSwap && swap.freeSwap(pfn);
  mm.ptl.unlock();
  fr.unlockPage(pfn);
  if (major) k.ctx.stats.pgmajfault++;
  if (k.ctx.tracing()) k.ctx.trace({ type: 'map-swapin', mm: mm.id, hva: page * PAGE_SIZE, pfn, slot, major, write, keptSwap: !freed });
  return 0;
}

// ---- user access (copy_to_user / copy_from_user) --------------------------------------

/**
 * Copies between a process's memory and `buf`, faulting pages in as the MMU would:
 * the fast path reads the pte like a hardware walk (setting young, and dirty on
 * write); a miss takes mmap_lock for read and calls the fault handler. A copy within
 * one page never yields, so reclaim cannot take the page from under it.
 * Returns 0 or a negative errno (-EFAULT, -ENOMEM, -EINTR when killed).
 */
function* accessUser(k: HostKernel, mm: Mm, hva: number, buf: Uint8Array, write: boolean): Task<number> {
  const bytes = k.frames.bytes;
  const need = write ? PTE_WRITE : 0;
  let done = 0;
  while (done < buf.length) {
    if (fatalSignalPending(mm)) return -EINTR;
    const cur = hva + done;
    const page = cur >>> PAGE_SHIFT;
    const off = cur & PAGE_MASK;
    const n = Math.min(PAGE_SIZE - off, buf.length - done);
    const pte = mm.pt.get(page);
    if (ptePresent(pte) && (pte & need) === need) {
      const base = (ptePfn(pte) << PAGE_SHIFT) + off;
      if (write) {
        bytes.set(buf.subarray(done, done + n), base);
        mm.pt.set(page, pte | PTE_YOUNG | PTE_DIRTY);
      } else {
        buf.set(bytes.subarray(base, base + n), done);
        if (!(pte & PTE_YOUNG)) mm.pt.set(page, pte | PTE_YOUNG);
      }
      done += n;
      yield* preempt();
      continue;
    }
    yield* mm.mmapLock.downRead();
    let r: number;
    try {
      r = yield* handleMmFault(k, mm, cur, write);
    } finally {
      mm.mmapLock.upRead();
    }
    if (r !== 0) return faultToErrno(r);
  }
  return 0;
}

export function accessWrite(k: HostKernel, mm: Mm, hva: number, src: Uint8Array): Task<number> {
  return accessUser(k, mm, hva, src, true);
}

export function accessRead(k: HostKernel, mm: Mm, hva: number, dst: Uint8Array): Task<number> {
  return accessUser(k, mm, hva, dst, false);
}

// Counterpart: kernel/fork.c (dup_mmap) + mm/memory.c (copy_page_range, copy_present_pte)
//
// fork shares every anon page of the parent with the child, read-only in both:
//   - the parent's range is bracketed by invalidate_range_start/end (event
//     'protection'), because its ptes lose their write bit: a secondary MMU that keeps
//     a writable translation past that point writes into a page the child now sees;
//   - each present page gets one more mapping (mapcount, refcount) and PG_anon_shared;
//     each swap entry one more swap_map count; the child joins the parent's anon_vma
//     first, so an rmap walk that runs meanwhile finds every mapping that exists;
//   - a maybe-pinned page is not shared: the child gets a copy at once
//     (copy_present_page), or a later COW in the parent would leave the pin on the
//     page the child keeps (the GUP-after-fork bug).
// The first write in either process copies the page (fault.ts, doWpPage), or reuses
// it when the writer is its last user.
//
// The parent's mmap_lock is held for write throughout, so no fault, gup or munmap of
// the parent runs; reclaim may (it takes no mmap_lock) and is why ptes are copied
// under the parent's PT lock, where a walker cannot see half a copy.

import type { Task } from '../sched/index.js';
import { PG_swapbacked, PG_uptodate } from './frames.js';
import { folioAddNewAnonRmap, folioDupAnonRmap } from './rmap.js';
import { ENOMEM } from './fault.js';
import type { HostKernel } from './kernel.js';
import type { Mm, Process } from './mm.js';
import type { MmuNotifierRange } from './mmu-notifier.js';
import { PAGE_SHIFT, PTE_DIRTY, PTE_WRITE, PTE_YOUNG, pfnPte, ptePfn, ptePresent, pteSwapSlot } from './pte.js';
import { PROT_WRITE } from './vma.js';
import type { Vma } from './vma.js';

/** Test-only switches, each turning one mechanism of copy-on-write off. */
export interface ForkDebug {
  /** copy_page_range write-protects the parent without invalidate_range_start/end. */
  noWriteProtectNotify: boolean;
  /** do_wp_page replaces the parent's page without notifying (2008: no invalidate_page). */
  noWpCopyNotify: boolean;
}

/** dup_mmap: the child, or -ENOMEM (and no child) when a page for a pinned copy was not there. */
export function* dupMm(k: HostKernel, parent: Process, name: string): Task<Process | number> {
  const src = parent.mm;
  const child = k.createProcess(name, { era: src.era, oomUnkillable: parent.oomUnkillable });
  const dst = child.mm;
  let ok = true;
  yield* src.mmapLock.downWrite();
  try {
    if (src.dead) {
      ok = false;
    } else {
      k.anonVmaFork(dst, src);
      for (const v of src.vmas.list) {
        // VM_DONTCOPY: a driver's mapping stays the parent's.
        if (v.ops !== undefined) continue;
        dst.vmas.insert({ start: v.start, end: v.end, prot: v.prot });
        if (!(yield* copyPageRange(k, dst, src, v))) {
          ok = false;
          break;
        }
      }
    }
  } finally {
    src.mmapLock.upWrite();
  }
  if (!ok) {
    yield* k.exitProcess(child);
    return -ENOMEM;
  }
  if (k.ctx.tracing()) k.ctx.trace({ type: 'fork', pid: parent.pid, child: child.pid, mm: src.id, childMm: dst.id });
  return child;
}

function* copyPageRange(k: HostKernel, dst: Mm, src: Mm, vma: Vma): Task<boolean> {
  const notify = !k.forkDebug.noWriteProtectNotify;
  const range: MmuNotifierRange = { mm: src, start: vma.start, end: vma.end, event: 'protection', blockable: true };
  if (notify) yield* k.mn.invalidateRangeStart(range);
  const fr = k.frames;
  const endPage = vma.end >>> PAGE_SHIFT;
  let page = vma.start >>> PAGE_SHIFT;
  // A page for the child's copy of a pinned page, allocated with no lock held.
  let prealloc = -1;
  let ok = true;
  while (page < endPage) {
    let needPage = -1;
    yield* src.ptl.lock();
    src.pt.forEachInRange(page, endPage, (p, pte) => {
      if (needPage >= 0) return;
      if (!ptePresent(pte)) {
        k.swap.swapDuplicate(pteSwapSlot(pte));
        dst.pt.set(p, pte);
        dst.swapEnts++;
        return;
      }
      const pfn = ptePfn(pte);
      if (fr.maybePinned(pfn)) {
        if (prealloc < 0) {
          needPage = p;
          return;
        }
        // copy_present_page: the child's own copy; the parent keeps its page writable.
        const npfn = prealloc;
        prealloc = -1;
        fr.bytes.copyWithin(npfn << PAGE_SHIFT, pfn << PAGE_SHIFT, (pfn + 1) << PAGE_SHIFT);
        fr.setFlag(npfn, PG_swapbacked | PG_uptodate);
        folioAddNewAnonRmap(fr, npfn, dst, p);
        dst.pt.set(p, pfnPte(npfn, vma.prot & PROT_WRITE ? PTE_WRITE | PTE_DIRTY : 0));
        dst.anonRss++;
        k.lru.add(npfn);
        return;
      }
      // copy_present_pte on a COW mapping: wrprotect both, the child's pte old.
      if (pte & PTE_WRITE) src.pt.set(p, pte & ~PTE_WRITE);
      dst.pt.set(p, pte & ~(PTE_WRITE | PTE_YOUNG));
      folioDupAnonRmap(fr, pfn);
      fr.refcount[pfn]!++;
      dst.anonRss++;
    });
    src.ptl.unlock();
    if (needPage < 0) break;
    page = needPage;
    prealloc = yield* k.allocPage(dst);
    if (prealloc < 0) {
      ok = false;
      break;
    }
  }
  if (prealloc >= 0) k.folioPut(prealloc);
  if (notify) yield* k.mn.invalidateRangeEnd(range);
  return ok;
}

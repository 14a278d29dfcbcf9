// Counterpart: mm/mprotect.c (mprotect_fixup, change_protection)

import type { Task } from '../sched/index.js';
import { EINVAL, ENOMEM } from './fault.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import { rangeMapped } from './mmap.js';
import { PAGE_SHIFT, PTE_WRITE, ptePresent } from './pte.js';
import { PROT_READ, PROT_WRITE, isPageAligned, pageAlignUp } from './vma.js';

/**
 * mprotect with PROT_READ or PROT_READ|PROT_WRITE (PROT_NONE is not modelled).
 * Removing write clears the write bit of every present pte inside a start/end
 * pair; adding it leaves ptes read-only and the next write fault upgrades them.
 */
export function* doMprotect(k: HostKernel, mm: Mm, hva: number, len: number, prot: number): Task<number> {
  if (!isPageAligned(hva) || !(len > 0) || !(prot & PROT_READ) || prot & ~(PROT_READ | PROT_WRITE)) return -EINVAL;
  const end = hva + pageAlignUp(len);
  yield* mm.mmapLock.downWrite();
  try {
    if (!rangeMapped(mm, hva, end)) return -ENOMEM;
    mm.vmas.protect(hva, end, prot);
    if (k.ctx.tracing()) k.ctx.trace({ type: 'mprotect', mm: mm.id, hva, len: end - hva, prot });
    if (prot & PROT_WRITE) return 0;
    const range = { mm, start: hva, end, event: 'protection', blockable: true } as const;
    yield* k.mn.invalidateRangeStart(range);
    yield* mm.ptl.lock();
    mm.pt.forEachInRange(hva >>> PAGE_SHIFT, end >>> PAGE_SHIFT, (page, pte) => {
      if (ptePresent(pte) && pte & PTE_WRITE) mm.pt.set(page, pte & ~PTE_WRITE);
    });
    mm.ptl.unlock();
    yield* k.mn.invalidateRangeEnd(range);
    return 0;
  } finally {
    mm.mmapLock.upWrite();
  }
}

// Counterpart: mm/page_idle.c (idle page tracking: page_idle_clear_pte_refs, and
// the young test that reads it back)

import type { Task } from '../sched/index.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PAGE_SHIFT, PAGE_SIZE, PTE_YOUNG, ptePresent } from './pte.js';

/**
 * Clears the young state of [start, end), host ptes and secondary MMUs
 * (clear_young, no flush); returns how many pages had it.
 */
export function* clearYoungRange(k: HostKernel, mm: Mm, start: number, end: number): Task<number> {
  let young = 0;
  yield* mm.ptl.lock();
  mm.pt.forEachInRange(start >>> PAGE_SHIFT, end >>> PAGE_SHIFT, (page, pte) => {
    if (!ptePresent(pte)) return;
    const hva = page * PAGE_SIZE;
    let y = (pte & PTE_YOUNG) !== 0;
    if (y) mm.pt.set(page, pte & ~PTE_YOUNG);
    if (k.mn.clearYoung(mm, hva, hva + PAGE_SIZE)) y = true;
    if (y) young++;
  });
  mm.ptl.unlock();
  return young;
}

/** Whether the page at hva was accessed since its young state was last cleared. */
export function* testYoung(k: HostKernel, mm: Mm, hva: number): Task<boolean> {
  yield* mm.ptl.lock();
  const pte = mm.pt.get(hva >>> PAGE_SHIFT);
  const young = (ptePresent(pte) && (pte & PTE_YOUNG) !== 0) || k.mn.testYoung(mm, hva & ~(PAGE_SIZE - 1));
  mm.ptl.unlock();
  return young;
}

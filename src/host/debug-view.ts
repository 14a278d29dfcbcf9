// Counterpart: what crash (and a driver's debugfs audit) reads of mm/: page tables and
// struct page fields, read without locks
//
// The host as a debugger sees it, for the audits that hold a secondary MMU's
// translations against the host ptes and frames (src/check/coherency.ts) and for the
// console's inspection of guest memory. It is not part of SecondaryMmuHost and a
// driver never holds one: a driver's coherence must rest on the notifier protocol
// alone, while an audit must look behind it to judge that protocol. Everything here
// reads; nothing takes a lock, sleeps, faults in or moves a counter.

import type { FrameTable } from './frames.js';
import { followPteUnlocked, peekUserPage, userPageWhere, type UserPageWhere } from './inspect.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PAGE_SIZE, ptePfn, ptePresent } from './pte.js';

export interface HostDebugView {
  /** struct page of every frame: flags, refcount, gupRefs, mapcount, rmapMm. Read only. */
  readonly frames: FrameTable;
  /** follow_pte without the PT lock: hva's host pte in mm (0 when none). */
  followPte(mm: Mm, hva: number): number;
  /** Where hva's page is: present (pfn), in the swap cache, on swap, or nowhere. */
  userPageWhere(mm: Mm, hva: number): UserPageWhere;
  /** Copies hva's page into dst from wherever it is, without swapping it in. */
  peekUserPage(mm: Mm, hva: number, dst: Uint8Array): UserPageWhere;
  /** The swap device's copy of a slot into dst; false when the slot was never written. */
  peekSwapSlot(slot: number, dst: Uint8Array): boolean;
  /**
   * rmap_walk of an anon page: every mm of its anon_vma (the fork tree of the mm its
   * rmap names) whose pte at the page's address maps it. After fork that is more than
   * the one mm frames.rmapMm names, and not always it.
   */
  pageMappers(pfn: number): Mm[];
}

export function hostDebugView(k: HostKernel): HostDebugView {
  return {
    frames: k.frames,
    followPte: followPteUnlocked,
    userPageWhere: (mm, hva) => userPageWhere(k, mm, hva),
    peekUserPage: (mm, hva, dst) => peekUserPage(k, mm, hva, dst),
    peekSwapSlot: (slot, dst) => k.swap.peekSlot(slot, dst),
    pageMappers(pfn) {
      const fr = k.frames;
      if (fr.mapcount[pfn] === 0) return [];
      const hva = fr.rmapHvaPage[pfn]! * PAGE_SIZE;
      const tree = k.anonVmaOf(fr.rmapMm[pfn]!)?.mms ?? [];
      return tree.filter((mm) => {
        const pte = followPteUnlocked(mm, hva);
        return ptePresent(pte) && ptePfn(pte) === pfn;
      });
    },
  };
}

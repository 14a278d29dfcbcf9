// Counterpart: mm/pgtable-generic.c (the store: two levels, leaves of 1024 ptes)
//
// Indexed by hva page number (hva >> PAGE_SHIFT). The directory is a Map from the
// upper bits to an Int32Array leaf; a leaf is allocated on the first non-none
// write and dropped when its last pte goes back to none, so an empty table costs
// nothing and iteration over a sparse range skips missing leaves.
//
// Locking is the caller's business: every write happens under the owning mm's
// PT lock (see Mm.ptl); lockless readers (gup-fast, the user-access fast path)
// only read one pte and re-check under the lock before acting on it.

import { PTE_NONE } from './pte.js';

export const PTRS_PER_LEAF_SHIFT = 10;
export const PTRS_PER_LEAF = 1 << PTRS_PER_LEAF_SHIFT;
const LEAF_MASK = PTRS_PER_LEAF - 1;

export class PageTable {
  private readonly leaves = new Map<number, Int32Array>();
  /** Non-none ptes per leaf, parallel to `leaves`, so a leaf can be freed when empty. */
  private readonly used = new Map<number, number>();
  private nrUsed = 0;

  get(hvaPage: number): number {
    const leaf = this.leaves.get(hvaPage >>> PTRS_PER_LEAF_SHIFT);
    return leaf === undefined ? PTE_NONE : leaf[hvaPage & LEAF_MASK]!;
  }

  set(hvaPage: number, pte: number): void {
    const dirIdx = hvaPage >>> PTRS_PER_LEAF_SHIFT;
    let leaf = this.leaves.get(dirIdx);
    if (leaf === undefined) {
      if (pte === PTE_NONE) return;
      leaf = new Int32Array(PTRS_PER_LEAF);
      this.leaves.set(dirIdx, leaf);
      this.used.set(dirIdx, 0);
    }
    const i = hvaPage & LEAF_MASK;
    const old = leaf[i]!;
    leaf[i] = pte;
    if ((old === PTE_NONE) === (pte === PTE_NONE)) return;
    const delta = pte === PTE_NONE ? -1 : 1;
    const n = this.used.get(dirIdx)! + delta;
    this.nrUsed += delta;
    if (n === 0) {
      this.leaves.delete(dirIdx);
      this.used.delete(dirIdx);
    } else {
      this.used.set(dirIdx, n);
    }
  }

  /** Number of non-none ptes (present or swap). */
  get size(): number {
    return this.nrUsed;
  }

  /**
   * Calls fn for every non-none pte with startPage <= hvaPage < endPage, in order.
   * fn may set the visited pte (including to none) but must not touch others.
   */
  forEachInRange(startPage: number, endPage: number, fn: (hvaPage: number, pte: number) => void): void {
    let page = startPage;
    while (page < endPage) {
      const dirIdx = page >>> PTRS_PER_LEAF_SHIFT;
      const leafEnd = Math.min(endPage, (dirIdx + 1) * PTRS_PER_LEAF);
      const leaf = this.leaves.get(dirIdx);
      if (leaf !== undefined) {
        for (; page < leafEnd; page++) {
          const pte = leaf[page & LEAF_MASK]!;
          if (pte !== PTE_NONE) fn(page, pte);
        }
      }
      page = leafEnd;
    }
  }

  /** Every non-none pte, for audits and dumps. */
  forEach(fn: (hvaPage: number, pte: number) => void): void {
    const dirs = [...this.leaves.keys()].sort((a, b) => a - b);
    for (const dirIdx of dirs) {
      const leaf = this.leaves.get(dirIdx)!;
      const base = dirIdx * PTRS_PER_LEAF;
      for (let i = 0; i < PTRS_PER_LEAF; i++) {
        const pte = leaf[i]!;
        if (pte !== PTE_NONE) fn(base + i, pte);
      }
    }
  }

  get nrLeaves(): number {
    return this.leaves.size;
  }
}

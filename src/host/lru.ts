// Counterpart: mm/swap.c (LRU lists: add, activate, deactivate, isolate, putback)
//
// Two doubly linked lists of anon pages threaded through FrameTable.lruPrev/lruNext.
// Heads live at indices nrFrames (inactive) and nrFrames + 1 (active). New pages
// enter at the head; reclaim takes from the tail. PG_lru says "on a list", PG_active
// says which one. Isolation takes the page off its list and a reference, so two
// reclaimers never work on one page and the page cannot be freed under them.

import { PG_active, PG_isolated, PG_lru } from './frames.js';
import type { FrameTable } from './frames.js';

export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;

export class Lru {
  private readonly fr: FrameTable;
  readonly heads: readonly [number, number];
  readonly sizes = [0, 0];

  constructor(fr: FrameTable) {
    this.fr = fr;
    const h0 = fr.nrFrames;
    const h1 = fr.nrFrames + 1;
    this.heads = [h0, h1];
    for (const h of this.heads) {
      fr.lruPrev[h] = h;
      fr.lruNext[h] = h;
    }
  }

  get nrInactive(): number {
    return this.sizes[LRU_INACTIVE_ANON]!;
  }
  get nrActive(): number {
    return this.sizes[LRU_ACTIVE_ANON]!;
  }

  private listOf(pfn: number): number {
    return this.fr.flags[pfn]! & PG_active ? LRU_ACTIVE_ANON : LRU_INACTIVE_ANON;
  }

  /** lruvec_add_folio: at the head of the list PG_active names. */
  add(pfn: number): void {
    const fr = this.fr;
    if (fr.flags[pfn]! & PG_lru) throw new Error(`BUG: pfn ${pfn} already on an LRU`);
    const lru = this.listOf(pfn);
    const head = this.heads[lru]!;
    const first = fr.lruNext[head]!;
    fr.lruPrev[pfn] = head;
    fr.lruNext[pfn] = first;
    fr.lruPrev[first] = pfn;
    fr.lruNext[head] = pfn;
    fr.setFlag(pfn, PG_lru);
    this.sizes[lru]!++;
  }

  /** lruvec_del_folio. */
  del(pfn: number): void {
    const fr = this.fr;
    if (!(fr.flags[pfn]! & PG_lru)) throw new Error(`BUG: pfn ${pfn} is not on an LRU`);
    const prev = fr.lruPrev[pfn]!;
    const next = fr.lruNext[pfn]!;
    fr.lruNext[prev] = next;
    fr.lruPrev[next] = prev;
    fr.lruPrev[pfn] = -1;
    fr.lruNext[pfn] = -1;
    fr.clearFlag(pfn, PG_lru);
    this.sizes[this.listOf(pfn)]!--;
  }

  /** Tail of a list (the coldest page), or -1. */
  tail(lru: number): number {
    const head = this.heads[lru]!;
    const t = this.fr.lruPrev[head]!;
    return t === head ? -1 : t;
  }

  /** Takes the page off its list for a reclaimer, with a reference (folio_isolate_lru). */
  isolate(pfn: number): void {
    this.del(pfn);
    this.fr.refcount[pfn]!++;
    this.fr.setFlag(pfn, PG_isolated);
  }

  /**
   * Ends an isolation: back on the list PG_active names, dropping the isolation
   * reference. Returns true when that was the last reference (the caller frees).
   */
  putback(pfn: number): boolean {
    const fr = this.fr;
    fr.clearFlag(pfn, PG_isolated);
    if (--fr.refcount[pfn]! === 0) return true;
    this.add(pfn);
    return false;
  }

  /** Moves a page that is on a list to the head of the other (or the same) list. */
  move(pfn: number, active: boolean): void {
    this.del(pfn);
    if (active) this.fr.setFlag(pfn, PG_active);
    else this.fr.clearFlag(pfn, PG_active);
    this.add(pfn);
  }

  /** inactive_is_low: keep at least as many inactive as active pages (ratio 1 for small hosts). */
  inactiveIsLow(): boolean {
    return this.nrInactive < this.nrActive;
  }

  /** Pages of one list from head to tail, for audits and dumps. */
  walk(lru: number, limit = Infinity): number[] {
    const out: number[] = [];
    const head = this.heads[lru]!;
    for (let p = this.fr.lruNext[head]!; p !== head && out.length < limit; p = this.fr.lruNext[p]!) out.push(p);
    return out;
  }

  dump(): { inactive: number; active: number } {
    return { inactive: this.nrInactive, active: this.nrActive };
  }
}

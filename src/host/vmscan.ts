// Counterpart: mm/vmscan.c (shrink_node, shrink_active_list, shrink_folio_list, kswapd)
//
// shrink_folio_list, per isolated page, in the kernel's order (KERNEL-NOTES §4):
//   trylock -> references (folio_referenced) -> skip maybe-pinned -> add_to_swap
//   -> try_to_unmap -> pageout (sleeps, page locked, no spinlock held)
//   -> __remove_mapping: free only if refcount is exactly isolation + swap cache.
// A page that fails a step is activated or kept (back on the inactive list). A page
// that keeps an extra reference (gup, a fault that found it in the swap cache during
// pageout) stays in the swap cache, unmapped, with its data, until a later pass.

import { preempt } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { GUP_PIN_COUNTING_BIAS, PG_active, PG_dirty, PG_isolated, PG_lru, PG_referenced, PG_swapcache, PG_writeback } from './frames.js';
import type { HostKernel } from './kernel.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON } from './lru.js';
import type { Mm } from './mm.js';
import { PAGE_SIZE, PTE_SPECIAL, ptePfn, ptePresent, pteIsSwap, pteSwapSlot } from './pte.js';
import { folioReferenced, tryToUnmap } from './rmap.js';

export const SWAP_CLUSTER_MAX = 32;
export const DEF_PRIORITY = 12;
export const MAX_RECLAIM_RETRIES = 16;

const enum Verdict {
  Freed,
  Keep,
  Activate,
}

function isolateFromTail(k: HostKernel, lru: number, max: number, out: number[]): void {
  for (let i = 0; i < max; i++) {
    const pfn = k.lru.tail(lru);
    if (pfn < 0) break;
    k.lru.isolate(pfn);
    k.nrIsolated++;
    out.push(pfn);
  }
}

function putback(k: HostKernel, pfn: number): void {
  k.nrIsolated--;
  if (k.lru.putback(pfn)) k.freePage(pfn);
}

/** shrink_active_list: ages the coldest active pages and moves them to the inactive list. */
function* shrinkActiveList(k: HostKernel, nrToScan: number): Task {
  const isolated: number[] = [];
  isolateFromTail(k, LRU_ACTIVE_ANON, nrToScan, isolated);
  for (const pfn of isolated) {
    // Anon pages are deactivated whether referenced or not (only executable file pages
    // stay); the walk still clears young bits so the inactive pass sees fresh ones.
    yield* folioReferenced(k, pfn);
    k.frames.clearFlag(pfn, PG_active);
    k.ctx.stats.pgdeactivate++;
    if (k.ctx.tracing()) k.ctx.trace({ type: 'deactivate', pfn });
    putback(k, pfn);
  }
}

/**
 * Why shrink_folio_list did not free a page, for a caller that names it
 * (reclaimUserPage); the scan passes none. ignoreReferences is reclaim_pages':
 * the caller asked for this page, so a recent access does not keep it.
 */
interface ShrinkControl {
  ignoreReferences: boolean;
  why: string;
  /** pageout wrote the page (a clean page still in the swap cache needs no write). */
  wrote: boolean;
}

function* shrinkFolio(k: HostKernel, pfn: number, sc: ShrinkControl | null = null): Task<Verdict> {
  const fr = k.frames;
  const stats = k.ctx.stats;
  if (!fr.trylockPage(pfn)) return keep(sc, Verdict.Keep, 'the page is locked (I/O or another reclaimer holds it)');
  let verdict: Verdict;
  try {
    verdict = yield* shrinkLockedFolio(k, pfn, sc);
  } catch (e) {
    fr.unlockPage(pfn);
    throw e;
  }
  if (verdict === Verdict.Freed) {
    // __remove_mapping froze the count at isolation + cache; both are gone now.
    fr.clearFlag(pfn, PG_isolated);
    fr.unlockPage(pfn);
    fr.refcount[pfn] = 0;
    k.nrIsolated--;
    k.freePage(pfn);
    stats.pgsteal++;
    if (k.ctx.tracing()) k.ctx.trace({ type: 'reclaimed', pfn });
    return verdict;
  }
  fr.unlockPage(pfn);
  return verdict;
}

function keep(sc: ShrinkControl | null, v: Verdict, why: string): Verdict {
  if (sc !== null) sc.why = why;
  return v;
}

function* shrinkLockedFolio(k: HostKernel, pfn: number, sc: ShrinkControl | null): Task<Verdict> {
  const fr = k.frames;
  const stats = k.ctx.stats;

  // folio_check_references
  if (sc === null || !sc.ignoreReferences) {
    const referencedPtes = yield* folioReferenced(k, pfn);
    const referencedFolio = fr.testClearFlag(pfn, PG_referenced);
    if (referencedPtes === -1) return Verdict.Activate;
    if (referencedPtes > 0) {
      fr.setFlag(pfn, PG_referenced);
      return referencedFolio || referencedPtes > 1 ? Verdict.Activate : Verdict.Keep;
    }
  }

  if (fr.maybePinned(pfn)) {
    stats.pgkeepPinned++;
    return keep(sc, Verdict.Activate, `the page is pinned (a FOLL_PIN reference: refcount ${fr.refcount[pfn]} >= ${GUP_PIN_COUNTING_BIAS}); reclaim must leave it`);
  }

  if (!(fr.flags[pfn]! & PG_swapcache)) {
    // An anon page nobody maps (munmap/exit while someone held a reference): nothing to
    // write; it goes when the last reference does.
    if (fr.mapcount[pfn] === 0) return keep(sc, Verdict.Keep, 'nobody maps the page (it goes when its last reference does)');
    if (!k.swap.addToSwap(pfn)) return keep(sc, Verdict.Activate, 'no free swap slot');
  }

  if (fr.mapcount[pfn]! > 0) {
    const unmapped = yield* tryToUnmap(k, pfn);
    // The 2008 try_to_unmap_one keeps a young page; either era keeps one pinned meanwhile.
    if (!unmapped) return keep(sc, Verdict.Activate, 'try_to_unmap left it mapped (pinned meanwhile, or young under the 2008 protocol: aging cleared the bit, try again)');
  }

  // A clean page still in the swap cache (a read swap-in that kept its slot) skips
  // pageout: the slot holds its data. That is only true because every dirty bit was
  // carried to PG_dirty by now: the host pte's in try_to_unmap, a secondary MMU's
  // (KVM's spte D) from its range_start / invalidate_page; a missed one loses the
  // writes, and the next swap-in reads the stale copy.
  let wrote = false;
  if (fr.flags[pfn]! & PG_dirty) {
    // pageout's is_page_cache_freeable: with an extra reference, writing is pointless
    // now (the page cannot be freed); keep it, clean or not, for a later pass.
    if (fr.refcount[pfn] !== 2) {
      stats.pgkeepRefd++;
      return keep(sc, Verdict.Keep, `unmapped, but ${fr.refcount[pfn]! - 2} extra reference${fr.refcount[pfn] === 3 ? '' : 's'} (gup, or a secondary MMU that keeps one) made writing it pointless`);
    }
    // folio_clear_dirty_for_io, folio_start_writeback
    fr.clearFlag(pfn, PG_dirty);
    fr.setFlag(pfn, PG_writeback);
    wrote = true;
    if (sc !== null) sc.wrote = true;
    yield* k.swap.writePage(pfn);
    fr.clearFlag(pfn, PG_writeback);
    // Redirtied through a reference taken during the write (put_page(dirty)).
    if (fr.flags[pfn]! & PG_dirty) return keep(sc, Verdict.Keep, 'written to swap, then redirtied through a reference taken during the write');
  }

  // __remove_mapping: folio_ref_freeze(isolation + swap cache)
  if (fr.mapcount[pfn] !== 0 || fr.refcount[pfn] !== 2) {
    stats.pgkeepRefd++;
    return keep(sc, Verdict.Keep, fr.mapcount[pfn] !== 0 ? 'mapped again during pageout'
      : `${wrote ? 'written to swap' : 'clean in the swap cache (its slot up to date)'}, but ${fr.refcount[pfn]! - 2} extra reference${fr.refcount[pfn] === 3 ? '' : 's'} (gup, or a secondary MMU that keeps one) hold the frame`);
  }
  k.swap.deleteFromSwapCache(pfn);
  return Verdict.Freed;
}

/** shrink_inactive_list: returns the number of pages freed. */
function* shrinkInactiveList(k: HostKernel, nrToScan: number): Task<number> {
  const isolated: number[] = [];
  isolateFromTail(k, LRU_INACTIVE_ANON, nrToScan, isolated);
  k.ctx.stats.pgscan += isolated.length;
  let reclaimed = 0;
  for (const pfn of isolated) {
    const v = yield* shrinkFolio(k, pfn);
    if (v === Verdict.Freed) {
      reclaimed++;
      continue;
    }
    if (v === Verdict.Activate) {
      k.frames.setFlag(pfn, PG_active);
      k.ctx.stats.pgactivate++;
    }
    if (k.ctx.tracing()) k.ctx.trace({ type: v === Verdict.Activate ? 'activate' : 'keep', pfn });
    putback(k, pfn);
  }
  return reclaimed;
}

/**
 * shrink_node: priority passes from DEF_PRIORITY down to 0, each scanning lru_size >>
 * priority pages (all of them at priority 0), until nrToReclaim pages are free.
 * Bounded: at most about two full scans of each list per call.
 */
export function* shrinkNode(k: HostKernel, nrToReclaim: number): Task<number> {
  let reclaimed = 0;
  for (let prio = DEF_PRIORITY; prio >= 0 && reclaimed < nrToReclaim; prio--) {
    let scanInactive = k.lru.nrInactive >> prio;
    let scanActive = k.lru.nrActive >> prio;
    if (prio === 0) {
      scanInactive = k.lru.nrInactive;
      scanActive = k.lru.nrActive;
    }
    while ((scanInactive > 0 || scanActive > 0) && reclaimed < nrToReclaim) {
      if (scanActive > 0 && k.lru.inactiveIsLow()) {
        const n = Math.min(SWAP_CLUSTER_MAX, scanActive);
        scanActive -= n;
        yield* shrinkActiveList(k, n);
      } else if (scanInactive === 0) {
        const n = Math.min(SWAP_CLUSTER_MAX, scanActive);
        scanActive -= n;
        yield* shrinkActiveList(k, n);
        scanInactive = Math.min(n, k.lru.nrInactive);
      }
      const n = Math.min(SWAP_CLUSTER_MAX, scanInactive);
      scanInactive -= n;
      if (n > 0) reclaimed += yield* shrinkInactiveList(k, n);
      yield* preempt();
    }
  }
  return reclaimed;
}

/** What reclaimUserPage did with the page behind one user address. */
export type UserPageReclaim =
  /** Written to swap (or already there, clean) and freed: the pte holds the swap entry. */
  | { readonly kind: 'freed'; readonly pfn: number; readonly written: boolean }
  /** Unmapped to its swap entry, but the frame stays in the swap cache (why says what holds it). */
  | { readonly kind: 'swapcache'; readonly pfn: number; readonly why: string }
  /** Still mapped, nothing written: why says what kept it. */
  | { readonly kind: 'kept'; readonly pfn: number; readonly why: string }
  /** Not resident: a swap entry already (slot), or no pte at all (never touched, or discarded). */
  | { readonly kind: 'swapped'; readonly slot: number }
  | { readonly kind: 'none' };

/**
 * reclaim_pages() for the one page that maps hva in mm, reached the way
 * MADV_PAGEOUT reaches it: under the PT lock find the page and isolate it from
 * its LRU, then shrink_folio_list with ignore_references (the caller asked for
 * this page, so a recent access does not save it): add_to_swap, try_to_unmap
 * (the notifiers zap every secondary mapping), pageout, free. A page reclaim must
 * not take (pinned, locked, isolated by another reclaimer) stays mapped and goes
 * back on its LRU (activated where shrink_folio_list activates), with the reason.
 */
export function* reclaimUserPage(k: HostKernel, mm: Mm, hva: number): Task<UserPageReclaim> {
  const fr = k.frames;
  yield* mm.ptl.lock();
  const pte = mm.pt.get(Math.floor(hva / PAGE_SIZE));
  if (!ptePresent(pte)) {
    mm.ptl.unlock();
    return pteIsSwap(pte) ? { kind: 'swapped', slot: pteSwapSlot(pte) } : { kind: 'none' };
  }
  const pfn = ptePfn(pte);
  if (pte & PTE_SPECIAL) {
    mm.ptl.unlock();
    return { kind: 'kept', pfn, why: 'a driver\'s VM_PFNMAP pte (the page belongs to another mapping)' };
  }
  if (!(fr.flags[pfn]! & PG_lru)) {
    mm.ptl.unlock();
    const why = fr.flags[pfn]! & PG_isolated ? 'another reclaimer has it isolated right now' : 'the page is on no LRU list (unevictable)';
    return { kind: 'kept', pfn, why };
  }
  k.lru.isolate(pfn);
  k.nrIsolated++;
  mm.ptl.unlock();
  const sc: ShrinkControl = { ignoreReferences: true, why: '', wrote: false };
  const v = yield* shrinkFolio(k, pfn, sc);
  if (v === Verdict.Freed) return { kind: 'freed', pfn, written: sc.wrote };
  const unmapped = fr.mapcount[pfn] === 0 && (fr.flags[pfn]! & PG_swapcache) !== 0;
  if (v === Verdict.Activate) {
    fr.setFlag(pfn, PG_active);
    k.ctx.stats.pgactivate++;
  }
  putback(k, pfn);
  return unmapped ? { kind: 'swapcache', pfn, why: sc.why } : { kind: 'kept', pfn, why: sc.why };
}

/**
 * Whether the node can never be balanced again: even if reclaim freed every page it
 * may free, free memory would stay below the high watermark (pgdat_balanced would
 * never hold; Linux calls such a node hopeless once kswapd_failures reaches
 * MAX_RECLAIM_RETRIES). Reclaimable means on the LRU (or isolated, on its way back)
 * and not maybe-pinned: zone_reclaimable_pages counts pinned pages too, because
 * Linux's LRU cannot tell a long-term pin from a short reference; ours can
 * (folio_maybe_dma_pinned), and reclaim skips every one of them (pgkeepPinned).
 *
 * Why the allocator asks (see allocPage): on a hopeless node, each reclaim round
 * still "makes progress" by freeing one of the few unpinned pages left, and those
 * are the pages the allocating task is using and faults straight back in. Pin-mode
 * KVM does exactly that: the guest page-table page it has just walked is the one
 * page reclaim can take for the data page it pins; the fault then finds the table
 * gone, retries, and the two pages swap each other out for ever.
 */
export function nodeHopeless(k: HostKernel): boolean {
  const fr = k.frames;
  const high = fr.watermarks.high;
  let available = fr.nrFree + k.nrIsolated;
  if (available + k.lru.nrActive + k.lru.nrInactive < high) return true;
  for (let pfn = 0; pfn < fr.nrFrames && available < high; pfn++) {
    if (fr.flags[pfn]! & PG_lru && !fr.maybePinned(pfn)) available++;
  }
  return available < high;
}

/**
 * kswapd: sleeps until an allocation drops free pages below the low watermark, then
 * reclaims until they are above high, or until MAX_RECLAIM_RETRIES passes in a row
 * freed nothing (everything pinned or referenced) and it goes back to sleep.
 */
export function* kswapd(k: HostKernel): Task {
  for (;;) {
    yield* k.kswapdWait.waitEvent(() => k.kswapdWanted);
    k.kswapdWanted = false;
    k.kswapdActive = true;
    if (k.ctx.tracing()) k.ctx.trace({ type: 'kswapd-wake', nrFree: k.frames.nrFree });
    let failures = 0;
    while (k.frames.nrFree < k.frames.watermarks.high && failures < MAX_RECLAIM_RETRIES) {
      const want = Math.max(SWAP_CLUSTER_MAX, k.frames.watermarks.high - k.frames.nrFree);
      const got = yield* shrinkNode(k, want);
      failures = got === 0 ? failures + 1 : 0;
      yield* preempt();
    }
    k.kswapdActive = false;
    if (k.ctx.tracing()) k.ctx.trace({ type: 'kswapd-sleep', nrFree: k.frames.nrFree, failures });
  }
}

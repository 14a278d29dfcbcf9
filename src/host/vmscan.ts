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
import { PG_active, PG_dirty, PG_isolated, PG_lru, PG_referenced, PG_swapcache, PG_writeback } from './frames.js';
import type { HostKernel } from './kernel.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON } from './lru.js';
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
    k.frames.flags[pfn]! &= ~PG_active;
    k.ctx.stats.pgdeactivate++;
    if (k.ctx.tracing()) k.ctx.trace({ type: 'deactivate', pfn });
    putback(k, pfn);
  }
}

function* shrinkFolio(k: HostKernel, pfn: number): Task<Verdict> {
  const fr = k.frames;
  const stats = k.ctx.stats;
  if (!fr.trylockPage(pfn)) return Verdict.Keep;
  let verdict: Verdict;
  try {
    verdict = yield* shrinkLockedFolio(k, pfn);
  } catch (e) {
    fr.unlockPage(pfn);
    throw e;
  }
  if (verdict === Verdict.Freed) {
    // __remove_mapping froze the count at isolation + cache; both are gone now.
    fr.flags[pfn]! &= ~PG_isolated;
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

function* shrinkLockedFolio(k: HostKernel, pfn: number): Task<Verdict> {
  const fr = k.frames;
  const stats = k.ctx.stats;

  // folio_check_references
  const referencedPtes = yield* folioReferenced(k, pfn);
  const referencedFolio = fr.testClearFlag(pfn, PG_referenced);
  if (referencedPtes === -1) return Verdict.Activate;
  if (referencedPtes > 0) {
    fr.flags[pfn]! |= PG_referenced;
    return referencedFolio || referencedPtes > 1 ? Verdict.Activate : Verdict.Keep;
  }

  if (fr.maybePinned(pfn)) {
    stats.pgkeepPinned++;
    return Verdict.Activate;
  }

  if (!(fr.flags[pfn]! & PG_swapcache)) {
    // An anon page nobody maps (munmap/exit while someone held a reference): nothing to
    // write; it goes when the last reference does.
    if (fr.mapcount[pfn] === 0) return Verdict.Keep;
    if (!k.swap.addToSwap(pfn)) return Verdict.Activate;
  }

  if (fr.mapcount[pfn]! > 0) {
    const unmapped = yield* tryToUnmap(k, pfn);
    if (!unmapped) return Verdict.Activate;
  }

  // A clean page still in the swap cache (a read swap-in that kept its slot) skips
  // pageout: the slot holds its data. That is only true because every dirty bit was
  // carried to PG_dirty by now: the host pte's in try_to_unmap, a secondary MMU's
  // (KVM's spte D) from its range_start / invalidate_page; a missed one loses the
  // writes, and the next swap-in reads the stale copy.
  if (fr.flags[pfn]! & PG_dirty) {
    // pageout's is_page_cache_freeable: with an extra reference, writing is pointless
    // now (the page cannot be freed); keep it, clean or not, for a later pass.
    if (fr.refcount[pfn] !== 2) {
      stats.pgkeepRefd++;
      return Verdict.Keep;
    }
    fr.flags[pfn]! = (fr.flags[pfn]! & ~PG_dirty) | PG_writeback;
    yield* k.swap.writePage(pfn);
    fr.flags[pfn]! &= ~PG_writeback;
    // Redirtied through a reference taken during the write (put_page(dirty)).
    if (fr.flags[pfn]! & PG_dirty) return Verdict.Keep;
  }

  // __remove_mapping: folio_ref_freeze(isolation + swap cache)
  if (fr.mapcount[pfn] !== 0 || fr.refcount[pfn] !== 2) {
    stats.pgkeepRefd++;
    return Verdict.Keep;
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
      k.frames.flags[pfn]! |= PG_active;
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

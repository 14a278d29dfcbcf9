// Counterpart: mm/page_alloc.c (alloc_pages slow path, __folio_put, wakeup_kswapd)
//
// The allocator's slow path ties reclaim and the OOM killer together: above the
// min watermark a frame comes straight off the free list (below low, kswapd is
// woken); below min the allocating task reclaims directly, retries while reclaim
// makes progress, and then calls the OOM killer.

import { preempt, sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { PG_active, PG_lru, PG_referenced } from './frames.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import { outOfMemory } from './oom.js';
import { MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, nodeHopeless, shrinkNode } from './vmscan.js';

/** folio_put: drops one reference; the last one frees the page. */
export function folioPut(k: HostKernel, pfn: number): void {
  const n = --k.frames.refcount[pfn]!;
  if (n === 0) freePage(k, pfn);
  else if (n < 0) throw new Error(`BUG: refcount underflow on pfn ${pfn}`);
}

/** __folio_put: refcount is 0; off the LRU, back to the free list. */
export function freePage(k: HostKernel, pfn: number): void {
  const fr = k.frames;
  if (fr.flags[pfn]! & PG_lru) k.lru.del(pfn);
  fr.clearFlag(pfn, PG_active | PG_referenced);
  fr.freeFrame(pfn);
  k.ctx.stats.pgfree++;
  if (k.ctx.tracing()) k.ctx.trace({ type: 'page-free', pfn });
}

/** wakeup_kswapd: once per episode (a wakeup while it runs only asks it to go on). */
export function wakeupKswapd(k: HostKernel): void {
  if (k.kswapdThread === null || k.kswapdWanted) return;
  k.kswapdWanted = true;
  if (!k.kswapdActive) k.ctx.stats.kswapdWakeups++;
  k.kswapdWait.wakeAll();
}

/**
 * alloc_pages(GFP_HIGHUSER_MOVABLE, 0): a frame with refcount 1, or -1 when memory
 * is exhausted and the OOM killer found nothing more to kill (or `mm`'s owner was
 * the victim). Fast path above the min watermark; below low it wakes kswapd; below
 * min the caller reclaims directly, then retries, then OOM-kills.
 *
 * should_reclaim_retry stops retrying when reclaim cannot help. Linux asks whether
 * free + reclaimable pages would meet the min watermark and counts any page freed
 * as progress; a round that frees less than a batch on a node that is hopeless
 * (nodeHopeless: even everything reclaimable could not bring it back to high,
 * because the rest is pinned) goes to the OOM killer at once instead. Its "progress"
 * is the last unpinned pages, which the allocating task faults straight back in:
 * Linux would thrash there for ever, and the OOM kill is what a pinning VMM that
 * overcommitted the host has coming.
 */
export function* allocPage(k: HostKernel, mm: Mm | null): Task<number> {
  const fr = k.frames;
  const wm = fr.watermarks;
  if (fr.nrFree > wm.min) {
    const pfn = fr.rmqueue();
    if (fr.nrFree < wm.low) wakeupKswapd(k);
    k.ctx.stats.pgalloc++;
    if (k.ctx.tracing()) k.ctx.trace({ type: 'page-alloc', pfn, nrFree: fr.nrFree });
    return pfn;
  }
  wakeupKswapd(k);
  let noProgress = 0;
  for (;;) {
    if (mm?.owner?.killed) {
      // An OOM victim may use the reserves to get out of the way, never wait for them.
      const pfn = fr.rmqueue();
      if (pfn >= 0) k.ctx.stats.pgalloc++;
      return pfn;
    }
    k.ctx.stats.allocstall++;
    const reclaimed = yield* shrinkNode(k, SWAP_CLUSTER_MAX);
    if (reclaimed >= SWAP_CLUSTER_MAX || !nodeHopeless(k)) {
      if (fr.nrFree > (reclaimed > 0 ? 0 : wm.min)) {
        k.ctx.stats.pgalloc++;
        return fr.rmqueue();
      }
      if (reclaimed > 0) {
        noProgress = 0;
        continue;
      }
      // Others hold pages isolated (mid-pageout): they will come back or be freed.
      if (k.nrIsolated > 0) {
        yield* sleepTicks(1, 'reclaim-throttle');
        continue;
      }
      if (++noProgress < MAX_RECLAIM_RETRIES) {
        yield* preempt();
        continue;
      }
    }
    noProgress = 0;
    const retry = yield* outOfMemory(k, mm);
    if (fr.nrFree > 0 && retry && !mm?.owner?.killed) {
      k.ctx.stats.pgalloc++;
      return fr.rmqueue();
    }
    if (!retry) return -1;
  }
}

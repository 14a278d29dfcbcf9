// Counterpart: what crash's `vtop`, `kmem -i` and `swap` read (the debugger's view of mm/)
//
// Read-only queries for faces (the debug console, tests, the torture harness): they
// take no lock, sleep never, and change nothing, so a debugger stopped between two
// scheduler steps sees exactly the state the threads left. Between steps no critical
// section is open except across a yield (a thread sleeping on I/O with a page locked):
// the answers are then what a lockless reader would see, which is what a debugger wants.

import { PG_active, PG_dirty, PG_free, PG_isolated, PG_lru, PG_swapcache, PG_unevictable } from './frames.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import { PAGE_SHIFT, PAGE_SIZE, ptePfn, ptePresent, pteIsSwap, pteSwapSlot } from './pte.js';

/** follow_pte without the lock: the pte of hva's page in mm (0 when none). */
export function followPteUnlocked(mm: Mm, hva: number): number {
  return mm.pt.get(Math.floor(hva / PAGE_SIZE));
}

/** Where a user page's bytes are right now. */
export type UserPageWhere =
  | { readonly kind: 'present'; readonly pte: number; readonly pfn: number }
  /** Swapped out, but the page is still in the swap cache (pageout in flight, or read back and not mapped yet). */
  | { readonly kind: 'swapcache'; readonly pte: number; readonly slot: number; readonly pfn: number }
  | { readonly kind: 'swap'; readonly pte: number; readonly slot: number }
  /** No pte: never touched (a fault would give a zero page) or zapped by DONTNEED. */
  | { readonly kind: 'none' };

export function userPageWhere(k: HostKernel, mm: Mm, hva: number): UserPageWhere {
  const pte = followPteUnlocked(mm, hva);
  if (ptePresent(pte)) return { kind: 'present', pte, pfn: ptePfn(pte) };
  if (pteIsSwap(pte)) {
    const slot = pteSwapSlot(pte);
    const pfn = k.swap.lookup(slot);
    return pfn >= 0 ? { kind: 'swapcache', pte, slot, pfn } : { kind: 'swap', pte, slot };
  }
  return { kind: 'none' };
}

/**
 * Copies hva's page (4 KiB) into dst without faulting it in: from its frame, its swap
 * cache page, or the swap device; zeros for a page without a pte. Returns where the
 * bytes came from ('swap' with zeros when the slot was never written).
 */
export function peekUserPage(k: HostKernel, mm: Mm, hva: number, dst: Uint8Array): UserPageWhere {
  const w = userPageWhere(k, mm, hva);
  if (w.kind === 'present' || w.kind === 'swapcache') {
    const off = w.pfn << PAGE_SHIFT;
    dst.set(k.frames.bytes.subarray(off, off + PAGE_SIZE));
  } else if (w.kind === 'swap') {
    if (!k.swap.peekSlot(w.slot, dst)) dst.fill(0);
  } else {
    dst.fill(0);
  }
  return w;
}

/** `info meminfo`: /proc/meminfo's anon lines, and who owns the frames. */
export interface MemInfo {
  readonly nrFrames: number;
  readonly free: number;
  readonly activeAnon: number;
  readonly inactiveAnon: number;
  readonly isolated: number;
  readonly swapCache: number;
  readonly dirty: number;
  readonly unevictable: number;
  /** Frames holding at least one FOLL_PIN pin. */
  readonly pinned: number;
  /** Frames with GUP references (FOLL_GET), pins excluded. */
  readonly gupReferenced: number;
  /** Mapped frames by owning process (by the page's rmap), in pid order. */
  readonly byOwner: readonly { readonly pid: number; readonly name: string; readonly frames: number }[];
  /** Allocated frames no process maps (swap cache only, in flight, kernel use). */
  readonly unmapped: number;
  readonly swapSlots: number;
  readonly swapUsed: number;
}

export function memInfo(k: HostKernel): MemInfo {
  const fr = k.frames;
  let free = 0, active = 0, inactive = 0, isolated = 0, swapCache = 0, dirty = 0, unevictable = 0, pinned = 0, gup = 0, unmapped = 0;
  const byMm = new Map<number, number>();
  for (let pfn = 0; pfn < fr.nrFrames; pfn++) {
    const f = fr.flags[pfn]!;
    if (f & PG_free) {
      free++;
      continue;
    }
    if (f & PG_lru) {
      if (f & PG_active) active++;
      else inactive++;
    }
    if (f & PG_isolated) isolated++;
    if (f & PG_swapcache) swapCache++;
    if (f & PG_dirty) dirty++;
    if (f & PG_unevictable) unevictable++;
    if (fr.maybePinned(pfn)) pinned++;
    else if (fr.gupRefs[pfn]! > 0) gup++;
    const mmId = fr.rmapMm[pfn]!;
    if (fr.mapcount[pfn]! > 0 && mmId !== 0) byMm.set(mmId, (byMm.get(mmId) ?? 0) + 1);
    else unmapped++;
  }
  const byOwner = [...k.processes.values()]
    .map((p) => ({ pid: p.pid, name: p.name, frames: byMm.get(p.mm.id) ?? 0 }))
    .sort((a, b) => a.pid - b.pid);
  return {
    nrFrames: fr.nrFrames,
    free,
    activeAnon: active,
    inactiveAnon: inactive,
    isolated,
    swapCache,
    dirty,
    unevictable,
    pinned,
    gupReferenced: gup,
    byOwner,
    unmapped,
    swapSlots: k.swap.nrSlots,
    swapUsed: k.swap.nrUsed,
  };
}

// Whole-kernel consistency check, for tests, the torture loop and the console.
//
// At a quiescent point (no thread inside the host kernel) every one of these holds:
//   - refcount = mapcount + swap cache + GUP references (FrameTable's header);
//   - mapcount = number of present ptes naming the frame; the anon rmap leads to every
//     one of them (its hva, and an mm of the anon_vma it names); rss counters match
//     the page tables;
//   - a special pte (a driver's VM_PFNMAP mapping) lies in a driver VMA and names a
//     frame that is not free; it counts in no mapcount or rss;
//   - copy-on-write: a writable pte maps a page no other mm may map (PG_anon_shared
//     clear), and a page with more than one mapping is PG_anon_shared;
//   - swap_map[slot] = number of swap ptes naming the slot; a slot is free exactly
//     when no pte names it and no page caches it; the cache and frames agree;
//   - the LRU lists are well-linked, their sizes and PG_lru/PG_active agree, and every
//     allocated page is on exactly one of them;
//   - the free list holds exactly the PG_free frames, once each, all with no state.
// With `inFlight`, pages that are locked or isolated (a reclaimer or fault is working
// on them) are allowed their transient reference and off-LRU state.

import { NO_SLOT, PG_active, PG_anon_shared, PG_free, PG_isolated, PG_locked, PG_lru, PG_swapcache, PG_writeback } from './frames.js';
import type { HostKernel } from './kernel.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON } from './lru.js';
import { PAGE_SIZE, PTE_SPECIAL, PTE_WRITE, ptePfn, ptePresent, pteSwapSlot, pteToString } from './pte.js';

export interface AuditOptions {
  /** Allow locked/isolated pages (a thread is mid-operation). Default false. */
  readonly inFlight?: boolean;
  /** Stop after this many violations. Default 20. */
  readonly limit?: number;
}

export class InvariantError extends Error {
  readonly violations: readonly string[];
  constructor(violations: readonly string[]) {
    super(`host invariants violated:\n  ${violations.join('\n  ')}`);
    this.name = 'InvariantError';
    this.violations = violations;
  }
}

/** Returns the list of violations (empty when all invariants hold). */
export function auditKernel(k: HostKernel, opts: AuditOptions = {}): string[] {
  const out: string[] = [];
  const limit = opts.limit ?? 20;
  const inFlight = opts.inFlight ?? false;
  const bad = (msg: string): boolean => {
    out.push(msg);
    return out.length >= limit;
  };
  const fr = k.frames;
  const n = fr.nrFrames;
  const mappings = new Int32Array(n);
  const swapRefs = new Int32Array(k.swap.nrSlots);

  // Page tables -> frames and slots.
  for (const mm of k.allMms()) {
    let rss = 0;
    let swapEnts = 0;
    let stop = false;
    mm.pt.forEach((page, pte) => {
      if (stop) return;
      if (pte & PTE_SPECIAL) {
        // A driver's pfn: no mapcount, no rss; only a frame someone still holds.
        const pfn = ptePfn(pte);
        if (!ptePresent(pte) || pfn >= n || fr.flags[pfn]! & PG_free || mm.vmas.find(page * PAGE_SIZE)?.ops === undefined) {
          stop = bad(`mm${mm.id} page 0x${page.toString(16)}: special pte ${pteToString(pte)} outside a driver VMA or to a free frame`);
        }
        return;
      }
      if (ptePresent(pte)) {
        rss++;
        const pfn = ptePfn(pte);
        if (pfn >= n) {
          stop = bad(`mm${mm.id} page 0x${page.toString(16)}: pte ${pteToString(pte)} beyond RAM`);
          return;
        }
        mappings[pfn]!++;
        if (fr.flags[pfn]! & PG_free) stop = bad(`mm${mm.id} page 0x${page.toString(16)} maps free pfn ${pfn}`);
        else if (fr.rmapHvaPage[pfn] !== page || k.anonVmaOf(fr.rmapMm[pfn]!)?.mms.includes(mm) !== true) {
          stop = bad(`mm${mm.id} page 0x${page.toString(16)} maps pfn ${pfn} whose rmap says ${fr.describe(pfn)}`);
        } else if (pte & PTE_WRITE && fr.flags[pfn]! & PG_anon_shared) {
          stop = bad(`mm${mm.id} page 0x${page.toString(16)}: writable pte to shared ${fr.describe(pfn)}`);
        }
      } else {
        swapEnts++;
        const slot = pteSwapSlot(pte);
        if (slot >= k.swap.nrSlots) stop = bad(`mm${mm.id} page 0x${page.toString(16)}: swap slot ${slot} beyond device`);
        else swapRefs[slot]!++;
      }
    });
    if (rss !== mm.anonRss) bad(`mm${mm.id}: anonRss ${mm.anonRss} but ${rss} present ptes`);
    if (swapEnts !== mm.swapEnts) bad(`mm${mm.id}: swapEnts ${mm.swapEnts} but ${swapEnts} swap ptes`);
    if (out.length >= limit) return out;
  }

  // Free list.
  const onFree = new Uint8Array(n);
  for (const pfn of fr.freeList()) {
    if (onFree[pfn]) {
      if (bad(`pfn ${pfn} twice on the free list`)) return out;
      continue;
    }
    onFree[pfn] = 1;
  }

  // Frames.
  let lruFlagged = 0;
  for (let pfn = 0; pfn < n; pfn++) {
    const f = fr.flags[pfn]!;
    if (f & PG_free) {
      if (!onFree[pfn]) {
        if (bad(`pfn ${pfn} is PG_free but not on the free list`)) return out;
      } else if (f !== PG_free || fr.refcount[pfn] !== 0 || fr.mapcount[pfn] !== 0 || fr.gupRefs[pfn] !== 0) {
        if (bad(`free ${fr.describe(pfn)} carries state`)) return out;
      }
      continue;
    }
    if (onFree[pfn] && bad(`used ${fr.describe(pfn)} is on the free list`)) return out;
    if (f & PG_lru) lruFlagged++;
    if (fr.mapcount[pfn] !== mappings[pfn] && bad(`${fr.describe(pfn)}: ${mappings[pfn]} ptes map it`)) return out;
    if (mappings[pfn]! > 1 && !(f & PG_anon_shared) && bad(`${fr.describe(pfn)}: ${mappings[pfn]} ptes map it, not marked shared`)) return out;
    const busy = (f & (PG_locked | PG_isolated | PG_writeback)) !== 0;
    if (busy && !inFlight && bad(`${fr.describe(pfn)} is busy at a quiescent point`)) return out;
    const expected = fr.mapcount[pfn]! + (f & PG_swapcache ? 1 : 0) + fr.gupRefs[pfn]! + (f & PG_isolated ? 1 : 0);
    const refOk = fr.refcount[pfn] === expected || (inFlight && busy && fr.refcount[pfn]! >= expected);
    if (!refOk && !inFlight && bad(`${fr.describe(pfn)}: refcount should be ${expected} (mapcount + swapcache + gup + isolation)`)) return out;
    if (fr.refcount[pfn]! <= 0 && bad(`${fr.describe(pfn)}: allocated with refcount <= 0`)) return out;
    if (!(f & (PG_lru | PG_isolated)) && !inFlight && bad(`${fr.describe(pfn)}: allocated but on no LRU`)) return out;
    if (f & PG_swapcache) {
      const slot = fr.swapSlot[pfn]!;
      if (k.swap.cache.get(slot) !== pfn && bad(`${fr.describe(pfn)}: swap cache has ${k.swap.cache.get(slot)} for slot ${slot}`)) return out;
    } else if (fr.swapSlot[pfn] !== NO_SLOT && bad(`${fr.describe(pfn)}: slot without PG_swapcache`)) return out;
    if (fr.gupRefs[pfn]! < 0 && bad(`${fr.describe(pfn)}: negative gup count`)) return out;
    if (fr.refcount[pfn]! < fr.gupRefs[pfn]! && bad(`${fr.describe(pfn)}: fewer references than gup handed out`)) return out;
  }
  const nrFreeFlagged = fr.freeList().length;
  if (nrFreeFlagged !== fr.nrFree) bad(`free list length ${nrFreeFlagged} != nrFree ${fr.nrFree}`);

  // Swap.
  const freeSlot = new Uint8Array(k.swap.nrSlots);
  for (const s of k.swap.freeSlotList()) {
    if (freeSlot[s] && bad(`swap slot ${s} twice on the free list`)) return out;
    freeSlot[s] = 1;
  }
  for (let slot = 0; slot < k.swap.nrSlots; slot++) {
    const used = k.swap.swapMap[slot]! > 0 || k.swap.cache.has(slot);
    if (k.swap.swapMap[slot] !== swapRefs[slot] && bad(`swap slot ${slot}: swap_map ${k.swap.swapMap[slot]} but ${swapRefs[slot]} swap ptes`)) return out;
    if (used === (freeSlot[slot] === 1) && bad(`swap slot ${slot}: ${used ? 'in use and free' : 'neither used nor free (leaked)'}`)) return out;
  }
  for (const [slot, pfn] of k.swap.cache) {
    if ((!(fr.flags[pfn]! & PG_swapcache) || fr.swapSlot[pfn] !== slot) && bad(`swap cache slot ${slot} -> ${fr.describe(pfn)}`)) return out;
  }

  // LRU lists.
  let lruWalked = 0;
  for (const lru of [LRU_INACTIVE_ANON, LRU_ACTIVE_ANON]) {
    const head = k.lru.heads[lru]!;
    let prev = head;
    let count = 0;
    for (let p = fr.lruNext[head]!; p !== head; p = fr.lruNext[p]!) {
      if (p < 0 || p >= n || count > n) {
        bad(`LRU ${lru}: broken link after ${prev}`);
        return out;
      }
      if (fr.lruPrev[p] !== prev && bad(`LRU ${lru}: pfn ${p} prev ${fr.lruPrev[p]} != ${prev}`)) return out;
      const f = fr.flags[p]!;
      if (!(f & PG_lru) && bad(`LRU ${lru}: ${fr.describe(p)} lacks PG_lru`)) return out;
      if ((f & PG_active ? LRU_ACTIVE_ANON : LRU_INACTIVE_ANON) !== lru && bad(`LRU ${lru}: ${fr.describe(p)} on the wrong list`)) return out;
      if (f & PG_free && bad(`LRU ${lru}: free pfn ${p}`)) return out;
      prev = p;
      count++;
    }
    if (fr.lruPrev[head] !== prev) bad(`LRU ${lru}: tail link ${fr.lruPrev[head]} != ${prev}`);
    if (count !== k.lru.sizes[lru]) bad(`LRU ${lru}: ${count} pages linked, size says ${k.lru.sizes[lru]}`);
    lruWalked += count;
  }
  if (lruWalked !== lruFlagged) bad(`${lruFlagged} pages have PG_lru but ${lruWalked} are linked`);
  let isolated = 0;
  for (let pfn = 0; pfn < n; pfn++) if (fr.flags[pfn]! & PG_isolated) isolated++;
  if (isolated !== k.nrIsolated) bad(`${isolated} pages PG_isolated, nrIsolated says ${k.nrIsolated}`);
  return out;
}

/** Throws InvariantError listing every violation found. */
export function checkInvariants(k: HostKernel, opts: AuditOptions = {}): void {
  const v = auditKernel(k, opts);
  if (v.length > 0) throw new InvariantError(v);
}

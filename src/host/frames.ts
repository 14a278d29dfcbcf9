// Counterpart: mm/page_alloc.c (frames, their state and the free list; the allocator's
// slow path lives in kernel.ts because it needs reclaim and the OOM killer)
//
// Host RAM is ONE ArrayBuffer; frame `pfn` is bytes [pfn << 12, (pfn + 1) << 12).
// A secondary MMU (the hart, via KVM) maps guest memory as views over `buffer`, so a
// frame is never moved and a pfn is stable for as long as someone holds a reference.
//
// Per-frame state is structure-of-arrays with the pfn as the handle.
//
// Reference counting, as in struct folio (see audit.ts, which checks it):
//   refcount = mapcount               (each present pte holds one)
//            + (PG_swapcache ? 1 : 0)  (the swap cache holds one)
//            + gupRefs                 (get_user_pages: 1, pin_user_pages: GUP_PIN_COUNTING_BIAS)
//            + transient refs          (reclaim isolation, a fault between lookup and map)
// A frame returns to the free list exactly when its refcount drops to 0.
// The LRU itself holds no reference; freeing takes a page off its LRU list.

import { WaitQueue } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { PAGE_SHIFT, PAGE_SIZE } from './pte.js';

export const PG_referenced = 1 << 0;
export const PG_active = 1 << 1;
export const PG_dirty = 1 << 2;
export const PG_swapbacked = 1 << 3;
export const PG_locked = 1 << 4;
export const PG_unevictable = 1 << 5;
export const PG_lru = 1 << 6;
export const PG_swapcache = 1 << 7;
export const PG_writeback = 1 << 8;
export const PG_uptodate = 1 << 9;
/** Not a kernel flag: marks frames on our free list, so audits can prove disjointness. */
export const PG_free = 1 << 10;
/** Taken off the LRU by a reclaimer, which holds a reference meanwhile. */
export const PG_isolated = 1 << 11;
/**
 * Not a kernel flag: !PageAnonExclusive, so that pages which were never shared read as
 * before. fork sets it on every page it shares; do_wp_page writes through only where it
 * is clear (a new page, or one it may reuse). No writable pte maps a page with it, and
 * every page with more than one mapping has it (audit.ts).
 */
export const PG_anon_shared = 1 << 12;

const FLAG_NAMES: ReadonlyArray<[number, string]> = [
  [PG_referenced, 'referenced'],
  [PG_active, 'active'],
  [PG_dirty, 'dirty'],
  [PG_swapbacked, 'swapbacked'],
  [PG_locked, 'locked'],
  [PG_unevictable, 'unevictable'],
  [PG_lru, 'lru'],
  [PG_swapcache, 'swapcache'],
  [PG_writeback, 'writeback'],
  [PG_uptodate, 'uptodate'],
  [PG_free, 'free'],
  [PG_isolated, 'isolated'],
  [PG_anon_shared, 'anon_shared'],
];

export function pageFlagsToString(flags: number): string {
  const out: string[] = [];
  for (const [bit, name] of FLAG_NAMES) if (flags & bit) out.push(name);
  return out.join('|') || '-';
}

/** GUP_PIN_COUNTING_BIAS: one pin adds this much to the refcount. */
export const GUP_PIN_COUNTING_BIAS = 1024;

export const NO_SLOT = -1;

export interface Watermarks {
  readonly min: number;
  readonly low: number;
  readonly high: number;
}

/** Default watermarks scale with RAM like min_free_kbytes, with a floor so tiny test hosts still batch. */
export function defaultWatermarks(nrFrames: number): Watermarks {
  const min = Math.max(4, nrFrames >> 6);
  const low = min + Math.max(2, min >> 2);
  const high = min + Math.max(4, min >> 1);
  return { min, low, high };
}

const PAGE_WAIT_TABLE_BITS = 6;

export class FrameTable {
  readonly nrFrames: number;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;

  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly flags: Int32Array;
  /** Swap slot while PG_swapcache, else NO_SLOT. */
  readonly swapSlot: Int32Array;
  /** Anon rmap: id of the mm mapping the page (0: none) and the hva page it is mapped at. */
  readonly rmapMm: Int32Array;
  readonly rmapHvaPage: Int32Array;
  /** LRU links; indices nrFrames and nrFrames + 1 are the list heads (see lru.ts). */
  readonly lruPrev: Int32Array;
  readonly lruNext: Int32Array;
  /** Debug accounting of references taken through GUP, so audits can balance refcounts. */
  readonly gupRefs: Int32Array;

  private readonly freeStack: Int32Array;
  private nrFreeFrames: number;
  watermarks: Watermarks;

  /** folio_wait_table: hashed queues, woken all-at-once; waiters re-check their page. */
  private readonly pageWaitTable: WaitQueue[] = [];

  constructor(ramBytes: number, watermarks?: Watermarks) {
    const n = Math.floor(ramBytes / PAGE_SIZE);
    if (n < 16) throw new RangeError(`host RAM of ${ramBytes} bytes is below 16 frames`);
    if (n > (1 << 23) - 2) throw new RangeError(`host RAM of ${ramBytes} bytes exceeds 2^23 frames`);
    this.nrFrames = n;
    this.buffer = new ArrayBuffer(n * PAGE_SIZE);
    this.bytes = new Uint8Array(this.buffer);
    this.refcount = new Int32Array(n);
    this.mapcount = new Int32Array(n);
    this.flags = new Int32Array(n);
    this.swapSlot = new Int32Array(n).fill(NO_SLOT);
    this.rmapMm = new Int32Array(n);
    this.rmapHvaPage = new Int32Array(n);
    this.lruPrev = new Int32Array(n + 2).fill(-1);
    this.lruNext = new Int32Array(n + 2).fill(-1);
    this.gupRefs = new Int32Array(n);
    this.freeStack = new Int32Array(n);
    // Low pfns come out first: reverse push order keeps dumps readable.
    for (let i = 0; i < n; i++) {
      this.freeStack[i] = n - 1 - i;
      this.flags[i] = PG_free;
    }
    this.nrFreeFrames = n;
    this.watermarks = watermarks ?? defaultWatermarks(n);
    for (let i = 0; i < 1 << PAGE_WAIT_TABLE_BITS; i++) this.pageWaitTable.push(new WaitQueue(`page-wait-${i}`));
  }

  get nrFree(): number {
    return this.nrFreeFrames;
  }

  /** Byte offset of a frame in `buffer`. */
  offsetOf(pfn: number): number {
    return pfn << PAGE_SHIFT;
  }

  /** A view of one frame; allocation-free callers should index `bytes` at offsetOf(pfn) instead. */
  frame(pfn: number): Uint8Array {
    return this.bytes.subarray(pfn << PAGE_SHIFT, (pfn + 1) << PAGE_SHIFT);
  }

  /** Takes a frame off the free list with refcount 1, or returns -1. Never sleeps (the caller reclaims). */
  rmqueue(): number {
    if (this.nrFreeFrames === 0) return -1;
    const pfn = this.freeStack[--this.nrFreeFrames]!;
    this.flags[pfn] = 0;
    this.refcount[pfn] = 1;
    return pfn;
  }

  /** free_unref_page: the refcount already reached 0 and the page is off every list. */
  freeFrame(pfn: number): void {
    if (this.flags[pfn]! & PG_free) throw new Error(`BUG: double free of pfn ${pfn}`);
    if (this.refcount[pfn] !== 0 || this.mapcount[pfn] !== 0) {
      throw new Error(`BUG: freeing pfn ${pfn} with refcount ${this.refcount[pfn]} mapcount ${this.mapcount[pfn]}`);
    }
    if (this.flags[pfn]! & (PG_lru | PG_swapcache | PG_locked | PG_writeback)) {
      throw new Error(`BUG: freeing pfn ${pfn} with flags ${pageFlagsToString(this.flags[pfn]!)}`);
    }
    this.flags[pfn] = PG_free;
    this.swapSlot[pfn] = NO_SLOT;
    this.rmapMm[pfn] = 0;
    this.rmapHvaPage[pfn] = 0;
    this.freeStack[this.nrFreeFrames++] = pfn;
  }

  /** The free list as it stands, for audits. */
  freeList(): Int32Array {
    return this.freeStack.slice(0, this.nrFreeFrames);
  }

  isFree(pfn: number): boolean {
    return (this.flags[pfn]! & PG_free) !== 0;
  }

  /** folio_maybe_dma_pinned: a refcount this high can only come from pins (or a huge number of refs). */
  maybePinned(pfn: number): boolean {
    return this.refcount[pfn]! >= GUP_PIN_COUNTING_BIAS;
  }

  // ---- page lock (PG_locked), a sleeping bit lock ------------------------------------

  trylockPage(pfn: number): boolean {
    const f = this.flags[pfn]!;
    if (f & PG_locked) return false;
    this.flags[pfn] = f | PG_locked;
    return true;
  }

  *lockPage(pfn: number): Task {
    while (!this.trylockPage(pfn)) {
      yield* this.pageWaitTable[pfn & ((1 << PAGE_WAIT_TABLE_BITS) - 1)]!.wait();
    }
  }

  unlockPage(pfn: number): void {
    const f = this.flags[pfn]!;
    if (!(f & PG_locked)) throw new Error(`BUG: unlock of unlocked pfn ${pfn}`);
    this.flags[pfn] = f & ~PG_locked;
    this.pageWaitTable[pfn & ((1 << PAGE_WAIT_TABLE_BITS) - 1)]!.wakeAll();
  }

  setFlag(pfn: number, bit: number): void {
    this.flags[pfn]! |= bit;
  }
  clearFlag(pfn: number, bit: number): void {
    this.flags[pfn]! &= ~bit;
  }
  testFlag(pfn: number, bit: number): boolean {
    return (this.flags[pfn]! & bit) !== 0;
  }
  /** Returns whether the bit was set. */
  testClearFlag(pfn: number, bit: number): boolean {
    const f = this.flags[pfn]!;
    this.flags[pfn] = f & ~bit;
    return (f & bit) !== 0;
  }

  describe(pfn: number): string {
    return (
      `pfn ${pfn}: ref ${this.refcount[pfn]} map ${this.mapcount[pfn]} ` +
      `flags ${pageFlagsToString(this.flags[pfn]!)}` +
      (this.swapSlot[pfn] !== NO_SLOT ? ` slot ${this.swapSlot[pfn]}` : '') +
      (this.rmapMm[pfn] !== 0 ? ` rmap mm${this.rmapMm[pfn]}@0x${(this.rmapHvaPage[pfn]! * PAGE_SIZE).toString(16)}` : '') +
      (this.gupRefs[pfn] !== 0 ? ` gup ${this.gupRefs[pfn]}` : '')
    );
  }

  dump(): { nrFrames: number; nrFree: number; watermarks: Watermarks; used: number } {
    return { nrFrames: this.nrFrames, nrFree: this.nrFreeFrames, watermarks: this.watermarks, used: this.nrFrames - this.nrFreeFrames };
  }
}

// Counterpart: mm/swapfile.c + mm/swap_state.c (slots, swap_map, the swap cache, page I/O)
//
// A slot is in use while swapMap[slot] > 0 (swap ptes that name it) or while a page
// sits in the swap cache for it. The swap cache is what keeps concurrent faults and
// reclaim coherent: a page being written out stays findable by its slot until
// __remove_mapping drops it, so a fault that races with pageout maps the same frame
// instead of reading a half-written copy, and two faults on one swap entry share
// one read.
//
// The store is in memory by default, or a real file (sync fs I/O) when given a path.
// Latency is simulated: the thread that does the I/O sleeps; it must hold no spinlock.

import * as fs from 'node:fs';
import { sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { NO_SLOT, PG_dirty, PG_swapcache, PG_uptodate, PG_writeback } from './frames.js';
import type { FrameTable } from './frames.js';
import { PAGE_SHIFT, PAGE_SIZE } from './pte.js';
import type { HostContext } from './stats.js';

export interface SwapOptions {
  readonly swapBytes: number;
  readonly swapFile?: string | undefined;
  readonly readLatency: number;
  readonly writeLatency: number;
}

interface SwapStore {
  write(slot: number, src: Uint8Array, srcOffset: number): void;
  read(slot: number, dst: Uint8Array, dstOffset: number): void;
  close(): void;
}

class MemoryStore implements SwapStore {
  // One page per slot, allocated on first write so an idle swap device costs nothing.
  private readonly pages: Array<Uint8Array | undefined>;
  constructor(nrSlots: number) {
    this.pages = new Array<Uint8Array | undefined>(nrSlots);
  }
  write(slot: number, src: Uint8Array, srcOffset: number): void {
    let p = this.pages[slot];
    if (p === undefined) this.pages[slot] = p = new Uint8Array(PAGE_SIZE);
    p.set(src.subarray(srcOffset, srcOffset + PAGE_SIZE));
  }
  read(slot: number, dst: Uint8Array, dstOffset: number): void {
    const p = this.pages[slot];
    if (p === undefined) throw new Error(`BUG: swap read of never-written slot ${slot}`);
    dst.set(p, dstOffset);
  }
  close(): void {
    this.pages.fill(undefined);
  }
}

class FileStore implements SwapStore {
  private fd: number;
  constructor(path: string, nrSlots: number) {
    this.fd = fs.openSync(path, 'w+');
    fs.ftruncateSync(this.fd, nrSlots * PAGE_SIZE);
  }
  write(slot: number, src: Uint8Array, srcOffset: number): void {
    const n = fs.writeSync(this.fd, src, srcOffset, PAGE_SIZE, slot * PAGE_SIZE);
    if (n !== PAGE_SIZE) throw new Error(`swap file: short write of slot ${slot} (${n} bytes)`);
  }
  read(slot: number, dst: Uint8Array, dstOffset: number): void {
    const n = fs.readSync(this.fd, dst, dstOffset, PAGE_SIZE, slot * PAGE_SIZE);
    if (n !== PAGE_SIZE) throw new Error(`swap file: short read of slot ${slot} (${n} bytes)`);
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

export class SwapDevice {
  readonly nrSlots: number;
  readonly readLatency: number;
  readonly writeLatency: number;
  readonly path: string | undefined;
  /** Number of swap ptes naming each slot (swap_map without SWAP_HAS_CACHE). */
  readonly swapMap: Int32Array;
  /** slot -> pfn of the page caching it (the swap address_space). */
  readonly cache = new Map<number, number>();
  private readonly freeSlots: Int32Array;
  private nrFreeSlots: number;
  private readonly store: SwapStore;
  private readonly frames: FrameTable;
  private readonly ctx: HostContext;

  constructor(opts: SwapOptions, frames: FrameTable, ctx: HostContext) {
    this.nrSlots = Math.min(Math.floor(opts.swapBytes / PAGE_SIZE), (1 << 23) - 1);
    this.readLatency = opts.readLatency;
    this.writeLatency = opts.writeLatency;
    this.path = opts.swapFile;
    this.swapMap = new Int32Array(this.nrSlots);
    this.freeSlots = new Int32Array(this.nrSlots);
    for (let i = 0; i < this.nrSlots; i++) this.freeSlots[i] = this.nrSlots - 1 - i;
    this.nrFreeSlots = this.nrSlots;
    this.store = opts.swapFile !== undefined ? new FileStore(opts.swapFile, this.nrSlots) : new MemoryStore(this.nrSlots);
    this.frames = frames;
    this.ctx = ctx;
  }

  get nrFree(): number {
    return this.nrFreeSlots;
  }
  get nrUsed(): number {
    return this.nrSlots - this.nrFreeSlots;
  }

  /**
   * vm_swap_full: more than half the slots are in use. From then on a swap-in drops
   * the swap copy even on a read fault (should_try_to_free_swap), so the device does
   * not fill up with copies of pages that are resident anyway.
   */
  get full(): boolean {
    return this.nrFreeSlots * 2 < this.nrSlots;
  }

  /** The free slots as they stand, for audits. */
  freeSlotList(): Int32Array {
    return this.freeSlots.slice(0, this.nrFreeSlots);
  }

  // ---- slots -------------------------------------------------------------------------

  /** folio_alloc_swap: -1 when the device is full. */
  private allocSlot(): number {
    if (this.nrFreeSlots === 0) return NO_SLOT;
    return this.freeSlots[--this.nrFreeSlots]!;
  }

  private freeSlot(slot: number): void {
    this.freeSlots[this.nrFreeSlots++] = slot;
  }

  /** A new swap pte names `slot` (try_to_unmap_one's swap_duplicate). */
  swapDuplicate(slot: number): void {
    this.swapMap[slot]!++;
  }

  /**
   * A swap pte naming `slot` went away (swap_free). Returns the pfn still caching the
   * slot when no pte names it any more, so the caller can try to drop the cache page
   * (free_swap_and_cache); -1 otherwise.
   */
  swapFree(slot: number): number {
    const n = --this.swapMap[slot]!;
    if (n < 0) throw new Error(`BUG: swap_free of unused slot ${slot}`);
    if (n > 0) return -1;
    const pfn = this.cache.get(slot);
    if (pfn === undefined) {
      this.freeSlot(slot);
      return -1;
    }
    return pfn;
  }

  // ---- the swap cache ----------------------------------------------------------------

  lookup(slot: number): number {
    const pfn = this.cache.get(slot);
    return pfn === undefined ? -1 : pfn;
  }

  /**
   * add_to_swap: gives a locked, isolated page a slot and puts it in the swap cache.
   * Marks it dirty, since the slot holds nothing yet. Returns false when swap is full.
   */
  addToSwap(pfn: number): boolean {
    const slot = this.allocSlot();
    if (slot === NO_SLOT) return false;
    this.addToSwapCache(pfn, slot);
    this.frames.setFlag(pfn, PG_dirty);
    return true;
  }

  /** The cache holds one reference. */
  addToSwapCache(pfn: number, slot: number): void {
    const fr = this.frames;
    if (this.cache.has(slot)) throw new Error(`BUG: slot ${slot} already cached`);
    fr.refcount[pfn]!++;
    fr.setFlag(pfn, PG_swapcache);
    fr.swapSlot[pfn] = slot;
    this.cache.set(slot, pfn);
  }

  /**
   * __delete_from_swap_cache + put_swap_folio: the page leaves the cache, dropping the
   * cache's reference (the caller frees the page if that was the last). The slot is
   * released unless swap ptes still name it.
   */
  deleteFromSwapCache(pfn: number): void {
    const fr = this.frames;
    const slot = fr.swapSlot[pfn]!;
    if (!(fr.flags[pfn]! & PG_swapcache) || this.cache.get(slot) !== pfn) {
      throw new Error(`BUG: pfn ${pfn} is not in the swap cache`);
    }
    this.cache.delete(slot);
    fr.clearFlag(pfn, PG_swapcache);
    fr.swapSlot[pfn] = NO_SLOT;
    fr.refcount[pfn]!--;
    if (this.swapMap[slot] === 0) this.freeSlot(slot);
  }

  /**
   * folio_free_swap, on a locked page: when no swap pte names its slot any more, the
   * page leaves the swap cache and the slot is freed. The page is marked dirty: RAM
   * now holds the only copy, so reclaim must write it again. Returns whether it did.
   */
  freeSwap(pfn: number): boolean {
    const fr = this.frames;
    if ((fr.flags[pfn]! & (PG_swapcache | PG_writeback)) !== PG_swapcache) return false;
    if (this.swapMap[fr.swapSlot[pfn]!] !== 0) return false;
    this.deleteFromSwapCache(pfn);
    fr.setFlag(pfn, PG_dirty);
    return true;
  }

  // ---- I/O ---------------------------------------------------------------------------

  /**
   * swap_writepage + wait: the data is captured at submission (like DMA from a page
   * nobody maps any more), then the writer sleeps for the device latency.
   */
  *writePage(pfn: number): Task {
    const slot = this.frames.swapSlot[pfn]!;
    this.store.write(slot, this.frames.bytes, pfn << PAGE_SHIFT);
    this.ctx.stats.pswpout++;
    if (this.ctx.tracing()) this.ctx.trace({ type: 'swap-write', pfn, slot });
    if (this.writeLatency > 0) yield* sleepTicks(this.writeLatency, 'swap-write');
  }

  /** swap_read_folio on a locked swap-cache page that is not uptodate yet. */
  *readPage(pfn: number): Task {
    const slot = this.frames.swapSlot[pfn]!;
    if (this.readLatency > 0) yield* sleepTicks(this.readLatency, 'swap-read');
    this.store.read(slot, this.frames.bytes, pfn << PAGE_SHIFT);
    this.frames.setFlag(pfn, PG_uptodate);
    this.ctx.stats.pswpin++;
    if (this.ctx.tracing()) this.ctx.trace({ type: 'swap-read', pfn, slot });
  }

  close(): void {
    this.store.close();
  }

  /**
   * A debugger's look at a slot's contents, bypassing the swap cache and the I/O
   * latency: reads nothing into a frame and counts nothing. False when the slot was
   * never written (its page is still in the swap cache, before pageout).
   */
  peekSlot(slot: number, dst: Uint8Array): boolean {
    if (slot < 0 || slot >= this.nrSlots) return false;
    try {
      this.store.read(slot, dst, 0);
      return true;
    } catch {
      return false;
    }
  }

  dump(): { nrSlots: number; used: number; cached: number; path: string | null; readLatency: number; writeLatency: number } {
    return {
      nrSlots: this.nrSlots,
      used: this.nrUsed,
      cached: this.cache.size,
      path: this.path ?? null,
      readLatency: this.readLatency,
      writeLatency: this.writeLatency,
    };
  }
}

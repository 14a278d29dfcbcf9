// Counterpart: arch/x86/kvm/mmu/mmu.c (pte_list_add, pte_list_remove, struct pte_list_desc,
// kvm_zap_all_rmap_sptes, the rmap iterator)
//
// A pte list: for one key, the set of sptep handles (sp * 1024 + index) that point at
// it. Used twice, exactly as in KVM: per memslot gfn ("every spte that maps this gfn",
// heads = slot.rmap) and per shadow page ("every parent spte that links to this
// page", heads = the store's parent array). No object per entry: a head is one int32
// and overflow lives in descriptors in a typed-array pool.
//
// Head encoding (int32):
//     0        empty
//     v > 0    exactly one entry, inline: sptep = v - 1
//     v < 0    descriptor chain starting at desc = -v - 1
//
// A descriptor holds up to PTE_LIST_EXT entries, `next` and `tail` (entries in all
// descriptors after it). Invariants of a chain, which make add/remove O(1) past the
// search and count O(1):
//   - only the head descriptor may be partially filled; every later one is full;
//   - head.tail = sum of counts after the head, so count = head.count + head.tail;
//   - no descriptor is empty: removal refills the hole from the head's last entry and
//     frees the head when it empties;
//   - a chain never shrinks back to the inline form (as modern KVM): an entry count of
//     1 may be either form.
//
// Nothing here checks for duplicates on add (KVM does not either): adding the same
// sptep twice is a caller bug, caught by the audit.

import { BUG } from '../bug.js';

export const PTE_LIST_EXT = 7;

const NIL = -1;

/** pte_list_desc_cache: descriptors of every pte list of one VM. */
export class PteListPool {
  /** Entries used in each descriptor. */
  count: Int32Array;
  /** Next descriptor in the chain, or the free-list link while free; NIL ends both. */
  next: Int32Array;
  /** Entries in the descriptors after this one. */
  tail: Int32Array;
  /** PTE_LIST_EXT entries per descriptor. */
  sptes: Int32Array;
  private freeHead = NIL;
  private used = 0;

  constructor(initialCapacity = 64) {
    const cap = Math.max(1, initialCapacity | 0);
    this.count = new Int32Array(cap);
    this.next = new Int32Array(cap).fill(NIL);
    this.tail = new Int32Array(cap);
    this.sptes = new Int32Array(cap * PTE_LIST_EXT);
    this.threadFree(0, cap);
  }

  get capacity(): number {
    return this.count.length;
  }

  /** Descriptors handed out and not freed: the audit compares it with what heads reach. */
  get inUse(): number {
    return this.used;
  }

  /** The arrays are replaced on growth: never hold one across a call that may allocate. */
  alloc(): number {
    if (this.freeHead === NIL) this.grow();
    const d = this.freeHead;
    this.freeHead = this.next[d]!;
    this.next[d] = NIL;
    this.count[d] = 0;
    this.tail[d] = 0;
    this.used++;
    return d;
  }

  free(d: number): void {
    this.count[d] = 0;
    this.tail[d] = 0;
    this.next[d] = this.freeHead;
    this.freeHead = d;
    this.used--;
  }

  private grow(): void {
    const old = this.capacity;
    const cap = old * 2;
    const count = new Int32Array(cap);
    count.set(this.count);
    const next = new Int32Array(cap).fill(NIL);
    next.set(this.next);
    const tail = new Int32Array(cap);
    tail.set(this.tail);
    const sptes = new Int32Array(cap * PTE_LIST_EXT);
    sptes.set(this.sptes);
    this.count = count;
    this.next = next;
    this.tail = tail;
    this.sptes = sptes;
    this.threadFree(old, cap);
  }

  private threadFree(from: number, to: number): void {
    for (let d = to - 1; d >= from; d--) {
      this.next[d] = this.freeHead;
      this.freeHead = d;
    }
  }
}

/** pte_list_add. Returns the number of entries before the add (KVM's return value). */
export function rmapAdd(pool: PteListPool, heads: Int32Array, i: number, sptep: number): number {
  const h = heads[i]!;
  if (h === 0) {
    heads[i] = sptep + 1;
    return 0;
  }
  if (h > 0) {
    const d = pool.alloc();
    pool.sptes[d * PTE_LIST_EXT] = h - 1;
    pool.sptes[d * PTE_LIST_EXT + 1] = sptep;
    pool.count[d] = 2;
    heads[i] = -d - 1;
    return 1;
  }
  const d = -h - 1;
  const n = pool.count[d]!;
  const before = n + pool.tail[d]!;
  if (n === PTE_LIST_EXT) {
    const nd = pool.alloc();
    pool.sptes[nd * PTE_LIST_EXT] = sptep;
    pool.count[nd] = 1;
    pool.next[nd] = d;
    pool.tail[nd] = before;
    heads[i] = -nd - 1;
  } else {
    pool.sptes[d * PTE_LIST_EXT + n] = sptep;
    pool.count[d] = n + 1;
  }
  return before;
}

/** pte_list_remove. BUG() when sptep is not in the list: the caller's bookkeeping is wrong. */
export function rmapRemove(pool: PteListPool, heads: Int32Array, i: number, sptep: number): void {
  const h = heads[i]!;
  if (h === 0) BUG(`rmapRemove: sptep ${sptep} not found: list ${i} is empty`);
  if (h > 0) {
    if (h - 1 !== sptep) BUG(`rmapRemove: sptep ${sptep} not found: list ${i} holds only ${h - 1}`);
    heads[i] = 0;
    return;
  }
  const head = -h - 1;
  const sp = pool.sptes;
  for (let d = head; d !== NIL; d = pool.next[d]!) {
    const base = d * PTE_LIST_EXT;
    const n = pool.count[d]!;
    for (let j = 0; j < n; j++) {
      if (sp[base + j] !== sptep) continue;
      // Fill the hole with the head's last entry so that only the head stays partial.
      const hn = pool.count[head]! - 1;
      sp[base + j] = sp[head * PTE_LIST_EXT + hn]!;
      pool.count[head] = hn;
      if (hn === 0) {
        const nx = pool.next[head]!;
        heads[i] = nx === NIL ? 0 : -nx - 1;
        pool.free(head);
      }
      return;
    }
  }
  BUG(`rmapRemove: sptep ${sptep} not found in list ${i} (${rmapCount(pool, heads, i)} entries)`);
}

export function rmapCount(pool: PteListPool, heads: Int32Array, i: number): number {
  const h = heads[i]!;
  if (h === 0) return 0;
  if (h > 0) return 1;
  const d = -h - 1;
  return pool.count[d]! + pool.tail[d]!;
}

/**
 * Calls fn for every entry until fn returns true (test_age stops at the first young
 * spte). fn must not add to or remove from this list: entries move on removal.
 * Returns true when fn stopped the walk.
 */
export function forEachRmap(
  pool: PteListPool,
  heads: Int32Array,
  i: number,
  fn: (sptep: number) => boolean | void,
): boolean {
  const h = heads[i]!;
  if (h === 0) return false;
  if (h > 0) return fn(h - 1) === true;
  for (let d = -h - 1; d !== NIL; d = pool.next[d]!) {
    const base = d * PTE_LIST_EXT;
    const n = pool.count[d]!;
    // Re-read pool.sptes each time: fn may allocate in *another* list and grow the pool.
    for (let j = 0; j < n; j++) if (fn(pool.sptes[base + j]!) === true) return true;
  }
  return false;
}

/**
 * kvm_zap_all_rmap_sptes: hands every entry to fn, then empties the list and frees its
 * descriptors in one go, cheaper than one rmapRemove per entry. fn must leave this
 * list alone (it clears the spte itself without rmap bookkeeping).
 */
export function rmapDrain(pool: PteListPool, heads: Int32Array, i: number, fn: (sptep: number) => void): void {
  const h = heads[i]!;
  if (h === 0) return;
  heads[i] = 0;
  if (h > 0) {
    fn(h - 1);
    return;
  }
  let d = -h - 1;
  while (d !== NIL) {
    const base = d * PTE_LIST_EXT;
    const n = pool.count[d]!;
    for (let j = 0; j < n; j++) fn(pool.sptes[base + j]!);
    const nx = pool.next[d]!;
    pool.free(d);
    d = nx;
  }
}

/** Descriptors of one list, for the audit's leak check. */
export function forEachRmapDesc(pool: PteListPool, heads: Int32Array, i: number, fn: (desc: number) => void): void {
  const h = heads[i]!;
  if (h >= 0) return;
  for (let d = -h - 1; d !== NIL; d = pool.next[d]!) fn(d);
}

/**
 * Chain-length histogram (debugfs mmu_rmaps_stat): bucket b counts the non-empty lists
 * with 2^b <= count < 2^(b+1); the last bucket is open-ended.
 */
export const RMAP_HIST_BUCKETS = 8;

export function rmapHistogram(pool: PteListPool, heads: Int32Array, into: number[]): void {
  for (let i = 0; i < heads.length; i++) {
    const n = rmapCount(pool, heads, i);
    if (n === 0) continue;
    const b = Math.min(RMAP_HIST_BUCKETS - 1, 31 - Math.clz32(n));
    into[b] = (into[b] ?? 0) + 1;
  }
}

export function rmapHistogramLabels(): string[] {
  const out: string[] = [];
  for (let b = 0; b < RMAP_HIST_BUCKETS; b++) {
    const lo = 1 << b;
    out.push(b === RMAP_HIST_BUCKETS - 1 ? `${lo}+` : lo === (1 << (b + 1)) - 1 ? `${lo}` : `${lo}-${(1 << (b + 1)) - 1}`);
  }
  return out;
}

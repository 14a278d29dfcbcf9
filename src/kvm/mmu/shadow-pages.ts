// Counterpart: arch/x86/kvm/mmu/mmu.c (kvm_mmu_get_shadow_page, link_shadow_page, mmu_set_spte,
// mmu_spte_set/update/clear_track_bits, kvm_mmu_prepare_zap_page, kvm_mmu_commit_zap_page,
// kvm_mmu_zap_oldest_mmu_pages, kvm_zap_rmap, kvm_age_rmap, kvm_test_age_rmap)
//
// The shadow page store, and the only code that writes shadow tables.
//
// A shadow page is an index `sp` into structure-of-arrays storage; its 1024 sptes are
// sptes[sp * 1024 ..], so a spte's handle is `sptep = sp * 1024 + index` everywhere
// (rmaps, parent links, the translator). Sv32 has two levels: level 1 pages are roots
// (what satp points at), level 0 pages hold leaf sptes. Leaf sptes live only in
// level 0 pages: a guest megapage is mapped by a direct level 0 page of 4 KiB sptes,
// so every rmap entry is a 4 KiB mapping of exactly one gfn.
//
// Locking: every method runs with mmu_lock held and never yields, so a method is
// atomic with respect to faults, notifier handlers and other vCPUs. Nothing here
// takes the lock; the callers (fault path, notifier handlers) do.
//
// Invariants, checked by audit.ts:
//   (1) a present leaf spte at sptep is in the rmap of spteGfn[sptep], once, and that
//       gfn lies in a live memslot; every gfn rmap entry is such a spte;
//   (2) a pointer spte at sptep (in a level 1 page) names an ACTIVE level 0 page
//       whose parent list holds sptep, once; every parent entry is such a spte;
//   (3) the (gfn, role) hash and the LRU hold exactly the ACTIVE pages;
//   (4) a page that is not ACTIVE has all sptes 0 and no parents;
//   (5) a zapped page is reused only after flushRemoteTlbs() returned: until then a
//       vCPU may still translate through a TLB entry filled from its sptes, and a
//       reused page would hand it someone else's mapping.
//
// Why lru-cache, and why not its eviction: the bound n_max_mmu_pages must skip roots
// (a vCPU is running on them; KVM skips root_count != 0) and must zap through the
// prepare/flush/commit protocol, not free on the spot. LRUCache's own eviction can do
// neither, and its dispose runs inside set(), in the middle of an allocation. So the
// cache is created with max = capacity (it can never evict by itself; an 'evict'
// dispose is a BUG), and serves as the recency order: alloc and lookup hits move a
// page to the young end; makeMmuPagesAvailable walks rkeys() from the old end.
// (KVM orders by creation only; a lookup hit here also refreshes, which keeps a
// guest's hot page tables cached. The fault path may call touch() when it walks
// through a page without a lookup.)

import { LRUCache } from 'lru-cache';
import { BUG } from '../bug.js';
import type { Memslot, Memslots } from '../memslots.js';
import { KVM_MEM_READONLY, RMAP_CHUNK_SHIFT, RMAP_SUPER_SHIFT } from '../memslots.js';
import type { KvmStats } from '../stats.js';
import { PteListPool, forEachRmap, rmapAdd, rmapDrain, rmapHistogram, rmapRemove } from './rmap.js';
import {
  SPTE_A,
  SPTE_D,
  SPTE_MMU_WRITABLE,
  SPTE_W,
  isAccessed,
  isDirty,
  isLeafSpte,
  isNonLeafSpte,
  isWritable,
  makeNonLeafSpte,
  spteChild,
  sptePfn,
  spteToString,
  spteWrprot,
} from './spte.js';

export const SPTES_PER_PAGE = 1024;
export const SPTEP_SHIFT = 10;
export const SPTE_INDEX_MASK = SPTES_PER_PAGE - 1;

export function sptepOf(sp: number, index: number): number {
  return sp * SPTES_PER_PAGE + index;
}
export function sptepPage(sptep: number): number {
  return sptep >>> SPTEP_SHIFT;
}
export function sptepIndex(sptep: number): number {
  return sptep & SPTE_INDEX_MASK;
}

// Role (kvm_mmu_page_role): what the page's sptes were computed from, so two pages
// for the same gfn under different contexts never share sptes.
//   bit 0      level: 0 = leaf table, 1 = root
//   bit 1      direct: maps a gfn range itself (paging off, or a guest megapage)
//              rather than shadowing the guest table at `gfn`
//   bits 2-5   access: ACC_R/W/X/U >> 1 of the guest megapage a direct page maps; 0 otherwise
//   bits 6-8   permission context: whatever the translator cannot re-check from a spte
//              at access time (e.g. sstatus.SUM/MXR if folded into spte permissions)
export const ROLE_LEVEL = 1 << 0;
export const ROLE_DIRECT = 1 << 1;
export const ROLE_ACCESS_SHIFT = 2;
export const ROLE_CTX_SHIFT = 6;
export const ROLE_BITS = 9;

export function makeRole(level: 0 | 1, direct: boolean, access = 0, ctx = 0): number {
  if ((access & ~0x1e) !== 0) throw new RangeError(`makeRole: bad access 0x${access.toString(16)}`);
  if ((ctx & ~7) !== 0) throw new RangeError(`makeRole: bad ctx ${ctx}`);
  return level | (direct ? ROLE_DIRECT : 0) | ((access >>> 1) << ROLE_ACCESS_SHIFT) | (ctx << ROLE_CTX_SHIFT);
}
export function roleLevel(role: number): number {
  return role & ROLE_LEVEL;
}
export function roleDirect(role: number): boolean {
  return (role & ROLE_DIRECT) !== 0;
}
export function roleAccess(role: number): number {
  return ((role >>> ROLE_ACCESS_SHIFT) & 0xf) << 1;
}
export function roleToString(role: number): string {
  return `L${roleLevel(role)} ${roleDirect(role) ? 'direct' : 'shadow'} acc=0x${roleAccess(role).toString(16)} ctx=${role >>> ROLE_CTX_SHIFT}`;
}

export const SP_FREE = 0;
/** In the hash and the LRU, reachable by lookup. */
export const SP_ACTIVE = 1;
/** Zapped, on the invalid list: sptes cleared, waiting for the remote TLB flush. */
export const SP_ZAPPED = 2;
/** Zapped and flushed, but a vCPU still holds it as its root (rootCount > 0). */
export const SP_ZAPPED_ROOT = 3;

/** KVM_MIN_FREE_MMU_PAGES: a fault links at most a root and one leaf table. */
export const KVM_MIN_FREE_MMU_PAGES = 2;

export interface MmuHooks {
  /** kvm_flush_remote_tlbs: every vCPU drops soft TLB entries filled from sptes. */
  flushRemoteTlbs(): void;
  /**
   * A leaf spte lost its A and/or D bit (cleared, or updated without them): record
   * them on the host page (mark dirty / referenced) before the page can be judged
   * clean or idle.
   */
  onSpteClear(pfn: number, wasDirty: boolean, wasAccessed: boolean): void;
  /**
   * A leaf spte mapping pfn was cleared (after onSpteClear carried its A/D). For
   * protocols where a spte owns a page reference or pin (v7, pin), this is where
   * it is given back; the page may be freed by the time the hook returns.
   */
  onLeafSpteDrop?(pfn: number): void;
}

export interface ShadowPagesOptions {
  /** n_max_mmu_pages: the bound makeMmuPagesAvailable keeps. */
  nMaxMmuPages?: number;
  /** Hard size of the storage: the bound plus room for roots and not-yet-flushed zaps. */
  capacity?: number;
  /** Test-only switches (the VM's VmDebug): a leaf spte is left out of, or left in, its gfn's rmap. */
  debug?: { readonly noRmapAdd: boolean; readonly noRmapRemove: boolean };
}

const NO_RMAP_DEBUG = { noRmapAdd: false, noRmapRemove: false } as const;

export class ShadowPages {
  readonly capacity: number;
  /** SPTES_PER_PAGE per shadow page, int32 patterns (see spte.ts). */
  readonly sptes: Int32Array;
  /** For each leaf sptep, the gfn it maps (KVM's shadowed_translation): the rmap key. */
  readonly spteGfn: Int32Array;
  /**
   * Guest-global translations (the gpte, or the level 1 gpte above it, has G):
   * sfence.vma x0, asid leaves them alone (privileged spec, SFENCE.VMA: a fence
   * for one ASID does not order global mappings). Written with each leaf spte
   * (markGlobal), read only while the spte is present. spGlobal: a megapage's
   * direct page, global only while every gpte that links it is.
   */
  readonly spteGlobal: Uint8Array;
  readonly spGlobal: Uint8Array;
  /** The ASIDs each shadow root has been loaded under (satp PPN keys roots; ASIDs ride along). */
  readonly rootAsids = new Map<number, Set<number>>();
  readonly role: Int32Array;
  /** Shadowing page: gfn of the guest table. Direct page: first gfn it maps. */
  readonly gfn: Int32Array;
  readonly state: Uint8Array;
  /** vCPUs using the page as their root; such pages are never recycled. */
  readonly rootCount: Int32Array;
  /** Parent-spte list heads, one per page (see rmap.ts). */
  readonly parents: Int32Array;
  /** Descriptors of every pte list: gfn rmaps and parent lists. */
  readonly pool = new PteListPool(64);

  private nMax: number;
  private nUsed = 0;
  private readonly hash = new Map<number, number>();
  private readonly lru: LRUCache<number, true>;
  private readonly freeStack: Int32Array;
  private freeTop = 0;
  private readonly invalidList: number[] = [];

  // Walker state, so the rmap callbacks are allocated once, not per call.
  private walkFlush = false;
  private walkGfn = 0;
  private walkPtProtect = false;
  private walkSlot: Memslot | null = null;
  /**
   * The host pfn of the young sptes ageGfnRange cleared since the caller set it to -1:
   * -1 none, -2 several different pfns. A one-page aging flushes only the soft TLB
   * entries that name this frame, the ones that would set A again.
   */
  agedPfn = -1;

  private readonly debug: NonNullable<ShadowPagesOptions['debug']>;

  constructor(
    private readonly memslots: Memslots,
    private readonly hooks: MmuHooks,
    private readonly stats: KvmStats,
    opts: ShadowPagesOptions = {},
  ) {
    this.nMax = opts.nMaxMmuPages ?? 256;
    this.debug = opts.debug ?? NO_RMAP_DEBUG;
    this.capacity = opts.capacity ?? this.nMax * 2 + 16;
    if (this.nMax < 1 || this.capacity < this.nMax) {
      throw new RangeError(`ShadowPages: need 1 <= nMaxMmuPages (${this.nMax}) <= capacity (${this.capacity})`);
    }
    const n = this.capacity;
    this.sptes = new Int32Array(n * SPTES_PER_PAGE);
    this.spteGfn = new Int32Array(n * SPTES_PER_PAGE);
    this.spteGlobal = new Uint8Array(n * SPTES_PER_PAGE);
    this.spGlobal = new Uint8Array(n);
    this.role = new Int32Array(n);
    this.gfn = new Int32Array(n);
    this.state = new Uint8Array(n);
    this.rootCount = new Int32Array(n);
    this.parents = new Int32Array(n);
    this.freeStack = new Int32Array(n);
    // Lowest index on top: dumps of a fresh VM read sp 0, 1, 2...
    for (let sp = n - 1; sp >= 0; sp--) this.freeStack[this.freeTop++] = sp;
    this.lru = new LRUCache<number, true>({
      max: n,
      dispose: (_v, sp, reason) => {
        if (reason === 'evict') BUG(`shadow page ${sp} evicted by the LRU itself: capacity accounting is broken`);
      },
    });
  }

  get nMaxMmuPages(): number {
    return this.nMax;
  }
  /** ACTIVE pages: what the bound applies to. */
  get nUsedMmuPages(): number {
    return this.nUsed;
  }
  get nFreePages(): number {
    return this.freeTop;
  }
  /** Zapped pages not yet reusable: on the invalid list, or roots still held. */
  get nZappedPages(): number {
    return this.capacity - this.freeTop - this.nUsed;
  }
  get pendingZaps(): number {
    return this.invalidList.length;
  }

  // ---- lookup and allocation ------------------------------------------------------

  private static key(gfn: number, role: number): number {
    return gfn * (1 << ROLE_BITS) + role;
  }

  /** The ACTIVE page for (gfn, role), or -1. A hit makes the page young. */
  findShadowPage(gfn: number, role: number): number {
    const sp = this.hash.get(ShadowPages.key(gfn, role));
    if (sp === undefined) return -1;
    this.lru.get(sp);
    return sp;
  }

  /** Make sp young without a lookup (the fault path walked through it). */
  touch(sp: number): void {
    if (this.state[sp] === SP_ACTIVE) this.lru.get(sp);
  }

  /**
   * kvm_mmu_get_shadow_page: find (gfn, role) or allocate it empty. Never recycles
   * (the fault path calls makeMmuPagesAvailable before its walk, so the victims are
   * never pages this fault is linking); may go past n_max_mmu_pages up to capacity.
   */
  getShadowPage(gfn: number, role: number): number {
    const found = this.findShadowPage(gfn, role);
    if (found >= 0) return found;
    if (this.freeTop === 0 && this.invalidList.length > 0) this.commitZapPages();
    if (this.freeTop === 0) {
      BUG(
        `shadow page storage exhausted: capacity ${this.capacity}, ${this.nUsed} active ` +
          `(bound ${this.nMax}), ${this.nZappedPages} zapped roots still held: ` +
          `call makeMmuPagesAvailable() before the walk, or raise capacity`,
      );
    }
    const sp = this.freeStack[--this.freeTop]!;
    this.state[sp] = SP_ACTIVE;
    this.spGlobal[sp] = 0;
    this.rootAsids.delete(sp);
    this.role[sp] = role;
    this.gfn[sp] = gfn;
    this.rootCount[sp] = 0;
    this.parents[sp] = 0;
    this.hash.set(ShadowPages.key(gfn, role), sp);
    this.lru.set(sp, true);
    this.nUsed++;
    this.stats.mmuCacheMiss++;
    return sp;
  }

  /** mmu_alloc_root: the root page for (gfn, role), pinned against recycling. */
  getRoot(gfn: number, role: number): number {
    if (roleLevel(role) !== 1) BUG(`getRoot: role ${roleToString(role)} is not a root level`);
    const sp = this.getShadowPage(gfn, role);
    this.rootCount[sp]!++;
    return sp;
  }

  /**
   * kvm_mmu_free_root. A root zapped while held (release, slot delete) is freed here,
   * by its last holder: it was already cleared and flushed.
   */
  putRoot(sp: number): void {
    if (this.rootCount[sp]! <= 0) BUG(`putRoot: sp ${sp} is not held as a root`);
    if (--this.rootCount[sp]! === 0 && this.state[sp] === SP_ZAPPED_ROOT) this.freePage(sp);
  }

  /** A root was loaded for a satp with this ASID. */
  noteRootAsid(root: number, asid: number): void {
    let set = this.rootAsids.get(root);
    if (set === undefined) {
      set = new Set();
      this.rootAsids.set(root, set);
    }
    set.add(asid);
  }

  /** The leaf at sptep came from a global gpte (or one under a global level 1 gpte). */
  markGlobal(sptep: number, global: boolean): void {
    this.spteGlobal[sptep] = global ? 1 : 0;
  }

  /** A megapage gpte with or without G links this direct page: it stays global only while all do. */
  noteDirectGlobal(sp: number, global: boolean): void {
    const g = this.spGlobal[sp]!;
    if (g === 0) this.spGlobal[sp] = global ? 1 : 2;
    else if (g === 1 && !global) this.spGlobal[sp] = 2;
  }

  /**
   * sfence.vma x0, asid (kvm_mmu_sync_roots for one address space): in every root
   * loaded under that ASID, drop each non-global leaf and each level 1 link but
   * those to global megapages; roots of other ASIDs and global translations stay.
   * A shadow table shared with another ASID's root loses its non-global leaves too:
   * more than the fence asks, never less. Returns "needs flush"; the caller commits.
   */
  syncAsidLocked(asid: number): boolean {
    let flush = false;
    for (const [root, asids] of this.rootAsids) {
      if (!asids.has(asid) || this.state[root] !== SP_ACTIVE) continue;
      const base = root * SPTES_PER_PAGE;
      for (let i = 0; i < SPTES_PER_PAGE; i++) {
        const l1 = this.sptes[base + i]!;
        if (!isNonLeafSpte(l1)) continue;
        const child = spteChild(l1);
        const role = this.role[child]!;
        if (roleDirect(role)) {
          if (this.spGlobal[child] === 1) continue;
          if (this.prepareZapPage(child)) flush = true;
          continue;
        }
        const cbase = child * SPTES_PER_PAGE;
        for (let j = 0; j < SPTES_PER_PAGE; j++) {
          if (this.sptes[cbase + j] !== 0 && this.spteGlobal[cbase + j] === 0 && this.dropSpte(cbase + j)) flush = true;
        }
        // The level 1 gpte may have changed (the fence orders every level for this ASID): relink on the next fault.
        if (this.sptes[base + i] !== 0 && this.dropSpte(base + i)) flush = true;
      }
    }
    return flush;
  }

  /** A vCPU must reload its root when this turns false (the root was zapped). */
  isActive(sp: number): boolean {
    return this.state[sp] === SP_ACTIVE;
  }

  // ---- the store layer: every write to sptes[] is below this line -----------------

  spteAt(sptep: number): number {
    return this.sptes[sptep]!;
  }

  /** mmu_spte_set: install into an empty slot. No rmap bookkeeping. */
  mmuSpteSet(sptep: number, spte: number): void {
    if (this.sptes[sptep] !== 0) {
      BUG(`mmuSpteSet: sptep ${sptep} already holds ${spteToString(this.sptes[sptep]!)}`);
    }
    this.sptes[sptep] = spte;
  }

  /**
   * mmu_spte_update: change a present leaf in place (same pfn). A or D bits that
   * disappear are carried to the host page. Returns "needs flush": a soft TLB entry
   * filled from the old value would keep writing (W dropped) or stop reporting
   * accesses (A, D dropped: the walker only sets them on a fill).
   */
  mmuSpteUpdate(sptep: number, spte: number): boolean {
    const old = this.sptes[sptep]!;
    if (!isLeafSpte(old) || !isLeafSpte(spte) || sptePfn(old) !== sptePfn(spte)) {
      BUG(`mmuSpteUpdate: sptep ${sptep}: ${spteToString(old)} -> ${spteToString(spte)} is not a same-pfn leaf update`);
    }
    this.sptes[sptep] = spte;
    const lost = old & ~spte;
    if ((lost & (SPTE_A | SPTE_D)) !== 0) {
      this.hooks.onSpteClear(sptePfn(old), (lost & SPTE_D) !== 0, (lost & SPTE_A) !== 0);
    }
    return (lost & (SPTE_W | SPTE_A | SPTE_D)) !== 0;
  }

  /**
   * mmu_spte_clear_track_bits: clear, carrying A/D of a leaf to the host page.
   * No rmap bookkeeping. Returns "needs flush" (something was present).
   */
  mmuSpteClearTrackBits(sptep: number): boolean {
    const old = this.sptes[sptep]!;
    if (old === 0) return false;
    this.sptes[sptep] = 0;
    if (isLeafSpte(old)) {
      this.hooks.onSpteClear(sptePfn(old), isDirty(old), isAccessed(old));
      this.hooks.onLeafSpteDrop?.(sptePfn(old));
    }
    return true;
  }

  /** mmu_spte_clear_no_track: for pointer sptes, which carry no A/D. */
  mmuSpteClearNoTrack(sptep: number): boolean {
    const old = this.sptes[sptep]!;
    this.sptes[sptep] = 0;
    return old !== 0;
  }

  /**
   * kvm_age_rmap on one spte: clears A without reporting it to the host (the caller
   * returns "young" instead). Whether to flush is the caller's policy.
   */
  mmuSpteTestAndClearYoung(sptep: number): boolean {
    const old = this.sptes[sptep]!;
    if ((old & SPTE_A) === 0) return false;
    this.sptes[sptep] = old & ~SPTE_A;
    return true;
  }

  /**
   * The translator's A/D write-back on a soft TLB fill (the "hardware" walker).
   * D only through a writable spte: D => W.
   */
  spteMarkAccessed(sptep: number, write: boolean): void {
    const old = this.sptes[sptep]!;
    if (!isLeafSpte(old)) BUG(`spteMarkAccessed: sptep ${sptep} holds ${spteToString(old)}`);
    this.sptes[sptep] = write && isWritable(old) ? old | SPTE_A | SPTE_D : old | SPTE_A;
  }

  // ---- links with their rmap bookkeeping -----------------------------------------

  private slotOf(gfn: number, why: string): Memslot {
    const slot = this.memslots.gfnToMemslot(gfn);
    if (slot === undefined) BUG(`${why}: gfn 0x${gfn.toString(16)} is in no memslot`);
    return slot;
  }

  /**
   * mmu_set_spte: make sptep (in an ACTIVE level 0 page) map gfn with leaf value spte.
   * Replaces whatever was there with the matching rmap changes. Returns "needs flush".
   */
  setLeafSpte(sptep: number, gfn: number, spte: number): boolean {
    const sp = sptepPage(sptep);
    if (this.state[sp] !== SP_ACTIVE) BUG(`setLeafSpte: sp ${sp} is not active`);
    if (roleLevel(this.role[sp]!) !== 0) BUG(`setLeafSpte: sp ${sp} is a level 1 page; leaves live at level 0`);
    if (!isLeafSpte(spte)) BUG(`setLeafSpte: ${spteToString(spte)} is not a leaf`);
    const slot = this.slotOf(gfn, 'setLeafSpte');
    if ((slot.flags & KVM_MEM_READONLY) !== 0 && isWritable(spte)) {
      BUG(`setLeafSpte: writable spte for gfn 0x${gfn.toString(16)} in read-only slot ${slot.id}`);
    }
    const old = this.sptes[sptep]!;
    let flush = false;
    if (old !== 0) {
      if (isLeafSpte(old) && this.spteGfn[sptep] === gfn && sptePfn(old) === sptePfn(spte)) {
        return this.mmuSpteUpdate(sptep, spte);
      }
      flush = this.dropSpte(sptep);
    }
    this.mmuSpteSet(sptep, spte);
    this.spteGfn[sptep] = gfn;
    const i = gfn - slot.baseGfn;
    if (slot.rmap[i] === 0) rmapHeadUsed(slot, i, 1);
    if (!this.debug.noRmapAdd) rmapAdd(this.pool, slot.rmap, i, sptep);
    return flush;
  }

  /** link_shadow_page: point parentSptep (level 1) at child (level 0). Returns "needs flush". */
  linkShadowPage(parentSptep: number, child: number): boolean {
    const parent = sptepPage(parentSptep);
    if (this.state[parent] !== SP_ACTIVE || this.state[child] !== SP_ACTIVE) {
      BUG(`linkShadowPage: sp ${parent} -> sp ${child}: both must be active`);
    }
    if (roleLevel(this.role[parent]!) !== 1 || roleLevel(this.role[child]!) !== 0) {
      BUG(`linkShadowPage: sp ${parent} (L${roleLevel(this.role[parent]!)}) -> sp ${child} (L${roleLevel(this.role[child]!)})`);
    }
    const spte = makeNonLeafSpte(child);
    const old = this.sptes[parentSptep]!;
    if (old === spte) return false;
    const flush = old !== 0 ? this.dropSpte(parentSptep) : false;
    this.mmuSpteSet(parentSptep, spte);
    rmapAdd(this.pool, this.parents, child, parentSptep);
    return flush;
  }

  /** drop_spte / drop_parent_pte: clear one spte and its list entry. Returns "needs flush". */
  dropSpte(sptep: number): boolean {
    const old = this.sptes[sptep]!;
    if (old === 0) return false;
    if (isLeafSpte(old)) {
      const gfn = this.spteGfn[sptep]!;
      const slot = this.slotOf(gfn, `dropSpte(${sptep})`);
      const i = gfn - slot.baseGfn;
      if (!this.debug.noRmapRemove) rmapRemove(this.pool, slot.rmap, i, sptep);
      if (slot.rmap[i] === 0) rmapHeadUsed(slot, i, -1);
      return this.mmuSpteClearTrackBits(sptep);
    }
    if (!isNonLeafSpte(old)) BUG(`dropSpte: sptep ${sptep} holds malformed ${spteToString(old)}`);
    rmapRemove(this.pool, this.parents, spteChild(old), sptep);
    return this.mmuSpteClearNoTrack(sptep);
  }

  // ---- zapping: prepare (clear, unlink, queue) then commit (flush, free) ----------

  /**
   * kvm_mmu_prepare_zap_page: clear every spte of sp (carrying A/D), unlink it from
   * its parents and children, unhash it and queue it for commitZapPages. Children
   * stay ACTIVE and cached, just unreachable until relinked or recycled.
   * Returns "needs flush".
   */
  prepareZapPage(sp: number): boolean {
    if (this.state[sp] !== SP_ACTIVE) return false;
    let flush = false;
    const base = sp * SPTES_PER_PAGE;
    for (let i = 0; i < SPTES_PER_PAGE; i++) {
      if (this.sptes[base + i] !== 0 && this.dropSpte(base + i)) flush = true;
    }
    this.walkFlush = false;
    rmapDrain(this.pool, this.parents, sp, this.clearParentLink);
    if (this.walkFlush) flush = true;
    this.hash.delete(ShadowPages.key(this.gfn[sp]!, this.role[sp]!));
    this.lru.delete(sp);
    this.state[sp] = SP_ZAPPED;
    this.invalidList.push(sp);
    this.nUsed--;
    this.stats.mmuShadowZapped++;
    return flush;
  }

  private readonly clearParentLink = (parentSptep: number): void => {
    if (this.mmuSpteClearNoTrack(parentSptep)) this.walkFlush = true;
  };

  /**
   * kvm_mmu_commit_zap_page: one remote flush for the whole invalid list, then free.
   * A root still held stays SP_ZAPPED_ROOT until putRoot.
   */
  commitZapPages(): void {
    if (this.invalidList.length === 0) return;
    this.flushRemoteTlbs();
    for (const sp of this.invalidList) {
      if (this.rootCount[sp]! > 0) this.state[sp] = SP_ZAPPED_ROOT;
      else this.freePage(sp);
    }
    this.invalidList.length = 0;
  }

  zapPage(sp: number): void {
    this.prepareZapPage(sp);
    this.commitZapPages();
  }

  flushRemoteTlbs(): void {
    this.stats.remoteTlbFlush++;
    this.hooks.flushRemoteTlbs();
  }

  private freePage(sp: number): void {
    if (this.parents[sp] !== 0) BUG(`freePage: sp ${sp} still has parents`);
    this.state[sp] = SP_FREE;
    this.rootCount[sp] = 0;
    this.freeStack[this.freeTop++] = sp;
  }

  /**
   * make_mmu_pages_available: at the start of a fault, before the walk. Zaps the least
   * recently used non-root pages until `minFree` pages fit under the bound. Returns
   * the number zapped (fewer than needed when only roots are left).
   */
  makeMmuPagesAvailable(minFree = KVM_MIN_FREE_MMU_PAGES): number {
    const avail = this.nMax - this.nUsed;
    if (avail >= minFree) return 0;
    return this.zapOldest(minFree - avail);
  }

  /** kvm_mmu_change_mmu_pages (KVM_SET_NR_MMU_PAGES). */
  setNMaxMmuPages(n: number): number {
    if (n < 1 || n > this.capacity) throw new RangeError(`nMaxMmuPages ${n} outside 1..${this.capacity}`);
    this.nMax = n;
    return this.nUsed > n ? this.zapOldest(this.nUsed - n) : 0;
  }

  /** kvm_mmu_zap_oldest_mmu_pages. */
  private zapOldest(want: number): number {
    // Pick first, zap after: prepareZapPage deletes from the LRU being iterated.
    const victims: number[] = [];
    for (const sp of this.lru.rkeys()) {
      if (victims.length >= want) break;
      if (this.rootCount[sp]! > 0) continue;
      victims.push(sp);
    }
    for (const sp of victims) this.prepareZapPage(sp);
    this.stats.mmuRecycled += victims.length;
    this.commitZapPages();
    return victims.length;
  }

  /** kvm_mmu_zap_all (release): every page, roots included (they go SP_ZAPPED_ROOT). */
  zapAll(): void {
    for (const sp of [...this.lru.keys()]) this.prepareZapPage(sp);
    this.commitZapPages();
  }

  /**
   * kvm_arch_flush_shadow_memslot, for a deleted or moved slot (pass the *old* slot):
   * every spte mapping its gfns and every page shadowing a guest table inside it.
   * Runs before mmu_lock is dropped after the memslot change.
   */
  zapMemslot(slot: Memslot): void {
    let flush = this.unmapGfnRange(slot, slot.baseGfn, slot.baseGfn + slot.npages);
    const end = slot.baseGfn + slot.npages;
    const victims: number[] = [];
    for (const sp of this.lru.keys()) {
      const g = this.gfn[sp]!;
      if (!roleDirect(this.role[sp]!) && g >= slot.baseGfn && g < end) victims.push(sp);
    }
    for (const sp of victims) if (this.prepareZapPage(sp)) flush = true;
    if (this.invalidList.length > 0) this.commitZapPages();
    else if (flush) this.flushRemoteTlbs();
  }

  // ---- rmap walkers for the notifier handlers -------------------------------------

  /**
   * kvm_unmap_gfn_range: clear every spte mapping a gfn of [gfnStart, gfnEnd) in slot,
   * carrying A/D to the host page. Returns "needs flush"; range_start must flush
   * before it drops mmu_lock.
   */
  unmapGfnRange(slot: Memslot, gfnStart: number, gfnEnd: number): boolean {
    this.walkFlush = false;
    this.walkSlot = slot;
    forEachUsedRmap(slot, gfnStart - slot.baseGfn, gfnEnd - slot.baseGfn, this.zapUsedHead);
    this.walkSlot = null;
    return this.walkFlush;
  }

  private readonly zapUsedHead = (i: number): void => {
    const slot = this.walkSlot!;
    this.walkGfn = slot.baseGfn + i;
    rmapDrain(this.pool, slot.rmap, i, this.zapRmapEntry);
    rmapHeadUsed(slot, i, -1);
  };

  private readonly zapRmapEntry = (sptep: number): void => {
    const old = this.sptes[sptep]!;
    if (!isLeafSpte(old) || this.spteGfn[sptep] !== this.walkGfn) {
      BUG(`rmap of gfn 0x${this.walkGfn.toString(16)} holds sptep ${sptep} = ${spteToString(old)}`);
    }
    if (this.mmuSpteClearTrackBits(sptep)) this.walkFlush = true;
  };

  /** kvm_age_gfn: clear A in every spte of the range. Returns young. */
  ageGfnRange(slot: Memslot, gfnStart: number, gfnEnd: number): boolean {
    this.walkFlush = false;
    this.walkSlot = slot;
    forEachUsedRmap(slot, gfnStart - slot.baseGfn, gfnEnd - slot.baseGfn, this.ageUsedHead);
    this.walkSlot = null;
    return this.walkFlush;
  }

  private readonly ageUsedHead = (i: number): void => {
    forEachRmap(this.pool, this.walkSlot!.rmap, i, this.ageRmapEntry);
  };

  private readonly ageRmapEntry = (sptep: number): void => {
    if (this.mmuSpteTestAndClearYoung(sptep)) {
      this.walkFlush = true;
      const pfn = sptePfn(this.sptes[sptep]!);
      this.agedPfn = this.agedPfn === -1 || this.agedPfn === pfn ? pfn : -2;
    }
  };

  /** kvm_test_age_gfn: stops at the first young spte; clears nothing. */
  testAgeGfnRange(slot: Memslot, gfnStart: number, gfnEnd: number): boolean {
    this.walkFlush = false;
    this.walkSlot = slot;
    forEachUsedRmap(slot, gfnStart - slot.baseGfn, gfnEnd - slot.baseGfn, this.testAgeUsedHead);
    this.walkSlot = null;
    return this.walkFlush;
  }

  private readonly testAgeUsedHead = (i: number): void => {
    if (!this.walkFlush && forEachRmap(this.pool, this.walkSlot!.rmap, i, this.isYoungEntry)) this.walkFlush = true;
  };

  private readonly isYoungEntry = (sptep: number): boolean => isAccessed(this.sptes[sptep]!);

  /**
   * rmap_write_protect: make every spte of gfn read-only, carrying D to the host page.
   * ptProtect (the gfn now holds a shadowed guest page table) also clears
   * mmu-writable, so no fault may make it writable again until the page is unshadowed.
   * Returns "needs flush": a soft TLB entry could still write.
   */
  writeProtectGfn(slot: Memslot, gfn: number, ptProtect: boolean): boolean {
    this.walkFlush = false;
    this.walkPtProtect = ptProtect;
    forEachRmap(this.pool, slot.rmap, gfn - slot.baseGfn, this.wrprotEntry);
    return this.walkFlush;
  }

  private readonly wrprotEntry = (sptep: number): void => {
    const old = this.sptes[sptep]!;
    const spte = this.walkPtProtect ? spteWrprot(old) & ~SPTE_MMU_WRITABLE : spteWrprot(old);
    if (spte !== old && this.mmuSpteUpdate(sptep, spte)) this.walkFlush = true;
  };

  // ---- introspection --------------------------------------------------------------

  /** Hash entries, for the audit. */
  forEachHashed(fn: (gfn: number, role: number, sp: number) => void): void {
    for (const [key, sp] of this.hash) fn(Math.floor(key / (1 << ROLE_BITS)), key % (1 << ROLE_BITS), sp);
  }

  get hashSize(): number {
    return this.hash.size;
  }

  /** ACTIVE pages, least recently used first. */
  lruOrder(): number[] {
    return [...this.lru.rkeys()];
  }

  updateRmapHistogram(): void {
    const h = this.stats.rmapHistogram;
    h.fill(0);
    for (const slot of this.memslots.all()) rmapHistogram(this.pool, slot.rmap, h);
  }

  /** `info mmu`. */
  dump(): string {
    const lines = [
      `shadow pages: ${this.nUsed} active / bound ${this.nMax} / capacity ${this.capacity}, ` +
        `${this.freeTop} free, ${this.nZappedPages} zapped, rmap descriptors ${this.pool.inUse}`,
    ];
    for (const sp of this.lru.rkeys()) {
      let present = 0;
      const base = sp * SPTES_PER_PAGE;
      for (let i = 0; i < SPTES_PER_PAGE; i++) if (this.sptes[base + i] !== 0) present++;
      lines.push(
        `sp ${sp}: gfn 0x${this.gfn[sp]!.toString(16)} ${roleToString(this.role[sp]!)}` +
          `${this.rootCount[sp]! > 0 ? ` root x${this.rootCount[sp]}` : ''} present ${present}`,
      );
    }
    return lines.join('\n');
  }
}

/** Keeps the chunk counts of a slot's rmap in step with one head turning used (+1) or empty (-1). */
function rmapHeadUsed(slot: Memslot, i: number, delta: 1 | -1): void {
  slot.rmapChunkUsed[i >>> RMAP_CHUNK_SHIFT]! += delta;
  slot.rmapSuperUsed[i >>> RMAP_SUPER_SHIFT]! += delta;
}

/**
 * Calls fn(i) for every non-empty rmap head i in [from, to) (slot-relative), skipping
 * empty super-chunks and chunks: O(used heads + range / 4096), not O(range).
 * fn may empty the head it is given (and must then update the counts).
 */
function forEachUsedRmap(slot: Memslot, from: number, to: number, fn: (i: number) => void): void {
  const heads = slot.rmap;
  const superSize = 1 << RMAP_SUPER_SHIFT;
  const chunkSize = 1 << RMAP_CHUNK_SHIFT;
  let i = from < 0 ? 0 : from;
  const end = to > heads.length ? heads.length : to;
  while (i < end) {
    if (slot.rmapSuperUsed[i >>> RMAP_SUPER_SHIFT] === 0) {
      i = ((i >>> RMAP_SUPER_SHIFT) + 1) * superSize;
      continue;
    }
    if (slot.rmapChunkUsed[i >>> RMAP_CHUNK_SHIFT] === 0) {
      i = ((i >>> RMAP_CHUNK_SHIFT) + 1) * chunkSize;
      continue;
    }
    const chunkEnd = Math.min(end, ((i >>> RMAP_CHUNK_SHIFT) + 1) * chunkSize);
    for (; i < chunkEnd; i++) if (heads[i] !== 0) fn(i);
  }
}

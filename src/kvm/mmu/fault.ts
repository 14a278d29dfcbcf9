// Counterpart: arch/x86/kvm/mmu/mmu.c (kvm_mmu_page_fault, direct_page_fault, kvm_faultin_pfn,
// mmu_invalidate_retry_gfn, kvm_mmu_load, kvm_mmu_sync_roots, kvm_mmu_invlpg) and
// arch/x86/kvm/mmu/paging_tmpl.h (FNAME(page_fault), FNAME(walk_addr_generic),
// FNAME(update_accessed_dirty_bits), FNAME(gpte_changed), FNAME(fetch))
//
// The slow path behind TRANSLATE_EXIT, run by the vCPU thread (it may sleep):
//
//   1. paging on: walk the guest Sv32 tables through their hvas (get_user_pages: host
//      faults and swap-ins possible); deny -> inject a guest page fault to S-mode;
//      set A (and D on a store) in the leaf gpte by compare-and-write, restarting the
//      walk if the gpte changed meanwhile.
//   2. gfn -> memslot -> hva. No memslot (or a store to a read-only slot): the access
//      is the VMM's; cache it as MMIO and let the translator answer TRANSLATE_MMIO.
//   3. snapshot mmu_invalidate_seq and the memslot generation, THEN get_user_pages.
//   4. take mmu_lock; retry (drop the page) if an invalidation covering the gfn is in
//      progress or the sequence / generation moved. The race this closes (the 2008
//      invalidate_page thread): GUP returns pfn P, an invalidation then zaps the
//      (absent) spte and the host frees P's mapping; installing P now would leave a
//      spte no notifier will ever zap, over a page about to be freed.
//   5. re-read the guest ptes (atomically, through the host pte: no sleeping under
//      the spinlock); a change means the walk is stale -> retry.
//   6. make room, load the root, link the leaf table, install the spte + rmap; flush
//      if a previous spte was narrowed; unlock.
//   7. modern: put the page now (the notifier alone keeps the spte coherent);
//      v7/pin: the spte owns the reference/pin until it is zapped.
//
// Writable sptes: only for a store or a dirty gpte (always with paging off), and only
// if the host pte is writable and the memslot is not read-only. A load through a clean
// gpte maps the page read-only, so the first store faults here and sets D in the gpte.
// A load may thus map writable a page the host holds clean (a read swap-in keeps the
// page clean in the swap cache with a writable pte): the guest's stores then set only
// the spte's D bit, which zapping must carry to the page (onSpteClear) or reclaim
// frees the page without writing it.
//
// Guest page-table changes: unsync + re-walk, not write-protection. A shadowed guest
// table is never write-protected; instead sfence.vma (one address: drop the leaf and
// the link for that gva; everything: zap every page derived from guest ptes) and
// satp writes (a new root key) make the next access re-walk. Why: RISC-V requires
// the guest to sfence.vma after changing a pte before relying on it, so re-walking at
// the fence is exactly as strong as write-protection, costs no write fault on every
// guest pte update (page-table-heavy guests write their tables far more often than
// they fence), and keeps the rmap free of the "shadowed table" special case. The
// price is a full zap on a global sfence.vma, which small guests issue rarely.

import { MSTATUS_MXR, MSTATUS_SUM, PRIV_M } from '../../hart/csr.js';
import {
  PTE_A,
  PTE_D,
  PTE_R,
  PTE_G,
  PTE_U,
  PTE_V,
  PTE_W,
  PTE_X,
  SV32_NO_MEMORY,
  accessFaultCause,
  pageFaultCause,
  sv32LeafAllows,
} from '../../hart/sv32.js';
import { ACCESS_STORE } from '../../hart/translator.js';
import { sleepTicks } from '../../sched/index.js';
import type { Task } from '../../sched/index.js';
import { KVM_MEM_READONLY, gfnToHva } from '../memslots.js';
import type { Vcpu } from '../vcpu.js';
import type { Vm } from '../vm.js';
import { SPTES_PER_PAGE, makeRole, roleDirect, roleAccess } from './shadow-pages.js';
import {
  ACC_R,
  ACC_U,
  ACC_W,
  ACC_X,
  SPTE_A,
  SPTE_D,
  SPTE_HOST_WRITABLE,
  SPTE_MMU_WRITABLE,
  isLeafSpte,
  isNonLeafSpte,
  makeSpte,
  spteChild,
  sptePfn,
} from './spte.js';
import { ROOT_KEY_DIRECT, ShadowTranslator } from './translator.js';

export type FaultResult = 'fixed' | 'retry' | 'guest-fault' | 'mmio' | 'error';

/** Sv32 satp.ASID: bits 30..22. */
const SATP_ASID_MASK = 0x1ff;
const ROLE_DIRECT_ROOT = makeRole(1, true);
const ROLE_SHADOW_ROOT = makeRole(1, false);
const ROLE_DIRECT_LEAF = makeRole(0, true);
const ROLE_SHADOW_LEAF = makeRole(0, false);
/** Guest pte permission bits, at the same positions as ACC_R/W/X/U. */
const GPTE_ACC = PTE_R | PTE_W | PTE_X | PTE_U;
/** Restarts of a walk whose A/D update lost a race, before giving up for this exit. */
const MAX_WALK_RESTARTS = 8;

/** FNAME(walk_addr) result, one per vCPU, reused. */
export class GuestWalker {
  /** Leaf gpte as stored (A/D already set), its gpa, and the level it was found at. */
  gpte = 0;
  gptePa = 0;
  level = 0;
  /** Level 1 gpte and its gpa (equal to gpte/gptePa for a megapage). */
  l1Gpte = 0;
  l1GptePa = 0;
  /** gfn the access lands in. */
  gfn = 0;
  /** gfn of the level 0 guest table (-1 for a megapage). */
  tableGfn = -1;
  /** Exception cause when the walk failed, 0 otherwise. */
  cause = 0;
  /** Host error (negative errno) that stopped the walk, 0 otherwise. */
  errno = 0;
  /** The A/D update kept losing races: retry the exit rather than fault the guest. */
  contended = false;
}

function gfnOf(gpa: number): number {
  return Math.floor(gpa / 4096);
}

/** Reads the guest pte at gpa through get_user_pages; SV32_NO_MEMORY outside RAM; -errno in w. */
function* readGpte(vm: Vm, gpa: number, w: GuestWalker): Task<number> {
  const slot = vm.memslots.gfnToMemslot(gfnOf(gpa));
  if (slot === undefined) return SV32_NO_MEMORY;
  const hva = gfnToHva(slot, gfnOf(gpa));
  const pfn = yield* vm.host.getUserPages(vm.mm, hva, false);
  if (pfn < 0) {
    w.errno = pfn;
    return 0;
  }
  const v = vm.ram32[(pfn << 10) + ((gpa % 4096) >>> 2)]!;
  vm.host.putPage(pfn);
  return v;
}

/** cmpxchg_gpte: 1 written, 0 the gpte changed, -errno on a host error. */
function* cmpxchgGpte(vm: Vm, gpa: number, old: number, next: number): Task<number> {
  const slot = vm.memslots.gfnToMemslot(gfnOf(gpa));
  if (slot === undefined) return 0;
  if ((slot.flags & KVM_MEM_READONLY) !== 0) return -14;
  const pfn = yield* vm.host.getUserPages(vm.mm, gfnToHva(slot, gfnOf(gpa)), true);
  if (pfn < 0) return pfn;
  const view = vm.ram32;
  const i = (pfn << 10) + ((gpa % 4096) >>> 2);
  // Read and write in one step: no other thread (and no other vCPU) runs in between.
  const ok = view[i] === old;
  if (ok) view[i] = next;
  // A write no vCPU store made: a guest that runs code from its table page must
  // see it, so that word's compiled code goes (as for userspace's writes).
  if (ok && !vm.debug.noGpteCodeInvalidate) for (const v of vm.vcpus) v.hart.invalidateCode(i * 4, 4);
  vm.host.putPage(pfn, ok);
  return ok ? 1 : 0;
}

/**
 * The guest pte at gpa as it is now, without sleeping (kvm_vcpu_read_guest_atomic):
 * through gup-fast. null when the table page is not resident.
 */
function readGpteAtomic(vm: Vm, gpa: number): number | null {
  const slot = vm.memslots.gfnToMemslot(gfnOf(gpa));
  if (slot === undefined) return null;
  const pfn = vm.host.getUserPageFastOnly(vm.mm, gfnToHva(slot, gfnOf(gpa)), false);
  if (pfn < 0) return null;
  const v = vm.ram32[(pfn << 10) + ((gpa % 4096) >>> 2)]!;
  vm.host.putPage(pfn);
  return v;
}


/** FNAME(walk_addr_generic). Fills w; returns true when the access is allowed. */
export function* walkGuest(vcpu: Vcpu, gva: number, access: number, priv: number, w: GuestWalker): Task<boolean> {
  const vm = vcpu.vm;
  const hart = vcpu.hart;
  const sum = (hart.mstatus & MSTATUS_SUM) !== 0;
  const mxr = (hart.mstatus & MSTATUS_MXR) !== 0;
  w.cause = 0;
  w.errno = 0;
  w.contended = false;
  for (let restart = 0; restart < MAX_WALK_RESTARTS; restart++) {
    let tablePa = (hart.satp & 0x3fffff) * 4096;
    let level = 1;
    let lost = false;
    w.tableGfn = -1;
    for (;;) {
      const vpn = level === 1 ? gva >>> 22 : (gva >>> 12) & 0x3ff;
      const ptePa = tablePa + vpn * 4;
      let pte = yield* readGpte(vm, ptePa, w);
      if (w.errno !== 0) return false;
      if (pte === SV32_NO_MEMORY) {
        w.cause = accessFaultCause(access);
        return false;
      }
      if (level === 1) {
        w.l1Gpte = pte;
        w.l1GptePa = ptePa;
      }
      if ((pte & PTE_V) === 0 || (pte & (PTE_R | PTE_W)) === PTE_W) break;
      if ((pte & (PTE_R | PTE_X)) === 0) {
        if (level === 0) break;
        w.tableGfn = pte >>> 10;
        tablePa = w.tableGfn * 4096;
        level = 0;
        continue;
      }
      if (!sv32LeafAllows(pte, access, priv, sum, mxr)) break;
      const ppn = pte >>> 10;
      if (level === 1 && (ppn & 0x3ff) !== 0) break;
      const next = pte | PTE_A | (access === ACCESS_STORE ? PTE_D : 0);
      if (next !== pte) {
        const r = yield* cmpxchgGpte(vm, ptePa, pte, next);
        if (r < 0) {
          w.errno = r;
          return false;
        }
        if (r === 0) {
          // The gpte changed since we read it (the guest, or another vCPU's walk).
          lost = true;
          break;
        }
        pte = next;
        if (level === 1) w.l1Gpte = pte;
      }
      w.gpte = pte;
      w.gptePa = ptePa;
      w.level = level;
      w.gfn = level === 1 ? ppn + ((gva >>> 12) & 0x3ff) : ppn;
      return true;
    }
    if (!lost) {
      w.cause = pageFaultCause(access);
      return false;
    }
  }
  w.contended = true;
  return false;
}

/**
 * Delivers a guest exception to S-mode as the hart's trap entry would (privileged spec
 * 4.1.1), for the instruction at pc. false when the guest did not delegate it.
 */
export function injectGuestTrap(vcpu: Vcpu, cause: number, tval: number): boolean {
  const h = vcpu.hart;
  // Not delegated: the guest kernel does not handle it, and the host takes no guest page faults.
  if (h.priv === PRIV_M || ((h.medeleg >>> cause) & 1) === 0) return false;
  h.takeTrap(cause, tval);
  return true;
}

/**
 * Applies the sfence.vma requests the translator recorded (kvm_mmu_invlpg /
 * kvm_mmu_sync_roots). Caller holds mmu_lock.
 */
export function kvmMmuSyncLocked(vcpu: Vcpu): void {
  const tr = vcpu.translator;
  const sps = vcpu.vm.sps;
  let flush = false;
  if (tr.syncAll && tr.syncAsid < 0) {
    // Every page derived from guest ptes: shadowed tables and megapage-direct pages.
    for (const sp of sps.lruOrder()) {
      const role = sps.role[sp]!;
      if (!roleDirect(role) || roleAccess(role) !== 0) if (sps.prepareZapPage(sp)) flush = true;
    }
  } else {
    // One ASID, every address: its roots' non-global translations (Linux's
    // flush_tlb_mm, at fork, exit and munmap). Other address spaces and the
    // kernel's global mappings keep their sptes.
    if (tr.syncAll && sps.syncAsidLocked(tr.syncAsid)) flush = true;
    // A one-address sfence.vma covers every address space (or one ASID, and roots
    // carry no ASID): drop the address in every shadow root, not only the current
    // one, or a later satp switch would translate through a stale level 1 link.
    const roots: number[] = [];
    for (const sp of sps.lruOrder()) if (sps.role[sp] === ROLE_SHADOW_ROOT) roots.push(sp);
    for (const gva of tr.syncGvas) {
      for (const root of roots) {
        const l1p = root * SPTES_PER_PAGE + (gva >>> 22);
        const l1 = sps.spteAt(l1p);
        if (!isNonLeafSpte(l1)) continue;
        const child = spteChild(l1);
        if (roleDirect(sps.role[child]!)) {
          if (sps.prepareZapPage(child)) flush = true;
        } else if (sps.dropSpte(child * SPTES_PER_PAGE + ((gva >>> 12) & 0x3ff))) {
          flush = true;
        }
        // The level 1 gpte may have changed too: relink on the next fault.
        if (sps.spteAt(l1p) !== 0 && sps.dropSpte(l1p)) flush = true;
      }
    }
  }
  tr.syncAll = false;
  tr.syncAsid = -1;
  tr.syncGvas.length = 0;
  if (sps.pendingZaps > 0) sps.commitZapPages();
  else if (flush) sps.flushRemoteTlbs();
}

/** kvm_mmu_load: make the vCPU's root match its paging mode. Caller holds mmu_lock. */
function mmuLoadLocked(vcpu: Vcpu, key: number): number {
  const tr = vcpu.translator;
  const sps = vcpu.vm.sps;
  if (tr.root >= 0 && tr.rootKey === key && sps.isActive(tr.root)) {
    sps.touch(tr.root);
  } else {
    tr.dropRoot();
    tr.root = key === ROOT_KEY_DIRECT ? sps.getRoot(0, ROLE_DIRECT_ROOT) : sps.getRoot(key, ROLE_SHADOW_ROOT);
    tr.rootKey = key;
  }
  // Roots are keyed by the satp PPN; the ASIDs they served decide what sfence.vma x0, asid drops.
  if (key !== ROOT_KEY_DIRECT) sps.noteRootAsid(tr.root, (vcpu.hart.satp >>> 22) & SATP_ASID_MASK);
  return tr.root;
}

/** Neighbours FNAME(pte_prefetch) fills around a fixed fault: the aligned group of 8. */
const PTE_PREFETCH_NUM = 8;

/**
 * FNAME(pte_prefetch): fill the empty sptes beside a fixed fault from the guest
 * table, without sleeping, so a guest that walks its pages sequentially (a fork's
 * child reading what it inherited, a parent after flush_tlb_mm) faults once per
 * group instead of once per page. Only what costs no sleep and no guest-visible
 * change: a present leaf gpte with A set (W only with D set), a memslot page
 * whose host pte is present now (gup-fast, hva_to_pfn's atomic probe).
 * Only under `modern`, whose sptes hold no page reference, and only while no
 * invalidation is in flight: we hold mmu_lock, so the next range_start waits for
 * us and then zaps what we installed. Caller holds mmu_lock.
 */
function ptePrefetchLocked(vm: Vm, child: number, tableGfn: number, index: number, l1Gpte: number): void {
  if (vm.protocol !== 'modern' || vm.debug.noPrefetch || vm.mmuInvalidateInProgress > 0) return;
  const sps = vm.sps;
  const first = index & ~(PTE_PREFETCH_NUM - 1);
  for (let i = first; i < first + PTE_PREFETCH_NUM; i++) {
    const sptep = child * SPTES_PER_PAGE + i;
    if (i === index || sps.spteAt(sptep) !== 0) continue;
    const gpte = readGpteAtomic(vm, tableGfn * 4096 + i * 4);
    if (gpte === null || (gpte & (PTE_V | PTE_A)) !== (PTE_V | PTE_A) || (gpte & (PTE_R | PTE_X)) === 0) continue;
    const gfn = gpte >>> 10;
    const slot = vm.memslots.gfnToMemslot(gfn);
    if (slot === undefined) continue;
    // hva_to_pfn_fast: a writable page if the host pte allows it (the kernel's tries
    // only FOLL_WRITE; we also take a read-only page, mapped read-only).
    const hva = gfnToHva(slot, gfn);
    let pfn = vm.host.getUserPageFastOnly(vm.mm, hva, true);
    const hostWritable = pfn >= 0;
    if (!hostWritable) pfn = vm.host.getUserPageFastOnly(vm.mm, hva, false);
    if (pfn < 0) continue;
    const slotRo = (slot.flags & KVM_MEM_READONLY) !== 0;
    const gacc = gpte & GPTE_ACC;
    const writable = (gacc & ACC_W) !== 0 && (gpte & PTE_D) !== 0 && hostWritable && !slotRo;
    // No A: nothing has accessed it yet (aging must not see it young).
    const spte = makeSpte(pfn, (gacc & (ACC_R | ACC_X | ACC_U)) | (writable ? ACC_W : 0),
      (hostWritable ? SPTE_HOST_WRITABLE : 0) | (slotRo ? 0 : SPTE_MMU_WRITABLE));
    sps.setLeafSpte(sptep, gfn, spte);
    sps.markGlobal(sptep, ((l1Gpte | gpte) & PTE_G) !== 0);
    // kvm_release_pfn_clean: a modern spte owns nothing; mmu_lock keeps the next range_start out.
    vm.host.putPage(pfn);
  }
}

function releasePfn(vm: Vm, pfn: number): void {
  if (vm.protocol === 'pin') vm.host.unpinUserPage(pfn);
  else vm.host.putPage(pfn);
}

/**
 * kvm_mmu_page_fault for the miss the translator recorded. On 'error' the reason is
 * in vcpu.lastError. Every result re-enters the guest at the same instruction
 * (a guest fault has already moved pc to the guest's trap handler).
 */
export function* kvmMmuPageFault(vcpu: Vcpu): Task<FaultResult> {
  const vm = vcpu.vm;
  const tr = vcpu.translator;
  const hart = vcpu.hart;
  const sps = vm.sps;
  const stats = vm.stats;

  if (tr.syncAll || tr.syncGvas.length > 0) {
    yield* vm.mmuLock.lock();
    kvmMmuSyncLocked(vcpu);
    vm.mmuLock.unlock();
  }
  stats.pfTaken++;
  const gva = tr.faultGva;
  const access = tr.faultAccess;
  const priv = tr.faultPriv;
  const store = access === ACCESS_STORE;
  const key = ShadowTranslator.rootKeyFor(hart, priv);
  const paging = key !== ROOT_KEY_DIRECT;
  const w = vcpu.walker;

  let gfn: number;
  // Guest permissions (ACC_*) and whether the gpte allows a writable spte yet (D set).
  let gacc = ACC_R | ACC_W | ACC_X;
  let gdirty = true;
  if (paging) {
    const ok = yield* walkGuest(vcpu, gva, access, priv, w);
    if (!ok) {
      if (w.contended) {
        stats.pfRetry++;
        return 'retry';
      }
      if (w.errno !== 0) return vcpu.fail(`guest page table walk for gva 0x${(gva >>> 0).toString(16)}: host error ${w.errno}`);
      stats.pfGuest++;
      if (!injectGuestTrap(vcpu, w.cause, gva)) {
        return vcpu.fail(`guest exception ${w.cause} at gva 0x${(gva >>> 0).toString(16)} is not delegated to S-mode`);
      }
      return 'guest-fault';
    }
    gfn = w.gfn;
    gacc = w.gpte & GPTE_ACC;
    gdirty = (w.gpte & PTE_D) !== 0;
  } else {
    gfn = gva >>> 12;
  }

  const slot = vm.memslots.gfnToMemslot(gfn);
  const slotRo = slot !== undefined && (slot.flags & KVM_MEM_READONLY) !== 0;
  if (slot === undefined || (store && slotRo)) {
    // Not RAM the guest may write: the VMM's (KVM_EXIT_MMIO).
    tr.cacheMmioInfo(hart, gva, gfn, access, priv);
    return 'mmio';
  }
  const hva = gfnToHva(slot, gfn);

  // kvm_faultin_pfn: an invalidation of this gfn in flight will zap what we install;
  // wait it out instead of faulting the page in only to drop it.
  if (!vm.debug.noRetry && !vm.debug.noInProgressCheck && vm.mmuInvalidateInProgress > 0 && gfn >= vm.mmuInvalidateRangeStart && gfn < vm.mmuInvalidateRangeEnd) {
    stats.pfRetry++;
    yield* sleepTicks(1, 'mmu-invalidate');
    return 'retry';
  }

  // The snapshot must precede get_user_pages: an invalidation that starts after it
  // bumps the sequence (or is still in progress) by the time we hold mmu_lock.
  const mmuSeq = vm.mmuInvalidateSeq;
  const generation = vm.memslots.generation;
  const pfn = vm.protocol === 'pin' ? yield* vm.host.pinUserPages(vm.mm, hva, store) : yield* vm.host.getUserPages(vm.mm, hva, store);
  if (pfn < 0) {
    return vcpu.fail(`get_user_pages(hva 0x${(hva >>> 0).toString(16)}) for gpa 0x${(gfn * 4096).toString(16)} failed: errno ${-pfn}`);
  }

  if (vm.debug.afterGup !== null) yield* vm.debug.afterGup(vcpu);
  yield* vm.mmuLock.lock();
  if (vm.released) {
    vm.mmuLock.unlock();
    releasePfn(vm, pfn);
    return vcpu.fail('guest memory is gone: the VMM process exited (mmu_notifier release ran)');
  }
  let retry = !vm.debug.noRetry && (vm.mmuInvalidateRetryGfn(mmuSeq, gfn) || generation !== vm.memslots.generation);
  if (!retry && paging) {
    // FNAME(gpte_changed): the tables may have changed while we slept.
    retry = readGpteAtomic(vm, w.l1GptePa) !== w.l1Gpte || (w.level === 0 && readGpteAtomic(vm, w.gptePa) !== w.gpte);
  }
  if (retry) {
    vm.mmuLock.unlock();
    releasePfn(vm, pfn);
    stats.pfRetry++;
    if (vm.tracing()) vm.trace({ type: 'fault', vcpu: vcpu.id, gva, gfn, pfn, result: 'retry' });
    return 'retry';
  }

  // Host writability: a store got a writable page from GUP; for a load, probe with
  // gup-fast FOLL_WRITE (as hva_to_pfn's writable probe does) so a later store need
  // not fault: writable only if the probe finds the very page GUP returned.
  let hostWritable = store;
  if (!hostWritable) {
    const wpfn = vm.host.getUserPageFastOnly(vm.mm, hva, true);
    hostWritable = wpfn === pfn;
    if (wpfn >= 0) vm.host.putPage(wpfn);
  }
  const writable = (gacc & ACC_W) !== 0 && gdirty && hostWritable && !slotRo;
  const access2 = (gacc & (ACC_R | ACC_X | (paging ? ACC_U : 0))) | (writable ? ACC_W : 0);
  const spte = makeSpte(
    pfn,
    access2,
    SPTE_A | (store && writable ? SPTE_D : 0) | (hostWritable ? SPTE_HOST_WRITABLE : 0) | (slotRo ? 0 : SPTE_MMU_WRITABLE),
  );

  sps.makeMmuPagesAvailable();
  const root = mmuLoadLocked(vcpu, key);
  let child: number;
  if (!paging) child = sps.getShadowPage((gfn >>> 10) << 10, ROLE_DIRECT_LEAF);
  // A guest megapage gets a direct page keyed by its permissions, and by its D
  // bit as x86's FNAME(fetch) does: two megapage gptes over the same memory, one
  // clean, must not share writable sptes, or stores through the clean one would
  // never fault and the guest would never see its D bit set.
  else if (w.level === 1) child = sps.getShadowPage(gfn - ((gva >>> 12) & 0x3ff), makeRole(0, true, gdirty ? gacc : gacc & ~ACC_W));
  else child = sps.getShadowPage(w.tableGfn, ROLE_SHADOW_LEAF);
  let flush = sps.linkShadowPage(root * SPTES_PER_PAGE + (gva >>> 22), child);
  const sptep = child * SPTES_PER_PAGE + ((gva >>> 12) & 0x3ff);
  const old = sps.spteAt(sptep);
  // Same gfn and pfn: setLeafSpte updates in place and the old spte keeps owning
  // its reference/pin; ours is then surplus.
  const sameMapping = isLeafSpte(old) && sps.spteGfn[sptep] === gfn && sptePfn(old) === pfn;
  if (sps.setLeafSpte(sptep, gfn, spte)) flush = true;
  if (paging) {
    // G on the level 1 gpte makes every mapping below it global (Sv32); a megapage's G is its own.
    const global = ((w.l1Gpte | (w.level === 0 ? w.gpte : 0)) & PTE_G) !== 0;
    if (w.level === 1) sps.noteDirectGlobal(child, global);
    else {
      sps.markGlobal(sptep, global);
      ptePrefetchLocked(vm, child, w.tableGfn, (gva >>> 12) & 0x3ff, w.l1Gpte);
    }
  }
  if (flush) sps.flushRemoteTlbs();
  vm.mmuLock.unlock();

  if (!vm.spteOwnsPage() || sameMapping) releasePfn(vm, pfn);
  stats.pfFixed++;
  if (vm.tracing()) vm.trace({ type: 'fault', vcpu: vcpu.id, gva, gfn, pfn, result: 'fixed' });
  return 'fixed';
}

// Counterpart: the hardware page walker of a shadow-paging CPU walking KVM's sptes
// (what the MMU does with the root KVM loaded into cr3), plus vcpu->arch.mmio_gva
// (arch/x86/kvm/x86.h vcpu_cache_mmio_info / vcpu_clear_mmio_info)
//
// The hart asks on every soft-TLB miss. Answer, in this order:
//   a fetch from a guest-debug page   -> TRANSLATE_EXIT with debugExit (vcpu.setGuestDebug)
//   gva is the cached MMIO page       -> TRANSLATE_MMIO (set by the fault path for a
//                                        gpa outside RAM, or a store to a read-only slot)
//   paging off, gpa in no memslot     -> TRANSLATE_MMIO (fetch: access fault)
//   root stale or a sync pending      -> TRANSLATE_EXIT (the fault path loads it)
//   present leaf spte that allows the access at the current privilege
//                                     -> mark A (D on a store), return pfn << 12
//   anything else                     -> record the fault, TRANSLATE_EXIT
// Nothing here allocates or takes mmu_lock: like a hardware walker it reads sptes
// while others may change them, which is safe because every change that removes or
// narrows a spte flushes the soft TLBs before mmu_lock is dropped, and a hart step
// never interleaves with another thread's critical section.
//
// Permissions: a spte carries the guest pte's R/W/X/U (W only when writable for
// the host, the memslot and the guest's dirty bit). U, SUM and MXR are checked here
// against the live hart state on every fill, so the shadow page role needs no
// permission context (role ctx = 0), and the hart flushes its TLB whenever priv,
// SUM or MXR change.
//
// Guest page-table changes become visible at sfence.vma and satp writes (the RISC-V
// spec allows a hart to keep using stale translations until then). sfenceVma and
// satpChanged only record the request; the vCPU thread applies it under mmu_lock
// before the next translation (see fault.ts kvmMmuSyncLocked), and until then every miss
// exits.

import type { Hart } from '../../hart/hart.js';
import { MSTATUS_MXR, MSTATUS_SUM, PRIV_M, PRIV_S, PRIV_U } from '../../hart/csr.js';
import { CAUSE_FETCH_ACCESS } from '../../hart/sv32.js';
import { ACCESS_FETCH, ACCESS_STORE, TRANSLATE_EXIT, TRANSLATE_FAULT, TRANSLATE_MMIO } from '../../hart/translator.js';
import type { Translator } from '../../hart/translator.js';
import type { Vm } from '../vm.js';
import { SPTE_PRESENT, SPTE_R, SPTE_U, SPTE_W, SPTE_X } from './spte.js';
import { ROLE_DIRECT } from './shadow-pages.js';

/** rootKey of the direct (paging off) root; an Sv32 root's key is the guest root table gfn. */
export const ROOT_KEY_DIRECT = -1;
/** sfence.vma of single addresses remembered before falling back to a full sync. */
const MAX_SYNC_GVAS = 16;

export class ShadowTranslator implements Translator {
  lastPa = 0;
  lastSuperpage = false;

  /** Shadow root this vCPU translates through (held with getRoot), or -1. */
  root = -1;
  rootKey = Number.NaN;

  /**
   * Guest-debug fetch pages (vcpu.setGuestDebug): a fetch from one of these gva
   * pages but debugSkipPage exits with debugExit set instead of filling the TLB,
   * so the debugger sees pc before that instruction begins.
   */
  debugFetchPages: ReadonlySet<number> | null = null;
  debugSkipPage = -1;
  debugExit = false;

  /** The miss the fault path must resolve (set whenever translate returns EXIT). */
  faultGva = 0;
  faultAccess = 0;
  faultPriv = 0;

  /** Pending sfence.vma work: a full sync, or these gva pages. */
  syncAll = false;
  /** With syncAll: the one ASID whose every address the fence covers, or -1 for all of them. */
  syncAsid = -1;
  readonly syncGvas: number[] = [];
  sfenceCalls = 0;
  satpCalls = 0;

  /** One cached MMIO translation (gva page -> gpa page), valid for one memslot generation. */
  private mmioGvaPage = -1;
  private mmioGpaPage = 0;
  private mmioAccess = -1;
  private mmioPriv = -1;
  /** SUM/MXR the cached walk was checked under. */
  private mmioStatus = 0;
  private mmioGen = -1;

  private readonly sptes: Int32Array;
  private readonly roles: Int32Array;

  constructor(readonly vm: Vm) {
    this.sptes = vm.sps.sptes;
    this.roles = vm.sps.role;
  }

  /** The root key the hart's current state needs for an access of this kind. */
  static rootKeyFor(hart: Hart, priv: number): number {
    return priv !== PRIV_M && hart.satp < 0 ? hart.satp & 0x3fffff : ROOT_KEY_DIRECT;
  }

  translate(hart: Hart, gva: number, access: number): number {
    const priv = hart.effectivePriv(access);
    const paging = priv !== PRIV_M && hart.satp < 0;
    this.lastSuperpage = false;
    if (access === ACCESS_FETCH && this.debugFetchPages !== null && this.debugFetchPages.has(gva >>> 12) && gva >>> 12 !== this.debugSkipPage) {
      this.debugExit = true;
      return TRANSLATE_EXIT;
    }
    if (
      (gva & ~0xfff) === this.mmioGvaPage &&
      access === this.mmioAccess &&
      priv === this.mmioPriv &&
      (hart.mstatus & (MSTATUS_SUM | MSTATUS_MXR)) === this.mmioStatus &&
      this.mmioGen === this.vm.memslots.generation
    ) {
      this.lastPa = this.mmioGpaPage * 4096 + (gva & 0xfff);
      return TRANSLATE_MMIO;
    }
    if (!paging && this.vm.memslots.gfnToMemslot(gva >>> 12) === undefined) {
      // Paging off: gpa = gva. A gpa no memslot backs is the VMM's (KVM_EXIT_MMIO).
      if (access === ACCESS_FETCH) {
        hart.raiseFault(CAUSE_FETCH_ACCESS, gva);
        return TRANSLATE_FAULT;
      }
      this.lastPa = gva >>> 0;
      return TRANSLATE_MMIO;
    }

    const root = this.root;
    const key = paging ? hart.satp & 0x3fffff : ROOT_KEY_DIRECT;
    if (root < 0 || key !== this.rootKey || this.syncAll || this.syncGvas.length > 0 || !this.vm.sps.isActive(root)) {
      return this.exit(gva, access, priv);
    }
    const sptes = this.sptes;
    const l1 = sptes[root * 1024 + (gva >>> 22)]!;
    if ((l1 & (SPTE_PRESENT | SPTE_R | SPTE_W | SPTE_X)) !== SPTE_PRESENT) return this.exit(gva, access, priv);
    const child = l1 >>> 9;
    const sptep = child * 1024 + ((gva >>> 12) & 0x3ff);
    const spte = sptes[sptep]!;
    if ((spte & SPTE_PRESENT) === 0) return this.exit(gva, access, priv);
    let ok: boolean;
    if (access === ACCESS_FETCH) ok = (spte & SPTE_X) !== 0;
    else if (access === ACCESS_STORE) ok = (spte & SPTE_W) !== 0;
    else ok = (spte & SPTE_R) !== 0 || ((hart.mstatus & MSTATUS_MXR) !== 0 && (spte & SPTE_X) !== 0);
    if (paging) {
      if ((spte & SPTE_U) !== 0) {
        if (priv === PRIV_S && (access === ACCESS_FETCH || (hart.mstatus & MSTATUS_SUM) === 0)) ok = false;
      } else if (priv === PRIV_U) {
        ok = false;
      }
    }
    // Not allowed by the spte: the guest pte may deny it (inject), or the spte is only
    // narrower than the guest pte (clean gpte, host page read-only): the walk decides.
    if (!ok) return this.exit(gva, access, priv);
    this.vm.sps.spteMarkAccessed(sptep, access === ACCESS_STORE);
    // A guest megapage is shadowed by a direct level 0 page: let a single-address
    // sfence.vma drop all its 4 KiB TLB pieces.
    this.lastSuperpage = paging && (this.roles[child]! & ROLE_DIRECT) !== 0;
    const pfn = spte >>> 9;
    this.lastPa = pfn * 4096 + (gva & 0xfff);
    return pfn << 12;
  }

  private exit(gva: number, access: number, priv: number): number {
    this.faultGva = gva;
    this.faultAccess = access;
    this.faultPriv = priv;
    return TRANSLATE_EXIT;
  }

  /** Hart hook: after the hart flushed its own TLB for sfence.vma. */
  sfenceVma(_hart: Hart, gva: number | null, asid: number | null): void {
    this.sfenceCalls++;
    this.clearMmioInfo();
    const oneAsid = asid === null ? -1 : asid & 0x1ff;
    if (gva === null && oneAsid >= 0 && (!this.syncAll || this.syncAsid === oneAsid)) {
      // Every address of one ASID: the one-address requests pending stay (they are for other ASIDs too).
      this.syncAll = true;
      this.syncAsid = oneAsid;
    } else if (gva === null || this.syncGvas.length >= MAX_SYNC_GVAS) {
      this.syncAll = true;
      this.syncAsid = -1;
      this.syncGvas.length = 0;
    } else if (!this.syncAll || this.syncAsid >= 0) {
      this.syncGvas.push(gva & ~0xfff);
    }
  }

  /** Hart hook: satp was written. The next miss finds the root key changed. */
  satpChanged(_hart: Hart, _satp: number): void {
    this.satpCalls++;
    this.clearMmioInfo();
  }

  /** vcpu_cache_mmio_info. */
  cacheMmioInfo(hart: Hart, gva: number, gpaPage: number, access: number, priv: number): void {
    this.mmioStatus = hart.mstatus & (MSTATUS_SUM | MSTATUS_MXR);
    this.mmioGvaPage = gva & ~0xfff;
    this.mmioGpaPage = gpaPage;
    this.mmioAccess = access;
    this.mmioPriv = priv;
    this.mmioGen = this.vm.memslots.generation;
  }

  /** vcpu_clear_mmio_info. */
  clearMmioInfo(): void {
    this.mmioGvaPage = -1;
    this.mmioGen = -1;
  }

  /** kvm_mmu_unload; caller holds mmu_lock. */
  dropRoot(): void {
    if (this.root >= 0) this.vm.sps.putRoot(this.root);
    this.root = -1;
    this.rootKey = Number.NaN;
  }
}

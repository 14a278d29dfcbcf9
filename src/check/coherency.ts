// Counterpart (in spirit): arch/x86/kvm/mmu_audit.c (audit_mappings, audit_sptes_have_rmaps)
// extended across the layer boundary: KVM's sptes and the vCPUs' soft TLBs held
// against the host's frames and page tables.
//
// Invariants, and when each must hold:
//   (A) the shadow pages are self-consistent (sptes <-> rmaps <-> parents): always
//       between steps (ShadowPages methods never yield under mmu_lock);
//   (B) no leaf spte maps a free frame, or a frame mapped by another mm: always,
//       every protocol (a spte over such a frame lets the guest read or write memory
//       that is not its own). After fork a page shared copy-on-write is the VM's as
//       long as the VM's mm is among the mms mapping it (its anon_vma fork tree, as
//       rmap_walk walks it), whichever one the frame's rmap names; once do_wp_page
//       or reclaim moved the VM's pte off it, a spte still over it reaches the memory
//       of the mms that kept it, and the report names them;
//   (C) modern and v7, outside critical sections (no invalidation in progress and
//       mmu_lock free): a present leaf spte maps the pfn the host pte of its hva maps,
//       and is writable only if that host pte is. (v7 qualifies because 2008's
//       invalidate_page zaps in the same atomic step that clears the host pte.) Pin
//       mode has no notifier: after MADV_DONTNEED its sptes legitimately disagree;
//   (D) v7/pin: each leaf spte owns a reference (v7) or a pin: the frame holds at
//       least that many;
//   (E) every soft-TLB entry of every vCPU is backed by a present leaf spte of the
//       vCPU's current root, for the same frame, allowing that access kind. MMIO is
//       never cached, so nothing else may be there.
// Read-only, allocation-light but O(active shadow pages * 1024): for tests, torture
// and the console, typically after every scheduler step of a small scenario.

import { GUP_PIN_COUNTING_BIAS, PG_free } from '../host/frames.js';
import type { HostDebugView } from '../host/debug-view.js';
import { PAGE_SHIFT, PAGE_SIZE, PTE_WRITE, ptePfn, ptePresent } from '../host/pte.js';
import { MSTATUS_MXR } from '../hart/csr.js';
import { RMAP_CHUNK_SHIFT, gfnToHva } from '../kvm/memslots.js';
import { SPTES_PER_PAGE, roleLevel } from '../kvm/mmu/shadow-pages.js';
import { SPTE_PRESENT, SPTE_R, SPTE_W, SPTE_X, isLeafSpte, isNonLeafSpte, isWritable, spteChild, sptePfn } from '../kvm/mmu/spte.js';
import type { Vm } from '../kvm/vm.js';

export interface CoherencyOptions {
  /** Include the full ShadowPages audit (A); default true. */
  mmu?: boolean;
  /** Stop after this many problems (default 50). */
  limit?: number;
}

/** Whether the VM is outside every critical section where sptes and host ptes may disagree. */
export function vmQuiescent(vm: Vm): boolean {
  return vm.mmuInvalidateInProgress === 0 && vm.mmuLock.holder === null;
}

/** host: the debug view of the kernel behind vm.host (hostDebugView(k)); the Vm itself has none. */
export function auditCoherency(vm: Vm, host: HostDebugView, opts: CoherencyOptions = {}): string[] {
  const limit = opts.limit ?? 50;
  const problems: string[] = opts.mmu === false ? [] : vm.auditMmu().map((p) => `mmu: ${p}`);
  const report = (msg: string): void => {
    if (problems.length < limit) problems.push(msg);
  };
  const sps = vm.sps;
  const frames = host.frames;
  const mm = vm.mm;
  const coherent = vm.protocol !== 'pin' && vmQuiescent(vm) && !mm.dead;
  const owned = vm.protocol === 'pin' ? GUP_PIN_COUNTING_BIAS : 1;
  const perPfn = vm.protocol === 'modern' ? null : new Map<number, number>();

  for (const sp of sps.lruOrder()) {
    if (roleLevel(sps.role[sp]!) !== 0) continue;
    const base = sp * SPTES_PER_PAGE;
    for (let i = 0; i < SPTES_PER_PAGE; i++) {
      const spte = sps.sptes[base + i]!;
      if (!isLeafSpte(spte)) continue;
      const pfn = sptePfn(spte);
      const gfn = sps.spteGfn[base + i]!;
      const what = `spte sp ${sp}[${i}] (gfn 0x${gfn.toString(16)} -> pfn ${pfn})`;
      if (pfn >= frames.nrFrames) {
        report(`${what}: pfn beyond host RAM`);
        continue;
      }
      if (frames.flags[pfn]! & PG_free) report(`${what}: maps a free frame`);
      else if (frames.mapcount[pfn]! > 0) {
        // An anon page sits at the same hva in every mm of its fork tree: the VM's mm
        // is among its mappers exactly when its own pte there maps it. (rmapMm names
        // the last mm to map the page, which after a COW copy may be one that no
        // longer does.) Only a spte that fails this pays for the walk, for the report.
        const pte = host.followPte(mm, frames.rmapHvaPage[pfn]! * PAGE_SIZE);
        if (!ptePresent(pte) || ptePfn(pte) !== pfn) {
          const mappers = host.pageMappers(pfn);
          report(`${what}: maps a frame of another mm (${mappers.length > 0 ? mappers.map((m) => `mm${m.id}`).join(', ') : `mm${frames.rmapMm[pfn]}, by its rmap`})`);
        }
      }
      if (perPfn !== null) perPfn.set(pfn, (perPfn.get(pfn) ?? 0) + 1);
      if (!coherent) continue;
      const slot = vm.memslots.gfnToMemslot(gfn);
      if (slot === undefined) continue; // (A) reports it
      const hva = gfnToHva(slot, gfn);
      const hpte = host.followPte(mm, hva);
      if (!ptePresent(hpte)) report(`${what}: host pte of hva 0x${(hva >>> 0).toString(16)} is not present`);
      else if (ptePfn(hpte) !== pfn) report(`${what}: host pte of hva 0x${(hva >>> 0).toString(16)} maps pfn ${ptePfn(hpte)}`);
      else if (isWritable(spte) && (hpte & PTE_WRITE) === 0) report(`${what}: writable, host pte read-only`);
    }
  }
  if (perPfn !== null) {
    for (const [pfn, n] of perPfn) {
      if (frames.gupRefs[pfn]! < n * owned) {
        report(`pfn ${pfn}: mapped by ${n} spte(s) that each own a ${vm.protocol === 'pin' ? 'pin' : 'reference'}, but gup refs are ${frames.gupRefs[pfn]}`);
      }
    }
  }

  for (const slot of vm.memslots.all()) {
    const chunks = new Uint16Array(slot.rmapChunkUsed.length);
    for (let i = 0; i < slot.npages; i++) if (slot.rmap[i] !== 0) chunks[i >>> RMAP_CHUNK_SHIFT]!++;
    if (chunks.some((n, c) => n !== slot.rmapChunkUsed[c])) report(`slot ${slot.id}: rmap chunk counts drifted from the heads`);
  }

  for (const v of vm.vcpus) {
    const h = v.hart;
    const root = v.translator.root;
    const kinds: Array<[string, Int32Array, Int32Array, number]> = [
      ['fetch', h.fetchTag, h.fetchDelta, SPTE_X],
      ['load', h.loadTag, h.loadDelta, SPTE_R],
      ['store', h.storeTag, h.storeDelta, SPTE_W],
    ];
    for (const [kind, tag, delta, need] of kinds) {
      for (let i = 0; i < tag.length; i++) {
        const gva = tag[i]!;
        if (gva === -1) continue;
        const hostOffset = (gva + delta[i]!) | 0;
        const pfn = hostOffset >>> PAGE_SHIFT;
        const what = `vcpu ${v.id} ${kind} TLB gva 0x${(gva >>> 0).toString(16)} -> pfn ${pfn}`;
        if (pfn < frames.nrFrames && frames.flags[pfn]! & PG_free) report(`${what}: a free frame`);
        if (root < 0 || !sps.isActive(root)) {
          report(`${what}: no active root backs it`);
          continue;
        }
        const l1 = sps.sptes[root * SPTES_PER_PAGE + (gva >>> 22)]!;
        const spte = isNonLeafSpte(l1) ? sps.sptes[spteChild(l1) * SPTES_PER_PAGE + ((gva >>> 12) & 0x3ff)]! : 0;
        if ((spte & SPTE_PRESENT) === 0 || !isLeafSpte(spte)) report(`${what}: no present spte backs it`);
        else if (sptePfn(spte) !== pfn) report(`${what}: the spte maps pfn ${sptePfn(spte)}`);
        else {
          const allows = (spte & need) !== 0 || (need === SPTE_R && (h.mstatus & MSTATUS_MXR) !== 0 && (spte & SPTE_X) !== 0);
          if (!allows) report(`${what}: the spte does not allow ${kind}`);
        }
      }
    }
  }
  return problems;
}

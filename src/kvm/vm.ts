// Counterpart: virt/kvm/kvm_main.c (struct kvm: kvm_create_vm, kvm_set_memory_region,
// kvm_destroy_vm, kvm_flush_remote_tlbs; the mmu_invalidate_* fields of kvm_host.h)
//
// A VM belongs to one host process (the VMM's): guest RAM is anonymous memory of that
// process, reached through memslots (gfn -> hva) and get_user_pages (hva -> pfn).
// KVM holds the host only as a SecondaryMmuHost (src/host/secondary-mmu.ts), the calls
// include/linux gives a driver: hva_to_pfn is get_user_pages or the gup-fast probe,
// kvm_set_pfn_dirty/accessed are set_page_dirty/mark_page_accessed, and the notifier
// is its only view of host page-table changes. Audits and the console that hold sptes
// against host ptes take a HostDebugView beside the Vm (src/check, src/kvm/inspect.ts).
//
// Protocols (one switch; DESIGN.md "Protocol variants"):
//   pin     no notifier. Each leaf spte owns a pin (pin_user_pages) on its page, given
//           back only when KVM itself zaps the spte. Reclaim skips pinned pages, so
//           guest RAM is unswappable and pressure ends in the host's OOM killer.
//   v7      the 2008 notifier (Linux 2.6.27): invalidate_page, range_start/end as the
//           2008 core delivers them, age_page, release. Each leaf spte owns a GUP
//           reference, dropped when the spte is zapped (then the page can be freed).
//   modern  range_start/end + the sequence retry; sptes own nothing: the notifier
//           alone keeps them coherent.
//
// mmu_lock (a spinlock) guards the shadow pages, the rmaps and the mmu_invalidate_*
// fields. No critical section under it yields, so the notifier callbacks that may
// not sleep (invalidate_page, clear_flush_young under the host PT lock) can take it
// with tryLock and always get it.
//
// Memslot updates (KVM_SET_USER_MEMORY_REGION) are serialized by slots_lock, wait
// until no invalidation is active (mn_active_invalidate_count == 0, so a range_end
// always sees the memslots its range_start saw), and publish the new set under
// mmu_lock together with the zap of a deleted or moved slot: a fault that resolved
// a gfn through the old set sees the generation move and retries.
//
// Teardown (release from exit or unregister, destroy) may fall between a range_start
// and its range_end, which the unhashed notifier then never delivers: release
// balances the invalidation counters itself and wakes their waiters
// (mmuInvalidateAbandonLocked), so no teardown path leaves a memslot update or a
// fault waiting for an invalidation that has no end.

import type { EventEmitter } from 'eventemitter3';
import type { Mm, Process } from '../host/mm.js';
import type { MmuNotifier } from '../host/mmu-notifier.js';
import type { SecondaryMmuHost } from '../host/secondary-mmu.js';
import type { MmioBus } from '../hart/translator.js';
import type { JitOptions } from '../hart/jit/jit.js';
import { Mutex, SpinLock, WaitQueue } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { Memslots } from './memslots.js';
import type { MemslotChange, UserMemoryRegion } from './memslots.js';
import { auditMmu } from './mmu/audit.js';
import { kvmMmuNotifierOps } from './mmu/notifier.js';
import { forEachRmap } from './mmu/rmap.js';
import { sptePfn } from './mmu/spte.js';
import { ShadowPages } from './mmu/shadow-pages.js';
import { KvmStats } from './stats.js';
import { Vcpu } from './vcpu.js';

export type KvmProtocol = 'pin' | 'v7' | 'modern';

export interface VmOptions {
  protocol: KvmProtocol;
  /** n_max_mmu_pages (default 256). */
  nMaxMmuPages?: number;
  /** Trace bus ('kvm' channel); zero cost with no listener. */
  events?: EventEmitter;
}

/**
 * Test-only switches, one per mechanism that closes a race, so a test can show the
 * race happens without it. All false in production.
 */
export interface VmDebug {
  /** The fault path installs even when an invalidation ran since its snapshot. */
  noRetry: boolean;
  /** The retry check ignores mmu_invalidate_seq (only an invalidation still in progress retries). */
  noSeqRecheck: boolean;
  /** The fault path ignores mmu_invalidate_in_progress (only a moved sequence retries). */
  noInProgressCheck: boolean;
  /** range_start zaps nothing; range_end zaps, after the host ptes changed (the 2008 seed's order). */
  noRangeStartZap: boolean;
  /** v7: a leaf spte owns no page reference (get_user_pages' reference is dropped at install). */
  noPageRef: boolean;
  /** pin: a leaf spte owns no pin (unpinned at install), so reclaim may take a mapped page. */
  /** Skip FNAME(pte_prefetch): fill only the faulting spte. */
  noPrefetch: boolean;
  noPin: boolean;
  /**
   * A memslot update does not wait for mn_active_invalidate_count to drop to 0, so a
   * range_end may meet other memslots than its range_start did.
   */
  noMemslotWait: boolean;
  /** range_start drops mmu_lock without flushing the vCPU TLBs; range_end flushes. */
  noFlushBeforeUnlock: boolean;
  /** A new leaf spte is not added to its gfn's rmap: invalidations cannot find it. */
  noRmapAdd: boolean;
  /** A dropped leaf spte stays in its gfn's rmap. */
  noRmapRemove: boolean;
  /** Zapping a dirty spte does not mark the host page dirty. */
  noDirtyCarry: boolean;
  /** Aging reports young sptes without clearing their accessed bit. */
  noAgeClear: boolean;
  /** Aging clears accessed bits but leaves the vCPU TLB entries that would set them again. */
  noAgeFlush: boolean;
  /** A dropped leaf spte leaves the compiled code of its frame in the vCPUs' translation caches. */
  noCodeDrop: boolean;
  /** The walker's A/D write into a guest pte leaves the compiled code of that table page. */
  noGpteCodeInvalidate: boolean;
  /** release bumps the sequence but zaps nothing. */
  noReleaseZap: boolean;
  /**
   * release (and destroy) leave the invalidation counters as they are, and the
   * handlers keep counting after release: an invalidate_range_start whose range_end
   * the unhashed subscription never gets keeps mn_active_invalidate_count and
   * mmu_invalidate_in_progress up for ever (see mmuInvalidateAbandonLocked).
   */
  noReleaseBalance: boolean;
  /**
   * A point where a test may park the faulting vCPU thread (after get_user_pages,
   * before mmu_lock) to force an interleaving that sleeping threads would otherwise
   * let the vCPU skip.
   */
  afterGup: ((vcpu: Vcpu) => Task) | null;
}

export type KvmEvent =
  | { type: 'fault'; vcpu: number; gva: number; gfn: number; pfn: number; result: string }
  | { type: 'invalidate'; gfnStart: number; gfnEnd: number; zapped: boolean }
  | { type: 'invalidate-page'; gfn: number }
  | { type: 'age'; young: boolean }
  | { type: 'release' }
  | { type: 'memslot'; kind: string; slot: number; generation: number };

let nextVmId = 1;

export class Vm {
  readonly id: number;
  readonly host: SecondaryMmuHost;
  readonly proc: Process;
  readonly mm: Mm;
  readonly protocol: KvmProtocol;
  readonly events: EventEmitter | null;
  readonly stats = new KvmStats();
  readonly memslots = new Memslots();
  readonly sps: ShadowPages;
  readonly mmuLock: SpinLock;
  readonly slotsLock: Mutex;
  readonly vcpus: Vcpu[] = [];
  readonly debug: VmDebug = {
    noRetry: false,
    noSeqRecheck: false,
    noInProgressCheck: false,
    noRangeStartZap: false,
    noPageRef: false,
    noPin: false,
    noPrefetch: false,
    noMemslotWait: false,
    noFlushBeforeUnlock: false,
    noRmapAdd: false,
    noRmapRemove: false,
    noDirtyCarry: false,
    noAgeClear: false,
    noAgeFlush: false,
    noReleaseZap: false,
    noReleaseBalance: false,
    noCodeDrop: false,
    noGpteCodeInvalidate: false,
    afterGup: null,
  };

  /** Bumped at the end of every invalidation; a fault compares its snapshot. */
  mmuInvalidateSeq = 0;
  /** Invalidations between range_start and range_end that hit a memslot. */
  mmuInvalidateInProgress = 0;
  /** gfn range of the invalidations in progress, widened to their union: [start, end). */
  mmuInvalidateRangeStart = 0;
  mmuInvalidateRangeEnd = 0;
  /** range_starts (any hva) whose range_end has not run: memslot updates wait for 0. */
  mnActiveInvalidateCount = 0;
  readonly mnInvalidateWait: WaitQueue;
  /** The notifier's release ran (or the VM was destroyed): no new spte may appear. */
  released = false;
  /** The vCPU that ran guest code last (Vcpu.run breaks LR reservations on a switch). */
  lastRanVcpu: Vcpu | null = null;
  destroyed = false;
  notifier: MmuNotifier | null = null;
  /** The host's direct map as int32 words, for reading and A/D-updating guest ptes of pages KVM holds. */
  readonly ram32: Int32Array;
  /** range_start flushes deferred to range_end (only with debug.noFlushBeforeUnlock). */
  deferredFlush = false;

  private constructor(host: SecondaryMmuHost, proc: Process, opts: VmOptions) {
    this.id = nextVmId++;
    this.host = host;
    this.proc = proc;
    this.mm = proc.mm;
    this.protocol = opts.protocol;
    this.events = opts.events ?? null;
    this.mmuLock = new SpinLock(`kvm${this.id}.mmu_lock`, { lockClass: 'kvm.mmu_lock' });
    this.slotsLock = new Mutex(`kvm${this.id}.slots_lock`, { lockClass: 'kvm.slots_lock' });
    this.mnInvalidateWait = new WaitQueue(`kvm${this.id}.mn_invalidate`);
    this.ram32 = new Int32Array(host.directMap);
    this.sps = new ShadowPages(
      this.memslots,
      {
        flushRemoteTlbs: () => this.flushRemoteTlbs(),
        onSpteClear: (pfn, dirty, accessed) => {
          // The page is still allocated: modern sptes are zapped before the host pte
          // changes, v7/pin sptes own a reference. A free frame here is our bug
          // (mmu_spte_clear_track_bits' WARN_ON_ONCE(!page_count(page))).
          if (host.pageCount(pfn) === 0) {
            this.warn(`spte cleared over free pfn ${pfn}`);
            return;
          }
          // kvm_set_pfn_dirty / kvm_set_pfn_accessed: before the host pte is cleared,
          // so reclaim cannot judge a page the guest wrote as clean.
          if (dirty && !this.debug.noDirtyCarry) host.setPageDirty(pfn);
          if (accessed) host.markPageAccessed(pfn);
        },
        onLeafSpteDrop: (pfn) => {
          // The vCPUs' compiled code is one more cache of guest memory, and lives no
          // longer than a spte that maps its frame: once the last one goes the host
          // may free the frame (DONTNEED, swap-out) and hand it to anyone, who fills
          // it with bytes no vCPU store made. Every host change of a guest page zaps
          // its sptes first (range_start, invalidate_page, release; v7 and pin sptes
          // hold the page until here).
          if (!this.debug.noCodeDrop) for (const v of this.vcpus) v.hart.dropCodeHostPage(pfn << 12);
          if (opts.protocol === 'v7') void (this.spteOwnsPage() && host.putPage(pfn));
          else if (opts.protocol === 'pin') void (this.spteOwnsPage() && host.unpinUserPage(pfn));
        },
      },
      this.stats,
      { nMaxMmuPages: opts.nMaxMmuPages ?? 256, debug: this.debug },
    );
  }

  /** KVM_CREATE_VM. Registers the notifier (v7 needs an mm of era '2008', modern of 'modern'). */
  static *create(host: SecondaryMmuHost, proc: Process, opts: VmOptions): Task<Vm> {
    const vm = new Vm(host, proc, opts);
    if (opts.protocol !== 'pin') {
      const want = opts.protocol === 'v7' ? '2008' : 'modern';
      if (proc.mm.era !== want) {
        throw new Error(
          `Vm.create: protocol '${opts.protocol}' needs a process of notifier era '${want}', ` +
            `but '${proc.name}' is '${proc.mm.era}': createProcess(name, { era: '${want}' })`,
        );
      }
      vm.notifier = yield* host.mmuNotifierRegister(proc.mm, `kvm${vm.id}`, kvmMmuNotifierOps(vm));
      if (vm.notifier === null) throw new Error(`Vm.create: process '${proc.name}' has already exited`);
    }
    return vm;
  }

  // ---- memslots ----------------------------------------------------------------------

  /** KVM_SET_USER_MEMORY_REGION. Throws MemslotError (nothing changed) on a bad region. */
  *setUserMemoryRegion(region: UserMemoryRegion): Task<MemslotChange> {
    yield* this.slotsLock.lock();
    try {
      for (;;) {
        yield* this.mnInvalidateWait.waitEvent(() => this.mnActiveInvalidateCount === 0 || this.debug.noMemslotWait);
        yield* this.mmuLock.lock();
        if (this.mnActiveInvalidateCount === 0 || this.debug.noMemslotWait) break;
        this.mmuLock.unlock();
      }
      let change: MemslotChange;
      try {
        change = this.memslots.setUserMemoryRegion(region);
        // kvm_arch_flush_shadow_memslot: nothing may keep translating through the old
        // slot once the lock drops (zapMemslot flushes before returning).
        if (change.kind === 'delete' || change.kind === 'move') this.sps.zapMemslot(change.old);
        for (const v of this.vcpus) v.translator.clearMmioInfo();
      } finally {
        this.mmuLock.unlock();
      }
      this.trace({ type: 'memslot', kind: change.kind, slot: region.slot, generation: change.generation });
      return change;
    } finally {
      this.slotsLock.unlock();
    }
  }

  // ---- vCPUs ---------------------------------------------------------------------------

  /**
   * KVM_CREATE_VCPU. The hart's memory is the host frame buffer: a host offset is
   * pfn << 12. `jit`: the hart runs hot guest code through its block compiler.
   */
  createVcpu(id: number, opts: { bus: MmioBus; jit?: JitOptions }): Vcpu {
    if (this.destroyed) throw new Error(`Vm.createVcpu: vm ${this.id} is destroyed`);
    if (this.vcpus.some((v) => v.id === id)) throw new Error(`Vm.createVcpu: vcpu ${id} already exists`);
    const v = new Vcpu(this, id, opts.bus, opts.jit);
    this.vcpus.push(v);
    return v;
  }

  /**
   * Userspace wrote guest memory at [gpa, gpa + len) through its own mapping (a
   * device's DMA, the SBI firmware): the vCPUs' compiled code of those pages goes,
   * as a guest store's would. Compiled code lives no longer than a spte that maps
   * its frame (onLeafSpteDrop), so the frames that can hold any are the ones the
   * gfns' rmaps name. Synchronous: atomic with the fault path and the notifier
   * handlers, as a walk under mmu_lock is.
   */
  invalidateGuestCode(gpa: number, len: number): void {
    if (len <= 0 || !this.vcpus.some((v) => v.hart.jit !== null)) return;
    for (let gfn = Math.floor(gpa / 4096); gfn * 4096 < gpa + len; gfn++) {
      const slot = this.memslots.gfnToMemslot(gfn);
      if (slot === undefined) continue;
      forEachRmap(this.sps.pool, slot.rmap, gfn - slot.baseGfn, (sptep) => {
        const pfn = sptePfn(this.sps.spteAt(sptep));
        for (const v of this.vcpus) v.hart.invalidateCode(pfn * 4096, 4096);
      });
    }
  }

  /** kvm_flush_remote_tlbs: every vCPU drops every soft TLB entry filled from sptes. */
  flushRemoteTlbs(): void {
    for (const v of this.vcpus) v.hart.flushTlb();
  }

  /** A WARN_ON_ONCE: counted, tests assert none. */
  warn(message: string): void {
    this.stats.warnings++;
    if (this.stats.warnings <= 10) this.warnings.push(message);
  }
  readonly warnings: string[] = [];

  /** Guard trace() calls with this, so the event object is only built for a listener. */
  tracing(): boolean {
    return this.events !== null && this.events.listenerCount('kvm') > 0;
  }

  trace(ev: KvmEvent): void {
    if (this.tracing()) this.events!.emit('kvm', ev);
  }

  /**
   * Whether the notifier handlers still count invalidations: until release. After it
   * the handlers may still be called (until the subscription is unhashed) but count
   * nothing, so no range_end can be owed past the reset in mmuInvalidateAbandonLocked.
   */
  mnInvalidateTracked(): boolean {
    return !this.released || this.debug.noReleaseBalance;
  }

  /**
   * The end of invalidation tracking, at release (and again at destroy, where the
   * kernel does it). Caller holds mmu_lock and has set `released`.
   *
   * The race (kvm_destroy_vm's comment on mn_active_invalidate_count): a host range
   * zap has run our invalidate_range_start (mn_active_invalidate_count and
   * mmu_invalidate_in_progress raised) when mmu_notifier_unregister or exit_mmap's
   * mmu_notifier_release unhashes the subscription; its range_end then never reaches
   * us. Both counters would stay up for ever: a memslot update waits on mn_invalidate
   * for ever holding slots_lock, and a fault on a gfn of the range backs off for ever.
   * kvm_destroy_vm resets mn_active_invalidate_count after unregister, when no
   * notifier can run any more (and WARNs on a stray mmu_invalidate_in_progress). We
   * reset both here, earlier, because our VMM threads outlive exit_mmap and keep
   * calling KVM (in Linux no ioctl gets past kvm->mm != current->mm then), so exit
   * and the OOM killer's exit must leave the counters balanced too, not only destroy.
   * Resetting while callbacks may still run is safe because, from `released` on, the
   * handlers count nothing (mnInvalidateTracked): a range_end of a range started
   * before is dropped with the count it would have lowered; a range started after is
   * never counted. Nothing needs the counters afterwards: release zapped every spte,
   * and no fault installs one once `released` is set.
   */
  mmuInvalidateAbandonLocked(): void {
    if (this.debug.noReleaseBalance) return;
    this.mmuInvalidateInProgress = 0;
    this.mmuInvalidateRangeStart = 0;
    this.mmuInvalidateRangeEnd = 0;
    this.mnActiveInvalidateCount = 0;
    // range_start flushed before it returned unless the debug switch deferred it; release zapped and flushed.
    this.deferredFlush = false;
    // kvm_swap_active_memslots' waiters (slots_lock held) would otherwise sleep for ever.
    this.mnInvalidateWait.wakeAll();
  }

  /** Whether a leaf spte owns a reference (v7) or a pin (pin) on its page. */
  spteOwnsPage(): boolean {
    return this.protocol === 'v7' ? !this.debug.noPageRef : this.protocol === 'pin' && !this.debug.noPin;
  }

  /** Retry check of the fault path (mmu_invalidate_retry_gfn); caller holds mmu_lock. */
  mmuInvalidateRetryGfn(mmuSeq: number, gfn: number): boolean {
    if (!this.debug.noInProgressCheck && this.mmuInvalidateInProgress > 0 && gfn >= this.mmuInvalidateRangeStart && gfn < this.mmuInvalidateRangeEnd) return true;
    return !this.debug.noSeqRecheck && this.mmuInvalidateSeq !== mmuSeq;
  }

  // ---- lifetime --------------------------------------------------------------------------

  /**
   * kvm_destroy_vm: unregister the notifier (which runs release if exit has not), then
   * drop every spte, every root and every reference or pin they owned.
   */
  *destroy(): Task {
    if (this.destroyed) return;
    if (this.notifier !== null) {
      yield* this.host.mmuNotifierUnregister(this.notifier);
      this.notifier = null;
    }
    yield* this.mmuLock.lock();
    this.released = true;
    this.destroyed = true;
    this.mmuInvalidateSeq++;
    // No notifier runs any more (kvm_destroy_vm after mmu_notifier_unregister). release
    // already balanced the counters (mmuInvalidateAbandonLocked); a count left now is a
    // handler that counted after release, our bug. Reset anyway, as the kernel does.
    if (!this.debug.noReleaseBalance && (this.mnActiveInvalidateCount !== 0 || this.mmuInvalidateInProgress !== 0)) {
      this.warn(`destroy: invalidations left unbalanced after release (active ${this.mnActiveInvalidateCount}, in progress ${this.mmuInvalidateInProgress})`);
    }
    this.mmuInvalidateAbandonLocked();
    for (const v of this.vcpus) v.translator.dropRoot();
    this.sps.zapAll();
    this.mmuLock.unlock();
  }

  // ---- introspection -------------------------------------------------------------------

  /** Consistency of the shadow pages alone (sptes <-> rmaps <-> parents). */
  auditMmu(): string[] {
    return auditMmu(this.memslots, this.sps);
  }

  dump(): string {
    const lines = [
      `vm ${this.id}: protocol ${this.protocol}, process ${this.proc.name} (pid ${this.proc.pid}, mm${this.mm.id} ${this.mm.era})` +
        `${this.released ? ', released' : ''}${this.destroyed ? ', destroyed' : ''}`,
      `mmu_invalidate: seq ${this.mmuInvalidateSeq} in_progress ${this.mmuInvalidateInProgress}` +
        ` range [0x${this.mmuInvalidateRangeStart.toString(16)}, 0x${this.mmuInvalidateRangeEnd.toString(16)})` +
        ` active ${this.mnActiveInvalidateCount}`,
      this.memslots.dump(),
      this.sps.dump(),
      ...this.vcpus.map((v) => v.dump()),
      this.stats.dump(),
    ];
    if (this.warnings.length > 0) lines.push(`warnings: ${this.warnings.join('; ')}`);
    return lines.join('\n');
  }
}

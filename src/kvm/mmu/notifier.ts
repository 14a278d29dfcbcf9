// Counterpart: virt/kvm/kvm_main.c (kvm_mmu_notifier_invalidate_range_start/end,
// kvm_mmu_notifier_invalidate_page (2.6.27-4.12), kvm_mmu_notifier_clear_flush_young,
// clear_young, test_young, release; __kvm_handle_hva_range, kvm_mmu_invalidate_begin/end)
//
// Each handler is one walk: hva range -> gfn ranges of the memslots it meets ->
// one ShadowPages call under mmu_lock. mmu_lock is taken only when a memslot is hit,
// so the host's invalidations of the VMM's other memory cost a slot scan and nothing
// more.
//
// range_start (before the host ptes change): in_progress++, widen the range, zap,
// and flush every vCPU's soft TLB BEFORE unlocking: once the lock drops, the host goes
// on to clear its ptes and, for a zap, free the pages; a TLB entry left behind would
// let the vCPU write into a freed (and maybe reused) frame.
// range_end (after): seq++ then in_progress--, so a fault that snapshot the sequence
// before the start either sees in_progress or a new seq.
// release ends the counting: a subscription unhashed between a range_start and its
// range_end (unregister, exit_mmap) never gets that end, so release resets the
// counters and wakes their waiters, and from then on start and end count nothing
// (vm.ts mmuInvalidateAbandonLocked; kvm_destroy_vm's reset of
// mn_active_invalidate_count is the kernel's half of it).
//
// The handlers that run under the host PT lock (invalidate_page, clear_flush_young /
// age_page) must not sleep; mmu_lock is a spinlock, and no critical section under it
// yields (see vm.ts), so tryLock always succeeds there. A failure would be our bug.
//
// Aging flushes the TLB entries of a young page it clears. x86 does not (its TLB is
// small and refills set A often); our soft TLB is big and only flushed on context
// events, so without the flush a page the guest keeps using would never look young
// again and would be reclaimed as if idle (test/kvm/races.test.ts shows it).

import type { Mm } from '../../host/mm.js';
import type { MmuNotifierOps, MmuNotifierRange } from '../../host/mmu-notifier.js';
import type { Task } from '../../sched/index.js';
import { BUG } from '../bug.js';
import type { Vm } from '../vm.js';

function memslotHit(vm: Vm, start: number, end: number): boolean {
  for (const slot of vm.memslots.all()) {
    const slotEnd = slot.userspaceAddr + slot.npages * 4096;
    if (start < slotEnd && slot.userspaceAddr < end) return true;
  }
  return false;
}

function lockAtomic(vm: Vm, what: string): void {
  if (!vm.mmuLock.tryLock()) BUG(`${what}: mmu_lock is held across a yield by ${vm.mmuLock.holder?.name ?? '?'}`);
}

/** kvm_mmu_invalidate_begin + kvm_unmap_gfn_range for every slot of [start, end). Caller holds mmu_lock. */
function invalidateBeginLocked(vm: Vm, start: number, end: number): boolean {
  let flush = false;
  vm.mmuInvalidateInProgress++;
  let first = true;
  vm.memslots.forEachGfnRangeOfHva(start, end, (slot, gfnStart, gfnEnd) => {
    if (vm.mmuInvalidateInProgress === 1 && first) {
      vm.mmuInvalidateRangeStart = gfnStart;
      vm.mmuInvalidateRangeEnd = gfnEnd;
    } else {
      // Several invalidations (or slots) at once: one range covering all of them,
      // which may retry faults needlessly but never misses one.
      vm.mmuInvalidateRangeStart = Math.min(vm.mmuInvalidateRangeStart, gfnStart);
      vm.mmuInvalidateRangeEnd = Math.max(vm.mmuInvalidateRangeEnd, gfnEnd);
    }
    first = false;
    if (!vm.debug.noRangeStartZap && vm.sps.unmapGfnRange(slot, gfnStart, gfnEnd)) flush = true;
    if (vm.tracing()) vm.trace({ type: 'invalidate', gfnStart, gfnEnd, zapped: flush });
  });
  return flush;
}

/** kvm_unmap_gfn_range for every slot of [start, end), flushing what it zapped. Caller holds mmu_lock. */
function unmapHvaRangeLocked(vm: Vm, start: number, end: number): void {
  let flush = false;
  vm.memslots.forEachGfnRangeOfHva(start, end, (slot, gfnStart, gfnEnd) => {
    if (vm.sps.unmapGfnRange(slot, gfnStart, gfnEnd)) flush = true;
  });
  if (flush) vm.sps.flushRemoteTlbs();
}

/** Ages [start, end) through the rmaps; flushes the TLB entries of what was young. */
function ageLocked(vm: Vm, start: number, end: number, clear: boolean, flushYoung: boolean): boolean {
  let young = false;
  vm.sps.agedPfn = -1;
  vm.memslots.forEachGfnRangeOfHva(start, end, (slot, gfnStart, gfnEnd) => {
    const y = clear && !vm.debug.noAgeClear ? vm.sps.ageGfnRange(slot, gfnStart, gfnEnd) : vm.sps.testAgeGfnRange(slot, gfnStart, gfnEnd);
    if (y) young = true;
  });
  vm.stats.ageCalls++;
  if (young) vm.stats.youngHits++;
  if (young && clear && flushYoung && !vm.debug.noAgeFlush && !vm.debug.noAgeClear) {
    if (end - start === 4096 && vm.sps.agedPfn >= 0) {
      // The common case (reclaim ages one page): drop only the entries naming its
      // frame, which the sptes just aged name (coherent with the host pte, which the
      // notifier never reads).
      for (const v of vm.vcpus) v.hart.flushTlbHostPage(vm.sps.agedPfn << 12);
    } else {
      vm.sps.flushRemoteTlbs();
    }
  }
  if (vm.tracing()) vm.trace({ type: 'age', young });
  return young;
}

export function kvmMmuNotifierOps(vm: Vm): MmuNotifierOps {
  const ops: MmuNotifierOps = {
    *invalidateRangeStart(range: MmuNotifierRange): Task<number> {
      // After release nothing is counted: its range_end may never come (the
      // subscription is unhashed), and there is no spte left to zap.
      if (!vm.mnInvalidateTracked()) return 0;
      // Counted for every range, memslot or not: a memslot update waits for zero, so
      // range_end meets the same memslots as its range_start.
      vm.mnActiveInvalidateCount++;
      if (!memslotHit(vm, range.start, range.end)) return 0;
      yield* vm.mmuLock.lock();
      if (!vm.mnInvalidateTracked()) {
        // release ran while we waited for mmu_lock and dropped the count we raised.
        vm.mmuLock.unlock();
        return 0;
      }
      vm.stats.invalidations++;
      const flush = invalidateBeginLocked(vm, range.start, range.end);
      if (flush) {
        if (vm.debug.noFlushBeforeUnlock) vm.deferredFlush = true;
        else vm.sps.flushRemoteTlbs();
      }
      vm.mmuLock.unlock();
      return 0;
    },

    *invalidateRangeEnd(range: MmuNotifierRange): Task {
      // After release: its start was counted before release (which dropped that count)
      // or not at all. Checked again under mmu_lock, with no yield before the decrement.
      if (!vm.mnInvalidateTracked()) return;
      if (memslotHit(vm, range.start, range.end)) {
        yield* vm.mmuLock.lock();
        if (!vm.mnInvalidateTracked()) {
          vm.mmuLock.unlock();
          return;
        }
        if (vm.debug.noRangeStartZap) unmapHvaRangeLocked(vm, range.start, range.end);
        // kvm_mmu_invalidate_end: the sequence first, so a fault that sees
        // in_progress drop also sees the new sequence.
        vm.mmuInvalidateSeq++;
        vm.mmuInvalidateInProgress--;
        if (vm.mmuInvalidateInProgress < 0) BUG('invalidate_range_end without a matching start');
        if (vm.deferredFlush) {
          vm.deferredFlush = false;
          vm.sps.flushRemoteTlbs();
        }
        vm.mmuLock.unlock();
      }
      if (--vm.mnActiveInvalidateCount === 0) vm.mnInvalidateWait.wakeAll();
    },

    invalidatePage(_mm: Mm, hva: number): void {
      const page = hva - (hva % 4096);
      if (!memslotHit(vm, page, page + 4096)) return;
      lockAtomic(vm, 'invalidate_page');
      vm.stats.invalidations++;
      vm.mmuInvalidateSeq++;
      let flush = false;
      vm.memslots.forEachGfnRangeOfHva(page, page + 4096, (slot, gfnStart, gfnEnd) => {
        // v7: the zap drops the reference the spte held (onLeafSpteDrop).
        if (vm.sps.unmapGfnRange(slot, gfnStart, gfnEnd)) flush = true;
        if (vm.tracing()) vm.trace({ type: 'invalidate-page', gfn: gfnStart });
      });
      if (flush) vm.sps.flushRemoteTlbs();
      vm.mmuLock.unlock();
    },

    clearFlushYoung(_mm: Mm, start: number, end: number): boolean {
      if (!memslotHit(vm, start, end)) return false;
      lockAtomic(vm, 'clear_flush_young');
      const young = ageLocked(vm, start, end, true, true);
      vm.mmuLock.unlock();
      return young;
    },

    agePage(_mm: Mm, hva: number): boolean {
      const page = hva - (hva % 4096);
      if (!memslotHit(vm, page, page + 4096)) return false;
      lockAtomic(vm, 'age_page');
      const young = ageLocked(vm, page, page + 4096, true, true);
      vm.mmuLock.unlock();
      return young;
    },

    clearYoung(_mm: Mm, start: number, end: number): boolean {
      if (!memslotHit(vm, start, end)) return false;
      lockAtomic(vm, 'clear_young');
      // Idle tracking: no flush (kvm_mmu_notifier_clear_young), accuracy traded for cost.
      const young = ageLocked(vm, start, end, true, false);
      vm.mmuLock.unlock();
      return young;
    },

    testYoung(_mm: Mm, hva: number): boolean {
      const page = hva - (hva % 4096);
      if (!memslotHit(vm, page, page + 4096)) return false;
      lockAtomic(vm, 'test_young');
      const young = ageLocked(vm, page, page + 4096, false, false);
      vm.mmuLock.unlock();
      return young;
    },

    *release(_mm: Mm): Task {
      // kvm_arch_flush_shadow_all, while every host pte still maps its page. May run
      // twice (exit racing unregister): the second finds nothing.
      yield* vm.mmuLock.lock();
      vm.released = true;
      vm.mmuInvalidateSeq++;
      if (!vm.debug.noReleaseZap) vm.sps.zapAll();
      // The subscription is unhashed next: range_ends of ranges started before may
      // never come. Balance the counters and wake their waiters now (vm.ts).
      vm.mmuInvalidateAbandonLocked();
      if (vm.tracing()) vm.trace({ type: 'release' });
      vm.mmuLock.unlock();
    },
  };
  if (vm.protocol !== 'v7') {
    delete ops.invalidatePage;
    delete ops.agePage;
  }
  return ops;
}

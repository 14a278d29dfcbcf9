// Counterpart: mm/mmu_notifier.c + include/linux/mmu_notifier.h
//
// When each callback runs (KERNEL-NOTES §1), and what the primary pte looks like then:
//   invalidateRangeStart  before any pte in [start, end) changes; pages mapped, ref >= 1.
//                         May sleep when range.blockable; otherwise may return -EAGAIN
//                         (OOM reaper), and the starts that succeeded are backed out
//                         with invalidateRangeEnd.
//   invalidateRangeEnd    after the ptes changed; pages may already be free.
//   invalidatePage (2008) after the pte was cleared and flushed, before the page is
//                         freed, under the PT lock: must not sleep.
//   clearFlushYoung       after the host cleared the pte young bit; ORed into
//   / agePage (2008)      "referenced". Under the PT lock: must not sleep.
//   clearYoung/testYoung  idle tracking; no flush required.
//   release               from exit_mmap before any page is freed, or from unregister.
//
// The subscription list is walked under SRCU. Unregister calls release if it has not
// run, unhashes, then waits out a grace period, so no callback of the subscription is
// running when it returns. Registration excludes every rmap walker and fault on the mm
// (mmap_lock for write + the mm's all-locks gate), so start/end pairs stay balanced.
// Unhashing does not: a range whose start a subscription got before unregister or
// exit_mmap unhashed it ends without telling it (range_end walks the live list, as
// in Linux). A subscriber that counts active ranges balances them itself from its
// release, the last callback it is sure to get (KVM: kvm/vm.ts mmuInvalidateAbandonLocked).
//
// Interval subscribers (interval-notifier.ts) are walked first, at start and at end, as
// __mmu_notifier_invalidate_range_start/_end do (has_itree, then the hlist). Their
// active-range count is per mm and every caller pairs start with end, so unlike the
// hlist it stays balanced across exit.

import { Srcu } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { MmuIntervalCore } from './interval-notifier.js';
import type { Mm } from './mm.js';
import type { HostContext } from './stats.js';

export const EAGAIN = 11;

export type MmuNotifyEvent = 'unmap' | 'clear' | 'protection' | 'release' | 'oom-reap';

export interface MmuNotifierRange {
  readonly mm: Mm;
  /** hva bytes, [start, end), page aligned. */
  readonly start: number;
  readonly end: number;
  readonly event: MmuNotifyEvent;
  /** false only on the OOM reaper's path: the callback must not sleep and may return -EAGAIN. */
  readonly blockable: boolean;
}

export interface MmuNotifierOps {
  /** May sleep. May run twice (exit racing unregister). */
  release?(mm: Mm): Task;
  /** Returns 0, or -EAGAIN when !range.blockable and it would have to sleep. */
  invalidateRangeStart?(range: MmuNotifierRange): Task<number>;
  invalidateRangeEnd?(range: MmuNotifierRange): Task;
  /** 2008 era only. Under the PT lock: must not sleep. */
  invalidatePage?(mm: Mm, hva: number): void;
  /** Modern era. Under the PT lock. Returns whether the secondary MMU saw an access. */
  clearFlushYoung?(mm: Mm, start: number, end: number): boolean;
  clearYoung?(mm: Mm, start: number, end: number): boolean;
  testYoung?(mm: Mm, hva: number): boolean;
  /** 2008 era name of clearFlushYoung (one page). */
  agePage?(mm: Mm, hva: number): boolean;
}

export class MmuNotifier {
  readonly name: string;
  readonly ops: MmuNotifierOps;
  readonly mm: Mm;
  /** On the mm's list (hlist_unhashed is !hashed). */
  hashed = false;
  releaseCalls = 0;

  constructor(name: string, ops: MmuNotifierOps, mm: Mm) {
    this.name = name;
    this.ops = ops;
    this.mm = mm;
  }
}

/** Test-only switches that turn off one mechanism of the notifier core. */
export interface MmuNotifierDebug {
  /**
   * mmu_notifier_unregister returns without synchronize_srcu: a callback that loaded
   * the list before the unhash may still be running, on state its driver frees as soon
   * as unregister returns (kvm_destroy_vm, a device's release of its context).
   */
  noUnregisterSync: boolean;
  /**
   * mmu_notifier_register publishes without mm_take_all_locks (the 2008 mm_lock): an
   * rmap walk (try_to_unmap from reclaim, which takes no mmap_lock) whose
   * range_start walked the list before the new subscription was on it calls the new
   * subscription's range_end: an end without its start.
   */
  noTakeAllLocks: boolean;
}

export class MmuNotifierCore {
  readonly srcu = new Srcu('mmu_notifier');
  readonly debug: MmuNotifierDebug = { noUnregisterSync: false, noTakeAllLocks: false };
  /** mmu_interval_notifier_*: the interval tree of each mm. */
  readonly itree: MmuIntervalCore;
  private readonly ctx: HostContext;

  constructor(ctx: HostContext) {
    this.ctx = ctx;
    this.itree = new MmuIntervalCore(ctx);
  }

  // Callers guard with tracing() so the payload object is only built for a listener.
  private note(type: string, mm: Mm, sub: MmuNotifier, extra?: Record<string, unknown>): void {
    this.ctx.trace({ type: `mn-${type}`, mm: mm.id, notifier: sub.name, ...extra });
  }

  dump(): { srcu: string } {
    return { srcu: this.srcu.dump() };
  }

  // ---- registration ------------------------------------------------------------------

  /**
   * mmu_notifier_register: takes mmap_lock for write and the all-locks gate, waits for
   * running rmap walks on the mm, then publishes the subscription at the head.
   * Returns null when the mm is already past exit_mmap's release.
   */
  *register(mm: Mm, name: string, ops: MmuNotifierOps): Task<MmuNotifier | null> {
    yield* mm.mmapLock.downWrite();
    try {
      if (mm.dead || mm.notifierReleased) return null;
      mm.allLocksTaken = true;
      try {
        if (!this.debug.noTakeAllLocks) yield* mm.rmapWait.waitEvent(() => mm.rmapWalkers === 0);
        const sub = new MmuNotifier(name, ops, mm);
        sub.hashed = true;
        mm.notifiers = [sub, ...mm.notifiers];
        if (this.ctx.tracing()) this.ctx.trace({ type: 'mn-register', mm: mm.id, notifier: name });
        return sub;
      } finally {
        mm.allLocksTaken = false;
        mm.rmapWait.wakeAll();
      }
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  private unhash(sub: MmuNotifier): void {
    if (!sub.hashed) return;
    sub.hashed = false;
    sub.mm.notifiers = sub.mm.notifiers.filter((s) => s !== sub);
  }

  /** mmu_notifier_unregister: release (if exit has not), unhash, then synchronize_srcu. */
  *unregister(sub: MmuNotifier): Task {
    const mm = sub.mm;
    if (sub.hashed) {
      const idx = this.srcu.readLock();
      try {
        if (sub.ops.release) {
          sub.releaseCalls++;
          this.ctx.stats.notifierCalls++;
          if (this.ctx.tracing()) this.note('release', mm, sub, { from: 'unregister' });
          yield* sub.ops.release(mm);
        }
      } finally {
        this.srcu.readUnlock(idx);
      }
      this.unhash(sub);
    }
    if (!this.debug.noUnregisterSync) yield* this.srcu.synchronize();
    if (this.ctx.tracing()) this.ctx.trace({ type: 'mn-unregister', mm: mm.id, notifier: sub.name });
  }

  /**
   * __mmu_notifier_release from exit_mmap: every subscriber drops its secondary
   * mappings while all primary ptes still map their pages; then the list is emptied
   * and a grace period ends the callbacks still running.
   */
  *release(mm: Mm): Task {
    mm.notifierReleased = true;
    if (mm.subscriptions !== null) yield* this.itree.release(mm, mm.subscriptions);
    const subs = mm.notifiers;
    if (subs.length === 0) return;
    const idx = this.srcu.readLock();
    try {
      for (const sub of subs) {
        if (!sub.hashed || !sub.ops.release) continue;
        sub.releaseCalls++;
        this.ctx.stats.notifierCalls++;
        if (this.ctx.tracing()) this.note('release', mm, sub, { from: 'exit' });
        yield* sub.ops.release(mm);
      }
    } finally {
      this.srcu.readUnlock(idx);
    }
    for (const sub of subs) this.unhash(sub);
    yield* this.srcu.synchronize();
  }

  // ---- invalidation ------------------------------------------------------------------

  /** mmu_notifier_invalidate_range_start; 0 or -EAGAIN (only when !range.blockable). */
  *invalidateRangeStart(range: MmuNotifierRange): Task<number> {
    const itree = range.mm.subscriptions;
    if (itree !== null) {
      const r = yield* this.itree.invalidate(itree, range);
      if (r !== 0) return r;
    }
    const subs = range.mm.notifiers;
    if (subs.length === 0) return 0;
    const idx = this.srcu.readLock();
    try {
      let failedAt = -1;
      let ret = 0;
      for (let i = 0; i < subs.length; i++) {
        const sub = subs[i]!;
        if (!sub.hashed || !sub.ops.invalidateRangeStart) continue;
        this.ctx.stats.notifierCalls++;
        if (this.ctx.tracing()) this.note('invalidate-range-start', range.mm, sub, { start: range.start, end: range.end, event: range.event, blockable: range.blockable });
        const r = yield* sub.ops.invalidateRangeStart(range);
        if (r !== 0) {
          if (range.blockable) this.ctx.warnOnce('mn-start-blockable-fail', `${sub.name}: invalidate_range_start failed (${r}) in blockable mode`);
          ret = r;
          failedAt = i;
          break;
        }
      }
      if (failedAt >= 0) {
        // Back out the subscribers whose start succeeded, so their counts stay paired.
        for (let i = 0; i < failedAt; i++) {
          const sub = subs[i]!;
          if (!sub.hashed || !sub.ops.invalidateRangeEnd || !sub.ops.invalidateRangeStart) continue;
          this.ctx.stats.notifierCalls++;
          if (this.ctx.tracing()) this.note('invalidate-range-end', range.mm, sub, { start: range.start, end: range.end, event: range.event, backout: true });
          yield* sub.ops.invalidateRangeEnd(range);
        }
        // The caller will not call range_end after -EAGAIN: end the itree's half too,
        // so active_invalidate_ranges stays paired.
        if (itree !== null) yield* this.itree.invEnd(itree);
      }
      return ret;
    } finally {
      this.srcu.readUnlock(idx);
    }
  }

  *invalidateRangeEnd(range: MmuNotifierRange): Task {
    if (range.mm.subscriptions !== null) yield* this.itree.invEnd(range.mm.subscriptions);
    const subs = range.mm.notifiers;
    if (subs.length === 0) return;
    const idx = this.srcu.readLock();
    try {
      for (const sub of subs) {
        if (!sub.hashed || !sub.ops.invalidateRangeEnd) continue;
        this.ctx.stats.notifierCalls++;
        if (this.ctx.tracing()) this.note('invalidate-range-end', range.mm, sub, { start: range.start, end: range.end, event: range.event });
        yield* sub.ops.invalidateRangeEnd(range);
      }
    } finally {
      this.srcu.readUnlock(idx);
    }
  }

  /** 2008: ptep_clear_flush_notify's half, under the PT lock after the pte is gone. */
  invalidatePage(mm: Mm, hva: number): void {
    const subs = mm.notifiers;
    if (subs.length === 0) return;
    const idx = this.srcu.readLock();
    try {
      for (const sub of subs) {
        if (!sub.hashed || !sub.ops.invalidatePage) continue;
        this.ctx.stats.notifierCalls++;
        if (this.ctx.tracing()) this.note('invalidate-page', mm, sub, { hva });
        sub.ops.invalidatePage(mm, hva);
      }
    } finally {
      this.srcu.readUnlock(idx);
    }
  }

  /** clear_flush_young (modern) or age_page (2008), ORed over subscribers. */
  clearFlushYoung(mm: Mm, start: number, end: number): boolean {
    const subs = mm.notifiers;
    if (subs.length === 0) return false;
    const era2008 = mm.era === '2008';
    let young = false;
    const idx = this.srcu.readLock();
    try {
      for (const sub of subs) {
        if (!sub.hashed) continue;
        const ops = sub.ops;
        if (era2008 && ops.agePage) {
          this.ctx.stats.notifierCalls++;
          if (this.ctx.tracing()) this.note('age-page', mm, sub, { hva: start });
          for (let hva = start; hva < end; hva += 4096) young = ops.agePage(mm, hva) || young;
        } else if (ops.clearFlushYoung) {
          this.ctx.stats.notifierCalls++;
          if (this.ctx.tracing()) this.note('clear-flush-young', mm, sub, { start, end });
          young = ops.clearFlushYoung(mm, start, end) || young;
        }
      }
    } finally {
      this.srcu.readUnlock(idx);
    }
    return young;
  }

  clearYoung(mm: Mm, start: number, end: number): boolean {
    const subs = mm.notifiers;
    if (subs.length === 0) return false;
    let young = false;
    const idx = this.srcu.readLock();
    try {
      for (const sub of subs) {
        if (!sub.hashed || !sub.ops.clearYoung) continue;
        this.ctx.stats.notifierCalls++;
        if (this.ctx.tracing()) this.note('clear-young', mm, sub, { start, end });
        young = sub.ops.clearYoung(mm, start, end) || young;
      }
    } finally {
      this.srcu.readUnlock(idx);
    }
    return young;
  }

  testYoung(mm: Mm, hva: number): boolean {
    const subs = mm.notifiers;
    if (subs.length === 0) return false;
    let young = false;
    const idx = this.srcu.readLock();
    try {
      for (const sub of subs) {
        if (!sub.hashed || !sub.ops.testYoung) continue;
        this.ctx.stats.notifierCalls++;
        if (this.ctx.tracing()) this.note('test-young', mm, sub, { hva });
        if (sub.ops.testYoung(mm, hva)) {
          young = true;
          break;
        }
      }
    } finally {
      this.srcu.readUnlock(idx);
    }
    return young;
  }
}

// Counterpart: mm/mmu_notifier.c (the interval tree half: mmu_interval_notifier_*,
// mn_itree_*) + include/linux/mmu_notifier.h (mmu_interval_read_retry, _set_seq)
//
// An interval subscriber covers [start, start + length) of one mm and has a single
// callback, invalidate(range, curSeq), called from invalidate_range_start for every
// range that overlaps it; there is no end callback. Instead the mm carries one
// collision-retry counter, invalidate_seq, that works like a seqcount with many
// writers (docs/interval-notifier.md has the kernel's argument, with function names):
//
//   even     no subscribed interval is being invalidated; the tree may change.
//   odd      some range that hit an interval is between start and end. The tree is
//            frozen: inserts and removes are queued on deferred_list and applied by
//            the last end, which makes the counter even again and wakes `wq`.
//   active_invalidate_ranges counts every start not yet ended, hit or not.
//
// Reader side (a driver's fault path, lib/test_hmm.c dmirror_range_fault):
//   seq = readBegin(sub)        // waits while sub is being invalidated
//   ... walk / gup the primary ptes, may sleep ...
//   lock(driver lock)
//   if (readRetry(sub, seq)) { unlock; goto again }   // collided with an invalidation
//   install the secondary mapping; unlock
// Writer side, inside invalidate(): lock(driver lock); setSeq(sub, curSeq); zap; unlock.
// setSeq under the driver lock is what makes readRetry see the collision: curSeq is the
// odd counter value of this invalidation, different from any seq a reader could have
// begun with (read_begin never returns while the sub's seq equals the odd counter).
//
// Interval notifiers exist only in the modern era (Linux 5.5, 2019): a 2008-era mm
// has no range_start on its swap-out path (invalidate_page instead), so insert refuses it.

import { SpinLock, WaitQueue } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import type { Mm } from './mm.js';
import type { MmuNotifierRange } from './mmu-notifier.js';
import { EINVAL } from './fault.js';
import type { HostContext } from './stats.js';

export const EOVERFLOW = 75;

/** Test-only switches that turn off one host-side mechanism of the interval protocol. */
export interface IntervalDebug {
  /** read_begin returns at once even while the sub is being invalidated (no wait_event). */
  noReadBeginWait: boolean;
}

export interface MmuIntervalNotifierOps {
  /**
   * Called from invalidate_range_start for a range overlapping the sub. Must call
   * setSeq(sub, curSeq) under the lock its fault path checks readRetry under. May
   * sleep when range.blockable; otherwise returns false when it would have to (the
   * range start then fails with -EAGAIN). Returns true when done.
   */
  invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, curSeq: number): Task<boolean>;
}

export class MmuIntervalNotifier {
  readonly name: string;
  readonly mm: Mm;
  /** hva bytes, [start, last] inclusive, as interval_tree_node. */
  readonly start: number;
  readonly last: number;
  readonly ops: MmuIntervalNotifierOps;
  /** Written by setSeq (the invalidation's odd counter), read by readBegin / readRetry. */
  invalidateSeq = 0;
  /** RB_EMPTY_NODE is !inTree. */
  inTree = false;
  /** On the deferred list, waiting for the last range_end to insert or remove it. */
  deferred = false;
  removed = false;
  invalidateCalls = 0;

  constructor(name: string, mm: Mm, start: number, last: number, ops: MmuIntervalNotifierOps) {
    this.name = name;
    this.mm = mm;
    this.start = start;
    this.last = last;
    this.ops = ops;
  }

  overlaps(start: number, end: number): boolean {
    return this.start < end && this.last >= start;
  }
}

/** struct mmu_notifier_subscriptions, its interval-tree fields. One per mm, made at first insert. */
export class MmuNotifierSubscriptions {
  readonly lock: SpinLock;
  /** Starts at 2 (even, idle), as mmu_notifier_register allocates it. */
  invalidateSeq = 2;
  activeInvalidateRanges = 0;
  /** The interval tree, as an array sorted by start (a handful of subs per mm). */
  itree: MmuIntervalNotifier[] = [];
  readonly deferredList: MmuIntervalNotifier[] = [];
  readonly wq: WaitQueue;

  constructor(mmId: number) {
    this.lock = new SpinLock(`mm${mmId}.notifier_subscriptions.lock`, { lockClass: 'notifier_subscriptions.lock' });
    this.wq = new WaitQueue(`mm${mmId}.notifier_subscriptions.wq`);
  }

  /** mn_itree_is_invalidating */
  isInvalidating(): boolean {
    return (this.invalidateSeq & 1) !== 0;
  }

  treeInsert(sub: MmuIntervalNotifier): void {
    let i = 0;
    while (i < this.itree.length && this.itree[i]!.start <= sub.start) i++;
    this.itree = [...this.itree.slice(0, i), sub, ...this.itree.slice(i)];
    sub.inTree = true;
  }

  treeRemove(sub: MmuIntervalNotifier): void {
    this.itree = this.itree.filter((s) => s !== sub);
    sub.inTree = false;
  }

  dump(): Record<string, unknown> {
    return {
      invalidateSeq: this.invalidateSeq,
      activeInvalidateRanges: this.activeInvalidateRanges,
      itree: this.itree.map((s) => `${s.name} [0x${s.start.toString(16)}, 0x${s.last.toString(16)}] seq ${s.invalidateSeq}`),
      deferred: this.deferredList.map((s) => s.name),
    };
  }
}

/**
 * The interval half of the notifier core. MmuNotifierCore calls invalidate / invEnd /
 * release around its hlist walk, in the kernel's order (itree first, both at start
 * and at end).
 */
export class MmuIntervalCore {
  readonly debug: IntervalDebug = { noReadBeginWait: false };
  private readonly ctx: HostContext;

  constructor(ctx: HostContext) {
    this.ctx = ctx;
  }

  /**
   * mmu_notifier_register(NULL, mm) as mmu_interval_notifier_insert does for the first
   * sub: the subscriptions appear under mmap_lock for write and mm_take_all_locks, so
   * no range start is in flight that would end without having counted itself in
   * active_invalidate_ranges.
   */
  private *subscriptionsAlloc(mm: Mm): Task<MmuNotifierSubscriptions | null> {
    if (mm.subscriptions !== null) return mm.subscriptions;
    yield* mm.mmapLock.downWrite();
    try {
      if (mm.dead || mm.notifierReleased) return null;
      if (mm.subscriptions !== null) return mm.subscriptions;
      mm.allLocksTaken = true;
      try {
        yield* mm.rmapWait.waitEvent(() => mm.rmapWalkers === 0);
        mm.subscriptions = new MmuNotifierSubscriptions(mm.id);
        return mm.subscriptions;
      } finally {
        mm.allLocksTaken = false;
        mm.rmapWait.wakeAll();
      }
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  /**
   * mmu_interval_notifier_insert: the sub, or -EINVAL (2008 era, exited mm) /
   * -EOVERFLOW (empty or wrapping range). While ranges are active the new interval
   * is assumed invalidated: its seq is the counter made odd, so read_begin waits for
   * the last end; if the tree is frozen the insert itself is deferred to that end.
   */
  *insert(mm: Mm, name: string, start: number, length: number, ops: MmuIntervalNotifierOps): Task<MmuIntervalNotifier | number> {
    if (mm.era !== 'modern') return -EINVAL;
    if (!(length > 0) || start + length - 1 > 0xffff_ffff) return -EOVERFLOW;
    const subs = yield* this.subscriptionsAlloc(mm);
    if (subs === null) return -EINVAL;
    const sub = new MmuIntervalNotifier(name, mm, start, start + length - 1, ops);
    yield* subs.lock.lock();
    if (subs.activeInvalidateRanges > 0) {
      if (subs.isInvalidating()) {
        sub.deferred = true;
        subs.deferredList.push(sub);
      } else {
        subs.invalidateSeq |= 1;
        subs.treeInsert(sub);
      }
      sub.invalidateSeq = subs.invalidateSeq;
    } else {
      if (subs.isInvalidating()) this.ctx.warnOnce('itree-odd-idle', `mm${mm.id}: invalidate_seq odd with no active range`);
      // Odd, and not the counter: read_begin does not wait, and the counter will not
      // wrap around to it any time soon.
      sub.invalidateSeq = subs.invalidateSeq - 1;
      subs.treeInsert(sub);
    }
    subs.lock.unlock();
    if (this.ctx.tracing()) this.ctx.trace({ type: 'mn-interval-insert', mm: mm.id, notifier: name, start, end: start + length, deferred: sub.deferred });
    return sub;
  }

  /**
   * mmu_interval_notifier_remove. When the tree is frozen the removal is deferred and
   * this waits for the last range_end, so no invalidate() of the sub runs once it
   * returns. Callers must not hold a lock their invalidate() takes.
   */
  *remove(sub: MmuIntervalNotifier): Task {
    if (sub.removed) throw new Error(`BUG: mmu_interval_notifier_remove of '${sub.name}' twice`);
    sub.removed = true;
    const subs = sub.mm.subscriptions!;
    let seq = 0;
    yield* subs.lock.lock();
    if (subs.isInvalidating()) {
      if (!sub.inTree) {
        // Inserted during this invalidation and never made it into the tree.
        const i = subs.deferredList.indexOf(sub);
        if (i >= 0) subs.deferredList.splice(i, 1);
        sub.deferred = false;
      } else {
        sub.deferred = true;
        subs.deferredList.push(sub);
        seq = subs.invalidateSeq;
      }
    } else {
      if (!sub.inTree) this.ctx.warnOnce('itree-remove-absent', `${sub.name}: removed but not in the interval tree`);
      subs.treeRemove(sub);
    }
    subs.lock.unlock();
    if (seq !== 0) yield* subs.wq.waitEvent(() => subs.invalidateSeq !== seq);
    if (this.ctx.tracing()) this.ctx.trace({ type: 'mn-interval-remove', mm: sub.mm.id, notifier: sub.name });
  }

  /**
   * mmu_interval_read_begin: the seq a fault must check with readRetry under its lock.
   * If the sub is being invalidated right now (its seq is the odd counter), waits for
   * the last range_end: installing from ptes read during the invalidation would be
   * installing what the host is about to change, and readRetry could not tell, since
   * setSeq has already run.
   */
  *readBegin(sub: MmuIntervalNotifier): Task<number> {
    const subs = sub.mm.subscriptions!;
    yield* subs.lock.lock();
    const seq = sub.invalidateSeq;
    const isInvalidating = seq === subs.invalidateSeq;
    subs.lock.unlock();
    if (isInvalidating && !this.debug.noReadBeginWait) yield* subs.wq.waitEvent(() => subs.invalidateSeq !== seq);
    return seq;
  }

  // ---- called by MmuNotifierCore ------------------------------------------------------

  /** mn_itree_inv_start_range: counts the range in, freezes the tree if it hits a sub. */
  private *invStartRange(subs: MmuNotifierSubscriptions, range: MmuNotifierRange): Task<{ hits: MmuIntervalNotifier[]; curSeq: number }> {
    yield* subs.lock.lock();
    subs.activeInvalidateRanges++;
    const hits = subs.itree.filter((s) => s.overlaps(range.start, range.end));
    if (hits.length > 0) subs.invalidateSeq |= 1;
    const curSeq = subs.invalidateSeq;
    subs.lock.unlock();
    return { hits, curSeq };
  }

  /**
   * mn_itree_invalidate, from invalidate_range_start: every overlapping sub's
   * invalidate(). The tree is frozen (odd) while any hit range is active, so the list
   * taken under the lock stays the tree. On a non-blockable refusal the range is ended
   * here: the caller must not call range_end after -EAGAIN.
   */
  *invalidate(subs: MmuNotifierSubscriptions, range: MmuNotifierRange): Task<number> {
    const { hits, curSeq } = yield* this.invStartRange(subs, range);
    for (const sub of hits) {
      sub.invalidateCalls++;
      this.ctx.stats.notifierCalls++;
      if (this.ctx.tracing()) this.ctx.trace({ type: 'mn-interval-invalidate', mm: range.mm.id, notifier: sub.name, start: range.start, end: range.end, event: range.event, blockable: range.blockable, seq: curSeq });
      const ok = yield* sub.ops.invalidate(sub, range, curSeq);
      if (!ok) {
        if (range.blockable) {
          this.ctx.warnOnce('itree-blockable-fail', `${sub.name}: invalidate refused a blockable range`);
          continue;
        }
        yield* this.invEnd(subs);
        return -EAGAIN_ITREE;
      }
    }
    return 0;
  }

  /**
   * mn_itree_inv_end, from invalidate_range_end: the last active range makes the
   * counter even, applies the deferred inserts and removes, and wakes read_begin and
   * remove waiters.
   */
  *invEnd(subs: MmuNotifierSubscriptions): Task {
    yield* subs.lock.lock();
    if (--subs.activeInvalidateRanges > 0 || !subs.isInvalidating()) {
      if (subs.activeInvalidateRanges < 0) this.ctx.warnOnce('itree-end-unbalanced', 'interval range_end without a start');
      subs.lock.unlock();
      return;
    }
    subs.invalidateSeq++;
    for (const sub of subs.deferredList.splice(0)) {
      if (!sub.inTree) subs.treeInsert(sub);
      else subs.treeRemove(sub);
      sub.deferred = false;
    }
    subs.lock.unlock();
    subs.wq.wakeAll();
  }

  /** mn_itree_release, from exit_mmap's mmu_notifier_release: one blockable range over everything. */
  *release(mm: Mm, subs: MmuNotifierSubscriptions): Task {
    const range: MmuNotifierRange = { mm, start: 0, end: 0x1_0000_0000, event: 'release', blockable: true };
    const r = yield* this.invalidate(subs, range);
    if (r === 0) yield* this.invEnd(subs);
  }
}

/** -EAGAIN, spelled here to keep this file free of a cycle through mmu-notifier.ts. */
const EAGAIN_ITREE = 11;

/** mmu_interval_read_retry: under the driver's lock, true when an invalidation ran since seq was read. */
export function mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/** mmu_interval_check_retry: the same test without the lock, as an early-out only. */
export function mmuIntervalCheckRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/** mmu_interval_set_seq: from invalidate(), under the lock readRetry is checked under. */
export function mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void {
  sub.invalidateSeq = curSeq;
}

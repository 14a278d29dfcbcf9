// Counterpart: include/linux/mm_types.h (struct mm_struct) + kernel/fork.c (mm lifetime)
//
// Lock order (lockdep checks it): mmapLock -> page lock -> ptl.
// The PT lock is a spinlock: nothing that sleeps (swap I/O, allocation, a blockable
// notifier callback) runs under it. The page lock (PG_locked) is a sleeping lock.

import { RwSem, SpinLock, WaitQueue } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import type { MmuNotifierSubscriptions } from './interval-notifier.js';
import type { MmuNotifier } from './mmu-notifier.js';
import { PageTable } from './pagetable.js';
import { VmaSet } from './vma.js';

export type NotifierEra = '2008' | 'modern';

/**
 * anon_vma, one per fork tree: every mm that may map an anon page made in any of them,
 * at the page's own hva (fork keeps addresses). A frame's rmap names the mm that made
 * it (rmapMm) and its hva page; a walk visits each member and trusts a mapping only
 * where that member's pte, under its PT lock, names the frame. Coarser than the
 * kernel's anon_vma chains (a child's own pages are walked in the parent too, and
 * miss there), never wrong. Kept by the kernel until its last member exits, so a
 * page made by a parent that exited is still found in the children.
 */
export class AnonVma {
  /** Members in fork order, live or mid-exit. */
  readonly mms: Mm[] = [];
  /** Ids of every mm that ever joined, for the kernel's id -> anon_vma map. */
  readonly ids: number[] = [];

  link(mm: Mm): void {
    this.mms.push(mm);
    this.ids.push(mm.id);
  }

  /** Returns whether the anon_vma is now empty. */
  unlink(mm: Mm): boolean {
    const i = this.mms.indexOf(mm);
    if (i >= 0) this.mms.splice(i, 1);
    return this.mms.length === 0;
  }
}

export class Mm {
  readonly id: number;
  readonly era: NotifierEra;
  readonly vmas = new VmaSet();
  readonly pt = new PageTable();
  readonly mmapLock: RwSem;
  /** page_table_lock: guards every pte of this mm. */
  readonly ptl: SpinLock;
  /** Owner, for OOM reports; null once the process is gone. */
  owner: Process | null = null;

  /**
   * Subscribed secondary MMUs. Replaced, never mutated, on (un)register: a walker that
   * loaded the array under srcu keeps a stable snapshot without copying, as an RCU
   * hlist walk would see a consistent list.
   */
  notifiers: readonly MmuNotifier[] = [];
  /** Set by exit_mmap's mmu_notifier_release, after which no callback may be added. */
  notifierReleased = false;
  /** The fork tree's anon_vma; a forked child shares its parent's. */
  anonVma: AnonVma;
  /** mm->notifier_subscriptions' interval tree, made by the first interval insert (has_itree). */
  subscriptions: MmuNotifierSubscriptions | null = null;

  /**
   * mm_take_all_locks, modelled as a gate: while set, new rmap walks on this mm wait
   * (try_to_unmap) or back off (folio_referenced's trylock), and registration waits
   * for `rmapWalkers` to drain before it publishes the new notifier.
   */
  allLocksTaken = false;
  rmapWalkers = 0;
  readonly rmapWait: WaitQueue;

  /** MMF_UNSTABLE: the OOM reaper tore the address space down under the owner. */
  oomReaped = false;
  /** MMF_OOM_SKIP: already a victim; the OOM killer looks elsewhere. */
  oomSkip = false;
  dead = false;

  /** RSS counters: anon pages mapped, swap entries. */
  anonRss = 0;
  swapEnts = 0;

  constructor(id: number, era: NotifierEra) {
    this.id = id;
    this.era = era;
    this.mmapLock = new RwSem(`mm${id}.mmap_lock`, { lockClass: 'mmap_lock' });
    this.ptl = new SpinLock(`mm${id}.ptl`, { lockClass: 'ptl' });
    this.rmapWait = new WaitQueue(`mm${id}.rmap`);
    this.anonVma = new AnonVma();
    this.anonVma.link(this);
  }

  /** anon_vma_lock_read for a walk that must not be skipped (try_to_unmap). */
  *rmapLock(): Task {
    yield* this.rmapWait.waitEvent(() => !this.allLocksTaken);
    this.rmapWalkers++;
  }

  /** The trylock flavour folio_referenced uses from reclaim. */
  rmapTryLock(): boolean {
    if (this.allLocksTaken) return false;
    this.rmapWalkers++;
    return true;
  }

  rmapUnlock(): void {
    if (--this.rmapWalkers === 0 && this.allLocksTaken) this.rmapWait.wakeAll();
  }

  dump(): Record<string, unknown> {
    return {
      id: this.id,
      era: this.era,
      vmas: this.vmas.dump(),
      ptes: this.pt.size,
      anonRssKb: this.anonRss * 4,
      swapEnts: this.swapEnts,
      notifiers: this.notifiers.map((n) => n.name),
      flags: [this.oomReaped ? 'unstable' : '', this.oomSkip ? 'oom_skip' : '', this.dead ? 'dead' : '', this.notifierReleased ? 'notifier_released' : '']
        .filter(Boolean)
        .join(','),
    };
  }
}

export class Process {
  readonly pid: number;
  readonly name: string;
  readonly mm: Mm;
  /** fatal_signal_pending: set by the OOM killer; user-access helpers return -EINTR. */
  killed = false;
  exited = false;
  /** OOM killer may not pick this one (oom_score_adj = -1000). */
  oomUnkillable = false;

  constructor(pid: number, name: string, mm: Mm) {
    this.pid = pid;
    this.name = name;
    this.mm = mm;
    mm.owner = this;
  }
}

// Counterpart: what include/linux/{mm.h,mmu_notifier.h,highmem.h} export to a driver
//
// The whole of the host a secondary MMU may use (DESIGN.md "Other secondary MMUs"):
// gup / pin / put, the gup-fast probe, page_count, set_page_dirty, mark_page_accessed,
// kmap (or the direct map) of a page it holds or that its notifier keeps valid, notifier and interval-notifier registration, threads, and
// for a driver that maps pages into another process (XPMEM) its device mmap, ->fault's
// vmf_insert_pfn and zap_vma_ptes.
// A driver holds a SecondaryMmuHost, never the HostKernel: it cannot read host page
// tables or frame flags, so its coherence rests on the protocol alone.

import type { Scheduler, SimThread, Task } from '../sched/index.js';
import { PG_active, PG_dirty, PG_lru, PG_referenced } from './frames.js';
import { mmuIntervalReadRetry, mmuIntervalSetSeq } from './interval-notifier.js';
import type { MmuIntervalNotifier, MmuIntervalNotifierOps } from './interval-notifier.js';
import type { HostKernel } from './kernel.js';
import type { Mm } from './mm.js';
import type { MmuNotifier, MmuNotifierOps } from './mmu-notifier.js';
import { PAGE_SHIFT, PAGE_SIZE } from './pte.js';
import type { VmOperations } from './vma.js';

export interface SecondaryMmuHost {
  /** get_user_pages (FOLL_GET, one page): pfn with a reference, or a negative errno. May sleep. */
  getUserPages(mm: Mm, hva: number, write: boolean): Task<number>;
  /** pin_user_pages (FOLL_PIN | FOLL_LONGTERM). */
  pinUserPages(mm: Mm, hva: number, write: boolean): Task<number>;
  /**
   * get_user_page_fast_only: the lockless walk, never sleeping, never faulting. pfn
   * with a reference (put it with putPage), or -1 when the pte is not present, not
   * writable for a write, or special.
   */
  getUserPageFastOnly(mm: Mm, hva: number, write: boolean): number;
  putPage(pfn: number, dirty?: boolean): void;
  /** page_count: 0 only for a free page (a sanity check: WARN_ON_ONCE(!page_count(page))). */
  pageCount(pfn: number): number;
  unpinUserPage(pfn: number, dirty?: boolean): void;
  /** set_page_dirty: the driver wrote the page; reclaim must write it out before freeing. */
  setPageDirty(pfn: number): void;
  /** folio_mark_accessed: referenced, then active on the second call. */
  markPageAccessed(pfn: number): void;
  /**
   * kmap_local_pfn: the page's 4 KiB. Valid only while the caller holds a reference,
   * or holds the lock its notifier takes before the host may free the page.
   */
  kmapLocal(pfn: number): Uint8Array;
  /**
   * The direct map (page_address, pfn_to_kaddr): every frame at byte pfn << PAGE_SHIFT,
   * under the same rule as kmapLocal. It is also host-physical memory as a device sees
   * it: KVM's vCPUs reach guest RAM through it, at the pfns their sptes name.
   */
  readonly directMap: ArrayBuffer;

  mmuNotifierRegister(mm: Mm, name: string, ops: MmuNotifierOps): Task<MmuNotifier | null>;
  mmuNotifierUnregister(sub: MmuNotifier): Task;
  /** The sub, or a negative errno (-EINVAL: 2008 era or exited mm; -EOVERFLOW). */
  mmuIntervalNotifierInsert(mm: Mm, name: string, start: number, length: number, ops: MmuIntervalNotifierOps): Task<MmuIntervalNotifier | number>;
  mmuIntervalNotifierRemove(sub: MmuIntervalNotifier): Task;
  mmuIntervalReadBegin(sub: MmuIntervalNotifier): Task<number>;
  mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean;
  mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void;

  /** The driver's mmap handler: a VM_PFNMAP VMA in mm whose faults go to ops.fault. hva or -errno. */
  mmapDevice(mm: Mm, len: number, prot: number, ops: VmOperations): Task<number>;
  /** vmf_insert_pfn from ->fault: a special pte, no reference taken. 0, -EBUSY or -EFAULT. */
  vmfInsertPfn(mm: Mm, hva: number, pfn: number, write: boolean): Task<number>;
  /** zap_vma_ptes: drops the special ptes of a range of a driver VMA (range_start/end on mm). */
  zapVmaPtes(mm: Mm, hva: number, len: number): Task;

  /** kthread_run: a daemon thread (like kswapd, it does not keep a run alive). */
  kthreadRun(name: string, body: () => Task<void>): SimThread;
  readonly now: number;
}

/** The interface over one kernel. Each call is one line into the host's own code. */
export function secondaryMmuHost(k: HostKernel): SecondaryMmuHost {
  const sched = (): Scheduler => {
    if (k.sched === null) throw new Error('secondaryMmuHost: the kernel has no scheduler for kthreads');
    return k.sched;
  };
  return {
    getUserPages: (mm, hva, write) => k.getUserPages(mm, hva, write),
    pinUserPages: (mm, hva, write) => k.pinUserPages(mm, hva, write),
    getUserPageFastOnly: (mm, hva, write) => k.getUserPageFastOnly(mm, hva, write),
    putPage: (pfn, dirty = false) => k.putPage(pfn, dirty),
    pageCount: (pfn) => k.frames.refcount[pfn]!,
    unpinUserPage: (pfn, dirty = false) => k.unpinUserPage(pfn, dirty),
    setPageDirty: (pfn) => {
      k.frames.setFlag(pfn, PG_dirty);
    },
    markPageAccessed: (pfn) => {
      const fr = k.frames;
      const f = fr.flags[pfn]!;
      if (!(f & PG_referenced)) fr.setFlag(pfn, PG_referenced);
      else if (!(f & PG_active) && f & PG_lru) {
        fr.clearFlag(pfn, PG_referenced);
        k.lru.move(pfn, true);
        k.ctx.stats.pgactivate++;
      }
    },
    kmapLocal: (pfn) => k.frames.bytes.subarray(pfn << PAGE_SHIFT, (pfn << PAGE_SHIFT) + PAGE_SIZE),
    directMap: k.frames.buffer,
    mmuNotifierRegister: (mm, name, ops) => k.mn.register(mm, name, ops),
    mmuNotifierUnregister: (sub) => k.mn.unregister(sub),
    mmuIntervalNotifierInsert: (mm, name, start, length, ops) => k.mn.itree.insert(mm, name, start, length, ops),
    mmuIntervalNotifierRemove: (sub) => k.mn.itree.remove(sub),
    mmuIntervalReadBegin: (sub) => k.mn.itree.readBegin(sub),
    mmuIntervalReadRetry: mmuIntervalReadRetry,
    mmuIntervalSetSeq: mmuIntervalSetSeq,
    mmapDevice: (mm, len, prot, ops) => k.mmapDevice(mm, len, prot, ops),
    vmfInsertPfn: (mm, hva, pfn, write) => k.vmfInsertPfn(mm, hva, pfn, write),
    zapVmaPtes: (mm, hva, len) => k.zapVmaPtes(mm, hva, len),
    kthreadRun: (name, body) => sched().spawn(name, body, { daemon: true }),
    get now() {
      return k.now;
    },
  };
}

// Counterpart: XPMEM (out of tree, github.com/hpc/xpmem: kernel/xpmem_make.c,
// xpmem_attach.c (xpmem_fault, xpmem_clear_PTEs), xpmem_mmu_notifier.c, and the
// in-flight fault list of SGI's original cross-partition driver)
//
// Process A exports [start, start + len) as a segment; process B attaches it: a
// VM_PFNMAP VMA in B (mmapDevice) whose faults this driver serves by gup on A and
// vmf_insert_pfn into B, so B's ptes point at A's frames. Each of B's ptes is backed by
// one gup reference the driver holds (att.pfns); the ptes themselves are special and
// invisible to A's rmap. Only A's notifier can take them back:
//
//   range_start  (A's mm) takes seg.mutex (a sleeping lock), activeRanges++, marks every
//                in-flight fault on the range for retry, waits out the recall's round
//                trip to the attaching partition (sleeps: RECALL_TICKS), zaps B's ptes
//                (zap_vma_ptes), puts the references (dirty where B could write), and
//                only then returns: the host changes A's ptes after that.
//   range_end    activeRanges--, and new faults may go on when it reaches 0.
//   fault        (B's ->fault, B's mmap_lock held) waits for activeRanges == 0 under the
//                mutex, enlists itself in flight, drops the mutex, gup on A (sleeps,
//                may swap in) and the PFN's round trip (sleeps), retakes the mutex and
//                installs only if nobody marked it; else puts the page and starts over.
//   release      (A exits) zaps every attachment; later faults get SIGSEGV.
//
// The recall sleeps twice over (the mutex, the remote latency). Under the 2008
// notifier (a process of era '2008') the only callback that reaches swap-out is
// invalidate_page, called under A's PT lock: no sleeping is possible there. This
// driver then runs its recall in that atomic context anyway (runSync), where lockdep
// reports the mutex_lock under a spinlock and the round trip cannot be waited for: the
// recall is abandoned and B keeps a pte to a page A no longer maps.

import type { Mm } from '../host/mm.js';
import type { MmuNotifier, MmuNotifierRange } from '../host/mmu-notifier.js';
import type { SecondaryMmuHost } from '../host/secondary-mmu.js';
import { PROT_READ, PROT_WRITE, type VmOperations } from '../host/vma.js';
import { Mutex, WaitQueue, runSync, sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';

export const PAGE_SIZE = 4096;
export const EAGAIN = 11;
export const EFAULT = 14;
export const EINVAL = 22;
const VM_FAULT_SIGSEGV = 1;
/** Simulated ticks of a recall's round trip to the attaching partition. */
export const XPMEM_RECALL_TICKS = 20;
/** Simulated ticks of a fault's PFN request to the exporting partition. */
export const XPMEM_FAULT_TICKS = 10;
export const XPMEM_MAX_RETRIES = 1000;

/** Test-only switches, each turning one mechanism of the protocol off. */
export interface XpmemDebug {
  /** range_start does not mark in-flight faults, and a fault does not check its mark. */
  noRetryMark: boolean;
  /** range_start returns at once and recalls from a kthread later (the host goes on first). */
  asyncRecall: boolean;
}

export interface XpmemStats {
  faults: number;
  retries: number;
  recalls: number;
  zappedPages: number;
  /** Recalls abandoned because they ran where they could not sleep (2008 invalidate_page). */
  atomicRecallsFailed: number;
  /** Non-blockable starts refused with -EAGAIN (the OOM reaper's). */
  eagain: number;
}

interface Faulter {
  readonly index: number;
  retry: boolean;
}

const NO_PAGE = -1;

export class XpmemAttachment {
  readonly seg: XpmemSegment;
  readonly mm: Mm;
  /** hva of the attach VMA in B. */
  readonly hva: number;
  /** Per page of the segment: the pfn B's pte maps (a gup reference held), or NO_PAGE. */
  readonly pfns: Int32Array;
  readonly writable: Uint8Array;
  detached = false;

  constructor(seg: XpmemSegment, mm: Mm, hva: number) {
    this.seg = seg;
    this.mm = mm;
    this.hva = hva;
    this.pfns = new Int32Array(seg.nrPages).fill(NO_PAGE);
    this.writable = new Uint8Array(seg.nrPages);
  }

  /** The pfn B's pte at hvaB should map (the driver's view), or -1. */
  pfnAt(hvaB: number): number {
    return this.pfns[Math.floor((hvaB - this.hva) / PAGE_SIZE)] ?? NO_PAGE;
  }
}

export class XpmemSegment {
  readonly name: string;
  readonly host: SecondaryMmuHost;
  /** The exporter's mm (A). */
  readonly mm: Mm;
  readonly start: number;
  readonly nrPages: number;
  readonly mutex: Mutex;
  readonly rangeWait: WaitQueue;
  readonly debug: XpmemDebug = { noRetryMark: false, asyncRecall: false };
  readonly stats: XpmemStats = { faults: 0, retries: 0, recalls: 0, zappedPages: 0, atomicRecallsFailed: 0, eagain: 0 };
  readonly attachments: XpmemAttachment[] = [];
  /** Invalidations of A between their start and end. */
  activeRanges = 0;
  /** gup references held: B's ptes plus faults in flight. Zero at teardown. */
  refsHeld = 0;
  released = false;
  private readonly inflight: Faulter[] = [];
  sub: MmuNotifier | null = null;

  private constructor(name: string, host: SecondaryMmuHost, mm: Mm, start: number, nrPages: number) {
    this.name = name;
    this.host = host;
    this.mm = mm;
    this.start = start;
    this.nrPages = nrPages;
    this.mutex = new Mutex(`${name}.mutex`, { lockClass: 'xpmem.mutex' });
    this.rangeWait = new WaitQueue(`${name}.range_wait`);
  }

  /** xpmem_make: exports A's range and registers the segment's notifier on A's mm. */
  static *make(host: SecondaryMmuHost, mm: Mm, start: number, len: number, name = 'xpmem'): Task<XpmemSegment | number> {
    const seg = new XpmemSegment(name, host, mm, start, Math.ceil(len / PAGE_SIZE));
    const era2008 = mm.era === '2008';
    const sub = yield* host.mmuNotifierRegister(
      mm,
      name,
      era2008
        ? {
            invalidatePage: (_mm, hva) => seg.invalidatePageAtomic(hva),
            invalidateRangeEnd: (r) => seg.recallAndEnd(r),
            release: () => seg.release(),
          }
        : {
            invalidateRangeStart: (r) => seg.invalidateRangeStart(r),
            invalidateRangeEnd: (r) => seg.invalidateRangeEnd(r),
            release: () => seg.release(),
          },
    );
    if (sub === null) return -EINVAL;
    seg.sub = sub;
    return seg;
  }

  /** xpmem_remove: every attachment recalled, the notifier unregistered (waits out callbacks). */
  *remove(): Task {
    if (this.sub === null) return;
    yield* this.mutex.lock();
    for (const att of this.attachments) yield* this.zapAttachment(att, 0, this.nrPages);
    this.mutex.unlock();
    yield* this.host.mmuNotifierUnregister(this.sub);
    this.sub = null;
  }

  /** xpmem_attach: maps the segment into B's address space; B's hva, or a negative errno. */
  *attach(mm: Mm, write = true): Task<XpmemAttachment | number> {
    if (this.released || this.sub === null) return -EINVAL;
    let att: XpmemAttachment | null = null;
    const ops: VmOperations = {
      name: this.name,
      fault: (_mm, hva, w) => this.fault(att!, hva, w),
      close: (_mm, start, end) => this.close(att!, start, end),
    };
    const hva = yield* this.host.mmapDevice(mm, this.nrPages * PAGE_SIZE, write ? PROT_READ | PROT_WRITE : PROT_READ, ops);
    if (hva < 0) return hva;
    att = new XpmemAttachment(this, mm, hva);
    this.attachments.push(att);
    return att;
  }

  // ---- B's faults ----------------------------------------------------------------------

  /** xpmem_fault, with B's mmap_lock held for read. 0 (the access retries) or VM_FAULT_SIGSEGV. */
  private *fault(att: XpmemAttachment, hvaB: number, write: boolean): Task<number> {
    const index = Math.floor((hvaB - att.hva) / PAGE_SIZE);
    const srcHva = this.start + index * PAGE_SIZE;
    for (let tries = 0; tries < XPMEM_MAX_RETRIES; tries++) {
      yield* this.mutex.lock();
      while (this.activeRanges > 0 && !this.released) {
        this.mutex.unlock();
        yield* this.rangeWait.waitEvent(() => this.activeRanges === 0 || this.released);
        yield* this.mutex.lock();
      }
      if (this.released || att.detached) {
        this.mutex.unlock();
        return VM_FAULT_SIGSEGV;
      }
      const f: Faulter = { index, retry: false };
      this.inflight.push(f);
      this.mutex.unlock();

      const pfn = yield* this.host.getUserPages(this.mm, srcHva, write);
      if (pfn >= 0) {
        this.refsHeld++;
        yield* sleepTicks(XPMEM_FAULT_TICKS, 'xpmem-fault');
      }
      yield* this.mutex.lock();
      this.inflight.splice(this.inflight.indexOf(f), 1);
      if (pfn < 0) {
        this.mutex.unlock();
        return VM_FAULT_SIGSEGV;
      }
      if ((f.retry && !this.debug.noRetryMark) || this.released || att.detached) {
        this.mutex.unlock();
        this.putRef(pfn, false);
        this.stats.retries++;
        continue;
      }
      const had = att.pfns[index]!;
      const r = yield* this.host.vmfInsertPfn(att.mm, hvaB, pfn, write);
      if (r === 0 && had === NO_PAGE) {
        att.pfns[index] = pfn;
        att.writable[index] = write ? 1 : 0;
        this.stats.faults++;
      } else {
        // Another fault mapped it first (or upgraded the same pfn): our reference goes.
        if (r === 0 && write && had === pfn) att.writable[index] = 1;
        this.putRef(pfn, false);
      }
      this.mutex.unlock();
      return 0;
    }
    return VM_FAULT_SIGSEGV;
  }

  /** ->close: B unmapped [start, end) of the attach VMA (munmap, exit); its ptes are gone. */
  private *close(att: XpmemAttachment, start: number, end: number): Task {
    yield* this.mutex.lock();
    const first = Math.floor((start - att.hva) / PAGE_SIZE);
    const last = Math.ceil((end - att.hva) / PAGE_SIZE);
    for (let i = Math.max(0, first); i < Math.min(this.nrPages, last); i++) this.dropEntry(att, i);
    if (att.pfns.every((p) => p === NO_PAGE) && first <= 0 && last >= this.nrPages) {
      att.detached = true;
      this.attachments.splice(this.attachments.indexOf(att), 1);
    }
    this.mutex.unlock();
  }

  // ---- A's notifier ----------------------------------------------------------------------

  private pageRange(range: { start: number; end: number }): [number, number] {
    const first = Math.max(0, Math.floor((range.start - this.start) / PAGE_SIZE));
    const last = Math.min(this.nrPages, Math.ceil((range.end - this.start) / PAGE_SIZE));
    return [first, last];
  }

  private mapped(first: number, last: number): boolean {
    for (const att of this.attachments) for (let i = first; i < last; i++) if (att.pfns[i] !== NO_PAGE) return true;
    return false;
  }

  /** xpmem_invalidate_range_start. */
  private *invalidateRangeStart(range: MmuNotifierRange): Task<number> {
    const [first, last] = this.pageRange(range);
    if (first >= last) return 0;
    if (!range.blockable) {
      // The OOM reaper: a recall would sleep, so refuse unless nothing is attached here.
      if (!this.mutex.tryLock()) return this.refuse();
      if (this.mapped(first, last) || this.inflight.length > 0) {
        this.mutex.unlock();
        return this.refuse();
      }
    } else {
      yield* this.mutex.lock();
    }
    this.activeRanges++;
    if (!this.debug.noRetryMark) for (const f of this.inflight) if (f.index >= first && f.index < last) f.retry = true;
    if (this.debug.asyncRecall) {
      this.mutex.unlock();
      this.host.kthreadRun(`${this.name}-recall`, () => this.recallLater(first, last));
      return 0;
    }
    if (range.blockable && this.mapped(first, last)) yield* this.recall(first, last);
    this.mutex.unlock();
    return 0;
  }

  private refuse(): number {
    this.stats.eagain++;
    return -EAGAIN;
  }

  /** xpmem_invalidate_range_end. */
  private *invalidateRangeEnd(range: MmuNotifierRange): Task {
    const [first, last] = this.pageRange(range);
    if (first >= last) return;
    yield* this.mutex.lock();
    if (--this.activeRanges === 0) this.rangeWait.wakeAll();
    this.mutex.unlock();
  }

  /** The recall, mutex held: the remote round trip, then B's ptes and our references go. */
  private *recall(first: number, last: number): Task {
    this.stats.recalls++;
    yield* sleepTicks(XPMEM_RECALL_TICKS, 'xpmem-recall');
    for (const att of this.attachments) yield* this.zapAttachment(att, first, last);
  }

  /** debug.asyncRecall: the recall after the host has gone on. */
  private *recallLater(first: number, last: number): Task {
    yield* this.mutex.lock();
    yield* this.recall(first, last);
    this.mutex.unlock();
  }

  private *zapAttachment(att: XpmemAttachment, first: number, last: number): Task {
    let lo = -1;
    let hi = -1;
    for (let i = first; i < last; i++) {
      if (att.pfns[i] === NO_PAGE) continue;
      if (lo < 0) lo = i;
      hi = i + 1;
    }
    if (lo < 0 || att.detached) return;
    yield* this.host.zapVmaPtes(att.mm, att.hva + lo * PAGE_SIZE, (hi - lo) * PAGE_SIZE);
    for (let i = lo; i < hi; i++) this.dropEntry(att, i);
  }

  private dropEntry(att: XpmemAttachment, i: number): void {
    const pfn = att.pfns[i]!;
    if (pfn === NO_PAGE) return;
    att.pfns[i] = NO_PAGE;
    this.putRef(pfn, att.writable[i] === 1);
    att.writable[i] = 0;
    this.stats.zappedPages++;
  }

  private putRef(pfn: number, dirty: boolean): void {
    this.refsHeld--;
    this.host.putPage(pfn, dirty);
  }

  /** mmu_notifier_release: A is exiting; every attachment loses its pages. */
  private *release(): Task {
    yield* this.mutex.lock();
    this.released = true;
    for (const att of this.attachments) yield* this.zapAttachment(att, 0, this.nrPages);
    this.rangeWait.wakeAll();
    this.mutex.unlock();
  }

  // ---- the 2008 notifier -----------------------------------------------------------------

  /**
   * 2008 invalidate_page, under A's PT lock: the recall needs the mutex and the round
   * trip, so it runs here as it would have to, in atomic context. lockdep reports the
   * mutex_lock under the spinlock (a strict scheduler throws right there; a lenient one
   * lets the uncontended lock through, and runSync throws at the round trip's sleep);
   * the half-done recall is unwound and B's pte stays.
   */
  private invalidatePageAtomic(hva: number): void {
    const [first, last] = this.pageRange({ start: hva, end: hva + PAGE_SIZE });
    if (first >= last || !this.mapped(first, last)) return;
    const task = this.lockedRecall(first, last);
    try {
      runSync(task);
    } catch {
      task.return(undefined);
      this.stats.atomicRecallsFailed++;
    }
  }

  private *lockedRecall(first: number, last: number): Task {
    yield* this.mutex.lock();
    try {
      yield* this.recall(first, last);
    } finally {
      this.mutex.unlock();
    }
  }

  /** 2008 invalidate_range_end: after A's ptes are gone (munmap, DONTNEED), the late recall. */
  private *recallAndEnd(range: MmuNotifierRange): Task {
    const [first, last] = this.pageRange(range);
    if (first >= last || !this.mapped(first, last)) return;
    yield* this.lockedRecall(first, last);
  }

  dump(): Record<string, unknown> {
    return {
      name: this.name,
      range: `[0x${this.start.toString(16)}, 0x${(this.start + this.nrPages * PAGE_SIZE).toString(16)})`,
      attachments: this.attachments.map((a) => ({ mm: a.mm.id, hva: `0x${a.hva.toString(16)}`, mapped: a.pfns.filter((p) => p !== NO_PAGE).length })),
      activeRanges: this.activeRanges,
      refsHeld: this.refsHeld,
      stats: { ...this.stats },
    };
  }
}

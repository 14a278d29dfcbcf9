// The host kernel facade: owns RAM, swap, the LRU, the notifier core and the process
// table, and exposes the syscalls and kernel services (GUP, notifiers) as Tasks.
// The allocator's slow path (mm/page_alloc.c __alloc_pages_slowpath) lives here
// because it ties reclaim and the OOM killer together.
//
// Every syscall that may sleep is a generator: call it with `yield*` from a simulated
// thread. hvas are unsigned 32-bit, page aligned where a length is involved.

import { EventEmitter } from 'eventemitter3';
import { preempt, sleepTicks, WaitQueue } from '../sched/index.js';
import type { Scheduler, SimThread, Task } from '../sched/index.js';
import { EBUSY, EFAULT, EINVAL, ENOMEM, accessRead, accessWrite } from './fault.js';
import { FrameTable, PG_active, PG_lru, PG_referenced, defaultWatermarks } from './frames.js';
import type { Watermarks } from './frames.js';
import { getUserPageFastOnly, getUserPages, pinUserPages, putPage, unpinUserPage } from './gup.js';
import { Lru } from './lru.js';
import { dupMm } from './fork.js';
import type { ForkDebug } from './fork.js';
import { freeSwapCacheLocked, zapPageRange } from './memory.js';
import { Mm, Process } from './mm.js';
import type { AnonVma } from './mm.js';
import type { NotifierEra } from './mm.js';
import { MmuNotifierCore } from './mmu-notifier.js';
import type { MmuNotifier, MmuNotifierOps } from './mmu-notifier.js';
import { outOfMemory } from './oom.js';
import type { OomReport } from './oom.js';
import { PAGE_SHIFT, PAGE_SIZE, PTE_DIRTY, PTE_SPECIAL, PTE_WRITE, PTE_YOUNG, pfnPte, ptePfn, ptePresent } from './pte.js';
import { HostContext } from './stats.js';
import type { VmStats } from './stats.js';
import { SwapDevice } from './swap.js';
import { MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, kswapd, nodeHopeless, reclaimUserPage, shrinkNode } from './vmscan.js';
import type { UserPageReclaim } from './vmscan.js';
import { PROT_READ, PROT_WRITE, isPageAligned, pageAlignUp } from './vma.js';
import type { Vma, VmOperations } from './vma.js';

export const MADV_DONTNEED = 4;

export interface HostKernelOptions {
  readonly ramBytes: number;
  /** Default: twice RAM. */
  readonly swapBytes?: number;
  /** Back swap with this file (created/truncated) instead of memory. */
  readonly swapFile?: string;
  /** Simulated ticks a swap-in read sleeps. Default 50. */
  readonly swapReadLatency?: number;
  /** Simulated ticks a pageout write sleeps. Default 50. */
  readonly swapWriteLatency?: number;
  /** Notifier era of new processes. Default 'modern'. */
  readonly era?: NotifierEra;
  /** Threads for kswapd and for everything that sleeps; without one only runSync-able work is possible. */
  readonly sched?: Scheduler | null;
  /** Trace bus ('host' channel). Default: a private emitter. */
  readonly events?: EventEmitter;
  readonly watermarks?: Partial<Watermarks>;
  /** Start kswapd (default: true when a scheduler is given). */
  readonly kswapd?: boolean;
}

export interface HostStats extends VmStats {
  nrFrames: number;
  nrFree: number;
  nrActive: number;
  nrInactive: number;
  nrIsolated: number;
  swapSlots: number;
  swapUsed: number;
  swapCached: number;
  processes: number;
}

export class HostKernel {
  readonly ctx: HostContext;
  readonly events: EventEmitter;
  readonly frames: FrameTable;
  readonly swap: SwapDevice;
  readonly lru: Lru;
  readonly mn: MmuNotifierCore;
  readonly sched: Scheduler | null;
  readonly era: NotifierEra;
  readonly processes = new Map<number, Process>();
  readonly oomReports: OomReport[] = [];
  /** Pages isolated from the LRU by reclaimers right now. */
  nrIsolated = 0;
  /** Test-only switches of fork's copy-on-write (fork.ts). */
  readonly forkDebug: ForkDebug = { noWriteProtectNotify: false, noWpCopyNotify: false };

  readonly kswapdWait = new WaitQueue('kswapd_wait');
  kswapdWanted = false;
  /** kswapd is between a wakeup and going back to sleep. */
  kswapdActive = false;
  readonly kswapdThread: SimThread | null = null;

  private readonly mms = new Map<number, Mm>();
  /** mm id -> its fork tree's anon_vma, for every id a frame's rmap may still name. */
  private readonly anonVmas = new Map<number, AnonVma>();
  private nextPid = 1;
  private nextMmId = 1;

  constructor(opts: HostKernelOptions) {
    this.events = opts.events ?? new EventEmitter();
    this.ctx = new HostContext(this.events);
    const nrFrames = Math.floor(opts.ramBytes / PAGE_SIZE);
    const wm = { ...defaultWatermarks(nrFrames), ...opts.watermarks };
    if (!(wm.min < wm.low && wm.low < wm.high && wm.high < nrFrames)) {
      throw new RangeError(`watermarks must satisfy min < low < high < frames: ${JSON.stringify(wm)} with ${nrFrames} frames`);
    }
    this.frames = new FrameTable(opts.ramBytes, wm);
    this.swap = new SwapDevice(
      {
        swapBytes: opts.swapBytes ?? 2 * opts.ramBytes,
        swapFile: opts.swapFile,
        readLatency: opts.swapReadLatency ?? 50,
        writeLatency: opts.swapWriteLatency ?? 50,
      },
      this.frames,
      this.ctx,
    );
    this.lru = new Lru(this.frames);
    this.mn = new MmuNotifierCore(this.ctx);
    this.sched = opts.sched ?? null;
    this.era = opts.era ?? 'modern';
    if (this.sched !== null && (opts.kswapd ?? true)) {
      this.kswapdThread = this.sched.spawn('kswapd0', () => kswapd(this), { daemon: true });
    }
  }

  get now(): number {
    return this.sched?.now ?? 0;
  }

  mmById(id: number): Mm | undefined {
    return this.mms.get(id);
  }

  /** The anon_vma a frame's rmapMm leads to (the mm itself may have exited). */
  anonVmaOf(mmId: number): AnonVma | undefined {
    return this.anonVmas.get(mmId);
  }

  /** anon_vma_fork: the child joins the parent's fork tree before any pte is copied. */
  anonVmaFork(child: Mm, parent: Mm): void {
    child.anonVma.unlink(child);
    child.anonVma = parent.anonVma;
    child.anonVma.link(child);
    this.anonVmas.set(child.id, child.anonVma);
  }

  /** Every mm not yet torn down (including ones mid-exit). */
  allMms(): IterableIterator<Mm> {
    return this.mms.values();
  }

  // ---- page lifetime -----------------------------------------------------------------

  /** folio_put: drops one reference; the last one frees the page. */
  folioPut(pfn: number): void {
    const n = --this.frames.refcount[pfn]!;
    if (n === 0) this.freePage(pfn);
    else if (n < 0) throw new Error(`BUG: refcount underflow on pfn ${pfn}`);
  }

  /** __folio_put: refcount is 0; off the LRU, back to the free list. */
  freePage(pfn: number): void {
    const fr = this.frames;
    if (fr.flags[pfn]! & PG_lru) this.lru.del(pfn);
    fr.flags[pfn]! &= ~(PG_active | PG_referenced);
    fr.freeFrame(pfn);
    this.ctx.stats.pgfree++;
    if (this.ctx.tracing()) this.ctx.trace({ type: 'page-free', pfn });
  }

  /** free_swap_and_cache: a cache page no pte refers to goes, unless someone holds its lock. */
  freeSwapCache(pfn: number): void {
    const fr = this.frames;
    fr.refcount[pfn]!++;
    if (fr.trylockPage(pfn)) {
      freeSwapCacheLocked(this, pfn);
      fr.unlockPage(pfn);
    }
    this.folioPut(pfn);
  }

  wakeupKswapd(): void {
    if (this.kswapdThread === null || this.kswapdWanted) return;
    this.kswapdWanted = true;
    if (!this.kswapdActive) this.ctx.stats.kswapdWakeups++;
    this.kswapdWait.wakeAll();
  }

  /**
   * alloc_pages(GFP_HIGHUSER_MOVABLE, 0): a frame with refcount 1, or -1 when memory
   * is exhausted and the OOM killer found nothing more to kill (or `mm`'s owner was
   * the victim). Fast path above the min watermark; below low it wakes kswapd; below
   * min the caller reclaims directly, then retries, then OOM-kills.
   *
   * should_reclaim_retry stops retrying when reclaim cannot help. Linux asks whether
   * free + reclaimable pages would meet the min watermark and counts any page freed
   * as progress; a round that frees less than a batch on a node that is hopeless
   * (nodeHopeless: even everything reclaimable could not bring it back to high,
   * because the rest is pinned) goes to the OOM killer at once instead. Its "progress"
   * is the last unpinned pages, which the allocating task faults straight back in:
   * Linux would thrash there for ever, and the OOM kill is what a pinning VMM that
   * overcommitted the host has coming.
   */
  *allocPage(mm: Mm | null): Task<number> {
    const fr = this.frames;
    const wm = fr.watermarks;
    if (fr.nrFree > wm.min) {
      const pfn = fr.rmqueue();
      if (fr.nrFree < wm.low) this.wakeupKswapd();
      this.ctx.stats.pgalloc++;
      if (this.ctx.tracing()) this.ctx.trace({ type: 'page-alloc', pfn, nrFree: fr.nrFree });
      return pfn;
    }
    this.wakeupKswapd();
    let noProgress = 0;
    for (;;) {
      if (mm?.owner?.killed) {
        // An OOM victim may use the reserves to get out of the way, never wait for them.
        const pfn = fr.rmqueue();
        if (pfn >= 0) this.ctx.stats.pgalloc++;
        return pfn;
      }
      this.ctx.stats.allocstall++;
      const reclaimed = yield* shrinkNode(this, SWAP_CLUSTER_MAX);
      if (reclaimed >= SWAP_CLUSTER_MAX || !nodeHopeless(this)) {
        if (fr.nrFree > (reclaimed > 0 ? 0 : wm.min)) {
          this.ctx.stats.pgalloc++;
          return fr.rmqueue();
        }
        if (reclaimed > 0) {
          noProgress = 0;
          continue;
        }
        // Others hold pages isolated (mid-pageout): they will come back or be freed.
        if (this.nrIsolated > 0) {
          yield* sleepTicks(1, 'reclaim-throttle');
          continue;
        }
        if (++noProgress < MAX_RECLAIM_RETRIES) {
          yield* preempt();
          continue;
        }
      }
      noProgress = 0;
      const retry = yield* outOfMemory(this, mm);
      if (fr.nrFree > 0 && retry && !mm?.owner?.killed) {
        this.ctx.stats.pgalloc++;
        return fr.rmqueue();
      }
      if (!retry) return -1;
    }
  }

  // ---- processes ---------------------------------------------------------------------

  createProcess(name: string, opts: { era?: NotifierEra; oomUnkillable?: boolean } = {}): Process {
    const mm = new Mm(this.nextMmId++, opts.era ?? this.era);
    this.mms.set(mm.id, mm);
    this.anonVmas.set(mm.id, mm.anonVma);
    const p = new Process(this.nextPid++, name, mm);
    p.oomUnkillable = opts.oomUnkillable ?? false;
    this.processes.set(p.pid, p);
    if (this.ctx.tracing()) this.ctx.trace({ type: 'process-create', pid: p.pid, name, mm: mm.id, era: mm.era });
    return p;
  }

  /**
   * do_exit -> exit_mmap: mmu_notifier_release first (every page still mapped), then
   * every VMA is zapped and the mm dies. Pages someone still holds (gup, pins) stay
   * allocated until put.
   */
  *exitProcess(p: Process): Task {
    if (p.exited) return;
    p.exited = true;
    const mm = p.mm;
    yield* this.mn.release(mm);
    yield* mm.mmapLock.downWrite();
    try {
      for (const v of [...mm.vmas.list]) {
        yield* zapPageRange(this, mm, v.start, v.end, 'unmap');
        yield* this.removeVmas(mm, v.start, v.end);
      }
      mm.dead = true;
    } finally {
      mm.mmapLock.upWrite();
    }
    mm.owner = null;
    this.processes.delete(p.pid);
    this.mms.delete(mm.id);
    if (mm.anonVma.unlink(mm)) for (const id of mm.anonVma.ids) this.anonVmas.delete(id);
    if (this.ctx.tracing()) this.ctx.trace({ type: 'process-exit', pid: p.pid, name: p.name });
  }

  // ---- syscalls ----------------------------------------------------------------------

  /**
   * fork (the mm half: dup_mmap): a child process with a copy of every VMA, whose
   * anon pages are shared copy-on-write with the parent: the child, or -ENOMEM.
   */
  fork(parent: Process, name?: string): Task<Process | number> {
    return dupMm(this, parent, name ?? parent.name);
  }

  /** mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS): hva, or a negative errno. */
  *mmap(mm: Mm, len: number, prot: number = PROT_READ | PROT_WRITE): Task<number> {
    if (!(len > 0)) return -EINVAL;
    const size = pageAlignUp(len);
    yield* mm.mmapLock.downWrite();
    try {
      if (mm.dead) return -EINVAL;
      const hva = mm.vmas.findGap(size);
      if (hva < 0) return -ENOMEM;
      mm.vmas.insert({ start: hva, end: hva + size, prot });
      if (this.ctx.tracing()) this.ctx.trace({ type: 'mmap', mm: mm.id, hva, len: size, prot });
      return hva;
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  *munmap(mm: Mm, hva: number, len: number): Task<number> {
    if (!isPageAligned(hva) || !(len > 0)) return -EINVAL;
    const end = hva + pageAlignUp(len);
    yield* mm.mmapLock.downWrite();
    try {
      yield* zapPageRange(this, mm, hva, end, 'unmap');
      yield* this.removeVmas(mm, hva, end);
      if (this.ctx.tracing()) this.ctx.trace({ type: 'munmap', mm: mm.id, hva, len: end - hva });
      return 0;
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  /** madvise(MADV_DONTNEED): the range reads back as zeroes. -ENOMEM over a hole. */
  *madvise(mm: Mm, hva: number, len: number, advice: number): Task<number> {
    if (advice !== MADV_DONTNEED) return -EINVAL;
    if (!isPageAligned(hva) || !(len > 0)) return -EINVAL;
    const end = hva + pageAlignUp(len);
    yield* mm.mmapLock.downRead();
    try {
      if (!this.rangeMapped(mm, hva, end)) return -ENOMEM;
      // madvise_dontneed_valid_vma: not on a driver's VM_PFNMAP mapping.
      if (this.rangeHasDeviceVma(mm, hva, end)) return -EINVAL;
      yield* zapPageRange(this, mm, hva, end, 'clear');
      return 0;
    } finally {
      mm.mmapLock.upRead();
    }
  }

  /**
   * mprotect with PROT_READ or PROT_READ|PROT_WRITE (PROT_NONE is not modelled).
   * Removing write clears the write bit of every present pte inside a start/end
   * pair; adding it leaves ptes read-only and the next write fault upgrades them.
   */
  *mprotect(mm: Mm, hva: number, len: number, prot: number): Task<number> {
    if (!isPageAligned(hva) || !(len > 0) || !(prot & PROT_READ) || prot & ~(PROT_READ | PROT_WRITE)) return -EINVAL;
    const end = hva + pageAlignUp(len);
    yield* mm.mmapLock.downWrite();
    try {
      if (!this.rangeMapped(mm, hva, end)) return -ENOMEM;
      mm.vmas.protect(hva, end, prot);
      if (this.ctx.tracing()) this.ctx.trace({ type: 'mprotect', mm: mm.id, hva, len: end - hva, prot });
      if (prot & PROT_WRITE) return 0;
      const range = { mm, start: hva, end, event: 'protection', blockable: true } as const;
      yield* this.mn.invalidateRangeStart(range);
      yield* mm.ptl.lock();
      mm.pt.forEachInRange(hva >>> PAGE_SHIFT, end >>> PAGE_SHIFT, (page, pte) => {
        if (ptePresent(pte) && pte & PTE_WRITE) mm.pt.set(page, pte & ~PTE_WRITE);
      });
      mm.ptl.unlock();
      yield* this.mn.invalidateRangeEnd(range);
      return 0;
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  /** remove_vma: the pieces leave the set, then each driver mapping's ->close runs. */
  private *removeVmas(mm: Mm, start: number, end: number): Task {
    const removed: Vma[] = mm.vmas.remove(start, end);
    for (const v of removed) if (v.ops?.close !== undefined) yield* v.ops.close(mm, v.start, v.end);
  }

  private rangeHasDeviceVma(mm: Mm, start: number, end: number): boolean {
    for (const v of mm.vmas.list) if (v.ops !== undefined && v.start < end && start < v.end) return true;
    return false;
  }

  /**
   * A driver's mmap of its device (XPMEM's attach): a VM_PFNMAP VMA whose faults go to
   * ops.fault, which fills it with vmfInsertPfn. hva, or a negative errno.
   */
  *mmapDevice(mm: Mm, len: number, prot: number, ops: VmOperations): Task<number> {
    if (!(len > 0)) return -EINVAL;
    const size = pageAlignUp(len);
    yield* mm.mmapLock.downWrite();
    try {
      if (mm.dead) return -EINVAL;
      const hva = mm.vmas.findGap(size);
      if (hva < 0) return -ENOMEM;
      mm.vmas.insert({ start: hva, end: hva + size, prot, ops });
      if (this.ctx.tracing()) this.ctx.trace({ type: 'mmap', mm: mm.id, hva, len: size, prot, device: ops.name });
      return hva;
    } finally {
      mm.mmapLock.upWrite();
    }
  }

  /**
   * vmf_insert_pfn_prot, from a driver's ->fault: a special pte for pfn at hva, which
   * must lie in a driver VMA. The pte holds no reference (the driver keeps its own)
   * and is writable only if asked for and the VMA allows it. An existing special pte
   * for the same pfn is upgraded; any other pte is left alone. 0 or -EBUSY / -EFAULT.
   */
  *vmfInsertPfn(mm: Mm, hva: number, pfn: number, write: boolean): Task<number> {
    const vma = mm.vmas.find(hva);
    if (vma?.ops === undefined || pfn < 0 || pfn >= this.frames.nrFrames) return -EFAULT;
    const page = hva >>> PAGE_SHIFT;
    const flags = PTE_SPECIAL | PTE_YOUNG | (write && vma.prot & PROT_WRITE ? PTE_WRITE | PTE_DIRTY : 0);
    yield* mm.ptl.lock();
    const cur = mm.pt.get(page);
    let r = 0;
    if (cur === 0) mm.pt.set(page, pfnPte(pfn, flags));
    else if (ptePresent(cur) && cur & PTE_SPECIAL && ptePfn(cur) === pfn) mm.pt.set(page, cur | flags);
    else r = -EBUSY;
    mm.ptl.unlock();
    return r;
  }

  /**
   * zap_vma_ptes: clears the special ptes of [hva, hva + len) in a driver VMA, inside
   * invalidate_range_start/end of that mm (its own secondary MMUs drop them too).
   * The caller holds whatever keeps the VMA alive (XPMEM: its segment mutex).
   */
  *zapVmaPtes(mm: Mm, hva: number, len: number): Task {
    const vma = mm.vmas.find(hva);
    if (vma?.ops === undefined || hva + len > vma.end) return;
    yield* zapPageRange(this, mm, hva, hva + len, 'clear');
  }

  private rangeMapped(mm: Mm, start: number, end: number): boolean {
    let at = start;
    while (at < end) {
      const v = mm.vmas.find(at);
      if (v === undefined) return false;
      at = v.end;
    }
    return true;
  }

  /** copy_to_user: 0 or -EFAULT / -ENOMEM / -EINTR. */
  accessWrite(mm: Mm, hva: number, src: Uint8Array): Task<number> {
    return accessWrite(this, mm, hva, src);
  }

  /** copy_from_user: 0 or -EFAULT / -ENOMEM / -EINTR. */
  accessRead(mm: Mm, hva: number, dst: Uint8Array): Task<number> {
    return accessRead(this, mm, hva, dst);
  }

  // ---- services for secondary MMUs ---------------------------------------------------

  getUserPages(mm: Mm, hva: number, write: boolean): Task<number> {
    return getUserPages(this, mm, hva, write);
  }
  getUserPageFastOnly(mm: Mm, hva: number, write: boolean): number {
    return getUserPageFastOnly(this, mm, hva, write);
  }
  pinUserPages(mm: Mm, hva: number, write: boolean): Task<number> {
    return pinUserPages(this, mm, hva, write);
  }
  putPage(pfn: number, dirty = false): void {
    putPage(this, pfn, dirty);
  }
  unpinUserPage(pfn: number, dirty = false): void {
    unpinUserPage(this, pfn, dirty);
  }

  /** mmu_notifier_register; null when the mm has already exited. */
  mmuNotifierRegister(mm: Mm, name: string, ops: MmuNotifierOps): Task<MmuNotifier | null> {
    return this.mn.register(mm, name, ops);
  }
  mmuNotifierUnregister(sub: MmuNotifier): Task {
    return this.mn.unregister(sub);
  }

  /**
   * Idle page tracking (mm/page_idle.c): clears the young state of [start, end), host
   * ptes and secondary MMUs (clear_young, no flush); returns how many pages had it.
   */
  *clearYoungRange(mm: Mm, start: number, end: number): Task<number> {
    let young = 0;
    yield* mm.ptl.lock();
    mm.pt.forEachInRange(start >>> PAGE_SHIFT, end >>> PAGE_SHIFT, (page, pte) => {
      if (!ptePresent(pte)) return;
      const hva = page * PAGE_SIZE;
      let y = (pte & PTE_YOUNG) !== 0;
      if (y) mm.pt.set(page, pte & ~PTE_YOUNG);
      if (this.mn.clearYoung(mm, hva, hva + PAGE_SIZE)) y = true;
      if (y) young++;
    });
    mm.ptl.unlock();
    return young;
  }

  /** Whether the page at hva was accessed since its young state was last cleared. */
  *testYoung(mm: Mm, hva: number): Task<boolean> {
    yield* mm.ptl.lock();
    const pte = mm.pt.get(hva >>> PAGE_SHIFT);
    const young = (ptePresent(pte) && (pte & PTE_YOUNG) !== 0) || this.mn.testYoung(mm, hva & ~(PAGE_SIZE - 1));
    mm.ptl.unlock();
    return young;
  }

  /** Forced reclaim (like writing to memory.reclaim): returns pages freed. */
  reclaim(nrPages: number): Task<number> {
    return shrinkNode(this, nrPages);
  }

  /** Reclaims the one page mapping hva in mm now (reclaim_pages, as MADV_PAGEOUT does), or says why not. */
  reclaimUserPage(mm: Mm, hva: number): Task<UserPageReclaim> {
    return reclaimUserPage(this, mm, hva);
  }

  /**
   * Waits until no reclaim is in flight (kswapd asleep, nothing isolated), so that
   * audits see a quiescent kernel. Only meaningful when the caller's own process
   * threads are done.
   */
  *settle(): Task {
    while (this.kswapdActive || this.kswapdWanted || this.nrIsolated > 0) yield* sleepTicks(1, 'settle');
  }

  /** Stops kswapd and closes the swap store. */
  shutdown(): void {
    if (this.kswapdThread !== null && this.sched !== null) this.sched.kill(this.kswapdThread);
    this.swap.close();
  }

  // ---- introspection -----------------------------------------------------------------

  stats(): HostStats {
    return {
      ...this.ctx.stats,
      nrFrames: this.frames.nrFrames,
      nrFree: this.frames.nrFree,
      nrActive: this.lru.nrActive,
      nrInactive: this.lru.nrInactive,
      nrIsolated: this.nrIsolated,
      swapSlots: this.swap.nrSlots,
      swapUsed: this.swap.nrUsed,
      swapCached: this.swap.cache.size,
      processes: this.processes.size,
    };
  }

  dump(): Record<string, unknown> {
    return {
      frames: this.frames.dump(),
      lru: this.lru.dump(),
      swap: this.swap.dump(),
      kswapd: this.kswapdThread === null ? 'none' : this.kswapdThread.state,
      mmuNotifier: this.mn.dump(),
      processes: [...this.processes.values()].map((p) => ({
        pid: p.pid,
        name: p.name,
        killed: p.killed,
        mm: p.mm.dump(),
      })),
      stats: this.ctx.stats,
      oomReports: this.oomReports.map((r) => r.message),
      log: this.ctx.log.slice(-20),
    };
  }

  /** Human-readable summary for the debug console (`info host`). */
  dumpText(): string {
    const s = this.stats();
    const lines = [
      `host RAM ${s.nrFrames} frames (${s.nrFrames * 4} kB), free ${s.nrFree} ` +
        `(min ${this.frames.watermarks.min} low ${this.frames.watermarks.low} high ${this.frames.watermarks.high})`,
      `lru: active ${s.nrActive} inactive ${s.nrInactive} isolated ${s.nrIsolated}`,
      `swap: ${s.swapUsed}/${s.swapSlots} slots used, ${s.swapCached} cached${this.swap.path ? ` (${this.swap.path})` : ''}`,
      `vmstat: pgfault ${s.pgfault} pgmajfault ${s.pgmajfault} pswpin ${s.pswpin} pswpout ${s.pswpout} ` +
        `pgscan ${s.pgscan} pgsteal ${s.pgsteal} kswapd_wakeups ${s.kswapdWakeups} allocstall ${s.allocstall} oom_kill ${s.oomKill}`,
    ];
    for (const p of this.processes.values()) {
      lines.push(
        `  pid ${p.pid} ${p.name}${p.killed ? ' (killed)' : ''}: mm${p.mm.id} ${p.mm.era} rss ${p.mm.anonRss * 4}kB swap ${p.mm.swapEnts} ` +
          `notifiers [${p.mm.notifiers.map((n) => n.name).join(', ')}]`,
      );
    }
    return lines.join('\n');
  }
}


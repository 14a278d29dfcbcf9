// The host kernel facade: owns RAM, swap, the LRU, the notifier core and the process
// table, and exposes the syscalls and kernel services (GUP, notifiers) as Tasks.
// Each method is one line into the file of mm/ that holds its logic (page-alloc.ts,
// mmap.ts, madvise.ts, mprotect.ts, exit.ts, memory.ts, page-idle.ts, gup.ts,
// vmscan.ts, fork.ts, fault.ts), so the host reads like mm/ and each function
// takes only the state it names.
//
// Every syscall that may sleep is a generator: call it with `yield*` from a simulated
// thread. hvas are unsigned 32-bit, page aligned where a length is involved.

import { EventEmitter } from 'eventemitter3';
import { sleepTicks, WaitQueue } from '../sched/index.js';
import type { Scheduler, SimThread, Task } from '../sched/index.js';
import { doExit } from './exit.js';
import { accessRead, accessWrite } from './fault.js';
import { FrameTable, defaultWatermarks } from './frames.js';
import type { Watermarks } from './frames.js';
import { getUserPageFastOnly, getUserPages, pinUserPages, putPage, unpinUserPage } from './gup.js';
import { Lru } from './lru.js';
import { dupMm } from './fork.js';
import type { ForkDebug } from './fork.js';
import { doMadvise } from './madvise.js';
import { freeSwapCache, vmfInsertPfn, zapVmaPtes } from './memory.js';
import { Mm, Process } from './mm.js';
import type { AnonVma } from './mm.js';
import type { NotifierEra } from './mm.js';
import { doMmap, doMunmap } from './mmap.js';
import { MmuNotifierCore } from './mmu-notifier.js';
import type { MmuNotifier, MmuNotifierOps } from './mmu-notifier.js';
import type { OomReport } from './oom.js';
import { doMprotect } from './mprotect.js';
import { allocPage, folioPut, freePage, wakeupKswapd } from './page-alloc.js';
import { clearYoungRange, testYoung } from './page-idle.js';
import { PAGE_SIZE } from './pte.js';
import { HostContext } from './stats.js';
import type { VmStats } from './stats.js';
import { SwapDevice } from './swap.js';
import { kswapd, reclaimUserPage, shrinkNode } from './vmscan.js';
import type { UserPageReclaim } from './vmscan.js';
import { PROT_READ, PROT_WRITE } from './vma.js';
import type { VmOperations } from './vma.js';

export { MADV_DONTNEED } from './madvise.js';

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

  // ---- page lifetime (page-alloc.ts, memory.ts) ---------------------------------------

  folioPut(pfn: number): void {
    folioPut(this, pfn);
  }
  freePage(pfn: number): void {
    freePage(this, pfn);
  }
  freeSwapCache(pfn: number): void {
    freeSwapCache(this, pfn);
  }
  wakeupKswapd(): void {
    wakeupKswapd(this);
  }
  allocPage(mm: Mm | null): Task<number> {
    return allocPage(this, mm);
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

  /** do_exit (exit.ts). */
  exitProcess(p: Process): Task {
    return doExit(this, p);
  }

  /** The exited process and its mm leave the tables (the mm's fork tree may outlive it). */
  forgetProcess(p: Process): void {
    const mm = p.mm;
    this.processes.delete(p.pid);
    this.mms.delete(mm.id);
    if (mm.anonVma.unlink(mm)) for (const id of mm.anonVma.ids) this.anonVmas.delete(id);
  }

  // ---- syscalls ----------------------------------------------------------------------

  /**
   * fork (the mm half: dup_mmap): a child process with a copy of every VMA, whose
   * anon pages are shared copy-on-write with the parent: the child, or -ENOMEM.
   */
  fork(parent: Process, name?: string): Task<Process | number> {
    return dupMm(this, parent, name ?? parent.name);
  }

  /** mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS): hva, or a negative errno (mmap.ts). */
  mmap(mm: Mm, len: number, prot: number = PROT_READ | PROT_WRITE): Task<number> {
    return doMmap(this, mm, len, prot);
  }
  munmap(mm: Mm, hva: number, len: number): Task<number> {
    return doMunmap(this, mm, hva, len);
  }
  /** madvise(MADV_DONTNEED) (madvise.ts). */
  madvise(mm: Mm, hva: number, len: number, advice: number): Task<number> {
    return doMadvise(this, mm, hva, len, advice);
  }
  /** mprotect between PROT_READ and PROT_READ|PROT_WRITE (mprotect.ts). */
  mprotect(mm: Mm, hva: number, len: number, prot: number): Task<number> {
    return doMprotect(this, mm, hva, len, prot);
  }
  /** A driver's mmap of its device (XPMEM's attach): a VM_PFNMAP VMA whose faults go to ops.fault. */
  mmapDevice(mm: Mm, len: number, prot: number, ops: VmOperations): Task<number> {
    return doMmap(this, mm, len, prot, ops);
  }
  /** vmf_insert_pfn_prot, from a driver's ->fault (memory.ts). */
  vmfInsertPfn(mm: Mm, hva: number, pfn: number, write: boolean): Task<number> {
    return vmfInsertPfn(this, mm, hva, pfn, write);
  }
  /** zap_vma_ptes (memory.ts). */
  zapVmaPtes(mm: Mm, hva: number, len: number): Task {
    return zapVmaPtes(this, mm, hva, len);
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

  /** Idle page tracking: clears the young state of [start, end); how many pages had it (page-idle.ts). */
  clearYoungRange(mm: Mm, start: number, end: number): Task<number> {
    return clearYoungRange(this, mm, start, end);
  }
  testYoung(mm: Mm, hva: number): Task<boolean> {
    return testYoung(this, mm, hva);
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


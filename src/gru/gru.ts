// Counterpart: drivers/misc/sgi-gru/grutlbpurge.c (gru_invalidate_range_start/_end,
// gru_flush_tlb_range) + grufault.c (gru_try_dropin) + grukservices.c (the kernel's
// own command queue through the GRU)
//
// A device with a small TLB of hva page -> pfn for one host process, filled on a miss
// through gup, and a command queue (read / write / copy through the device) drained by
// its own host thread. docs/interval-notifier.md has the GRU facts; the protocol:
//
//   range_start  msRangeActive++, then ONE TLB purge for the whole range (the GRU
//                purges a range; an invalidate_page-era driver purges each page), the
//                flushed entries' pfns parked on the range.
//   range_end    the parked references are put (after the host changed its ptes),
//                seq++, msRangeActive--, and fills wake when it reaches 0.
//   invalidate_page  (a process of the 2008 era: try_to_unmap and do_wp_page call only
//                this, after the pte is gone, under the PT lock) the page's entries
//                purged and their references put at once (the caller still holds the
//                page), seq++; nothing sleeps. 2.6.27's grutlbpurge.c had it too.
//   fill         wait until msRangeActive == 0, snapshot seq, gup (may sleep), take
//                tlbLock, and drop the translation in only if no range is active and
//                seq has not moved; else put the page and retry. The seq covers a
//                range that started AND ended inside gup, which the counter alone
//                cannot see (it is back at 0).
//
// Each TLB entry holds the gup reference it was filled with (issue 11 asks for this,
// unlike the kernel's GRU, which puts at once): the frame cannot be reused while any
// entry might name it, and the reference is dropped only at range_end or eviction.

import type { Mm } from '../host/mm.js';
import type { MmuNotifier, MmuNotifierRange } from '../host/mmu-notifier.js';
import type { SecondaryMmuHost } from '../host/secondary-mmu.js';
import { Completion, SpinLock, WaitQueue, consume, sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';

export const PAGE_SIZE = 4096;
export const GRU_TLB_ENTRIES = 64;
/** Simulated ticks of one TLB purge command to the device (a range or a page). */
export const GRU_PURGE_TICKS = 8;
const EFAULT = 14;
const ENODEV = 19;

export type GruFlushMode = 'range' | 'page';

export interface GruDebug {
  /** Fills go on while a range is active (no ms_range_active wait or check). */
  noRangeActiveWait: boolean;
  /** Fills do not check the range sequence under tlbLock. */
  noSeqCheck: boolean;
  /**
   * A range-only driver on a 2008 host: invalidate_page does nothing, so reclaim and
   * do_wp_page, which call only that, never reach the TLB.
   */
  noInvalidatePage: boolean;
  /** Test hook: runs in the filling thread between gup and tlbLock (a forced interleaving). */
  afterGup: ((hva: number) => Task) | null;
}

export interface GruStats {
  fills: number;
  hits: number;
  fillRetries: number;
  /** TLB purge commands sent to the device. */
  purges: number;
  purgedEntries: number;
  evictions: number;
  commands: number;
}

export type GruCommand =
  | { readonly op: 'read'; readonly hva: number; readonly dst: Uint8Array }
  | { readonly op: 'write'; readonly hva: number; readonly src: Uint8Array }
  | { readonly op: 'copy'; readonly src: number; readonly dst: number; readonly len: number };

interface Queued {
  readonly cmd: GruCommand;
  readonly done: Completion;
  result: number;
}

const NO_PAGE = -1;

export class GruDevice {
  readonly name: string;
  readonly host: SecondaryMmuHost;
  readonly mm: Mm;
  readonly flushMode: GruFlushMode;
  readonly debug: GruDebug = { noRangeActiveWait: false, noSeqCheck: false, noInvalidatePage: false, afterGup: null };
  readonly stats: GruStats = { fills: 0, hits: 0, fillRetries: 0, purges: 0, purgedEntries: 0, evictions: 0, commands: 0 };

  /** The TLB: hva page (or NO_PAGE), pfn, writable; round-robin replacement. */
  readonly tlbPage: Int32Array;
  readonly tlbPfn: Int32Array;
  readonly tlbWrite: Uint8Array;
  private victim = 0;
  readonly tlbLock: SpinLock;

  /** ms_range_active, ms_wait_queue, and the sequence range_end bumps. */
  msRangeActive = 0;
  msRangeSeq = 0;
  readonly msWaitQueue: WaitQueue;
  /** References flushed at each active range's start, put at its end. */
  private readonly parked = new Map<MmuNotifierRange, number[]>();
  /** gup references held: live entries + parked + in a fill. Zero at teardown. */
  refsHeld = 0;

  private sub: MmuNotifier | null = null;
  private readonly queue: Queued[] = [];
  private readonly queueWait: WaitQueue;
  private stopping = false;
  private readonly stopped = new Completion('gru-stopped');
  private released = false;
  /** kfree'd by its driver (free()); callbacks counted in useAfterFree touched it after. */
  freed = false;
  useAfterFree = 0;
  callbacksRunning = 0;

  private constructor(name: string, host: SecondaryMmuHost, mm: Mm, flushMode: GruFlushMode, entries: number) {
    this.name = name;
    this.host = host;
    this.mm = mm;
    this.flushMode = flushMode;
    this.tlbPage = new Int32Array(entries).fill(NO_PAGE);
    this.tlbPfn = new Int32Array(entries);
    this.tlbWrite = new Uint8Array(entries);
    this.tlbLock = new SpinLock(`${name}.tlb_lock`, { lockClass: 'gru.tlb_lock' });
    this.msWaitQueue = new WaitQueue(`${name}.ms_wait_queue`);
    this.queueWait = new WaitQueue(`${name}.cmdq`);
  }

  /** gru_register_mmu_notifier + the device's command thread. Null when the mm is gone. */
  static *create(
    host: SecondaryMmuHost,
    mm: Mm,
    opts: { name?: string; flushMode?: GruFlushMode; entries?: number; thread?: boolean } = {},
  ): Task<GruDevice | null> {
    const dev = new GruDevice(opts.name ?? 'gru', host, mm, opts.flushMode ?? 'range', opts.entries ?? GRU_TLB_ENTRIES);
    const sub = yield* host.mmuNotifierRegister(mm, dev.name, {
      invalidateRangeStart: (r) => dev.callback(dev.invalidateRangeStart(r)),
      invalidateRangeEnd: (r) => dev.callback(dev.invalidateRangeEnd(r)),
      release: () => dev.callback(dev.release()),
      invalidatePage: (_mm, hva) => dev.invalidatePageAtomic(hva),
    });
    if (sub === null) return null;
    dev.sub = sub;
    if (opts.thread ?? true) host.kthreadRun(`${dev.name}-cmdq`, () => dev.commandThread());
    else dev.stopped.completeAll();
    return dev;
  }

  // ---- the notifier ------------------------------------------------------------------

  /**
   * Every callback runs through here, so that a callback still running (or starting)
   * once the driver freed the device is seen, as KASAN would see its first access:
   * mmu_notifier_unregister's synchronize_srcu is what rules that out.
   */
  private *callback<T>(body: Task<T>): Task<T> {
    if (this.freed) this.useAfterFree++;
    this.callbacksRunning++;
    try {
      return yield* body;
    } finally {
      this.callbacksRunning--;
      if (this.freed) this.useAfterFree++;
    }
  }

  private *invalidateRangeStart(range: MmuNotifierRange): Task<number> {
    this.msRangeActive++;
    const flushed: number[] = [];
    this.parked.set(range, flushed);
    const first = range.start / PAGE_SIZE;
    const end = range.end / PAGE_SIZE;
    if (this.flushMode === 'range') {
      yield* this.purge(first, end, flushed, range.blockable);
    } else {
      // An invalidate_page-style driver: one purge per page of the range.
      for (let page = first; page < end; page++) yield* this.purge(page, page + 1, flushed, range.blockable);
    }
    return 0;
  }

  /**
   * gru_flush_tlb_range: one purge command to the device. The entries are gone when it
   * is issued (no lookup under tlbLock can find them after); the callback then waits
   * for the device to complete the purge before it returns: it sleeps for the
   * completion when the range is blockable, and polls (burns the time) when not.
   */
  private *purge(first: number, end: number, flushed: number[], blockable: boolean): Task {
    yield* this.tlbLock.lock();
    this.stats.purges++;
    const tp = this.tlbPage;
    for (let i = 0; i < tp.length; i++) {
      const page = tp[i]!;
      if (page !== NO_PAGE && page >= first && page < end) {
        tp[i] = NO_PAGE;
        flushed.push(this.tlbPfn[i]!);
        this.stats.purgedEntries++;
      }
    }
    this.tlbLock.unlock();
    if (blockable) yield* sleepTicks(GRU_PURGE_TICKS, 'gru-purge');
    else yield* consume(GRU_PURGE_TICKS);
  }

  /**
   * 2008 gru_invalidate_page, under the host's PT lock after ptep_clear_flush: no
   * sleeping, so the purge's completion is polled (the simulated host has no time
   * inside an atomic callback, so it costs none here) and the flushed references are
   * put at once instead of parked for a range_end that will not come. seq moves, so a
   * fill whose gup ran before the pte change drops what it got and faults again.
   */
  private invalidatePageAtomic(hva: number): void {
    if (this.freed) this.useAfterFree++;
    if (this.debug.noInvalidatePage) return;
    // tlbLock is a spinlock, never held across a yield: free whenever a callback runs.
    if (!this.tlbLock.tryLock()) throw new Error(`${this.name}: tlb_lock held across a yield by ${this.tlbLock.holder?.name ?? '?'}`);
    const page = Math.floor(hva / PAGE_SIZE);
    const flushed: number[] = [];
    this.stats.purges++;
    for (let i = 0; i < this.tlbPage.length; i++) {
      if (this.tlbPage[i] !== page) continue;
      this.tlbPage[i] = NO_PAGE;
      flushed.push(this.tlbPfn[i]!);
      this.stats.purgedEntries++;
    }
    this.msRangeSeq++;
    this.tlbLock.unlock();
    for (const pfn of flushed) this.putRef(pfn);
  }

  private *invalidateRangeEnd(range: MmuNotifierRange): Task {
    const flushed = this.parked.get(range);
    // A range whose start this device never saw (registered mid-range), or abandoned by release.
    if (flushed === undefined) return;
    this.parked.delete(range);
    for (const pfn of flushed) this.putRef(pfn);
    this.msRangeSeq++;
    if (--this.msRangeActive === 0) this.msWaitQueue.wakeAll();
  }

  /** ->release (exit, or unregister): everything goes, parked references included. */
  private *release(): Task {
    this.released = true;
    const all: number[] = [];
    yield* this.purgeAll(all);
    for (const flushed of this.parked.values()) all.push(...flushed);
    this.parked.clear();
    for (const pfn of all) this.putRef(pfn);
    this.msRangeSeq++;
    this.msRangeActive = 0;
    this.msWaitQueue.wakeAll();
  }

  private *purgeAll(out: number[]): Task {
    yield* this.tlbLock.lock();
    for (let i = 0; i < this.tlbPage.length; i++) {
      if (this.tlbPage[i] === NO_PAGE) continue;
      this.tlbPage[i] = NO_PAGE;
      out.push(this.tlbPfn[i]!);
    }
    this.tlbLock.unlock();
  }

  private putRef(pfn: number): void {
    this.host.putPage(pfn);
    this.refsHeld--;
  }

  // ---- TLB ---------------------------------------------------------------------------

  /** A slot mapping hva's page (writable if asked), with tlbLock HELD on success. */
  private *tlbLookupLocked(hva: number, write: boolean): Task<number> {
    const page = Math.floor(hva / PAGE_SIZE);
    for (;;) {
      yield* this.tlbLock.lock();
      const tp = this.tlbPage;
      for (let i = 0; i < tp.length; i++) {
        if (tp[i] === page && (!write || this.tlbWrite[i])) {
          this.stats.hits++;
          return i;
        }
      }
      this.tlbLock.unlock();
      const r = yield* this.tlbDropin(page, write);
      if (r < 0) return r;
    }
  }

  /** gru_try_dropin: fill one translation. 0, or a negative errno. */
  private *tlbDropin(page: number, write: boolean): Task<number> {
    const hva = page * PAGE_SIZE;
    for (;;) {
      if (this.released) return -ENODEV;
      if (!this.debug.noRangeActiveWait) yield* this.msWaitQueue.waitEvent(() => this.msRangeActive === 0 || this.released);
      const seq = this.msRangeSeq;
      const pfn = yield* this.host.getUserPages(this.mm, hva, write);
      if (pfn < 0) return pfn;
      this.refsHeld++;
      if (this.debug.afterGup !== null) yield* this.debug.afterGup(hva);
      yield* this.tlbLock.lock();
      const collided = (!this.debug.noRangeActiveWait && this.msRangeActive > 0) || (!this.debug.noSeqCheck && this.msRangeSeq !== seq);
      if (collided || this.released) {
        this.tlbLock.unlock();
        this.putRef(pfn);
        this.stats.fillRetries++;
        continue;
      }
      // Replace: an older entry of the same page (read-only, now upgraded) or the victim.
      let slot = -1;
      for (let i = 0; i < this.tlbPage.length; i++) if (this.tlbPage[i] === page) slot = i;
      if (slot < 0) {
        slot = this.victim;
        this.victim = (this.victim + 1) % this.tlbPage.length;
      }
      let evicted = NO_PAGE;
      if (this.tlbPage[slot] !== NO_PAGE) {
        evicted = this.tlbPfn[slot]!;
        this.stats.evictions++;
      }
      this.tlbPage[slot] = page;
      this.tlbPfn[slot] = pfn;
      this.tlbWrite[slot] = write ? 1 : 0;
      this.stats.fills++;
      this.tlbLock.unlock();
      if (evicted !== NO_PAGE) this.putRef(evicted);
      return 0;
    }
  }

  // ---- the command queue -------------------------------------------------------------

  /** Queues a command and waits for the device thread to complete it: 0 or a negative errno. */
  *submit(cmd: GruCommand): Task<number> {
    if (this.stopping || this.released) return -ENODEV;
    const q: Queued = { cmd, done: new Completion('gru-cmd'), result: 0 };
    this.queue.push(q);
    this.queueWait.wakeOne();
    yield* q.done.wait();
    return q.result;
  }

  private *commandThread(): Task {
    for (;;) {
      yield* this.queueWait.waitEvent(() => this.queue.length > 0 || this.stopping);
      const q = this.queue.shift();
      if (q === undefined) break;
      q.result = yield* this.execute(q.cmd);
      this.stats.commands++;
      q.done.complete();
    }
    this.stopped.completeAll();
  }

  private *execute(cmd: GruCommand): Task<number> {
    switch (cmd.op) {
      case 'read':
        return yield* this.transfer(cmd.hva, cmd.dst, false);
      case 'write':
        return yield* this.transfer(cmd.hva, cmd.src, true);
      case 'copy': {
        // Page by page through a bounce buffer: both ends may miss and fault.
        const buf = new Uint8Array(Math.min(cmd.len, PAGE_SIZE));
        for (let done = 0; done < cmd.len; ) {
          const n = Math.min(PAGE_SIZE - ((cmd.src + done) % PAGE_SIZE), PAGE_SIZE - ((cmd.dst + done) % PAGE_SIZE), cmd.len - done);
          const b = buf.subarray(0, n);
          let r = yield* this.transfer(cmd.src + done, b, false);
          if (r === 0) r = yield* this.transfer(cmd.dst + done, b, true);
          if (r !== 0) return r;
          done += n;
        }
        return 0;
      }
    }
  }

  /** Copies through TLB translations, under tlbLock per page (a purge waits for it). */
  private *transfer(hva: number, buf: Uint8Array, write: boolean): Task<number> {
    for (let done = 0; done < buf.length; ) {
      const at = hva + done;
      const off = at % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, buf.length - done);
      const slot = yield* this.tlbLookupLocked(at, write);
      if (slot < 0) return slot === -ENODEV ? slot : -EFAULT;
      const pfn = this.tlbPfn[slot]!;
      const page = this.host.kmapLocal(pfn);
      if (write) {
        page.set(buf.subarray(done, done + n), off);
        this.host.setPageDirty(pfn);
      } else {
        buf.set(page.subarray(off, off + n), done);
      }
      this.tlbLock.unlock();
      done += n;
    }
    return 0;
  }

  /** Stops the command thread, then unregisters (which calls release if exit did not). */
  *destroy(): Task {
    this.stopping = true;
    this.queueWait.wakeAll();
    yield* this.stopped.wait();
    if (this.sub !== null) {
      yield* this.host.mmuNotifierUnregister(this.sub);
      this.sub = null;
    }
  }

  /** kfree of the device state, which a driver may do once destroy() (unregister) returned. */
  free(): void {
    this.freed = true;
  }

  /** Live TLB entries, for audits. */
  *liveEntries(): Generator<{ page: number; pfn: number; write: boolean }> {
    for (let i = 0; i < this.tlbPage.length; i++) {
      if (this.tlbPage[i] !== NO_PAGE) yield { page: this.tlbPage[i]!, pfn: this.tlbPfn[i]!, write: this.tlbWrite[i] === 1 };
    }
  }

  parkedRefs(): number {
    let n = 0;
    for (const f of this.parked.values()) n += f.length;
    return n;
  }

  dump(): Record<string, unknown> {
    return {
      name: this.name,
      flushMode: this.flushMode,
      entries: [...this.liveEntries()].length,
      msRangeActive: this.msRangeActive,
      msRangeSeq: this.msRangeSeq,
      parked: this.parkedRefs(),
      refsHeld: this.refsHeld,
      callbacksRunning: this.callbacksRunning,
      freed: this.freed,
      queued: this.queue.length,
      stats: { ...this.stats },
    };
  }
}

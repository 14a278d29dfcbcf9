// Counterpart: lib/test_hmm.c (struct dmirror: dmirror_interval_invalidate,
// dmirror_range_fault, dmirror_do_read / dmirror_do_write)
//
// A software device that mirrors [start, start + len) of one process in its own page
// table, kept coherent by an mmu_interval_notifier and nothing else: it holds no page
// reference between faults (hmm_range_fault takes none; our gup reference is dropped
// as soon as the entry is installed). docs/interval-notifier.md has the protocol.
//
// Invariants, with `mutex` the device lock:
//   - an entry is installed only under `mutex`, after read_retry said no invalidation
//     of the interval ran since the read_begin that preceded the page walk (gup);
//   - invalidate() takes `mutex`, set_seq's the invalidation's odd counter and clears
//     the entries of the range before the host changes a pte, so a present entry maps
//     the page its host pte maps whenever no invalidation is in progress;
//   - reads and writes copy through an entry under `mutex`: the page cannot be freed
//     meanwhile, because freeing it needs an invalidation, which needs `mutex`.
//   - a write marks the page dirty (set_page_dirty) under `mutex`, so reclaim writes the
//     device's data out before it can drop the page.

import type { Mm } from '../host/mm.js';
import type { MmuNotifierRange } from '../host/mmu-notifier.js';
import type { SecondaryMmuHost } from '../host/secondary-mmu.js';
import type { MmuIntervalNotifier } from '../host/interval-notifier.js';
import { Mutex } from '../sched/index.js';
import type { Task } from '../sched/index.js';

export const PAGE_SIZE = 4096;
export const EBUSY = 16;
export const EFAULT = 14;
/** HMM_RANGE_DEFAULT_TIMEOUT, as a retry bound instead of a time. */
export const DMIRROR_MAX_RETRIES = 1000;

/** Test-only switches, each turning one mechanism of the protocol off. */
export interface DmirrorDebug {
  /** The fault installs without mmu_interval_read_retry under the lock. */
  noReadRetry: boolean;
  /** invalidate() zaps but does not mmu_interval_set_seq. */
  noSetSeq: boolean;
}

export interface DmirrorStats {
  /** Pages installed by a device fault (hmm-tests' "faults"). */
  faults: number;
  retries: number;
  invalidations: number;
  reads: number;
  writes: number;
}

const NO_ENTRY = -1;
const ENTRY_WRITE = 1;

export class Dmirror {
  readonly name: string;
  readonly host: SecondaryMmuHost;
  readonly mm: Mm;
  /** hva bytes, page aligned. */
  readonly start: number;
  readonly nrPages: number;
  readonly mutex: Mutex;
  /** One slot per page of the range: NO_ENTRY, or pfn << 1 | ENTRY_WRITE. */
  readonly pt: Int32Array;
  readonly debug: DmirrorDebug = { noReadRetry: false, noSetSeq: false };
  readonly stats: DmirrorStats = { faults: 0, retries: 0, invalidations: 0, reads: 0, writes: 0 };
  /** gup references held right now (between gup and put): zero at teardown. */
  refsHeld = 0;
  sub: MmuIntervalNotifier | null = null;

  private constructor(name: string, host: SecondaryMmuHost, mm: Mm, start: number, nrPages: number) {
    this.name = name;
    this.host = host;
    this.mm = mm;
    this.start = start;
    this.nrPages = nrPages;
    this.mutex = new Mutex(`${name}.mutex`, { lockClass: 'dmirror.mutex' });
    this.pt = new Int32Array(nrPages).fill(NO_ENTRY);
  }

  /** dmirror_fops_open + mmu_interval_notifier_insert over the range. */
  static *create(host: SecondaryMmuHost, mm: Mm, start: number, len: number, name = 'dmirror'): Task<Dmirror | number> {
    const nrPages = Math.ceil(len / PAGE_SIZE);
    const dm = new Dmirror(name, host, mm, start, nrPages);
    const sub = yield* host.mmuIntervalNotifierInsert(mm, name, start, nrPages * PAGE_SIZE, {
      invalidate: (s, range, curSeq) => dm.invalidate(s, range, curSeq),
    });
    if (typeof sub === 'number') return sub;
    dm.sub = sub;
    return dm;
  }

  /** dmirror_fops_release: remove the notifier (waits out a running invalidate), drop the table. */
  *destroy(): Task {
    if (this.sub === null) return;
    yield* this.host.mmuIntervalNotifierRemove(this.sub);
    this.sub = null;
    this.pt.fill(NO_ENTRY);
  }

  /** The pfn mirrored for hva's page, or -1. */
  entryPfn(hva: number): number {
    const e = this.pt[(hva - this.start) / PAGE_SIZE];
    return e === undefined || e === NO_ENTRY ? -1 : e >>> 1;
  }

  entryWritable(hva: number): boolean {
    const e = this.pt[(hva - this.start) / PAGE_SIZE];
    return e !== undefined && e !== NO_ENTRY && (e & ENTRY_WRITE) !== 0;
  }

  /** Present entries, for audits and dumps. */
  entries(): number {
    let n = 0;
    for (let i = 0; i < this.nrPages; i++) if (this.pt[i] !== NO_ENTRY) n++;
    return n;
  }

  /** dmirror_interval_invalidate */
  private *invalidate(sub: MmuIntervalNotifier, range: MmuNotifierRange, curSeq: number): Task<boolean> {
    if (range.blockable) yield* this.mutex.lock();
    else if (!this.mutex.tryLock()) return false;
    if (!this.debug.noSetSeq) this.host.mmuIntervalSetSeq(sub, curSeq);
    // dmirror_do_update: clear the entries of the range.
    const first = Math.max(0, Math.floor((range.start - this.start) / PAGE_SIZE));
    const last = Math.min(this.nrPages, Math.ceil((range.end - this.start) / PAGE_SIZE));
    for (let i = first; i < last; i++) this.pt[i] = NO_ENTRY;
    this.stats.invalidations++;
    this.mutex.unlock();
    return true;
  }

  /**
   * dmirror_range_fault for one page: read_begin, gup (mmap_lock, may sleep, may
   * swap in), lock, read_retry, install, unlock, put. 0 or a negative errno.
   */
  private *rangeFault(index: number, write: boolean): Task<number> {
    const sub = this.sub;
    if (sub === null) return -EFAULT;
    const hva = this.start + index * PAGE_SIZE;
    for (let tries = 0; ; tries++) {
      if (tries >= DMIRROR_MAX_RETRIES) return -EBUSY;
      const seq = yield* this.host.mmuIntervalReadBegin(sub);
      const pfn = yield* this.host.getUserPages(this.mm, hva, write);
      if (pfn < 0) return pfn;
      this.refsHeld++;
      yield* this.mutex.lock();
      if (!this.debug.noReadRetry && this.host.mmuIntervalReadRetry(sub, seq)) {
        this.mutex.unlock();
        this.host.putPage(pfn);
        this.refsHeld--;
        this.stats.retries++;
        continue;
      }
      this.pt[index] = (pfn << 1) | (write ? ENTRY_WRITE : 0);
      this.stats.faults++;
      this.mutex.unlock();
      this.host.putPage(pfn);
      this.refsHeld--;
      return 0;
    }
  }

  private *access(hva: number, buf: Uint8Array, write: boolean): Task<number> {
    if (hva < this.start || hva + buf.length > this.start + this.nrPages * PAGE_SIZE) return -EFAULT;
    let done = 0;
    while (done < buf.length) {
      const at = hva + done;
      const index = Math.floor((at - this.start) / PAGE_SIZE);
      const off = at - (this.start + index * PAGE_SIZE);
      const n = Math.min(PAGE_SIZE - off, buf.length - done);
      yield* this.mutex.lock();
      const e = this.pt[index]!;
      if (e !== NO_ENTRY && (!write || e & ENTRY_WRITE)) {
        const page = this.host.kmapLocal(e >>> 1);
        if (write) {
          page.set(buf.subarray(done, done + n), off);
          this.host.setPageDirty(e >>> 1);
        } else {
          buf.set(page.subarray(off, off + n), done);
        }
        this.mutex.unlock();
        done += n;
        continue;
      }
      this.mutex.unlock();
      const r = yield* this.rangeFault(index, write);
      if (r !== 0) return r;
    }
    if (write) this.stats.writes++;
    else this.stats.reads++;
    return 0;
  }

  /** HMM_DMIRROR_READ: copies [hva, hva + dst.length) of the process through the mirror. */
  read(hva: number, dst: Uint8Array): Task<number> {
    return this.access(hva, dst, false);
  }

  /** HMM_DMIRROR_WRITE */
  write(hva: number, src: Uint8Array): Task<number> {
    return this.access(hva, src, true);
  }

  dump(): Record<string, unknown> {
    return {
      name: this.name,
      range: `[0x${this.start.toString(16)}, 0x${(this.start + this.nrPages * PAGE_SIZE).toString(16)})`,
      entries: this.entries(),
      seq: this.sub?.invalidateSeq ?? null,
      stats: { ...this.stats },
      refsHeld: this.refsHeld,
    };
  }
}

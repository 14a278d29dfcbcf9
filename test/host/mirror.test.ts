// A software secondary MMU (in the spirit of lib/test_hmm.c) mirrors a process under
// reclaim, MADV_DONTNEED and concurrent writers, holding no page references: only
// the notifiers keep it coherent. A checker thread asserts, between any two steps,
// that every mirror entry outside an invalidation maps the frame the host pte maps,
// and the device only ever reads its own page's data.

import { describe, expect, it } from 'vitest';
import { MADV_DONTNEED, PG_free, checkInvariants, ptePfn, ptePresent } from '../../src/host/index.js';
import type { HostKernel, Mm, MmuNotifierOps, MmuNotifierRange, NotifierEra } from '../../src/host/index.js';
import { Rng, SpinLock, preempt, sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { KiB, PAGE, createHost, runAll } from './harness.js';

function stamp(page: number, gen: number): Uint8Array {
  const b = new Uint8Array(PAGE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, page, true);
  dv.setUint32(4, gen, true);
  for (let i = 8; i < PAGE; i += 4) dv.setUint32(i, (Math.imul(page ^ gen, 0x9e3779b1) + i) >>> 0, true);
  return b;
}

/** The frame holds page `page`'s data of some generation, or zeroes (after DONTNEED). */
function holdsPage(bytes: Uint8Array, pfn: number, page: number): boolean {
  const dv = new DataView(bytes.buffer, pfn * PAGE, PAGE);
  const p = dv.getUint32(0, true);
  const gen = dv.getUint32(4, true);
  if (p === 0 && gen === 0) {
    for (let i = 0; i < PAGE; i += 4) if (dv.getUint32(i, true) !== 0) return false;
    return true;
  }
  if (p !== page) return false;
  for (let i = 8; i < PAGE; i += 4) if (dv.getUint32(i, true) !== ((Math.imul(page ^ gen, 0x9e3779b1) + i) >>> 0)) return false;
  return true;
}

class Mirror {
  readonly lock = new SpinLock('mirror.lock');
  /** hva page -> pfn */
  readonly map = new Map<number, number>();
  seq = 0;
  inProgress = 0;
  invalidations = 0;
  installs = 0;
  reads = 0;

  constructor(
    readonly k: HostKernel,
    readonly mm: Mm,
  ) {}

  private zap(startPage: number, endPage: number): void {
    for (const page of [...this.map.keys()]) if (page >= startPage && page < endPage) this.map.delete(page);
  }

  ops(): MmuNotifierOps {
    const self = this;
    return {
      *invalidateRangeStart(r: MmuNotifierRange): Task<number> {
        yield* self.lock.lock();
        self.inProgress++;
        self.zap(r.start >>> 12, r.end >>> 12);
        self.invalidations++;
        self.lock.unlock();
        return 0;
      },
      *invalidateRangeEnd(): Task {
        yield* self.lock.lock();
        self.inProgress--;
        self.seq++;
        self.lock.unlock();
      },
      invalidatePage(_mm: Mm, hva: number): void {
        // Under the host PT lock: no sleeping, so no mirror spinlock wait either; the
        // cooperative step is atomic, as a real spinlock section would be.
        self.zap(hva >>> 12, (hva >>> 12) + 1);
        self.seq++;
        self.invalidations++;
      },
      clearFlushYoung(): boolean {
        return false;
      },
      *release(): Task {
        yield* self.lock.lock();
        self.map.clear();
        self.seq++;
        self.lock.unlock();
      },
    };
  }

  /** hmm_range_fault + mmu_interval_read_retry: fault in, then install only if nothing invalidated meanwhile. */
  *fault(hva: number): Task<boolean> {
    for (let tries = 0; tries < 20; tries++) {
      const seq = this.seq;
      if (this.inProgress > 0) {
        yield* sleepTicks(1, 'mirror-retry');
        continue;
      }
      const pfn = yield* this.k.getUserPages(this.mm, hva, false);
      if (pfn < 0) return false;
      yield* this.lock.lock();
      const ok = this.seq === seq && this.inProgress === 0;
      if (ok) {
        this.map.set(hva >>> 12, pfn);
        this.installs++;
      }
      this.lock.unlock();
      // No reference kept: coherence rests on the notifiers alone.
      this.k.putPage(pfn);
      if (ok) return true;
    }
    return false;
  }

  /** Device read through the mirror: must see this page's data, never another's. */
  *read(hva: number): Task<void> {
    const page = hva >>> 12;
    if (!this.map.has(page) && !(yield* this.fault(hva))) return;
    const pfn = this.map.get(page);
    if (pfn === undefined) return;
    this.reads++;
    expect(this.k.frames.flags[pfn]! & PG_free, `mirror maps free pfn ${pfn}`).toBe(0);
    expect(holdsPage(this.k.frames.bytes, pfn, page), `mirror page 0x${page.toString(16)} -> pfn ${pfn} holds other data`).toBe(true);
  }

  check(): void {
    if (this.inProgress > 0) return;
    for (const [page, pfn] of this.map) {
      const pte = this.mm.pt.get(page);
      expect(ptePresent(pte) && ptePfn(pte) === pfn, `mirror page 0x${page.toString(16)} -> ${pfn}, host pte ${pte}`).toBe(true);
    }
  }
}

describe.each<NotifierEra>(['modern', '2008'])('a notifier-only mirror stays coherent, era %s', (era) => {
  it.each([1, 2, 3, 4])('seed %i', (seed) => {
    const h = createHost({ era, seed, ramBytes: 128 * KiB, swapBytes: 1024 * KiB, swapReadLatency: 7, swapWriteLatency: 13 });
    const p = h.k.createProcess('guest');
    const rng = new Rng(seed);
    const nrPages = 64;
    let hva = 0;
    let writersLeft = 2;
    const mirror = new Mirror(h.k, p.mm);
    h.sched.spawn('setup', function* () {
      hva = yield* h.k.mmap(p.mm, nrPages * PAGE);
      for (let i = 0; i < nrPages; i++) expect(yield* h.k.accessWrite(p.mm, hva + i * PAGE, stamp((hva >>> 12) + i, 1))).toBe(0);
      expect(yield* h.k.mmuNotifierRegister(p.mm, 'mirror', mirror.ops())).not.toBeNull();
      for (let w = 0; w < 2; w++) {
        h.sched.spawn(`writer${w}`, function* () {
          for (let n = 0; n < 150; n++) {
            const i = rng.below(nrPages);
            expect(yield* h.k.accessWrite(p.mm, hva + i * PAGE, stamp((hva >>> 12) + i, 2 + n))).toBe(0);
            if (rng.below(10) === 0) yield* h.k.madvise(p.mm, hva + rng.below(nrPages) * PAGE, PAGE, MADV_DONTNEED);
          }
          writersLeft--;
        });
      }
      h.sched.spawn('device', function* () {
        while (writersLeft > 0) {
          yield* mirror.read(hva + rng.below(nrPages) * PAGE);
          yield* preempt();
        }
      });
      h.sched.spawn('checker', function* () {
        while (writersLeft > 0) {
          mirror.check();
          yield* preempt();
        }
      });
    });
    runAll(h);
    expect(mirror.reads).toBeGreaterThan(20);
    expect(mirror.invalidations).toBeGreaterThan(0);
    expect(h.k.stats().pswpout).toBeGreaterThan(0);
    checkInvariants(h.k);
    h.sched.spawn('exit', () => h.k.exitProcess(p));
    runAll(h);
    expect(mirror.map.size).toBe(0);
    checkInvariants(h.k);
    expect(h.k.frames.nrFree).toBe(h.k.frames.nrFrames);
  });
});

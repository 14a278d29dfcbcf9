// fork with copy-on-write: pages shared read-only by parent and child, copied on the
// first write in either (do_wp_page), unmapped from every mm by reclaim (the rmap
// walks the anon_vma), swapped in by one mm while the other keeps its swap entry;
// audit.ts checks mapcounts, refcounts and swap counts after every step. A secondary
// MMU on the parent (the HMM mirror) loses its writable translations at fork and its
// translation of the old page at the COW; each shown failing with its notifier call
// switched off.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MADV_DONTNEED,
  PG_anon_shared,
  PG_swapcache,
  PROT_READ,
  PROT_WRITE,
  PTE_WRITE,
  checkInvariants,
  hostDebugView,
  ptePfn,
  ptePresent,
  pteIsSwap,
  pteSwapSlot,
  secondaryMmuHost,
} from '../../src/host/index.js';
import type { NotifierEra, Process } from '../../src/host/index.js';
import { auditDmirror, auditDmirrorTeardown } from '../../src/hmm/audit.js';
import { Dmirror } from '../../src/hmm/dmirror.js';
import { preempt } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { fcParams, fcReplaying } from '../fc-params.js';
import { KiB, PAGE, createHost, pattern, reclaimOrphanedSwapCache, runThread, verifyPages, writePages } from './harness.js';
import type { TestHost } from './harness.js';

function forkOk(h: TestHost, p: Process): Task<Process> {
  return (function* () {
    const c = yield* h.k.fork(p);
    if (typeof c === 'number') throw new Error(`fork failed: ${c}`);
    return c;
  })();
}

function samePattern(got: Uint8Array, page: number, gen: number): boolean {
  const want = pattern(page, gen);
  return got.every((b, i) => b === want[i]);
}

describe('fork', () => {
  it('shares pages read-only, then copies on the first write in either process', () => {
    const h = createHost({ ramBytes: 512 * KiB });
    const k = h.k;
    const parent = k.createProcess('parent');
    const n = 8;
    runThread(h, 'main', function* () {
      const hva = yield* k.mmap(parent.mm, n * PAGE);
      yield* writePages(h, parent.mm, hva, n, 1);
      const used = k.frames.nrFrames - k.frames.nrFree;
      const child = yield* forkOk(h, parent);
      // No page was copied: every one is mapped twice, read-only, marked shared.
      expect(k.frames.nrFrames - k.frames.nrFree).toBe(used);
      for (let i = 0; i < n; i++) {
        const page = (hva >>> 12) + i;
        const a = parent.mm.pt.get(page);
        const b = child.mm.pt.get(page);
        expect(ptePfn(a)).toBe(ptePfn(b));
        expect(a & PTE_WRITE).toBe(0);
        expect(b & PTE_WRITE).toBe(0);
        const pfn = ptePfn(a);
        expect(k.frames.mapcount[pfn]).toBe(2);
        expect(k.frames.refcount[pfn]).toBe(2);
        expect(k.frames.flags[pfn]! & PG_anon_shared).not.toBe(0);
      }
      checkInvariants(k);
      expect(yield* verifyPages(h, child.mm, hva, n, 1)).toEqual([]);
      // The parent writes the first half, the child the second.
      for (let i = 0; i < n / 2; i++) expect(yield* k.accessWrite(parent.mm, hva + i * PAGE, pattern(i, 2))).toBe(0);
      for (let i = n / 2; i < n; i++) expect(yield* k.accessWrite(child.mm, hva + i * PAGE, pattern(i, 3))).toBe(0);
      expect(k.ctx.stats.cowFault).toBe(n);
      checkInvariants(k);
      const buf = new Uint8Array(PAGE);
      for (let i = 0; i < n; i++) {
        yield* k.accessRead(parent.mm, hva + i * PAGE, buf);
        expect(samePattern(buf, i, i < n / 2 ? 2 : 1), `parent page ${i}`).toBe(true);
        yield* k.accessRead(child.mm, hva + i * PAGE, buf);
        expect(samePattern(buf, i, i < n / 2 ? 1 : 3), `child page ${i}`).toBe(true);
      }
      // The last user of a shared page writes it in place (wp_can_reuse_anon_folio).
      for (let i = 0; i < n; i++) expect(yield* k.accessWrite(parent.mm, hva + i * PAGE, pattern(i, 4))).toBe(0);
      for (let i = 0; i < n; i++) expect(yield* k.accessWrite(child.mm, hva + i * PAGE, pattern(i, 5))).toBe(0);
      expect(k.ctx.stats.cowFault).toBe(n);
      expect(yield* verifyPages(h, parent.mm, hva, n, 4)).toEqual([]);
      expect(yield* verifyPages(h, child.mm, hva, n, 5)).toEqual([]);
      checkInvariants(k);
      yield* k.exitProcess(child);
      yield* k.exitProcess(parent);
    });
    checkInvariants(k);
    expect(k.frames.nrFree).toBe(k.frames.nrFrames);
    k.shutdown();
  });

  it('swaps a shared page out of both mms, with the swap count right, and in again in one', () => {
    for (const era of ['modern', '2008'] as NotifierEra[]) {
      const h = createHost({ ramBytes: 512 * KiB, era, kswapd: false });
      const k = h.k;
      const parent = k.createProcess('parent');
      runThread(h, 'main', function* () {
        const hva = yield* k.mmap(parent.mm, 4 * PAGE);
        yield* writePages(h, parent.mm, hva, 4, 1);
        const child = yield* forkOk(h, parent);
        const page = hva >>> 12;
        const pfn = ptePfn(parent.mm.pt.get(page));
        // The 2008 try_to_unmap_one keeps a young page: age it first.
        if (era === '2008') {
          yield* k.clearYoungRange(parent.mm, hva, hva + PAGE);
          yield* k.clearYoungRange(child.mm, hva, hva + PAGE);
        }
        const r = yield* k.reclaimUserPage(parent.mm, hva);
        expect(r.kind).toBe('freed');
        const a = parent.mm.pt.get(page);
        const b = child.mm.pt.get(page);
        expect(pteIsSwap(a) && pteIsSwap(b)).toBe(true);
        const slot = pteSwapSlot(a);
        expect(pteSwapSlot(b)).toBe(slot);
        expect(k.swap.swapMap[slot]).toBe(2);
        expect(k.frames.isFree(pfn)).toBe(true);
        checkInvariants(k);
        // Swap-in in the child only: the parent keeps its entry, so the page is shared.
        expect(yield* verifyPages(h, child.mm, hva, 1, 1)).toEqual([]);
        const cpte = child.mm.pt.get(page);
        expect(ptePresent(cpte)).toBe(true);
        expect(cpte & PTE_WRITE).toBe(0);
        expect(pteIsSwap(parent.mm.pt.get(page))).toBe(true);
        expect(k.swap.swapMap[slot]).toBe(1);
        checkInvariants(k);
        // The parent's swap-in finds the same frame in the swap cache.
        expect(yield* verifyPages(h, parent.mm, hva, 1, 1)).toEqual([]);
        expect(ptePfn(parent.mm.pt.get(page))).toBe(ptePfn(cpte));
        expect(k.frames.mapcount[ptePfn(cpte)]).toBe(2);
        checkInvariants(k);
        // A write in the child copies; the parent still reads the old data.
        expect(yield* k.accessWrite(child.mm, hva, pattern(0, 9))).toBe(0);
        expect(yield* verifyPages(h, parent.mm, hva, 1, 1)).toEqual([]);
        expect(yield* verifyPages(h, child.mm, hva, 1, 9)).toEqual([]);
        checkInvariants(k);
        yield* k.exitProcess(parent);
        // The child keeps pages its exited parent made (the anon_vma outlives it).
        const buf = new Uint8Array(PAGE);
        for (const reclaim of [false, true]) {
          if (reclaim) yield* k.reclaim(64);
          checkInvariants(k);
          for (let i = 0; i < 4; i++) {
            expect(yield* k.accessRead(child.mm, hva + i * PAGE, buf)).toBe(0);
            expect(samePattern(buf, i, i === 0 ? 9 : 1), `child page ${i}`).toBe(true);
          }
        }
        yield* k.exitProcess(child);
      });
      checkInvariants(k);
      expect(k.frames.nrFree).toBe(k.frames.nrFrames);
      expect(k.swap.nrUsed).toBe(0);
      k.shutdown();
    }
  });

  it('gives the child its own copy of a pinned page, so the pin stays the parent\'s', () => {
    const h = createHost({ ramBytes: 512 * KiB });
    const k = h.k;
    const parent = k.createProcess('parent');
    runThread(h, 'main', function* () {
      const hva = yield* k.mmap(parent.mm, 2 * PAGE);
      yield* writePages(h, parent.mm, hva, 2, 1);
      const pinned = yield* k.pinUserPages(parent.mm, hva, true);
      expect(pinned).toBeGreaterThanOrEqual(0);
      const child = yield* forkOk(h, parent);
      const page = hva >>> 12;
      expect(ptePfn(parent.mm.pt.get(page))).toBe(pinned);
      expect(parent.mm.pt.get(page) & PTE_WRITE).not.toBe(0);
      expect(ptePfn(child.mm.pt.get(page))).not.toBe(pinned);
      // The device writes through its pin: the parent sees it, the child does not.
      k.frames.bytes.set(pattern(0, 7), pinned * PAGE);
      expect(yield* verifyPages(h, parent.mm, hva, 1, 7)).toEqual([]);
      expect(yield* verifyPages(h, child.mm, hva, 1, 1)).toEqual([]);
      k.unpinUserPage(pinned, true);
      checkInvariants(k);
      yield* k.exitProcess(child);
      yield* k.exitProcess(parent);
    });
    expect(k.frames.nrFree).toBe(k.frames.nrFrames);
    k.shutdown();
  });

  it('leaves the old page of a COW in the swap cache when reclaim holds its lock (free_swap_cache only trylocks), for the next reclaim', () => {
    for (const reclaimerHoldsLock of [false, true]) {
      const h = createHost({ ramBytes: 512 * KiB, kswapd: false });
      const k = h.k;
      const parent = k.createProcess('parent');
      let pfn = -1;
      runThread(h, 'main', function* () {
        const hva = yield* k.mmap(parent.mm, PAGE);
        yield* writePages(h, parent.mm, hva, 1, 1);
        expect((yield* k.reclaimUserPage(parent.mm, hva)).kind).toBe('freed');
        // A read swap-in keeps the slot (the swap copy is up to date); gup holds the page.
        expect(yield* verifyPages(h, parent.mm, hva, 1, 1)).toEqual([]);
        pfn = yield* k.getUserPages(parent.mm, hva, false);
        expect(k.frames.flags[pfn]! & PG_swapcache).not.toBe(0);
        const slot = k.frames.swapSlot[pfn]!;
        const child = yield* forkOk(h, parent);
        expect(yield* k.accessWrite(child.mm, hva, pattern(0, 2))).toBe(0);
        // The parent's write copies too (the gup reference forbids reuse) and drops the
        // last mapping; a reclaimer inside folio_referenced would hold the page lock.
        if (reclaimerHoldsLock) expect(k.frames.trylockPage(pfn)).toBe(true);
        expect(yield* k.accessWrite(parent.mm, hva, pattern(0, 3))).toBe(0);
        if (reclaimerHoldsLock) k.frames.unlockPage(pfn);
        expect(k.frames.mapcount[pfn]).toBe(0);
        expect(k.swap.swapMap[slot]).toBe(0);
        expect(k.frames.flags[pfn]! & PG_swapcache ? 'cached' : 'dropped').toBe(reclaimerHoldsLock ? 'cached' : 'dropped');
        yield* k.exitProcess(child);
        yield* k.exitProcess(parent);
      });
      k.putPage(pfn);
      checkInvariants(k);
      // Nobody maps it and no swap pte names its slot: an orphan the next reclaim frees.
      expect(k.frames.nrFree).toBe(k.frames.nrFrames - (reclaimerHoldsLock ? 1 : 0));
      expect(reclaimOrphanedSwapCache(h)).toBe(reclaimerHoldsLock ? 1 : 0);
      expect(k.frames.nrFree).toBe(k.frames.nrFrames);
      expect(k.swap.nrUsed).toBe(0);
      k.shutdown();
    }
  });

  it('keeps parent and child data apart under reclaim, over many seeds', () => {
    let pswpout = 0;
    let cow = 0;
    for (let seed = 1; seed <= 24; seed++) {
      const r = writersUnderReclaim(seed);
      pswpout += r.pswpout;
      cow += r.cowFault;
    }
    expect(pswpout).toBeGreaterThan(0);
    expect(cow).toBeGreaterThan(0);
  });

  // Seeds past the 24 above where an exit's zap drops the last mapping of a page that
  // still caches its slot while kswapd holds it locked in folio_referenced: the zap's
  // free_swap_cache cannot take the lock, and kswapd, having found a young pte, only
  // activates the page. It stays in the swap cache, unmapped, for the next reclaim (in
  // 1053 a pass that only deactivates it from the active list, then one that frees it).
  it('leaves a page whose last unmap at exit raced with reclaim in the swap cache, for the next reclaim', () => {
    for (const seed of [238, 1053]) expect(writersUnderReclaim(seed).orphans, `seed ${seed}: the race still happens`).toBe(1);
  });
});

/**
 * Parent, child and (even seeds) grandchild each write their stride of 24 shared pages
 * and read back all of them, three rounds, while a reclaimer swaps; then all exit.
 */
function writersUnderReclaim(seed: number): { pswpout: number; cowFault: number; orphans: number } {
  const era: NotifierEra = seed % 3 === 0 ? '2008' : 'modern';
  const h = createHost({ ramBytes: 160 * KiB, swapBytes: 1024 * KiB, seed, era, swapReadLatency: 3, swapWriteLatency: 5 });
  const k = h.k;
  const n = 24;
  const parent = k.createProcess('parent');
  const problems: string[] = [];
  runThread(h, 'main', function* () {
    const hva = yield* k.mmap(parent.mm, n * PAGE);
    yield* writePages(h, parent.mm, hva, n, 1);
    const child = yield* forkOk(h, parent);
    const grandchild = seed % 2 === 0 ? yield* forkOk(h, child) : null;
    // Each writer owns a stride of pages; every process checks all of them.
    const procs = grandchild === null ? [parent, child] : [parent, child, grandchild];
    const gens = procs.map(() => new Int32Array(n).fill(1));
    const threads = procs.map((p, w) =>
      h.sched.spawn(`writer${w}`, function* () {
        for (let round = 0; round < 3; round++) {
          for (let i = w; i < n; i += procs.length) {
            const g = 10 * (w + 1) + round;
            if ((yield* k.accessWrite(p.mm, hva + i * PAGE, pattern(i, g))) !== 0) problems.push(`${p.name} write ${i}`);
            gens[w]![i] = g;
          }
          for (let i = 0; i < n; i++) {
            const buf = new Uint8Array(PAGE);
            yield* k.accessRead(p.mm, hva + i * PAGE, buf);
            if (!samePattern(buf, i, gens[w]![i]!)) problems.push(`${p.name} page ${i} lost gen ${gens[w]![i]}`);
          }
          yield* preempt();
        }
      }),
    );
    h.sched.spawn('reclaimer', function* () {
      for (let r = 0; r < 6; r++) {
        yield* k.reclaim(8);
        yield* preempt();
      }
    });
    while (threads.some((t) => t.state !== 'done')) yield* preempt();
    for (const p of procs.reverse()) yield* k.exitProcess(p);
  });
  expect(problems, `seed ${seed} ${era}`).toEqual([]);
  checkInvariants(k);
  const orphans = reclaimOrphanedSwapCache(h);
  expect(k.frames.nrFree).toBe(k.frames.nrFrames);
  expect(k.swap.nrUsed).toBe(0);
  expect(k.ctx.stats.warnings).toBe(0);
  const { pswpout, cowFault } = k.ctx.stats;
  k.shutdown();
  return { pswpout, cowFault, orphans };
}

// ---- the HMM mirror on the parent ------------------------------------------------------

interface MirrorForkResult {
  auditProblems: string[];
  childSawDeviceWrite: boolean;
  deviceReadStale: boolean;
}

/**
 * The device writes page 0 through the mirror (a writable entry), the process forks,
 * the device writes page 0 again: the child must keep the data of the fork. The
 * device reads page 1 (a read-only entry to the shared page), then the parent writes
 * it and so copies it: the device must read the parent's new data, not the page the
 * child keeps.
 */
function mirrorAcrossFork(opts: { noWriteProtectNotify?: boolean; noWpCopyNotify?: boolean; era?: NotifierEra }): MirrorForkResult {
  const h = createHost({ ramBytes: 512 * KiB, era: opts.era ?? 'modern' });
  const k = h.k;
  k.forkDebug.noWriteProtectNotify = opts.noWriteProtectNotify ?? false;
  k.forkDebug.noWpCopyNotify = opts.noWpCopyNotify ?? false;
  const parent = k.createProcess('parent');
  const res: MirrorForkResult = { auditProblems: [], childSawDeviceWrite: false, deviceReadStale: false };
  runThread(h, 'main', function* () {
    const hva = yield* k.mmap(parent.mm, 2 * PAGE);
    yield* writePages(h, parent.mm, hva, 2, 1);
    const dm = yield* Dmirror.create(secondaryMmuHost(k), parent.mm, hva, 2 * PAGE);
    if (typeof dm === 'number') throw new Error(`dmirror: ${dm}`);
    expect(yield* dm.write(hva, pattern(0, 2))).toBe(0);
    const child = yield* forkOk(h, parent);
    res.auditProblems.push(...auditDmirror(hostDebugView(k), dm));
    const buf = new Uint8Array(PAGE);
    expect(yield* dm.read(hva + PAGE, buf)).toBe(0);
    expect(yield* dm.write(hva, pattern(0, 3))).toBe(0);
    yield* k.accessRead(child.mm, hva, buf);
    res.childSawDeviceWrite = !samePattern(buf, 0, 2);
    expect(yield* k.accessWrite(parent.mm, hva + PAGE, pattern(1, 4))).toBe(0);
    res.auditProblems.push(...auditDmirror(hostDebugView(k), dm));
    expect(yield* dm.read(hva + PAGE, buf)).toBe(0);
    res.deviceReadStale = !samePattern(buf, 1, 4);
    yield* dm.destroy();
    res.auditProblems.push(...auditDmirrorTeardown(dm));
    yield* k.exitProcess(child);
    yield* k.exitProcess(parent);
  });
  checkInvariants(k);
  expect(k.frames.nrFree).toBe(k.frames.nrFrames);
  k.shutdown();
  return res;
}

describe('a secondary MMU on a process that forks', () => {
  it('keeps no writable translation past the fork, and no translation of the copied page', () => {
    const r = mirrorAcrossFork({});
    expect(r).toEqual({ auditProblems: [], childSawDeviceWrite: false, deviceReadStale: false });
  });

  it('without range_start/end around the write-protect, the device writes into the child', () => {
    const r = mirrorAcrossFork({ noWriteProtectNotify: true });
    expect(r.childSawDeviceWrite).toBe(true);
    expect(r.auditProblems.some((p) => p.includes('writable, host pte read-only'))).toBe(true);
  });

  it('without the notifier at do_wp_page, the device reads the page the child kept', () => {
    const r = mirrorAcrossFork({ noWpCopyNotify: true });
    expect(r.childSawDeviceWrite).toBe(false);
    expect(r.deviceReadStale).toBe(true);
    expect(r.auditProblems.some((p) => p.includes('host pte pfn'))).toBe(true);
  });
});

// ---- random sequences with fork ---------------------------------------------------------

type Op =
  | { k: 'fork'; p: number }
  | { k: 'exit'; p: number }
  | { k: 'touch'; p: number; off: number; n: number }
  | { k: 'verify'; p: number }
  | { k: 'dontneed'; p: number; off: number; n: number }
  | { k: 'rdonly'; p: number }
  | { k: 'gup'; p: number; off: number; write: boolean }
  | { k: 'put'; i: number }
  | { k: 'reclaim'; n: number };

const idx = fc.nat(7);
const NR_PAGES = 20;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ k: fc.constant('fork' as const), p: idx }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('exit' as const), p: idx }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('touch' as const), p: idx, off: fc.nat(NR_PAGES - 1), n: fc.integer({ min: 1, max: NR_PAGES }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('verify' as const), p: idx }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('dontneed' as const), p: idx, off: fc.nat(NR_PAGES - 1), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rdonly' as const), p: idx }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('gup' as const), p: idx, off: fc.nat(NR_PAGES - 1), write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('put' as const), i: idx }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('reclaim' as const), n: fc.integer({ min: 1, max: 48 }) }) },
);

interface ModelProc {
  p: Process;
  /** Generation written at each page of the one region (0: zeroes). */
  content: Int32Array;
  writable: boolean;
}

function fill(page: number, gen: number): Uint8Array {
  return gen === 0 ? new Uint8Array(PAGE) : pattern(page, gen);
}

/** Runs ops on p0 and its forks, then tears down; returns the orphaned swap-cache pages reclaim freed at the end. */
function runForkOps(h: TestHost, ops: Op[]): number {
  const k = h.k;
  const procs: ModelProc[] = [];
  const refs: number[] = [];
  let hva = 0;
  let gen = 1;
  runThread(h, 'setup', function* () {
    const p = k.createProcess('p0');
    hva = yield* k.mmap(p.mm, NR_PAGES * PAGE);
    procs.push({ p, content: new Int32Array(NR_PAGES), writable: true });
  });
  const pick = (i: number): ModelProc | undefined => (procs.length === 0 ? undefined : procs[i % procs.length]);
  for (const op of ops) {
    runThread(h, op.k, function* (): Task<void> {
      const mp = 'p' in op ? pick(op.p) : undefined;
      switch (op.k) {
        case 'fork': {
          if (mp === undefined || procs.length >= 5) return;
          const c = yield* forkOk(h, mp.p);
          procs.push({ p: c, content: mp.content.slice(), writable: mp.writable });
          return;
        }
        case 'exit':
          if (mp === undefined) return;
          yield* k.exitProcess(mp.p);
          procs.splice(procs.indexOf(mp), 1);
          return;
        case 'touch': {
          if (mp === undefined) return;
          const g = gen++;
          for (let i = op.off; i < Math.min(NR_PAGES, op.off + op.n); i++) {
            const r = yield* k.accessWrite(mp.p.mm, hva + i * PAGE, fill(i, g));
            if (!mp.writable) {
              expect(r).toBeLessThan(0);
              continue;
            }
            expect(r).toBe(0);
            mp.content[i] = g;
          }
          return;
        }
        case 'verify': {
          if (mp === undefined) return;
          const buf = new Uint8Array(PAGE);
          for (let i = 0; i < NR_PAGES; i++) {
            expect(yield* k.accessRead(mp.p.mm, hva + i * PAGE, buf)).toBe(0);
            const exp = fill(i, mp.content[i]!);
            if (!buf.every((b, j) => b === exp[j])) expect(buf, `page ${i} of ${mp.p.name}`).toEqual(exp);
          }
          return;
        }
        case 'dontneed': {
          if (mp === undefined) return;
          const n = Math.min(op.n, NR_PAGES - op.off);
          expect(yield* k.madvise(mp.p.mm, hva + op.off * PAGE, n * PAGE, MADV_DONTNEED)).toBe(0);
          mp.content.fill(0, op.off, op.off + n);
          return;
        }
        case 'rdonly':
          if (mp === undefined) return;
          expect(yield* k.mprotect(mp.p.mm, hva, NR_PAGES * PAGE, mp.writable ? PROT_READ : PROT_READ | PROT_WRITE)).toBe(0);
          mp.writable = !mp.writable;
          return;
        case 'gup': {
          if (mp === undefined) return;
          const pfn = yield* k.getUserPages(mp.p.mm, hva + op.off * PAGE, op.write);
          if (op.write && !mp.writable) {
            expect(pfn).toBeLessThan(0);
            return;
          }
          expect(pfn).toBeGreaterThanOrEqual(0);
          const exp = fill(op.off, mp.content[op.off]!);
          const got = k.frames.frame(pfn);
          if (!got.every((b, j) => b === exp[j])) expect(got).toEqual(exp);
          refs.push(pfn);
          return;
        }
        case 'put':
          if (refs.length > 0) k.putPage(refs.splice(op.i % refs.length, 1)[0]!);
          return;
        case 'reclaim':
          yield* k.reclaim(op.n);
          return;
      }
    });
    checkInvariants(k);
  }
  runThread(h, 'teardown', function* () {
    for (const mp of procs) yield* k.exitProcess(mp.p);
  });
  for (const pfn of refs) k.putPage(pfn);
  checkInvariants(k);
  const orphans = reclaimOrphanedSwapCache(h);
  expect(k.frames.nrFree).toBe(k.frames.nrFrames);
  expect(k.swap.nrUsed).toBe(0);
  expect(k.ctx.stats.warnings).toBe(0);
  return orphans;
}

// Replay a failure with FC_SEED=<seed> FC_PATH=<path> from fast-check's report.
describe('fork under random sequences', () => {
  // fast-check's shrunk counterexample (FC_SEED=137633497): p0's page 10 is swapped in
  // by a read in p0 and p1 (one frame, still caching its slot), gup'd by p0; p0 exits,
  // p1 forks p2, p2 copies the page on write; then p1's write copies it too (the gup
  // reference forbids reuse) while kswapd holds the page locked in folio_referenced,
  // so wp_page_copy's free_swap_cache cannot take the lock: the unmapped page stays in
  // the swap cache, and kswapd cannot free it for the gup reference. After put_page it
  // is reclaim's to free; the teardown used to count it as leaked.
  it('leaves an unmapped page in the swap cache when its last COW races with reclaim, for the next reclaim to free', () => {
    const h = createHost({ ramBytes: 128 * KiB, swapBytes: 1024 * KiB, era: 'modern', seed: 995, swapReadLatency: 3, swapWriteLatency: 5 });
    const ops: Op[] = [
      { k: 'reclaim', n: 1 },
      { k: 'gup', p: 0, off: 10, write: false },
      { k: 'reclaim', n: 2 },
      { k: 'verify', p: 7 },
      { k: 'touch', p: 1, off: 13, n: 4 },
      { k: 'touch', p: 7, off: 0, n: 9 },
      { k: 'exit', p: 0 },
      { k: 'fork', p: 0 },
      { k: 'touch', p: 3, off: 10, n: 9 },
      { k: 'touch', p: 0, off: 6, n: 5 },
    ];
    expect(runForkOps(h, [{ k: 'touch', p: 0, off: 0, n: NR_PAGES }, { k: 'fork', p: 0 }, ...ops]), 'the race still happens').toBe(1);
    h.k.shutdown();
  });

  it('keeps every process\'s data and the audits (fast-check)', () => {
    const total = { pswpout: 0, pswpin: 0, cowFault: 0 };
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 50, size: 'max' }),
        fc.constantFrom<NotifierEra>('modern', '2008'),
        fc.integer({ min: 1, max: 1000 }),
        (ops, era, seed) => {
          // Sized so that the OOM killer cannot fire, and the model has none: at most 5
          // processes x 20 pages, plus one frame per gup reference (at most 50 ops), is
          // 150 pages against 32 frames + 256 slots. (test/host/property.test.ts,
          // whose mmaps are unbounded, models the kill instead.)
          const h = createHost({ ramBytes: 128 * KiB, swapBytes: 1024 * KiB, era, seed, swapReadLatency: 3, swapWriteLatency: 5 });
          runForkOps(h, [{ k: 'touch', p: 0, off: 0, n: NR_PAGES }, { k: 'fork', p: 0 }, ...ops]);
          expect(h.k.ctx.stats.oomKill).toBe(0);
          for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += h.k.ctx.stats[key];
          h.k.shutdown();
        },
      ),
      fcParams(150),
    );
    if (fcReplaying()) return;
    expect(total.pswpout).toBeGreaterThan(0);
    expect(total.pswpin).toBeGreaterThan(0);
    expect(total.cowFault).toBeGreaterThan(0);
  });
});



// Small harness in the style of the KVM selftests: a kernel on a seeded scheduler,
// process threads, patterns that name their page, and a run that must finish.

import { expect } from 'vitest';
import { HostKernel, PG_free, PG_lru, PG_swapcache, checkInvariants } from '../../src/host/index.js';
import type { HostKernelOptions, Mm } from '../../src/host/index.js';
import { MAX_RECLAIM_RETRIES } from '../../src/host/vmscan.js';
import { Scheduler } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const PAGE = 4096;

export interface TestHost {
  sched: Scheduler;
  k: HostKernel;
}

export function createHost(opts: Partial<HostKernelOptions> & { seed?: number } = {}): TestHost {
  const sched = new Scheduler({ seed: opts.seed ?? 1 });
  const k = new HostKernel({
    ramBytes: 256 * KiB,
    swapReadLatency: 10,
    swapWriteLatency: 10,
    ...opts,
    sched,
  });
  return { sched, k };
}

/**
 * Runs the scheduler until every non-daemon thread is done, then lets reclaim settle;
 * fails the test on deadlock, bugs or a thread error.
 */
export function runAll(h: TestHost, maxSteps = 5_000_000): void {
  let r = h.sched.run({ maxSteps });
  if (r.status === 'done') {
    h.sched.spawn('settle', () => h.k.settle());
    r = h.sched.run({ maxSteps });
  }
  expect(r.report ?? '', `run ended ${r.status}`).toBe('');
  expect(r.status).toBe('done');
  expect(h.sched.bugs).toEqual([]);
  for (const t of h.sched.threads) if (t.error !== undefined) throw t.error;
}

/** One thread, run to completion. */
export function runThread(h: TestHost, name: string, body: () => Task<void>): void {
  h.sched.spawn(name, body);
  runAll(h);
}

/** A page of bytes that names its page and a generation, so a misplaced page shows. */
export function pattern(page: number, gen: number): Uint8Array {
  const buf = new Uint8Array(PAGE);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < PAGE; i += 4) dv.setUint32(i, (Math.imul(page + 1, 0x9e3779b1) ^ Math.imul(gen + 1, 0x85ebca6b) ^ i) >>> 0, true);
  return buf;
}

export function* writePages(h: TestHost, mm: Mm, hva: number, nrPages: number, gen: number): Task<void> {
  for (let i = 0; i < nrPages; i++) {
    const r = yield* h.k.accessWrite(mm, hva + i * PAGE, pattern(i, gen));
    if (r !== 0) throw new Error(`write of page ${i} failed: ${r}`);
  }
}

/** Returns the indices of pages whose contents differ from the pattern. */
export function* verifyPages(h: TestHost, mm: Mm, hva: number, nrPages: number, gen: number): Task<number[]> {
  const bad: number[] = [];
  const buf = new Uint8Array(PAGE);
  for (let i = 0; i < nrPages; i++) {
    const r = yield* h.k.accessRead(mm, hva + i * PAGE, buf);
    if (r !== 0) throw new Error(`read of page ${i} failed: ${r}`);
    const want = pattern(i, gen);
    for (let j = 0; j < PAGE; j++) {
      if (buf[j] !== want[j]) {
        bad.push(i);
        break;
      }
    }
  }
  return bad;
}

export function expectBalanced(h: TestHost): void {
  checkInvariants(h.k);
}

export function expectAllFree(h: TestHost): void {
  checkInvariants(h.k);
  expect(h.k.frames.nrFree).toBe(h.k.frames.nrFrames);
  expect(h.k.swap.nrUsed).toBe(0);
  expect(h.k.lru.nrActive + h.k.lru.nrInactive).toBe(0);
}

/**
 * What a teardown may still find allocated after every process exited and every gup
 * reference was put: unmapped pages left in the swap cache with no swap pte naming
 * their slot. free_swap_cache (mm/swap_state.c; wp_page_copy and the zap's
 * free_pages_and_swap_cache call it) only trylocks the page, so a last unmap that
 * races with a reclaimer holding the page lock (inside folio_referenced or
 * try_to_unmap) leaves the page in the cache. That reclaimer does not free it if it
 * found a young pte on its walk (it activates the page) or a gup reference holds it
 * (__remove_mapping wants isolation + cache only, and put_page frees nothing that
 * the cache still holds). Linux leaves such a page to a later reclaim pass, and so
 * does the host: this checks that nothing else is left, runs that reclaim, and
 * returns how many it freed.
 */
export function reclaimOrphanedSwapCache(h: TestHost): number {
  const fr = h.k.frames;
  let orphans = 0;
  for (let pfn = 0; pfn < fr.nrFrames; pfn++) {
    if (fr.flags[pfn]! & PG_free) continue;
    const slot = fr.swapSlot[pfn]!;
    const orphan =
      (fr.flags[pfn]! & (PG_swapcache | PG_lru)) === (PG_swapcache | PG_lru) &&
      fr.mapcount[pfn] === 0 &&
      fr.refcount[pfn] === 1 &&
      h.k.swap.swapMap[slot] === 0;
    expect(orphan, `left allocated at teardown: ${fr.describe(pfn)}`).toBe(true);
    orphans++;
  }
  if (orphans > 0) {
    // Retried like memory.reclaim: a pass may only deactivate an orphan on the active list.
    runThread(h, 'reclaim-orphans', function* () {
      let freed = 0;
      for (let retries = MAX_RECLAIM_RETRIES; freed < orphans && retries > 0; retries--) freed += yield* h.k.reclaim(fr.nrFrames);
      expect(freed).toBe(orphans);
    });
  }
  return orphans;
}

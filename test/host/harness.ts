// Small harness in the style of the KVM selftests: a kernel on a seeded scheduler,
// process threads, patterns that name their page, and a run that must finish.

import { expect } from 'vitest';
import { HostKernel, checkInvariants } from '../../src/host/index.js';
import type { HostKernelOptions, Mm } from '../../src/host/index.js';
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

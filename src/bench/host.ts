// Host kernel benchmarks: reclaim throughput, mmu_notifier call cost, and what a MiB of
// simulated host RAM costs the simulator.

import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { HostKernel } from '../host/kernel.js';
import type { Mm } from '../host/mm.js';
import type { MmuNotifierOps, MmuNotifierRange } from '../host/mmu-notifier.js';
import { PAGE_SIZE } from '../host/pte.js';
import { Scheduler, runSync } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { median, type BenchSection } from './section.js';

const MiB = 1024 * 1024;

interface ReclaimFigures {
  ramMiB: number;
  touchedMiB: number;
  wallMs: number;
  pswpout: number;
  pswpin: number;
  pagesPerSec: number;
  simTicks: number;
}

/** One process writes 3x RAM and reads it back under kswapd and direct reclaim. */
function reclaimThroughput(ramBytes: number): ReclaimFigures {
  const sched = new Scheduler({ seed: 7 });
  const k = new HostKernel({ ramBytes, swapBytes: 4 * ramBytes, swapReadLatency: 10, swapWriteLatency: 10, sched });
  const p = k.createProcess('bench');
  const nrPages = (3 * ramBytes) / PAGE_SIZE;
  const page = new Uint8Array(PAGE_SIZE);
  const buf = new Uint8Array(PAGE_SIZE);
  let bad = 0;
  sched.spawn('bench', function* () {
    const hva = yield* k.mmap(p.mm, nrPages * PAGE_SIZE);
    for (let i = 0; i < nrPages; i++) {
      page[0] = i & 255;
      page[PAGE_SIZE - 1] = (i >> 8) & 255;
      if ((yield* k.accessWrite(p.mm, hva + i * PAGE_SIZE, page)) !== 0) bad++;
    }
    for (let i = 0; i < nrPages; i++) {
      if ((yield* k.accessRead(p.mm, hva + i * PAGE_SIZE, buf)) !== 0) bad++;
      if (buf[0] !== (i & 255) || buf[PAGE_SIZE - 1] !== ((i >> 8) & 255)) bad++;
    }
    yield* k.exitProcess(p);
  });
  const t0 = performance.now();
  const r = sched.run();
  const wallMs = performance.now() - t0;
  if (r.status !== 'done' || bad !== 0) throw new Error(`reclaim bench failed: ${r.status} ${r.report ?? ''} bad=${bad}`);
  const s = k.stats();
  k.shutdown();
  return {
    ramMiB: ramBytes / MiB,
    touchedMiB: (3 * ramBytes) / MiB,
    wallMs,
    pswpout: s.pswpout,
    pswpin: s.pswpin,
    pagesPerSec: ((s.pswpout + s.pswpin) * 1000) / wallMs,
    simTicks: r.now,
  };
}

const quietOps: MmuNotifierOps = {
  *invalidateRangeStart(): Task<number> {
    return 0;
  },
  *invalidateRangeEnd(): Task {},
  clearFlushYoung(): boolean {
    return false;
  },
};

interface NotifierFigures {
  subscribers: number;
  clearFlushYoungNs: number;
  rangeStartEndNs: number;
}

/** ns per notifier call, median of runs, for the sync (clear_flush_young) and Task (start+end pair) shapes. */
function notifierCost(subscribers: number, iterations: number, runs: number): NotifierFigures {
  const k = new HostKernel({ ramBytes: 256 * 1024, kswapd: false });
  const p = k.createProcess('bench');
  const mm: Mm = p.mm;
  for (let i = 0; i < subscribers; i++) {
    if (runSync(k.mmuNotifierRegister(mm, `sub${i}`, quietOps)) === null) throw new Error('register failed');
  }
  const range: MmuNotifierRange = { mm, start: 0x1000_0000, end: 0x1000_1000, event: 'clear', blockable: true };
  const cfy: number[] = [];
  const se: number[] = [];
  let sink = 0;
  for (let r = 0; r < runs; r++) {
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) if (k.mn.clearFlushYoung(mm, range.start, range.end)) sink++;
    cfy.push(Number(process.hrtime.bigint() - t0) / iterations);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      sink += runSync(k.mn.invalidateRangeStart(range));
      runSync(k.mn.invalidateRangeEnd(range));
    }
    se.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  if (sink !== 0) throw new Error('unexpected notifier result');
  k.shutdown();
  return { subscribers, clearFlushYoungNs: median(cfy), rangeStartEndNs: median(se) };
}

interface MemoryFigures {
  ramMiB: number;
  bytesPerMiB: number;
  heapPerMiB: number;
  /** Typed arrays beyond the RAM buffer itself: frame state, LRU links, swap map. */
  metaPerMiB: number;
}

/** A gc() even without --expose-gc, so heap deltas are not GC noise. */
function getGc(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}

/** Bytes of the typed arrays an object holds directly, the RAM buffer excepted. */
function typedArrayBytes(obj: object, ram: ArrayBufferLike): number {
  let bytes = 0;
  for (const v of Object.values(obj)) {
    if (ArrayBuffer.isView(v) && v.buffer !== ram) bytes += v.byteLength;
  }
  return bytes;
}

/**
 * Simulator memory per MiB of simulated RAM. The metadata is counted exactly
 * (the typed arrays of the frame table and the swap map); the heap is a
 * process delta around a fresh kernel, so it carries GC noise.
 */
function memoryPerMiB(ramBytes: number): MemoryFigures {
  const gc = getGc();
  gc?.();
  const before = process.memoryUsage();
  const k = new HostKernel({ ramBytes, kswapd: false });
  // Touch the frames so the buffer is really resident.
  k.frames.bytes.fill(1);
  gc?.();
  const after = process.memoryUsage();
  const meta = typedArrayBytes(k.frames, k.frames.buffer) + typedArrayBytes(k.swap, k.frames.buffer);
  const heap = Math.max(0, after.heapUsed - before.heapUsed);
  const mib = ramBytes / MiB;
  const out = { ramMiB: mib, bytesPerMiB: (ramBytes + meta + heap) / mib, heapPerMiB: heap / mib, metaPerMiB: meta / mib };
  k.shutdown();
  return out;
}

export async function runHostBench(opts: { quick: boolean }): Promise<string> {
  const lines: string[] = ['host kernel'];
  const ram = opts.quick ? 1 * MiB : 4 * MiB;
  reclaimThroughput(256 * 1024); // warm-up
  const rs = [reclaimThroughput(ram)];
  if (!opts.quick) rs.push(reclaimThroughput(ram));
  const best = rs.reduce((a, b) => (a.pagesPerSec > b.pagesPerSec ? a : b));
  lines.push(
    `  reclaim: ${best.touchedMiB} MiB written+read on ${best.ramMiB} MiB RAM: ${best.pswpout} pswpout + ${best.pswpin} pswpin ` +
      `in ${best.wallMs.toFixed(0)} ms wall = ${Math.round(best.pagesPerSec)} pages/s (${best.simTicks} sim ticks)`,
  );
  const iterations = opts.quick ? 20_000 : 200_000;
  const runs = opts.quick ? 3 : 7;
  for (const n of [0, 1, 4]) notifierCost(n, iterations >> 2, 1); // JIT warm-up
  for (const n of [0, 1, 4]) {
    const f = notifierCost(n, iterations, runs);
    lines.push(
      `  notifier, ${n} subscriber${n === 1 ? '' : 's'}: clear_flush_young ${f.clearFlushYoungNs.toFixed(0)} ns/call, ` +
        `range start+end ${f.rangeStartEndNs.toFixed(0)} ns/pair (median of ${runs})`,
    );
  }
  const m = memoryPerMiB(opts.quick ? 16 * MiB : 64 * MiB);
  lines.push(
    `  memory: ${(m.bytesPerMiB / 1024).toFixed(1)} KiB of simulator memory per MiB of host RAM ` +
      `(1024 KiB RAM buffer + ${(m.metaPerMiB / 1024).toFixed(1)} KiB frame/swap metadata + ${(m.heapPerMiB / 1024).toFixed(1)} KiB heap; measured on ${m.ramMiB} MiB)`,
  );
  return lines.join('\n');
}

export const hostSection: BenchSection = {
  name: 'host',
  description: 'simulated host kernel: reclaim, mmu_notifier calls, memory per MiB',
  async run(ctx) {
    for (const line of (await runHostBench({ quick: ctx.quick })).split('\n')) ctx.log(line);
  },
};

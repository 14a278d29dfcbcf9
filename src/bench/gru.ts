// GRU device TLB: the cost of one TLB purge per invalidate_range_start (the GRU's
// range purge) against one per page (what an invalidate_page-era driver must do), on
// the same 512-page munmap with the TLB full of the range's translations.

import { HostKernel } from '../host/kernel.js';
import { secondaryMmuHost } from '../host/secondary-mmu.js';
import { GRU_PURGE_TICKS, GruDevice } from '../gru/gru.js';
import type { GruFlushMode } from '../gru/gru.js';
import { Scheduler } from '../sched/index.js';
import { median, type BenchContext, type BenchSection } from './section.js';

const PAGE = 4096;
const PAGES = 512;
const TLB_ENTRIES = 512;

interface MunmapFigures {
  simTicks: number;
  wallMs: number;
  purges: number;
  purgedEntries: number;
  notifierCalls: number;
}

function munmapOnce(mode: GruFlushMode | 'none'): MunmapFigures {
  const sched = new Scheduler({ seed: 1 });
  const k = new HostKernel({ ramBytes: 8 * 1024 * 1024, sched, kswapd: false });
  const p = k.createProcess('bench');
  let dev: GruDevice | null = null;
  let hva = 0;
  sched.spawn('setup', function* () {
    hva = yield* k.mmap(p.mm, PAGES * PAGE);
    const b = new Uint8Array(PAGE);
    for (let i = 0; i < PAGES; i++) {
      b[0] = i;
      yield* k.accessWrite(p.mm, hva + i * PAGE, b);
    }
    if (mode === 'none') return;
    dev = yield* GruDevice.create(secondaryMmuHost(k), p.mm, { flushMode: mode, entries: TLB_ENTRIES });
    const d = dev!;
    for (let i = 0; i < PAGES; i++) yield* d.submit({ op: 'read', hva: hva + i * PAGE, dst: b.subarray(0, 8) });
  });
  let r = sched.run();
  if (r.status !== 'done') throw new Error(`gru bench setup: ${r.status}`);
  const d = dev as GruDevice | null;
  const purges0 = d?.stats.purges ?? 0;
  const calls0 = k.ctx.stats.notifierCalls;
  let ticks = 0;
  sched.spawn('munmap', function* () {
    const t0 = k.now;
    yield* k.munmap(p.mm, hva, PAGES * PAGE);
    ticks = k.now - t0;
  });
  const w0 = performance.now();
  r = sched.run();
  const wallMs = performance.now() - w0;
  if (r.status !== 'done') throw new Error(`gru bench munmap: ${r.status}`);
  const figures = {
    simTicks: ticks,
    wallMs,
    purges: (d?.stats.purges ?? 0) - purges0,
    purgedEntries: d?.stats.purgedEntries ?? 0,
    notifierCalls: k.ctx.stats.notifierCalls - calls0,
  };
  if (d !== null && d.refsHeld !== 0) throw new Error(`gru bench: ${d.refsHeld} references left after munmap`);
  k.shutdown();
  return figures;
}

export function runGruBench(opts: { quick: boolean }): string[] {
  const reps = opts.quick ? 3 : 9;
  const lines = [`${PAGES}-page munmap with a GRU TLB holding all ${PAGES} translations (a purge costs ${GRU_PURGE_TICKS} simulated ticks):`];
  for (const mode of ['none', 'range', 'page'] as const) {
    munmapOnce(mode); // warm-up: the first run of each mode pays for the JIT
    const runs = Array.from({ length: reps }, () => munmapOnce(mode));
    const f = runs[0]!;
    const ms = median(runs.map((x) => x.wallMs));
    const label = mode === 'none' ? 'no device            ' : mode === 'range' ? 'one purge per range  ' : 'one purge per page   ';
    lines.push(
      `  ${label} ${String(f.simTicks).padStart(6)} ticks  ${ms.toFixed(2).padStart(7)} ms wall (median of ${reps})  ` +
        `${f.purges} purge(s), ${f.purgedEntries} entries, ${f.notifierCalls} notifier call(s)`,
    );
  }
  return lines;
}

export const gruSection: BenchSection = {
  name: 'gru',
  description: 'GRU device TLB: one purge per range against one per page on a 512-page munmap',
  run(ctx: BenchContext): void {
    for (const line of runGruBench({ quick: ctx.quick })) ctx.log(line);
  },
};

// XPMEM exporter: what a sleeping recall costs. B has all 512 pages of A's segment
// mapped; A unmaps them in one munmap (one invalidate_range_start: one recall round
// trip, one zap_vma_ptes), or reclaim swaps them out one by one (a range per page: a
// round trip per page, as an invalidate_page-era exporter would need if it could
// sleep at all), against the same operations with nothing attached.

import { HostKernel } from '../host/kernel.js';
import { secondaryMmuHost } from '../host/secondary-mmu.js';
import { Scheduler } from '../sched/index.js';
import { XPMEM_RECALL_TICKS, XpmemSegment } from '../xpmem/xpmem.js';
import { median, type BenchContext, type BenchSection } from './section.js';

const PAGE = 4096;
const PAGES = 512;

type Op = 'munmap' | 'swapout';

interface Figures {
  simTicks: number;
  wallMs: number;
  recalls: number;
  zappedPages: number;
  notifierCalls: number;
}

function once(op: Op, attached: boolean): Figures {
  const sched = new Scheduler({ seed: 1 });
  const k = new HostKernel({ ramBytes: 8 * 1024 * 1024, sched, kswapd: false });
  const a = k.createProcess('exporter');
  const b = k.createProcess('attacher');
  let seg: XpmemSegment | null = null;
  let hva = 0;
  sched.spawn('setup', function* () {
    hva = yield* k.mmap(a.mm, PAGES * PAGE);
    const buf = new Uint8Array(PAGE);
    for (let i = 0; i < PAGES; i++) {
      buf[0] = i;
      yield* k.accessWrite(a.mm, hva + i * PAGE, buf);
    }
    if (!attached) return;
    const s = yield* XpmemSegment.make(secondaryMmuHost(k), a.mm, hva, PAGES * PAGE);
    if (typeof s === 'number') throw new Error(`xpmem bench: make ${s}`);
    const att = yield* s.attach(b.mm);
    if (typeof att === 'number') throw new Error(`xpmem bench: attach ${att}`);
    for (let i = 0; i < PAGES; i++) yield* k.accessRead(b.mm, att.hva + i * PAGE, buf.subarray(0, 8));
    seg = s;
  });
  let r = sched.run();
  if (r.status !== 'done') throw new Error(`xpmem bench setup: ${r.status}`);
  const s = seg as XpmemSegment | null;
  const recalls0 = s?.stats.recalls ?? 0;
  const zapped0 = s?.stats.zappedPages ?? 0;
  const calls0 = k.ctx.stats.notifierCalls;
  let ticks = 0;
  sched.spawn(op, function* () {
    const t0 = k.now;
    if (op === 'munmap') yield* k.munmap(a.mm, hva, PAGES * PAGE);
    else for (let i = 0; i < PAGES; i++) yield* k.reclaimUserPage(a.mm, hva + i * PAGE);
    ticks = k.now - t0;
  });
  const w0 = performance.now();
  r = sched.run();
  const wallMs = performance.now() - w0;
  if (r.status !== 'done') throw new Error(`xpmem bench ${op}: ${r.status}`);
  if (s !== null && s.refsHeld !== 0) throw new Error(`xpmem bench: ${s.refsHeld} references left after ${op}`);
  const figures = {
    simTicks: ticks,
    wallMs,
    recalls: (s?.stats.recalls ?? 0) - recalls0,
    zappedPages: (s?.stats.zappedPages ?? 0) - zapped0,
    notifierCalls: k.ctx.stats.notifierCalls - calls0,
  };
  k.shutdown();
  return figures;
}

export function runXpmemBench(opts: { quick: boolean }): string[] {
  const reps = opts.quick ? 3 : 9;
  const lines = [`${PAGES} pages of A attached in B (a recall's round trip costs ${XPMEM_RECALL_TICKS} simulated ticks):`];
  for (const op of ['munmap', 'swapout'] as const) {
    for (const attached of [false, true]) {
      once(op, attached); // warm-up
      const runs = Array.from({ length: reps }, () => once(op, attached));
      const f = runs[0]!;
      const ms = median(runs.map((x) => x.wallMs));
      const label = `${op === 'munmap' ? 'one munmap       ' : 'swap-out per page'} ${attached ? 'attached' : 'alone   '}`;
      lines.push(
        `  ${label} ${String(f.simTicks).padStart(6)} ticks  ${ms.toFixed(2).padStart(7)} ms wall (median of ${reps})  ` +
          `${f.recalls} recall(s), ${f.zappedPages} B ptes zapped, ${f.notifierCalls} notifier call(s)`,
      );
    }
  }
  return lines;
}

export const xpmemSection: BenchSection = {
  name: 'xpmem',
  description: 'XPMEM exporter: one sleeping recall per munmap range against one per swapped-out page, 512 attached pages',
  run(ctx: BenchContext): void {
    for (const line of runXpmemBench({ quick: ctx.quick })) ctx.log(line);
  },
};

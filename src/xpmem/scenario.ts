// A seeded race over one XPMEM segment: process A exports a range, process B attaches
// it; A writes the even pages (and MADV_DONTNEEDs some), B writes the odd ones through
// its own ptes to A's frames, both read every page at random, and the host swaps under
// a small RAM. The audit (audit.ts) runs before every scheduler step; every read is
// checked against the writes that could linearize with it; at the end both processes
// must read every page's last write, and teardown must leave nothing behind.

// The scenario is the host side: it builds the HostKernel, creates the processes and
// their mmaps, and drives reclaim and DONTNEED as the host's own threads would. The
// driver gets only secondaryMmuHost(k); the audits and the teardown counts look
// behind the protocol through hostDebugView(k), never through the kernel itself.

import { HostKernel, MADV_DONTNEED, hostDebugView, secondaryMmuHost } from '../host/index.js';
import type { Mm, NotifierEra } from '../host/index.js';
import { Rng, Scheduler } from '../sched/index.js';
import type { BugReport, Task } from '../sched/index.js';
import { auditXpmem, auditXpmemTeardown } from './audit.js';
import { PAGE_SIZE, XpmemSegment } from './xpmem.js';
import type { XpmemAttachment, XpmemDebug, XpmemStats } from './xpmem.js';
import { stamp, unstamp } from '../check/page-stamp.js';
import { runRaceAudited } from '../check/race-run.js';

const KiB = 1024;

export interface XpmemRaceOptions {
  readonly seed: number;
  readonly era?: NotifierEra;
  readonly debug?: Partial<XpmemDebug>;
  readonly nrPages?: number;
  /** Operations per writer. */
  readonly ops?: number;
}

export interface XpmemRaceResult {
  /** Empty when the run was clean. */
  readonly problems: string[];
  readonly stats: XpmemStats;
  readonly bugs: readonly BugReport[];
  readonly pswpout: number;
  readonly steps: number;
}

export { stamp, unstamp };

const NO_STATS: XpmemStats = { faults: 0, retries: 0, recalls: 0, zappedPages: 0, atomicRecallsFailed: 0, eagain: 0 };

export function runXpmemRace(opts: XpmemRaceOptions): XpmemRaceResult {
  const sched = new Scheduler({ seed: opts.seed });
  const k = new HostKernel({ ramBytes: 128 * KiB, swapBytes: 1024 * KiB, swapReadLatency: 7, swapWriteLatency: 13, sched, era: opts.era ?? 'modern' });
  const host = secondaryMmuHost(k);
  const view = hostDebugView(k);
  const a = k.createProcess('exporter');
  const b = k.createProcess('attacher', { era: 'modern' });
  const nrPages = opts.nrPages ?? 32;
  const ops = opts.ops ?? 100;
  const rng = new Rng(opts.seed ^ 0x4e3e);
  const problems: string[] = [];
  // Per page: every value written, in order (0 = DONTNEED), how many completed, how many began.
  const hist: number[][] = Array.from({ length: nrPages }, () => [1]);
  const committed = new Int32Array(nrPages);
  const started = new Int32Array(nrPages);
  let nextGen = 2;
  let hvaA = 0;
  let seg: XpmemSegment | null = null;
  let att: XpmemAttachment | null = null;
  let writers = 0;

  const at = (mm: Mm, i: number): number => (mm === a.mm ? hvaA : att!.hva) + i * PAGE_SIZE;

  function* writer(name: string, mm: Mm, parity: number): Task {
    const buf = new Uint8Array(PAGE_SIZE);
    for (let n = 0; n < ops; n++) {
      const i = 2 * rng.below(nrPages >> 1) + parity;
      // Only A may discard: MADV_DONTNEED on B's VM_PFNMAP attach is -EINVAL.
      const dontneed = mm === a.mm && rng.below(6) === 0;
      const gen = dontneed ? 0 : nextGen++;
      hist[i]!.push(gen);
      started[i] = hist[i]!.length - 1;
      const r = dontneed ? yield* k.madvise(mm, at(mm, i), PAGE_SIZE, MADV_DONTNEED) : yield* k.accessWrite(mm, at(mm, i), stamp(i, gen, buf));
      if (r !== 0) problems.push(`${name}: ${dontneed ? 'madvise' : 'write'} of page ${i} failed: ${r}`);
      committed[i] = hist[i]!.length - 1;
    }
    writers--;
  }

  function* reader(name: string, mm: Mm): Task {
    const buf = new Uint8Array(PAGE_SIZE);
    while (writers > 0) {
      const i = rng.below(nrPages);
      const lo = committed[i]!;
      const r = yield* k.accessRead(mm, at(mm, i), buf);
      const hi = started[i]!;
      if (r !== 0) {
        problems.push(`${name}: read of page ${i} failed: ${r}`);
        continue;
      }
      const gen = unstamp(i, buf);
      const window = hist[i]!.slice(lo, hi + 1);
      if (gen < 0 || !window.includes(gen)) {
        problems.push(`${name}: page ${i} read ${gen < 0 ? 'another page\'s data' : `gen ${gen}`}, expected one of [${window.join(', ')}]`);
      }
    }
  }

  sched.spawn('setup', function* () {
    hvaA = yield* k.mmap(a.mm, nrPages * PAGE_SIZE);
    const buf = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < nrPages; i++) yield* k.accessWrite(a.mm, hvaA + i * PAGE_SIZE, stamp(i, 1, buf));
    const s = yield* XpmemSegment.make(host, a.mm, hvaA, nrPages * PAGE_SIZE);
    if (typeof s === 'number') throw new Error(`xpmem make: ${s}`);
    Object.assign(s.debug, opts.debug);
    const t = yield* s.attach(b.mm);
    if (typeof t === 'number') throw new Error(`xpmem attach: ${t}`);
    seg = s;
    att = t;
    writers = 2;
    sched.spawn('a-writer', () => writer('a-writer', a.mm, 0));
    sched.spawn('b-writer', () => writer('b-writer', b.mm, 1));
    sched.spawn('a-reader', () => reader('a-reader', a.mm));
    sched.spawn('b-reader', () => reader('b-reader', b.mm));
  });

  const steps = runRaceAudited(sched, k, () => (seg !== null ? auditXpmem(view, seg) : []), problems);

  if (problems.length === 0) {
    sched.spawn('final', function* () {
      const buf = new Uint8Array(PAGE_SIZE);
      for (const mm of [a.mm, b.mm]) {
        for (let i = 0; i < nrPages; i++) {
          const rr = yield* k.accessRead(mm, at(mm, i), buf);
          const want = hist[i]![hist[i]!.length - 1]!;
          const got = rr === 0 ? unstamp(i, buf) : rr;
          if (got !== want) problems.push(`final: mm${mm.id} page ${i} holds ${got}, last write was ${want}`);
        }
      }
      const s = seg!;
      const t = att!;
      yield* s.remove();
      yield* k.munmap(b.mm, t.hva, nrPages * PAGE_SIZE);
      problems.push(...auditXpmemTeardown(view, s, [t]));
      yield* k.exitProcess(b);
      yield* k.exitProcess(a);
      yield* k.settle();
    });
    const r = sched.run({ maxSteps: 1_000_000 });
    if (r.status !== 'done') problems.push(`teardown ended ${r.status}`);
    if (view.frames.nrFree !== view.frames.nrFrames) problems.push(`teardown: ${view.frames.nrFrames - view.frames.nrFree} frames still allocated`);
  }
  const pswpout = k.stats().pswpout;
  k.shutdown();
  const stats = seg === null ? NO_STATS : { ...(seg as XpmemSegment).stats };
  return { problems, stats, bugs: [...sched.bugs], pswpout, steps };
}

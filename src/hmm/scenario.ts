// A seeded race over one dmirror: a process and the device write disjoint halves of a
// range, both own their pages' MADV_DONTNEEDs, the device reads everything at random,
// the host swaps under a small RAM, and a second (hlist) secondary MMU on the same mm
// sleeps in invalidate_range_start, which keeps each range active long enough for a
// fault to run inside it. The audit runs before every scheduler step; every device
// read is checked against the writes that could linearize with it; at the end the
// process must read every page's last write, and teardown must leave nothing behind.

// The scenario is the host side: it builds the HostKernel, creates the processes and
// their mmaps, and drives reclaim and DONTNEED as the host's own threads would. The
// driver gets only secondaryMmuHost(k); the audits and the teardown counts look
// behind the protocol through hostDebugView(k), never through the kernel itself.

import { HostKernel, MADV_DONTNEED, hostDebugView, secondaryMmuHost } from '../host/index.js';
import type { IntervalDebug } from '../host/index.js';
import { Rng, Scheduler, sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { auditDmirror, auditDmirrorTeardown } from './audit.js';
import { Dmirror, PAGE_SIZE } from './dmirror.js';
import type { DmirrorDebug, DmirrorStats } from './dmirror.js';
import { stamp, unstamp } from '../check/page-stamp.js';
import { runRaceAudited } from '../check/race-run.js';

const KiB = 1024;

export interface DmirrorRaceOptions {
  readonly seed: number;
  readonly debug?: Partial<DmirrorDebug>;
  readonly hostDebug?: Partial<IntervalDebug>;
  readonly nrPages?: number;
  /** Operations per actor. */
  readonly ops?: number;
}

export interface DmirrorRaceResult {
  /** Empty when the run was clean. */
  readonly problems: string[];
  readonly stats: DmirrorStats;
  readonly pswpout: number;
  readonly steps: number;
}

export { stamp, unstamp };

export function runDmirrorRace(opts: DmirrorRaceOptions): DmirrorRaceResult {
  const sched = new Scheduler({ seed: opts.seed });
  const k = new HostKernel({ ramBytes: 128 * KiB, swapBytes: 1024 * KiB, swapReadLatency: 7, swapWriteLatency: 13, sched });
  Object.assign(k.mn.itree.debug, opts.hostDebug);
  const host = secondaryMmuHost(k);
  const view = hostDebugView(k);
  const p = k.createProcess('hmm');
  const nrPages = opts.nrPages ?? 48;
  const ops = opts.ops ?? 120;
  const rng = new Rng(opts.seed ^ 0x5eed);
  const problems: string[] = [];
  // Per page: every value written, in order (0 = DONTNEED), how many completed, how many began.
  const hist: number[][] = Array.from({ length: nrPages }, () => [1]);
  const committed = new Int32Array(nrPages);
  const started = new Int32Array(nrPages);
  let nextGen = 2;
  let hva = 0;
  let dm: Dmirror | null = null;
  let actors = 0;

  const hvaOf = (i: number) => hva + i * PAGE_SIZE;
  function* owner(name: string, parity: number, device: boolean): Task {
    const buf = new Uint8Array(PAGE_SIZE);
    for (let n = 0; n < ops; n++) {
      const i = 2 * rng.below(nrPages >> 1) + parity;
      const dontneed = rng.below(8) === 0;
      const gen = dontneed ? 0 : nextGen++;
      hist[i]!.push(gen);
      started[i] = hist[i]!.length - 1;
      let r: number;
      if (dontneed) r = yield* k.madvise(p.mm, hvaOf(i), PAGE_SIZE, MADV_DONTNEED);
      else if (device) r = yield* dm!.write(hvaOf(i), stamp(i, gen, buf));
      else r = yield* k.accessWrite(p.mm, hvaOf(i), stamp(i, gen, buf));
      if (r !== 0) problems.push(`${name}: ${dontneed ? 'madvise' : 'write'} of page ${i} failed: ${r}`);
      committed[i] = hist[i]!.length - 1;
    }
    actors--;
  }

  sched.spawn('setup', function* () {
    hva = yield* k.mmap(p.mm, nrPages * PAGE_SIZE);
    const buf = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < nrPages; i++) yield* k.accessWrite(p.mm, hvaOf(i), stamp(i, 1, buf));
    // Another secondary MMU on the mm whose range_start sleeps (a device recall).
    yield* k.mmuNotifierRegister(p.mm, 'slow-device', {
      *invalidateRangeStart(range): Task<number> {
        if (range.blockable) yield* sleepTicks(3, 'slow-device');
        return 0;
      },
    });
    const m = yield* Dmirror.create(host, p.mm, hva, nrPages * PAGE_SIZE);
    if (typeof m === 'number') throw new Error(`dmirror create: ${m}`);
    Object.assign(m.debug, opts.debug);
    dm = m;
    actors = 2;
    sched.spawn('process-writer', () => owner('process-writer', 0, false));
    sched.spawn('device-writer', () => owner('device-writer', 1, true));
    sched.spawn('device-reader', function* () {
      const buf = new Uint8Array(PAGE_SIZE);
      while (actors > 0) {
        const i = rng.below(nrPages);
        const lo = committed[i]!;
        const r = yield* m.read(hvaOf(i), buf);
        const hi = started[i]!;
        if (r !== 0) {
          problems.push(`device-reader: read of page ${i} failed: ${r}`);
          continue;
        }
        const gen = unstamp(i, buf);
        const window = hist[i]!.slice(lo, hi + 1);
        if (gen < 0 || !window.includes(gen)) {
          problems.push(`device-reader: page ${i} read ${gen < 0 ? 'another page\'s data' : `gen ${gen}`}, expected one of [${window.join(', ')}]`);
        }
      }
    });
  });

  const steps = runRaceAudited(sched, k, () => (dm !== null ? auditDmirror(view, dm) : []), problems);

  if (problems.length === 0) {
    // The process sees every page's last write, the device's included (set_page_dirty).
    sched.spawn('final', function* () {
      const buf = new Uint8Array(PAGE_SIZE);
      for (let i = 0; i < nrPages; i++) {
        const rr = yield* k.accessRead(p.mm, hvaOf(i), buf);
        const want = hist[i]![hist[i]!.length - 1]!;
        const got = rr === 0 ? unstamp(i, buf) : rr;
        if (got !== want) problems.push(`final: page ${i} holds ${got}, last write was ${want}`);
      }
      yield* dm!.destroy();
      problems.push(...auditDmirrorTeardown(dm!));
      yield* k.exitProcess(p);
      yield* k.settle();
    });
    const r = sched.run({ maxSteps: 1_000_000 });
    if (r.status !== 'done') problems.push(`teardown ended ${r.status}`);
    if (view.frames.nrFree !== view.frames.nrFrames) problems.push(`teardown: ${view.frames.nrFrames - view.frames.nrFree} frames still allocated`);
  }
  const pswpout = k.stats().pswpout;
  k.shutdown();
  return { problems, stats: dm === null ? { faults: 0, retries: 0, invalidations: 0, reads: 0, writes: 0 } : { ...(dm as Dmirror).stats }, pswpout, steps };
}

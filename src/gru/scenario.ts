// A seeded race over one GRU device: the process writes the even pages of a range, a
// device client writes and copies among the odd ones through the command queue, both
// own their pages' MADV_DONTNEEDs, a device reader reads everything at random, the
// host swaps under a small RAM, and a second (hlist) secondary MMU sleeps in
// invalidate_range_start after the device's own start (it is registered first, so it
// is walked last) — the window between the TLB purge and the pte change. The audit
// runs before every scheduler step; every read is checked against the writes that
// could linearize with it; at the end the process must read every page's last value,
// and teardown must leave no reference and no frame behind.

// The scenario is the host side: it builds the HostKernel, creates the processes and
// their mmaps, and drives reclaim and DONTNEED as the host's own threads would. The
// driver gets only secondaryMmuHost(k); the audits and the teardown counts look
// behind the protocol through hostDebugView(k), never through the kernel itself.

import { HostKernel, MADV_DONTNEED, hostDebugView, secondaryMmuHost } from '../host/index.js';
import { Rng, Scheduler, sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { auditGru, auditGruTeardown } from './audit.js';
import { GruDevice, PAGE_SIZE } from './gru.js';
import type { GruDebug, GruStats } from './gru.js';
import { runRaceAudited } from '../check/race-run.js';

const KiB = 1024;

export interface GruRaceOptions {
  readonly seed: number;
  readonly debug?: Partial<GruDebug>;
  readonly nrPages?: number;
  readonly tlbEntries?: number;
  readonly ops?: number;
}

export interface GruRaceResult {
  readonly problems: string[];
  readonly stats: GruStats;
  readonly pswpout: number;
}

/** A page whose bytes name the page they were first written to (origin) and a generation. */
export function stampOrigin(origin: number, gen: number, dst: Uint8Array): Uint8Array {
  const dv = new DataView(dst.buffer, dst.byteOffset, PAGE_SIZE);
  dv.setUint32(0, origin, true);
  dv.setUint32(4, gen, true);
  for (let i = 8; i < PAGE_SIZE; i += 4) dv.setUint32(i, (Math.imul(origin ^ gen, 0x85ebca6b) + i) >>> 0, true);
  return dst;
}

/** (origin << 16 | gen) of a stamped page, 0 for zeroes, -1 for anything else. */
export function originValue(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, PAGE_SIZE);
  const origin = dv.getUint32(0, true);
  const gen = dv.getUint32(4, true);
  if (origin === 0 && gen === 0) {
    for (let i = 0; i < PAGE_SIZE; i += 4) if (dv.getUint32(i, true) !== 0) return -1;
    return 0;
  }
  if (gen === 0 || gen > 0xffff || origin > 0x7fff) return -1;
  for (let i = 8; i < PAGE_SIZE; i += 4) if (dv.getUint32(i, true) !== ((Math.imul(origin ^ gen, 0x85ebca6b) + i) >>> 0)) return -1;
  return (origin << 16) | gen;
}

export function runGruRace(opts: GruRaceOptions): GruRaceResult {
  const sched = new Scheduler({ seed: opts.seed });
  const k = new HostKernel({ ramBytes: 128 * KiB, swapBytes: 1024 * KiB, swapReadLatency: 7, swapWriteLatency: 13, sched });
  const host = secondaryMmuHost(k);
  const view = hostDebugView(k);
  const p = k.createProcess('gru-client');
  const nrPages = opts.nrPages ?? 48;
  const ops = opts.ops ?? 100;
  const rng = new Rng(opts.seed ^ 0x62a);
  const problems: string[] = [];
  const hist: number[][] = Array.from({ length: nrPages }, (_, i) => [(i << 16) | 1]);
  const committed = new Int32Array(nrPages);
  const started = new Int32Array(nrPages);
  let nextGen = 2;
  let hva = 0;
  let dev: GruDevice | null = null;
  let actors = 0;
  const hvaOf = (i: number) => hva + i * PAGE_SIZE;
  const last = (i: number) => hist[i]![hist[i]!.length - 1]!;
  const record = (i: number, v: number) => {
    hist[i]!.push(v);
    started[i] = hist[i]!.length - 1;
  };

  function* owner(name: string, parity: number, device: boolean): Task {
    const buf = new Uint8Array(PAGE_SIZE);
    const pick = () => 2 * rng.below(nrPages >> 1) + parity;
    for (let n = 0; n < ops; n++) {
      const i = pick();
      const roll = rng.below(8);
      let r: number;
      if (roll === 0) {
        record(i, 0);
        r = yield* k.madvise(p.mm, hvaOf(i), PAGE_SIZE, MADV_DONTNEED);
      } else if (device && roll === 1) {
        const from = pick();
        record(i, last(from));
        r = yield* dev!.submit({ op: 'copy', src: hvaOf(from), dst: hvaOf(i), len: PAGE_SIZE });
      } else {
        const gen = nextGen++;
        record(i, (i << 16) | gen);
        stampOrigin(i, gen, buf);
        r = device ? yield* dev!.submit({ op: 'write', hva: hvaOf(i), src: buf }) : yield* k.accessWrite(p.mm, hvaOf(i), buf);
      }
      if (r !== 0) problems.push(`${name}: op on page ${i} failed: ${r}`);
      committed[i] = hist[i]!.length - 1;
    }
    actors--;
  }

  sched.spawn('setup', function* () {
    hva = yield* k.mmap(p.mm, nrPages * PAGE_SIZE);
    const buf = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < nrPages; i++) yield* k.accessWrite(p.mm, hvaOf(i), stampOrigin(i, 1, buf));
    // Registered first, so walked after the GRU (new subscriptions go at the head).
    yield* k.mmuNotifierRegister(p.mm, 'slow-device', {
      *invalidateRangeStart(range): Task<number> {
        if (range.blockable) yield* sleepTicks(3, 'slow-device');
        return 0;
      },
    });
    const d = yield* GruDevice.create(host, p.mm, { entries: opts.tlbEntries ?? 16 });
    if (d === null) throw new Error('gru create failed');
    Object.assign(d.debug, opts.debug);
    dev = d;
    actors = 2;
    sched.spawn('process-writer', () => owner('process-writer', 0, false));
    sched.spawn('device-client', () => owner('device-client', 1, true));
    sched.spawn('device-reader', function* () {
      const rbuf = new Uint8Array(PAGE_SIZE);
      while (actors > 0) {
        const i = rng.below(nrPages);
        const lo = committed[i]!;
        const r = yield* d.submit({ op: 'read', hva: hvaOf(i), dst: rbuf });
        const hi = started[i]!;
        if (r !== 0) {
          problems.push(`device-reader: read of page ${i} failed: ${r}`);
          continue;
        }
        const v = originValue(rbuf);
        const window = hist[i]!.slice(lo, hi + 1);
        if (v < 0 || !window.includes(v)) {
          const show = (x: number) => (x === 0 ? 'zero' : `${x >> 16}:${x & 0xffff}`);
          problems.push(`device-reader: page ${i} read ${v < 0 ? 'garbage' : show(v)}, expected one of [${window.map(show).join(', ')}]`);
        }
      }
    });
  });

  runRaceAudited(sched, k, () => (dev !== null ? auditGru(view, dev) : []), problems);

  if (problems.length === 0) {
    sched.spawn('final', function* () {
      const buf = new Uint8Array(PAGE_SIZE);
      for (let i = 0; i < nrPages; i++) {
        const rr = yield* k.accessRead(p.mm, hvaOf(i), buf);
        const got = rr === 0 ? originValue(buf) : rr;
        if (got !== last(i)) problems.push(`final: page ${i} holds ${got}, last value was ${last(i)}`);
      }
      yield* dev!.destroy();
      problems.push(...auditGruTeardown(dev!));
      yield* k.exitProcess(p);
      yield* k.settle();
    });
    const r = sched.run({ maxSteps: 1_000_000 });
    if (r.status !== 'done') problems.push(`teardown ended ${r.status}: ${r.report ?? ''}`);
    if (view.frames.nrFree !== view.frames.nrFrames) problems.push(`teardown: ${view.frames.nrFrames - view.frames.nrFree} frames still allocated`);
  }
  const pswpout = k.stats().pswpout;
  k.shutdown();
  const d = dev as GruDevice | null;
  return { problems, stats: d === null ? { fills: 0, hits: 0, fillRetries: 0, purges: 0, purgedEntries: 0, evictions: 0, commands: 0 } : { ...d.stats }, pswpout };
}

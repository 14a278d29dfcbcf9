// The GRU-like device TLB (src/gru): commands through the device see and make the
// process's data; one purge per range (or per page in the invalidate_page style);
// references parked at range_start and put at range_end; fills wait while a range is
// active; eviction, release and teardown leave nothing; then the seeded race, clean
// with the protocol and failing with each mechanism off.

import { describe, expect, it } from 'vitest';
import { MADV_DONTNEED, hostDebugView, secondaryMmuHost } from '../../src/host/index.js';
import { auditGru, auditGruTeardown } from '../../src/gru/audit.js';
import { GruDevice } from '../../src/gru/gru.js';
import type { GruFlushMode } from '../../src/gru/gru.js';
import { originValue, runGruRace, stampOrigin } from '../../src/gru/scenario.js';
import { Completion, sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { KiB, PAGE, createHost, expectAllFree, runAll, runThread } from '../host/harness.js';
import type { TestHost } from '../host/harness.js';

const N = 16;
const page = (origin: number, gen: number) => stampOrigin(origin, gen, new Uint8Array(PAGE));
const val = (origin: number, gen: number) => (origin << 16) | gen;

function withGru(
  body: (h: TestHost, dev: GruDevice, hva: number) => Task<void>,
  opts: { entries?: number; flushMode?: GruFlushMode; pages?: number; before?: (h: TestHost, mmId: number) => Task<void> } = {},
): void {
  const h = createHost({ ramBytes: 512 * KiB, swapBytes: 2048 * KiB });
  const p = h.k.createProcess('client');
  const n = opts.pages ?? N;
  runThread(h, 'test', function* () {
    const hva = yield* h.k.mmap(p.mm, n * PAGE);
    for (let i = 0; i < n; i++) expect(yield* h.k.accessWrite(p.mm, hva + i * PAGE, page(i, 1))).toBe(0);
    if (opts.before) yield* opts.before(h, p.mm.id);
    const dev = yield* GruDevice.create(secondaryMmuHost(h.k), p.mm, { entries: opts.entries, flushMode: opts.flushMode });
    if (dev === null) throw new Error('create');
    yield* body(h, dev, hva);
    expect(auditGru(hostDebugView(h.k), dev)).toEqual([]);
    yield* dev.destroy();
    expect(auditGruTeardown(dev)).toEqual([]);
    yield* h.k.exitProcess(p);
  });
  expectAllFree(h);
}

function* readPage(dev: GruDevice, hva: number): Task<number> {
  const buf = new Uint8Array(PAGE);
  expect(yield* dev.submit({ op: 'read', hva, dst: buf })).toBe(0);
  return originValue(buf);
}

describe('GRU device TLB', () => {
  it('read, write and copy through the device; one fill per page; hits after', () => {
    withGru(function* (h, dev, hva) {
      for (let i = 0; i < N; i++) expect(yield* readPage(dev, hva + i * PAGE)).toBe(val(i, 1));
      expect(dev.stats.fills).toBe(N);
      for (let i = 0; i < N; i++) expect(yield* readPage(dev, hva + i * PAGE)).toBe(val(i, 1));
      expect(dev.stats.fills).toBe(N);
      expect(yield* dev.submit({ op: 'write', hva: hva + 3 * PAGE, src: page(3, 9) })).toBe(0);
      expect(yield* dev.submit({ op: 'copy', src: hva + 3 * PAGE, dst: hva + 5 * PAGE, len: PAGE })).toBe(0);
      const buf = new Uint8Array(PAGE);
      expect(yield* h.k.accessRead(dev.mm, hva + 5 * PAGE, buf)).toBe(0);
      expect(originValue(buf)).toBe(val(3, 9));
      // A write upgrades a read-only entry in place: two more fills (pages 3 and 5).
      expect(dev.stats.fills).toBe(N + 2);
      expect(dev.stats.commands).toBe(2 * N + 2);
    }, { entries: 64 });
  });

  it('a small TLB evicts round-robin and puts the evicted reference', () => {
    withGru(function* (h, dev, hva) {
      for (let i = 0; i < N; i++) expect(yield* readPage(dev, hva + i * PAGE)).toBe(val(i, 1));
      expect(dev.stats.evictions).toBe(N - 4);
      expect(dev.refsHeld).toBe(4);
      expect(auditGru(hostDebugView(h.k), dev)).toEqual([]);
    }, { entries: 4 });
  });

  for (const mode of ['range', 'page'] as const) {
    it(`munmap of ${N} mirrored pages: ${mode === 'range' ? 'one purge' : `${N} purges`}, references put at range_end`, () => {
      let parkedAtStart = -1;
      let devRef: GruDevice | null = null;
      withGru(
        function* (h, dev, hva) {
          devRef = dev;
          for (let i = 0; i < N; i++) yield* readPage(dev, hva + i * PAGE);
          const purges = dev.stats.purges;
          const free = h.k.frames.nrFree;
          expect(yield* h.k.munmap(dev.mm, hva, N * PAGE)).toBe(0);
          expect(dev.stats.purges - purges).toBe(mode === 'range' ? 1 : N);
          expect(dev.stats.purgedEntries).toBe(N);
          expect(parkedAtStart).toBe(N);
          expect([...dev.liveEntries()]).toEqual([]);
          expect(dev.refsHeld).toBe(0);
          expect(h.k.frames.nrFree - free).toBe(N);
          expect(dev.msRangeActive).toBe(0);
        },
        {
          entries: 64,
          flushMode: mode,
          // Registered before the device, so walked after it: sees the start's effect.
          *before(h, mmId) {
            yield* h.k.mmuNotifierRegister(h.k.mmById(mmId)!, 'probe', {
              *invalidateRangeStart(): Task<number> {
                if (devRef !== null) parkedAtStart = devRef.parkedRefs();
                return 0;
              },
            });
          },
        },
      );
    });
  }

  it('MADV_DONTNEED and swap-out purge the entries; the device then reads zeroes and swapped data', () => {
    withGru(function* (h, dev, hva) {
      for (let i = 0; i < N; i++) yield* readPage(dev, hva + i * PAGE);
      expect(yield* h.k.madvise(dev.mm, hva, 2 * PAGE, MADV_DONTNEED)).toBe(0);
      expect(auditGru(hostDebugView(h.k), dev)).toEqual([]);
      expect(yield* readPage(dev, hva)).toBe(0);
      // The TLB's references keep its pages from being freed, but not from being unmapped.
      yield* h.k.reclaim(256);
      expect(h.k.stats().pswpout).toBeGreaterThan(0);
      expect(auditGru(hostDebugView(h.k), dev)).toEqual([]);
      for (let i = 2; i < N; i++) expect(yield* readPage(dev, hva + i * PAGE)).toBe(val(i, 1));
    }, { entries: 64 });
  });

  it('a fill waits while a range is active and goes on after its end', () => {
    const h = createHost({ ramBytes: 512 * KiB });
    const p = h.k.createProcess('client');
    const entered = new Completion('entered');
    const events: string[] = [];
    h.sched.spawn('setup', function* () {
      const hva = yield* h.k.mmap(p.mm, N * PAGE);
      for (let i = 0; i < N; i++) yield* h.k.accessWrite(p.mm, hva + i * PAGE, page(i, 1));
      yield* h.k.mmuNotifierRegister(p.mm, 'slow', {
        *invalidateRangeStart(): Task<number> {
          entered.complete();
          yield* sleepTicks(100, 'slow');
          return 0;
        },
        *invalidateRangeEnd(): Task {
          events.push('end');
        },
      });
      const dev = (yield* GruDevice.create(secondaryMmuHost(h.k), p.mm))!;
      h.sched.spawn('reader', function* () {
        yield* entered.wait();
        expect(dev.msRangeActive).toBe(1);
        expect(yield* readPage(dev, hva + 8 * PAGE)).toBe(val(8, 1));
        events.push('read');
        yield* dev.destroy();
        expect(auditGruTeardown(dev)).toEqual([]);
      });
      // The range covers a page other than the one read: GRU fills wait for any range.
      expect(yield* h.k.madvise(p.mm, hva, PAGE, MADV_DONTNEED)).toBe(0);
    });
    runAll(h);
    expect(events[events.length - 1]).toBe('read');
    expect(events).toContain('end');
  });

  for (const broken of [false, true]) {
    it(`a range that starts and ends inside the fill's gup ${broken ? 'is missed with noSeqCheck: a stale entry' : 'makes the fill retry'}`, () => {
      const h = createHost({ ramBytes: 512 * KiB });
      const p = h.k.createProcess('client');
      let problems: string[] = [];
      runThread(h, 'test', function* () {
        const hva = yield* h.k.mmap(p.mm, N * PAGE);
        for (let i = 0; i < N; i++) yield* h.k.accessWrite(p.mm, hva + i * PAGE, page(i, 1));
        const dev = (yield* GruDevice.create(secondaryMmuHost(h.k), p.mm))!;
        dev.debug.noSeqCheck = broken;
        let once = true;
        dev.debug.afterGup = function* (at: number): Task {
          if (!once) return;
          once = false;
          // The whole DONTNEED runs here: start (nothing to purge), zap, end.
          expect(yield* h.k.madvise(p.mm, at, PAGE, MADV_DONTNEED)).toBe(0);
        };
        const v = yield* readPage(dev, hva + 2 * PAGE);
        problems = auditGru(hostDebugView(h.k), dev);
        expect(v).toBe(broken ? val(2, 1) : 0);
        yield* dev.destroy();
        yield* h.k.exitProcess(p);
      });
      if (broken) expect(problems.join('\n')).toMatch(/not present/);
      else expect(problems).toEqual([]);
      expectAllFree(h);
    });
  }

  it('exit releases the device (every entry purged and put); destroy afterwards is clean', () => {
    const h = createHost({ ramBytes: 512 * KiB });
    const p = h.k.createProcess('client');
    let dev: GruDevice | null = null;
    runThread(h, 'test', function* () {
      const hva = yield* h.k.mmap(p.mm, N * PAGE);
      for (let i = 0; i < N; i++) yield* h.k.accessWrite(p.mm, hva + i * PAGE, page(i, 1));
      dev = (yield* GruDevice.create(secondaryMmuHost(h.k), p.mm))!;
      for (let i = 0; i < N; i++) yield* readPage(dev, hva + i * PAGE);
      yield* h.k.exitProcess(p);
      expect([...dev.liveEntries()]).toEqual([]);
      expect(yield* dev.submit({ op: 'read', hva, dst: new Uint8Array(PAGE) })).toBeLessThan(0);
      yield* dev.destroy();
    });
    expect(auditGruTeardown(dev!)).toEqual([]);
    expectAllFree(h);
  });
});

const SEEDS = Array.from({ length: 24 }, (_, i) => i + 1);

describe('GRU race: process writer, device writer/copier and reader, DONTNEED, swap, a sleeping second notifier', () => {
  it(`the protocol holds on ${SEEDS.length} seeds`, () => {
    let retries = 0;
    let evictions = 0;
    let pswpout = 0;
    for (const seed of SEEDS) {
      const r = runGruRace({ seed });
      expect(r.problems, `seed ${seed}`).toEqual([]);
      retries += r.stats.fillRetries;
      evictions += r.stats.evictions;
      pswpout += r.pswpout;
    }
    expect(retries).toBeGreaterThan(SEEDS.length);
    expect(evictions).toBeGreaterThan(0);
    expect(pswpout).toBeGreaterThan(0);
  });

  it('noRangeActiveWait (a fill during a range drops in the pte the host is about to clear): some seed fails', () => {
    const failed = SEEDS.map((seed) => runGruRace({ seed, debug: { noRangeActiveWait: true } })).filter((r) => r.problems.length > 0);
    expect(failed.length).toBeGreaterThan(0);
  });
});

// The balloon device against a driver of ours that does what
// drivers/virtio/virtio_balloon.c does on the wire: PFN arrays on inflateq and
// deflateq, a primed stats buffer, free page reports as device-writable ranges.

import { describe, expect, it } from 'vitest';
import { sleepTicks } from '../../../src/sched/index.js';
import type { Task } from '../../../src/sched/index.js';
import { STATUS_DEVICE_NEEDS_RESET, VIRTIO_MMIO_INT_CONFIG, CONFIG_GENERATION } from '../../../src/vmm/devices/virtio-mmio.js';
import {
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_REPORTING, VIRTIO_BALLOON_F_STATS_VQ,
} from '../../../src/vmm/devices/virtio-balloon.js';
import { PAGE, pattern, runAll } from '../../host/harness.js';
import { balloonRig, DriverQueue, GuestRam, le32s, RAM_BASE, VirtioRig } from './virtio-rig.js';
import type { Seg } from './virtio-rig.js';

const bit = (b: number) => 1 << b;

/** Rings for queue i at RAM_BASE + i * 3 pages; buffers from RAM_BASE + 64 KiB. */
function* start(rig: VirtioRig, features: number, nQueues: number): Task<DriverQueue[]> {
  expect(rig.negotiate([features, 1])).toBe(true);
  const qs: DriverQueue[] = [];
  for (let i = 0; i < nQueues; i++) {
    const q = new DriverQueue(i, 16, RAM_BASE + i * 3 * PAGE);
    // The driver zeroes its rings (vring_alloc_queue): their pages are resident from here on.
    yield* rig.ram.put(q.base, new Uint8Array(3 * PAGE));
    rig.setupQueue(q);
    qs.push(q);
  }
  // So are the driver's buffers: only the pages the tests give away change the footprint.
  yield* rig.ram.put(BUF, new Uint8Array(0x10000));
  return qs;
}

const BUF = RAM_BASE + 0x10000;
/** Guest pages the tests hand to the balloon: well past the rings and buffers. */
const FIRST_PFN = (RAM_BASE + 0x20000) / PAGE;

function* sendPfns(rig: VirtioRig, q: DriverQueue, pfns: readonly number[], at = BUF): Task<void> {
  yield* rig.ram.put(at, le32s(pfns));
  yield* rig.add(q, [{ gpa: at, len: 4 * pfns.length }]);
  yield* rig.waitUsed(q);
}

function* touch(ram: GuestRam, pfns: readonly number[], gen: number): Task<void> {
  for (const pfn of pfns) yield* ram.put(pfn * PAGE, pattern(pfn, gen));
}

function* isZero(ram: GuestRam, pfn: number): Task<boolean> {
  const b = new Uint8Array(PAGE);
  expect(yield* ram.read(pfn * PAGE, b)).toBe(true);
  return b.every((x) => x === 0);
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('virtio-balloon', () => {
  it('offers MUST_TELL_HOST always, and STATS_VQ, DEFLATE_ON_OOM, REPORTING when configured; queues follow the features', () => {
    const { rig } = balloonRig({ config: { statsIntervalTicks: 1000, deflateOnOom: true, freePageReporting: true } });
    const [lo] = rig.deviceFeatures();
    for (const b of [VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_REPORTING]) {
      expect(lo & bit(b)).not.toBe(0);
    }
    expect(rig.negotiate([bit(VIRTIO_BALLOON_F_REPORTING), 1])).toBe(true);
    // Without STATS_VQ the reporting queue is the third one (index 2), as the driver numbers them.
    rig.w(0x30, 2);
    expect(rig.r(0x34)).toBe(128);
    rig.w(0x30, 3);
    expect(rig.r(0x34)).toBe(0);
    const plain = balloonRig().rig;
    expect(plain.deviceFeatures()[0] & (bit(VIRTIO_BALLOON_F_STATS_VQ) | bit(VIRTIO_BALLOON_F_REPORTING))).toBe(0);
  });

  it('inflating N pages gives N pages back to the host, and they read back as zeros after deflate', () => {
    const { h, rig, ram, balloon } = balloonRig({ config: { targetPages: 0 } });
    const pfns = range(FIRST_PFN, 64);
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      const [inf, def] = yield* start(rig, 0, 2);
      rig.driverOk();
      yield* touch(ram, pfns, 1);
      const before = ram.footprint();
      balloon.setTarget(64);
      expect(rig.configU32(0)).toBe(64);
      expect(rig.ackInterrupts() & VIRTIO_MMIO_INT_CONFIG).not.toBe(0);
      yield* sendPfns(rig, inf!, pfns);
      rig.setConfigU32(4, 64); // actual, as the driver reports it
      expect(before - ram.footprint()).toBe(64);
      expect(balloon.stats()).toMatchObject({ targetPages: 64, actualPages: 64, inflatedPages: 64, hostFreedPages: 64, inflateRequests: 1 });
      yield* sendPfns(rig, def!, pfns.slice(0, 32));
      expect(balloon.stats().inflatedPages).toBe(32);
      for (const pfn of pfns) expect(yield* isZero(ram, pfn)).toBe(true);
    });
    runAll(h);
  });

  it('never lets one VM see what another gave back: the host hands out zeroed frames', () => {
    const { h, rig, ram, balloon } = balloonRig({ hostBytes: 1 << 20, guestBytes: 2 << 20 });
    const other = new GuestRam(h, h.k.createProcess('vmm2'), 2 << 20);
    const pfns = range(FIRST_PFN, 128);
    const secret = (pfn: number) => pattern(pfn, 0x5ec2e7);
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      yield* other.map();
      const [inf] = yield* start(rig, 0, 2);
      rig.driverOk();
      for (const pfn of pfns) yield* ram.put(pfn * PAGE, secret(pfn));
      balloon.setTarget(pfns.length);
      yield* sendPfns(rig, inf!, pfns);
      // The second VM takes every frame it can get and finds none of the secret in any.
      const b = new Uint8Array(PAGE);
      const first = secret(FIRST_PFN).subarray(0, 16);
      for (let off = 0; off < 2 << 20; off += PAGE) {
        expect(yield* other.read(RAM_BASE + off, b)).toBe(true);
        expect(b.every((x) => x === 0), `page ${off / PAGE} of vmm2`).toBe(true);
        yield* other.put(RAM_BASE + off, Uint8Array.of(1));
      }
      expect(first.some((x) => x !== 0)).toBe(true);
    });
    runAll(h);
  });

  it('ignores PFNs outside guest RAM (counted), and keeps serving', () => {
    const { h, rig, ram, balloon } = balloonRig();
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      const [inf] = yield* start(rig, 0, 2);
      rig.driverOk();
      yield* sendPfns(rig, inf!, [0, 0x7ffff, 0xfffff, 0xffffffff, FIRST_PFN]);
      expect(balloon.stats()).toMatchObject({ rejectedPfns: 4, inflatedPages: 1 });
      expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).toBe(0);
    });
    runAll(h);
  });

  it('takes the stats buffer primed before DRIVER_OK, gives it back each interval, and keeps the last values when the guest stops answering', () => {
    const { h, rig, ram, balloon } = balloonRig({ config: { statsIntervalTicks: 5000 } });
    const statsBuf = (free: number) => {
      const b = new Uint8Array(3 * 10);
      const dv = new DataView(b.buffer);
      [[4, free], [5, 2 << 20], [0xffff, 7]].forEach(([tag, val], i) => {
        dv.setUint16(10 * i, tag!, true);
        dv.setUint32(10 * i + 2, val!, true);
      });
      return b;
    };
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      const qs = yield* start(rig, bit(VIRTIO_BALLOON_F_STATS_VQ), 3);
      const sq = qs[2]!;
      yield* ram.put(BUF, statsBuf(1 << 20));
      yield* rig.add(sq, [{ gpa: BUF, len: 30 }]);
      yield* sleepTicks(100, 'before DRIVER_OK');
      expect(balloon.stats().statsUpdates).toBe(0);
      rig.driverOk();
      yield* sleepTicks(100, 'device takes it');
      expect(balloon.stats().guest).toEqual({ free_memory: 1 << 20, total_memory: 2 << 20 });
      // The device holds it for the interval, then returns it: the driver refills.
      yield* rig.waitUsed(sq);
      yield* ram.put(BUF, statsBuf(512 << 10));
      yield* rig.add(sq, [{ gpa: BUF, len: 30 }]);
      yield* sleepTicks(100, 'device takes it');
      const s = balloon.stats();
      expect(s.guest.free_memory).toBe(512 << 10);
      expect(s.statsUpdates).toBe(2);
      // The guest stops answering: the buffer comes back and is never refilled.
      yield* rig.waitUsed(sq);
      yield* sleepTicks(50_000, 'silence');
      expect(balloon.stats().statsUpdates).toBe(2);
      expect(balloon.stats().statsUpdatedAt).toBe(s.statsUpdatedAt);
      expect(balloon.stats().guest.free_memory).toBe(512 << 10);
    });
    runAll(h);
  });

  it('a second stats buffer while the device holds one is a driver error (DEVICE_NEEDS_RESET)', () => {
    const { h, rig, ram } = balloonRig({ config: { statsIntervalTicks: 1 << 20 } });
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      const qs = yield* start(rig, bit(VIRTIO_BALLOON_F_STATS_VQ), 3);
      rig.driverOk();
      yield* rig.add(qs[2]!, [{ gpa: BUF, len: 10 }]);
      yield* sleepTicks(100, 'taken');
      yield* rig.add(qs[2]!, [{ gpa: BUF + 64, len: 10 }]);
      yield* sleepTicks(100, 'taken');
      expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).not.toBe(0);
      expect(rig.dev.lastError).toMatch(/second buffer/);
    });
    runAll(h);
  });

  it('free page reporting discards the reported ranges while the driver waits, with no target change', () => {
    const { h, rig, ram, balloon } = balloonRig({ config: { freePageReporting: true } });
    const pfns = range(FIRST_PFN, 96);
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      const qs = yield* start(rig, bit(VIRTIO_BALLOON_F_REPORTING), 3);
      rig.driverOk();
      yield* touch(ram, pfns, 3);
      const before = ram.footprint();
      const segs: Seg[] = [
        { gpa: FIRST_PFN * PAGE, len: 64 * PAGE, write: true },
        { gpa: (FIRST_PFN + 64) * PAGE, len: 32 * PAGE, write: true },
      ];
      yield* rig.add(qs[2]!, segs);
      yield* rig.waitUsed(qs[2]!);
      expect(before - ram.footprint()).toBe(96);
      expect(balloon.stats()).toMatchObject({ reportedPages: 96, reports: 1, targetPages: 0, inflatedPages: 0 });
      for (const pfn of pfns) expect(yield* isZero(ram, pfn)).toBe(true);
    });
    runAll(h);
  });

  it('keeps a poisoned free page (poison_val set): a report then discards nothing', () => {
    const { h, rig, ram, balloon } = balloonRig({ config: { freePageReporting: true } });
    h.sched.spawn('driver', function* () {
      yield* ram.map();
      const qs = yield* start(rig, bit(VIRTIO_BALLOON_F_REPORTING), 3);
      rig.setConfigU32(12, 0xaa);
      rig.driverOk();
      yield* touch(ram, range(FIRST_PFN, 4), 3);
      const before = ram.footprint();
      yield* rig.add(qs[2]!, [{ gpa: FIRST_PFN * PAGE, len: 4 * PAGE, write: true }]);
      yield* rig.waitUsed(qs[2]!);
      expect(ram.footprint()).toBe(before);
      expect(balloon.stats().reportedPages).toBe(4);
    });
    runAll(h);
  });

  it('a target change bumps the config generation and raises a configuration interrupt', () => {
    const { rig, balloon } = balloonRig();
    expect(rig.negotiate([0, 1])).toBe(true);
    rig.driverOk();
    const gen = rig.r(CONFIG_GENERATION);
    balloon.setTarget(300);
    expect(rig.r(CONFIG_GENERATION)).toBe(gen + 1);
    expect(rig.ackInterrupts()).toBe(VIRTIO_MMIO_INT_CONFIG);
    expect(() => balloon.setTarget(-1)).toThrow(RangeError);
  });

  it('inflate races the host swapping the same pages: every page ends discarded, none leaked (many seeds)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { h, rig, ram, balloon } = balloonRig({ seed, hostBytes: 512 << 10, guestBytes: 2 << 20 });
      const pfns = range(FIRST_PFN, 160);
      h.sched.spawn('driver', function* () {
        yield* ram.map();
        const [inf] = yield* start(rig, 0, 2);
        rig.driverOk();
        yield* touch(ram, pfns, seed);
        // Another thread keeps the pages moving between RAM and swap while the device discards them.
        h.sched.spawn('toucher', function* () {
          for (let i = 0; i < 200; i++) yield* ram.put(RAM_BASE + 0x100000 + (i % 200) * PAGE, Uint8Array.of(i));
        });
        for (let i = 0; i < pfns.length; i += 40) yield* sendPfns(rig, inf!, pfns.slice(i, i + 40), BUF + (i / 40) * 256);
        expect(balloon.stats().inflatedPages).toBe(160);
        // Nothing of those pages is left on the host: no pte, no swap entry.
        for (const pfn of pfns) {
          const hva = ram.hva + pfn * PAGE - RAM_BASE;
          expect(ram.mm.pt.get(Math.floor(hva / PAGE)), `pfn ${pfn} seed ${seed}`).toBe(0);
        }
      });
      runAll(h);
    }
  });
});

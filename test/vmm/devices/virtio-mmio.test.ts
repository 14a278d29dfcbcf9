import { describe, expect, it } from 'vitest';
import { WaitQueue } from '../../../src/sched/index.js';
import type { Task } from '../../../src/sched/index.js';
import {
  CONFIG_GENERATION, DEVICE_ID, MAGIC_VALUE, QUEUE_NUM, QUEUE_READY, QUEUE_SEL, STATUS_DEVICE_NEEDS_RESET,
  VENDOR_ID, VERSION, VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_MAGIC,
} from '../../../src/vmm/devices/virtio-mmio.js';
import type { FeatureSet, VirtioBackend, VirtioMmio } from '../../../src/vmm/devices/virtio-mmio.js';
import { GuestMemoryGone, readChain, VirtqueueError, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT } from '../../../src/vmm/devices/virtqueue.js';
import type { DescChain, SplitVirtqueue } from '../../../src/vmm/devices/virtqueue.js';
import { createHost, runAll, type TestHost } from '../../host/harness.js';
import { descBytes, DriverQueue, GuestRam, RAM_BASE, VirtioRig } from './virtio-rig.js';

const VERSION_1 = [0, 1] as [number, number];
const EVENT_IDX_BIT = 1 << 29;

/** A device that takes every buffer, fills its writable part with 0xab and returns it. */
class SinkDevice implements VirtioBackend {
  readonly deviceId = 42;
  readonly features = [0];
  dev!: VirtioMmio;
  chains: DescChain[] = [];
  data: Uint8Array[] = [];
  private queues: ReadonlyMap<number, SplitVirtqueue> = new Map();
  private work = 0;
  private readonly wq = new WaitQueue('sink');
  queueNumMax(index: number, _f: FeatureSet): number {
    return index < 2 ? 16 : 0;
  }
  configRead(): number {
    return 0;
  }
  configWrite(): void {}
  activate(queues: ReadonlyMap<number, SplitVirtqueue>): void {
    this.queues = queues;
  }
  reset(): void {
    this.queues = new Map();
  }
  notify(index: number): void {
    this.work |= 1 << index;
    this.wq.wakeAll();
  }
  *worker(): Task {
    for (;;) {
      yield* this.wq.waitEvent(() => this.work !== 0);
      const work = this.work;
      this.work = 0;
      const epoch = this.dev.epoch;
      try {
        for (const [i, vq] of this.queues) {
          if ((work & (1 << i)) === 0) continue;
          let pushed = false;
          for (let c = yield* vq.pop(); c !== null; c = yield* vq.pop()) {
            this.chains.push(c);
            this.data.push(yield* readChain(this.dev.mem, c));
            for (const s of c.writable) yield* this.dev.mem.write(s.gpa, new Uint8Array(s.len).fill(0xab));
            yield* vq.push(c.head, c.writableBytes);
            pushed = true;
          }
          if (pushed && (yield* vq.shouldNotify())) this.dev.signalUsed();
        }
      } catch (e) {
        if (e instanceof VirtqueueError && this.dev.epoch === epoch) this.dev.fail(e.message);
        else if (!(e instanceof GuestMemoryGone) && !(e instanceof VirtqueueError)) throw e;
      }
    }
  }
}

function sinkRig(h: TestHost = createHost({ ramBytes: 2 << 20 }), guestBytes = 1 << 20) {
  const proc = h.k.createProcess('vmm');
  const ram = new GuestRam(h, proc, guestBytes);
  const sink = new SinkDevice();
  const rig = new VirtioRig(ram, sink);
  sink.dev = rig.dev;
  h.sched.spawn('sink', () => sink.worker(), { daemon: true });
  return { h, ram, sink, rig };
}

/** Negotiates, sets up queue 0 at RAM_BASE and reaches DRIVER_OK. */
function* bringUp(rig: VirtioRig, words: [number, number] = VERSION_1): Task<DriverQueue> {
  expect(rig.negotiate(words)).toBe(true);
  const q = new DriverQueue(0, 16, RAM_BASE);
  rig.setupQueue(q);
  rig.driverOk();
  return q;
}

describe('virtio-mmio transport', () => {
  it('identifies itself as a version 2 transport and offers VERSION_1, INDIRECT_DESC and EVENT_IDX', () => {
    const { rig } = sinkRig();
    expect(rig.r(MAGIC_VALUE)).toBe(VIRTIO_MMIO_MAGIC);
    expect(rig.r(VERSION)).toBe(2);
    expect(rig.r(DEVICE_ID)).toBe(42);
    expect(rig.r(VENDOR_ID)).toBe(0x554d4551);
    const [lo, hi] = rig.deviceFeatures();
    expect(lo).toBe((1 | (1 << 28) | (1 << 29)) >>> 0);
    expect(hi).toBe(1);
  });

  it('keeps FEATURES_OK only for a subset of its features that includes VERSION_1', () => {
    const { rig } = sinkRig();
    expect(rig.negotiate([1, 0])).toBe(false); // no VERSION_1: a legacy driver on a modern transport
    expect(rig.negotiate([1 << 5, 1])).toBe(false); // bit 5 was never offered
    expect(rig.negotiate([1, 1])).toBe(true);
    expect(rig.dev.negotiated.has(0)).toBe(true);
  });

  it('ignores queue configuration while the queue is ready, and refuses a size that is not a power of two', () => {
    const { h, rig } = sinkRig();
    h.sched.spawn('driver', function* () {
      yield* rig.ram.map();
      expect(rig.negotiate(VERSION_1)).toBe(true);
      rig.setupQueue(new DriverQueue(0, 16, RAM_BASE));
      rig.w(QUEUE_NUM, 8);
      rig.w(QUEUE_SEL, 0);
      expect(rig.r(QUEUE_READY)).toBe(1);
      rig.w(QUEUE_SEL, 1);
      rig.w(QUEUE_NUM, 12);
      rig.w(QUEUE_READY, 1);
      expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).not.toBe(0);
      expect(rig.dev.lastError).toMatch(/size 12/);
    });
    runAll(h);
  });

  it('moves a direct chain and an indirect chain through guest memory, with an interrupt the driver acks', () => {
    const { h, rig, sink } = sinkRig();
    h.sched.spawn('driver', function* () {
      yield* rig.ram.map();
      const q = yield* bringUp(rig);
      yield* rig.ram.put(RAM_BASE + 0x10000, Uint8Array.of(1, 2, 3, 4));
      yield* rig.add(q, [{ gpa: RAM_BASE + 0x10000, len: 4 }, { gpa: RAM_BASE + 0x11000, len: 8, write: true }]);
      const [u] = yield* rig.waitUsed(q);
      expect(u).toEqual({ id: 0, len: 8 });
      expect(rig.irqLog[rig.irqLog.length - 1]).toBe(true);
      expect(rig.ackInterrupts()).toBe(VIRTIO_MMIO_INT_VRING);
      expect(rig.irqLog[rig.irqLog.length - 1]).toBe(false);
      const back = new Uint8Array(8);
      yield* rig.ram.read(RAM_BASE + 0x11000, back);
      expect([...back]).toEqual(new Array(8).fill(0xab));

      yield* rig.ram.put(RAM_BASE + 0x12000, Uint8Array.of(9, 8, 7));
      yield* rig.add(q, [{ gpa: RAM_BASE + 0x12000, len: 3 }, { gpa: RAM_BASE + 0x13000, len: 2, write: true }], { indirectAt: RAM_BASE + 0x14000 });
      const [u2] = yield* rig.waitUsed(q);
      expect(u2!.len).toBe(2);
    });
    runAll(h);
    expect(sink.chains.map((c) => [c.readableBytes, c.writableBytes])).toEqual([[4, 8], [3, 2]]);
    expect(sink.data.map((d) => [...d])).toEqual([[1, 2, 3, 4], [9, 8, 7]]);
    expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).toBe(0);
  });

  // Each: what the driver wrote, and the error the device must report.
  const malformed: [string, (rig: VirtioRig, q: DriverQueue) => Task<void>, RegExp][] = [
    ['a descriptor chain that loops', function* (rig, q) {
      yield* rig.ram.put(q.desc, descBytes(RAM_BASE + 0x10000, 4, VRING_DESC_F_NEXT, 0));
      yield* rig.ram.put(q.avail + 4, Uint8Array.of(0, 0));
      yield* rig.ram.put(q.avail + 2, Uint8Array.of(1, 0));
    }, /longer than the queue.*loop/],
    ['a buffer past the end of guest RAM', function* (rig, q) {
      yield* rig.add(q, [{ gpa: RAM_BASE + (1 << 20) - 4, len: 16 }], { notify: false });
    }, /not in guest RAM/],
    ['a buffer at an address outside every memslot', function* (rig, q) {
      yield* rig.add(q, [{ gpa: 0x1000, len: 4 }], { notify: false });
    }, /buffer 0x1000\+4 is not in guest RAM/],
    ['an address above 2^53', function* (rig, q) {
      yield* rig.ram.put(q.desc, descBytes(0, 4, 0, 0).map((b, i) => (i === 7 ? 0xff : b)));
      yield* rig.ram.put(q.avail + 4, Uint8Array.of(0, 0));
      yield* rig.ram.put(q.avail + 2, Uint8Array.of(1, 0));
    }, /not in guest RAM/],
    ['an indirect table inside an indirect table', function* (rig, q) {
      yield* rig.ram.put(RAM_BASE + 0x14000, descBytes(RAM_BASE + 0x15000, 16, VRING_DESC_F_INDIRECT, 0));
      yield* rig.ram.put(q.desc, descBytes(RAM_BASE + 0x14000, 16, VRING_DESC_F_INDIRECT, 0));
      yield* rig.ram.put(q.avail + 4, Uint8Array.of(0, 0));
      yield* rig.ram.put(q.avail + 2, Uint8Array.of(1, 0));
    }, /indirect descriptor inside an indirect table/],
    ['a readable descriptor after a writable one', function* (rig, q) {
      yield* rig.add(q, [{ gpa: RAM_BASE + 0x10000, len: 4, write: true }, { gpa: RAM_BASE + 0x11000, len: 4 }], { notify: false });
    }, /device-readable descriptor after a device-writable/],
    ['avail.idx moved more than the queue size', function* (rig, q) {
      yield* rig.ram.put(q.avail + 2, Uint8Array.of(40, 0));
    }, /more than the queue's 16/],
    ['a head index past the queue', function* (rig, q) {
      yield* rig.ram.put(q.avail + 4, Uint8Array.of(99, 0));
      yield* rig.ram.put(q.avail + 2, Uint8Array.of(1, 0));
    }, /head 99/],
  ];

  for (const [what, write, error] of malformed) {
    it(`puts the device in DEVICE_NEEDS_RESET for ${what}, and a reset brings it back`, () => {
      const { h, rig, sink } = sinkRig();
      h.sched.spawn('driver', function* () {
        yield* rig.ram.map();
        let q = yield* bringUp(rig);
        yield* write(rig, q);
        const gen = rig.r(CONFIG_GENERATION);
        rig.w(0x50, 0); // QueueNotify
        for (let i = 0; i < 100 && (rig.status() & STATUS_DEVICE_NEEDS_RESET) === 0; i++) yield* rig.ram.u16(RAM_BASE);
        expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).not.toBe(0);
        expect(rig.dev.lastError).toMatch(error);
        expect(rig.ackInterrupts() & VIRTIO_MMIO_INT_CONFIG).not.toBe(0);
        expect(rig.r(CONFIG_GENERATION)).toBe(gen);
        // The driver cannot clear it by writing status; only a reset does.
        rig.w(0x70, rig.status() & ~STATUS_DEVICE_NEEDS_RESET);
        expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).not.toBe(0);
        rig.w(0x70, 0);
        expect(rig.status()).toBe(0);
        // Fresh rings somewhere else, and the device works again.
        expect(rig.negotiate(VERSION_1)).toBe(true);
        q = new DriverQueue(0, 16, RAM_BASE + 0x40000);
        rig.setupQueue(q);
        rig.driverOk();
        yield* rig.add(q, [{ gpa: RAM_BASE + 0x50000, len: 4, write: true }]);
        const [u] = yield* rig.waitUsed(q);
        expect(u!.len).toBe(4);
      });
      runAll(h);
      expect(sink.chains.length).toBeGreaterThanOrEqual(1);
    });
  }

  it('a ring outside guest RAM is refused at DRIVER_OK', () => {
    const { h, rig } = sinkRig();
    h.sched.spawn('driver', function* () {
      yield* rig.ram.map();
      expect(rig.negotiate(VERSION_1)).toBe(true);
      rig.setupQueue(new DriverQueue(0, 16, RAM_BASE + (1 << 20) - 4096));
      rig.driverOk();
      expect(rig.status() & STATUS_DEVICE_NEEDS_RESET).not.toBe(0);
      expect(rig.dev.lastError).toMatch(/not in guest RAM/);
    });
    runAll(h);
  });

  it('suppresses the interrupt when the driver asks: NO_INTERRUPT without EVENT_IDX, used_event with it', () => {
    for (const eventIdx of [false, true]) {
      const { h, rig } = sinkRig();
      h.sched.spawn('driver', function* () {
        yield* rig.ram.map();
        const q = yield* bringUp(rig, [eventIdx ? EVENT_IDX_BIT : 0, 1]);
        if (eventIdx) yield* rig.ram.put(q.avail + 4 + 2 * q.num, Uint8Array.of(5, 0)); // used_event: wake me after the 6th
        else yield* rig.ram.put(q.avail, Uint8Array.of(VRING_AVAIL_F_NO_INTERRUPT, 0));
        for (let i = 0; i < 3; i++) {
          yield* rig.add(q, [{ gpa: RAM_BASE + 0x10000, len: 4, write: true }]);
          yield* rig.waitUsed(q);
        }
        // EVENT_IDX: the first push may interrupt (nothing signalled yet); none after it until used_event.
        const raised = rig.irqLog.filter((x) => x).length;
        expect(raised).toBe(eventIdx ? 1 : 0);
        if (eventIdx) {
          // The device tells the driver where it is: avail_event follows what it took.
          expect(yield* rig.ram.u16(q.used + 4 + 8 * q.num)).toBe(3);
          rig.ackInterrupts();
          for (let i = 0; i < 3; i++) {
            yield* rig.add(q, [{ gpa: RAM_BASE + 0x10000, len: 4, write: true }]);
            yield* rig.waitUsed(q);
          }
          expect(rig.irqLog.filter((x) => x).length).toBe(2);
        }
      });
      runAll(h);
    }
  });

  it('reaches rings that the host swapped out, through the host (swap-in), never around it', () => {
    const h = createHost({ ramBytes: 512 << 10 });
    const { rig, sink } = sinkRig(h, 1 << 20);
    h.sched.spawn('driver', function* () {
      yield* rig.ram.map();
      const q = yield* bringUp(rig);
      yield* rig.add(q, [{ gpa: RAM_BASE + 0x10000, len: 4, write: true }], { notify: false });
      // Push the rings out: touch more than host RAM elsewhere in guest RAM.
      for (let off = 0x20000; off < 1 << 20; off += 4096) yield* rig.ram.put(RAM_BASE + off, Uint8Array.of(1));
      const before = h.k.stats().pswpin;
      rig.w(0x50, 0);
      yield* rig.waitUsed(q);
      expect(h.k.stats().pswpin).toBeGreaterThan(before);
    });
    runAll(h);
    expect(sink.chains).toHaveLength(1);
  });
});

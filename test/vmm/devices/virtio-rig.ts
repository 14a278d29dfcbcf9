// A virtio-mmio device on a simulated host, and a small driver in TypeScript
// that speaks to it the way drivers/virtio/virtio_mmio.c and virtio_ring.c do:
// registers through MMIO, rings and buffers in guest RAM, which is anonymous
// memory of a host process (so the device's accesses go through the host).

import { expect } from 'vitest';
import { sleepTicks } from '../../../src/sched/index.js';
import type { Task } from '../../../src/sched/index.js';
import type { Mm, Process } from '../../../src/host/index.js';
import { MADV_DONTNEED } from '../../../src/host/kernel.js';
import {
  VirtioMmio, DEVICE_FEATURES, DEVICE_FEATURES_SEL, DRIVER_FEATURES, DRIVER_FEATURES_SEL, INTERRUPT_ACK, INTERRUPT_STATUS,
  QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_DEVICE_LOW, QUEUE_DRIVER_LOW, QUEUE_NOTIFY, QUEUE_NUM, QUEUE_NUM_MAX, QUEUE_READY,
  QUEUE_SEL, STATUS, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, CONFIG,
} from '../../../src/vmm/devices/virtio-mmio.js';
import type { VirtioBackend } from '../../../src/vmm/devices/virtio-mmio.js';
import { VirtioBalloon } from '../../../src/vmm/devices/virtio-balloon.js';
import type { BalloonConfig } from '../../../src/vmm/devices/virtio-balloon.js';
import type { GuestMemory } from '../../../src/vmm/devices/virtqueue.js';
import { VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE } from '../../../src/vmm/devices/virtqueue.js';
import { createHost, PAGE, type TestHost } from '../../host/harness.js';

export const RAM_BASE = 0x80000000;

export interface Seg {
  gpa: number;
  len: number;
  write?: boolean;
}

/** Guest RAM of one "VM": a host process's anonymous mapping at RAM_BASE. */
export class GuestRam implements GuestMemory {
  hva = -1;
  constructor(readonly h: TestHost, readonly proc: Process, readonly bytes: number) {}
  get mm(): Mm {
    return this.proc.mm;
  }
  *map(): Task<void> {
    this.hva = yield* this.h.k.mmap(this.mm, this.bytes);
    expect(this.hva).toBeGreaterThanOrEqual(0);
  }
  isRam(gpa: number, len: number): boolean {
    return gpa >= RAM_BASE && len >= 0 && gpa + len <= RAM_BASE + this.bytes;
  }
  *read(gpa: number, dst: Uint8Array): Task<boolean> {
    return (yield* this.h.k.accessRead(this.mm, this.hva + gpa - RAM_BASE, dst)) === 0;
  }
  *write(gpa: number, src: Uint8Array): Task<boolean> {
    return (yield* this.h.k.accessWrite(this.mm, this.hva + gpa - RAM_BASE, src)) === 0;
  }
  *u16(gpa: number): Task<number> {
    const b = new Uint8Array(2);
    expect(yield* this.read(gpa, b)).toBe(true);
    return b[0]! | (b[1]! << 8);
  }
  *put(gpa: number, bytes: Uint8Array): Task<void> {
    expect(yield* this.write(gpa, bytes)).toBe(true);
  }
  footprint(): number {
    return this.mm.anonRss + this.mm.swapEnts;
  }
}

const le16 = (v: number) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff);
export const le32s = (vs: readonly number[]) => {
  const b = new Uint8Array(4 * vs.length);
  const dv = new DataView(b.buffer);
  vs.forEach((v, i) => dv.setUint32(4 * i, v >>> 0, true));
  return b;
};

/** One split queue as the driver lays it out: desc, avail, used, one page each from `base`. */
export class DriverQueue {
  private nextDesc = 0;
  availIdx = 0;
  usedSeen = 0;
  constructor(readonly index: number, readonly num: number, readonly base: number) {}
  get desc() { return this.base; }
  get avail() { return this.base + PAGE; }
  get used() { return this.base + 2 * PAGE; }
  /** Allocates n descriptor slots (wrapping; tests keep few buffers in flight). */
  take(n: number): number {
    const i = this.nextDesc;
    this.nextDesc = (this.nextDesc + n) % this.num;
    return i;
  }
}

export function descBytes(addr: number, len: number, flags: number, next: number): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, addr % 2 ** 32, true);
  dv.setUint32(4, Math.floor(addr / 2 ** 32), true);
  dv.setUint32(8, len >>> 0, true);
  dv.setUint16(12, flags, true);
  dv.setUint16(14, next, true);
  return b;
}

export class VirtioRig {
  readonly irqLog: boolean[] = [];
  readonly dev: VirtioMmio;
  constructor(readonly ram: GuestRam, readonly backend: VirtioBackend) {
    this.dev = new VirtioMmio(backend, { name: 'vdev', base: 0x10001000, mem: ram, setIrq: (high) => this.irqLog.push(high) });
  }
  r(off: number): number {
    return this.dev.read(off, 4) >>> 0;
  }
  w(off: number, v: number): void {
    this.dev.write(off, 4, v);
  }
  deviceFeatures(): [number, number] {
    this.w(DEVICE_FEATURES_SEL, 0);
    const lo = this.r(DEVICE_FEATURES);
    this.w(DEVICE_FEATURES_SEL, 1);
    return [lo, this.r(DEVICE_FEATURES)];
  }
  /** ACKNOWLEDGE, DRIVER, features, FEATURES_OK: returns whether the device kept FEATURES_OK. */
  negotiate(words: [number, number]): boolean {
    this.w(STATUS, 0);
    this.w(STATUS, STATUS_ACKNOWLEDGE);
    this.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    this.w(DRIVER_FEATURES_SEL, 0);
    this.w(DRIVER_FEATURES, words[0]);
    this.w(DRIVER_FEATURES_SEL, 1);
    this.w(DRIVER_FEATURES, words[1]);
    this.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    return (this.r(STATUS) & STATUS_FEATURES_OK) !== 0;
  }
  setupQueue(q: DriverQueue): void {
    this.w(QUEUE_SEL, q.index);
    expect(this.r(QUEUE_NUM_MAX)).toBeGreaterThanOrEqual(q.num);
    this.w(QUEUE_NUM, q.num);
    this.w(QUEUE_DESC_LOW, q.desc);
    this.w(QUEUE_DESC_HIGH, 0);
    this.w(QUEUE_DRIVER_LOW, q.avail);
    this.w(QUEUE_DEVICE_LOW, q.used);
    this.w(QUEUE_READY, 1);
  }
  driverOk(): void {
    this.w(STATUS, this.r(STATUS) | STATUS_DRIVER_OK);
  }
  status(): number {
    return this.r(STATUS);
  }
  configU32(off: number): number {
    return this.dev.read(CONFIG + off, 4) >>> 0;
  }
  setConfigU32(off: number, v: number): void {
    this.dev.write(CONFIG + off, 4, v);
  }
  ackInterrupts(): number {
    const isr = this.r(INTERRUPT_STATUS);
    this.w(INTERRUPT_ACK, isr);
    return isr;
  }

  /** Puts a chain of segments (optionally through an indirect table at `indirectAt`) on the queue and notifies. */
  *add(q: DriverQueue, segs: readonly Seg[], opts: { indirectAt?: number; notify?: boolean } = {}): Task<number> {
    const ram = this.ram;
    let head: number;
    if (opts.indirectAt !== undefined) {
      for (let i = 0; i < segs.length; i++) {
        const s = segs[i]!;
        const flags = (s.write ? VRING_DESC_F_WRITE : 0) | (i + 1 < segs.length ? VRING_DESC_F_NEXT : 0);
        yield* ram.put(opts.indirectAt + 16 * i, descBytes(s.gpa, s.len, flags, i + 1));
      }
      head = q.take(1);
      yield* ram.put(q.desc + 16 * head, descBytes(opts.indirectAt, 16 * segs.length, VRING_DESC_F_INDIRECT, 0));
    } else {
      head = q.take(segs.length);
      for (let i = 0; i < segs.length; i++) {
        const s = segs[i]!;
        const slot = (head + i) % q.num;
        const flags = (s.write ? VRING_DESC_F_WRITE : 0) | (i + 1 < segs.length ? VRING_DESC_F_NEXT : 0);
        yield* ram.put(q.desc + 16 * slot, descBytes(s.gpa, s.len, flags, (slot + 1) % q.num));
      }
    }
    yield* ram.put(q.avail + 4 + 2 * (q.availIdx % q.num), le16(head));
    q.availIdx = (q.availIdx + 1) & 0xffff;
    yield* ram.put(q.avail + 2, le16(q.availIdx));
    if (opts.notify !== false) this.w(QUEUE_NOTIFY, q.index);
    return head;
  }

  /** Waits (polling, as a driver with interrupts off would) until the device returned `n` more buffers. */
  *waitUsed(q: DriverQueue, n = 1, maxTicks = 1_000_000): Task<{ id: number; len: number }[]> {
    const out: { id: number; len: number }[] = [];
    for (let t = 0; out.length < n; t++) {
      const idx = yield* this.ram.u16(q.used + 2);
      while (q.usedSeen !== idx && out.length < n) {
        const e = new Uint8Array(8);
        expect(yield* this.ram.read(q.used + 4 + 8 * (q.usedSeen % q.num), e)).toBe(true);
        const dv = new DataView(e.buffer);
        out.push({ id: dv.getUint32(0, true), len: dv.getUint32(4, true) });
        q.usedSeen = (q.usedSeen + 1) & 0xffff;
      }
      if (out.length >= n) break;
      if (t * 100 > maxTicks) throw new Error(`queue ${q.index}: ${out.length}/${n} buffers back after ${maxTicks} ticks`);
      yield* sleepTicks(100, 'driver polls used');
    }
    return out;
  }
}

/** A host with one VMM process, its guest RAM mapped, and a balloon behind a transport. */
export function balloonRig(opts: { hostBytes?: number; guestBytes?: number; seed?: number; config?: BalloonConfig } = {}) {
  const h = createHost({ ramBytes: opts.hostBytes ?? 4 << 20, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) });
  const proc = h.k.createProcess('vmm');
  const ram = new GuestRam(h, proc, opts.guestBytes ?? 2 << 20);
  const balloon = new VirtioBalloon(opts.config ?? {}, {
    discard: (gpa, len) => h.k.madvise(proc.mm, ram.hva + gpa - RAM_BASE, len, MADV_DONTNEED),
    footprintPages: () => ram.footprint(),
    freeFrames: () => h.k.frames.nrFree,
    isRam: (gpa, len) => ram.isRam(gpa, len),
    now: () => h.sched.now,
  });
  const rig = new VirtioRig(ram, balloon);
  balloon.transport = rig.dev;
  h.sched.spawn('virtio-balloon', () => balloon.worker(), { daemon: true });
  h.sched.spawn('virtio-balloon-stats', () => balloon.statsTimer(), { daemon: true });
  return { h, proc, ram, balloon, rig };
}

// The device side of a split virtqueue (virtio 1.2, §2.7): the descriptor table,
// the driver area (avail ring) and the device area (used ring), all in guest
// memory. Every read and write goes through GuestMemory, which reaches guest
// RAM the way the VMM process does (through the host: it may fault a swapped
// page back in, and sleep), never around it.
// Counterpart: hw/virtio/virtio.c (virtqueue_pop, virtqueue_push, virtio_should_notify)
//
// Layout (little-endian), for a queue of `num` entries:
//   desc   16 * num   { addr u64, len u32, flags u16, next u16 }
//   avail  6 + 2*num  { flags u16, idx u16, ring[num] u16, used_event u16 }
//   used   6 + 8*num  { flags u16, idx u16, ring[num] { id u32, len u32 }, avail_event u16 }
//
// What a driver may get wrong, and what it gets (§2.7.5.3, §2.7.7: the device
// treats a malformed ring as an error that needs a reset; VirtqueueError is it):
//   a head or a next index >= num; a chain longer than num (a loop); an
//   indirect table inside an indirect table, or with NEXT set, or whose length
//   is not a multiple of 16 or holds more than num entries; a device-readable
//   descriptor after a device-writable one; a buffer or a ring outside guest
//   RAM; avail.idx moving more than num past the last entry taken.

import type { Task } from '../../sched/index.js';

export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;
const DESC_BYTES = 16;

/** Guest RAM as a device sees it: gpa ranges, accessed through the host. */
export interface GuestMemory {
  /** True when [gpa, gpa + len) lies in guest RAM (one memslot). */
  isRam(gpa: number, len: number): boolean;
  /** Copies from guest RAM; false when the host could not (the VMM was killed, EFAULT). */
  read(gpa: number, dst: Uint8Array): Task<boolean>;
  write(gpa: number, src: Uint8Array): Task<boolean>;
}

export class VirtqueueError extends Error {
  override readonly name = 'VirtqueueError';
}

/** The host could not reach guest memory (the VMM process is going away): stop, nothing to report. */
export class GuestMemoryGone extends Error {
  override readonly name = 'GuestMemoryGone';
}

export interface BufferSegment {
  readonly gpa: number;
  readonly len: number;
}

/** One available buffer: its head index and its device-readable, then device-writable segments. */
export interface DescChain {
  readonly head: number;
  readonly readable: readonly BufferSegment[];
  readonly writable: readonly BufferSegment[];
  readonly readableBytes: number;
  readonly writableBytes: number;
}

export interface QueueConfig {
  num: number;
  descGpa: number;
  driverGpa: number;
  deviceGpa: number;
}

export class SplitVirtqueue {
  readonly index: number;
  readonly num: number;
  private readonly desc: number;
  private readonly avail: number;
  private readonly used: number;
  /** Our copy of the driver's next avail.ring slot to take (wraps at 2^16). */
  lastAvailIdx = 0;
  /** Our used.idx: what the driver has been given back. */
  usedIdx = 0;
  /** used.idx when we last decided whether to notify (for EVENT_IDX). */
  private signalledUsed = 0;
  private signalledValid = false;
  private readonly scratch = new Uint8Array(DESC_BYTES);

  constructor(index: number, cfg: QueueConfig, private readonly mem: GuestMemory, private readonly eventIdx: boolean) {
    this.index = index;
    this.num = cfg.num;
    this.desc = cfg.descGpa;
    this.avail = cfg.driverGpa;
    this.used = cfg.deviceGpa;
    if (!mem.isRam(this.desc, DESC_BYTES * this.num)) throw new VirtqueueError(`queue ${index}: descriptor table ${hex(this.desc)}+${DESC_BYTES * this.num} is not in guest RAM`);
    if (!mem.isRam(this.avail, 6 + 2 * this.num)) throw new VirtqueueError(`queue ${index}: driver area ${hex(this.avail)} is not in guest RAM`);
    if (!mem.isRam(this.used, 6 + 8 * this.num)) throw new VirtqueueError(`queue ${index}: device area ${hex(this.used)} is not in guest RAM`);
  }

  /** Entries the driver made available that we have not taken. */
  *availCount(): Task<number> {
    const idx = yield* this.readU16(this.avail + 2);
    const n = (idx - this.lastAvailIdx) & 0xffff;
    if (n > this.num) throw new VirtqueueError(`queue ${this.index}: avail.idx ${idx} is ${n} entries past ${this.lastAvailIdx}, more than the queue's ${this.num}`);
    return n;
  }

  /** Takes the next available buffer, or returns null when there is none. */
  *pop(): Task<DescChain | null> {
    if ((yield* this.availCount()) === 0) return null;
    const head = yield* this.readU16(this.avail + 4 + 2 * (this.lastAvailIdx % this.num));
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    if (this.eventIdx) yield* this.writeU16(this.used + 4 + 8 * this.num, this.lastAvailIdx);
    if (head >= this.num) throw new VirtqueueError(`queue ${this.index}: head ${head} >= queue size ${this.num}`);
    return yield* this.walkChain(head);
  }

  /** Returns a buffer to the driver with `len` bytes written into it. */
  *push(head: number, len: number): Task {
    const slot = this.used + 4 + 8 * (this.usedIdx % this.num);
    const e = new Uint8Array(8);
    const dv = new DataView(e.buffer);
    dv.setUint32(0, head, true);
    dv.setUint32(4, len >>> 0, true);
    yield* this.write(slot, e);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    yield* this.writeU16(this.used + 2, this.usedIdx);
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last call
   * (§2.7.10: used_event with EVENT_IDX, else the avail ring's NO_INTERRUPT flag).
   */
  *shouldNotify(): Task<boolean> {
    const old = this.signalledUsed;
    const now = this.usedIdx;
    const valid = this.signalledValid;
    this.signalledUsed = now;
    this.signalledValid = true;
    if (!this.eventIdx) {
      const flags = yield* this.readU16(this.avail);
      return (flags & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const usedEvent = yield* this.readU16(this.avail + 4 + 2 * this.num);
    // vring_need_event(): interrupt when used_event lies in (old, now].
    return !valid || ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
  }

  private *walkChain(head: number): Task<DescChain> {
    const readable: BufferSegment[] = [];
    const writable: BufferSegment[] = [];
    let readableBytes = 0;
    let writableBytes = 0;
    let table = this.desc;
    let tableLen = this.num;
    let indirect = false;
    let i = head;
    // A chain never holds more descriptors than the queue has entries (§2.7.5.3.1), indirect ones included.
    for (let seen = 0; ; seen++) {
      if (seen >= this.num) throw new VirtqueueError(`queue ${this.index}: descriptor chain from ${head} is longer than the queue (${this.num}): a loop`);
      const d = yield* this.readDesc(table, i);
      if ((d.flags & VRING_DESC_F_INDIRECT) !== 0) {
        if (indirect) throw new VirtqueueError(`queue ${this.index}: an indirect descriptor inside an indirect table`);
        if ((d.flags & VRING_DESC_F_NEXT) !== 0) throw new VirtqueueError(`queue ${this.index}: an indirect descriptor with NEXT set`);
        if (d.len === 0 || d.len % DESC_BYTES !== 0 || d.len / DESC_BYTES > this.num) {
          throw new VirtqueueError(`queue ${this.index}: indirect table of ${d.len} bytes (a multiple of 16, at most ${this.num} entries)`);
        }
        if (!this.mem.isRam(d.addr, d.len)) throw new VirtqueueError(`queue ${this.index}: indirect table ${hex(d.addr)}+${d.len} is not in guest RAM`);
        table = d.addr;
        tableLen = d.len / DESC_BYTES;
        indirect = true;
        i = 0;
        continue;
      }
      if (!this.mem.isRam(d.addr, d.len)) throw new VirtqueueError(`queue ${this.index}: buffer ${hex(d.addr)}+${d.len} is not in guest RAM`);
      if ((d.flags & VRING_DESC_F_WRITE) !== 0) {
        writable.push({ gpa: d.addr, len: d.len });
        writableBytes += d.len;
      } else {
        if (writable.length > 0) throw new VirtqueueError(`queue ${this.index}: a device-readable descriptor after a device-writable one`);
        readable.push({ gpa: d.addr, len: d.len });
        readableBytes += d.len;
      }
      if ((d.flags & VRING_DESC_F_NEXT) === 0) break;
      if (d.next >= tableLen) throw new VirtqueueError(`queue ${this.index}: next ${d.next} >= ${indirect ? 'indirect table' : 'queue'} size ${tableLen}`);
      i = d.next;
    }
    return { head, readable, writable, readableBytes, writableBytes };
  }

  private *readDesc(table: number, i: number): Task<{ addr: number; len: number; flags: number; next: number }> {
    const b = this.scratch;
    yield* this.read(table + DESC_BYTES * i, b);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const lo = dv.getUint32(0, true);
    const hi = dv.getUint32(4, true);
    // An address at or past 2^53 cannot be guest RAM either; keep it unequal to any RAM address.
    const addr = hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 2 ** 32 + lo;
    return { addr, len: dv.getUint32(8, true), flags: dv.getUint16(12, true), next: dv.getUint16(14, true) };
  }

  private *readU16(gpa: number): Task<number> {
    const b = new Uint8Array(2);
    yield* this.read(gpa, b);
    return b[0]! | (b[1]! << 8);
  }

  private *writeU16(gpa: number, v: number): Task {
    yield* this.write(gpa, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
  }

  private *read(gpa: number, dst: Uint8Array): Task {
    if (!(yield* this.mem.read(gpa, dst))) throw new GuestMemoryGone(`queue ${this.index}: reading ${hex(gpa)} failed`);
  }

  private *write(gpa: number, src: Uint8Array): Task {
    if (!(yield* this.mem.write(gpa, src))) throw new GuestMemoryGone(`queue ${this.index}: writing ${hex(gpa)} failed`);
  }
}

/** Copies a chain's device-readable bytes out (at most `max`), through guest memory. */
export function* readChain(mem: GuestMemory, chain: DescChain, max = chain.readableBytes): Task<Uint8Array> {
  const out = new Uint8Array(Math.min(max, chain.readableBytes));
  let o = 0;
  for (const s of chain.readable) {
    if (o >= out.length) break;
    const n = Math.min(s.len, out.length - o);
    const part = out.subarray(o, o + n);
    if (!(yield* mem.read(s.gpa, part))) throw new GuestMemoryGone(`reading a buffer at ${hex(s.gpa)} failed`);
    o += n;
  }
  return out;
}

function hex(v: number): string {
  return '0x' + v.toString(16);
}

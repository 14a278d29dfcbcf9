// virtio-mmio transport, version 2 (virtio 1.2, §4.2.2): the register block a
// driver finds at a device-tree address, in front of one device backend.
// Counterpart: hw/virtio/virtio-mmio.c (QEMU), drivers/virtio/virtio_mmio.c
//
// The transport negotiates features in 32-bit halves, walks the status byte,
// keeps each queue's size and area addresses until QueueReady, and raises the
// device's interrupt line while InterruptStatus is non-zero. QueueNotify only
// records the queue and calls the backend's notify (an ioeventfd): the work
// happens in the device's own thread, which may sleep on guest memory; an MMIO
// access itself never does.
//
// Errors (§2.1.2): a backend or a ring that breaks puts the device in
// DEVICE_NEEDS_RESET and raises a configuration change interrupt; it then does
// nothing until the driver resets it (Status = 0).

import type { MmioDevice } from '../../hart/bus.js';
import { SplitVirtqueue, VirtqueueError } from './virtqueue.js';
import type { GuestMemory, QueueConfig } from './virtqueue.js';

export const VIRTIO_MMIO_MAGIC = 0x74726976; // "virt"
export const VIRTIO_MMIO_VERSION = 2;
/** QEMU's vendor id, which Linux prints and nothing checks. */
export const VIRTIO_MMIO_VENDOR = 0x554d4551;
export const VIRTIO_MMIO_SIZE = 0x1000;

// Register offsets (§4.2.2).
export const MAGIC_VALUE = 0x000;
export const VERSION = 0x004;
export const DEVICE_ID = 0x008;
export const VENDOR_ID = 0x00c;
export const DEVICE_FEATURES = 0x010;
export const DEVICE_FEATURES_SEL = 0x014;
export const DRIVER_FEATURES = 0x020;
export const DRIVER_FEATURES_SEL = 0x024;
export const QUEUE_SEL = 0x030;
export const QUEUE_NUM_MAX = 0x034;
export const QUEUE_NUM = 0x038;
export const QUEUE_READY = 0x044;
export const QUEUE_NOTIFY = 0x050;
export const INTERRUPT_STATUS = 0x060;
export const INTERRUPT_ACK = 0x064;
export const STATUS = 0x070;
export const QUEUE_DESC_LOW = 0x080;
export const QUEUE_DESC_HIGH = 0x084;
export const QUEUE_DRIVER_LOW = 0x090;
export const QUEUE_DRIVER_HIGH = 0x094;
export const QUEUE_DEVICE_LOW = 0x0a0;
export const QUEUE_DEVICE_HIGH = 0x0a4;
export const SHM_SEL = 0x0ac;
export const SHM_LEN_LOW = 0x0b0;
export const SHM_LEN_HIGH = 0x0b4;
export const SHM_BASE_LOW = 0x0b8;
export const SHM_BASE_HIGH = 0x0bc;
export const QUEUE_RESET = 0x0c0;
export const CONFIG_GENERATION = 0x0fc;
export const CONFIG = 0x100;

// Device status bits (§2.1).
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 64;
export const STATUS_FAILED = 128;

export const VIRTIO_MMIO_INT_VRING = 1;
export const VIRTIO_MMIO_INT_CONFIG = 2;

// Transport feature bits (§6), as [word, bit].
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
export const VIRTIO_F_RING_EVENT_IDX = 29;
/** Bit 32: word 1, bit 0. A version 2 transport requires it (virtio_mmio.c refuses a modern device without it). */
export const VIRTIO_F_VERSION_1 = 32;

/** What a device (balloon, ...) implements behind the transport. */
export interface VirtioBackend {
  readonly deviceId: number;
  /** Device-specific feature bits (0..23 and any others it offers), as a set of bit numbers. */
  readonly features: readonly number[];
  /** Queue size limit per queue index under the driver's features (which may not be final yet); 0: no such queue. */
  queueNumMax(index: number, features: FeatureSet): number;
  configRead(offset: number, width: 1 | 2 | 4): number;
  configWrite(offset: number, width: 1 | 2 | 4, value: number): void;
  /** DRIVER_OK with these queues live (the driver's features are final). */
  activate(queues: ReadonlyMap<number, SplitVirtqueue>, features: FeatureSet): void;
  /** Status = 0, or the device broke: drop every queue and in-flight buffer. */
  reset(): void;
  /** QueueNotify: the driver made buffers available on this queue. */
  notify(index: number): void;
}

/** Negotiated feature bits. */
export class FeatureSet {
  constructor(private readonly words: readonly [number, number]) {}
  has(bit: number): boolean {
    return ((this.words[bit >>> 5]! >>> (bit & 31)) & 1) !== 0;
  }
  toString(): string {
    const bits: number[] = [];
    for (let b = 0; b < 64; b++) if (this.has(b)) bits.push(b);
    return bits.join(',');
  }
}

interface QueueRegs {
  num: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
}

const newQueueRegs = (): QueueRegs => ({ num: 0, ready: false, desc: [0, 0], driver: [0, 0], device: [0, 0] });
const u64 = (p: [number, number]) => p[1] * 2 ** 32 + p[0];

export class VirtioMmio implements MmioDevice {
  readonly name: string;
  readonly base: number;
  readonly size = VIRTIO_MMIO_SIZE;
  private readonly deviceWords: [number, number];
  private driverWords: [number, number] = [0, 0];
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private queueRegs = new Map<number, QueueRegs>();
  private live = new Map<number, SplitVirtqueue>();
  private status = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  /** Counts resets: a device thread that slept across one must drop what it held. */
  epoch = 0;
  /** Why the device last entered DEVICE_NEEDS_RESET (for the console and the tests). */
  lastError: string | null = null;

  /**
   * setIrq: the device's interrupt line (a PLIC source). mem: guest RAM as the
   * device reaches it.
   */
  constructor(
    readonly backend: VirtioBackend,
    opts: { name: string; base: number; setIrq: (high: boolean) => void; mem: GuestMemory },
  ) {
    this.name = opts.name;
    this.base = opts.base;
    this.setIrq = opts.setIrq;
    this.mem = opts.mem;
    const words: [number, number] = [0, 0];
    for (const b of [...backend.features, VIRTIO_F_VERSION_1, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_RING_EVENT_IDX]) {
      words[b >>> 5] = (words[b >>> 5]! | (1 << (b & 31))) >>> 0;
    }
    this.deviceWords = words;
  }

  private readonly setIrq: (high: boolean) => void;
  readonly mem: GuestMemory;

  get driverOk(): boolean {
    return (this.status & STATUS_DRIVER_OK) !== 0 && !this.broken;
  }

  get broken(): boolean {
    return (this.status & STATUS_DEVICE_NEEDS_RESET) !== 0;
  }

  get negotiated(): FeatureSet {
    return new FeatureSet(this.driverWords);
  }

  /** The backend changed its configuration space: bump the generation and tell the driver. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if ((this.status & STATUS_DRIVER_OK) !== 0) this.raise(VIRTIO_MMIO_INT_CONFIG);
  }

  /** The backend put buffers in a used ring and the driver wants to hear of it. */
  signalUsed(): void {
    this.raise(VIRTIO_MMIO_INT_VRING);
  }

  /** The device cannot go on (a malformed ring, a backend error): DEVICE_NEEDS_RESET. */
  fail(reason: string): void {
    if (this.broken) return;
    this.lastError = reason;
    this.epoch++;
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    this.live.clear();
    this.backend.reset();
    this.raise(VIRTIO_MMIO_INT_CONFIG);
  }

  read(offset: number, width: 1 | 2 | 4): number {
    if (offset >= CONFIG) return this.backend.configRead(offset - CONFIG, width);
    // §4.2.2.2: the driver MUST use 32-bit wide and aligned accesses below the config space.
    if (width !== 4 || (offset & 3) !== 0) return 0;
    const q = this.queueRegs.get(this.queueSel);
    switch (offset) {
      case MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
      case VERSION: return VIRTIO_MMIO_VERSION;
      case DEVICE_ID: return this.backend.deviceId;
      case VENDOR_ID: return VIRTIO_MMIO_VENDOR;
      case DEVICE_FEATURES: return this.deviceFeaturesSel < 2 ? this.deviceWords[this.deviceFeaturesSel]! | 0 : 0;
      case QUEUE_NUM_MAX: return this.backend.queueNumMax(this.queueSel, this.negotiated);
      case QUEUE_READY: return q?.ready ? 1 : 0;
      case INTERRUPT_STATUS: return this.interruptStatus;
      case STATUS: return this.status;
      case CONFIG_GENERATION: return this.configGeneration | 0;
      // No shared memory regions: a length of all ones says "none" (§4.2.2).
      case SHM_LEN_LOW: case SHM_LEN_HIGH: case SHM_BASE_LOW: case SHM_BASE_HIGH: return -1;
      case QUEUE_RESET: return 0;
      default: return 0;
    }
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    if (offset >= CONFIG) {
      this.backend.configWrite(offset - CONFIG, width, value);
      return;
    }
    if (width !== 4 || (offset & 3) !== 0) return;
    const v = value >>> 0;
    switch (offset) {
      case DEVICE_FEATURES_SEL: this.deviceFeaturesSel = v; return;
      case DRIVER_FEATURES_SEL: this.driverFeaturesSel = v; return;
      case DRIVER_FEATURES:
        // Features are final once FEATURES_OK is set (§3.1.1).
        if (this.driverFeaturesSel < 2 && (this.status & STATUS_FEATURES_OK) === 0) this.driverWords[this.driverFeaturesSel] = v;
        return;
      case QUEUE_SEL: this.queueSel = v; return;
      case QUEUE_NUM: this.queueConfig((q) => { q.num = v; }); return;
      case QUEUE_DESC_LOW: this.queueConfig((q) => { q.desc[0] = v; }); return;
      case QUEUE_DESC_HIGH: this.queueConfig((q) => { q.desc[1] = v; }); return;
      case QUEUE_DRIVER_LOW: this.queueConfig((q) => { q.driver[0] = v; }); return;
      case QUEUE_DRIVER_HIGH: this.queueConfig((q) => { q.driver[1] = v; }); return;
      case QUEUE_DEVICE_LOW: this.queueConfig((q) => { q.device[0] = v; }); return;
      case QUEUE_DEVICE_HIGH: this.queueConfig((q) => { q.device[1] = v; }); return;
      case QUEUE_READY: this.setQueueReady(v !== 0); return;
      case QUEUE_NOTIFY:
        if (this.driverOk && this.live.has(v)) this.backend.notify(v);
        return;
      case INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        this.setIrq(this.interruptStatus !== 0);
        return;
      case STATUS: this.writeStatus(v & 0xff); return;
      case QUEUE_RESET:
        if (v === 1) this.resetQueue(this.queueSel);
        return;
      default: return;
    }
  }

  dump(): string {
    const qs = [...this.queueRegs.entries()].filter(([, q]) => q.ready)
      .map(([i, q]) => {
        const vq = this.live.get(i);
        return `q${i} num ${q.num}${vq ? ` avail ${vq.lastAvailIdx} used ${vq.usedIdx}` : ''}`;
      });
    return `${this.name}@0x${this.base.toString(16)}: device ${this.backend.deviceId} status 0x${this.status.toString(16)} ` +
      `features ${this.negotiated} isr ${this.interruptStatus} generation ${this.configGeneration}` +
      (qs.length > 0 ? ` ${qs.join(' ')}` : '') + (this.lastError !== null ? ` error: ${this.lastError}` : '');
  }

  private raise(bit: number): void {
    this.interruptStatus |= bit;
    this.setIrq(true);
  }

  private queueConfig(f: (q: QueueRegs) => void): void {
    if (this.backend.queueNumMax(this.queueSel, this.negotiated) === 0) return;
    let q = this.queueRegs.get(this.queueSel);
    if (q === undefined) {
      q = newQueueRegs();
      this.queueRegs.set(this.queueSel, q);
    }
    // §4.2.2.1: the device ignores queue configuration while the queue is ready.
    if (!q.ready) f(q);
  }

  private setQueueReady(ready: boolean): void {
    const max = this.backend.queueNumMax(this.queueSel, this.negotiated);
    if (max === 0) return;
    let q = this.queueRegs.get(this.queueSel);
    if (q === undefined) {
      q = newQueueRegs();
      this.queueRegs.set(this.queueSel, q);
    }
    if (!ready) {
      q.ready = false;
      this.live.delete(this.queueSel);
      return;
    }
    // A split queue's size is a power of two no larger than QueueNumMax (§2.7).
    if (q.num === 0 || q.num > max || (q.num & (q.num - 1)) !== 0) {
      this.fail(`queue ${this.queueSel}: size ${q.num} (QueueNumMax ${max}, a power of two)`);
      return;
    }
    q.ready = true;
    if ((this.status & STATUS_DRIVER_OK) !== 0) this.makeLive(this.queueSel, q);
  }

  private resetQueue(index: number): void {
    this.queueRegs.delete(index);
    this.live.delete(index);
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    // FEATURES_OK sticks only when the driver asked for nothing we did not offer, and for VERSION_1.
    if ((v & STATUS_FEATURES_OK) !== 0 && (this.status & STATUS_FEATURES_OK) === 0) {
      const extra = ((this.driverWords[0] & ~this.deviceWords[0]) | (this.driverWords[1] & ~this.deviceWords[1])) !== 0;
      if (extra || !this.negotiated.has(VIRTIO_F_VERSION_1)) v &= ~STATUS_FEATURES_OK;
    }
    const wasOk = (this.status & STATUS_DRIVER_OK) !== 0;
    // The device owns DEVICE_NEEDS_RESET; the driver cannot clear it but by a reset.
    this.status = (v & ~STATUS_DEVICE_NEEDS_RESET) | (this.status & STATUS_DEVICE_NEEDS_RESET);
    if (!wasOk && (this.status & STATUS_DRIVER_OK) !== 0 && !this.broken) {
      for (const [i, q] of this.queueRegs) if (q.ready) this.makeLive(i, q);
      if (!this.broken) this.backend.activate(this.live, this.negotiated);
    }
  }

  private makeLive(index: number, q: QueueRegs): void {
    const cfg: QueueConfig = { num: q.num, descGpa: u64(q.desc), driverGpa: u64(q.driver), deviceGpa: u64(q.device) };
    try {
      this.live.set(index, new SplitVirtqueue(index, cfg, this.mem, this.negotiated.has(VIRTIO_F_RING_EVENT_IDX)));
    } catch (e) {
      if (e instanceof VirtqueueError) this.fail(e.message);
      else throw e;
    }
  }

  private reset(): void {
    this.epoch++;
    this.status = 0;
    this.driverWords = [0, 0];
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.queueRegs = new Map();
    this.live = new Map();
    this.interruptStatus = 0;
    this.lastError = null;
    this.setIrq(false);
    this.backend.reset();
  }
}

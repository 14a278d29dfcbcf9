// virtio-balloon (virtio 1.2, §5.5): the guest hands pages to the host
// (inflate), takes them back (deflate), reports free memory (free page
// reporting) and its memory statistics (stats queue). The monitor sets the
// target (num_pages); the driver moves `actual` towards it.
// Counterpart: hw/virtio/virtio-balloon.c (QEMU), src/vmm/src/devices/virtio/balloon (Firecracker)
//
// Returning memory is madvise(MADV_DONTNEED) on the VMM's mapping of guest RAM
// (`discard`): the host zaps its ptes, the mmu notifier zaps KVM's sptes, the
// frames (or swap slots) are freed, and the next guest touch faults in a zero
// page, so nothing of a page's previous contents survives. Under the `pin`
// protocol KVM still holds its pin on a page it mapped, so the DONTNEED unmaps
// it from the VMM but the frame is not freed (hostFreed says so).
//
// Queues, in the order the driver finds them: inflateq, deflateq, then statsq
// if STATS_VQ, free_page_vq if FREE_PAGE_HINT (not offered), reporting_vq if
// REPORTING: the indices are consecutive over the queues that exist
// (virtio_mmio.c vm_find_vqs skips a queue without a name).
//
// Threads: QueueNotify wakes the worker ('virtio-balloon'), which takes the
// buffers and discards through the host (it may sleep on reclaim or swap-in).
// The stats timer thread holds the driver's stats buffer for the polling
// interval, then gives it back, which makes the driver refill it.

import { sleepTicks, WaitQueue } from '../../sched/index.js';
import type { Task } from '../../sched/index.js';
import type { FeatureSet, VirtioBackend, VirtioMmio } from './virtio-mmio.js';
import { GuestMemoryGone, readChain, VirtqueueError } from './virtqueue.js';
import type { DescChain, SplitVirtqueue } from './virtqueue.js';

export const VIRTIO_ID_BALLOON = 5;
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3;
export const VIRTIO_BALLOON_F_PAGE_POISON = 4;
export const VIRTIO_BALLOON_F_REPORTING = 5;
/** PFNs in the queues are in 4 KiB units, whatever the guest's page size (§5.5.6). */
export const VIRTIO_BALLOON_PFN_SHIFT = 12;
const PAGE_SIZE = 1 << VIRTIO_BALLOON_PFN_SHIFT;
export const BALLOON_QUEUE_SIZE = 128;

// Config space (struct virtio_balloon_config), little-endian u32s.
const CFG_NUM_PAGES = 0;
const CFG_ACTUAL = 4;
const CFG_FREE_PAGE_HINT_CMD_ID = 8;
const CFG_POISON_VAL = 12;

/** Stats tags (§5.5.6.3) in the names QEMU's guest-stats and Firecracker use. */
export const BALLOON_STAT_NAMES: readonly string[] = [
  'swap_in', 'swap_out', 'major_faults', 'minor_faults', 'free_memory', 'total_memory', 'available_memory',
  'disk_caches', 'hugetlb_allocations', 'hugetlb_failures', 'oom_kill', 'alloc_stall', 'async_scan',
  'direct_scan', 'async_reclaim', 'direct_reclaim',
];
const STAT_BYTES = 10; // { le16 tag; le64 val; } packed

export interface BalloonConfig {
  /** Initial target in 4 KiB pages (num_pages before the driver starts). */
  targetPages?: number;
  deflateOnOom?: boolean;
  /** Offer the stats queue, polled every this many ticks; 0 or absent: no stats queue. */
  statsIntervalTicks?: number;
  freePageReporting?: boolean;
}

export type QueueRole = 'inflate' | 'deflate' | 'stats' | 'reporting';

/** What the host side of the balloon needs from the VMM. */
export interface BalloonHost {
  /** madvise(MADV_DONTNEED) of [gpa, gpa + len) of guest RAM; 0 or -errno. */
  discard(gpa: number, len: number): Task<number>;
  /** The VMM process's resident pages plus its swap entries: what guest RAM costs the host. */
  footprintPages(): number;
  /** The host's free frames (a DONTNEED that only unmaps a pinned page frees none). */
  freeFrames(): number;
  /** True when gpa..gpa+len is guest RAM. */
  isRam(gpa: number, len: number): boolean;
  now(): number;
}

export interface BalloonStats {
  targetPages: number;
  actualPages: number;
  /** PFNs the guest handed over and has not taken back. */
  inflatedPages: number;
  inflateRequests: number;
  deflateRequests: number;
  /** PFNs outside guest RAM in an inflate or deflate buffer (ignored, as QEMU does). */
  rejectedPfns: number;
  reportedPages: number;
  reports: number;
  /** Fall of the VMM's resident+swapped pages across every discard: what it stopped costing the host. */
  hostFreedPages: number;
  /** Rise of the host's free frames across every discard: frames really returned (0 for pinned pages). */
  hostFramesFreed: number;
  /** The guest's last statistics, by BALLOON_STAT_NAMES, and when (simulated ticks) they came. */
  guest: Record<string, number>;
  statsUpdatedAt: number | null;
  statsUpdates: number;
  features: string;
}

export class VirtioBalloon implements VirtioBackend {
  readonly deviceId = VIRTIO_ID_BALLOON;
  readonly features: readonly number[];
  transport: VirtioMmio | null = null;
  private targetPages: number;
  private actualPages = 0;
  private poisonVal = 0;
  /** The features of the last driver that reached DRIVER_OK. */
  private negotiated = '';
  private roles = new Map<number, QueueRole>();
  private queues: ReadonlyMap<number, SplitVirtqueue> = new Map();
  private readonly inflated = new Set<number>();
  private work = 0;
  private readonly workWait = new WaitQueue('virtio-balloon');
  private readonly statsWait = new WaitQueue('virtio-balloon-stats');
  /** The driver's stats buffer while we hold it (its head), with the epoch it belongs to. */
  private statsHead: { head: number; epoch: number } | null = null;
  private stopped = false;
  /** Threads of this device inside a guest-memory access; quiesce waits for none. */
  private busy = 0;
  private readonly idleWait = new WaitQueue('virtio-balloon-idle');
  private readonly counters = {
    inflateRequests: 0, deflateRequests: 0, rejectedPfns: 0, reportedPages: 0, reports: 0, hostFreedPages: 0, hostFramesFreed: 0, statsUpdates: 0,
  };
  private guestStats: Record<string, number> = {};
  private statsUpdatedAt: number | null = null;

  constructor(readonly config: BalloonConfig, private readonly host: BalloonHost) {
    this.targetPages = config.targetPages ?? 0;
    const f = [VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_PAGE_POISON];
    if (config.statsIntervalTicks) f.push(VIRTIO_BALLOON_F_STATS_VQ);
    if (config.deflateOnOom) f.push(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    if (config.freePageReporting) f.push(VIRTIO_BALLOON_F_REPORTING);
    this.features = f;
  }

  // ---- the monitor's side ---------------------------------------------------------------

  /** The target the monitor sets (QEMU `balloon`, Firecracker PATCH /balloon amount_mib), in pages. */
  setTarget(pages: number): void {
    if (!(Number.isInteger(pages) && pages >= 0 && pages < 2 ** 32)) throw new RangeError(`balloon target ${pages} pages`);
    this.targetPages = pages;
    this.transport?.configChanged();
  }

  stats(): BalloonStats {
    return {
      targetPages: this.targetPages,
      actualPages: this.actualPages,
      inflatedPages: this.inflated.size,
      ...this.counters,
      guest: { ...this.guestStats },
      statsUpdatedAt: this.statsUpdatedAt,
      features: this.negotiated,
    };
  }

  /** Ends the worker and the stats thread, and waits until neither is inside guest memory (the VM is going away). */
  *quiesce(): Task {
    this.stopped = true;
    this.workWait.wakeAll();
    this.statsWait.wakeAll();
    yield* this.idleWait.waitEvent(() => this.busy === 0);
  }

  // ---- VirtioBackend ---------------------------------------------------------------------

  queueNumMax(index: number, features: FeatureSet): number {
    return this.queueRoles(features).has(index) ? BALLOON_QUEUE_SIZE : 0;
  }

  configRead(offset: number, width: 1 | 2 | 4): number {
    const word = this.configWord(offset & ~3);
    const shift = (offset & 3) * 8;
    return width === 4 && (offset & 3) === 0 ? word | 0 : (word >>> shift) & (width === 1 ? 0xff : 0xffff);
  }

  configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    // The driver writes `actual` (and poison_val) as whole little-endian words.
    if (width !== 4 || (offset & 3) !== 0) return;
    if (offset === CFG_ACTUAL) this.actualPages = value >>> 0;
    else if (offset === CFG_POISON_VAL) this.poisonVal = value >>> 0;
  }

  activate(queues: ReadonlyMap<number, SplitVirtqueue>, features: FeatureSet): void {
    this.queues = queues;
    this.roles = this.queueRoles(features);
    this.negotiated = features.toString();
    // Linux primes the stats queue and kicks it before DRIVER_OK (virtio_balloon.c
    // init_vqs); we take no buffer before DRIVER_OK (§3.1.1), so look at every queue now.
    for (const i of this.roles.keys()) this.work |= 1 << i;
    this.workWait.wakeAll();
  }

  reset(): void {
    // Pages stay given back, and `actual` keeps its last value (as QEMU keeps it):
    // the guest's memory is what it was. A new driver starts from an empty queue set.
    this.queues = new Map();
    this.roles = new Map();
    this.work = 0;
    this.statsHead = null;
    this.poisonVal = 0;
  }

  notify(index: number): void {
    this.work |= 1 << index;
    this.workWait.wakeAll();
  }

  // ---- threads ------------------------------------------------------------------------------

  /** The device's worker thread: takes buffers from the queues the driver notified. */
  *worker(): Task {
    for (;;) {
      yield* this.workWait.waitEvent(() => this.work !== 0 || this.stopped);
      if (this.stopped) return;
      const work = this.work;
      this.work = 0;
      const t = this.transport!;
      const epoch = t.epoch;
      this.busy++;
      try {
        for (const [index, role] of this.roles) {
          if ((work & (1 << index)) === 0 || this.stopped) continue;
          const vq = this.queues.get(index);
          if (vq !== undefined) yield* this.service(vq, role, epoch);
          if (t.epoch !== epoch) break;
        }
      } catch (e) {
        if (e instanceof VirtqueueError) {
          if (t.epoch === epoch) t.fail(e.message);
        } else if (!(e instanceof GuestMemoryGone)) {
          throw e;
        }
      } finally {
        this.busy--;
        if (this.busy === 0) this.idleWait.wakeAll();
      }
    }
  }

  /** Holds the driver's stats buffer for one interval, then returns it (the driver refills it). */
  *statsTimer(): Task {
    const interval = this.config.statsIntervalTicks ?? 0;
    if (interval <= 0) return;
    for (;;) {
      yield* this.statsWait.waitEvent(() => this.statsHead !== null || this.stopped);
      if (this.stopped) return;
      yield* sleepTicks(interval, 'balloon stats interval');
      const held = this.statsHead;
      const t = this.transport!;
      if (this.stopped) return;
      if (held === null || held.epoch !== t.epoch) continue;
      const vq = this.queueOf('stats');
      if (vq === undefined) continue;
      this.statsHead = null;
      this.busy++;
      try {
        yield* vq.push(held.head, 0);
        if (t.epoch === held.epoch && (yield* vq.shouldNotify())) t.signalUsed();
      } catch (e) {
        if (!(e instanceof GuestMemoryGone)) throw e;
      } finally {
        this.busy--;
        if (this.busy === 0) this.idleWait.wakeAll();
      }
    }
  }

  // ---- queue work ---------------------------------------------------------------------------

  private *service(vq: SplitVirtqueue, role: QueueRole, epoch: number): Task {
    const t = this.transport!;
    let pushed = false;
    for (;;) {
      const chain = yield* vq.pop();
      if (chain === null || t.epoch !== epoch) break;
      switch (role) {
        case 'inflate':
        case 'deflate':
          yield* this.pfnBuffer(chain, role);
          break;
        case 'stats':
          yield* this.statsBuffer(chain, epoch);
          continue; // held, not returned
        case 'reporting':
          yield* this.reportBuffer(chain);
          break;
      }
      if (t.epoch !== epoch) return;
      yield* vq.push(chain.head, 0);
      pushed = true;
    }
    if (pushed && t.epoch === epoch && (yield* vq.shouldNotify())) t.signalUsed();
  }

  /** An array of le32 PFNs: inflate gives them to the host, deflate takes them back. */
  private *pfnBuffer(chain: DescChain, role: 'inflate' | 'deflate'): Task {
    const bytes = yield* readChain(this.transport!.mem, chain);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const pfns: number[] = [];
    for (let o = 0; o + 4 <= bytes.length; o += 4) {
      const pfn = dv.getUint32(o, true);
      if (!this.host.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) {
        this.counters.rejectedPfns++;
        continue;
      }
      pfns.push(pfn);
    }
    if (role === 'deflate') {
      this.counters.deflateRequests++;
      for (const pfn of pfns) this.inflated.delete(pfn);
      return;
    }
    this.counters.inflateRequests++;
    for (const pfn of pfns) this.inflated.add(pfn);
    // Contiguous runs go to the host as one madvise each.
    pfns.sort((a, b) => a - b);
    for (let i = 0; i < pfns.length;) {
      let j = i + 1;
      while (j < pfns.length && pfns[j]! <= pfns[j - 1]! + 1) j++;
      yield* this.discard(pfns[i]! * PAGE_SIZE, (pfns[j - 1]! - pfns[i]! + 1) * PAGE_SIZE);
      i = j;
    }
  }

  /** Free page reporting: each device-writable segment is a free range the guest will not touch until we return the buffer. */
  private *reportBuffer(chain: DescChain): Task {
    this.counters.reports++;
    for (const s of chain.writable) {
      const first = Math.ceil(s.gpa / PAGE_SIZE);
      const end = Math.floor((s.gpa + s.len) / PAGE_SIZE);
      if (end <= first) continue;
      this.counters.reportedPages += end - first;
      // A poisoned free page must read back as its poison, not zeros: keep it (QEMU does the same).
      if (this.poisonVal === 0) yield* this.discard(first * PAGE_SIZE, (end - first) * PAGE_SIZE);
    }
  }

  private *statsBuffer(chain: DescChain, epoch: number): Task {
    if (this.statsHead !== null) throw new VirtqueueError('stats queue: a second buffer while the device holds one');
    const bytes = yield* readChain(this.transport!.mem, chain);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const guest: Record<string, number> = { ...this.guestStats };
    for (let o = 0; o + STAT_BYTES <= bytes.length; o += STAT_BYTES) {
      const tag = dv.getUint16(o, true);
      const name = BALLOON_STAT_NAMES[tag];
      // Unknown tags are skipped (§5.5.6.3: the device ignores them).
      if (name !== undefined) guest[name] = dv.getUint32(o + 6, true) * 2 ** 32 + dv.getUint32(o + 2, true);
    }
    this.guestStats = guest;
    this.statsUpdatedAt = this.host.now();
    this.counters.statsUpdates++;
    this.statsHead = { head: chain.head, epoch };
    this.statsWait.wakeAll();
  }

  private *discard(gpa: number, len: number): Task {
    const before = this.host.footprintPages();
    const freeBefore = this.host.freeFrames();
    const r = yield* this.host.discard(gpa, len);
    if (r < 0) throw new GuestMemoryGone(`madvise(DONTNEED) of guest 0x${gpa.toString(16)}+${len} failed: errno ${-r}`);
    this.counters.hostFreedPages += Math.max(0, before - this.host.footprintPages());
    // Exact on a quiet host; under pressure other threads allocate and reclaim while the madvise sleeps.
    this.counters.hostFramesFreed += Math.max(0, this.host.freeFrames() - freeBefore);
  }

  private queueOf(role: QueueRole): SplitVirtqueue | undefined {
    for (const [i, r] of this.roles) if (r === role) return this.queues.get(i);
    return undefined;
  }

  private queueRoles(features: FeatureSet): Map<number, QueueRole> {
    const roles: QueueRole[] = ['inflate', 'deflate'];
    if (features.has(VIRTIO_BALLOON_F_STATS_VQ)) roles.push('stats');
    if (features.has(VIRTIO_BALLOON_F_REPORTING)) roles.push('reporting');
    return new Map(roles.map((r, i) => [i, r]));
  }

  private configWord(offset: number): number {
    switch (offset) {
      case CFG_NUM_PAGES: return this.targetPages;
      case CFG_ACTUAL: return this.actualPages;
      case CFG_FREE_PAGE_HINT_CMD_ID: return 0;
      case CFG_POISON_VAL: return this.poisonVal;
      default: return 0; // past CFG_BYTES too: reads as zero, as QEMU's config space does
    }
  }
}

// A RISC-V PLIC (Platform-Level Interrupt Controller, spec 1.0.0) with one
// target: the S-mode external interrupt of hart 0, the only context an S-mode
// guest under our SBI uses. Devices drive level-triggered lines; the gateway
// turns a high line into one pending request, which stays pending until a
// claim (or until the line drops, as in QEMU), and cannot be requested again
// until the claim's completion.
// Counterpart: hw/intc/sifive_plic.c (QEMU), drivers/irqchip/irq-sifive-plic.c
//
// Register map (as QEMU virt and the Linux driver lay it out):
//   0x000000 + 4*id        priority of source id (1..ndev), 0 = never interrupts
//   0x001000 + 4*word      pending bits, read-only
//   0x002000 + 4*word      enable bits of context 0
//   0x200000               context 0 priority threshold
//   0x200004               context 0 claim (read) / complete (write)
// Context 0 is what the device tree names first in interrupts-extended
// (<&cpu0_intc 9>): Linux maps its enable and claim registers by that index.
//
// Invariants: pending and claimed are disjoint; a source is pending only while
// its gateway forwarded a request that nobody claimed; eip is exactly "some
// enabled pending source has priority > threshold", recomputed on every change.

import type { MmioDevice } from '../../hart/bus.js';

export const PLIC_BASE = 0x0c000000;
export const PLIC_SIZE = 0x400000;
/** Interrupt sources 1..PLIC_NDEV (source 0 does not exist). */
export const PLIC_NDEV = 31;
const PRIORITY_BITS = 3;
const PRIORITY_MASK = (1 << PRIORITY_BITS) - 1;

const PRIORITY_BASE = 0x0;
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const CONTEXT_BASE = 0x200000;
const CONTEXT_THRESHOLD = 0x0;
const CONTEXT_CLAIM = 0x4;
const WORDS = Math.ceil((PLIC_NDEV + 1) / 32);

export class Plic implements MmioDevice {
  readonly name = 'plic';
  readonly base: number;
  readonly size = PLIC_SIZE;
  private readonly priority = new Uint8Array(PLIC_NDEV + 1);
  private readonly level = new Uint8Array(PLIC_NDEV + 1);
  private readonly pending = new Uint32Array(WORDS);
  private readonly claimed = new Uint32Array(WORDS);
  private readonly enable = new Uint32Array(WORDS);
  private threshold = 0;
  private eip = false;
  /** Requests forwarded to the target and claims taken, for the console. */
  claims = 0;

  /** setEip: the target's external-interrupt line (the hart's SEIP), called on every change. */
  constructor(private readonly setEip: (level: boolean) => void, base = PLIC_BASE) {
    this.base = base;
  }

  /** A device's interrupt line (1..PLIC_NDEV) goes high or low. */
  setLevel(source: number, high: boolean): void {
    if (!(Number.isInteger(source) && source >= 1 && source <= PLIC_NDEV)) throw new RangeError(`PLIC source ${source} outside 1..${PLIC_NDEV}`);
    this.level[source] = high ? 1 : 0;
    if (high) this.gateway(source);
    // A line that drops before the claim withdraws its request, as QEMU's PLIC
    // does: the driver is not sent to a device with nothing to say.
    else this.pending[source >>> 5] = (this.pending[source >>> 5]! & ~(1 << (source & 31))) >>> 0;
    this.update();
  }

  read(offset: number, width: 1 | 2 | 4): number {
    // The PLIC's registers are 32 bits wide; narrower accesses read the aligned word's bytes.
    const word = this.readWord(offset & ~3);
    const shift = (offset & 3) * 8;
    return width === 4 ? word : (word >>> shift) & (width === 1 ? 0xff : 0xffff);
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    // Only whole-word writes change a register, as on SiFive parts (narrow writes are ignored).
    if (width !== 4 || (offset & 3) !== 0) return;
    if (offset >= PRIORITY_BASE + 4 && offset < PRIORITY_BASE + 4 * (PLIC_NDEV + 1)) {
      this.priority[offset >>> 2] = value & PRIORITY_MASK;
    } else if (offset >= ENABLE_BASE && offset < ENABLE_BASE + 4 * WORDS) {
      const w = (offset - ENABLE_BASE) >>> 2;
      // Source 0 does not exist: its enable bit is hardwired to 0.
      this.enable[w] = (value & (w === 0 ? ~1 : ~0)) >>> 0;
    } else if (offset === CONTEXT_BASE + CONTEXT_THRESHOLD) {
      this.threshold = value & PRIORITY_MASK;
    } else if (offset === CONTEXT_BASE + CONTEXT_CLAIM) {
      this.complete(value >>> 0);
    }
    this.update();
  }

  dump(): string {
    const bits = (a: Uint32Array) => {
      const ids: number[] = [];
      for (let id = 1; id <= PLIC_NDEV; id++) if ((a[id >>> 5]! >>> (id & 31)) & 1) ids.push(id);
      return ids.length === 0 ? '-' : ids.join(',');
    };
    return `plic: eip ${this.eip ? 1 : 0} threshold ${this.threshold} enabled ${bits(this.enable)} pending ${bits(this.pending)} ` +
      `claimed ${bits(this.claimed)} claims ${this.claims}`;
  }

  private readWord(offset: number): number {
    if (offset >= PRIORITY_BASE && offset < PRIORITY_BASE + 4 * (PLIC_NDEV + 1)) return this.priority[offset >>> 2]!;
    if (offset >= PENDING_BASE && offset < PENDING_BASE + 4 * WORDS) return this.pending[(offset - PENDING_BASE) >>> 2]! | 0;
    if (offset >= ENABLE_BASE && offset < ENABLE_BASE + 4 * WORDS) return this.enable[(offset - ENABLE_BASE) >>> 2]! | 0;
    if (offset === CONTEXT_BASE + CONTEXT_THRESHOLD) return this.threshold;
    if (offset === CONTEXT_BASE + CONTEXT_CLAIM) return this.claim();
    return 0;
  }

  /** The gateway forwards a request for a high line unless one is pending or in service. */
  private gateway(id: number): void {
    const w = id >>> 5;
    const bit = 1 << (id & 31);
    if (this.level[id] === 0 || ((this.pending[w]! | this.claimed[w]!) & bit) !== 0) return;
    this.pending[w] = (this.pending[w]! | bit) >>> 0;
  }

  /** The enabled pending source of highest priority above the threshold (ties: lowest id), or 0. */
  private best(): number {
    let best = 0;
    let bestPrio = this.threshold;
    for (let id = 1; id <= PLIC_NDEV; id++) {
      const w = id >>> 5;
      const bit = 1 << (id & 31);
      if ((this.pending[w]! & this.enable[w]! & bit) === 0) continue;
      if (this.priority[id]! > bestPrio) {
        best = id;
        bestPrio = this.priority[id]!;
      }
    }
    return best;
  }

  /** Reading claim takes the best request (0 when there is none) and stops its gateway until complete. */
  private claim(): number {
    const id = this.best();
    if (id === 0) return 0;
    const w = id >>> 5;
    const bit = 1 << (id & 31);
    this.pending[w] = (this.pending[w]! & ~bit) >>> 0;
    this.claimed[w] = (this.claimed[w]! | bit) >>> 0;
    this.claims++;
    this.update();
    return id;
  }

  /** Completion of a source that is not enabled for the context is ignored (PLIC spec 1.0.0, "Interrupt Completion"). */
  private complete(id: number): void {
    if (id < 1 || id > PLIC_NDEV) return;
    const w = id >>> 5;
    const bit = 1 << (id & 31);
    if ((this.enable[w]! & bit) === 0 || (this.claimed[w]! & bit) === 0) return;
    this.claimed[w] = (this.claimed[w]! & ~bit) >>> 0;
    // A line still high asks again at once.
    this.gateway(id);
  }

  private update(): void {
    const eip = this.best() !== 0;
    if (eip === this.eip) return;
    this.eip = eip;
    this.setEip(eip);
  }
}

// A hart on flat physical memory, for bare-metal runs: RAM at ramBase, a SiFive
// CLINT at 0x02000000, MMIO devices, and physical watches (HTIF tohost).
//
// The frame buffer is exactly the RAM, so a host offset is pa - ramBase.
// Watched pages stay out of the store TLB: a store to one is answered with
// TRANSLATE_MMIO, and the bus performs it in RAM and then calls onStore. Loads
// from watched pages are ordinary cached RAM loads.

import { Hart, STOP_BUDGET, STOP_WFI, settleFields } from './hart.js';
import {
  ACCESS_FETCH, ACCESS_STORE, TRANSLATE_FAULT, TRANSLATE_MMIO,
  type MmioBus, type Translator,
} from './translator.js';
import {
  Sv32Walk, SV32_NO_MEMORY, accessFaultCause, sv32Translate, type Sv32Memory,
} from './sv32.js';
import { MIP_MTIP, MSTATUS_MXR, MSTATUS_SUM, PRIV_M } from './csr.js';
import { warmUpHart } from './warmup.js';
import { DeviceBus, type MmioDevice } from './bus.js';
import type { JitOptions } from './jit/jit.js';

export type { MmioDevice } from './bus.js';

export interface PhysWatch {
  pa: number;
  size: number;
  onStore(pa: number, width: number): void;
}

export interface BareMachineOptions {
  ramBase?: number;
  ramSize?: number;
  devices?: MmioDevice[];
  watches?: PhysWatch[];
  mtimeDivisor?: number;
  hartId?: number;
  /** Run the V8 warm-up of the interpreter first (default true; with `jit` a short one; see warmup.ts). */
  warmUp?: boolean;
  /** The hart's block compiler (src/hart/jit); absent: interpreter only. */
  jit?: JitOptions;
}

/** Physical addresses are non-negative doubles; callers may pass int32 patterns. */
function phys(pa: number): number {
  return pa < 0 ? pa + 4294967296 : pa;
}

export const CLINT_BASE = 0x02000000;
export const CLINT_SIZE = 0x10000;
const CLINT_MSIP = 0x0;
const CLINT_MTIMECMP = 0x4000;
const CLINT_MTIME = 0xbff8;

/** SiFive CLINT for one hart: msip, mtimecmp and mtime live in the hart. */
export class Clint implements MmioDevice {
  readonly name = 'clint';
  readonly base = CLINT_BASE;
  readonly size = CLINT_SIZE;
  hart: Hart | null = null;

  read(offset: number, width: 1 | 2 | 4): number {
    const word = this.readWord(offset & ~3);
    const shift = (offset & 3) * 8;
    return width === 4 ? word : (word >>> shift) & (width === 2 ? 0xffff : 0xff);
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    let v = value | 0;
    if (width !== 4) {
      const shift = (offset & 3) * 8;
      const mask = (width === 2 ? 0xffff : 0xff) << shift;
      v = (this.readWord(offset & ~3) & ~mask) | ((v << shift) & mask);
    }
    this.writeWord(offset & ~3, v);
  }

  private readWord(offset: number): number {
    const h = this.hart!;
    switch (offset) {
      case CLINT_MSIP: return (h.mip >>> 3) & 1;
      case CLINT_MTIMECMP: return h.mtimecmpLo;
      case CLINT_MTIMECMP + 4: return h.mtimecmpHi;
      case CLINT_MTIME: return h.getMtime() | 0;
      case CLINT_MTIME + 4: return Math.floor(h.getMtime() / 4294967296) | 0;
      default: return 0;
    }
  }

  private writeWord(offset: number, v: number): void {
    const h = this.hart!;
    switch (offset) {
      case CLINT_MSIP: h.setInterruptPending(3, (v & 1) !== 0); break;
      case CLINT_MTIMECMP: h.setMtimecmp(v, h.mtimecmpHi); break;
      case CLINT_MTIMECMP + 4: h.setMtimecmp(h.mtimecmpLo, v); break;
      case CLINT_MTIME: {
        const t = h.getMtime();
        h.setMtime(Math.floor(t / 4294967296) * 4294967296 + (v >>> 0));
        break;
      }
      case CLINT_MTIME + 4: h.setMtime((v >>> 0) * 4294967296 + (h.getMtime() % 4294967296)); break;
      default: break;
    }
    h.updateTimer();
  }
}

/**
 * Warm-up passes (warmup.ts) a new machine runs first, per engine. A few
 * passes give V8 the feedback of every path of the run loop, so that it
 * optimizes it once instead of 3-4 times; more only move the loop's
 * unoptimized start from the guest into the warm-up. With the block compiler
 * the interpreter runs only cold code, and the whole warm-up (8,000 passes,
 * ~2M instructions) cost CoreMark ~60 ms, so it runs five (node --trace-opt,
 * CoreMark --jit: Hart.interp compiled 2 times instead of 3-4). On the
 * interpreter, 8,000 passes cost every short program ~50 ms at start-up (a
 * riscv-tests program: 0.15 s as a process, 0.11 s with 50 passes) and
 * bought nothing on long ones (CoreMark, Dhrystone, bench-mem,
 * coremark-lite level within 10 ms, median of 5-9 interleaved runs).
 */
const INTERP_WARM_UP = 50;
const JIT_WARM_UP = 5;

export class BareMachine implements Translator, MmioBus, Sv32Memory {
  readonly hart: Hart;
  readonly ram: Uint8Array;
  readonly ramBase: number;
  readonly ramSize: number;
  readonly clint = new Clint();
  /** The CLINT and the caller's devices, decoded in one place. */
  readonly bus: DeviceBus;
  readonly watches: PhysWatch[];
  lastPa = 0;
  lastSuperpage = false;
  private readonly ram32: Int32Array;
  private readonly walk = new Sv32Walk();
  /** Pages (pa >>> 12) that hold a watch. */
  private readonly watchedPages = new Set<number>();

  constructor(opts: BareMachineOptions = {}) {
    if (opts.warmUp !== false) warmUpHart(opts.jit === undefined ? INTERP_WARM_UP : JIT_WARM_UP);
    this.ramBase = phys(opts.ramBase ?? 0x80000000);
    this.ramSize = opts.ramSize ?? 128 << 20;
    if ((this.ramBase % 4096) !== 0 || (this.ramSize % 4096) !== 0) throw new Error('BareMachine: RAM must be page-aligned');
    const buffer = new ArrayBuffer(this.ramSize);
    this.ram = new Uint8Array(buffer);
    this.ram32 = new Int32Array(buffer);
    this.bus = new DeviceBus([this.clint, ...(opts.devices ?? [])]);
    this.watches = opts.watches ?? [];
    for (const w of this.watches) {
      w.pa = phys(w.pa);
      for (let p = Math.floor(w.pa / 4096); p * 4096 < w.pa + w.size; p++) this.watchedPages.add(p);
    }
    const hartOpts: ConstructorParameters<typeof Hart>[0] = { memory: buffer, translator: this, bus: this };
    if (opts.mtimeDivisor !== undefined) hartOpts.mtimeDivisor = opts.mtimeDivisor;
    if (opts.hartId !== undefined) hartOpts.hartId = opts.hartId;
    if (opts.jit !== undefined) hartOpts.jit = opts.jit;
    this.hart = new Hart(hartOpts);
    this.clint.hart = this.hart;
    this.hart.pc = this.ramBase | 0;
    settleFields(this);
    settleFields(this.walk);
  }

  /**
   * Runs up to maxInsns instructions. A wfi with a timer armed and enabled skips
   * time to the deadline (an idle hart costs nothing); a wfi nothing can wake
   * returns STOP_WFI.
   */
  run(maxInsns: number): number {
    const hart = this.hart;
    let left = maxInsns;
    for (;;) {
      const code = hart.run(left);
      left -= hart.lastRunInsns;
      if (code === STOP_BUDGET && left > 0) continue; // hart.run caps one call at MAX_BUDGET
      if (code !== STOP_WFI) return code;
      // Nothing can wake it: no timer enabled, or one so far away that time would lose its precision.
      if ((hart.mie & MIP_MTIP) === 0 || hart.ticks + hart.ticksToTimer() > 2 ** 52) return STOP_WFI;
      hart.skipToTimer();
      if (left <= 0) return STOP_BUDGET;
    }
  }

  dump(): string {
    const devs = this.bus.dump();
    const watches = this.watches.map((w) => `0x${w.pa.toString(16)}+${w.size}`).join(' ');
    return `ram 0x${this.ramBase.toString(16)}+0x${this.ramSize.toString(16)} devices: ${devs} watches: ${watches || '-'}\n`
      + this.hart.dump();
  }

  // ------------------------------------------------------------ Translator

  translate(hart: Hart, gva: number, access: number): number {
    const priv = hart.effectivePriv(access);
    let pa: number;
    this.lastSuperpage = false;
    if (priv === PRIV_M || (hart.satp >>> 31) === 0) {
      pa = gva >>> 0;
    } else {
      const w = this.walk;
      const s = hart.mstatus;
      if (!sv32Translate(w, this, hart.satp, gva, access, priv, (s & MSTATUS_SUM) !== 0, (s & MSTATUS_MXR) !== 0)) {
        hart.raiseFault(w.cause, gva);
        return TRANSLATE_FAULT;
      }
      pa = w.pa;
      this.lastSuperpage = w.level === 1;
    }
    this.lastPa = pa;
    const off = pa - this.ramBase;
    if (off >= 0 && off < this.ramSize) {
      if (access === ACCESS_STORE && this.watchedPages.has(Math.floor(pa / 4096))) return TRANSLATE_MMIO;
      return off - (off % 4096);
    }
    if (access !== ACCESS_FETCH && this.bus.find(pa) !== null) return TRANSLATE_MMIO;
    hart.raiseFault(accessFaultCause(access), gva);
    return TRANSLATE_FAULT;
  }

  // ------------------------------------------------------------ Sv32Memory

  readPte(pa: number): number {
    const off = pa - this.ramBase;
    if (off < 0 || off >= this.ramSize) return SV32_NO_MEMORY;
    return this.ram32[off >>> 2]!;
  }

  writePte(pa: number, pte: number): void {
    this.ram32[(pa - this.ramBase) >>> 2] = pte;
    this.hart.invalidateCode(pa - this.ramBase, 4);
  }

  // ------------------------------------------------------------ MmioBus

  read(pa: number, width: 1 | 2 | 4): number {
    const off = pa - this.ramBase;
    if (off >= 0 && off < this.ramSize) return this.readRam(off, width);
    return this.bus.read(pa, width);
  }

  write(pa: number, width: 1 | 2 | 4, value: number): void {
    const off = pa - this.ramBase;
    if (off >= 0 && off < this.ramSize) {
      this.writeRam(off, width, value);
      for (const w of this.watches) {
        if (pa < w.pa + w.size && pa + width > w.pa) w.onStore(pa, width);
      }
      return;
    }
    this.bus.write(pa, width, value);
  }

  /** The hart reads and clears it after every MMIO access: the bus's own flag. */
  get fault(): boolean {
    return this.bus.fault;
  }

  set fault(v: boolean) {
    this.bus.fault = v;
  }

  // ------------------------------------------------------------ physical helpers

  private readRam(off: number, width: number): number {
    const r = this.ram;
    if (width === 1) return r[off]!;
    if (width === 2) return r[off]! | (r[off + 1]! << 8);
    return r[off]! | (r[off + 1]! << 8) | (r[off + 2]! << 16) | (r[off + 3]! << 24);
  }

  /** Every write to RAM that is not a hart store through its TLB: MMIO-routed stores, the host. */
  private writeRam(off: number, width: number, v: number): void {
    this.hart.invalidateCode(off, width);
    const r = this.ram;
    r[off] = v;
    if (width >= 2) r[off + 1] = v >>> 8;
    if (width === 4) {
      r[off + 2] = v >>> 16;
      r[off + 3] = v >>> 24;
    }
  }

  private ramOffset(pa: number, width: number): number {
    const off = phys(pa) - this.ramBase;
    if (off < 0 || off + width > this.ramSize) throw new RangeError(`BareMachine: pa 0x${pa.toString(16)} is not RAM`);
    return off;
  }

  readPhys8(pa: number): number { return this.readRam(this.ramOffset(pa, 1), 1); }
  readPhys16(pa: number): number { return this.readRam(this.ramOffset(pa, 2), 2); }
  /** int32 pattern. */
  readPhys32(pa: number): number { return this.readRam(this.ramOffset(pa, 4), 4); }
  writePhys8(pa: number, v: number): void { this.writeRam(this.ramOffset(pa, 1), 1, v); }
  writePhys16(pa: number, v: number): void { this.writeRam(this.ramOffset(pa, 2), 2, v); }
  writePhys32(pa: number, v: number): void { this.writeRam(this.ramOffset(pa, 4), 4, v); }

  /** Copy bytes into RAM (program loading). */
  loadPhys(pa: number, bytes: Uint8Array): void {
    const off = this.ramOffset(pa, bytes.length);
    this.ram.set(bytes, off);
    this.hart.invalidateCode(off, bytes.length);
  }

  /** Write instruction words at pa. */
  loadWords(pa: number, words: ArrayLike<number>): void {
    for (let i = 0; i < words.length; i++) this.writePhys32(pa + 4 * i, words[i]!);
  }
}

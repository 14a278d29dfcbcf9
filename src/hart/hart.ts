// RV32IMA + Zicsr + Zifencei hart with M/S/U and Sv32 (unprivileged ISA 20191213,
// privileged spec 20211203). Structure after TinyEMU's riscv_cpu.c: the state of
// the hot loop lives in locals of run(), one switch on the opcode, a soft TLB per
// access kind, and everything rare (CSRs, traps, TLB misses, MMIO) out of line.
//
// Invariants the loop relies on:
//  - pc is an int32 pattern and, once fetched from, 4-aligned (no C extension:
//    every jump checks its target, xepc/xtvec keep bits 1:0 clear).
//  - A TLB tag is the gva of a cached 4 KiB page (low 12 bits zero) or -1. A hit
//    is `tag[idx] === (gva & (0xfffff000 | (width - 1)))`: one compare that also
//    sends misaligned accesses to the slow path, since -1 has bits 2..11 set and
//    no masked gva does. The slow path performs them (loadMisaligned), so the
//    aligned case pays nothing for them.
//  - delta = hostPage - gvaPage as an int32; host = (gva + delta) wraps to the
//    host offset because the frame buffer is smaller than 2 GiB.
//  - The TLBs are flushed whenever the translation context changes: satp writes,
//    privilege changes, mstatus MPRV/MPP/SUM/MXR changes, sfence.vma. They are not
//    tagged by ASID.
//  - Interrupts, the budget, stop requests and the timer are looked at in the outer
//    loop only. The inner loop runs until n reaches `limit`, the smaller of the
//    budget and the instruction count at which mtime reaches mtimecmp; anything
//    that can change what the outer loop decides (CSR ops, xRET, traps, MMIO, a
//    callback that flushed the TLB or requested a stop) leaves the inner loop.
//  - The inner loop makes no calls but mulh/mulhsu/mulhu (V8 does not inline
//    them, and writing them out in the loop measured slower): a slow path sets
//    `act` (with insn/addr/value) and breaks out, and the outer loop calls out
//    of line. Every value the loop
//    carries stays int32, call results included (`| 0`), or V8 widens its phis
//    to doubles and every instruction pays.
//  - Every instruction is restartable up to its first memory access: nothing is
//    written before the access translates, an AMO translates for store first, and
//    a misaligned access that crosses a page translates both pages first.

import {
  ACCESS_FETCH, ACCESS_LOAD, ACCESS_STORE,
  TRANSLATE_EXIT, TRANSLATE_FAULT, TRANSLATE_MMIO, TRANSLATE_NOCACHE,
  type MmioBus, type Translator,
} from './translator.js';
import {
  CAUSE_BREAKPOINT, CAUSE_FETCH_ACCESS, CAUSE_ILLEGAL_INSTRUCTION, CAUSE_LOAD_ACCESS,
  CAUSE_MISALIGNED_FETCH, CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE, CAUSE_STORE_ACCESS,
  CAUSE_USER_ECALL,
  CSR_CYCLE, CSR_CYCLEH, CSR_INSTRET, CSR_INSTRETH, CSR_MARCHID, CSR_MCAUSE, CSR_MCONFIGPTR,
  CSR_MCOUNTEREN, CSR_MCYCLE, CSR_MCYCLEH, CSR_MEDELEG, CSR_MENVCFG, CSR_MENVCFGH, CSR_MEPC,
  CSR_MHARTID, CSR_MIDELEG, CSR_MIE, CSR_MIMPID, CSR_MINSTRET, CSR_MINSTRETH, CSR_MIP, CSR_MISA,
  CSR_MSCRATCH, CSR_MSTATUS, CSR_MSTATUSH, CSR_MTVAL, CSR_MTVEC, CSR_MVENDORID, CSR_SATP,
  CSR_SCAUSE, CSR_SCOUNTEREN, CSR_SENVCFG, CSR_SEPC, CSR_SIE, CSR_SIP, CSR_SSCRATCH, CSR_SSTATUS,
  CSR_STVAL, CSR_STVEC, CSR_TDATA1, CSR_TDATA2, CSR_TDATA3, CSR_TIME, CSR_TIMEH, CSR_TSELECT,
  IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI,
  MEDELEG_MASK, MIDELEG_MASK, MIE_MASK, MIP_MTIP, MIP_WMASK, MISA_VALUE,
  MSTATUS_MIE, MSTATUS_MPIE, MSTATUS_MPP, MSTATUS_MPRV, MSTATUS_MXR, MSTATUS_SIE,
  MSTATUS_SPIE, MSTATUS_SPP, MSTATUS_SUM, MSTATUS_TSR, MSTATUS_TVM, MSTATUS_TW, MSTATUS_WMASK,
  PRIV_M, PRIV_S, SIP_WMASK, SSTATUS_MASK,
} from './csr.js';
import { Jit, type JitOptions } from './jit/jit.js';

/** run() used up its budget. */
export const STOP_BUDGET = 1;
/** The translator answered TRANSLATE_EXIT; the instruction at pc has not run. */
export const STOP_EXIT = 2;
/** requestStop() was called; the instruction during which it was called completed. */
export const STOP_REQUEST = 3;
/** wfi with no interrupt pending-and-enabled; pc is past the wfi. */
export const STOP_WFI = 4;
/**
 * trapToHost: a trap bound for M-mode was taken by the host instead (the VMM
 * plays the M-mode firmware, as KVM does for a RISC-V guest). hostTrapCause and
 * hostTrapTval say what; pc is the trapping instruction and no CSR changed.
 */
export const STOP_HOST_TRAP = 5;

/** run() executes at most this many instructions per call (its counters stay int32). */
export const MAX_BUDGET = 0x3fffffff;

export const TLB_SIZE = 512;
const TLB_MASK = TLB_SIZE - 1;

// Outcome of an out-of-line memory access, in `slowStatus`.
const SLOW_OK = 0;
const SLOW_FAULT = 1; // faultCause/faultTval hold the exception
const SLOW_EXIT = 2; // stopCode = STOP_EXIT, nothing done
const SLOW_RECHECK = 3; // done, but leave the inner loop (MMIO, flush, stop request)

// Work the inner loop of run() hands to the outer one.
const ACT_BOUNDARY = 0;
const ACT_EXCEPTION = 1;
const ACT_FETCH = 2;
const ACT_LOAD = 3;
const ACT_STORE = 4;
const ACT_AMO = 5;
const ACT_SYSTEM = 6;

// Result of translateSlow besides a host address.
const XLATE_FAULT = -1;
const XLATE_MMIO = -2;
const XLATE_EXIT = -3;

const TWO32 = 4294967296;

export type TraceHook = (hart: Hart, pc: number) => void;

export interface HartOptions {
  /** The frame buffer every host offset from the translator indexes. */
  memory: ArrayBuffer;
  translator: Translator;
  bus: MmioBus;
  hartId?: number;
  /** Instructions per mtime tick (default 1). */
  mtimeDivisor?: number;
  /** Traps that would enter M-mode stop run() with STOP_HOST_TRAP instead. */
  trapToHost?: boolean;
  /** Run hot code through the block compiler (src/hart/jit); absent: interpreter only. */
  jit?: JitOptions;
}

/** Unsigned high word of the 64-bit product, in 16-bit limbs so every partial is exact. */
export function mulhu(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

export function mulh(a: number, b: number): number {
  return (mulhu(a, b) - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
}

export function mulhsu(a: number, b: number): number {
  return (mulhu(a, b) - (a < 0 ? b : 0)) | 0;
}

export class Hart {
  readonly regs = new Int32Array(32);
  pc = 0;
  priv = PRIV_M;

  // Machine and supervisor CSRs, as int32 patterns.
  mstatus = 0;
  readonly mhartid: number;
  medeleg = 0;
  mideleg = 0;
  mie = 0;
  /** Pending interrupts; MTIP follows mtime >= mtimecmp (see updateTimer). */
  mip = 0;
  mtvec = 0;
  stvec = 0;
  mepc = 0;
  sepc = 0;
  mcause = 0;
  scause = 0;
  mtval = 0;
  stval = 0;
  mscratch = 0;
  sscratch = 0;
  satp = 0;
  mcounteren = 0;
  scounteren = 0;
  menvcfg = 0;
  menvcfgh = 0;
  senvcfg = 0;
  readonly pmpcfg = new Int32Array(4);
  readonly pmpaddr = new Int32Array(16);

  /**
   * Instructions retired (exact up to 2^53), brought up to date at every exit
   * from run(). minstret = (instretHi * 2^32 + instret) mod 2^64: a minstreth
   * write lands in instretHi, so instret stays an exact count even when the
   * guest puts a large value in the high half.
   */
  instret = 0;
  /** Added to the high half of minstret (int32). */
  instretHi = 0;
  /** mcycle = (cycleHi * 2^32 + cycle) mod 2^64: one cycle per instruction begun (traps included). */
  cycle = 0;
  cycleHi = 0;
  /** Monotonic instruction clock that drives mtime; never written by the guest. */
  ticks = 0;
  readonly mtimeDivisor: number;
  /** mtime = mtimeAdj + floor(ticks / mtimeDivisor). */
  mtimeAdj = 0;
  mtimecmpLo = -1;
  mtimecmpHi = -1;

  /** LR/SC reservation (virtual address). Other harts' stores are not snooped: whoever runs several harts clears resValid when they interleave (Vcpu.run does). */
  resValid = false;
  resAddr = 0;

  translator: Translator;
  bus: MmioBus;
  readonly mem8: Uint8Array;
  readonly mem16: Uint16Array;
  readonly mem32: Int32Array;

  readonly fetchTag = new Int32Array(TLB_SIZE).fill(-1);
  readonly fetchDelta = new Int32Array(TLB_SIZE);
  readonly loadTag = new Int32Array(TLB_SIZE).fill(-1);
  readonly loadDelta = new Int32Array(TLB_SIZE);
  readonly storeTag = new Int32Array(TLB_SIZE).fill(-1);
  readonly storeDelta = new Int32Array(TLB_SIZE);
  /** 1 where the entry is a 4 KiB piece of a megapage (fetch, load, store in thirds). */
  private readonly tlbSuper = new Uint8Array(3 * TLB_SIZE);
  private superLive = false;

  /** Instructions the last run() began (its budget use; trapping ones included). */
  lastRunInsns = 0;

  /** Debug/trace: called by step() before the instruction. run() never calls it. */
  traceHook: TraceHook | null = null;

  /** Exception the last slow path (or a translator via raiseFault) wants taken. */
  faultCause = 0;
  faultTval = 0;
  private slowStatus = SLOW_OK;
  private stopCode = 0;
  readonly trapToHost: boolean;
  /** The trap that made run() return STOP_HOST_TRAP (interrupts have bit 31 set). */
  hostTrapCause = 0;
  hostTrapTval = 0;
  private stopRequested = false;
  /** A callback changed something the outer loop must look at. */
  private recheck = false;
  /** Instructions already added to the counters during the current run(). */
  private acc = 0;
  /** 1 while a CSR instruction reads counters: they show the value before it retires. */
  private counterBias = 0;
  private csrMissing = false;
  /** The block compiler, when the hart was built with `jit`. */
  readonly jit: Jit | null;

  constructor(opts: HartOptions) {
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('hart: host must be little-endian');
    if (opts.memory.byteLength >= 0x80000000) throw new Error('hart: frame buffer must be below 2 GiB');
    this.mem8 = new Uint8Array(opts.memory);
    this.mem16 = new Uint16Array(opts.memory, 0, opts.memory.byteLength >>> 1);
    this.mem32 = new Int32Array(opts.memory, 0, opts.memory.byteLength >>> 2);
    this.translator = opts.translator;
    this.bus = opts.bus;
    this.mhartid = opts.hartId ?? 0;
    this.mtimeDivisor = opts.mtimeDivisor ?? 1;
    this.trapToHost = opts.trapToHost ?? false;
    this.jit = opts.jit !== undefined ? new Jit(this, opts.jit) : null;
    settleFields(this);
    this.jit?.primeFeedback(); // once the hart has its final shape
  }

  // ---------------------------------------------------------------- public API

  requestStop(): void {
    this.stopRequested = true;
    this.recheck = true;
  }

  /** For translators: the trap the hart takes when translate returns TRANSLATE_FAULT. */
  raiseFault(cause: number, tval: number): void {
    this.faultCause = cause;
    this.faultTval = tval | 0;
  }

  /**
   * Takes the synchronous exception `cause` for the instruction at pc, as if
   * it had raised it: a shadow MMU that found a guest page fault on its slow
   * path injects it here, through the same delegation and trap entry.
   */
  takeTrap(cause: number, tval: number): void {
    this.pc = this.trap(this.pc, cause, false, tval | 0);
  }

  /** External interrupt sources (CLINT MSIP, a PLIC's MEIP/SEIP, an SBI's STIP). */
  setInterruptPending(bit: number, on: boolean): void {
    if (on) this.mip |= 1 << bit;
    else this.mip &= ~(1 << bit);
    this.recheck = true;
  }

  /** Host-side privilege change (e.g. a VMM entering its guest in S-mode); flushes the TLB if it changes. */
  setPrivilege(priv: number): void {
    this.setPriv(priv);
  }

  /** Privilege that loads and stores are checked and translated at (MPRV). */
  effectivePriv(access: number): number {
    if (access !== ACCESS_FETCH && (this.mstatus & MSTATUS_MPRV) !== 0) return (this.mstatus >>> 11) & 3;
    return this.priv;
  }

  flushTlb(): void {
    this.fetchTag.fill(-1);
    this.loadTag.fill(-1);
    this.storeTag.fill(-1);
    if (this.superLive) {
      this.tlbSuper.fill(0);
      this.superLive = false;
    }
    this.recheck = true;
  }

  /** Drop every cached translation of gva's page, in all access kinds. */
  flushTlbPage(gva: number): void {
    const page = gva & 0xfffff000;
    const idx = (gva >>> 12) & TLB_MASK;
    if (this.fetchTag[idx] === page) this.fetchTag[idx] = -1;
    if (this.loadTag[idx] === page) this.loadTag[idx] = -1;
    if (this.storeTag[idx] === page) this.storeTag[idx] = -1;
    if (this.superLive) {
      // A megapage leaf backs 1024 TLB pages; sfence.vma of one address drops them all.
      const mega = gva >>> 22;
      const sup = this.tlbSuper;
      for (let i = 0; i < TLB_SIZE; i++) {
        if (sup[i] && (this.fetchTag[i] >>> 22) === mega) this.fetchTag[i] = -1;
        if (sup[TLB_SIZE + i] && (this.loadTag[i] >>> 22) === mega) this.loadTag[i] = -1;
        if (sup[2 * TLB_SIZE + i] && (this.storeTag[i] >>> 22) === mega) this.storeTag[i] = -1;
      }
    }
    this.recheck = true;
  }

  /**
   * Drop every soft TLB entry to the host page at hostPage (aging cleared the
   * accessed bit those entries would not set again). Compiled code stays: the
   * frame's bytes did not change; dropCodeHostPage is for a frame that may.
   */
  flushTlbHostPage(hostPage: number): void {
    const tags = [this.fetchTag, this.loadTag, this.storeTag];
    const deltas = [this.fetchDelta, this.loadDelta, this.storeDelta];
    for (let k = 0; k < 3; k++) {
      const tag = tags[k]!, delta = deltas[k]!;
      for (let i = 0; i < TLB_SIZE; i++) {
        if (tag[i] !== -1 && ((tag[i]! + delta[i]!) | 0) === hostPage) tag[i] = -1;
      }
    }
    this.recheck = true;
  }

  /**
   * Someone other than this hart wrote guest memory at host bytes
   * [hostAddr, hostAddr + bytes) (a device, the host loading a program): drop
   * the compiled code of those pages. The hart's own stores need no call.
   */
  invalidateCode(hostAddr: number, bytes: number): void {
    const jit = this.jit;
    if (jit === null || bytes <= 0) return;
    for (let p = hostAddr - (hostAddr % 4096); p < hostAddr + bytes; p += 4096) jit.invalidatePage(p);
  }

  /**
   * A secondary MMU dropped a mapping of the host page at hostPage (a zapped
   * spte): the frame may be freed and reused with other bytes, so its compiled
   * code goes, as the soft TLB entries filled from that mapping did. Not a
   * self-modifying-code event: it does not count towards interpreting the page
   * for good.
   */
  dropCodeHostPage(hostPage: number): void {
    this.jit?.invalidatePage(hostPage, false);
  }

  /** Drop the store TLB entries that map the host page at hostPage (it now holds compiled code). */
  dropStoreTlbHostPage(hostPage: number): void {
    const tag = this.storeTag, delta = this.storeDelta;
    for (let i = 0; i < TLB_SIZE; i++) {
      if (tag[i] !== -1 && ((tag[i]! + delta[i]!) | 0) === hostPage) tag[i] = -1;
    }
  }

  getMtime(): number {
    return this.mtimeAdj + Math.floor(this.ticks / this.mtimeDivisor);
  }

  setMtime(value: number): void {
    this.mtimeAdj = value - Math.floor(this.ticks / this.mtimeDivisor);
    this.recheck = true;
  }

  getMtimecmp(): number {
    return (this.mtimecmpHi >>> 0) * TWO32 + (this.mtimecmpLo >>> 0);
  }

  setMtimecmp(lo: number, hi: number): void {
    this.mtimecmpLo = lo | 0;
    this.mtimecmpHi = hi | 0;
    this.recheck = true;
  }

  /** MTIP follows the comparison; call after moving time or mtimecmp. */
  updateTimer(): void {
    if (this.getMtime() >= this.getMtimecmp()) this.mip |= MIP_MTIP;
    else this.mip &= ~MIP_MTIP;
  }

  /** Instructions until mtime reaches mtimecmp (at least 1). */
  ticksToTimer(): number {
    const need = (this.getMtimecmp() - this.mtimeAdj) * this.mtimeDivisor - this.ticks;
    return need < 1 ? 1 : Math.ceil(need);
  }

  /** For an idle loop after STOP_WFI: jump time to the timer deadline. */
  skipToTimer(): void {
    this.updateTimer();
    if ((this.mip & MIP_MTIP) === 0) this.ticks += this.ticksToTimer();
    this.updateTimer();
  }

  /** Executes exactly one instruction (after taking a pending interrupt), calling traceHook first. */
  step(): number {
    if (this.traceHook !== null) this.traceHook(this, this.pc);
    return this.run(1);
  }

  /**
   * Executes up to `budget` instructions (capped at MAX_BUDGET; a trapping
   * instruction counts, an interrupt entry does not) and returns a STOP_* code.
   * lastRunInsns tells how many it began. With the block compiler the results
   * are the interpreter's exactly (see jit/jit.ts).
   */
  run(budget: number): number {
    return this.jit !== null ? this.jit.run(budget) : this.interp(budget);
  }

  /** Host-side CSR read (tests, debug console): no privilege checks. Throws on an unknown CSR. */
  readCsr(num: number): number {
    this.csrMissing = false;
    const v = this.csrRead(num);
    if (this.csrMissing) throw new Error(`hart: no CSR 0x${num.toString(16)}`);
    return v;
  }

  /** Host-side CSR write, with the same WARL masking the guest sees. Throws on an unknown CSR. */
  writeCsr(num: number, value: number): void {
    this.csrMissing = false;
    this.csrWrite(num, value | 0);
    if (this.csrMissing) throw new Error(`hart: no writable CSR 0x${num.toString(16)}`);
  }

  dump(): string {
    const lines = [`pc=${hex(this.pc)} priv=${'US?M'[this.priv]} instret=${this.instret} mtime=${this.getMtime()}`];
    for (let i = 0; i < 32; i += 4) {
      lines.push([0, 1, 2, 3].map((j) => `x${i + j}=${hex(this.regs[i + j]!)}`).join(' '));
    }
    lines.push(`mstatus=${hex(this.mstatus)} mie=${hex(this.mie)} mip=${hex(this.mip)} satp=${hex(this.satp)}`);
    lines.push(`mepc=${hex(this.mepc)} mcause=${hex(this.mcause)} mtval=${hex(this.mtval)} mtvec=${hex(this.mtvec)}`);
    lines.push(`sepc=${hex(this.sepc)} scause=${hex(this.scause)} stval=${hex(this.stval)} stvec=${hex(this.stvec)}`);
    if (this.jit !== null) lines.push(this.jit.dump());
    return lines.join('\n');
  }

  // ---------------------------------------------------------------- the loop

  /** The interpreter: run() without the block compiler (which calls it for everything it does not compile). */
  interp(budget: number): number {
    const x = this.regs;
    const mem8 = this.mem8, mem16 = this.mem16, mem32 = this.mem32;
    const ftag = this.fetchTag, fdel = this.fetchDelta;
    const ltag = this.loadTag, ldel = this.loadDelta;
    const stag = this.storeTag, sdel = this.storeDelta;
    const tlbMask = TLB_MASK; // a local: module bindings are reloaded, locals are constants
    const jitOn = this.jit !== null;
    // Every value the loop carries stays an int32 (| 0 on call results too), or
    // V8 widens the loop's phis to doubles and every instruction pays for it.
    // A fresh const, not the reassigned parameter: that one stayed tagged, made
    // `limit` a tagged phi, and the inner loop checked it for a Smi every instruction.
    const cap = (budget > MAX_BUDGET ? MAX_BUDGET : budget) | 0;
    let pc = this.pc | 0;
    let n = 0;
    let limit = 0;
    // Current fetch page: 1 never equals a masked pc, so it forces a lookup.
    let fetchPage = 1;
    let fetchDelta = 0;
    // What the inner loop left for the outer one, with its operands. The inner
    // loop makes no slow-path calls, so V8 can keep its state in registers.
    let act = ACT_BOUNDARY;
    let insn = 0;
    let addr = 0;
    let value = 0;
    this.acc = 0;

    for (;;) {
      let boundary = true;
      switch (act) {
        case 0: // ACT_BOUNDARY
          break;

        case 1: // ACT_EXCEPTION: faultCause/faultTval set
          pc = this.exception(pc, n) | 0;
          break;

        case 2: { // ACT_FETCH
          const h = this.fetchSlow(pc);
          if (h >= 0) {
            fetchPage = pc & 0xfffff000;
            fetchDelta = fdel[(pc >>> 12) & tlbMask]!;
            // A callback inside translate that wants the outer loop gets it after this instruction.
            if (this.recheck) limit = n + 1;
            boundary = false;
          } else if (h === XLATE_FAULT) {
            n++; // a fetch fault uses budget, or a bad mtvec would loop forever for free
            pc = this.exception(pc, n) | 0;
          }
          break;
        }

        case 3: { // ACT_LOAD
          const v = this.loadSlow(addr, (insn >>> 12) & 7, n, insn);
          const st = this.slowStatus;
          this.slowStatus = SLOW_OK;
          if (st === SLOW_FAULT) pc = this.exception(pc, n) | 0;
          else if (st === SLOW_EXIT) n--;
          else {
            x[(insn >>> 7) & 31] = v;
            pc = (pc + 4) | 0;
            boundary = st === SLOW_RECHECK;
          }
          break;
        }

        case 4: { // ACT_STORE
          this.storeSlow(addr, (insn >>> 12) & 7, value, n, insn);
          const st = this.slowStatus;
          this.slowStatus = SLOW_OK;
          if (st === SLOW_FAULT) pc = this.exception(pc, n) | 0;
          else if (st === SLOW_EXIT) n--;
          else {
            pc = (pc + 4) | 0;
            boundary = st === SLOW_RECHECK;
          }
          break;
        }

        case 5: { // ACT_AMO
          this.amo(insn, n);
          const st = this.slowStatus;
          this.slowStatus = SLOW_OK;
          if (st === SLOW_FAULT) pc = this.exception(pc, n) | 0;
          else if (st === SLOW_EXIT) n--;
          else {
            pc = (pc + 4) | 0;
            boundary = st === SLOW_RECHECK;
          }
          break;
        }

        default: // ACT_SYSTEM
          this.account(n);
          pc = this.system(insn, pc) | 0;
          break;
      }

      if (boundary) {
        // After traps, CSR ops, xRET, MMIO, flushes, stop requests, and when n reaches limit.
        x[0] = 0; // slow paths write rd unconditionally; x0 must read 0 to whoever looks now
        this.account(n);
        fetchPage = 1;
        // One exit for every stop code, so that its stores share one feedback site.
        let stop = 0;
        // stopCode is a double field (settleFields): | 0 compares it as an int, so
        // the loop does not keep a 0.0 in a register, reloaded every instruction.
        if ((this.stopCode | 0) !== 0) {
          stop = this.stopCode | 0;
          this.stopCode = 0;
        } else if (this.stopRequested) {
          this.stopRequested = false;
          stop = STOP_REQUEST;
        } else if (n >= cap) {
          stop = STOP_BUDGET;
        }
        if (stop !== 0) {
          this.pc = pc;
          this.lastRunInsns = n;
          return stop;
        }
        this.updateTimer();
        const irq = this.pendingInterrupt();
        if (irq >= 0) pc = this.trap(pc, irq, true, 0) | 0;
        this.recheck = false;
        limit = cap;
        if ((this.mip & MIP_MTIP) === 0) {
          const d = this.ticksToTimer();
          if (n + d < limit) limit = (n + d) | 0;
        }
        // An interrupt the host took (trapToHost): run no instruction, return at the next boundary.
        if ((this.stopCode | 0) !== 0) limit = n;
      }
      act = ACT_BOUNDARY;

      inner: while (n < limit) {
        x[0] = 0;
        if ((pc & 0xfffff003) !== fetchPage) {
          const idx = (pc >>> 12) & tlbMask;
          if (ftag[idx] !== (pc & 0xfffff003)) {
            act = ACT_FETCH;
            break;
          }
          fetchPage = pc & 0xfffff000;
          fetchDelta = fdel[idx]!;
        }
        insn = mem32[(pc + fetchDelta) >> 2]!;
        n = (n + 1) | 0; // n < limit <= MAX_BUDGET: no overflow check needed
        const rd = (insn >>> 7) & 31;
        const rs1 = (insn >>> 15) & 31;

        // Keyed by opcode bits 6:2 (the major opcode in parentheses): dense keys
        // make V8 emit a jump table. Encodings whose bits 1:0 are not 11
        // (compressed, unsupported) land on keys >= 32: default.
        switch (((insn >>> 2) & 0x1f) | (((insn & 3) ^ 3) << 5)) {
          case 0x04: { // OP-IMM (0x13)
            const a = x[rs1]!;
            const imm = insn >> 20;
            switch ((insn >>> 12) & 7) {
              case 0: x[rd] = (a + imm) | 0; break; // ADDI
              case 7: x[rd] = a & imm; break; // ANDI
              case 1: // SLLI
                if ((insn >>> 25) !== 0) {
                  this.faultCause = CAUSE_ILLEGAL_INSTRUCTION;
                  this.faultTval = insn;
                  act = ACT_EXCEPTION;
                  break inner;
                }
                x[rd] = a << imm;
                break;
              case 5: // SRLI / SRAI
                if ((insn >>> 25) === 0) x[rd] = (a >>> imm) | 0; // SRLI
                else if ((insn >>> 25) === 0x20) x[rd] = a >> imm; // SRAI
                else {
                  this.faultCause = CAUSE_ILLEGAL_INSTRUCTION;
                  this.faultTval = insn;
                  act = ACT_EXCEPTION;
                  break inner;
                }
                break;
              case 4: x[rd] = a ^ imm; break; // XORI
              case 6: x[rd] = a | imm; break; // ORI
              case 2: x[rd] = a < imm ? 1 : 0; break; // SLTI
              default: x[rd] = (a >>> 0) < (imm >>> 0) ? 1 : 0; break; // 3: SLTIU
            }
            pc = (pc + 4) | 0;
            break;
          }

          case 0x00: { // LOAD (0x03)
            addr = (x[rs1]! + (insn >> 20)) | 0;
            const idx = (addr >>> 12) & tlbMask;
            switch ((insn >>> 12) & 7) {
              case 2: // LW
                if (ltag[idx] !== (addr & 0xfffff003)) break;
                x[rd] = mem32[(addr + ldel[idx]!) >> 2]!;
                pc = (pc + 4) | 0;
                continue;
              case 4: // LBU
                if (ltag[idx] !== (addr & 0xfffff000)) break;
                x[rd] = mem8[(addr + ldel[idx]!) | 0]!;
                pc = (pc + 4) | 0;
                continue;
              case 0: // LB
                if (ltag[idx] !== (addr & 0xfffff000)) break;
                x[rd] = (mem8[(addr + ldel[idx]!) | 0]! << 24) >> 24;
                pc = (pc + 4) | 0;
                continue;
              case 5: // LHU
                if (ltag[idx] !== (addr & 0xfffff001)) break;
                x[rd] = mem16[(addr + ldel[idx]!) >> 1]!;
                pc = (pc + 4) | 0;
                continue;
              case 1: // LH
                if (ltag[idx] !== (addr & 0xfffff001)) break;
                x[rd] = (mem16[(addr + ldel[idx]!) >> 1]! << 16) >> 16;
                pc = (pc + 4) | 0;
                continue;
              default: // the slow path raises illegal instruction
                break;
            }
            act = ACT_LOAD;
            break inner;
          }

          case 0x18: { // BRANCH (0x63)
            const a = x[rs1]!, b = x[(insn >>> 20) & 31]!;
            switch ((insn >>> 12) & 7) {
              case 0: if (a !== b) { pc = (pc + 4) | 0; continue; } break; // BEQ
              case 1: if (a === b) { pc = (pc + 4) | 0; continue; } break; // BNE
              case 4: if (a >= b) { pc = (pc + 4) | 0; continue; } break; // BLT
              case 5: if (a < b) { pc = (pc + 4) | 0; continue; } break; // BGE
              case 6: if ((a >>> 0) >= (b >>> 0)) { pc = (pc + 4) | 0; continue; } break; // BLTU
              case 7: if ((a >>> 0) < (b >>> 0)) { pc = (pc + 4) | 0; continue; } break; // BGEU
              default:
                this.faultCause = CAUSE_ILLEGAL_INSTRUCTION;
                this.faultTval = insn;
                act = ACT_EXCEPTION;
                break inner;
            }
            const target = (pc + (((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11)
              | (((insn >>> 25) & 0x3f) << 5) | (((insn >>> 8) & 0xf) << 1))) | 0;
            if ((target & 3) !== 0) {
              this.faultCause = CAUSE_MISALIGNED_FETCH;
              this.faultTval = target;
              act = ACT_EXCEPTION;
              break inner;
            }
            pc = target;
            break;
          }

          case 0x08: { // STORE (0x23)
            addr = (x[rs1]! + (((insn >> 25) << 5) | ((insn >>> 7) & 31))) | 0;
            value = x[(insn >>> 20) & 31]!;
            const idx = (addr >>> 12) & tlbMask;
            switch ((insn >>> 12) & 7) {
              case 2: // SW
                if (stag[idx] !== (addr & 0xfffff003)) break;
                mem32[(addr + sdel[idx]!) >> 2] = value;
                pc = (pc + 4) | 0;
                continue;
              case 0: // SB
                if (stag[idx] !== (addr & 0xfffff000)) break;
                mem8[(addr + sdel[idx]!) | 0] = value;
                pc = (pc + 4) | 0;
                continue;
              case 1: // SH
                if (stag[idx] !== (addr & 0xfffff001)) break;
                mem16[(addr + sdel[idx]!) >> 1] = value;
                pc = (pc + 4) | 0;
                continue;
              default: // the slow path raises illegal instruction
                break;
            }
            act = ACT_STORE;
            break inner;
          }

          case 0x0c: { // OP (0x33)
            const a = x[rs1]!, b = x[(insn >>> 20) & 31]!;
            switch (((insn >>> 22) & 0x3f8) | ((insn >>> 12) & 7)) {
              case 0x000: x[rd] = (a + b) | 0; break; // ADD
              case 0x100: x[rd] = (a - b) | 0; break; // SUB
              case 0x004: x[rd] = a ^ b; break; // XOR
              case 0x006: x[rd] = a | b; break; // OR
              case 0x007: x[rd] = a & b; break; // AND
              case 0x001: x[rd] = a << b; break; // SLL
              case 0x005: x[rd] = (a >>> b) | 0; break; // SRL
              case 0x105: x[rd] = a >> b; break; // SRA
              case 0x002: x[rd] = a < b ? 1 : 0; break; // SLT
              case 0x003: x[rd] = (a >>> 0) < (b >>> 0) ? 1 : 0; break; // SLTU
              case 0x008: x[rd] = Math.imul(a, b); break; // MUL
              case 0x009: x[rd] = mulh(a, b); break; // MULH
              case 0x00a: x[rd] = mulhsu(a, b); break; // MULHSU
              case 0x00b: x[rd] = mulhu(a, b); break; // MULHU
              case 0x00c: // DIV
                x[rd] = b === 0 ? -1 : (a === -0x80000000 && b === -1) ? a : (a / b) | 0;
                break;
              case 0x00d: // DIVU
                x[rd] = b === 0 ? -1 : ((a >>> 0) / (b >>> 0)) | 0;
                break;
              case 0x00e: // REM
                x[rd] = b === 0 ? a : (b === -1) ? 0 : (a % b) | 0;
                break;
              case 0x00f: // REMU
                x[rd] = b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
                break;
              default:
                this.faultCause = CAUSE_ILLEGAL_INSTRUCTION;
                this.faultTval = insn;
                act = ACT_EXCEPTION;
                break inner;
            }
            pc = (pc + 4) | 0;
            break;
          }

          case 0x1b: { // JAL (0x6f)
            const target = (pc + (((insn >> 31) << 20) | (insn & 0xff000) | (((insn >>> 20) & 1) << 11)
              | (((insn >>> 21) & 0x3ff) << 1))) | 0;
            if ((target & 3) !== 0) {
              this.faultCause = CAUSE_MISALIGNED_FETCH;
              this.faultTval = target;
              act = ACT_EXCEPTION;
              break inner;
            }
            x[rd] = (pc + 4) | 0;
            pc = target;
            break;
          }

          case 0x0d: // LUI (0x37)
            x[rd] = insn & 0xfffff000;
            pc = (pc + 4) | 0;
            break;

          case 0x19: { // JALR (0x67)
            const target = (x[rs1]! + (insn >> 20)) & ~1;
            if ((insn & 0x7000) !== 0 || (target & 3) !== 0) {
              this.faultCause = (insn & 0x7000) !== 0 ? CAUSE_ILLEGAL_INSTRUCTION : CAUSE_MISALIGNED_FETCH;
              this.faultTval = (insn & 0x7000) !== 0 ? insn : target;
              act = ACT_EXCEPTION;
              break inner;
            }
            x[rd] = (pc + 4) | 0;
            pc = target;
            break;
          }

          case 0x05: // AUIPC (0x17)
            x[rd] = (pc + (insn & 0xfffff000)) | 0;
            pc = (pc + 4) | 0;
            break;

          case 0x1c: // SYSTEM (0x73): CSR ops, ecall/ebreak, xRET, wfi, sfence.vma
            act = ACT_SYSTEM;
            break inner;

          case 0x0b: // AMO (0x2f)
            act = ACT_AMO;
            break inner;

          case 0x03: // MISC-MEM (0x0f): FENCE, FENCE.I (one hart: nothing to order but compiled code)
            if (((insn >>> 12) & 7) === 1 && jitOn) { // FENCE.I drops the translations: out of line
              act = ACT_SYSTEM;
              break inner;
            }
            if (((insn >>> 12) & 7) > 1) {
              this.faultCause = CAUSE_ILLEGAL_INSTRUCTION;
              this.faultTval = insn;
              act = ACT_EXCEPTION;
              break inner;
            }
            pc = (pc + 4) | 0;
            break;

          default:
            this.faultCause = CAUSE_ILLEGAL_INSTRUCTION;
            this.faultTval = insn;
            act = ACT_EXCEPTION;
            break inner;
        }
      }
    }
  }

  // ---------------------------------------------------------------- slow paths

  private account(n: number): void {
    const d = n - this.acc;
    if (d !== 0) {
      this.acc = n;
      this.instret += d;
      this.cycle += d;
      this.ticks += d;
    }
  }

  /** Take the synchronous exception in faultCause/faultTval for the instruction at pc. */
  private exception(pc: number, n: number): number {
    this.account(n);
    this.instret -= 1; // it did not retire
    return this.trap(pc, this.faultCause, false, this.faultTval);
  }

  /** Trap entry (privileged spec 3.1.6.1, 3.1.7, 4.1.1): returns the handler's pc. */
  private trap(pc: number, cause: number, interrupt: boolean, tval: number): number {
    this.resValid = false;
    const prev = this.priv;
    const deleg = prev <= PRIV_S && (((interrupt ? this.mideleg : this.medeleg) >>> cause) & 1) !== 0;
    const causeVal = interrupt ? (cause | 0x80000000) : cause;
    const s = this.mstatus;
    if (!deleg && this.trapToHost) {
      // The instruction has not retired; run() returns at the next boundary.
      this.hostTrapCause = causeVal;
      this.hostTrapTval = tval;
      this.stopCode = STOP_HOST_TRAP;
      return pc;
    }
    if (deleg) {
      this.scause = causeVal;
      this.sepc = pc;
      this.stval = tval;
      this.mstatus = (s & ~(MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SIE)) | ((s & MSTATUS_SIE) << 4) | (prev << 8);
      this.setPriv(PRIV_S);
      const vec = this.stvec;
      return ((vec & ~3) + ((vec & 1) !== 0 && interrupt ? cause * 4 : 0)) | 0;
    }
    this.mcause = causeVal;
    this.mepc = pc;
    this.mtval = tval;
    this.mstatus = (s & ~(MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MIE)) | ((s & MSTATUS_MIE) << 4) | (prev << 11);
    if ((s & MSTATUS_MPRV) !== 0) this.flushTlb(); // MPP moved under MPRV
    this.setPriv(PRIV_M);
    const vec = this.mtvec;
    return ((vec & ~3) + ((vec & 1) !== 0 && interrupt ? cause * 4 : 0)) | 0;
  }

  private setPriv(p: number): void {
    if (p !== this.priv) {
      this.priv = p;
      this.flushTlb();
    }
  }

  /** Highest-priority interrupt that is pending, enabled and allowed at this privilege, or -1. */
  pendingInterrupt(): number {
    const pending = this.mip & this.mie;
    if (pending === 0) return -1;
    let irqs = 0;
    if (this.priv < PRIV_M || (this.mstatus & MSTATUS_MIE) !== 0) irqs = pending & ~this.mideleg;
    if (irqs === 0 && (this.priv < PRIV_S || (this.priv === PRIV_S && (this.mstatus & MSTATUS_SIE) !== 0))) {
      irqs = pending & this.mideleg;
    }
    if (irqs === 0) return -1;
    // Privileged spec 3.1.9: MEI, MSI, MTI, SEI, SSI, STI.
    if (irqs & (1 << IRQ_MEI)) return IRQ_MEI;
    if (irqs & (1 << IRQ_MSI)) return IRQ_MSI;
    if (irqs & (1 << IRQ_MTI)) return IRQ_MTI;
    if (irqs & (1 << IRQ_SEI)) return IRQ_SEI;
    if (irqs & (1 << IRQ_SSI)) return IRQ_SSI;
    if (irqs & (1 << IRQ_STI)) return IRQ_STI;
    return -1;
  }

  /**
   * Ask the translator about gva and fill the TLB of that kind. Returns the host
   * byte address of gva, or XLATE_FAULT (faultCause set), XLATE_MMIO (pa in
   * translator.lastPa) or XLATE_EXIT (stopCode set). Sets recheck when the access
   * must not stay on the fast path (no-cache pages).
   */
  private translateSlow(gva: number, access: number): number {
    const t = this.translator;
    const r = t.translate(this, gva, access);
    // A store into a page with compiled code drops that code before the store
    // (and before the TLB can send later stores around this check).
    if (access === ACCESS_STORE && this.jit !== null) {
      const page = r >= 0 ? r : r === TRANSLATE_NOCACHE ? (t.lastHostPage ?? 0) : -1;
      if (page >= 0 && this.jit.codePage[page >>> 12] !== 0) this.jit.invalidatePage(page);
    }
    if (r >= 0) return this.fillTlb(access, gva, r);
    switch (r) {
      case TRANSLATE_FAULT:
        return XLATE_FAULT;
      case TRANSLATE_MMIO:
        return XLATE_MMIO;
      case TRANSLATE_EXIT:
        this.stopCode = STOP_EXIT;
        return XLATE_EXIT;
      case TRANSLATE_NOCACHE:
        this.recheck = true;
        return (t.lastHostPage ?? 0) + (gva & 0xfff);
      default:
        throw new Error(`hart: translator returned ${r}`);
    }
  }

  /** Cache a translation; returns the host address of gva. */
  private fillTlb(access: number, gva: number, hostPage: number): number {
    const idx = (gva >>> 12) & TLB_MASK;
    const page = gva & 0xfffff000;
    const delta = (hostPage - page) | 0;
    if (access === ACCESS_FETCH) {
      this.fetchTag[idx] = page;
      this.fetchDelta[idx] = delta;
    } else if (access === ACCESS_LOAD) {
      this.loadTag[idx] = page;
      this.loadDelta[idx] = delta;
    } else {
      this.storeTag[idx] = page;
      this.storeDelta[idx] = delta;
    }
    const sup = this.translator.lastSuperpage === true ? 1 : 0;
    this.tlbSuper[access * TLB_SIZE + idx] = sup;
    if (sup) this.superLive = true;
    return hostPage + (gva & 0xfff);
  }

  /**
   * Fetch TLB miss: returns the host address, or XLATE_FAULT / XLATE_EXIT. Code
   * runs from cacheable RAM only: MMIO and no-cache pages are access faults.
   */
  private fetchSlow(pc: number): number {
    if ((pc & 3) !== 0) {
      this.raiseFault(CAUSE_MISALIGNED_FETCH, pc);
      return XLATE_FAULT;
    }
    const t = this.translator;
    const r = t.translate(this, pc, ACCESS_FETCH);
    if (r >= 0) return this.fillTlb(ACCESS_FETCH, pc, r);
    if (r === TRANSLATE_FAULT) return XLATE_FAULT;
    if (r === TRANSLATE_EXIT) {
      this.stopCode = STOP_EXIT;
      return XLATE_EXIT;
    }
    this.raiseFault(CAUSE_FETCH_ACCESS, pc);
    return XLATE_FAULT;
  }

  /** Load that missed the TLB, is misaligned, goes to MMIO, or has a bad funct3. */
  private loadSlow(gva: number, f3: number, n: number, insn: number): number {
    this.account(n);
    const width = f3 & 3;
    if (f3 === 3 || f3 > 5) {
      this.raiseFault(CAUSE_ILLEGAL_INSTRUCTION, insn);
      this.slowStatus = SLOW_FAULT;
      return 0;
    }
    if ((gva & ((1 << width) - 1)) !== 0) return this.loadMisaligned(gva, f3);
    const h = this.translateSlow(gva, ACCESS_LOAD);
    let v: number;
    if (h >= 0) {
      v = width === 2 ? this.mem32[h >> 2]! : width === 1 ? this.mem16[h >> 1]! : this.mem8[h]!;
    } else if (h === XLATE_MMIO) {
      const bus = this.bus;
      v = bus.read(this.translator.lastPa, (1 << width) as 1 | 2 | 4);
      if (bus.fault === true) {
        bus.fault = false;
        this.raiseFault(CAUSE_LOAD_ACCESS, gva);
        this.slowStatus = SLOW_FAULT;
        return 0;
      }
      this.recheck = true;
    } else {
      this.slowStatus = h === XLATE_EXIT ? SLOW_EXIT : SLOW_FAULT;
      return 0;
    }
    this.slowStatus = this.recheck ? SLOW_RECHECK : SLOW_OK;
    switch (f3) {
      case 0: return (v << 24) >> 24;
      case 1: return (v << 16) >> 16;
      case 4: return v & 0xff;
      case 5: return v & 0xffff;
      default: return v | 0;
    }
  }

  /** Store that missed the TLB, is misaligned, goes to MMIO or a watched page, or has a bad funct3. */
  private storeSlow(gva: number, f3: number, v: number, n: number, insn: number): void {
    this.account(n);
    if (f3 > 2) {
      this.raiseFault(CAUSE_ILLEGAL_INSTRUCTION, insn);
      this.slowStatus = SLOW_FAULT;
      return;
    }
    if ((gva & ((1 << f3) - 1)) !== 0) {
      this.storeMisaligned(gva, 1 << f3, v);
      return;
    }
    const h = this.translateSlow(gva, ACCESS_STORE);
    if (h >= 0) {
      if (f3 === 2) this.mem32[h >> 2] = v;
      else if (f3 === 1) this.mem16[h >> 1] = v;
      else this.mem8[h] = v;
    } else if (h === XLATE_MMIO) {
      const bus = this.bus;
      bus.write(this.translator.lastPa, (1 << f3) as 1 | 2 | 4, f3 === 2 ? v : f3 === 1 ? v & 0xffff : v & 0xff);
      if (bus.fault === true) {
        bus.fault = false;
        this.raiseFault(CAUSE_STORE_ACCESS, gva);
        this.slowStatus = SLOW_FAULT;
        return;
      }
      this.recheck = true;
    } else {
      this.slowStatus = h === XLATE_EXIT ? SLOW_EXIT : SLOW_FAULT;
      return;
    }
    this.slowStatus = this.recheck ? SLOW_RECHECK : SLOW_OK;
  }

  /*
   * Misaligned lh/lhu/lw/sh/sw are performed, in every mode, as QEMU does (the
   * unprivileged ISA 20191213 section 2.6 allows it; Linux probes for it at boot).
   * The fast path never sees them: a TLB tag compare includes the low address bits.
   *
   * An access is split at a page boundary into parts of one page each, and every
   * part is translated (TLB, then the translator; a store's parts for write)
   * before any byte is read or written. So a page fault, an access fault from the
   * translator, or a TRANSLATE_EXIT on either part leaves the instruction not
   * executed and restartable: nothing stored, rd not written. The parts are
   * translated lowest address first and the first failure is taken, with tval the
   * address of the part that failed: gva for the first, the first byte of the
   * next page for the second (privileged spec 20211203 section 3.1.16, "the
   * portion of the access that caused the fault"; QEMU does the same: its
   * accel/tcg/cputlb.c mmu_lookup() fills page[0] at addr and page[1] at the
   * page-aligned start of the second page, both before the access).
   * Both translations set A, and for a store D, in their ptes; when the second
   * part faults, the first part's pte keeps the A/D it got, as in QEMU.
   *
   * A part that the translator routes to MMIO is split again into naturally
   * aligned pieces, each as wide as both the address and the bytes left allow,
   * lowest address first: QEMU's int_ld_mmio_beN/int_st_mmio_leN
   * (ctz32(size | addr | 8)), so every device sees only aligned accesses (a
   * watched RAM page too). A bus error on a piece is an access fault with tval =
   * that piece's address, and the pieces before it stay done, as in QEMU: device
   * accesses are not undone, so with MMIO (and only there) a misaligned access can
   * be partly performed.
   */

  /** Host address of gva on its page for a data access: the TLB, else translateSlow (XLATE_* codes). */
  private translateData(gva: number, access: number): number {
    const idx = (gva >>> 12) & TLB_MASK;
    if (access === ACCESS_LOAD) {
      if (this.loadTag[idx] === (gva & 0xfffff000)) return (gva + this.loadDelta[idx]!) | 0;
    } else if (this.storeTag[idx] === (gva & 0xfffff000)) {
      return (gva + this.storeDelta[idx]!) | 0;
    }
    return this.translateSlow(gva, access);
  }

  /** loadSlow for a misaligned lh/lhu/lw: sets slowStatus, returns the extended value. */
  private loadMisaligned(gva: number, f3: number): number {
    const size = 1 << (f3 & 3);
    const size0 = 4096 - (gva & 0xfff) < size ? 4096 - (gva & 0xfff) : size;
    const gva1 = (gva + size0) | 0;
    const h0 = this.translateData(gva, ACCESS_LOAD);
    const pa0 = this.translator.lastPa; // meaningful for MMIO only, which is never cached
    if (h0 < 0 && h0 !== XLATE_MMIO) {
      this.slowStatus = h0 === XLATE_EXIT ? SLOW_EXIT : SLOW_FAULT;
      return 0;
    }
    let h1 = 0;
    let pa1 = 0;
    if (size0 < size) {
      h1 = this.translateData(gva1, ACCESS_LOAD);
      pa1 = this.translator.lastPa;
      if (h1 < 0 && h1 !== XLATE_MMIO) {
        this.slowStatus = h1 === XLATE_EXIT ? SLOW_EXIT : SLOW_FAULT;
        return 0;
      }
    }
    this.slowStatus = SLOW_OK;
    let v = this.readPart(gva, h0, pa0, size0);
    if (this.slowStatus !== SLOW_OK) return 0;
    if (size0 < size) {
      v |= this.readPart(gva1, h1, pa1, size - size0) << (8 * size0);
      if (this.slowStatus !== SLOW_OK) return 0;
    }
    if (this.recheck) this.slowStatus = SLOW_RECHECK;
    return f3 === 1 ? (v << 16) >> 16 : v;
  }

  /** storeSlow for a misaligned sh/sw: sets slowStatus. */
  private storeMisaligned(gva: number, size: number, v: number): void {
    const size0 = 4096 - (gva & 0xfff) < size ? 4096 - (gva & 0xfff) : size;
    const gva1 = (gva + size0) | 0;
    const h0 = this.translateData(gva, ACCESS_STORE);
    const pa0 = this.translator.lastPa;
    if (h0 < 0 && h0 !== XLATE_MMIO) {
      this.slowStatus = h0 === XLATE_EXIT ? SLOW_EXIT : SLOW_FAULT;
      return;
    }
    let h1 = 0;
    let pa1 = 0;
    if (size0 < size) {
      h1 = this.translateData(gva1, ACCESS_STORE);
      pa1 = this.translator.lastPa;
      if (h1 < 0 && h1 !== XLATE_MMIO) {
        this.slowStatus = h1 === XLATE_EXIT ? SLOW_EXIT : SLOW_FAULT;
        return;
      }
    }
    this.slowStatus = SLOW_OK;
    this.writePart(gva, h0, pa0, size0, v);
    if (this.slowStatus !== SLOW_OK) return;
    if (size0 < size) {
      this.writePart(gva1, h1, pa1, size - size0, v >>> (8 * size0));
      if (this.slowStatus !== SLOW_OK) return;
    }
    if (this.recheck) this.slowStatus = SLOW_RECHECK;
  }

  /** n bytes at gva, all on one page: host address h, or MMIO at pa when h is XLATE_MMIO. */
  private readPart(gva: number, h: number, pa: number, n: number): number {
    let v = 0;
    if (h >= 0) {
      const mem8 = this.mem8;
      for (let k = 0; k < n; k++) v |= mem8[h + k]! << (8 * k);
      return v;
    }
    const bus = this.bus;
    for (let k = 0; k < n;) {
      const m = (n - k) | ((gva + k) & 3) | 4;
      const w = m & -m;
      const piece = bus.read(pa + k, w as 1 | 2 | 4);
      if (bus.fault === true) {
        bus.fault = false;
        this.raiseFault(CAUSE_LOAD_ACCESS, (gva + k) | 0);
        this.slowStatus = SLOW_FAULT;
        return 0;
      }
      v |= (w === 4 ? piece : piece & ((1 << (8 * w)) - 1)) << (8 * k);
      k += w;
    }
    this.recheck = true;
    return v;
  }

  /** The low n bytes of v to gva, all on one page (see readPart). */
  private writePart(gva: number, h: number, pa: number, n: number, v: number): void {
    if (h >= 0) {
      const mem8 = this.mem8;
      for (let k = 0; k < n; k++) mem8[h + k] = v >>> (8 * k);
      return;
    }
    const bus = this.bus;
    for (let k = 0; k < n;) {
      const m = (n - k) | ((gva + k) & 3) | 4;
      const w = m & -m;
      const piece = v >>> (8 * k);
      bus.write(pa + k, w as 1 | 2 | 4, w === 4 ? piece | 0 : piece & ((1 << (8 * w)) - 1));
      if (bus.fault === true) {
        bus.fault = false;
        this.raiseFault(CAUSE_STORE_ACCESS, (gva + k) | 0);
        this.slowStatus = SLOW_FAULT;
        return;
      }
      k += w;
    }
    this.recheck = true;
  }

  /** LR/SC and AMO*.W (unprivileged ISA chapter 8). */
  private amo(insn: number, n: number): void {
    this.account(n);
    const x = this.regs;
    const rd = (insn >>> 7) & 31;
    const addr = x[(insn >>> 15) & 31]!;
    const rs2 = (insn >>> 20) & 31;
    const f5 = insn >>> 27;
    if (((insn >>> 12) & 7) !== 2) {
      this.raiseFault(CAUSE_ILLEGAL_INSTRUCTION, insn);
      this.slowStatus = SLOW_FAULT;
      return;
    }
    this.slowStatus = SLOW_OK;
    if (f5 === 0x02) { // LR.W
      if (rs2 !== 0) {
        this.raiseFault(CAUSE_ILLEGAL_INSTRUCTION, insn);
        this.slowStatus = SLOW_FAULT;
        return;
      }
      // LR keeps trapping where plain loads are performed misaligned. Checked
      // here, first: loadSlow would perform it. See the AMO check below.
      if ((addr & 3) !== 0) {
        this.raiseFault(CAUSE_MISALIGNED_LOAD, addr);
        this.slowStatus = SLOW_FAULT;
        return;
      }
      const idx = (addr >>> 12) & TLB_MASK;
      let v: number;
      if (this.loadTag[idx] === (addr & 0xfffff003)) v = this.mem32[(addr + this.loadDelta[idx]!) >> 2]!;
      else {
        v = this.loadSlow(addr, 2, n, insn);
        if (this.slowStatus === SLOW_FAULT || this.slowStatus === SLOW_EXIT) return;
      }
      this.resValid = true;
      this.resAddr = addr;
      x[rd] = v;
      return;
    }
    const ok = f5 === 0x03 || f5 === 0x01 || f5 === 0x00 || f5 === 0x04 || f5 === 0x0c || f5 === 0x08
      || f5 === 0x10 || f5 === 0x14 || f5 === 0x18 || f5 === 0x1c;
    if (!ok) {
      this.raiseFault(CAUSE_ILLEGAL_INSTRUCTION, insn);
      this.slowStatus = SLOW_FAULT;
      return;
    }
    // Misaligned LR, SC and AMOs trap, before translation and before SC looks at
    // the reservation: load address misaligned for LR, store/AMO address
    // misaligned for SC and AMOs (unprivileged ISA 20191213 sections 8.2 and 8.4
    // allow an address-misaligned or an access-fault exception; QEMU raises the
    // former, Spike with misaligned loads and stores enabled the latter).
    if ((addr & 3) !== 0) {
      this.raiseFault(CAUSE_MISALIGNED_STORE, addr);
      this.slowStatus = SLOW_FAULT;
      return;
    }
    const src = x[rs2]!;
    if (f5 === 0x03) { // SC.W
      if (!this.resValid || this.resAddr !== addr) {
        this.resValid = false;
        x[rd] = 1;
        return;
      }
      const idx = (addr >>> 12) & TLB_MASK;
      if (this.storeTag[idx] === (addr & 0xfffff003)) this.mem32[(addr + this.storeDelta[idx]!) >> 2] = src;
      else {
        this.storeSlow(addr, 2, src, n, insn);
        // An exit keeps the reservation: the SC restarts and must still succeed.
        if (this.slowStatus === SLOW_FAULT || this.slowStatus === SLOW_EXIT) return;
      }
      this.resValid = false;
      x[rd] = 0;
      return;
    }
    // Translate for store before reading, so a fault or exit leaves nothing done.
    const idx = (addr >>> 12) & TLB_MASK;
    let h: number;
    if (this.storeTag[idx] === (addr & 0xfffff003)) h = (addr + this.storeDelta[idx]!) | 0;
    else {
      h = this.translateSlow(addr, ACCESS_STORE);
      if (h === XLATE_FAULT) { this.slowStatus = SLOW_FAULT; return; }
      if (h === XLATE_EXIT) { this.slowStatus = SLOW_EXIT; return; }
    }
    let old: number;
    const bus = this.bus;
    const pa = this.translator.lastPa;
    if (h >= 0) old = this.mem32[h >> 2]!;
    else {
      old = bus.read(pa, 4) | 0;
      if (bus.fault === true) {
        bus.fault = false;
        this.raiseFault(CAUSE_STORE_ACCESS, addr);
        this.slowStatus = SLOW_FAULT;
        return;
      }
    }
    let nv: number;
    switch (f5) {
      case 0x01: nv = src; break; // AMOSWAP.W
      case 0x00: nv = (old + src) | 0; break; // AMOADD.W
      case 0x04: nv = old ^ src; break; // AMOXOR.W
      case 0x0c: nv = old & src; break; // AMOAND.W
      case 0x08: nv = old | src; break; // AMOOR.W
      case 0x10: nv = old < src ? old : src; break; // AMOMIN.W
      case 0x14: nv = old > src ? old : src; break; // AMOMAX.W
      case 0x18: nv = (old >>> 0) < (src >>> 0) ? old : src; break; // AMOMINU.W
      default: nv = (old >>> 0) > (src >>> 0) ? old : src; break; // AMOMAXU.W
    }
    if (h >= 0) this.mem32[h >> 2] = nv;
    else {
      bus.write(pa, 4, nv);
      if (bus.fault === true) {
        bus.fault = false;
        this.raiseFault(CAUSE_STORE_ACCESS, addr);
        this.slowStatus = SLOW_FAULT;
        return;
      }
      this.recheck = true;
    }
    x[rd] = old;
    if (this.recheck) this.slowStatus = SLOW_RECHECK;
  }

  /** SYSTEM opcode. Counters are accounted; returns the next pc (handler's on a trap). */
  private system(insn: number, pc: number): number {
    if ((insn & 0x7f) === 0x0f) { // FENCE.I with the block compiler on
      this.jit?.flushAll();
      return (pc + 4) | 0;
    }
    const f3 = (insn >>> 12) & 7;
    if (f3 !== 0 && f3 !== 4) return this.csrInsn(insn, pc, f3);
    if (f3 === 0) {
      if (insn === 0x00000073) { // ECALL
        this.instret -= 1;
        return this.trap(pc, CAUSE_USER_ECALL + this.priv, false, 0);
      }
      if (insn === 0x00100073) { // EBREAK
        this.instret -= 1;
        return this.trap(pc, CAUSE_BREAKPOINT, false, pc);
      }
      if (insn === 0x30200073) { // MRET
        if (this.priv === PRIV_M) return this.mret();
      } else if (insn === 0x10200073) { // SRET
        if (this.priv === PRIV_M || (this.priv === PRIV_S && (this.mstatus & MSTATUS_TSR) === 0)) return this.sret();
      } else if (insn === 0x10500073) { // WFI
        if (this.priv === PRIV_M || (this.priv === PRIV_S && (this.mstatus & MSTATUS_TW) === 0)) {
          this.updateTimer();
          if ((this.mip & this.mie) === 0) this.stopCode = STOP_WFI;
          return (pc + 4) | 0;
        }
      } else if ((insn & 0xfe007fff) === 0x12000073) { // SFENCE.VMA
        if (this.priv === PRIV_M || (this.priv === PRIV_S && (this.mstatus & MSTATUS_TVM) === 0)) {
          const rs1 = (insn >>> 15) & 31;
          // Not ASID-tagged, so an ASID-only fence flushes everything.
          if (rs1 === 0) this.flushTlb();
          else this.flushTlbPage(this.regs[rs1]!);
          // A shadow MMU learns here that guest tables may have changed.
          const rs2 = (insn >>> 20) & 31;
          this.translator.sfenceVma?.(this, rs1 === 0 ? null : this.regs[rs1]!, rs2 === 0 ? null : this.regs[rs2]!);
          return (pc + 4) | 0;
        }
      }
    }
    this.instret -= 1;
    return this.trap(pc, CAUSE_ILLEGAL_INSTRUCTION, false, insn);
  }

  private mret(): number {
    const s = this.mstatus;
    const mpp = (s >>> 11) & 3;
    let ns = (s & ~(MSTATUS_MIE | MSTATUS_MPP | MSTATUS_MPIE)) | ((s & MSTATUS_MPIE) >>> 4) | MSTATUS_MPIE;
    if (mpp !== PRIV_M) ns &= ~MSTATUS_MPRV;
    this.mstatus = ns;
    if ((s & MSTATUS_MPRV) !== 0) this.flushTlb();
    this.resValid = false;
    this.setPriv(mpp);
    return this.mepc;
  }

  private sret(): number {
    const s = this.mstatus;
    const spp = (s >>> 8) & 1;
    this.mstatus = ((s & ~(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_MPRV)) | ((s & MSTATUS_SPIE) >>> 4))
      | MSTATUS_SPIE;
    if ((s & MSTATUS_MPRV) !== 0) this.flushTlb();
    this.resValid = false;
    this.setPriv(spp);
    return this.sepc;
  }

  /** CSRRW/CSRRS/CSRRC and their immediate forms (Zicsr). */
  private csrInsn(insn: number, pc: number, f3: number): number {
    const x = this.regs;
    const csr = insn >>> 20;
    const rd = (insn >>> 7) & 31;
    const rs1 = (insn >>> 15) & 31;
    const src = f3 >= 5 ? rs1 : x[rs1]!;
    const op = f3 & 3;
    const writes = op === 1 || rs1 !== 0;
    if (!this.csrAllowed(csr, writes)) {
      this.instret -= 1;
      return this.trap(pc, CAUSE_ILLEGAL_INSTRUCTION, false, insn);
    }
    this.csrMissing = false;
    // Counters already include this instruction: reads show the value before it, and
    // a write to a counter replaces its increment (csrWrite sees the same bias).
    this.counterBias = 1;
    const old = this.csrRead(csr);
    if (!this.csrMissing && writes) {
      this.csrWrite(csr, op === 1 ? src : op === 2 ? old | src : old & ~src);
    }
    this.counterBias = 0;
    if (this.csrMissing) {
      this.instret -= 1;
      return this.trap(pc, CAUSE_ILLEGAL_INSTRUCTION, false, insn);
    }
    x[rd] = old;
    return (pc + 4) | 0;
  }

  /** Privilege and read-only checks (privileged spec 2.1) and the counter-enable gates. */
  private csrAllowed(csr: number, writes: boolean): boolean {
    const priv = this.priv;
    if (((csr >>> 8) & 3) > priv) return false;
    if (writes && (csr >>> 10) === 3) return false;
    if ((csr & 0xf60) === 0xc00) { // cycle, time, instret, hpmcounterN and their high halves
      const bit = 1 << (csr & 31);
      if (priv < PRIV_M && (this.mcounteren & bit) === 0) return false;
      if (priv < PRIV_S && (this.scounteren & bit) === 0) return false;
    }
    if (csr === CSR_SATP && priv === PRIV_S && (this.mstatus & MSTATUS_TVM) !== 0) return false;
    return true;
  }

  /** Raw CSR read; sets csrMissing for a CSR that does not exist. */
  private csrRead(csr: number): number {
    switch (csr) {
      case CSR_CYCLE: case CSR_MCYCLE: return (this.cycle - this.counterBias) | 0;
      case CSR_CYCLEH: case CSR_MCYCLEH: return (this.cycleHi + Math.floor((this.cycle - this.counterBias) / TWO32)) | 0;
      case CSR_INSTRET: case CSR_MINSTRET: return (this.instret - this.counterBias) | 0;
      case CSR_INSTRETH: case CSR_MINSTRETH:
        return (this.instretHi + Math.floor((this.instret - this.counterBias) / TWO32)) | 0;
      case CSR_TIME: return this.getMtime() | 0;
      case CSR_TIMEH: return Math.floor(this.getMtime() / TWO32) | 0;

      case CSR_SSTATUS: return this.mstatus & SSTATUS_MASK;
      case CSR_SIE: return this.mie & this.mideleg;
      case CSR_STVEC: return this.stvec;
      case CSR_SCOUNTEREN: return this.scounteren;
      case CSR_SENVCFG: return this.senvcfg;
      case CSR_SSCRATCH: return this.sscratch;
      case CSR_SEPC: return this.sepc;
      case CSR_SCAUSE: return this.scause;
      case CSR_STVAL: return this.stval;
      case CSR_SIP: this.updateTimer(); return this.mip & this.mideleg;
      case CSR_SATP: return this.satp;

      case CSR_MSTATUS: return this.mstatus;
      case CSR_MISA: return MISA_VALUE;
      case CSR_MEDELEG: return this.medeleg;
      case CSR_MIDELEG: return this.mideleg;
      case CSR_MIE: return this.mie;
      case CSR_MTVEC: return this.mtvec;
      case CSR_MCOUNTEREN: return this.mcounteren;
      case CSR_MENVCFG: return this.menvcfg;
      case CSR_MSTATUSH: return 0;
      case CSR_MENVCFGH: return this.menvcfgh;
      case CSR_MSCRATCH: return this.mscratch;
      case CSR_MEPC: return this.mepc;
      case CSR_MCAUSE: return this.mcause;
      case CSR_MTVAL: return this.mtval;
      case CSR_MIP: this.updateTimer(); return this.mip;
      case CSR_TSELECT: case CSR_TDATA1: case CSR_TDATA2: case CSR_TDATA3: return 0;
      case CSR_MVENDORID: case CSR_MARCHID: case CSR_MIMPID: case CSR_MCONFIGPTR: return 0;
      case CSR_MHARTID: return this.mhartid;
      default:
        if (csr >= 0x3a0 && csr <= 0x3a3) return this.pmpcfg[csr - 0x3a0]!;
        if (csr >= 0x3b0 && csr <= 0x3bf) return this.pmpaddr[csr - 0x3b0]!;
        // hpmcounter3..31(h), mhpmcounter3..31(h), mhpmevent3..31: hardwired zero.
        if ((csr >= 0xc03 && csr <= 0xc1f) || (csr >= 0xc83 && csr <= 0xc9f)) return 0;
        if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0xb83 && csr <= 0xb9f)) return 0;
        if (csr >= 0x323 && csr <= 0x33f) return 0;
        this.csrMissing = true;
        return 0;
    }
  }

  /** Raw CSR write with WARL masking; sets csrMissing for a CSR that does not exist or cannot be written. */
  private csrWrite(csr: number, v: number): void {
    switch (csr) {
      // A write to either half replaces this instruction's own increment (unprivileged ISA
      // 20191213 section 9.1: "the write is done instead of the increment"; riscv-tests
      // rv32mi instret_overflow). The high half goes to xxxHi so the count stays exact.
      case CSR_MCYCLE: this.cycle = Math.floor((this.cycle - this.counterBias) / TWO32) * TWO32 + (v >>> 0); break;
      case CSR_MCYCLEH: {
        const c = this.cycle - this.counterBias;
        this.cycle = c;
        this.cycleHi = (v - Math.floor(c / TWO32)) | 0;
        break;
      }
      case CSR_MINSTRET: this.instret = Math.floor((this.instret - this.counterBias) / TWO32) * TWO32 + (v >>> 0); break;
      case CSR_MINSTRETH: {
        const c = this.instret - this.counterBias;
        this.instret = c;
        this.instretHi = (v - Math.floor(c / TWO32)) | 0;
        break;
      }

      case CSR_SSTATUS: this.writeMstatus((this.mstatus & ~SSTATUS_MASK) | (v & SSTATUS_MASK)); break;
      case CSR_SIE: this.mie = (this.mie & ~this.mideleg) | (v & this.mideleg); break;
      case CSR_STVEC: this.stvec = v & ~2; break;
      case CSR_SCOUNTEREN: this.scounteren = v; break;
      case CSR_SENVCFG: this.senvcfg = 0; break;
      case CSR_SSCRATCH: this.sscratch = v; break;
      case CSR_SEPC: this.sepc = v & ~3; break;
      case CSR_SCAUSE: this.scause = v; break;
      case CSR_STVAL: this.stval = v; break;
      case CSR_SIP: {
        const m = SIP_WMASK & this.mideleg;
        this.mip = (this.mip & ~m) | (v & m);
        break;
      }
      case CSR_SATP:
        this.satp = v;
        this.flushTlb();
        this.translator.satpChanged?.(this, v);
        break;

      case CSR_MSTATUS: this.writeMstatus(v); break;
      case CSR_MISA: break; // WARL: the extensions cannot be turned off
      case CSR_MEDELEG: this.medeleg = v & MEDELEG_MASK; break;
      case CSR_MIDELEG: this.mideleg = v & MIDELEG_MASK; break;
      case CSR_MIE: this.mie = v & MIE_MASK; break;
      case CSR_MTVEC: this.mtvec = v & ~2; break;
      case CSR_MCOUNTEREN: this.mcounteren = v; break;
      case CSR_MENVCFG: this.menvcfg = 0; break; // no FIOM/CBIE/PBMTE/STCE
      case CSR_MSTATUSH: break; // MBE/SBE: little-endian only
      case CSR_MENVCFGH: this.menvcfgh = 0; break;
      case CSR_MSCRATCH: this.mscratch = v; break;
      case CSR_MEPC: this.mepc = v & ~3; break;
      case CSR_MCAUSE: this.mcause = v; break;
      case CSR_MTVAL: this.mtval = v; break;
      case CSR_MIP: this.mip = (this.mip & ~MIP_WMASK) | (v & MIP_WMASK); break;
      case CSR_TSELECT: case CSR_TDATA1: case CSR_TDATA2: case CSR_TDATA3: break;
      default:
        if (csr >= 0x3a0 && csr <= 0x3a3) { this.pmpcfg[csr - 0x3a0] = v; break; }
        if (csr >= 0x3b0 && csr <= 0x3bf) { this.pmpaddr[csr - 0x3b0] = v; break; } // RV32: bits 33:2, all 32 bits
        if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0xb83 && csr <= 0xb9f)) break;
        if (csr >= 0x323 && csr <= 0x33f) break;
        this.csrMissing = true;
        break;
    }
    this.recheck = true;
  }

  private writeMstatus(v: number): void {
    const old = this.mstatus;
    let ns = (old & ~MSTATUS_WMASK) | (v & MSTATUS_WMASK);
    if ((ns & MSTATUS_MPP) === (2 << 11)) ns = (ns & ~MSTATUS_MPP) | (old & MSTATUS_MPP); // WARL: no H-mode
    this.mstatus = ns;
    const changed = old ^ ns;
    if ((changed & (MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR)) !== 0
      || ((changed & MSTATUS_MPP) !== 0 && (ns & MSTATUS_MPRV) !== 0)) this.flushTlb();
  }
}

/**
 * Settle the hidden class of an object the run loop touches before any code is
 * optimized against it. V8 stores a number field in the narrowest representation
 * it has seen (Smi, then double), and treats a field that was never reassigned as
 * a constant. Guest values leave the 31-bit Smi range all the time (pc 0x80000000,
 * an interrupt mcause), and flags like stopRequested first flip long after the
 * loop was compiled; either event moves the object to a new map or drops the
 * constness, and deoptimizes everything compiled against it, the run loop
 * included. So every number field starts wide and every field starts mutable.
 */
export function settleFields(obj: object): void {
  const o = obj as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    const v = o[key];
    if (typeof v === 'number') {
      o[key] = 0.5;
      o[key] = v;
    } else if (typeof v === 'boolean') {
      o[key] = !v;
      o[key] = v;
    }
  }
}

function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

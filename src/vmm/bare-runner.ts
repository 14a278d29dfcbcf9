// Runs a bare-metal RV32 ELF the way Spike does: the image at its physical
// addresses, the hart in M-mode at e_entry with every register zero, HTIF
// tohost/fromhost for the result and a console, plus a 16550 UART.
//
// The contract (exit codes, messages) is what conformance suites are run
// against, so it is spelled out here and kept stable:
//   tohost = 1                      -> exitCode 0, reason 'pass'
//   tohost = (N << 1) | 1, N > 0    -> exitCode min(N, 255), reason 'fail', "FAIL: test N"
//   --max-insns reached             -> exitCode 124, reason 'limit'
//   wfi that nothing can wake       -> exitCode 125, reason 'wfi'
//   malformed ELF                   -> exitCode 2, reason 'bad-elf', the ElfError message

import { BareMachine, type MmioDevice } from '../hart/bare-machine.js';
import { STOP_BUDGET, STOP_REQUEST, STOP_WFI, type Hart } from '../hart/hart.js';
import type { JitOptions } from '../hart/jit/jit.js';
import { MIP_MTIP, MSTATUS_MXR, MSTATUS_SUM, PRIV_M } from '../hart/csr.js';
import { ACCESS_FETCH } from '../hart/translator.js';
import { Sv32Walk, sv32Translate } from '../hart/sv32.js';
import { ElfError, loadElf, parseElf, type ElfImage } from './elf.js';
import { HTIF_EXIT_GRACE, Htif, type HtifMemory } from './devices/htif.js';
import { Uart16550 } from './devices/uart.js';
import { ConsoleCapture } from './console-capture.js';
import { disassemble } from './disasm.js';

export { OUTPUT_KEEP_BYTES } from './console-capture.js';

export const RAM_BASE = 0x80000000;
export const DEFAULT_RAM_SIZE = 128 << 20;

export const EXIT_PASS = 0;
export const EXIT_BAD_ELF = 2;
export const EXIT_LIMIT = 124;
export const EXIT_WFI = 125;
/** The hart left its loop for a reason a bare machine never produces. */
export const EXIT_INTERNAL = 70;

export type BareRunReason = 'pass' | 'fail' | 'limit' | 'wfi' | 'bad-elf' | 'internal';

export interface BareRunOptions {
  /** Stop after this many instructions (trapping ones count). Default: no limit. */
  maxInsns?: number;
  /** RAM size in bytes, at 0x80000000. */
  memSize?: number;
  /** Console output as it is produced (flushed at least once per slice). fd 2 only from HTIF syscalls. */
  onOutput?: (bytes: Uint8Array, fd: 1 | 2) => void;
  /** One line per instruction, before it runs; switches to the single-step path. */
  trace?: (line: string) => void;
  /** Bytes the guest can read from the UART. */
  uartInput?: Uint8Array;
  /** Instructions per hart.run() call; smaller means more frequent output flushes. */
  sliceInsns?: number;
  /** Run with the hart's block compiler (`--jit`). */
  jit?: JitOptions;
}

export interface BareRunResult {
  exitCode: number;
  reason: BareRunReason;
  /** What the guest wrote to the UART and the HTIF console, in order: the first OUTPUT_KEEP_BYTES. */
  output: string;
  /** Output bytes past OUTPUT_KEEP_BYTES (streamed to onOutput, not kept in `output`). */
  outputDropped?: number;
  /** minstret at the end. */
  instret: number;
  /** Instructions begun (trapping ones included): what --max-insns counts. */
  insns: number;
  /** For reason 'fail': N of "test N". */
  failedTest?: number;
  pc: number;
  /** What the CLI prints on stderr (absent on a pass). */
  message?: string;
  /** Things the guest did that the machine ignored (unknown HTIF commands); printed on stderr. */
  warnings: string[];
  image?: ElfImage;
}

const hex = (v: number): string => '0x' + (v >>> 0).toString(16).padStart(8, '0');

export function runBareElf(bytes: Uint8Array, opts: BareRunOptions = {}): BareRunResult {
  const run = startBareElf(bytes, opts);
  return run instanceof BareRun ? run.resume(() => false)! : run;
}

/** Parses and loads the image: a run ready to resume, or the result of an image that cannot load. */
export function startBareElf(bytes: Uint8Array, opts: BareRunOptions = {}): BareRun | BareRunResult {
  let image: ElfImage;
  try {
    image = parseElf(bytes);
  } catch (e) {
    if (e instanceof ElfError) return badElf(e);
    throw e;
  }
  return startBareRun(image, opts);
}

function badElf(e: ElfError): BareRunResult {
  return { exitCode: EXIT_BAD_ELF, reason: 'bad-elf', output: '', instret: 0, insns: 0, pc: 0, message: e.message, warnings: [] };
}

export function runBareImage(image: ElfImage, opts: BareRunOptions = {}): BareRunResult {
  const run = startBareRun(image, opts);
  return run instanceof BareRun ? run.resume(() => false)! : run;
}

/** A loaded machine ready to run, or the result of an image that cannot load. */
export function startBareRun(image: ElfImage, opts: BareRunOptions = {}): BareRun | BareRunResult {
  try {
    return new BareRun(image, opts);
  } catch (e) {
    if (e instanceof ElfError) return badElf(e);
    throw e;
  }
}

/**
 * One bare-metal run that can be paused between slices: the CLI pauses it while
 * the reader of stdout is behind, so a guest that floods the console waits for
 * the pipe instead of filling the host's memory.
 */
export class BareRun {
  readonly machine: BareMachine;
  private readonly image: ElfImage;
  private readonly out: OutputBuffer;
  private readonly htif: Htif | undefined;
  private readonly warnings: string[] = [];
  private readonly maxInsns: number;
  private readonly slice: number;
  private readonly tracer: ((hart: Hart) => void) | undefined;
  private insns = 0;
  private stop = STOP_BUDGET;
  /** >= 0 while a low-word tohost store that reads as an exit waits for its high half. */
  private graceLeft = -1;
  private result: BareRunResult | null = null;

  constructor(image: ElfImage, opts: BareRunOptions) {
    const ramSize = opts.memSize ?? DEFAULT_RAM_SIZE;
    this.image = image;
    // A full buffer ends the slice (requestStop finishes the instruction), so one
    // slice never holds more than OUTPUT_SLICE_BYTES of console output.
    const out = new OutputBuffer(opts.onOutput, () => this.machine.hart.requestStop());
    this.out = out;
    const uart = new Uart16550((b) => out.push(b, 1));
    if (opts.uartInput) uart.pushInput(opts.uartInput);
    const devices: MmioDevice[] = [uart];
    const warnings = this.warnings;
    this.htif = image.tohost === undefined
      ? undefined
      : new Htif({
        tohost: image.tohost,
        ...(image.fromhost !== undefined ? { fromhost: image.fromhost } : {}),
        output: (b, fd) => out.push(b, fd),
        onExit: () => this.machine.hart.requestStop(),
        onPending: () => this.machine.hart.requestStop(),
        onUnknown: (device, command, lo, hi) => {
          if (warnings.length < 10) {
            warnings.push(`htif: ignored command device=${device} cmd=${command} payload=0x${hi.toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')}`);
          }
        },
      });
    const m = new BareMachine({
      ramBase: RAM_BASE, ramSize, devices, watches: this.htif ? [this.htif.watch] : [],
      ...(opts.jit !== undefined ? { jit: opts.jit } : {}),
    });
    this.machine = m;
    loadElf(image, (pa, data) => m.loadPhys(pa, data), { base: RAM_BASE, size: ramSize, sizeOption: '--mem' });
    this.htif?.attach(ramAccess(m));
    m.hart.pc = image.entry | 0;
    this.maxInsns = opts.maxInsns ?? Infinity;
    this.slice = opts.sliceInsns ?? (opts.trace ? 1 : 1 << 22);
    this.tracer = opts.trace ? makeTracer(m, opts.trace) : undefined;
  }

  /**
   * Runs slices until the program ends (returns its result, then the same result
   * on every later call) or `pause()` asks for a break between two slices (null).
   */
  resume(pause: () => boolean): BareRunResult | null {
    if (this.result !== null) return this.result;
    const hart = this.machine.hart;
    const htif = this.htif;
    // hart.run rather than BareMachine.run: --max-insns needs the exact count of
    // instructions begun, which only hart.lastRunInsns gives per call.
    while (this.insns < this.maxInsns) {
      if (pause()) return null;
      const budget = Math.min(this.graceLeft >= 0 ? this.graceLeft : this.slice, this.maxInsns - this.insns);
      if (this.tracer) {
        this.tracer(hart);
        this.stop = hart.step();
      } else {
        this.stop = hart.run(budget);
      }
      const ran = hart.lastRunInsns;
      this.insns += ran;
      this.out.flush();
      if (htif) {
        if (htif.exit) break;
        if (!htif.pending) {
          this.graceLeft = -1;
        } else if (this.graceLeft < 0) {
          this.graceLeft = HTIF_EXIT_GRACE;
        } else if ((this.graceLeft -= ran) <= 0) {
          htif.commitPending();
          break;
        }
      }
      const stop = this.stop;
      if (stop === STOP_BUDGET || stop === STOP_REQUEST) continue;
      if (stop === STOP_WFI) {
        // As BareMachine.run does: an armed, enabled timer makes the idle time free.
        if ((hart.mie & MIP_MTIP) !== 0 && (hart.mtimecmpLo & hart.mtimecmpHi) !== -1) {
          hart.skipToTimer();
          continue;
        }
        break;
      }
      break; // STOP_EXIT: no translator on a bare machine asks for it
    }
    htif?.commitPending();
    this.out.flush();
    this.result = this.finish();
    return this.result;
  }

  private finish(): BareRunResult {
    const hart = this.machine.hart;
    const htif = this.htif;
    const insns = this.insns;
    const maxInsns = this.maxInsns;
    const base = {
      output: this.out.capture.text(),
      ...this.out.capture.droppedField(),
      instret: hart.instret,
      insns,
      pc: hart.pc >>> 0,
      image: this.image,
      warnings: this.warnings,
    };
    if (htif?.exit) {
      const code = htif.exit.code;
      if (code === 0) return { ...base, exitCode: EXIT_PASS, reason: 'pass' };
      return {
        ...base,
        exitCode: Math.min(Math.max(code, 1), 255),
        reason: 'fail',
        failedTest: code,
        message: `FAIL: test ${code}`,
      };
    }
    const noHtif = htif ? '' : ' (the image has no tohost symbol, so it cannot report a result)';
    if (insns >= maxInsns) {
      return {
        ...base,
        exitCode: EXIT_LIMIT,
        reason: 'limit',
        message: `instruction limit reached (${maxInsns} instructions) at pc=${hex(hart.pc)}${noHtif}`,
      };
    }
    if (this.stop === STOP_WFI) {
      return {
        ...base,
        exitCode: EXIT_WFI,
        reason: 'wfi',
        message: `hart waits in wfi with no interrupt enabled that could wake it, at pc=${hex(hart.pc)}${noHtif}`,
      };
    }
    return { ...base, exitCode: EXIT_INTERNAL, reason: 'internal', message: `hart stopped with code ${this.stop} at pc=${hex(hart.pc)}` };
  }
}

/** HTIF reaches guest RAM physically; a bad guest pointer reads zeros rather than throwing inside the hart loop. */
function ramAccess(m: BareMachine): HtifMemory {
  const inRam = (pa: number) => pa >= m.ramBase && pa + 4 <= m.ramBase + m.ramSize;
  return {
    read32: (pa) => (inRam(pa) ? m.readPhys32(pa) : 0),
    write32: (pa, v) => {
      if (inRam(pa)) m.writePhys32(pa, v);
    },
  };
}

/** Output one slice may gather before the slice ends and the sink gets it. */
const OUTPUT_SLICE_BYTES = 64 << 10;

class OutputBuffer {
  readonly capture = new ConsoleCapture();
  private pending: number[] = [];
  private pendingFd: 1 | 2 = 1;

  constructor(
    private readonly sink: ((bytes: Uint8Array, fd: 1 | 2) => void) | undefined,
    private readonly onFull: () => void,
  ) {}

  push(byte: number, fd: 1 | 2): void {
    if (fd !== this.pendingFd) {
      this.flush();
      this.pendingFd = fd;
    }
    this.capture.push(byte);
    if (this.sink === undefined) return;
    this.pending.push(byte);
    if (this.pending.length === OUTPUT_SLICE_BYTES) this.onFull();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.sink?.(Uint8Array.from(this.pending), this.pendingFd);
    this.pending = [];
  }
}

/**
 * One line per instruction in the style of Spike's commit log:
 * `core   0: 3 0x80000000 (0x00000297) auipc t0, 0x0`. The instruction is
 * fetched with a walk that sets no A/D bits, so tracing never changes what
 * the guest sees.
 */
function makeTracer(m: BareMachine, emit: (line: string) => void): (hart: Hart) => void {
  const walk = new Sv32Walk();
  return (hart) => {
    const pc = hart.pc;
    let pa: number | undefined = pc >>> 0;
    if (hart.priv !== PRIV_M && (hart.satp >>> 31) !== 0) {
      const s = hart.mstatus;
      pa = sv32Translate(walk, m, hart.satp, pc, ACCESS_FETCH, hart.priv, (s & MSTATUS_SUM) !== 0, (s & MSTATUS_MXR) !== 0, false)
        ? walk.pa
        : undefined;
    }
    let text: string;
    if (pa !== undefined && pa >= m.ramBase && pa + 4 <= m.ramBase + m.ramSize) {
      const insn = m.readPhys32(pa);
      text = `(${hex(insn)}) ${disassemble(insn, pc)}`;
    } else {
      text = '(fetch fault)';
    }
    emit(`core   0: ${hart.priv} ${hex(pc)} ${text}`);
  };
}

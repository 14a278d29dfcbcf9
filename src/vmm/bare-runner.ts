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
import { MIP_MTIP, MSTATUS_MXR, MSTATUS_SUM, PRIV_M } from '../hart/csr.js';
import { ACCESS_FETCH } from '../hart/translator.js';
import { Sv32Walk, sv32Translate } from '../hart/sv32.js';
import { ElfError, loadElf, parseElf, type ElfImage } from './elf.js';
import { HTIF_EXIT_GRACE, Htif, type HtifMemory } from './devices/htif.js';
import { Uart16550 } from './devices/uart.js';
import { disassemble } from './disasm.js';

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
}

export interface BareRunResult {
  exitCode: number;
  reason: BareRunReason;
  /** Everything the guest wrote to the UART and the HTIF console, in order. */
  output: string;
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
  let image: ElfImage;
  try {
    image = parseElf(bytes);
  } catch (e) {
    if (e instanceof ElfError) return badElf(e);
    throw e;
  }
  return runBareImage(image, opts);
}

function badElf(e: ElfError): BareRunResult {
  return { exitCode: EXIT_BAD_ELF, reason: 'bad-elf', output: '', instret: 0, insns: 0, pc: 0, message: e.message, warnings: [] };
}

export function runBareImage(image: ElfImage, opts: BareRunOptions = {}): BareRunResult {
  const ramSize = opts.memSize ?? DEFAULT_RAM_SIZE;
  const out = new OutputBuffer(opts.onOutput);

  const uart = new Uart16550((b) => out.push(b, 1));
  if (opts.uartInput) uart.pushInput(opts.uartInput);
  const devices: MmioDevice[] = [uart];

  const warnings: string[] = [];
  let machine: BareMachine | undefined;
  const htif = image.tohost === undefined
    ? undefined
    : new Htif({
      tohost: image.tohost,
      ...(image.fromhost !== undefined ? { fromhost: image.fromhost } : {}),
      output: (b, fd) => out.push(b, fd),
      onExit: () => machine?.hart.requestStop(),
      onPending: () => machine?.hart.requestStop(),
      onUnknown: (device, command, lo, hi) => {
        if (warnings.length < 10) {
          warnings.push(`htif: ignored command device=${device} cmd=${command} payload=0x${hi.toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')}`);
        }
      },
    });

  machine = new BareMachine({ ramBase: RAM_BASE, ramSize, devices, watches: htif ? [htif.watch] : [] });
  const m = machine;
  try {
    loadElf(image, (pa, data) => m.loadPhys(pa, data), { base: RAM_BASE, size: ramSize });
  } catch (e) {
    if (e instanceof ElfError) return badElf(e);
    throw e;
  }
  htif?.attach(ramAccess(m));

  const hart = m.hart;
  hart.pc = image.entry | 0;

  const maxInsns = opts.maxInsns ?? Infinity;
  const slice = opts.sliceInsns ?? (opts.trace ? 1 : 1 << 22);
  let insns = 0;
  let stop = STOP_BUDGET;
  const tracer = opts.trace ? makeTracer(m, opts.trace) : undefined;

  // hart.run rather than BareMachine.run: --max-insns needs the exact count of
  // instructions begun, which only hart.lastRunInsns gives per call.
  // >= 0 while a low-word tohost store that reads as an exit waits for its high half.
  let graceLeft = -1;
  while (insns < maxInsns) {
    const budget = Math.min(graceLeft >= 0 ? graceLeft : slice, maxInsns - insns);
    if (tracer) {
      tracer(hart);
      stop = hart.step();
    } else {
      stop = hart.run(budget);
    }
    const ran = hart.lastRunInsns;
    insns += ran;
    out.flush();
    if (htif) {
      if (htif.exit) break;
      if (!htif.pending) {
        graceLeft = -1;
      } else if (graceLeft < 0) {
        graceLeft = HTIF_EXIT_GRACE;
      } else if ((graceLeft -= ran) <= 0) {
        htif.commitPending();
        break;
      }
    }
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
  out.flush();

  const base = { output: out.text(), instret: hart.instret, insns, pc: hart.pc >>> 0, image, warnings };
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
  if (stop === STOP_WFI) {
    return {
      ...base,
      exitCode: EXIT_WFI,
      reason: 'wfi',
      message: `hart waits in wfi with no interrupt enabled that could wake it, at pc=${hex(hart.pc)}${noHtif}`,
    };
  }
  return { ...base, exitCode: EXIT_INTERNAL, reason: 'internal', message: `hart stopped with code ${stop} at pc=${hex(hart.pc)}` };
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

class OutputBuffer {
  private readonly all: number[] = [];
  private pending: number[] = [];
  private pendingFd: 1 | 2 = 1;

  constructor(private readonly sink?: (bytes: Uint8Array, fd: 1 | 2) => void) {}

  push(byte: number, fd: 1 | 2): void {
    if (fd !== this.pendingFd) {
      this.flush();
      this.pendingFd = fd;
    }
    this.all.push(byte);
    this.pending.push(byte);
  }

  flush(): void {
    if (this.pending.length === 0) return;
    this.sink?.(Uint8Array.from(this.pending), this.pendingFd);
    this.pending = [];
  }

  text(): string {
    return Buffer.from(this.all).toString('latin1');
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

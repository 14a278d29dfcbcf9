// JIT warm-up for Hart.run: a private bare machine runs a program that walks
// every path of the loop (each opcode and funct3, TLB misses, MMIO, CSR ops,
// traps, interrupts, AMOs, misaligned accesses) so that V8 has complete type
// feedback before it optimizes run(). Without it the first guest to run pays
// for a chain of deoptimize/reoptimize cycles (~35 ms of TurboFan each) on
// paths it has not reached yet. It touches no state but its own machine.

import { BareMachine, CLINT_BASE } from './bare-machine.js';
import { STOP_WFI } from './hart.js';

const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) | 0;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) | 0;
const s = (imm: number, rs2: number, rs1: number, f3: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23) | 0;
const b = (off: number, rs2: number, rs1: number, f3: number): number =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12)
    | (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) | 0;
const j = (off: number, rd: number): number =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20)
    | (((off >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) | 0;
const li = (rd: number, v: number): number[] => {
  const lo = (v << 20) >> 20;
  return [(((v - lo) & 0xfffff000) | (rd << 7) | 0x37) | 0, i(lo, rd, 0, rd, 0x13)];
};
const csr = (f3: number, rd: number, num: number, rs1: number): number => i(num, rs1, f3, rd, 0x73);
const amo = (f5: number, rd: number, rs2: number, rs1: number): number => r(f5 << 2, rs2, rs1, 2, rd, 0x2f);

const BASE = 0x80000000 | 0;
const HANDLER = BASE + 0x2000;
const DATA = BASE + 0x10000;
const WATCHED = BASE + 0x11000;

/** The warm-up program: `main` at 0x80000000, `handler` at 0x80002000 (exported for its test). */
export function warmUpProgram(iterations: number): { main: number[]; handler: number[] } {
  const main: number[] = [
    ...li(1, DATA), ...li(24, WATCHED), ...li(23, 0x9e3779b9 | 0), ...li(20, CLINT_BASE + 0xbff8), ...li(22, CLINT_BASE + 0x4000), ...li(2, iterations),
    ...li(5, HANDLER), csr(1, 0, 0x305, 5), // mtvec
    ...li(5, 0x80), csr(1, 0, 0x304, 5), // mie = MTIE
    csr(6, 0, 0x300, 8), // mstatus.MIE
  ];
  const loop = main.length;
  main.push(
    // Operands over the whole int32 range (x3 = x2 * golden ratio), so that no
    // operation's feedback says "small integer" and deopts on real pointers.
    r(1, 23, 2, 0, 3, 0x33),
    // OP-IMM with both signs
    i(-1, 3, 4, 4, 0x13), i(0x0f0, 4, 7, 6, 0x13), i(0x101, 6, 6, 6, 0x13),
    i(-3, 3, 2, 7, 0x13), i(5, 3, 3, 7, 0x13), i(3, 3, 1, 7, 0x13), i(2, 4, 5, 7, 0x13), i(0x402, 4, 5, 7, 0x13),
    // OP and M
    r(0, 4, 3, 0, 7, 0x33), r(0x20, 4, 3, 0, 7, 0x33), r(0, 4, 3, 4, 7, 0x33), r(0, 4, 3, 6, 7, 0x33),
    r(0, 4, 3, 7, 7, 0x33), r(0, 2, 3, 1, 7, 0x33), r(0, 2, 4, 5, 7, 0x33), r(0x20, 2, 4, 5, 7, 0x33),
    r(0, 4, 3, 2, 7, 0x33), r(0, 4, 3, 3, 7, 0x33),
    r(1, 4, 3, 0, 7, 0x33), r(1, 4, 3, 1, 7, 0x33), r(1, 4, 3, 2, 7, 0x33), r(1, 4, 3, 3, 7, 0x33),
    r(1, 6, 4, 4, 7, 0x33), r(1, 6, 4, 5, 7, 0x33), r(1, 6, 4, 6, 7, 0x33), r(1, 6, 4, 7, 7, 0x33),
    r(1, 0, 4, 4, 7, 0x33), r(1, 0, 4, 7, 7, 0x33),
    // loads and stores, TLB hits then misses after a flush
    s(0, 4, 1, 2), s(4, 3, 1, 1), s(6, 3, 1, 0),
    i(0, 1, 2, 8, 0x03), i(4, 1, 1, 8, 0x03), i(4, 1, 5, 8, 0x03), i(6, 1, 0, 8, 0x03), i(6, 1, 4, 8, 0x03),
    r(0x09, 0, 0, 0, 0, 0x73), // sfence.vma
    i(0, 1, 2, 8, 0x03), s(8, 8, 1, 2), i(1, 1, 4, 8, 0x03),
    // branches, both ways
    b(8, 3, 3, 0), 0, b(8, 4, 3, 1), 0, b(8, 3, 4, 4), i(0, 0, 0, 0, 0x13), b(8, 4, 3, 5), i(0, 0, 0, 0, 0x13),
    b(8, 3, 4, 6), i(0, 0, 0, 0, 0x13), b(8, 4, 3, 7), i(0, 0, 0, 0, 0x13), b(8, 3, 3, 1), b(8, 3, 3, 0), 0,
    b(8, 1, 3, 4), i(0, 0, 0, 0, 0x13), b(8, 1, 3, 5), i(0, 0, 0, 0, 0x13),
    b(8, 1, 3, 6), i(0, 0, 0, 0, 0x13), b(8, 1, 3, 7), i(0, 0, 0, 0, 0x13),
    b(8, 3, 1, 0), i(0, 0, 0, 0, 0x13), b(8, 3, 1, 1), i(0, 0, 0, 0, 0x13),
    // jumps and upper immediates
    j(8, 9), 0, (0x17 | (9 << 7)) | 0, i(12, 9, 0, 0, 0x67), 0, 0x12345037 | (10 << 7), 0x0ff0000f, 0x0000100f,
    // CSRs and counters
    csr(1, 11, 0x340, 3), csr(2, 11, 0x340, 0), csr(3, 11, 0x340, 4), csr(5, 11, 0x340, 7), csr(6, 11, 0x340, 1),
    csr(7, 11, 0x340, 1), csr(2, 11, 0xb02, 0), csr(2, 11, 0xc01, 0), csr(2, 11, 0x344, 0),
    // AMOs and LR/SC
    amo(0x00, 12, 3, 1), amo(0x01, 12, 3, 1), amo(0x1c, 12, 4, 1), amo(0x10, 12, 4, 1), amo(0x08, 12, 3, 1),
    amo(0x02, 12, 0, 1), amo(0x03, 13, 3, 1), amo(0x03, 13, 3, 1),
    // MMIO: mtime, then mtimecmp = mtime + 40 for a timer interrupt inside the next iteration
    i(0, 20, 2, 14, 0x03), i(40, 14, 0, 14, 0x13), s(4, 0, 22, 2), s(0, 14, 22, 2),
    // a watched store whose callback requests a stop
    s(0, 3, 24, 2),
    // misaligned load and store (performed), then exceptions the handler skips:
    // ecall, misaligned AMO, illegal instruction
    i(1, 1, 2, 15, 0x03), s(5, 3, 1, 2),
    0x00000073, i(2, 1, 0, 16, 0x13), amo(0x00, 12, 3, 16), 0,
    i(-1, 2, 0, 2, 0x13),
  );
  main.push(b(4 * (loop - main.length), 0, 2, 1)); // bnez x2, loop
  main.push(0x10500073, j(-4, 0)); // wfi; j .-4
  const handler = [
    csr(2, 25, 0x342, 0), // mcause
    b(20, 0, 25, 4), // blt x25, x0, irq
    csr(2, 26, 0x341, 0), i(4, 26, 0, 26, 0x13), csr(1, 0, 0x341, 26), 0x30200073, // mepc += 4; mret
    i(-1, 0, 0, 27, 0x13), s(4, 27, 22, 2), 0x30200073, // irq: mtimecmp hi = -1; mret
  ];
  return { main, handler };
}

/** Passes run so far in this process (a longer warm-up still runs after a short one). */
let warmedUp = 0;

/**
 * Runs the warm-up once per process: `iterations` passes of the program (the
 * default, about 2M guest instructions, long enough that V8 optimizes run()
 * during it). BareMachine calls it with far fewer (INTERP_WARM_UP, JIT_WARM_UP
 * there); other embedders of Hart (a vCPU) may call it before their first run.
 * A few passes (about 1,200 instructions, 5 ms) only give V8 the feedback of
 * every path, so that it optimizes once later.
 */
export function warmUpHart(iterations = 8_000): void {
  if (iterations <= warmedUp) return;
  warmedUp = iterations;
  let m!: BareMachine;
  m = new BareMachine({
    ramSize: 128 << 10,
    warmUp: false,
    watches: [{ pa: WATCHED, size: 4, onStore: () => m.hart.requestStop() }],
  });
  const { main, handler } = warmUpProgram(iterations);
  m.loadWords(BASE, main);
  m.loadWords(HANDLER, handler);
  m.hart.pc = BASE;
  for (let k = 0; k < 2_000; k++) {
    if (m.run(2_000) === STOP_WFI) break; // the program's final wfi
  }
}

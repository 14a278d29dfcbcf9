// Regressions for divergences from the RISC-V specs found by differential
// testing (tools/difftest) and by running riscv-tests-style programs. Each row
// names the spec rule it pins down.
import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BASE, exec, run, u32 } from './harness.js';
import * as C from '../../src/hart/csr.js';

const T0 = 5, T1 = 6, A0 = 10, A1 = 11;
const nop = A.addi(0, 0, 0);

describe('64-bit counters on RV32 (unprivileged ISA 20191213 9.1 and ch. 10, riscv-tests rv32mi instret_overflow)', () => {
  // "If a CSR access instruction writes such a CSR, the write is done instead of the
  // increment": that holds for either half. And the counters are exact 64-bit values
  // whatever the guest writes into the high half.
  const cases: Array<[string, Array<number | number[]>, number, number]> = [
    ['csrwi minstret, 0 is what the next instruction reads', [A.csrrwi(0, C.CSR_MINSTRET, 0), A.csrr(A0, C.CSR_MINSTRET)], A0, 0],
    ['minstreth write suppresses the increment; nop wraps 2^64-1 to 0',
      [A.li(T0, -1), A.csrw(C.CSR_MINSTRET, T0), A.csrw(C.CSR_MINSTRETH, T0), nop, A.csrr(A0, C.CSR_MINSTRET), A.csrr(A1, C.CSR_MINSTRETH)], A0, 0],
    ['... and the high half wrapped to 0 too',
      [A.li(T0, -1), A.csrw(C.CSR_MINSTRET, T0), A.csrw(C.CSR_MINSTRETH, T0), nop, A.csrr(A0, C.CSR_MINSTRET), A.csrr(A1, C.CSR_MINSTRETH)], A1, 0],
    ['a large minstreth keeps the low half exact',
      [A.li(T0, 0x12345678), A.csrw(C.CSR_MINSTRETH, T0), A.li(T1, 5), A.csrw(C.CSR_MINSTRET, T1), A.csrr(A0, C.CSR_MINSTRET)], A0, 5],
    ['a large minstreth reads back',
      [A.li(T0, 0x12345678), A.csrw(C.CSR_MINSTRETH, T0), A.csrr(A0, C.CSR_MINSTRETH)], A0, 0x12345678],
    ['instreth mirrors minstreth',
      [A.li(T0, 0xfedcba98 | 0), A.csrw(C.CSR_MINSTRETH, T0), A.csrr(A0, C.CSR_INSTRETH)], A0, 0xfedcba98 | 0],
    ['low half carries into a written high half',
      [A.li(T0, 0x7ffffffe), A.csrw(C.CSR_MINSTRETH, T0), A.li(T1, -2), A.csrw(C.CSR_MINSTRET, T1), nop, nop, A.csrr(A0, C.CSR_MINSTRETH)], A0, 0x7fffffff],
    ['a large mcycleh keeps mcycle exact',
      [A.li(T0, 0x12345678), A.csrw(C.CSR_MCYCLEH, T0), A.li(T1, 5), A.csrw(C.CSR_MCYCLE, T1), A.csrr(A0, C.CSR_MCYCLE)], A0, 5],
    ['mcycleh reads back', [A.li(T0, 0x12345678), A.csrw(C.CSR_MCYCLEH, T0), A.csrr(A0, C.CSR_MCYCLEH)], A0, 0x12345678],
    ['cycleh mirrors mcycleh', [A.li(T0, -3), A.csrw(C.CSR_MCYCLEH, T0), A.csrr(A0, C.CSR_CYCLEH)], A0, -3],
  ];
  it.each(cases)('%s', (_name, words, reg, want) => {
    const x = exec(...words);
    expect(u32(x[reg]!)).toBe(u32(want));
  });
});

describe('places where QEMU 7.2 differs and the spec sides with us (tools/difftest/README.md)', () => {
  it.each([
    ['csrrs', A.csrrs(A0, C.CSR_MHARTID, T0)],
    ['csrrc', A.csrrc(A0, C.CSR_MVENDORID, T0)],
  ])('%s to a read-only CSR from a register holding 0 (rs1 != x0) still writes, so traps', (_n, insn) => {
    // Zicsr: "if rs1 specifies a register holding a zero value other than x0, the
    // instruction will still attempt to write the unmodified value back".
    const m = run((p) => p.emit(A.li(T0, 0), insn, A.ebreak()));
    expect(m.hart.mcause).toBe(C.CAUSE_ILLEGAL_INSTRUCTION);
    expect(m.hart.mtval).toBe(insn);
  });

  it.each([
    ['jal', A.jal(1, 6), 6],
    ['beq (taken)', A.beq(0, 0, 6), 6],
    ['bgeu (taken)', A.bgeu(0, 0, -10), -10],
  ])('%s to a misaligned target: mtval is the target, mepc the jump, rd untouched', (_n, insn, off) => {
    // Privileged 3.1.16: mtval = the faulting (target) address. QEMU 7.2 writes a stale pc.
    const m = run((p) => p.emit(nop, nop, insn, A.ebreak()));
    const at = (BASE + 8) | 0;
    expect(m.hart.mcause).toBe(C.CAUSE_MISALIGNED_FETCH);
    expect(m.hart.mepc).toBe(at);
    expect(m.hart.mtval).toBe((at + off) | 0);
    expect(m.hart.regs[1]).toBe(0);
  });

  it('sret from M to S clears MPRV (privileged 20211203 3.1.6.3)', () => {
    const m = run((p) => {
      p.emit(A.li(T0, C.MSTATUS_MPRV | C.MSTATUS_SPP | (3 << 11)), A.csrw(C.CSR_MSTATUS, T0));
      p.emit(A.auipc(T1, 0), A.addi(T1, T1, 16), A.csrw(C.CSR_SEPC, T1), A.sret(), A.ebreak());
    });
    expect(m.hart.mcause).toBe(C.CAUSE_BREAKPOINT);
    expect(m.hart.mstatus & C.MSTATUS_MPRV).toBe(0);
    expect((m.hart.mstatus >>> 11) & 3).toBe(C.PRIV_S); // the ebreak's trap from S
  });
});

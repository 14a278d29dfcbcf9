// The hooks a VMM and a shadow MMU need from the hart: traps bound for M-mode
// come to the host (the VMM plays the SBI firmware), and sfence.vma / satp
// writes are reported to the translator.
import { describe, expect, it } from 'vitest';
import { Hart, STOP_BUDGET, STOP_HOST_TRAP } from '../../src/hart/hart.js';
import { TRANSLATE_MMIO, type MmioBus, type Translator } from '../../src/hart/translator.js';
import { addi, csrrw, ecall, lui, Prog, sfence_vma } from './asm.js';
import { withEngine } from './mode.js';

const PAGE = 4096;
const CSR_SATP = 0x180;

/** Identity map of one small buffer at gva 0; records the hooks it is given. */
class FlatTranslator implements Translator {
  lastPa = 0;
  readonly calls: string[] = [];
  constructor(private readonly size: number) {}
  translate(_hart: Hart, gva: number): number {
    this.lastPa = gva >>> 0;
    if ((gva >>> 0) >= this.size) return TRANSLATE_MMIO;
    return (gva & ~(PAGE - 1)) >>> 0;
  }
  sfenceVma(_hart: Hart, gva: number | null, asid: number | null): void {
    this.calls.push(`sfence ${gva === null ? 'all' : (gva >>> 0).toString(16)} ${asid === null ? 'all' : asid}`);
  }
  satpChanged(_hart: Hart, satp: number): void {
    this.calls.push(`satp ${(satp >>> 0).toString(16)}`);
  }
}

const nullBus: MmioBus = { read: () => 0, write: () => {}, fault: false };

function sHart(words: number[], trapToHost: boolean): { hart: Hart; tr: FlatTranslator } {
  const memory = new ArrayBuffer(16 * PAGE);
  new Int32Array(memory).set(words, 0);
  const tr = new FlatTranslator(memory.byteLength);
  const hart = new Hart(withEngine({ memory, translator: tr, bus: nullBus, trapToHost }));
  hart.setPrivilege(1);
  hart.mtvec = 0x8000;
  hart.stvec = 0x9000;
  return { hart, tr };
}

describe('trapToHost', () => {
  it('an ecall from S stops run() at the ecall with cause 9 and no CSR changed', () => {
    const p = new Prog(0);
    p.emit(addi(17, 0, 0x10), ecall(), addi(5, 0, 1));
    const { hart } = sHart(p.assemble(), true);
    const before = [hart.mepc, hart.mcause, hart.mstatus, hart.sepc];
    expect(hart.run(100)).toBe(STOP_HOST_TRAP);
    expect(hart.hostTrapCause).toBe(9);
    expect(hart.pc).toBe(4);
    expect(hart.priv).toBe(1);
    expect([hart.mepc, hart.mcause, hart.mstatus, hart.sepc]).toEqual(before);
    expect(hart.regs[5]).toBe(0);
    // The VMM completes the call and resumes past it.
    hart.pc += 4;
    expect(hart.run(1)).toBe(STOP_BUDGET);
    expect(hart.regs[5]).toBe(1);
  });

  it('delegated traps still go to the guest S-mode handler', () => {
    const { hart } = sHart([0 /* illegal */], true);
    hart.medeleg = 1 << 2;
    expect(hart.run(1)).toBe(STOP_BUDGET);
    expect(hart.scause).toBe(2);
    expect(hart.pc).toBe(0x9000);
  });

  it('without trapToHost the same ecall enters the M-mode handler', () => {
    const { hart } = sHart([ecall()], false);
    hart.run(1);
    expect(hart.mcause).toBe(9);
    expect(hart.priv).toBe(3);
    expect(hart.pc).toBe(0x8000);
  });

  it('an interrupt bound for M-mode stops before the next instruction', () => {
    const { hart } = sHart([addi(5, 0, 1)], true);
    hart.mie = 1 << 3;
    hart.setInterruptPending(3, true);
    expect(hart.run(10)).toBe(STOP_HOST_TRAP);
    expect(hart.hostTrapCause >>> 0).toBe(0x80000003);
    expect(hart.pc).toBe(0);
    expect(hart.regs[5]).toBe(0);
  });
});

describe('translator hooks', () => {
  it('sfence.vma and satp writes are reported with their operands', () => {
    const p = new Prog(0);
    p.emit(
      sfence_vma(0, 0),
      lui(6, 0x12345), sfence_vma(6, 0),
      addi(7, 0, 3), sfence_vma(0, 7),
      lui(8, 0x80000), csrrw(0, CSR_SATP, 8),
    );
    const { hart, tr } = sHart(p.assemble(), true);
    hart.run(8);
    expect(tr.calls).toEqual(['sfence all all', 'sfence 12345000 all', 'sfence all 3', 'satp 80000000']);
  });
});

describe('takeTrap', () => {
  it('enters the delegated S-mode handler for the instruction at pc, as the hart would', () => {
    const { hart } = sHart([addi(5, 0, 1)], true);
    hart.medeleg = 1 << 13;
    hart.takeTrap(13, 0x4000_1234);
    expect([hart.priv, hart.pc, hart.scause, hart.sepc, hart.stval]).toEqual([1, 0x9000, 13, 0, 0x4000_1234]);
    expect((hart.mstatus >>> 8) & 1).toBe(1); // SPP: came from S
  });
});

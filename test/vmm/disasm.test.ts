import { describe, expect, it } from 'vitest';
import { disassemble } from '../../src/vmm/disasm.js';

describe('disassemble', () => {
  it.each([
    [0x00000297, 0x80000000, 'auipc t0, 0x0'],
    [0xfff00293, 0, 'addi t0, zero, -1'],
    [0x30529073, 0, 'csrrw zero, mtvec, t0'],
    [0x02c5c733, 0, 'div a4, a1, a2'],
    [0x08b6272f, 0, 'amoswap.w a4, a1, (a2)'],
    [0x00b62023, 0, 'sw a1, 0(a2)'],
    [0xfe0718e3, 0x80000100, 'bnez-is-bne'],
    [0x30200073, 0, 'mret'],
    [0x12000073, 0, 'sfence.vma zero, zero'],
    [0xffffffff, 0, '.word 0xffffffff'],
  ])('%s', (insn, pc, text) => {
    if (text === 'bnez-is-bne') expect(disassemble(insn, pc)).toBe('bne a4, zero, 0x800000f0');
    else expect(disassemble(insn, pc)).toBe(text);
  });
});

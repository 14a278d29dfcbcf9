import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as A from './asm.js';
import { BASE, exec, run, u32 } from './harness.js';
import { mulh, mulhsu, mulhu } from '../../src/hart/hart.js';

const MIN = -0x80000000;
const MAX = 0x7fffffff;

type RType = (rd: number, rs1: number, rs2: number) => number;

const rCases: Array<[string, RType, number, number, number]> = [
  ['add', A.add, 1, 2, 3],
  ['add overflow', A.add, MAX, 1, MIN],
  ['add wrap', A.add, -1, -1, -2],
  ['sub', A.sub, 5, 7, -2],
  ['sub overflow', A.sub, MIN, 1, MAX],
  ['sll by 31', A.sll, 1, 31, MIN],
  ['sll uses low 5 bits', A.sll, 1, 33, 2],
  ['srl by 31', A.srl, MIN, 31, 1],
  ['srl negative', A.srl, -1, 4, 0x0fffffff],
  ['sra by 31', A.sra, MIN, 31, -1],
  ['sra positive', A.sra, 0x40000000, 30, 1],
  ['sra low 5 bits', A.sra, -16, 34, -4],
  ['slt signed', A.slt, -1, 1, 1],
  ['slt equal', A.slt, 5, 5, 0],
  ['sltu unsigned', A.sltu, -1, 1, 0],
  ['sltu small', A.sltu, 1, -1, 1],
  ['xor', A.xor, 0x0f0f0f0f, -1, u32(0xf0f0f0f0) | 0],
  ['or', A.or, 0x0f0f0000, 0x0000f0f0, 0x0f0ff0f0],
  ['and', A.and, 0x0ff0, 0x00ff, 0x00f0],
  ['mul', A.mul, 7, -3, -21],
  ['mul overflow low bits', A.mul, 0x12345678, 0x9abcdef, Number((0x12345678n * 0x9abcdefn) & 0xffffffffn) | 0],
  ['mul MIN*-1', A.mul, MIN, -1, MIN],
  ['mulh -1*-1', A.mulh, -1, -1, 0],
  ['mulh MIN*MIN', A.mulh, MIN, MIN, 0x40000000],
  ['mulh MIN*MAX', A.mulh, MIN, MAX, u32(0xc0000000) | 0],
  ['mulh -1*1', A.mulh, -1, 1, -1],
  ['mulhsu -1 * 0xffffffff', A.mulhsu, -1, -1, -1],
  ['mulhsu 1 * 0xffffffff', A.mulhsu, 1, -1, 0],
  ['mulhsu MIN * 0xffffffff', A.mulhsu, MIN, -1, u32(0x80000000) | 0],
  ['mulhu max', A.mulhu, -1, -1, -2],
  ['mulhu MIN*2', A.mulhu, MIN, 2, 1],
  ['div', A.div, -7, 2, -3],
  ['div by zero', A.div, 42, 0, -1],
  ['div MIN/-1', A.div, MIN, -1, MIN],
  ['divu', A.divu, -1, 2, MAX],
  ['divu by zero', A.divu, 42, 0, -1],
  ['rem sign of dividend', A.rem, -7, 2, -1],
  ['rem by zero', A.rem, -42, 0, -42],
  ['rem MIN/-1', A.rem, MIN, -1, 0],
  ['remu', A.remu, -1, 10, 5],
  ['remu by zero', A.remu, -5, 0, -5],
];

describe('R-type ALU and M extension', () => {
  it.each(rCases)('%s', (_name, op, a, b, want) => {
    const x = exec(A.li(1, a), A.li(2, b), op(3, 1, 2));
    expect(x[3]).toBe(want);
  });

  it('rd = rs1 = rs2 reads sources before writing', () => {
    const x = exec(A.li(5, 9), A.mul(5, 5, 5));
    expect(x[5]).toBe(81);
  });

  it('x0 stays zero', () => {
    const x = exec(A.addi(0, 0, 5), A.lui(0, 0x12345), A.add(1, 0, 0));
    expect(x[0]).toBe(0);
    expect(x[1]).toBe(0);
  });
});

type IType = (rd: number, rs1: number, imm: number) => number;
const iCases: Array<[string, IType, number, number, number]> = [
  ['addi negative', A.addi, 5, -6, -1],
  ['addi max imm', A.addi, 0, 2047, 2047],
  ['addi min imm', A.addi, 0, -2048, -2048],
  ['slti', A.slti, -5, -4, 1],
  ['sltiu sign-extended imm is large', A.sltiu, 5, -1, 1],
  ['sltiu seqz idiom', A.sltiu, 0, 1, 1],
  ['xori not', A.xori, 0x1234, -1, ~0x1234],
  ['ori', A.ori, 0x100, 0x0ff, 0x1ff],
  ['andi sign-extended', A.andi, -1, -256, -256],
  ['slli 31', A.slli, 3, 31, MIN],
  ['srli 31', A.srli, -1, 31, 1],
  ['srai 31', A.srai, MIN, 31, -1],
  ['srai 0', A.srai, -7, 0, -7],
];

describe('I-type ALU', () => {
  it.each(iCases)('%s', (_name, op, a, imm, want) => {
    const x = exec(A.li(1, a), op(3, 1, imm));
    expect(x[3]).toBe(want);
  });

  it('slli with shamt[5] set is illegal on RV32', () => {
    const bad = A.slli(3, 1, 0) | (1 << 25);
    const m = run((p) => p.emit(bad));
    expect(m.hart.mcause).toBe(2);
    expect(m.hart.mtval).toBe(bad);
  });
});

describe('upper immediates and jumps', () => {
  it('lui and auipc', () => {
    const x = exec(A.lui(1, 0xfffff), A.auipc(2, 1));
    expect(x[1]).toBe(u32(0xfffff000) | 0);
    expect(x[2]).toBe((BASE + 4 + 0x1000) | 0);
  });

  it('jal links and jumps forward and back', () => {
    const m = run((p) => {
      p.to('fwd', (o) => A.jal(1, o));
      p.emit(A.addi(10, 0, 1), A.ebreak());
      p.label('back').emit(A.addi(11, 0, 2), A.ebreak());
      p.label('fwd').to('back', (o) => A.jal(5, o));
    });
    const x = m.hart.regs;
    expect(m.hart.mcause).toBe(3);
    expect(x[1]).toBe((BASE + 4) | 0);
    expect(x[5]).toBe((BASE + 24) | 0);
    expect(x[10]).toBe(0);
    expect(x[11]).toBe(2);
  });

  it('jalr clears bit 0 and links with rd = rs1', () => {
    const m = run((p) => {
      p.emit(A.auipc(1, 0), A.jalr(1, 1, 13)); // target BASE + 12 (bit 0 dropped)
      p.emit(A.ebreak(), A.addi(10, 0, 7), A.ebreak());
    });
    expect(m.hart.regs[10]).toBe(7);
    expect(m.hart.regs[1]).toBe((BASE + 8) | 0);
  });
});

describe('branches', () => {
  const cases: Array<[string, typeof A.beq, number, number, boolean]> = [
    ['beq equal', A.beq, 3, 3, true],
    ['beq differ', A.beq, 3, 4, false],
    ['bne', A.bne, 3, 4, true],
    ['blt signed', A.blt, -1, 0, true],
    ['blt equal', A.blt, 0, 0, false],
    ['bge equal', A.bge, 0, 0, true],
    ['bge signed', A.bge, -1, 0, false],
    ['bltu unsigned', A.bltu, -1, 0, false],
    ['bltu', A.bltu, 0, -1, true],
    ['bgeu unsigned', A.bgeu, -1, 0, true],
    ['bgeu', A.bgeu, 0, -1, false],
  ];
  it.each(cases)('%s', (_n, br, a, b, taken) => {
    const x = exec(A.li(1, a), A.li(2, b), br(1, 2, 8), A.addi(3, 0, 1), A.addi(4, 0, 1));
    expect(x[3]).toBe(taken ? 0 : 1);
    expect(x[4]).toBe(1);
  });

  it('backward loop counts', () => {
    const m = run((p) => {
      p.emit(A.addi(1, 0, 10));
      p.label('l').emit(A.addi(2, 2, 3), A.addi(1, 1, -1)).to('l', (o) => A.bne(1, 0, o));
      p.emit(A.ebreak());
    });
    expect(m.hart.regs[2]).toBe(30);
  });
});

describe('loads and stores', () => {
  const D = (BASE + 0x10000) | 0;
  it('sign and zero extension of lb/lh/lbu/lhu, lw', () => {
    const x = exec(
      A.li(1, D), A.li(2, u32(0x8081f0ff) | 0), A.sw(2, 1, 0),
      A.lb(3, 1, 0), A.lbu(4, 1, 0), A.lh(5, 1, 2), A.lhu(6, 1, 2), A.lw(7, 1, 0), A.lb(8, 1, 1),
    );
    expect(x[3]).toBe(-1);
    expect(x[4]).toBe(0xff);
    expect(x[5]).toBe(u32(0xffff8081) | 0);
    expect(x[6]).toBe(0x8081);
    expect(x[7]).toBe(u32(0x8081f0ff) | 0);
    expect(x[8]).toBe(u32(0xfffffff0) | 0);
  });

  it('sb/sh store only their bytes, little-endian', () => {
    const m = run((p) => p.emit(
      A.li(1, D), A.li(2, -1), A.sw(2, 1, 0), A.li(3, 0x1234), A.sh(3, 1, 2), A.sb(0, 1, 0), A.ebreak(),
    ));
    expect(u32(m.readPhys32(D))).toBe(0x1234ff00);
  });

  it('negative offsets', () => {
    const x = exec(A.li(1, D + 8), A.li(2, 77), A.sw(2, 1, -8), A.lw(3, 1, -8));
    expect(x[3]).toBe(77);
  });
});

describe('misc', () => {
  it('fence and fence.i are no-ops; self-modifying code is seen after fence.i', () => {
    const m = run((p) => {
      p.emit(A.auipc(1, 0)); // x1 = BASE
      p.emit(A.li(2, A.addi(10, 0, 42)));
      p.emit(A.sw(2, 1, 24)); // patch the word at BASE+24
      p.emit(A.fence(), A.fence_i());
      p.emit(A.addi(10, 0, 1), A.ebreak()); // BASE+24 (patched), BASE+28
    });
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[10]).toBe(42);
  });

  it('unknown opcodes and all-zero/all-ones words are illegal with mtval = bits', () => {
    for (const bad of [0, -1, 0x0000007f, 0x00002063 /* branch f3=2 */, 0x00003003 /* load f3=3 */, 0x0000301b]) {
      const m = run((p) => p.emit(bad));
      expect(m.hart.mcause).toBe(2);
      expect(m.hart.mtval).toBe(bad);
      expect(m.hart.mepc).toBe(BASE);
    }
  });
});

describe('property: ALU against a BigInt reference', () => {
  const s = (v: bigint): number => Number(BigInt.asIntN(32, v));
  const refs: Array<[string, RType, (a: number, b: number) => number]> = [
    ['mul', A.mul, (a, b) => s(BigInt(a) * BigInt(b))],
    ['mulh', A.mulh, (a, b) => s((BigInt(a) * BigInt(b)) >> 32n)],
    ['mulhsu', A.mulhsu, (a, b) => s((BigInt(a) * BigInt(b >>> 0)) >> 32n)],
    ['mulhu', A.mulhu, (a, b) => s((BigInt(a >>> 0) * BigInt(b >>> 0)) >> 32n)],
    ['div', A.div, (a, b) => (b === 0 ? -1 : a === MIN && b === -1 ? MIN : s(BigInt(a) / BigInt(b)))],
    ['divu', A.divu, (a, b) => (b === 0 ? -1 : s(BigInt(a >>> 0) / BigInt(b >>> 0)))],
    ['rem', A.rem, (a, b) => (b === 0 ? a : a === MIN && b === -1 ? 0 : s(BigInt(a) % BigInt(b)))],
    ['remu', A.remu, (a, b) => (b === 0 ? a : s(BigInt(a >>> 0) % BigInt(b >>> 0)))],
    ['sll', A.sll, (a, b) => s(BigInt(a) << BigInt(b & 31))],
    ['srl', A.srl, (a, b) => s(BigInt(a >>> 0) >> BigInt(b & 31))],
    ['sra', A.sra, (a, b) => s(BigInt(a) >> BigInt(b & 31))],
    ['slt', A.slt, (a, b) => (a < b ? 1 : 0)],
    ['sltu', A.sltu, (a, b) => ((a >>> 0) < (b >>> 0) ? 1 : 0)],
  ];
  const int32 = fc.oneof(fc.integer({ min: MIN, max: MAX }), fc.constantFrom(0, 1, -1, MIN, MAX, 31, 32));

  it('pure helpers mulh/mulhsu/mulhu', () => {
    fc.assert(fc.property(int32, int32, (a, b) => {
      expect(mulh(a, b)).toBe(s((BigInt(a) * BigInt(b)) >> 32n));
      expect(mulhsu(a, b)).toBe(s((BigInt(a) * BigInt(b >>> 0)) >> 32n));
      expect(mulhu(a, b)).toBe(s((BigInt(a >>> 0) * BigInt(b >>> 0)) >> 32n));
    }), { numRuns: 2000 });
  });

  it('interpreted ops', () => {
    // One program per sample: all ops over the same pair.
    fc.assert(fc.property(int32, int32, (a, b) => {
      const x = exec(A.li(1, a), A.li(2, b), ...refs.map(([, op], k) => op(3 + k, 1, 2)));
      refs.forEach(([name, , ref], k) => {
        expect([name, x[3 + k]]).toEqual([name, ref(a, b)]);
      });
    }), { numRuns: 300 });
  });
});

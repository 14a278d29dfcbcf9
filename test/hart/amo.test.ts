import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BASE, exec, run } from './harness.js';

const D = (BASE + 0x10000) | 0;
const MIN = -0x80000000;

type Amo = (rd: number, rs2: number, rs1: number) => number;

describe('AMO*.W', () => {
  const cases: Array<[string, Amo, number, number, number]> = [
    ['amoswap', A.amoswap_w, 5, 9, 9],
    ['amoadd', A.amoadd_w, 0x7fffffff, 1, MIN],
    ['amoxor', A.amoxor_w, 0b1100, 0b1010, 0b0110],
    ['amoand', A.amoand_w, 0b1100, 0b1010, 0b1000],
    ['amoor', A.amoor_w, 0b1100, 0b1010, 0b1110],
    ['amomin signed', A.amomin_w, -1, 1, -1],
    ['amomin signed 2', A.amomin_w, 1, -1, -1],
    ['amomax signed', A.amomax_w, -1, 1, 1],
    ['amomax INT_MIN', A.amomax_w, MIN, -1, -1],
    ['amominu', A.amominu_w, -1, 1, 1],
    ['amominu 2', A.amominu_w, 1, -1, 1],
    ['amomaxu', A.amomaxu_w, -1, 1, -1],
    ['amomaxu INT_MIN', A.amomaxu_w, MIN, 0x7fffffff, MIN],
  ];
  it.each(cases)('%s', (_n, op, mem, src, want) => {
    const m = run((p) => p.emit(A.li(1, D), A.li(2, mem), A.sw(2, 1, 0), A.li(3, src), op(4, 3, 1), A.ebreak()));
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[4]).toBe(mem);
    expect(m.readPhys32(D)).toBe(want);
  });

  it('rd = rs2 gets the old value while the store uses the original rs2', () => {
    const m = run((p) => p.emit(A.li(1, D), A.li(2, 10), A.sw(2, 1, 0), A.li(3, 5), A.amoadd_w(3, 3, 1), A.ebreak()));
    expect(m.hart.regs[3]).toBe(10);
    expect(m.readPhys32(D)).toBe(15);
  });

  it('misaligned AMO: store/AMO address misaligned (6), memory untouched', () => {
    const m = run((p) => p.emit(A.li(1, D + 2), A.li(3, 5), A.amoadd_w(4, 3, 1), A.ebreak()));
    expect(m.hart.mcause).toBe(6);
    expect(m.hart.mtval).toBe((D + 2) | 0);
    expect(m.readPhys32(D)).toBe(0);
  });

  it('AMO to a non-existent address: store access fault (7)', () => {
    const m = run((p) => p.emit(A.li(1, 0x40000000), A.amoswap_w(4, 3, 1), A.ebreak()));
    expect(m.hart.mcause).toBe(7);
    expect(m.hart.mtval).toBe(0x40000000);
  });

  it('reserved AMO funct5 and funct3 are illegal', () => {
    const bad = A.amoadd_w(4, 3, 1) | (0x1e << 27);
    const m = run((p) => p.emit(bad));
    expect(m.hart.mcause).toBe(2);
    expect(m.hart.mtval).toBe(bad);
    const bad3 = (A.amoadd_w(4, 3, 1) & ~0x7000) | 0x3000;
    const m3 = run((p) => p.emit(bad3));
    expect(m3.hart.mcause).toBe(2);
  });
});

describe('LR/SC', () => {
  it('lr then sc to the same address succeeds once', () => {
    const x = exec(A.li(1, D), A.li(2, 42), A.lr_w(3, 1), A.sc_w(4, 2, 1), A.sc_w(5, 2, 1), A.lw(6, 1, 0));
    expect([x[3], x[4], x[5], x[6]]).toEqual([0, 0, 1, 42]);
  });

  it('sc without a reservation fails and does not store', () => {
    const m = run((p) => p.emit(A.li(1, D), A.li(2, 42), A.sc_w(4, 2, 1), A.ebreak()));
    expect(m.hart.regs[4]).toBe(1);
    expect(m.readPhys32(D)).toBe(0);
  });

  it('sc to a different address fails', () => {
    const m = run((p) => p.emit(A.li(1, D), A.addi(5, 1, 4), A.li(2, 42), A.lr_w(3, 1), A.sc_w(4, 2, 5), A.sc_w(6, 2, 1), A.ebreak()));
    expect(m.hart.regs[4]).toBe(1);
    expect(m.hart.regs[6]).toBe(1); // the failed sc also dropped the reservation
    expect(m.readPhys32(D + 4)).toBe(0);
  });

  it('a trap between lr and sc clears the reservation', () => {
    const H = (BASE + 0x2000) | 0;
    const m = run((p) => p.emit(A.li(1, D), A.li(2, 42), A.lr_w(3, 1), A.ecall(), A.sc_w(4, 2, 1), A.ebreak()), {
      setup: (mm) => {
        mm.hart.mtvec = H;
        // handler: mepc += 4; mret
        mm.loadWords(H, [A.csrr(20, 0x341), A.addi(20, 20, 4), A.csrw(0x341, 20), A.li(21, 3 << 11), A.csrrs(0, 0x300, 21), A.mret()].flat());
      },
    });
    expect(m.hart.regs[4]).toBe(1);
    expect(m.readPhys32(D)).toBe(0);
  });

  it('xRET clears the reservation', () => {
    const m = run((p) => {
      p.emit(A.li(1, D), A.li(2, 42), A.lr_w(3, 1));
      p.emit(A.auipc(5, 0), A.addi(5, 5, 28), A.csrw(0x341, 5)); // mepc = the sc after mret
      p.emit(A.li(6, 3 << 11), A.csrrs(0, 0x300, 6), A.mret(), A.sc_w(4, 2, 1), A.ebreak());
    });
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[4]).toBe(1);
  });

  it('misaligned lr is a load misaligned trap (4), sc a store one (6)', () => {
    const m = run((p) => p.emit(A.li(1, D + 1), A.lr_w(3, 1)));
    expect(m.hart.mcause).toBe(4);
    expect(m.hart.mtval).toBe((D + 1) | 0);
    const m2 = run((p) => p.emit(A.li(1, D + 2), A.sc_w(3, 2, 1)));
    expect(m2.hart.mcause).toBe(6);
  });

  it('lr with rs2 != 0 is illegal', () => {
    const bad = A.lr_w(3, 1) | (2 << 20);
    const m = run((p) => p.emit(A.li(1, D), bad));
    expect(m.hart.mcause).toBe(2);
    expect(m.hart.mtval).toBe(bad);
  });

  it('a CAS loop built from lr/sc increments', () => {
    const m = run((p) => {
      p.emit(A.li(1, D), A.addi(9, 0, 50));
      p.label('again').emit(A.lr_w(3, 1), A.addi(3, 3, 2), A.sc_w(4, 3, 1)).to('again', (o) => A.bne(4, 0, o));
      p.emit(A.addi(9, 9, -1)).to('again', (o) => A.bne(9, 0, o));
      p.emit(A.ebreak());
    });
    expect(m.readPhys32(D)).toBe(100);
  });
});

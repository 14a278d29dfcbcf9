import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BASE, makeMachine, run, u32 } from './harness.js';
import * as C from '../../src/hart/csr.js';
import { STOP_BUDGET, STOP_WFI } from '../../src/hart/hart.js';
import { CLINT_BASE, type BareMachine } from '../../src/hart/bare-machine.js';

const STVEC = (BASE + 0x9000) | 0;

function runAt(priv: number, words: Array<number | number[]>, setup?: (m: BareMachine) => void, budget?: number): BareMachine {
  return run((p) => p.emit(...words), {
    budget: budget ?? 10_000,
    setup: (m) => {
      m.hart.priv = priv;
      m.hart.stvec = STVEC;
      m.loadWords(STVEC, [A.wfi(), A.jal(0, -4)]);
      setup?.(m);
    },
  });
}

describe('ecall, ebreak and xRET', () => {
  it.each([[0, 8], [1, 9], [3, 11]])('ecall from priv %i has cause %i and enters M', (priv, cause) => {
    const m = runAt(priv, [A.addi(0, 0, 0), A.ecall()], (mm) => { mm.hart.mstatus = C.MSTATUS_MIE; });
    expect(m.hart.mcause).toBe(cause);
    expect(m.hart.mepc).toBe((BASE + 4) | 0);
    expect(m.hart.mtval).toBe(0);
    expect(m.hart.priv).toBe(3);
    expect((m.hart.mstatus >>> 11) & 3).toBe(priv);
    expect(m.hart.mstatus & C.MSTATUS_MIE).toBe(0);
    expect(m.hart.mstatus & C.MSTATUS_MPIE).toBe(C.MSTATUS_MPIE);
  });

  it('ebreak: cause 3, tval = pc, does not retire', () => {
    const m = runAt(3, [A.addi(1, 0, 1), A.ebreak()]);
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.mtval).toBe((BASE + 4) | 0);
    expect(m.hart.mepc).toBe((BASE + 4) | 0);
  });

  it('trapping instructions do not count in instret', () => {
    const m = makeMachine((p) => p.emit(A.ecall()));
    m.hart.mtvec = (BASE + 0x100) | 0;
    m.loadWords(BASE + 0x100, [A.csrr(1, C.CSR_MINSTRET), A.csrr(2, C.CSR_MCYCLE), A.ebreak()]);
    m.run(3);
    expect(m.hart.regs[1]).toBe(0);
    expect(m.hart.regs[2]).toBe(2);
  });

  it.each([
    [0, 8], [1, 9],
  ])('ecall from priv %i delegated by medeleg goes to S with cause %i', (priv, cause) => {
    const m = runAt(priv, [A.ecall()], (mm) => {
      mm.hart.medeleg = 1 << cause;
      mm.hart.mstatus = C.MSTATUS_SIE;
    });
    expect(m.hart.priv).toBe(1);
    expect(m.hart.pc).toBe((STVEC + 4) | 0); // parked past the wfi
    expect(m.hart.scause).toBe(cause);
    expect(m.hart.sepc).toBe(BASE);
    expect(m.hart.mcause).toBe(0);
    expect((m.hart.mstatus & C.MSTATUS_SPP) >>> 8).toBe(priv);
    expect(m.hart.mstatus & C.MSTATUS_SIE).toBe(0);
    expect(m.hart.mstatus & C.MSTATUS_SPIE).toBe(C.MSTATUS_SPIE);
  });

  it('exceptions in M are never delegated', () => {
    const m = runAt(3, [A.ecall()], (mm) => { mm.hart.medeleg = 0xb3ff; });
    expect(m.hart.mcause).toBe(11);
    expect(m.hart.priv).toBe(3);
  });

  it('delegated fault sets stval', () => {
    // No RAM at 0x1001: a (misaligned, so performed) load access fault.
    const m = runAt(0, [A.li(1, 0x1001), A.lw(2, 1, 0)], (mm) => { mm.hart.medeleg = 1 << 5; });
    expect(m.hart.scause).toBe(5);
    expect(m.hart.stval).toBe(0x1001);
    expect(m.hart.sepc).toBe((BASE + 8) | 0);
  });

  it('mret returns to MPP with MIE = MPIE, MPIE = 1, MPP = U, clearing MPRV', () => {
    const m = makeMachine((p) => {
      p.emit(A.li(1, (BASE + 0x100) | 0), A.csrw(C.CSR_MEPC, 1));
      p.emit(A.li(1, (1 << 11) | C.MSTATUS_MPIE | C.MSTATUS_MPRV), A.csrw(C.CSR_MSTATUS, 1), A.mret());
    });
    m.loadWords(BASE + 0x100, [A.ecall()]);
    m.run(100);
    expect(m.hart.mcause).toBe(9); // ecall from S
    expect(m.hart.mepc).toBe((BASE + 0x100) | 0);
    // at the ecall: MIE was 1 (from MPIE), so MPIE now 1; MPRV cleared by the mret
    expect(m.hart.mstatus & C.MSTATUS_MPRV).toBe(0);
    expect(m.hart.mstatus & C.MSTATUS_MPIE).toBe(C.MSTATUS_MPIE);
  });

  it('mret to M keeps MPRV', () => {
    const m = makeMachine((p) => {
      p.emit(A.auipc(1, 0), A.addi(1, 1, 28), A.csrw(C.CSR_MEPC, 1));
      p.emit(A.li(1, (3 << 11) | C.MSTATUS_MPRV), A.csrw(C.CSR_MSTATUS, 1), A.mret(), A.csrr(5, C.CSR_MSTATUS), A.ebreak());
    });
    m.run(100);
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[5]! & C.MSTATUS_MPRV).toBe(C.MSTATUS_MPRV);
    expect((m.hart.regs[5]! >>> 11) & 3).toBe(0);
  });

  it('sret returns to SPP with SIE = SPIE', () => {
    const m = runAt(1, [A.li(1, (BASE + 0x100) | 0), A.csrw(C.CSR_SEPC, 1), A.li(1, C.MSTATUS_SPIE), A.csrw(C.CSR_SSTATUS, 1), A.sret()],
      (mm) => mm.loadWords(BASE + 0x100, [A.ecall()]));
    expect(m.hart.mcause).toBe(8); // now in U
    expect(m.hart.mstatus & C.MSTATUS_SPIE).toBe(C.MSTATUS_SPIE);
  });

  it('mret from S, sret from U, sret from S with TSR are illegal', () => {
    for (const [priv, insn, st] of [[1, A.mret(), 0], [0, A.mret(), 0], [0, A.sret(), 0], [1, A.sret(), C.MSTATUS_TSR]] as const) {
      const m = runAt(priv, [insn], (mm) => { mm.hart.mstatus = st; });
      expect(m.hart.mcause).toBe(2);
      expect(m.hart.mtval).toBe(insn);
    }
  });

  it('wfi: illegal in U and in S with TW; sfence.vma: illegal in U and in S with TVM', () => {
    for (const [priv, insn, st] of [
      [0, A.wfi(), 0], [1, A.wfi(), C.MSTATUS_TW],
      [0, A.sfence_vma(0, 0), 0], [1, A.sfence_vma(0, 0), C.MSTATUS_TVM],
    ] as const) {
      const m = runAt(priv, [insn], (mm) => { mm.hart.mstatus = st; });
      expect(m.hart.mcause).toBe(2);
      expect(m.hart.mtval).toBe(insn);
    }
    const ok = runAt(1, [A.sfence_vma(0, 0), A.sfence_vma(1, 0), A.sfence_vma(0, 1), A.ecall()]);
    expect(ok.hart.mcause).toBe(9);
  });

  it('wfi with nothing pending stops run with STOP_WFI past the wfi; with an interrupt pending it continues', () => {
    const m = makeMachine((p) => p.emit(A.wfi(), A.ebreak()));
    expect(m.hart.run(100)).toBe(STOP_WFI);
    expect(m.hart.pc).toBe((BASE + 4) | 0);
    const m2 = makeMachine((p) => p.emit(A.wfi(), A.ebreak()));
    m2.hart.mie = C.MIP_SSIP;
    m2.hart.mip = C.MIP_SSIP; // pending and enabled in mie, though globally off in M
    m2.hart.run(100);
    expect(m2.hart.mcause).toBe(3);
  });
});

describe('misaligned accesses and jumps', () => {
  it('jal to a 2-aligned target traps on the jump, rd untouched', () => {
    const insn = A.jal(1, 6);
    const m = runAt(3, [insn]);
    expect(m.hart.mcause).toBe(0);
    expect(m.hart.mtval).toBe((BASE + 6) | 0);
    expect(m.hart.mepc).toBe(BASE);
    expect(m.hart.regs[1]).toBe(0);
  });

  it('jalr to a target with bit 1 set traps; bit 0 alone does not', () => {
    const m = runAt(3, [A.auipc(1, 0), A.jalr(2, 1, 10)]);
    expect(m.hart.mcause).toBe(0);
    expect(m.hart.mtval).toBe((BASE + 10) | 0);
    expect(m.hart.regs[2]).toBe(0);
  });

  it('taken branch to a misaligned target traps; not taken does not', () => {
    const m = runAt(3, [A.beq(0, 0, 6)]);
    expect(m.hart.mcause).toBe(0);
    expect(m.hart.mtval).toBe((BASE + 6) | 0);
    const m2 = runAt(3, [A.bne(0, 0, 6), A.ebreak()]);
    expect(m2.hart.mcause).toBe(3);
  });

  it('mepc/pc set to a misaligned value by the host traps on fetch', () => {
    const m = makeMachine((p) => p.emit(A.ebreak()));
    m.hart.pc = (BASE + 2) | 0;
    m.run(10);
    expect(m.hart.mcause).toBe(0);
    expect(m.hart.mtval).toBe((BASE + 2) | 0);
  });

  // Misaligned loads and stores are performed (misaligned.test.ts has every case).
  it.each([
    ['lw +1', A.lw(3, 1, 1), 0x14131211],
    ['lw +2', A.lw(3, 1, 2), 0x15141312],
    ['lh +1', A.lh(3, 1, 1), 0x1211],
    ['lhu +3', A.lhu(3, 1, 3), 0x1413],
  ])('%s does not trap: it loads the bytes at the address', (_n, insn, want) => {
    const D = (BASE + 0x10000) | 0;
    const m = runAt(3, [A.li(1, D), insn, A.ebreak()], (mm) => { mm.writePhys32(D, 0x13121110); mm.writePhys32(D + 4, 0x17161514); });
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[3]).toBe(want);
  });

  it.each([
    ['sw +2', A.sw(2, 1, 2), [0x55660000, 0x00007788]],
    ['sh +1', A.sh(2, 1, 1), [0x00556600, 0]],
  ])('%s does not trap: it stores the bytes at the address', (_n, insn, want) => {
    const D = (BASE + 0x10000) | 0;
    const m = runAt(3, [A.li(1, D), A.li(2, 0x77885566 | 0), insn, A.ebreak()]);
    expect(m.hart.mcause).toBe(3);
    expect([m.readPhys32(D), m.readPhys32(D + 4)]).toEqual(want);
  });

  it('byte accesses are never misaligned', () => {
    const D = (BASE + 0x10001) | 0;
    const m = runAt(3, [A.li(1, D), A.li(2, 0x55), A.sb(2, 1, 0), A.lbu(3, 1, 0), A.ebreak()]);
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[3]).toBe(0x55);
  });
});

describe('interrupts', () => {
  function irqMachine(priv: number, setup: (m: BareMachine) => void): BareMachine {
    return runAt(priv, [A.addi(1, 1, 1), A.jal(0, -4)], setup, 100);
  }

  it('pending + enabled M interrupt in M with MIE: taken with the interrupt bit', () => {
    const m = irqMachine(3, (mm) => {
      mm.hart.mstatus = C.MSTATUS_MIE;
      mm.hart.mie = C.MIP_MSIP;
      mm.hart.setInterruptPending(C.IRQ_MSI, true);
    });
    expect(u32(m.hart.mcause)).toBe(0x80000003);
    expect(m.hart.mepc).toBe(BASE);
    expect(m.hart.mtval).toBe(0);
  });

  it('M interrupts are masked in M by MIE=0 but always taken from S and U', () => {
    const masked = irqMachine(3, (mm) => { mm.hart.mie = C.MIP_MSIP; mm.hart.setInterruptPending(C.IRQ_MSI, true); });
    expect(masked.hart.mcause).toBe(0);
    for (const priv of [0, 1]) {
      const m = irqMachine(priv, (mm) => { mm.hart.mie = C.MIP_MSIP; mm.hart.setInterruptPending(C.IRQ_MSI, true); });
      expect(u32(m.hart.mcause)).toBe(0x80000003);
      expect((m.hart.mstatus >>> 11) & 3).toBe(priv);
    }
  });

  it('priority: MEI > MSI > MTI > SEI > SSI > STI', () => {
    const order = [C.IRQ_MEI, C.IRQ_MSI, C.IRQ_MTI, C.IRQ_SEI, C.IRQ_SSI, C.IRQ_STI];
    for (let k = 0; k < order.length; k++) {
      const m = irqMachine(0, (mm) => {
        mm.hart.mie = 0xaaa;
        for (const irq of order.slice(k)) {
          if (irq === C.IRQ_MTI) mm.hart.setMtimecmp(0, 0);
          else mm.hart.setInterruptPending(irq, true);
        }
      });
      expect(u32(m.hart.mcause)).toBe((0x80000000 | order[k]!) >>> 0);
    }
  });

  it('mideleg sends S interrupts to S; not taken in M; S needs SIE when in S', () => {
    const setup = (st: number) => (mm: BareMachine): void => {
      mm.hart.mideleg = C.MIP_STIP;
      mm.hart.mie = C.MIP_STIP;
      mm.hart.mstatus = st;
      mm.hart.setInterruptPending(C.IRQ_STI, true);
    };
    const fromU = irqMachine(0, setup(0));
    expect(u32(fromU.hart.scause)).toBe(0x80000005);
    expect(fromU.hart.priv).toBe(1);
    expect(fromU.hart.pc).toBe(STVEC);
    const sMasked = irqMachine(1, setup(0));
    expect(sMasked.hart.scause).toBe(0);
    const sOn = irqMachine(1, setup(C.MSTATUS_SIE));
    expect(u32(sOn.hart.scause)).toBe(0x80000005);
    const inM = irqMachine(3, setup(C.MSTATUS_MIE | C.MSTATUS_SIE));
    expect(inM.hart.scause).toBe(0);
    expect(inM.hart.mcause).toBe(0);
  });

  it('vectored mtvec: interrupts go to base + 4*cause, exceptions to base', () => {
    const VEC = (BASE + 0x4000) | 0;
    const m = irqMachine(3, (mm) => {
      mm.hart.mtvec = VEC | 1;
      mm.loadWords(VEC + 4 * 3, [A.wfi(), A.jal(0, -4)]);
      mm.hart.mstatus = C.MSTATUS_MIE;
      mm.hart.mie = C.MIP_MSIP;
      mm.hart.setInterruptPending(C.IRQ_MSI, true);
    });
    expect(u32(m.hart.mcause)).toBe(0x80000003);
    expect([VEC + 12, VEC + 16].map((v) => v | 0)).toContain(m.hart.pc); // parked (MSIP stays pending: wfi is a nop)
    const e = runAt(3, [A.ecall()], (mm) => {
      mm.hart.mtvec = VEC | 1;
      mm.loadWords(VEC, [A.wfi(), A.jal(0, -4)]);
    });
    expect(e.hart.mcause).toBe(11);
    expect([VEC, (VEC + 4) | 0]).toContain(e.hart.pc);
  });

  it('vectored stvec for a delegated interrupt', () => {
    const m = irqMachine(0, (mm) => {
      mm.hart.stvec = STVEC | 1;
      mm.loadWords(STVEC + 4 * 1, [A.wfi(), A.jal(0, -4)]);
      mm.hart.mideleg = C.MIP_SSIP;
      mm.hart.mie = C.MIP_SSIP;
      mm.hart.setInterruptPending(C.IRQ_SSI, true);
    });
    expect(u32(m.hart.scause)).toBe(0x80000001);
    expect([STVEC + 4, STVEC + 8].map((v) => v | 0)).toContain(m.hart.pc);
  });
});

describe('CLINT timer', () => {
  it('mtimecmp via MMIO raises MTIP at the programmed time and the handler runs', () => {
    const H = (BASE + 0x5000) | 0;
    const m = makeMachine((p) => {
      p.emit(A.li(1, CLINT_BASE + 0xbff8), A.lw(2, 1, 0)); // mtime
      p.emit(A.addi(2, 2, 100), A.li(3, CLINT_BASE + 0x4000), A.sw(0, 3, 4), A.sw(2, 3, 0)); // mtimecmp = now+100
      p.emit(A.li(4, C.MIP_MTIP), A.csrw(C.CSR_MIE, 4), A.csrrsi(0, C.CSR_MSTATUS, C.MSTATUS_MIE));
      p.label('spin').emit(A.addi(5, 5, 1)).to('spin', (o) => A.jal(0, o));
    });
    m.hart.mtvec = H;
    m.loadWords(H, [A.csrr(6, C.CSR_TIME), A.csrr(8, C.CSR_MCAUSE), A.csrw(C.CSR_MIE, 0), A.wfi()]);
    expect(m.run(10_000)).toBe(STOP_WFI);
    expect(u32(m.hart.regs[8]!)).toBe(0x80000007);
    expect(m.hart.regs[6]! - m.hart.regs[2]!).toBeGreaterThanOrEqual(0);
    expect(m.hart.regs[6]! - m.hart.regs[2]!).toBeLessThanOrEqual(2);
    expect(m.hart.regs[5]).toBeGreaterThan(20);
  });

  it('interrupt fires exactly when mtime reaches mtimecmp (divisor 1)', () => {
    const m = makeMachine((p) => { p.label('s').emit(A.addi(5, 5, 1)).to('s', (o) => A.jal(0, o)); });
    m.hart.setMtimecmp(1000, 0);
    m.hart.mie = C.MIP_MTIP;
    m.hart.mstatus = C.MSTATUS_MIE;
    m.hart.run(5000);
    expect(u32(m.hart.mcause)).toBe(0x80000007);
    expect(m.hart.regs[5]).toBe(500); // 1000 instructions of addi+jal
    expect(m.hart.getMtime()).toBeGreaterThanOrEqual(1000);
  });

  it('MTIP follows mtime >= mtimecmp and clears when mtimecmp moves', () => {
    const m = makeMachine((p) => p.emit(A.csrr(1, C.CSR_MIP), A.ebreak()));
    m.hart.setMtimecmp(0, 0);
    m.run(10);
    expect(m.hart.regs[1]! & C.MIP_MTIP).toBe(C.MIP_MTIP);
    m.clint.write(0x4004, 4, 1);
    expect(m.hart.mip & C.MIP_MTIP).toBe(0);
    expect(m.clint.read(0x4004, 4)).toBe(1);
    m.clint.write(0xbffc, 4, 2);
    expect(m.hart.mip & C.MIP_MTIP).toBe(C.MIP_MTIP);
    expect(m.clint.read(0xbffc, 4)).toBe(2);
  });

  it('msip through the CLINT raises MSIP', () => {
    const m = makeMachine((p) => p.emit(A.li(1, CLINT_BASE), A.addi(2, 0, 1), A.sw(2, 1, 0), A.lw(3, 1, 0), A.ebreak()));
    m.hart.mie = C.MIP_MSIP;
    m.hart.mstatus = C.MSTATUS_MIE;
    m.run(100);
    expect(u32(m.hart.mcause)).toBe(0x80000003);
    expect(m.hart.mepc).toBe((BASE + 16) | 0); // taken right after the store
  });

  it('wfi with the timer enabled skips time to the deadline', () => {
    const m = makeMachine((p) => p.emit(A.wfi(), A.csrr(1, C.CSR_TIME), A.csrr(2, C.CSR_INSTRET), A.ebreak()));
    m.hart.setMtimecmp(1_000_000, 0);
    m.hart.mie = C.MIP_MTIP; // enabled in mie, MIE off: wakes without taking the interrupt
    m.run(100);
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[1]).toBeGreaterThanOrEqual(1_000_000);
    expect(m.hart.regs[2]).toBe(2);
  });

  it('wfi with the timer enabled but mtimecmp out of reach returns STOP_WFI instead of jumping time', () => {
    const m = makeMachine((p) => p.emit(A.wfi(), A.ebreak()));
    m.hart.setMtimecmp(5, -1);
    m.hart.mie = C.MIP_MTIP;
    expect(m.run(100)).toBe(STOP_WFI);
    expect(m.hart.getMtime()).toBeLessThan(10);
  });

  it('budget exhaustion returns STOP_BUDGET', () => {
    const m = makeMachine((p) => { p.label('s').to('s', (o) => A.jal(0, o)); });
    expect(m.run(1234)).toBe(STOP_BUDGET);
    expect(m.hart.instret).toBe(1234);
  });
});

import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BASE, Pager, ROOT, makeMachine } from './harness.js';
import * as C from '../../src/hart/csr.js';
import { PTE_A, PTE_D, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X, Sv32Walk, sv32Translate, SV32_NO_MEMORY } from '../../src/hart/sv32.js';
import { ACCESS_FETCH, ACCESS_LOAD, ACCESS_STORE } from '../../src/hart/translator.js';
import type { BareMachine } from '../../src/hart/bare-machine.js';
import type { Prog } from './asm.js';

const DATA_PA = (BASE + 0x200000) | 0;
const DATA2_PA = (BASE + 0x201000) | 0;
const VA = 0x40000000;

const RWX = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;

interface PagedOpts {
  priv?: number;
  mstatus?: number;
  codeU?: boolean;
  budget?: number;
  map?: (pg: Pager, m: BareMachine) => void;
}

/** Run code at BASE with Sv32 on: code identity-mapped, traps to M (physical). */
function paged(code: (p: Prog) => void, o: PagedOpts = {}): { m: BareMachine; pg: Pager } {
  let pg!: Pager;
  const m = makeMachine(code, {
    ramSize: 16 << 20,
    setup: (mm) => {
      pg = new Pager(mm);
      pg.map4k(BASE, BASE, RWX | (o.codeU ? PTE_U : 0));
      pg.map4k(BASE + 0x1000, BASE + 0x1000, RWX | (o.codeU ? PTE_U : 0));
      o.map?.(pg, mm);
      mm.hart.satp = (0x80000000 | (ROOT >>> 12)) | 0;
      mm.hart.priv = o.priv ?? 1;
      mm.hart.mstatus = o.mstatus ?? 0;
    },
  });
  m.run(o.budget ?? 1000);
  return { m, pg };
}

/** Reference permission check, straight from privileged spec 4.3.1/4.3.2 step 5. */
function allowed(flags: number, access: number, priv: number, sum: boolean, mxr: boolean): boolean {
  if (flags & PTE_U) {
    if (priv === 1 && (access === ACCESS_FETCH || !sum)) return false;
  } else if (priv === 0) return false;
  if (access === ACCESS_FETCH) return (flags & PTE_X) !== 0;
  if (access === ACCESS_STORE) return (flags & PTE_W) !== 0;
  return (flags & PTE_R) !== 0 || (mxr && (flags & PTE_X) !== 0);
}

describe('Sv32 permission matrix', () => {
  const leafFlags = [PTE_R, PTE_R | PTE_W, PTE_X, PTE_R | PTE_X, PTE_R | PTE_W | PTE_X];
  const rows: Array<[string, number, number, number, boolean, boolean]> = [];
  for (const f of leafFlags) {
    for (const u of [0, PTE_U]) {
      for (const priv of [0, 1]) {
        for (const sum of [false, true]) {
          for (const mxr of [false, true]) {
            for (const access of [ACCESS_LOAD, ACCESS_STORE, ACCESS_FETCH]) {
              const name = `${'RWX'.split('').filter((_, k) => f & (2 << k)).join('')}${u ? 'U' : ''} ${'US'[priv]}`
                + `${sum ? ' SUM' : ''}${mxr ? ' MXR' : ''} ${['fetch', 'load', 'store'][access]}`;
              rows.push([name, f | u, priv, access, sum, mxr]);
            }
          }
        }
      }
    }
  }

  it.each(rows)('%s', (_name, flags, priv, access, sum, mxr) => {
    const ok = allowed(flags, access, priv, sum, mxr);
    const { m, pg } = paged((p) => {
      p.emit(A.li(1, VA), A.li(2, 0x77));
      if (access === ACCESS_LOAD) p.emit(A.lw(3, 1, 0));
      else if (access === ACCESS_STORE) p.emit(A.sw(2, 1, 0));
      else p.emit(A.jalr(0, 1, 0));
      p.emit(A.ebreak());
    }, {
      priv,
      codeU: priv === 0,
      mstatus: (sum ? C.MSTATUS_SUM : 0) | (mxr ? C.MSTATUS_MXR : 0),
      map: (pg2, mm) => {
        pg2.map4k(VA, DATA_PA, PTE_V | flags);
        mm.writePhys32(DATA_PA, A.ebreak());
      },
    });
    const pte = pg.pte(VA);
    if (ok) {
      expect(m.hart.mcause).toBe(3);
      if (access === ACCESS_FETCH) expect(m.hart.mepc).toBe(VA);
      if (access === ACCESS_LOAD) expect(m.hart.regs[3]).toBe(A.ebreak());
      if (access === ACCESS_STORE) expect(m.readPhys32(DATA_PA)).toBe(0x77);
      expect(pte & PTE_A).toBe(PTE_A);
      expect(pte & PTE_D).toBe(access === ACCESS_STORE ? PTE_D : 0);
    } else {
      expect(m.hart.mcause).toBe([12, 13, 15][access]);
      expect(m.hart.mtval).toBe(VA);
      expect(pte & (PTE_A | PTE_D)).toBe(0);
      if (access === ACCESS_STORE) expect(m.readPhys32(DATA_PA)).toBe(A.ebreak());
    }
  });
});

describe('Sv32 walk', () => {
  it('sets A on load and D on store in the PTE in memory', () => {
    const { m, pg } = paged((p) => p.emit(A.li(1, VA), A.lw(3, 1, 0), A.csrr(9, C.CSR_SSCRATCH), A.sw(3, 1, 4), A.ebreak()), {
      map: (pg2) => pg2.map4k(VA, DATA_PA, PTE_V | PTE_R | PTE_W),
    });
    expect(m.hart.mcause).toBe(3);
    expect(pg.pte(VA) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
  });

  it('4 MiB megapages translate the low 22 bits', () => {
    const MEGA_PA = (BASE + 0x400000) | 0;
    const { m } = paged((p) => p.emit(A.li(1, VA + 0x123454), A.lw(3, 1, 0), A.ebreak()), {
      map: (pg2, mm) => {
        pg2.mapMega(VA, MEGA_PA, PTE_V | PTE_R);
        mm.writePhys32(MEGA_PA + 0x123454, 0x5a5a);
      },
    });
    expect(m.hart.mcause).toBe(3);
    expect(m.hart.regs[3]).toBe(0x5a5a);
    expect(m.readPhys32(ROOT + (VA >>> 22) * 4) & PTE_A).toBe(PTE_A);
  });

  it('a misaligned megapage is a page fault', () => {
    const { m } = paged((p) => p.emit(A.li(1, VA + 8), A.lw(3, 1, 0), A.ebreak()), {
      map: (pg2) => pg2.mapMega(VA, (BASE + 0x401000) | 0, PTE_V | PTE_R),
    });
    expect(m.hart.mcause).toBe(13);
    expect(m.hart.mtval).toBe(VA + 8);
  });

  it.each([
    ['invalid', PTE_R],
    ['W without R', PTE_V | PTE_W],
    ['W+X without R', PTE_V | PTE_W | PTE_X],
  ])('%s leaf is a page fault', (_n, flags) => {
    const { m } = paged((p) => p.emit(A.li(1, VA), A.lw(3, 1, 0), A.ebreak()), {
      map: (pg2) => pg2.map4k(VA, DATA_PA, flags),
    });
    expect(m.hart.mcause).toBe(13);
  });

  it('a pointer PTE at level 0 is a page fault', () => {
    const { m } = paged((p) => p.emit(A.li(1, VA), A.sw(3, 1, 0), A.ebreak()), {
      map: (pg2) => pg2.map4k(VA, DATA_PA, PTE_V),
    });
    expect(m.hart.mcause).toBe(15);
    expect(m.hart.mtval).toBe(VA);
  });

  it('an unmapped level-1 entry is a page fault with the gva in stval when delegated', () => {
    const { m } = paged((p) => p.emit(A.li(1, 0x12345678), A.lw(3, 1, 0), A.ebreak()), {
      map: (_pg, mm) => {
        mm.hart.medeleg = 1 << 13;
        mm.hart.stvec = (BASE + 0x1000) | 0;
        mm.loadWords(BASE + 0x1000, [A.csrr(20, C.CSR_STVAL), A.ecall()]);
      },
    });
    expect(m.hart.scause).toBe(13);
    expect(m.hart.stval).toBe(0x12345678);
    expect(m.hart.regs[20]).toBe(0x12345678);
    expect(m.hart.mcause).toBe(9);
  });

  it('a page table outside RAM is an access fault', () => {
    const m = makeMachine((p) => p.emit(A.lw(3, 0, 0x100), A.ebreak()), {
      setup: (mm) => {
        mm.hart.priv = 3;
        mm.hart.mstatus = C.MSTATUS_MPRV | (1 << 11); // loads as S
        mm.hart.satp = (0x80000000 | 0x1000) | 0; // root at pa 0x1000000: no RAM there
      },
    });
    m.run(100);
    expect(m.hart.mcause).toBe(5);
    expect(m.hart.mtval).toBe(0x100);
  });

  it('satp MODE=0 in S is bare', () => {
    const m = makeMachine((p) => p.emit(A.li(1, DATA_PA), A.lw(3, 1, 0), A.ebreak()), {
      setup: (mm) => { mm.hart.priv = 1; mm.writePhys32(DATA_PA, 99); },
    });
    m.run(100);
    expect(m.hart.regs[3]).toBe(99);
  });

  it('pure walker: no A/D update on request, SV32_NO_MEMORY is an access fault', () => {
    const mem = new Map<number, number>([[0x1000 + (VA >>> 22) * 4, ((0x2 << 10) | PTE_V)], [0x2000, ((0x5 << 10) | PTE_V | PTE_R)]]);
    const writes: number[] = [];
    const w = new Sv32Walk();
    const ok = sv32Translate(w, {
      readPte: (pa) => mem.get(pa) ?? SV32_NO_MEMORY,
      writePte: (pa) => { writes.push(pa); },
    }, 0x80000001 | 0, VA + 0x10, ACCESS_LOAD, 1, false, false, false);
    expect(ok).toBe(true);
    expect(w.pa).toBe(0x5010);
    expect(w.level).toBe(0);
    expect(writes).toEqual([]);
    const bad = sv32Translate(w, { readPte: () => SV32_NO_MEMORY, writePte: () => undefined }, 0x80000001 | 0, VA, ACCESS_STORE, 1, false, false);
    expect(bad).toBe(false);
    expect(w.cause).toBe(7);
  });
});

describe('MPRV', () => {
  it('M-mode loads and stores translate at MPP; fetch stays physical', () => {
    const m = makeMachine((p) => p.emit(A.li(1, VA), A.lw(3, 1, 0), A.sw(3, 1, 4), A.ebreak()), {
      ramSize: 16 << 20,
      setup: (mm) => {
        const pg = new Pager(mm);
        pg.map4k(VA, DATA_PA, PTE_V | PTE_R | PTE_W);
        mm.writePhys32(DATA_PA, 1234);
        mm.hart.satp = (0x80000000 | (ROOT >>> 12)) | 0;
        mm.hart.mstatus = C.MSTATUS_MPRV | (1 << 11);
      },
    });
    m.run(100);
    expect(m.hart.mcause).toBe(3);
    expect(m.readPhys32(DATA_PA + 4)).toBe(1234);
  });

  it('MPP=U makes S pages fault; SUM does not apply to U', () => {
    const m = makeMachine((p) => p.emit(A.li(1, VA), A.lw(3, 1, 0), A.ebreak()), {
      ramSize: 16 << 20,
      setup: (mm) => {
        new Pager(mm).map4k(VA, DATA_PA, PTE_V | PTE_R);
        mm.hart.satp = (0x80000000 | (ROOT >>> 12)) | 0;
        mm.hart.mstatus = C.MSTATUS_MPRV | C.MSTATUS_SUM;
      },
    });
    m.run(100);
    expect(m.hart.mcause).toBe(13);
  });

  it('clearing MPRV drops the translated view (TLB flushed on the mstatus write)', () => {
    const m = makeMachine((p) => p.emit(
      A.li(1, VA), A.lw(3, 1, 0), // translated: reads DATA_PA
      A.csrrci(0, C.CSR_MSTATUS, 0), A.li(5, C.MSTATUS_MPRV), A.csrrc(0, C.CSR_MSTATUS, 5),
      A.li(1, DATA2_PA), A.lw(4, 1, 0), // physical
      A.ebreak(),
    ), {
      ramSize: 16 << 20,
      setup: (mm) => {
        new Pager(mm).map4k(VA, DATA_PA, PTE_V | PTE_R);
        mm.writePhys32(DATA_PA, 1);
        mm.writePhys32(DATA2_PA, 2);
        mm.hart.satp = (0x80000000 | (ROOT >>> 12)) | 0;
        mm.hart.mstatus = C.MSTATUS_MPRV | (1 << 11);
      },
    });
    m.run(100);
    expect([m.hart.regs[3], m.hart.regs[4]]).toEqual([1, 2]);
  });
});

describe('TLB and sfence.vma', () => {
  /** Load VA, retarget the PTE to DATA2, optionally fence, load VA again. */
  function remap(fence: number[], extra?: (pg: Pager) => void): [number, number] {
    const { m } = paged((p) => p.emit(
      A.li(1, VA), A.lw(3, 1, 0),
      A.li(6, 0), // filled in by the test: the new PTE value via x7/x8
      A.sw(7, 8, 0), // *pte = new
      ...fence,
      A.lw(4, 1, 0),
      A.ebreak(),
    ), {
      map: (pg, mm) => {
        pg.map4k(VA, DATA_PA, PTE_V | PTE_R | PTE_A);
        pg.map4k(0x50000000, pg.ptePa(VA), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D); // the PTE page, writable
        extra?.(pg);
        mm.writePhys32(DATA_PA, 1);
        mm.writePhys32(DATA2_PA, 2);
        mm.hart.regs[7] = (((DATA2_PA >>> 12) << 10) | PTE_V | PTE_R | PTE_A) | 0;
        mm.hart.regs[8] = (0x50000000 + (pg.ptePa(VA) & 0xfff)) | 0;
        mm.hart.regs[9] = (VA + 0x1000) | 0;
        mm.hart.regs[10] = 5; // an ASID
      },
    });
    expect(m.hart.mcause).toBe(3);
    return [m.hart.regs[3]!, m.hart.regs[4]!];
  }

  it('without sfence the old translation may stay (it does here)', () => {
    expect(remap([])).toEqual([1, 1]);
  });

  it('sfence.vma of another page keeps it', () => {
    expect(remap([A.sfence_vma(9, 0)])).toEqual([1, 1]);
  });

  it('sfence.vma of the address sees the new PTE', () => {
    expect(remap([A.sfence_vma(1, 0)])).toEqual([1, 2]);
  });

  it('sfence.vma x0, x0 sees the new PTE', () => {
    expect(remap([A.sfence_vma(0, 0)])).toEqual([1, 2]);
  });

  it('sfence.vma x0, asid sees the new PTE', () => {
    expect(remap([A.sfence_vma(0, 10)])).toEqual([1, 2]);
  });

  it('flushTlbPage drops only that page', () => {
    const m = makeMachine((p) => p.emit(A.ebreak()), { ramSize: 16 << 20 });
    const h = m.hart;
    h.loadTag[(VA >>> 12) & 511] = VA;
    h.loadTag[((VA + 0x1000) >>> 12) & 511] = VA + 0x1000;
    h.storeTag[(VA >>> 12) & 511] = VA;
    h.fetchTag[(VA >>> 12) & 511] = VA;
    h.flushTlbPage(VA + 0x123);
    expect(h.loadTag[(VA >>> 12) & 511]).toBe(-1);
    expect(h.storeTag[(VA >>> 12) & 511]).toBe(-1);
    expect(h.fetchTag[(VA >>> 12) & 511]).toBe(-1);
    expect(h.loadTag[((VA + 0x1000) >>> 12) & 511]).toBe(VA + 0x1000);
  });

  it('a single-address sfence inside a megapage drops every cached piece of it', () => {
    const MEGA_PA = (BASE + 0x400000) | 0;
    const { m } = paged((p) => p.emit(
      A.li(1, VA + 0x5000), A.lw(3, 1, 0), // caches the piece at +0x5000
      A.sw(7, 8, 0), // retarget the megapage
      A.li(11, VA + 0x9000), A.sfence_vma(11, 0), // fence a different 4 KiB piece of the same megapage
      A.lw(4, 1, 0),
      A.ebreak(),
    ), {
      map: (pg, mm) => {
        pg.mapMega(VA, MEGA_PA, PTE_V | PTE_R | PTE_A);
        pg.map4k(0x50000000, ROOT, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        mm.writePhys32(MEGA_PA + 0x5000, 1);
        mm.writePhys32(BASE + 0x800000 + 0x5000, 2);
        mm.hart.regs[7] = ((((BASE + 0x800000) >>> 12) << 10) | PTE_V | PTE_R | PTE_A) | 0;
        mm.hart.regs[8] = (0x50000000 + (VA >>> 22) * 4) | 0;
      },
    });
    expect(m.hart.mcause).toBe(3);
    expect([m.hart.regs[3], m.hart.regs[4]]).toEqual([1, 2]);
  });

  it('a satp write flushes', () => {
    const { m } = paged((p) => p.emit(
      A.li(1, VA), A.lw(3, 1, 0), A.sw(7, 8, 0), A.csrr(12, C.CSR_SATP), A.csrw(C.CSR_SATP, 12), A.lw(4, 1, 0), A.ebreak(),
    ), {
      map: (pg, mm) => {
        pg.map4k(VA, DATA_PA, PTE_V | PTE_R | PTE_A);
        pg.map4k(0x50000000, pg.ptePa(VA), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        mm.writePhys32(DATA_PA, 1);
        mm.writePhys32(DATA2_PA, 2);
        mm.hart.regs[7] = (((DATA2_PA >>> 12) << 10) | PTE_V | PTE_R | PTE_A) | 0;
        mm.hart.regs[8] = (0x50000000 + (pg.ptePa(VA) & 0xfff)) | 0;
      },
    });
    expect([m.hart.regs[3], m.hart.regs[4]]).toEqual([1, 2]);
  });

  it('a store after a load to a clean page walks again and sets D', () => {
    const { m, pg } = paged((p) => p.emit(A.li(1, VA), A.lw(3, 1, 0), A.sw(3, 1, 8), A.ebreak()), {
      map: (pg2) => pg2.map4k(VA, DATA_PA, PTE_V | PTE_R | PTE_W),
    });
    expect(m.hart.mcause).toBe(3);
    expect(pg.pte(VA) & PTE_D).toBe(PTE_D);
  });

  it('U-mode code page fetch from S is a fetch page fault even with SUM', () => {
    const { m } = paged((p) => p.emit(A.ebreak()), { codeU: true, mstatus: C.MSTATUS_SUM });
    expect(m.hart.mcause).toBe(12);
    expect(m.hart.mtval).toBe(BASE);
  });
});

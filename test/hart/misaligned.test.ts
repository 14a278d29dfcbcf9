// Misaligned loads and stores are performed (see the comment above
// Hart.loadMisaligned): in every mode, within a page and across a page boundary
// (both pages translated before any byte moves), into MMIO as aligned pieces,
// while AMOs and LR/SC keep raising the address-misaligned exception.
import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BASE, Pager, ROOT, makeMachine } from './harness.js';
import * as C from '../../src/hart/csr.js';
import { STOP_EXIT } from '../../src/hart/hart.js';
import { PTE_A, PTE_D, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X } from '../../src/hart/sv32.js';
import { ACCESS_LOAD, ACCESS_STORE, TRANSLATE_EXIT, type Translator } from '../../src/hart/translator.js';
import type { BareMachine, MmioDevice } from '../../src/hart/bare-machine.js';
import type { Hart } from '../../src/hart/hart.js';

const VA = 0x40000000;
/** Physical pages behind VA and VA + 0x1000 under Sv32: not adjacent, so a wrong contiguity shows. */
const P0 = (BASE + 0x200000) | 0;
const P1 = (BASE + 0x203000) | 0;
const SENTINEL = 0x5eed5eed;
const STORE_VALUE = 0x89abcdef | 0;

interface Mode {
  name: string;
  priv: number;
  paging: boolean;
  /** M-mode with MPRV = 1 and MPP = S: loads and stores translate as S, fetch stays physical. */
  mprv?: boolean;
}

const MODES: Mode[] = [
  { name: 'M', priv: 3, paging: false },
  { name: 'S bare', priv: 1, paging: false },
  { name: 'U bare', priv: 0, paging: false },
  { name: 'S Sv32', priv: 1, paging: true },
  { name: 'U Sv32', priv: 0, paging: true },
  { name: 'M MPRV (S, Sv32)', priv: 3, paging: true, mprv: true },
];
const PAGED = MODES.filter((m) => m.paging);

type Op = { name: string; width: number; store: boolean; signed: boolean; enc: (r: number, base: number, off: number) => number };
const OPS: Op[] = [
  { name: 'lh', width: 2, store: false, signed: true, enc: A.lh },
  { name: 'lhu', width: 2, store: false, signed: false, enc: A.lhu },
  { name: 'lw', width: 4, store: false, signed: true, enc: A.lw },
  { name: 'sh', width: 2, store: true, signed: false, enc: A.sh },
  { name: 'sw', width: 4, store: true, signed: false, enc: A.sw },
];

/** The byte pattern the data pages start with. */
const pattern = (pa: number): number => ((pa * 37 + 11) >>> 0) & 0xff;

/** Byte-wise reference load: little-endian, then sign or zero extension. */
function refLoad(bytes: number[], width: number, signed: boolean): number {
  let v = 0;
  for (let k = 0; k < width; k++) v |= bytes[k]! << (8 * k);
  if (width === 2) return signed ? (v << 16) >> 16 : v & 0xffff;
  return v | 0;
}

/** Where the data address `va` lands physically in this mode. */
function paOf(mode: Mode, va: number): number {
  if (!mode.paging) return va;
  return ((((va - VA) >>> 12) === 0 ? P0 : P1) + (va & 0xfff)) | 0;
}

interface Setup {
  mode: Mode;
  /** Map the second page (paging modes). */
  second?: boolean;
  /** PTE flags of the data pages (V and U added as needed). */
  flags?: number;
  devices?: MmioDevice[];
  extra?: (m: BareMachine, pg: Pager | null) => void;
}

/**
 * A machine whose program runs at `mode` and touches data at VA (paging) or at
 * P0 (no paging, where the second page is simply P0 + 0x1000). Traps go to M's PARK.
 */
function machine(code: (p: A.Prog) => void, s: Setup): { m: BareMachine; pg: Pager | null; data: number } {
  const { mode } = s;
  let pg: Pager | null = null;
  const m = makeMachine(code, {
    devices: s.devices ?? [],
    setup: (mm) => {
      for (let pa = P0 - 0x1000; pa < P1 + 0x2000; pa++) mm.writePhys8(pa, pattern(pa));
      if (mode.paging) {
        pg = new Pager(mm);
        const u = mode.priv === 0 ? PTE_U : 0;
        pg.map4k(BASE, BASE, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | u);
        const flags = (s.flags ?? (PTE_R | PTE_W)) | PTE_V | u;
        pg.map4k(VA, P0, flags);
        if (s.second !== false) pg.map4k(VA + 0x1000, P1, flags);
        mm.hart.satp = (0x80000000 | (ROOT >>> 12)) | 0;
      }
      mm.hart.priv = mode.priv;
      mm.hart.mstatus = mode.mprv ? C.MSTATUS_MPRV | (1 << 11) : 0;
      mm.hart.regs[3] = SENTINEL;
      s.extra?.(mm, pg);
    },
  });
  return { m, pg, data: mode.paging ? VA : P0 };
}

/** One access at data + off, then ebreak: li x1, data + off; li x2, STORE_VALUE; op x, 0(x1). */
function access(op: Op, data: number, off: number): (p: A.Prog) => void {
  return (p) => p.emit(A.li(1, data + off), A.li(2, STORE_VALUE), op.store ? op.enc(2, 1, 0) : op.enc(3, 1, 0), A.ebreak());
}

/** The access's bytes as they are in physical memory now. */
function bytesAt(m: BareMachine, mode: Mode, va: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => m.readPhys8(paOf(mode, (va + k) | 0)));
}

/** Every byte of both data pages (and one page either side) that differs from the pattern. */
function changedBytes(m: BareMachine): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let pa = P0 - 0x1000; pa < P1 + 0x2000; pa++) {
    const b = m.readPhys8(pa);
    if (b !== pattern(pa)) out.push([pa >>> 0, b]);
  }
  return out;
}

function expectPerformed(m: BareMachine, mode: Mode, op: Op, va: number): void {
  expect(m.hart.mcause, `mtval=0x${(m.hart.mtval >>> 0).toString(16)}`).toBe(C.CAUSE_BREAKPOINT);
  if (op.store) {
    const want: Array<[number, number]> = [];
    for (let k = 0; k < op.width; k++) {
      const pa = paOf(mode, (va + k) | 0);
      const b = (STORE_VALUE >>> (8 * k)) & 0xff;
      if (b !== pattern(pa)) want.push([pa >>> 0, b]);
    }
    expect(changedBytes(m).sort((a, b) => a[0] - b[0])).toEqual(want.sort((a, b) => a[0] - b[0]));
  } else {
    const bytes = Array.from({ length: op.width }, (_, k) => pattern(paOf(mode, (va + k) | 0)));
    expect(m.hart.regs[3]).toBe(refLoad(bytes, op.width, op.signed));
    expect(changedBytes(m)).toEqual([]);
  }
}

describe('misaligned loads and stores within a page', () => {
  const rows: Array<[string, Mode, Op, number]> = [];
  for (const mode of MODES) for (const op of OPS) for (let off = 0; off < 8; off++) rows.push([`${mode.name} ${op.name} +${off}`, mode, op, off]);

  it.each(rows)('%s matches the byte-wise reference', (_n, mode, op, off) => {
    const { m, data } = machine(access(op, (data0(mode) + 0x100) | 0, off), { mode });
    m.run(1000);
    expectPerformed(m, mode, op, (data + 0x100 + off) | 0);
  });

  it('rd = x0 stays zero; rd = rs1 gets the loaded value', () => {
    const { m } = machine((p) => p.emit(A.li(1, P0 + 0x101), A.lw(0, 1, 0), A.lw(1, 1, 2), A.ebreak()), { mode: MODES[0]! });
    m.run(100);
    expect(m.hart.regs[0]).toBe(0);
    expect(m.hart.regs[1]).toBe(refLoad(bytesAt(m, MODES[0]!, (P0 + 0x103) | 0, 4), 4, true));
  });

  it('a misaligned load reads what an aligned store just wrote through the TLB, and the reverse', () => {
    const { m } = machine((p) => p.emit(
      A.li(1, VA + 0x200), A.li(2, 0x11223344), A.sw(2, 1, 0), A.sw(0, 1, 4), // aligned, TLB fast path
      A.lw(3, 1, 1), // misaligned
      A.li(4, -1), A.sh(4, 1, 3), A.lw(5, 1, 0), A.lw(6, 1, 4), // misaligned store, aligned loads
      A.ebreak(),
    ), { mode: PAGED[0]! });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_BREAKPOINT);
    expect(m.hart.regs[3] >>> 0).toBe(0x00112233);
    expect(m.hart.regs[5] >>> 0).toBe(0xff223344);
    expect(m.hart.regs[6] >>> 0).toBe(0x000000ff);
  });
});

/** Data base without the +0x100 that machine() users add. */
function data0(mode: Mode): number {
  return mode.paging ? VA : P0;
}

describe('misaligned loads and stores across a page boundary', () => {
  const rows: Array<[string, Mode, Op, number]> = [];
  for (const mode of MODES) {
    for (const op of OPS) {
      for (let k = 1; k < op.width; k++) rows.push([`${mode.name} ${op.name} at page end - ${k}`, mode, op, 0x1000 - k]);
    }
  }

  it.each(rows)('%s: both pages, byte-wise reference', (_n, mode, op, off) => {
    const { m, pg } = machine(access(op, data0(mode), off), { mode });
    m.run(1000);
    expectPerformed(m, mode, op, (data0(mode) + off) | 0);
    if (pg !== null) {
      // Hardware A/D: both ptes were walked, A on a load, A and D on a store.
      const want = PTE_A | (op.store ? PTE_D : 0);
      expect(pg.pte(VA) & (PTE_A | PTE_D)).toBe(want);
      expect(pg.pte(VA + 0x1000) & (PTE_A | PTE_D)).toBe(want);
    }
  });

  it('wraps from 0xffffffff to 0 under Sv32', () => {
    const mode = PAGED[0]!;
    const { m } = machine((p) => p.emit(A.li(1, -2), A.lw(3, 1, 0), A.li(2, STORE_VALUE), A.sw(2, 1, -1), A.ebreak()), {
      mode,
      extra: (_mm, pg) => {
        pg!.map4k(0xfffff000 | 0, P0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        pg!.map4k(0, P1, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
      },
    });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_BREAKPOINT);
    expect(m.hart.regs[3]).toBe(refLoad([pattern(P0 + 0xffe), pattern(P0 + 0xfff), pattern(P1), pattern(P1 + 1)], 4, true));
    expect([m.readPhys8(P0 + 0xffd), m.readPhys8(P0 + 0xffe), m.readPhys8(P0 + 0xfff), m.readPhys8(P1)])
      .toEqual([0xef, 0xcd, 0xab, 0x89]);
  });

  it('past the end of RAM (paging off) the second part is an access fault at its own address; nothing stored', () => {
    const END = (BASE + (4 << 20)) | 0;
    for (const [op, cause] of [[OPS[2]!, C.CAUSE_LOAD_ACCESS], [OPS[4]!, C.CAUSE_STORE_ACCESS]] as const) {
      const m = makeMachine((p) => p.emit(A.li(1, END - 2), A.li(2, STORE_VALUE), A.li(3, SENTINEL), op.enc(op.store ? 2 : 3, 1, 0), A.ebreak()));
      m.writePhys16(END - 2, 0x1234);
      m.run(100);
      expect(m.hart.mcause).toBe(cause);
      expect(m.hart.mtval).toBe(END);
      expect(m.hart.regs[3]).toBe(SENTINEL);
      expect(m.readPhys16(END - 2)).toBe(0x1234);
    }
  });
});

describe('a fault on either page leaves the instruction undone and restartable', () => {
  const rows: Array<[string, Mode, Op, number]> = [];
  for (const mode of PAGED) {
    for (const op of OPS) {
      for (let k = 1; k < op.width; k++) rows.push([`${mode.name} ${op.name} at page end - ${k}`, mode, op, 0x1000 - k]);
    }
  }

  it.each(rows)('%s, second page unmapped: page fault with tval = its first byte, then restart', (_n, mode, op, off) => {
    const { m, pg } = machine(access(op, VA, off), { mode, second: false });
    m.run(1000);
    const insnPc = (BASE + 16) | 0; // after li x1 (2 words), li x2 (2 words)
    expect(m.hart.mcause).toBe(op.store ? C.CAUSE_STORE_PAGE_FAULT : C.CAUSE_LOAD_PAGE_FAULT);
    expect(m.hart.mtval).toBe(VA + 0x1000);
    expect(m.hart.mepc).toBe(insnPc);
    expect(m.hart.regs[3]).toBe(SENTINEL);
    expect(changedBytes(m)).toEqual([]);
    // The first page was translated before the second faulted: its pte got A (and D
    // for a store), as on QEMU and Spike. Only the access itself is not performed.
    expect(pg!.pte(VA) & (PTE_A | PTE_D)).toBe(PTE_A | (op.store ? PTE_D : 0));

    // Map it and return to the instruction as a handler would (mret to mepc).
    const u = mode.priv === 0 ? PTE_U : 0;
    pg!.map4k(VA + 0x1000, P1, PTE_V | PTE_R | PTE_W | u);
    m.hart.pc = m.hart.mepc;
    m.hart.setPrivilege(mode.priv);
    m.hart.writeCsr(C.CSR_MSTATUS, mode.mprv ? C.MSTATUS_MPRV | (1 << 11) : 0);
    m.run(1000);
    expectPerformed(m, mode, op, (VA + off) | 0);
  });

  it.each(rows)('%s, first page unmapped: page fault with tval = the address', (_n, mode, op, off) => {
    const { m, pg } = machine(access(op, VA, off), {
      mode,
      extra: (mm, pg0) => mm.writePhys32(pg0!.ptePa(VA), 0),
    });
    m.run(1000);
    expect(m.hart.mcause).toBe(op.store ? C.CAUSE_STORE_PAGE_FAULT : C.CAUSE_LOAD_PAGE_FAULT);
    expect(m.hart.mtval).toBe((VA + off) | 0);
    expect(m.hart.regs[3]).toBe(SENTINEL);
    expect(changedBytes(m)).toEqual([]);
    expect(pg!.pte(VA + 0x1000) & PTE_A).toBe(0); // the first failure stops the translation
  });

  it.each([['sh', OPS[3]!, 0xfff], ['sw', OPS[4]!, 0xffd], ['sw', OPS[4]!, 0xfff]] as const)(
    '%s at +0x%s: second page read-only, store page fault, the first page keeps its bytes',
    (_n, op, off) => {
      const { m } = machine(access(op, VA, off), {
        mode: PAGED[0]!,
        extra: (_mm, pg) => pg!.map4k(VA + 0x1000, P1, PTE_V | PTE_R | PTE_A),
      });
      m.run(1000);
      expect(m.hart.mcause).toBe(C.CAUSE_STORE_PAGE_FAULT);
      expect(m.hart.mtval).toBe(VA + 0x1000);
      expect(changedBytes(m)).toEqual([]);
    },
  );

  it('a delegated S handler maps the second page and sret restarts the store', () => {
    const PT_WINDOW = 0x50000000;
    const STVEC_VA = (BASE + 0x1000) | 0;
    let pg!: Pager;
    const m = makeMachine((p) => p.emit(A.li(1, VA + 0xffe), A.li(2, STORE_VALUE), A.sw(2, 1, 0), A.lw(3, 1, 0), A.ecall()), {
      setup: (mm) => {
        for (let pa = P0; pa < P1 + 0x1000; pa++) mm.writePhys8(pa, 0);
        pg = new Pager(mm);
        pg.map4k(BASE, BASE, PTE_V | PTE_R | PTE_X | PTE_A);
        pg.map4k(STVEC_VA, STVEC_VA, PTE_V | PTE_R | PTE_X | PTE_A);
        pg.map4k(VA, P0, PTE_V | PTE_R | PTE_W);
        pg.map4k(PT_WINDOW, pg.ptePa(VA) & ~0xfff, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        const pteOff = pg.ptePa(VA + 0x1000) & 0xfff;
        const newPte = (((P1 >>> 12) << 10) | PTE_V | PTE_R | PTE_W) | 0;
        // handler: x20 = scause, x21 = stval, x22++; map VA + 0x1000; sfence.vma; sret
        mm.loadWords(STVEC_VA, [
          A.csrr(20, C.CSR_SCAUSE), A.csrr(21, C.CSR_STVAL), A.addi(22, 22, 1),
          A.li(23, PT_WINDOW + pteOff), A.li(24, newPte), A.sw(24, 23, 0), A.sfence_vma(21, 0), A.sret(),
        ].flat());
        mm.hart.medeleg = 1 << C.CAUSE_STORE_PAGE_FAULT;
        mm.hart.stvec = STVEC_VA;
        mm.hart.satp = (0x80000000 | (ROOT >>> 12)) | 0;
        mm.hart.priv = 1;
      },
    });
    m.run(1000);
    expect(m.hart.mcause).toBe(C.CAUSE_SUPERVISOR_ECALL);
    expect([m.hart.regs[20], m.hart.regs[21], m.hart.regs[22]]).toEqual([C.CAUSE_STORE_PAGE_FAULT, VA + 0x1000, 1]);
    expect(m.hart.regs[3]).toBe(STORE_VALUE);
    expect([m.readPhys16(P0 + 0xffe), m.readPhys16(P1)]).toEqual([0xcdef, 0x89ab]);
    expect(pg.pte(VA + 0x1000) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
  });
});

/** Wraps the machine's translator: TRANSLATE_EXIT once for the page `exitPage`; logs every call. */
function exitOnce(m: BareMachine, exitPage: number): string[] {
  const log: string[] = [];
  let armed = true;
  const tr: Translator = {
    get lastPa() { return m.lastPa; },
    get lastSuperpage() { return m.lastSuperpage; },
    translate(h: Hart, gva: number, acc: number): number {
      const what = `${acc === ACCESS_LOAD ? 'load' : acc === ACCESS_STORE ? 'store' : 'fetch'} ${(gva >>> 0).toString(16)}`;
      if (armed && (gva & ~0xfff) === exitPage && acc !== 0) {
        armed = false;
        log.push(`${what} exit`);
        return TRANSLATE_EXIT;
      }
      if (acc !== 0) log.push(what);
      return m.translate(h, gva, acc);
    },
  };
  m.hart.translator = tr;
  return log;
}

describe('TRANSLATE_EXIT on either page', () => {
  const rows: Array<[string, Mode, Op, number, number]> = [];
  for (const mode of [MODES[0]!, ...PAGED]) {
    for (const op of [OPS[0]!, OPS[2]!, OPS[3]!, OPS[4]!]) {
      for (const page of [0, 1]) rows.push([`${mode.name} ${op.name} exit on page ${page}`, mode, op, op.width === 4 ? 0xffd : 0xfff, page]);
    }
  }

  it.each(rows)('%s: stops before the instruction, nothing done, the restart completes it', (_n, mode, op, off, page) => {
    const { m } = machine(access(op, data0(mode), off), { mode });
    const base = data0(mode);
    const log = exitOnce(m, (base + page * 0x1000) | 0);
    const insnPc = (BASE + 16) | 0;
    expect(m.hart.run(1000)).toBe(STOP_EXIT);
    expect(m.hart.pc).toBe(insnPc);
    expect(m.hart.lastRunInsns).toBe(4); // the two li pairs; the access has not begun
    expect(m.hart.regs[3]).toBe(SENTINEL);
    expect(changedBytes(m)).toEqual([]);
    const kind = op.store ? 'store' : 'load';
    const p1 = ((base + 0x1000) >>> 0).toString(16);
    const a0 = ((base + off) >>> 0).toString(16);
    // Lowest part first; the exit stops the translation.
    expect(log).toEqual(page === 0 ? [`${kind} ${a0} exit`] : [`${kind} ${a0}`, `${kind} ${p1} exit`]);
    log.length = 0;
    m.run(1000);
    expectPerformed(m, mode, op, (base + off) | 0);
    // The restart finds the part that translated in the soft TLB; only the other one misses again.
    expect(log).toEqual(page === 0 ? [`${kind} ${a0}`, `${kind} ${p1}`] : [`${kind} ${p1}`]);
  });

  it('within a page: one translation, exit and restart', () => {
    const mode = PAGED[0]!;
    const { m } = machine(access(OPS[4]!, VA, 0x101), { mode });
    const log = exitOnce(m, VA);
    expect(m.hart.run(1000)).toBe(STOP_EXIT);
    expect(changedBytes(m)).toEqual([]);
    m.run(1000);
    expectPerformed(m, mode, OPS[4]!, VA + 0x101);
    expect(log).toEqual([`store ${(VA + 0x101).toString(16)} exit`, `store ${(VA + 0x101).toString(16)}`]);
  });
});

/** A device that is byte-addressable memory and records every access as "offset:width". */
class RecordingDevice implements MmioDevice {
  readonly bytes: Uint8Array;
  readonly log: string[] = [];
  constructor(readonly name: string, readonly base: number, readonly size: number) {
    this.bytes = new Uint8Array(size + 8);
    for (let i = 0; i < this.bytes.length; i++) this.bytes[i] = (0xa0 + i) & 0xff;
  }
  read(offset: number, width: 1 | 2 | 4): number {
    this.log.push(`r${offset}:${width}`);
    let v = 0;
    for (let k = 0; k < width; k++) v |= this.bytes[offset + k]! << (8 * k);
    return v;
  }
  write(offset: number, width: 1 | 2 | 4, value: number): void {
    this.log.push(`w${offset}:${width}=${(value >>> 0).toString(16)}`);
    for (let k = 0; k < width; k++) this.bytes[offset + k] = value >>> (8 * k);
  }
}

describe('misaligned accesses to MMIO are split into aligned pieces, lowest address first (as QEMU)', () => {
  const DEV = 0x10000000;
  const cases: Array<[string, Op, number, string[]]> = [
    ['lh +1', OPS[0]!, 1, ['r1:1', 'r2:1']],
    ['lhu +3', OPS[1]!, 3, ['r3:1', 'r4:1']],
    ['lw +1', OPS[2]!, 1, ['r1:1', 'r2:1', 'r3:1', 'r4:1']],
    ['lw +2', OPS[2]!, 2, ['r2:2', 'r4:2']],
    ['lw +3', OPS[2]!, 3, ['r3:1', 'r4:1', 'r5:1', 'r6:1']],
    ['sh +1', OPS[3]!, 1, ['w1:1=ef', 'w2:1=cd']],
    ['sw +1', OPS[4]!, 1, ['w1:1=ef', 'w2:1=cd', 'w3:1=ab', 'w4:1=89']],
    ['sw +2', OPS[4]!, 2, ['w2:2=cdef', 'w4:2=89ab']],
    ['sw +3', OPS[4]!, 3, ['w3:1=ef', 'w4:1=cd', 'w5:1=ab', 'w6:1=89']],
  ];

  it.each(cases)('%s', (_n, op, off, pieces) => {
    const dev = new RecordingDevice('rec', DEV, 0x1000);
    const m = makeMachine(access(op, DEV, off), { devices: [dev], setup: (mm) => { mm.hart.regs[3] = SENTINEL; } });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_BREAKPOINT);
    expect(dev.log).toEqual(pieces);
    if (op.store) {
      expect([...dev.bytes.subarray(off, off + op.width)]).toEqual([0xef, 0xcd, 0xab, 0x89].slice(0, op.width));
    } else {
      const bytes = Array.from({ length: op.width }, (_, k) => 0xa0 + off + k);
      expect(m.hart.regs[3]).toBe(refLoad(bytes, op.width, op.signed));
    }
  });

  it('across from a RAM page into a device page (Sv32): the RAM bytes, then the device piece', () => {
    const dev = new RecordingDevice('rec', DEV, 0x1000);
    const { m } = machine((p) => p.emit(A.li(1, VA + 0xffe), A.li(2, STORE_VALUE), A.sw(2, 1, 0), A.lw(3, 1, -1), A.ebreak()), {
      mode: PAGED[0]!,
      second: false,
      devices: [dev],
      extra: (_mm, pg) => pg!.map4k(VA + 0x1000, DEV, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D),
    });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_BREAKPOINT);
    expect(dev.log).toEqual(['w0:2=89ab', 'r0:1']);
    expect([m.readPhys8(P0 + 0xffe), m.readPhys8(P0 + 0xfff)]).toEqual([0xef, 0xcd]);
    expect(m.hart.regs[3]).toBe(refLoad([pattern(P0 + 0xffd), 0xef, 0xcd, 0xab], 4, true));
  });

  it('a bus error on a later piece is an access fault at that piece; the pieces before it stay done', () => {
    // A 4-byte device: the piece at +4 finds no device.
    const dev = new RecordingDevice('tiny', DEV, 4);
    const load = makeMachine(access(OPS[2]!, DEV, 2), { devices: [dev], setup: (mm) => { mm.hart.regs[3] = SENTINEL; } });
    load.run(100);
    expect(load.hart.mcause).toBe(C.CAUSE_LOAD_ACCESS);
    expect(load.hart.mtval).toBe(DEV + 4);
    expect(load.hart.regs[3]).toBe(SENTINEL);
    expect(dev.log).toEqual(['r2:2']);
    dev.log.length = 0;
    const store = makeMachine(access(OPS[4]!, DEV, 2), { devices: [dev] });
    store.run(100);
    expect(store.hart.mcause).toBe(C.CAUSE_STORE_ACCESS);
    expect(store.hart.mtval).toBe(DEV + 4);
    expect(dev.log).toEqual(['w2:2=cdef']);
  });

  it('a watched RAM page (HTIF) takes a misaligned store as aligned pieces, each reported', () => {
    const W = (BASE + 0x30000) | 0;
    const seen: string[] = [];
    const m = makeMachine(access(OPS[4]!, W, 1), {
      watches: [{ pa: W, size: 8, onStore: (pa, width) => { seen.push(`${pa - (W >>> 0)}:${width}`); } }],
    });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_BREAKPOINT);
    expect(seen).toEqual(['1:1', '2:1', '3:1', '4:1']);
    expect(m.readPhys32(W + 1)).toBe(STORE_VALUE);
  });
});

describe('AMOs and LR/SC still raise address-misaligned', () => {
  type Amo = (rd: number, rs2: number, rs1: number) => number;
  const amos: Array<[string, Amo]> = [
    ['amoswap.w', A.amoswap_w], ['amoadd.w', A.amoadd_w], ['amoxor.w', A.amoxor_w], ['amoand.w', A.amoand_w],
    ['amoor.w', A.amoor_w], ['amomin.w', A.amomin_w], ['amomax.w', A.amomax_w], ['amominu.w', A.amominu_w],
    ['amomaxu.w', A.amomaxu_w], ['sc.w (no reservation)', A.sc_w],
  ];
  const rows: Array<[string, Amo, number, number]> = [];
  for (const [name, op] of amos) for (const off of [1, 2, 3, 0xffe]) rows.push([`${name} +${off.toString(16)}`, op, off, C.CAUSE_MISALIGNED_STORE]);
  for (const off of [1, 2, 3, 0xffe]) rows.push([`lr.w +${off.toString(16)}`, (rd, _rs2, rs1) => A.lr_w(rd, rs1), off, C.CAUSE_MISALIGNED_LOAD]);

  for (const mode of [MODES[0]!, PAGED[0]!]) {
    it.each(rows)(`${mode.name} %s: traps before any access, memory and rd untouched`, (_n, op, off, cause) => {
      const { m } = machine((p) => p.emit(A.li(1, data0(mode) + off), A.li(2, STORE_VALUE), op(3, 2, 1), A.ebreak()), { mode });
      m.run(100);
      expect(m.hart.mcause).toBe(cause);
      expect(m.hart.mtval).toBe((data0(mode) + off) | 0);
      expect(m.hart.mepc).toBe((BASE + 16) | 0);
      expect(m.hart.regs[3]).toBe(SENTINEL);
      expect(changedBytes(m)).toEqual([]);
    });
  }

  it('sc.w at a misaligned address with a reservation held traps (6) and stores nothing', () => {
    const { m } = machine((p) => p.emit(
      A.li(1, P0 + 0x100), A.li(5, P0 + 0x102), A.lr_w(4, 1), A.li(2, STORE_VALUE), A.sc_w(3, 2, 5), A.ebreak(),
    ), { mode: MODES[0]! });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_MISALIGNED_STORE);
    expect(m.hart.mtval).toBe((P0 + 0x102) | 0);
    expect(changedBytes(m)).toEqual([]);
  });

  it('misaligned is checked before translation: an AMO to an unmapped page is cause 6, not 15', () => {
    const { m } = machine((p) => p.emit(A.li(1, VA + 0x2002), A.amoadd_w(3, 2, 1), A.ebreak()), { mode: PAGED[0]! });
    m.run(100);
    expect(m.hart.mcause).toBe(C.CAUSE_MISALIGNED_STORE);
    expect(m.hart.mtval).toBe(VA + 0x2002);
  });
});

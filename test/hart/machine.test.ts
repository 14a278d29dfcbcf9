import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BASE, makeMachine, run } from './harness.js';
import * as C from '../../src/hart/csr.js';
import { Hart, STOP_BUDGET, STOP_EXIT, STOP_REQUEST } from '../../src/hart/hart.js';
import { BareMachine, type MmioDevice } from '../../src/hart/bare-machine.js';
import {
  ACCESS_FETCH, ACCESS_STORE, TRANSLATE_EXIT, TRANSLATE_FAULT, TRANSLATE_MMIO, TRANSLATE_NOCACHE, type Translator,
} from '../../src/hart/translator.js';
import { withEngine } from './mode.js';

const DEV = 0x10000000;
const D = (BASE + 0x10000) | 0;

class RecDevice implements MmioDevice {
  readonly name = 'rec';
  readonly base = DEV;
  readonly size = 0x1000;
  writes: Array<[number, number, number]> = [];
  onWrite: (() => void) | null = null;
  read(offset: number, width: 1 | 2 | 4): number {
    return width === 1 ? 0xf0 + offset : width === 2 ? 0x8001 : 0x12345678;
  }
  write(offset: number, width: 1 | 2 | 4, value: number): void {
    this.writes.push([offset, width, value]);
    this.onWrite?.();
  }
}

/** A translator in front of the machine's that can exit or refuse caching. */
class Interposer implements Translator {
  exitsLeft = 0;
  exitAccess = -1;
  calls = 0;
  noCacheStores = false;
  lastHostPage = 0;
  constructor(readonly m: BareMachine) {}
  get lastPa(): number { return this.m.lastPa; }
  set lastPa(v: number) { this.m.lastPa = v; }
  get lastSuperpage(): boolean { return this.m.lastSuperpage; }
  set lastSuperpage(v: boolean) { this.m.lastSuperpage = v; }
  translate(hart: Hart, gva: number, access: number): number {
    this.calls++;
    if (this.exitsLeft > 0 && (this.exitAccess < 0 || this.exitAccess === access)) {
      this.exitsLeft--;
      return TRANSLATE_EXIT;
    }
    const r = this.m.translate(hart, gva, access);
    if (r >= 0 && this.noCacheStores && access === ACCESS_STORE) {
      this.lastHostPage = r;
      return TRANSLATE_NOCACHE;
    }
    return r;
  }
}

describe('MMIO devices', () => {
  it('loads and stores reach the device with widths; loads sign-extend', () => {
    const dev = new RecDevice();
    const m = run((p) => p.emit(
      A.lui(1, DEV >>> 12), A.lb(2, 1, 3), A.lbu(3, 1, 3), A.lh(4, 1, 0), A.lhu(5, 1, 0), A.lw(6, 1, 0),
      A.li(7, -1), A.sb(7, 1, 1), A.sh(7, 1, 2), A.sw(7, 1, 4), A.ebreak(),
    ), { devices: [dev] });
    expect(m.hart.mcause).toBe(3);
    const x = m.hart.regs;
    expect([x[2], x[3], x[4], x[5], x[6]]).toEqual([-13, 0xf3, -32767, 0x8001, 0x12345678]);
    expect(dev.writes).toEqual([[1, 1, 0xff], [2, 2, 0xffff], [4, 4, -1]]);
  });

  it('unmapped physical addresses: access faults 5/7/1 with tval = address', () => {
    const ld = run((p) => p.emit(A.lui(1, 0x30000), A.lw(2, 1, 4)));
    expect([ld.hart.mcause, ld.hart.mtval]).toEqual([5, 0x30000004]);
    const st = run((p) => p.emit(A.lui(1, 0x30000), A.sb(2, 1, 1)));
    expect([st.hart.mcause, st.hart.mtval]).toEqual([7, 0x30000001]);
    const fe = run((p) => p.emit(A.lui(1, 0x30000), A.jalr(0, 1, 0)));
    expect([fe.hart.mcause, fe.hart.mtval]).toEqual([1, 0x30000000]);
  });

  it('fetch from a device is an instruction access fault', () => {
    const m = run((p) => p.emit(A.lui(1, DEV >>> 12), A.jalr(0, 1, 0)), { devices: [new RecDevice()] });
    expect([m.hart.mcause, m.hart.mtval]).toEqual([1, DEV]);
  });

  it('a bus that sets fault raises load/store access faults', () => {
    const buf = new ArrayBuffer(8192);
    const words = new Int32Array(buf);
    words.set([A.lw(2, 0, 0x100), A.ebreak()], 0);
    const t: Translator = {
      lastPa: 0,
      translate(_h, gva, access) {
        this.lastPa = gva >>> 0;
        return gva >>> 0 < 0x100 || access === ACCESS_FETCH ? 0 : TRANSLATE_MMIO;
      },
    };
    const bus = { fault: false, read(): number { this.fault = true; return 0; }, write(): void { this.fault = true; } };
    const h = new Hart(withEngine({ memory: buf, translator: t, bus }));
    h.mtvec = 0x1000;
    words[0x400] = A.jal(0, 0);
    h.run(10);
    expect([h.mcause, h.mtval, bus.fault]).toEqual([5, 0x100, false]);
  });

  it('a device write may request a stop: the store completes, run returns after it', () => {
    const dev = new RecDevice();
    const m = makeMachine((p) => p.emit(A.lui(1, DEV >>> 12), A.sw(0, 1, 0), A.addi(5, 0, 1), A.ebreak()), { devices: [dev] });
    dev.onWrite = () => m.hart.requestStop();
    expect(m.run(100)).toBe(STOP_REQUEST);
    expect(m.hart.pc).toBe((BASE + 8) | 0);
    expect(dev.writes.length).toBe(1);
    expect(m.hart.regs[5]).toBe(0);
    m.run(100);
    expect(m.hart.regs[5]).toBe(1);
  });

  it('a device raising an interrupt is seen right after the access', () => {
    const dev = new RecDevice();
    const m = makeMachine((p) => p.emit(A.lui(1, DEV >>> 12), A.sw(0, 1, 0), A.addi(5, 0, 1), A.ebreak()), { devices: [dev] });
    dev.onWrite = () => m.hart.setInterruptPending(C.IRQ_MEI, true);
    m.hart.mie = C.MIP_MEIP;
    m.hart.mstatus = C.MSTATUS_MIE;
    m.run(100);
    expect(m.hart.mcause >>> 0).toBe(0x8000000b);
    expect(m.hart.mepc).toBe((BASE + 8) | 0);
  });
});

describe('physical watches', () => {
  it('stores in the watched range call onStore after the RAM write; the page never enters the store TLB', () => {
    const seen: Array<[number, number, number]> = [];
    let m!: BareMachine;
    const TOHOST = (BASE + 0x20000) | 0;
    m = makeMachine((p) => {
      p.emit(A.li(1, TOHOST), A.addi(9, 0, 3));
      p.label('l').emit(A.addi(2, 2, 1), A.sw(2, 1, 0), A.sw(2, 1, 16), A.lw(3, 1, 0), A.addi(9, 9, -1)).to('l', (o) => A.bne(9, 0, o));
      p.emit(A.amoadd_w(4, 2, 1), A.ebreak());
    }, {
      watches: [{ pa: TOHOST, size: 8, onStore: (pa, width) => seen.push([pa, width, m.readPhys32(TOHOST)]) }],
    });
    m.run(1000);
    expect(m.hart.mcause).toBe(3);
    const t = TOHOST >>> 0;
    expect(seen).toEqual([[t, 4, 1], [t, 4, 2], [t, 4, 3], [t, 4, 6]]);
    expect(m.hart.regs[3]).toBe(3);
    expect(m.readPhys32(TOHOST + 16)).toBe(3);
  });

  it('onStore may stop the run (HTIF exit)', () => {
    const TOHOST = (BASE + 0x20000) | 0;
    let m!: BareMachine;
    m = makeMachine((p) => p.emit(A.li(1, TOHOST), A.addi(2, 0, 1), A.sw(2, 1, 0), A.jal(0, 0)), {
      watches: [{ pa: TOHOST, size: 8, onStore: () => m.hart.requestStop() }],
    });
    expect(m.run(1000)).toBe(STOP_REQUEST);
    expect(m.hart.pc).toBe((BASE + 16) | 0);
  });
});

describe('translator contract', () => {
  it('TRANSLATE_EXIT on a load: pc unchanged, nothing written, instret untouched; rerun completes', () => {
    const m = makeMachine((p) => p.emit(A.li(1, D), A.lw(2, 1, 0), A.ebreak()));
    m.writePhys32(D, 77);
    const t = new Interposer(m);
    m.hart.translator = t;
    m.hart.run(2);
    t.exitsLeft = 1;
    m.hart.regs[2] = -5;
    expect(m.hart.run(100)).toBe(STOP_EXIT);
    expect(m.hart.pc).toBe((BASE + 8) | 0);
    expect(m.hart.regs[2]).toBe(-5);
    expect(m.hart.instret).toBe(2);
    expect(m.hart.lastRunInsns).toBe(0);
    m.hart.run(100);
    expect(m.hart.regs[2]).toBe(77);
    expect(m.hart.mcause).toBe(3);
  });

  it('TRANSLATE_EXIT on a fetch', () => {
    const m = makeMachine((p) => p.emit(A.addi(1, 0, 1), A.ebreak()));
    const t = new Interposer(m);
    m.hart.translator = t;
    t.exitsLeft = 1;
    expect(m.hart.run(100)).toBe(STOP_EXIT);
    expect(m.hart.pc).toBe(BASE);
    expect(m.hart.instret).toBe(0);
    m.hart.run(100);
    expect(m.hart.regs[1]).toBe(1);
  });

  it('an AMO translates for store first: an exit there leaves memory and rd alone', () => {
    const m = makeMachine((p) => p.emit(A.li(1, D), A.addi(3, 0, 5), A.amoadd_w(4, 3, 1), A.ebreak()));
    m.writePhys32(D, 10);
    const t = new Interposer(m);
    m.hart.translator = t;
    m.hart.run(3);
    t.exitsLeft = 1;
    t.exitAccess = ACCESS_STORE;
    expect(m.hart.run(100)).toBe(STOP_EXIT);
    expect([m.readPhys32(D), m.hart.regs[4]]).toEqual([10, 0]);
    m.hart.run(100);
    expect([m.readPhys32(D), m.hart.regs[4]]).toEqual([15, 10]);
  });

  it('an exit inside lr/sc keeps the reservation so the sc succeeds on restart', () => {
    const m = makeMachine((p) => p.emit(A.li(1, D), A.addi(3, 0, 5), A.lr_w(2, 1), A.sc_w(4, 3, 1), A.ebreak()));
    const t = new Interposer(m);
    m.hart.translator = t;
    m.hart.run(4);
    t.exitsLeft = 1;
    t.exitAccess = ACCESS_STORE;
    expect(m.hart.run(100)).toBe(STOP_EXIT);
    m.hart.run(100);
    expect(m.hart.regs[4]).toBe(0);
    expect(m.readPhys32(D)).toBe(5);
  });

  it('TRANSLATE_NOCACHE performs the access without caching it', () => {
    const m = makeMachine((p) => p.emit(A.li(1, D), A.sw(1, 1, 0), A.sw(1, 1, 4), A.sw(1, 1, 8), A.ebreak()));
    const t = new Interposer(m);
    t.noCacheStores = true;
    m.hart.translator = t;
    m.hart.run(100);
    expect(m.hart.mcause).toBe(3);
    expect([m.readPhys32(D), m.readPhys32(D + 8)]).toEqual([D, D]);
    expect(t.calls).toBe(2 + 3); // fetches of the program and handler pages, three stores
  });

  it('TRANSLATE_FAULT takes the trap the translator raised', () => {
    const m = makeMachine((p) => p.emit(A.li(1, D), A.lw(2, 1, 0), A.ebreak()));
    const inner = new Interposer(m);
    m.hart.translator = {
      get lastPa() { return m.lastPa; },
      set lastPa(v: number) { m.lastPa = v; },
      translate(h, gva, access) {
        if (gva === D) { h.raiseFault(13, gva); return TRANSLATE_FAULT; }
        return inner.translate(h, gva, access);
      },
    };
    m.hart.run(100);
    expect([m.hart.mcause, m.hart.mtval]).toEqual([13, D]);
  });

  it('flushTlbHostPage drops the entries that map a host page', () => {
    const m = run((p) => p.emit(A.li(1, D), A.lw(2, 1, 0), A.sw(2, 1, 0), A.ebreak()));
    const idx = (D >>> 12) & 511;
    expect(m.hart.loadTag[idx]).toBe(D);
    m.hart.flushTlbHostPage(0x10000);
    expect(m.hart.loadTag[idx]).toBe(-1);
    expect(m.hart.storeTag[idx]).toBe(-1);
    expect(m.hart.fetchTag[(BASE >>> 12) & 511]).toBe(BASE);
  });
});

describe('run control', () => {
  it('step executes exactly one instruction and calls traceHook first', () => {
    const m = makeMachine((p) => p.emit(A.addi(1, 0, 1), A.addi(2, 0, 2), A.ebreak()));
    const pcs: number[] = [];
    m.hart.traceHook = (_h, pc) => pcs.push(pc - BASE);
    m.hart.step();
    expect([m.hart.regs[1], m.hart.regs[2]]).toEqual([1, 0]);
    m.hart.step();
    m.hart.step();
    expect(pcs).toEqual([0, 4, 8]);
    expect(m.hart.mcause).toBe(3);
  });

  it('run(budget) stops exactly at the budget', () => {
    const m = makeMachine((p) => { p.label('l').emit(A.addi(1, 1, 1)).to('l', (o) => A.jal(0, o)); });
    expect(m.hart.run(7)).toBe(STOP_BUDGET);
    expect(m.hart.regs[1]).toBe(4);
    expect(m.hart.instret).toBe(7);
  });

  it('requestStop before run returns at once', () => {
    const m = makeMachine((p) => p.emit(A.addi(1, 0, 1)));
    m.hart.requestStop();
    expect(m.hart.run(10)).toBe(STOP_REQUEST);
    expect(m.hart.regs[1]).toBe(0);
  });

  it('physical helpers are little-endian and bounds-checked', () => {
    const m = new BareMachine(withEngine({ ramSize: 1 << 20 }));
    m.writePhys32(BASE, 0x11223344);
    expect(m.readPhys8(BASE)).toBe(0x44);
    expect(m.readPhys16(BASE + 2)).toBe(0x1122);
    m.writePhys8(BASE + 1, 0xaa);
    m.writePhys16(BASE + 2, 0xbbcc);
    expect(m.readPhys32(BASE) >>> 0).toBe(0xbbccaa44);
    expect(() => m.readPhys32(BASE + (1 << 20))).toThrow(RangeError);
    expect(m.hart.dump()).toContain('pc=0x80000000');
  });
});

describe('callbacks inside translate', () => {
  it('a stop requested while translating a fetch lets that one instruction run', () => {
    const m = makeMachine((p) => p.emit(A.addi(1, 0, 1), A.addi(2, 0, 2), A.ebreak()));
    const inner = new Interposer(m);
    let asked = false;
    m.hart.translator = {
      get lastPa() { return m.lastPa; },
      set lastPa(v: number) { m.lastPa = v; },
      translate(h, gva, access) {
        if (!asked) { asked = true; h.requestStop(); }
        return inner.translate(h, gva, access);
      },
    };
    expect(m.hart.run(100)).toBe(STOP_REQUEST);
    expect([m.hart.regs[1], m.hart.regs[2], m.hart.pc - BASE]).toEqual([1, 0, 4]);
  });

  it('a TLB flush during a load translation is honoured before the next instruction', () => {
    const m = makeMachine((p) => p.emit(A.li(1, D), A.lw(2, 1, 0), A.lw(3, 1, 0), A.ebreak()));
    const inner = new Interposer(m);
    let loads = 0;
    m.hart.translator = {
      get lastPa() { return m.lastPa; },
      set lastPa(v: number) { m.lastPa = v; },
      translate(h, gva, access) {
        if (access === 1) { loads++; h.flushTlb(); }
        return inner.translate(h, gva, access);
      },
    };
    m.writePhys32(D, 9);
    m.hart.run(100);
    expect([m.hart.regs[2], m.hart.regs[3], m.hart.mcause]).toEqual([9, 9, 3]);
    expect(loads).toBe(1); // the second load hits the entry filled after the flush
  });

  it('setPrivilege flushes the TLB when the privilege changes', () => {
    const m = run((p) => p.emit(A.li(1, D), A.lw(2, 1, 0), A.ebreak()));
    expect(m.hart.loadTag[(D >>> 12) & 511]).toBe(D);
    m.hart.setPrivilege(1);
    expect(m.hart.priv).toBe(1);
    expect(m.hart.loadTag[(D >>> 12) & 511]).toBe(-1);
    expect(m.dump()).toContain('clint@0x2000000');
  });
});

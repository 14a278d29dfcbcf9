// Small harness in the spirit of the KVM selftests: build a program, load it
// into a BareMachine, run it until it parks, look at the state.
import { BareMachine, type BareMachineOptions } from '../../src/hart/bare-machine.js';
import { PTE_V } from '../../src/hart/sv32.js';
import { Prog, ebreak, jal, wfi } from './asm.js';
import { withEngine } from './mode.js';

export const BASE = 0x80000000 | 0;
/** Default trap handler: parks the hart (wfi; j .-4). */
export const PARK = (BASE + 0x8000) | 0;

export interface RunOptions extends BareMachineOptions {
  budget?: number;
  setup?: (m: BareMachine) => void;
}

export function makeMachine(code: (p: Prog) => void, opts: RunOptions = {}): BareMachine {
  const m = new BareMachine(withEngine({ ramSize: 4 << 20, ...opts }));
  const p = new Prog(BASE);
  code(p);
  m.loadWords(BASE, p.assemble());
  m.loadWords(PARK, [wfi(), jal(0, -4)]);
  m.hart.mtvec = PARK;
  m.hart.pc = BASE;
  opts.setup?.(m);
  return m;
}

/** Runs code (which should end in ebreak or trap) and returns the machine parked in the handler. */
export function run(code: (p: Prog) => void, opts: RunOptions = {}): BareMachine {
  const m = makeMachine(code, opts);
  m.run(opts.budget ?? 100_000);
  return m;
}

/** Runs a straight-line sequence followed by ebreak; returns the registers. */
export function exec(...words: Array<number | number[]>): Int32Array {
  const m = run((p) => p.emit(...words, ebreak()));
  if (m.hart.mcause !== 3) throw new Error(`program trapped: mcause=${m.hart.mcause} mtval=${m.hart.mtval >>> 0}`);
  return m.hart.regs;
}

export const u32 = (v: number): number => v >>> 0;

/** Sv32 root table used by Pager by default; the tables it allocates follow it. */
export const ROOT = (BASE + 0x100000) | 0;

/** Builds Sv32 tables in a machine's RAM from the host side. */
export class Pager {
  private next: number;
  constructor(readonly m: BareMachine, readonly root = ROOT) {
    this.next = (root + 4096) | 0;
  }

  l1Pa(va: number): number {
    return (this.root + (va >>> 22) * 4) | 0;
  }

  ptePa(va: number): number {
    const l1 = this.m.readPhys32(this.l1Pa(va));
    return (((l1 >>> 10) << 12) + ((va >>> 12) & 0x3ff) * 4) | 0;
  }

  map4k(va: number, pa: number, flags: number): this {
    let l1 = this.m.readPhys32(this.l1Pa(va));
    if ((l1 & PTE_V) === 0) {
      l1 = (((this.next >>> 12) << 10) | PTE_V) | 0;
      this.next = (this.next + 4096) | 0;
      this.m.writePhys32(this.l1Pa(va), l1);
    }
    this.m.writePhys32(this.ptePa(va), (((pa >>> 12) << 10) | flags) | 0);
    return this;
  }

  mapMega(va: number, pa: number, flags: number): this {
    this.m.writePhys32(this.l1Pa(va), (((pa >>> 12) << 10) | flags) | 0);
    return this;
  }

  pte(va: number): number {
    return this.m.readPhys32(this.ptePa(va));
  }
}

// Small harness in the spirit of the KVM selftests: build a program, load it
// into a BareMachine, run it until it parks, look at the state.
import { BareMachine, type BareMachineOptions } from '../../src/hart/bare-machine.js';
import { Prog, ebreak, jal, wfi } from './asm.js';

export const BASE = 0x80000000 | 0;
/** Default trap handler: parks the hart (wfi; j .-4). */
export const PARK = (BASE + 0x8000) | 0;

export interface RunOptions extends BareMachineOptions {
  budget?: number;
  setup?: (m: BareMachine) => void;
}

export function makeMachine(code: (p: Prog) => void, opts: RunOptions = {}): BareMachine {
  const m = new BareMachine({ ramSize: 4 << 20, ...opts });
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

import { describe, expect, it } from 'vitest';
import { BareMachine } from '../../src/hart/bare-machine.js';
import { STOP_WFI } from '../../src/hart/hart.js';
import { warmUpProgram } from '../../src/hart/warmup.js';
import { withEngine } from './mode.js';

describe('JIT warm-up program', () => {
  it('runs to its final wfi through every kind of trap', () => {
    let stops = 0;
    const m = new BareMachine(withEngine({
      ramSize: 128 << 10,
      warmUp: false,
      watches: [{ pa: 0x80011000, size: 4, onStore: () => { stops++; } }],
    }));
    const { main, handler } = warmUpProgram(3);
    m.loadWords(0x80000000, main);
    m.loadWords(0x80002000, handler);
    const causes = new Set<number>();
    // The handler's first instruction copies mcause to x25 (an interrupt is taken and its
    // first instruction run within one step, so look just after it).
    m.hart.traceHook = (h, pc) => { if (pc === (0x80002004 | 0)) causes.add(h.regs[25]! >>> 0); };
    let code = 0;
    for (let k = 0; k < 5000 && code !== STOP_WFI; k++) code = m.hart.step();
    expect(code).toBe(STOP_WFI);
    expect([...causes].sort((a, b) => a - b)).toEqual([2, 6, 11, 0x80000007]);
    expect(m.hart.regs[2]).toBe(0);
    expect(m.hart.priv).toBe(3);
    expect(stops).toBe(3);
  });
});

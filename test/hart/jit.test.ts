// Differential test of the block compiler against the interpreter: seeded random
// programs (ALU, M, loads and stores that hit, miss, go misaligned, to MMIO, out
// of RAM and into the code being run, branches and jumps inside and outside the
// code, fence.i, ecall, ebreak, illegal words, counter reads, wfi, a timer
// interrupt that keeps rearming) run on two machines, one with the compiler,
// in slices of random length; after every slice the whole state must agree.
import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { BareMachine, CLINT_BASE } from '../../src/hart/bare-machine.js';
import * as C from '../../src/hart/csr.js';
import type { JitOptions } from '../../src/hart/jit/jit.js';
import { compileTrace } from '../../src/hart/jit/compile.js';

const BASE = 0x80000000 | 0;
const CODE = (BASE + 0xc00) | 0; // across a page boundary, then a jump back to the top
const CODE_WORDS = 512;
const HANDLER = (BASE + 0x3000) | 0;
const DATA = (BASE + 0x4000) | 0;
const RAM = 64 << 10;

function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return s >>> 0;
  };
}

/** Instruction words that a self-modifying store may plant. */
const PLANT = [A.addi(5, 5, 1), A.add(6, 6, 7), A.lw(8, 1, 16), A.sw(9, 1, 20), A.bne(5, 6, 8), A.jal(0, 8), A.fence_i(), A.ecall()];

/*
 * Every jump goes forward but for short loops bounded by a counter (x21), so
 * each pass reaches the last word, which jumps back to the top.
 */
function program(seed: number, timer: boolean): number[] {
  const r = rng(seed);
  const pick = (k: number) => r() % k;
  const reg = () => 5 + pick(11); // x5..x15: the program's own
  const words: number[] = [];
  let loopEnd = 0;
  while (words.length < CODE_WORDS - 1) {
    const pc = words.length;
    const left = CODE_WORDS - 1 - pc;
    // A target ahead in the code (sometimes misaligned).
    const ahead = (): number => 4 * (1 + pick(Math.min(left, 64))) + (pick(16) === 0 ? 2 : 0);
    const k = pick(100);
    let w: number;
    if (k < 30) {
      const ops = [A.add, A.sub, A.xor, A.or, A.and, A.sll, A.srl, A.sra, A.slt, A.sltu, A.mul, A.mulh, A.mulhsu, A.mulhu, A.div, A.divu, A.rem, A.remu];
      w = ops[pick(ops.length)]!(reg(), reg(), pick(8) === 0 ? 0 : reg());
    } else if (k < 48) {
      const ops = [A.addi, A.slti, A.sltiu, A.xori, A.ori, A.andi];
      w = pick(3) === 0 ? [A.slli, A.srli, A.srai][pick(3)]!(reg(), reg(), pick(32)) : ops[pick(ops.length)]!(reg(), reg(), (r() << 20) >> 20);
    } else if (k < 58) { // loads: mostly the data page, some misaligned, some MMIO or nowhere
      const ops = [A.lw, A.lh, A.lhu, A.lb, A.lbu];
      const base = pick(30) === 0 ? reg() : [1, 1, 1, 1, 1, 1, 2, 3, 4][pick(9)]!;
      w = ops[pick(ops.length)]!(pick(12) === 0 ? 0 : reg(), base, base === 4 ? 0 : (pick(1024) - 64) & ~(pick(4) === 0 ? 0 : 3));
    } else if (k < 68) { // stores: data, the code itself (planting words), nowhere
      const ops = [A.sw, A.sh, A.sb];
      const base = pick(40) === 0 ? 2 : pick(30) === 0 ? reg() : [1, 1, 1, 1, 3][pick(5)]!;
      const src = base === 2 ? 16 + pick(4) : reg();
      w = ops[pick(ops.length)]!(src, base, (pick(2048) - 64) & ~(pick(4) === 0 ? 0 : 3));
    } else if (k < 82) {
      const ops = [A.beq, A.bne, A.blt, A.bge, A.bltu, A.bgeu];
      if (left < 2) { words.push(A.addi(0, 0, 0)); continue; }
      if (pick(3) === 0 && left > 12) { // if-else: branch over a, jal over b
        const a = 1 + pick(4), b = 1 + pick(4);
        const arm = (len: number) => Array.from({ length: len }, () => pick(4) === 0 ? A.lw(reg(), 1, 4 * pick(64)) : A.add(reg(), reg(), reg()));
        words.push(ops[pick(ops.length)]!(reg(), reg(), 4 * (a + 2)), ...arm(a), A.jal(0, 4 * (b + 1)), ...arm(b));
        continue;
      }
      if (pick(6) === 0 && pc - loopEnd >= 8 && left > 3) { // a loop over the last few words, at most 8 passes, never nested
        const back = 4 * (3 + pick(5));
        words.push(A.addi(21, 21, 1), A.andi(22, 21, 7), A.bne(22, 0, -back));
        loopEnd = words.length;
        continue;
      }
      w = ops[pick(ops.length)]!(reg(), reg(), ahead());
    } else if (k < 86) {
      w = A.jal(pick(2) === 0 ? 0 : reg(), ahead());
    } else if (k < 89) {
      w = A.jalr(pick(2) === 0 ? 0 : reg(), 2, Math.min(2044, 4 * pc + ahead()));
    } else if (k < 91) {
      w = A.lui(reg(), r() >>> 12);
    } else if (k < 93) {
      w = A.auipc(reg(), r() >>> 12);
    } else if (k < 94) {
      w = pick(4) === 0 ? A.fence_i() : A.fence();
    } else if (k < 96) {
      w = A.csrr(reg(), [C.CSR_MINSTRET, C.CSR_MCYCLE, C.CSR_TIME, C.CSR_MCAUSE][pick(4)]!);
    } else if (k < 99) {
      w = A.add(reg(), reg(), reg());
    } else {
      w = pick(3) === 0 ? r() | 0 : [A.ecall(), A.ebreak(), timer ? A.wfi() : A.ecall()][pick(3)]!; // r(): mostly illegal
    }
    words.push(w | 0);
  }
  words.push(A.jal(0, -4 * (CODE_WORDS - 1)));
  return words;
}

/*
 * Handler: an interrupt rearms the timer a little later; an exception folds
 * mcause and mtval into x27 and goes on after the instruction, except a fetch
 * access fault (the pc itself is bad), which restarts the program.
 */
function handler(): number[] {
  return [
    A.csrr(28, C.CSR_MCAUSE),
    A.blt(28, 0, 11 * 4), // to the interrupt path
    A.csrr(30, C.CSR_MTVAL), A.xor(27, 27, 30), A.add(27, 27, 28),
    A.csrr(29, C.CSR_MEPC), A.addi(29, 29, 4),
    A.addi(30, 28, -1), A.bne(30, 0, 8), A.addi(29, 2, 0), // an access fault on fetch: mepc is the bad pc
    A.csrw(C.CSR_MEPC, 29), A.mret(),
    A.lw(29, 25, 0), A.addi(29, 29, 37), A.sw(29, 26, 0), A.sw(0, 26, 4), A.addi(27, 27, 1), A.mret(),
  ];
}

function machine(words: number[], seed: number, jit: JitOptions | undefined): BareMachine {
  const m = new BareMachine({ ramSize: RAM, ...(jit !== undefined ? { jit } : {}) });
  m.loadWords(CODE, words);
  m.loadWords(HANDLER, handler());
  const r = rng(seed * 7 + 1);
  const x = m.hart.regs;
  for (let i = 5; i < 16; i++) x[i] = pickValue(r);
  x[1] = DATA;
  x[2] = CODE;
  x[3] = (DATA + 0xffc) | 0; // accesses that cross into the next page
  x[4] = (CLINT_BASE + 0xbff8) | 0; // mtime: MMIO loads
  x[25] = (CLINT_BASE + 0xbff8) | 0;
  x[26] = (CLINT_BASE + 0x4000) | 0;
  for (let i = 0; i < 4; i++) x[16 + i] = PLANT[(r() % PLANT.length)]!;
  m.hart.mtvec = HANDLER;
  m.hart.pc = CODE;
  if (seed % 2 === 0) { // a timer that fires every few hundred instructions
    m.hart.setMtimecmp(50 + (r() % 300), 0);
    m.hart.mie = 1 << C.IRQ_MTI;
    m.hart.mstatus |= C.MSTATUS_MIE;
    m.hart.updateTimer();
  }
  return m;
}

function pickValue(r: () => number): number {
  switch (r() % 5) {
    case 0: return r() % 16;
    case 1: return -(r() % 16);
    case 2: return 0x80000000 | 0;
    default: return r() | 0;
  }
}

function state(m: BareMachine): unknown {
  const h = m.hart;
  return {
    pc: h.pc, priv: h.priv, regs: Array.from(h.regs), instret: h.instret, cycle: h.cycle, ticks: h.ticks,
    mstatus: h.mstatus, mepc: h.mepc, mcause: h.mcause, mtval: h.mtval, mip: h.mip,
    mtimecmp: [h.mtimecmpLo, h.mtimecmpHi], res: [h.resValid, h.resAddr],
  };
}

function ramDiff(a: BareMachine, b: BareMachine): number {
  for (let i = 0; i < RAM; i++) if (a.ram[i] !== b.ram[i]) return i;
  return -1;
}

/** Returns the share of instructions that ran in compiled code. */
function compare(seed: number, jit: JitOptions, slices: number, takenIn?: number[]): number {
  const words = program(seed, seed % 2 === 0);
  const ref = machine(words, seed, undefined);
  const dut = machine(words, seed, jit);
  const r = rng(seed * 13 + 5);
  for (let s = 0; s < slices; s++) {
    const budget = 1 + (r() % (s % 3 === 0 ? 5 : 3000));
    const want = ref.run(budget);
    const got = dut.run(budget);
    const ctx = `seed ${seed} slice ${s} budget ${budget}`;
    expect({ ctx, stop: got, n: dut.hart.lastRunInsns, ...(state(dut) as object) })
      .toEqual({ ctx, stop: want, n: ref.hart.lastRunInsns, ...(state(ref) as object) });
    expect({ ctx, ram: ramDiff(ref, dut) }).toEqual({ ctx, ram: -1 });
  }
  const jitStats = dut.hart.jit!;
  expect(jitStats.compiled).toBeGreaterThan(0);
  takenIn?.push(jitStats.takenIn);
  return jitStats.compiledInsns / dut.hart.instret;
}

/** A machine at CODE running prog, a wfi loop for a trap handler, with these registers set. */
function loopMachine(prog: number[], jit: JitOptions | undefined, regs: Record<number, number>): BareMachine {
  const m = new BareMachine({ ramSize: RAM, ...(jit !== undefined ? { jit } : {}) });
  m.loadWords(CODE, prog);
  m.loadWords(HANDLER, [A.wfi(), A.jal(0, -4)]);
  m.hart.mtvec = HANDLER;
  m.hart.pc = CODE;
  for (const [r, v] of Object.entries(regs)) m.hart.regs[Number(r)] = v;
  return m;
}

describe('block compiler against the interpreter (seeded random programs)', () => {
  const shares: number[] = [];
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))('seed %i, compile at first sight', (seed) => {
    shares.push(compare(seed, { threshold: 1 }, 60));
  });
  // Blocks counted one by one, compiled mid-run.
  it.each(Array.from({ length: 20 }, (_, i) => i + 101))('seed %i, threshold 16', (seed) => {
    shares.push(compare(seed, { threshold: 16 }, 60));
  });
  // The default: a cold phase (whole interpreter runs, pages sampled), then
  // counting; 400,000 instructions get these programs' hot blocks compiled.
  it.each(Array.from({ length: 10 }, (_, i) => i + 201))('seed %i, default threshold', (seed) => {
    shares.push(compare(seed, {}, 400));
  });
  // Blocks interpreted 24 times before they compile: every branch the
  // interpreter saw taken often has its taken side (and the bails, traps and
  // timer inside what it reaches) as a path of the trace's tree.
  const takenIn: number[] = [];
  it.each(Array.from({ length: 20 }, (_, i) => i + 301))('seed %i, taken branches in the tree', (seed) => {
    shares.push(compare(seed, { threshold: 24 }, 60, takenIn));
  });
  it('took taken branches into trees in those programs', () => {
    expect(takenIn.reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
  });
  it('ran most of those instructions in compiled code', () => {
    const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
    expect(mean).toBeGreaterThan(0.4); // the rest: cold code, the handler, what bailed
  });
});

describe('block compiler: a new hart', () => {
  it('has run nothing: priming the dispatcher\'s feedback leaves the state as the interpreter\'s', () => {
    const plain = loopMachine([A.addi(5, 5, 1)], undefined, {});
    const jitted = loopMachine([A.addi(5, 5, 1)], {}, {});
    for (const m of [plain, jitted]) expect([m.hart.instret, m.hart.cycle, m.hart.getMtime(), m.hart.lastRunInsns]).toEqual([0, 0, 0, 0]);
    expect(Array.from(jitted.hart.regs)).toEqual(Array.from(plain.hart.regs));
    expect([jitted.hart.jit!.dispatches, jitted.hart.jit!.compiled, jitted.hart.jit!.compiledInsns]).toEqual([0, 0, 0]);
  });
});

describe('block compiler: traces through usually-taken branches', () => {
  it('a loop whose if is usually skipped becomes one trace that loops', () => {
    // top: bltu x5,x6,body; ebreak; body: lw x7,0(x1); beq x7,x0,skip (taken:
    // the words read are zero but one); addi x8,x8,1; csrr x9,minstret (not
    // a short if the compiler takes in); skip: addi x5,x5,1; addi x1,x1,4;
    // jal top. Without the taken side of the beq in the tree, two traces a
    // pass (the verify loop of the Linux guest's init has this shape).
    const prog = [A.bltu(5, 6, 8), A.ebreak(), A.lw(7, 1, 0), A.beq(7, 0, 12), A.addi(8, 8, 1),
      A.csrr(9, C.CSR_MINSTRET), A.addi(5, 5, 1), A.addi(1, 1, 4), A.jal(0, -32)];
    const runs: unknown[] = [];
    for (const jit of [undefined, { threshold: 20 }]) {
      const m = loopMachine(prog, jit, { 1: DATA, 6: 200 });
      m.loadWords(DATA, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
      const stops = [m.run(700), m.run(5000)];
      const h = m.hart;
      runs.push({ stops, pc: h.pc, regs: Array.from(h.regs), instret: h.instret, mcause: h.mcause });
      if (jit) {
        // About 150 passes compiled, in one call or two per run() (the trace loops).
        expect(h.jit!.takenIn).toBeGreaterThan(0);
        expect(h.jit!.compiledInsns / h.instret).toBeGreaterThan(0.8);
        expect(h.jit!.dispatches).toBeLessThanOrEqual(4);
      }
    }
    expect(runs[1]).toEqual(runs[0]);
    expect((runs[0] as { regs: number[] }).regs[8]).toBe(1);
  });
});

describe('block compiler: the shape of a trace tree', () => {
  const at = (words: number[]) => (pc: number): number => words[(pc - CODE) >> 2] ?? A.ebreak();
  it('a branch the interpreter saw taken often gets its taken side as a second path', () => {
    // addi; beq x5,x0,+12; csrr (ends the straight line); addi; (target) addi; addi; jalr x0,0(x1)
    const word = at([A.addi(5, 5, 1), A.beq(5, 0, 12), A.csrr(9, C.CSR_MINSTRET), A.addi(7, 7, 1),
      A.addi(8, 8, 1), A.addi(9, 9, 1), A.jalr(0, 1, 0)]);
    const line = compileTrace(CODE, word)!;
    const tree = compileTrace(CODE, word, { takenIn: (start, pc) => start === CODE && pc === CODE + 4 })!;
    expect([line.paths, line.len]).toEqual([1, 2]);
    expect([tree.paths, tree.len]).toEqual([2, 5]); // addi, beq, then the target's addi, addi, jalr
  });
  it('a path ends where another compiled trace starts', () => {
    const word = at([A.addi(5, 5, 1), A.addi(6, 6, 1), A.addi(7, 7, 1), A.addi(8, 8, 1), A.jal(0, -16)]);
    const src = compileTrace(CODE, word, { isHead: (pc) => pc === CODE + 12 })!;
    expect(src.len).toBe(3); // the fourth instruction is that trace's
    expect(src.body).toContain(`pc = (${CODE + 12})`);
    // Its own start is no such end: the jal back to it makes a loop.
    expect(compileTrace(CODE, word, { isHead: (pc) => pc === CODE })!.body).toContain('continue');
  });
});

describe('block compiler: a trace that ends at another runs it', () => {
  it('two traces a pass, one dispatch a pass, the same results', () => {
    // B: addi x5,x5,1; bltu x5,x7,A; ebreak. A: addi x6,x6,1; jal B. B is
    // compiled first (its side exit is not taken in at threshold 1), so A ends
    // at B's start, and its epilogue runs B instead of returning.
    const prog = [A.addi(5, 5, 1), A.bltu(5, 7, 8), A.ebreak(), A.addi(6, 6, 1), A.jal(0, -16)];
    const runs: unknown[] = [];
    for (const jit of [undefined, { threshold: 1 }]) {
      const m = loopMachine(prog, jit, { 7: 1000 });
      const stops = [m.run(1234), m.run(5000)];
      const h = m.hart;
      runs.push({ stops, pc: h.pc, regs: Array.from(h.regs), instret: h.instret, mcause: h.mcause });
      if (jit) {
        expect(h.jit!.dispatches).toBeLessThan(1100); // ~1000 passes; 2,000 without the chain
        expect(h.jit!.dispatches).toBeGreaterThan(900);
      }
    }
    expect(runs[1]).toEqual(runs[0]);
    expect((runs[0] as { regs: number[] }).regs[6]).toBe(999);
  });
});

describe('block compiler: self-modifying code and host writes', () => {
  it('a store into the running block is seen by the next pass', () => {
    // loop: addi x5,x5,1; sw x6, 8(x2) (rewrites the third word); addi x7,x7,1 → becomes addi x7,x7,100
    const prog = [A.addi(5, 5, 1), A.sw(6, 2, 8), A.addi(7, 7, 1), A.blt(5, 8, -12), A.ebreak()];
    for (const jit of [undefined, { threshold: 1 }]) {
      const m = loopMachine(prog, jit, { 2: CODE, 6: A.addi(7, 7, 100), 8: 10 });
      m.run(1000);
      // The sw runs before the third word is fetched, so every pass adds 100.
      expect(m.hart.regs[7]).toBe(1000);
      expect(m.hart.mcause).toBe(3);
    }
  });

  it('the host loading new code over compiled code is seen', () => {
    const m = new BareMachine({ ramSize: RAM, jit: { threshold: 1 } });
    const loop = (inc: number) => [A.addi(5, 5, inc), A.addi(6, 6, 1), A.blt(6, 7, -8), A.ebreak()];
    m.loadWords(CODE, loop(1));
    m.loadWords(HANDLER, [A.wfi(), A.jal(0, -4)]);
    m.hart.mtvec = HANDLER;
    m.hart.pc = CODE;
    m.hart.regs[7] = 4;
    m.run(100);
    expect(m.hart.regs[5]).toBe(4);
    expect(m.hart.jit!.compiled).toBeGreaterThan(0);
    m.loadWords(CODE, loop(7));
    m.hart.pc = CODE;
    m.hart.regs[6] = 0;
    m.run(100);
    expect(m.hart.regs[5]).toBe(32);
  });

  it('fence.i drops code written behind the hart\'s back', () => {
    // The loop body is patched straight into the frame buffer (as a device
    // would, unannounced); the fence.i in the loop makes the next pass see it.
    const m = new BareMachine({ ramSize: RAM, jit: { threshold: 1 } });
    m.loadWords(CODE, [A.fence_i(), A.addi(5, 5, 1), A.addi(6, 6, 1), A.blt(6, 7, -12), A.ebreak()]);
    m.loadWords(HANDLER, [A.wfi(), A.jal(0, -4)]);
    m.hart.mtvec = HANDLER;
    m.hart.pc = CODE;
    m.hart.regs[7] = 3;
    m.run(6); // a pass and a half: the loop is compiled
    expect(m.hart.jit!.compiled).toBeGreaterThan(0);
    // Seen after the next fence.i, and not necessarily before (unprivileged ISA 20191213 ch. 3).
    new Int32Array(m.ram.buffer)[(CODE + 4 - BASE) >> 2] = A.addi(5, 5, 10);
    m.run(100);
    expect(m.hart.regs[5]).toBe(2 + 10);
  });
});

// Block compiler: one guest trace to the source of a JavaScript function. A
// trace is a tree of paths on one page: straight-line code through branches
// not taken and jal, up to MAX_TRACE instructions a path, with the taken side
// of each branch the interpreter saw taken often as a path of its own (up to
// MAX_TREE instructions in all). Pure: words in, source text out; jit.ts owns
// the cache.
//
// What a compiled block may do, so that it is exactly the interpreter's fast path:
//  - Only instructions whose effect depends on nothing but the registers, the
//    soft TLB and the code bytes: OP, OP-IMM, LUI, AUIPC, JAL, JALR, BRANCH,
//    LOAD, STORE, FENCE, FENCE.I. Everything else (SYSTEM, AMO, an illegal
//    encoding, a jump to a misaligned target) ends the trace before it, and
//    the interpreter runs it. So a block never reads priv, mstatus or satp, and
//    (host address, virtual pc) is the whole key of a translation.
//  - A load or store that misses the soft TLB (a miss, a misaligned address,
//    MMIO, a page holding translated code) "bails": it writes the registers
//    back, reports the instructions completed before it (out[0]) with out[1] =
//    EXIT_BAIL and returns its pc. Nothing of that instruction has happened; the
//    interpreter runs it next, slow path, trap and all. A jalr to a misaligned
//    target bails the same way, so the trap is the interpreter's.
//  - The registers it touches live in locals (x0 is the constant 0) and go back
//    to x at every exit; a register is loaded at entry even if only written, so
//    writing back one not yet written stores the value it had.
//  - A trace whose branch goes back to its own first instruction loops inside
//    the function while another whole pass fits in `room` (the instructions
//    the dispatcher allows before the next boundary: budget or timer), so an
//    interrupt is never taken later than the interpreter would take it.
//  - The instruction count of every exit is a literal (passes * len + index).
//  - A path that ends where another compiled trace starts may run it from
//    the epilogue, after the write-back, if its longest path fits in what is
//    left of room: the count it reports is its own plus the callee's, the
//    flag and pc the callee's. At most MAX_LINK_DEPTH deep, then the
//    dispatcher runs the next one.

/** Longest trace, in instructions. */
export const MAX_TRACE = 64;
/** Traces run one from another's epilogue (a chain) before one returns to the dispatcher. */
export const MAX_LINK_DEPTH = 8;

/** out[1] after a block: ended at a branch, a jump or the end of the trace. */
export const EXIT_NORMAL = 0;
/** The instruction at the returned pc has not run: the interpreter must run it next. */
export const EXIT_BAIL = 1;
/** The block ended with a fence.i: the dispatcher drops every translation. */
export const EXIT_FENCE_I = 2;

export interface TraceHints {
  /**
   * Whether the branch at `at`, the last instruction of the straight line
   * from `start`, is taken often enough for its taken side to be a path of
   * the tree (what the interpreter saw of that line before the compile). A
   * loop whose body skips an if (a forward branch usually taken, then the jump
   * back to the loop's test) then stays in one function instead of two
   * dispatches a pass, and a state machine's usual transitions in one.
   */
  takenIn?: (start: number, at: number) => boolean;
  /**
   * Whether pc starts another compiled trace: a path that reaches one ends
   * there, so that the same code is not compiled into every trace that runs
   * into it (on CoreMark, 3,106 instructions compiled for 876 distinct ones,
   * and V8's compile time grows with the code).
   */
  isHead?: (pc: number) => boolean;
}

export interface CompiledSource {
  /** Body of `function (room, depth)`, with x, m8, m16, m32, lt, ld, st, sd, mulh, mulhsu, mulhu, out, lb, call in scope. */
  body: string;
  /** Instructions on the longest path through the trace (what one pass may execute). */
  len: number;
  /** Paths in the tree (1 + the branches taken in). */
  paths: number;
  /**
   * Virtual pcs of the other traces its paths end at (TraceHints.isHead), in
   * the order of `lb`: the epilogue reads lb[i].fn and lb[i].len to run one.
   */
  links: number[];
}

const h = (v: number): string => (v < 0 ? `(${v})` : String(v));
/** An effective address: base register (or '0') plus offset, without arithmetic where there is none. */
const addr = (base: string, off: number): string => (base === '0' ? h(off) : off === 0 ? base : `(${base} + ${h(off)}) | 0`);
const imm12 = (insn: number): number => insn >> 20;
const immS = (insn: number): number => ((insn >> 25) << 5) | ((insn >>> 7) & 31);
const immB = (insn: number): number => ((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11)
  | (((insn >>> 25) & 0x3f) << 5) | (((insn >>> 8) & 0xf) << 1);
const immJ = (insn: number): number => ((insn >> 31) << 20) | (insn & 0xff000) | (((insn >>> 20) & 1) << 11)
  | (((insn >>> 21) & 0x3ff) << 1);

/** An instruction that compiles to straight-line code (it may bail, never jump). */
function isSimple(insn: number): boolean {
  const f3 = (insn >>> 12) & 7, f7 = insn >>> 25;
  switch (insn & 0x7f) {
    case 0x13: return f3 === 1 ? f7 === 0 : f3 === 5 ? f7 === 0 || f7 === 0x20 : true;
    case 0x33: return f7 === 1 || (f7 === 0 ? true : f7 === 0x20 && (f3 === 0 || f3 === 5));
    case 0x37: case 0x17: return true;
    case 0x03: return f3 !== 3 && f3 <= 5;
    case 0x23: return f3 <= 2;
    default: return false;
  }
}

/** Longest arm of an if or if-else that a trace takes in (instructions). */
const MAX_ARM = 16;

/**
 * Instructions over all the paths of one trace tree: each branch taken in
 * (TraceHints.takenIn) copies the rest of the trace from its target, so this
 * bounds the function V8 compiles, not any one path (MAX_TRACE does that).
 */
export const MAX_TREE = 192;

/** Code of one path of the tree: text, and the paths that branch off it, in place. */
interface PathCode { items: (string | PathCode)[] }

/** A path still to compile: where it starts, and how it got there. */
interface PathStart {
  code: PathCode;
  cur: number;
  /** Instructions on the path before cur. */
  k: number;
  /** Addresses on the path before cur (a second visit is an inner loop: the path ends there). */
  seen: Set<number>;
  /** Where the straight line through cur began (a path's start, a branch's either side, a jump's target). */
  line: number;
}

/**
 * Compiles the trace that starts at virtual pc `pc`, whose page's words are
 * read through `word(pc)` (only for pcs on pc's page). Returns null when the
 * first instruction cannot be compiled.
 *
 * The trace is a tree: its first path goes straight on through branches not
 * taken; a branch that `hints.takenIn` names also compiles its taken side, a
 * path of its own from the target (in breadth-first order, so the paths
 * nearest the root get the budget first).
 */
export function compileTrace(pc: number, word: (pc: number) => number, hints: TraceHints = {}): CompiledSource | null {
  const page = pc & 0xfffff000;
  const used = new Set<number>();
  const written = new Set<number>();
  const start = pc;
  let loops = false;
  let len = 1; // longest path
  let size = 0; // instructions compiled over all paths
  const R = (r: number): string => (r === 0 ? '0' : `r${r}`);
  const use = (r: number): string => {
    if (r !== 0) used.add(r);
    return R(r);
  };
  /** Starts of other traces that paths end at (lk = index + 1). */
  const links: number[] = [];
  const root: PathCode = { items: [] };
  const queue: PathStart[] = [{ code: root, cur: pc, k: 0, seen: new Set(), line: pc }];

  /** Compiles one path; false if it is the root and its first instruction cannot be compiled. */
  const walk = (from: PathStart): boolean => {
    const lines = from.code.items;
    const seen = from.seen;
    let { cur, k, line } = from;
    /*
     * A forward branch over a short arm of simple instructions (if), or over
     * one that ends in a forward jal around a second arm (if-else), stays in
     * the path as a JavaScript if. Counts stay literals: k counts every
     * instruction of both arms as if all ran, and each side subtracts what it
     * skipped.
     */
    let arm: { jalPc: number; join: number; skipA: number; skipB: number; diamond: boolean } | null = null;
    const def = (r: number, expr: string): void => {
      if (r === 0) return;
      used.add(r);
      written.add(r);
      lines.push(`r${r} = ${expr};`);
    };
    // Every exit goes through the one write-back at the end (code size is
    // TurboFan's time); link, when not 0, names the trace the epilogue may run.
    const exit = (count: number, flag: number, nextPc: number | string, link = 0): string => {
      if (count > len) len = count;
      return `{ n = (n + ${count}) | 0; ${flag !== EXIT_NORMAL ? `f = ${flag}; ` : ''}pc = ${typeof nextPc === 'number' ? h(nextPc) : nextPc}; ${link !== 0 ? `lk = ${link}; ` : ''}break L; }`;
    };
    const loopBack = (count: number): string => {
      loops = true;
      if (count > len) len = count;
      return `{ n = (n + ${count}) | 0; if (n + LEN <= room) continue; pc = ${h(start)}; break L; }`;
    };
    for (;;) {
      if (arm !== null && cur === arm.jalPc) { // end of the first arm of an if-else: its jal
        seen.add(cur);
        lines.push(`n = (n - ${arm.skipB}) | 0; } else { n = (n - ${arm.skipA}) | 0;`);
        k++;
        size++;
        cur = (cur + 4) | 0;
        arm.jalPc = 1;
        continue;
      }
      if (arm !== null && cur === arm.join) {
        lines.push(arm.diamond ? '}' : `} else { n = (n - ${arm.skipA}) | 0; }`);
        line = arm.join; // the interpreter's span that goes on from here starts there (or before, in the arm)
        arm = null;
      }
      if (cur === start && k > 0) {
        // Back to the top by falling through or a jump: a loop, as for a branch to it.
        lines.push(loopBack(k));
        return true;
      }
      if (arm === null && k > 0 && (cur & 0xfffff000) === page && hints.isHead?.(cur) === true) {
        // Another trace's start: the epilogue may run that trace (lk names it).
        let id = links.indexOf(cur) + 1;
        if (id === 0) id = links.push(cur);
        lines.push(exit(k, EXIT_NORMAL, cur, id));
        return true;
      }
      // Arms are sized to fit before they are taken in: the budgets end a path only outside one.
      if (k >= MAX_TRACE || (cur & 0xfffff000) !== page || seen.has(cur) || (arm === null && size >= MAX_TREE)) {
        lines.push(exit(k, EXIT_NORMAL, cur));
        return true;
      }
      seen.add(cur);
      const insn = word(cur) | 0;
      const rd = (insn >>> 7) & 31;
      const rs1 = (insn >>> 15) & 31;
      const rs2 = (insn >>> 20) & 31;
      const f3 = (insn >>> 12) & 7;
      const f7 = insn >>> 25;
      const next: number = (cur + 4) | 0;
      let ok = true;
      let end = false;
      let branch = false;
      const bailHere = (): string => exit(k, EXIT_BAIL, cur);
      switch (((insn >>> 2) & 0x1f) | (((insn & 3) ^ 3) << 5)) {
        case 0x04: { // OP-IMM
          const a = use(rs1), imm = imm12(insn);
          switch (f3) {
            // li and mv (the most common instructions) need no arithmetic.
            case 0: def(rd, rs1 === 0 ? h(imm) : imm === 0 ? a : `(${a} + ${h(imm)}) | 0`); break;
            case 7: def(rd, `${a} & ${h(imm)}`); break;
            case 4: def(rd, `${a} ^ ${h(imm)}`); break;
            case 6: def(rd, `${a} | ${h(imm)}`); break;
            case 2: def(rd, `${a} < ${h(imm)} ? 1 : 0`); break;
            case 3: def(rd, `(${a} >>> 0) < ${imm >>> 0} ? 1 : 0`); break;
            case 1: if (f7 === 0) def(rd, `${a} << ${rs2}`); else ok = false; break;
            default: // 5
              if (f7 === 0) def(rd, `(${a} >>> ${rs2}) | 0`);
              else if (f7 === 0x20) def(rd, `${a} >> ${rs2}`);
              else ok = false;
              break;
          }
          break;
        }
        case 0x0c: { // OP
          const a = use(rs1), b = use(rs2);
          switch ((f7 << 3) | f3) {
            case 0x000: def(rd, `(${a} + ${b}) | 0`); break;
            case 0x100: def(rd, `(${a} - ${b}) | 0`); break;
            case 0x004: def(rd, `${a} ^ ${b}`); break;
            case 0x006: def(rd, `${a} | ${b}`); break;
            case 0x007: def(rd, `${a} & ${b}`); break;
            case 0x001: def(rd, `${a} << ${b}`); break;
            case 0x005: def(rd, `(${a} >>> ${b}) | 0`); break;
            case 0x105: def(rd, `${a} >> ${b}`); break;
            case 0x002: def(rd, `${a} < ${b} ? 1 : 0`); break;
            case 0x003: def(rd, `(${a} >>> 0) < (${b} >>> 0) ? 1 : 0`); break;
            case 0x008: def(rd, `Math.imul(${a}, ${b})`); break;
            case 0x009: def(rd, `mulh(${a}, ${b}) | 0`); break;
            case 0x00a: def(rd, `mulhsu(${a}, ${b}) | 0`); break;
            case 0x00b: def(rd, `mulhu(${a}, ${b}) | 0`); break;
            case 0x00c: def(rd, `${b} === 0 ? -1 : (${a} === -2147483648 && ${b} === -1) ? ${a} : (${a} / ${b}) | 0`); break;
            case 0x00d: def(rd, `${b} === 0 ? -1 : ((${a} >>> 0) / (${b} >>> 0)) | 0`); break;
            case 0x00e: def(rd, `${b} === 0 ? ${a} : ${b} === -1 ? 0 : (${a} % ${b}) | 0`); break;
            case 0x00f: def(rd, `${b} === 0 ? ${a} : ((${a} >>> 0) % (${b} >>> 0)) | 0`); break;
            default: ok = false; break;
          }
          break;
        }
        case 0x0d: // LUI
          def(rd, h(insn & 0xfffff000));
          break;
        case 0x05: // AUIPC
          def(rd, h((cur + (insn & 0xfffff000)) | 0));
          break;
        case 0x00: { // LOAD
          if (f3 === 3 || f3 > 5) { ok = false; break; }
          const a = use(rs1);
          const mask = f3 === 2 ? 0xfffff003 : (f3 & 3) === 1 ? 0xfffff001 : 0xfffff000;
          lines.push(`a = ${addr(a, imm12(insn))}; i = (a >>> 12) & 511;`);
          lines.push(`if (lt[i] !== (a & ${h(mask | 0)})) ${bailHere()}`);
          const at = f3 === 2 ? 'm32[(a + ld[i]) >> 2]' : (f3 & 3) === 1 ? 'm16[(a + ld[i]) >> 1]' : 'm8[(a + ld[i]) | 0]';
          if (rd !== 0) {
            const v = f3 === 0 ? `(${at} << 24) >> 24` : f3 === 1 ? `(${at} << 16) >> 16` : `${at} | 0`;
            def(rd, v);
          }
          break;
        }
        case 0x08: { // STORE
          if (f3 > 2) { ok = false; break; }
          const a = use(rs1), v = use(rs2);
          const mask = f3 === 2 ? 0xfffff003 : f3 === 1 ? 0xfffff001 : 0xfffff000;
          lines.push(`a = ${addr(a, immS(insn))}; i = (a >>> 12) & 511;`);
          lines.push(`if (st[i] !== (a & ${h(mask | 0)})) ${bailHere()}`);
          lines.push(f3 === 2 ? `m32[(a + sd[i]) >> 2] = ${v};` : f3 === 1 ? `m16[(a + sd[i]) >> 1] = ${v};` : `m8[(a + sd[i]) | 0] = ${v};`);
          break;
        }
        case 0x03: // MISC-MEM: FENCE is nothing here; FENCE.I ends the trace and tells the dispatcher
          if (f3 === 0) break;
          if (f3 !== 1) { ok = false; break; }
          lines.push(exit(k + 1, EXIT_FENCE_I, next));
          end = true;
          break;
        case 0x1b: { // JAL
          const target = (cur + immJ(insn)) | 0;
          if ((target & 3) !== 0) { ok = false; break; }
          def(rd, h(next));
          k++;
          size++;
          cur = line = target;
          continue; // follow it: the trace goes on at the target (a new page ends it)
        }
        case 0x19: { // JALR
          if (f3 !== 0) { ok = false; break; }
          lines.push(`t = (${addr(use(rs1), imm12(insn))}) & -2;`);
          lines.push(`if ((t & 3) !== 0) ${bailHere()}`);
          def(rd, h(next));
          lines.push(exit(k + 1, EXIT_NORMAL, 't'));
          end = true;
          break;
        }
        case 0x18: { // BRANCH
          const a = use(rs1), b = use(rs2);
          let cond: string;
          switch (f3) {
            case 0: cond = `${a} === ${b}`; break;
            case 1: cond = `${a} !== ${b}`; break;
            case 4: cond = `${a} < ${b}`; break;
            case 5: cond = `${a} >= ${b}`; break;
            case 6: cond = `(${a} >>> 0) < (${b} >>> 0)`; break;
            case 7: cond = `(${a} >>> 0) >= (${b} >>> 0)`; break;
            default: cond = ''; break;
          }
          const target: number = (cur + immB(insn)) | 0;
          if (cond === '' || (target & 3) !== 0) { ok = false; break; }
          branch = true;
          const aLen: number = (target - next) >> 2;
          if (target > next && aLen <= MAX_ARM && (target & 0xfffff000) === page) {
            let simple = true;
            for (let p = next; p < target - 4 && simple; p += 4) simple = isSimple(word(p)) && !seen.has(p);
            const last = word((target - 4) | 0) | 0;
            const join = (target - 4 + immJ(last)) | 0;
            const bLen = (join - target) >> 2;
            simple &&= !seen.has((target - 4) | 0);
            if (simple && isSimple(last)) { // if
              if (k + 1 + aLen < MAX_TRACE) {
                lines.push(`if (!(${cond})) {`);
                arm = { jalPc: 1, join: target, skipA: aLen, skipB: 0, diamond: false };
                break;
              }
            } else if (simple && (last & 0xfff) === 0x06f && join > target && bLen <= MAX_ARM
              && (join & 0xfffff000) === page && k + 1 + aLen + bLen < MAX_TRACE) { // if-else: the arm ends in jal x0
              let simpleB = true;
              for (let p = target; p < join && simpleB; p += 4) simpleB = isSimple(word(p)) && !seen.has(p);
              if (simpleB) {
                lines.push(`if (!(${cond})) {`);
                arm = { jalPc: (target - 4) | 0, join, skipA: aLen, skipB: bLen, diamond: true };
                break;
              }
            }
          }
          if (target === start) {
            // Back to the top: another pass if a whole one still fits in room.
            lines.push(`if (${cond}) ${loopBack(k + 1)}`);
          } else if (size < MAX_TREE && hints.takenIn?.(line, cur) === true) {
            // Often taken: the taken side is a path of the tree too.
            const taken: PathCode = { items: [] };
            lines.push(`if (${cond}) {`, taken, '}');
            queue.push({ code: taken, cur: target, k: k + 1, seen: new Set(seen), line: target });
          } else {
            lines.push(`if (${cond}) ${exit(k + 1, EXIT_NORMAL, target)}`);
          }
          break;
        }
        default:
          ok = false;
          break;
      }
      if (!ok) {
        if (k === 0) return false;
        lines.push(exit(k, EXIT_NORMAL, cur));
        return true;
      }
      k++;
      size++;
      if (end) return true;
      if (branch) line = next;
      cur = next;
    }
  };

  for (let q = 0; q < queue.length; q++) if (!walk(queue[q]!)) return null;

  const lines: string[] = [];
  const flatten = (p: PathCode): void => {
    for (const it of p.items) if (typeof it === 'string') lines.push(it); else flatten(it);
  };
  flatten(root);
  const regs = [...used].sort((p, q) => p - q);
  const wb = [...written].sort((p, q) => p - q).map((r) => `x[${r}] = r${r};`).join(' ');
  // x is an Int32Array: its elements are int32 already (no `| 0`, which the
  // unoptimized tiers pay for as a call).
  const decl = regs.length > 0 ? `let ${regs.map((r) => `r${r} = x[${r}]`).join(', ')};` : '';
  // The LEN guard of a loop uses the longest path, which is what the dispatcher checks too.
  const body = [
    decl,
    `let n = 0, f = 0, pc = 0, a = 0, i = 0, t = 0${links.length > 0 ? ', lk = 0' : ''};`,
    loops ? 'L: for (;;) {' : 'L: {',
    ...lines,
    '}',
    wb,
    // A path that ended at another trace's start runs it from here (the
    // registers are in x) while room and the depth allow: one return to the
    // dispatcher and its lookup saved.
    // Both ways out share the stores to out: V8 optimizes a block that has
    // only run its chain, and a store it has no feedback for deoptimizes it.
    links.length > 0 ? `if (lk !== 0 && depth < ${MAX_LINK_DEPTH}) { const b = lb[lk - 1], g = b.fn;
      if (g !== null && n + b.len <= room) { pc = call(g, room - n, depth + 1); n = (out[0] + n) | 0; f = out[1]; } }` : '',
    'out[0] = n; out[1] = f; return pc;',
  ].join('\n').replace(/\bLEN\b/g, String(len));
  return { body, len, paths: queue.length, links };
}

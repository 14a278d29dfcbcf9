// Translation cache and dispatcher of the block compiler (hart option `jit`).
// After QEMU's accel/tcg: translation blocks found by physical address
// (tb_lookup / tb_htable), invalidated per physical page when that page is
// written (tb_invalidate_phys_page via the TLB_NOTDIRTY store slow path).
//
// Invariants:
//  - A translation is keyed by (host address of its first instruction, its
//    virtual pc): the host address names the code bytes, the virtual pc fixes
//    the pc-relative constants compiled in. Nothing else goes in (see
//    compile.ts: a block reads no privilege or CSR), so satp, priv and
//    sfence.vma need no flush here: a new mapping gives a new host address
//    through the fetch TLB, which the hart flushes on every context change.
//  - A trace lies on one page, and is compiled once from what the interpreter
//    saw of its code (which branches it took): a new function costs V8 its
//    tiers again, and CoreMark's run is over before most are optimized.
//  - A host page that holds a translation is a
//    "code page": no store TLB entry maps it (dropped when the page becomes one,
//    and Hart.translateSlow calls invalidatePage before it hands out a store
//    translation to it), so every store into translated code, by the hart or a
//    compiled block, takes the slow path, and the slow path drops the page's
//    translations before the store. The store that bails out of a block is then
//    run by the interpreter. Writes that bypass the hart (a device, the host
//    loading a program) call Hart.invalidateCode; a secondary MMU that drops
//    its mapping of a frame (after which the host may reuse it) calls
//    Hart.dropCodeHostPage. fence.i drops everything.
//  - The dispatcher runs a block only when its longest path fits before the
//    next boundary (budget, timer deadline), and hands everything else to the
//    interpreter (Hart.interp) a block's worth at a time (COLD_RUN
//    instructions on a page still in its cold phase): cold code, code the
//    compiler does not take, the instruction a block bailed at, and the
//    boundaries themselves (interrupts, the timer, stop requests). So traps,
//    counts and interrupt points are the interpreter's by construction. It
//    only reads mip and the timer to decide: MTIP is the interpreter's to set
//    at its boundary, so the state after run() is the same on both engines.

import { compileTrace, EXIT_BAIL, EXIT_FENCE_I, MAX_TRACE } from './compile.js';
import { mulh, mulhsu, mulhu, MAX_BUDGET, STOP_BUDGET, TLB_SIZE, type Hart } from '../hart.js';
import { MIP_MTIP } from '../csr.js';

export interface JitOptions {
  /**
   * Dispatches of a block start before it is compiled. Default: 4096, after a
   * cold phase in which each page is sampled by whole interpreter runs. Given
   * explicitly, blocks are counted from the first instruction on, with no cold
   * phase (1 compiles every block on first sight).
   */
  threshold?: number;
}

type BlockFn = (room: number, depth: number) => number;

/**
 * The one call site of every compiled block (from the dispatcher, and from a
 * block's epilogue that runs the next trace). V8 inlines a call whose feedback
 * has seen one target: it deoptimized the dispatcher (Jit.run) when a second
 * came, and compiled it again (about 10 ms of TurboFan), and a block would get
 * the next trace compiled into it again. Calls of two functions here at load
 * time leave the feedback megamorphic (enough of them that V8 has allocated
 * the feedback vector).
 */
function callBlock(fn: BlockFn, room: number, depth: number): number {
  return fn(room, depth);
}
{
  const two: BlockFn[] = [(room) => room, (room) => -room];
  for (let i = 0; i < 1000; i++) callBlock(two[i & 1]!, i, 0);
}

interface Block {
  pc: number;
  host: number;
  /** Compiled function, or null (cold, or nothing to compile). */
  fn: BlockFn | null;
  /** Instructions on its longest path (a block runs only if they fit). */
  len: number;
  /** Straight-line instructions the interpreter runs when fn is null. */
  span: number;
  /** Dispatches so far; -1 once the compiler has answered. */
  count: number;
  /** Interpreter runs of its span, and how many of them left it by a taken branch (or a jump). */
  visits: number;
  taken: number;
}

/**
 * Instructions the interpreter runs at a time from a page that is still cold,
 * and how many such runs start on a page before its blocks are counted one by
 * one. Counting a block costs a dispatch and an interpreter call for each of
 * its few instructions, several times the interpreter's own speed, which on a
 * Linux guest (30,000 block starts, most run a few hundred times) cost more
 * than the compiled code saved. A run of COLD_RUN is a sample: a page where
 * PAGE_WARM of them start is where the guest spends its time.
 */
const COLD_RUN = 256;
const PAGE_WARM = 32;
/**
 * A V8 function costs its parse and bytecode when first called and TurboFan's
 * time when hot: about as much as the interpreter spends on a few thousand
 * runs of a short block. At 16, a Linux boot compiled 13,345 blocks and took
 * 1.5x the interpreter's CPU time; at 4096 it is level with it, and CoreMark,
 * whose hot blocks run millions of times, does not notice.
 */
const DEFAULT_THRESHOLD = 4096;

const CACHE_SIZE = 1 << 14;
const CACHE_MASK = CACHE_SIZE - 1;
/** Invalidations of one page after which it is interpreted for good (code and data on one page). */
const MAX_PAGE_INVALIDATIONS = 64;

/**
 * Before a trace is compiled, the interpreter has run each straight line
 * (span) of its code many times: a branch taken in at least 1/TAKEN_SHARE of
 * TAKEN_SAMPLES or more runs of its span has its taken side in the tree.
 * A taken branch a trace leaves by costs a return to the dispatcher, a lookup
 * and the next block's loads of the registers: on CoreMark's state machine
 * they were 7.0M of 10.1M dispatches. A Linux boot's init spends 75M
 * dispatches in a verify loop whose if is usually skipped: two traces a pass,
 * none once the trace takes that branch in (it loops).
 */
const TAKEN_SAMPLES = 16;
const TAKEN_SHARE = 8;

/** run(0) calls in primeFeedback (each a few dozen bytecodes). */
const PRIME_CALLS = 100;

const NO_BLOCK: Block = { pc: 1, host: -1, fn: null, len: 1, span: 1, count: -1, visits: 0, taken: 0 };

export class Jit {
  readonly threshold: number;
  /** Cold runs a page gets before its blocks are counted (none when the threshold is given). */
  private readonly pageWarm: number;
  /** Translations compiled, and pages invalidated (for dump and tests). */
  compiled = 0;
  /** Instructions run by compiled blocks, up to the last return from run(). */
  compiledInsns = 0;
  /** Calls of compiled blocks by the dispatcher, up to the last return from run() (a chain of them is one). */
  dispatches = 0;
  invalidations = 0;
  flushes = 0;
  /** Taken sides of branches compiled into trace trees (paths past the first). */
  takenIn = 0;
  private readonly blocks = new Map<number, Block>();
  /** Direct-mapped front of `blocks`, by host address. */
  private readonly cacheTag = new Int32Array(CACHE_SIZE).fill(-1);
  private readonly cacheBlk: Block[] = new Array<Block>(CACHE_SIZE).fill(NO_BLOCK);
  /** Per host page: 1 while it holds a translation. */
  readonly codePage: Uint8Array;
  /** Per host page: interpreter runs started on it while cold (saturates at PAGE_WARM). */
  private readonly pageHeat: Uint8Array;
  private readonly pageBlocks = new Map<number, Block[]>();
  private readonly pageInvalidations = new Map<number, number>();
  /** What a block reports besides its next pc: [instructions run, EXIT_*]. */
  private readonly out = new Int32Array(2);
  private readonly factoryArgs: unknown[];

  constructor(private readonly hart: Hart, opts: JitOptions = {}) {
    this.threshold = Math.max(1, opts.threshold ?? DEFAULT_THRESHOLD);
    this.pageWarm = opts.threshold === undefined ? PAGE_WARM : 0;
    this.codePage = new Uint8Array(Math.ceil(hart.mem8.length / 4096));
    this.pageHeat = new Uint8Array(this.codePage.length);
    this.factoryArgs = [hart.regs, hart.mem8, hart.mem16, hart.mem32, hart.loadTag, hart.loadDelta,
      hart.storeTag, hart.storeDelta, mulh, mulhsu, mulhu, this.out];
  }

  /** Hart.run with the compiler: same contract, same results. */
  run(budget: number): number {
    const hart = this.hart;
    const ftag = hart.fetchTag, fdel = hart.fetchDelta;
    const ctag = this.cacheTag, cblk = this.cacheBlk;
    const out = this.out;
    // Fields read on paths that run only later (counting starts after the
    // cold phase, a return after millions of instructions) are locals: V8
    // optimizes run() by OSR early, and a property load it has no feedback
    // for deoptimizes it when first reached.
    const heat = this.pageHeat, pageWarm = this.pageWarm, threshold = this.threshold;
    const cap = (budget > MAX_BUDGET ? MAX_BUDGET : budget) | 0;
    let pc = hart.pc | 0;
    let n = 0;
    let pend = 0; // instructions run by blocks, not yet in the counters
    let calls = 0;
    let limit = 0;
    let interpNext = true; // the first step is the interpreter's: it takes pending interrupts
    let span = 1;
    let visited: Block | null = null; // the block whose span the interpreter is about to run
    let result = STOP_BUDGET;
    for (;;) {
      if (!interpNext) {
        const idx = (pc >>> 12) & (TLB_SIZE - 1);
        span = 1;
        if (ftag[idx] === (pc & 0xfffff003)) {
          const host = (pc + fdel[idx]!) | 0;
          const ci = (host >>> 2) & CACHE_MASK;
          let b = cblk[ci]!;
          const hit = ctag[ci] === host && b.pc === pc;
          // A block in the cache is on a warm page (lookup makes blocks only
          // there, and heat never drops): the usual dispatch skips the test.
          if (!hit && heat[host >>> 12]! < pageWarm) {
            heat[host >>> 12]!++;
            span = COLD_RUN;
          } else {
            if (!hit) b = this.lookup(host, pc, ci);
            const fn = b.fn;
            if (fn !== null) {
              const room = (limit - n) | 0;
              if (b.len <= room) {
                pc = callBlock(fn, room, 0) | 0;
                calls++;
                const k = out[0]!;
                n = (n + k) | 0;
                pend = (pend + k) | 0;
                const flag = out[1]!;
                if (flag !== 0) {
                  if (flag === EXIT_BAIL) interpNext = true;
                  else if (flag === EXIT_FENCE_I) this.flushAll();
                }
                continue;
              }
            } else {
              span = b.span;
              if (b.count >= 0 && ++b.count >= threshold) this.compile(b);
              else visited = b;
            }
          }
        }
      }
      if (n >= cap) break;
      this.settle(pend);
      pend = 0;
      hart.pc = pc;
      const left = (cap - n) | 0;
      const stop = hart.interp(span < left ? span : left);
      n = (n + hart.lastRunInsns) | 0;
      pc = hart.pc | 0;
      if (visited !== null) {
        // Which way its last instruction went: what the compiler asks of a branch (takenIn).
        if (hart.lastRunInsns === span) {
          visited.visits++;
          if (pc !== ((visited.pc + (span << 2)) | 0)) visited.taken++;
        }
        visited = null;
      }
      if (stop !== STOP_BUDGET) {
        result = stop;
        break;
      }
      // What the interpreter's next boundary would look at before its next
      // instruction: a pending interrupt, or a timer that is due now (mip is
      // left alone: the interpreter updates MTIP at its own boundary).
      interpNext = hart.pendingInterrupt() >= 0;
      limit = cap;
      if ((hart.mip & MIP_MTIP) === 0) {
        if (hart.getMtime() >= hart.getMtimecmp()) interpNext = true;
        else {
          const d = hart.ticksToTimer();
          if (n + d < limit) limit = (n + d) | 0;
        }
      }
    }
    // One way out (after a stop, pend is 0 and pc the interpreter's), which
    // primeFeedback takes.
    this.dispatches += calls;
    this.settle(pend);
    hart.pc = pc;
    hart.lastRunInsns = n;
    return result;
  }

  /**
   * Runs the dispatcher with a zero budget, which executes nothing and takes
   * its one way out: V8 then has the feedback of that path (the counters, the
   * hart's pc) before it optimizes run(), which it does by OSR long before a
   * guest's first return (millions of instructions in), and a property load
   * without feedback deoptimizes it there. Enough calls that V8 has allocated
   * run()'s feedback vector (it does so lazily, after some bytecode has run).
   */
  primeFeedback(): void {
    for (let k = 0; k < PRIME_CALLS; k++) this.run(0);
  }

  /**
   * Adds k instructions that compiled blocks ran to the hart's counters and
   * compiledInsns (also when 0: run() is optimized before its first block
   * runs, and a load V8 has no feedback for deoptimizes it).
   */
  private settle(k: number): void {
    this.compiledInsns += k;
    const hart = this.hart;
    hart.instret += k;
    hart.cycle += k;
    hart.ticks += k;
  }

  private lookup(host: number, pc: number, ci: number): Block {
    let b = this.blocks.get(host);
    if (b === undefined || b.pc !== pc) {
      if (b !== undefined) this.dropBlock(b);
      b = { pc, host, fn: null, len: 1, span: this.scanSpan(host), count: 0, visits: 0, taken: 0 };
      this.blocks.set(host, b);
      if (this.pageInvalidations.get(host >>> 12)! >= MAX_PAGE_INVALIDATIONS) b.count = -1;
    }
    this.cacheTag[ci] = host;
    this.cacheBlk[ci] = b;
    return b;
  }

  /** Instructions from host up to and including the first that may leave the straight line. */
  private scanSpan(host: number): number {
    const mem32 = this.hart.mem32;
    const end = (host | 0xfff) + 1;
    let k = 0;
    for (let a = host; a < end && k < MAX_TRACE;) {
      const op = mem32[a >> 2]! & 0x7f;
      k++;
      a += 4;
      if (op === 0x63 || op === 0x6f || op === 0x67 || op === 0x73 || op === 0x0f || op === 0x2f) break;
    }
    return k;
  }

  /** Compiles b's trace from the current bytes; false if its first instruction cannot be. */
  private translate(b: Block): boolean {
    const mem32 = this.hart.mem32;
    const delta = (b.host - b.pc) | 0;
    /** The block that starts at virtual pc on b's page, if there is one. */
    const blockAt = (pc: number): Block | undefined => {
      const s = this.blocks.get((pc + delta) | 0);
      return s !== undefined && s.pc === pc ? s : undefined;
    };
    const src = compileTrace(b.pc, (pc) => mem32[((pc + delta) | 0) >> 2]!, {
      isHead: (at) => (blockAt(at)?.fn ?? null) !== null,
      takenIn: (start, at) => {
        const s = blockAt(start);
        if (s === undefined || ((s.pc + ((s.span - 1) << 2)) | 0) !== at) return false;
        return s.visits >= TAKEN_SAMPLES && s.taken * TAKEN_SHARE >= s.visits;
      },
    });
    if (src === null) return false;
    const factory = new Function('x', 'm8', 'm16', 'm32', 'lt', 'ld', 'st', 'sd', 'mulh', 'mulhsu', 'mulhu', 'out', 'lb', 'call',
      `"use strict"; return function blk(room, depth) {\n${src.body}\n};`) as (...args: unknown[]) => BlockFn;
    // The traces it may run next, as Block objects: one dropped or recompiled
    // later is seen through its fn (null while it has none).
    const lb = src.links.map((pc) => blockAt(pc) ?? NO_BLOCK);
    b.fn = factory(...this.factoryArgs, lb, callBlock);
    b.len = src.len;
    this.compiled++;
    this.takenIn += src.paths - 1;
    return true;
  }

  private compile(b: Block): void {
    b.count = -1;
    if (!this.translate(b)) return;
    const page = b.host >>> 12;
    let list = this.pageBlocks.get(page);
    if (list === undefined) {
      list = [];
      this.pageBlocks.set(page, list);
    }
    list.push(b);
    if (this.codePage[page] === 0) {
      this.codePage[page] = 1;
      this.hart.dropStoreTlbHostPage(page << 12);
    }
  }

  private dropBlock(b: Block): void {
    this.blocks.delete(b.host);
    const ci = (b.host >>> 2) & CACHE_MASK;
    if (this.cacheBlk[ci] === b) {
      this.cacheTag[ci] = -1;
      this.cacheBlk[ci] = NO_BLOCK;
    }
    b.fn = null;
  }

  /** Forgets b's translation but not that it was hot: the next dispatch compiles the new bytes. */
  private uncompile(b: Block): void {
    b.fn = null;
    b.len = 1;
    b.span = this.scanSpan(b.host);
    b.count = (this.pageInvalidations.get(b.host >>> 12) ?? 0) >= MAX_PAGE_INVALIDATIONS ? -1 : this.threshold - 1;
  }

  /**
   * Drops every translation on the host page at hostPage (4 KiB aligned byte
   * offset). `written`: its bytes changed (a store, a device), which counts
   * towards interpreting a page that keeps changing for good; a frame that a
   * secondary MMU unmapped (it may be reused) passes false.
   */
  invalidatePage(hostPage: number, written = true): void {
    const page = hostPage >>> 12;
    if (this.codePage[page] === 0) return;
    this.codePage[page] = 0;
    this.invalidations++;
    if (written) this.pageInvalidations.set(page, (this.pageInvalidations.get(page) ?? 0) + 1);
    const list = this.pageBlocks.get(page);
    if (list !== undefined) {
      for (const b of list) this.uncompile(b);
      this.pageBlocks.delete(page);
    }
  }

  /** fence.i: drops every translation. */
  flushAll(): void {
    this.flushes++;
    for (const [page, list] of this.pageBlocks) {
      this.codePage[page] = 0;
      for (const b of list) this.uncompile(b);
    }
    this.pageBlocks.clear();
  }

  dump(): string {
    return `jit: ${this.blocks.size} block starts, ${this.compiled} compiled, ${this.dispatches} calls of them (${this.takenIn} taken branches in their trees), ${this.invalidations} page invalidations, ${this.flushes} flushes`;
  }
}

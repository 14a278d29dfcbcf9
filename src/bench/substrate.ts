// Substrate benchmark: what one compiled block costs on each of V8's two code
// paths, as a decision aid for the block compiler (src/hart/jit). The same
// guest-like loop body (a soft-TLB tag check, a load, an add, a store, a
// count) is built per sample as a JavaScript function (new Function, what the
// compiler emits today) and as a WebAssembly module over the same memory. It
// measures the three things that decide CoreMark's whole-process time (see
// docs/DESIGN.md, "Until TurboFan has compiled it"): the cost of making a
// function, its speed while new (a block dispatched thousands of times with a
// short body, before any optimizing tier), and its speed once optimized.
// A synthetic loop, not a guest: its figures compare substrates, never our
// speed against QEMU's.

import { performance } from 'node:perf_hooks';
import { median, type BenchSection } from './section.js';

/** Body iterations per call of a new function (a block's few instructions), and calls. */
const COLD_ITERS = 16;
const COLD_CALLS = 4000;
const WARM_ITERS = 1_000_000;
/** Bytes below DATA hold the TLB tags the loop checks (512 entries). */
const DATA = 65536;

type LoopFn = (iters: number) => number;

/** The part of the WebAssembly API used here (the ES2022 lib our tsconfig uses has no Wasm types). */
interface WasmMemory { readonly buffer: ArrayBuffer }
interface WasmApi {
  Memory: new (desc: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const section = (id: number, bytes: number[]): number[] => [id, ...uleb(bytes.length), ...bytes];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];

/**
 * The loop as a module: `run(iters)` over imported memory "m"."mem". Locals:
 * 0 iters, 1 i, 2 a, 3 acc. `salt` moves the load's offset, so that no two
 * samples are the same function.
 */
function loopModule(salt: number): Uint8Array {
  const I32_CONST = 0x41, GET = 0x20, SET = 0x21, TEE = 0x22, LOAD = 0x28, STORE = 0x36;
  const AND = 0x71, SHL = 0x74, SHR_U = 0x76, ADD = 0x6a, NE = 0x47, LT_S = 0x48;
  const body = [
    1, 3, 0x7f, // three i32 locals
    0x03, 0x40, // loop
    GET, 1, I32_CONST, ...sleb(1023), AND, I32_CONST, 2, SHL, SET, 2, // a = (i & 1023) << 2
    GET, 2, I32_CONST, 12, SHR_U, I32_CONST, ...sleb(511), AND, I32_CONST, 2, SHL, LOAD, 2, 0, // tag[(a >>> 12) & 511]
    GET, 2, I32_CONST, ...sleb(-4096), AND, NE, 0x04, 0x40, I32_CONST, ...sleb(-1), 0x0f, 0x0b, // miss: return -1
    GET, 3, GET, 2, LOAD, 2, ...uleb(DATA + salt * 4), ADD, SET, 3, // acc += mem[a + off]
    GET, 2, GET, 3, STORE, 2, ...uleb(DATA), // mem[a + DATA] = acc
    GET, 1, I32_CONST, 1, ADD, TEE, 1, GET, 0, LT_S, 0x0d, 0, // while (++i < iters)
    0x0b,
    GET, 3, 0x0b,
  ];
  return new Uint8Array([
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]), // type: (i32) -> i32
    ...section(2, [1, ...name('m'), ...name('mem'), 2, 0, 1]), // import memory, min 1 page
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('run'), 0, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

function wasmLoop(mem: WasmMemory, salt: number): LoopFn {
  const inst = new Wasm.Instance(new Wasm.Module(loopModule(salt)), { m: { mem } });
  return inst.exports['run'] as LoopFn;
}

function jsLoop(m: Int32Array, salt: number): LoopFn {
  const make = new Function('m', `"use strict"; return function blk(iters) {
    let i = 0, a = 0, acc = 0;
    do {
      a = (i & 1023) << 2;
      if (m[(a >>> 12) & 511] !== (a & -4096)) return -1;
      acc = (acc + m[(a + ${DATA + salt * 4}) >> 2]) | 0;
      m[(a + ${DATA}) >> 2] = acc;
      i = (i + 1) | 0;
    } while (i < iters);
    return acc;
  };`) as (m: Int32Array) => LoopFn;
  return make(m);
}

interface Figures {
  makeUs: number;
  coldMips: number;
  warmMips: number;
}

/** Median figures over `samples` new functions from `make`, each timed from its first call. */
function measure(make: (salt: number) => LoopFn, samples: number): Figures {
  const makes: number[] = [];
  const colds: number[] = [];
  const warms: number[] = [];
  let sink = 0;
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    const f = make(s + 1);
    const t1 = performance.now();
    for (let k = 0; k < COLD_CALLS; k++) sink += f(COLD_ITERS);
    const t2 = performance.now();
    for (let k = 0; k < 20; k++) sink += f(WARM_ITERS); // the optimizing tier's turn
    const t3 = performance.now();
    sink += f(WARM_ITERS);
    const t4 = performance.now();
    makes.push((t1 - t0) * 1000);
    colds.push((COLD_CALLS * COLD_ITERS) / ((t2 - t1) * 1000));
    warms.push(WARM_ITERS / ((t4 - t3) * 1000));
  }
  if (sink === 0.5) throw new Error('unreachable'); // keeps the calls' results alive
  return { makeUs: median(makes), coldMips: median(colds), warmMips: median(warms) };
}

export const substrateSection: BenchSection = {
  name: 'substrate',
  description: 'one block-like loop as a new Function and as a Wasm module: cost to make, speed while new, speed optimized',
  run(ctx) {
    const samples = ctx.quick ? 5 : 15;
    const mem = new Wasm.Memory({ initial: 4 }); // 256 KiB: tags, then data
    const m = new Int32Array(mem.buffer); // tags all 0: every check hits (a < 4096)
    const js = measure((salt) => jsLoop(m, salt), samples);
    const wasm = measure((salt) => wasmLoop(mem, salt), samples);
    ctx.log(`substrate: median of ${samples} new functions each; loop iterations per microsecond (M/s)`);
    const cold = `new (${COLD_CALLS} calls x ${COLD_ITERS})`;
    ctx.log(`  substrate      make (us)   ${cold}   optimized`);
    for (const [label, f] of [['new Function', js], ['Wasm module', wasm]] as const) {
      ctx.log(`  ${label.padEnd(14)}${f.makeUs.toFixed(0).padStart(9)}   ${`${f.coldMips.toFixed(0)} M/s`.padStart(cold.length)}   ${`${f.warmMips.toFixed(0)} M/s`.padStart(9)}`);
    }
    ctx.log(`  Wasm against new Function: make ${(wasm.makeUs / js.makeUs).toFixed(1)}x the time, `
      + `${(wasm.coldMips / js.coldMips).toFixed(1)}x the speed while new, ${(wasm.warmMips / js.warmMips).toFixed(2)}x optimized`);
  },
};

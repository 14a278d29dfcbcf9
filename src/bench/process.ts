// Whole-process section of the benchmark: what a user sees. Each ELF runs as
// `node dist/cli.js run --bare [--jit] FILE` in its own process (start-up, module
// load, a cold V8 and, with --jit, every translation compiled afresh), next to `qemu-system-riscv32 -machine spike` on the
// same file in the same run, and next to the in-process figure of the hart
// section (a warm JIT in a long-lived process) so the gap between the two is
// printed rather than guessed.
//
// The real programs come first: EEMBC CoreMark with our port (paging off and
// on) and riscv-tests' Dhrystone, then our own benchmarks, which are what the
// hart was tuned on and so are not evidence of its speed on compiled code.
// `--elf FILE` (repeatable) adds programs built elsewhere.
//
// Last, CoreMark at 5000 iterations against the 1000 of the table: what a
// further 1000 cost once start-up and the JIT's warm-up are paid, ours and
// QEMU's, which tells the compiled code from the time it takes to get there;
// and what start-up alone costs: node with nothing to run, and a program of a
// few hundred instructions under both machines. Node 20 parses the bundle
// NODE_EXTRA_CA_CERTS names before it runs any JavaScript (about 30 ms on a
// 2-core machine for Debian's); the line says so when the variable is set.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { runBareElf } from '../vmm/bare-runner.js';
import { formatTable, QEMU, qemuArgs, qemuAvailable } from './hart.js';
import { median, type BenchContext, type BenchSection } from './section.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
const BIN = new URL('../../guest-programs/bin/', import.meta.url);

/** Committed programs that finish on their own under both machines. */
const DEFAULT_ELFS = [
  'coremark.elf',
  'coremark-sv32.elf',
  'riscv-tests/dhrystone.elf',
  'coremark-lite.elf',
  'coremark-lite-sv32.elf',
  'bench-mem.elf',
  'bench-loop.elf',
];

/** CoreMark at 5000 iterations (STEADY_BASE has 1000): the steady-state line. */
const STEADY_ELF = 'coremark-5k.elf';
const STEADY_BASE = 'coremark.elf';

/** A program that ends after a few hundred instructions: start-up, as good as alone. */
const STARTUP_ELF = 'isa-alu.elf';

/** Wall seconds of one whole process. */
function timeProcess(cmd: string, args: string[], expectStatus: number | null, env?: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000, maxBuffer: 64 << 20, ...(env !== undefined ? { env } : {}) });
  const wall = (performance.now() - t0) / 1000;
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (expectStatus !== null && r.status !== expectStatus) {
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  }
  return wall;
}

/** The median wall seconds of `runs` whole processes. */
function medianProcess(runs: number, cmd: string, args: string[], expectStatus: number | null, env?: NodeJS.ProcessEnv): number {
  return median(Array.from({ length: runs }, () => timeProcess(cmd, args, expectStatus, env)));
}

/** Instructions the program executes, and the first and a warm in-process run's seconds. */
function inProcess(bytes: Uint8Array, jit: boolean): { insns: number; cold: number; warm: number; exitCode: number } {
  const once = () => {
    const t0 = performance.now();
    const r = runBareElf(bytes, jit ? { jit: {} } : {});
    return { r, s: (performance.now() - t0) / 1000 };
  };
  const first = once();
  const warm = median([once().s, once().s, once().s]);
  return { insns: first.r.insns, cold: first.s, warm, exitCode: first.r.exitCode };
}

export function runProcessBench(ctx: BenchContext): void {
  const runs = ctx.quick ? 3 : 5;
  const qemu = !ctx.noQemu && qemuAvailable();
  const files = [...DEFAULT_ELFS.map((f) => fileURLToPath(new URL(f, BIN))), ...(ctx.elfs ?? [])];
  const rows: string[][] = [];
  let steadyBase: { ours: number; qemu: number } | undefined;
  ctx.log(`process: median of ${runs} whole-process runs each; load average at start ${loadavg()}`);
  for (const file of files) {
    const bytes = new Uint8Array(readFileSync(file));
    const q = qemu
      ? medianProcess(runs, QEMU, qemuArgs(file), null)
      : 0;
    for (const jit of [false, true]) {
      const ip = inProcess(bytes, jit);
      const args = [CLI, 'run', '--bare', ...(jit ? ['--jit'] : []), file];
      timeProcess(process.execPath, args, ip.exitCode); // page cache, not JIT
      const ours = medianProcess(runs, process.execPath, args, ip.exitCode);
      const mips = (s: number) => (ip.insns / s / 1e6).toFixed(1);
      const cells = [basename(file), jit ? 'jit' : 'interp', String(ip.insns), ours.toFixed(3), mips(ours), mips(ip.cold), mips(ip.warm)];
      if (qemu) cells.push(q.toFixed(3), mips(q), (q / ours).toFixed(3) + 'x');
      if (jit && basename(file) === STEADY_BASE) steadyBase = { ours, qemu: q };
      rows.push(cells);
      ctx.log(`  ${basename(file)}${jit ? ' --jit' : ''}: ${mips(ours)} MIPS as a process`);
    }
  }
  const header = ['program', 'engine', 'instructions', 'process s', 'MIPS', 'in-proc cold', 'in-proc warm'];
  if (qemu) header.push('qemu s', 'qemu MIPS', 'speed vs qemu');
  ctx.log('');
  ctx.log(formatTable(header, rows));
  ctx.log('MIPS = instructions / wall seconds. process: `node dist/cli.js run --bare [--jit] FILE`, start-up included;');
  ctx.log('in-proc cold: the first runBareElf of a fresh image in this process; warm: the median of three more.');
  ctx.log(qemu ? `qemu: ${QEMU} -machine spike -bios none, whole process; speed vs qemu = qemu s / process s.` : `qemu: ${ctx.noQemu ? 'skipped (--no-qemu)' : 'not on PATH'}`);
  if (steadyBase !== undefined) steadyState(ctx, runs, qemu, steadyBase);
  startUp(ctx, runs, qemu);
}

/** Start-up alone: node with nothing to run, then STARTUP_ELF as a process of ours (--jit) and of QEMU's. */
function startUp(ctx: BenchContext, runs: number, qemu: boolean): void {
  const file = fileURLToPath(new URL(STARTUP_ELF, BIN));
  const node = medianProcess(runs, process.execPath, ['-e', '0'], 0);
  let line = `start-up: node -e 0 ${node.toFixed(3)} s`;
  if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
    const { NODE_EXTRA_CA_CERTS: _, ...rest } = process.env;
    line += ` (${medianProcess(runs, process.execPath, ['-e', '0'], 0, rest).toFixed(3)} s without NODE_EXTRA_CA_CERTS, which is set here)`;
  }
  line += `; ${STARTUP_ELF} --jit ${medianProcess(runs, process.execPath, [CLI, 'run', '--bare', '--jit', file], 0).toFixed(3)} s`;
  if (qemu) line += `, QEMU ${medianProcess(runs, QEMU, qemuArgs(file), null).toFixed(3)} s`;
  ctx.log(line);
}

/** Seconds per 1000 CoreMark iterations past the first 1000 (--jit and QEMU), from the 5000-iteration build. */
function steadyState(ctx: BenchContext, runs: number, qemu: boolean, base: { ours: number; qemu: number }): void {
  const file = fileURLToPath(new URL(STEADY_ELF, BIN));
  const ours = medianProcess(runs, process.execPath, [CLI, 'run', '--bare', '--jit', file], 0);
  const per = (ours - base.ours) / 4;
  let line = `steady state: ${STEADY_ELF} --jit ${ours.toFixed(3)} s; each 1000 iterations past the first ${per.toFixed(3)} s`
    + ` (the first 1000, start-up and warm-up included: ${base.ours.toFixed(3)} s)`;
  if (qemu) {
    const q = medianProcess(runs, QEMU, qemuArgs(file), null);
    const qper = (q - base.qemu) / 4;
    line += `; QEMU ${qper.toFixed(3)} s (ours at ${(qper / per).toFixed(2)}x its speed there)`;
  }
  ctx.log(line);
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

export const processSection: BenchSection = {
  name: 'process',
  description: 'whole-process `run --bare` on committed and --elf programs, against QEMU in the same run',
  run: (ctx) => runProcessBench(ctx),
};

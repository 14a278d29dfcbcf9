// Hart section of the benchmark: guest MIPS of the interpreter and of the
// block compiler (`--jit`) on the committed bench ELFs (EEMBC CoreMark and
// Dhrystone first), paging off (M-mode)
// and on (S-mode under Sv32), and when qemu-system-riscv32 is on PATH, the
// same ELFs under QEMU's spike machine for a time ratio measured in the same
// run. In-process and warm: the first run is not counted (for the compiler,
// V8 also keeps the code of a translation whose source text it has seen), so
// the process section is the one that shows start-up and compile costs.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runBareElf } from '../vmm/bare-runner.js';
import { median, type BenchContext, type BenchSection } from './section.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);

export const HART_BENCHES: ReadonlyArray<{ name: string; mode: 'bare' | 'sv32'; elf: string }> = [
  { name: 'coremark', mode: 'bare', elf: 'coremark.elf' },
  { name: 'coremark', mode: 'sv32', elf: 'coremark-sv32.elf' },
  { name: 'dhrystone', mode: 'bare', elf: 'riscv-tests/dhrystone.elf' },
  { name: 'bench-loop', mode: 'bare', elf: 'bench-loop.elf' },
  { name: 'bench-loop', mode: 'sv32', elf: 'bench-loop-sv32.elf' },
  { name: 'bench-mem', mode: 'bare', elf: 'bench-mem.elf' },
  { name: 'bench-mem', mode: 'sv32', elf: 'bench-mem-sv32.elf' },
  { name: 'coremark-lite', mode: 'bare', elf: 'coremark-lite.elf' },
  { name: 'coremark-lite', mode: 'sv32', elf: 'coremark-lite-sv32.elf' },
];

/** An image that exits at once: QEMU's process start-up and teardown cost. */
const QEMU_BASELINE_ELF = 'isa-alu.elf';
export const QEMU = 'qemu-system-riscv32';

export type HartEngine = 'interp' | 'jit';

export interface HartBenchRow {
  name: string;
  mode: string;
  engine: HartEngine;
  insns: number;
  seconds: number;
  mips: number;
  qemuSeconds?: number;
  /** Ours / QEMU's wall time; qemu time minus its start-up in ratioAdjusted. */
  ratio?: number;
  ratioAdjusted?: number;
}

function timeOurs(bytes: Uint8Array, engine: HartEngine): { seconds: number; insns: number } {
  const t0 = performance.now();
  const r = runBareElf(bytes, engine === 'jit' ? { jit: {} } : {});
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`guest failed: ${r.message ?? r.reason}\n${r.output}`);
  return { seconds, insns: r.insns };
}

export function qemuAvailable(): boolean {
  const r = spawnSync(QEMU, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

/** QEMU's command line for a bare-metal ELF (Spike's HTIF exit, no firmware). */
export function qemuArgs(elfPath: string): string[] {
  return ['-machine', 'spike', '-bios', 'none', '-nographic', '-kernel', elfPath];
}

function timeQemu(elfPath: string): number {
  const t0 = performance.now();
  const r = spawnSync(QEMU, qemuArgs(elfPath), {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${QEMU} ${elfPath}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return seconds;
}

export function runHartBench(ctx: BenchContext): HartBenchRow[] {
  const runs = ctx.quick ? 3 : 5;
  const rows: HartBenchRow[] = [];
  const qemu = !ctx.noQemu && qemuAvailable();
  let qemuBase = 0;
  if (qemu) {
    const path = fileURLToPath(new URL(QEMU_BASELINE_ELF, BIN));
    timeQemu(path);
    qemuBase = median(Array.from({ length: runs }, () => timeQemu(path)));
  }

  for (const b of HART_BENCHES) {
    const url = new URL(b.elf, BIN);
    const bytes = new Uint8Array(readFileSync(url));
    const q = qemu ? median(Array.from({ length: runs }, () => timeQemu(fileURLToPath(url)))) : 0;
    for (const engine of ['interp', 'jit'] as const) {
      timeOurs(bytes, engine); // warm V8: the first run is not the steady state
      const samples = Array.from({ length: runs }, () => timeOurs(bytes, engine));
      const seconds = median(samples.map((s) => s.seconds));
      const insns = samples[0]!.insns;
      const row: HartBenchRow = { name: b.name, mode: b.mode, engine, insns, seconds, mips: insns / seconds / 1e6 };
      if (qemu) {
        row.qemuSeconds = q;
        row.ratio = seconds / q;
        if (q - qemuBase > 0.002) row.ratioAdjusted = seconds / (q - qemuBase);
      }
      rows.push(row);
      ctx.log(`  ${b.name} (${b.mode}, ${engine}): ${row.mips.toFixed(1)} MIPS`);
    }
  }

  ctx.log('');
  ctx.log(`hart: guest MIPS, median of ${runs} runs (one warm-up run not counted)`);
  const header = ['name', 'mode', 'engine', 'instructions', 'median s', 'MIPS'];
  if (qemu) header.push('qemu s', 'ours/qemu', 'ours/(qemu-startup)');
  const table = rows.map((r) => {
    const cells = [r.name, r.mode, r.engine, String(r.insns), r.seconds.toFixed(3), r.mips.toFixed(1)];
    if (qemu) {
      cells.push(r.qemuSeconds!.toFixed(3), r.ratio!.toFixed(1) + 'x', r.ratioAdjusted !== undefined ? r.ratioAdjusted.toFixed(1) + 'x' : '-');
    }
    return cells;
  });
  ctx.log(formatTable(header, table));
  if (qemu) {
    ctx.log(`qemu: ${QEMU} -machine spike -bios none, wall clock per process; start-up (${QEMU_BASELINE_ELF}) ${qemuBase.toFixed(3)} s`);
  } else {
    ctx.log(`qemu: ${ctx.noQemu ? 'skipped (--no-qemu)' : `${QEMU} not on PATH, no comparison`}`);
  }
  return rows;
}

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const hartSection: BenchSection = {
  name: 'hart',
  description: 'interpreter MIPS on bare-metal guests, against QEMU when available',
  run: (ctx) => {
    runHartBench(ctx);
  },
};

// `shadowvisor run --bare FILE.elf`: a bare-metal RV32 program on a flat
// machine, under the riscv-tests / Spike conventions that conformance suites
// rely on. Argument parsing and printing only; the run is bare-runner.ts.
//
// Exit status: 0 guest passed; N (1..255) guest failed test N; 124 instruction
// limit; 125 hart stuck in wfi; 2 usage error, unreadable file or bad ELF;
// 141 stdout closed before the run ended.

import { performance } from 'node:perf_hooks';
import { flag, onePositional, parseCommandArgs, parsePositiveCount, parseSize, stringOption, UsageError } from '../args.js';
import { driveRun, EXIT_STDOUT_CLOSED, type CommandIo } from '../cli-io.js';
import { BareRun, DEFAULT_RAM_SIZE, EXIT_BAD_ELF, startBareElf, type BareRunResult } from './bare-runner.js';

export type BareIo = CommandIo;

export const BARE_USAGE = `usage: shadowvisor run --bare FILE.elf [options]

Run a bare-metal RV32IMA ELF (riscv-tests / Spike conventions): loaded at its
physical addresses, RAM at 0x80000000, M-mode at the ELF entry, result through
the HTIF tohost symbol, console on HTIF and on a 16550 UART at 0x10000000.

options:
  --max-insns N   stop after N instructions (exit 124); default: no limit
  --mem SIZE      RAM size, e.g. 64M, 128M, 1G (default 128M)
  --trace         print every instruction to stderr (slow path)
  --jit           compile hot code to JavaScript (the block compiler; same results)
  --jit-threshold N
                  with --jit: runs of a block before it is compiled, counted
                  from the first instruction (default: 4096 after a cold phase
                  that samples each page; 1 compiles everything on first
                  sight, as tools/difftest does)
  --stats         at the end, print to stderr the instructions run, the
                  run's wall time and MIPS (start-up not included) and, with
                  --jit, the block compiler's counters
  -h, --help      this text

exit status: 0 pass, N fail at test N (1..255), 124 instruction limit,
125 wfi with nothing to wake the hart, 2 usage error or bad ELF,
141 stdout closed before the end
`;

export const BARE_OPTIONS = {
  bare: { type: 'boolean' },
  'max-insns': { type: 'string' },
  mem: { type: 'string' },
  trace: { type: 'boolean' },
  jit: { type: 'boolean' },
  'jit-threshold': { type: 'string' },
  stats: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** --mem: a size whose RAM at 0x80000000 the hart's frame buffer (under 2 GiB) can hold. */
export function parseBareMemSize(text: string): number {
  const bytes = parseSize('--mem', text);
  if (bytes >= 0x80000000) throw new UsageError(`--mem: ${text} is too large (RAM at 0x80000000 must be under 2 GiB)`);
  return bytes;
}

export interface BareArgs {
  file: string;
  maxInsns?: number;
  memSize: number;
  trace: boolean;
  jit: boolean;
  /** Block-compiler threshold (--jit-threshold); absent: the compiler's default. */
  jitThreshold?: number;
  /** --stats: the run's counters on stderr at the end. */
  stats: boolean;
}

export function parseBareArgs(argv: readonly string[]): BareArgs | 'help' {
  const { values, positionals } = parseCommandArgs(argv, BARE_OPTIONS);
  if (flag(values, 'help')) return 'help';
  if (!flag(values, 'bare')) throw new UsageError('run --bare: called without --bare');
  const file = onePositional(positionals, 'ELF file');
  const maxInsnsText = stringOption(values, 'max-insns');
  const memText = stringOption(values, 'mem');
  const thresholdText = stringOption(values, 'jit-threshold');
  if (thresholdText !== undefined && !flag(values, 'jit')) throw new UsageError('--jit-threshold needs --jit');
  return {
    file,
    memSize: memText === undefined ? DEFAULT_RAM_SIZE : parseBareMemSize(memText),
    trace: flag(values, 'trace'),
    jit: flag(values, 'jit'),
    stats: flag(values, 'stats'),
    ...(thresholdText !== undefined ? { jitThreshold: parsePositiveCount('--jit-threshold', thresholdText) } : {}),
    ...(maxInsnsText !== undefined ? { maxInsns: parsePositiveCount('--max-insns', maxInsnsText) } : {}),
  };
}

export async function runBareCommand(argv: readonly string[], io: BareIo): Promise<number> {
  const opts = parseBareArgs(argv);
  if (opts === 'help') {
    io.stdout(BARE_USAGE);
    return 0;
  }
  let bytes: Uint8Array;
  try {
    bytes = io.readFile(opts.file, opts.memSize);
  } catch (e) {
    io.stderr(`shadowvisor: cannot read ${opts.file}: ${(e as Error).message}\n`);
    return EXIT_BAD_ELF;
  }

  let traceBuf: string[] = [];
  const flushTrace = () => {
    if (traceBuf.length > 0) io.stderr(traceBuf.join('\n') + '\n');
    traceBuf = [];
  };
  const runOpts = {
    memSize: opts.memSize,
    ...(opts.jit ? { jit: opts.jitThreshold !== undefined ? { threshold: opts.jitThreshold } : {} } : {}),
    ...(opts.maxInsns !== undefined ? { maxInsns: opts.maxInsns } : {}),
    onOutput: (chunk: Uint8Array, fd: 1 | 2) => {
      flushTrace();
      (fd === 2 ? io.stderr : io.stdout)(chunk);
    },
    ...(opts.trace
      ? {
        trace: (line: string) => {
          traceBuf.push(line);
          if (traceBuf.length >= 4096) flushTrace();
        },
      }
      : {}),
  };
  const t0 = performance.now();
  const run = startBareElf(bytes, runOpts);
  const t1 = performance.now();
  const result = run instanceof BareRun ? await driveRun(io, (pause) => run.resume(pause)) : run;
  if (result === null) return EXIT_STDOUT_CLOSED;
  flushTrace();
  const runMs = performance.now() - t1;
  for (const w of result.warnings) io.stderr(`shadowvisor: ${w}\n`);
  if (result.reason === 'bad-elf') {
    io.stderr(`shadowvisor: ${opts.file}: ${result.message}\n`);
  } else if (result.message !== undefined) {
    io.stderr(result.message + '\n');
  }
  if (opts.stats && run instanceof BareRun) io.stderr(runStats(result, run, t1 - t0, runMs));
  return result.exitCode;
}

/**
 * --stats: what a user compares against another emulator run of the same
 * program. The time is the run's own (the machine built and the ELF loaded
 * before it: `setupMs`), so node's start-up is what a whole-process timing
 * adds on top.
 */
export function runStats(result: BareRunResult, run: BareRun, setupMs: number, runMs: number): string {
  let mips = 'MIPS n/a';
  if (runMs > 0) {
    const rate = result.insns / runMs / 1000;
    mips = `${rate.toFixed(rate < 10 ? 2 : 0)} MIPS`;
  }
  const lines = [`stats: ${result.insns} instructions (minstret ${result.instret}) in ${(runMs / 1000).toFixed(3)} s: ${mips}; `
    + `machine set-up and ELF load ${setupMs.toFixed(1)} ms`];
  const jit = run.machine.hart.jit;
  if (jit !== null) {
    const share = result.insns > 0 ? (100 * jit.compiledInsns) / result.insns : 0;
    lines.push(`stats: ${share.toFixed(1)}% of instructions in compiled blocks; ${jit.dump()}`);
  }
  return lines.join('\n') + '\n';
}

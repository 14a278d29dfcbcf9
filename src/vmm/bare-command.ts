// `shadowvisor run --bare FILE.elf`: a bare-metal RV32 program on a flat
// machine, under the riscv-tests / Spike conventions that conformance suites
// rely on. Argument parsing and printing only; the run is bare-runner.ts.
//
// Exit status: 0 guest passed; N (1..255) guest failed test N; 124 instruction
// limit; 125 hart stuck in wfi; 2 usage error, unreadable file or bad ELF.

import { forEachArg, parseCount, parseSize, UsageError } from '../args.js';
import { DEFAULT_RAM_SIZE, EXIT_BAD_ELF, runBareElf } from './bare-runner.js';

export interface BareIo {
  stdout(chunk: string | Uint8Array): void;
  stderr(chunk: string | Uint8Array): void;
  readFile(path: string): Uint8Array;
}

export const BARE_USAGE = `usage: shadowvisor run --bare FILE.elf [options]

Run a bare-metal RV32IMA ELF (riscv-tests / Spike conventions): loaded at its
physical addresses, RAM at 0x80000000, M-mode at the ELF entry, result through
the HTIF tohost symbol, console on HTIF and on a 16550 UART at 0x10000000.

options:
  --max-insns N   stop after N instructions (exit 124); default: no limit
  --mem SIZE      RAM size, e.g. 64M, 128M, 1G (default 128M)
  --trace         print every instruction to stderr (slow path)
  -h, --help      this text

exit status: 0 pass, N fail at test N (1..255), 124 instruction limit,
125 wfi with nothing to wake the hart, 2 usage error or bad ELF
`;

/** --mem: a size whose RAM at 0x80000000 the hart's frame buffer (under 2 GiB) can hold. */
export function parseBareMemSize(text: string): number {
  const bytes = parseSize('--mem', text);
  if (bytes >= 0x80000000) throw new UsageError(`--mem: ${text} is too large (RAM at 0x80000000 must be under 2 GiB)`);
  return bytes;
}

interface RunArgs {
  file: string;
  maxInsns?: number;
  memSize: number;
  trace: boolean;
}

function parseRunArgs(args: string[]): RunArgs {
  let bare = false;
  let file: string | undefined;
  let maxInsns: number | undefined;
  let memSize = DEFAULT_RAM_SIZE;
  let trace = false;
  forEachArg(args, (arg, value) => {
    switch (arg) {
      case '--bare':
        bare = true;
        break;
      case '--trace':
        trace = true;
        break;
      case '--max-insns': {
        const v = value();
        maxInsns = /^\d+$/.test(v) ? parseCount(arg, v) : 0;
        if (maxInsns < 1) throw new UsageError(`--max-insns: '${v}' is not a positive integer`);
        break;
      }
      case '--mem':
        memSize = parseBareMemSize(value());
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
        if (file !== undefined) throw new UsageError(`more than one file given ('${file}', '${arg}')`);
        file = arg;
    }
  });
  if (!bare) throw new UsageError('run --bare: called without --bare');
  if (file === undefined) throw new UsageError('run --bare: no ELF file given');
  return { file, memSize, trace, ...(maxInsns !== undefined ? { maxInsns } : {}) };
}

export function runBareCommand(args: string[], io: BareIo): number {
  const opts = parseRunArgs(args);
  let bytes: Uint8Array;
  try {
    bytes = io.readFile(opts.file);
  } catch (e) {
    io.stderr(`shadowvisor: cannot read ${opts.file}: ${(e as Error).message}\n`);
    return EXIT_BAD_ELF;
  }

  let traceBuf: string[] = [];
  const flushTrace = () => {
    if (traceBuf.length > 0) io.stderr(traceBuf.join('\n') + '\n');
    traceBuf = [];
  };
  const result = runBareElf(bytes, {
    memSize: opts.memSize,
    ...(opts.maxInsns !== undefined ? { maxInsns: opts.maxInsns } : {}),
    onOutput: (chunk, fd) => {
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
  });
  flushTrace();

  for (const w of result.warnings) io.stderr(`shadowvisor: ${w}\n`);
  if (result.reason === 'bad-elf') {
    io.stderr(`shadowvisor: ${opts.file}: ${result.message}\n`);
  } else if (result.message !== undefined) {
    io.stderr(result.message + '\n');
  }
  return result.exitCode;
}


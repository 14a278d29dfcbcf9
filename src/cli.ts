#!/usr/bin/env node
// shadowvisor command line. Only argument parsing and printing live here; the
// run logic is in vmm/bare-runner.ts so tests drive it without a process.
//
//   shadowvisor run --bare FILE.elf [--max-insns N] [--trace] [--mem SIZE]
//
// Exit status: 0 guest passed; N (1..255) guest failed test N; 124 instruction
// limit; 125 hart stuck in wfi; 2 usage error, unreadable file or bad ELF.

import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DEFAULT_RAM_SIZE, EXIT_BAD_ELF, runBareElf } from './vmm/bare-runner.js';

export const EXIT_USAGE = 2;

export const USAGE = `usage: shadowvisor run --bare FILE.elf [options]

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

export interface CliIo {
  stdout(chunk: string | Uint8Array): void;
  stderr(chunk: string | Uint8Array): void;
  readFile(path: string): Uint8Array;
}

const defaultIo: CliIo = {
  stdout: (c) => process.stdout.write(c),
  stderr: (c) => process.stderr.write(c),
  readFile: (p) => readFileSync(p),
};

class UsageError extends Error {}

/** "128M" -> bytes. Accepts K, M, G suffixes (binary) or a plain byte count. */
export function parseSize(text: string): number {
  const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--mem: cannot read size '${text}' (try 64M or 128M)`);
  const unit = ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!.toUpperCase()]!;
  const bytes = Number(m[1]) * unit;
  if (bytes < 4096 || bytes % 4096 !== 0) throw new UsageError(`--mem: ${text} is not a positive multiple of 4 KiB`);
  // The hart's frame buffer must stay below 2 GiB, and RAM must end below 4 GiB.
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
  for (let i = 0; i < args.length; i++) {
    let arg = args[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--bare':
        bare = true;
        break;
      case '--trace':
        trace = true;
        break;
      case '--max-insns': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
          throw new UsageError(`--max-insns: '${v}' is not a positive integer`);
        }
        maxInsns = Number(v);
        break;
      }
      case '--mem':
        memSize = parseSize(value());
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
        if (file !== undefined) throw new UsageError(`more than one file given ('${file}', '${arg}')`);
        file = arg;
    }
  }
  if (!bare) throw new UsageError('run: only bare-metal mode exists so far; pass --bare');
  if (file === undefined) throw new UsageError('run --bare: no ELF file given');
  return { file, memSize, trace, ...(maxInsns !== undefined ? { maxInsns } : {}) };
}

function runCommand(args: string[], io: CliIo): number {
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

/** Returns the exit status; never calls process.exit, so tests can call it. */
export function main(argv: string[], io: CliIo = defaultIo): number {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      (command === undefined ? io.stderr : io.stdout)(USAGE);
      return command === undefined ? EXIT_USAGE : 0;
    }
    if (command === 'run') {
      if (rest.includes('-h') || rest.includes('--help')) {
        io.stdout(USAGE);
        return 0;
      }
      return runCommand(rest, io);
    }
    throw new UsageError(`unknown command '${command}'`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`shadowvisor: ${e.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // exitCode rather than exit(): stdout may still be draining into a pipe.
  process.exitCode = main(process.argv.slice(2));
}

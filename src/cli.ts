#!/usr/bin/env node
// shadowvisor command line: picks the command and prints; each command's logic
// lives in its own module so tests drive it without a process.
//
//   shadowvisor run --bare FILE.elf ...   bare-metal program (vmm/bare-command.ts)
//   shadowvisor run FILE.elf ...          S-mode guest under the VMM (vmm/run-command.ts)

import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';
import { BARE_USAGE, runBareCommand, type BareIo } from './vmm/bare-command.js';
import { RUN_USAGE, runCommand } from './vmm/run-command.js';

export const EXIT_USAGE = 2;

export const USAGE = `usage: shadowvisor COMMAND ...

commands:
  run FILE.elf [options]          boot an S-mode guest in a VM under a simulated host kernel
  run --bare FILE.elf [options]   run a bare-metal program (riscv-tests / Spike HTIF)

${RUN_USAGE}
${BARE_USAGE}`;

export type CliIo = BareIo;

const defaultIo: CliIo = {
  stdout: (c) => process.stdout.write(c),
  stderr: (c) => process.stderr.write(c),
  readFile: (p) => readFileSync(p),
};

/** Returns the exit status; never calls process.exit, so tests can call it. */
export function main(argv: string[], io: CliIo = defaultIo): number {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      (command === undefined ? io.stderr : io.stdout)(USAGE);
      return command === undefined ? EXIT_USAGE : 0;
    }
    if (command === 'run') {
      if (!rest.includes('--bare')) return runCommand(rest, io);
      if (rest.includes('-h') || rest.includes('--help')) {
        io.stdout(BARE_USAGE);
        return 0;
      }
      return runBareCommand(rest, io);
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

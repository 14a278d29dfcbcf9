#!/usr/bin/env node
// shadowvisor command line: picks the command and prints; each command's logic
// lives in its own module so tests drive it without a process.
//
//   shadowvisor run --bare FILE.elf ...   bare-metal program (vmm/bare-command.ts)
//   shadowvisor run FILE.elf ...          S-mode guest under the VMM (vmm/run-command.ts)
//   shadowvisor torture ... / replay ...  swap-correctness campaigns (torture/command.ts)
//   shadowvisor console FILE.elf ...      the debug console (console/console-command.ts)
//
// Exit status 2 is every error a user's input can cause (usage, unreadable or
// malformed image), with a one-line message; 70 is ours (an internal error: a
// bug, reported once with the command that reproduces it).

//
// Each command's module is imported when that command runs: `run --bare`
// needs 18 of the 110 modules the whole tool has, and their loading is the
// start-up a user waits for before the first guest instruction.

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';
import { processIo, type CommandIo } from './cli-io.js';

export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;

const COMMANDS = `usage: shadowvisor COMMAND ...

commands:
  run FILE.elf [options]          boot an S-mode guest in a VM under a simulated host kernel
  run --bare FILE.elf [options]   run a bare-metal program (riscv-tests / Spike HTIF)
  torture [options]               swap-correctness campaign over the named race scenarios
  replay [options]                re-run one torture run bit for bit, with its last events
  console FILE.elf [options]      the debug console: boot stopped, step, inspect sptes and rmaps
`;

/** The whole usage text: the command list, then run's and run --bare's options. */
export async function usage(): Promise<string> {
  const [{ RUN_USAGE }, { BARE_USAGE }] = await Promise.all([import('./vmm/run-command.js'), import('./vmm/bare-command.js')]);
  return `${COMMANDS}\n${RUN_USAGE}\n${BARE_USAGE}`;
}

/** The usage text that goes with a usage error in `command`. */
async function usageFor(command: string | undefined, rest: readonly string[]): Promise<string> {
  if (command === 'run') {
    return wantsBare(rest) ? (await import('./vmm/bare-command.js')).BARE_USAGE : (await import('./vmm/run-command.js')).RUN_USAGE;
  }
  if (command === 'torture') return (await import('./torture/command.js')).TORTURE_USAGE;
  if (command === 'replay') return (await import('./torture/command.js')).REPLAY_USAGE;
  return usage();
}

/** isTTY: stderr is a terminal (torture redraws its progress line). */
export type CliIo = CommandIo & { isTTY?: boolean };

/** `--bare`, `--bare=...` before a `--` picks the bare-metal runner. */
function wantsBare(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--bare' || a.startsWith('--bare=')) return true;
  }
  return false;
}

/** The scheduler seed a VMM run used (its own default when the options cannot say). */
async function seedOf(args: readonly string[]): Promise<number> {
  try {
    const parsed = (await import('./vmm/run-command.js')).parseRunCommandArgs(args);
    return parsed === 'help' ? 1 : parsed.config.seed ?? 1;
  } catch {
    return 1;
  }
}

/** Returns the exit status; never calls process.exit, so tests can call it. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      (command === undefined ? io.stderr : io.stdout)(await usage());
      return command === undefined ? EXIT_USAGE : 0;
    }
    if (command === 'run') {
      if (!wantsBare(rest)) return await (await import('./vmm/run-command.js')).runCommand(rest, io);
      return await (await import('./vmm/bare-command.js')).runBareCommand(rest, io);
    }
    if (command === 'torture') return await (await import('./torture/command.js')).tortureCommand(rest, io);
    if (command === 'replay') return await (await import('./torture/command.js')).replayCommand(rest, io);
    if (command === 'console') return await (await import('./console/console-command.js')).consoleCommand(rest, io);
    throw new UsageError(`unknown command '${command}'`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`shadowvisor: ${e.message}\n\n${await usageFor(command, rest)}`);
      return EXIT_USAGE;
    }
    // A bug of ours, not the user's: one line they can paste into a report.
    io.stderr(`shadowvisor: internal error: ${(await import('./vmm/vmm.js')).describeInternalError(e)}\n`);
    io.stderr(command === 'run' && !wantsBare(rest)
      ? (await import('./vmm/run-command.js')).reproduceLine(rest, await seedOf(rest))
      : `shadowvisor: to reproduce: shadowvisor ${argv.join(' ')}\n`);
    return EXIT_INTERNAL;
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
  const io: CliIo = { ...processIo(), isTTY: process.stderr.isTTY === true };
  process.exitCode = await main(process.argv.slice(2), io);
}

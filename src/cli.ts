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

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';
import { processIo, type CommandIo } from './cli-io.js';
import { consoleCommand } from './console/console-command.js';
import { BARE_USAGE, runBareCommand } from './vmm/bare-command.js';
import { parseRunCommandArgs, reproduceLine, RUN_USAGE, runCommand } from './vmm/run-command.js';
import { describeInternalError } from './vmm/vmm.js';
import { REPLAY_USAGE, TORTURE_USAGE, replayCommand, tortureCommand } from './torture/command.js';

export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;

export const USAGE = `usage: shadowvisor COMMAND ...

commands:
  run FILE.elf [options]          boot an S-mode guest in a VM under a simulated host kernel
  run --bare FILE.elf [options]   run a bare-metal program (riscv-tests / Spike HTIF)
  torture [options]               swap-correctness campaign over the named race scenarios
  replay [options]                re-run one torture run bit for bit, with its last events
  console FILE.elf [options]      the debug console: boot stopped, step, inspect sptes and rmaps

${RUN_USAGE}
${BARE_USAGE}`;

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
function seedOf(args: readonly string[]): number {
  try {
    const parsed = parseRunCommandArgs(args);
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
      (command === undefined ? io.stderr : io.stdout)(USAGE);
      return command === undefined ? EXIT_USAGE : 0;
    }
    if (command === 'run') {
      if (!wantsBare(rest)) return await runCommand(rest, io);
      return await runBareCommand(rest, io);
    }
    if (command === 'torture') return await tortureCommand(rest, io);
    if (command === 'replay') return await replayCommand(rest, io);
    if (command === 'console') return await consoleCommand(rest, io);
    throw new UsageError(`unknown command '${command}'`);
  } catch (e) {
    if (e instanceof UsageError) {
      const usage = command === 'run' ? (wantsBare(rest) ? BARE_USAGE : RUN_USAGE) : command === 'torture' ? TORTURE_USAGE : command === 'replay' ? REPLAY_USAGE : USAGE;
      io.stderr(`shadowvisor: ${e.message}\n\n${usage}`);
      return EXIT_USAGE;
    }
    // A bug of ours, not the user's: one line they can paste into a report.
    io.stderr(`shadowvisor: internal error: ${describeInternalError(e)}\n`);
    io.stderr(command === 'run' && !wantsBare(rest) ? reproduceLine(rest, seedOf(rest)) : `shadowvisor: to reproduce: shadowvisor ${argv.join(' ')}\n`);
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

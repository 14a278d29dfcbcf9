// `shadowvisor console FILE.elf [run options] [--script FILE|-] [--json]`: boot the
// guest stopped before its first instruction and take commands, from a script
// (FILE, or - for stdin) or from a terminal (repl.ts). Argument parsing and the
// script loop only; the commands are commands.ts, the machine session.ts.
//
// Exit status: 0; in --script mode 1 when any command failed; 2 for a usage
// error, an unreadable file or a bad ELF.

import { readFileSync } from 'node:fs';
import { UsageError } from '../args.js';
import { readImageFile } from '../cli-io.js';
import { parseRunCommandArgs, RUN_USAGE, type RunIo } from '../vmm/run-command.js';
import { Interpreter } from './interpreter.js';
import { Session } from './session.js';

export const EXIT_USAGE = 2;

export const CONSOLE_USAGE = `usage: shadowvisor console FILE.elf [run options] [--script FILE|-] [--json]

Boot the guest as \`shadowvisor run\` would, stopped before its first
instruction, and take debug-console commands (help lists them).

options (and every option of run but --max-insns's exit):
  --script FILE   read commands from FILE (- for stdin) instead of a terminal;
                  the exit status is 1 if any command failed
  --json          answer every command with one JSON object on one line
${RUN_USAGE.slice(RUN_USAGE.indexOf('options:\n') + 'options:\n'.length)}`;

export type ConsoleIo = RunIo & {
  /** A script's text (path '-' is stdin). Defaults to reading the file. */
  readScript?(path: string): string;
  /** Interactive mode (no --script): defaults to repl.ts on the process's terminal. */
  interactive?(session: Session, interp: Interpreter): Promise<void>;
};

interface ConsoleArgs {
  script: string | null;
  rest: string[];
}

/** Takes --script out of argv (before a `--`); the rest is run's options. */
function splitScript(argv: readonly string[]): ConsoleArgs {
  let script: string | null = null;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--script') {
      const v = argv[i + 1];
      if (v === undefined) throw new UsageError('--script needs a value (a file, or - for stdin)');
      script = v;
      i++;
    } else if (a.startsWith('--script=')) {
      script = a.slice('--script='.length);
      if (script === '') throw new UsageError('--script needs a value (a file, or - for stdin)');
    } else {
      rest.push(a);
    }
  }
  return { script, rest };
}

export async function consoleCommand(argv: readonly string[], io: ConsoleIo): Promise<number> {
  let parsed: ReturnType<typeof parseRunCommandArgs>;
  let script: string | null;
  try {
    const s = splitScript(argv);
    script = s.script;
    parsed = parseRunCommandArgs(s.rest);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`shadowvisor console: ${e.message}\n\n${CONSOLE_USAGE}`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (parsed === 'help') {
    io.stdout(CONSOLE_USAGE);
    return 0;
  }
  const args = parsed;
  let elf: Uint8Array;
  try {
    elf = (io.readFile ?? readImageFile)(args.file, args.config.guestMemBytes);
  } catch (e) {
    io.stderr(`shadowvisor console: cannot read ${args.file}: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }
  let lines: string[] | null = null;
  if (script !== null) {
    try {
      const text = io.readScript ? io.readScript(script) : readFileSync(script === '-' ? 0 : script, 'utf8');
      lines = text.split('\n');
    } catch (e) {
      io.stderr(`shadowvisor console: cannot read script ${script}: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
  }

  let interp: Interpreter | null = null;
  const session = new Session(elf, { config: args.config, onOutput: (b) => interp?.guestOutput(b) });
  if (session.bootError !== null) {
    io.stderr(`shadowvisor console: ${args.file}: ${session.bootError}\n`);
    return EXIT_USAGE;
  }
  interp = new Interpreter(session, { json: args.json, write: (t) => io.stdout(t) });
  if (lines === null) {
    const repl = io.interactive ?? (await import('./repl.js')).runRepl;
    await repl(session, interp);
    return 0;
  }
  for (const line of lines) {
    await interp.execute(line);
    if (interp.ctx.quit) break;
  }
  return interp.failures > 0 ? 1 : 0;
}

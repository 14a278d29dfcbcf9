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
import type { Vmm } from '../vmm/vmm.js';
import { Interpreter } from './interpreter.js';
import { Session } from './session.js';

export const EXIT_USAGE = 2;

/** run's option lines, without its own --json, -h and exit status. */
function runOptionLines(): string {
  const from = RUN_USAGE.indexOf('options:\n') + 'options:\n'.length;
  const to = RUN_USAGE.indexOf('\n  --json');
  return from > 0 && to > from ? RUN_USAGE.slice(from, to + 1) : '';
}

export const CONSOLE_USAGE = `usage: shadowvisor console FILE.elf [run options] [--script FILE|-] [--json]
       shadowvisor console --kernel Image [--initrd FILE] [--append ARGS] [run options] ...

Boot the guest as \`shadowvisor run\` would, stopped before its first
instruction, and take debug-console commands (help lists them).

options:
  --script FILE       read commands from FILE (- for stdin) instead of a terminal
  --json              answer every command with one JSON object on one line
  -h, --help          this text
${runOptionLines()}
exit status: 0; with --script 1 when a command failed; 2 usage error,
an unreadable file or a bad image
`;

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
  const read = (path: string): Uint8Array | null => {
    try {
      return (io.readFile ?? readImageFile)(path, args.config.guestMemBytes);
    } catch (e) {
      io.stderr(`shadowvisor console: cannot read ${path}: ${(e as Error).message}\n`);
      return null;
    }
  };
  const elf = read(args.file);
  if (elf === null) return EXIT_USAGE;
  const linux = args.linux;
  const initrd = linux?.initrd !== undefined ? read(linux.initrd) : undefined;
  if (initrd === null) return EXIT_USAGE;
  if (linux?.dtbOut !== undefined) {
    io.stderr('shadowvisor console: --dtb-out is for run (the console boots the same tree; run --dtb-out writes it)\n');
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
  const boot = linux === undefined ? elf : (vmm: Vmm) => vmm.bootLinux(elf, {
    ...(initrd !== undefined ? { initrd } : {}),
    ...(linux.append !== undefined ? { bootargs: linux.append } : {}),
  });
  const session = new Session(boot, { config: args.config, onOutput: (b) => interp?.guestOutput(b) });
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

// `npm run bench` arguments. An --elf file is opened here, before any section
// runs: a typo in its path otherwise surfaces as a stack trace after minutes
// of the sections before it.

import { closeSync, openSync, fstatSync } from 'node:fs';

export interface BenchArgs {
  quick: boolean;
  noQemu: boolean;
  only?: string[];
  elfs: string[];
}

/** The parsed arguments, or the one line that says what is wrong with them. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs | string {
  const args: BenchArgs = { quick: false, noQemu: false, elfs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') args.quick = true;
    else if (a === '--no-qemu') args.noQemu = true;
    else if (a === '--only' && argv[i + 1] !== undefined) args.only = argv[++i]!.split(',');
    else if (a.startsWith('--only=')) args.only = a.slice(7).split(',');
    else if (a === '--elf' && argv[i + 1] !== undefined) args.elfs.push(argv[++i]!);
    else if (a.startsWith('--elf=')) args.elfs.push(a.slice(6));
    else return `unknown argument '${a}'`;
  }
  for (const file of args.elfs) {
    const problem = unreadable(file);
    if (problem !== null) return `cannot read --elf ${file}: ${problem}`;
  }
  return args;
}

/** Why file cannot be read as a program, or null. */
function unreadable(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    return (e as Error).message;
  }
  try {
    return fstatSync(fd).isFile() ? null : 'not a regular file';
  } finally {
    closeSync(fd);
  }
}

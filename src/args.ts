// Command-line plumbing shared by every shadowvisor command: Node's own
// util.parseArgs underneath (so `--opt value`, `--opt=value`, `--` and unknown
// options behave the same in every command), sizes and counts, and one error
// type that the commands turn into "usage + exit 2".

import { parseArgs } from 'node:util';

export class UsageError extends Error {}

export type OptionSpecs = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface ParsedArgs {
  /** Option name (without dashes) -> its value; string options given twice keep the last. */
  values: Record<string, string | boolean | undefined>;
  /** Non-option arguments, including everything after `--`. */
  positionals: string[];
}

/**
 * Parses argv against `options` in parseArgs' strict mode and turns each of its
 * errors into a UsageError that names the option as the user wrote it.
 */
export function parseCommandArgs(argv: readonly string[], options: OptionSpecs): ParsedArgs {
  try {
    const args = joinNegativeValues(argv, options);
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (e) {
    throw toUsageError(e, argv);
  }
}

/**
 * `--seed -1`: parseArgs calls a value that starts with '-' ambiguous and names
 * no number; passed on as `--seed=-1`, the option's own check says what is wrong.
 */
function joinNegativeValues(argv: readonly string[], options: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (a.startsWith('--') && options[a.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** parseArgs' messages are long and name internals; ours say what to fix. */
function toUsageError(e: unknown, argv: readonly string[]): unknown {
  const code = (e as { code?: string }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) return e;
  const message = (e as Error).message;
  // The option as parseArgs quotes it: "--max-insns=5" as '--max-insns', a short flag as '-x'.
  const option = /'(-[^' ]*)/.exec(message)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option '${option}'`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(message)) return new UsageError(`${option} takes no value`);
      if (/argument missing/.test(message)) return new UsageError(`${option} needs a value`);
      if (/ambiguous/.test(message)) {
        const next = argv[argv.indexOf(option) + 1] ?? '';
        return new UsageError(`${option} needs a value, not the option-like '${next}' (write ${option}=${next} if you mean it)`);
      }
      return new UsageError(`${option}: ${message}`);
    default:
      return new UsageError(message);
  }
}

/** A flag's value as a boolean (parseArgs already refused `--flag=value`). */
export function flag(values: ParsedArgs['values'], name: string): boolean {
  return values[name] === true;
}

/** A string option's value, or undefined when absent. */
export function stringOption(values: ParsedArgs['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The one file a command takes. */
export function onePositional(positionals: readonly string[], what: string): string {
  if (positionals.length === 0) throw new UsageError(`no ${what} given`);
  if (positionals.length > 1) throw new UsageError(`more than one ${what} given ('${positionals[0]}', '${positionals[1]}')`);
  return positionals[0]!;
}

/** "128M" -> bytes: K, M, G binary suffixes or a plain byte count; a positive multiple of 4 KiB. */
export function parseSize(option: string, text: string): number {
  const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${option}: cannot read size '${text}' (try 64M or 128M)`);
  const unit = ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!.toUpperCase()]!;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${option}: ${text} is too large`);
  if (bytes < 4096 || bytes % 4096 !== 0) throw new UsageError(`${option}: ${text} is not a positive multiple of 4 KiB`);
  return bytes;
}

/** A non-negative decimal integer that a double holds exactly. */
export function parseCount(option: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${option}: '${text}' is not a non-negative integer`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${option}: ${text} is too large`);
  return n;
}

/** A budget: a positive integer (0 would end every run before its first instruction). */
export function parsePositiveCount(option: string, text: string): number {
  if (!/^\d+$/.test(text) || /^0+$/.test(text)) throw new UsageError(`${option}: '${text}' is not a positive integer`);
  return parseCount(option, text);
}

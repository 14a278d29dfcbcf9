// Command-line plumbing shared by every shadowvisor command: option iteration
// with `--opt value` and `--opt=value`, sizes and counts, and one error type
// that the commands turn into "usage + exit 2".

export class UsageError extends Error {}

/**
 * Calls `visit(arg, value)` for each argument; `value()` consumes the option's
 * value (inline after '=' or the next argument) and is only called by options
 * that take one. `inline` tells a flag that it was wrongly given a value.
 */
export function forEachArg(
  argv: readonly string[],
  visit: (arg: string, value: () => string, inline: string | undefined) => void,
): void {
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    visit(arg, () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    }, inline);
  }
}

/** "128M" -> bytes: K, M, G binary suffixes or a plain byte count; a positive multiple of 4 KiB. */
export function parseSize(option: string, text: string): number {
  const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${option}: cannot read size '${text}' (try 64M or 128M)`);
  const unit = ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!.toUpperCase()]!;
  const bytes = Number(m[1]) * unit;
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

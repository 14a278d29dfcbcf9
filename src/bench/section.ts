// What a benchmark section (hart, host kernel, KVM, ...) looks like to the
// runner in index.ts: each section is a module exporting one of these.

export interface BenchContext {
  /** Fewer repetitions, for a quick look. */
  quick: boolean;
  /** Do not run QEMU even when it is installed. */
  noQemu: boolean;
  /** More bare-metal ELFs for the process section (`--elf FILE`). */
  elfs?: string[];
  log(line: string): void;
}

export interface BenchSection {
  name: string;
  description: string;
  run(ctx: BenchContext): void | Promise<void>;
}

/** Median of the samples (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

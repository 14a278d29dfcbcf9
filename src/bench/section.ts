// What a benchmark section (hart, host kernel, KVM, ...) looks like to the
// runner in index.ts: each section is a module exporting one of these.

export interface BenchContext {
  /** Fewer repetitions, for a quick look. */
  quick: boolean;
  /** Do not run QEMU even when it is installed. */
  noQemu: boolean;
  log(line: string): void;
}

export interface BenchSection {
  name: string;
  description: string;
  run(ctx: BenchContext): void | Promise<void>;
}

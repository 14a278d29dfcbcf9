// The few RV32I instructions the torture scenarios' guests need, and a program
// builder with labels. A subset of test/hart/asm.ts (which stays the tests' full
// encoder): src/ cannot import from test/.

const i = (imm: number, rs1: number, f3: number, rd: number, op: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) | 0;
const s = (imm: number, rs2: number, rs1: number, f3: number, op: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) | 0;
const b = (off: number, rs2: number, rs1: number, f3: number): number =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12)
    | (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) | 0;

export const lui = (rd: number, imm20: number): number => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x37) | 0;
export const jal = (rd: number, off: number): number =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20)
    | (((off >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) | 0;
export const bne = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 1);
export const bltu = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 6);
export const lw = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 2, rd, 0x03);
export const sw = (rs2: number, rs1: number, imm: number): number => s(imm, rs2, rs1, 2, 0x23);
export const addi = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 0, rd, 0x13);
export const add = (rd: number, rs1: number, rs2: number): number => ((rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x33) | 0;
export const xor = (rd: number, rs1: number, rs2: number): number => ((rs2 << 20) | (rs1 << 15) | (4 << 12) | (rd << 7) | 0x33) | 0;

/** lui+addi pair that loads any 32-bit value. */
export function li(rd: number, value: number): number[] {
  const v = value | 0;
  const lo = (v << 20) >> 20;
  const hi = ((v - lo) >>> 12) & 0xfffff;
  return [lui(rd, hi), addi(rd, rd, lo)];
}

/** Straight-line program with labels for branch and jump targets. */
export class Prog {
  readonly words: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: Array<{ at: number; label: string; enc: (off: number) => number }> = [];

  constructor(readonly base: number) {}

  emit(...ws: Array<number | number[]>): this {
    for (const w of ws) {
      if (Array.isArray(w)) this.words.push(...w);
      else this.words.push(w | 0);
    }
    return this;
  }

  label(name: string): this {
    this.labels.set(name, this.words.length);
    return this;
  }

  /** An instruction whose pc-relative offset is resolved to `label`. */
  to(label: string, enc: (off: number) => number): this {
    this.fixups.push({ at: this.words.length, label, enc });
    this.words.push(0);
    return this;
  }

  assemble(): number[] {
    for (const f of this.fixups) {
      const at = this.labels.get(f.label);
      if (at === undefined) throw new Error(`no label ${f.label}`);
      this.words[f.at] = f.enc(4 * (at - f.at));
    }
    return this.words;
  }
}

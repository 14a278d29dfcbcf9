// A tiny RV32IMA + Zicsr encoder (unprivileged ISA 20191213, chapter 24 opcode map): the
// tests assemble their guest code with it, and so do the torture scenarios.

const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) | 0;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) | 0;
const s = (imm: number, rs2: number, rs1: number, f3: number, op: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) | 0;
const b = (off: number, rs2: number, rs1: number, f3: number): number =>
  ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12)
    | (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) | 0;

export const lui = (rd: number, imm20: number): number => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x37) | 0;
export const auipc = (rd: number, imm20: number): number => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x17) | 0;
export const jal = (rd: number, off: number): number =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20)
    | (((off >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) | 0;
export const jalr = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 0, rd, 0x67);

export const beq = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 0);
export const bne = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 1);
export const blt = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 4);
export const bge = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 5);
export const bltu = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 6);
export const bgeu = (rs1: number, rs2: number, off: number): number => b(off, rs2, rs1, 7);

export const lb = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 0, rd, 0x03);
export const lh = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 1, rd, 0x03);
export const lw = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 2, rd, 0x03);
export const lbu = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 4, rd, 0x03);
export const lhu = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 5, rd, 0x03);
export const sb = (rs2: number, rs1: number, imm: number): number => s(imm, rs2, rs1, 0, 0x23);
export const sh = (rs2: number, rs1: number, imm: number): number => s(imm, rs2, rs1, 1, 0x23);
export const sw = (rs2: number, rs1: number, imm: number): number => s(imm, rs2, rs1, 2, 0x23);

export const addi = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 0, rd, 0x13);
export const slti = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 2, rd, 0x13);
export const sltiu = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 3, rd, 0x13);
export const xori = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 4, rd, 0x13);
export const ori = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 6, rd, 0x13);
export const andi = (rd: number, rs1: number, imm: number): number => i(imm, rs1, 7, rd, 0x13);
export const slli = (rd: number, rs1: number, sh: number): number => i(sh & 31, rs1, 1, rd, 0x13);
export const srli = (rd: number, rs1: number, sh: number): number => i(sh & 31, rs1, 5, rd, 0x13);
export const srai = (rd: number, rs1: number, sh: number): number => i((sh & 31) | 0x400, rs1, 5, rd, 0x13);

export const add = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 0, rd, 0x33);
export const sub = (rd: number, rs1: number, rs2: number): number => r(0x20, rs2, rs1, 0, rd, 0x33);
export const sll = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 1, rd, 0x33);
export const slt = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 2, rd, 0x33);
export const sltu = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 3, rd, 0x33);
export const xor = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 4, rd, 0x33);
export const srl = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 5, rd, 0x33);
export const sra = (rd: number, rs1: number, rs2: number): number => r(0x20, rs2, rs1, 5, rd, 0x33);
export const or = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 6, rd, 0x33);
export const and = (rd: number, rs1: number, rs2: number): number => r(0, rs2, rs1, 7, rd, 0x33);
export const mul = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 0, rd, 0x33);
export const mulh = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 1, rd, 0x33);
export const mulhsu = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 2, rd, 0x33);
export const mulhu = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 3, rd, 0x33);
export const div = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 4, rd, 0x33);
export const divu = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 5, rd, 0x33);
export const rem = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 6, rd, 0x33);
export const remu = (rd: number, rs1: number, rs2: number): number => r(1, rs2, rs1, 7, rd, 0x33);

export const fence = (): number => 0x0ff0000f;
export const fence_i = (): number => 0x0000100f;
export const ecall = (): number => 0x00000073;
export const ebreak = (): number => 0x00100073;
export const mret = (): number => 0x30200073;
export const sret = (): number => 0x10200073;
export const wfi = (): number => 0x10500073;
export const sfence_vma = (rs1: number, rs2: number): number => r(0x09, rs2, rs1, 0, 0, 0x73);

export const csrrw = (rd: number, csr: number, rs1: number): number => i(csr, rs1, 1, rd, 0x73);
export const csrrs = (rd: number, csr: number, rs1: number): number => i(csr, rs1, 2, rd, 0x73);
export const csrrc = (rd: number, csr: number, rs1: number): number => i(csr, rs1, 3, rd, 0x73);
export const csrrwi = (rd: number, csr: number, uimm: number): number => i(csr, uimm, 5, rd, 0x73);
export const csrrsi = (rd: number, csr: number, uimm: number): number => i(csr, uimm, 6, rd, 0x73);
export const csrrci = (rd: number, csr: number, uimm: number): number => i(csr, uimm, 7, rd, 0x73);
export const csrr = (rd: number, csr: number): number => csrrs(rd, csr, 0);
export const csrw = (csr: number, rs1: number): number => csrrw(0, csr, rs1);

const amo = (f5: number, rd: number, rs2: number, rs1: number): number => r(f5 << 2, rs2, rs1, 2, rd, 0x2f);
export const lr_w = (rd: number, rs1: number): number => amo(0x02, rd, 0, rs1);
export const sc_w = (rd: number, rs2: number, rs1: number): number => amo(0x03, rd, rs2, rs1);
export const amoswap_w = (rd: number, rs2: number, rs1: number): number => amo(0x01, rd, rs2, rs1);
export const amoadd_w = (rd: number, rs2: number, rs1: number): number => amo(0x00, rd, rs2, rs1);
export const amoxor_w = (rd: number, rs2: number, rs1: number): number => amo(0x04, rd, rs2, rs1);
export const amoand_w = (rd: number, rs2: number, rs1: number): number => amo(0x0c, rd, rs2, rs1);
export const amoor_w = (rd: number, rs2: number, rs1: number): number => amo(0x08, rd, rs2, rs1);
export const amomin_w = (rd: number, rs2: number, rs1: number): number => amo(0x10, rd, rs2, rs1);
export const amomax_w = (rd: number, rs2: number, rs1: number): number => amo(0x14, rd, rs2, rs1);
export const amominu_w = (rd: number, rs2: number, rs1: number): number => amo(0x18, rd, rs2, rs1);
export const amomaxu_w = (rd: number, rs2: number, rs1: number): number => amo(0x1c, rd, rs2, rs1);

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

  get here(): number {
    return this.base + 4 * this.words.length;
  }

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

  /** Emit an instruction whose pc-relative offset is resolved to `label`. */
  to(label: string, enc: (off: number) => number): this {
    this.fixups.push({ at: this.words.length, label, enc });
    this.words.push(0);
    return this;
  }

  addr(label: string): number {
    const at = this.labels.get(label);
    if (at === undefined) throw new Error(`no label ${label}`);
    return (this.base + 4 * at) | 0;
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

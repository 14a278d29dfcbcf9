// A small RV32IMA + Zicsr + Zifencei + privileged disassembler for --trace.
// Output follows objdump's spelling (ABI register names, no pseudo-ops except
// where objdump itself prints them for a 32-bit encoding), so a trace can be
// read next to `riscv64-unknown-elf-objdump -d`. Unknown encodings print as
// `.word 0x...`; this never throws.

const REG = [
  'zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
];

const CSR_NAMES: Record<number, string> = {
  0x001: 'fflags', 0x002: 'frm', 0x003: 'fcsr',
  0xc00: 'cycle', 0xc01: 'time', 0xc02: 'instret', 0xc80: 'cycleh', 0xc81: 'timeh', 0xc82: 'instreth',
  0x100: 'sstatus', 0x104: 'sie', 0x105: 'stvec', 0x106: 'scounteren', 0x10a: 'senvcfg', 0x140: 'sscratch',
  0x141: 'sepc', 0x142: 'scause', 0x143: 'stval', 0x144: 'sip', 0x180: 'satp',
  0x300: 'mstatus', 0x301: 'misa', 0x302: 'medeleg', 0x303: 'mideleg', 0x304: 'mie', 0x305: 'mtvec',
  0x306: 'mcounteren', 0x30a: 'menvcfg', 0x310: 'mstatush', 0x31a: 'menvcfgh', 0x340: 'mscratch',
  0x341: 'mepc', 0x342: 'mcause', 0x343: 'mtval', 0x344: 'mip',
  0x3a0: 'pmpcfg0', 0x3a1: 'pmpcfg1', 0x3a2: 'pmpcfg2', 0x3a3: 'pmpcfg3', 0x3b0: 'pmpaddr0',
  0xb00: 'mcycle', 0xb02: 'minstret', 0xb80: 'mcycleh', 0xb82: 'minstreth',
  0xf11: 'mvendorid', 0xf12: 'marchid', 0xf13: 'mimpid', 0xf14: 'mhartid',
};

const hex = (v: number): string => '0x' + (v >>> 0).toString(16);
const csrName = (n: number): string => CSR_NAMES[n] ?? hex(n);

/** `pc` gives branch and jump targets as absolute addresses, as objdump does. */
export function disassemble(insn: number, pc: number): string {
  const op = insn & 0x7f;
  const rd = REG[(insn >>> 7) & 31]!;
  const rs1 = REG[(insn >>> 15) & 31]!;
  const rs2 = REG[(insn >>> 20) & 31]!;
  const f3 = (insn >>> 12) & 7;
  const f7 = insn >>> 25;
  const immI = insn >> 20;
  const immS = ((insn >> 25) << 5) | ((insn >>> 7) & 31);
  const immB = ((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11) | (((insn >>> 25) & 63) << 5) | (((insn >>> 8) & 15) << 1);
  const immJ = ((insn >> 31) << 20) | (((insn >>> 12) & 255) << 12) | (((insn >>> 20) & 1) << 11) | (((insn >>> 21) & 1023) << 1);
  const word = `.word ${hex(insn)}`;

  switch (op) {
    case 0x37: return `lui ${rd}, ${hex(insn >>> 12)}`;
    case 0x17: return `auipc ${rd}, ${hex(insn >>> 12)}`;
    case 0x6f: return `jal ${rd}, ${hex(pc + immJ)}`;
    case 0x67: return f3 === 0 ? `jalr ${rd}, ${immI}(${rs1})` : word;
    case 0x63: {
      const m = ['beq', 'bne', '', '', 'blt', 'bge', 'bltu', 'bgeu'][f3]!;
      return m ? `${m} ${rs1}, ${rs2}, ${hex(pc + immB)}` : word;
    }
    case 0x03: {
      const m = ['lb', 'lh', 'lw', '', 'lbu', 'lhu', '', ''][f3]!;
      return m ? `${m} ${rd}, ${immI}(${rs1})` : word;
    }
    case 0x23: {
      const m = ['sb', 'sh', 'sw', '', '', '', '', ''][f3]!;
      return m ? `${m} ${rs2}, ${immS}(${rs1})` : word;
    }
    case 0x13: {
      const shamt = (insn >>> 20) & 31;
      switch (f3) {
        case 0: return `addi ${rd}, ${rs1}, ${immI}`;
        case 2: return `slti ${rd}, ${rs1}, ${immI}`;
        case 3: return `sltiu ${rd}, ${rs1}, ${immI}`;
        case 4: return `xori ${rd}, ${rs1}, ${immI}`;
        case 6: return `ori ${rd}, ${rs1}, ${immI}`;
        case 7: return `andi ${rd}, ${rs1}, ${immI}`;
        case 1: return f7 === 0 ? `slli ${rd}, ${rs1}, ${shamt}` : word;
        default: return f7 === 0 ? `srli ${rd}, ${rs1}, ${shamt}` : f7 === 0x20 ? `srai ${rd}, ${rs1}, ${shamt}` : word;
      }
    }
    case 0x33: {
      let m = '';
      if (f7 === 0) m = ['add', 'sll', 'slt', 'sltu', 'xor', 'srl', 'or', 'and'][f3]!;
      else if (f7 === 0x20) m = f3 === 0 ? 'sub' : f3 === 5 ? 'sra' : '';
      else if (f7 === 1) m = ['mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu'][f3]!;
      return m ? `${m} ${rd}, ${rs1}, ${rs2}` : word;
    }
    case 0x0f:
      if (f3 === 1) return 'fence.i';
      return f3 === 0 ? 'fence' : word;
    case 0x2f: {
      if (f3 !== 2) return word;
      const f5 = insn >>> 27;
      const ord = ['', '.rl', '.aq', '.aqrl'][(insn >>> 25) & 3]!;
      if (f5 === 0x02) return `lr.w${ord} ${rd}, (${rs1})`;
      if (f5 === 0x03) return `sc.w${ord} ${rd}, ${rs2}, (${rs1})`;
      const m = ({ 0x01: 'amoswap', 0x00: 'amoadd', 0x04: 'amoxor', 0x0c: 'amoand', 0x08: 'amoor',
        0x10: 'amomin', 0x14: 'amomax', 0x18: 'amominu', 0x1c: 'amomaxu' } as Record<number, string>)[f5];
      return m ? `${m}.w${ord} ${rd}, ${rs2}, (${rs1})` : word;
    }
    case 0x73: {
      if (f3 === 0) {
        if (insn === 0x00000073) return 'ecall';
        if (insn === 0x00100073) return 'ebreak';
        if (insn === 0x30200073) return 'mret';
        if (insn === 0x10200073) return 'sret';
        if (insn === 0x10500073) return 'wfi';
        if (f7 === 0x09 && ((insn >>> 7) & 31) === 0) return `sfence.vma ${rs1}, ${rs2}`;
        return word;
      }
      const csr = csrName(insn >>> 20);
      const m = ['', 'csrrw', 'csrrs', 'csrrc', '', 'csrrwi', 'csrrsi', 'csrrci'][f3]!;
      if (!m) return word;
      return f3 >= 5 ? `${m} ${rd}, ${csr}, ${(insn >>> 15) & 31}` : `${m} ${rd}, ${csr}, ${rs1}`;
    }
    default:
      return word;
  }
}

// Random RV32IMA + Zicsr program generator for differential testing against
// QEMU (see README.md). generate(seed, opts) returns the text of a complete
// M-mode assembly program that runs a random body, then prints x1..x29, a hash
// of the scratch buffer and the trap log on the HTIF console, and exits with
// tohost = 1.
//
// Register use in the body:
//   x2 (sp)    base of the 4 KiB scratch buffer (points at its middle), never written
//   x4 (tp)    trap log pointer, never written
//   x30, x31   trap handler temporaries, never used by the body
//   all others random sources and destinations.

const POOL = [1, 3, ...Array.from({ length: 25 }, (_, i) => i + 5)]; // x1, x3, x5..x29

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (v) => '0x' + (v >>> 0).toString(16).padStart(8, '0');

// CSRs the body may read and write freely (M-mode, no effect on control flow).
// [name, bits written by csrrw/csrrs sources]: QEMU 7.2 keeps bits the spec makes read-only zero
// (mepc/sepc[1:0] without C, H-extension and LCOF bits of mie/mideleg/medeleg even with h=false),
// so set-type writes stay within the standard bits; csrrc and reads see everything.
const CSR_RW = [['mscratch', -1], ['sscratch', -1], ['mepc', ~3], ['sepc', ~3], ['mcause', -1], ['scause', -1],
  ['mtval', -1], ['stval', -1], ['medeleg', 0xb3ff], ['mideleg', 0x222], ['mie', 0xaaa], ['mcounteren', -1],
  ['scounteren', -1]];
// Only read.
const CSR_RO = ['misa', 'mhartid', 'mstatush', 'sie', 'sip'];

const SPECIAL = [0, 1, -1, 0x80000000 | 0, 0x7fffffff, 2, -2, 0xffff, 0x8000, 31, 32, 33];

const MSTATUS_RANDOM_MASK = 0x00000002 | 0x20 | 0x80 | 0x100 | 0x20000 | 0x40000 | 0x80000
  | 0x100000 | 0x200000 | 0x400000; // SIE SPIE MPIE SPP MPRV SUM MXR TVM TW TSR (MPP separately, MIE never)
const SSTATUS_MASK = 0x2 | 0x20 | 0x100 | 0x40000 | 0x80000;

export function generate(seed, opts = {}) {
  const rnd = mulberry32(seed * 2654435761 + 12345);
  const len = opts.length ?? 400;
  const allowMisaligned = opts.misaligned ?? false;
  const ri = (n) => Math.floor(rnd() * n);
  const pick = (a) => a[ri(a.length)];
  const reg = (excl = []) => { for (;;) { const r = pick(POOL); if (!excl.includes(r)) return r; } };
  const r32 = () => (rnd() < 0.3 ? pick(SPECIAL) : (ri(0x10000) << 16 | ri(0x10000)) | 0);
  const simm12 = () => (rnd() < 0.2 ? pick([0, 1, -1, 2047, -2048, 31, 32]) : ri(4096) - 2048);
  const x = (r) => `x${r}`;

  const out = [];
  let label = 0;
  // Pending forward labels: [remainingInstructions, name].
  let pending = [];
  // Lines emitted between group() and ungroup() form one unit: no forward label lands inside.
  let depth = 0;
  const group = () => { depth++; };
  const ungroup = () => { depth--; emit(null); };
  const emit = (s) => {
    if (s !== null) out.push('  ' + s);
    if (depth > 0) return;
    const left = [];
    for (const p of pending) {
      if (--p[0] <= 0) out.push(`${p[1]}:`);
      else left.push(p);
    }
    pending = left;
  };
  const fwd = (k) => { const l = `L${label++}`; pending.push([k, l]); return l; };

  const aluR = ['add', 'sub', 'sll', 'slt', 'sltu', 'xor', 'srl', 'sra', 'or', 'and'];
  const mulR = ['mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu'];
  const aluI = ['addi', 'slti', 'sltiu', 'xori', 'ori', 'andi'];
  const amos = ['amoswap.w', 'amoadd.w', 'amoxor.w', 'amoand.w', 'amoor.w', 'amomin.w', 'amomax.w', 'amominu.w', 'amomaxu.w'];
  const ordering = ['', '.aq', '.rl', '.aqrl'];
  const loads = [['lb', 1], ['lh', 2], ['lw', 4], ['lbu', 1], ['lhu', 2]];
  const stores = [['sb', 1], ['sh', 2], ['sw', 4]];
  const branches = ['beq', 'bne', 'blt', 'bge', 'bltu', 'bgeu'];
  const memOff = (w) => {
    let o = ri(4096) - 2048;
    if (!allowMisaligned || rnd() < 0.8) o &= ~(w - 1);
    return o;
  };
  const aluOp = (excl = []) => {
    const k = ri(4);
    if (k === 0) emit(`${pick(aluR)} ${x(reg(excl))}, ${x(reg())}, ${x(reg())}`);
    else if (k === 1) emit(`${pick(mulR)} ${x(reg(excl))}, ${x(reg())}, ${x(reg())}`);
    else if (k === 2) emit(`${pick(aluI)} ${x(reg(excl))}, ${x(reg())}, ${simm12()}`);
    else emit(`${pick(['slli', 'srli', 'srai'])} ${x(reg(excl))}, ${x(reg())}, ${ri(32)}`);
  };

  const illegalWords = () => {
    const rd = ri(32), rs1 = ri(32), rs2 = ri(32);
    const R = (f7, f3, op) => ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
    const I = (imm, f3, op) => (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
    const c = ri(16);
    switch (c) {
      case 0: return 0; // all zeros
      case 1: return 0xffffffff;
      case 2: return R(pick([0x02, 0x04, 0x10, 0x40, 0x7f]), ri(8), 0x33); // OP, bad funct7
      case 3: return R(pick([0x01, 0x20, 0x40]), 1, 0x13); // SLLI with funct7 != 0
      case 4: return R(pick([0x01, 0x10, 0x40]), 5, 0x13); // SRLI/SRAI, bad funct7
      case 5: return I(ri(4096), pick([3, 6, 7]), 0x03); // LOAD bad width
      case 6: return I(ri(4096), pick([3, 4, 5, 6, 7]), 0x23); // STORE bad width
      case 7: return I(ri(4096), pick([2, 3]), 0x63); // BRANCH bad funct3
      case 8: return I(ri(4096), 1 + ri(7), 0x67); // JALR funct3 != 0
      case 9: return R(pick([0x04, 0x0c, 0x14, 0x20, 0x7c]), pick([0, 1, 3, 4, 5, 6, 7]), 0x2f); // AMO bad width
      case 10: return R(((pick([0x05, 0x06, 0x07, 0x09, 0x0d, 0x11, 0x1e]) << 2) | ri(4)), 2, 0x2f); // AMO bad funct5
      case 11: return (((0x02 << 27) | ((1 + ri(31)) << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x2f) >>> 0); // LR with rs2 != 0
      case 12: return R(ri(128), 4, 0x73); // SYSTEM funct3 = 4
      case 13: return pick([0x00200073, 0x7b200073, 0x10100073, 0x00000073 | (1 << 7), 0x00100073 | (1 << 15), 0x10200073 | (1 << 7), 0x30200073 | (1 << 20)]) >>> 0;
      case 14: return I(ri(4096), ri(8), pick([0x0b, 0x2b, 0x5b, 0x7b, 0x1b, 0x3b, 0x07, 0x27, 0x43, 0x53, 0x57, 0x77])); // custom/FP/RV64
      default: // write to a read-only CSR, or any access to one that does not exist
        if (rnd() < 0.5) return (I(0, pick([1, 5, 6, 7]), 0x73) | (pick([0xf11, 0xf12, 0xf13, 0xf14, 0xf15]) << 20) | (((rs1 | 1) & 31) << 15)) >>> 0;
        return (I(0, pick([1, 2, 3]), 0x73) | (pick([0x7c0, 0x8ff, 0x5c0, 0x3ff, 0x0ff, 0x105 + 0x700]) << 20)) >>> 0;
    }
  };

  // Random initial register values.
  const init = [];
  for (const r of POOL) init.push(`  li ${x(r)}, ${hex(r32())}`);

  for (let i = 0; i < len; i++) {
    const k = ri(100);
    if (k < 25) aluOp();
    else if (k < 30) emit(`li ${x(reg())}, ${hex(r32())}`);
    else if (k < 33) emit(`${pick(['lui', 'auipc'])} ${x(reg())}, ${ri(1 << 20)}`);
    else if (k < 43) { const [op, w] = pick(loads); emit(`${op} ${x(reg())}, ${memOff(w)}(sp)`); }
    else if (k < 53) { const [op, w] = pick(stores); emit(`${op} ${x(reg())}, ${memOff(w)}(sp)`); }
    else if (k < 57) {
      const a = reg();
      group();
      emit(`addi ${x(a)}, sp, ${(ri(4096) - 2048) & ~3}`);
      emit(`${pick(amos)}${pick(ordering)} ${x(reg())}, ${x(reg())}, (${x(a)})`);
      ungroup();
    } else if (k < 60) { // LR/SC pair: nothing between them stores or traps
      const a = reg();
      const off = (ri(4096) - 2048) & ~3;
      group();
      emit(`addi ${x(a)}, sp, ${off}`);
      const rdl = reg([a]);
      emit(`lr.w${pick(ordering)} ${x(rdl)}, (${x(a)})`);
      for (let j = ri(3); j > 0; j--) aluOp([a]);
      let b = a;
      if (rnd() < 0.25) { b = reg([a]); emit(`addi ${x(b)}, sp, ${rnd() < 0.5 ? off : (ri(4096) - 2048) & ~3}`); }
      emit(`sc.w${pick(ordering)} ${x(reg())}, ${x(reg())}, (${x(b)})`);
      ungroup();
    } else if (k < 68) {
      emit(`${pick(branches)} ${x(reg())}, ${x(reg())}, ${fwd(1 + ri(5))}`);
    } else if (k < 70) {
      emit(`jal ${x(pick([0, ...POOL]))}, ${fwd(1 + ri(4))}`);
    } else if (k < 73) { // jalr: aligned, bit 0 set (cleared by jalr), or misaligned (traps)
      const a = reg();
      const l = fwd(3 + ri(3));
      group();
      emit(`la ${x(a)}, ${l}`);
      const off = pick([0, 0, 1, 2, 3, -2, 6]);
      emit(`jalr ${x(rnd() < 0.3 ? a : pick([0, ...POOL]))}, ${off}(${x(a)})`);
      ungroup();
    } else if (k < 75) { // branch / jal to pc+6: taken means a misaligned-fetch trap
      const rs1 = reg(), rs2 = reg();
      const f3 = pick([0, 1, 4, 5, 6, 7]);
      if (rnd() < 0.7) emit(`.word ${hex((rs2 << 20) | (rs1 << 15) | (f3 << 12) | (6 << 7) | 0x63)} # b?? +6`);
      else emit(`.word ${hex((3 << 21) | (reg() << 7) | 0x6f)} # jal +6`);
    } else if (k < 77) emit(pick(['ecall', 'ebreak']));
    else if (k < 82) emit(`.word ${hex(illegalWords())} # illegal?`);
    else if (k < 90) { // CSR ops on safe CSRs
      const [csr, mask] = pick(CSR_RW);
      const f = ri(6);
      const ops = ['csrrw', 'csrrs', 'csrrc'];
      if (mask === -1 || f === 2) emit(`${ops[f % 3]} ${x(pick([0, ...POOL]))}, ${csr}, ${x(pick([0, ...POOL]))}`);
      else if (f === 5 || ((mask & 31) === 31 && f >= 3)) emit(`${ops[f - 3]}i ${x(pick([0, ...POOL]))}, ${csr}, ${ri(32)}`);
      else { // a value within the bits QEMU agrees on
        const t = reg();
        group();
        emit(`li ${x(t)}, ${hex(r32() & mask)}`);
        emit(`${ops[f % 3]} ${x(pick([0, ...POOL]))}, ${csr}, ${x(t)}`);
        ungroup();
      }
    } else if (k < 92) emit(`csrr ${x(reg())}, ${pick(CSR_RO)}`);
    else if (k < 95) { // mstatus / sstatus with controlled values
      const t = reg();
      const s = rnd() < 0.5;
      let v = r32() & (s ? SSTATUS_MASK : MSTATUS_RANDOM_MASK);
      const op = pick(['csrrw', 'csrrs', 'csrrc']);
      // MPP never becomes 2 (QEMU 7.2 keeps it; the spec's WARL field does not): csrrc clears both bits or none.
      if (!s) v |= pick(op === 'csrrc' ? [0, 3] : [0, 1, 3]) << 11;
      group();
      emit(`li ${x(t)}, ${hex(v)}`);
      emit(`${op} ${x(reg())}, ${s ? 'sstatus' : 'mstatus'}, ${x(t)}`);
      ungroup();
    } else if (k < 96) { // mip: the software-writable bits; MTIP is masked off on read (timer reset value differs)
      const t = reg();
      group();
      emit(`li ${x(t)}, ${hex(r32() & 0x222)}`);
      const d = reg([t]);
      emit(`csrrw ${x(d)}, mip, ${x(t)}`);
      emit(`andi ${x(d)}, ${x(d)}, -129`);
      ungroup();
    } else if (k < 97) { // satp with MODE = Bare
      const t = reg();
      group();
      emit(`li ${x(t)}, ${hex(r32() & 0x7fffffff)}`);
      emit(`csrrw ${x(reg())}, satp, ${x(t)}`);
      ungroup();
    } else if (k < 98) { // stvec: modes 0 and 1 only
      const t = reg();
      group();
      emit(`li ${x(t)}, ${hex((r32() & ~3) | ri(2))}`);
      emit(`csrrw ${x(reg())}, stvec, ${x(t)}`);
      ungroup();
    } else emit(pick(['fence', 'fence.i', 'fence rw, rw', 'fence r, w', 'nop']));
  }
  for (let i = 0; i < 8; i++) emit('nop');
  while (pending.length) emit('nop');

  const buf = [];
  for (let i = 0; i < 1024; i++) buf.push(hex(r32()));

  return `# difftest seed ${seed} (tools/difftest/gen.mjs), ${len} random instructions
  .option norvc
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, trap_handler
  csrw mtvec, t0
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw satp, zero
  csrw mstatus, zero
  la sp, buf_mid
  la tp, tlog
${init.join('\n')}
  li x30, 0
  li x31, 0
body:
${out.join('\n')}
  j dump

${runtime({ logEntries: len + 16, full: opts.full, buf })}`;
}

/**
 * The common tail of every difftest program: the skip-and-log M trap handler
 * (trap_handler), dump (prints x1..x29, the buffer hash, --full the buffer, the
 * log at tlog..tp, then exits through tohost = 1), HTIF putc/puthex, tohost,
 * the 4 KiB buffer (buf, buf_mid) and the log. Probes (run.mjs --probe) use it too.
 */
export function runtime({ logEntries = 1024, full = false, buf = null } = {}) {
  const words = buf ?? Array.from({ length: 1024 }, (_, i) => hex(Math.imul(i + 1, 0x9e3779b1)));
  return `  .align 4
trap_handler:
  csrr x30, mcause
  sw x30, 0(tp)
  csrr x30, mepc
  sw x30, 4(tp)
  csrr x30, mtval
  sw x30, 8(tp)
  csrw mtval, zero          # known-allowed mtval differences must not flow into registers
  addi tp, tp, 12
  csrr x30, mepc
  addi x30, x30, 4
  csrw mepc, x30
  li x30, 0
  mret

dump:
  la x31, regsave
${POOL.map((r) => `  sw x${r}, ${4 * r}(x31)`).join('\n')}
  csrw mtvec, zero          # any trap from here on is fatal (jumps to 0)
  li x30, 0x1800            # back to plain M: MPRV off
  csrw mstatus, x30
  la s0, regsave
  li s1, 1
2:
  li t0, 2
  beq s1, t0, 3f
  li t0, 4
  beq s1, t0, 3f
  li a0, 'x'
  call putc
  mv a0, s1
  call putdec
  li a0, '='
  call putc
  slli t0, s1, 2
  add t0, t0, s0
  lw a0, 0(t0)
  call puthex
  li a0, 10
  call putc
3:
  addi s1, s1, 1
  li t0, 30
  blt s1, t0, 2b
  # buffer hash (FNV-1a over words)
  la s2, buf
  li s3, 4096
  add s3, s3, s2
  li s4, 0x811c9dc5
  li s5, 0x01000193
4:
  lw t0, 0(s2)
  xor s4, s4, t0
  mul s4, s4, s5
  addi s2, s2, 4
  bltu s2, s3, 4b
  li a0, 'H'
  call putc
  li a0, '='
  call putc
  mv a0, s4
  call puthex
  li a0, 10
  call putc
${full ? `  # every buffer word (--full)
  la s2, buf
8:
  li a0, 'B'
  call putc
  mv a0, s2
  call puthex
  li a0, '='
  call putc
  lw a0, 0(s2)
  call puthex
  li a0, 10
  call putc
  addi s2, s2, 4
  bltu s2, s3, 8b
` : ''}  # trap log
  la s2, tlog
5:
  bgeu s2, tp, 6f
  li a0, 'T'
  call putc
  li a0, ' '
  call putc
  lw a0, 0(s2)
  call puthex
  li a0, ' '
  call putc
  lw a0, 4(s2)
  call puthex
  li a0, ' '
  call putc
  lw a0, 8(s2)
  call puthex
  li a0, 10
  call putc
  addi s2, s2, 12
  j 5b
6:
  li a0, 'E'
  call putc
  li a0, 10
  call putc
  la t0, tohost
  li t1, 1
7:
  sw t1, 0(t0)
  sw zero, 4(t0)
  j 7b

# a0 = byte; HTIF console putchar, waiting for the host to take it
putc:
  la t0, tohost
  li t1, 0x01010000
  sw a0, 0(t0)
  sw t1, 4(t0)
1:
  lw t2, 0(t0)
  lw t3, 4(t0)
  or t2, t2, t3
  bnez t2, 1b
  la t0, fromhost
  sw zero, 0(t0)
  sw zero, 4(t0)
  ret

puthex:
  mv s10, ra
  mv s9, a0
  li s8, 28
1:
  srl t4, s9, s8
  andi t4, t4, 15
  li t5, 10
  addi a0, t4, '0'
  blt t4, t5, 2f
  addi a0, t4, 'a' - 10
2:
  call putc
  addi s8, s8, -4
  bgez s8, 1b
  mv ra, s10
  ret

putdec:   # 0..99
  mv s11, ra
  mv s9, a0
  li t4, 10
  blt s9, t4, 1f
  divu a0, s9, t4
  addi a0, a0, '0'
  call putc
  li t4, 10
  remu s9, s9, t4
1:
  addi a0, s9, '0'
  call putc
  mv ra, s11
  ret

  .pushsection .tohost, "aw", @progbits
  .align 6
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .align 6
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
  .popsection

  .data
  .align 4
buf:
${words.map((w, i) => (i === 512 ? 'buf_mid:\n' : '') + `  .word ${w}`).join('\n')}
regsave:
  .space 128
  .bss
  .align 4
tlog:
  .space ${12 * logEntries}
`;
}

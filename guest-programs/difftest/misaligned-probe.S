# Misaligned-access probe for tools/difftest/run.mjs --probe (not a self-checking
# test; see priv-probe.S for the log format): misaligned loads and stores in M,
# S (Sv32) and U and through MPRV, within a word, across words and across a page
# boundary; page faults on either page of a crossing access (cause, epc, tval,
# and that nothing was stored); the A/D bits both walks set; AMO and LR still
# raising address-misaligned, before translation. Run:
#   node tools/difftest/run.mjs --probe guest-programs/difftest/misaligned-probe.S
#
# Log lines "T a b c": a trap into M is T mcause mepc mtval, then T 4d000000
# mstatus 0; a record is T tag address value. Loads start from 0x5a5a5a5a in t1
# so that a faulting load shows rd untouched.
# Reserved: tp (log), s10 (scratch for LOG), s11 (where an ecall from S/U resumes M), x30, x31.

#define LOG(a, b, c) sw a, 0(tp); sw b, 4(tp); sw c, 8(tp); addi tp, tp, 12
#define REC(tag, w, r) li s10, tag; LOG(s10, w, r)
/* load at base + off into t1 (preset), record address and value */
#define LD(tag, op, base, off) li t1, 0x5a5a5a5a; addi s4, base, off; op t1, 0(s4); REC(tag, s4, t1)
/* record the aligned word at base + off */
#define WORD(tag, base, off) li s4, off; add s4, s4, base; lw t1, 0(s4); REC(tag, s4, t1)
#define MSTATUS_STD 0x007e19aa
#define IN_S(label) la s11, 9f; li t0, 0x1800; csrc mstatus, t0; li t0, 0x800; csrs mstatus, t0; la t0, label; csrw mepc, t0; mret; 9:

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
  la t0, mtrap
  csrw mtvec, t0
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw satp, zero
  csrw mstatus, zero
  la sp, buf_mid
  la tp, tlog
  la s0, page_a
  la s1, page_b

  # ---------------------------------------------------------------- A: M, physical
  li t0, 0x03020100
  sw t0, 0(sp)
  li t0, 0x87868584
  sw t0, 4(sp)
  li t0, 0x0b0a0908
  sw t0, 8(sp)
  LD(0x101, lh, sp, 1)
  LD(0x102, lh, sp, 3)
  LD(0x103, lh, sp, 5)
  LD(0x104, lh, sp, 7)
  LD(0x105, lhu, sp, 3)
  LD(0x106, lhu, sp, 7)
  LD(0x107, lw, sp, 1)
  LD(0x108, lw, sp, 2)
  LD(0x109, lw, sp, 3)
  LD(0x10a, lw, sp, 6)
  li t0, 0x8c8d8e8f
  sw t0, 17(sp)
  sh t0, 22(sp)
  sh t0, 25(sp)
  sw t0, 30(sp)
  sw t0, 39(sp)
  WORD(0x110, sp, 16)
  WORD(0x111, sp, 20)
  WORD(0x112, sp, 24)
  WORD(0x113, sp, 28)
  WORD(0x114, sp, 32)
  WORD(0x115, sp, 36)
  WORD(0x116, sp, 40)
  # across a (physical) page boundary: page_a's last bytes, page_b's first
  li t0, 0xf3f2f1f0
  sw t0, -4(s1)
  li t0, 0xf7f6f5f4
  sw t0, 0(s1)
  LD(0x120, lw, s1, -1)
  LD(0x121, lw, s1, -2)
  LD(0x122, lw, s1, -3)
  LD(0x123, lh, s1, -1)
  LD(0x124, lhu, s1, -1)
  li t0, 0x11223344
  addi s4, s1, -3
  sw t0, 0(s4)
  addi s4, s1, -1
  sh t0, 0(s4)
  WORD(0x125, s0, 0xffc)
  WORD(0x126, s1, 0)
  # AMOs and LR stay misaligned traps; the memory is untouched
  li t0, 1
  addi s4, sp, 2
  amoadd.w t1, t0, (s4)
  addi s4, sp, 1
  amoswap.w t1, t0, (s4)
  addi s4, s1, -2
  amoor.w t1, t0, (s4)              # crossing a page
  addi s4, sp, 3
  li t1, 0x5a5a5a5a
  lr.w t1, (s4)
  REC(0x130, s4, t1)
  WORD(0x131, sp, 0)
  WORD(0x132, sp, 4)

  # ---------------------------------------------------------------- B: Sv32
  # root: VA 0x80000000 (4 MiB) identity (RWX A D); VA 0x40000000 -> pt0:
  #   0: page_c  V R W (A = D = 0)     1: page_b  V R W (A = D = 0): not page_c's neighbour
  #   2: invalid                       3: page_d  V R A (read-only)
  #   4: page_e  V R W (A = D = 0)     5: page_d  V R A (read-only)
  #   6: page_f  V R W U A D           7: page_g  V R W U A D
  #   8: uvm_page V R X U A (the U code)
  la s2, root
  la s3, pt0
  srli t0, s3, 12
  slli t0, t0, 10
  ori t0, t0, 1
  li t1, 0x100 * 4
  add t1, t1, s2
  sw t0, 0(t1)
  li t0, (0x80000 << 10) | 0xcf
  li t1, 0x200 * 4
  add t1, t1, s2
  sw t0, 0(t1)
#define PTE(i, page, flags) la t0, page; srli t0, t0, 12; slli t0, t0, 10; ori t0, t0, flags; sw t0, (i * 4)(s3)
  PTE(0, page_c, 0x07)
  PTE(1, page_b, 0x07)
  sw zero, 8(s3)
  PTE(3, page_d, 0x43)
  PTE(4, page_e, 0x07)
  PTE(5, page_d, 0x43)
  PTE(6, page_f, 0xd7)
  PTE(7, page_g, 0xd7)
  PTE(8, uvm_page, 0x5b)
  # fill the pages' edges with a known pattern (physical stores from M)
  la t2, page_c
  li t0, 0xc3c2c1c0
  li t3, 0xffc
  add t3, t3, t2
  sw t0, 0(t3)
  sw t0, 0(t2)
  li t0, 0xb3b2b1b0
  sw t0, 0(s1)
  sw t0, -4(t2)                     # page_b's last word: page_c - 4
  la t2, page_d
  li t0, 0xd3d2d1d0
  sw t0, 0(t2)
  li t3, 0xffc
  add t3, t3, t2
  sw t0, 0(t3)
  la t2, page_e
  li t0, 0xe3e2e1e0
  li t3, 0xffc
  add t3, t3, t2
  sw t0, 0(t3)
  la t2, page_f
  li t0, 0xa3a2a1a0
  li t3, 0xffc
  add t3, t3, t2
  sw t0, 0(t3)
  la t2, page_g
  li t0, 0x93929190
  sw t0, 0(t2)
  srli t0, s2, 12
  li t1, 0x80000000
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  IN_S(s_vm)
  # A/D the walks left: ptes 0, 1 (crossing load then store), 4 (store whose second page faulted)
  lw t0, 0(s3)
  lw t1, 4(s3)
  REC(0x2f0, t0, t1)
  lw t0, 16(s3)
  REC(0x2f1, t0, zero)
  # what the faulting stores left in memory (physical reads)
  WORD(0x2f2, s1, 0xffc)
  la t2, page_d
  WORD(0x2f3, t2, 0)
  WORD(0x2f4, t2, 0xffc)
  la t2, page_e
  WORD(0x2f5, t2, 0xffc)
  la s11, 9f
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x40008000                 # u_vm at the start of uvm_page
  csrw mepc, t0
  mret
9:
  REC(0x301, zero, a0)
  REC(0x302, zero, a1)
  REC(0x303, zero, a2)
  REC(0x304, zero, a3)
  # MPRV from M with MPP = S: translated, crossing
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x20800
  csrs mstatus, t0
  li s5, 0x40001000
  LD(0x401, lw, s5, -2)
  li t0, 0x55667788
  addi s4, s5, -1
  sw t0, 0(s4)
  li t0, 0x20000
  csrc mstatus, t0
  la t2, page_c
  WORD(0x402, t2, 0xffc)
  WORD(0x403, s1, 0)
  csrw satp, zero
  sfence.vma
  csrw mstatus, zero

  j dump

# ------------------------------------------------------------------ S and U code
s_vm:
  li s5, 0x40001000
  LD(0x201, lw, s5, -2)             # page_c -> page_b: sets A on both
  LD(0x202, lh, s5, -1)
  li t0, 0x66778899
  addi s4, s5, -3
  sw t0, 0(s4)                      # sets D on both
  LD(0x203, lw, s5, -4)
  LD(0x204, lw, s5, 0)
  li s5, 0x40002000
  LD(0x205, lw, s5, -2)             # page_b -> invalid: load page fault on the second page
  LD(0x206, lh, s5, -1)
  li t0, 0x12345678
  addi s4, s5, -1
  sw t0, 0(s4)                      # store page fault on the second page: page_b untouched
  li s5, 0x40003000
  LD(0x207, lw, s5, -2)             # invalid -> page_d: fault on the first page
  addi s4, s5, -2
  sw t0, 0(s4)                      # the same for a store
  li s5, 0x40004000
  LD(0x208, lw, s5, -1)             # page_d (read-only) -> page_e: a load is fine
  addi s4, s5, -1
  sw t0, 0(s4)                      # store: fault on the first (read-only) page
  li s5, 0x40005000
  LD(0x209, lw, s5, -3)             # page_e -> page_d: a load is fine
  addi s4, s5, -3
  sw t0, 0(s4)                      # store: fault on the second (read-only) page
  li t0, 1
  li s4, 0x40002002
  amoadd.w t1, t0, (s4)             # misaligned and unmapped: address-misaligned first
  li s4, 0x40002001
  li t1, 0x5a5a5a5a
  lr.w t1, (s4)
  REC(0x20a, s4, t1)
  ecall

# One page of U code, mapped at VA 0x40008000 by pte 8.
  .section .text.uvm, "ax", @progbits
  .align 12
uvm_page:
u_vm: # the log is not mapped for U: results stay in a0..a3, recorded back in M
  li s5, 0x40007000
  li a0, 0x5a5a5a5a
  addi s4, s5, -3
  lw a0, 0(s4)                      # page_f -> page_g
  li t0, 0x0badf00d
  addi s4, s5, -2
  sw t0, 0(s4)
  addi s4, s5, -4
  lw a1, 0(s4)
  lw a2, 0(s5)
  li a3, 0x5a5a5a5a
  li s4, 0x40000ffe
  lw a3, 0(s4)                      # not U: load page fault
  ecall

  .text
# ------------------------------------------------------------------ handler
  .align 4
mtrap:
  csrr x30, mcause
  sw x30, 0(tp)
  csrr x30, mepc
  sw x30, 4(tp)
  csrr x30, mtval
  sw x30, 8(tp)
  addi tp, tp, 12
  csrw mtval, zero
  csrr x30, mstatus
  li x31, MSTATUS_STD
  and x30, x30, x31
  li x31, 0x4d000000
  LOG(x31, x30, zero)
  csrr x30, mcause
  li x31, 8
  beq x30, x31, 2f
  li x31, 9
  beq x30, x31, 2f
  csrr x30, mepc
  addi x30, x30, 4
  csrw mepc, x30
  mret
2: # an ecall from S or U: back to M at s11
  li x30, 0x1800
  csrs mstatus, x30
  csrw mepc, s11
  mret

  .data
  .align 12
root:
  .space 4096
pt0:
  .space 4096
page_a:
  .space 4096
page_b:
  .space 4096
page_c:
  .space 4096
page_d:
  .space 4096
page_e:
  .space 4096
page_f:
  .space 4096
page_g:
  .space 4096

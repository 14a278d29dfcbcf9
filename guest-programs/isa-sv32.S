# Sv32 in S-mode: two-level walk, megapages (aligned and misaligned),
# permission faults with mtval, SUM and MXR, A/D set by the hardware, and a
# PTE change made visible by sfence.vma.
#
# The tests run in S-mode; page faults are not delegated, so the M handler
# records s2 = mcause, s4 = mtval and skips the faulting instruction (for an
# instruction fetch fault it returns to ra instead). fail/pass write tohost
# through the identity megapage.
#include "test.h"

#define VA_BASE   0x40000000
#define VA_A      (VA_BASE + 0x0000)   /* page_a, RW, A=D=0 */
#define VA_B      (VA_BASE + 0x1000)   /* page_b, R only */
#define VA_NONE   (VA_BASE + 0x2000)   /* invalid PTE */
#define VA_U      (VA_BASE + 0x3000)   /* page_u, U=1 */
#define VA_WONLY  (VA_BASE + 0x4000)   /* W without R: reserved */
#define VA_XONLY  (VA_BASE + 0x5000)   /* X only */
#define VA_MISAL  0x40400000           /* megapage with PPN[0] != 0 */
#define VA_ALIAS  0xc0000000           /* megapage alias of RAM, A=D=0 */

/* Expect the last statement of `code` to fault with `cause` at `va`. */
#define TEST_FAULT(n, cause, va, code...)                         \
test_##n:                                                         \
  li TESTNUM, n; li s2, 0; li s4, 0;                              \
  code;                                                           \
  li t2, cause; bne s2, t2, fail;                                 \
  li t2, va; bne s4, t2, fail;

#define PTE(pa_reg, flags, out)                                   \
  srli out, pa_reg, 12; slli out, out, 10; ori out, out, flags;

RVTEST_CODE_BEGIN
  la t0, mtrap
  csrw mtvec, t0

  # --- build the tables in M-mode (physical addresses)
  la a0, pt_root
  # identity megapage over the first 4 MiB of RAM (code, data, tohost)
  li t1, 0x80000000
  PTE(t1, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D, t2)
  li t3, 512 * 4; add t3, a0, t3; sw t2, 0(t3)
  # alias megapage at 0xc0000000, A and D left for the hardware
  PTE(t1, PTE_V | PTE_R | PTE_W, t2)
  li t3, 768 * 4; add t3, a0, t3; sw t2, 0(t3)
  # pointer to the second-level table for 0x40000000
  la a1, pt_l0
  PTE(a1, PTE_V, t2)
  sw t2, (256 * 4)(a0)
  # misaligned megapage: PPN[0] != 0
  la t1, page_a
  PTE(t1, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, t2)
  sw t2, (257 * 4)(a0)

  la t1, page_a
  PTE(t1, PTE_V | PTE_R | PTE_W, t2)
  sw t2, 0(a1)
  la t1, page_b
  PTE(t1, PTE_V | PTE_R | PTE_A, t2)
  sw t2, 4(a1)
  sw zero, 8(a1)
  la t1, page_u
  PTE(t1, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D, t2)
  sw t2, 12(a1)
  la t1, page_a
  PTE(t1, PTE_V | PTE_W | PTE_A | PTE_D, t2)
  sw t2, 16(a1)
  PTE(t1, PTE_V | PTE_X | PTE_A, t2)
  sw t2, 20(a1)

  la t1, page_a
  li t2, 0x11223344
  sw t2, 0(t1)
  la t1, page_u
  li t2, 0x55667788
  sw t2, 0(t1)

  srli t0, a0, 12
  li t1, SATP_MODE_SV32
  or t0, t0, t1
  csrw satp, t0
  sfence.vma

  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MSTATUS_MPP_S
  csrs mstatus, t0
  la t0, s_tests
  csrw mepc, t0
  mret

s_tests:
  # satp reads back with MODE = Sv32 and the root PPN
  TEST_CASE(1, a4, 0, csrr a1, satp; la a2, pt_root; srli a2, a2, 12; li a3, SATP_MODE_SV32; or a2, a2, a3; sub a4, a1, a2)
  # a load through the second-level table
  TEST_CASE(2, a4, 0x11223344, li a1, VA_A; lw a4, 0(a1))
  # ... set A, not D
  TEST_CASE(3, a4, PTE_A, la a1, pt_l0; lw a2, 0(a1); andi a4, a2, PTE_A | PTE_D)
  # a store sets D and lands in page_a
  TEST_CASE(4, a4, 0x0badcafe, li a1, VA_A; li a2, 0x0badcafe; sw a2, 4(a1); la a3, page_a; lw a4, 4(a3))
  TEST_CASE(5, a4, PTE_A | PTE_D, la a1, pt_l0; lw a2, 0(a1); andi a4, a2, PTE_A | PTE_D)
  # store to a read-only page
  TEST_FAULT(6, CAUSE_STORE_PAGE_FAULT, VA_B + 8, li a1, VA_B; sw zero, 8(a1))
  # load from an invalid PTE
  TEST_FAULT(7, CAUSE_LOAD_PAGE_FAULT, VA_NONE + 16, li a1, VA_NONE; lw a4, 16(a1))
  # a U page from S without SUM faults; with SUM it reads
  TEST_FAULT(8, CAUSE_LOAD_PAGE_FAULT, VA_U, li a1, VA_U; lw a4, 0(a1))
  TEST_CASE(9, a4, 0x55667788, li a1, MSTATUS_SUM; csrs sstatus, a1; li a1, VA_U; lw a4, 0(a1); li a1, MSTATUS_SUM; csrc sstatus, a1)
  # W without R is a reserved encoding
  TEST_FAULT(10, CAUSE_LOAD_PAGE_FAULT, VA_WONLY, li a1, VA_WONLY; lw a4, 0(a1))
  # execute-only: loads fault unless MXR
  TEST_FAULT(11, CAUSE_LOAD_PAGE_FAULT, VA_XONLY, li a1, VA_XONLY; lw a4, 0(a1))
  TEST_CASE(12, a4, 0x11223344, li a1, MSTATUS_MXR; csrs sstatus, a1; li a1, VA_XONLY; lw a4, 0(a1); li a1, MSTATUS_MXR; csrc sstatus, a1)
  # fetch from a page without X
  TEST_FAULT(13, CAUSE_FETCH_PAGE_FAULT, VA_A, li a1, VA_A; jalr ra, 0(a1))
  # a misaligned megapage faults
  TEST_FAULT(14, CAUSE_LOAD_PAGE_FAULT, VA_MISAL, li a1, VA_MISAL; lw a4, 0(a1))
  # megapage alias: same data, A then D set by the hardware in the root PTE
  TEST_CASE(15, a4, 0x11223344, la a1, page_a; li a2, VA_ALIAS - 0x80000000; add a1, a1, a2; lw a4, 0(a1))
  TEST_CASE(16, a4, PTE_A, la a1, pt_root; li a2, 768 * 4; add a1, a1, a2; lw a2, 0(a1); andi a4, a2, PTE_A | PTE_D)
  TEST_CASE(17, a4, 0x600df00d, la a1, page_a; li a2, VA_ALIAS - 0x80000000; add a1, a1, a2; li a2, 0x600df00d; sw a2, 8(a1); la a3, page_a; lw a4, 8(a3))
  TEST_CASE(18, a4, PTE_A | PTE_D, la a1, pt_root; li a2, 768 * 4; add a1, a1, a2; lw a2, 0(a1); andi a4, a2, PTE_A | PTE_D)
  # making page_b writable takes effect after sfence.vma
test_19:
  li TESTNUM, 19
  la a1, pt_l0
  lw a2, 4(a1)
  ori a2, a2, PTE_W | PTE_D
  sw a2, 4(a1)
  sfence.vma
  li s2, 0
  li a1, VA_B
  li a2, 0x7e57
  sw a2, 12(a1)
  bnez s2, fail
  la a3, page_b
  lw a4, 12(a3)
  bne a4, a2, fail
  # M-mode ignores satp: the handler ran untranslated all along, and an
  # ecall from S reports cause 9
  TEST_CASE(20, s2, CAUSE_ECALL_S, la s6, 1f; ecall; 1:)
  j pass

  .align 4
mtrap:
  csrr s2, mcause
  csrr s4, mtval
  li s10, CAUSE_FETCH_PAGE_FAULT
  beq s2, s10, 1f
  li s10, CAUSE_ECALL_S
  beq s2, s10, 2f
  csrr s10, mepc
  addi s10, s10, 4
  csrw mepc, s10
  mret
1:
  csrw mepc, ra
  mret
2:
  csrw mepc, s6
  mret
RVTEST_CODE_END

RVTEST_DATA_BEGIN
  .section .bss
  .align 12
pt_root: .skip 4096
pt_l0:   .skip 4096
page_a:  .skip 4096
page_b:  .skip 4096
page_u:  .skip 4096
RVTEST_DATA_END

#ifndef GUEST_TEST_H
#define GUEST_TEST_H
/* riscv-tests style self-checking assembly tests. TESTNUM (gp) holds the
 * number of the running case; a failure writes (TESTNUM << 1) | 1 to tohost,
 * a pass writes 1. Each test runs from _start in M-mode. */

#include "csr.h"

#define TESTNUM gp

#define RVTEST_CODE_BEGIN                               \
  .section .text.init, "ax", @progbits;                 \
  .globl _start;                                        \
_start:                                                 \
  la t0, 1f; csrw mtvec, t0;                            \
  li t0, -1; csrw pmpaddr0, t0;                         \
  li t0, PMP_NAPOT_RWX; csrw pmpcfg0, t0;               \
  .align 2;                                             \
1:                                                      \
  la t0, trap_vector; csrw mtvec, t0;                   \
  csrw medeleg, zero; csrw mideleg, zero;               \
  csrw mie, zero; csrw satp, zero;                      \
  la sp, _stack_top;                                    \
  li TESTNUM, 0;                                        \
  j test_start;                                         \
  .align 4;                                             \
trap_vector:                                            \
  j fail;                                               \
test_start:

/* A failure before any case started still must not look like a pass. */
#define RVTEST_CODE_END                                 \
pass:                                                   \
  fence; li TESTNUM, 1; j write_tohost;                 \
fail:                                                   \
  fence;                                                \
  bnez TESTNUM, 1f; li TESTNUM, 0x7f;                   \
1:                                                      \
  slli TESTNUM, TESTNUM, 1; ori TESTNUM, TESTNUM, 1;    \
write_tohost:                                           \
  la t5, tohost; sw TESTNUM, 0(t5); sw zero, 4(t5);     \
  j write_tohost;

#define RVTEST_DATA_BEGIN                               \
  .pushsection .tohost, "aw", @progbits;                \
  .align 6; .globl tohost; .type tohost, @object; .size tohost, 8; tohost: .dword 0; \
  .align 6; .globl fromhost; .type fromhost, @object; .size fromhost, 8; fromhost: .dword 0; \
  .popsection;                                          \
  .data; .align 4;

#define RVTEST_DATA_END

#define TEST_CASE(n, reg, correct, code...)             \
test_##n:                                               \
  li TESTNUM, n;                                        \
  code;                                                 \
  li t2, correct;                                       \
  bne reg, t2, fail;

#define TEST_RR_OP(n, inst, result, v1, v2)             \
  TEST_CASE(n, a4, result, li a1, v1; li a2, v2; inst a4, a1, a2)

#define TEST_IMM_OP(n, inst, result, v1, imm)           \
  TEST_CASE(n, a4, result, li a1, v1; inst a4, a1, imm)

/* Source and destination registers the same. */
#define TEST_RR_SRC1_EQ_DEST(n, inst, result, v1, v2)   \
  TEST_CASE(n, a1, result, li a1, v1; li a2, v2; inst a1, a1, a2)

#define TEST_BR_TAKEN(n, inst, v1, v2)                  \
test_##n:                                               \
  li TESTNUM, n; li a1, v1; li a2, v2;                  \
  inst a1, a2, 2f;                                      \
  j fail;                                               \
1:                                                      \
  j 3f;                                                 \
2:                                                      \
  inst a1, a2, 1b; /* taken backwards too */            \
  j fail;                                               \
3:

#define TEST_BR_NOTTAKEN(n, inst, v1, v2)               \
test_##n:                                               \
  li TESTNUM, n; li a1, v1; li a2, v2;                  \
  inst a1, a2, 1f;                                      \
  j 2f;                                                 \
1:                                                      \
  j fail;                                               \
2:

#define TEST_LD(n, inst, result, offset, base)          \
  TEST_CASE(n, a4, result, la a1, base; inst a4, offset(a1))

#define TEST_ST(n, ld, st, result, offset, base)        \
  TEST_CASE(n, a4, result, la a1, base; li a2, result; st a2, offset(a1); ld a4, offset(a1))

#endif

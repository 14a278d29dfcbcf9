# A extension: LR/SC reservations and every AMO returning the old value and
# storing the new one, with signed/unsigned min/max at the edges.
#include "test.h"

#define TEST_AMO(n, inst, init, operand, old, new)                  \
  TEST_CASE(n, a4, old, la a1, amo_word; li a2, init; sw a2, 0(a1);  \
            li a3, operand; inst a4, a3, (a1));                      \
  lw a5, 0(a1); li t2, new; bne a5, t2, fail;

RVTEST_CODE_BEGIN
  TEST_AMO(1, amoswap.w, 0x11111111, 0x22222222, 0x11111111, 0x22222222)
  TEST_AMO(2, amoadd.w, 0x7fffffff, 1, 0x7fffffff, 0x80000000)
  TEST_AMO(3, amoand.w, 0xff00ff00, 0x0ff00ff0, 0xff00ff00, 0x0f000f00)
  TEST_AMO(4, amoor.w, 0xff00ff00, 0x0ff00ff0, 0xff00ff00, 0xfff0fff0)
  TEST_AMO(5, amoxor.w, 0xff00ff00, 0x0ff00ff0, 0xff00ff00, 0xf0f0f0f0)
  TEST_AMO(6, amomin.w, 0x80000000, 0x7fffffff, 0x80000000, 0x80000000)
  TEST_AMO(7, amomax.w, 0x80000000, 0x7fffffff, 0x80000000, 0x7fffffff)
  TEST_AMO(8, amominu.w, 0x80000000, 0x7fffffff, 0x80000000, 0x7fffffff)
  TEST_AMO(9, amomaxu.w, 0x80000000, 0x7fffffff, 0x80000000, 0x80000000)
  TEST_AMO(10, amomin.w, 0xffffffff, 0, 0xffffffff, 0xffffffff)
  TEST_AMO(11, amomaxu.w, 0xffffffff, 0, 0xffffffff, 0xffffffff)
  # aq/rl variants decode to the same operation
  TEST_AMO(12, amoadd.w.aqrl, 5, 7, 5, 12)
  # rd == x0 still performs the store
  TEST_CASE(13, a5, 99, la a1, amo_word; sw zero, 0(a1); li a3, 99; amoswap.w x0, a3, (a1); lw a5, 0(a1))

  # LR then SC to the same address succeeds (rd = 0) and stores.
  TEST_CASE(14, a4, 0, la a1, amo_word; li a2, 41; sw a2, 0(a1); lr.w a3, (a1); addi a3, a3, 1; sc.w a4, a3, (a1))
  TEST_CASE(15, a5, 42, lw a5, 0(a1))
  # A second SC without a new LR fails (rd != 0) and leaves memory alone.
  TEST_CASE(16, a5, 42, li a3, 7; sc.w a4, a3, (a1); beqz a4, fail; lw a5, 0(a1))
  # An SC with no LR at all fails.
  TEST_CASE(17, a5, 0xabc, la a1, amo_word2; li a2, 0xabc; sw a2, 0(a1); li a3, 1; sc.w a4, a3, (a1); beqz a4, fail; lw a5, 0(a1))
  # LR value is the loaded word, and LR/SC loop increments atomically.
  TEST_CASE(18, a5, 0xabf, la a1, amo_word2; li a6, 3; 1: lr.w.aq a2, (a1); addi a2, a2, 1; sc.w.rl a4, a2, (a1); bnez a4, 1b; addi a6, a6, -1; bnez a6, 1b; lw a5, 0(a1))
  j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
  .align 4
amo_word: .word 0
amo_word2: .word 0
RVTEST_DATA_END

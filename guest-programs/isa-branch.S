# Conditional branches (signed/unsigned edges, both directions) and jumps
# with their link values.
#include "test.h"

RVTEST_CODE_BEGIN
  TEST_BR_TAKEN(1, beq, 0, 0)
  TEST_BR_TAKEN(2, beq, -1, -1)
  TEST_BR_NOTTAKEN(3, beq, 0, 1)
  TEST_BR_TAKEN(4, bne, 0, 1)
  TEST_BR_NOTTAKEN(5, bne, -1, -1)
  TEST_BR_TAKEN(6, blt, 0x80000000, 0x7fffffff)
  TEST_BR_NOTTAKEN(7, blt, 0x7fffffff, 0x80000000)
  TEST_BR_NOTTAKEN(8, blt, 5, 5)
  TEST_BR_TAKEN(9, bge, 5, 5)
  TEST_BR_TAKEN(10, bge, 0x7fffffff, 0x80000000)
  TEST_BR_NOTTAKEN(11, bge, -1, 0)
  TEST_BR_TAKEN(12, bltu, 0x7fffffff, 0x80000000)
  TEST_BR_NOTTAKEN(13, bltu, 0xffffffff, 0)
  TEST_BR_TAKEN(14, bgeu, 0xffffffff, 0)
  TEST_BR_TAKEN(15, bgeu, 7, 7)
  TEST_BR_NOTTAKEN(16, bgeu, 0, 0x80000000)

  # jal links pc+4.
  TEST_CASE(17, a4, 0, la a2, 1f; jal a1, 1f; 1: sub a4, a1, a2)
  # jalr target = (rs1 + imm) & ~1, link written after rs1 is read (rd == rs1).
test_18:
  li TESTNUM, 18
  la a1, 2f
  addi a1, a1, -2     # rs1 + 3 = 2f + 1: bit 0 must be cleared
  jalr a1, 3(a1)
  j fail
  .align 2
2:
  la t0, 2b           # link = the jalr + 4 = the `j fail` = 2b - 4
  addi t0, t0, -4
  bne a1, t0, fail
  # jal x0 is a plain jump; no register changes.
test_19:
  li TESTNUM, 19
  li a1, 123
  jal x0, 3f
  li a1, 0
3:
  li t2, 123
  bne a1, t2, fail
  # Backward loop of 10 iterations.
  TEST_CASE(20, a4, 10, li a4, 0; li a1, 10; 4: addi a4, a4, 1; addi a1, a1, -1; bnez a1, 4b)
  j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

# M extension: products high and low, and the division corner cases the
# spec defines instead of trapping (x / 0 and INT_MIN / -1).
#include "test.h"

RVTEST_CODE_BEGIN
  TEST_RR_OP(1, mul, 0x00000001, 0xffffffff, 0xffffffff)
  TEST_RR_OP(2, mul, 0x80000000, 0x40000000, 2)
  TEST_RR_OP(3, mul, 0x242d2080, 0x12345678, 0x9abcdef0)
  TEST_RR_OP(4, mulh, 0x00000000, 0xffffffff, 0xffffffff)
  TEST_RR_OP(5, mulh, 0x40000000, 0x80000000, 0x80000000)
  TEST_RR_OP(6, mulh, 0xc0000000, 0x80000000, 0x7fffffff)
  TEST_RR_OP(7, mulhu, 0xfffffffe, 0xffffffff, 0xffffffff)
  TEST_RR_OP(8, mulhu, 0x0b00ea4e, 0x12345678, 0x9abcdef0)
  TEST_RR_OP(9, mulhsu, 0xffffffff, 0xffffffff, 0xffffffff)
  TEST_RR_OP(10, mulhsu, 0x80000000, 0x80000000, 0xffffffff)
  TEST_RR_OP(11, mulhsu, 0x00000000, 0x00000001, 0xffffffff)
  TEST_RR_OP(12, div, 0xfffffffd, 20, -6)
  TEST_RR_OP(13, div, 0xfffffffd, -20, 6)
  TEST_RR_OP(14, div, 3, -20, -6)
  TEST_RR_OP(15, div, 0x80000000, 0x80000000, -1)
  TEST_RR_OP(16, div, 0xffffffff, 1, 0)
  TEST_RR_OP(17, div, 0xffffffff, 0x80000000, 0)
  TEST_RR_OP(18, divu, 0x2aaaaaa7, -20, 6)
  TEST_RR_OP(19, divu, 0xffffffff, 12345, 0)
  TEST_RR_OP(20, rem, 2, 20, -6)
  TEST_RR_OP(21, rem, -2, -20, 6)
  TEST_RR_OP(22, rem, 0, 0x80000000, -1)
  TEST_RR_OP(23, rem, 0x80000000, 0x80000000, 0)
  TEST_RR_OP(24, remu, 2, -20, 6)
  TEST_RR_OP(25, remu, 0xfffffffe, 0xfffffffe, 0)
  TEST_RR_OP(26, divu, 1, 0x80000000, 0x80000000)
  TEST_RR_SRC1_EQ_DEST(27, mul, 143, 13, 11)
  # rd == rs1 == rs2
  TEST_CASE(28, a1, 0x00000009, li a1, 0xfffffffd; mul a1, a1, a1)
  j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

# RV32I register-register, register-immediate and upper-immediate operations
# at their edge values.
#include "test.h"

RVTEST_CODE_BEGIN
  TEST_RR_OP(1, add, 0x00000000, 0x00000000, 0x00000000)
  TEST_RR_OP(2, add, 0x80000000, 0x7fffffff, 0x00000001)
  TEST_RR_OP(3, add, 0xfffffffe, 0xffffffff, 0xffffffff)
  TEST_RR_OP(4, sub, 0x7fffffff, 0x80000000, 0x00000001)
  TEST_RR_OP(5, sub, 0x00000001, 0x00000000, 0xffffffff)
  TEST_RR_OP(6, and, 0x0f000f00, 0xff00ff00, 0x0f0f0f0f)
  TEST_RR_OP(7, or,  0xff0fff0f, 0xff00ff00, 0x0f0f0f0f)
  TEST_RR_OP(8, xor, 0xf00ff00f, 0xff00ff00, 0x0f0f0f0f)
  TEST_RR_OP(9, sll, 0x80000000, 0x00000001, 31)
  TEST_RR_OP(10, sll, 0x00000002, 0x00000001, 0xffffffe1) # only rs2[4:0] counts
  TEST_RR_OP(11, srl, 0x00000001, 0x80000000, 31)
  TEST_RR_OP(12, sra, 0xffffffff, 0x80000000, 31)
  TEST_RR_OP(13, sra, 0xc0000000, 0x80000000, 0xffffffe1)
  TEST_RR_OP(14, slt, 1, 0x80000000, 0x7fffffff)
  TEST_RR_OP(15, slt, 0, 0x7fffffff, 0x80000000)
  TEST_RR_OP(16, sltu, 0, 0x80000000, 0x7fffffff)
  TEST_RR_OP(17, sltu, 1, 0x00000000, 0xffffffff)
  TEST_RR_OP(18, slt, 0, 0xffffffff, 0xffffffff)
  TEST_IMM_OP(19, addi, 0x7ffff800, 0x80000000, -2048)
  TEST_IMM_OP(20, addi, 0x800007fe, 0x7fffffff, 2047)
  TEST_IMM_OP(21, andi, 0xff00ff00, 0xff00ff00, -1)
  TEST_IMM_OP(22, ori,  0xfffff80f, 0x0000000f, -2048)
  TEST_IMM_OP(23, xori, 0x00ff00f0, 0xff00ff0f, -1)
  TEST_IMM_OP(24, slli, 0x80000000, 0x00000001, 31)
  TEST_IMM_OP(25, srli, 0x00000001, 0xffffffff, 31)
  TEST_IMM_OP(26, srai, 0xffffffff, 0x80000000, 31)
  TEST_IMM_OP(27, srai, 0x3fffffff, 0x7fffffff, 1)
  TEST_IMM_OP(28, slti, 1, 0xffffffff, 0)
  TEST_IMM_OP(29, sltiu, 1, 0x00000000, -1)   # imm sign-extends, then compares unsigned
  TEST_IMM_OP(30, sltiu, 0, 0xffffffff, -1)
  TEST_RR_SRC1_EQ_DEST(31, add, 24, 13, 11)
  TEST_CASE(32, a4, 0x12345000, lui a4, 0x12345)
  TEST_CASE(33, a4, 0xfffff000, lui a4, 0xfffff)
  # auipc adds to its own pc: two auipc 4 bytes apart differ by 4.
  TEST_CASE(34, a4, 4, auipc a1, 0; auipc a2, 0; sub a4, a2, a1)
  TEST_CASE(35, a4, 0x1000, 1: auipc a1, 1; la a2, 1b; sub a4, a1, a2)
  # x0 ignores writes.
  TEST_CASE(36, a4, 0, li a1, 5; add x0, a1, a1; mv a4, x0)
  TEST_CASE(37, a4, 0, lui x0, 0x12345; addi a4, x0, 0)
  j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

# Deliberately fails at test 7 (the runner's failure path: tohost = 15,
# "FAIL: test 7", exit status 7).
#include "test.h"

RVTEST_CODE_BEGIN
  TEST_IMM_OP(1, addi, 1, 0, 1)
  TEST_IMM_OP(2, addi, 2, 1, 1)
  TEST_IMM_OP(3, addi, 3, 2, 1)
  TEST_IMM_OP(4, addi, 4, 3, 1)
  TEST_IMM_OP(5, addi, 5, 4, 1)
  TEST_IMM_OP(6, addi, 6, 5, 1)
  TEST_IMM_OP(7, addi, 8, 6, 1)    # wrong on purpose
  j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

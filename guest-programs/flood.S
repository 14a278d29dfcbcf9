# Writes "flood\n" to the 16550 UART forever: the console-flood tests
# (backpressure into a slow pipe, a reader that closes early).
#include "test.h"

RVTEST_CODE_BEGIN
  li t0, 0x10000000
1:
  la t1, msg
2:
  lbu t2, 0(t1)
  beqz t2, 1b
  sb t2, 0(t0)
  addi t1, t1, 1
  j 2b
RVTEST_CODE_END

RVTEST_DATA_BEGIN
msg:
  .string "flood\n"
RVTEST_DATA_END

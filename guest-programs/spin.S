# Never reports a result (the runner's --max-insns path).
#include "test.h"

RVTEST_CODE_BEGIN
1:
  addi a0, a0, 1
  j 1b
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

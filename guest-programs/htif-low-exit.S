# Writes only the low word of tohost (pass) and then spins: an exit must not
# depend on a high-word store that never comes.
#include "test.h"

RVTEST_CODE_BEGIN
  la t0, tohost
  li t1, 1
  sw t1, 0(t0)
1:
  j 1b
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

# Self-checking (riscv-tests style, guest-programs/common/test.h): 64-bit counters on RV32,
# after riscv-tests rv32mi instret_overflow, plus large high halves. Not in build-guests.sh:
#   riscv64-unknown-elf-gcc -march=rv32ima_zicsr_zifencei -mabi=ilp32 -nostdlib -nostartfiles -static \
#     -Iguest-programs/common -T guest-programs/common/link.ld -o /tmp/counters.elf guest-programs/difftest/counters.S
#   node dist/cli.js run --bare /tmp/counters.elf      # exit 0
#include "test.h"
RVTEST_CODE_BEGIN
  TEST_CASE(2, a0, 0, csrwi minstret, 0; csrr a0, minstret)
  TEST_CASE(3, a0, 0, li t0, 0xffffffff; csrw minstret, t0; csrw minstreth, t0; nop; csrr a0, minstret)
  TEST_CASE(4, a0, 0, csrr a0, minstreth)
  TEST_CASE(5, a0, 5, li t0, 0x12345678; csrw minstreth, t0; li t1, 5; csrw minstret, t1; csrr a0, minstret)
  TEST_CASE(6, a0, 0x12345678, li t0, 0x12345678; csrw minstreth, t0; csrr a0, minstreth)
  TEST_CASE(7, a0, 7, li t0, 0xfedcba98; csrw mcycleh, t0; li t1, 7; csrw mcycle, t1; csrr a0, mcycle; sub a0, a0, t1; sltiu a0, a0, 8; addi a0, a0, 6)
  TEST_CASE(8, a0, 0xfedcba98, csrr a0, mcycleh)
  TEST_CASE(9, a0, 0x12345678, csrr a0, instreth)
  j pass
RVTEST_CODE_END
RVTEST_DATA_BEGIN
RVTEST_DATA_END

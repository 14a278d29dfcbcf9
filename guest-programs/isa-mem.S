# Loads and stores of every width: sign and zero extension, negative
# offsets, sub-word stores leaving the neighbours alone.
#include "test.h"

RVTEST_CODE_BEGIN
  TEST_LD(1, lb,  0xffffff80, 0, bytes)
  TEST_LD(2, lbu, 0x00000080, 0, bytes)
  TEST_LD(3, lb,  0x0000007f, 1, bytes)
  TEST_LD(4, lh,  0xffff8001, 2, bytes)
  TEST_LD(5, lhu, 0x00008001, 2, bytes)
  TEST_LD(6, lw,  0x8001007f, 0, words)
  TEST_LD(7, lw,  0xdeadbeef, -4, words_end)
  TEST_LD(8, lh,  0xffffdead, -2, words_end)
  TEST_LD(9, lbu, 0x000000ad, -2, words_end)
  TEST_ST(10, lw, sw, 0xa5a5a5a5, 0, scratch)
  TEST_ST(11, lb, sb, 0xffffff81, 1, scratch)
  TEST_ST(12, lhu, sh, 0x0000f00f, 2, scratch)
  # the word now holds both sub-word stores around the untouched low byte
  TEST_LD(13, lw, 0xf00f81a5, 0, scratch)
  TEST_ST(14, lw, sw, 0x12345678, -4, scratch_end)
  TEST_LD(15, lbu, 0x00000012, -1, scratch_end)
  TEST_LD(16, lh, 0x00005678, -4, scratch_end)
  # store then load through a different base register and offset
  TEST_CASE(17, a4, 0x0bad0bad, la a1, scratch; li a2, 0x0bad0bad; sw a2, 8(a1); addi a3, a1, 16; lw a4, -8(a3))
  # x0 as a store source stores zero
  TEST_CASE(18, a4, 0, la a1, scratch; sw x0, 0(a1); lw a4, 0(a1))
  # a load into x0 is discarded
  TEST_CASE(19, a4, 0, la a1, words; lw x0, 0(a1); mv a4, x0)
  # fence / fence.i are accepted
  TEST_CASE(20, a4, 1, fence; fence.i; li a4, 1)
  j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
  .align 4
bytes: .byte 0x80, 0x7f, 0x01, 0x80
words: .word 0x8001007f, 0x00000000, 0xdeadbeef
words_end:
  .align 4
scratch: .word 0, 0, 0, 0
scratch_end:
RVTEST_DATA_END

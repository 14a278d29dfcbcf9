# Entry for the C guests: M-mode, all registers zero, at the start of RAM.
#include "csr.h"

  .section .text.init, "ax", @progbits
  .globl _start
_start:
  # Open all of memory to S and U through PMP entry 0. QEMU enforces PMP (no
  # entry means no S/U access at all); a hart without PMP traps on the CSR
  # write, and the temporary mtvec steps over it.
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, PMP_NAPOT_RWX
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, rt_trap_entry
  csrw mtvec, t0
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw satp, zero

  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, _stack_top

  # The loader zero-fills .bss already; clearing again keeps other loaders honest.
  la t0, __bss_start
  la t1, __bss_end
2:
  bgeu t0, t1, 3f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 2b
3:
  call rt_start
4:
  j 4b

# Any trap reaching M-mode in a C guest is a bug: report it and fail.
  .align 4
  .globl rt_trap_entry
rt_trap_entry:
  la sp, _stack_top
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  call rt_unexpected_trap
5:
  j 5b

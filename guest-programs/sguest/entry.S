# S-mode entry: the SBI implementation (OpenSBI, or the shadowvisor VMM) starts
# us in S-mode with the MMU off, a0 = hartid, a1 = device tree pointer (or 0).

  .section .text.init, "ax", @progbits
  .globl _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, _stack_top
  csrw sie, zero
  csrw satp, zero
  la t0, s_trap_entry
  csrw stvec, t0

  # Loaders zero .bss already; doing it again keeps the image honest on any loader.
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  call sguest_main
  # sguest_main ends in SRST; if that ever returned, fail loudly.
  call sbi_fail_stop
3:
  j 3b

# Trap entry: saves the caller-saved registers on the current stack (traps only
# come from S-mode code, which always has a valid sp) and calls
# s_trap(scause, sepc, stval); a handled interrupt resumes with sret.
  .align 4
  .globl s_trap_entry
s_trap_entry:
  addi sp, sp, -64
  sw ra, 0(sp)
  sw t0, 4(sp)
  sw t1, 8(sp)
  sw t2, 12(sp)
  sw a0, 16(sp)
  sw a1, 20(sp)
  sw a2, 24(sp)
  sw a3, 28(sp)
  sw a4, 32(sp)
  sw a5, 36(sp)
  sw a6, 40(sp)
  sw a7, 44(sp)
  sw t3, 48(sp)
  sw t4, 52(sp)
  sw t5, 56(sp)
  sw t6, 60(sp)
  csrr a0, scause
  csrr a1, sepc
  csrr a2, stval
  call s_trap
  lw ra, 0(sp)
  lw t0, 4(sp)
  lw t1, 8(sp)
  lw t2, 12(sp)
  lw a0, 16(sp)
  lw a1, 20(sp)
  lw a2, 24(sp)
  lw a3, 28(sp)
  lw a4, 32(sp)
  lw a5, 36(sp)
  lw a6, 40(sp)
  lw a7, 44(sp)
  lw t3, 48(sp)
  lw t4, 52(sp)
  lw t5, 56(sp)
  lw t6, 60(sp)
  addi sp, sp, 64
  sret

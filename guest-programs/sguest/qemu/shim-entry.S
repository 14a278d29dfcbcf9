# A minimal M-mode SBI for QEMU virt (rv32), used only to cross-check the sguest
# images on an independent hart, MMU and CLINT when no rv32 OpenSBI is at hand.
# Hands over like OpenSBI's fw_jump: S-mode at 0x80400000, a0 = hartid, a1 = dtb.
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la sp, _mstack_top
  csrw mscratch, sp
  la t0, m_trap_entry
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  li t0, 0xb1ff          # every exception S handles, not ecall from S/M
  csrw medeleg, t0
  li t0, 0x222           # SSIP, STIP, SEIP
  csrw mideleg, t0
  li t0, 7
  csrw mcounteren, t0
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x0800          # MPP = S
  csrs mstatus, t0
  li t0, 0x80400000
  csrw mepc, t0
  csrr a0, mhartid
  # a1 still holds QEMU's device tree pointer
  mret

  .align 4
m_trap_entry:
  csrrw sp, mscratch, sp
  addi sp, sp, -128
  .irp r, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  sw x\r, (\r*4)(sp)
  .endr
  csrr t0, mscratch
  sw t0, 8(sp)            # the interrupted sp
  mv a0, sp
  call m_trap
  .irp r, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  lw x\r, (\r*4)(sp)
  .endr
  addi sp, sp, 128
  csrrw sp, mscratch, sp
  mret

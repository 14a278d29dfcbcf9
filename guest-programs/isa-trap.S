# Zicsr and the privileged trap machinery: CSR read/modify/write forms,
# ecall from M, S and U, illegal instruction with mtval, ebreak, mret/sret
# privilege changes, and delegation to S through medeleg.
#
# Register conventions (the handlers touch only these):
#   M handler: s2 = mcause, s3 = mepc, s4 = mtval, s9 = mstatus at entry,
#              s5 = M trap count. An ecall from S or U means "back to M":
#              the handler mrets to M-mode at s6. Any other trap is skipped
#              (mepc += 4) and returns to the trapping mode.
#   S handler: s7 = scause, s8 = sepc, s11 = stval. An ecall from U is passed
#              up to M with an ecall; anything else is skipped (sepc += 4).
#include "test.h"

/* Run `label` in S-mode; it comes back with ecall and we continue at 9:. */
#define CALL_IN_S(label)                                              \
  la s6, 9f; li t0, MSTATUS_MPP; csrc mstatus, t0;                    \
  li t0, MSTATUS_MPP_S; csrs mstatus, t0;                             \
  la t0, label; csrw mepc, t0; mret; 9:

/* Run `label` in U-mode (MPP = 0). */
#define CALL_IN_U(label)                                              \
  la s6, 9f; li t0, MSTATUS_MPP; csrc mstatus, t0;                    \
  la t0, label; csrw mepc, t0; mret; 9:

#define ILLEGAL_INSN 0x1234507b   /* custom-3 major opcode: never implemented */

RVTEST_CODE_BEGIN
  la t0, mtrap
  csrw mtvec, t0
  la t0, strap
  csrw stvec, t0
  li s5, 0

  # --- CSR instructions on mscratch
  TEST_CASE(1, a4, 0, csrw mscratch, zero; li a1, 0x1234; csrrw a4, mscratch, a1)
  TEST_CASE(2, a4, 0x1234, csrr a4, mscratch)
  TEST_CASE(3, a4, 0x1234, li a1, 0xf000000f; csrrs a4, mscratch, a1)
  TEST_CASE(4, a4, 0xf000123f, csrr a4, mscratch)
  TEST_CASE(5, a4, 0xf000123f, li a1, 0x0000000f; csrrc a4, mscratch, a1)
  TEST_CASE(6, a4, 0xf0001230, csrr a4, mscratch)
  TEST_CASE(7, a4, 0xf0001230, csrrwi a4, mscratch, 0x15)
  TEST_CASE(8, a4, 0x15, csrrsi a4, mscratch, 0x0a; csrr a4, mscratch; addi a4, a4, -0x0a)
  TEST_CASE(9, a4, 0x1f, csrrci a4, mscratch, 0x1f)
  TEST_CASE(10, a4, 0, csrr a4, mscratch)
  # csrrs with x0 reads without writing (and so cannot trap on a read-only CSR)
  TEST_CASE(11, a4, 0, csrrs a4, mhartid, x0)
  # misa: MXL = 1 (RV32) and at least I, M, A, S, U
  TEST_CASE(12, a4, 0x40141101, csrr a1, misa; li a2, 0xc0141101; and a4, a1, a2)
  # minstret counts retired instructions
  TEST_CASE(13, a4, 1, csrr a1, minstret; nop; nop; csrr a2, minstret; sub a3, a2, a1; sltiu a4, a3, 3; xori a4, a4, 1)

  # --- ecall from M: cause 11, mepc at the ecall, handled in M
test_14:
  li TESTNUM, 14
  li s5, 0
1:
  ecall
  li t2, CAUSE_ECALL_M
  bne s2, t2, fail
  la t2, 1b
  bne s3, t2, fail
  li t2, 1
  bne s5, t2, fail

  # --- illegal instruction: cause 2, mtval = the instruction bits
test_15:
  li TESTNUM, 15
1:
  .word ILLEGAL_INSN
  li t2, CAUSE_ILLEGAL_INSN
  bne s2, t2, fail
  la t2, 1b
  bne s3, t2, fail
  li t2, ILLEGAL_INSN
  bne s4, t2, fail

  # --- ebreak: cause 3
  TEST_CASE(16, s2, CAUSE_BREAKPOINT, ebreak)

  # --- M -> S with mret; ecall from S is cause 9 with MPP = S at the trap
test_17:
  li TESTNUM, 17
  CALL_IN_S(s_ecall)
  li t2, CAUSE_ECALL_S
  bne s2, t2, fail
  la t2, s_ecall
  bne s3, t2, fail
  li t2, MSTATUS_MPP
  and t3, s9, t2
  li t2, MSTATUS_MPP_S
  bne t3, t2, fail
  # mret leaves MPP at the least privileged mode (U)
  TEST_CASE(18, a4, 0, csrr a1, mstatus; li a2, MSTATUS_MPP; and a4, a1, a2)

  # --- S-mode may not touch M CSRs: illegal instruction, taken in M from S
test_19:
  li TESTNUM, 19
  li s2, 0
  CALL_IN_S(s_read_mstatus)
  li t2, CAUSE_ECALL_S      # the last trap is the ecall that came back
  bne s2, t2, fail
  li t2, CAUSE_ILLEGAL_INSN
  bne a5, t2, fail          # s_read_mstatus saved the illegal-instruction cause
  la t2, s_read_mstatus
  bne a6, t2, fail

  # --- ecall from U, not delegated: cause 8 in M, MPP = U
test_20:
  li TESTNUM, 20
  csrw medeleg, zero
  CALL_IN_U(u_ecall)
  li t2, CAUSE_ECALL_U
  bne s2, t2, fail
  la t2, u_ecall
  bne s3, t2, fail
  li t2, MSTATUS_MPP
  and t3, s9, t2
  bnez t3, fail

  # --- ecall from U delegated to S: scause 8, sepc at the ecall, SPP = U
test_21:
  li TESTNUM, 21
  li t0, (1 << CAUSE_ECALL_U)
  csrw medeleg, t0
  li s7, 0
  CALL_IN_S(s_enter_u)
  li t2, CAUSE_ECALL_U
  bne s7, t2, fail
  la t2, u_ecall
  bne s8, t2, fail
  li t2, CAUSE_ECALL_S       # S handler passed it up with its own ecall
  bne s2, t2, fail

  # --- delegated illegal instruction from S goes to S with stval = bits
test_22:
  li TESTNUM, 22
  li t0, (1 << CAUSE_ILLEGAL_INSN)
  csrw medeleg, t0
  li s7, 0
  CALL_IN_S(s_illegal)
  li t2, CAUSE_ILLEGAL_INSN
  bne s7, t2, fail
  la t2, s_illegal
  bne s8, t2, fail
  li t2, ILLEGAL_INSN
  bne s11, t2, fail

  # --- a trap in M is never delegated, whatever medeleg says
test_23:
  li TESTNUM, 23
  li s2, 0
  li s7, 0
1:
  .word ILLEGAL_INSN
  li t2, CAUSE_ILLEGAL_INSN
  bne s2, t2, fail
  bnez s7, fail
  csrw medeleg, zero

  # --- U-mode may not read sstatus
test_24:
  li TESTNUM, 24
  CALL_IN_U(u_read_sstatus)
  li t2, CAUSE_ILLEGAL_INSN
  bne a5, t2, fail

  # --- sstatus is a view of mstatus; sscratch and sepc hold values
  TEST_CASE(25, a4, MSTATUS_SIE, csrci mstatus, MSTATUS_SIE; csrsi sstatus, MSTATUS_SIE; csrr a1, mstatus; andi a4, a1, MSTATUS_SIE)
  TEST_CASE(26, a4, 0, csrci sstatus, MSTATUS_SIE; csrr a1, mstatus; andi a4, a1, MSTATUS_SIE)
  TEST_CASE(27, a4, 0x5a5a5a5a, li a1, 0x5a5a5a5a; csrw sscratch, a1; csrr a4, sscratch)
  TEST_CASE(28, a4, 0x80001000, li a1, 0x80001000; csrw sepc, a1; csrr a4, sepc)
  j pass

  # --- code run in lower modes
  .align 2
s_ecall:
  ecall
  j fail

s_read_mstatus:
  csrr a0, mstatus          # traps; the M handler skips it
  mv a5, s2
  mv a6, s3
  ecall
  j fail

s_enter_u:
  li t0, MSTATUS_SPP
  csrc sstatus, t0          # SPP = U
  la t0, u_ecall
  csrw sepc, t0
  sret

u_ecall:
  ecall
  j fail

s_illegal:
  .word ILLEGAL_INSN
  ecall
  j fail

u_read_sstatus:
  csrr a0, sstatus
  mv a5, s2
  ecall
  j fail

  .align 4
mtrap:
  csrr s2, mcause
  csrr s3, mepc
  csrr s4, mtval
  csrr s9, mstatus
  addi s5, s5, 1
  li s10, CAUSE_ECALL_S
  beq s2, s10, 1f
  li s10, CAUSE_ECALL_U
  beq s2, s10, 1f
  addi s10, s3, 4
  csrw mepc, s10
  mret
1:
  li s10, MSTATUS_MPP
  csrs mstatus, s10
  csrw mepc, s6
  mret

  .align 4
strap:
  csrr s7, scause
  csrr s8, sepc
  csrr s11, stval
  li s10, CAUSE_ECALL_U
  beq s7, s10, 1f
  addi s10, s8, 4
  csrw sepc, s10
  sret
1:
  ecall
  j fail
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END

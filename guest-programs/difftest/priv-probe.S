# Privileged-architecture probe for tools/difftest/run.mjs --probe (not a
# self-checking test): it records what the hart does (trap causes, epc, tval,
# mstatus after each trap, WARL read-backs, A/D bits) in the log at tp, and
# run.mjs prints the log on QEMU and on our hart and compares. The runtime
# (dump, buf, tlog, tohost) is appended by run.mjs from gen.mjs.
#
# Log lines are "T a b c":
#   trap into M:  T mcause mepc mtval, then T 4d000000 mstatus(std bits) 0
#   trap into S:  T scause sepc stval, then T 53000000 sstatus 0
#   record:       T tag written read   (tags 0x1xx WARL, 0x2xx S-mode, 0x3xx U, 0x5xx VM)
# Reserved: tp (log), s10 (scratch for LOG), s11 (where an ecall from S/U resumes M), x30, x31.

#define LOG(a, b, c) sw a, 0(tp); sw b, 4(tp); sw c, 8(tp); addi tp, tp, 12
#define REC(tag, w, r) li s10, tag; LOG(s10, w, r)
/* csrw the value, read it back, record */
#define WARL(tag, csr, val) li t0, val; csrw csr, t0; csrr t1, csr; REC(tag, t0, t1)
#define MSTATUS_STD 0x007e19aa
#define IN_S(label) la s11, 9f; li t0, 0x1800; csrc mstatus, t0; li t0, 0x800; csrs mstatus, t0; la t0, label; csrw mepc, t0; mret; 9:
#define IN_U(label) la s11, 9f; li t0, 0x1800; csrc mstatus, t0; la t0, label; csrw mepc, t0; mret; 9:

  .option norvc
  .section .text.init, "ax", @progbits
  .globl _start
_start:
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, mtrap
  csrw mtvec, t0
  la t0, strap
  csrw stvec, t0
  csrw medeleg, zero
  csrw mideleg, zero
  csrw mie, zero
  csrw satp, zero
  csrw mstatus, zero
  la sp, buf_mid
  la tp, tlog

  # ---------------------------------------------------------------- A: WARL in M
  WARL(0x101, mstatus, -1)
  csrw mstatus, zero
  WARL(0x102, mstatus, 0x1000)      # MPP = 2 (no H): must not read back as 2
  WARL(0x103, mstatus, 0x0800)
  WARL(0x104, mstatus, 0x1000)
  csrw mstatus, zero
  WARL(0x105, sstatus, -1)
  csrr t1, mstatus
  REC(0x106, zero, t1)
  csrw mstatus, zero
  WARL(0x107, mie, -1)
  li t0, -1
  csrw mip, t0
  csrr t1, mip
  andi t1, t1, -129                 # MTIP: the timer's reset value differs
  REC(0x108, t0, t1)
  csrw mip, zero
  WARL(0x109, sie, -1)              # mideleg = 0: nothing
  WARL(0x10a, mideleg, -1)
  WARL(0x10b, sie, -1)
  WARL(0x10c, sip, -1)
  csrw sip, zero
  csrw mie, zero
  csrw mideleg, zero
  WARL(0x10d, medeleg, -1)
  csrw medeleg, zero
  WARL(0x10e, mepc, -1)
  WARL(0x10f, sepc, -1)
  WARL(0x110, mepc, 0x80000002)
  WARL(0x111, mcause, -1)
  WARL(0x112, scause, -1)
  WARL(0x113, mtval, -1)
  WARL(0x114, stval, -1)
  WARL(0x115, mscratch, -1)
  WARL(0x116, sscratch, -1)
  WARL(0x117, mcounteren, -1)
  WARL(0x118, scounteren, -1)
  csrw mcounteren, zero
  csrw scounteren, zero
  WARL(0x119, satp, -1)
  WARL(0x11a, satp, 0x7fffffff)
  csrw satp, zero
  WARL(0x11b, mtvec, 0x80000101)
  WARL(0x11c, mtvec, 0x80000100)
  la t0, mtrap
  csrw mtvec, t0
  WARL(0x11d, stvec, 0x80000101)
  WARL(0x11e, stvec, 0x80000100)
  la t0, strap
  csrw stvec, t0
  WARL(0x11f, misa, 0)
  csrr t1, mhartid
  REC(0x120, zero, t1)
  csrr t1, mstatush
  REC(0x121, zero, t1)
  csrw mstatus, zero
  # ecall and ebreak from M
  ecall
  ebreak
  .word 0
  .word 0xffffffff
  csrw mhartid, zero                # read-only
  csrrs t0, misa, zero              # fine
  csrrc t0, mvendorid, zero         # fine: rs1 = x0 does not write
  csrrwi t0, mimpid, 0              # writes: illegal

  # ---------------------------------------------------------------- B: S-mode CSR access
  csrw medeleg, zero
  li t0, 2
  csrs mideleg, t0                  # SSIP pending, enabled, delegated, SIE = 0: wfi returns
  csrs mie, t0
  csrs mip, t0
  IN_S(s_csr)
  li t0, 0x700000                   # TVM TW TSR
  csrs mstatus, t0
  IN_S(s_trapped)
  li t0, 0x700000
  csrc mstatus, t0
  li t0, 7
  csrw mcounteren, t0
  IN_S(s_counters)
  csrw scounteren, zero
  IN_U(u_counters)
  li t0, 5
  csrw scounteren, t0
  IN_U(u_counters)
  csrw mcounteren, zero
  csrw scounteren, zero

  # ---------------------------------------------------------------- C: U-mode, no delegation, then delegation to S
  IN_U(u_priv)
  li t0, (1 << 2) | (1 << 3) | (1 << 8)
  csrw medeleg, t0
  IN_U(u_priv)
  csrw medeleg, zero

  # ---------------------------------------------------------------- D: misaligned fetch
  la t0, 1f
  jalr t1, 2(t0)                    # M: traps, t1 untouched
1:
  nop
  la t0, 1f
  jalr t1, 1(t0)                    # bit 0 ignored: no trap
1:
  REC(0x401, t1, zero)
  li t0, 1
  csrw medeleg, t0
  IN_S(s_mafetch)
  IN_U(s_mafetch)
  csrw medeleg, zero

  # ---------------------------------------------------------------- E: Sv32
  # root: VA 0x80000000 (4 MiB) identity, RWX A D, not U; VA 0x40000000 -> pt0;
  # VA 0x40400000: a misaligned megapage.
  la s0, root
  la s1, pt0
  la s2, tpage
  srli t0, s1, 12
  slli t0, t0, 10
  ori t0, t0, 1
  li t1, 0x100 * 4
  add t1, t1, s0
  sw t0, 0(t1)
  li t0, (0x80000 << 10) | 0xcf
  li t1, 0x200 * 4
  add t1, t1, s0
  sw t0, 0(t1)
  li t0, (0x80001 << 10) | 0xcf     # ppn[0] != 0 in a megapage leaf
  li t1, 0x101 * 4
  add t1, t1, s0
  sw t0, 0(t1)
  srli s3, s2, 12
  slli s3, s3, 10                   # tpage's PPN in PTE position
  ori t0, s3, 0x07                  # 0: V R W, A = D = 0
  sw t0, 0(s1)
  ori t0, s3, 0x43                  # 1: V R A (no W)
  sw t0, 4(s1)
  ori t0, s3, 0xd7                  # 2: V R W U A D
  sw t0, 8(s1)
  ori t0, s3, 0x49                  # 3: V X A (execute-only)
  sw t0, 12(s1)
  ori t0, s3, 0x45                  # 4: V W A (W without R: reserved)
  sw t0, 16(s1)
  ori t0, s3, 0x06                  # 5: not valid
  sw t0, 20(s1)
  ori t0, s3, 0x03                  # 6: V R, A = 0 (load sets A)
  sw t0, 24(s1)
  li t0, 0x8a5a5a5a
  sw t0, 0(s2)
  srli t0, s0, 12
  li t1, 0x80000000
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  IN_S(s_vm)
  lw t0, 0(s1)
  lw t1, 24(s1)
  REC(0x5f0, t0, t1)                # A/D bits the walks set
  # the same with page faults delegated to S
  li t0, (1 << 12) | (1 << 13) | (1 << 15)
  csrw medeleg, t0
  ori t0, s3, 0x07
  sw t0, 0(s1)
  sfence.vma
  IN_S(s_vm)
  csrw medeleg, zero
  # MPRV from M with MPP = S
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x20800                    # MPRV, MPP = S
  csrs mstatus, t0
  li t2, 0x40000000
  lw t1, 0(t2)                      # translated
  REC(0x5e0, zero, t1)
  li t2, 0x40002000
  lw t1, 0(t2)                      # U page from S without SUM: fault (the handler's mret leaves MPP = U)
  csrr t3, mstatus
  li t0, 0x20000                    # MPRV off before the next store
  csrc mstatus, t0
  REC(0x5e1, zero, t3)
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x60800                    # MPP = S, SUM
  csrs mstatus, t0
  li t2, 0x40002000
  lw t1, 0(t2)                      # U page with SUM: fine
  REC(0x5e2, zero, t1)
  li t0, 0x60000                    # MPRV and SUM off (mret clearing MPRV: section H)
  csrc mstatus, t0

  # ---------------------------------------------------------------- G: fetch through Sv32
  # pt0[8]: uvm_page V R X U A; pt0[9]: uvm_page V R X (A = 0, not U); pt0[10]: invalid.
  # A fetch fault resumes at ra (see mtrap/strap).
  la s6, uvm_page
  srli t0, s6, 12
  slli t0, t0, 10
  ori t1, t0, 0x5b
  sw t1, 32(s1)
  ori t1, t0, 0x0b
  sw t1, 36(s1)
  sw zero, 40(s1)
  sfence.vma
  la s11, 9f
  li t0, 0x1800
  csrc mstatus, t0
  la t0, uvm_u
  sub t0, t0, s6
  li t1, 0x40008000
  add t0, t0, t1
  csrw mepc, t0
  mret                              # U at VA 0x40008000 + (uvm_u - uvm_page)
9:
  REC(0x601, s5, s7)
  lw t0, 32(s1)
  REC(0x602, t0, zero)
  la s11, 9f
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x800
  csrs mstatus, t0
  la t0, uvm_s
  sub t0, t0, s6
  li t1, 0x40009000
  add t0, t0, t1
  csrw mepc, t0
  mret                              # S at VA 0x40009000 + (uvm_s - uvm_page): sets A
9:
  REC(0x603, s5, zero)
  lw t0, 36(s1)
  REC(0x604, t0, zero)
  la s11, 9f
  la ra, s_back                     # where the fetch fault resumes
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x800
  csrs mstatus, t0
  li t0, 0x40008000
  csrw mepc, t0
  mret                              # S fetching a U page: fault 12
9:
  # the same faults delegated to S
  li t0, (1 << 12) | (1 << 13) | (1 << 15)
  csrw medeleg, t0
  la s11, 9f
  li t0, 0x1800
  csrc mstatus, t0
  la t0, uvm_u
  sub t0, t0, s6
  li t1, 0x40008000
  add t0, t0, t1
  csrw mepc, t0
  mret
9:
  REC(0x605, s5, s7)
  csrw medeleg, zero
  csrw satp, zero
  sfence.vma
  csrw mstatus, zero

  # ---------------------------------------------------------------- F: interrupts
  li t0, 2
  csrw mideleg, t0
  csrw mie, t0
  csrs mip, t0
  IN_S(s_sie)                       # S with SIE = 1: delegated SSI taken in S
  csrw mideleg, zero
  li t0, 2
  csrs mip, t0
  IN_S(s_nodeleg)                   # not delegated: taken in M from S although MIE = 0
  li t0, 2
  csrs mip, t0
  csrsi mstatus, 8                  # M with MIE: taken
  nop
  csrci mstatus, 8
  csrw mie, zero
  csrw mip, zero

  # ---------------------------------------------------------------- H: MRET to S clears MPRV (last:
  # QEMU 7.2 keeps MPRV, which would derail everything after it)
  li t0, 0x20000
  csrs mstatus, t0
  IN_S(s_back)
  csrr t1, mstatus
  REC(0x5e3, zero, t1)
  csrw mstatus, zero

  j dump

# ------------------------------------------------------------------ S and U code
s_csr:
  csrr t0, mstatus
  csrr t0, mscratch
  csrw mepc, t0
  csrr t0, misa
  csrr t0, mhartid
  csrr t0, 0x7a0                    # tselect: M-only
  csrr t1, sstatus
  REC(0x201, zero, t1)
  li t0, -1
  csrw sstatus, t0
  csrr t1, sstatus
  REC(0x202, t0, t1)
  csrw sstatus, zero
  csrr t1, sie
  REC(0x203, zero, t1)
  li t0, -1
  csrw sie, t0
  csrr t1, sie
  REC(0x204, t0, t1)
  csrr t1, sip
  REC(0x205, zero, t1)
  csrr x0, cycle                    # mcounteren = 0: illegal
  csrr x0, time
  csrr x0, instret
  csrr t1, satp
  REC(0x206, zero, t1)
  csrsi sip, 2                      # (the sstatus write above took the SSI in S; SIE is 0 again)
  wfi                               # TW = 0, an interrupt pending and enabled: returns
  la t0, 1f
  csrw sepc, t0
  li t0, 0x100                      # SPP = S
  csrs sstatus, t0
  sret
1:
  csrr t1, sstatus
  REC(0x207, zero, t1)
  mret                              # illegal in S
  ecall

s_trapped:
  sfence.vma
  csrr t0, satp
  csrw satp, zero
  wfi
  la t0, 1f
  csrw sepc, t0
  sret
1:
  ecall

s_counters:
  csrr x0, cycle
  csrr x0, time
  csrr x0, instret
  csrr x0, cycleh
  csrr x0, 0xc03                    # hpmcounter3: mcounteren bit 3 clear
  ecall

u_counters:
  csrr x0, cycle
  csrr x0, time
  csrr x0, instret
  csrr x0, instreth
  ecall

u_priv:
  csrr t0, sstatus
  csrr t0, sscratch
  csrr t0, mscratch
  sret
  mret
  wfi
  sfence.vma
  ebreak
  .word 0
  ecall

s_mafetch:
  la t0, 1f
  li t1, 0
  jalr t1, 2(t0)
1:
  nop
  REC(0x402, t1, zero)
  la t0, 1f
  jalr t1, -2(t0)
1:
  nop
  ecall

s_vm:
  li s4, 0x40000000
  lw t1, 0(s4)                      # page 0: sets A
  REC(0x501, zero, t1)
  li t0, 0x12345678
  sw t0, 4(s4)                      # page 0: sets D
  li s5, 0x40001000
  sw t0, 0(s5)                 # page 1: no W
  li s5, 0x40001000
  lw t1, 0(s5)
  REC(0x502, zero, t1)
  li s5, 0x40002000
  lw t1, 0(s5)                 # page 2: U, SUM = 0
  li t0, 0x40000
  csrs sstatus, t0
  li s5, 0x40002000
  lw t1, 0(s5)                 # SUM = 1
  REC(0x503, zero, t1)
  csrc sstatus, t0
  li s5, 0x40003000
  lw t1, 0(s5)                 # execute-only, MXR = 0
  li t0, 0x80000
  csrs sstatus, t0
  li s5, 0x40003000
  lw t1, 0(s5)                 # MXR = 1
  REC(0x504, zero, t1)
  csrc sstatus, t0
  li s5, 0x40004000
  lw t1, 0(s5)                 # W without R
  li s5, 0x40004000
  sw t1, 0(s5)
  li s5, 0x40005000
  lw t1, 0(s5)                 # invalid
  li s5, 0x40006000
  lw t1, 0(s5)                 # sets A
  li t0, 1
  amoadd.w t1, t0, 0(s4)            # AMO on page 0
  amoadd.w t1, t0, (s4)
  li s5, 0x40001000
  amoadd.w t1, t0, (s5)             # AMO on a read-only page: store fault
  lr.w t1, (s5)                     # LR on a read-only page: fine
  sc.w t1, t0, (s5)                 # SC: store fault
  li s5, 0x40400000
  lw t1, 0(s5)                      # misaligned megapage
  li s5, 0x40007000
  lw t1, 0(s5)                      # not mapped in pt0 (zero entry)
  ecall

s_back:
  ecall

s_sie:
  csrsi sstatus, 2
  nop
  csrci sstatus, 2
  ecall

s_nodeleg:
  nop
  ecall

# ------------------------------------------------------------------ handlers
  .align 4
mtrap:
  csrr x30, mcause
  sw x30, 0(tp)
  csrr x30, mepc
  sw x30, 4(tp)
  csrr x30, mtval
  sw x30, 8(tp)
  addi tp, tp, 12
  csrw mtval, zero
  csrr x30, mstatus
  li x31, MSTATUS_STD
  and x30, x30, x31
  li x31, 0x4d000000
  LOG(x31, x30, zero)
  csrr x30, mcause
  bltz x30, 3f
  li x31, 8
  beq x30, x31, 2f
  li x31, 9
  beq x30, x31, 2f
  li x31, 12
  beq x30, x31, 4f
  li x31, 1
  beq x30, x31, 4f
  csrr x30, mepc
  addi x30, x30, 4
  csrw mepc, x30
  mret
2: # an ecall from S or U: back to M at s11
  li x30, 0x1800
  csrs mstatus, x30
  csrw mepc, s11
  mret
3: # an interrupt: SSIP is the only source used; clear it
  csrci mip, 2
  mret
4: # a fetch fault: resume at ra
  csrw mepc, ra
  mret

  .align 4
strap:
  csrr x30, scause
  sw x30, 0(tp)
  csrr x30, sepc
  sw x30, 4(tp)
  csrr x30, stval
  sw x30, 8(tp)
  addi tp, tp, 12
  csrw stval, zero
  csrr x30, sstatus
  li x31, 0x000c0122
  and x30, x30, x31
  li x31, 0x53000000
  LOG(x31, x30, zero)
  csrr x30, scause
  bltz x30, 3f
  li x31, 8
  beq x30, x31, 2f
  li x31, 12
  beq x30, x31, 4f
  csrr x30, sepc
  addi x30, x30, 4
  csrw sepc, x30
  sret
2: # ecall from U: pass it up to M
  ecall
3:
  csrci sip, 2
  sret
4:
  csrw sepc, ra
  sret

# One page of code mapped at VA 0x40008000 (U) and 0x40009000 (S) by section G.
  .section .text.uvm, "ax", @progbits
  .align 12
uvm_page:
uvm_u:
  li s5, 0
  li s7, 0
  li s4, 0x40002000
  lw s5, 0(s4)                      # a U page from U: fine
  li s4, 0x40000000
  lw s7, 0(s4)                      # not U: load page fault
  li t0, 0x40009000
  jalr ra, 0(t0)                    # fetch from an X page without U: fault 12, resume here
  li t0, 0x4000a000
  jalr ra, 0(t0)                    # fetch from an invalid PTE: fault 12
  li t0, 0x40008006
  jalr ra, 0(t0)                    # misaligned: cause 0 on the jalr
  ecall
uvm_s:
  li s4, 0x40000000
  lw s5, 0(s4)
  li t0, 0x40008000
  jalr ra, 0(t0)                    # S fetching a U page: fault 12
  ecall

  .data
  .align 12
root:
  .space 4096
pt0:
  .space 4096
tpage:
  .space 4096

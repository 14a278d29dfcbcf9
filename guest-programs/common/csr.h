#ifndef GUEST_CSR_H
#define GUEST_CSR_H

#define MSTATUS_SIE   0x00000002
#define MSTATUS_MIE   0x00000008
#define MSTATUS_SPIE  0x00000020
#define MSTATUS_MPIE  0x00000080
#define MSTATUS_SPP   0x00000100
#define MSTATUS_MPP   0x00001800
#define MSTATUS_MPP_S 0x00000800
#define MSTATUS_MPRV  0x00020000
#define MSTATUS_SUM   0x00040000
#define MSTATUS_MXR   0x00080000

#define SATP_MODE_SV32 0x80000000

#define PTE_V 0x001
#define PTE_R 0x002
#define PTE_W 0x004
#define PTE_X 0x008
#define PTE_U 0x010
#define PTE_G 0x020
#define PTE_A 0x040
#define PTE_D 0x080

#define PMP_NAPOT_RWX 0x1f

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL_INSN     2
#define CAUSE_BREAKPOINT       3
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT  13
#define CAUSE_STORE_PAGE_FAULT 15

#ifndef __ASSEMBLER__
#define csr_read(csr) ({ unsigned long __v; __asm__ volatile ("csrr %0, " #csr : "=r"(__v) :: "memory"); __v; })
#define csr_write(csr, val) ({ __asm__ volatile ("csrw " #csr ", %0" :: "rK"(val) : "memory"); })
#define csr_set(csr, val) ({ __asm__ volatile ("csrs " #csr ", %0" :: "rK"(val) : "memory"); })
#define csr_clear(csr, val) ({ __asm__ volatile ("csrc " #csr ", %0" :: "rK"(val) : "memory"); })
#endif

#endif

#ifndef SGUEST_SBI_H
#define SGUEST_SBI_H
/* SBI calls for S-mode guests (RISC-V SBI specification v2.0) and a console on
 * top of them: DBCN when the firmware has it, the legacy putchar otherwise. */

#include <stddef.h>
#include <stdint.h>

#define SBI_EXT_LEGACY_SET_TIMER  0x00
#define SBI_EXT_LEGACY_PUTCHAR    0x01
#define SBI_EXT_LEGACY_GETCHAR    0x02
#define SBI_EXT_LEGACY_SHUTDOWN   0x08
#define SBI_EXT_BASE              0x10
#define SBI_EXT_TIME              0x54494D45
#define SBI_EXT_IPI               0x735049
#define SBI_EXT_RFENCE            0x52464E43
#define SBI_EXT_HSM               0x48534D
#define SBI_EXT_SRST              0x53525354
#define SBI_EXT_DBCN              0x4442434E

#define SBI_SUCCESS               0
#define SBI_ERR_FAILED           -1
#define SBI_ERR_NOT_SUPPORTED    -2
#define SBI_ERR_INVALID_PARAM    -3
#define SBI_ERR_ALREADY_AVAILABLE -6

#define SBI_SRST_SHUTDOWN         0
#define SBI_SRST_REASON_NONE      0
#define SBI_SRST_REASON_SYSFAIL   1

struct sbiret {
  long error;
  long value;
};

struct sbiret sbi_call(long eid, long fid, long a0, long a1, long a2);
long sbi_legacy_call(long eid, long a0, long a1);

long sbi_probe(long eid);
void sbi_set_timer(uint64_t stime);
void sbi_shutdown(uint32_t reason) __attribute__((noreturn));
void sbi_fail_stop(void) __attribute__((noreturn));

/* Console: detects DBCN once (console_init), falls back to legacy putchar. */
void console_init(void);
int console_has_dbcn(void);
void cputs(const char *s);
void cputc(int c);
void cput_hex(uint32_t v);
void cput_dec(uint32_t v);

static inline uint64_t rdtime64(void)
{
  uint32_t hi, lo, hi2;
  do {
    __asm__ volatile("rdtimeh %0" : "=r"(hi));
    __asm__ volatile("rdtime %0" : "=r"(lo));
    __asm__ volatile("rdtimeh %0" : "=r"(hi2));
  } while (hi != hi2);
  return ((uint64_t)hi << 32) | lo;
}

#define csr_read(csr) ({ unsigned long __v; __asm__ volatile ("csrr %0, " #csr : "=r"(__v) :: "memory"); __v; })
#define csr_write(csr, val) ({ __asm__ volatile ("csrw " #csr ", %0" :: "rK"(val) : "memory"); })
#define csr_set(csr, val) ({ __asm__ volatile ("csrs " #csr ", %0" :: "rK"(val) : "memory"); })
#define csr_clear(csr, val) ({ __asm__ volatile ("csrc " #csr ", %0" :: "rK"(val) : "memory"); })

#define SSTATUS_SIE 0x2
#define SIE_STIE    0x20
#define SIP_STIP    0x20
#define SCAUSE_INTERRUPT 0x80000000u
#define IRQ_S_TIMER 5

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

#endif

/* sguest-hostile-*: S-mode guests that misbehave on purpose, for the tests that
 * hold the VMM to "a guest problem is never a host problem" (issue: hostile
 * input and runaway guests). One source, one behaviour per variant:
 *
 *   FAULT_FOREVER  stvec points at the next instruction and satp at an empty
 *                  Sv32 root: every fetch page-faults, including the handler's,
 *                  so no instruction ever retires.
 *   FLOOD_DBCN     writes numbered lines to the SBI debug console forever.
 *   FLOOD_UART     the same through the 16550 UART's THR, byte by byte.
 */
#include "sbi.h"

#define UART_THR ((volatile uint8_t *)0x10000000)

#if defined(FLOOD_DBCN) || defined(FLOOD_UART)
static char line[32];

/* "flood 0000000123\n" into line[]; returns its length. */
static unsigned format_line(uint32_t n)
{
  static const char head[] = "flood ";
  unsigned len = 0;
  for (unsigned i = 0; head[i] != 0; i++)
    line[len++] = head[i];
  for (int d = 9; d >= 0; d--) {
    line[len + (unsigned)d] = (char)('0' + n % 10);
    n /= 10;
  }
  len += 10;
  line[len++] = '\n';
  return len;
}
#endif

#ifdef FAULT_FOREVER
/* An all-zero page: a root whose every entry is invalid. */
static uint32_t empty_root[1024] __attribute__((aligned(4096)));

static void fault_forever(void) __attribute__((noreturn));
static void fault_forever(void)
{
  uint32_t satp = 0x80000000u | ((uint32_t)(uintptr_t)empty_root >> 12);
  __asm__ volatile(
    "la t0, 1f\n"
    "csrw stvec, t0\n"
    "csrw satp, %0\n"
    "sfence.vma\n"
    "1: j 1b\n"
    :: "r"(satp) : "t0", "memory");
  __builtin_unreachable();
}
#endif

void s_trap(uint32_t scause, uint32_t sepc, uint32_t stval)
{
  (void)scause;
  (void)sepc;
  (void)stval;
  sbi_fail_stop();
}

void sguest_main(uint32_t hartid, uint32_t dtb)
{
  (void)hartid;
  (void)dtb;
  console_init();
#if defined(FAULT_FOREVER)
  cputs("sguest-hostile: faulting forever\n");
  fault_forever();
#elif defined(FLOOD_DBCN)
  for (uint32_t n = 0;; n++) {
    unsigned len = format_line(n);
    line[len] = 0;
    cputs(line);
  }
#elif defined(FLOOD_UART)
  for (uint32_t n = 0;; n++) {
    unsigned len = format_line(n);
    for (unsigned i = 0; i < len; i++)
      *UART_THR = (uint8_t)line[i];
  }
#else
#error "pick a variant: -DFAULT_FOREVER, -DFLOOD_DBCN or -DFLOOD_UART"
#endif
}

/* The SBI calls the sguest images make, implemented for QEMU virt: legacy
 * putchar/getchar/set_timer/shutdown, Base, TIME, HSM (one hart), SRST through
 * the sifive_test finisher. No DBCN, so the guests' fallback path runs here. */
#include <stdint.h>

#define UART ((volatile uint8_t *)0x10000000)
#define FINISHER ((volatile uint32_t *)0x00100000)
#define MTIMECMP ((volatile uint32_t *)0x02004000)
#define MIP_STIP 0x20
#define MIE_MTIE 0x80

#define csrr(c) ({ uint32_t v; __asm__ volatile("csrr %0, " #c : "=r"(v)); v; })
#define csrw(c, v) __asm__ volatile("csrw " #c ", %0" :: "r"(v))
#define csrs(c, v) __asm__ volatile("csrs " #c ", %0" :: "r"(v))
#define csrc(c, v) __asm__ volatile("csrc " #c ", %0" :: "r"(v))

static void putc_uart(int c)
{
  while ((UART[5] & 0x20) == 0)
    ;
  UART[0] = (uint8_t)c;
}

static void set_timer(uint32_t lo, uint32_t hi)
{
  MTIMECMP[1] = 0xffffffffu;
  MTIMECMP[0] = lo;
  MTIMECMP[1] = hi;
  csrc(mip, MIP_STIP);
  csrs(mie, MIE_MTIE);
}

static void __attribute__((noreturn)) finish(uint32_t reason)
{
  *FINISHER = reason == 0 ? 0x5555 : ((reason & 0xffff) << 16) | 0x3333;
  for (;;)
    ;
}

static int probe(uint32_t eid)
{
  return eid == 0x00 || eid == 0x01 || eid == 0x02 || eid == 0x08 || eid == 0x10 ||
         eid == 0x54494D45 || eid == 0x48534D || eid == 0x53525354;
}

void m_trap(uint32_t *x)
{
  uint32_t cause = csrr(mcause);
  if (cause == 0x80000007u) { /* machine timer: hand it to S as STIP */
    csrc(mie, MIE_MTIE);
    csrs(mip, MIP_STIP);
    return;
  }
  if (cause != 9) { /* nothing else should reach M */
    finish(0xdead);
  }
  uint32_t eid = x[17], fid = x[16], a0 = x[10], a1 = x[11];
  int32_t err = 0, val = 0;
  csrw(mepc, csrr(mepc) + 4);
  switch (eid) {
  case 0x00: set_timer(a0, a1); x[10] = 0; return;
  case 0x01: putc_uart((int)a0); x[10] = 0; return;
  case 0x02: x[10] = (UART[5] & 1) ? UART[0] : (uint32_t)-1; return;
  case 0x08: finish(0);
  case 0x10:
    switch (fid) {
    case 0: val = 0x02000000; break;
    case 1: val = 0x7777; break; /* not a registered implementation */
    case 2: val = 1; break;
    case 3: val = probe(a0); break;
    case 4: case 5: case 6: val = 0; break;
    default: err = -2;
    }
    break;
  case 0x54494D45:
    if (fid == 0) set_timer(a0, a1); else err = -2;
    break;
  case 0x48534D:
    if (fid == 0) err = a0 == 0 ? -6 : -3;
    else if (fid == 2) { if (a0 == 0) val = 0; else err = -3; }
    else if (fid == 3 && a0 == 0) {
      /* Default retentive suspend: wait for any interrupt S could see; a
       * machine timer becomes STIP as in the trap path. */
      while ((csrr(mip) & (MIP_STIP | 0x80 | 0x2 | 0x200)) == 0)
        __asm__ volatile("wfi");
      if (csrr(mip) & 0x80) {
        csrc(mie, MIE_MTIE);
        csrs(mip, MIP_STIP);
      }
    }
    else if (fid == 3) err = 0x80000000u == a0 ? -2 : -3;
    else err = -2;
    break;
  case 0x53525354:
    if (fid == 0 && a0 <= 2 && a1 <= 1) finish(a1);
    err = fid == 0 ? -3 : -2;
    break;
  default:
    err = -2;
  }
  x[10] = (uint32_t)err;
  x[11] = (uint32_t)val;
}

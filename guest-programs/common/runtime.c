#include "runtime.h"
#include "csr.h"

/* The HTIF words, 64 bytes apart as riscv-tests lay them out. */
volatile uint64_t tohost __attribute__((section(".tohost"), aligned(64)));
volatile uint64_t fromhost __attribute__((section(".tohost"), aligned(64)));

#ifdef PAGING
const int rt_paging = 1;
#else
const int rt_paging = 0;
#endif

/* Stores low word first, then the high word that completes the command (as
 * riscv-tests do, and as QEMU requires). */
static void htif_send(uint32_t hi, uint32_t lo)
{
  volatile uint32_t *t = (volatile uint32_t *)&tohost;
  while (t[0] != 0 || t[1] != 0)
    ;
  t[0] = lo;
  t[1] = hi;
  /* Spike answers asynchronously; wait for the host to take the command. */
  while (t[0] != 0 || t[1] != 0)
    ;
  volatile uint32_t *f = (volatile uint32_t *)&fromhost;
  f[0] = 0;
  f[1] = 0;
}

void rt_putchar(int c)
{
  htif_send(0x01010000u, (uint8_t)c);
}

void rt_uart_putchar(int c)
{
  volatile uint8_t *uart = (volatile uint8_t *)UART0_BASE;
  while ((uart[5] & 0x20) == 0) /* LSR.THRE */
    ;
  uart[0] = (uint8_t)c;
}

void rt_puts(const char *s)
{
  while (*s)
    rt_putchar(*s++);
}

void rt_uart_puts(const char *s)
{
  while (*s)
    rt_uart_putchar(*s++);
}

void rt_print_hex(uint32_t v)
{
  rt_puts("0x");
  for (int i = 28; i >= 0; i -= 4)
    rt_putchar("0123456789abcdef"[(v >> i) & 15]);
}

void rt_print_udec(uint32_t v)
{
  char buf[11];
  int n = 0;
  do {
    buf[n++] = '0' + v % 10;
    v /= 10;
  } while (v);
  while (n)
    rt_putchar(buf[--n]);
}

void rt_print_dec(int32_t v)
{
  if (v < 0) {
    rt_putchar('-');
    rt_print_udec(-(uint32_t)v);
  } else {
    rt_print_udec((uint32_t)v);
  }
}

void rt_exit(int code)
{
  volatile uint32_t *t = (volatile uint32_t *)&tohost;
  __asm__ volatile ("fence" ::: "memory");
  for (;;) {
    t[0] = ((uint32_t)code << 1) | 1;
    t[1] = 0;
  }
}

void rt_unexpected_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval)
{
  rt_puts("\nunexpected trap: mcause=");
  rt_print_hex(mcause);
  rt_puts(" mepc=");
  rt_print_hex(mepc);
  rt_puts(" mtval=");
  rt_print_hex(mtval);
  rt_putchar('\n');
  rt_exit(255);
}

#ifdef PAGING
/* Identity-maps 128 MiB of RAM and the UART with 4 MiB megapages (A and D
 * preset: the benchmarks measure translation, not A/D updates). */
static uint32_t rt_root_pt[1024] __attribute__((aligned(4096)));

static void __attribute__((noreturn)) rt_supervisor_entry(void)
{
  rt_exit(main());
}

static void __attribute__((noreturn)) rt_enter_supervisor_sv32(void)
{
  const uint32_t leaf = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;
  for (uint32_t i = 0; i < 32; i++) {
    uint32_t pa = 0x80000000u + (i << 22);
    rt_root_pt[pa >> 22] = ((pa >> 12) << 10) | leaf;
  }
  rt_root_pt[UART0_BASE >> 22] = ((UART0_BASE >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;

  /* cycle, time and instret readable from S-mode (rdcycle in CoreMark). */
  csr_write(mcounteren, 7);
  csr_write(satp, SATP_MODE_SV32 | ((uint32_t)rt_root_pt >> 12));
  __asm__ volatile ("sfence.vma" ::: "memory");
  csr_clear(mstatus, MSTATUS_MPP);
  csr_set(mstatus, MSTATUS_MPP_S);
  csr_write(mepc, (uint32_t)rt_supervisor_entry);
  __asm__ volatile ("mret");
  __builtin_unreachable();
}
#endif

void __attribute__((noreturn)) rt_start(void)
{
#ifdef PAGING
  rt_enter_supervisor_sv32();
#else
  rt_exit(main());
#endif
}

/* GCC may call these even in freestanding mode (struct copies, loops it
 * recognises); -fno-tree-loop-distribute-patterns keeps them from calling
 * themselves. */
void *memcpy(void *dst, const void *src, size_t n)
{
  uint8_t *d = dst;
  const uint8_t *s = src;
  if ((((uintptr_t)d | (uintptr_t)s) & 3) == 0) {
    for (; n >= 4; n -= 4, d += 4, s += 4)
      *(uint32_t *)d = *(const uint32_t *)s;
  }
  while (n--)
    *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d <= s || d >= s + n)
    return memcpy(dst, src, n);
  while (n--)
    d[n] = s[n];
  return dst;
}

void *memset(void *dst, int c, size_t n)
{
  uint8_t *d = dst;
  while (n--)
    *d++ = (uint8_t)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
  const uint8_t *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y)
      return *x - *y;
  return 0;
}

size_t strlen(const char *s)
{
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

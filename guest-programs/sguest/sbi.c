#include "sbi.h"

struct sbiret sbi_call(long eid, long fid, long a0, long a1, long a2)
{
  register long r_a0 __asm__("a0") = a0;
  register long r_a1 __asm__("a1") = a1;
  register long r_a2 __asm__("a2") = a2;
  register long r_a6 __asm__("a6") = fid;
  register long r_a7 __asm__("a7") = eid;
  __asm__ volatile("ecall"
                   : "+r"(r_a0), "+r"(r_a1)
                   : "r"(r_a2), "r"(r_a6), "r"(r_a7)
                   : "memory");
  struct sbiret r = { r_a0, r_a1 };
  return r;
}

long sbi_legacy_call(long eid, long a0, long a1)
{
  register long r_a0 __asm__("a0") = a0;
  register long r_a1 __asm__("a1") = a1;
  register long r_a7 __asm__("a7") = eid;
  __asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a7) : "memory");
  return r_a0;
}

long sbi_probe(long eid)
{
  struct sbiret r = sbi_call(SBI_EXT_BASE, 3, eid, 0, 0);
  return r.error ? 0 : r.value;
}

static int have_time_ext;

void sbi_set_timer(uint64_t stime)
{
  if (have_time_ext)
    sbi_call(SBI_EXT_TIME, 0, (long)(uint32_t)stime, (long)(uint32_t)(stime >> 32), 0);
  else
    sbi_legacy_call(SBI_EXT_LEGACY_SET_TIMER, (long)(uint32_t)stime, (long)(uint32_t)(stime >> 32));
}

void sbi_shutdown(uint32_t reason)
{
  sbi_call(SBI_EXT_SRST, 0, SBI_SRST_SHUTDOWN, (long)reason, 0);
  /* No SRST: the legacy shutdown cannot carry a reason, but still stops. */
  sbi_legacy_call(SBI_EXT_LEGACY_SHUTDOWN, 0, 0);
  for (;;)
    __asm__ volatile("wfi");
}

void sbi_fail_stop(void)
{
  sbi_shutdown(SBI_SRST_REASON_SYSFAIL);
}

static int have_dbcn;

void console_init(void)
{
  have_dbcn = sbi_probe(SBI_EXT_DBCN) != 0;
  have_time_ext = sbi_probe(SBI_EXT_TIME) != 0;
}

int console_has_dbcn(void)
{
  return have_dbcn;
}

/* DBCN takes a physical address: every caller runs with the MMU off or with the
 * kernel identity-mapped, so a pointer to kernel data is its physical address. */
static void dbcn_write(const char *s, unsigned n)
{
  while (n > 0) {
    struct sbiret r = sbi_call(SBI_EXT_DBCN, 0, (long)n, (long)(uintptr_t)s, 0);
    if (r.error != SBI_SUCCESS || r.value <= 0)
      return;
    s += r.value;
    n -= (unsigned)r.value;
  }
}

void cputc(int c)
{
  if (have_dbcn)
    sbi_call(SBI_EXT_DBCN, 2, c & 0xff, 0, 0);
  else
    sbi_legacy_call(SBI_EXT_LEGACY_PUTCHAR, c & 0xff, 0);
}

void cputs(const char *s)
{
  unsigned n = 0;
  while (s[n])
    n++;
  if (have_dbcn) {
    dbcn_write(s, n);
    return;
  }
  while (*s)
    cputc(*s++);
}

void cput_hex(uint32_t v)
{
  char buf[11];
  buf[0] = '0';
  buf[1] = 'x';
  for (int i = 0; i < 8; i++)
    buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
  buf[10] = 0;
  cputs(buf);
}

void cput_dec(uint32_t v)
{
  char buf[11];
  int i = 10;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  cputs(&buf[i]);
}

void *memset(void *dst, int c, size_t n)
{
  unsigned char *d = dst;
  while (n--)
    *d++ = (unsigned char)c;
  return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--)
    *d++ = *s++;
  return dst;
}

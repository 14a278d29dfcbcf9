/* Memory bandwidth: copy 1 MiB and checksum the copy, repeatedly. 512 pages
 * per pass: with -sv32 every access goes through the data TLB and the walk
 * reaches megapages. */
#include "runtime.h"
#include "csr.h"

#define WORDS (1u << 18) /* 1 MiB of uint32_t */
#define REPS 32
#define EXPECTED 0x6e1981e6u

static uint32_t src[WORDS];
static uint32_t dst[WORDS];

static void copy_words(uint32_t *restrict d, const uint32_t *restrict s, uint32_t n)
{
  for (uint32_t i = 0; i < n; i += 4) {
    uint32_t w0 = s[i], w1 = s[i + 1], w2 = s[i + 2], w3 = s[i + 3];
    d[i] = w0;
    d[i + 1] = w1;
    d[i + 2] = w2;
    d[i + 3] = w3;
  }
}

static uint32_t checksum(const uint32_t *p, uint32_t n)
{
  uint32_t sum = 0;
  for (uint32_t i = 0; i < n; i++)
    sum = ((sum << 1) | (sum >> 31)) ^ p[i];
  return sum;
}

int main(void)
{
  uint32_t x = 12345;
  for (uint32_t i = 0; i < WORDS; i++) {
    x = x * 1664525u + 1013904223u;
    src[i] = x;
  }
  uint32_t total = 0;
  for (uint32_t r = 0; r < REPS; r++) {
    copy_words(dst, src, WORDS);
    uint32_t sum = checksum(dst, WORDS);
    total = total * 31 + sum;
    /* The next pass must not be the same work. */
    src[(r * 40503u) & (WORDS - 1)] ^= sum;
  }

  rt_puts("bench-mem: ");
  rt_print_udec(REPS);
  rt_puts(" x 1 MiB copy+checksum, checksum ");
  rt_print_hex(total);
  if (rt_paging) {
    rt_puts(", S-mode satp=");
    rt_print_hex((uint32_t)csr_read(satp));
  }
  rt_putchar('\n');
  return total == EXPECTED ? 0 : 1;
}

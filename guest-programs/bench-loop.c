/* Tight ALU and branch loop: the interpreter's dispatch cost with no memory
 * traffic. The -sv32 variant runs the same loop in S-mode under Sv32, where
 * only instruction fetch goes through translation. */
#include "runtime.h"
#include "csr.h"

#define ITERS 12000000u
#define EXPECTED 0xad527801u

int main(void)
{
  uint32_t a = 1, b = 0, n = ITERS;
  __asm__ volatile(
      "1:\n\t"
      "add   %0, %0, %2\n\t"
      "xor   %1, %1, %0\n\t"
      "slli  t0, %0, 3\n\t"
      "sub   %1, %1, t0\n\t"
      "andi  t1, %1, 4\n\t"
      "beqz  t1, 2f\n\t"
      "addi  %0, %0, 7\n"
      "2:\n\t"
      "addi  %2, %2, -1\n\t"
      "bnez  %2, 1b\n\t"
      : "+r"(a), "+r"(b), "+r"(n)
      :
      : "t0", "t1");
  uint32_t sum = a ^ b;

  rt_puts("bench-loop: ");
  rt_print_udec(ITERS);
  rt_puts(" iterations, checksum ");
  rt_print_hex(sum);
  if (rt_paging) {
    rt_puts(", S-mode satp=");
    rt_print_hex((uint32_t)csr_read(satp));
  }
  rt_putchar('\n');
  return sum == EXPECTED ? 0 : 1;
}

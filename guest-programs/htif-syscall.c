/* The riscv-tests benchmark convention: console output and exit through the
 * HTIF syscall proxy (tohost = address of magic_mem). */
#include "runtime.h"

extern volatile uint64_t tohost, fromhost;
static volatile uint64_t magic_mem[8] __attribute__((aligned(64)));

static uint32_t syscall3(uint32_t which, uint32_t a0, uint32_t a1, uint32_t a2)
{
  magic_mem[0] = which;
  magic_mem[1] = a0;
  magic_mem[2] = a1;
  magic_mem[3] = a2;
  __asm__ volatile("fence" ::: "memory");
  volatile uint32_t *t = (volatile uint32_t *)&tohost;
  t[0] = (uint32_t)(uintptr_t)magic_mem;
  t[1] = 0;
  while (fromhost == 0)
    ;
  fromhost = 0;
  __asm__ volatile("fence" ::: "memory");
  return (uint32_t)magic_mem[0];
}

int main(void)
{
  static const char msg[] = "hello through the syscall proxy\n";
  uint32_t n = syscall3(64, 1, (uint32_t)(uintptr_t)msg, sizeof msg - 1);
  if (n != sizeof msg - 1)
    return 3;
  syscall3(93, 0, 0, 0);
  return 4; /* not reached */
}

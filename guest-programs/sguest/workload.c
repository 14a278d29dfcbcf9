/* sguest-workload: two Sv32 address spaces (ASID 1 and ASID 2) that map the same
 * physical data region at different virtual addresses (0x40000000 and
 * 0x60000000; both identity-map the kernel), and a memory workload over that
 * region, meant to be larger than the host RAM behind the guest:
 *   1. write pattern A over the region through AS1
 *   2. switch to AS2 (satp write only: the ASIDs differ), verify A and checksum
 *   3. rewrite the region with pattern B through AS2
 *   4. switch back to AS1, verify B and checksum
 * Success or the first bad address goes to the SBI console; SRST exits with
 * reason "no reason" (status 0) or "system failure" (status 1).
 *
 * DATA_MIB sets the region size (default 12); the region starts at the first
 * page after the image, so the guest needs image base + image + DATA_MIB of RAM. */
#include "sbi.h"

#ifndef DATA_MIB
#define DATA_MIB 12
#endif

#define DATA_BYTES ((uint32_t)DATA_MIB << 20)
#define DATA_PAGES (DATA_BYTES >> 12)
#define DATA_WORDS (DATA_BYTES >> 2)
#define L0_TABLES ((DATA_PAGES + 1023) / 1024)

#define VA_AS1 0x40000000u
#define VA_AS2 0x60000000u
#define ASID1 1u
#define ASID2 2u

#define PTE_V 0x001u
#define PTE_R 0x002u
#define PTE_W 0x004u
#define PTE_X 0x008u
#define PTE_A 0x040u
#define PTE_D 0x080u
#define SATP_SV32 0x80000000u

extern char __image_start[], _end[];

/* A and D preset: hardware A/D updating is optional (Svade vs Svadu), and the
 * workload is about the host swapping the data, not about guest dirty tracking. */
static uint32_t root1[1024] __attribute__((aligned(4096)));
static uint32_t root2[1024] __attribute__((aligned(4096)));
static uint32_t l0_as1[L0_TABLES][1024] __attribute__((aligned(4096)));
static uint32_t l0_as2[L0_TABLES][1024] __attribute__((aligned(4096)));

static inline uint32_t pattern_a(uint32_t i) { return i * 0x9E3779B1u + 0x12345678u; }
static inline uint32_t pattern_b(uint32_t i) { return ~(i * 0x85EBCA6Bu) ^ 0xA5A5A5A5u; }
static inline uint32_t mix(uint32_t sum, uint32_t v) { return (sum << 5) + (sum >> 27) + v; }

void s_trap(uint32_t scause, uint32_t sepc, uint32_t stval)
{
  cputs("sguest-workload: unexpected trap scause=");
  cput_hex(scause);
  cputs(" sepc=");
  cput_hex(sepc);
  cputs(" stval=");
  cput_hex(stval);
  cputs("\n");
  sbi_fail_stop();
}

static void map_kernel(uint32_t *root)
{
  /* Identity megapages over the image: code, tables, stack and the strings DBCN
   * reads by physical address keep the same address with paging on. */
  uint32_t first = (uint32_t)(uintptr_t)__image_start >> 22;
  uint32_t last = ((uint32_t)(uintptr_t)_end - 1) >> 22;
  for (uint32_t mp = first; mp <= last; mp++)
    root[mp] = ((mp << 22) >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;
}

static void map_data(uint32_t *root, uint32_t (*l0)[1024], uint32_t va, uint32_t pa)
{
  for (uint32_t t = 0; t < L0_TABLES; t++)
    root[(va >> 22) + t] = (((uint32_t)(uintptr_t)l0[t] >> 12) << 10) | PTE_V;
  for (uint32_t p = 0; p < DATA_PAGES; p++)
    l0[p >> 10][p & 1023] = (((pa >> 12) + p) << 10) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;
}

static void use_as(uint32_t asid, uint32_t *root)
{
  csr_write(satp, SATP_SV32 | (asid << 22) | ((uint32_t)(uintptr_t)root >> 12));
}

static void report_bad(const char *pass, uint32_t va, uint32_t pa, uint32_t got, uint32_t want)
{
  cputs("sguest-workload: FAIL in ");
  cputs(pass);
  cputs(" at va ");
  cput_hex(va);
  cputs(" (pa ");
  cput_hex(pa);
  cputs("): read ");
  cput_hex(got);
  cputs(", expected ");
  cput_hex(want);
  cputs("\n");
  sbi_fail_stop();
}

static uint32_t verify(const char *pass, uint32_t va, uint32_t pa, int b)
{
  volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)va;
  uint32_t sum = 0;
  for (uint32_t i = 0; i < DATA_WORDS; i++) {
    uint32_t want = b ? pattern_b(i) : pattern_a(i);
    uint32_t got = p[i];
    if (got != want)
      report_bad(pass, va + 4 * i, pa + 4 * i, got, want);
    sum = mix(sum, got);
  }
  return sum;
}

static uint32_t fill(uint32_t va, int b)
{
  volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)va;
  uint32_t sum = 0;
  for (uint32_t i = 0; i < DATA_WORDS; i++) {
    uint32_t v = b ? pattern_b(i) : pattern_a(i);
    p[i] = v;
    sum = mix(sum, v);
  }
  return sum;
}

static void put_pass(const char *what, uint32_t sum)
{
  cputs(what);
  cputs(" checksum ");
  cput_hex(sum);
  cputs("\n");
}

void sguest_main(uint32_t hartid, uint32_t dtb)
{
  (void)hartid;
  (void)dtb;
  console_init();
  uint32_t pa = (uint32_t)(uintptr_t)_end;
  cputs("sguest-workload: ");
  cput_dec(DATA_MIB);
  cputs(" MiB at pa ");
  cput_hex(pa);
  cputs(", AS1 asid 1 @ ");
  cput_hex(VA_AS1);
  cputs(", AS2 asid 2 @ ");
  cput_hex(VA_AS2);
  cputs("\n");

  map_kernel(root1);
  map_kernel(root2);
  map_data(root1, l0_as1, VA_AS1, pa);
  map_data(root2, l0_as2, VA_AS2, pa);
  /* Tables written with the MMU off; fence once before the first walk. */
  __asm__ volatile("sfence.vma" ::: "memory");

  use_as(ASID1, root1);
  uint32_t sum_a = fill(VA_AS1, 0);
  put_pass("1. write A via AS1:", sum_a);

  use_as(ASID2, root2);
  uint32_t got_a = verify("2. verify A via AS2", VA_AS2, pa, 0);
  put_pass("2. read A via AS2: ", got_a);

  uint32_t sum_b = fill(VA_AS2, 1);
  put_pass("3. write B via AS2:", sum_b);

  use_as(ASID1, root1);
  uint32_t got_b = verify("4. verify B via AS1", VA_AS1, pa, 1);
  put_pass("4. read B via AS1: ", got_b);

  csr_write(satp, 0);
  __asm__ volatile("sfence.vma" ::: "memory");
  if (got_a != sum_a || got_b != sum_b) {
    cputs("sguest-workload: FAIL: checksum mismatch\n");
    sbi_fail_stop();
  }
  cputs("sguest-workload: OK\n");
  sbi_shutdown(SBI_SRST_REASON_NONE);
}

/* sguest-balloon: a small virtio-balloon driver of our own (virtio-mmio v2 at
 * 0x10001000, PLIC source 1), so the device can be tested without the kernel.
 * MMU off. Over DATA_PAGES pages of data, ROUNDS times:
 *   1. write the round's pattern over every page
 *   2. inflate the odd pages (PFNs on inflateq, 64 per buffer; the device
 *      returns them with madvise(DONTNEED), so the host frees them)
 *   3. verify every even page still holds the pattern (nothing lost while
 *      the host swapped and discarded around it)
 *   4. deflate the odd pages and verify they read as zeros: the host gave
 *      them back empty, and no mapping still showed the old frame
 * Each buffer is waited for with wfi on the PLIC's interrupt (SEIP): the trap
 * handler claims source 1, acks the device's InterruptStatus and completes.
 * Prints "sguest-balloon: OK ..." and shuts down with reason 0, or the first
 * bad page and reason 1 (system failure). */
#include "sbi.h"

#ifndef DATA_PAGES
#define DATA_PAGES 256
#endif
#ifndef ROUNDS
#define ROUNDS 3
#endif

#define VIRTIO 0x10001000u
#define PLIC 0x0c000000u
#define IRQ_BALLOON 1
#define QSIZE 8
#define BATCH 64

#define R(off) (*(volatile uint32_t *)(uintptr_t)(VIRTIO + (off)))
#define PLIC_REG(off) (*(volatile uint32_t *)(uintptr_t)(PLIC + (off)))

#define SIE_SEIE 0x200
#define IRQ_S_EXT 9

struct desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct vq {
  struct desc desc[QSIZE];
  struct { uint16_t flags, idx, ring[QSIZE], used_event; } avail;
  struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; uint16_t avail_event; } used __attribute__((aligned(4)));
  uint16_t seen;
};

static struct vq queues[2] __attribute__((aligned(4096)));
static uint32_t pfns[BATCH];
static uint8_t data[DATA_PAGES][4096] __attribute__((aligned(4096)));
static volatile uint32_t irqs;

void s_trap(uint32_t scause, uint32_t sepc, uint32_t stval)
{
  if (scause == (SCAUSE_INTERRUPT | IRQ_S_EXT)) {
    uint32_t id = PLIC_REG(0x200004);
    if (id == IRQ_BALLOON) {
      R(0x064) = R(0x060); /* InterruptACK = InterruptStatus */
      irqs++;
    }
    if (id)
      PLIC_REG(0x200004) = id;
    return;
  }
  cputs("sguest-balloon: unexpected trap scause=");
  cput_hex(scause);
  cputs(" sepc=");
  cput_hex(sepc);
  cputs(" stval=");
  cput_hex(stval);
  cputs("\n");
  sbi_fail_stop();
}

static void fail(const char *what, uint32_t page, uint32_t got)
{
  cputs("sguest-balloon: FAIL ");
  cputs(what);
  cputs(" page ");
  cput_dec(page);
  cputs(" word ");
  cput_hex(got);
  cputs("\n");
  sbi_shutdown(SBI_SRST_REASON_SYSFAIL);
}

static uint32_t pattern(uint32_t page, uint32_t word, uint32_t round)
{
  return (page * 0x9E3779B1u) ^ (word * 0x85EBCA6Bu) ^ (round * 0xC2B2AE35u) ^ 0x5a5a5a5au;
}

static void setup_queue(uint32_t i)
{
  struct vq *q = &queues[i];
  R(0x030) = i; /* QueueSel */
  if (R(0x034) < QSIZE)
    fail("QueueNumMax too small for queue", i, R(0x034));
  R(0x038) = QSIZE;
  R(0x080) = (uint32_t)(uintptr_t)q->desc;
  R(0x084) = 0;
  R(0x090) = (uint32_t)(uintptr_t)&q->avail;
  R(0x094) = 0;
  R(0x0a0) = (uint32_t)(uintptr_t)&q->used;
  R(0x0a4) = 0;
  R(0x044) = 1; /* QueueReady */
}

static void probe(void)
{
  if (R(0x000) != 0x74726976 || R(0x004) != 2 || R(0x008) != 5)
    fail("no virtio-balloon at 0x10001000, device id", 0, R(0x008));
  R(0x070) = 0;
  R(0x070) = 1;     /* ACKNOWLEDGE */
  R(0x070) = 1 | 2; /* DRIVER */
  R(0x014) = 1;
  if (!(R(0x010) & 1))
    fail("no VIRTIO_F_VERSION_1", 0, R(0x010));
  /* Only VERSION_1 (and MUST_TELL_HOST, which we honour: we wait for every buffer). */
  R(0x024) = 0;
  R(0x020) = 1;
  R(0x024) = 1;
  R(0x020) = 1;
  R(0x070) = 1 | 2 | 8; /* FEATURES_OK */
  if (!(R(0x070) & 8))
    fail("device refused our features, status", 0, R(0x070));
  setup_queue(0);
  setup_queue(1);
  /* PLIC: source 1 at priority 1, enabled for our context, threshold 0. */
  PLIC_REG(4 * IRQ_BALLOON) = 1;
  PLIC_REG(0x2000) = 1u << IRQ_BALLOON;
  PLIC_REG(0x200000) = 0;
  csr_set(sie, SIE_SEIE);
  R(0x070) = 1 | 2 | 8 | 4; /* DRIVER_OK */
}

/* One buffer of n PFNs on queue i; waits (wfi) until the device returns it. */
static void send(uint32_t i, uint32_t n)
{
  struct vq *q = &queues[i];
  uint16_t slot = q->avail.idx % QSIZE;
  q->desc[slot].addr = (uint32_t)(uintptr_t)pfns;
  q->desc[slot].len = 4 * n;
  q->desc[slot].flags = 0;
  q->desc[slot].next = 0;
  q->avail.ring[slot] = slot;
  __asm__ volatile("fence rw, rw" ::: "memory");
  q->avail.idx++;
  __asm__ volatile("fence rw, rw" ::: "memory");
  R(0x050) = i; /* QueueNotify */
  csr_set(sstatus, SSTATUS_SIE);
  while (*(volatile uint16_t *)&q->used.idx == q->seen)
    __asm__ volatile("wfi");
  csr_clear(sstatus, SSTATUS_SIE);
  q->seen++;
}

/* Inflate (queue 0) or deflate (queue 1) every odd page of data. */
static uint32_t move_odd_pages(uint32_t queue)
{
  uint32_t n = 0, sent = 0;
  for (uint32_t p = 1; p < DATA_PAGES; p += 2) {
    pfns[n++] = (uint32_t)(uintptr_t)data[p] >> 12;
    if (n == BATCH || p + 2 >= DATA_PAGES) {
      send(queue, n);
      sent += n;
      n = 0;
    }
  }
  return sent;
}

void sguest_main(uint32_t hartid, uint32_t dtb)
{
  (void)hartid;
  (void)dtb;
  console_init();
  probe();
  uint32_t given = 0;
  for (uint32_t round = 1; round <= ROUNDS; round++) {
    for (uint32_t p = 0; p < DATA_PAGES; p++) {
      volatile uint32_t *w = (volatile uint32_t *)data[p];
      for (uint32_t i = 0; i < 1024; i++)
        w[i] = pattern(p, i, round);
    }
    given += move_odd_pages(0);
    R(0x100 + 4) = DATA_PAGES / 2; /* actual */
    for (uint32_t p = 0; p < DATA_PAGES; p += 2) {
      volatile uint32_t *w = (volatile uint32_t *)data[p];
      for (uint32_t i = 0; i < 1024; i++)
        if (w[i] != pattern(p, i, round))
          fail("kept page lost its data:", p, w[i]);
    }
    move_odd_pages(1);
    R(0x100 + 4) = 0;
    for (uint32_t p = 1; p < DATA_PAGES; p += 2) {
      volatile uint32_t *w = (volatile uint32_t *)data[p];
      for (uint32_t i = 0; i < 1024; i++)
        if (w[i] != 0)
          fail("a page given back still shows its old data:", p, w[i]);
    }
  }
  cputs("sguest-balloon: OK, ");
  cput_dec(ROUNDS);
  cputs(" rounds, ");
  cput_dec(given);
  cputs(" pages given back, ");
  cput_dec(irqs);
  cputs(" interrupts\n");
  sbi_shutdown(SBI_SRST_REASON_NONE);
}

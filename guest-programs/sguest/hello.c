/* sguest-hello: the smallest S-mode guest that exercises the SBI the VMM plays:
 * console (DBCN or legacy, and one legacy getchar), Base queries and probes, HSM
 * on the boot hart, the timer (an S-mode timer interrupt taken through stvec, then
 * a retentive hart_suspend that the timer ends) and SRST to exit 0. */
#include "sbi.h"

#define TIMER_DELTA 10000u

static volatile uint32_t timer_irqs;

void s_trap(uint32_t scause, uint32_t sepc, uint32_t stval)
{
  if (scause == (SCAUSE_INTERRUPT | IRQ_S_TIMER)) {
    timer_irqs++;
    /* Clears STIP: without it the interrupt would be taken again on sret. */
    sbi_set_timer(~(uint64_t)0);
    return;
  }
  cputs("sguest-hello: unexpected trap scause=");
  cput_hex(scause);
  cputs(" sepc=");
  cput_hex(sepc);
  cputs(" stval=");
  cput_hex(stval);
  cputs("\n");
  sbi_fail_stop();
}

static void put_probe(const char *name, long eid)
{
  cputs(" ");
  cputs(name);
  cputs("=");
  cput_dec((uint32_t)sbi_probe(eid));
}

void sguest_main(uint32_t hartid, uint32_t dtb)
{
  (void)dtb;
  console_init();
  cputs("sguest-hello: hart ");
  cput_dec(hartid);
  cputs(" up in S-mode\n");

  struct sbiret spec = sbi_call(SBI_EXT_BASE, 0, 0, 0, 0);
  struct sbiret impl = sbi_call(SBI_EXT_BASE, 1, 0, 0, 0);
  cputs("sbi: spec v");
  cput_dec((uint32_t)(spec.value >> 24) & 0x7f);
  cputs(".");
  cput_dec((uint32_t)spec.value & 0xffffff);
  cputs(" impl ");
  cput_hex((uint32_t)impl.value);
  cputs("\n");

  cputs("probe:");
  put_probe("base", SBI_EXT_BASE);
  put_probe("time", SBI_EXT_TIME);
  put_probe("hsm", SBI_EXT_HSM);
  put_probe("srst", SBI_EXT_SRST);
  put_probe("dbcn", SBI_EXT_DBCN);
  put_probe("bogus", 0x12345678);
  cputs("\n");

  struct sbiret st = sbi_call(SBI_EXT_HSM, 2, (long)hartid, 0, 0);
  struct sbiret again = sbi_call(SBI_EXT_HSM, 0, (long)hartid, 0x80400000, 0);
  struct sbiret nofn = sbi_call(SBI_EXT_BASE, 99, 0, 0, 0);
  cputs("hsm: status=");
  cput_dec((uint32_t)st.value);
  cputs(" start(self)=");
  cputs(again.error == SBI_ERR_ALREADY_AVAILABLE ? "ALREADY_AVAILABLE" : "unexpected");
  cputs(" base.fid99=");
  cputs(nofn.error == SBI_ERR_NOT_SUPPORTED ? "NOT_SUPPORTED" : "unexpected");
  cputs("\n");

  /* Timer: arm TIMER_DELTA ticks ahead, enable STIE and SIE, wait in wfi. */
  uint64_t t0 = rdtime64();
  sbi_set_timer(t0 + TIMER_DELTA);
  csr_set(sie, SIE_STIE);
  csr_set(sstatus, SSTATUS_SIE);
  while (timer_irqs == 0)
    __asm__ volatile("wfi");
  csr_clear(sstatus, SSTATUS_SIE);
  uint64_t t1 = rdtime64();
  cputs("timer: interrupt taken, ");
  cputs(t1 - t0 >= TIMER_DELTA ? "not early" : "EARLY");
  cputs(", stip ");
  cputs((csr_read(sip) & SIP_STIP) ? "still set" : "cleared");
  cputs("\n");

  /* Retentive suspend with SIE off: the pending STIP ends it, no trap is taken. */
  sbi_set_timer(rdtime64() + TIMER_DELTA);
  struct sbiret sus = sbi_call(SBI_EXT_HSM, 3, 0, 0, 0);
  cputs("suspend: ");
  if (sus.error == SBI_ERR_NOT_SUPPORTED) {
    cputs("not supported");
  } else {
    cputs(sus.error == SBI_SUCCESS ? "resumed" : "failed");
    cputs((csr_read(sip) & SIP_STIP) ? ", stip pending" : ", no stip");
  }
  cputs("\n");
  sbi_set_timer(~(uint64_t)0);

  long c = sbi_legacy_call(SBI_EXT_LEGACY_GETCHAR, 0, 0);
  cputs("console: getchar=");
  if (c < 0) {
    cputs("-1");
  } else {
    cputc((int)c);
  }
  cputs("\n");

  cputs("sguest-hello: done\n");
  sbi_shutdown(SBI_SRST_REASON_NONE);
}

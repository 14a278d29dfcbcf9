#ifndef GUEST_RUNTIME_H
#define GUEST_RUNTIME_H
/* A libc-free runtime for bare-metal guests: console through HTIF (Spike,
 * QEMU -machine spike, shadowvisor) or the 16550 UART (QEMU virt,
 * shadowvisor), and exit through tohost. */

#include <stddef.h>
#include <stdint.h>

#define UART0_BASE 0x10000000u

int main(void);

void rt_putchar(int c);       /* HTIF console */
void rt_uart_putchar(int c);  /* 16550 THR */
void rt_puts(const char *s);  /* no newline added */
void rt_uart_puts(const char *s);
void rt_print_hex(uint32_t v); /* 0x%08x */
void rt_print_dec(int32_t v);
void rt_print_udec(uint32_t v);
void rt_exit(int code) __attribute__((noreturn)); /* 0: pass; N: fail test N */

/* 1 when main runs in S-mode under Sv32 (the -sv32 variants). */
extern const int rt_paging;

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif

/* The default guest (npm start): greets on both consoles and passes. */
#include "runtime.h"

int main(void)
{
  rt_uart_puts("Hello from shadowvisor guest (uart16550)\n");
  rt_puts("Hello from shadowvisor guest (htif)\n");
  return 0;
}

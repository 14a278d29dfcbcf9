// A 16550-compatible UART (register stride 1), as QEMU's virt machine places
// at 0x10000000. Transmission is instantaneous: THR bytes go straight to the
// sink, so THRE and TEMT are always set and no TX interrupt ever waits.
// Counterpart: hw/char/serial.c (QEMU)

export const UART_BASE = 0x10000000;
export const UART_SIZE = 0x100;

// Register offsets (DLAB selects DLL/DLM at 0/1).
export const UART_RBR = 0; // read, DLAB=0
export const UART_THR = 0; // write, DLAB=0
export const UART_DLL = 0; // DLAB=1
export const UART_IER = 1; // DLAB=0
export const UART_DLM = 1; // DLAB=1
export const UART_IIR = 2; // read
export const UART_FCR = 2; // write
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;

export const UART_LCR_DLAB = 0x80;
export const UART_LSR_DR = 0x01;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;
export const UART_IER_RDI = 0x01;
export const UART_IER_THRI = 0x02;
export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_FIFO = 0xc0;
export const UART_MCR_LOOP = 0x10;
// CTS, DSR and DCD asserted: a terminal is always attached.
const MSR_CONNECTED = 0xb0;

export class Uart16550 {
  readonly name = 'uart16550';
  readonly base: number;
  readonly size = UART_SIZE;

  private ier = 0;
  private lcr = 0x03; // 8N1 after reset, as firmware expects
  private mcr = 0;
  private fcr = 0;
  private scr = 0;
  private dll = 0x01;
  private dlm = 0;
  private readonly rx: number[] = [];
  // A THR-empty interrupt is reported once per enable or per write, as on the
  // real part, where reading IIR clears it.
  private thriPending = false;

  constructor(private readonly sink: (byte: number) => void, base = UART_BASE) {
    this.base = base;
  }

  /** Queues bytes the guest will read from RBR. */
  pushInput(bytes: Iterable<number>): void {
    for (const b of bytes) this.rx.push(b & 0xff);
  }

  /** Level of the interrupt line (for a PLIC, when there is one). */
  interruptPending(): boolean {
    return (this.iir() & 0x0f) !== UART_IIR_NO_INT;
  }

  read(offset: number, _width: 1 | 2 | 4): number {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) return this.dll;
        return this.rx.length > 0 ? this.rx.shift()! : 0;
      case 1:
        return dlab ? this.dlm : this.ier;
      case 2: {
        const v = this.iir();
        if ((v & 0x0f) === UART_IIR_THRI) this.thriPending = false;
        return v;
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5:
        return UART_LSR_THRE | UART_LSR_TEMT | (this.rx.length > 0 ? UART_LSR_DR : 0);
      case 6:
        return (this.mcr & UART_MCR_LOOP) !== 0 ? 0 : MSR_CONNECTED;
      case 7:
        return this.scr;
      default:
        return 0;
    }
  }

  write(offset: number, _width: 1 | 2 | 4, value: number): void {
    const v = value & 0xff;
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) {
          this.dll = v;
        } else if ((this.mcr & UART_MCR_LOOP) !== 0) {
          this.rx.push(v);
        } else {
          this.sink(v);
          this.thriPending = (this.ier & UART_IER_THRI) !== 0;
        }
        return;
      case 1:
        if (dlab) {
          this.dlm = v;
        } else {
          if ((v & UART_IER_THRI) !== 0 && (this.ier & UART_IER_THRI) === 0) this.thriPending = true;
          this.ier = v & 0x0f;
        }
        return;
      case 2:
        // Bits 1 and 2 reset the FIFOs and self-clear; we only keep "enabled".
        this.fcr = v & 0xc9;
        if ((v & 0x02) !== 0) this.rx.length = 0;
        return;
      case 3:
        this.lcr = v;
        return;
      case 4:
        this.mcr = v & 0x1f;
        return;
      case 7:
        this.scr = v;
        return;
      default:
        return; // LSR and MSR are read-only
    }
  }

  private iir(): number {
    const fifo = (this.fcr & 0x01) !== 0 ? UART_IIR_FIFO : 0;
    if ((this.ier & UART_IER_RDI) !== 0 && this.rx.length > 0) return fifo | UART_IIR_RDI;
    if ((this.ier & UART_IER_THRI) !== 0 && this.thriPending) return fifo | UART_IIR_THRI;
    return fifo | UART_IIR_NO_INT;
  }

  dump(): string {
    return (
      `uart16550 @ 0x${this.base.toString(16)}: ier=0x${this.ier.toString(16)} lcr=0x${this.lcr.toString(16)} ` +
      `mcr=0x${this.mcr.toString(16)} divisor=${(this.dlm << 8) | this.dll} rx=${this.rx.length}`
    );
  }
}

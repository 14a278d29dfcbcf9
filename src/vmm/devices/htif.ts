// Berkeley HTIF as Spike and QEMU's spike machine implement it: two 64-bit
// words in guest RAM, `tohost` (guest -> host command) and `fromhost`
// (host -> guest response), found through the ELF symbols.
// Counterpart: riscv-isa-sim fesvr/htif.cc, fesvr/device.cc; qemu hw/char/riscv_htif.c
//
// Command layout: device = bits 63..56, command = bits 55..48, payload = 47..0.
//   device 0, payload odd:  exit, code = payload >> 1 (0: pass, N: "test N" failed)
//   device 0, payload even: syscall proxy, payload = physical address of
//                           magic_mem[8] (uint64: which, arg0, arg1, ...)
//   device 1, command 1:    console putchar, low byte of payload
//   device 1, command 0:    console getchar (answered only when input exists)
//
// RV32 code stores the 64-bit word as two `sw`. riscv-tests store the low word
// and then the high word (often zero), so the command completes on the store
// that touches the high half, which is also when QEMU acts. A low-half store
// alone is ambiguous: an odd low word under a zero high word reads as "exit",
// but it is just as well the first half of a console putchar of an odd byte
// whose high half (0x01010000) comes next. So such a store only makes the
// exit *pending*: the runner lets the guest run a few more instructions
// (HTIF_EXIT_GRACE) and commits the exit if no high-half store arrived, which
// covers programs that write only the low word and then spin.

import { ElfError } from '../elf.js';

export const HTIF_DEV_SYSCALL = 0;
export const HTIF_DEV_CONSOLE = 1;
export const HTIF_CONSOLE_GETCHAR = 0;
export const HTIF_CONSOLE_PUTCHAR = 1;

// riscv-pk / fesvr syscall numbers we proxy.
export const SYS_WRITE = 64;
export const SYS_EXIT = 93;
const ENOSYS = 38;

/**
 * Most bytes one SYS_write moves. A longer request is a short write, which
 * POSIX allows and stdio retries, so one guest store to tohost costs bounded
 * host work however large a length it names.
 */
export const HTIF_WRITE_MAX = 1 << 16;

/** Instructions a pending low-word exit waits for its high half (see above). */
export const HTIF_EXIT_GRACE = 32;
const EBADF = 9;

/**
 * The image's tohost symbol cannot be the device's command word. An ElfError,
 * since the symbol comes from the file: the runner reports it as a bad image.
 */
export class HtifError extends ElfError {
  override readonly name: string = 'HtifError';
}

/** Physical memory the device reads and writes (guest RAM). */
export interface HtifMemory {
  read32(pa: number): number;
  write32(pa: number, value: number): void;
}

export interface HtifExit {
  /** 0 on pass; N for "test N failed" (tohost = N << 1 | 1) or the exit() status. */
  code: number;
  /** The raw tohost payload, for messages. */
  payloadLo: number;
  payloadHi: number;
}

export interface HtifOptions {
  tohost: number;
  fromhost?: number;
  /** Console bytes (device 1) and syscall writes; fd is 1 or 2. */
  output: (byte: number, fd: 1 | 2) => void;
  /** Called once when the guest asks to exit; the runner stops the hart here. */
  onExit?: (exit: HtifExit) => void;
  /** A low-word store that may be an exit: the runner should look again soon. */
  onPending?: () => void;
  /** A command this device does not implement; the guest is told nothing. */
  onUnknown?: (device: number, command: number, payloadLo: number, payloadHi: number) => void;
}

export class Htif {
  readonly name = 'htif';
  readonly tohost: number;
  readonly fromhost: number | undefined;
  exit: HtifExit | undefined;
  /** A low-word store that reads as an exit is waiting for its high half. */
  pending = false;
  commands = 0;
  private mem: HtifMemory | undefined;

  constructor(private readonly opts: HtifOptions) {
    if ((opts.tohost & 7) !== 0) {
      throw new HtifError('tohost at 0x' + (opts.tohost >>> 0).toString(16) + ' is not 8-byte aligned: HTIF needs a 64-bit word there (align .tohost to 8)');
    }
    this.tohost = opts.tohost;
    this.fromhost = opts.fromhost;
  }

  /** The memory exists only once the machine does, after the watch was handed to it. */
  attach(mem: HtifMemory): void {
    this.mem = mem;
  }

  /** The PhysWatch to give the machine: stores to tohost land in RAM, then come here. */
  get watch(): { pa: number; size: number; onStore: (pa: number, width: number) => void } {
    return { pa: this.tohost, size: 8, onStore: (pa, width) => this.onStore(pa, width) };
  }

  onStore(pa: number, width: number): void {
    const mem = this.mem;
    if (!mem || this.exit) return;
    const hiPa = this.tohost + 4;
    const touchesHigh = pa + width > hiPa && pa < hiPa + 4;
    const lo = mem.read32(this.tohost) >>> 0;
    const hi = mem.read32(hiPa) >>> 0;
    if (touchesHigh) {
      this.pending = false;
      if (lo === 0 && hi === 0) return; // the guest clearing tohost, as pk does
      this.handle(mem, lo, hi);
    } else {
      this.pending = hi === 0 && (lo & 1) === 1;
      if (this.pending) this.opts.onPending?.();
    }
  }

  /** The grace period ran out with no high-half store: the low word was the whole command. */
  commitPending(): void {
    const mem = this.mem;
    if (!mem || !this.pending || this.exit) return;
    this.pending = false;
    const lo = mem.read32(this.tohost) >>> 0;
    const hi = mem.read32(this.tohost + 4) >>> 0;
    if (hi === 0 && (lo & 1) === 1) this.handle(mem, lo, hi);
  }

  private handle(mem: HtifMemory, lo: number, hi: number): void {
    this.commands++;
    const device = hi >>> 24;
    const command = (hi >>> 16) & 0xff;
    const payloadHi = hi & 0xffff;

    if (device === HTIF_DEV_SYSCALL && command === 0) {
      if ((lo & 1) === 1) {
        // payload >> 1 over 48 bits, kept exact in a double.
        const code = payloadHi * 0x80000000 + (lo >>> 1);
        this.finish({ code, payloadLo: lo, payloadHi });
        return;
      }
      this.syscall(mem, lo);
      this.clearTohost(mem);
      this.respond(mem, 0, 0, 1);
      return;
    }
    if (device === HTIF_DEV_CONSOLE && command === HTIF_CONSOLE_PUTCHAR) {
      this.opts.output(lo & 0xff, 1);
      this.clearTohost(mem);
      this.respond(mem, HTIF_DEV_CONSOLE, HTIF_CONSOLE_PUTCHAR, 0x100 | (lo & 0xff));
      return;
    }
    if (device === HTIF_DEV_CONSOLE && command === HTIF_CONSOLE_GETCHAR) {
      // No input source yet: Spike answers only when a key arrives.
      this.clearTohost(mem);
      return;
    }
    this.opts.onUnknown?.(device, command, lo, payloadHi);
    this.clearTohost(mem);
  }

  private syscall(mem: HtifMemory, magicPa: number): void {
    // magic_mem is uint64_t[8]; RV32 pointers and lengths fit the low halves.
    const arg = (i: number): number => mem.read32(magicPa + 8 * i) >>> 0;
    const which = arg(0);
    let ret: number;
    if (which === SYS_EXIT) {
      const status = arg(1) | 0;
      this.finish({ code: status, payloadLo: magicPa, payloadHi: 0 });
      return;
    } else if (which === SYS_WRITE) {
      const fd = arg(1);
      const buf = arg(2);
      const len = Math.min(arg(3), HTIF_WRITE_MAX);
      if (fd === 1 || fd === 2) {
        for (let i = 0; i < len; i++) {
          const a = buf + i;
          const word = mem.read32((a & ~3) >>> 0);
          this.opts.output((word >>> ((a & 3) * 8)) & 0xff, fd);
        }
        ret = len;
      } else {
        ret = -EBADF;
      }
    } else {
      ret = -ENOSYS;
    }
    mem.write32(magicPa, ret);
    mem.write32(magicPa + 4, ret < 0 ? -1 : 0);
  }

  private finish(exit: HtifExit): void {
    this.exit = exit;
    this.opts.onExit?.(exit);
  }

  private clearTohost(mem: HtifMemory): void {
    mem.write32(this.tohost, 0);
    mem.write32(this.tohost + 4, 0);
  }

  private respond(mem: HtifMemory, device: number, command: number, payloadLo: number): void {
    if (this.fromhost === undefined) return;
    mem.write32(this.fromhost, payloadLo);
    mem.write32(this.fromhost + 4, ((device << 24) | (command << 16)) >>> 0);
  }

  dump(): string {
    const where = `tohost=0x${this.tohost.toString(16)}` + (this.fromhost !== undefined ? ` fromhost=0x${this.fromhost.toString(16)}` : '');
    return `htif ${where} commands=${this.commands}` + (this.exit ? ` exited code=${this.exit.code}` : '');
  }
}

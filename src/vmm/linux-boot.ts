// Booting a Linux `Image` the way a RISC-V firmware hands over to it (OpenSBI
// fw_dynamic, QEMU's riscv_boot.c): the Image at RAM base + text_offset, the
// initrd and a device tree elsewhere in RAM, entry in S-mode at the first byte
// of the Image with a0 = hartid, a1 = the DTB's guest-physical address, satp = 0.
// Counterpart: Documentation/arch/riscv/boot-image-header.rst, boot.rst;
// QEMU hw/riscv/boot.c and hw/riscv/virt.c (create_fdt_*)
//
// Layout (QEMU's choices, so a tree from either machine reads the same):
//   kernel  base + text_offset                 (text_offset from the header: 4 MiB on rv32)
//   initrd  base + min(RAM / 2, 128 MiB)       (past where the kernel's .bss can reach)
//   dtb     the top of RAM, aligned down to 2 MiB
//
// What the tree says must be exactly what the hart and the VMM implement:
// RV32IMA, Zicsr, Zifencei, Zicntr (cycle/time/instret), Sv32, one hart, the
// SBI for console, timer and reset, a 16550 at 0x10000000 without an
// interrupt line, the PLIC with hart 0's S-mode context, and the virtio-mmio
// transports the VMM has (each with its PLIC source).

import { buildFdt, fdtCells, fdtEmpty, fdtNode, fdtString, fdtStrings, fdtU64, u64Cells } from './fdt.js';
import type { FdtNode, FdtValue } from './fdt.js';
import { PLIC_BASE, PLIC_NDEV, PLIC_SIZE } from './devices/plic.js';
import { VIRTIO_MMIO_SIZE } from './devices/virtio-mmio.js';

/** "RISCV\0\0\0" at offset 48 (deprecated, still written) and "RSC\x05" at 56. */
const IMAGE_MAGIC2 = 0x05435352;
const IMAGE_HEADER_BYTES = 64;

/**
 * The rate of the `time` CSR the device tree announces. The VMM's time counts
 * guest instructions (mtimeDivisor 1), so this is a nominal clock: a 10 MIPS
 * hart. It sets how many instructions a jiffy is (HZ=100 -> 100000).
 */
export const TIMEBASE_FREQUENCY = 10_000_000;

/** The hart's ISA, as Linux's cpufeature.c parses it. */
export const HART_ISA = 'rv32ima_zicsr_zifencei_zicntr';
export const HART_ISA_BASE = 'rv32i';
export const HART_ISA_EXTENSIONS: readonly string[] = ['i', 'm', 'a', 'zicsr', 'zifencei', 'zicntr'];

export const DEFAULT_BOOTARGS = 'earlycon=sbi console=hvc0 panic=-1';

const UART_GPA = 0x10000000;
const UART_CLOCK = 3686400;
const MiB = 1 << 20;

export class LinuxImageError extends Error {
  override readonly name = 'LinuxImageError';
}

export interface LinuxImageHeader {
  /** Bytes from the start of RAM (2 MiB aligned on rv64, 4 MiB on rv32). */
  textOffset: number;
  /** Bytes the kernel occupies once running, .bss included (0: unknown). */
  imageSize: number;
  /** Header version (major << 16 | minor). */
  version: number;
}

/** Reads the 64-byte RISC-V Image header; throws LinuxImageError when it is not one. */
export function parseLinuxImage(image: Uint8Array): LinuxImageHeader {
  if (image.length < IMAGE_HEADER_BYTES) throw new LinuxImageError(`${image.length} bytes is too short for a RISC-V Image header`);
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (dv.getUint32(56, true) !== IMAGE_MAGIC2) throw new LinuxImageError('not a RISC-V Linux Image (no "RSC\\x05" magic at offset 56)');
  const u64 = (off: number, what: string) => {
    const hi = dv.getUint32(off + 4, true);
    if (hi !== 0) throw new LinuxImageError(`${what} 0x${hi.toString(16)}${dv.getUint32(off, true).toString(16).padStart(8, '0')} does not fit a 32-bit guest`);
    return dv.getUint32(off, true);
  };
  const textOffset = u64(8, 'text_offset');
  const imageSize = u64(16, 'image_size');
  if (textOffset % 4096 !== 0) throw new LinuxImageError(`text_offset 0x${textOffset.toString(16)} is not page aligned`);
  return { textOffset, imageSize, version: dv.getUint32(32, true) };
}

export interface LinuxBootConfig {
  ramBase: number;
  ramBytes: number;
  hartId: number;
  bootargs?: string;
  /** virtio-mmio transports to announce: base gpa and PLIC source. */
  virtio?: readonly { base: number; irq: number }[];
}

export interface LinuxBootPlan {
  /** What to copy into guest RAM, in order. */
  segments: { gpa: number; data: Uint8Array }[];
  entry: number;
  dtbGpa: number;
  dtb: Uint8Array;
  initrd?: { start: number; end: number };
}

/** Places kernel, initrd and device tree in RAM and builds the tree; throws LinuxImageError when they do not fit. */
export function planLinuxBoot(kernel: Uint8Array, initrd: Uint8Array | undefined, cfg: LinuxBootConfig): LinuxBootPlan {
  const hdr = parseLinuxImage(kernel);
  const ramEnd = cfg.ramBase + cfg.ramBytes;
  const entry = cfg.ramBase + hdr.textOffset;
  const kernelEnd = entry + Math.max(hdr.imageSize, kernel.length);
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  if (kernelEnd > ramEnd) {
    throw new LinuxImageError(`the kernel needs RAM up to base + ${mib(kernelEnd - cfg.ramBase)}; --guest-mem is ${mib(cfg.ramBytes)}`);
  }
  const segments: LinuxBootPlan['segments'] = [{ gpa: entry, data: kernel }];
  let initrdRange: { start: number; end: number } | undefined;
  let used = kernelEnd;
  if (initrd !== undefined) {
    const start = Math.max(cfg.ramBase + Math.min(cfg.ramBytes / 2, 128 * MiB), alignUp(kernelEnd, 4096));
    initrdRange = { start, end: start + initrd.length };
    segments.push({ gpa: start, data: initrd });
    used = initrdRange.end;
  }
  // The tree does not name its own address (the kernel reserves what a1 points at).
  const dtb = buildFdt(linuxDeviceTree({ ...cfg, bootargs: cfg.bootargs ?? DEFAULT_BOOTARGS, ...(initrdRange ? { initrd: initrdRange } : {}) }));
  const dtbGpa = alignDown(ramEnd - dtb.length, 2 * MiB);
  if (dtbGpa < used) {
    throw new LinuxImageError(`kernel${initrd ? ', initrd' : ''} and device tree need more than --guest-mem ${mib(cfg.ramBytes)} ` +
      `(they end at base + ${mib(used - cfg.ramBase)}, the tree goes at the last 2 MiB boundary)`);
  }
  segments.push({ gpa: dtbGpa, data: dtb });
  return { segments, entry, dtbGpa, dtb, ...(initrdRange ? { initrd: initrdRange } : {}) };
}

/** The device tree of the shadowvisor machine, as QEMU virt would write it for our hart. */
export function linuxDeviceTree(cfg: LinuxBootConfig & { bootargs: string; initrd?: { start: number; end: number } }): FdtNode {
  const chosen: Record<string, FdtValue> = {
    bootargs: fdtString(cfg.bootargs),
    'stdout-path': fdtString(`/soc/serial@${UART_GPA.toString(16)}`),
  };
  if (cfg.initrd) {
    chosen['linux,initrd-start'] = fdtU64(cfg.initrd.start);
    chosen['linux,initrd-end'] = fdtU64(cfg.initrd.end);
  }
  const INTC_PHANDLE = 1;
  const PLIC_PHANDLE = 2;
  // S-mode external interrupt (cause 9): the context Linux's PLIC driver keeps (irq-sifive-plic.c skips others).
  const IRQ_S_EXT = 9;
  const virtio = (cfg.virtio ?? []).map((v) => fdtNode(`virtio_mmio@${v.base.toString(16)}`, {
    compatible: fdtString('virtio,mmio'),
    reg: fdtCells(...u64Cells(v.base), ...u64Cells(VIRTIO_MMIO_SIZE)),
    'interrupt-parent': fdtCells(PLIC_PHANDLE),
    interrupts: fdtCells(v.irq),
  }));
  return fdtNode('', {
    '#address-cells': fdtCells(2),
    '#size-cells': fdtCells(2),
    compatible: fdtString('shadowvisor,virt'),
    model: fdtString('shadowvisor'),
  }, [
    fdtNode('chosen', chosen),
    fdtNode(`memory@${cfg.ramBase.toString(16)}`, {
      device_type: fdtString('memory'),
      reg: fdtCells(...u64Cells(cfg.ramBase), ...u64Cells(cfg.ramBytes)),
    }),
    fdtNode('cpus', {
      '#address-cells': fdtCells(1),
      '#size-cells': fdtCells(0),
      'timebase-frequency': fdtCells(TIMEBASE_FREQUENCY),
    }, [
      fdtNode(`cpu@${cfg.hartId.toString(16)}`, {
        device_type: fdtString('cpu'),
        reg: fdtCells(cfg.hartId),
        status: fdtString('okay'),
        compatible: fdtString('riscv'),
        'riscv,isa': fdtString(HART_ISA),
        'riscv,isa-base': fdtString(HART_ISA_BASE),
        'riscv,isa-extensions': fdtStrings(...HART_ISA_EXTENSIONS),
        'mmu-type': fdtString('riscv,sv32'),
      }, [
        fdtNode('interrupt-controller', {
          '#address-cells': fdtCells(0),
          '#interrupt-cells': fdtCells(1),
          'interrupt-controller': fdtEmpty(),
          compatible: fdtString('riscv,cpu-intc'),
          phandle: fdtCells(INTC_PHANDLE),
        }),
      ]),
    ]),
    fdtNode('soc', {
      '#address-cells': fdtCells(2),
      '#size-cells': fdtCells(2),
      compatible: fdtString('simple-bus'),
      ranges: fdtEmpty(),
    }, [
      fdtNode(`plic@${PLIC_BASE.toString(16)}`, {
        compatible: fdtStrings('sifive,plic-1.0.0', 'riscv,plic0'),
        reg: fdtCells(...u64Cells(PLIC_BASE), ...u64Cells(PLIC_SIZE)),
        '#address-cells': fdtCells(0),
        '#interrupt-cells': fdtCells(1),
        'interrupt-controller': fdtEmpty(),
        'interrupts-extended': fdtCells(INTC_PHANDLE, IRQ_S_EXT),
        'riscv,ndev': fdtCells(PLIC_NDEV),
        phandle: fdtCells(PLIC_PHANDLE),
      }),
      fdtNode(`serial@${UART_GPA.toString(16)}`, {
        compatible: fdtString('ns16550a'),
        reg: fdtCells(...u64Cells(UART_GPA), ...u64Cells(0x100)),
        'clock-frequency': fdtCells(UART_CLOCK),
      }),
      ...virtio,
    ]),
  ]);
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

function alignDown(v: number, a: number): number {
  return Math.floor(v / a) * a;
}

// Booting a Linux Image: the header, where kernel/initrd/DTB land, and the
// device tree as dtc reads it.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BOOTARGS, HART_ISA, LinuxImageError, parseLinuxImage, planLinuxBoot, TIMEBASE_FREQUENCY,
} from '../../src/vmm/linux-boot.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { Prog, andi, beq, bne, csrr, ecall, jal, lbu, li, lw } from '../hart/asm.js';
import { dtcDecompile, hasDtc } from './dtc.js';

const MiB = 1 << 20;

/** A RISC-V Image header (Documentation/arch/riscv/boot-image-header.rst) and `len` bytes in all. */
function fakeImage(len: number, textOffset = 0x400000, imageSize = len): Uint8Array {
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint32(8, textOffset, true);
  dv.setUint32(16, imageSize, true);
  dv.setUint32(32, 2, true);
  b.set(Buffer.from('RISCV\0\0\0', 'latin1'), 48);
  b.set(Buffer.from('RSC\x05', 'latin1'), 56);
  return b;
}

const cfg = { ramBase: 0x80000000, ramBytes: 64 * MiB, hartId: 0 };

describe('parseLinuxImage', () => {
  it('reads text_offset and image_size', () => {
    expect(parseLinuxImage(fakeImage(4096, 0x400000, 0x300000))).toEqual({ textOffset: 0x400000, imageSize: 0x300000, version: 2 });
  });

  it('rejects what is not an rv32-loadable Image', () => {
    expect(() => parseLinuxImage(new Uint8Array(10))).toThrow(/too short/);
    expect(() => parseLinuxImage(new Uint8Array(64))).toThrow(/RSC/);
    const huge = fakeImage(4096);
    new DataView(huge.buffer).setUint32(12, 1, true);
    expect(() => parseLinuxImage(huge)).toThrow(/text_offset .* 32-bit/);
    expect(() => parseLinuxImage(fakeImage(4096, 0x1234))).toThrow(/page aligned/);
  });
});

describe('planLinuxBoot', () => {
  it('puts the kernel at base + text_offset, the initrd at half of RAM, the DTB at the top 2 MiB boundary', () => {
    const initrd = new Uint8Array(5000);
    const p = planLinuxBoot(fakeImage(8192, 0x400000, 3 * MiB), initrd, cfg);
    expect(p.entry).toBe(0x80400000);
    expect(p.segments[0]!.gpa).toBe(0x80400000);
    expect(p.initrd).toEqual({ start: 0x82000000, end: 0x82000000 + 5000 });
    expect(p.dtbGpa).toBe(0x83e00000);
    expect(p.segments.map((s) => s.gpa)).toEqual([0x80400000, 0x82000000, 0x83e00000]);
    expect(p.segments[2]!.data).toBe(p.dtb);
  });

  it('refuses a RAM too small for what it must hold', () => {
    expect(() => planLinuxBoot(fakeImage(8192, 0x400000, 8 * MiB), undefined, { ...cfg, ramBytes: 8 * MiB })).toThrow(LinuxImageError);
    expect(() => planLinuxBoot(fakeImage(8192, 0x400000, 3 * MiB), new Uint8Array(MiB), { ...cfg, ramBytes: 8 * MiB })).toThrow(/device tree need more/);
  });

  it.skipIf(!hasDtc)('builds the tree Linux reads, as dtc decompiles it', () => {
    const p = planLinuxBoot(fakeImage(8192), new Uint8Array(100), { ...cfg, bootargs: 'console=hvc0 quiet' });
    const dts = dtcDecompile(p.dtb);
    expect(dts).toContain('bootargs = "console=hvc0 quiet";');
    expect(dts).toContain('linux,initrd-start = <0x00 0x82000000>;');
    expect(dts).toContain('linux,initrd-end = <0x00 0x82000064>;');
    expect(dts).toContain('stdout-path = "/soc/serial@10000000";');
    expect(dts).toMatch(/memory@80000000 \{\s*device_type = "memory";\s*reg = <0x00 0x80000000 0x00 0x4000000>;/);
    expect(dts).toContain(`timebase-frequency = <0x${TIMEBASE_FREQUENCY.toString(16)}>;`);
    expect(dts).toContain(`riscv,isa = "${HART_ISA}";`);
    expect(dts).toContain('riscv,isa-base = "rv32i";');
    expect(dts).toContain('riscv,isa-extensions = "i\\0m\\0a\\0zicsr\\0zifencei\\0zicntr";');
    expect(dts).toContain('mmu-type = "riscv,sv32";');
    expect(dts).toMatch(/interrupt-controller \{\s*#address-cells = <0x00>;\s*#interrupt-cells = <0x01>;\s*interrupt-controller;\s*compatible = "riscv,cpu-intc";/);
    expect(dts).toMatch(/serial@10000000 \{\s*compatible = "ns16550a";/);
  });

  it('defaults the command line to the SBI console', () => {
    const p = planLinuxBoot(fakeImage(8192), undefined, cfg);
    expect(Buffer.from(p.dtb).toString('latin1')).toContain(DEFAULT_BOOTARGS);
    expect(p.initrd).toBeUndefined();
    expect(Buffer.from(p.dtb).toString('latin1')).not.toContain('linux,initrd');
  });
});

describe('Vmm.bootLinux', () => {
  // An "Image" whose code checks the hand-over: a0 = hartid 0, a1 = the DTB
  // (its magic readable with the MMU off), the initrd where the tree says;
  // prints K and shuts down with reason 0, or with reason 1 (exit status 1).
  const SRST = 0x53525354;
  function imageOf(p: Prog): Uint8Array {
    const words = p.assemble();
    const img = fakeImage(64 + 4 * words.length, 0x400000, 2 * MiB);
    new DataView(img.buffer).setInt32(0, jal(0, 64), true);
    words.forEach((w, i) => new DataView(img.buffer).setInt32(64 + 4 * i, w, true));
    return img;
  }

  function handOverImage(dtbGpa: number, initrdGpa: number): Uint8Array {
    const p = new Prog(0x80400040);
    p.emit(li(5, dtbGpa)).to('fail', (o) => bne(11, 5, o)).to('fail', (o) => bne(10, 0, o));
    p.emit(lw(6, 11, 0), li(7, 0xedfe0dd0 | 0)).to('fail', (o) => bne(6, 7, o));
    p.emit(li(28, initrdGpa), lbu(29, 28, 0), li(30, 0xa5)).to('fail', (o) => bne(29, 30, o));
    p.emit(li(17, 1), li(10, 0x4b), ecall());
    p.emit(li(17, SRST), li(16, 0), li(10, 0), li(11, 0), ecall());
    p.label('fail').emit(li(17, SRST), li(16, 0), li(10, 0), li(11, 1), ecall());
    return imageOf(p);
  }

  it('an IPI to itself raises SSIP; RFENCE sfence_vma returns success (what Linux probes and calls)', () => {
    const p = new Prog(0x80400040);
    p.emit(li(17, 0x735049), li(16, 0), li(10, 1), li(11, 0), ecall()).to('fail', (o) => bne(10, 0, o));
    p.emit(csrr(5, 0x144), andi(5, 5, 2)).to('fail', (o) => beq(5, 0, o));
    p.emit(li(17, 0x52464e43), li(16, 1), li(10, 1), li(11, 0), li(12, 0), li(13, 0), ecall()).to('fail', (o) => bne(10, 0, o));
    p.emit(li(17, SRST), li(16, 0), li(10, 0), li(11, 0), ecall());
    p.label('fail').emit(li(17, SRST), li(16, 0), li(10, 0), li(11, 1), ecall());
    const vmm = new Vmm({ guestMemBytes: 8 * MiB, hostMemBytes: 8 * MiB, protocol: 'modern' });
    vmm.bootLinux(imageOf(p));
    expect(vmm.run()).toMatchObject({ exitCode: 0, reason: 'shutdown' });
  });

  it('enters the Image in S-mode with a0 = hartid and a1 = the device tree, the initrd in place', () => {
    const vmm = new Vmm({ guestMemBytes: 64 * MiB, hostMemBytes: 16 * MiB, protocol: 'modern' });
    expect(vmm.bootLinux(handOverImage(0x83e00000, 0x82000000), { initrd: Uint8Array.of(0xa5, 1, 2), bootargs: 'x' })).toBeNull();
    expect(vmm.linuxBoot?.dtbGpa).toBe(0x83e00000);
    const r = vmm.run();
    expect(r.message).toBeUndefined();
    expect(r.output).toBe('K');
    expect(r.reason).toBe('shutdown');
    expect(r.exitCode).toBe(0);
  });

  it('a wrong a1 is caught by the same program (the check can fail)', () => {
    const vmm = new Vmm({ guestMemBytes: 64 * MiB, hostMemBytes: 16 * MiB, protocol: 'modern' });
    vmm.bootLinux(handOverImage(0x83c00000, 0x82000000), { initrd: Uint8Array.of(0xa5) });
    expect(vmm.run().exitCode).toBe(1);
  });

  it('a file that is not an Image is a bad-image result with exit status 2', () => {
    const vmm = new Vmm({ guestMemBytes: 8 * MiB, hostMemBytes: 8 * MiB, protocol: 'modern' });
    expect(vmm.bootLinux(new Uint8Array(100))).toMatch(/not a RISC-V Linux Image/);
    expect(vmm.run()).toMatchObject({ exitCode: 2, reason: 'bad-elf' });
  });
});

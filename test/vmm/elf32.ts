// A minimal RISC-V ELF for tests that assemble their guest with src/hart/asm.ts.

const PAGE = 4096;

/** An ELF32 RISC-V executable with one RWX PT_LOAD of `image` at `gpa`, entered there. */
export function elf32(gpa: number, image: Uint8Array): Uint8Array {
  const off = PAGE;
  const out = new Uint8Array(off + image.length);
  const e = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]); // ELFCLASS32, ELFDATA2LSB, EV_CURRENT
  e.setUint16(16, 2, true); // ET_EXEC
  e.setUint16(18, 243, true); // EM_RISCV
  e.setUint32(20, 1, true);
  e.setUint32(24, gpa, true); // e_entry
  e.setUint32(28, 52, true); // e_phoff
  e.setUint16(40, 52, true); // e_ehsize
  e.setUint16(42, 32, true); // e_phentsize
  e.setUint16(44, 1, true); // e_phnum
  const ph = 52;
  e.setUint32(ph, 1, true); // PT_LOAD
  e.setUint32(ph + 4, off, true);
  e.setUint32(ph + 8, gpa, true);
  e.setUint32(ph + 12, gpa, true);
  e.setUint32(ph + 16, image.length, true);
  e.setUint32(ph + 20, image.length, true);
  e.setUint32(ph + 24, 7, true); // PF_R | PF_W | PF_X
  e.setUint32(ph + 28, PAGE, true);
  out.set(image, off);
  return out;
}

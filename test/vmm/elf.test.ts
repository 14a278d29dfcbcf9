import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ElfError, findSymbol, loadElf, parseElf } from '../../src/vmm/elf.js';

const HELLO = new Uint8Array(readFileSync(new URL('../../guest-programs/bin/hello.elf', import.meta.url)));
const RAM = { base: 0x80000000, size: 128 << 20 };

function mutate(edit: (b: Uint8Array, dv: DataView) => void, from = HELLO): Uint8Array {
  const b = from.slice();
  edit(b, new DataView(b.buffer));
  return b;
}

function rejects(bytes: Uint8Array, message: RegExp): void {
  let err: unknown;
  try {
    const img = parseElf(bytes);
    loadElf(img, () => {}, RAM);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ElfError);
  expect((err as ElfError).message).toMatch(message);
}

describe('parseElf', () => {
  it('accepts a good image and finds tohost/fromhost', () => {
    const img = parseElf(HELLO);
    expect(img.entry).toBe(0x80000000);
    expect(img.tohost).toBe(0x80001000);
    expect(img.fromhost).toBe(0x80001040);
    expect(findSymbol(img, '_start')?.value).toBe(0x80000000);
    expect(findSymbol(img, 'main')).toBeDefined();
    expect(img.segments.length).toBeGreaterThan(0);
  });

  it('copies PT_LOAD segments to p_paddr and zero-fills to p_memsz', () => {
    const img = parseElf(HELLO);
    const ram = new Uint8Array(RAM.size).fill(0xee, 0, 0x20000);
    loadElf(img, (pa, data) => ram.set(data, pa - RAM.base), RAM);
    for (const seg of img.segments) {
      const off = seg.paddr - RAM.base;
      expect(Buffer.from(ram.subarray(off, off + seg.filesz)).equals(Buffer.from(HELLO.subarray(seg.offset, seg.offset + seg.filesz)))).toBe(true);
      expect(ram.subarray(off + seg.filesz, off + seg.memsz).every((x) => x === 0)).toBe(true);
    }
  });

  it('rejects a bad magic', () => rejects(mutate((b) => { b[0] = 0x7e; }), /not an ELF file \(bad magic/));
  it('rejects a 64-bit ELF saying so', () => rejects(mutate((b) => { b[4] = 2; }), /64-bit ELF.*not supported.*RV32/));
  it('rejects a big-endian ELF', () => rejects(mutate((b) => { b[5] = 2; }), /big-endian/));
  it('rejects the wrong machine', () => rejects(mutate((_b, dv) => dv.setUint16(18, 62, true)), /wrong machine 62.*EM_RISCV = 243/));
  it('rejects a non-executable type', () => rejects(mutate((_b, dv) => dv.setUint16(16, 3, true)), /not ET_EXEC/));
  it('rejects a truncated header', () => rejects(HELLO.slice(0, 40), /truncated ELF header: file is 40 bytes/));
  it('rejects a truncated program header table', () => {
    const phoff = new DataView(HELLO.buffer, HELLO.byteOffset).getUint32(28, true);
    rejects(HELLO.slice(0, phoff + 40), /truncated program header table/);
  });
  it('rejects a truncated segment', () => rejects(HELLO.slice(0, 0x1100), /truncated (segment|section header table)/));
  it('rejects a segment outside RAM, naming it and the RAM range', () => {
    const phoff = new DataView(HELLO.buffer, HELLO.byteOffset).getUint32(28, true);
    rejects(
      mutate((_b, dv) => dv.setUint32(phoff + 12, 0x10000000, true)),
      /segment 0 \[0x10000000, 0x1[0-9a-f]+\) is outside RAM \[0x80000000, 0x88000000\)/,
    );
  });
  it('names the end of a segment that runs past 4 GiB without wrapping it', () => {
    const phoff = new DataView(HELLO.buffer, HELLO.byteOffset).getUint32(28, true);
    rejects(
      mutate((_b, dv) => dv.setUint32(phoff + 12, 0xffffff00, true)),
      /segment 0 \[0xffffff00, 0x1[0-9a-f]{8}\) is outside RAM/,
    );
  });
  it('rejects an image bigger than a small RAM', () => {
    expect(() => loadElf(parseElf(HELLO), () => {}, { base: 0x80000000, size: 4096 })).toThrow(/outside RAM \[0x80000000, 0x80001000\)/);
  });
  it('rejects an entry point outside RAM', () => {
    rejects(mutate((_b, dv) => dv.setUint32(24, 0x1000, true)), /entry point 0x1000 is outside RAM/);
  });

  it('finds no tohost in a stripped image', () => {
    const stripped = mutate((_b, dv) => dv.setUint16(48, 0, true)); // e_shnum = 0
    expect(parseElf(stripped).tohost).toBeUndefined();
  });

  it('never throws anything but ElfError on corrupt input', () => {
    fc.assert(
      fc.property(fc.nat(HELLO.length), fc.array(fc.tuple(fc.nat(HELLO.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (len, edits) => {
        const b = HELLO.slice(0, len);
        for (const [i, v] of edits) if (i < b.length) b[i] = v;
        try {
          loadElf(parseElf(b), () => {}, RAM);
        } catch (e) {
          expect(e).toBeInstanceOf(ElfError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ElfError, SHT_STRTAB, SHT_SYMTAB, findSymbol, loadElf, parseElf } from '../../src/vmm/elf.js';
import { runBareElf } from '../../src/vmm/bare-runner.js';
import { bootAndRun } from '../../src/vmm/vmm.js';

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

// ---- hostile images (issue 13): each is rejected with an ElfError before the
// loader allocates for it, within a fraction of a second.

interface Phdr { type?: number; offset?: number; paddr: number; filesz?: number; memsz: number }
interface Shdr { name?: number; type: number; offset: number; size: number; link?: number; entsize?: number }

/**
 * HELLO with `blob` appended and its program and/or section header table
 * replaced by one built after it; the callbacks get the blob's file offset.
 */
function rebuild(parts: { blob?: Uint8Array; phdrs?: (blobOff: number) => Phdr[]; shdrs?: (blobOff: number) => Shdr[] }): Uint8Array {
  const align8 = (n: number) => (n + 7) & ~7;
  const blobOff = align8(HELLO.length);
  const blob = parts.blob ?? new Uint8Array(0);
  const phdrs = parts.phdrs?.(blobOff);
  const shdrs = parts.shdrs?.(blobOff);
  const phoff = align8(blobOff + blob.length);
  const shoff = phoff + (phdrs?.length ?? 0) * 32;
  const b = new Uint8Array(shoff + (shdrs?.length ?? 0) * 40);
  b.set(HELLO);
  b.set(blob, blobOff);
  const dv = new DataView(b.buffer);
  if (phdrs) {
    dv.setUint32(28, phoff, true);
    dv.setUint16(44, phdrs.length, true);
    phdrs.forEach((p, i) => {
      const o = phoff + 32 * i;
      dv.setUint32(o, p.type ?? 1, true);
      dv.setUint32(o + 4, p.offset ?? 0, true);
      dv.setUint32(o + 8, p.paddr, true);
      dv.setUint32(o + 12, p.paddr, true);
      dv.setUint32(o + 16, p.filesz ?? 0, true);
      dv.setUint32(o + 20, p.memsz, true);
      dv.setUint32(o + 24, 6, true);
    });
  }
  if (shdrs) {
    dv.setUint32(32, shoff, true);
    dv.setUint16(48, shdrs.length, true);
    dv.setUint16(50, 0, true);
    shdrs.forEach((s, i) => {
      const o = shoff + 40 * i;
      dv.setUint32(o, s.name ?? 0, true);
      dv.setUint32(o + 4, s.type, true);
      dv.setUint32(o + 16, s.offset, true);
      dv.setUint32(o + 20, s.size, true);
      dv.setUint32(o + 24, s.link ?? 0, true);
      dv.setUint32(o + 36, s.entsize ?? 0, true);
    });
  }
  return b;
}

/** HELLO's section headers with one field of section `index` replaced. */
function withSectionField(index: number, field: number, value: number): Uint8Array {
  return mutate((_b, dv) => {
    const shoff = dv.getUint32(32, true);
    dv.setUint32(shoff + 40 * index + field, value, true);
  });
}

/** File offset of HELLO's symbol-table entry for `name`. */
function symbolEntry(name: string): number {
  const dv = new DataView(HELLO.buffer, HELLO.byteOffset);
  const shoff = dv.getUint32(32, true);
  for (let i = 0; i < dv.getUint16(48, true); i++) {
    const s = shoff + 40 * i;
    if (dv.getUint32(s + 4, true) !== SHT_SYMTAB) continue;
    const str = shoff + 40 * dv.getUint32(s + 24, true);
    const strOff = dv.getUint32(str + 16, true);
    for (let off = dv.getUint32(s + 16, true); off < dv.getUint32(s + 16, true) + dv.getUint32(s + 20, true); off += 16) {
      const at = strOff + dv.getUint32(off, true);
      if (Buffer.from(HELLO.subarray(at, at + name.length + 1)).equals(Buffer.from(name + '\0'))) return off;
    }
  }
  throw new Error('no symbol ' + name);
}

const MiB = 1 << 20;

/** Rejected through both runners with exit 2, a one-line message matching `message`, in well under a second. */
function rejectsFast(bytes: Uint8Array, message: RegExp): void {
  const t0 = performance.now();
  rejects(bytes, message);
  const bare = runBareElf(bytes, { maxInsns: 1000 });
  expect(bare).toMatchObject({ exitCode: 2, reason: 'bad-elf' });
  expect(bare.message).toMatch(message);
  expect(bare.message).not.toContain('\n');
  const vmm = bootAndRun(bytes, { guestMemBytes: 8 * MiB, hostMemBytes: 4 * MiB, protocol: 'modern', maxInsns: 1000 });
  expect(vmm).toMatchObject({ exitCode: 2, reason: 'bad-elf' });
  expect(vmm.message).toMatch(message);
  expect(performance.now() - t0).toBeLessThan(1500);
}

describe('parseElf on hostile images', () => {
  it('rejects a symbol table with sh_entsize 1 before reading a symbol (was: heap out of memory)', () => {
    // 32 MiB that is symbol table and string table at once: read at every byte,
    // each u32 is a valid name offset, so the loader made 32M symbols.
    const blob = new Uint8Array(32 * MiB).fill(1);
    for (let i = 15; i < blob.length; i += 16) blob[i] = 0;
    rejectsFast(
      rebuild({
        blob,
        shdrs: (at) => [
          { type: 0, offset: 0, size: 0 },
          { type: SHT_SYMTAB, offset: at, size: blob.length, link: 2, entsize: 1 },
          { type: SHT_STRTAB, offset: at, size: blob.length },
        ],
      }),
      /symbol table \(section 1\) has entry size 1; an Elf32_Sym is 16/,
    );
  }, 20_000);

  it('rejects sh_entsize 0 on the symbol table too', () => {
    rejectsFast(withSectionField(6, 36, 0), /symbol table \(section 6\) has entry size 0; an Elf32_Sym is 16/);
  });

  it('rejects section and program header entry sizes that are not the ELF32 ones', () => {
    rejectsFast(mutate((_b, dv) => dv.setUint16(46, 41, true)), /section header entry size 41 is not 40/);
    rejectsFast(mutate((_b, dv) => dv.setUint16(42, 33, true)), /program header entry size 33 is not 32/);
  });

  it('rejects 1000 overlapping 32 MiB BSS segments at once (was: minutes)', () => {
    const bytes = rebuild({ phdrs: () => Array.from({ length: 1000 }, () => ({ paddr: 0x80000000, memsz: 32 * MiB })) });
    expect(bytes.length).toBeLessThan(48 * 1024);
    rejectsFast(bytes, /1000 program headers: more than the 128 that fit in a page/);
  }, 20_000);

  it('rejects 100 overlapping 32 MiB BSS segments naming two of them (was: 17 s)', () => {
    rejectsFast(
      rebuild({ phdrs: () => Array.from({ length: 100 }, () => ({ paddr: 0x80000000, memsz: 32 * MiB })) }),
      /segments 0 \[0x80000000, 0x82000000\) and 1 \[0x80000000, 0x82000000\) overlap/,
    );
  }, 20_000);

  it('rejects two segments that share one byte, and accepts them end to end', () => {
    const phdrs = (second: number) => () => [
      { offset: 0x1000, paddr: 0x80000000, filesz: 0x5e0, memsz: 0x5e0 },
      { offset: 0x2000, paddr: 0x80001000, filesz: 0x1099, memsz: 0x110a0 },
      { paddr: second, memsz: 0x1000 },
    ];
    rejectsFast(rebuild({ phdrs: phdrs(0x8001209f) }), /segments 1 \[0x80001000, 0x800120a0\) and 2 \[0x8001209f, 0x8001309f\) overlap/);
    const ok = runBareElf(rebuild({ phdrs: phdrs(0x800120a0) }), { maxInsns: 1_000_000 });
    expect(ok).toMatchObject({ exitCode: 0, reason: 'pass' });
  });

  it('rejects e_phnum 65535 with the whole table in the file (was: 64 GiB of zero-fill)', () => {
    rejectsFast(
      rebuild({ phdrs: () => Array.from({ length: 65535 }, () => ({ paddr: 0x80000000, memsz: MiB })) }),
      /65535 program headers/,
    );
  }, 20_000);

  it('rejects e_phnum or e_shnum 65535 with tables the file does not hold', () => {
    rejectsFast(mutate((_b, dv) => dv.setUint16(44, 0xffff, true)), /65535 program headers/);
    rejectsFast(mutate((_b, dv) => dv.setUint16(48, 0xffff, true)), /truncated section header table: 65535 entries/);
  });

  it('rejects e_shnum 65535 symbol tables over one region (was: heap out of memory)', () => {
    // 64 KiB of symbols, all named, listed 65534 times: 268M symbols.
    const blob = new Uint8Array(64 * 1024 + 16);
    const dv = new DataView(blob.buffer);
    for (let off = 0; off < 64 * 1024; off += 16) dv.setUint32(off, 1, true);
    blob.set([0, 0x61, 0], 64 * 1024); // the string table: "\0a\0"
    rejectsFast(
      rebuild({
        blob,
        shdrs: (at) => [
          { type: SHT_STRTAB, offset: at + 64 * 1024, size: 3 },
          ...Array.from({ length: 65534 }, () => ({ type: SHT_SYMTAB, offset: at, size: 64 * 1024, entsize: 16 })),
        ],
      }),
      /more than one symbol table \(sections 1 and 2\)/,
    );
  }, 20_000);

  it('rejects a section whose data runs past the end of the file (was: accepted)', () => {
    rejectsFast(withSectionField(4, 20, 0xffffffff), /section 4 \(type 1\) \[0x3000, 0x100002fff\) runs past the end of the file \(13820 bytes\)/);
    rejectsFast(withSectionField(4, 16, HELLO.length), /section 4 \(type 1\) \[0x35fc, 0x3695\) runs past the end of the file/);
    rejectsFast(withSectionField(6, 16, 0xfffffff0), /section 6 \(type 2\) \[0xfffffff0, 0x100000260\) runs past the end of the file/);
  });

  it('does not hold SHT_NOBITS (.bss) to the file size', () => {
    expect(parseElf(withSectionField(5, 20, 0xffffffff)).tohost).toBe(0x80001000);
  });

  it('rejects a symbol table whose string table is not one', () => {
    rejectsFast(withSectionField(6, 24, 4), /symbol table \(section 6\) links to section 4, which is not a string table/);
    rejectsFast(withSectionField(6, 24, 99), /symbol table \(section 6\) links to section 99, which does not exist/);
  });

  it('rejects a symbol name with no NUL before the end of its string table', () => {
    rejectsFast(withSectionField(7, 20, 0x144), /name .* runs past the end of the string table \(section 7\)/);
  });

  it('rejects symbol names that overlap beyond what a linker writes (was: heap out of memory)', () => {
    // A 1 MiB string table with its only NUL at the end and 64K symbols each
    // naming a different offset in it: 64 GiB of names.
    const strSize = MiB;
    const nsyms = 65536;
    const blob = new Uint8Array(nsyms * 16 + strSize).fill(0x61, nsyms * 16);
    blob[blob.length - 1] = 0;
    const dv = new DataView(blob.buffer);
    for (let i = 1; i < nsyms; i++) dv.setUint32(i * 16, i, true);
    rejectsFast(
      rebuild({
        blob,
        shdrs: (at) => [
          { type: 0, offset: 0, size: 0 },
          { type: SHT_SYMTAB, offset: at, size: nsyms * 16, link: 2, entsize: 16 },
          { type: SHT_STRTAB, offset: at + nsyms * 16, size: strSize },
        ],
      }),
      /symbol names add up to more than twice their string table/,
    );
  }, 20_000);

  it('gives a misaligned tohost to the runner as a bad image, not a stack trace', () => {
    for (const tohost of [0x80001004, 0x80001001]) {
      const bytes = mutate((_b, dv) => dv.setUint32(symbolEntry('tohost') + 4, tohost, true));
      const r = runBareElf(bytes, { maxInsns: 1000 });
      expect(r).toMatchObject({ exitCode: 2, reason: 'bad-elf' });
      expect(r.message).toMatch(new RegExp(`tohost at 0x${tohost.toString(16)} is not 8-byte aligned`));
      expect(r.message).not.toContain('\n');
    }
  });
});

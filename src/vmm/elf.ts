// ELF32 loader for bare-metal RISC-V images (riscv-tests / Spike conventions).
//
// Pure: parseElf() validates and describes the image, loadElf() copies the
// PT_LOAD segments through a caller-supplied writer. Nothing here knows about
// the hart, so a malformed file is rejected before any machine exists.
//
// The file is hostile until checked. Every table and every section is held to
// the file's length before anything is read from it or allocated for it, entry
// sizes must be the ELF32 ones (a symbol table with sh_entsize 1 is a way to
// read one symbol per byte), and the work done is bounded by the file's size:
// at most PHNUM_MAX program headers, one symbol table, and symbol names that add
// up to at most NAME_BYTES_PER_STRTAB_BYTE times their string table. PT_LOAD
// segments may not overlap in physical memory, so loading writes each byte of
// guest RAM at most once, whatever the file claims.

/** A file that cannot be loaded, with a one-line message naming what is wrong. */
export class ElfError extends Error {
  override readonly name: string = 'ElfError';
}

export const EM_RISCV = 243;
export const ET_EXEC = 2;
export const PT_LOAD = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;

const SHT_NULL = 0;
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ELFDATA2MSB = 2;
const EHDR32_SIZE = 52;
const PHDR32_SIZE = 32;
const SHDR32_SIZE = 40;
const SYM32_SIZE = 16;
/**
 * Linux's load_elf_phdrs() reads at most a page of program headers
 * (ELF_MIN_ALIGN): 128 ELF32 entries. Toolchains write a handful.
 */
export const PHNUM_MAX = 4096 / PHDR32_SIZE;
/**
 * Names may share bytes (a linker stores a name that is the tail of another
 * once), but not without limit: N symbols naming N offsets of one long string
 * would decode N times its length.
 */
const NAME_BYTES_PER_STRTAB_BYTE = 2;
const utf8 = new TextDecoder();

export interface ElfSegment {
  /** Index in the program header table, for error messages. */
  index: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  flags: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  /** STT_* in the low nibble of st_info. */
  type: number;
  /** STB_* in the high nibble of st_info. */
  bind: number;
  shndx: number;
}

export interface ElfImage {
  bytes: Uint8Array;
  entry: number;
  /** PT_LOAD segments only. */
  segments: ElfSegment[];
  /** Every named symbol of .symtab; empty when the file is stripped. */
  symbols: ElfSymbol[];
  /** Physical address of the HTIF words, when the image defines them. */
  tohost?: number;
  fromhost?: number;
}

function hex(n: number): string {
  // Segment ends can pass 4 GiB (p_paddr + p_memsz): print them whole, not wrapped.
  return '0x' + (n < 0 ? n >>> 0 : n).toString(16);
}

/**
 * Validates an ELF32 little-endian RISC-V executable and returns its
 * loadable segments and symbols. Throws ElfError naming what is wrong.
 */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError('not an ELF file (bad magic; expected 7f 45 4c 46)');
  }
  if (bytes.length < 6) throw new ElfError('truncated ELF header: file is ' + bytes.length + ' bytes');
  const cls = bytes[4];
  if (cls === ELFCLASS64) {
    throw new ElfError('64-bit ELF (ELFCLASS64) not supported: shadowvisor runs RV32 guests; build with -march=rv32ima_zicsr_zifencei -mabi=ilp32');
  }
  if (cls !== ELFCLASS32) throw new ElfError('unknown ELF class ' + cls + ' (expected ELFCLASS32)');
  const data = bytes[5];
  if (data === ELFDATA2MSB) throw new ElfError('big-endian ELF (ELFDATA2MSB) not supported: RISC-V images are little-endian');
  if (data !== ELFDATA2LSB) throw new ElfError('unknown ELF data encoding ' + data + ' (expected ELFDATA2LSB)');
  if (bytes.length < EHDR32_SIZE) {
    throw new ElfError('truncated ELF header: file is ' + bytes.length + ' bytes, the ELF32 header needs ' + EHDR32_SIZE);
  }

  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (off: number): number => dv.getUint16(off, true);
  const u32 = (off: number): number => dv.getUint32(off, true);

  const type = u16(16);
  const machine = u16(18);
  if (machine !== EM_RISCV) throw new ElfError('wrong machine ' + machine + ' in ELF header (expected EM_RISCV = 243)');
  if (type !== ET_EXEC) {
    throw new ElfError('ELF type ' + type + ' is not ET_EXEC (2): link a static executable (-static, with a linker script)');
  }

  const entry = u32(24);
  const phoff = u32(28);
  const shoff = u32(32);
  const phentsize = u16(42);
  const phnum = u16(44);
  const shentsize = u16(46);
  const shnum = u16(48);

  if (phnum === 0) throw new ElfError('ELF has no program headers: nothing to load');
  if (phentsize !== PHDR32_SIZE) throw new ElfError('program header entry size ' + phentsize + ' is not ' + PHDR32_SIZE + ' (an Elf32_Phdr)');
  if (phnum > PHNUM_MAX) {
    throw new ElfError(phnum + ' program headers: more than the ' + PHNUM_MAX + ' that fit in a page, which is all Linux\'s ELF loader reads');
  }
  if (phoff + phnum * phentsize > bytes.length) {
    throw new ElfError(
      'truncated program header table: ' + phnum + ' entries at offset ' + phoff +
      ' need ' + (phoff + phnum * phentsize) + ' bytes, file is ' + bytes.length,
    );
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (u32(p) !== PT_LOAD) continue;
    const seg: ElfSegment = {
      index: i,
      offset: u32(p + 4),
      vaddr: u32(p + 8),
      paddr: u32(p + 12),
      filesz: u32(p + 16),
      memsz: u32(p + 20),
      flags: u32(p + 24),
    };
    if (seg.filesz > seg.memsz) {
      throw new ElfError('segment ' + i + ': file size ' + seg.filesz + ' exceeds memory size ' + seg.memsz);
    }
    if (seg.offset + seg.filesz > bytes.length) {
      throw new ElfError(
        'truncated segment ' + i + ': its data ends at offset ' + (seg.offset + seg.filesz) + ', file is ' + bytes.length + ' bytes',
      );
    }
    segments.push(seg);
  }
  if (segments.length === 0) throw new ElfError('ELF has no PT_LOAD segment: nothing to load');
  checkOverlap(segments);

  const symbols = shnum === 0 ? [] : readSymbols(bytes, u16, u32, shoff, shentsize, shnum);
  const image: ElfImage = { bytes, entry, segments, symbols };
  for (const s of symbols) {
    if (s.name === 'tohost') image.tohost = s.value;
    else if (s.name === 'fromhost') image.fromhost = s.value;
  }
  return image;
}

/** Two segments loading the same byte: the image is corrupt, or asks for the same RAM to be written over and over. */
function checkOverlap(segments: readonly ElfSegment[]): void {
  const byPaddr = segments.filter((s) => s.memsz > 0).sort((a, b) => a.paddr - b.paddr || a.index - b.index);
  for (let i = 1; i < byPaddr.length; i++) {
    const a = byPaddr[i - 1]!;
    const b = byPaddr[i]!;
    if (a.paddr + a.memsz > b.paddr) {
      throw new ElfError(
        'segments ' + a.index + ' [' + hex(a.paddr) + ', ' + hex(a.paddr + a.memsz) + ') and ' + b.index + ' [' + hex(b.paddr) + ', ' +
        hex(b.paddr + b.memsz) + ') overlap in physical memory',
      );
    }
  }
}

/** Holds every section to the file, then reads the one symbol table, if any. */
function readSymbols(
  bytes: Uint8Array,
  u16: (off: number) => number,
  u32: (off: number) => number,
  shoff: number,
  shentsize: number,
  shnum: number,
): ElfSymbol[] {
  if (shentsize !== SHDR32_SIZE) throw new ElfError('section header entry size ' + shentsize + ' is not ' + SHDR32_SIZE + ' (an Elf32_Shdr)');
  if (shoff + shnum * shentsize > bytes.length) {
    throw new ElfError(
      'truncated section header table: ' + shnum + ' entries at offset ' + shoff +
      ' need ' + (shoff + shnum * shentsize) + ' bytes, file is ' + bytes.length,
    );
  }
  const section = (i: number) => {
    const s = shoff + i * shentsize;
    return { type: u32(s + 4), offset: u32(s + 16), size: u32(s + 20), link: u32(s + 24), entsize: u32(s + 36) };
  };
  let symtabIndex = -1;
  for (let i = 0; i < shnum; i++) {
    const sh = section(i);
    if (sh.type !== SHT_NULL && sh.type !== SHT_NOBITS && sh.offset + sh.size > bytes.length) {
      throw new ElfError(
        'section ' + i + ' (type ' + sh.type + ') [' + hex(sh.offset) + ', ' + hex(sh.offset + sh.size) +
        ') runs past the end of the file (' + bytes.length + ' bytes)',
      );
    }
    if (sh.type !== SHT_SYMTAB) continue;
    // The gABI allows one; 65535 headers naming the same table would read it 65535 times.
    if (symtabIndex >= 0) throw new ElfError('more than one symbol table (sections ' + symtabIndex + ' and ' + i + ')');
    symtabIndex = i;
  }
  if (symtabIndex < 0) return [];

  const sh = section(symtabIndex);
  const what = 'symbol table (section ' + symtabIndex + ')';
  if (sh.entsize !== SYM32_SIZE) throw new ElfError(what + ' has entry size ' + sh.entsize + '; an Elf32_Sym is ' + SYM32_SIZE);
  if (sh.size % SYM32_SIZE !== 0) throw new ElfError(what + ' is ' + sh.size + ' bytes, not a whole number of ' + SYM32_SIZE + '-byte symbols');
  if (sh.link >= shnum) throw new ElfError(what + ' links to section ' + sh.link + ', which does not exist');
  const str = section(sh.link);
  if (str.type !== SHT_STRTAB) throw new ElfError(what + ' links to section ' + sh.link + ', which is not a string table');
  const strEnd = str.offset + str.size;

  // Symbols sharing a name share its string (RISC-V's $x/$d mapping symbols do).
  const names = new Map<number, string>();
  let nameBytesLeft = NAME_BYTES_PER_STRTAB_BYTE * str.size;
  const symbols: ElfSymbol[] = [];
  // Entry 0 is the reserved null symbol.
  for (let off = sh.offset + SYM32_SIZE; off < sh.offset + sh.size; off += SYM32_SIZE) {
    const nameOff = u32(off);
    if (nameOff === 0) continue;
    let name = names.get(nameOff);
    if (name === undefined) {
      if (nameOff >= str.size) throw new ElfError('symbol name offset ' + nameOff + ' is outside the string table (section ' + sh.link + ', ' + str.size + ' bytes)');
      const start = str.offset + nameOff;
      const len = bytes.subarray(start, strEnd).indexOf(0);
      if (len < 0) {
        throw new ElfError('symbol name at string table offset ' + nameOff + ' runs past the end of the string table (section ' + sh.link + ') without a NUL');
      }
      if ((nameBytesLeft -= len) < 0) {
        throw new ElfError(
          'symbol names add up to more than twice their string table (section ' + sh.link + ', ' + str.size +
          ' bytes): they overlap as no linker writes them',
        );
      }
      name = utf8.decode(bytes.subarray(start, start + len));
      names.set(nameOff, name);
    }
    const info = bytes[off + 12]!;
    symbols.push({ name, value: u32(off + 4), size: u32(off + 8), type: info & 0xf, bind: info >> 4, shndx: u16(off + 14) });
  }
  return symbols;
}

/**
 * Copies every PT_LOAD segment to its physical address (p_paddr), zero-filling
 * to p_memsz. When ram is given, a segment outside it is rejected before
 * anything is written, so a bad image never half-loads.
 */
export function loadElf(
  image: ElfImage,
  write: (pa: number, bytes: Uint8Array) => void,
  ram?: { base: number; size: number; /** The option that sets the RAM size, for the message. */ sizeOption?: string },
): void {
  if (ram) {
    const ramEnd = ram.base + ram.size;
    if (image.entry < ram.base || image.entry >= ramEnd) {
      throw new ElfError(`entry point ${hex(image.entry)} is outside RAM [${hex(ram.base)}, ${hex(ramEnd)}): the hart could not fetch its first instruction`);
    }
    for (const seg of image.segments) {
      if (seg.memsz === 0) continue;
      if (seg.paddr < ram.base || seg.paddr + seg.memsz > ramEnd) {
        throw new ElfError(
          'segment ' + seg.index + ' [' + hex(seg.paddr) + ', ' + hex(seg.paddr + seg.memsz) + ') is outside RAM [' +
          hex(ram.base) + ', ' + hex(ramEnd) + '); link the image inside RAM or raise ' + (ram.sizeOption ?? 'the RAM size'),
        );
      }
    }
  }
  for (const seg of image.segments) {
    if (seg.memsz === 0) continue;
    const data = new Uint8Array(seg.memsz);
    data.set(image.bytes.subarray(seg.offset, seg.offset + seg.filesz));
    write(seg.paddr, data);
  }
}

export function findSymbol(image: ElfImage, name: string): ElfSymbol | undefined {
  return image.symbols.find((s) => s.name === name);
}

// Hostile images through both runners (issue 13): fields of the ELF header, the
// program header table, the section header table and the symbol table of a
// committed guest image are set to values a fuzzer likes (0, 1, all ones, the
// file size, the old value nudged), and every outcome must be one of:
//   - a typed load error: reason 'bad-elf', exit 2, a one-line message;
//   - a run that ends within its instruction budget, in bounded time.
// An exception escaping a runner fails the property with the mutation that
// caused it.
//
// The default run is a few hundred cases. SHADOWVISOR_CAMPAIGN=1 runs thousands
// per runner and prints how the cases ended:
//   SHADOWVISOR_CAMPAIGN=1 npx vitest run test/vmm/elf-fuzz.test.ts

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { runBareElf } from '../../src/vmm/bare-runner.js';
import { bootAndRun } from '../../src/vmm/vmm.js';

const CAMPAIGN = process.env.SHADOWVISOR_CAMPAIGN === '1';
const BARE_INSNS = 200_000;
// A guest that only takes traps costs the VMM an exit per instruction (~5 us).
const VMM_INSNS = 20_000;
const MiB = 1 << 20;
/** Far above any bounded case (the slowest take ~100 ms); a case over it is a hang in the making. */
const CASE_MS = 5_000;

const load = (name: string) => new Uint8Array(readFileSync(new URL(`../../guest-programs/bin/${name}.elf`, import.meta.url)));

interface Field {
  name: string;
  off: number;
  width: 1 | 2 | 4;
}

const EHDR_FIELDS: Array<[string, number, 1 | 2 | 4]> = [
  ['EI_CLASS', 4, 1], ['EI_DATA', 5, 1], ['EI_VERSION', 6, 1],
  ['e_type', 16, 2], ['e_machine', 18, 2], ['e_version', 20, 4], ['e_entry', 24, 4], ['e_phoff', 28, 4], ['e_shoff', 32, 4],
  ['e_flags', 36, 4], ['e_ehsize', 40, 2], ['e_phentsize', 42, 2], ['e_phnum', 44, 2], ['e_shentsize', 46, 2], ['e_shnum', 48, 2],
  ['e_shstrndx', 50, 2],
];
const PHDR_FIELDS = ['p_type', 'p_offset', 'p_vaddr', 'p_paddr', 'p_filesz', 'p_memsz', 'p_flags', 'p_align'];
const SHDR_FIELDS = ['sh_name', 'sh_type', 'sh_flags', 'sh_addr', 'sh_offset', 'sh_size', 'sh_link', 'sh_info', 'sh_addralign', 'sh_entsize'];
const SYM_FIELDS: Array<[string, number, 1 | 2 | 4]> = [['st_name', 0, 4], ['st_value', 4, 4], ['st_size', 8, 4], ['st_info', 12, 1], ['st_shndx', 14, 2]];

/** Every field of the pristine image's headers, by region. */
function fieldsOf(img: Uint8Array): { ehdr: Field[]; phdr: Field[]; shdr: Field[]; sym: Field[] } {
  const dv = new DataView(img.buffer, img.byteOffset);
  const phoff = dv.getUint32(28, true);
  const shoff = dv.getUint32(32, true);
  const ehdr = EHDR_FIELDS.map(([name, off, width]) => ({ name, off, width }));
  const phdr: Field[] = [];
  for (let i = 0; i < dv.getUint16(44, true); i++) {
    PHDR_FIELDS.forEach((f, k) => phdr.push({ name: `phdr[${i}].${f}`, off: phoff + 32 * i + 4 * k, width: 4 }));
  }
  const shdr: Field[] = [];
  const sym: Field[] = [];
  for (let i = 0; i < dv.getUint16(48, true); i++) {
    const s = shoff + 40 * i;
    SHDR_FIELDS.forEach((f, k) => shdr.push({ name: `shdr[${i}].${f}`, off: s + 4 * k, width: 4 }));
    if (dv.getUint32(s + 4, true) !== 2) continue; // SHT_SYMTAB
    for (let j = 0; j * 16 < dv.getUint32(s + 20, true); j++) {
      for (const [f, o, width] of SYM_FIELDS) sym.push({ name: `sym[${j}].${f}`, off: dv.getUint32(s + 16, true) + 16 * j + o, width });
    }
  }
  return { ehdr, phdr, shdr, sym };
}

function read(img: Uint8Array, f: Field): number {
  const dv = new DataView(img.buffer, img.byteOffset);
  return f.width === 1 ? img[f.off]! : f.width === 2 ? dv.getUint16(f.off, true) : dv.getUint32(f.off, true);
}

interface Mutation {
  field: Field;
  value: number;
}

/** Up to four field edits and, now and then, a truncation of the file. */
function mutations(img: Uint8Array): fc.Arbitrary<{ edits: Mutation[]; cut: number | null }> {
  const f = fieldsOf(img);
  const field = fc.oneof(
    { arbitrary: fc.constantFrom(...f.ehdr), weight: 3 },
    { arbitrary: fc.constantFrom(...f.phdr), weight: 3 },
    { arbitrary: fc.constantFrom(...f.shdr), weight: 3 },
    { arbitrary: fc.constantFrom(...f.sym), weight: 1 },
  );
  const len = img.length;
  const edit = field.chain((fl) => {
    const old = read(img, fl);
    return fc.oneof(
      fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 16, 32, 40, 52, 0xff, 0x100, 0x1000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000004, 0xfffffff0, 0xffffffff),
      fc.integer({ min: -64, max: 64 }).map((d) => len + d),
      fc.integer({ min: -64, max: 64 }).map((d) => old + d),
      fc.integer({ min: 0, max: 31 }).map((k) => old ^ (1 << k)),
      fc.integer({ min: 0, max: 0xffffffff }),
    ).map((value): Mutation => ({ field: fl, value: fl.width === 4 ? value >>> 0 : value & ((1 << (8 * fl.width)) - 1) }));
  });
  return fc.record({
    edits: fc.array(edit, { minLength: 1, maxLength: 4 }),
    cut: fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, { arbitrary: fc.nat(len), weight: 1 }),
  });
}

function apply(img: Uint8Array, m: { edits: Mutation[]; cut: number | null }): Uint8Array {
  const b = img.slice();
  const dv = new DataView(b.buffer);
  for (const { field, value } of m.edits) {
    if (field.width === 1) b[field.off] = value;
    else if (field.width === 2) dv.setUint16(field.off, value, true);
    else dv.setUint32(field.off, value, true);
  }
  return m.cut === null ? b : b.slice(0, m.cut);
}

function expectOneLine(message: string | undefined): void {
  expect(message).toBeTruthy();
  expect(message).not.toContain('\n');
}

class Tally {
  private readonly counts = new Map<string, number>();
  cases = 0;
  add(outcome: string): void {
    this.cases++;
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }
  report(what: string, ms: number): void {
    if (!CAMPAIGN) return;
    const by = [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`elf-fuzz ${what}: ${this.cases} cases in ${(ms / 1000).toFixed(1)} s: ${by}`);
  }
}

const BARE_REASONS = ['pass', 'fail', 'limit', 'wfi'];

describe('hostile ELF images', () => {
  const bareCases: Array<[string, number]> = [['hello', CAMPAIGN ? 4000 : 200], ['isa-alu', CAMPAIGN ? 2000 : 100]];
  for (const [name, numRuns] of bareCases) {
    it(`run --bare: a mutated ${name}.elf is a bad-elf or a bounded run (${numRuns} cases)`, () => {
      const img = load(name);
      const tally = new Tally();
      const t0 = performance.now();
      fc.assert(
        fc.property(mutations(img), fc.constantFrom<number | undefined>(MiB, MiB, MiB, undefined), (m, memSize) => {
          const bytes = apply(img, m);
          const c0 = performance.now();
          const r = runBareElf(bytes, { maxInsns: BARE_INSNS, ...(memSize !== undefined ? { memSize } : {}) });
          expect(performance.now() - c0).toBeLessThan(CASE_MS);
          tally.add(r.reason);
          if (r.reason === 'bad-elf') {
            expect(r.exitCode).toBe(2);
            expectOneLine(r.message);
          } else {
            expect(BARE_REASONS).toContain(r.reason);
            expect(r.insns).toBeLessThanOrEqual(BARE_INSNS);
          }
        }),
        { numRuns },
      );
      tally.report(`run --bare ${name}.elf`, performance.now() - t0);
    }, CAMPAIGN ? 1_800_000 : 60_000);
  }

  const vmmRuns = CAMPAIGN ? 3000 : 100;
  it(`run: a mutated sguest-hello.elf is a bad-elf or a bounded run (${vmmRuns} cases)`, () => {
    const img = load('sguest-hello');
    const tally = new Tally();
    const t0 = performance.now();
    fc.assert(
      fc.property(mutations(img), (m) => {
        const bytes = apply(img, m);
        const c0 = performance.now();
        // sguest-hello links at 0x80400000: 5 MiB of guest RAM holds it, 2 MiB of host RAM makes the host swap.
        const r = bootAndRun(bytes, { guestMemBytes: 5 * MiB, hostMemBytes: 2 * MiB, protocol: 'modern', maxInsns: VMM_INSNS, seed: 1 });
        expect(performance.now() - c0).toBeLessThan(CASE_MS);
        tally.add(r.reason);
        if (r.reason === 'bad-elf') {
          expect(r.exitCode).toBe(2);
          expectOneLine(r.message);
        } else {
          expect(r.stats.instructions).toBeLessThanOrEqual(VMM_INSNS);
          // The VMM turns an exception inside a thread into 'internal-error' with its stack: that is a bug, not an outcome.
          expect(r.message ?? '').not.toMatch(/\n\s+at /);
        }
      }),
      { numRuns: vmmRuns },
    );
    tally.report('run sguest-hello.elf', performance.now() - t0);
  }, CAMPAIGN ? 1_800_000 : 60_000);
});

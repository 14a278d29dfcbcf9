// The upstream riscv-tests (guest-programs/riscv-tests, built by
// tools/build-riscv-tests.sh): every RV32 ISA test we implement the
// extensions of (rv32ui, rv32um, rv32ua in the -p and -v environments,
// rv32mi, rv32si) and the benchmarks, which check their results themselves,
// plus EEMBC CoreMark with our port (exit status 0 only when its CRCs match).
// Under test/hart/jit.suite.test.ts the same programs run on the compiler.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runBareElf } from '../../src/vmm/bare-runner.js';
import { findSymbol, parseElf } from '../../src/vmm/elf.js';
import { withEngine } from './mode.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const RISCV_TESTS = new URL('riscv-tests/', BIN);
const images = readdirSync(fileURLToPath(RISCV_TESTS)).filter((f) => f.endsWith('.elf')).sort();
const isa = images.filter((f) => f.startsWith('rv32'));
const benchmarks = images.filter((f) => !f.startsWith('rv32') && f !== 'dhrystone.elf');

function run(url: URL, maxInsns: number) {
  return runBareElf(new Uint8Array(readFileSync(url)), withEngine({ maxInsns }));
}

describe('riscv-tests ISA suites', () => {
  it('has every suite the hart implements, in both environments', () => {
    // 142 programs: upstream's RV32 lists for I, M, A (p and v), machine and supervisor.
    expect(isa.length).toBe(142);
    for (const prefix of ['rv32ui-p-', 'rv32ui-v-', 'rv32um-p-', 'rv32um-v-', 'rv32ua-p-', 'rv32ua-v-', 'rv32mi-p-', 'rv32si-p-']) {
      expect(isa.some((f) => f.startsWith(prefix)), prefix).toBe(true);
    }
  });

  it.each(isa)('%s passes', (name) => {
    const r = run(new URL(name, RISCV_TESTS), 20_000_000);
    expect(r.message ?? '', r.output).toBe('');
    expect(r.reason).toBe('pass');
  });
});

describe('riscv-tests benchmarks (each verifies its own result)', () => {
  it.each(benchmarks)('%s passes', (name) => {
    const r = run(new URL(name, RISCV_TESTS), 400_000_000);
    expect(r.reason, r.output).toBe('pass');
    // setStats prints the counters of the timed region through printf.
    expect(r.output).toMatch(/mcycle = \d+/);
  }, 60_000);

  it('dhrystone runs 500,000 passes (a benchmark of the hart, not of start-up)', () => {
    const r = run(new URL('dhrystone.elf', RISCV_TESTS), 400_000_000);
    expect(r.reason, r.output).toBe('pass');
    expect(r.output).toMatch(/Microseconds for one run through Dhrystone/);
    expect(r.instret).toBeGreaterThan(150_000_000);
  }, 60_000);
});

describe('EEMBC CoreMark (guest-programs/coremark)', () => {
  it.each(['coremark.elf', 'coremark-sv32.elf'])('%s validates its CRCs and exits 0', (name) => {
    const r = run(new URL(name, BIN), 1_000_000_000);
    expect(r.reason, r.output).toBe('pass');
    // The known values for the 2K performance seeds; the port's exit status
    // already depends on them, the report must say the same.
    expect(r.output).toMatch(/seedcrc\s+: 0xe9f5/);
    expect(r.output).toMatch(/\[0\]crclist\s+: 0xe714/);
    expect(r.output).toMatch(/\[0\]crcmatrix\s+: 0x1fd7/);
    expect(r.output).toMatch(/\[0\]crcstate\s+: 0x8e3a/);
    expect(r.output).toMatch(/\[0\]crcfinal\s+: 0xd340/);
    expect(r.output).toMatch(/Iterations\s+: 1000/);
  }, 120_000);

  it('a hart that gets the CRCs wrong makes it exit non-zero (the port checks, not only the report)', () => {
    // The CRC-16 polynomial 0xA001 is built by `lui rd, 0xffffa; addi rd, rd, 1`
    // wherever crcu8 is inlined: make every such lui load 0xffffb, as a broken
    // decoder might, and every CRC changes.
    const bytes = new Uint8Array(readFileSync(new URL('coremark.elf', BIN)));
    const image = parseElf(bytes);
    const crcu16 = findSymbol(image, 'crcu16')!;
    const text = image.segments.find((g) => crcu16.value >= g.vaddr && crcu16.value < g.vaddr + g.filesz)!;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    let patched = 0;
    for (let off = text.offset; off < text.offset + text.filesz; off += 4) {
      const w = view.getUint32(off, true);
      if (((w & 0xfffff07f) >>> 0) === 0xffffa037) {
        view.setUint32(off, ((w & 0xf80) | 0xffffb037) >>> 0, true);
        patched++;
      }
    }
    expect(patched).toBeGreaterThan(0);
    const r = runBareElf(bytes, withEngine({ maxInsns: 1_000_000_000 }));
    expect(r.reason, r.output).toBe('fail');
    expect([1, 2]).toContain(r.exitCode);
  }, 120_000);
});

// Every committed guest image, run through the bare runner: no toolchain needed.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runBareElf, type BareRunOptions, type BareRunResult } from '../../src/vmm/bare-runner.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const load = (name: string) => new Uint8Array(readFileSync(new URL(name + '.elf', BIN)));
const run = (name: string, opts: BareRunOptions = {}) => runBareElf(load(name), { maxInsns: 500_000_000, ...opts });
// The benchmark images take a few hundred ms each: run each default case once.
const cache = new Map<string, BareRunResult>();
const runCached = (name: string) => cache.get(name) ?? cache.set(name, run(name)).get(name)!;

interface Expectation {
  exitCode: number;
  output?: string | RegExp;
  opts?: BareRunOptions;
  check?: (r: BareRunResult) => void;
}

const SATP_SV32 = /S-mode satp=0x8[0-9a-f]{7}\n$/;

const GUESTS: Record<string, Expectation> = {
  hello: { exitCode: 0, output: 'Hello from shadowvisor guest (uart16550)\nHello from shadowvisor guest (htif)\n' },
  'isa-alu': { exitCode: 0, output: '' },
  'isa-branch': { exitCode: 0, output: '' },
  'isa-mem': { exitCode: 0, output: '' },
  'isa-m': { exitCode: 0, output: '' },
  'isa-a': { exitCode: 0, output: '' },
  'isa-trap': { exitCode: 0, output: '' },
  'isa-sv32': { exitCode: 0, output: '' },
  'bench-loop': { exitCode: 0, output: 'bench-loop: 12000000 iterations, checksum 0xad527801\n' },
  'bench-loop-sv32': { exitCode: 0, output: SATP_SV32 },
  'bench-mem': { exitCode: 0, output: 'bench-mem: 32 x 1 MiB copy+checksum, checksum 0x6e1981e6\n' },
  'bench-mem-sv32': { exitCode: 0, output: SATP_SV32 },
  'coremark-lite': { exitCode: 0, output: 'coremark-lite: 1200 iterations, crc 0x00009e4c\n' },
  'coremark-lite-sv32': { exitCode: 0, output: SATP_SV32 },
  // EEMBC CoreMark: exit 0 means its port found every CRC right (test/hart/riscv-tests.test.ts checks them).
  coremark: { exitCode: 0, output: /\[0\]crcfinal {6}: 0xd340\n/ },
  'coremark-sv32': { exitCode: 0, output: /\[0\]crcfinal {6}: 0xd340\n/ },
  // 5000 iterations (1.5G instructions), for the bench's steady-state figure: with the compiler.
  'coremark-5k': { exitCode: 0, output: /\[0\]crcfinal {6}: 0xbd59\n/, opts: { jit: {}, maxInsns: 2_000_000_000 } },
  'htif-low-exit': { exitCode: 0 },
  'htif-syscall': { exitCode: 0, output: 'hello through the syscall proxy\n' },
  'selftest-fail': {
    exitCode: 7,
    check: (r) => {
      expect(r.reason).toBe('fail');
      expect(r.failedTest).toBe(7);
      expect(r.message).toBe('FAIL: test 7');
    },
  },
  flood: {
    exitCode: 124,
    opts: { maxInsns: 10_000 },
    check: (r) => {
      expect(r.reason).toBe('limit');
      expect(r.output).toMatch(/^(flood\n)+(f(l(o(od?)?)?)?)?$/);
      expect(r.output.length).toBeGreaterThan(1000);
    },
  },
  spin: {
    exitCode: 124,
    opts: { maxInsns: 10_000 },
    check: (r) => {
      expect(r.reason).toBe('limit');
      expect(r.insns).toBe(10_000);
      expect(r.message).toMatch(/^instruction limit reached \(10000 instructions\) at pc=0x800000[0-9a-f]{2}$/);
    },
  },
};

describe('guest programs', () => {
  // sguest-* are S-mode guests that need the VMM's SBI; test/vmm runs them.
  it('every committed bare-metal image has an expectation here', () => {
    const images = readdirSync(BIN)
      .filter((f) => f.endsWith('.elf') && !f.startsWith('sguest-'))
      .map((f) => f.slice(0, -4))
      .sort();
    expect(images).toEqual(Object.keys(GUESTS).sort());
  });

  for (const [name, want] of Object.entries(GUESTS)) {
    it(name, () => {
      const r = want.opts ? run(name, want.opts) : runCached(name);
      if (r.exitCode !== want.exitCode) throw new Error(`${name}: exit ${r.exitCode} (${r.reason}) ${r.message ?? ''}\n${r.output}`);
      if (typeof want.output === 'string') expect(r.output).toBe(want.output);
      else if (want.output) expect(r.output).toMatch(want.output);
      want.check?.(r);
    });
  }

  it('paging variants really run in S-mode with satp.MODE = Sv32', () => {
    for (const name of ['bench-loop-sv32', 'bench-mem-sv32', 'coremark-lite-sv32']) {
      const m = /satp=(0x[0-9a-f]+)/.exec(runCached(name).output);
      expect(m, name).not.toBeNull();
      expect(Number(m![1]) >>> 31, name).toBe(1);
    }
  });

  it('--trace prints one line per instruction without changing the result', () => {
    const lines: string[] = [];
    const r = run('isa-sv32', { trace: (l) => lines.push(l) });
    expect(r.exitCode).toBe(0);
    expect(lines.length).toBe(r.insns);
    expect(lines[0]).toBe('core   0: 3 0x80000000 (0x00000297) auipc t0, 0x0');
    // S-mode lines come from the virtual pc through a walk that sets no A/D bits.
    expect(lines.some((l) => l.startsWith('core   0: 1 '))).toBe(true);
    expect(r.insns).toBe(run('isa-sv32').insns);
  });

  it('streams output through onOutput', () => {
    const chunks: string[] = [];
    run('hello', { onOutput: (b) => chunks.push(Buffer.from(b).toString('latin1')) });
    expect(chunks.join('')).toBe('Hello from shadowvisor guest (uart16550)\nHello from shadowvisor guest (htif)\n');
  });

  it('rejects an image that does not fit the RAM size', () => {
    const r = run('bench-mem', { memSize: 1 << 20 });
    expect(r.exitCode).toBe(2);
    expect(r.message).toMatch(/outside RAM \[0x80000000, 0x80100000\)/);
  });
});

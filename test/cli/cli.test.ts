// The CLI contract that conformance suites rely on, driven through main().
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../src/cli.js';
import { parseBareMemSize as parseSize } from '../../src/vmm/bare-command.js';

const bin = (name: string) => fileURLToPath(new URL(`../../guest-programs/bin/${name}.elf`, import.meta.url));

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const text = (c: string | Uint8Array) => (typeof c === 'string' ? c : Buffer.from(c).toString('latin1'));
  const io: CliIo = {
    stdout: (c) => void (stdout += text(c)),
    stderr: (c) => void (stderr += text(c)),
    readFile: (p) => readFileSync(p),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

describe('shadowvisor run --bare', () => {
  it('exits 0 on a pass and prints guest output on stdout', async () => {
    const r = await cli('run', '--bare', bin('hello'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Hello from shadowvisor guest (uart16550)\nHello from shadowvisor guest (htif)\n');
    expect(r.stderr).toBe('');
  });

  it('exits with the failing test number and says so', async () => {
    const r = await cli('run', '--bare', bin('selftest-fail'));
    expect(r.code).toBe(7);
    expect(r.stderr).toBe('FAIL: test 7\n');
  });

  it('stops at --max-insns with exit 124', async () => {
    for (const args of [['--max-insns', '5000'], ['--max-insns=5000']]) {
      const r = await cli('run', '--bare', bin('spin'), ...args);
      expect(r.code).toBe(124);
      expect(r.stderr).toMatch(/^instruction limit reached \(5000 instructions\) at pc=0x8000[0-9a-f]{4}\n$/);
    }
  });

  it('a limit larger than the run does not trigger', async () => {
    expect((await cli('run', '--bare', bin('isa-alu'), '--max-insns', '1000000')).code).toBe(0);
  });

  it('rejects a file that is not an ELF with exit 2', async () => {
    const pkg = fileURLToPath(new URL('../../package.json', import.meta.url));
    const r = await cli('run', '--bare', pkg);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/package\.json: not an ELF file \(bad magic/);
  });

  it('reports a missing file with exit 2', async () => {
    const r = await cli('run', '--bare', '/nonexistent/x.elf');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read \/nonexistent\/x\.elf/);
  });

  it('honours --mem', async () => {
    expect((await cli('run', '--bare', bin('isa-alu'), '--mem', '64M')).code).toBe(0);
    const r = await cli('run', '--bare', bin('bench-mem'), '--mem', '1M');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outside RAM \[0x80000000, 0x80100000\)/);
  });

  it('--stats ends stderr with the run\'s counters; the guest\'s output and exit status are unchanged', async () => {
    const limited = await cli('run', '--bare', bin('spin'), '--max-insns', '5000', '--stats');
    expect(limited.code).toBe(124);
    expect(limited.stderr).toMatch(/^instruction limit reached \(5000 instructions\) at pc=0x8000[0-9a-f]{4}\n/);
    expect(limited.stderr).toMatch(/\nstats: 5000 instructions \(minstret \d+\) in \d+\.\d{3} s: [\d.]+ MIPS; machine set-up and ELF load [\d.]+ ms\n$/);

    const plain = await cli('run', '--bare', bin('isa-alu'));
    const interp = await cli('run', '--bare', bin('isa-alu'), '--stats');
    const jit = await cli('run', '--bare', bin('isa-alu'), '--stats', '--jit', '--jit-threshold', '1');
    for (const r of [interp, jit]) {
      expect(r.code).toBe(plain.code);
      expect(r.stdout).toBe(plain.stdout);
    }
    const count = (r: { stderr: string }) => /^stats: (\d+) instructions/m.exec(r.stderr)?.[1];
    expect(count(interp)).toBeDefined();
    expect(count(jit)).toBe(count(interp)); // both engines count the same instructions
    expect(interp.stderr).not.toMatch(/compiled blocks/);
    expect(jit.stderr).toMatch(/^stats: [\d.]+% of instructions in compiled blocks; jit: \d+ block starts, [1-9]\d* compiled/m);
    // A loop: its block compiled on first sight runs every pass after the first.
    const loop = await cli('run', '--bare', bin('spin'), '--max-insns', '200000', '--stats', '--jit', '--jit-threshold', '1');
    const share = /^stats: ([\d.]+)% of instructions in compiled blocks/m.exec(loop.stderr);
    expect(Number(share?.[1])).toBeGreaterThan(99);
  });

  it('--trace writes one line per instruction to stderr', async () => {
    const r = await cli('run', '--bare', bin('isa-alu'), '--trace');
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe('core   0: 3 0x80000000 (0x00000297) auipc t0, 0x0');
    expect(lines.every((l) => /^core   0: [013] 0x[0-9a-f]{8} \(/.test(l))).toBe(true);
  });

  it.each([
    [['frob'], /unknown command 'frob'/],
    [[], /usage: shadowvisor run --bare/],
    [['run'], /no guest image given/],
    [['run', '--bare'], /no ELF file given/],
    [['run', '--bare', bin('hello'), '--bogus'], /unknown option '--bogus'/],
    [['run', '--bare', bin('hello'), '--max-insns'], /--max-insns needs a value/],
    [['run', '--bare', bin('hello'), '--max-insns', '12x'], /not a positive integer/],
    [['run', '--bare', bin('hello'), '--mem', 'lots'], /cannot read size/],
    [['run', '--bare', bin('hello'), bin('spin')], /more than one ELF file given/],
  ])('usage error %j exits 2', async (argv, message) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/usage:/);
  });

  it('a bare-metal image run without --bare goes to the VMM, which says why it cannot run it', async () => {
    const r = await cli('run', bin('hello'), '--guest-mem', '8M', '--host-mem', '8M');
    expect(r.code).toBe(70);
    expect(r.stderr).toMatch(/keeps trapping and retires no instructions/);
  });

  it('--help exits 0', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage:/);
  });
});

describe('parseSize', () => {
  it.each([
    ['128M', 128 << 20],
    ['64m', 64 << 20],
    ['1G', 1 << 30],
    ['65536K', 64 << 20],
    ['8MiB', 8 << 20],
    ['1048576', 1 << 20],
  ])('%s', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['0', '100', '2G', '3000M', 'M'])('rejects %s', (text) => expect(() => parseSize(text)).toThrow());
});

describe('entry point', () => {
  it('src/cli.ts starts with a node shebang (bin: dist/cli.js)', async () => {
    const src = readFileSync(new URL('../../src/cli.ts', import.meta.url), 'utf8');
    expect(src.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});

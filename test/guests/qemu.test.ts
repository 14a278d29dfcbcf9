// Holds our results against QEMU's spike machine on the same images, when
// qemu-system-riscv32 is installed (it is not needed for the suite to pass).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runBareElf } from '../../src/vmm/bare-runner.js';

const QEMU = 'qemu-system-riscv32';
const hasQemu = spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;

// hello needs a UART (spike has none); htif-syscall and htif-low-exit use HTIF
// features QEMU 7.2 lacks; spin never ends.
const IMAGES = [
  'isa-alu', 'isa-branch', 'isa-mem', 'isa-m', 'isa-a', 'isa-trap', 'isa-sv32', 'selftest-fail',
  'bench-loop', 'bench-loop-sv32', 'bench-mem', 'bench-mem-sv32', 'coremark-lite', 'coremark-lite-sv32',
];

describe.skipIf(!hasQemu)('same exit status and console output as QEMU -machine spike', () => {
  it.each(IMAGES)('%s', (name) => {
    const path = fileURLToPath(new URL(`../../guest-programs/bin/${name}.elf`, import.meta.url));
    const q = spawnSync(QEMU, ['-machine', 'spike', '-bios', 'none', '-nographic', '-kernel', path], {
      encoding: 'latin1',
      timeout: 30_000,
    });
    const ours = runBareElf(new Uint8Array(readFileSync(path)), { maxInsns: 500_000_000 });
    expect(ours.exitCode).toBe(q.status);
    expect(ours.output).toBe(q.stdout.replace(/\r\n/g, '\n'));
  });
});

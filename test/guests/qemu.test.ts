// Holds our results against QEMU's spike machine on the same images, when
// qemu-system-riscv32 is installed (.ci/run installs it; a local run without it skips).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    // The HTIF console goes to a file: on -nographic stdio QEMU can drop characters.
    const dir = mkdtempSync(join(tmpdir(), 'sv-qemu-'));
    try {
      const out = join(dir, 'console.txt');
      const q = spawnSync(
        QEMU,
        [
          '-machine', 'spike', '-bios', 'none', '-display', 'none', '-monitor', 'none', '-serial', `file:${out}`,
          // Our ISA only: without C a misaligned jump target traps, as on our hart.
          '-cpu', 'rv32,c=false,f=false,d=false,h=false,zba=false,zbb=false,zbc=false,zbs=false',
          '-kernel', path,
        ],
        { encoding: 'latin1', timeout: 30_000 },
      );
      const ours = runBareElf(new Uint8Array(readFileSync(path)), { maxInsns: 500_000_000 });
      expect(ours.exitCode).toBe(q.status);
      expect(ours.output).toBe(readFileSync(out, 'latin1').replace(/\r\n/g, '\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// `npm run bench` arguments: a bad --elf is refused before any section runs.

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/bench/args.js';

const HELLO = fileURLToPath(new URL('../../guest-programs/bin/hello.elf', import.meta.url));
const BIN_DIR = fileURLToPath(new URL('../../guest-programs/bin/', import.meta.url));

describe('bench arguments', () => {
  it('reads the options and the --elf files in both spellings', () => {
    expect(parseBenchArgs(['--quick', '--only', 'process,hart', '--elf', HELLO, `--elf=${HELLO}`]))
      .toEqual({ quick: true, noQemu: false, only: ['process', 'hart'], elfs: [HELLO, HELLO] });
    expect(parseBenchArgs(['--no-qemu', '--only=vmm'])).toEqual({ quick: false, noQemu: true, only: ['vmm'], elfs: [] });
  });
  it('refuses an --elf it cannot read, naming it, before running anything', () => {
    expect(parseBenchArgs(['--elf', '/nonexistent/x.elf'])).toMatch(/^cannot read --elf \/nonexistent\/x\.elf: ENOENT/);
    expect(parseBenchArgs([`--elf=${BIN_DIR}`])).toBe(`cannot read --elf ${BIN_DIR}: not a regular file`);
  });
  it('refuses an unknown argument and a flag without its value', () => {
    expect(parseBenchArgs(['--fast'])).toBe("unknown argument '--fast'");
    expect(parseBenchArgs(['--elf'])).toBe("unknown argument '--elf'");
  });
});

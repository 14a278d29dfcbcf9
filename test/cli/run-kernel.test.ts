// `shadowvisor run --kernel Image [--initrd FILE] [--append ARGS] [--dtb-out FILE]`.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCommand, parseRunCommandArgs } from '../../src/vmm/run-command.js';
import { UsageError } from '../../src/args.js';

/** A RISC-V Image header over `j .`: enough for the loader, never ends. */
function spinImage(): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0x0000006f, true);
  dv.setUint32(8, 0x400000, true);
  dv.setUint32(16, 0x200000, true);
  b.set(Buffer.from('RSC\x05', 'latin1'), 56);
  return b;
}

async function run(argv: string[], files: Record<string, Uint8Array>) {
  let stdout = '';
  let stderr = '';
  const written: Record<string, Uint8Array> = {};
  const text = (c: string | Uint8Array) => (typeof c === 'string' ? c : Buffer.from(c).toString('latin1'));
  const code = await runCommand(argv, {
    stdout: (c) => void (stdout += text(c)),
    stderr: (c) => void (stderr += text(c)),
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw new Error('ENOENT: no such file');
      return f;
    },
    writeFile: (p, d) => void (written[p] = d),
  });
  return { code, stdout, stderr, written };
}

describe('run --kernel', () => {
  it('parses the Linux options', () => {
    expect(parseRunCommandArgs(['--kernel', 'I', '--initrd', 'R', '--append', 'a b', '--dtb-out', 'D'])).toMatchObject({
      file: 'I', linux: { initrd: 'R', append: 'a b', dtbOut: 'D' },
    });
    expect(parseRunCommandArgs(['x.elf'])).not.toHaveProperty('linux');
  });

  it('refuses --initrd, --append and --dtb-out without --kernel, and an ELF beside --kernel', () => {
    for (const o of ['--initrd', '--append', '--dtb-out']) {
      expect(() => parseRunCommandArgs(['x.elf', o, 'v'])).toThrow(new UsageError(`${o} needs --kernel`));
    }
    expect(() => parseRunCommandArgs(['--kernel', 'I', 'x.elf'])).toThrow(/boot one of them/);
  });

  it('boots the Image and writes the device tree with --dtb-out', async () => {
    const r = await run(['--kernel', 'I', '--initrd', 'R', '--append', 'console=hvc0', '--dtb-out', 'D', '--max-insns', '1000'],
      { I: spinImage(), R: new Uint8Array(10) });
    expect(r.stderr).toMatch(/instruction limit reached \(1000 instructions\) at pc=0x80400000/);
    expect(r.code).toBe(124);
    const dtb = r.written.D!;
    expect(new DataView(dtb.buffer, dtb.byteOffset).getUint32(0)).toBe(0xd00dfeed);
    expect(Buffer.from(dtb).toString('latin1')).toContain('console=hvc0');
  });

  it('writes --dtb-out to the file system by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sv-dtb-'));
    const out = join(dir, 'tree.dtb');
    let stderr = '';
    const code = await runCommand(['--kernel', 'I', '--dtb-out', out, '--max-insns', '10'], {
      stdout: () => {}, stderr: (c) => void (stderr += String(c)), readFile: () => spinImage(),
    });
    expect(code).toBe(124);
    expect(readFileSync(out).readUInt32BE(0)).toBe(0xd00dfeed);
  });

  it('a file that is not an Image, and a missing initrd, exit 2 with one line', async () => {
    const bad = await run(['--kernel', 'I'], { I: new Uint8Array(200) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('shadowvisor run: I: not a RISC-V Linux Image (no "RSC\\x05" magic at offset 56)\n');
    const noInitrd = await run(['--kernel', 'I', '--initrd', 'nope'], { I: spinImage() });
    expect(noInitrd.code).toBe(2);
    expect(noInitrd.stderr).toMatch(/^shadowvisor run: cannot read nope: ENOENT/);
  });
});

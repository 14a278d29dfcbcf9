// The command table's parsing and completion, and commands that write files,
// without a golden transcript.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS, completions, lookup, parseLine } from '../../src/console/commands.js';
import { Interpreter } from '../../src/console/interpreter.js';
import { ConsoleError, Session } from '../../src/console/session.js';

describe('command line parsing', () => {
  it('splits the gdb-style /format suffix from the command word', () => {
    expect(parseLine('x/4xw 0x80000000')).toEqual({ word: 'x', suffix: '4xw', args: ['0x80000000'] });
    expect(parseLine('  info   spte  gfn 0x10 ')).toEqual({ word: 'info', suffix: '', args: ['spte', 'gfn', '0x10'] });
    expect(parseLine('')).toBeNull();
    expect(parseLine('   # a comment')).toBeNull();
  });

  it('matches exact names and aliases first, then a unique prefix; refuses ambiguity', () => {
    expect(lookup(COMMANDS, 's', 'command').name).toBe('step');
    expect(lookup(COMMANDS, 'c', 'command').name).toBe('continue');
    expect(lookup(COMMANDS, 'x', 'command').name).toBe('x');
    expect(lookup(COMMANDS, 'xp', 'command').name).toBe('xp');
    expect(lookup(COMMANDS, 'gva', 'command').name).toBe('gva2gpa');
    expect(() => lookup(COMMANDS, 'st', 'command')).toThrow(ConsoleError);
    expect(() => lookup(COMMANDS, 'st', 'command')).toThrow(/ambiguous command 'st': step, stats, stop/);
    expect(() => lookup(COMMANDS, 'zzz', 'command')).toThrow(/unknown command 'zzz'/);
  });

  it('completes command names and info subcommands', () => {
    expect(completions('inf')).toEqual(['info ']);
    expect(completions('st')).toEqual(['step ', 'stats ', 'stop ']);
    expect(completions('info r')).toEqual(['info registers', 'info rmap']);
    expect(completions('i me')).toEqual(['i memslots', 'i meminfo', 'i mem']);
    expect(completions('help gpa')).toEqual(['help gpa2hva', 'help gpa2hpa']);
    expect(completions('help info sp')).toEqual([]);
    expect(completions('step 1')).toEqual([]);
  });
});

describe('memmap --svg', () => {
  it('writes the two grids as an SVG and says where', async () => {
    const elf = readFileSync(fileURLToPath(new URL('../../guest-programs/bin/sguest-small.elf', import.meta.url)));
    let out = '';
    let interp: Interpreter | null = null;
    const s = new Session(elf, { config: { guestMemBytes: 4 << 20, hostMemBytes: 2 << 20, protocol: 'modern' }, onOutput: (b) => interp?.guestOutput(b) });
    interp = new Interpreter(s, { json: false, write: (t) => void (out += t) });
    const file = join(mkdtempSync(join(tmpdir(), 'svconsole-')), 'mm.svg');
    expect(await interp.execute('continue 300000')).toBe(true);
    expect(await interp.execute(`memmap --svg ${file}`)).toBe(true);
    expect(out).toMatch(new RegExp(`wrote ${file} \\(\\d+ bytes\\)`));
    const svg = readFileSync(file, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    // 512 host frames and 1024 guest pages, plus the legends' swatches.
    expect((svg.match(/<rect /g) ?? []).length).toBe(512 + 1024 + 8 + 5);
    expect(await interp.execute('memmap --svg /nonexistent-dir/x.svg')).toBe(false);
    expect(out).toMatch(/error: cannot write \/nonexistent-dir\/x\.svg: ENOENT/);
  });
});

// The command table's parsing and completion, and commands that write files,
// without a golden transcript.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS, INFO_COMMANDS, completions, lookup, parseLine } from '../../src/console/commands.js';
import { Interpreter } from '../../src/console/interpreter.js';
import { main } from '../../src/cli.js';
import { ConsoleError, Session, type SessionOptions } from '../../src/console/session.js';

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
    expect(completions('bal')).toEqual(['balloon ']);
    expect(completions('swapo')).toEqual(['swapout ']);
    expect(completions('info ba')).toEqual(['info balloon']);
    expect(completions('info pl')).toEqual(['info plic']);
    expect(completions('info v')).toEqual(['info virtio']);
    // gdb's info b still means the breakpoints, though balloon shares the prefix.
    expect(lookup(INFO_COMMANDS, 'b', 'info subcommand').name).toBe('break');
  });
});

const sguest = () => readFileSync(fileURLToPath(new URL('../../guest-programs/bin/sguest-small.elf', import.meta.url)));

/** A console on sguest-small whose answers are collected as JSON objects. */
function jsonConsole(config: Partial<SessionOptions['config']> = {}) {
  const lines: string[] = [];
  let interp: Interpreter | null = null;
  const s = new Session(sguest(), { config: { guestMemBytes: 4 << 20, hostMemBytes: 2 << 20, protocol: 'modern', ...config }, onOutput: (b) => interp?.guestOutput(b) });
  interp = new Interpreter(s, { json: true, write: (t) => void lines.push(...t.split('\n').filter((l) => l !== '')) });
  const run = async (line: string) => {
    await interp.execute(line);
    return JSON.parse(lines[lines.length - 1]!) as { command: string; ok: boolean; result?: Record<string, unknown>; error?: string };
  };
  return { s, run };
}

describe('balloon, info balloon, info plic, info virtio', () => {
  it('answer in JSON, and balloon SIZE sets the device target (a bare number is MiB)', async () => {
    const { s, run } = jsonConsole({ balloon: { targetPages: 256, statsIntervalTicks: 10_000_000 } });
    expect((await run('info balloon')).result).toMatchObject({ targetPages: 256, actualPages: 0, targetMib: 1, qemuActualMib: 4, driverOk: false, statsUpdatedAt: null });
    expect((await run('balloon 2'))).toMatchObject({ ok: true, result: { targetPages: 512, previousTargetPages: 256, driverOk: false } });
    expect(s.vmm.balloon!.stats().targetPages).toBe(512);
    expect((await run('balloon 512K')).result).toMatchObject({ targetPages: 128 });
    expect((await run('balloon 0')).result).toMatchObject({ targetPages: 0 });
    expect(await run('balloon 5M')).toMatchObject({ ok: false, error: "balloon: 5M is more than the guest's RAM (4 MiB)" });
    expect(await run('balloon 6K')).toMatchObject({ ok: false, error: 'balloon: 6K is not a positive multiple of 4 KiB' });
    expect(s.vmm.balloon!.stats().targetPages).toBe(0);
    expect((await run('info virtio')).result).toMatchObject({ devices: [{ name: 'virtio-balloon', base: 0x10001000, irq: 1, deviceId: 5, driverOk: false }] });
    expect((await run('info plic')).result).toMatchObject({ sources: [{ irq: 1, device: 'virtio-balloon' }] });
  });

  it("the console takes run's balloon options, the schedule included", async () => {
    let out = '';
    const io = {
      stdout: (c: string | Uint8Array) => void (out += String(c)),
      stderr: (c: string | Uint8Array) => void (out += String(c)),
      readFile: (p: string) => readFileSync(p),
      readScript: () => 'info balloon\ncontinue until 20000\ninfo balloon\n',
    };
    const elf = fileURLToPath(new URL('../../guest-programs/bin/sguest-small.elf', import.meta.url));
    const code = await main(['console', elf, '--guest-mem', '4M', '--host-mem', '2M', '--balloon', '1M', '--balloon-stats', '1', '--balloon-schedule', '1ms:2M', '--json', '--script', '-'], io);
    expect(code).toBe(0);
    const answers = out.trim().split('\n').map((l) => JSON.parse(l) as { command?: string; result?: { targetPages?: number; statsIntervalTicks?: number } });
    const infos = answers.filter((a) => a.command === 'info balloon');
    expect(infos.map((a) => a.result?.targetPages)).toEqual([256, 512]);
    expect(infos[0]!.result?.statsIntervalTicks).toBe(10_000_000);
  });

  it('without a balloon: balloon and info balloon say there is none; info virtio lists nothing', async () => {
    const { run } = jsonConsole();
    expect(await run('balloon 1M')).toMatchObject({ ok: false, error: expect.stringMatching(/^no balloon device \(start the console with --balloon SIZE/) });
    expect(await run('info balloon')).toMatchObject({ ok: false, error: expect.stringMatching(/^no balloon device/) });
    expect((await run('info virtio')).result).toEqual({ devices: [] });
  });
});

describe('swapout GFN', () => {
  it('answers in JSON with the slot and the sptes it zapped', async () => {
    const { run } = jsonConsole();
    await run('continue 300000');
    expect((await run('swapout 0x8000b')).result).toEqual({ gfn: 0x8000b, hva: 0x1000b000, result: 'freed', pfn: 0xb, slot: 0, written: true, sptesZapped: 1 });
    expect((await run('gpa2hpa 0x8000b000')).result).toMatchObject({ host: { kind: 'swap', slot: 0 } });
    expect((await run('audit')).result).toEqual({ violations: [] });
  });

  it('under --protocol pin, refuses a page KVM has pinned, with the reason, and leaves it mapped', async () => {
    const { s, run } = jsonConsole({ protocol: 'pin' });
    await run('continue 300000');
    const chain = async () => {
      const r = (await run('info spte gfn 0x8000b')).result!;
      return { host: r.host, rmap: r.rmap, tlb: r.tlb };
    };
    const before = await chain();
    const r = await run('swapout 0x8000b');
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^gfn 0x8000b \(hva 0x1000b000\) stays resident in pfn 0x[0-9a-f]+: the page is pinned \(a FOLL_PIN reference: refcount \d+ >= 1024\); reclaim must leave it \(--protocol pin: KVM pins every page an spte maps; drop-sptes unpins\)$/);
    // Mapped as before (reclaim activates the page it could not take, as shrink_folio_list does).
    expect(await chain()).toEqual(before);
    expect(s.vmm.kernel.stats().pswpout).toBe(0);
    // Unpinned by the zap, the same page goes.
    await run('drop-sptes');
    expect((await run('swapout 0x8000b')).result).toMatchObject({ result: 'freed', sptesZapped: 0 });
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

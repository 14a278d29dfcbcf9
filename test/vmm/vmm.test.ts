import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auditKernel } from '../../src/host/index.js';
import { parseElf } from '../../src/vmm/elf.js';
import { runCommand } from '../../src/vmm/run-command.js';
import { EXIT_BAD_ELF, EXIT_INTERNAL, EXIT_LIMIT, EXIT_OOM, Vmm, type VmmConfig, type VmmResult } from '../../src/vmm/vmm.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const image = (name: string) => readFileSync(new URL(`${name}.elf`, BIN));

function boot(name: string, config: Partial<VmmConfig> = {}): VmmResult {
  const vmm = new Vmm({ guestMemBytes: 8 << 20, hostMemBytes: 8 << 20, protocol: 'modern', seed: 1, ...config });
  vmm.boot(image(name));
  return vmm.run();
}

/** sguest-small: 2 MiB of data from 0x8000b000, checked through two ASIDs; 4 MiB of guest RAM over 2 MiB of host RAM. */
function workload(protocol: VmmConfig['protocol'], seed = 1): VmmResult {
  return boot('sguest-small', { guestMemBytes: 4 << 20, hostMemBytes: 2 << 20, protocol, seed });
}

const HELLO_OUTPUT = [
  'sguest-hello: hart 0 up in S-mode',
  'sbi: spec v2.0 impl 0x00005356',
  'probe: base=1 time=1 hsm=1 srst=1 dbcn=1 bogus=0',
  'hsm: status=0 start(self)=ALREADY_AVAILABLE base.fid99=NOT_SUPPORTED',
  'timer: interrupt taken, not early, stip cleared',
  'suspend: resumed, stip pending',
  'console: getchar=-1',
  'sguest-hello: done',
  '',
].join('\n');

const WORKLOAD_OK = [
  'sguest-workload: 2 MiB at pa 0x8000b000, AS1 asid 1 @ 0x40000000, AS2 asid 2 @ 0x60000000',
  '1. write A via AS1: checksum 0xa8dcfb32',
  '2. read A via AS2:  checksum 0xa8dcfb32',
  '3. write B via AS2: checksum 0x43f26ba8',
  '4. read B via AS1:  checksum 0x43f26ba8',
  'sguest-workload: OK',
  '',
].join('\n');

describe('Vmm: sguest-hello', () => {
  it('prints through the SBI console, takes the S-mode timer interrupt and exits 0 through SRST', () => {
    const r = boot('sguest-hello');
    expect(r.output).toBe(HELLO_OUTPUT);
    expect(r).toMatchObject({ exitCode: 0, reason: 'shutdown' });
    expect(r.message).toBeUndefined();
    expect(r.stats.sbiCalls).toBeGreaterThan(10);
    expect(r.stats.guest.warnings).toBe(0);
  });

  it('hands console input to the guest (legacy getchar)', () => {
    const r = boot('sguest-hello', { consoleInput: new TextEncoder().encode('x') });
    expect(r.output).toBe(HELLO_OUTPUT.replace('getchar=-1', 'getchar=x'));
  });

  it('stops at --max-insns with exit 124', () => {
    const r = boot('sguest-hello', { maxInsns: 100 });
    expect(r.exitCode).toBe(EXIT_LIMIT);
    expect(r.reason).toBe('limit');
    expect(r.message).toMatch(/instruction limit reached \(100 instructions\)/);
  });

  it('stops a guest that only takes traps with a message naming the trap', () => {
    // An illegal first instruction with stvec still 0: the trap goes to 0, which is
    // not RAM, and the fetch fault there goes to 0 again, forever.
    const elf = new Uint8Array(image('sguest-hello'));
    const img = parseElf(elf);
    const seg = img.segments.find((s) => s.paddr <= img.entry && img.entry < s.paddr + s.filesz)!;
    const at = seg.offset + (img.entry - seg.paddr);
    elf.fill(0, at, at + 4);
    const vmm = new Vmm({ guestMemBytes: 8 << 20, hostMemBytes: 8 << 20, protocol: 'modern' });
    vmm.boot(elf);
    const r = vmm.run();
    expect(r.exitCode).toBe(EXIT_INTERNAL);
    expect(r.reason).toBe('guest-fault');
    expect(r.message).toMatch(/keeps trapping and retires no instructions .*scause=0x00000001 sepc=0x00000000 .*stvec=0x00000000/);
  });

  it('answers the typed actions', () => {
    const vmm = new Vmm({ guestMemBytes: 8 << 20, hostMemBytes: 8 << 20, protocol: 'modern' });
    expect(vmm.dispatch({ type: 'boot', elf: image('sguest-hello') })).toEqual({ type: 'ok' });
    const res = vmm.dispatch({ type: 'run' });
    expect(res.type).toBe('result');
    if (res.type === 'result') expect(res.result.exitCode).toBe(0);
    const stats = vmm.dispatch({ type: 'get-stats' });
    expect(stats.type === 'stats' && stats.stats.instructions).toBeGreaterThan(1000);
    const dump = vmm.dispatch({ type: 'dump' });
    expect(dump.type === 'dump' && dump.text).toMatch(/vmm: protocol modern/);
    expect(vmm.state).toBe('exited');
  });
});

describe('Vmm: workload bigger than host RAM (guest RAM 2x host RAM)', () => {
  it.each(['modern', 'v7'] as const)('%s: correct checksums through both address spaces, with swap-outs and swap-ins', (protocol) => {
    const r = workload(protocol);
    expect(r.output).toBe(WORKLOAD_OK);
    expect(r).toMatchObject({ exitCode: 0, reason: 'shutdown' });
    const host = r.stats.host;
    expect(host.pswpout).toBeGreaterThan(500);
    expect(host.pswpin).toBeGreaterThan(500);
    expect(host.oomKill).toBe(0);
    expect(host.warnings).toBe(0);
    const g = r.stats.guest;
    expect(g.invalidations).toBeGreaterThan(500);
    expect(g.pf_fixed).toBeGreaterThan(1024); // every data page, through two address spaces
    expect(g.warnings).toBe(0);
  });

  it('pin: pinned guest RAM cannot be swapped, so the host OOM-kills the VMM', () => {
    const r = workload('pin');
    expect(r.exitCode).toBe(EXIT_OOM);
    expect(r.reason).toBe('oom');
    expect(r.message).toMatch(/OOM killer killed the VMM process[\s\S]*Out of memory: Killed process \d+ \(vmm\)/);
    expect(r.output).not.toMatch(/OK/);
    expect(r.stats.host.oomKill).toBe(1);
    expect(r.stats.guest.invalidations).toBe(0);
  });

  it.each(['modern', 'v7', 'pin'] as const)('%s: tearing the VM and the VMM process down gives every frame back', (protocol) => {
    const vmm = new Vmm({ guestMemBytes: 4 << 20, hostMemBytes: 2 << 20, protocol, seed: 3 });
    vmm.boot(image('sguest-small'));
    vmm.run();
    const k = vmm.kernel;
    expect(auditKernel(k)).toEqual([]);
    expect(k.frames.nrFree).toBe(k.frames.nrFrames);
    expect(k.swap.nrUsed).toBe(0);
    expect(k.processes.size).toBe(0);
  });

  it('still completes with a second process competing for host memory', () => {
    const r = boot('sguest-small', { guestMemBytes: 4 << 20, hostMemBytes: 3 << 20, pressure: { bytes: 2 << 20 } });
    expect(r.output).toBe(WORKLOAD_OK);
    expect(r.exitCode).toBe(0);
    expect(r.stats.host.pswpout).toBeGreaterThan(0);
  });

  it('is reproducible from the seed', () => {
    const a = workload('modern', 7);
    const b = workload('modern', 7);
    expect(b.stats).toEqual(a.stats);
    expect(b.output).toBe(a.output);
  });
});

describe('Vmm: images it cannot boot', () => {
  it('rejects a file that is not an ELF with exit 2', () => {
    const vmm = new Vmm({ guestMemBytes: 4 << 20, hostMemBytes: 4 << 20, protocol: 'modern' });
    expect(vmm.boot(new Uint8Array([1, 2, 3, 4]))).toMatch(/not an ELF file/);
    expect(vmm.run()).toMatchObject({ exitCode: EXIT_BAD_ELF, reason: 'bad-elf' });
  });

  it('rejects an image linked outside guest RAM before writing anything', () => {
    const vmm = new Vmm({ guestMemBytes: 4 << 20, hostMemBytes: 4 << 20, protocol: 'modern' });
    expect(vmm.boot(image('sguest-workload'))).toMatch(/outside RAM/);
    const r = vmm.run();
    expect(r.exitCode).toBe(EXIT_BAD_ELF);
    expect(r.stats.host.pgalloc).toBe(0);
  });

  it('checks its configuration', () => {
    expect(() => new Vmm({ guestMemBytes: 1000, hostMemBytes: 4 << 20, protocol: 'modern' })).toThrow(/multiple of 4 KiB/);
    expect(() => new Vmm({ guestMemBytes: 3 * 2 ** 30, hostMemBytes: 4 << 20, protocol: 'modern' })).toThrow(/below 4 GiB/);
  });
});

function captureIo() {
  const io = { out: '', err: '' };
  return {
    io,
    sink: {
      stdout: (c: string | Uint8Array) => (io.out += typeof c === 'string' ? c : Buffer.from(c).toString('latin1')),
      stderr: (c: string | Uint8Array) => (io.err += typeof c === 'string' ? c : Buffer.from(c).toString('latin1')),
    },
  };
}

describe('shadowvisor run (runCommand)', () => {
  it.each([
    [['--protocol', 'foo', 'x.elf'], /--protocol: 'foo' is not one of modern, v7, pin/],
    [['--guest-mem', '12Q', 'x.elf'], /--guest-mem: cannot read size '12Q'/],
    [['--host-mem', '1000', 'x.elf'], /--host-mem: 1000 is not a positive multiple of 4 KiB/],
    [['--host-mem', '16K', 'x.elf'], /--host-mem: must be at least 256K/],
    [['--seed', '-1', 'x.elf'], /--seed: '-1' is not a non-negative integer/],
    [['--bogus', 'x.elf'], /unknown option '--bogus'/],
    [[], /no guest image given/],
    [['a.elf', 'b.elf'], /more than one guest image given/],
    [['x.elf', '--max-insns'], /--max-insns needs a value/],
  ])('%j is a usage error (exit 2, usage on stderr)', async (argv, msg) => {
    const { io, sink } = captureIo();
    expect(await runCommand(argv, sink)).toBe(2);
    expect(io.err).toMatch(msg);
    expect(io.err).toMatch(/usage: shadowvisor run FILE\.elf/);
    expect(io.out).toBe('');
  });

  it('--help prints the usage and exits 0', async () => {
    const { io, sink } = captureIo();
    expect(await runCommand(['--help'], sink)).toBe(0);
    expect(io.out).toMatch(/--protocol P/);
  });

  it('an unreadable file exits 2', async () => {
    const { io, sink } = captureIo();
    expect(await runCommand(['/nonexistent/guest.elf'], sink)).toBe(2);
    expect(io.err).toMatch(/cannot read \/nonexistent\/guest\.elf/);
  });

  it('prints the guest output, then the summary, and exits with the guest status', async () => {
    const { io, sink } = captureIo();
    const file = new URL('sguest-small.elf', BIN).pathname;
    const code = await runCommand([file, '--guest-mem', '4M', '--host-mem', '2M', '--protocol', 'v7'], sink);
    expect(code).toBe(0);
    expect(io.out.startsWith(WORKLOAD_OK)).toBe(true);
    expect(io.out).toMatch(/--- shadowvisor: guest exit status 0 \(shutdown\), protocol v7, seed 1/);
    expect(io.out).toMatch(/page faults: +\d+ taken, \d+ fixed, \d+ retries, 0 reflected to the guest/);
    expect(io.out).toMatch(/swap: +[1-9]\d* pages out, [1-9]\d* pages in/);
    expect(io.out).toMatch(/mmu notifier: +[1-9]\d* invalidations, \d+ aging calls, \d+ young hits/);
    // Code and stack pages are still mapped when the guest shuts down.
    expect(io.out).toMatch(/rmap chains: +1: [1-9]\d*/);
    expect(io.err).toBe('');
  });

  it('--json puts the summary on the last line as one object', async () => {
    const { io, sink } = captureIo();
    const file = new URL('sguest-small.elf', BIN).pathname;
    const code = await runCommand([file, '--guest-mem=4M', '--host-mem=2M', '--protocol=pin', '--json'], sink);
    expect(code).toBe(EXIT_OOM);
    const lines = io.out.trimEnd().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]!);
    expect(summary).toMatchObject({ exitCode: EXIT_OOM, reason: 'oom', protocol: 'pin', oomKills: 1 });
    expect(summary.pageFaults.fixed).toBeGreaterThan(0);
    expect(io.err).toMatch(/OOM killer/);
  });
});

// Hostile input and runaway guests, driven through main() in this process: every
// case ends in a clear message and a bounded run (issue: "every one of these
// ends in a clear message and a bounded run"). test/cli/process.test.ts holds
// the cases that need a real process and a real pipe.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../src/cli.js';
import { driveRun, readImageFile } from '../../src/cli-io.js';
import { OUTPUT_KEEP_BYTES as BARE_KEEP, startBareElf, BareRun } from '../../src/vmm/bare-runner.js';
import { OUTPUT_KEEP_BYTES as VMM_KEEP, Vmm } from '../../src/vmm/vmm.js';

const bin = (name: string) => fileURLToPath(new URL(`../../guest-programs/bin/${name}.elf`, import.meta.url));

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], over: Partial<CliIo> = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const text = (c: string | Uint8Array) => (typeof c === 'string' ? c : Buffer.from(c).toString('latin1'));
  const io: CliIo = {
    stdout: (c) => void (stdout += text(c)),
    stderr: (c) => void (stderr += text(c)),
    readFile: readImageFile,
    ...over,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

describe('a guest that faults forever', () => {
  // stvec at the next instruction and satp at an empty root: KVM reflects every
  // fetch fault to the guest and no instruction begins. Before reflected faults
  // counted as traps taken, vcpu.run never returned and these hung.
  it('stops at --max-insns (a reflected fault is a trap taken)', async () => {
    const r = await cli(['run', bin('sguest-fault-forever'), '--guest-mem', '8M', '--host-mem', '8M', '--max-insns', '200000', '--json']);
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/instruction limit reached \(200000 instructions\)/);
    const summary = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!);
    expect(summary.pageFaults.guest).toBeGreaterThan(150_000);
  }, 30_000);

  it('without a limit, the trap-storm watchdog ends it with the trap named', async () => {
    const r = await cli(['run', bin('sguest-fault-forever'), '--guest-mem', '8M', '--host-mem', '8M']);
    expect(r.code).toBe(70);
    expect(r.stderr).toMatch(/keeps trapping and retires no instructions .* scause=0x0000000c .* stvec=0x80400[0-9a-f]{3}/);
  }, 60_000);
});

describe('console floods', () => {
  /** An io whose reader takes `window` bytes, then is behind until drained() (a slow pipe). */
  function slowReader(window: number) {
    let sinceDrain = 0;
    let maxBetweenDrains = 0;
    let drains = 0;
    let bytes = 0;
    let tail = '';
    const io = {
      stdout: (c: string | Uint8Array) => {
        const n = typeof c === 'string' ? c.length : c.length;
        bytes += n;
        sinceDrain += n;
        maxBetweenDrains = Math.max(maxBetweenDrains, sinceDrain);
        tail = (tail + (typeof c === 'string' ? c : Buffer.from(c).toString('latin1'))).slice(-64);
      },
      congested: () => sinceDrain >= window,
      drained: async () => {
        drains++;
        sinceDrain = 0;
      },
    };
    return { io, stats: () => ({ bytes, maxBetweenDrains, drains, tail }) };
  }

  it('the VMM waits for a slow reader: no more than one scheduler step of output between pauses', async () => {
    const vmm = new Vmm({ guestMemBytes: 8 << 20, hostMemBytes: 8 << 20, protocol: 'modern', maxInsns: 3_000_000, onOutput: (b) => reader.io.stdout(b) });
    const reader = slowReader(4096);
    expect(vmm.boot(readImageFile(bin('sguest-flood-dbcn'), 8 << 20))).toBeNull();
    const r = await driveRun(reader.io, (pause) => vmm.resume(pause));
    expect(r?.reason).toBe('limit');
    const s = reader.stats();
    expect(s.drains).toBeGreaterThan(10);
    // One vCPU quantum (4096 instructions) holds at most one DBCN chunk (4 KiB) and a few lines.
    expect(s.maxBetweenDrains).toBeLessThan(4096 + 2 * 4096);
    expect(s.tail).toMatch(/flood \d{10}\n$/);
  }, 30_000);

  it('the bare runner waits for a slow reader: a slice holds at most 64 KiB of output', async () => {
    const reader = slowReader(1);
    const run = startBareElf(readImageFile(bin('flood'), 1 << 20), { maxInsns: 5_000_000, onOutput: (b) => reader.io.stdout(b) });
    expect(run).toBeInstanceOf(BareRun);
    const r = await driveRun(reader.io, (pause) => (run as BareRun).resume(pause));
    expect(r?.reason).toBe('limit');
    const s = reader.stats();
    expect(s.drains).toBeGreaterThan(10);
    expect(s.maxBetweenDrains).toBeLessThanOrEqual(64 << 10);
  }, 30_000);

  it('a flood streams everything but the result keeps a bounded head and counts the rest', () => {
    let streamed = 0;
    const bare = startBareElf(readImageFile(bin('flood'), 1 << 20), { maxInsns: 20_000_000, onOutput: (b) => void (streamed += b.length) });
    const r = (bare as BareRun).resume(() => false)!;
    expect(streamed).toBeGreaterThan(BARE_KEEP);
    expect(r.output.length).toBe(BARE_KEEP);
    expect(r.outputDropped).toBe(streamed - BARE_KEEP);

    let vmmStreamed = 0;
    const vmm = new Vmm({ guestMemBytes: 8 << 20, hostMemBytes: 8 << 20, protocol: 'modern', maxInsns: 40_000_000, onOutput: (b) => void (vmmStreamed += b.length) });
    vmm.boot(readImageFile(bin('sguest-flood-dbcn'), 8 << 20));
    const v = vmm.run();
    expect(vmmStreamed).toBeGreaterThan(VMM_KEEP);
    expect(v.output.length).toBe(VMM_KEEP);
    expect(v.outputDropped).toBe(vmmStreamed - VMM_KEEP);
  }, 60_000);

  it('a reader that goes away ends the run quietly with 141, in both modes', async () => {
    for (const argv of [['run', bin('sguest-flood-uart'), '--guest-mem', '8M', '--host-mem', '8M'], ['run', '--bare', bin('flood')]]) {
      let closed = false;
      let seen = 0;
      const r = await cli(argv, {
        stdout: (c) => {
          seen += c.length;
          if (seen > 10_000) closed = true;
        },
        congested: () => closed,
        drained: async () => {},
        closed: () => closed,
      });
      expect(r.code).toBe(141);
      expect(r.stderr).toBe('');
    }
  }, 30_000);
});

describe('a reader that goes away while the pipe never fills', () => {
  // EPIPE arrives as an event, after the write that met it: a run that never
  // congests the pipe must still turn to the event loop to learn of it.
  it.each([
    [['run', bin('sguest-flood-dbcn'), '--guest-mem', '8M', '--host-mem', '8M', '--max-insns', '100000000']],
    [['run', '--bare', bin('flood'), '--max-insns', '400000000']],
  ])('%j ends with 141, not at its limit', async (argv) => {
    let closed = false;
    const r = await cli(argv, {
      stdout: () => {
        if (!closed) setImmediate(() => void (closed = true));
      },
      congested: () => false,
      drained: async () => {},
      closed: () => closed,
    });
    expect(r.code).toBe(141);
    expect(r.stderr).toBe('');
  }, 60_000);
});

describe('files that are not guest images', () => {
  it.each([['run'], ['run', '--bare']])('%j refuses a device and a directory without reading them', async (...cmd) => {
    for (const [file, msg] of [['/dev/zero', /not a regular file/], ['/dev/urandom', /not a regular file/], [tmpdir(), /is a directory/]] as const) {
      const r = await cli([...cmd, file]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('refuses a file larger than the guest RAM it would have to fit in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shadowvisor-'));
    const big = join(dir, 'big.elf');
    writeFileSync(big, Buffer.alloc((1 << 20) + 1));
    for (const argv of [['run', '--bare', big, '--mem', '1M'], ['run', big, '--guest-mem', '1M']]) {
      const r = await cli(argv);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/1048577 bytes is larger than the guest's RAM \(1048576 bytes\)/);
    }
  });
});

describe('internal errors', () => {
  it('a bug of ours says "internal error" once, with the command to reproduce, and exits 70', async () => {
    const boom = () => {
      throw new TypeError('sink exploded');
    };
    const bare = await cli(['run', '--bare', bin('hello')], { stdout: boom });
    expect(bare.code).toBe(70);
    expect(bare.stderr.match(/internal error/g)).toHaveLength(1);
    expect(bare.stderr).toMatch(/internal error: TypeError: sink exploded \(at /);
    expect(bare.stderr).toMatch(/to reproduce: shadowvisor run --bare .*hello\.elf\n$/);

    let stderr = '';
    const vmm = await cli(['run', bin('sguest-hello'), '--guest-mem', '8M', '--host-mem', '8M', '--seed', '7'], {
      stdout: boom,
      stderr: (c) => void (stderr += String(c)),
    });
    expect(vmm.code).toBe(70);
    expect(stderr.match(/internal error/g)).toHaveLength(1);
    expect(stderr).toMatch(/seed 7; to reproduce: shadowvisor run .*sguest-hello\.elf --guest-mem 8M --host-mem 8M --seed 7\n/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('options mean what they say in every command', () => {
  const hello = bin('sguest-hello');
  it.each([
    [['run', '--bare=1', bin('hello')], /--bare takes no value/],
    [['run', '--bare', bin('hello'), '--trace=yes'], /--trace takes no value/],
    [['run', hello, '--json=1'], /--json takes no value/],
    [['run', hello, '--max-insns', '0'], /--max-insns: '0' is not a positive integer/],
    [['run', '--bare', bin('hello'), '--max-insns', '0'], /--max-insns: '0' is not a positive integer/],
    [['run', hello, '--pressure', '4G'], /--pressure: 4G is more than the host's RAM and swap together \(at most 98304K with --host-mem 32768K\)/],
    [['run', hello, '--max-insns', '--json'], /--max-insns needs a value/],
    [['run', hello, '--trace'], /unknown option '--trace'/],
    [['run', '--bare', bin('hello'), '--guest-mem', '8M'], /unknown option '--guest-mem'/],
    [['run', hello, '--seed', '-3'], /--seed: '-3' is not a non-negative integer/],
  ])('%j', async (argv, msg) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stdout).toBe('');
  });

  it('`--` ends the options in both modes', async () => {
    const vmm = await cli(['run', '--guest-mem', '8M', '--host-mem', '8M', '--', bin('sguest-hello')]);
    expect(vmm.code).toBe(0);
    const bare = await cli(['run', '--bare', '--', bin('hello')]);
    expect(bare.code).toBe(0);
    // After `--`, "--bare" is a file name, not the mode.
    const named = await cli(['run', '--', '--bare']);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/cannot read --bare/);
  });

  it('an image too big for the guest names the option of the mode it ran in', async () => {
    const vmm = await cli(['run', bin('bench-mem'), '--guest-mem', '64K', '--host-mem', '1M']);
    expect(vmm.code).toBe(2);
    expect(vmm.stderr).toMatch(/--guest-mem/);
    expect(vmm.stderr).not.toMatch(/raise --mem/);
    const bare = await cli(['run', '--bare', bin('bench-mem'), '--mem', '1M']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/raise --mem/);
  });
});

// The block compiler under the VMM gives the interpreter's results exactly: the
// S-mode guests on KVM's shadow MMU, with and without host pressure, end with the
// same console, exit, instruction count, simulated time, KVM and host counters and
// guest-memory hash on both engines. Since the scheduler interleaves every thread
// by guest instructions, any drift in instret, in where a shadow-MMU exit cuts a
// trace, or in where an interrupt is taken would show in those numbers. The three
// mechanisms also get a guest of their own.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { guestMemoryHash } from '../../src/check/guest-memory.js';
import { hostDebugView } from '../../src/host/debug-view.js';
import { Prog, add, addi, bne, csrr, csrrs, csrw, ecall, jal, li, sw } from '../../src/hart/asm.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { UsageError } from '../../src/args.js';
import { parseBareArgs } from '../../src/vmm/bare-command.js';
import { parseRunCommandArgs } from '../../src/vmm/run-command.js';
import { Vmm, type VmmConfig, type VmmResult } from '../../src/vmm/vmm.js';
import { elf32 } from './elf32.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const KiB = 1024;
const MiB = 1 << 20;
const RAM = 0x80000000;
const PAGE = 4096;

interface Outcome {
  r: VmmResult;
  /** guestMemoryHash of guest RAM just before teardown. */
  hash: string;
  regs: number[];
  compiledInsns: number;
  faults: Record<string, number>;
}

function boot(elf: Uint8Array, jit: boolean, config: Partial<VmmConfig>): Outcome {
  let hash = '';
  const vmm = new Vmm({
    guestMemBytes: 8 * MiB, hostMemBytes: 8 * MiB, protocol: 'modern', seed: 1, ...config,
    // These guests are short: an explicit threshold has no cold phase, so their
    // loops compile (the default waits for code that runs thousands of times).
    ...(jit ? { jit: { threshold: 16 } } : {}),
    beforeTeardown: (v) => void (hash = guestMemoryHash(hostDebugView(v.kernel), v.proc.mm, v.ramHva, v.config.guestMemBytes)),
  });
  expect(vmm.boot(elf)).toBeNull();
  const r = vmm.run();
  const hart = vmm.vcpu!.hart;
  return { r, hash, regs: [...hart.regs], compiledInsns: hart.jit?.compiledInsns ?? 0, faults: { ...vmm.vcpu!.faults } };
}

/** Both engines on one guest and config: everything observable must be equal. */
function bothEngines(elf: Uint8Array, config: Partial<VmmConfig>): { interp: Outcome; jit: Outcome } {
  const interp = boot(elf, false, config);
  const jit = boot(elf, true, config);
  expect(jit.r.output).toBe(interp.r.output);
  expect({ exitCode: jit.r.exitCode, reason: jit.r.reason, message: jit.r.message }).toEqual({ exitCode: interp.r.exitCode, reason: interp.r.reason, message: interp.r.message });
  expect(jit.r.stats).toEqual(interp.r.stats);
  expect(jit.hash).toBe(interp.hash);
  expect(jit.regs).toEqual(interp.regs);
  expect(jit.faults).toEqual(interp.faults);
  expect(interp.hash).not.toBe('');
  expect(jit.compiledInsns, 'the compiler ran some of the guest').toBeGreaterThan(0);
  return { interp, jit };
}

const quiet = (protocol: KvmProtocol): Partial<VmmConfig> => ({ protocol });
/** Guest RAM twice host RAM and a second process rewriting 1 MiB: the host swaps the guest. */
const pressure = (protocol: KvmProtocol, guestMemBytes: number): Partial<VmmConfig> => ({
  protocol, guestMemBytes, hostMemBytes: guestMemBytes / 2, pressure: { bytes: 1 * MiB },
});

describe('the S-mode guests on both engines', () => {
  const image = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.elf`, BIN)));
  const cases: Array<[string, string, Partial<VmmConfig>, (o: Outcome) => void]> = [
    ['sguest-hello', 'modern', quiet('modern'), (o) => expect(o.r.output).toContain('timer: interrupt taken, not early')],
    // 12 MiB of data through two ASIDs (sguest-small is the same program over 2 MiB).
    ['sguest-workload', 'modern', { protocol: 'modern', guestMemBytes: 20 * MiB, hostMemBytes: 32 * MiB }, (o) => expect(o.r.output).toContain('sguest-workload: OK')],
    ['sguest-small', 'modern, pressure', pressure('modern', 4 * MiB), (o) => expect(o.r.stats.host.pswpout).toBeGreaterThan(0)],
    ['sguest-small', 'v7, pressure', pressure('v7', 4 * MiB), (o) => expect(o.r.stats.host.pswpout).toBeGreaterThan(0)],
    ['sguest-balloon', 'modern, PLIC interrupts, swapping', { protocol: 'modern', hostMemBytes: 768 * KiB, balloon: {} },
      (o) => expect(o.r.output).toContain('sguest-balloon: OK, 3 rounds, 384 pages given back')],
    ['sguest-balloon', 'v7, PLIC interrupts, swapping', { protocol: 'v7', hostMemBytes: 768 * KiB, balloon: {} },
      (o) => expect(o.r.output).toContain('sguest-balloon: OK, 3 rounds, 384 pages given back')],
    ['sguest-flood-dbcn', 'modern', { protocol: 'modern', maxInsns: 2_000_000 }, (o) => expect(o.r.output.length).toBeGreaterThan(1000)],
    ['sguest-flood-uart', 'modern', { protocol: 'modern', maxInsns: 2_000_000 }, (o) => expect(o.r.output.length).toBeGreaterThan(1000)],
  ];
  it.each(cases)('%s (%s): same console, exit, counters and guest-memory hash', (name, _, config, check) => {
    const { interp } = bothEngines(image(name), config);
    check(interp);
  });
});

describe('the mechanisms, one guest each', () => {
  it('a shadow-MMU exit in the middle of a compiled trace: the faulting store does not run, the trace ends there', () => {
    // Each pass stores to a page the guest has not touched yet, between two
    // register updates: the store misses the soft TLB, the block bails with the
    // instructions before it counted, the interpreter takes the exit, KVM faults
    // the page in (the host allocates it, under pressure reclaims for it), and
    // the store restarts. 200 pages, each fault once.
    const p = new Prog(RAM | 0);
    p.emit(li(5, RAM + 64 * PAGE), li(6, PAGE), li(7, 200), li(8, 0), li(9, 0));
    p.label('loop').emit(addi(8, 8, 3), sw(8, 5, 0), add(9, 9, 8), add(5, 5, 6), addi(7, 7, -1)).to('loop', (o) => bne(7, 0, o));
    p.emit(li(17, 8), ecall()).to('park', (o) => jal(0, o));
    p.label('park').to('park', (o) => jal(0, o));
    const elf = elf32(RAM, new Uint8Array(new Int32Array(p.assemble()).buffer));
    for (const config of [quiet('modern'), pressure('modern', 2 * MiB), pressure('v7', 2 * MiB)]) {
      const { interp } = bothEngines(elf, config);
      expect(interp.faults.fixed).toBeGreaterThanOrEqual(200);
      expect(interp.regs[9]).toBe(3 * (200 * 201) / 2);
    }
  });

  it('the SBI timer interrupt is taken at the same instruction, at its deadline, inside a compiled loop', () => {
    // Arms the SBI timer 5000 instructions ahead, enables STIE and SIE and counts
    // in a tight loop; the handler reads time and instret and the loop counter and
    // shuts down. The VMM cuts the vCPU's run at the deadline, so the interrupt is
    // exact on both engines: taken right at the deadline, not a trace later.
    const p = new Prog(RAM | 0);
    const CSR_SIE = 0x104, CSR_STVEC = 0x105, CSR_SSTATUS = 0x100, CSR_TIME = 0xc01, CSR_INSTRET = 0xc02;
    const la = p.words.length;
    p.emit(li(5, 0), csrw(CSR_STVEC, 5));
    p.emit(csrr(18, CSR_TIME), addi(18, 18, 2047), addi(18, 18, 2047), addi(18, 18, 906)); // deadline = now + 5000
    p.emit(addi(10, 18, 0), li(11, 0), li(17, 0), ecall()); // legacy set_timer(deadline)
    p.emit(li(5, 1 << 5), csrrs(0, CSR_SIE, 5), li(5, 1 << 1), csrrs(0, CSR_SSTATUS, 5));
    p.emit(li(9, 0));
    p.label('spin').emit(addi(9, 9, 1), addi(20, 9, 7), add(21, 21, 20)).to('spin', (o) => jal(0, o));
    p.label('trap').emit(csrr(19, CSR_TIME), csrr(22, CSR_INSTRET), li(17, 8), ecall());
    p.label('park').to('park', (o) => jal(0, o));
    const words = p.assemble();
    const [lui0, addi0] = li(5, p.addr('trap'));
    words[la] = lui0!;
    words[la + 1] = addi0!;
    const elf = elf32(RAM, new Uint8Array(new Int32Array(words).buffer));
    for (const config of [quiet('modern'), pressure('modern', 2 * MiB)]) {
      const { interp, jit } = bothEngines(elf, config);
      // time read by the handler's first instruction: the interrupt came at the
      // deadline (that read is one tick on), not a trace later.
      expect(interp.regs[19]! - interp.regs[18]!).toBe(1);
      expect(jit.regs[9]).toBeGreaterThan(1000);
    }
  });

  it('run --jit sets VmmConfig.jit, for an ELF and for --kernel', () => {
    const elf = parseRunCommandArgs(['guest.elf', '--jit']);
    const linux = parseRunCommandArgs(['--kernel', 'Image', '--jit']);
    const off = parseRunCommandArgs(['guest.elf']);
    expect(elf !== 'help' && elf.config.jit).toEqual({});
    expect(linux !== 'help' && linux.config.jit).toEqual({});
    expect(off !== 'help' && off.config.jit).toBeUndefined();
  });

  it('run --bare --jit --jit-threshold N (what tools/difftest runs: every block compiled on first sight)', () => {
    const a = parseBareArgs(['--bare', 'x.elf', '--jit', '--jit-threshold', '1']);
    expect(a !== 'help' && [a.jit, a.jitThreshold]).toEqual([true, 1]);
    expect(() => parseBareArgs(['--bare', 'x.elf', '--jit-threshold', '1'])).toThrow(UsageError);
    expect(() => parseBareArgs(['--bare', 'x.elf', '--jit', '--jit-threshold', '0'])).toThrow(UsageError);
  });
});

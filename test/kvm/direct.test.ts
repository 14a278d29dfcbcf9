// Paging off: the guest writes a pattern over guest RAM twice the size of host RAM and
// reads it back. With notifiers (modern, v7) the host swaps guest memory out and in
// underneath and the data survives; pinned (pin) it cannot, and the host OOM-kills.

import { describe, expect, it } from 'vitest';
import { PRIV_S } from '../../src/hart/csr.js';
import type { VcpuExit } from '../../src/kvm/vcpu.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { patternProgram } from './guests.js';
import { KiB, PAGE, RAM_GPA, createVm, expectClean, loadProg, runAudited, runUntilUcall, teardown } from './vm-harness.js';
import type { TestVm } from './vm-harness.js';

function runPattern(protocol: KvmProtocol, seed = 1): { t: TestVm; exit: VcpuExit | null } {
  const t = createVm({ protocol, seed, hostBytes: 256 * KiB, guestBytes: 512 * KiB });
  loadProg(t, patternProgram(RAM_GPA + PAGE, RAM_GPA + t.guestBytes));
  let exit: VcpuExit | null = null;
  t.sched.spawn('vcpu0', function* () {
    exit = yield* runUntilUcall(t);
  });
  const r = runAudited(t, { every: 97 });
  expectClean(r, t);
  return { t, exit };
}

describe('direct mode (paging off) over guest RAM 2x host RAM', () => {
  it.each<KvmProtocol>(['modern', 'v7'])('%s: the pattern survives swap-out and swap-in', (protocol) => {
    const { t, exit } = runPattern(protocol);
    expect(exit).toEqual({ reason: 'mmio' });
    expect(t.ucall.fail, `guest saw a wrong value at 0x${((t.ucall.fail ?? 0) >>> 0).toString(16)}`).toBeNull();
    expect(t.ucall.done).toBe(true);
    const hs = t.k.stats();
    expect(hs.pswpout).toBeGreaterThan(64);
    expect(hs.pswpin).toBeGreaterThan(32);
    expect(t.vm.stats.pfFixed).toBeGreaterThanOrEqual(250);
    expect(t.vm.stats.invalidations).toBeGreaterThan(0);
    expect(t.vcpu.hart.priv).toBe(PRIV_S);
    teardown(t);
  });

  it('pin: guest RAM cannot be swapped; the host OOM-kills the VMM instead of hanging', () => {
    const { t, exit } = runPattern('pin');
    expect(exit).not.toBeNull();
    expect(exit!.reason).toBe('internal-error');
    expect(t.k.oomReports.length).toBeGreaterThan(0);
    expect(t.k.oomReports[0]!.victim?.name).toBe('vmm');
    expect(t.k.stats().pswpout).toBe(0);
    expect(t.proc.killed).toBe(true);
    teardown(t);
  });
});

describe('modern, guest RAM larger than RAM + swap', () => {
  it('the OOM killer picks the VMM; the reaper invalidates sptes without blocking; KVM reports an internal error', () => {
    const t = createVm({ protocol: 'modern', hostBytes: 128 * KiB, guestBytes: 512 * KiB, host: { swapBytes: 32 * PAGE } });
    loadProg(t, patternProgram(RAM_GPA + PAGE, RAM_GPA + t.guestBytes));
    let exit: VcpuExit | null = null;
    t.sched.spawn('vcpu0', function* () {
      exit = yield* runUntilUcall(t);
    });
    const r = runAudited(t, { every: 31 });
    expectClean(r, t);
    expect(exit).toMatchObject({ reason: 'internal-error' });
    expect(t.k.oomReports[0]?.victim?.name).toBe('vmm');
    expect(t.proc.mm.oomReaped).toBe(true);
    expect(t.vm.stats.invalidations).toBeGreaterThan(0);
    teardown(t);
  });
});

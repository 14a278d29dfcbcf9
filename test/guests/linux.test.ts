// The committed Linux guest (guest-programs/bin/linux-Image + linux-initramfs.cpio,
// built by tools/build-linux.sh) boots to its init's PASS line under the VMM,
// with guest RAM larger than host RAM, and the console reads the same with and
// without host pressure; QEMU (when installed) boots the same images to the
// same init lines. Each boot is ~700 M guest instructions (15-40 s), so this
// runs when SHADOWVISOR_LINUX=1 (CI sets it).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { auditCoherency, vmQuiescent } from '../../src/check/coherency.js';
import { auditKernel, hostDebugView } from '../../src/host/index.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Vmm, type VmmResult } from '../../src/vmm/vmm.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const kernel = () => new Uint8Array(readFileSync(new URL('linux-Image', BIN)));
const initrd = () => new Uint8Array(readFileSync(new URL('linux-initramfs.cpio', BIN)));
const MiB = 1 << 20;
const enabled = process.env.SHADOWVISOR_LINUX === '1';
const hasQemu = spawnSync('qemu-system-riscv32', ['--version'], { stdio: 'ignore' }).status === 0;
const QEMU_CHECK = fileURLToPath(new URL('../../guest-programs/linux/qemu-check.sh', import.meta.url));
/** Scheduler steps between two coherency audits during the boot. */
const AUDIT_EVERY = 20_000;

interface Boot {
  r: VmmResult;
  audits: number;
  problems: string[];
  sfence: number;
  vmm: Vmm;
}

function bootLinux(protocol: KvmProtocol, hostMem: number): Boot {
  const vmm = new Vmm({ guestMemBytes: 64 * MiB, hostMemBytes: hostMem, protocol, seed: 1 });
  expect(vmm.bootLinux(kernel(), { initrd: initrd() })).toBeNull();
  let steps = 0;
  let audits = 0;
  const problems: string[] = [];
  const r = vmm.resume(() => {
    const vm = vmm.vm;
    if (++steps % AUDIT_EVERY === 0 && vm !== null && vmQuiescent(vm)) {
      audits++;
      problems.push(...auditCoherency(vm, hostDebugView(vmm.kernel), { limit: 5 }));
    }
    return false;
  })!;
  return { r, audits, problems, sfence: vmm.vcpu!.translator.sfenceCalls, vmm };
}

describe.skipIf(!enabled)('Linux 6.12 rv32 guest', () => {
  let quiet: Boot | undefined;

  it('boots to the init PASS line and powers off through SRST (no host pressure)', () => {
    quiet = bootLinux('modern', 128 * MiB);
    const { r } = quiet;
    expect(r.output).toMatch(/^Linux version 6\.12\.\d+ \(shadowvisor@shadowvisor\)/);
    expect(r.output).toContain('SBI specification v2.0 detected');
    expect(r.output).toContain('Run /init as init process');
    expect(r.output).toContain('shadowvisor-init: child verified and rewrote its copy');
    // Past 'console [hvc0] enabled' everything goes through the tty (ONLCR: \r\n).
    expect(r.output).toMatch(/shadowvisor-init: PASS\r\nreboot: Power down\r\n$/);
    expect(r).toMatchObject({ exitCode: 0, reason: 'shutdown' });
    expect(r.stats.host.pswpout).toBe(0);
    expect(r.stats.guest.warnings).toBe(0);
    expect(quiet.problems).toEqual([]);
    expect(quiet.audits).toBeGreaterThan(0);
    expect(quiet.sfence).toBeGreaterThan(0);
    expect(auditKernel(quiet.vmm.kernel)).toEqual([]);
  }, 180_000);

  it.each(['modern', 'v7'] as const)('%s: boots with 24M of host RAM under 64M of guest RAM, swaps, and prints the same console', (protocol) => {
    const b = bootLinux(protocol, 24 * MiB);
    const { r } = b;
    expect(r).toMatchObject({ exitCode: 0, reason: 'shutdown' });
    expect(r.output).toContain('shadowvisor-init: PASS\r\n');
    expect(r.stats.host.pswpout).toBeGreaterThan(1000);
    expect(r.stats.host.pswpin).toBeGreaterThan(1000);
    expect(r.stats.guest.invalidations).toBeGreaterThan(0);
    expect(r.stats.guest.warnings).toBe(0);
    expect(b.problems).toEqual([]);
    expect(b.audits).toBeGreaterThan(0);
    expect(auditKernel(b.vmm.kernel)).toEqual([]);
    // No console line depends on host timing: the guest's clock counts its instructions.
    if (quiet !== undefined) expect(r.output).toBe(quiet.r.output);
  }, 180_000);

  it('pin: 24M of host RAM ends in the host OOM kill of the VMM, with the report (exit 137)', () => {
    // Every page KVM maps is pinned; once they fill the host, reclaim has nothing
    // left but the guest page-table page the fault just walked, and the host's
    // allocator sends the pin's allocation to the OOM killer instead of thrashing
    // that page against the one it pins (which used to end as a KVM livelock).
    const b = bootLinux('pin', 24 * MiB);
    const { r } = b;
    expect(r).toMatchObject({ exitCode: 137, reason: 'oom' });
    expect(r.message).not.toMatch(/livelock/);
    expect(r.message).toMatch(/vmm \(pid 1\) invoked oom-killer: gfp_mask=GFP_HIGHUSER_MOVABLE, order=0/);
    expect(r.message).toMatch(/all_unreclaimable\? yes/);
    expect(r.message).toMatch(/Out of memory: Killed process 1 \(vmm\) total-vm:65536kB, anon-rss:\d+kB/);
    expect(r.message).toMatch(/oom_reaper: reaped process 1 \(vmm\).*\d+ pinned pages stay allocated/);
    expect(r.stats.host.oomKill).toBe(1);
    expect(r.output).toContain('shadowvisor-init: PID 1');
    expect(r.output).not.toContain('shadowvisor-init: PASS');
    expect(b.problems).toEqual([]);
    expect(auditKernel(b.vmm.kernel)).toEqual([]);
  }, 300_000);

  it.skipIf(!hasQemu)('QEMU virt boots the same images to the same init lines (an independent hart, MMU and firmware)', () => {
    const q = spawnSync(QEMU_CHECK, [], { encoding: 'latin1', timeout: 120_000 });
    expect(q.status, q.stderr).toBe(0);
    const initLines = (out: string) => out.split(/\r?\n/).filter((l) => l.startsWith('shadowvisor-init:'));
    expect(initLines(q.stdout)).toContain('shadowvisor-init: PASS');
    if (quiet !== undefined) expect(initLines(q.stdout)).toEqual(initLines(quiet.r.output));
  }, 180_000);
});

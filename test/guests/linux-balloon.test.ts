// The real virtio_balloon driver of the committed Linux guest against our
// device: inflate and deflate on a target schedule, deflate-on-OOM, stats,
// free page reporting, under host pressure with `modern` and `v7`, and what
// `pin` does with the pages it gave back. The init's balloon workload
// (svmode=balloon, guest-programs/linux/init.c) dirties and frees memory, then
// prints MemTotal/MemFree once a guest second. The boot reaches init at about
// 7 guest seconds. Behind SHADOWVISOR_LINUX=1, as the other Linux boots.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auditCoherency, vmQuiescent } from '../../src/check/coherency.js';
import { auditKernel, hostDebugView } from '../../src/host/index.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { TIMEBASE_FREQUENCY } from '../../src/vmm/linux-boot.js';
import { Vmm, type VmmConfig, type VmmResult } from '../../src/vmm/vmm.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const kernel = () => new Uint8Array(readFileSync(new URL('linux-Image', BIN)));
const initrd = () => new Uint8Array(readFileSync(new URL('linux-initramfs.cpio', BIN)));
const MiB = 1 << 20;
const PAGES_PER_MIB = 256;
const sec = (s: number) => s * TIMEBASE_FREQUENCY;
const enabled = process.env.SHADOWVISOR_LINUX === '1';

interface Run {
  r: VmmResult;
  problems: string[];
  audits: number;
  /** Distinct free_memory values the stats queue delivered, in order. */
  statsFree: number[];
  lines: string[];
  vmm: Vmm;
}

function boot(opts: { protocol?: KvmProtocol; hostMem?: number; balloon: NonNullable<VmmConfig['balloon']>; append: string }): Run {
  const vmm = new Vmm({ guestMemBytes: 64 * MiB, hostMemBytes: opts.hostMem ?? 24 * MiB, protocol: opts.protocol ?? 'modern', seed: 1, balloon: opts.balloon });
  expect(vmm.bootLinux(kernel(), { initrd: initrd(), bootargs: `earlycon=sbi console=hvc0 panic=-1 svmode=balloon ${opts.append}` })).toBeNull();
  let steps = 0;
  let audits = 0;
  const problems: string[] = [];
  const statsFree: number[] = [];
  const r = vmm.resume(() => {
    const vm = vmm.vm;
    if (++steps % 20_000 === 0 && vm !== null && vmQuiescent(vm)) {
      audits++;
      problems.push(...auditCoherency(vm, hostDebugView(vmm.kernel), { limit: 5 }));
    }
    const free = vmm.balloon?.stats().guest.free_memory;
    if (free !== undefined && statsFree[statsFree.length - 1] !== free) statsFree.push(free);
    return false;
  })!;
  const lines = r.output.split(/\r?\n/).filter((l) => l.startsWith('shadowvisor-init:'));
  return { r, problems, audits, statsFree, lines, vmm };
}

/** MemTotal and MemFree (kB) of the init's "t=Ns" line. */
function memAt(run: Run, t: number): { total: number; free: number } {
  const l = run.lines.find((x) => x.startsWith(`shadowvisor-init: t=${t}s `));
  expect(l, `no t=${t}s line in\n${run.lines.join('\n')}`).toBeDefined();
  const m = /MemTotal (\d+) kB MemFree (\d+) kB/.exec(l!)!;
  return { total: Number(m[1]), free: Number(m[2]) };
}

function expectClean(run: Run): void {
  expect(run.r, run.r.message).toMatchObject({ exitCode: 0, reason: 'shutdown' });
  expect(run.lines).toContain('shadowvisor-init: PASS');
  expect(run.problems).toEqual([]);
  expect(auditKernel(run.vmm.kernel)).toEqual([]);
}

describe.skipIf(!enabled)('virtio-balloon with the Linux driver', () => {
  for (const protocol of ['modern', 'v7'] as const) {
    it(`${protocol}: inflating 16 MiB under host pressure takes 16 MiB from the guest and gives it to the host; deflating gives it back`, () => {
      // t=0s of the init is about 9 guest seconds in: inflate at 11 s, deflate at 14 s.
      const run = boot({ protocol, balloon: { schedule: [{ atTicks: sec(11), targetPages: 16 * PAGES_PER_MIB }, { atTicks: sec(14), targetPages: 0 }] }, append: 'svtouch=40 svsecs=8' });
      expectClean(run);
      const before = memAt(run, 0);
      const inflated = memAt(run, 4);
      const after = memAt(run, 8);
      // Without DEFLATE_ON_OOM the driver takes the pages out of MemTotal too (adjust_managed_page_count).
      expect(before.total - inflated.total).toBe(16 * 1024);
      expect(before.free - inflated.free).toBeGreaterThan(15 * 1024);
      expect(after.total).toBe(before.total);
      const b = run.r.stats.balloon!;
      expect(b).toMatchObject({ targetPages: 0, actualPages: 0, inflatedPages: 0, rejectedPfns: 0 });
      expect(b.inflateRequests).toBeGreaterThanOrEqual(16);
      // Most of those pages were ones the guest had dirtied and freed (the rest it never
      // touched, so the host never backed them): the VM's cost to the host fell by most of 16 MiB.
      expect(b.hostFreedPages).toBeGreaterThan(12 * PAGES_PER_MIB);
      expect(b.hostFreedPages).toBeLessThanOrEqual(16 * PAGES_PER_MIB);
      expect(run.r.stats.host.pswpout).toBeGreaterThan(0);
      expect(run.audits).toBeGreaterThan(0);
    }, 300_000);
  }

  it('deflate-on-OOM: a guest process that needs the memory shrinks the balloon instead of being OOM-killed; without the feature it is killed', () => {
    const withIt = boot({ hostMem: 128 * MiB, balloon: { targetPages: 40 * PAGES_PER_MIB, deflateOnOom: true }, append: 'svtouch=0 svsecs=0 svalloc=16' });
    expectClean(withIt);
    expect(withIt.lines).toContain('shadowvisor-init: child got 16 MiB');
    expect(withIt.r.stats.balloon!.actualPages).toBeLessThan(40 * PAGES_PER_MIB);
    expect(withIt.r.stats.balloon!.deflateRequests).toBeGreaterThan(0);

    // (16 MiB fits the 17 MiB left of MemTotal, so mmap succeeds and the touch runs out.)
    const without = boot({ hostMem: 128 * MiB, balloon: { targetPages: 40 * PAGES_PER_MIB }, append: 'svtouch=0 svsecs=0 svalloc=16' });
    expectClean(without);
    expect(without.lines).toContain('shadowvisor-init: child killed by signal 9 asking for 16 MiB');
    expect(without.r.output).toMatch(/Out of memory: Killed process/);
    expect(without.r.stats.balloon!.actualPages).toBe(40 * PAGES_PER_MIB);
  }, 300_000);

  it('free page reporting returns memory the guest freed to the host, with no target change; stats arrive and follow the guest', () => {
    // The default reporting order is pageblock_order (4 MiB), whose threshold (low watermark
    // + 32 blocks, mm/page_reporting.c) is more than this guest's RAM: report 128 KiB blocks.
    const run = boot({ balloon: { freePageReporting: true, statsIntervalTicks: sec(1) }, append: 'svtouch=32 svsecs=6 page_reporting.page_reporting_order=5' });
    expectClean(run);
    const b = run.r.stats.balloon!;
    expect(b.targetPages).toBe(0);
    expect(b.reports).toBeGreaterThan(0);
    expect(b.reportedPages).toBeGreaterThanOrEqual(16 * PAGES_PER_MIB);
    expect(b.hostFreedPages).toBeGreaterThanOrEqual(16 * PAGES_PER_MIB);
    expect(b.statsUpdates).toBeGreaterThanOrEqual(5);
    expect(b.guest.total_memory).toBeGreaterThan(50 * MiB);
    expect(b.guest.minor_faults).toBeGreaterThan(0);
    // The guest dirtied and freed memory between two polls: free_memory moved.
    expect(run.statsFree.length).toBeGreaterThanOrEqual(2);
  }, 300_000);

  it('pin: a DONTNEED never reaches KVM, so a page its spte still maps stays pinned and allocated; under modern every unmapped page is freed', () => {
    const opts = { hostMem: 128 * MiB, balloon: { schedule: [{ atTicks: sec(11), targetPages: 16 * PAGES_PER_MIB }] }, append: 'svtouch=40 svsecs=4' };
    const pin = boot({ ...opts, protocol: 'pin' });
    const modern = boot(opts);
    for (const run of [pin, modern]) expectClean(run);
    const p = pin.r.stats.balloon!;
    const m = modern.r.stats.balloon!;
    expect(p.inflatedPages).toBe(16 * PAGES_PER_MIB);
    // Both unmap the same pages from the VMM's page table ...
    expect(p.hostFreedPages).toBe(m.hostFreedPages);
    // ... modern frees every one (the notifier zapped the sptes and dropped KVM's hold) ...
    expect(m.hostFramesFreed).toBe(m.hostFreedPages);
    // ... pin frees only those whose sptes a guest flush had already dropped.
    expect(p.hostFramesFreed).toBeLessThan(p.hostFreedPages);
  }, 300_000);
});

// The balloon under KVM with a driver of our own (guest-programs/sguest/balloon.c):
// the guest writes its data, inflates every odd page, checks the even ones
// kept their data, deflates and checks the odd ones read as zeros. Under
// `modern` and `v7` with the host swapping the same pages, over many seeds,
// with the coherency audit at intervals: nothing lost, no stale spte. Under
// `pin` no notifier tells KVM about the DONTNEED: the guest still sees a page's
// old frame after giving it back, and that frame is never freed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auditCoherency, vmQuiescent } from '../../src/check/coherency.js';
import { auditKernel, hostDebugView } from '../../src/host/index.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Vmm, type VmmResult } from '../../src/vmm/vmm.js';

const ELF = readFileSync(new URL('../../guest-programs/bin/sguest-balloon.elf', import.meta.url));
const KiB = 1024;
const MiB = 1 << 20;

function run(protocol: KvmProtocol, seed: number, hostMemBytes: number): { r: VmmResult; problems: string[]; audits: number; vmm: Vmm } {
  const vmm = new Vmm({ guestMemBytes: 8 * MiB, hostMemBytes, protocol, seed, balloon: {} });
  expect(vmm.boot(ELF)).toBeNull();
  const problems: string[] = [];
  let steps = 0;
  let audits = 0;
  const r = vmm.resume(() => {
    if (++steps % 500 === 0 && vmm.vm !== null && vmQuiescent(vmm.vm)) {
      audits++;
      problems.push(...auditCoherency(vmm.vm, hostDebugView(vmm.kernel), { limit: 5 }));
    }
    return false;
  })!;
  return { r, problems, audits, vmm };
}

describe('virtio-balloon under KVM, with a driver of our own', () => {
  for (const protocol of ['modern', 'v7'] as const) {
    it(`${protocol}: inflate and deflate while the host swaps the same pages: no lost data, no stale spte (12 seeds)`, () => {
      for (let seed = 1; seed <= 12; seed++) {
        const { r, problems, audits, vmm } = run(protocol, seed, 768 * KiB);
        expect(r.output, `seed ${seed}: ${r.message ?? ''}`).toContain('sguest-balloon: OK, 3 rounds, 384 pages given back');
        expect(r.exitCode).toBe(0);
        expect(r.stats.host.pswpout).toBeGreaterThan(0);
        expect(r.stats.balloon).toMatchObject({ inflateRequests: 6, deflateRequests: 6, inflatedPages: 0, rejectedPfns: 0 });
        expect(audits).toBeGreaterThan(0);
        expect(problems, `seed ${seed}`).toEqual([]);
        expect(auditKernel(vmm.kernel), `seed ${seed}`).toEqual([]);
      }
    });
  }

  it('the guest takes the PLIC interrupt for every buffer (claim, ack, complete)', () => {
    const { r } = run('modern', 1, 4 * MiB);
    expect(r.output).toMatch(/sguest-balloon: OK, .* 12 interrupts/);
  });

  it('pin: the inflated page stays mapped by its pinned spte, so the guest reads its old data and the host never gets the frame', () => {
    const { r } = run('pin', 1, 4 * MiB);
    expect(r.exitCode).toBe(1);
    expect(r.output).toMatch(/sguest-balloon: FAIL a page given back still shows its old data: page 1 /);
    const b = r.stats.balloon!;
    expect(b.hostFreedPages).toBe(128); // unmapped from the VMM ...
    expect(b.hostFramesFreed).toBe(0); // ... yet every frame is still allocated: KVM pins it
  });
});

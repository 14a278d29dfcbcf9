// The coherency audit on a VMM process that forks: the child shares guest RAM
// copy-on-write, so a frame the VM's sptes map may be mapped by several mms, and the
// frame's rmap (frames.rmapMm) names the one that mapped it first, not necessarily
// the VM's. Invariant (B) must walk every mapping (the anon_vma fork tree), as the
// host's rmap_walk does: silent while the VM's mm is among the mappers, and naming
// the others once the VM's pte moved off the frame.

import { describe, expect, it } from 'vitest';
import { auditCoherency } from '../../src/check/coherency.js';
import { hostDebugView, ptePfn, ptePresent, pteIsSwap } from '../../src/host/index.js';
import type { Process } from '../../src/host/index.js';
import { SPTES_PER_PAGE } from '../../src/kvm/mmu/shadow-pages.js';
import { ACC_R, ACC_X, makeSpte } from '../../src/kvm/mmu/spte.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Prog, li, lw, sw } from '../hart/asm.js';
import { PAGE, RAM_GPA, UCALL_LOG, UCALL_SYNC, createVm, emitDone, expectClean, loadProg, runAudited, runUntilUcall, writeGuest } from '../kvm/vm-harness.js';
import type { TestVm } from '../kvm/vm-harness.js';

const X = RAM_GPA + 0x10000;
const V = 0x5eed;

/** The guest: log *X; SYNC (the VMM looks); *X = V + 1; DONE. */
function readThenWrite(): Prog {
  const p = new Prog(RAM_GPA | 0);
  p.emit(li(8, X), lw(7, 8, 0), li(9, UCALL_LOG), sw(7, 9, 0), li(9, UCALL_SYNC), sw(0, 9, 0), li(6, V + 1), sw(6, 8, 0));
  emitDone(p);
  return p;
}

function pteOf(t: TestVm, proc: Process, gpa: number): number {
  return proc.mm.pt.get((t.ramHva + (gpa - RAM_GPA)) >>> 12);
}

function leafOf(t: TestVm, gpa: number): number {
  const sps = t.vm.sps;
  const l1 = sps.spteAt(t.vcpu.translator.root * SPTES_PER_PAGE + (gpa >>> 22));
  return (l1 >>> 9) * SPTES_PER_PAGE + ((gpa >>> 12) & 0x3ff);
}

/**
 * The parent (the VMM, its VM's mm) writes X, forks, and reclaim swaps X out of both;
 * the guest reads X (the parent's swap-in, under KVM's fault), then the child reads
 * it: its swap-in maps the same swap-cache frame, and the frame's rmap names the
 * child, the last mm to map it. The audit runs before every step from there on. The
 * guest then writes X: do_wp_page copies it for the parent, and the old frame is the
 * child's alone (its rmap still naming the child).
 */
function forkedVmm(protocol: KvmProtocol): { t: TestVm; child: Process; sharedPfn: number; rmapAtRead: number; mapcountAtRead: number } {
  const t = createVm({ protocol, hostBytes: 256 * 1024 });
  loadProg(t, readThenWrite());
  let child: Process | null = null;
  let sharedPfn = -1;
  let rmapAtRead = -1;
  let mapcountAtRead = -1;
  t.sched.spawn('vmm', function* () {
    yield* writeGuest(t, X, [V]);
    const c = yield* t.k.fork(t.proc);
    if (typeof c === 'number') throw new Error(`fork: ${c}`);
    child = c;
    for (let i = 0; i < 40 && !pteIsSwap(pteOf(t, t.proc, X)); i++) yield* t.k.reclaim(64);
    expect(pteIsSwap(pteOf(t, t.proc, X))).toBe(true);
    expect(pteIsSwap(pteOf(t, c, X))).toBe(true);
    // The guest's read swaps X in for the parent: KVM_RUN to the SYNC exit
    // (runUntilUcall would run on through SYNC to DONE).
    let exit = yield* t.vcpu.run({});
    while (exit.reason === 'mmio' && t.ucall.syncs === 0) exit = yield* t.vcpu.run({});
    expect(t.ucall.syncs).toBe(1);
    expect(t.ucall.done).toBe(false);
    // The child's read maps the same swap-cache frame, and the rmap names the child.
    const buf = new Uint8Array(4);
    expect(yield* t.k.accessRead(c.mm, t.ramHva + (X - RAM_GPA), buf)).toBe(0);
    expect(new DataView(buf.buffer).getInt32(0, true)).toBe(V);
    const pte = pteOf(t, t.proc, X);
    sharedPfn = ptePresent(pte) ? ptePfn(pte) : -1;
    rmapAtRead = t.k.frames.rmapMm[sharedPfn]!;
    mapcountAtRead = t.k.frames.mapcount[sharedPfn]!;
    expect((yield* runUntilUcall(t)).reason).toBe('mmio');
    expect(t.ucall.done).toBe(true);
  });
  const r = runAudited(t);
  expectClean(r, t);
  return { t, child: child!, sharedPfn, rmapAtRead, mapcountAtRead };
}

describe('coherency audit after fork', () => {
  for (const protocol of ['modern', 'v7'] as const) {
    it(`${protocol}: a frame the VM shares with a forked child whose rmap names the child is the VM's own`, () => {
      const { t, child, sharedPfn, rmapAtRead, mapcountAtRead } = forkedVmm(protocol);
      expect(t.ucall.log).toEqual([V]);
      expect(t.ucall.done).toBe(true);
      // Once the child read X: one frame, two mms, and its rmap names the child (the
      // rule "rmapMm is the VM's mm" called the VM's spte another mm's).
      expect(sharedPfn).toBeGreaterThanOrEqual(0);
      expect(mapcountAtRead).toBe(2);
      expect(rmapAtRead).toBe(child.mm.id);
      // The guest's store copied the page for the parent; the child kept the old one.
      expect(ptePfn(pteOf(t, t.proc, X))).not.toBe(sharedPfn);
      expect(ptePfn(pteOf(t, child, X))).toBe(sharedPfn);
      expect(auditCoherency(t.vm, hostDebugView(t.k))).toEqual([]);
    });
  }

  it('still names a spte over the frame the child kept after the copy', () => {
    const { t, child, sharedPfn } = forkedVmm('modern');
    const sptep = leafOf(t, X);
    t.vm.sps.sptes[sptep] = makeSpte(sharedPfn, ACC_R | ACC_X, 0);
    const problems = auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n');
    expect(problems).toMatch(new RegExp(`maps a frame of another mm \\(mm${child.mm.id}\\)`));
    expect(problems).toMatch(/host pte of hva 0x[0-9a-f]+ maps pfn/);
  });

  it('names a frame of a process outside the fork tree by its rmap', () => {
    const { t } = forkedVmm('modern');
    const other = t.k.createProcess('other');
    let pfn = -1;
    t.sched.spawn('other', function* () {
      const hva = yield* t.k.mmap(other.mm, PAGE);
      expect(yield* t.k.accessWrite(other.mm, hva, new Uint8Array(4).fill(1))).toBe(0);
      pfn = ptePfn(other.mm.pt.get(hva >>> 12));
    });
    expect(t.sched.run({ maxSteps: 100_000 }).status).toBe('done');
    t.vm.sps.sptes[leafOf(t, X)] = makeSpte(pfn, ACC_R | ACC_X, 0);
    expect(auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n')).toMatch(new RegExp(`maps a frame of another mm \\(mm${other.mm.id}\\)`));
  });
});

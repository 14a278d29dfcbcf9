// The coherency audit finds nothing on a healthy VM and names each kind of broken
// state when one is made on purpose.

import { describe, expect, it } from 'vitest';
import { auditCoherency } from '../../src/check/coherency.js';
import { PTE_WRITE, hostDebugView } from '../../src/host/index.js';
import { SPTES_PER_PAGE } from '../../src/kvm/mmu/shadow-pages.js';
import { isLeafSpte, isWritable, makeSpte, ACC_R, ACC_W, ACC_X, SPTE_HOST_WRITABLE, SPTE_MMU_WRITABLE } from '../../src/kvm/mmu/spte.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { runSync } from '../../src/sched/index.js';
import { Prog, li, lw, sw } from '../hart/asm.js';
import { RAM_GPA, createVm, emitDone, expectClean, loadProg, runAudited, runUntilUcall } from '../kvm/vm-harness.js';
import type { TestVm } from '../kvm/vm-harness.js';

const X = RAM_GPA + 0x10000;

function healthy(protocol: KvmProtocol = 'modern'): TestVm {
  const t = createVm({ protocol });
  const p = new Prog(RAM_GPA | 0);
  p.emit(li(8, X), li(6, 42), sw(6, 8, 0), lw(7, 8, 0));
  emitDone(p);
  loadProg(t, p);
  t.sched.spawn('vcpu0', function* () {
    yield* runUntilUcall(t);
  });
  expectClean(runAudited(t), t);
  expect(auditCoherency(t.vm, hostDebugView(t.k))).toEqual([]);
  return t;
}

/** The sptep of the leaf mapping gpa in the direct root. */
function leafOf(t: TestVm, gpa: number): number {
  const sps = t.vm.sps;
  const l1 = sps.spteAt(t.vcpu.translator.root * SPTES_PER_PAGE + (gpa >>> 22));
  return (l1 >>> 9) * SPTES_PER_PAGE + ((gpa >>> 12) & 0x3ff);
}

describe('coherency audit', () => {
  it('is silent on a healthy VM, in every protocol', () => {
    for (const p of ['modern', 'v7', 'pin'] as const) healthy(p);
  });

  it('catches a spte over a free frame (and the mismatch with the host pte)', () => {
    const t = healthy();
    const sptep = leafOf(t, X);
    const free = t.k.frames.freeList()[0]!;
    t.vm.sps.sptes[sptep] = makeSpte(free, ACC_R | ACC_X, 0);
    const problems = auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n');
    expect(problems).toMatch(/maps a free frame/);
    expect(problems).toMatch(/host pte of hva 0x[0-9a-f]+ maps pfn/);
  });

  it('catches a writable spte over a read-only host pte', () => {
    const t = healthy();
    const sptep = leafOf(t, X);
    expect(isWritable(t.vm.sps.spteAt(sptep))).toBe(true);
    const page = (t.ramHva + 0x10000) >>> 12;
    t.proc.mm.pt.set(page, t.proc.mm.pt.get(page) & ~PTE_WRITE);
    expect(auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n')).toMatch(/writable, host pte read-only/);
  });

  it('catches a soft-TLB entry no spte backs (a zap without a flush)', () => {
    const t = healthy();
    const sptep = leafOf(t, X);
    t.vm.sps.dropSpte(sptep); // no flushRemoteTlbs
    expect(auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n')).toMatch(/vcpu 0 (load|store) TLB gva 0x80010000 -> pfn \d+: no present spte backs it/);
  });

  it('catches a v7 spte whose page reference was dropped behind its back', () => {
    const t = healthy('v7');
    const sptep = leafOf(t, X);
    const pfn = t.vm.sps.spteAt(sptep) >>> 9;
    t.k.putPage(pfn);
    expect(auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n')).toMatch(/each own a reference, but gup refs are 0/);
    t.k.frames.refcount[pfn]!++;
    t.k.frames.gupRefs[pfn]!++;
  });

  it('catches a spte missing from its rmap (through the MMU audit)', () => {
    const t = healthy();
    const sptep = leafOf(t, X);
    const slot = t.vm.memslots.gfnToMemslot(X / 4096)!;
    slot.rmap[X / 4096 - slot.baseGfn] = 0;
    expect(auditCoherency(t.vm, hostDebugView(t.k)).join('\n')).toMatch(/^mmu: .*found 0 times/m);
    void isLeafSpte(t.vm.sps.spteAt(sptep));
  });

  it('catches a spte over another process\'s frame', () => {
    const t = healthy();
    const other = t.k.createProcess('other');
    const hva = runSync(t.k.mmap(other.mm, 4096));
    runSync(t.k.accessWrite(other.mm, hva, new Uint8Array(4096).fill(1)));
    const theirs = other.mm.pt.get(hva >>> 12) >>> 8;
    t.vm.sps.sptes[leafOf(t, X)] = makeSpte(theirs, ACC_R | ACC_W, SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE);
    expect(auditCoherency(t.vm, hostDebugView(t.k), { mmu: false }).join('\n')).toMatch(/maps a frame of another mm/);
  });
});

import { describe, expect, it } from 'vitest';
import { KvmBug } from '../../src/kvm/bug.js';
import { KVM_MEM_READONLY } from '../../src/kvm/memslots.js';
import { auditMmu } from '../../src/kvm/mmu/audit.js';
import { rmapCount } from '../../src/kvm/mmu/rmap.js';
import {
  SP_ACTIVE,
  SP_FREE,
  SP_ZAPPED_ROOT,
  makeRole,
  roleAccess,
  roleDirect,
  roleLevel,
  sptepOf,
} from '../../src/kvm/mmu/shadow-pages.js';
import {
  ACC_R,
  ACC_U,
  ACC_W,
  ACC_X,
  SPTE_A,
  SPTE_D,
  SPTE_HOST_WRITABLE,
  SPTE_MMU_WRITABLE,
  isAccessed,
  isMmuWritable,
  isWritable,
  makeNonLeafSpte,
  makeSpte,
  spteWrprot,
} from '../../src/kvm/mmu/spte.js';
import { addMemslot, createMmu, type MmuFixture } from './harness.js';

const BASE = 0x80000;
const ROOT = makeRole(1, true);
const LEAF = makeRole(0, true);
const RW = ACC_R | ACC_W | ACC_X;
const HWMW = SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE;

function rmapOf(f: MmuFixture, gfn: number): number {
  const slot = f.memslots.gfnToMemslot(gfn)!;
  return rmapCount(f.sps.pool, slot.rmap, gfn - slot.baseGfn);
}

/** A root with one leaf table mapping gfn BASE+i -> pfn 100+i for i < n. */
function mapped(f: MmuFixture, n: number, extra = HWMW): { root: number; leaf: number } {
  const root = f.sps.getRoot(0, ROOT);
  const leaf = f.sps.getShadowPage(BASE, LEAF);
  f.sps.linkShadowPage(sptepOf(root, BASE >> 10), leaf);
  for (let i = 0; i < n; i++) f.sps.setLeafSpte(sptepOf(leaf, i), BASE + i, makeSpte(100 + i, RW, extra));
  return { root, leaf };
}

function fixture(opts = {}): MmuFixture {
  const f = createMmu(opts);
  addMemslot(f.memslots, 0, BASE, 1024, 0x1000_0000);
  return f;
}

function expectClean(f: MmuFixture): void {
  expect(auditMmu(f.memslots, f.sps)).toEqual([]);
}

describe('roles', () => {
  it('pack and unpack', () => {
    const r = makeRole(0, true, ACC_R | ACC_U, 5);
    expect(roleLevel(r)).toBe(0);
    expect(roleDirect(r)).toBe(true);
    expect(roleAccess(r)).toBe(ACC_R | ACC_U);
    expect(r >>> 6).toBe(5);
    expect(() => makeRole(0, false, 1)).toThrow(RangeError);
  });
});

describe('shadow page store: lookup and allocation', () => {
  it('finds by (gfn, role), allocates on a miss, counts misses', () => {
    const f = fixture();
    expect(f.sps.findShadowPage(BASE, LEAF)).toBe(-1);
    const a = f.sps.getShadowPage(BASE, LEAF);
    expect(f.sps.getShadowPage(BASE, LEAF)).toBe(a);
    expect(f.sps.findShadowPage(BASE, LEAF)).toBe(a);
    const b = f.sps.getShadowPage(BASE, makeRole(0, false));
    const c = f.sps.getShadowPage(BASE + 1024, LEAF);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(f.sps.nUsedMmuPages).toBe(3);
    expect(f.stats.mmuCacheMiss).toBe(3);
    expect(f.sps.state[a]).toBe(SP_ACTIVE);
    expectClean(f);
  });

  it('installs leaves with rmap entries; replacing the pfn moves the rmap and carries A/D', () => {
    const f = fixture();
    const { leaf } = mapped(f, 4);
    expect(rmapOf(f, BASE + 2)).toBe(1);
    const p = sptepOf(leaf, 2);
    // Same gfn, same pfn: an in-place update; dropping D (write-protect) carries it and needs a flush.
    f.sps.spteMarkAccessed(p, true);
    expect(f.sps.setLeafSpte(p, BASE + 2, spteWrprot(f.sps.spteAt(p)))).toBe(true);
    expect(f.cleared).toEqual([{ pfn: 102, dirty: true, accessed: false }]);
    expect(rmapOf(f, BASE + 2)).toBe(1);
    // Same sptep, other gfn and pfn: the old mapping is dropped first.
    f.cleared.length = 0;
    expect(f.sps.setLeafSpte(p, BASE + 7, makeSpte(500, ACC_R, SPTE_A))).toBe(true);
    expect(f.cleared).toEqual([{ pfn: 102, dirty: false, accessed: true }]);
    expect(rmapOf(f, BASE + 2)).toBe(0);
    expect(rmapOf(f, BASE + 7)).toBe(1);
    expectClean(f);
  });

  it('refuses a writable spte in a read-only slot, and a leaf outside every slot', () => {
    const f = fixture();
    addMemslot(f.memslots, 1, 0x1000, 16, 0x2000_0000, KVM_MEM_READONLY);
    const leaf = f.sps.getShadowPage(0x1000, LEAF);
    expect(() => f.sps.setLeafSpte(sptepOf(leaf, 0), 0x1000, makeSpte(1, RW, HWMW))).toThrow(/read-only slot 1/);
    f.sps.setLeafSpte(sptepOf(leaf, 0), 0x1000, makeSpte(1, ACC_R | ACC_X, SPTE_HOST_WRITABLE));
    expect(() => f.sps.setLeafSpte(sptepOf(leaf, 1), 0x5000, makeSpte(1, ACC_R, 0))).toThrow(/in no memslot/);
    expectClean(f);
  });

  it('BUG()s with an actionable message when storage runs out', () => {
    const f = fixture({ nMaxMmuPages: 2, capacity: 2 });
    f.sps.getShadowPage(1, LEAF);
    f.sps.getShadowPage(2, LEAF);
    expect(() => f.sps.getShadowPage(3, LEAF)).toThrow(/makeMmuPagesAvailable/);
  });
});

describe('shadow page store: zapping', () => {
  it('zap clears sptes, removes rmap entries and the parent link, carries dirty, frees after the flush', () => {
    const f = fixture();
    const { root, leaf } = mapped(f, 3);
    f.sps.spteMarkAccessed(sptepOf(leaf, 1), true); // the guest wrote through gfn BASE+1
    f.sps.spteMarkAccessed(sptepOf(leaf, 2), false);
    expect(f.sps.prepareZapPage(leaf)).toBe(true);
    // Prepared, not committed: cleared and unlinked, but not reusable yet.
    expect(f.sps.spteAt(sptepOf(root, BASE >> 10))).toBe(0);
    expect([0, 1, 2].map((i) => rmapOf(f, BASE + i))).toEqual([0, 0, 0]);
    expect(f.sps.findShadowPage(BASE, LEAF)).toBe(-1);
    expect(f.sps.state[leaf]).not.toBe(SP_FREE);
    expect(f.cleared).toEqual([
      { pfn: 100, dirty: false, accessed: false },
      { pfn: 101, dirty: true, accessed: true },
      { pfn: 102, dirty: false, accessed: true },
    ]);
    const freeBefore = f.sps.nFreePages;
    f.sps.commitZapPages();
    expect(f.flushes.count).toBe(1);
    expect(f.flushes.freeAtFlush).toEqual([freeBefore]); // nothing freed before the flush ran
    expect(f.sps.state[leaf]).toBe(SP_FREE);
    expect(f.sps.nFreePages).toBe(freeBefore + 1);
    expect(f.stats.mmuShadowZapped).toBe(1);
    expect(f.stats.remoteTlbFlush).toBe(1);
    expect(f.sps.pool.inUse).toBe(0);
    expectClean(f);
  });

  it('zapping a parent drops the child links but keeps the child cached', () => {
    const f = fixture();
    const { root, leaf } = mapped(f, 2);
    const root2 = f.sps.getRoot(1, ROOT); // a second root sharing the leaf table
    f.sps.linkShadowPage(sptepOf(root2, 5), leaf);
    expect(rmapCount(f.sps.pool, f.sps.parents, leaf)).toBe(2);
    f.sps.putRoot(root2);
    f.sps.zapPage(root2);
    expect(rmapCount(f.sps.pool, f.sps.parents, leaf)).toBe(1);
    expect(f.sps.findShadowPage(BASE, LEAF)).toBe(leaf);
    expect(f.sps.spteAt(sptepOf(root, BASE >> 10))).toBe(makeNonLeafSpte(leaf));
    expect(rmapOf(f, BASE)).toBe(1);
    expectClean(f);
  });

  it('a root zapped while held stays allocated until its last putRoot', () => {
    const f = fixture();
    const { root } = mapped(f, 1);
    f.sps.zapAll();
    expect(f.sps.isActive(root)).toBe(false);
    expect(f.sps.state[root]).toBe(SP_ZAPPED_ROOT);
    expect(f.sps.nUsedMmuPages).toBe(0);
    expect(f.sps.nZappedPages).toBe(1);
    expectClean(f);
    f.sps.putRoot(root);
    expect(f.sps.state[root]).toBe(SP_FREE);
    expect(f.sps.nZappedPages).toBe(0);
    expect(() => f.sps.putRoot(root)).toThrow(KvmBug);
    expectClean(f);
  });

  it('the bound zaps the least recently used non-root pages first; roots survive', () => {
    const f = fixture({ nMaxMmuPages: 4, capacity: 16 });
    const root = f.sps.getRoot(0, ROOT); // oldest of all, but held
    const a = f.sps.getShadowPage(BASE, LEAF);
    const b = f.sps.getShadowPage(BASE + 1, LEAF);
    const c = f.sps.getShadowPage(BASE + 2, LEAF);
    const d = f.sps.getShadowPage(BASE + 3, LEAF);
    const e = f.sps.getShadowPage(BASE + 4, LEAF);
    f.sps.setLeafSpte(sptepOf(a, 0), BASE, makeSpte(9, RW, HWMW | SPTE_A | SPTE_D));
    expect(f.sps.findShadowPage(BASE + 1, LEAF)).toBe(b); // b becomes young
    expect(f.sps.lruOrder()).toEqual([root, a, c, d, e, b]);
    // 6 used, bound 4, want 2 free: zap 4 pages, oldest first, skipping the root.
    expect(f.sps.makeMmuPagesAvailable(2)).toBe(4);
    expect(f.sps.lruOrder()).toEqual([root, b]);
    expect([a, c, d, e].map((sp) => f.sps.state[sp])).toEqual([SP_FREE, SP_FREE, SP_FREE, SP_FREE]);
    expect(f.stats.mmuRecycled).toBe(4);
    expect(f.flushes.count).toBe(1); // one flush for the whole batch
    expect(f.cleared).toEqual([{ pfn: 9, dirty: true, accessed: true }]);
    expect(rmapOf(f, BASE)).toBe(0);
    expect(f.sps.makeMmuPagesAvailable(2)).toBe(0); // already room
    expectClean(f);
    // Only roots left: nothing to zap, and no BUG.
    f.sps.setNMaxMmuPages(1);
    expect(f.sps.lruOrder()).toEqual([root]);
    expect(f.sps.makeMmuPagesAvailable(2)).toBe(0);
    expectClean(f);
  });

  it('touch() refreshes a page the fault walked through', () => {
    const f = fixture({ nMaxMmuPages: 2, capacity: 8 });
    const a = f.sps.getShadowPage(1, LEAF);
    const b = f.sps.getShadowPage(2, LEAF);
    f.sps.touch(a);
    f.sps.makeMmuPagesAvailable(1);
    expect(f.sps.lruOrder()).toEqual([a]);
    expect(f.sps.state[b]).toBe(SP_FREE);
  });
});

describe('rmap walkers', () => {
  function aliased(f: MmuFixture): { leaf: number; leaf2: number } {
    const { leaf } = mapped(f, 4);
    // A second table maps gfn BASE+1 too (two guest vas for one guest page).
    const leaf2 = f.sps.getShadowPage(0x123, makeRole(0, false));
    f.sps.setLeafSpte(sptepOf(leaf2, 9), BASE + 1, makeSpte(101, ACC_R, SPTE_HOST_WRITABLE));
    return { leaf, leaf2 };
  }

  it('unmapGfnRange clears every spte of the gfns, aliases included, and reports a flush', () => {
    const f = fixture();
    const { leaf, leaf2 } = aliased(f);
    f.sps.spteMarkAccessed(sptepOf(leaf, 1), true);
    const slot = f.memslots.idToMemslot(0)!;
    expect(f.sps.unmapGfnRange(slot, BASE + 1, BASE + 3)).toBe(true);
    expect(f.sps.spteAt(sptepOf(leaf, 1))).toBe(0);
    expect(f.sps.spteAt(sptepOf(leaf2, 9))).toBe(0);
    expect(f.sps.spteAt(sptepOf(leaf, 2))).toBe(0);
    expect(f.sps.spteAt(sptepOf(leaf, 3))).not.toBe(0);
    expect(f.cleared.filter((c) => c.dirty)).toEqual([{ pfn: 101, dirty: true, accessed: true }]);
    expect(f.sps.unmapGfnRange(slot, BASE + 1, BASE + 3)).toBe(false);
    expectClean(f);
  });

  it('age clears A and reports young; test_age stops at the first young and clears nothing', () => {
    const f = fixture();
    const { leaf, leaf2 } = aliased(f);
    const slot = f.memslots.idToMemslot(0)!;
    expect(f.sps.testAgeGfnRange(slot, BASE, BASE + 4)).toBe(false);
    f.sps.spteMarkAccessed(sptepOf(leaf2, 9), false);
    expect(f.sps.testAgeGfnRange(slot, BASE, BASE + 4)).toBe(true);
    expect(f.sps.ageGfnRange(slot, BASE, BASE + 4)).toBe(true);
    expect(isAccessed(f.sps.spteAt(sptepOf(leaf2, 9)))).toBe(false);
    expect(f.sps.ageGfnRange(slot, BASE, BASE + 4)).toBe(false);
    expect(f.cleared).toEqual([]); // aging reports young, it does not mark the page
    expect(f.sps.spteAt(sptepOf(leaf, 0))).not.toBe(0);
    expectClean(f);
  });

  it('writeProtectGfn drops W (and D, carried to the host) on every alias; ptProtect also drops MW', () => {
    const f = fixture();
    const { leaf } = mapped(f, 2);
    const p0 = sptepOf(leaf, 0);
    f.sps.spteMarkAccessed(p0, true);
    const slot = f.memslots.idToMemslot(0)!;
    expect(f.sps.writeProtectGfn(slot, BASE, false)).toBe(true);
    expect(isWritable(f.sps.spteAt(p0))).toBe(false);
    expect(isMmuWritable(f.sps.spteAt(p0))).toBe(true);
    expect(f.cleared).toEqual([{ pfn: 100, dirty: true, accessed: false }]);
    expect(f.sps.writeProtectGfn(slot, BASE, false)).toBe(false); // nothing left to drop
    expect(f.sps.writeProtectGfn(slot, BASE, true)).toBe(false); // MW is software-only: no flush
    expect(isMmuWritable(f.sps.spteAt(p0))).toBe(false);
    expectClean(f);
  });

  it('zapMemslot after a move clears the old range and the tables shadowed in it', () => {
    const f = fixture();
    const { leaf } = mapped(f, 2);
    const shadowing = f.sps.getShadowPage(BASE + 10, makeRole(0, false)); // shadows a guest table in the slot
    const change = f.memslots.setUserMemoryRegion({
      slot: 0,
      flags: 0,
      guestPhysAddr: 0x4000_0000,
      memorySize: 1024 * 4096,
      userspaceAddr: 0x1000_0000,
    });
    if (change.kind !== 'move') throw new Error(change.kind);
    f.sps.zapMemslot(change.old);
    expect(f.sps.spteAt(sptepOf(leaf, 0))).toBe(0);
    expect(f.sps.state[shadowing]).toBe(SP_FREE);
    expect(f.sps.isActive(leaf)).toBe(true); // direct tables only lose their sptes
    expect(f.flushes.count).toBe(1);
    expectClean(f);
  });
});

describe('dump', () => {
  it('describes the store', () => {
    const f = fixture();
    mapped(f, 3);
    const text = f.sps.dump();
    expect(text).toMatch(/2 active \/ bound 256/);
    expect(text).toMatch(/sp 1: gfn 0x80000 L0 direct acc=0x0 ctx=0 present 3/);
    expect(text).toMatch(/root x1/);
    f.sps.updateRmapHistogram();
    expect(f.stats.rmapHistogram[0]).toBe(3);
    expect(f.stats.dump()).toMatch(/rmap chain lengths: 1:3 /);
  });
});

import { describe, expect, it } from 'vitest';
import { auditMmu } from '../../src/kvm/mmu/audit.js';
import { rmapAdd, rmapRemove } from '../../src/kvm/mmu/rmap.js';
import { makeRole, sptepOf } from '../../src/kvm/mmu/shadow-pages.js';
import { ACC_R, ACC_W, SPTE_HOST_WRITABLE, SPTE_MMU_WRITABLE, makeSpte } from '../../src/kvm/mmu/spte.js';
import { addMemslot, createMmu, type MmuFixture } from './harness.js';

const BASE = 0x80000;

function build(): { f: MmuFixture; root: number; leaf: number } {
  const f = createMmu();
  addMemslot(f.memslots, 0, BASE, 64, 0x1000_0000);
  const root = f.sps.getRoot(0, makeRole(1, true));
  const leaf = f.sps.getShadowPage(BASE, makeRole(0, true));
  f.sps.linkShadowPage(sptepOf(root, 0x200), leaf);
  // gfn BASE maps through 10 sptes, enough for a descriptor chain.
  for (let i = 0; i < 10; i++) {
    f.sps.setLeafSpte(sptepOf(leaf, i), BASE, makeSpte(77, ACC_R | ACC_W, SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE));
  }
  f.sps.setLeafSpte(sptepOf(leaf, 20), BASE + 5, makeSpte(78, ACC_R, 0));
  return { f, root, leaf };
}

describe('MMU audit', () => {
  it('passes on a consistent MMU', () => {
    const { f } = build();
    expect(auditMmu(f.memslots, f.sps)).toEqual([]);
  });

  it('catches a present leaf missing from its rmap', () => {
    const { f, leaf } = build();
    const slot = f.memslots.idToMemslot(0)!;
    rmapRemove(f.sps.pool, slot.rmap, 5, sptepOf(leaf, 20));
    const p = auditMmu(f.memslots, f.sps);
    expect(p).toEqual([expect.stringMatching(/sptep 1044 \(sp 1\[20\]\): leaf for gfn 0x80005 found 0 times/)]);
  });

  it('catches an rmap entry for a spte that maps another gfn, or nothing', () => {
    const { f, leaf } = build();
    const slot = f.memslots.idToMemslot(0)!;
    rmapAdd(f.sps.pool, slot.rmap, 3, sptepOf(leaf, 20)); // maps BASE+5, not BASE+3
    rmapAdd(f.sps.pool, slot.rmap, 3, sptepOf(leaf, 500)); // not present
    const p = auditMmu(f.memslots, f.sps);
    expect(p).toContainEqual(expect.stringMatching(/rmap of gfn 0x80003: sptep 1044 .* maps gfn 0x80005/));
    expect(p).toContainEqual(expect.stringMatching(/rmap of gfn 0x80003: sptep 1524 .* holds none, not a leaf/));
  });

  it('catches a duplicated rmap entry', () => {
    const { f, leaf } = build();
    const slot = f.memslots.idToMemslot(0)!;
    rmapAdd(f.sps.pool, slot.rmap, 0, sptepOf(leaf, 3));
    expect(auditMmu(f.memslots, f.sps)).toContainEqual(expect.stringMatching(/found 2 times in that gfn's rmap/));
  });

  it('catches a broken parent link', () => {
    const { f, leaf } = build();
    rmapRemove(f.sps.pool, f.sps.parents, leaf, sptepOf(0, 0x200));
    expect(auditMmu(f.memslots, f.sps)).toEqual([expect.stringMatching(/pointer to sp 1 found 0 times in its parent list/)]);
  });

  it('catches a leaked descriptor', () => {
    const { f } = build();
    f.sps.pool.alloc();
    expect(auditMmu(f.memslots, f.sps)).toEqual([expect.stringMatching(/1 leaked/)]);
  });

  it('catches a spte value that breaks the layout invariants', () => {
    const { f, leaf } = build();
    f.sps.sptes[sptepOf(leaf, 20)] = makeSpte(78, ACC_R, 0) | (1 << 6); // D without W
    expect(auditMmu(f.memslots, f.sps)).toContainEqual(expect.stringMatching(/D without W/));
  });
});

describe('MMU audit on a corrupted chain', () => {
  it('reports a cyclic descriptor chain instead of spinning', () => {
    const { f } = build();
    const slot = f.memslots.idToMemslot(0)!;
    const head = -slot.rmap[0]! - 1;
    f.sps.pool.next[head] = head;
    expect(auditMmu(f.memslots, f.sps)).toContainEqual(expect.stringMatching(/reachable twice/));
  });
});

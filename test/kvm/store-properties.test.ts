import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fcParams, fcReplaying } from '../fc-params.js';
import { auditMmu } from '../../src/kvm/mmu/audit.js';
import { SPTES_PER_PAGE, SP_ACTIVE, makeRole, sptepOf } from '../../src/kvm/mmu/shadow-pages.js';
import {
  ACC_R,
  ACC_W,
  ACC_X,
  SPTE_HOST_WRITABLE,
  SPTE_MMU_WRITABLE,
  isDirty,
  isLeafSpte,
  isWritable,
  makeSpte,
  sptePfn,
} from '../../src/kvm/mmu/spte.js';
import { addMemslot, createMmu } from './harness.js';

// Random sequences of what the fault path and the notifier handlers will do; after
// every step the audit must find nothing, and every dirty spte that disappears must
// have been reported dirty to the host for its pfn.

const BASE = 0x80000;
const NGFN = 24;
const ROOT = makeRole(1, true);

type Op =
  | { k: 'map'; table: number; idx: number; gfn: number; write: boolean }
  | { k: 'touchWrite'; pick: number }
  | { k: 'unmap'; from: number; len: number }
  | { k: 'age'; from: number; len: number }
  | { k: 'zap'; table: number }
  | { k: 'shrink' }
  | { k: 'zapAll' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('map' as const), table: fc.nat(5), idx: fc.nat(7), gfn: fc.nat(NGFN - 1), write: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('touchWrite' as const), pick: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('unmap' as const), from: fc.nat(NGFN - 1), len: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('age' as const), from: fc.nat(NGFN - 1), len: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('zap' as const), table: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'shrink' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'zapAll' as const }) },
);

describe('shadow page store under random operations', () => {
  it('keeps sptes, rmaps and parent links consistent and never loses a dirty bit', () => {
    let dirtyRuns = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 30, maxLength: 120, size: 'max' }), (ops) => {
        const f = createMmu({ nMaxMmuPages: 4, capacity: 12 });
        addMemslot(f.memslots, 0, BASE, NGFN, 0x1000_0000);
        const slot = f.memslots.idToMemslot(0)!;
        let root = f.sps.getRoot(0, ROOT);
        const pfnOf = (gfn: number): number => 1000 + gfn;
        // Expected dirty reports per pfn: each dirty spte that goes away.
        const expectDirty = new Map<number, number>();
        const noteDirtyGone = (spte: number): void => {
          if (isLeafSpte(spte) && isDirty(spte)) expectDirty.set(sptePfn(spte), (expectDirty.get(sptePfn(spte)) ?? 0) + 1);
        };
        const snapshot = (): Int32Array => f.sps.sptes.slice();
        const diffGone = (before: Int32Array): void => {
          for (let i = 0; i < before.length; i++) {
            const old = before[i]!;
            const now = f.sps.sptes[i]!;
            if (old !== 0 && isDirty(old) && !(isDirty(now) && sptePfn(now) === sptePfn(old))) noteDirtyGone(old);
          }
        };
        for (const op of ops) {
          const before = snapshot();
          if (!f.sps.isActive(root)) {
            f.sps.putRoot(root);
            root = f.sps.getRoot(0, ROOT);
          }
          switch (op.k) {
            case 'map': {
              f.sps.makeMmuPagesAvailable();
              const leaf = f.sps.getShadowPage(0x100 + op.table, makeRole(0, false));
              f.sps.linkShadowPage(sptepOf(root, op.table), leaf);
              const extra = op.write ? SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE : SPTE_HOST_WRITABLE;
              const access = op.write ? ACC_R | ACC_W : ACC_R | ACC_X;
              f.sps.setLeafSpte(sptepOf(leaf, op.idx), BASE + op.gfn, makeSpte(pfnOf(op.gfn), access, extra));
              break;
            }
            case 'touchWrite': {
              // The guest writes through one of the present leaves (the translator's fill).
              const leaves: number[] = [];
              for (let i = 0; i < f.sps.sptes.length; i++) if (isLeafSpte(f.sps.sptes[i]!) && isWritable(f.sps.sptes[i]!)) leaves.push(i);
              if (leaves.length > 0) f.sps.spteMarkAccessed(leaves[op.pick % leaves.length]!, true);
              break;
            }
            case 'unmap': {
              const end = Math.min(NGFN, op.from + op.len);
              if (f.sps.unmapGfnRange(slot, BASE + op.from, BASE + end)) f.sps.flushRemoteTlbs();
              for (let g = op.from; g < end; g++) {
                let n = 0;
                for (let i = 0; i < f.sps.sptes.length; i++) if (f.sps.sptes[i] !== 0 && isLeafSpte(f.sps.sptes[i]!) && f.sps.spteGfn[i] === BASE + g) n++;
                expect(n).toBe(0);
              }
              break;
            }
            case 'age':
              f.sps.ageGfnRange(slot, BASE + op.from, BASE + Math.min(NGFN, op.from + op.len));
              break;
            case 'zap': {
              const leaf = f.sps.findShadowPage(0x100 + op.table, makeRole(0, false));
              if (leaf >= 0) f.sps.zapPage(leaf);
              break;
            }
            case 'shrink':
              f.sps.setNMaxMmuPages(2);
              f.sps.setNMaxMmuPages(4);
              break;
            case 'zapAll':
              f.sps.zapAll();
              break;
          }
          diffGone(before);
          expect(auditMmu(f.memslots, f.sps)).toEqual([]);
          expect(f.stats.warnings).toBe(0);
        }
        // Teardown (release): nothing may stay mapped, no descriptor may leak.
        const before = snapshot();
        f.sps.zapAll();
        diffGone(before);
        f.sps.putRoot(root);
        expect(f.sps.sptes.every((s) => s === 0)).toBe(true);
        expect(f.sps.pool.inUse).toBe(0);
        expect(f.sps.nFreePages).toBe(f.sps.capacity);
        const got = new Map<number, number>();
        for (const c of f.cleared) if (c.dirty) got.set(c.pfn, (got.get(c.pfn) ?? 0) + 1);
        expect(got).toEqual(expectDirty);
        dirtyRuns += expectDirty.size > 0 ? 1 : 0;
        for (let sp = 0; sp < f.sps.capacity; sp++) expect(f.sps.state[sp]).not.toBe(SP_ACTIVE);
        expect(SPTES_PER_PAGE).toBe(1024);
      }),
      fcParams(150),
    );
    // The property is only worth something if dirty sptes were actually zapped.
    if (!fcReplaying()) expect(dirtyRuns).toBeGreaterThan(100);
  });
});

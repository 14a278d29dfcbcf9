import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACC_R,
  ACC_U,
  ACC_W,
  ACC_X,
  SPTE_A,
  SPTE_D,
  SPTE_HOST_WRITABLE,
  SPTE_MMU_WRITABLE,
  SPTE_PFN_MAX,
  checkSpte,
  isAccessed,
  isDirty,
  isHostWritable,
  isLeafSpte,
  isMmuWritable,
  isNonLeafSpte,
  isShadowPresent,
  isWritable,
  makeNonLeafSpte,
  makeSpte,
  spteAccess,
  spteChild,
  sptePfn,
  spteMkOld,
  spteMkYoung,
  spteToString,
  spteWrprot,
} from '../../src/kvm/mmu/spte.js';

/** A valid leaf: permissions and software bits that satisfy the invariants. */
const leafArb = fc
  .record({
    pfn: fc.integer({ min: 0, max: SPTE_PFN_MAX }),
    r: fc.boolean(),
    w: fc.boolean(),
    x: fc.boolean(),
    u: fc.boolean(),
    a: fc.boolean(),
    d: fc.boolean(),
    hw: fc.boolean(),
    mw: fc.boolean(),
  })
  .map((f) => {
    const r = f.r || !f.x; // a leaf needs R or X
    const w = f.w && r;
    const hw = f.hw || w;
    const mw = f.mw || w;
    const d = f.d && w;
    const access = (r ? ACC_R : 0) | (w ? ACC_W : 0) | (f.x ? ACC_X : 0) | (f.u ? ACC_U : 0);
    const extra = (f.a ? SPTE_A : 0) | (d ? SPTE_D : 0) | (hw ? SPTE_HOST_WRITABLE : 0) | (mw ? SPTE_MMU_WRITABLE : 0);
    return { pfn: f.pfn, access, extra, w, a: f.a, d, hw, mw };
  });

describe('spte value layer', () => {
  it('encode/decode round-trips over random leaves', () => {
    fc.assert(
      fc.property(leafArb, ({ pfn, access, extra, w, a, d, hw, mw }) => {
        const s = makeSpte(pfn, access, extra);
        expect(s | 0).toBe(s); // an int32 pattern
        expect(isShadowPresent(s)).toBe(true);
        expect(isLeafSpte(s)).toBe(true);
        expect(isNonLeafSpte(s)).toBe(false);
        expect(sptePfn(s)).toBe(pfn);
        expect(spteAccess(s)).toBe(access);
        expect(isWritable(s)).toBe(w);
        expect(isAccessed(s)).toBe(a);
        expect(isDirty(s)).toBe(d);
        expect(isHostWritable(s)).toBe(hw);
        expect(isMmuWritable(s)).toBe(mw);
        expect(checkSpte(s)).toBeNull();
        // Transformations keep the invariants and the pfn.
        for (const t of [spteMkOld(s), spteWrprot(s), spteMkYoung(s, false), spteMkYoung(spteWrprot(s), false)]) {
          expect(checkSpte(t)).toBeNull();
          expect(sptePfn(t)).toBe(pfn);
        }
        expect(isAccessed(spteMkOld(s))).toBe(false);
        expect(isWritable(spteWrprot(s)) || isDirty(spteWrprot(s))).toBe(false);
        if (w) expect(isDirty(spteMkYoung(s, true))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('the top pfn bit makes a negative int32 that still decodes', () => {
    const s = makeSpte(SPTE_PFN_MAX, ACC_R, 0);
    expect(s).toBeLessThan(0);
    expect(sptePfn(s)).toBe(SPTE_PFN_MAX);
    expect(spteToString(s)).toBe('pfn 0x7fffff r--- --');
  });

  it('pointer sptes round-trip and are never leaves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: SPTE_PFN_MAX }), (sp) => {
        const s = makeNonLeafSpte(sp);
        expect(isShadowPresent(s)).toBe(true);
        expect(isNonLeafSpte(s)).toBe(true);
        expect(isLeafSpte(s)).toBe(false);
        expect(spteChild(s)).toBe(sp);
        expect(checkSpte(s)).toBeNull();
      }),
    );
  });

  it('refuses values that break an invariant', () => {
    expect(() => makeSpte(1, ACC_W, SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE)).toThrow(/W without R/);
    expect(() => makeSpte(1, ACC_R | ACC_W, SPTE_MMU_WRITABLE)).toThrow(/host-writable/);
    expect(() => makeSpte(1, ACC_R | ACC_W, SPTE_HOST_WRITABLE)).toThrow(/mmu-writable/);
    expect(() => makeSpte(1, ACC_R, SPTE_D)).toThrow(/D without W/);
    expect(() => makeSpte(1, ACC_U, 0)).toThrow(/pointer spte/);
    expect(() => makeSpte(SPTE_PFN_MAX + 1, ACC_R, 0)).toThrow(RangeError);
    expect(() => makeSpte(-1, ACC_R, 0)).toThrow(RangeError);
    expect(checkSpte(2)).toMatch(/non-present/);
    expect(checkSpte(1 | SPTE_A)).toMatch(/pointer/);
  });

  it('prints for the console', () => {
    expect(spteToString(0)).toBe('none');
    expect(spteToString(makeNonLeafSpte(7))).toBe('-> sp 7');
    const s = makeSpte(0x1234, ACC_R | ACC_W | ACC_U, SPTE_A | SPTE_D | SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE);
    expect(spteToString(s)).toBe('pfn 0x1234 rw-u ad HW MW');
  });
});

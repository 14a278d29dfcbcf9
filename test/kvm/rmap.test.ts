import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fcParams } from '../fc-params.js';
import { KvmBug } from '../../src/kvm/bug.js';
import {
  PTE_LIST_EXT,
  PteListPool,
  RMAP_HIST_BUCKETS,
  forEachRmap,
  forEachRmapDesc,
  rmapAdd,
  rmapCount,
  rmapDrain,
  rmapHistogram,
  rmapHistogramLabels,
  rmapRemove,
} from '../../src/kvm/mmu/rmap.js';

function entries(pool: PteListPool, heads: Int32Array, i: number): number[] {
  const out: number[] = [];
  forEachRmap(pool, heads, i, (s) => void out.push(s));
  return out.sort((a, b) => a - b);
}

function descsReachable(pool: PteListPool, heads: Int32Array): number {
  let n = 0;
  for (let i = 0; i < heads.length; i++) forEachRmapDesc(pool, heads, i, () => n++);
  return n;
}

type Op = { kind: 'add' | 'remove' | 'drain'; key: number; sptep: number };

describe('rmap (pte_list)', () => {
  it('inline, then a chain, then back to empty', () => {
    const pool = new PteListPool(1);
    const heads = new Int32Array(2);
    expect(rmapAdd(pool, heads, 0, 0)).toBe(0); // sptep 0 must be distinguishable from empty
    expect(heads[0]).toBeGreaterThan(0);
    expect(rmapCount(pool, heads, 0)).toBe(1);
    for (let s = 1; s < 20; s++) expect(rmapAdd(pool, heads, 0, s * 1024 + 3)).toBe(s);
    expect(heads[0]).toBeLessThan(0);
    expect(rmapCount(pool, heads, 0)).toBe(20);
    expect(pool.inUse).toBe(Math.ceil(20 / PTE_LIST_EXT)); // grew from capacity 1
    for (let s = 19; s >= 1; s--) rmapRemove(pool, heads, 0, s * 1024 + 3);
    expect(entries(pool, heads, 0)).toEqual([0]);
    rmapRemove(pool, heads, 0, 0);
    expect(heads[0]).toBe(0);
    expect(pool.inUse).toBe(0);
  });

  it('BUG()s on removing an absent entry, from every head form', () => {
    const pool = new PteListPool();
    const heads = new Int32Array(3);
    expect(() => rmapRemove(pool, heads, 0, 5)).toThrow(KvmBug);
    rmapAdd(pool, heads, 1, 5);
    expect(() => rmapRemove(pool, heads, 1, 6)).toThrow(/holds only 5/);
    for (let s = 0; s < 10; s++) rmapAdd(pool, heads, 2, s);
    expect(() => rmapRemove(pool, heads, 2, 99)).toThrow(/not found in list 2 \(10 entries\)/);
    expect(rmapCount(pool, heads, 2)).toBe(10);
  });

  it('forEachRmap stops when the callback returns true', () => {
    const pool = new PteListPool();
    const heads = new Int32Array(1);
    for (let s = 0; s < 30; s++) rmapAdd(pool, heads, 0, s);
    let seen = 0;
    expect(forEachRmap(pool, heads, 0, () => ++seen === 9)).toBe(true);
    expect(seen).toBe(9);
  });

  it('histogram buckets by powers of two', () => {
    const pool = new PteListPool();
    const heads = new Int32Array(6);
    const sizes = [0, 1, 2, 3, 9, 300];
    sizes.forEach((n, i) => {
      for (let s = 0; s < n; s++) rmapAdd(pool, heads, i, s);
    });
    const h = new Array<number>(RMAP_HIST_BUCKETS).fill(0);
    rmapHistogram(pool, heads, h);
    expect(h).toEqual([1, 2, 0, 1, 0, 0, 0, 1]);
    expect(rmapHistogramLabels()).toEqual(['1', '2-3', '4-7', '8-15', '16-31', '32-63', '64-127', '128+']);
  });

  it('agrees with a Map<key, Set<sptep>> model under random add/remove/drain', () => {
    const KEYS = 6;
    const opArb: fc.Arbitrary<Op> = fc.record({
      kind: fc.constantFrom<Op['kind']>('add', 'add', 'add', 'remove', 'remove', 'drain'),
      key: fc.integer({ min: 0, max: KEYS - 1 }),
      sptep: fc.integer({ min: 0, max: 60 }),
    });
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400, size: 'max' }), (ops) => {
        const pool = new PteListPool(2);
        const heads = new Int32Array(KEYS);
        const model = new Map<number, Set<number>>();
        for (let k = 0; k < KEYS; k++) model.set(k, new Set());
        for (const op of ops) {
          const set = model.get(op.key)!;
          if (op.kind === 'add') {
            if (set.has(op.sptep)) continue; // duplicates are a caller bug, not modelled
            expect(rmapAdd(pool, heads, op.key, op.sptep)).toBe(set.size);
            set.add(op.sptep);
          } else if (op.kind === 'remove') {
            if (set.has(op.sptep)) {
              rmapRemove(pool, heads, op.key, op.sptep);
              set.delete(op.sptep);
            } else {
              expect(() => rmapRemove(pool, heads, op.key, op.sptep)).toThrow(KvmBug);
            }
          } else {
            const drained: number[] = [];
            rmapDrain(pool, heads, op.key, (s) => void drained.push(s));
            expect(drained.sort((a, b) => a - b)).toEqual([...set].sort((a, b) => a - b));
            set.clear();
          }
          for (let k = 0; k < KEYS; k++) {
            const want = [...model.get(k)!].sort((a, b) => a - b);
            expect(rmapCount(pool, heads, k)).toBe(want.length);
            expect(entries(pool, heads, k)).toEqual(want);
          }
          expect(descsReachable(pool, heads)).toBe(pool.inUse);
        }
        // Removing everything frees every descriptor.
        for (const [k, set] of model) for (const s of set) rmapRemove(pool, heads, k, s);
        expect(pool.inUse).toBe(0);
        expect([...heads]).toEqual(new Array<number>(KEYS).fill(0));
      }),
      fcParams(100),
    );
  });
});

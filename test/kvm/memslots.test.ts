import { describe, expect, it } from 'vitest';
import {
  HVA_ERR_BAD,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  MemslotError,
  Memslots,
  PAGE_SIZE,
  gfnToHva,
  type MemslotErrorKind,
  type UserMemoryRegion,
} from '../../src/kvm/memslots.js';

const MiB = 1 << 20;

function region(slot: number, gpa: number, size: number, hva: number, flags = 0): UserMemoryRegion {
  return { slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: hva };
}

function twoSlots(): Memslots {
  const m = new Memslots();
  m.setUserMemoryRegion(region(0, 0x8000_0000, 1 * MiB, 0x1000_0000));
  m.setUserMemoryRegion(region(1, 0x0000_0000, 64 * 1024, 0x2000_0000));
  return m;
}

describe('KVM_SET_USER_MEMORY_REGION errors', () => {
  const cases: [string, UserMemoryRegion, MemslotErrorKind, 'EINVAL' | 'EEXIST', RegExp][] = [
    ['slot id too large', region(32, 0x10_0000, PAGE_SIZE, 0x3000_0000), 'bad-slot-id', 'EINVAL', /slot id 32 out of range/],
    ['negative slot id', region(-1, 0x10_0000, PAGE_SIZE, 0x3000_0000), 'bad-slot-id', 'EINVAL', /out of range/],
    ['unknown flag', region(2, 0x10_0000, PAGE_SIZE, 0x3000_0000, 0x4), 'bad-flags', 'EINVAL', /unknown flags 0x4/],
    ['gpa misaligned', region(2, 0x10_0800, PAGE_SIZE, 0x3000_0000), 'misaligned', 'EINVAL', /guest_phys_addr 0x100800 is not 4 KiB aligned/],
    ['size misaligned', region(2, 0x10_0000, 100, 0x3000_0000), 'misaligned', 'EINVAL', /memory_size 0x64/],
    ['hva misaligned', region(2, 0x10_0000, PAGE_SIZE, 0x3000_0010), 'misaligned', 'EINVAL', /userspace_addr 0x30000010/],
    ['gpa past 34 bits', region(2, 2 ** 34 - PAGE_SIZE, 2 * PAGE_SIZE, 0x3000_0000), 'out-of-range', 'EINVAL', /34-bit/],
    ['hva past 4 GiB', region(2, 0x10_0000, 2 * PAGE_SIZE, 2 ** 32 - PAGE_SIZE), 'out-of-range', 'EINVAL', /4 GiB/],
    ['delete a missing slot', region(5, 0, 0, 0), 'no-such-slot', 'EINVAL', /does not exist/],
    ['overlap at the start', region(2, 0x8000_0000 - PAGE_SIZE, 2 * PAGE_SIZE, 0x3000_0000), 'overlap', 'EEXIST', /overlaps slot 0/],
    ['overlap inside', region(2, 0x8001_0000, PAGE_SIZE, 0x3000_0000), 'overlap', 'EEXIST', /overlaps slot 0/],
    ['overlap covering', region(2, 0, 4 * MiB, 0x3000_0000), 'overlap', 'EEXIST', /overlaps slot 1/],
    ['resize', region(0, 0x8000_0000, 2 * MiB, 0x1000_0000), 'resize', 'EINVAL', /cannot change memory_size/],
    ['remap hva', region(0, 0x8000_0000, 1 * MiB, 0x1100_0000), 'remap-hva', 'EINVAL', /cannot change userspace_addr/],
    ['toggle readonly', region(0, 0x8000_0000, 1 * MiB, 0x1000_0000, KVM_MEM_READONLY), 'toggle-readonly', 'EINVAL', /READONLY/],
    ['move onto another slot', region(1, 0x8000_0000, 64 * 1024, 0x2000_0000), 'overlap', 'EEXIST', /slot 1: .* overlaps slot 0/],
  ];
  it.each(cases)('%s', (_name, r, kind, errno, msg) => {
    const m = twoSlots();
    const gen = m.generation;
    const before = m.dump();
    let err: unknown;
    try {
      m.setUserMemoryRegion(r);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemslotError);
    const me = err as MemslotError;
    expect(me.kind).toBe(kind);
    expect(me.errno).toBe(errno);
    expect(me.message).toMatch(msg);
    expect(m.generation).toBe(gen);
    expect(m.dump()).toBe(before);
  });

  it('adjacent slots do not overlap', () => {
    const m = twoSlots();
    expect(m.setUserMemoryRegion(region(2, 0x8000_0000 + MiB, PAGE_SIZE, 0x3000_0000)).kind).toBe('create');
    expect(m.setUserMemoryRegion(region(3, 0x8000_0000 - PAGE_SIZE, PAGE_SIZE, 0x3000_1000)).kind).toBe('create');
  });
});

describe('memslot changes', () => {
  it('create, flags-only, move, no-op and delete; generation moves on real changes only', () => {
    const m = new Memslots();
    expect(m.generation).toBe(0);
    const c = m.setUserMemoryRegion(region(3, 0x8000_0000, 16 * PAGE_SIZE, 0x1000_0000));
    expect(c.kind).toBe('create');
    expect(m.generation).toBe(1);
    if (c.kind !== 'create') throw new Error();
    expect(c.slot).toMatchObject({ id: 3, baseGfn: 0x80000, npages: 16, userspaceAddr: 0x1000_0000, flags: 0 });
    expect(c.slot.rmap.length).toBe(16);

    const f = m.setUserMemoryRegion(region(3, 0x8000_0000, 16 * PAGE_SIZE, 0x1000_0000, KVM_MEM_LOG_DIRTY_PAGES));
    expect(f.kind).toBe('flags');
    if (f.kind !== 'flags') throw new Error();
    expect(f.old).toBe(c.slot);
    expect(f.slot).not.toBe(c.slot); // immutable slots: a stale holder can tell
    expect(f.slot.rmap).toBe(c.slot.rmap); // flags-only keeps the rmap (slot->arch)
    expect(m.generation).toBe(2);

    const n = m.setUserMemoryRegion(region(3, 0x8000_0000, 16 * PAGE_SIZE, 0x1000_0000, KVM_MEM_LOG_DIRTY_PAGES));
    expect(n.kind).toBe('none');
    expect(m.generation).toBe(2);

    const mv = m.setUserMemoryRegion(region(3, 0x4000_0000, 16 * PAGE_SIZE, 0x1000_0000, KVM_MEM_LOG_DIRTY_PAGES));
    expect(mv.kind).toBe('move');
    if (mv.kind !== 'move') throw new Error();
    expect(mv.old.baseGfn).toBe(0x80000);
    expect(mv.slot.baseGfn).toBe(0x40000);
    expect(mv.slot.rmap).not.toBe(mv.old.rmap);
    expect(m.gfnToMemslot(0x80000)).toBeUndefined();
    expect(m.gfnToMemslot(0x40005)).toBe(mv.slot);
    expect(m.gfnToHva(0x40005)).toBe(0x1000_5000);
    expect(m.generation).toBe(3);

    const d = m.setUserMemoryRegion(region(3, 0, 0, 0));
    expect(d.kind).toBe('delete');
    if (d.kind !== 'delete') throw new Error();
    expect(d.old).toBe(mv.slot);
    expect(m.size).toBe(0);
    expect(m.idToMemslot(3)).toBeUndefined();
    expect(m.generation).toBe(4);
  });

  it('a move may overlap its own old range', () => {
    const m = new Memslots();
    m.setUserMemoryRegion(region(0, 0x1000_0000, 8 * PAGE_SIZE, 0x5000_0000));
    const mv = m.setUserMemoryRegion(region(0, 0x1000_0000 + 2 * PAGE_SIZE, 8 * PAGE_SIZE, 0x5000_0000));
    expect(mv.kind).toBe('move');
    expect(m.gfnToMemslot(0x10000)).toBeUndefined();
    expect(m.gfnToMemslot(0x10009)?.id).toBe(0);
  });
});

describe('lookups', () => {
  it('gfnToMemslot by binary search over many slots, with the last-used cache', () => {
    const m = new Memslots();
    // Insert out of order; slot i covers gfns [i*100, i*100+10).
    for (const i of [7, 2, 9, 0, 5, 1, 8, 3, 6, 4]) m.setUserMemoryRegion(region(i, i * 100 * PAGE_SIZE, 10 * PAGE_SIZE, (i + 1) * MiB));
    expect(m.all().map((s) => s.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let gfn = 0; gfn < 1000; gfn++) {
      const s = m.gfnToMemslot(gfn);
      const inSlot = gfn % 100 < 10;
      expect(s?.id).toBe(inSlot ? Math.floor(gfn / 100) : undefined);
      // Twice: the second answer comes from the cache and must agree.
      expect(m.gfnToMemslot(gfn)).toBe(s);
    }
  });

  it('gfnToHva inside, at the edges, and outside', () => {
    const m = twoSlots();
    const s = m.idToMemslot(0)!;
    expect(gfnToHva(s, 0x80000)).toBe(0x1000_0000);
    expect(gfnToHva(s, 0x800ff)).toBe(0x1000_0000 + 0xff * PAGE_SIZE);
    expect(gfnToHva(s, 0x80100)).toBe(HVA_ERR_BAD);
    expect(gfnToHva(s, 0x7ffff)).toBe(HVA_ERR_BAD);
    expect(m.gfnToHva(0xf)).toBe(0x2000_f000);
    expect(m.gfnToHva(0x10)).toBe(HVA_ERR_BAD);
    expect(m.gfnToHva(0x10000)).toBe(HVA_ERR_BAD);
  });

  it('hva range spanning two slots that are adjacent in hva but not in gfn', () => {
    const m = new Memslots();
    m.setUserMemoryRegion(region(0, 0x8000_0000, 4 * PAGE_SIZE, 0x1000_0000));
    m.setUserMemoryRegion(region(1, 0x0100_0000, 4 * PAGE_SIZE, 0x1000_4000));
    const r = m.hvaRangeToGfnRanges(0x1000_2000, 0x1000_6000);
    expect(r.map((x) => [x.slot.id, x.gfnStart, x.gfnEnd])).toEqual([
      [1, 0x1000, 0x1002],
      [0, 0x80002, 0x80004],
    ]);
  });

  it('partial overlaps clip to the slot and round a partial last page up', () => {
    const m = twoSlots();
    // Starts before slot 0, ends inside it, mid-page.
    expect(m.hvaRangeToGfnRanges(0x0fff_0000, 0x1000_2800).map((x) => [x.slot.id, x.gfnStart, x.gfnEnd])).toEqual([
      [0, 0x80000, 0x80003],
    ]);
    // Starts inside slot 1 mid-page, ends after it.
    expect(m.hvaRangeToGfnRanges(0x2000_f800, 0x3000_0000).map((x) => [x.slot.id, x.gfnStart, x.gfnEnd])).toEqual([[1, 0xf, 0x10]]);
    // Misses everything.
    expect(m.hvaRangeToGfnRanges(0x3000_0000, 0x4000_0000)).toEqual([]);
    // Empty range.
    expect(m.hvaRangeToGfnRanges(0x1000_1000, 0x1000_1000)).toEqual([]);
  });

  it('two slots aliasing the same host pages both report', () => {
    const m = new Memslots();
    m.setUserMemoryRegion(region(0, 0x8000_0000, 4 * PAGE_SIZE, 0x1000_0000));
    m.setUserMemoryRegion(region(1, 0x9000_0000, 4 * PAGE_SIZE, 0x1000_0000, KVM_MEM_READONLY));
    const r = m.hvaRangeToGfnRanges(0x1000_1000, 0x1000_2000);
    expect(r.map((x) => [x.slot.id, x.gfnStart, x.gfnEnd])).toEqual([
      [0, 0x80001, 0x80002],
      [1, 0x90001, 0x90002],
    ]);
  });

  it('after a move, the notifier reports the new gfns', () => {
    const m = twoSlots();
    m.setUserMemoryRegion(region(1, 0x0010_0000, 64 * 1024, 0x2000_0000));
    expect(m.hvaRangeToGfnRanges(0x2000_0000, 0x2000_1000).map((x) => [x.slot.id, x.gfnStart, x.gfnEnd])).toEqual([
      [1, 0x100, 0x101],
    ]);
  });
});

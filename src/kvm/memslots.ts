// Counterpart: virt/kvm/kvm_main.c (memslots: __kvm_set_memory_region, kvm_set_memslot,
// search_memslots, hva_to_gfn_memslot, the memslot walk of __kvm_handle_hva_range)
//
// A memslot maps guest frames [baseGfn, baseGfn + npages) onto host virtual pages
// starting at userspaceAddr. The set is small (<= KVM_USER_MEM_SLOTS) and read on
// every shadow-page fault, so it is kept sorted by baseGfn for a binary search,
// fronted by a one-entry "last used" cache (KVM's lru_slot).
//
// Invariants:
// - slots never overlap in gfn space (they may overlap, or alias, in hva space: two
//   slots backed by the same host pages are legal, and the notifier then reports both);
// - a Memslot object is immutable: every change publishes a new object (flags-only
//   keeps the rmap array, as KVM keeps slot->arch), so a fault path holding a stale
//   slot can detect the change by identity or by `generation`;
// - `generation` moves on every committed change, never on a rejected or no-op call.
//
// The rmap heads live on the slot (KVM's slot->arch.rmap) because their index is
// gfn - baseGfn: a moved slot gets fresh heads, and the old slot's heads stay readable
// through the returned change so the MMU can zap what they still hold.

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Ids 0..KVM_USER_MEM_SLOTS-1 are userspace's; KVM's private slots are not modelled. */
export const KVM_USER_MEM_SLOTS = 32;

/** Dirty logging is reserved: accepted and recorded, not implemented yet. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;
const KVM_MEM_VALID_FLAGS = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;

/** Sv32 physical addresses are 34 bits wide. */
export const GPA_LIMIT = 2 ** 34;
/** hvas are unsigned 32-bit byte addresses (src/host/vma.ts). */
export const HVA_LIMIT = 2 ** 32;

/** KVM_HVA_ERR_BAD. */
export const HVA_ERR_BAD = -1;

/**
 * Non-empty rmap heads are counted per chunk of 2^RMAP_CHUNK_SHIFT gfns and per
 * super-chunk of 2^RMAP_SUPER_SHIFT gfns, so a range walk (a notifier invalidating
 * 256 MiB of which 3 pages are mapped) skips empty stretches: its cost follows the
 * mapped sptes, not the length of the range. ShadowPages keeps the counts.
 */
export const RMAP_CHUNK_SHIFT = 6;
export const RMAP_SUPER_SHIFT = 12;

export interface Memslot {
  readonly id: number;
  readonly baseGfn: number;
  readonly npages: number;
  /** hva of baseGfn, page aligned. */
  readonly userspaceAddr: number;
  readonly flags: number;
  /** rmap heads, one per page of the slot, indexed by gfn - baseGfn (see mmu/rmap.ts). */
  readonly rmap: Int32Array;
  /** Non-empty heads per chunk of rmap (see RMAP_CHUNK_SHIFT). */
  readonly rmapChunkUsed: Uint16Array;
  /** Non-empty heads per super-chunk. */
  readonly rmapSuperUsed: Uint16Array;
}

function newSlot(id: number, baseGfn: number, npages: number, userspaceAddr: number, flags: number): Memslot {
  return {
    id,
    baseGfn,
    npages,
    userspaceAddr,
    flags,
    rmap: new Int32Array(npages),
    rmapChunkUsed: new Uint16Array(Math.ceil(npages / (1 << RMAP_CHUNK_SHIFT))),
    rmapSuperUsed: new Uint16Array(Math.ceil(npages / (1 << RMAP_SUPER_SHIFT))),
  };
}

/** struct kvm_userspace_memory_region; byte addresses and sizes, as userspace passes them. */
export interface UserMemoryRegion {
  readonly slot: number;
  readonly flags: number;
  readonly guestPhysAddr: number;
  readonly memorySize: number;
  readonly userspaceAddr: number;
}

/**
 * What a committed change did, for the MMU: `delete` and `move` must zap every spte
 * reachable from `old.rmap` (and the shadow pages of gfns in the old range) before
 * mmu_lock is dropped; `flags` needs a zap only when a permission shrinks.
 */
export type MemslotChange =
  | { readonly kind: 'create'; readonly slot: Memslot; readonly generation: number }
  | { readonly kind: 'delete'; readonly old: Memslot; readonly generation: number }
  | { readonly kind: 'move'; readonly old: Memslot; readonly slot: Memslot; readonly generation: number }
  | { readonly kind: 'flags'; readonly old: Memslot; readonly slot: Memslot; readonly generation: number }
  | { readonly kind: 'none'; readonly slot: Memslot; readonly generation: number };

export type MemslotErrorKind =
  | 'bad-slot-id'
  | 'bad-flags'
  | 'misaligned'
  | 'out-of-range'
  | 'zero-size-create'
  | 'no-such-slot'
  | 'resize'
  | 'remap-hva'
  | 'toggle-readonly'
  | 'overlap';

/** Errors of KVM_SET_USER_MEMORY_REGION; `errno` is what the ioctl would return. */
export class MemslotError extends Error {
  override readonly name = 'MemslotError';
  constructor(
    readonly kind: MemslotErrorKind,
    readonly errno: 'EINVAL' | 'EEXIST',
    message: string,
  ) {
    super(message);
  }
}

export interface GfnRange {
  readonly slot: Memslot;
  /** [gfnStart, gfnEnd) */
  readonly gfnStart: number;
  readonly gfnEnd: number;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

function isPageAligned(n: number): boolean {
  return n % PAGE_SIZE === 0;
}

export function gfnToHva(slot: Memslot, gfn: number): number {
  if (gfn < slot.baseGfn || gfn >= slot.baseGfn + slot.npages) return HVA_ERR_BAD;
  return slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE_SIZE;
}

/** hva_to_gfn_memslot: the caller has checked that hva lies in the slot. */
export function hvaToGfn(slot: Memslot, hva: number): number {
  return slot.baseGfn + Math.floor((hva - slot.userspaceAddr) / PAGE_SIZE);
}

export class Memslots {
  /** Sorted by baseGfn, no overlap. */
  private sorted: Memslot[] = [];
  private readonly byId: (Memslot | undefined)[] = new Array<Memslot | undefined>(KVM_USER_MEM_SLOTS);
  private lastUsed: Memslot | undefined;
  private gen = 0;

  get generation(): number {
    return this.gen;
  }

  get size(): number {
    return this.sorted.length;
  }

  idToMemslot(id: number): Memslot | undefined {
    return this.byId[id];
  }

  /** Slots in gfn order. The array is replaced, never mutated, on change. */
  all(): readonly Memslot[] {
    return this.sorted;
  }

  /** search_memslots: the slot holding gfn, if any. */
  gfnToMemslot(gfn: number): Memslot | undefined {
    const last = this.lastUsed;
    if (last !== undefined && gfn >= last.baseGfn && gfn < last.baseGfn + last.npages) return last;
    const s = this.sorted;
    let lo = 0;
    let hi = s.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const slot = s[mid]!;
      if (gfn < slot.baseGfn) hi = mid - 1;
      else if (gfn >= slot.baseGfn + slot.npages) lo = mid + 1;
      else {
        this.lastUsed = slot;
        return slot;
      }
    }
    return undefined;
  }

  /** gfn_to_hva: HVA_ERR_BAD outside every slot. */
  gfnToHva(gfn: number): number {
    const slot = this.gfnToMemslot(gfn);
    return slot === undefined ? HVA_ERR_BAD : gfnToHva(slot, gfn);
  }

  /**
   * The notifier's hva -> gfn step (__kvm_handle_hva_range): for every slot whose
   * hva range meets [hvaStart, hvaEnd), the gfns it covers, clipped to the slot.
   * A partial first or last page still names its gfn: the end rounds up.
   * No allocation: the handler calls this under SRCU, possibly many times per reclaim.
   */
  forEachGfnRangeOfHva(
    hvaStart: number,
    hvaEnd: number,
    fn: (slot: Memslot, gfnStart: number, gfnEnd: number) => void,
  ): void {
    for (const slot of this.sorted) {
      const slotEnd = slot.userspaceAddr + slot.npages * PAGE_SIZE;
      const start = Math.max(hvaStart, slot.userspaceAddr);
      const end = Math.min(hvaEnd, slotEnd);
      if (start >= end) continue;
      fn(slot, hvaToGfn(slot, start), hvaToGfn(slot, end + PAGE_SIZE - 1));
    }
  }

  hvaRangeToGfnRanges(hvaStart: number, hvaEnd: number): GfnRange[] {
    const out: GfnRange[] = [];
    this.forEachGfnRangeOfHva(hvaStart, hvaEnd, (slot, gfnStart, gfnEnd) => out.push({ slot, gfnStart, gfnEnd }));
    return out;
  }

  /**
   * KVM_SET_USER_MEMORY_REGION. Validates everything before touching the set, so a
   * throw leaves slots and generation unchanged.
   */
  setUserMemoryRegion(region: UserMemoryRegion): MemslotChange {
    const { slot: id, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: hva } = region;
    const what = `slot ${id}`;
    if (!Number.isInteger(id) || id < 0 || id >= KVM_USER_MEM_SLOTS) {
      throw new MemslotError('bad-slot-id', 'EINVAL', `slot id ${id} out of range: valid ids are 0..${KVM_USER_MEM_SLOTS - 1}`);
    }
    if (!Number.isInteger(flags) || (flags & ~KVM_MEM_VALID_FLAGS) !== 0 || flags < 0) {
      throw new MemslotError(
        'bad-flags',
        'EINVAL',
        `${what}: unknown flags ${hex(flags)}: only KVM_MEM_LOG_DIRTY_PAGES (0x1) and KVM_MEM_READONLY (0x2) are defined`,
      );
    }
    for (const [name, v] of [
      ['memory_size', size],
      ['guest_phys_addr', gpa],
      ['userspace_addr', hva],
    ] as const) {
      if (!Number.isInteger(v) || v < 0) {
        throw new MemslotError('out-of-range', 'EINVAL', `${what}: ${name} ${v} is not a non-negative integer`);
      }
      if (!isPageAligned(v)) {
        throw new MemslotError('misaligned', 'EINVAL', `${what}: ${name} ${hex(v)} is not 4 KiB aligned`);
      }
    }
    if (gpa + size > GPA_LIMIT) {
      throw new MemslotError(
        'out-of-range',
        'EINVAL',
        `${what}: guest range ${hex(gpa)}+${hex(size)} ends beyond the 34-bit Sv32 physical space`,
      );
    }
    if (hva + size > HVA_LIMIT) {
      throw new MemslotError('out-of-range', 'EINVAL', `${what}: host range ${hex(hva)}+${hex(size)} ends beyond 4 GiB`);
    }

    const old = this.byId[id];
    if (size === 0) {
      if (old === undefined) {
        throw new MemslotError('no-such-slot', 'EINVAL', `${what}: cannot delete (memory_size 0): the slot does not exist`);
      }
      this.publish(id, undefined);
      return { kind: 'delete', old, generation: this.gen };
    }

    const baseGfn = gpa / PAGE_SIZE;
    const npages = size / PAGE_SIZE;
    if (old === undefined) {
      this.checkNoOverlap(id, baseGfn, npages);
      const slot = newSlot(id, baseGfn, npages, hva, flags);
      this.publish(id, slot);
      return { kind: 'create', slot, generation: this.gen };
    }

    // KVM refuses to resize or remap a live slot: userspace must delete and recreate,
    // which forces a zap of everything the old translation produced.
    if (npages !== old.npages) {
      throw new MemslotError(
        'resize',
        'EINVAL',
        `${what}: cannot change memory_size from ${hex(old.npages * PAGE_SIZE)} to ${hex(size)}: delete the slot first`,
      );
    }
    if (hva !== old.userspaceAddr) {
      throw new MemslotError(
        'remap-hva',
        'EINVAL',
        `${what}: cannot change userspace_addr from ${hex(old.userspaceAddr)} to ${hex(hva)}: delete the slot first`,
      );
    }
    if (((flags ^ old.flags) & KVM_MEM_READONLY) !== 0) {
      throw new MemslotError('toggle-readonly', 'EINVAL', `${what}: cannot toggle KVM_MEM_READONLY: delete the slot first`);
    }
    if (baseGfn !== old.baseGfn) {
      this.checkNoOverlap(id, baseGfn, npages);
      const slot = newSlot(id, baseGfn, npages, hva, flags);
      this.publish(id, slot);
      return { kind: 'move', old, slot, generation: this.gen };
    }
    if (flags !== old.flags) {
      const slot: Memslot = { ...old, flags };
      this.publish(id, slot);
      return { kind: 'flags', old, slot, generation: this.gen };
    }
    return { kind: 'none', slot: old, generation: this.gen };
  }

  private checkNoOverlap(id: number, baseGfn: number, npages: number): void {
    for (const s of this.sorted) {
      if (s.id === id) continue;
      if (baseGfn < s.baseGfn + s.npages && s.baseGfn < baseGfn + npages) {
        throw new MemslotError(
          'overlap',
          'EEXIST',
          `slot ${id}: guest range ${hex(baseGfn * PAGE_SIZE)}..${hex((baseGfn + npages) * PAGE_SIZE)} overlaps slot ${s.id} ` +
            `(${hex(s.baseGfn * PAGE_SIZE)}..${hex((s.baseGfn + s.npages) * PAGE_SIZE)})`,
        );
      }
    }
  }

  private publish(id: number, slot: Memslot | undefined): void {
    this.byId[id] = slot;
    const next = this.sorted.filter((s) => s.id !== id);
    if (slot !== undefined) {
      let i = 0;
      while (i < next.length && next[i]!.baseGfn < slot.baseGfn) i++;
      next.splice(i, 0, slot);
    }
    this.sorted = next;
    this.lastUsed = undefined;
    this.gen++;
  }

  /** `info memslots`. */
  dump(): string {
    const lines = [`memslots generation ${this.gen}`];
    for (const s of this.sorted) {
      const f = [s.flags & KVM_MEM_READONLY ? 'ro' : 'rw', s.flags & KVM_MEM_LOG_DIRTY_PAGES ? 'dirty-log' : ''].filter(Boolean);
      lines.push(
        `slot ${s.id}: gpa ${hex(s.baseGfn * PAGE_SIZE)}-${hex((s.baseGfn + s.npages) * PAGE_SIZE)} ` +
          `hva ${hex(s.userspaceAddr)} pages ${s.npages} ${f.join(',')}`,
      );
    }
    return lines.join('\n');
  }
}

// Counterpart: arch/x86/kvm/mmu/spte.h
//
// The value layer: one shadow pte as a 32-bit pattern, constructors and predicates,
// no state. Values are int32 patterns (bit 31 is a pfn bit, so a large pfn reads
// negative); compare with `===`, print with `>>> 0`.
//
//   31                                   9    8    7   6   5   4   3   2   1   0
//  +--------------------------------------+----+----+---+---+---+---+---+---+---+
//  | pfn (leaf) / child shadow page (ptr) | MW | HW | D | A | U | X | W | R | P |
//  +--------------------------------------+----+----+---+---+---+---+---+---+---+
//
//   P   shadow-present. KVM also has non-present sptes that mean something (MMIO,
//       REMOVED); we have none, so every non-present spte is exactly 0.
//   R W X U   the permissions the translator enforces, already combined from the
//       guest pte, the memslot and the host pte.
//   A D accessed / dirty, set by our "hardware walker" (the translator filling the
//       hart's soft TLB): A on any fill, D on a write fill. A soft TLB entry keeps
//       working after A or D is cleared in the spte, so clearing them needs a flush
//       to be seen again (the store layer reports it).
//   HW  host-writable (software): the host pte was writable when the pfn was
//       resolved (GUP for write). Without it the spte may never become writable.
//   MW  mmu-writable (software): KVM itself allows W (the gfn is not a shadowed
//       guest page table, the memslot is not read-only). Kept apart from W so a
//       spte that is read-only only because the guest pte is clean can be made
//       writable later without a new GUP.
//
// As in Sv32, a present spte with R = W = X = 0 is a pointer: its upper bits are the
// index of the child shadow page, and its A/D/U/HW/MW bits are zero.
//
// Invariants (checkSpte reports the first one broken):
//   - not present  =>  spte === 0
//   - leaf (P and R|X): W => R, W => HW and MW, D => W, pfn <= SPTE_PFN_MAX
//     (D => W: a write-protect must carry D to the host page before dropping W,
//     otherwise a dirty page could be reclaimed as clean)
//   - pointer (P, no R W X): no other flag bits.

export const SPTE_PRESENT = 1 << 0;
export const SPTE_R = 1 << 1;
export const SPTE_W = 1 << 2;
export const SPTE_X = 1 << 3;
export const SPTE_U = 1 << 4;
export const SPTE_A = 1 << 5;
export const SPTE_D = 1 << 6;
export const SPTE_HOST_WRITABLE = 1 << 7;
export const SPTE_MMU_WRITABLE = 1 << 8;

export const SPTE_PFN_SHIFT = 9;
export const SPTE_FLAGS_MASK = (1 << SPTE_PFN_SHIFT) - 1;
/** Host pfns are below 2^23 (src/host/pte.ts), exactly the 23 bits left here. */
export const SPTE_PFN_MAX = (1 << 23) - 1;

/** The permission bits a fault path passes in `access`. */
export const ACC_R = SPTE_R;
export const ACC_W = SPTE_W;
export const ACC_X = SPTE_X;
export const ACC_U = SPTE_U;
export const ACC_ALL = ACC_R | ACC_W | ACC_X | ACC_U;

/** Software and tracking bits a fault path passes in `extra`. */
const EXTRA_MASK = SPTE_A | SPTE_D | SPTE_HOST_WRITABLE | SPTE_MMU_WRITABLE;

const RWX = SPTE_R | SPTE_W | SPTE_X;

export const SPTE_NONE = 0;

/**
 * A leaf spte. `access` holds ACC_* bits, `extra` SPTE_A/D/HOST_WRITABLE/MMU_WRITABLE.
 * Throws on a combination that breaks an invariant: the fault path must decide
 * writability (see above), the value layer only refuses nonsense.
 */
export function makeSpte(pfn: number, access: number, extra: number): number {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn > SPTE_PFN_MAX) throw new RangeError(`makeSpte: pfn ${pfn} out of range`);
  if ((access & ~ACC_ALL) !== 0) throw new RangeError(`makeSpte: bad access bits 0x${access.toString(16)}`);
  if ((extra & ~EXTRA_MASK) !== 0) throw new RangeError(`makeSpte: bad extra bits 0x${extra.toString(16)}`);
  const spte = (pfn << SPTE_PFN_SHIFT) | access | extra | SPTE_PRESENT;
  const why = checkSpte(spte);
  if (why !== null) throw new RangeError(`makeSpte: ${why}`);
  return spte;
}

/** A pointer to child shadow page `sp`. */
export function makeNonLeafSpte(sp: number): number {
  if (!Number.isInteger(sp) || sp < 0 || sp > SPTE_PFN_MAX) throw new RangeError(`makeNonLeafSpte: sp ${sp} out of range`);
  return (sp << SPTE_PFN_SHIFT) | SPTE_PRESENT;
}

export function isShadowPresent(spte: number): boolean {
  return (spte & SPTE_PRESENT) !== 0;
}
export function isLeafSpte(spte: number): boolean {
  return (spte & SPTE_PRESENT) !== 0 && (spte & (SPTE_R | SPTE_X)) !== 0;
}
export function isNonLeafSpte(spte: number): boolean {
  return (spte & (SPTE_PRESENT | RWX)) === SPTE_PRESENT;
}
export function isWritable(spte: number): boolean {
  return (spte & SPTE_W) !== 0;
}
export function isAccessed(spte: number): boolean {
  return (spte & SPTE_A) !== 0;
}
export function isDirty(spte: number): boolean {
  return (spte & SPTE_D) !== 0;
}
export function isHostWritable(spte: number): boolean {
  return (spte & SPTE_HOST_WRITABLE) !== 0;
}
export function isMmuWritable(spte: number): boolean {
  return (spte & SPTE_MMU_WRITABLE) !== 0;
}
/** Leaf only. */
export function sptePfn(spte: number): number {
  return spte >>> SPTE_PFN_SHIFT;
}
/** Non-leaf only. */
export function spteChild(spte: number): number {
  return spte >>> SPTE_PFN_SHIFT;
}
/** The ACC_* bits of a leaf. */
export function spteAccess(spte: number): number {
  return spte & ACC_ALL;
}

/** Aging: the same spte, not accessed. */
export function spteMkOld(spte: number): number {
  return spte & ~SPTE_A;
}
/** Write-protect: drops W and D together (D => W); the store carries D first. */
export function spteWrprot(spte: number): number {
  return spte & ~(SPTE_W | SPTE_D);
}
/** What the translator writes back on a fill: A always, D on a write through W. */
export function spteMkYoung(spte: number, write: boolean): number {
  return write ? spte | SPTE_A | SPTE_D : spte | SPTE_A;
}

/** null when the value satisfies every invariant of the layout above. */
export function checkSpte(spte: number): string | null {
  if ((spte & SPTE_PRESENT) === 0) return spte === 0 ? null : `non-present spte 0x${(spte >>> 0).toString(16)} is not 0`;
  if ((spte & (SPTE_R | SPTE_X)) === 0) {
    if ((spte & SPTE_FLAGS_MASK) !== SPTE_PRESENT) {
      return `pointer spte 0x${(spte >>> 0).toString(16)} carries flag bits (W without R, or A/D/U/HW/MW)`;
    }
    return null;
  }
  if ((spte & SPTE_W) !== 0) {
    if ((spte & SPTE_R) === 0) return 'W without R';
    if ((spte & SPTE_HOST_WRITABLE) === 0) return 'W without host-writable';
    if ((spte & SPTE_MMU_WRITABLE) === 0) return 'W without mmu-writable';
  } else if ((spte & SPTE_D) !== 0) {
    return 'D without W';
  }
  return null;
}

/** `info spte`: "pfn 0x1234 rwxu ad HW MW", "-> sp 7", or "none". */
export function spteToString(spte: number): string {
  if (spte === 0) return 'none';
  if (!isShadowPresent(spte)) return `bad 0x${(spte >>> 0).toString(16)}`;
  if (isNonLeafSpte(spte)) return `-> sp ${spteChild(spte)}`;
  const p =
    (spte & SPTE_R ? 'r' : '-') +
    (spte & SPTE_W ? 'w' : '-') +
    (spte & SPTE_X ? 'x' : '-') +
    (spte & SPTE_U ? 'u' : '-') +
    ' ' +
    (spte & SPTE_A ? 'a' : '-') +
    (spte & SPTE_D ? 'd' : '-');
  const sw = [spte & SPTE_HOST_WRITABLE ? 'HW' : '', spte & SPTE_MMU_WRITABLE ? 'MW' : ''].filter(Boolean).join(' ');
  return `pfn 0x${sptePfn(spte).toString(16)} ${p}${sw ? ' ' + sw : ''}`;
}

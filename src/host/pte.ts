// Counterpart: arch/x86/include/asm/pgtable.h (the value layer: pte bits and predicates)
//
// A host pte is one int32, testable alone:
//
//   present:  pfn << PTE_PFN_SHIFT | flags            (PTE_PRESENT set)
//             PTE_SPECIAL: a driver's pfn in a VM_PFNMAP VMA (vmfInsertPfn); the
//             frame is someone else's, the pte holds no reference and no mapcount
//   swap:     slot << PTE_PFN_SHIFT | PTE_SWAP        (PTE_PRESENT clear)
//   none:     0
//
// Invariants: a present pte never has PTE_SWAP; a swap pte carries no other flag;
// pfn and slot stay below 2^23 so the value stays a non-negative int32.

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;

export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
export const PTE_YOUNG = 1 << 2;
export const PTE_DIRTY = 1 << 3;
export const PTE_SWAP = 1 << 4;
/** pte_special: not an anon mapping of this mm (see the header). */
export const PTE_SPECIAL = 1 << 5;
export const PTE_PFN_SHIFT = 8;
export const PTE_MAX_INDEX = (1 << 23) - 1;

export const PTE_NONE = 0;

export function pteNone(pte: number): boolean {
  return pte === 0;
}
export function ptePresent(pte: number): boolean {
  return (pte & PTE_PRESENT) !== 0;
}
export function pteIsSwap(pte: number): boolean {
  return (pte & (PTE_PRESENT | PTE_SWAP)) === PTE_SWAP;
}
export function pteWrite(pte: number): boolean {
  return (pte & PTE_WRITE) !== 0;
}
export function pteYoung(pte: number): boolean {
  return (pte & PTE_YOUNG) !== 0;
}
export function pteDirty(pte: number): boolean {
  return (pte & PTE_DIRTY) !== 0;
}
export function ptePfn(pte: number): number {
  return pte >>> PTE_PFN_SHIFT;
}
export function pteSwapSlot(pte: number): number {
  return pte >>> PTE_PFN_SHIFT;
}
export function pfnPte(pfn: number, flags: number): number {
  return (pfn << PTE_PFN_SHIFT) | flags | PTE_PRESENT;
}
export function swpEntryToPte(slot: number): number {
  return (slot << PTE_PFN_SHIFT) | PTE_SWAP;
}

export function pteToString(pte: number): string {
  if (pte === 0) return 'none';
  if (pteIsSwap(pte)) return `swap:${pteSwapSlot(pte)}`;
  return (
    `pfn:${ptePfn(pte)} ` +
    (pteWrite(pte) ? 'W' : '-') +
    (pteYoung(pte) ? 'A' : '-') +
    (pteDirty(pte) ? 'D' : '-') +
    (pte & PTE_SPECIAL ? ' special' : '')
  );
}

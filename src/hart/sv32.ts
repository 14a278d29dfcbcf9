// Counterpart: RISC-V privileged spec 20211203, section 4.3 (Sv32) and 4.3.2 (address translation process).
//
// Pure page-table walk over a memory callback, for the bare machine's translator
// and for --trace. The shadow MMU has its own walk (kvm/mmu/fault.ts walkGuest):
// it reads guest ptes through host memory that may be swapped out, so its walk
// can sleep and must re-check under mmu_lock, which a callback walk cannot.
// It shares this file's PTE bits and cause codes. The walk never allocates:
// results land in a caller-owned Sv32Walk.

import { ACCESS_FETCH, ACCESS_STORE } from './translator.js';

export const PTE_V = 1 << 0;
export const PTE_R = 1 << 1;
export const PTE_W = 1 << 2;
export const PTE_X = 1 << 3;
export const PTE_U = 1 << 4;
export const PTE_G = 1 << 5;
export const PTE_A = 1 << 6;
export const PTE_D = 1 << 7;

export const SATP_MODE_SV32 = 0x80000000 | 0;
export const PAGE_SIZE = 4096;

/** readPte answer for a pa that is not memory: not a valid int32, so no PTE collides. */
export const SV32_NO_MEMORY = 2 ** 32;

export const CAUSE_FETCH_ACCESS = 1;
export const CAUSE_LOAD_ACCESS = 5;
export const CAUSE_STORE_ACCESS = 7;
export const CAUSE_FETCH_PAGE_FAULT = 12;
export const CAUSE_LOAD_PAGE_FAULT = 13;
export const CAUSE_STORE_PAGE_FAULT = 15;

export interface Sv32Memory {
  /** The 32-bit PTE at physical address pa (int32 pattern), or SV32_NO_MEMORY. */
  readPte(pa: number): number;
  /** Store a PTE whose A/D bits the walker set. Only called for a pa readPte accepted. */
  writePte(pa: number, pte: number): void;
}

export class Sv32Walk {
  /** Physical address of the access (gva's page offset included); up to 34 bits. */
  pa = 0;
  /** Leaf PTE as stored after the A/D update. */
  pte = 0;
  /** Physical address of the leaf PTE. */
  ptePa = 0;
  /** 1: 4 MiB megapage leaf, 0: 4 KiB leaf. */
  level = 0;
  /** Exception cause when the walk failed. */
  cause = 0;
}

export function pageFaultCause(access: number): number {
  return access === ACCESS_FETCH ? CAUSE_FETCH_PAGE_FAULT
    : access === ACCESS_STORE ? CAUSE_STORE_PAGE_FAULT : CAUSE_LOAD_PAGE_FAULT;
}

export function accessFaultCause(access: number): number {
  return access === ACCESS_FETCH ? CAUSE_FETCH_ACCESS
    : access === ACCESS_STORE ? CAUSE_STORE_ACCESS : CAUSE_LOAD_ACCESS;
}

/**
 * Permission check of a leaf PTE for an access at effective privilege priv
 * (0 U, 1 S). An AMO is checked as a store: W implies R in any valid PTE.
 */
export function sv32LeafAllows(pte: number, access: number, priv: number, sum: boolean, mxr: boolean): boolean {
  if (pte & PTE_U) {
    if (priv === 1 && (access === ACCESS_FETCH || !sum)) return false;
  } else if (priv === 0) {
    return false;
  }
  if (access === ACCESS_FETCH) return (pte & PTE_X) !== 0;
  if (access === ACCESS_STORE) return (pte & PTE_W) !== 0;
  return (pte & PTE_R) !== 0 || (mxr && (pte & PTE_X) !== 0);
}

/**
 * Translate gva under satp (MODE must be Sv32). Sets A, and D for stores, in the
 * leaf PTE in memory, as QEMU does (hardware-managed A/D). Returns true and fills
 * w.pa/pte/ptePa/level, or false with w.cause (page fault, or access fault when a
 * table lives outside memory); nothing is written on failure.
 */
export function sv32Translate(
  w: Sv32Walk, mem: Sv32Memory, satp: number, gva: number, access: number,
  priv: number, sum: boolean, mxr: boolean, updateAd = true,
): boolean {
  let tablePa = (satp & 0x3fffff) * PAGE_SIZE;
  let level = 1;
  for (;;) {
    const vpn = level === 1 ? gva >>> 22 : (gva >>> 12) & 0x3ff;
    const ptePa = tablePa + vpn * 4;
    const pte = mem.readPte(ptePa);
    if (pte === SV32_NO_MEMORY) {
      w.cause = accessFaultCause(access);
      return false;
    }
    if ((pte & PTE_V) === 0 || (pte & (PTE_R | PTE_W)) === PTE_W) break;
    const ppn = pte >>> 10;
    if ((pte & (PTE_R | PTE_X)) === 0) {
      if (level === 0) break; // a pointer where only a leaf may be
      tablePa = ppn * PAGE_SIZE;
      level = 0;
      continue;
    }
    if (!sv32LeafAllows(pte, access, priv, sum, mxr)) break;
    if (level === 1 && (ppn & 0x3ff) !== 0) break; // misaligned megapage
    let newPte = pte | PTE_A;
    if (access === ACCESS_STORE) newPte |= PTE_D;
    if (updateAd && newPte !== pte) mem.writePte(ptePa, newPte);
    w.pte = updateAd ? newPte : pte;
    w.ptePa = ptePa;
    w.level = level;
    w.pa = level === 1
      ? (ppn >>> 10) * 0x400000 + (gva & 0x3fffff)
      : ppn * PAGE_SIZE + (gva & 0xfff);
    return true;
  }
  w.cause = pageFaultCause(access);
  return false;
}

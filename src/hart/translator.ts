// The hart's only window on memory: a TLB miss asks a Translator, which answers
// with a host page, a guest fault, an MMIO access, or "leave the loop".
import type { Hart } from './hart.js';

export const ACCESS_FETCH = 0;
export const ACCESS_LOAD = 1;
export const ACCESS_STORE = 2;

/*
 * Translator.translate(hart, gva, access) returns:
 *   >= 0                host byte offset (into the hart's frame buffer) of the 4 KiB
 *                       page backing gva's page; the hart caches it in the soft TLB
 *                       of that access kind until a flush.
 *   TRANSLATE_FAULT     the translator called hart.raiseFault(cause, tval); the hart
 *                       takes the trap (page fault 12/13/15 or access fault 1/5/7).
 *   TRANSLATE_MMIO      not RAM: the hart performs this one access through its
 *                       MmioBus at physical address translator.lastPa (the full
 *                       address, page offset included). Never cached.
 *   TRANSLATE_EXIT      slow work is needed elsewhere (a shadow MMU fault): the hart
 *                       leaves run() with the instruction not executed (pc unchanged,
 *                       no side effects) and run() returns STOP_EXIT.
 *   TRANSLATE_NOCACHE   RAM, but perform only this access, at host page offset
 *                       translator.lastHostPage, and do not cache it (for pages
 *                       whose every access someone wants to see on the slow path).
 *
 * A fetch answered with TRANSLATE_MMIO or TRANSLATE_NOCACHE is an instruction
 * access fault: code runs from cacheable RAM only.
 *
 * A misaligned load or store that crosses a page asks about both pages, lower
 * first, before it touches either, and the whole instruction restarts after an
 * EXIT. So the slow work done for one page must not undo the other's: a
 * translator that caches a single answer (say one MMIO page) would exit forever.
 */
export const TRANSLATE_FAULT = -1;
export const TRANSLATE_MMIO = -2;
export const TRANSLATE_EXIT = -3;
export const TRANSLATE_NOCACHE = -4;

export interface Translator {
  translate(hart: Hart, gva: number, access: number): number;
  /** Physical address of the last translated access (a double: Sv32 pas have 34 bits). */
  lastPa: number;
  /** Whether the last successful translation came from a 4 MiB megapage, so that a
   *  single-address sfence.vma can drop every 4 KiB piece of it. A translator that
   *  maps megapages sets it on every successful translate; absent means false. */
  lastSuperpage?: boolean;
  /** Host page offset for TRANSLATE_NOCACHE. */
  lastHostPage?: number;
  /** sfence.vma ran (after the hart flushed its own TLB); null = all addresses / all ASIDs. */
  sfenceVma?(hart: Hart, gva: number | null, asid: number | null): void;
  /** satp was written (after the hart flushed its own TLB). */
  satpChanged?(hart: Hart, satp: number): void;
}

/*
 * Device accesses that the translator routed to MMIO. A bus that finds no
 * device at pa sets `fault = true` (and returns anything from read); the hart
 * clears the flag and raises a load (5) or store/AMO (7) access fault with
 * tval = the virtual address.
 */
export interface MmioBus {
  read(pa: number, width: 1 | 2 | 4): number;
  write(pa: number, width: 1 | 2 | 4, value: number): void;
  fault?: boolean;
}

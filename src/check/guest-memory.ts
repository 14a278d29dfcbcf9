// The data check of DESIGN.md "Checking": a hash of guest RAM as the guest would
// read it, taken from the host's state without touching it (no fault, no swap-in,
// no accessed bit): a present pte's frame, a swapped page's swap-cache frame or
// slot, and zeros where nothing was ever mapped. Two runs of the same guest, one
// under host pressure and one without, must end with the same hash: the host
// moved the pages around, it did not change them.

import type { HostDebugView } from '../host/debug-view.js';
import type { Mm } from '../host/mm.js';
import { PAGE_SIZE } from '../host/pte.js';

/**
 * FNV-1a (32 bits, over 32-bit words) of every page of [hva, hva + bytes) of mm, as 8
 * hex digits; throws if a swapped page cannot be found. host: hostDebugView(k).
 */
export function guestMemoryHash(host: HostDebugView, mm: Mm, hva: number, bytes: number): string {
  let h = 0x811c9dc5;
  const zero = new Uint8Array(PAGE_SIZE);
  const slotBuf = new Uint8Array(PAGE_SIZE);
  for (let off = 0; off < bytes; off += PAGE_SIZE) {
    const w = host.userPageWhere(mm, hva + off);
    let page: Uint8Array;
    // The swap cache's frame is the page until pageout has written the slot.
    if (w.kind === 'present' || w.kind === 'swapcache') page = host.frames.frame(w.pfn);
    else if (w.kind === 'swap') {
      if (!host.peekSwapSlot(w.slot, slotBuf)) throw new Error(`guest page at hva 0x${(hva + off).toString(16)}: swap slot ${w.slot} holds nothing and no frame caches it`);
      page = slotBuf;
    } else {
      page = zero;
    }
    const words = new Int32Array(page.buffer, page.byteOffset, PAGE_SIZE / 4);
    for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

// Read-only queries on a hart's soft TLB, for faces (the debug console) and tests:
// what `info tlb` prints, and which cached translations would keep reaching a host
// page after a secondary MMU stopped mapping it.

import type { Hart } from './hart.js';
import { TLB_SIZE } from './hart.js';

export type TlbKind = 'fetch' | 'load' | 'store';

export interface TlbEntry {
  readonly kind: TlbKind;
  readonly index: number;
  /** The cached guest page (low 12 bits zero), as an unsigned number. */
  readonly gvaPage: number;
  /** Host byte offset of the page it reaches (pfn << 12). */
  readonly hostPage: number;
}

/** Every live entry, fetch then load then store, by index. */
export function tlbEntries(hart: Hart): TlbEntry[] {
  const out: TlbEntry[] = [];
  const kinds: [TlbKind, Int32Array, Int32Array][] = [
    ['fetch', hart.fetchTag, hart.fetchDelta],
    ['load', hart.loadTag, hart.loadDelta],
    ['store', hart.storeTag, hart.storeDelta],
  ];
  for (const [kind, tag, delta] of kinds) {
    for (let i = 0; i < TLB_SIZE; i++) {
      const t = tag[i]!;
      if (t === -1) continue;
      out.push({ kind, index: i, gvaPage: t >>> 0, hostPage: ((t + delta[i]!) | 0) >>> 0 });
    }
  }
  return out;
}

/** The entries that translate to the host page at hostPage (pfn << 12). */
export function tlbEntriesForHostPage(hart: Hart, hostPage: number): TlbEntry[] {
  return tlbEntries(hart).filter((e) => e.hostPage === hostPage >>> 0);
}

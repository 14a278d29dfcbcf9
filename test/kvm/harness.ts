// A small MMU fixture in the spirit of the KVM selftests: memslots, a shadow page
// store and hooks that record what the host glue would be told.

import { Memslots, PAGE_SIZE } from '../../src/kvm/memslots.js';
import { ShadowPages, type ShadowPagesOptions } from '../../src/kvm/mmu/shadow-pages.js';
import { KvmStats } from '../../src/kvm/stats.js';

export interface Cleared {
  pfn: number;
  dirty: boolean;
  accessed: boolean;
}

export interface MmuFixture {
  memslots: Memslots;
  sps: ShadowPages;
  stats: KvmStats;
  cleared: Cleared[];
  /** Incremented by flushRemoteTlbs; `freeAtFlush` snapshots nFreePages at each flush. */
  flushes: { count: number; freeAtFlush: number[] };
}

export function createMmu(opts: ShadowPagesOptions = {}): MmuFixture {
  const memslots = new Memslots();
  const stats = new KvmStats();
  const cleared: Cleared[] = [];
  const flushes = { count: 0, freeAtFlush: [] as number[] };
  let sps: ShadowPages | undefined = undefined;
  sps = new ShadowPages(
    memslots,
    {
      flushRemoteTlbs: () => {
        flushes.count++;
        flushes.freeAtFlush.push(sps!.nFreePages);
      },
      onSpteClear: (pfn, dirty, accessed) => void cleared.push({ pfn, dirty, accessed }),
    },
    stats,
    opts,
  );
  return { memslots, sps, stats, cleared, flushes };
}

export function addMemslot(m: Memslots, slot: number, gfn: number, npages: number, hva: number, flags = 0): void {
  m.setUserMemoryRegion({ slot, flags, guestPhysAddr: gfn * PAGE_SIZE, memorySize: npages * PAGE_SIZE, userspaceAddr: hva });
}

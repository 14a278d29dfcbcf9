// Counterpart: arch/x86/kvm/x86.c kvm_vm_stats_desc / kvm_vcpu_stats_desc (what kvm_stat shows)
//
// Plain counters, bumped inline on the paths they describe; the MMU never reads them
// back to make a decision, so a test may reset or compare them freely.

import { RMAP_HIST_BUCKETS, rmapHistogramLabels } from './mmu/rmap.js';

export const KVM_STAT_NAMES = [
  'pf_taken',
  'pf_fixed',
  'pf_retry',
  'pf_guest',
  'mmu_cache_miss',
  'mmu_shadow_zapped',
  'mmu_recycled',
  'remote_tlb_flush',
  'invalidations',
  'age_calls',
  'young_hits',
  'warnings',
] as const;

export type KvmStatName = (typeof KVM_STAT_NAMES)[number];

export class KvmStats {
  /** Shadow-page faults handled (exits from the translator). */
  pfTaken = 0;
  /** Faults that installed a spte. */
  pfFixed = 0;
  /** Faults dropped because an invalidation ran (or the memslots changed) meanwhile. */
  pfRetry = 0;
  /** Faults reflected into the guest as guest page faults. */
  pfGuest = 0;
  /** Shadow pages allocated because the (gfn, role) lookup missed. */
  mmuCacheMiss = 0;
  /** Shadow pages zapped, for any reason. */
  mmuShadowZapped = 0;
  /** Shadow pages zapped to stay under n_max_mmu_pages. */
  mmuRecycled = 0;
  remoteTlbFlush = 0;
  /** invalidate_range_start / invalidate_page calls that hit a memslot. */
  invalidations = 0;
  /** clear_flush_young / clear_young / test_young calls that hit a memslot. */
  ageCalls = 0;
  /** Aging calls that found at least one young spte. */
  youngHits = 0;
  /** WARN_ON_ONCE-style soft failures; tests assert zero. */
  warnings = 0;
  /** Filled on demand by ShadowPages.updateRmapHistogram; see rmapHistogram. */
  readonly rmapHistogram: number[] = new Array<number>(RMAP_HIST_BUCKETS).fill(0);

  get(name: KvmStatName): number {
    switch (name) {
      case 'pf_taken':
        return this.pfTaken;
      case 'pf_fixed':
        return this.pfFixed;
      case 'pf_retry':
        return this.pfRetry;
      case 'pf_guest':
        return this.pfGuest;
      case 'mmu_cache_miss':
        return this.mmuCacheMiss;
      case 'mmu_shadow_zapped':
        return this.mmuShadowZapped;
      case 'mmu_recycled':
        return this.mmuRecycled;
      case 'remote_tlb_flush':
        return this.remoteTlbFlush;
      case 'invalidations':
        return this.invalidations;
      case 'age_calls':
        return this.ageCalls;
      case 'young_hits':
        return this.youngHits;
      case 'warnings':
        return this.warnings;
    }
  }

  reset(): void {
    this.pfTaken = this.pfFixed = this.pfRetry = this.pfGuest = 0;
    this.mmuCacheMiss = this.mmuShadowZapped = this.mmuRecycled = this.remoteTlbFlush = 0;
    this.invalidations = this.ageCalls = this.youngHits = this.warnings = 0;
    this.rmapHistogram.fill(0);
  }

  toJSON(): Record<KvmStatName | 'rmap_histogram', number | Record<string, number>> {
    const out = {} as Record<KvmStatName | 'rmap_histogram', number | Record<string, number>>;
    for (const n of KVM_STAT_NAMES) out[n] = this.get(n);
    const labels = rmapHistogramLabels();
    const hist: Record<string, number> = {};
    labels.forEach((l, i) => (hist[l] = this.rmapHistogram[i]!));
    out.rmap_histogram = hist;
    return out;
  }

  /** kvm_stat-style text: one `name value` per line, then the rmap histogram. */
  dump(): string {
    const w = Math.max(...KVM_STAT_NAMES.map((n) => n.length));
    const lines = KVM_STAT_NAMES.map((n) => `${n.padEnd(w)} ${this.get(n)}`);
    const labels = rmapHistogramLabels();
    lines.push('rmap chain lengths: ' + labels.map((l, i) => `${l}:${this.rmapHistogram[i]}`).join(' '));
    return lines.join('\n');
  }
}

import { describe, expect, it } from 'vitest';
import { KVM_STAT_NAMES, KvmStats } from '../../src/kvm/stats.js';

describe('kvm stats', () => {
  it('dumps every counter by its kvm_stat name, then the rmap histogram', () => {
    const s = new KvmStats();
    s.pfTaken = 3;
    s.remoteTlbFlush = 2;
    s.rmapHistogram[1] = 4;
    const text = s.dump();
    expect(text.split('\n')).toHaveLength(KVM_STAT_NAMES.length + 1);
    expect(text).toMatch(/^pf_taken\s+3$/m);
    expect(text).toMatch(/^remote_tlb_flush\s+2$/m);
    expect(text).toMatch(/rmap chain lengths: 1:0 2-3:4 /);
    expect(s.toJSON()).toMatchObject({ pf_taken: 3, remote_tlb_flush: 2, rmap_histogram: { '2-3': 4 } });
    s.reset();
    expect(KVM_STAT_NAMES.every((n) => s.get(n) === 0)).toBe(true);
    expect(s.rmapHistogram.every((v) => v === 0)).toBe(true);
  });
});

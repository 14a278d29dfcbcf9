// register-vs-unmap, the registration race of the 2008 mm_lock debate as a torture
// scenario: with mm_take_all_locks at registration every seed is clean; with the host
// switch noTakeAllLocks the GRU that joins inside a try_to_unmap's range keeps a
// translation the host pte lost, and the per-step audit names it.

import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/torture/scenario.js';
import { scenarioByName } from '../../src/torture/scenarios/index.js';

const s = scenarioByName('register-vs-unmap')!;
const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);

describe('register-vs-unmap', () => {
  it('is listed, without a v7 cell', () => {
    expect(s).toBeDefined();
    expect(s.protocols).toEqual(['modern', 'pin']);
  });

  for (const protocol of ['modern', 'pin'] as const) {
    it(`${protocol}: clean on seeds 1..${SEEDS.length} with mm_take_all_locks`, () => {
      const bad = SEEDS.map((seed) => ({ seed, v: runScenario(s, { protocol, policy: 'random', seed }).verdict }))
        .filter((r) => !r.v.ok)
        .map((r) => `seed ${r.seed}: ${r.v.problems.join('; ')}`);
      expect(bad).toEqual([]);
    });
  }

  it('modern, noTakeAllLocks: the device keeps a translation the host unmapped (coherency)', () => {
    const verdicts = SEEDS.map((seed) => runScenario(s, { protocol: 'modern', policy: 'random', seed, mutation: 'noTakeAllLocks' }).verdict);
    const failed = verdicts.filter((v) => !v.ok);
    expect(failed.length).toBeGreaterThan(0);
    for (const v of failed) {
      expect(v.kind).toBe('coherency');
      expect(v.problems[0]).toMatch(/^gru1: TLB hva 0x[0-9a-f]+ -> pfn \d+, host pte 0x[0-9a-f]+ \(not present\)/);
    }
  });
});

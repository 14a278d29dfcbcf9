// The torture bench section's arithmetic (its figures go to stdout from npm run bench only).

import { describe, expect, it } from 'vitest';
import { runsPerSecond, sampleOf, speedup } from '../../src/bench/torture.js';
import type { RunRecord } from '../../src/torture/campaign.js';

function record(runs: number, failures: number): RunRecord {
  return { scenario: 'fault-vs-unmap', protocol: 'modern', policy: 'random', seed: 1, preemptions: 2, mutation: null, ok: failures === 0, runs, failures, steps: 10, scheduleHash: 'x' };
}

describe('bench torture helpers', () => {
  it('sampleOf counts the runs and failures the records stand for', () => {
    // An exhaustive search's record stands for all the schedules it ran.
    expect(sampleOf([record(1, 0), record(1, 1), record(40, 0)], 2.5)).toEqual({ runs: 42, failures: 1, seconds: 2.5 });
    expect(sampleOf([], 1)).toEqual({ runs: 0, failures: 0, seconds: 1 });
  });

  it('runsPerSecond divides runs by wall time', () => {
    expect(runsPerSecond({ runs: 300, failures: 0, seconds: 1.5 })).toBe(200);
  });

  it('speedup is the ratio of the median campaign times, not of the means', () => {
    const one = [10, 11, 30].map((seconds) => ({ runs: 100, failures: 0, seconds }));
    const two = [6, 5.5, 1].map((seconds) => ({ runs: 100, failures: 0, seconds }));
    expect(speedup(one, two)).toBe(2);
    expect(speedup(one, one)).toBe(1);
  });
});

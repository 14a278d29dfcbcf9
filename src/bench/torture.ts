// Torture benchmark: the throughput of `shadowvisor torture` itself, through the
// same machinery (unitsOf, runCampaign's batches, the tinypool workers of pool.ts):
// every named scenario under modern, v7 and pin, random policy, one seed range.
// It prints runs/s with one worker (the CLI's default, in this thread) and the
// speed-up of two workers over the same seeds, each a median of several whole
// campaigns timed as the CLI times them (pool start-up included; each campaign
// starts its own pool, so worker threads always run cold code), after one
// warm-up campaign per worker count. Both worker counts must give the same
// records: a campaign is a function of its units, whatever ran them.

import { performance } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import type { CampaignSpec, RunRecord } from '../torture/campaign.js';
import { runCampaign } from '../torture/command.js';
import { median, type BenchSection } from './section.js';

export interface CampaignSample {
  /** Runs the records stand for (exhaustive searches count their schedules). */
  runs: number;
  failures: number;
  seconds: number;
}

/** Runs per second of one timed campaign. */
export function runsPerSecond(s: CampaignSample): number {
  return s.runs / s.seconds;
}

/** How much faster `many` campaigns ran than `one` over the same work, as a ratio of median times. */
export function speedup(one: readonly CampaignSample[], many: readonly CampaignSample[]): number {
  return median(one.map((s) => s.seconds)) / median(many.map((s) => s.seconds));
}

/** The sample of a finished campaign's records and its wall time. */
export function sampleOf(records: readonly RunRecord[], seconds: number): CampaignSample {
  return {
    runs: records.reduce((n, r) => n + r.runs, 0),
    failures: records.reduce((n, r) => n + r.failures, 0),
    seconds,
  };
}

async function timed(spec: CampaignSpec, workers: number): Promise<{ sample: CampaignSample; records: RunRecord[] }> {
  const t0 = performance.now();
  const records = await runCampaign(spec, workers);
  return { sample: sampleOf(records, (performance.now() - t0) / 1000), records };
}

function fingerprint(records: readonly RunRecord[]): string {
  return JSON.stringify(records.map((r) => [r.scenario, r.protocol, r.seed, r.ok, r.steps, r.scheduleHash]));
}

export const tortureSection: BenchSection = {
  name: 'torture',
  description: 'torture campaign (all scenarios x modern,v7,pin, random policy): runs/s on 1 worker, speed-up on 2',
  async run(ctx) {
    const seeds = ctx.quick ? 100 : 300;
    const reps = ctx.quick ? 3 : 5;
    const spec: CampaignSpec = { scenarios: ['all'], protocols: ['modern', 'v7', 'pin'], policy: 'random', seedFrom: 1, seedTo: seeds, preemptions: 2 };
    ctx.log(
      `torture: --scenario all --protocol modern,v7,pin --policy random --seeds 1..${seeds}; median of ${reps} campaigns ` +
        `each, alternating, after one warm-up; wall time of runCampaign (pool start-up included); ${availableParallelism()} CPUs`,
    );
    ctx.log('  workers    runs  failures  seconds  (min-max)     runs/s  runs/s per worker  speed-up');
    // Alternate the worker counts, so that whatever else loads the machine weighs
    // on both medians alike.
    const byWorkers = new Map<number, CampaignSample[]>([[1, []], [2, []]]);
    let reference: string | null = null;
    for (let i = -1; i < reps; i++) {
      for (const [workers, samples] of byWorkers) {
        const { sample, records } = await timed(spec, workers);
        const fp = fingerprint(records);
        if (reference === null) reference = fp;
        else if (fp !== reference) throw new Error(`bench: the ${workers}-worker campaign gave other records than the first one`);
        // i = -1: the warm-up.
        if (i >= 0) samples.push(sample);
      }
    }
    const one = byWorkers.get(1)!;
    for (const [workers, samples] of byWorkers) {
      const s = samples[0]!;
      const times = samples.map((x) => x.seconds);
      const seconds = median(times);
      const rate = s.runs / seconds;
      const spread = `(${Math.min(...times).toFixed(2)}-${Math.max(...times).toFixed(2)})`;
      ctx.log(
        `  ${String(workers).padStart(7)} ${String(s.runs).padStart(7)} ${String(s.failures).padStart(9)} ${seconds.toFixed(2).padStart(8)}  ${spread.padEnd(12)}` +
          ` ${rate.toFixed(0).padStart(8)} ${(rate / workers).toFixed(0).padStart(18)} ${`${speedup(one, samples).toFixed(2)}x`.padStart(9)}`,
      );
    }
  },
};

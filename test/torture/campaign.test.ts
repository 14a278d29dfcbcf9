// The torture campaign as a library: a small campaign over every scenario is clean,
// sharding changes nothing, a failure replays bit for bit, the exhaustive policy
// proves fault-vs-unmap within its bound and finds the race without the retry, and
// every mutation is killed. SHADOWVISOR_CAMPAIGN=1 runs the long versions.

import { describe, expect, it } from 'vitest';
import { mergeRecords, parseRecords, summarize, unitsOf } from '../../src/torture/campaign.js';
import type { CampaignSpec, RunRecord } from '../../src/torture/campaign.js';
import { killJobs, runCampaign, runKillMatrix } from '../../src/torture/command.js';
import { runJob } from '../../src/torture/jobs.js';
import { MUTATIONS, killRows } from '../../src/torture/mutations.js';
import { exploreScenario, runScenario } from '../../src/torture/scenario.js';
import { SCENARIOS, scenarioByName } from '../../src/torture/scenarios/index.js';

const CAMPAIGN = process.env.SHADOWVISOR_CAMPAIGN === '1';
/** Per test: the long versions run for minutes (vitest.config's 60 s is for the short ones). */
const LONG = CAMPAIGN ? 60 * 60_000 : undefined;

function spec(over: Partial<CampaignSpec> = {}): CampaignSpec {
  return { scenarios: ['all'], protocols: ['modern', 'v7', 'pin'], policy: 'random', seedFrom: 1, seedTo: 12, preemptions: 2, ...over };
}

function failures(records: readonly RunRecord[]): string[] {
  return records.filter((r) => !r.ok).map((r) => `${r.scenario} ${r.protocol} ${r.policy} seed ${r.seed}: ${r.signature}\n  ${(r.problems ?? []).join('\n  ')}`);
}

describe('a small campaign', () => {
  it('every scenario, every protocol, random: no failure', async () => {
    const records = await runCampaign(spec({ seedTo: CAMPAIGN ? 1000 : 8 }), 1);
    // register-vs-unmap has no v7 cell (no range around the 2008 try_to_unmap).
    const cells = SCENARIOS.reduce((n, s) => n + s.protocols.length, 0);
    expect(records.length).toBe(cells * (CAMPAIGN ? 1000 : 8));
    expect(failures(records)).toEqual([]);
    const rows = summarize(records);
    expect(rows.length).toBe(cells);
    expect(rows.every((r) => r.runs === (CAMPAIGN ? 1000 : 8) && r.failures === 0)).toBe(true);
    // pin's expected ends are notes, not failures.
    expect(records.some((r) => r.protocol === 'pin' && r.scenario === 'oom-kill-mid-fault' && /pin/.test(r.note ?? ''))).toBe(true);
  }, LONG);

  it('pct: no failure', async () => {
    const records = await runCampaign(spec({ policy: 'pct', seedTo: CAMPAIGN ? 1000 : 3 }), 1);
    expect(failures(records)).toEqual([]);
  }, LONG);
});

describe('sharding', () => {
  const base = spec({ scenarios: ['fault-vs-unmap', 'dontneed-vs-fault', 'release-vs-fault'], seedFrom: 3, seedTo: 16, mutation: 'noRetry' });

  it('every unit is in exactly one shard, by seed % N', () => {
    const all = unitsOf(base).map((u) => `${u.name} ${u.protocol} ${u.seed}`);
    const shards = [1, 2, 3].map((i) => unitsOf({ ...base, shard: { index: i, count: 3 } }));
    for (const [i, units] of shards.entries()) expect(units.every((u) => u.seed % 3 === i)).toBe(true);
    expect(shards.flat().map((u) => `${u.name} ${u.protocol} ${u.seed}`).sort()).toEqual([...all].sort());
  });

  it('same seeds, same results, whatever the sharding (through results.jsonl and merge)', async () => {
    // With a mutation on, so the records carry failures and signatures too.
    const whole = await runCampaign(base, 1);
    expect(whole.some((r) => !r.ok)).toBe(true);
    for (const n of [2, 5]) {
      const files: string[] = [];
      for (let i = 1; i <= n; i++) {
        const part = await runCampaign({ ...base, shard: { index: i, count: n } }, 1);
        files.push(part.map((r) => JSON.stringify(r)).join('\n') + '\n');
      }
      const merged = mergeRecords(files.map((f, i) => parseRecords(f, `shard${i + 1}.jsonl`)));
      expect(merged).toEqual(whole);
      expect(summarize(merged)).toEqual(summarize(whole));
    }
  });

  it('merge refuses overlapping shards', async () => {
    const part = await runCampaign({ ...base, shard: { index: 1, count: 4 } }, 1);
    expect(() => mergeRecords([part, part])).toThrow(/more than one file/);
  });

  it('the worker pool gives the records one thread gives', async () => {
    const small = { ...base, seedTo: 8 };
    expect(await runCampaign(small, 2)).toEqual(await runCampaign(small, 1));
  });

  it('exhaustive searches shard by index', () => {
    const ex = spec({ policy: 'exhaustive' });
    const all = unitsOf(ex);
    expect(all.length).toBe(SCENARIOS.filter((s) => s.exhaustive).length * 3);
    const parts = [1, 2].map((i) => unitsOf({ ...ex, shard: { index: i, count: 2 } }));
    expect(parts[0]!.length + parts[1]!.length).toBe(all.length);
  });
});

describe('replay', () => {
  it('reproduces a failure bit for bit (fault-vs-unmap, modern, noRetry)', () => {
    const s = scenarioByName('fault-vs-unmap')!;
    const found = runJob({ kind: 'kill', mutation: 'noRetry', scenario: s.name, protocol: 'modern', policy: 'random', preemptions: 2, seedFrom: 1, seedTo: 200 });
    if (found.kind !== 'kill') throw new Error('kill job');
    const seed = found.result.killedAt;
    expect(seed).not.toBeNull();
    const spec = { protocol: 'modern' as const, policy: 'random' as const, seed: seed!, mutation: 'noRetry' as const };
    const campaign = runScenario(s, spec);
    const a = runScenario(s, { ...spec, trace: true });
    const b = runScenario(s, { ...spec, trace: true });
    expect(campaign.verdict.ok).toBe(false);
    expect(a.verdict).toEqual(campaign.verdict);
    expect(a.scheduleHash).toBe(campaign.scheduleHash);
    expect(a.steps).toBe(campaign.steps);
    expect(a.schedule).toEqual(campaign.schedule);
    // The event log too, record for record.
    expect(a.trace!.length).toBeGreaterThan(10);
    expect(b.trace).toEqual(a.trace);
    // Names of kernel tracepoints, up to the violation.
    const tps = new Set(a.trace!.filter((r) => r.step <= a.verdict.step).map((r) => r.tp));
    expect(tps).toContain('kvm_mmu_page_fault');
    expect(tps).toContain('mmu_notifier_invalidate_range_start');
    // Without the mutation the same seed is clean.
    expect(runScenario(s, { ...spec, mutation: null }).verdict.ok).toBe(true);
  });

  it('an exhaustive failure replays from its schedule', () => {
    const s = scenarioByName('dontneed-vs-fault')!;
    const r = exploreScenario(s, { protocol: 'modern', preemptions: 2, mutation: 'noRetry', stopOnFailure: true });
    expect(r.failures.length).toBe(1);
    const f = r.failures[0]!;
    const again = runScenario(s, { protocol: 'modern', policy: 'exhaustive', seed: 1, mutation: 'noRetry', schedule: f.schedule });
    expect(again.verdict).toEqual(f.verdict);
  });
});

describe('exhaustive', () => {
  const bound = CAMPAIGN ? 3 : 2;
  // Measured: bound 2 runs 1598 schedules, bound 3 runs 13671 (about 45 s).
  it(`fault-vs-unmap, modern: every schedule within ${bound} preemptions is clean`, () => {
    const r = exploreScenario(scenarioByName('fault-vs-unmap')!, { protocol: 'modern', preemptions: bound, maxSchedules: CAMPAIGN ? 200_000 : 5000 });
    expect(r.failures.map((f) => f.verdict.signature)).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.schedules).toBeGreaterThan(500);
  }, LONG);

  it('fault-vs-unmap, modern, without the retry: the search finds the stale spte', () => {
    const r = exploreScenario(scenarioByName('fault-vs-unmap')!, { protocol: 'modern', preemptions: 2, mutation: 'noRetry', stopOnFailure: true });
    expect(r.failures.length).toBe(1);
    expect(r.failures[0]!.verdict.signature).toMatch(/^coherency: .*(is not present|maps a free frame)/);
  });

  // Bound 3: 3783 schedules.
  it.runIf(CAMPAIGN)('dontneed-vs-fault, modern: every schedule within 3 preemptions is clean', () => {
    const r = exploreScenario(scenarioByName('dontneed-vs-fault')!, { protocol: 'modern', preemptions: 3, maxSchedules: 200_000 });
    expect(r.failures).toEqual([]);
    expect(r.complete).toBe(true);
  }, LONG);
});

describe('mutations', () => {
  // Where each mutation is known to die (the full matrix: shadowvisor torture --mutations).
  const KILLER: Record<string, [string, 'modern' | 'v7' | 'pin']> = {
    noRetry: ['dontneed-vs-fault', 'modern'],
    noSeqRecheck: ['fault-vs-unmap', 'modern'],
    noInProgressCheck: ['range-end-window', 'modern'],
    noRangeStartZap: ['range-end-window', 'modern'],
    noMemslotWait: ['memslot-move-vs-invalidate', 'modern'],
    noFlushBeforeUnlock: ['range-end-window', 'v7'],
    noRmapAdd: ['dontneed-vs-fault', 'modern'],
    noRmapRemove: ['unregister-vs-release', 'v7'],
    noDirtyCarry: ['aging-vs-write', 'modern'],
    noAgeClear: ['aging-vs-write', 'v7'],
    noAgeFlush: ['aging-vs-write', 'modern'],
    noReleaseZap: ['release-vs-fault', 'modern'],
    noReleaseBalance: ['oom-kill-mid-fault', 'modern'],
    noPageRef: ['swapin-vs-invalidate', 'v7'],
    noPin: ['fault-vs-unmap', 'pin'],
    noUnregisterSync: ['unregister-vs-callback', 'modern'],
    noTakeAllLocks: ['register-vs-unmap', 'modern'],
  };

  it('names every switch in the table', () => {
    expect(Object.keys(KILLER).sort()).toEqual(MUTATIONS.map((m) => m.name).sort());
  });

  it.each(MUTATIONS.map((m) => m.name))('%s is killed', async (name) => {
    const [scenario, protocol] = KILLER[name]!;
    const jobs = killJobs({ mutations: [name], scenarios: CAMPAIGN ? ['all'] : [scenario], protocols: CAMPAIGN ? ['modern', 'v7', 'pin'] : [protocol], policy: 'random', preemptions: 2, seedFrom: 1, seedTo: CAMPAIGN ? 200 : 60 });
    const rows = killRows(await runKillMatrix(jobs, 1));
    expect(rows.length).toBe(1);
    expect(rows[0]!.first, `${name} survived ${scenario}/${protocol}`).not.toBeNull();
  }, LONG);
});

// Whole-guest torture runs: sguest-small on 4 MiB of guest RAM over 2 MiB of host
// RAM (it swaps), judged against a run with host RAM to spare.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GUEST_KILL_SEEDS, killJobs, runCampaign } from '../../src/torture/command.js';
import { reproduceCommand } from '../../src/torture/campaign.js';
import { referenceRun, runGuestUnit } from '../../src/torture/guest.js';
import type { GuestSpec } from '../../src/torture/guest.js';

const guest: GuestSpec = {
  path: fileURLToPath(new URL('../../guest-programs/bin/sguest-small.elf', import.meta.url)),
  guestMem: 4 << 20,
  hostMem: 2 << 20,
};

describe('a whole guest under memory pressure', () => {
  it('the reference run passes', () => {
    const ref = referenceRun(guest);
    expect(ref.result.exitCode).toBe(0);
    expect(ref.result.output).toMatch(/checksum/);
    expect(ref.memoryHash).toMatch(/^[0-9a-f]{8}$/);
  });

  it('modern and v7 print what the reference prints; pin ends in the expected OOM kill; no leak', async () => {
    const records = await runCampaign({ scenarios: [], protocols: ['modern', 'v7', 'pin'], policy: 'random', seedFrom: 1, seedTo: 1, preemptions: 2, guest }, 1);
    expect(records.map((r) => [r.scenario, r.protocol, r.ok, r.problems ?? []])).toEqual([
      ['guest:sguest-small.elf', 'modern', true, []],
      ['guest:sguest-small.elf', 'v7', true, []],
      ['guest:sguest-small.elf', 'pin', true, []],
    ]);
    expect(records[2]!.note).toMatch(/OOM/);
    expect(reproduceCommand(records[0]!)).toMatch(/^shadowvisor replay --guest .*sguest-small\.elf --guest-mem 4096K --host-mem 2048K --protocol modern --seed 1$/);
  });

  it('replays bit for bit', () => {
    const a = runGuestUnit(guest, 'v7', 3, null);
    const b = runGuestUnit(guest, 'v7', 3, null, { trace: true, traceLimit: 1000 });
    expect(b.verdict).toEqual(a.verdict);
    // The fingerprint of where the run ended (steps, time, instructions, output).
    expect(b.scheduleHash).toBe(a.scheduleHash);
    expect(b.scheduleHash).not.toBe(runGuestUnit(guest, 'v7', 4, null).scheduleHash);
    expect(b.trace!.length).toBeLessThanOrEqual(2000);
    expect(b.trace!.some((r) => r.tp === 'mm_vmscan_write_folio' || r.tp === 'kvm_mmu_page_fault' || r.tp === 'sched_switch')).toBe(true);
  });

  it('--mutations gives each switch a whole-guest cell of a few seeds', () => {
    const jobs = killJobs({ mutations: ['noRetry', 'noPin'], scenarios: [], protocols: ['modern', 'v7', 'pin'], policy: 'random', preemptions: 2, seedFrom: 1, seedTo: 1000, guest });
    expect(jobs.map((j) => `${j.mutation} ${j.scenario} ${j.protocol} ${j.seedFrom}..${j.seedTo}`)).toEqual([
      `noRetry guest:sguest-small.elf modern 1..${GUEST_KILL_SEEDS}`,
      `noRetry guest:sguest-small.elf v7 1..${GUEST_KILL_SEEDS}`,
      `noRetry guest:sguest-small.elf pin 1..${GUEST_KILL_SEEDS}`,
      `noPin guest:sguest-small.elf pin 1..${GUEST_KILL_SEEDS}`,
    ]);
  });
});

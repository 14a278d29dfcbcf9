// The work a campaign hands out, as plain data (so a worker thread can take it): a
// batch of runs, or one cell of the kill matrix. Both run here, in the caller's
// thread, or in a worker (worker.ts) with exactly the same result.

import type { KvmProtocol } from '../kvm/vm.js';
import { runUnit } from './campaign.js';
import type { RunRecord } from './campaign.js';
import type { KillResult, KillSearch } from './mutations.js';
import { runScenario } from './scenario.js';
import type { Mutation, PolicyName } from './scenario.js';
import { scenarioByName } from './scenarios/index.js';
import { guestName, runGuestUnit } from './guest.js';
import type { GuestSpec } from './guest.js';

export interface RunBatch {
  kind: 'runs';
  policy: PolicyName;
  preemptions: number;
  mutation: Mutation | null;
  units: Array<{ scenario: string; protocol: KvmProtocol; seed: number }>;
  /** For units named guest:FILE. */
  guest?: GuestSpec;
}

export interface KillJob extends KillSearch {
  kind: 'kill';
}

export type Job = RunBatch | KillJob;
export type JobResult = { kind: 'runs'; records: RunRecord[] } | { kind: 'kill'; result: KillResult };

function scenario(name: string) {
  const s = scenarioByName(name);
  if (s === undefined) throw new Error(`unknown scenario '${name}'`);
  return s;
}

export function runJob(job: Job): JobResult {
  if (job.kind === 'runs') {
    const records = job.units.map((u) =>
      runUnit(
        job.guest !== undefined && u.scenario === guestName(job.guest)
          ? { name: u.scenario, scenario: null, guest: job.guest!, protocol: u.protocol, seed: u.seed }
          : { name: u.scenario, scenario: scenario(u.scenario), protocol: u.protocol, seed: u.seed },
        { policy: job.policy, preemptions: job.preemptions, mutation: job.mutation },
      ),
    );
    return { kind: 'runs', records };
  }
  const s = job.guest === undefined ? scenario(job.scenario) : null;
  const { kind: _kind, ...search } = job;
  let runs = 0;
  for (let seed = job.seedFrom; seed <= job.seedTo; seed++) {
    runs++;
    const o =
      s === null
        ? runGuestUnit(job.guest!, job.protocol, seed, job.mutation)
        : runScenario(s, { protocol: job.protocol, policy: job.policy, seed, preemptions: job.preemptions, mutation: job.mutation });
    if (!o.verdict.ok) return { kind: 'kill', result: { ...search, killedAt: seed, runs, signature: o.verdict.signature! } };
  }
  return { kind: 'kill', result: { ...search, killedAt: null, runs } };
}

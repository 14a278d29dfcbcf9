// The run of a seeded secondary-MMU race (src/gru, src/hmm, src/xpmem): every
// thread to its end with the driver's audit before every scheduler step, then
// reclaim settled under the same audit, then whatever says the run did not end
// well (a deadlock or a step bound, a BUG or lockdep report, a thread that
// threw). Problems go into `problems`; the audit is not asked again once one is
// there, so the first violation is the one reported.
//
// It takes the HostKernel as the host side, not to look behind the protocol: the
// settle is the host's own reclaim finishing, which the scenario drives.

import type { HostKernel } from '../host/kernel.js';
import type { Scheduler } from '../sched/index.js';

/** Returns how many scheduler steps were audited. */
export function runRaceAudited(sched: Scheduler, k: HostKernel, audit: () => string[], problems: string[]): number {
  let steps = 0;
  const until = (): boolean => {
    steps++;
    if (problems.length === 0) problems.push(...audit());
    return problems.length > 0;
  };
  let r = sched.run({ maxSteps: 3_000_000, until });
  if (r.status === 'done' && problems.length === 0) {
    sched.spawn('settle', () => k.settle());
    r = sched.run({ maxSteps: 1_000_000, until });
  }
  if (problems.length === 0 && r.status !== 'done') problems.push(`run ended ${r.status}: ${r.report ?? ''}`);
  if (problems.length === 0 && sched.bugs.length > 0) problems.push(...sched.bugs.map((b) => `${b.kind}: ${b.message}`));
  for (const t of sched.threads) if (t.error !== undefined && problems.length === 0) problems.push(`${t.name}: ${String(t.error)}`);
  return steps;
}

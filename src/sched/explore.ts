// Bounded-preemption exhaustive search (CHESS-style, Musuvathi & Qadeer 2007) for
// small scenarios, and replay of one schedule.
//
// Stateless DFS: every schedule re-runs the scenario from scratch in a fresh
// Scheduler, following a prefix of choices and then the default choice (keep running
// the last thread if it is still ready, else the first ready thread). After a run,
// the deepest choice point with an untried alternative inside the preemption budget
// becomes the next prefix. A choice point is a step with 2+ ready threads; picking
// another thread while the last one is still ready costs one preemption, switching
// after it blocked or ended is free. The scenario must be deterministic (it gets
// nothing but the Scheduler), or replay diverges and says so.

import type { SimThread } from './core.js';
import { ReplayPolicy, type Policy } from './policy.js';
import { Scheduler, type RunResult } from './scheduler.js';

/** Builds the scenario (spawn threads); may return a final check run after the scheduler finishes. */
export type Scenario = (s: Scheduler) => void | (() => void);

export interface ExploreOptions {
  preemptionBound: number;
  /** Default 100_000. */
  maxSchedules?: number;
  /** Per schedule; default 100_000. Hitting it counts as a failure (livelock). */
  maxSteps?: number;
  /** Default true. */
  strict?: boolean;
  /** Stop at the first failing schedule. */
  stopOnFailure?: boolean;
}

export interface ExploreFailure {
  schedule: number[];
  error: unknown;
}

export interface ExploreResult {
  schedules: number;
  failures: ExploreFailure[];
  /** True when every schedule within the bound was run. */
  complete: boolean;
}

interface ChoicePoint {
  /** Ready threads at this point. */
  n: number;
  /** Index of the last thread among them, or -1 if it is not ready (no preemption possible). */
  cur: number;
  chosen: number;
  preemptionsBefore: number;
}

class DfsPolicy implements Policy {
  readonly name = 'dfs';
  private readonly points: ChoicePoint[] = [];
  private preemptions = 0;

  constructor(
    private readonly prefix: readonly number[],
    private readonly bound: number,
  ) {}

  pick(ready: readonly SimThread[], last: SimThread | null): number {
    if (ready.length === 1) return 0;
    const cur = last === null ? -1 : ready.indexOf(last);
    const at = this.points.length;
    let chosen: number;
    if (at < this.prefix.length) {
      chosen = this.prefix[at]!;
      if (chosen >= ready.length) {
        throw new Error(`explore: scenario is not deterministic (choice ${at} wants index ${chosen} of ${ready.length} ready threads)`);
      }
    } else {
      chosen = cur >= 0 ? cur : 0;
    }
    this.points.push({ n: ready.length, cur, chosen, preemptionsBefore: this.preemptions });
    if (cur >= 0 && chosen !== cur) this.preemptions++;
    return chosen;
  }

  /** Prefix of the next schedule in DFS order, or null when the tree is exhausted. */
  nextPrefix(): number[] | null {
    for (let i = this.points.length - 1; i >= 0; i--) {
      const p = this.points[i]!;
      const alts = alternatives(p);
      const cost = p.cur >= 0 ? 1 : 0;
      if (p.preemptionsBefore + cost > this.bound) continue;
      const k = alts.indexOf(p.chosen);
      // Every alternative after the default costs the same, so the budget test above covers them all.
      if (k + 1 < alts.length) {
        return [...this.points.slice(0, i).map((q) => q.chosen), alts[k + 1]!];
      }
    }
    return null;
  }
}

/** The default first, then the other indices in order. */
function alternatives(p: ChoicePoint): number[] {
  const def = p.cur >= 0 ? p.cur : 0;
  const alts = [def];
  for (let i = 0; i < p.n; i++) if (i !== def) alts.push(i);
  return alts;
}

export interface RunOnceResult {
  scheduler: Scheduler;
  result: RunResult | null;
  error: unknown;
}

function runOnce(
  setup: Scenario,
  policy: Policy,
  opts: { maxSteps?: number; strict?: boolean; trace?: boolean },
): RunOnceResult {
  const s = new Scheduler({ policy, strict: opts.strict ?? true, trace: opts.trace ?? false });
  let result: RunResult | null = null;
  try {
    const check = setup(s);
    result = s.run({ maxSteps: opts.maxSteps ?? 100_000 });
    if (result.status === 'deadlock') throw new Error(result.report);
    if (result.status === 'max-steps') throw new Error(`no progress after ${result.steps} steps (livelock?)\n${s.dump()}`);
    if (s.bugs.length > 0) throw new Error(s.bugs.map((b) => `${b.kind} [${b.thread}]: ${b.message}`).join('\n'));
    if (typeof check === 'function') check();
    return { scheduler: s, result, error: undefined };
  } catch (error) {
    return { scheduler: s, result, error };
  }
}

export function explore(setup: Scenario, opts: ExploreOptions): ExploreResult {
  const maxSchedules = opts.maxSchedules ?? 100_000;
  const failures: ExploreFailure[] = [];
  let prefix: number[] = [];
  let schedules = 0;
  for (;;) {
    if (schedules >= maxSchedules) return { schedules, failures, complete: false };
    const policy = new DfsPolicy(prefix, opts.preemptionBound);
    const { scheduler, error } = runOnce(setup, policy, opts);
    schedules++;
    if (error !== undefined) {
      failures.push({ schedule: [...scheduler.schedule], error });
      if (opts.stopOnFailure) return { schedules, failures, complete: false };
    }
    const next = policy.nextPrefix();
    if (next === null) return { schedules, failures, complete: true };
    prefix = next;
  }
}

/**
 * Re-runs one schedule (from explore, or any Scheduler.schedule) with tracing on.
 * Returns instead of throwing, so the trace of a failing run can be printed.
 */
export function replay(
  setup: Scenario,
  schedule: readonly number[],
  opts: { maxSteps?: number; strict?: boolean } = {},
): RunOnceResult {
  return runOnce(setup, new ReplayPolicy(schedule), { ...opts, trace: true });
}

// A torture scenario is data: a name, what it reproduces, the protocols it runs in,
// and build(), which sets up a small multi-thread program over the real host, KVM
// and scheduler code. runScenario() runs it once under a policy and a seed (or a
// recorded schedule) and judges it:
//
//   - the coherency audit (src/check) before every scheduler step, and once at the end
//     (its shadow-page self-audit, which walks every rmap, every 16th step and at the end);
//   - the run ends (no deadlock, no livelock), no scheduler bug, no thread crashed
//     (BUG() throws), no KVM warning;
//   - the scenario's own data check (what the guest and the VMM read back);
//   - teardown: destroy the VM, exit every process, let reclaim settle; then the
//     host audit holds, every frame is free (no leaked reference or pin), no swap
//     slot is used and no shadow page is left.
//
// `pin` is judged by the scenario's own expectation: with no notifier its sptes may
// disagree with the host ptes after a zap (the audit knows), and under pressure the
// expected end is the OOM killer, not swap.
//
// A run is a pure function of (scenario, protocol, policy, seed, preemptions,
// mutation), or of (scenario, protocol, schedule, mutation): nothing else feeds it.

import type { EventEmitter } from 'eventemitter3';
import { auditCoherency } from '../check/coherency.js';
import { auditKernel } from '../host/audit.js';
import { hostDebugView } from '../host/debug-view.js';
import type { HostKernel } from '../host/kernel.js';
import type { Process } from '../host/mm.js';
import type { MmuNotifierDebug } from '../host/mmu-notifier.js';
import type { KvmProtocol, Vm, VmDebug } from '../kvm/vm.js';
import { PctPolicy, RandomPolicy, ReplayPolicy, Rng, Scheduler, explore } from '../sched/index.js';
import type { Policy, SimThread } from '../sched/index.js';
import type { TortureVm } from './fixture.js';
import { TraceLog, type TraceRecord } from './trace.js';

export type PolicyName = 'random' | 'pct' | 'exhaustive';
export const POLICIES: readonly PolicyName[] = ['random', 'pct', 'exhaustive'];
export const PROTOCOLS: readonly KvmProtocol[] = ['modern', 'v7', 'pin'];

/** A host switch (the notifier core's) that turns one safety mechanism off. */
export type HostMutation = keyof MmuNotifierDebug;
const HOST_MUTATIONS: readonly string[] = ['noUnregisterSync', 'noTakeAllLocks'] satisfies readonly HostMutation[];

/** A VmDebug switch, or a host one, that turns one safety mechanism off. */
export type Mutation = Exclude<keyof VmDebug, 'afterGup'> | HostMutation;

export function applyMutation(k: HostKernel, vm: Vm, m: Mutation): void {
  if (HOST_MUTATIONS.includes(m)) k.mn.debug[m as HostMutation] = true;
  else vm.debug[m as Exclude<Mutation, HostMutation>] = true;
}

export interface BuildContext {
  sched: Scheduler;
  protocol: KvmProtocol;
  /** Scenario parameters (which page, how long to sleep) come from here, never from the policy. */
  rng: Rng;
  events?: EventEmitter;
  /** Built for the exhaustive policy: keep the threads' work (and so the choice points) small. */
  exhaustive: boolean;
}

export interface ScenarioRun {
  t: TortureVm;
  /** Other host processes (memory hogs) that teardown exits. */
  others?: Process[];
  /** Data check after the threads finished: one line per problem. */
  check?: () => string[];
  /**
   * Another secondary MMU's audit (a device on the same mm), run with the coherency
   * audit before every step: its translations are judged as the sptes are.
   */
  audit?: () => string[];
  /** A legitimate end other than the plain one (pin under pressure: the OOM kill), as a note. */
  expected?: () => string | null;
  /** Steps before the run counts as a livelock (default 200 000). */
  maxSteps?: number;
}

export interface Scenario {
  readonly name: string;
  /** One paragraph: what runs against what. */
  readonly description: string;
  /** The thread, commit or race it reproduces. */
  readonly reproduces: string;
  readonly protocols: readonly KvmProtocol[];
  /** Small enough for the exhaustive policy (a handful of steps with choices). */
  readonly exhaustive: boolean;
  build(ctx: BuildContext): ScenarioRun;
}

export type ViolationKind = 'coherency' | 'data' | 'deadlock' | 'livelock' | 'bug' | 'crash' | 'warning' | 'leak';

export interface Verdict {
  ok: boolean;
  kind?: ViolationKind;
  /** The first problem with numbers folded: equal signatures are the same failure. */
  signature?: string;
  problems: string[];
  /** Scheduler step of the violation (or of the end). */
  step: number;
  /** A legitimate non-plain end (pin: OOM). */
  note?: string;
}

export interface RunSpec {
  protocol: KvmProtocol;
  policy: PolicyName;
  seed: number;
  /** PCT depth - 1 / exhaustive preemption bound. Default 2. */
  preemptions?: number;
  mutation?: Mutation | null;
  /** Replay a recorded schedule (choice indices) instead of the policy. */
  schedule?: readonly number[];
  /** Collect the event log. */
  trace?: boolean;
}

export interface RunOutcome {
  verdict: Verdict;
  steps: number;
  /** Choices at every step with 2+ ready threads: replays the run under ReplayPolicy. */
  schedule: number[];
  /** FNV-1a of the schedule, to compare runs bit for bit. */
  scheduleHash: string;
  trace: TraceRecord[] | null;
}

const DEFAULT_MAX_STEPS = 200_000;

/** Folds numbers (pfns, gfns, steps, addresses) so the same failure gets one signature. */
export function signatureOf(kind: ViolationKind, problem: string): string {
  let first = problem.split('\n')[0]!;
  if (first.startsWith(`${kind}: `)) first = first.slice(kind.length + 2);
  return `${kind}: ${first.replace(/0x[0-9a-f]+/gi, '0x#').replace(/\d+/g, '#')}`.slice(0, 200);
}

export function hashSchedule(schedule: readonly number[]): string {
  let h = 0x811c9dc5;
  for (const c of schedule) {
    h ^= c + 1;
    h = Math.imul(h, 0x01000193);
  }
  return `${schedule.length}:${(h >>> 0).toString(16).padStart(8, '0')}`;
}

/** Scenario parameters depend on the seed only, never on the policy (exhaustive: fixed). */
function paramRng(name: string, seed: number): Rng {
  let h = seed | 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x9e3779b1);
  return new Rng((h ^ (h >>> 15)) | 0 || 1);
}

class Violation extends Error {
  constructor(
    readonly kind: ViolationKind,
    readonly problems: string[],
    readonly step: number,
  ) {
    super(`${kind}: ${problems[0] ?? ''}`);
  }
}

/**
 * Audits before each step by wrapping the policy's pick() (called before every step,
 * as Scheduler.run's `until` is): the same hook whichever policy runs, explore's DFS
 * included, so a replay audits at exactly the points the campaign audited.
 */
function auditEveryStep(policy: Policy, audit: () => void): Policy {
  return {
    name: policy.name,
    seed: policy.seed ? (s: number) => policy.seed!(s) : undefined,
    onSpawn: policy.onSpawn ? (t: SimThread) => policy.onSpawn!(t) : undefined,
    pick(ready, last, step) {
      audit();
      return policy.pick(ready, last, step);
    },
  } satisfies Policy;
}

function basePolicy(spec: RunSpec): Policy {
  if (spec.schedule !== undefined) return new ReplayPolicy(spec.schedule);
  switch (spec.policy) {
    case 'random':
      return new RandomPolicy(spec.seed);
    case 'pct':
      return new PctPolicy({ seed: spec.seed, depth: (spec.preemptions ?? 2) + 1, k: 2000, afterK: 'random' });
    case 'exhaustive':
      throw new Error('the exhaustive policy runs through exploreScenario, or replays a --schedule');
  }
}

interface Live {
  run: ScenarioRun;
  sched: Scheduler;
}

/** Builds the scenario on `sched`, applies the mutation, and arms the per-step audit. */
function setUp(s: Scenario, sched: Scheduler, spec: RunSpec, log: TraceLog | null): Live {
  const seed = spec.schedule !== undefined || spec.policy === 'exhaustive' ? 1 : spec.seed;
  log?.attach(sched);
  const exhaustive = spec.policy === 'exhaustive';
  const run = s.build({ sched, protocol: spec.protocol, rng: paramRng(s.name, seed), exhaustive, ...(log ? { events: log.events } : {}) });
  if (spec.mutation) applyMutation(run.t.k, run.t.vm, spec.mutation);
  return { run, sched };
}

/** The shadow-page self-audit (A) walks every rmap: every MMU_AUDIT_EVERY steps and at the end. */
const MMU_AUDIT_EVERY = 16;

function auditNow(live: Live, full = false): void {
  const problems = auditCoherency(live.run.t.vm, hostDebugView(live.run.t.k), { mmu: full || live.sched.steps % MMU_AUDIT_EVERY === 0 });
  if (problems.length === 0 && live.run.audit) problems.push(...live.run.audit());
  if (problems.length > 0) throw new Violation('coherency', problems, live.sched.steps);
}

/** After the scenario's threads ended: everything but the audit that ran per step. */
function judgeEnd(live: Live, status: string, report: string | undefined): void {
  const { run, sched } = live;
  const t = run.t;
  if (status === 'deadlock') throw new Violation('deadlock', [report ?? 'deadlock'], sched.steps);
  if (status === 'max-steps') throw new Violation('livelock', [`no end after ${sched.steps} steps (livelock?)`], sched.steps);
  auditNow(live, true);
  const bugs = sched.bugs.filter((b) => b.kind !== 'deadlock');
  if (bugs.length > 0) throw new Violation('bug', bugs.map((b) => `${b.kind} [${b.thread}]: ${b.message}`), sched.steps);
  const crashed = sched.threads.filter((th) => th.error !== undefined);
  if (crashed.length > 0) throw new Violation('crash', crashed.map((th) => `thread ${th.name} threw: ${String(th.error)}`), sched.steps);
  if (t.vm.warnings.length > 0) throw new Violation('warning', t.vm.warnings.map((w) => `kvm warning: ${w}`), sched.steps);
  const data = run.check?.() ?? [];
  if (data.length > 0) throw new Violation('data', data, sched.steps);

  // Teardown: the VMM's order (destroy, then exit), every other process, reclaim settles.
  const k = t.k;
  sched.spawn('teardown', function* () {
    yield* t.vm.destroy();
    yield* k.exitProcess(t.proc);
    for (const p of run.others ?? []) yield* k.exitProcess(p);
    yield* k.settle();
  });
  const r = sched.run({ maxSteps: 100_000 });
  if (r.status === 'deadlock') throw new Violation('deadlock', [`teardown: ${r.report ?? ''}`], sched.steps);
  if (r.status !== 'done') throw new Violation('livelock', [`teardown did not end (${r.status})`], sched.steps);
  const late = sched.threads.filter((th) => th.error !== undefined);
  if (late.length > 0) throw new Violation('crash', late.map((th) => `thread ${th.name} threw: ${String(th.error)}`), sched.steps);
  if (t.vm.warnings.length > 0) throw new Violation('warning', t.vm.warnings.map((w) => `kvm warning: ${w}`), sched.steps);
  const leaks = auditKernel(k).map((p) => `host audit: ${p}`);
  const used = k.frames.nrFrames - k.frames.nrFree;
  if (used !== 0) leaks.push(`${used} frame(s) still allocated after every process exited (a leaked page reference or pin)`);
  const swapUsed = k.stats().swapUsed;
  if (swapUsed !== 0) leaks.push(`${swapUsed} swap slot(s) still used after every process exited`);
  if (t.vm.sps.nUsedMmuPages !== 0) leaks.push(`${t.vm.sps.nUsedMmuPages} shadow page(s) left after destroy`);
  if (leaks.length > 0) throw new Violation('leak', leaks, sched.steps);
}

function verdictOf(e: unknown, live: Live | null, fallbackStep: number): Verdict {
  if (e instanceof Violation) {
    return { ok: false, kind: e.kind, signature: signatureOf(e.kind, e.problems[0] ?? ''), problems: e.problems.slice(0, 20), step: e.step };
  }
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  // explore's own checks (runOnce) end a schedule with these.
  const kind: ViolationKind = /^Error: no progress after/.test(msg) ? 'livelock' : /deadlock|waits for/.test(msg) ? 'deadlock' : 'crash';
  return { ok: false, kind, signature: signatureOf(kind, msg.replace(/^Error: /, '')), problems: [msg], step: live?.sched.steps ?? fallbackStep };
}

function finish(live: Live | null, e: unknown, log: TraceLog | null, schedule: number[]): RunOutcome {
  const steps = live?.sched.steps ?? 0;
  let verdict: Verdict;
  if (e === undefined) {
    const note = live?.run.expected?.() ?? null;
    verdict = { ok: true, problems: [], step: steps, ...(note !== null ? { note } : {}) };
  } else {
    verdict = verdictOf(e, live, steps);
  }
  live?.run.t.k.shutdown();
  return { verdict, steps, schedule, scheduleHash: hashSchedule(schedule), trace: log?.records ?? null };
}

/** One run under a seeded policy (random, pct) or a recorded schedule. */
export function runScenario(s: Scenario, spec: RunSpec): RunOutcome {
  const log = spec.trace ? new TraceLog() : null;
  let live: Live | null = null;
  const policy = auditEveryStep(basePolicy(spec), () => {
    if (live !== null) auditNow(live);
  });
  const sched = new Scheduler({ policy, seed: spec.seed, ...(log ? { events: log.events } : {}) });
  try {
    live = setUp(s, sched, spec, log);
    const r = sched.run({ maxSteps: live.run.maxSteps ?? DEFAULT_MAX_STEPS });
    judgeEnd(live, r.status, r.report);
    return finish(live, undefined, log, [...sched.schedule]);
  } catch (e) {
    return finish(live, e, log, [...sched.schedule]);
  }
}

export interface ExploreOutcome {
  schedules: number;
  complete: boolean;
  failures: Array<{ schedule: number[]; verdict: Verdict }>;
}

/** Every schedule within `preemptions` preemptions (CHESS-style DFS, src/sched/explore.ts). */
export function exploreScenario(
  s: Scenario,
  spec: { protocol: KvmProtocol; preemptions: number; mutation?: Mutation | null; maxSchedules?: number; stopOnFailure?: boolean },
): ExploreOutcome {
  const failures: ExploreOutcome['failures'] = [];
  let live: Live | null = null;
  const r = explore(
    (sched) => {
      live = null;
      // explore made this scheduler and its DFS policy; audit in front of its pick().
      const dfs = sched.policy;
      const pick = dfs.pick.bind(dfs);
      dfs.pick = (ready, last, step) => {
        if (live !== null) auditNow(live);
        return pick(ready, last, step);
      };
      const l = setUp(s, sched, { protocol: spec.protocol, policy: 'exhaustive', seed: 1, mutation: spec.mutation ?? null }, null);
      live = l;
      return () => judgeEnd(l, 'done', undefined);
    },
    { preemptionBound: spec.preemptions, maxSchedules: spec.maxSchedules ?? 20_000, maxSteps: 50_000, stopOnFailure: spec.stopOnFailure ?? false },
  );
  for (const f of r.failures) failures.push({ schedule: f.schedule, verdict: verdictOf(f.error, null, 0) });
  return { schedules: r.schedules, complete: r.complete, failures };
}

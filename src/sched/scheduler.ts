// The deterministic scheduler: one simulated CPU per step, many simulated threads.
//
// A step resumes one ready thread until its next yield. Which thread is the policy's
// choice; nothing else (no Math.random, no wall clock, no Map iteration over objects
// created in a varying order) influences the run, so (policy, seed) fixes the
// schedule, the trace and the result.
//
// Time: every step costs 1 tick unless the thread yielded consume(n). A sleep starts
// when its step ends. Timers due at or before `now` fire at step boundaries, in
// (time, scheduling order). With nothing ready, time jumps to the next timer.

import { Clock } from './clock.js';
import {
  SchedBug,
  SimThread,
  swapCtx,
  wake,
  type BugKind,
  type BugReport,
  type Op,
  type SchedHooks,
  type Task,
} from './core.js';
import { Lockdep } from './lockdep.js';
import { RandomPolicy, type Policy } from './policy.js';

/** What the scheduler needs of an event bus (eventemitter3's EventEmitter fits). */
export interface EventSink {
  listenerCount(event: string): number;
  emit(event: string, ...args: any[]): boolean;
}

export type SchedEvent =
  | { type: 'spawn'; now: number; thread: string }
  | { type: 'step'; now: number; step: number; thread: string; op: string }
  | { type: 'wake'; now: number; thread: string }
  | { type: 'exit'; now: number; thread: string }
  | { type: 'bug'; now: number; thread: string; kind: BugKind; message: string }
  | { type: 'deadlock'; now: number; report: string };

export interface SchedulerOptions {
  policy?: Policy;
  /** Seeds the policy (the default RandomPolicy uses 1 when omitted). */
  seed?: number;
  events?: EventSink;
  /** Default true: a bug report throws SchedBug at the offending point. */
  strict?: boolean;
  /** Record a line per step in `trace` (default false: trace is null). */
  trace?: boolean;
  /** Share one lock-order graph across runs (explore, torture loops); default: a fresh one. */
  lockdep?: Lockdep;
  /**
   * Default true: keep every choice in `schedule` for ReplayPolicy. A long run
   * whose replay is its seed (a VMM booting Linux: some 10^5 steps a second)
   * turns it off, or the array grows until V8 gives up.
   */
  recordSchedule?: boolean;
}

export interface RunOptions {
  /** Default 10_000_000. */
  maxSteps?: number;
  /** Checked before every step; true stops the run with status 'until'. */
  until?: () => boolean;
}

export interface RunResult {
  status: 'done' | 'deadlock' | 'max-steps' | 'until';
  steps: number;
  now: number;
  report?: string;
}

export class Scheduler implements SchedHooks {
  readonly clock = new Clock();
  readonly bugs: BugReport[] = [];
  readonly trace: string[] | null;
  /** Choice indices of every step that had 2+ ready threads; feed to ReplayPolicy (empty unless recordSchedule). */
  readonly schedule: number[] = [];
  private readonly recordSchedule: boolean;
  readonly lockdep: Lockdep;
  readonly policy: Policy;
  readonly strict: boolean;
  private readonly events: EventSink | null;
  private readonly threadList: SimThread[] = [];
  /** Threads not yet done, in spawn order: what collectReady scans every step. */
  private readonly live: SimThread[] = [];
  private readonly ready: SimThread[] = [];
  private running: SimThread | null = null;
  private last: SimThread | null = null;
  private liveNonDaemon = 0;
  private stepCount = 0;
  private cycleReport: { report: string; threads: string } | null = null;

  constructor(opts: SchedulerOptions = {}) {
    this.policy = opts.policy ?? new RandomPolicy(opts.seed ?? 1);
    if (opts.policy !== undefined && opts.seed !== undefined) this.policy.seed?.(opts.seed);
    this.events = opts.events ?? null;
    this.strict = opts.strict ?? true;
    this.trace = opts.trace ? [] : null;
    this.lockdep = opts.lockdep ?? new Lockdep();
    this.recordSchedule = opts.recordSchedule ?? true;
  }

  get now(): number {
    return this.clock.now;
  }

  /** Thread whose step is executing, or null between steps. */
  get current(): SimThread | null {
    return this.running;
  }

  get threads(): readonly SimThread[] {
    return this.threadList;
  }

  /** Steps executed since construction (across run() calls). */
  get steps(): number {
    return this.stepCount;
  }

  spawn(name: string, body: () => Task<void>, opts: { daemon?: boolean } = {}): SimThread {
    const t = new SimThread(name, this.threadList.length + 1, body, this, opts.daemon ?? false);
    this.threadList.push(t);
    this.live.push(t);
    if (!t.daemon) this.liveNonDaemon++;
    this.policy.onSpawn?.(t);
    if (this.listening()) this.events!.emit('sched', { type: 'spawn', now: this.now, thread: name } satisfies SchedEvent);
    return t;
  }

  /**
   * The thread ends at its next resumption: its generator gets return(), so `finally`
   * blocks run (and should release its locks). A blocked or sleeping thread is woken
   * for that, like a fatal signal ends a killable wait; a lock acquire it was waiting
   * in gives up cleanly.
   */
  kill(t: SimThread): void {
    if (t.state === 'done' || t.killed) return;
    t.killed = true;
    if (t.state === 'blocked') {
      t.waitingOn?.cancelWait(t);
      wake(t);
    } else if (t.state === 'sleeping') {
      if (t.timer !== null) this.clock.cancel(t.timer);
      t.timer = null;
      t.state = 'runnable';
      t.sleepReason = null;
    }
  }

  run(opts: RunOptions = {}): RunResult {
    const maxSteps = opts.maxSteps ?? 10_000_000;
    const until = opts.until;
    let steps = 0;
    for (;;) {
      this.clock.fireDue();
      if (this.cycleReport !== null) return this.deadlocked(steps, this.cycleReport.report, this.cycleReport.threads);
      if (until !== undefined && until()) return { status: 'until', steps, now: this.now };
      if (this.liveNonDaemon === 0) return { status: 'done', steps, now: this.now };
      const ready = this.collectReady();
      if (ready.length === 0) {
        if (this.clock.jumpToNext()) continue;
        const stuck = this.threadList.filter((t) => t.state === 'blocked' && !t.daemon).map((t) => t.name);
        return this.deadlocked(steps, this.describeDeadlock(), stuck.join(', '));
      }
      if (steps >= maxSteps) return { status: 'max-steps', steps, now: this.now };
      let i = this.policy.pick(ready, this.last, this.stepCount);
      if (!(i >= 0 && i < ready.length)) throw new Error(`policy '${this.policy.name}' picked ${i} of ${ready.length}`);
      i |= 0;
      if (ready.length > 1 && this.recordSchedule) this.schedule.push(i);
      this.step(ready[i]!);
      steps++;
    }
  }

  // ---- SchedHooks ---------------------------------------------------------------

  reportBug(kind: BugKind, message: string, thread: SimThread | null): void {
    const report: BugReport = { kind, message, thread: thread?.name ?? '?' };
    this.recordBug(report);
    // A deadlock is reported through run()'s status; throwing would hide the report.
    if (this.strict && kind !== 'deadlock') throw new SchedBug(report);
  }

  private recordBug(report: BugReport): void {
    this.bugs.push(report);
    if (this.listening()) {
      this.events!.emit('sched', { type: 'bug', now: this.now, thread: report.thread, kind: report.kind, message: report.message } satisfies SchedEvent);
    }
  }

  onWake(t: SimThread): void {
    if (this.listening()) this.events!.emit('sched', { type: 'wake', now: this.now, thread: t.name } satisfies SchedEvent);
  }

  onBlock(t: SimThread): void {
    // A cycle of lock waits can never resolve (locks are only released by their
    // holders), so it is a deadlock now even if unrelated threads or timers remain.
    const cycle = this.findLockCycle(t);
    if (cycle !== null && this.cycleReport === null) this.cycleReport = cycle;
  }

  // ---- internals ----------------------------------------------------------------

  private listening(): boolean {
    return this.events !== null && this.events.listenerCount('sched') > 0;
  }

  private collectReady(): SimThread[] {
    const r = this.ready;
    r.length = 0;
    const all = this.live;
    for (let i = 0; i < all.length; i++) if (all[i]!.state === 'runnable') r.push(all[i]!);
    return r;
  }

  private step(t: SimThread): void {
    const prev = swapCtx(t.runCtx ?? (t.runCtx = { sched: this, thread: t, sync: false }));
    this.running = t;
    this.last = t;
    this.stepCount++;
    let r: IteratorResult<Op, void>;
    try {
      if (t.gen === null) {
        if (t.killed) {
          r = { done: true, value: undefined };
        } else {
          t.gen = t.body!();
          t.body = null;
          r = t.gen.next();
        }
      } else if (t.killed && !t.returnSent) {
        t.returnSent = true;
        r = t.gen.return(undefined);
      } else {
        r = t.gen.next();
      }
    } catch (e) {
      swapCtx(prev);
      this.running = null;
      t.error = e;
      this.exit(t, false);
      throw e;
    }
    swapCtx(prev);
    this.running = null;
    if (r.done) {
      this.clock.advance(1);
      this.traceStep(t, 'exit');
      this.exit(t, true);
      return;
    }
    const op = r.value;
    switch (op.k) {
      case 'preempt':
        this.clock.advance(op.cost);
        this.traceStep(t, op.cost === 1 ? 'preempt' : `consume ${op.cost}`);
        return;
      case 'sleep': {
        this.clock.advance(1);
        t.state = 'sleeping';
        t.sleepReason = op.reason;
        t.wakeAt = this.now + op.ticks;
        t.timer = this.clock.at(t.wakeAt, () => {
          t.timer = null;
          if (t.state !== 'sleeping') return;
          t.state = 'runnable';
          t.sleepReason = null;
          this.onWake(t);
        });
        this.traceStep(t, `sleep ${op.ticks} (${op.reason})`);
        return;
      }
      case 'block':
        this.clock.advance(1);
        if (t.state !== 'blocked') {
          throw new Error(`thread '${t.name}' yielded a raw block op; use WaitQueue/Completion/locks to wait`);
        }
        this.traceStep(t, `block on ${t.waitingOn?.describeWait() ?? '?'}`);
        return;
    }
  }

  private traceStep(t: SimThread, op: string): void {
    if (this.trace !== null) this.trace.push(`${this.stepCount} @${this.now} ${t.name}: ${op}`);
    if (this.listening()) {
      this.events!.emit('sched', { type: 'step', now: this.now, step: this.stepCount, thread: t.name, op } satisfies SchedEvent);
    }
  }

  private exit(t: SimThread, clean: boolean): void {
    t.state = 'done';
    this.live.splice(this.live.indexOf(t), 1);
    if (!t.daemon) this.liveNonDaemon--;
    for (const j of t.joiners.splice(0)) wake(j);
    if (this.listening()) this.events!.emit('sched', { type: 'exit', now: this.now, thread: t.name } satisfies SchedEvent);
    // A thread that died of an exception already has its error propagating.
    if (!clean) return;
    if (t.heldLocks.length > 0) {
      const names = t.heldLocks.map((l) => `${l.kind} '${l.name}'`).join(', ');
      this.reportBug('lock-held-at-exit', `thread '${t.name}' ended${t.killed ? ' (killed)' : ''} holding ${names}`, t);
    }
    if (t.srcuReads.length > 0) {
      const names = t.srcuReads.map((r) => `'${r.srcu.name}'[${r.idx}]`).join(', ');
      this.reportBug('srcu-held-at-exit', `thread '${t.name}' ended inside SRCU read section(s) ${names}`, t);
    }
  }

  private deadlocked(steps: number, report: string, threads: string): RunResult {
    if (!this.bugs.some((b) => b.kind === 'deadlock' && b.message === report)) {
      this.recordBug({ kind: 'deadlock', message: report, thread: threads });
      if (this.listening()) this.events!.emit('sched', { type: 'deadlock', now: this.now, report } satisfies SchedEvent);
    }
    return { status: 'deadlock', steps, now: this.now, report };
  }

  private findLockCycle(start: SimThread): { report: string; threads: string } | null {
    const path: SimThread[] = [];
    const seen = new Set<SimThread>();
    const dfs = (t: SimThread): boolean => {
      if (t.state !== 'blocked' || t.waitingOn === null) return false;
      const blockers = t.waitingOn.blockers?.() ?? [];
      path.push(t);
      seen.add(t);
      for (const b of blockers) {
        if (b === start) return true;
        if (!seen.has(b) && dfs(b)) return true;
      }
      path.pop();
      return false;
    };
    if (!dfs(start)) return null;
    const lines = path.map((t) => `  '${t.name}' waits for ${t.waitingOn!.describeWait()}`);
    return {
      report: `deadlock: wait cycle among ${path.map((t) => `'${t.name}'`).join(', ')}\n${lines.join('\n')}`,
      threads: path.map((t) => t.name).join(', '),
    };
  }

  private describeDeadlock(): string {
    const lines: string[] = [];
    for (const t of this.threadList) {
      if (t.state === 'blocked') {
        lines.push(`  '${t.name}'${t.daemon ? ' (daemon)' : ''} waits for ${t.waitingOn?.describeWait() ?? '?'}`);
      }
    }
    for (const t of this.threadList) {
      if (t.state !== 'done' && t.heldLocks.length > 0) {
        lines.push(`  '${t.name}' holds ${t.heldLocks.map((l) => `${l.kind} '${l.name}'`).join(', ')}`);
      }
    }
    return `deadlock: no thread can run and no timer is pending\n${lines.join('\n')}`;
  }

  /** One line per thread, for the console and failure reports. */
  dump(): string {
    const lines = [`now=${this.now} steps=${this.stepCount} policy=${this.policy.name}`];
    for (const t of this.threadList) {
      let s = `  ${t.name}#${t.id} ${t.state}`;
      if (t.daemon) s += ' daemon';
      if (t.state === 'blocked') s += ` on ${t.waitingOn?.describeWait() ?? '?'}`;
      if (t.state === 'sleeping') s += ` until ${t.wakeAt} (${t.sleepReason})`;
      if (t.heldLocks.length > 0) s += ` holds [${t.heldLocks.map((l) => l.name).join(', ')}]`;
      lines.push(s);
    }
    return lines.join('\n');
  }
}


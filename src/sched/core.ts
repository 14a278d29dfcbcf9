// Simulated threads and the yield protocol between thread code and whatever drives it
// (a Scheduler, or runSync for setup code that has no threads).
//
// A thread is a generator. Every place where a kernel could be preempted or could
// block is a `yield` of an Op; code that may yield is written `function*` and called
// with `yield*`, so the type of a function says whether it may sleep.
//
// Invariant: the state change that makes a thread wait (queueing it on a lock or a
// wait queue, setting state = 'blocked') happens synchronously in the same resumption
// as the `yield` that parks it, so no wakeup can be lost between the two.

import type { TimerHandle } from './clock.js';
import type { Lockdep } from './lockdep.js';
import type { Lock } from './locks.js';

export type Op =
  | { readonly k: 'preempt'; readonly cost: number }
  | { readonly k: 'sleep'; readonly ticks: number; readonly reason: string }
  | { readonly k: 'block' };

export type Task<T = void> = Generator<Op, T, unknown>;

export type ThreadState = 'runnable' | 'blocked' | 'sleeping' | 'done';

export type BugKind =
  | 'might-sleep'
  | 'lock-inversion'
  | 'deadlock'
  | 'unlock-not-owner'
  | 'double-unlock'
  | 'recursive-lock'
  | 'lock-held-at-exit'
  | 'lock-not-held'
  | 'srcu-unbalanced'
  | 'srcu-held-at-exit'
  | 'srcu-deadlock';

export interface BugReport {
  readonly kind: BugKind;
  readonly message: string;
  readonly thread: string;
}

/** Thrown at the offending point when a scheduler is strict (the default), and always under runSync. */
export class SchedBug extends Error {
  readonly report: BugReport;
  constructor(report: BugReport) {
    super(`${report.kind}: ${report.message}`);
    this.name = 'SchedBug';
    this.report = report;
  }
}

/** Something a thread can be parked on; lets kill() unqueue it and deadlock reports name it. */
export interface Waitable {
  readonly name: string;
  describeWait(): string;
  cancelWait(t: SimThread): void;
  /** Threads that must act before a waiter can proceed (lock holders), for cycle detection. */
  blockers?(): readonly SimThread[];
}

/** The part of the Scheduler that primitives call back into. */
export interface SchedHooks {
  readonly lockdep: Lockdep | null;
  readonly strict: boolean;
  readonly now: number;
  reportBug(kind: BugKind, message: string, thread: SimThread | null): void;
  onWake(t: SimThread): void;
  onBlock(t: SimThread): void;
}

/** A held lock as threads and lockdep see it (SpinLock, Mutex, RwSem). */
export interface HeldLock {
  readonly name: string;
  /** Lockdep class: locks that play the same role share one (default: the name). */
  readonly lockClass: string;
  readonly kind: 'spin' | 'mutex' | 'rwsem';
}

export interface LockOptions {
  /**
   * Lockdep class, for per-instance names that play one role ('mm3.ptl' and
   * 'mm7.ptl' as class 'ptl'), so an order learned on one instance checks all.
   */
  lockClass?: string;
}

export class SimThread {
  readonly name: string;
  readonly id: number;
  readonly daemon: boolean;
  state: ThreadState = 'runnable';
  /** Most recently acquired last. */
  heldLocks: Lock[] = [];
  /** SRCU read-side sections open in this thread, innermost last. */
  readonly srcuReads: Array<{ srcu: { readonly name: string; readonly lockClass: string }; idx: number }> = [];
  waitingOn: Waitable | null = null;
  sleepReason: string | null = null;
  wakeAt = -1;
  killed = false;
  /** Error that ended the thread, if any. */
  error: unknown = undefined;
  readonly sched: SchedHooks | null;
  /** @internal */ gen: Task<void> | null = null;
  /** @internal */ body: (() => Task<void>) | null;
  /** @internal */ returnSent = false;
  /** @internal */ timer: TimerHandle | null = null;
  /** @internal */ readonly joiners: SimThread[] = [];
  /** @internal The scheduler's context for this thread, reused by every step. */
  runCtx: Ctx | null = null;

  /** `id` is per scheduler, in spawn order from 1, so it is the same in every replay. */
  constructor(name: string, id: number, body: (() => Task<void>) | null, sched: SchedHooks | null, daemon = false) {
    this.name = name;
    this.id = id;
    this.body = body;
    this.sched = sched;
    this.daemon = daemon;
  }

  /** Waits until this thread has ended (like kthread_stop's wait, or pthread_join). */
  *join(): Task {
    mightSleep(actor(), `join('${this.name}')`);
    if (this.state === 'done') return;
    const me = blockingThread(() => `join '${this.name}'`);
    this.joiners.push(me);
    const joinable: Waitable = {
      name: `join:${this.name}`,
      describeWait: () => `join of thread '${this.name}' (${this.state})`,
      cancelWait: (t) => removeOne(this.joiners, t),
      blockers: () => [this],
    };
    yield* park(me, joinable);
  }

  toString(): string {
    return `${this.name}#${this.id}`;
  }
}

// ---- the active context ---------------------------------------------------------

export interface Ctx {
  readonly sched: SchedHooks | null;
  readonly thread: SimThread;
  /** Under runSync: preemption is a no-op and blocking throws. */
  readonly sync: boolean;
}

let ctx: Ctx | null = null;

/** Stands in for "the caller" in code that runs with no scheduler (setup, tests). */
export const SYNC_THREAD = new SimThread('runSync', 0, null, null);

/** @internal Swaps the active context; returns the previous one for restoring. */
export function swapCtx(next: Ctx | null): Ctx | null {
  const prev = ctx;
  ctx = next;
  return prev;
}

/** Thread being run by the active scheduler (or the runSync stand-in inside runSync). */
export function current(): SimThread {
  if (ctx === null) throw new Error('current(): no simulated thread is running (not inside a Scheduler step or runSync)');
  return ctx.thread;
}

/** @internal The thread on whose behalf a primitive acts; plain code outside any context counts as runSync. */
export function actor(): SimThread {
  return ctx === null ? SYNC_THREAD : ctx.thread;
}

/** @internal */
export function activeSched(): SchedHooks | null {
  return ctx === null ? null : ctx.sched;
}

/** @internal Records a bug against the active scheduler, or throws when there is none. */
export function reportBug(kind: BugKind, message: string, thread: SimThread | null = actor()): void {
  const s = thread?.sched ?? activeSched();
  if (s !== null) s.reportBug(kind, message, thread);
  else throw new SchedBug({ kind, message, thread: thread?.name ?? '?' });
}

/** might_sleep(): sleeping with a spinlock held would deadlock a real CPU. */
export function mightSleep(t: SimThread, what: string): void {
  for (let i = t.heldLocks.length - 1; i >= 0; i--) {
    const l = t.heldLocks[i]!;
    if (l.kind === 'spin') {
      reportBug('might-sleep', `thread '${t.name}' calls ${what} while holding spinlock '${l.name}'`, t);
      return;
    }
  }
}

/**
 * @internal Returns the thread that is about to block, or throws a plain Error when
 * blocking is impossible (runSync, or no context at all).
 */
export function blockingThread(what: () => string): SimThread {
  if (ctx === null || ctx.sync) {
    throw new Error(`runSync: would block on ${what()}; start a Scheduler thread for code that can wait`);
  }
  return ctx.thread;
}

const BLOCK: Op = Object.freeze({ k: 'block' });
const PREEMPT: Op = Object.freeze({ k: 'preempt', cost: 1 });

/** @internal Parks `t` (already queued by the caller) until someone calls wake(t). */
export function* park(t: SimThread, on: Waitable): Task {
  t.state = 'blocked';
  t.waitingOn = on;
  t.sched?.onBlock(t);
  yield BLOCK;
}

/** @internal Makes a parked thread runnable again. */
export function wake(t: SimThread): void {
  if (t.state !== 'blocked') return;
  t.state = 'runnable';
  t.waitingOn = null;
  t.sched?.onWake(t);
}

/** @internal */
export function removeOne<T>(arr: T[], x: T): boolean {
  const i = arr.indexOf(x);
  if (i < 0) return false;
  arr.splice(i, 1);
  return true;
}

// ---- the operations thread code yields --------------------------------------------

/** Explicit preemption point (cond_resched): another thread may run here. Costs 1 tick. */
export function* preempt(): Task {
  yield PREEMPT;
}

const consumeOps: Op[] = [];
/** A preemption point that charges `ticks` of simulated time, e.g. a vCPU instruction quantum. */
export function* consume(ticks: number): Task {
  if (!(ticks >= 0)) throw new RangeError(`consume(${ticks}): ticks must be >= 0`);
  // Quanta repeat the same few costs; reusing the op keeps the vCPU loop allocation-free.
  let op = ticks < 4096 && Number.isInteger(ticks) ? consumeOps[ticks] : undefined;
  if (op === undefined) {
    op = Object.freeze({ k: 'preempt', cost: ticks });
    if (ticks < 4096 && Number.isInteger(ticks)) consumeOps[ticks] = op;
  }
  yield op;
}

/** Sleeps for `ticks` of simulated time (I/O). Sleeping with a spinlock held is a might-sleep bug. */
export function* sleepTicks(ticks: number, reason: string): Task {
  if (!(ticks >= 0)) throw new RangeError(`sleepTicks(${ticks}): ticks must be >= 0`);
  const t = actor();
  mightSleep(t, `sleepTicks(${ticks}, '${reason}')`);
  blockingThread(() => `sleepTicks(${ticks}, '${reason}')`);
  yield { k: 'sleep', ticks, reason };
}

/**
 * Drives a task to completion with no scheduler: preemption points are no-ops and an
 * uncontended lock is simply taken, so host setup code (copy an ELF into guest RAM)
 * runs without threads. Anything that would have to wait throws an Error instead.
 * Called from inside a thread, it runs on behalf of that thread (its locks count).
 */
export function runSync<T>(task: Task<T>): T {
  const outer = ctx;
  const prev = swapCtx({ sched: outer?.sched ?? null, thread: outer?.thread ?? SYNC_THREAD, sync: true });
  try {
    for (;;) {
      const r = task.next();
      if (r.done) return r.value;
      if (r.value.k !== 'preempt') {
        throw new Error(`runSync: task yielded '${r.value.k}', which needs a Scheduler`);
      }
    }
  } finally {
    swapCtx(prev);
  }
}

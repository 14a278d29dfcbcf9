// Counterpart: kernel/sched/wait.c, kernel/sched/completion.c

import { blockingThread, actor, mightSleep, park, removeOne, wake, type SimThread, type Task, type Waitable } from './core.js';

/**
 * A plain wait queue: wait() always parks until a wake. Callers re-check their
 * condition in a loop (or use waitEvent), because a wakeAll wakes everyone and the
 * condition may be false again by the time a waiter runs.
 */
export class WaitQueue implements Waitable {
  readonly name: string;
  private readonly waiters: SimThread[] = [];

  constructor(name: string) {
    this.name = name;
  }

  get length(): number {
    return this.waiters.length;
  }

  *wait(): Task {
    const t = actor();
    mightSleep(t, `wait on '${this.name}'`);
    blockingThread(() => this.describeWait());
    this.waiters.push(t);
    yield* park(t, this);
  }

  /** wait_event(): returns once cond() holds, checking it before the first wait. */
  *waitEvent(cond: () => boolean): Task {
    // wait_event() calls might_sleep() even when it would not wait this time.
    mightSleep(actor(), `wait_event on '${this.name}'`);
    while (!cond()) yield* this.wait();
  }

  wakeOne(): void {
    const t = this.waiters.shift();
    if (t !== undefined) wake(t);
  }

  wakeAll(): void {
    if (this.waiters.length === 0) return;
    const all = this.waiters.splice(0);
    for (const t of all) wake(t);
  }

  describeWait(): string {
    return `waitqueue '${this.name}'`;
  }

  cancelWait(t: SimThread): void {
    removeOne(this.waiters, t);
  }
}

/**
 * complete() releases one waiter (or banks one if nobody waits); completeAll()
 * releases everyone, now and later, until reinit().
 */
export class Completion implements Waitable {
  readonly name: string;
  private done = 0;
  private readonly waiters: SimThread[] = [];

  constructor(name = 'completion') {
    this.name = name;
  }

  get isDone(): boolean {
    return this.done > 0;
  }

  *wait(): Task {
    const t = actor();
    mightSleep(t, `wait_for_completion('${this.name}')`);
    if (this.done > 0) {
      if (this.done !== Infinity) this.done--;
      return;
    }
    blockingThread(() => this.describeWait());
    this.waiters.push(t);
    yield* park(t, this);
  }

  /** try_wait_for_completion() */
  tryWait(): boolean {
    if (this.done === 0) return false;
    if (this.done !== Infinity) this.done--;
    return true;
  }

  complete(): void {
    const t = this.waiters.shift();
    if (t !== undefined) wake(t);
    else if (this.done !== Infinity) this.done++;
  }

  completeAll(): void {
    this.done = Infinity;
    const all = this.waiters.splice(0);
    for (const t of all) wake(t);
  }

  reinit(): void {
    this.done = 0;
  }

  describeWait(): string {
    return `completion '${this.name}'`;
  }

  cancelWait(t: SimThread): void {
    removeOne(this.waiters, t);
  }
}

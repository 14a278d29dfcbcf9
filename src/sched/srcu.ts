// Counterpart: kernel/rcu/srcutiny.c / the classic two-counter srcu.c
//
// Readers increment the counter of the current epoch index and remember the index;
// synchronize() must wait for every reader that began before it and for none that
// began after. Two-epoch scheme as in the kernel: first drain the inactive index
// (stragglers that sampled it before an earlier flip), flip, then drain the old
// index. New readers land on the new index and never hold synchronize up.
// Here readLock() is atomic (no yield between sampling the index and counting), so
// the first drain is normally already empty; it is kept so the structure, and the
// places where a reader can delay a writer, match the kernel's.
//
// Concurrent synchronize() calls are serialized, as by srcu's mutex.

import { actor, blockingThread, mightSleep, park, preempt, reportBug, wake, removeOne, type SimThread, type Task, type Waitable } from './core.js';
import { Mutex } from './locks.js';

export class Srcu implements Waitable {
  readonly name: string;
  /** Lockdep class of the read side and of synchronize(). */
  readonly lockClass: string;
  private idx = 0;
  private readonly count = [0, 0];
  private readonly drainWaiters: SimThread[] = [];
  private readonly gpMutex: Mutex;
  /** Completed grace periods, for tests and dump(). */
  gpSeq = 0;

  constructor(name: string) {
    this.name = name;
    this.lockClass = `srcu:${name}`;
    this.gpMutex = new Mutex(`${name}.srcu_gp`);
  }

  readLock(): number {
    const i = this.idx;
    this.count[i]!++;
    actor().srcuReads.push({ srcu: this, idx: i });
    return i;
  }

  readUnlock(idx: number): void {
    const t = actor();
    const reads = t.srcuReads;
    let found = -1;
    for (let k = reads.length - 1; k >= 0; k--) {
      if (reads[k]!.srcu === this && reads[k]!.idx === idx) {
        found = k;
        break;
      }
    }
    if (found < 0 || this.count[idx]! <= 0) {
      reportBug('srcu-unbalanced', `thread '${t.name}' calls srcu_read_unlock('${this.name}', ${idx}) without a matching read lock`, t);
      return;
    }
    reads.splice(found, 1);
    if (--this.count[idx]! === 0 && this.drainWaiters.length > 0) {
      for (const w of this.drainWaiters.splice(0)) wake(w);
    }
  }

  /** Readers currently inside a section, per epoch index. */
  get readers(): readonly [number, number] {
    return [this.count[0]!, this.count[1]!];
  }

  *synchronize(): Task {
    const t = actor();
    mightSleep(t, `synchronize_srcu('${this.name}')`);
    if (t.srcuReads.some((r) => r.srcu === this)) {
      reportBug('srcu-deadlock', `thread '${t.name}' calls synchronize_srcu('${this.name}') inside its own read-side section`, t);
    }
    const ld = t.sched?.lockdep;
    if (ld) {
      const inv = ld.acquire(t, this, false);
      if (inv !== null) reportBug('lock-inversion', inv.message, t);
    }
    // A grace period is where a kernel would schedule; keep it a choice point even when short.
    yield* preempt();
    // Nothing to wait for: the fast path needs no thread (usable from runSync).
    if (this.count[0] === 0 && this.count[1] === 0 && this.gpMutex.holder === null) {
      this.idx ^= 1;
      this.gpSeq++;
      return;
    }
    yield* this.gpMutex.lock();
    try {
      yield* this.drain(this.idx ^ 1);
      const old = this.idx;
      this.idx ^= 1;
      yield* preempt();
      yield* this.drain(old);
      this.gpSeq++;
    } finally {
      this.gpMutex.unlock();
    }
  }

  private *drain(i: number): Task {
    while (this.count[i]! > 0) {
      const t = blockingThread(() => this.describeWait());
      this.drainWaiters.push(t);
      yield* park(t, this);
    }
  }

  describeWait(): string {
    return `srcu '${this.name}' grace period (readers: ${this.count[0]} on idx 0, ${this.count[1]} on idx 1)`;
  }

  cancelWait(t: SimThread): void {
    removeOne(this.drainWaiters, t);
  }

  dump(): string {
    return `srcu '${this.name}' idx=${this.idx} readers=[${this.count[0]}, ${this.count[1]}] gpSeq=${this.gpSeq}`;
  }
}

// Counterpart: kernel/locking/{spinlock.c,mutex.c,rwsem.c}
//
// All locks hand ownership directly to the first waiter on release (queued spinlocks
// and mutex handoff behave so), which makes them FIFO-fair and means a woken waiter
// never has to retry. A contended acquire parks the thread instead of spinning, so a
// spinning CPU costs no simulated steps; it is still a non-sleeping lock for the
// might-sleep rule, because on real hardware that CPU cannot schedule.
//
// Acquire order: might-sleep check, lockdep check (before waiting, so an ABBA is
// reported even by the run that deadlocks on it), a preemption point (another CPU
// may grab the lock first), then take or queue.

import {
  actor,
  blockingThread,
  mightSleep,
  park,
  preempt,
  removeOne,
  reportBug,
  wake,
  type HeldLock,
  type LockOptions,
  type SimThread,
  type Task,
  type Waitable,
} from './core.js';

function lockdepAcquire(t: SimThread, l: HeldLock, trylock: boolean): void {
  const s = t.sched;
  if (s === null || s.lockdep === null) return;
  const inv = s.lockdep.acquire(t, l, trylock);
  if (inv !== null) reportBug('lock-inversion', inv.message, t);
}

function dropHeld(t: SimThread, l: HeldLock): void {
  const held: readonly HeldLock[] = t.heldLocks;
  for (let i = held.length - 1; i >= 0; i--) {
    if (held[i] === l) {
      t.heldLocks.splice(i, 1);
      return;
    }
  }
}

abstract class ExclusiveLock implements HeldLock, Waitable {
  abstract readonly kind: 'spin' | 'mutex';
  readonly name: string;
  readonly lockClass: string;
  protected owner: SimThread | null = null;
  protected readonly waiters: SimThread[] = [];

  constructor(name: string, opts: LockOptions = {}) {
    this.name = name;
    this.lockClass = opts.lockClass ?? name;
  }

  get holder(): SimThread | null {
    return this.owner;
  }

  /** Threads queued for the lock, first to be granted first. */
  get waiting(): readonly SimThread[] {
    return this.waiters;
  }

  protected *acquire(): Task {
    const t = actor();
    if (this.kind === 'mutex') mightSleep(t, `mutex_lock('${this.name}')`);
    if (this.owner === t) {
      reportBug('recursive-lock', `thread '${t.name}' takes ${this.kind} '${this.name}' which it already holds`, t);
    }
    lockdepAcquire(t, this, false);
    yield* preempt();
    if (this.owner === null && this.waiters.length === 0) {
      this.grant(t);
      return;
    }
    blockingThread(() => this.describeWait());
    this.waiters.push(t);
    let granted = false;
    try {
      yield* park(t, this);
      granted = true;
    } finally {
      // Killed while queued or between handoff and resumption: the caller never saw
      // the lock, so nobody else would release it.
      if (!granted) {
        removeOne(this.waiters, t);
        if (this.owner === t) this.release(t);
      }
    }
  }

  tryLock(): boolean {
    const t = actor();
    if (this.owner !== null || this.waiters.length > 0) return false;
    lockdepAcquire(t, this, true);
    this.grant(t);
    return true;
  }

  unlock(): void {
    const t = actor();
    if (this.owner === null) {
      reportBug('double-unlock', `thread '${t.name}' unlocks ${this.kind} '${this.name}' which is not locked`, t);
      return;
    }
    if (this.owner !== t) {
      reportBug(
        'unlock-not-owner',
        `thread '${t.name}' unlocks ${this.kind} '${this.name}' held by '${this.owner.name}'`,
        t,
      );
      return;
    }
    this.release(t);
  }

  private grant(t: SimThread): void {
    this.owner = t;
    t.heldLocks.push(this as unknown as Lock);
  }

  private release(t: SimThread): void {
    dropHeld(t, this);
    this.owner = null;
    const next = this.waiters.shift();
    if (next !== undefined) {
      this.grant(next);
      wake(next);
    }
  }

  describeWait(): string {
    return `${this.kind} '${this.name}' held by ${this.owner === null ? 'nobody' : `'${this.owner.name}'`}`;
  }

  cancelWait(t: SimThread): void {
    removeOne(this.waiters, t);
  }

  blockers(): readonly SimThread[] {
    return this.owner === null ? [] : [this.owner];
  }

  dump(): string {
    const w = this.waiters.map((x) => x.name).join(', ');
    return `${this.describeWait()}${w ? `; waiters: ${w}` : ''}`;
  }
}

/** Non-sleeping lock: no sleepTicks, sleeping lock, or wait of any kind may happen under it. */
export class SpinLock extends ExclusiveLock {
  readonly kind = 'spin' as const;

  *lock(): Task {
    yield* this.acquire();
  }

  /** lockdep_assert_held(): the calling thread must hold this lock. */
  assertHeld(): void {
    const t = actor();
    if (this.owner !== t) {
      reportBug(
        'lock-not-held',
        `thread '${t.name}' requires spinlock '${this.name}' held, but ${this.owner === null ? 'nobody' : `'${this.owner.name}'`} holds it`,
        t,
      );
    }
  }
}

/** Sleeping lock. Taking it (even uncontended) with a spinlock held is a might-sleep bug. */
export class Mutex extends ExclusiveLock {
  readonly kind = 'mutex' as const;

  *lock(): Task {
    yield* this.acquire();
  }

  assertHeld(): void {
    const t = actor();
    if (this.owner !== t) reportBug('lock-not-held', `thread '${t.name}' requires mutex '${this.name}' held`, t);
  }
}

/**
 * Reader-writer semaphore (mmap_lock). Waiters are served FIFO; a queued writer stops
 * new readers from barging in, so writers do not starve. On release, the head of the
 * queue is granted: one writer, or every reader up to the next queued writer.
 */
export class RwSem implements HeldLock, Waitable {
  readonly kind = 'rwsem' as const;
  readonly name: string;
  readonly lockClass: string;
  private writer: SimThread | null = null;
  private readonly readerList: SimThread[] = [];
  private readonly waiters: Array<{ t: SimThread; write: boolean }> = [];

  constructor(name: string, opts: LockOptions = {}) {
    this.name = name;
    this.lockClass = opts.lockClass ?? name;
  }

  /** The writer, if write-locked. */
  get holder(): SimThread | null {
    return this.writer;
  }

  get readers(): readonly SimThread[] {
    return this.readerList;
  }

  *downRead(): Task {
    yield* this.down(false);
  }

  *downWrite(): Task {
    yield* this.down(true);
  }

  tryDownRead(): boolean {
    const t = actor();
    if (this.writer !== null || this.waiters.length > 0) return false;
    lockdepAcquire(t, this, true);
    this.grant(t, false);
    return true;
  }

  tryDownWrite(): boolean {
    const t = actor();
    if (this.writer !== null || this.readerList.length > 0 || this.waiters.length > 0) return false;
    lockdepAcquire(t, this, true);
    this.grant(t, true);
    return true;
  }

  upRead(): void {
    const t = actor();
    if (!removeOne(this.readerList, t)) {
      const kind = this.readerList.length === 0 && this.writer === null ? 'double-unlock' : 'unlock-not-owner';
      reportBug(kind, `thread '${t.name}' calls upRead on rwsem '${this.name}' without holding it for read`, t);
      return;
    }
    dropHeld(t, this);
    if (this.readerList.length === 0) this.grantWaiters();
  }

  upWrite(): void {
    const t = actor();
    if (this.writer !== t) {
      const kind = this.writer === null ? 'double-unlock' : 'unlock-not-owner';
      reportBug(kind, `thread '${t.name}' calls upWrite on rwsem '${this.name}' (writer: ${this.writer?.name ?? 'none'})`, t);
      return;
    }
    this.writer = null;
    dropHeld(t, this);
    this.grantWaiters();
  }

  /** lockdep_assert_held / _write: the calling thread holds it (for write if asked). */
  assertHeld(write = false): void {
    const t = actor();
    const ok = this.writer === t || (!write && this.readerList.includes(t));
    if (!ok) reportBug('lock-not-held', `thread '${t.name}' requires rwsem '${this.name}' held${write ? ' for write' : ''}`, t);
  }

  /** downgrade_write(): keep excluding writers, let queued readers in. */
  downgradeWrite(): void {
    const t = actor();
    if (this.writer !== t) {
      reportBug('unlock-not-owner', `thread '${t.name}' downgrades rwsem '${this.name}' it does not write-hold`, t);
      return;
    }
    this.writer = null;
    this.readerList.push(t);
    while (this.waiters.length > 0 && !this.waiters[0]!.write) {
      const w = this.waiters.shift()!;
      this.grant(w.t, false);
      wake(w.t);
    }
  }

  private *down(write: boolean): Task {
    const t = actor();
    const what = write ? `down_write('${this.name}')` : `down_read('${this.name}')`;
    mightSleep(t, what);
    // Recursive down_read is a bug too: a writer queued in between deadlocks both.
    if (this.writer === t || this.readerList.includes(t)) {
      reportBug('recursive-lock', `thread '${t.name}' calls ${what} while already holding it`, t);
    }
    lockdepAcquire(t, this, false);
    yield* preempt();
    const free = write ? this.writer === null && this.readerList.length === 0 : this.writer === null;
    if (free && this.waiters.length === 0) {
      this.grant(t, write);
      return;
    }
    blockingThread(() => `${what}: ${this.describeWait()}`);
    const entry = { t, write };
    this.waiters.push(entry);
    let granted = false;
    try {
      yield* park(t, this);
      granted = true;
    } finally {
      if (!granted) {
        const i = this.waiters.indexOf(entry);
        if (i >= 0) this.waiters.splice(i, 1);
        else if (write ? this.writer === t : this.readerList.includes(t)) {
          if (write) {
            this.writer = null;
          } else {
            removeOne(this.readerList, t);
          }
          dropHeld(t, this);
          if (this.writer === null && this.readerList.length === 0) this.grantWaiters();
        }
      }
    }
  }

  private grant(t: SimThread, write: boolean): void {
    if (write) this.writer = t;
    else this.readerList.push(t);
    t.heldLocks.push(this);
  }

  private grantWaiters(): void {
    const head = this.waiters[0];
    if (head === undefined || this.writer !== null) return;
    if (head.write) {
      if (this.readerList.length > 0) return;
      this.waiters.shift();
      this.grant(head.t, true);
      wake(head.t);
      return;
    }
    while (this.waiters.length > 0 && !this.waiters[0]!.write) {
      const w = this.waiters.shift()!;
      this.grant(w.t, false);
      wake(w.t);
    }
  }

  describeWait(): string {
    if (this.writer !== null) return `rwsem '${this.name}' write-held by '${this.writer.name}'`;
    if (this.readerList.length > 0) {
      return `rwsem '${this.name}' read-held by ${this.readerList.map((r) => `'${r.name}'`).join(', ')}`;
    }
    return `rwsem '${this.name}' (free, queued behind ${this.waiters.length} waiter(s))`;
  }

  cancelWait(t: SimThread): void {
    const i = this.waiters.findIndex((w) => w.t === t);
    if (i >= 0) this.waiters.splice(i, 1);
    // A reader queued behind a cancelled writer may now be grantable.
    if (i === 0) this.grantWaiters();
  }

  blockers(): readonly SimThread[] {
    return this.writer !== null ? [this.writer] : this.readerList;
  }

  dump(): string {
    const w = this.waiters.map((x) => `${x.t.name}(${x.write ? 'w' : 'r'})`).join(', ');
    return `${this.describeWait()}${w ? `; waiters: ${w}` : ''}`;
  }
}

export type Lock = SpinLock | Mutex | RwSem;

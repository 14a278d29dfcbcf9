import { describe, expect, it } from 'vitest';
import {
  Completion,
  Mutex,
  RandomPolicy,
  RoundRobinPolicy,
  RwSem,
  SchedBug,
  Scheduler,
  SpinLock,
  Srcu,
  WaitQueue,
  preempt,
  runSync,
  sleepTicks,
  type Task,
} from '../../src/sched/index.js';

describe('lockdep', () => {
  it('reports an ABBA inversion even when the run did not deadlock', () => {
    // t1 finishes A->B before t2 starts B->A (round robin, no preemption): no deadlock
    // happens, but the order conflict is still a bug.
    const s = new Scheduler({ policy: new RoundRobinPolicy(), strict: false });
    const a = new Mutex('mmap_lock');
    const b = new SpinLock('mmu_lock');
    s.spawn('vcpu0', function* () {
      yield* a.lock();
      yield* b.lock();
      b.unlock();
      a.unlock();
    });
    s.spawn('kswapd', function* () {
      yield* b.lock();
      b.unlock();
      yield* sleepTicks(1, 'x');
      yield* b.lock();
      // Sleeping lock under a spinlock is also wrong, but take a second spinlock instead
      // to keep this test about order only.
      b.unlock();
    });
    s.spawn('reclaim', function* () {
      const c = new SpinLock('mmap_lock_spin_alias');
      void c;
      yield* b.lock();
      const got = a.tryLock(); // trylock cannot deadlock: no inversion
      if (got) a.unlock();
      b.unlock();
    });
    expect(s.run().status).toBe('done');
    expect(s.bugs).toEqual([]);

    const s2 = new Scheduler({ policy: new RoundRobinPolicy(), strict: false, lockdep: s.lockdep });
    const x = new SpinLock('mmu_lock');
    const y = new SpinLock('pt_lock');
    s2.spawn('fault', function* () {
      yield* x.lock();
      yield* y.lock();
      y.unlock();
      x.unlock();
    });
    s2.spawn('zap', function* () {
      yield* y.lock();
      yield* x.lock();
      x.unlock();
      y.unlock();
    });
    expect(s2.run().status).toBe('done');
    expect(s2.bugs).toHaveLength(1);
    const bug = s2.bugs[0]!;
    expect(bug.kind).toBe('lock-inversion');
    expect(bug.thread).toBe('zap');
    expect(bug.message).toContain("'fault'");
    expect(bug.message).toContain("'zap'");
    expect(bug.message).toContain("'mmu_lock'");
    expect(bug.message).toContain("'pt_lock'");
  });

  it('finds inversions through a chain of classes', () => {
    const s = new Scheduler({ policy: new RoundRobinPolicy(), strict: false });
    const [a, b, c] = [new Mutex('A'), new Mutex('B'), new Mutex('C')];
    const pair = (name: string, x: Mutex, y: Mutex) =>
      s.spawn(name, function* () {
        yield* x.lock();
        yield* y.lock();
        y.unlock();
        x.unlock();
      });
    pair('t1', a, b);
    pair('t2', b, c);
    pair('t3', c, a);
    s.run();
    expect(s.bugs.map((b) => b.kind)).toEqual(['lock-inversion']);
    expect(s.bugs[0]!.message).toMatch(/chain/);
  });

  it('strict mode throws at the inverted acquire', () => {
    const s = new Scheduler({ policy: new RoundRobinPolicy() });
    const a = new Mutex('A');
    const b = new Mutex('B');
    s.spawn('t1', function* () {
      yield* a.lock();
      yield* b.lock();
      b.unlock();
      a.unlock();
    });
    s.spawn('t2', function* () {
      yield* b.lock();
      yield* a.lock();
      a.unlock();
      b.unlock();
    });
    expect(() => s.run()).toThrow(/lock-inversion/);
  });
});

describe('might-sleep', () => {
  const sleepers: Array<[string, (m: Mutex, r: RwSem, srcu: Srcu, wq: WaitQueue, c: Completion) => Task]> = [
    ['sleepTicks', () => sleepTicks(3, 'swap-in')],
    ['Mutex.lock', (m) => m.lock()],
    ['RwSem.downRead', (_m, r) => r.downRead()],
    ['RwSem.downWrite', (_m, r) => r.downWrite()],
    ['Srcu.synchronize', (_m, _r, srcu) => srcu.synchronize()],
    ['WaitQueue.wait', (_m, _r, _s, wq) => wq.wait()],
    ['Completion.wait', (_m, _r, _s, _w, c) => c.wait()],
  ];
  it.each(sleepers)('%s under a spinlock is reported, naming thread and lock', (_name, op) => {
    const s = new Scheduler({ strict: false });
    const ptl = new SpinLock('pt_lock');
    const c = new Completion('c');
    c.completeAll();
    const wq = new WaitQueue('wq');
    s.spawn('faulting-vcpu', function* () {
      yield* ptl.lock();
      yield* op(new Mutex('m'), new RwSem('mmap_lock'), new Srcu('srcu'), wq, c);
      ptl.unlock();
    });
    s.spawn('waker', function* () {
      yield* sleepTicks(10, 'later');
      wq.wakeAll();
    });
    s.run();
    const bugs = s.bugs.filter((b) => b.kind === 'might-sleep');
    expect(bugs).toHaveLength(1);
    expect(bugs[0]!.thread).toBe('faulting-vcpu');
    expect(bugs[0]!.message).toContain("'pt_lock'");
  });

  it('preemption points and nested spinlocks under a spinlock are fine', () => {
    const s = new Scheduler();
    const a = new SpinLock('a');
    const b = new SpinLock('b');
    s.spawn('t', function* () {
      yield* a.lock();
      yield* preempt();
      yield* b.lock();
      b.unlock();
      a.assertHeld();
      a.unlock();
    });
    expect(s.run().status).toBe('done');
    expect(s.bugs).toEqual([]);
  });

  it('strict mode throws inside the thread', () => {
    const s = new Scheduler();
    const l = new SpinLock('mmu_lock');
    s.spawn('t', function* () {
      yield* l.lock();
      yield* sleepTicks(1, 'io');
    });
    expect(() => s.run()).toThrow(/might-sleep.*'t'.*mmu_lock/);
  });
});

describe('ownership bugs', () => {
  it('unlock by a non-owner and double unlock are reported', () => {
    const s = new Scheduler({ strict: false, policy: new RoundRobinPolicy() });
    const m = new Mutex('m');
    const r = new RwSem('sem');
    s.spawn('owner', function* () {
      yield* m.lock();
      yield* sleepTicks(10, 'hold');
      m.unlock();
      m.unlock();
    });
    s.spawn('thief', function* () {
      yield* preempt();
      m.unlock();
      r.upWrite();
    });
    s.run();
    expect(s.bugs.map((b) => `${b.kind}:${b.thread}`)).toEqual([
      'unlock-not-owner:thief',
      'double-unlock:thief',
      'double-unlock:owner',
    ]);
  });

  it('assertHeld fails when another thread holds the lock', () => {
    const s = new Scheduler({ strict: false });
    const l = new SpinLock('mmu_lock');
    s.spawn('t', function* () {
      l.assertHeld();
      yield* preempt();
    });
    s.run();
    expect(s.bugs.map((b) => b.kind)).toEqual(['lock-not-held']);
  });
});

describe('deadlock', () => {
  it('ABBA deadlock: run() returns deadlock with who waits on what', () => {
    const s = new Scheduler({ strict: false, policy: new RoundRobinPolicy() });
    const a = new Mutex('A');
    const b = new Mutex('B');
    s.spawn('t1', function* () {
      yield* a.lock();
      yield* sleepTicks(5, 'let t2 run');
      yield* b.lock();
    });
    s.spawn('t2', function* () {
      yield* b.lock();
      yield* sleepTicks(5, 'let t1 run');
      yield* a.lock();
    });
    // A daemon that never ends must not hide a wait cycle.
    s.spawn(
      'kswapd',
      function* () {
        for (;;) yield* sleepTicks(3, 'idle');
      },
      { daemon: true },
    );
    const r = s.run({ maxSteps: 10_000 });
    expect(r.status).toBe('deadlock');
    expect(r.report).toContain("'t1' waits for mutex 'B' held by 't2'");
    expect(r.report).toContain("'t2' waits for mutex 'A' held by 't1'");
    expect(s.bugs.map((x) => x.kind)).toEqual(['lock-inversion', 'deadlock']);
    expect(s.bugs[1]!.thread.split(', ').sort()).toEqual(['t1', 't2']);
  });

  it('everyone waiting with no timer pending is a deadlock', () => {
    const s = new Scheduler();
    const c = new Completion('io_done');
    const m = new Mutex('dev');
    s.spawn('a', function* () {
      yield* m.lock();
      yield* c.wait();
      m.unlock();
    });
    s.spawn('b', function* () {
      yield* sleepTicks(2, 'x');
      yield* m.lock();
    });
    const r = s.run();
    expect(r.status).toBe('deadlock');
    expect(r.report).toContain("'a' waits for completion 'io_done'");
    expect(r.report).toContain("'b' waits for mutex 'dev' held by 'a'");
  });

  it('self-deadlock on a non-recursive lock', () => {
    const s = new Scheduler({ strict: false });
    const l = new SpinLock('l');
    s.spawn('t', function* () {
      yield* l.lock();
      yield* l.lock();
    });
    const r = s.run();
    expect(r.status).toBe('deadlock');
    expect(s.bugs[0]!.kind).toBe('recursive-lock');
  });
});

describe('Mutex', () => {
  it('is FIFO: waiters get the lock in arrival order', () => {
    const s = new Scheduler({ seed: 5 });
    const m = new Mutex('m');
    const order: string[] = [];
    s.spawn('holder', function* () {
      yield* m.lock();
      yield* sleepTicks(200, 'hold');
      m.unlock();
    });
    // Arrivals 20 ticks apart: far more than the few ticks of scheduling noise.
    for (let i = 0; i < 5; i++) {
      s.spawn(`w${i}`, function* () {
        yield* sleepTicks(20 + i * 20, 'arrive');
        yield* m.lock();
        order.push(`w${i}`);
        yield* preempt();
        m.unlock();
      });
    }
    expect(s.run().status).toBe('done');
    expect(order).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
  });

  it('excludes under every random schedule', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = new Scheduler({ policy: new RandomPolicy(seed) });
      const m = new Mutex('m');
      let inside = 0;
      let max = 0;
      for (let i = 0; i < 4; i++) {
        s.spawn(`t${i}`, function* () {
          for (let k = 0; k < 3; k++) {
            yield* m.lock();
            inside++;
            max = Math.max(max, inside);
            yield* preempt();
            inside--;
            m.unlock();
          }
        });
      }
      expect(s.run().status).toBe('done');
      expect(max).toBe(1);
    }
  });
});

describe('RwSem', () => {
  it('readers share, a writer excludes readers and writers', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const s = new Scheduler({ seed });
      const sem = new RwSem('mmap_lock');
      let readers = 0;
      let writers = 0;
      let maxReaders = 0;
      let violations = 0;
      for (let i = 0; i < 3; i++) {
        s.spawn(`r${i}`, function* () {
          for (let k = 0; k < 3; k++) {
            yield* sem.downRead();
            readers++;
            maxReaders = Math.max(maxReaders, readers);
            if (writers > 0) violations++;
            yield* sleepTicks(3, 'fault');
            readers--;
            sem.upRead();
          }
        });
      }
      s.spawn('w', function* () {
        for (let k = 0; k < 2; k++) {
          yield* sem.downWrite();
          writers++;
          if (readers > 0 || writers > 1) violations++;
          yield* sleepTicks(2, 'munmap');
          writers--;
          sem.upWrite();
        }
      });
      expect(s.run().status).toBe('done');
      expect(violations).toBe(0);
      if (seed === 1) expect(maxReaders).toBeGreaterThan(1);
    }
  });

  it('a queued writer blocks new readers (no writer starvation)', () => {
    const s = new Scheduler({ policy: new RoundRobinPolicy() });
    const sem = new RwSem('mmap_lock');
    const order: string[] = [];
    s.spawn('r1', function* () {
      yield* sem.downRead();
      yield* sleepTicks(10, 'hold');
      order.push('r1 up');
      sem.upRead();
    });
    s.spawn('w', function* () {
      yield* sleepTicks(2, 'arrive');
      yield* sem.downWrite();
      order.push('w');
      sem.upWrite();
    });
    s.spawn('r2', function* () {
      yield* sleepTicks(4, 'arrive');
      expect(sem.tryDownRead()).toBe(false);
      yield* sem.downRead();
      order.push('r2');
      sem.upRead();
    });
    expect(s.run().status).toBe('done');
    expect(order).toEqual(['r1 up', 'w', 'r2']);
  });

  it('tryDown* and downgradeWrite', () => {
    const sem = new RwSem('s');
    expect(sem.tryDownWrite()).toBe(true);
    expect(sem.tryDownRead()).toBe(false);
    sem.downgradeWrite();
    expect(sem.tryDownRead()).toBe(true);
    expect(sem.tryDownWrite()).toBe(false);
    sem.upRead();
    sem.upRead();
    expect(sem.tryDownWrite()).toBe(true);
    sem.upWrite();
  });
});

describe('Srcu', () => {
  it('synchronize waits for readers that began before it, not for later ones', () => {
    const s = new Scheduler({ policy: new RoundRobinPolicy() });
    const srcu = new Srcu('mmu_notifier');
    const log: string[] = [];
    s.spawn('old-reader', function* () {
      const idx = srcu.readLock();
      yield* sleepTicks(50, 'in callback');
      log.push(`old-reader unlock @${s.now}`);
      srcu.readUnlock(idx);
    });
    s.spawn('unregister', function* () {
      yield* sleepTicks(5, 'arrive');
      log.push(`sync start @${s.now}`);
      yield* srcu.synchronize();
      log.push(`sync done @${s.now}`);
    });
    s.spawn('new-reader', function* () {
      yield* sleepTicks(10, 'arrive');
      const idx = srcu.readLock();
      log.push(`new-reader lock @${s.now}`);
      // Holds its section far longer than the old reader: synchronize must not wait for it.
      yield* sleepTicks(500, 'in callback');
      srcu.readUnlock(idx);
      log.push(`new-reader unlock @${s.now}`);
    });
    expect(s.run().status).toBe('done');
    const syncDone = log.findIndex((l) => l.startsWith('sync done'));
    expect(log.findIndex((l) => l.startsWith('old-reader unlock'))).toBeLessThan(syncDone);
    expect(log.findIndex((l) => l.startsWith('new-reader unlock'))).toBeGreaterThan(syncDone);
    expect(srcu.gpSeq).toBe(1);
  });

  it('concurrent synchronizers both complete, readers keep working', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const s = new Scheduler({ seed });
      const srcu = new Srcu('kvm_srcu');
      let inReader = 0;
      for (let i = 0; i < 3; i++) {
        s.spawn(`reader${i}`, function* () {
          for (let k = 0; k < 4; k++) {
            const idx = srcu.readLock();
            inReader++;
            yield* preempt();
            inReader--;
            srcu.readUnlock(idx);
            yield* preempt();
          }
        });
      }
      for (let i = 0; i < 2; i++) {
        s.spawn(`sync${i}`, function* () {
          yield* srcu.synchronize();
          yield* srcu.synchronize();
        });
      }
      expect(s.run().status).toBe('done');
      expect(srcu.gpSeq).toBe(4);
      expect(srcu.readers).toEqual([0, 0]);
    }
  });

  it('synchronize inside its own read section is reported', () => {
    const s = new Scheduler({ strict: false });
    const srcu = new Srcu('s');
    s.spawn('t', function* () {
      const i = srcu.readLock();
      yield* srcu.synchronize();
      srcu.readUnlock(i);
    });
    s.run();
    expect(s.bugs[0]!.kind).toBe('srcu-deadlock');
  });

  it('synchronize under a lock that a reader takes is an inversion', () => {
    // The mmu_notifier unregister hazard: a callback (reader) takes mmu_lock, and
    // someone calls synchronize_srcu with mmu_lock held.
    const s = new Scheduler({ strict: false, policy: new RoundRobinPolicy() });
    const srcu = new Srcu('mmu_notifier');
    const mmuLock = new Mutex('kvm.slots_lock');
    s.spawn('callback', function* () {
      const idx = srcu.readLock();
      yield* mmuLock.lock();
      mmuLock.unlock();
      srcu.readUnlock(idx);
    });
    s.spawn('unregister', function* () {
      yield* mmuLock.lock();
      yield* srcu.synchronize();
      mmuLock.unlock();
    });
    expect(s.run().status).toBe('done');
    expect(s.bugs.map((b) => b.kind)).toEqual(['lock-inversion']);
    expect(s.bugs[0]!.message).toContain('srcu:mmu_notifier');
  });

  it('unbalanced unlock is reported', () => {
    const srcu = new Srcu('s');
    expect(() => srcu.readUnlock(0)).toThrow(SchedBug);
  });
});

describe('Completion and WaitQueue', () => {
  it('complete releases one waiter or is banked; completeAll releases all', () => {
    const s = new Scheduler();
    const c = new Completion('c');
    const all = new Completion('all');
    const woke: string[] = [];
    for (const n of ['a', 'b']) {
      s.spawn(n, function* () {
        yield* c.wait();
        woke.push(n);
        yield* all.wait();
        woke.push(`${n}!`);
      });
    }
    s.spawn('driver', function* () {
      c.complete();
      yield* sleepTicks(10, 'x');
      c.complete();
      yield* sleepTicks(10, 'x');
      all.completeAll();
    });
    expect(s.run().status).toBe('done');
    expect(woke.slice(0, 2).sort()).toEqual(['a', 'b']);
    expect(woke.slice(2).sort()).toEqual(['a!', 'b!']);
  });

  it('waitEvent rechecks its condition', () => {
    const s = new Scheduler();
    const wq = new WaitQueue('free_pages');
    let free = 0;
    let got = -1;
    s.spawn('alloc', function* () {
      yield* wq.waitEvent(() => free >= 3);
      got = free;
    });
    s.spawn('kswapd', function* () {
      for (let i = 0; i < 3; i++) {
        yield* sleepTicks(5, 'reclaim');
        free++;
        wq.wakeAll();
      }
    });
    expect(s.run().status).toBe('done');
    expect(got).toBe(3);
    expect(wq.length).toBe(0);
  });
});

describe('runSync', () => {
  it('runs tasks with uncontended locks and preempt points', () => {
    const m = new Mutex('mmap_lock');
    const l = new SpinLock('ptl');
    const sem = new RwSem('sem');
    const srcu = new Srcu('srcu');
    const copyElf = function* (): Task<number> {
      yield* sem.downRead();
      yield* m.lock();
      yield* l.lock();
      yield* preempt();
      l.unlock();
      m.unlock();
      sem.upRead();
      yield* srcu.synchronize();
      return 42;
    };
    expect(runSync(copyElf())).toBe(42);
    expect(m.holder).toBeNull();
  });

  it('throws a clear error on blocking or sleeping', () => {
    const m = new Mutex('mmap_lock');
    const s = new Scheduler();
    s.spawn('holder', function* () {
      yield* m.lock();
      yield* new Completion('never').wait();
    });
    expect(s.run().status).toBe('deadlock');
    expect(() => runSync(m.lock())).toThrow(/runSync: would block on mutex 'mmap_lock' held by 'holder'/);
    expect(() => runSync(sleepTicks(5, 'swap-in'))).toThrow(/runSync: would block on sleepTicks\(5, 'swap-in'\)/);
    expect(() => runSync(new Completion('c').wait())).toThrow(/runSync/);
    expect(() => runSync(new WaitQueue('q').wait())).toThrow(/runSync/);
  });

  it('inside a thread, acts for that thread and still refuses to block', () => {
    const s = new Scheduler({ strict: false });
    const l = new SpinLock('l');
    let err: unknown;
    s.spawn('t', function* () {
      runSync(l.lock());
      expect(l.holder?.name).toBe('t');
      try {
        runSync(sleepTicks(1, 'io'));
      } catch (e) {
        err = e;
      }
      l.unlock();
      yield* preempt();
    });
    s.run();
    expect(String(err)).toMatch(/runSync/);
    expect(s.bugs.map((b) => b.kind)).toEqual(['might-sleep']);
  });
});

describe('lock classes and kill', () => {
  it('instances sharing a lockClass share one order', () => {
    const s = new Scheduler({ strict: false, policy: new RoundRobinPolicy() });
    const mm1 = { mmap: new RwSem('mm1.mmap_lock', { lockClass: 'mmap_lock' }), ptl: new SpinLock('mm1.ptl', { lockClass: 'ptl' }) };
    const mm2 = { mmap: new RwSem('mm2.mmap_lock', { lockClass: 'mmap_lock' }), ptl: new SpinLock('mm2.ptl', { lockClass: 'ptl' }) };
    s.spawn('fault', function* () {
      yield* mm1.mmap.downRead();
      yield* mm1.ptl.lock();
      mm1.ptl.unlock();
      mm1.mmap.upRead();
    });
    s.spawn('bad', function* () {
      yield* mm2.ptl.lock();
      const ok = mm2.mmap.tryDownRead(); // fine: a trylock cannot wait
      if (ok) mm2.mmap.upRead();
      mm2.ptl.unlock();
      yield* mm2.ptl.lock();
      mm2.ptl.unlock();
      yield* sleepTicks(1, 'x');
      yield* mm2.ptl.lock();
      yield* preempt();
      mm2.ptl.unlock();
    });
    s.run();
    expect(s.bugs).toEqual([]);
    const s2 = new Scheduler({ strict: false, lockdep: s.lockdep });
    s2.spawn('inverted', function* () {
      yield* mm2.ptl.lock();
      mm2.ptl.unlock();
      yield* mm2.ptl.lock();
      // might-sleep AND inversion: down_read under a spinlock, against mmap_lock -> ptl.
      yield* mm2.mmap.downRead();
      mm2.mmap.upRead();
      mm2.ptl.unlock();
    });
    s2.run();
    expect(s2.bugs.map((b) => b.kind).sort()).toEqual(['lock-inversion', 'might-sleep']);
  });

  it('recursive down_read is reported', () => {
    const s = new Scheduler({ strict: false });
    const r = new RwSem('mmap_lock');
    s.spawn('t', function* () {
      yield* r.downRead();
      yield* r.downRead();
      r.upRead();
      r.upRead();
    });
    s.run();
    expect(s.bugs.map((b) => b.kind)).toEqual(['recursive-lock']);
  });

  it('a thread killed after a lock was handed to it releases it to the next waiter', () => {
    const s = new Scheduler({ policy: new RoundRobinPolicy() });
    const m = new Mutex('m');
    const got: string[] = [];
    let victim: ReturnType<Scheduler['spawn']> | null = null;
    s.spawn('holder', function* () {
      yield* m.lock();
      yield* sleepTicks(10, 'hold');
      // Hand-off to the victim makes it runnable; killing it before it runs must not leak m.
      m.unlock();
      s.kill(victim!);
    });
    victim = s.spawn('victim', function* () {
      yield* sleepTicks(1, 'arrive');
      yield* m.lock();
      got.push('victim');
      m.unlock();
    });
    s.spawn('third', function* () {
      yield* sleepTicks(2, 'arrive');
      yield* m.lock();
      got.push('third');
      m.unlock();
    });
    expect(s.run().status).toBe('done');
    expect(got).toEqual(['third']);
    expect(m.holder).toBeNull();
  });

  it('killing a sleeping or not-yet-started thread ends it', () => {
    const s = new Scheduler();
    let ran = false;
    const sleeper = s.spawn('sleeper', function* () {
      yield* sleepTicks(1_000_000, 'forever');
      ran = true;
    });
    const unstarted = s.spawn('unstarted', function* () {
      ran = true;
      yield* preempt();
    });
    s.kill(unstarted);
    s.spawn('killer', function* () {
      yield* preempt();
      s.kill(sleeper);
    });
    const r = s.run();
    expect(r.status).toBe('done');
    expect(r.now).toBeLessThan(100);
    expect(ran).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'eventemitter3';
import {
  Completion,
  Mutex,
  PctPolicy,
  RandomPolicy,
  ReplayPolicy,
  RoundRobinPolicy,
  SchedBug,
  Scheduler,
  SpinLock,
  WaitQueue,
  consume,
  current,
  preempt,
  sleepTicks,
  type Task,
} from '../../src/sched/index.js';

/** Three threads each taking a shared mutex and preempting: plenty of choice points. */
function busyScenario(s: Scheduler, log: string[]): void {
  const m = new Mutex('m');
  for (const name of ['a', 'b', 'c']) {
    s.spawn(name, function* (): Task {
      for (let i = 0; i < 4; i++) {
        yield* m.lock();
        log.push(`${name}${i}`);
        yield* preempt();
        m.unlock();
        yield* preempt();
      }
    });
  }
}

function runSeeded(seed: number, policy: 'random' | 'pct'): { trace: string[]; schedule: number[]; log: string[] } {
  const s = new Scheduler({ seed, trace: true, policy: policy === 'pct' ? new PctPolicy({ depth: 3, k: 60 }) : new RandomPolicy() });
  const log: string[] = [];
  busyScenario(s, log);
  expect(s.run().status).toBe('done');
  return { trace: s.trace!, schedule: s.schedule, log };
}

describe('Scheduler determinism', () => {
  it.each(['random', 'pct'] as const)('same seed gives the same schedule and trace (%s)', (policy) => {
    const a = runSeeded(42, policy);
    const b = runSeeded(42, policy);
    expect(b.trace).toEqual(a.trace);
    expect(b.schedule).toEqual(a.schedule);
    expect(b.log).toEqual(a.log);
  });

  it('different seeds give different schedules', () => {
    const traces = new Set<string>();
    for (let seed = 1; seed <= 8; seed++) traces.add(runSeeded(seed, 'random').trace.join('\n'));
    expect(traces.size).toBeGreaterThan(1);
  });

  it('a recorded schedule replays to the same trace', () => {
    const a = runSeeded(7, 'random');
    const s = new Scheduler({ policy: new ReplayPolicy(a.schedule), trace: true });
    const log: string[] = [];
    busyScenario(s, log);
    s.run();
    expect(s.trace).toEqual(a.trace);
    expect(log).toEqual(a.log);
  });

  it('recordSchedule: false keeps no schedule and runs the same way', () => {
    const a = runSeeded(7, 'random');
    const s = new Scheduler({ seed: 7, trace: true, recordSchedule: false });
    const log: string[] = [];
    busyScenario(s, log);
    s.run();
    expect(a.schedule.length).toBeGreaterThan(0);
    expect(s.schedule).toEqual([]);
    expect(s.trace).toEqual(a.trace);
    expect(log).toEqual(a.log);
  });

  it('never calls Math.random', () => {
    const orig = Math.random;
    Math.random = () => {
      throw new Error('Math.random used');
    };
    try {
      runSeeded(3, 'random');
      runSeeded(3, 'pct');
    } finally {
      Math.random = orig;
    }
  });
});

describe('Scheduler time', () => {
  it('jumps the clock to the earliest sleeper and wakes ties FIFO', () => {
    const s = new Scheduler({ policy: new RoundRobinPolicy() });
    const woke: string[] = [];
    // A sleep starts when its step ends (each step costs 1 tick), so x (t=1, +100) and
    // y (t=2, +99) are both due at 101: a tie, which must wake in FIFO order.
    s.spawn('x', function* () {
      yield* sleepTicks(100, 'io');
      woke.push(`x@${s.now}`);
    });
    s.spawn('y', function* () {
      yield* sleepTicks(99, 'io');
      woke.push(`y@${s.now}`);
    });
    s.spawn('z', function* () {
      yield* sleepTicks(10, 'io');
      woke.push(`z@${s.now}`);
    });
    const r = s.run();
    expect(r.status).toBe('done');
    // x sleeps at end of step 1 (t=1) until 101; y at t=2 until 101; z at t=3 until 13.
    expect(woke).toEqual(['z@13', 'x@101', 'y@102']);
  });

  it('consume() charges its cost', () => {
    const s = new Scheduler();
    s.spawn('vcpu', function* () {
      for (let i = 0; i < 10; i++) yield* consume(1000);
    });
    const r = s.run();
    // 10 quanta of 1000 plus the final step that returns.
    expect(r.now).toBe(10_001);
  });

  it('clock timers fire between steps and can wake threads', () => {
    const s = new Scheduler();
    const wq = new WaitQueue('irq');
    let fired = -1;
    s.clock.at(50, () => {
      fired = s.now;
      wq.wakeAll();
    });
    s.spawn('t', function* () {
      yield* wq.wait();
    });
    expect(s.run().status).toBe('done');
    expect(fired).toBe(50);
  });
});

describe('Scheduler lifecycle', () => {
  it('daemon threads do not keep run() alive', () => {
    const s = new Scheduler();
    let loops = 0;
    s.spawn(
      'kswapd',
      function* () {
        for (;;) {
          loops++;
          yield* sleepTicks(5, 'kswapd idle');
        }
      },
      { daemon: true },
    );
    s.spawn('worker', function* () {
      yield* sleepTicks(20, 'io');
    });
    const r = s.run();
    expect(r.status).toBe('done');
    expect(loops).toBeGreaterThan(2);
  });

  it('until and maxSteps stop a run, and run() can resume it', () => {
    const s = new Scheduler();
    let n = 0;
    s.spawn('spin', function* () {
      while (n < 100) {
        n++;
        yield* preempt();
      }
    });
    expect(s.run({ until: () => n >= 10 }).status).toBe('until');
    expect(n).toBe(10);
    expect(s.run({ maxSteps: 5 }).status).toBe('max-steps');
    expect(n).toBe(15);
    expect(s.run().status).toBe('done');
  });

  it('current() names the running thread and throws outside', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.spawn('t1', function* () {
      seen.push(current().name);
      expect(s.current?.name).toBe('t1');
      yield* preempt();
    });
    s.run();
    expect(seen).toEqual(['t1']);
    expect(s.current).toBeNull();
    expect(() => current()).toThrow(/no simulated thread/);
  });

  it('join waits for the thread to end; threads can spawn threads', () => {
    const s = new Scheduler();
    const order: string[] = [];
    s.spawn('parent', function* () {
      const child = s.spawn('child', function* () {
        yield* sleepTicks(10, 'work');
        order.push('child');
      });
      yield* child.join();
      order.push('parent');
    });
    expect(s.run().status).toBe('done');
    expect(order).toEqual(['child', 'parent']);
  });

  it('kill ends a blocked thread through its finally blocks', () => {
    const s = new Scheduler();
    const m = new Mutex('mmap_lock');
    const done = new Completion('never');
    const cleaned: string[] = [];
    const victim = s.spawn('victim', function* () {
      yield* m.lock();
      try {
        yield* done.wait();
      } finally {
        m.unlock();
        cleaned.push('victim');
      }
    });
    s.spawn('waiter', function* () {
      yield* sleepTicks(5, 'x');
      yield* m.lock(); // blocks until the victim is killed
      m.unlock();
    });
    s.spawn('oom', function* () {
      yield* sleepTicks(20, 'pressure');
      s.kill(victim);
    });
    const r = s.run();
    expect(r.status).toBe('done');
    expect(cleaned).toEqual(['victim']);
    expect(victim.state).toBe('done');
    expect(s.bugs).toEqual([]);
  });

  it('a thread ending with a lock held is reported', () => {
    const s = new Scheduler({ strict: false });
    const l = new SpinLock('leaky');
    s.spawn('t', function* () {
      yield* l.lock();
    });
    s.run();
    expect(s.bugs.map((b) => b.kind)).toEqual(['lock-held-at-exit']);
    expect(s.bugs[0]!.message).toMatch(/leaky/);
  });

  it('an exception in a thread propagates out of run()', () => {
    const s = new Scheduler();
    s.spawn('boom', function* () {
      yield* preempt();
      throw new Error('kaboom');
    });
    expect(() => s.run()).toThrow('kaboom');
  });

  it('emits trace events only when someone listens', () => {
    const events = new EventEmitter();
    const s = new Scheduler({ events });
    const seen: string[] = [];
    s.spawn('a', function* () {
      yield* preempt();
    });
    s.run({ maxSteps: 1 });
    events.on('sched', (e: { type: string }) => seen.push(e.type));
    s.run();
    expect(seen).toEqual(['step', 'exit']);
  });

  it('strict mode throws SchedBug at the offending point', () => {
    const s = new Scheduler();
    const l = new SpinLock('l');
    s.spawn('t', function* () {
      yield* preempt();
      l.unlock();
    });
    expect(() => s.run()).toThrow(SchedBug);
    expect(s.bugs[0]!.kind).toBe('double-unlock');
  });
});

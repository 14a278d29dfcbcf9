// Deterministic concurrency for the simulation: threads as generators, a seeded
// scheduler, kernel-style locks with lockdep checks, SRCU, completions, simulated time.

export {
  SchedBug,
  SimThread,
  SYNC_THREAD,
  consume,
  current,
  preempt,
  runSync,
  sleepTicks,
  type BugKind,
  type BugReport,
  type HeldLock,
  type LockOptions,
  type Op,
  type Task,
  type ThreadState,
  type Waitable,
} from './core.js';
export { Clock, type TimerHandle } from './clock.js';
export { Lockdep } from './lockdep.js';
export { Mutex, RwSem, SpinLock, type Lock } from './locks.js';
export { Completion, WaitQueue } from './waitqueue.js';
export { Srcu } from './srcu.js';
export { Rng } from './rng.js';
export { PctPolicy, RandomPolicy, ReplayPolicy, RoundRobinPolicy, type Policy } from './policy.js';
export {
  Scheduler,
  type EventSink,
  type RunOptions,
  type RunResult,
  type SchedEvent,
  type SchedulerOptions,
} from './scheduler.js';
export { explore, replay, type ExploreOptions, type ExploreResult, type ExploreFailure, type Scenario } from './explore.js';

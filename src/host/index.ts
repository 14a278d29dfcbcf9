// The simulated host kernel (like mm/): frames, mm, faults, swap, reclaim, GUP, mmu_notifier.

export { HostKernel, MADV_DONTNEED, type HostKernelOptions, type HostStats } from './kernel.js';
export { AnonVma, Mm, Process, type NotifierEra } from './mm.js';
export type { ForkDebug } from './fork.js';
export {
  EAGAIN,
  MmuNotifier,
  MmuNotifierCore,
  type MmuNotifierDebug,
  type MmuNotifierOps,
  type MmuNotifierRange,
  type MmuNotifyEvent,
} from './mmu-notifier.js';
export {
  EOVERFLOW,
  MmuIntervalCore,
  MmuIntervalNotifier,
  MmuNotifierSubscriptions,
  mmuIntervalCheckRetry,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  type IntervalDebug,
  type MmuIntervalNotifierOps,
} from './interval-notifier.js';
export { secondaryMmuHost, type SecondaryMmuHost } from './secondary-mmu.js';
export { hostDebugView, type HostDebugView } from './debug-view.js';
export { EBUSY, EFAULT, EINTR, EINVAL, ENOMEM, VM_FAULT_OOM, VM_FAULT_SIGKILL, VM_FAULT_SIGSEGV, handleMmFault } from './fault.js';
export {
  FrameTable,
  GUP_PIN_COUNTING_BIAS,
  NO_SLOT,
  PG_active,
  PG_anon_shared,
  PG_dirty,
  PG_free,
  PG_isolated,
  PG_locked,
  PG_lru,
  PG_referenced,
  PG_swapbacked,
  PG_swapcache,
  PG_uptodate,
  PG_writeback,
  pageFlagsToString,
  type Watermarks,
} from './frames.js';
export * from './pte.js';
export { PROT_NONE, PROT_READ, PROT_WRITE, MMAP_MIN_ADDR, TASK_SIZE, type Vma, type VmOperations } from './vma.js';
export { auditKernel, checkInvariants, InvariantError, type AuditOptions } from './audit.js';
export { HOST_EVENT, type HostEvent, type VmStats } from './stats.js';
export type { UserPageReclaim } from './vmscan.js';
export type { OomReport } from './oom.js';

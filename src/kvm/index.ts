// The KVM layer (see DESIGN.md "KVM"): the VM and its vCPUs (vm.ts, vcpu.ts), memslots,
// the shadow MMU in layers (spte values, rmaps, the shadow page store, the translator
// the hart walks, the fault path, the notifier handlers), counters and the audit.

export { BUG, KvmBug } from './bug.js';
export {
  GPA_LIMIT,
  HVA_ERR_BAD,
  HVA_LIMIT,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_USER_MEM_SLOTS,
  MemslotError,
  Memslots,
  gfnToHva,
  hvaToGfn,
  type GfnRange,
  type Memslot,
  type MemslotChange,
  type MemslotErrorKind,
  type UserMemoryRegion,
} from './memslots.js';
export { KVM_STAT_NAMES, KvmStats, type KvmStatName } from './stats.js';
export * from './mmu/spte.js';
export {
  PTE_LIST_EXT,
  PteListPool,
  RMAP_HIST_BUCKETS,
  forEachRmap,
  rmapAdd,
  rmapCount,
  rmapDrain,
  rmapHistogram,
  rmapHistogramLabels,
  rmapRemove,
} from './mmu/rmap.js';
export {
  KVM_MIN_FREE_MMU_PAGES,
  SPTES_PER_PAGE,
  SP_ACTIVE,
  SP_FREE,
  SP_ZAPPED,
  SP_ZAPPED_ROOT,
  ShadowPages,
  makeRole,
  roleAccess,
  roleDirect,
  roleLevel,
  roleToString,
  sptepIndex,
  sptepOf,
  sptepPage,
  type MmuHooks,
  type ShadowPagesOptions,
} from './mmu/shadow-pages.js';
export { auditMmu } from './mmu/audit.js';
export { Vm, type KvmEvent, type KvmProtocol, type VmDebug, type VmOptions } from './vm.js';
export { Vcpu, type VcpuExit, type VcpuRunOptions, type VcpuState } from './vcpu.js';
export { ROOT_KEY_DIRECT, ShadowTranslator } from './mmu/translator.js';
export { GuestWalker, injectGuestTrap, kvmMmuPageFault, kvmMmuSyncLocked, walkGuest, type FaultResult } from './mmu/fault.js';
export { kvmMmuNotifierOps } from './mmu/notifier.js';

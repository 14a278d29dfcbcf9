// Counterpart: include/asm-generic/bug.h (BUG, WARN_ON_ONCE) as used by virt/kvm
//
// BUG() is for states that mean our own bookkeeping is already wrong (an rmap
// entry that is not there, a present spte over a free page): continuing would
// turn one bug into silent guest memory corruption, so we throw. Callers never
// catch KvmBug to recover; tests and the torture harness catch it to report.

export class KvmBug extends Error {
  override readonly name = 'KvmBug';
}

export function BUG(message: string): never {
  throw new KvmBug(message);
}

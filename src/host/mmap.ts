// Counterpart: mm/mmap.c and mm/vma.c (do_mmap for anonymous and driver
// mappings, do_vmi_munmap, remove_vma)

import type { Task } from '../sched/index.js';
import { EINVAL, ENOMEM } from './fault.js';
import type { HostKernel } from './kernel.js';
import { zapPageRange } from './memory.js';
import type { Mm } from './mm.js';
import { isPageAligned, pageAlignUp } from './vma.js';
import type { Vma, VmOperations } from './vma.js';

/**
 * mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS), or with `ops` a driver's
 * mmap of its device (a VM_PFNMAP VMA whose faults go to ops.fault): hva, or a
 * negative errno.
 */
export function* doMmap(k: HostKernel, mm: Mm, len: number, prot: number, ops?: VmOperations): Task<number> {
  if (!(len > 0)) return -EINVAL;
  const size = pageAlignUp(len);
  yield* mm.mmapLock.downWrite();
  try {
    if (mm.dead) return -EINVAL;
    const hva = mm.vmas.findGap(size);
    if (hva < 0) return -ENOMEM;
    mm.vmas.insert(ops === undefined ? { start: hva, end: hva + size, prot } : { start: hva, end: hva + size, prot, ops });
    if (k.ctx.tracing()) {
      k.ctx.trace(ops === undefined
        ? { type: 'mmap', mm: mm.id, hva, len: size, prot }
        : { type: 'mmap', mm: mm.id, hva, len: size, prot, device: ops.name });
    }
    return hva;
  } finally {
    mm.mmapLock.upWrite();
  }
}

/** munmap: the ptes go (inside range_start/end), then the VMAs. */
export function* doMunmap(k: HostKernel, mm: Mm, hva: number, len: number): Task<number> {
  if (!isPageAligned(hva) || !(len > 0)) return -EINVAL;
  const end = hva + pageAlignUp(len);
  yield* mm.mmapLock.downWrite();
  try {
    yield* zapPageRange(k, mm, hva, end, 'unmap');
    yield* removeVmas(mm, hva, end);
    if (k.ctx.tracing()) k.ctx.trace({ type: 'munmap', mm: mm.id, hva, len: end - hva });
    return 0;
  } finally {
    mm.mmapLock.upWrite();
  }
}

/** remove_vma: the pieces leave the set, then each driver mapping's ->close runs. */
export function* removeVmas(mm: Mm, start: number, end: number): Task {
  const removed: Vma[] = mm.vmas.remove(start, end);
  for (const v of removed) if (v.ops?.close !== undefined) yield* v.ops.close(mm, v.start, v.end);
}

/** Whether VMAs cover all of [start, end) (madvise and mprotect fail with -ENOMEM over a hole). */
export function rangeMapped(mm: Mm, start: number, end: number): boolean {
  let at = start;
  while (at < end) {
    const v = mm.vmas.find(at);
    if (v === undefined) return false;
    at = v.end;
  }
  return true;
}

/** Whether a driver's VM_PFNMAP mapping meets [start, end). */
export function rangeHasDeviceVma(mm: Mm, start: number, end: number): boolean {
  for (const v of mm.vmas.list) if (v.ops !== undefined && v.start < end && start < v.end) return true;
  return false;
}

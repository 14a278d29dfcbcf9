// Counterpart: mm/madvise.c (MADV_DONTNEED: madvise_dontneed_single_vma)

import type { Task } from '../sched/index.js';
import { EINVAL, ENOMEM } from './fault.js';
import type { HostKernel } from './kernel.js';
import { zapPageRange } from './memory.js';
import type { Mm } from './mm.js';
import { rangeHasDeviceVma, rangeMapped } from './mmap.js';
import { isPageAligned, pageAlignUp } from './vma.js';

export const MADV_DONTNEED = 4;

/** madvise(MADV_DONTNEED): the range reads back as zeroes. -ENOMEM over a hole. */
export function* doMadvise(k: HostKernel, mm: Mm, hva: number, len: number, advice: number): Task<number> {
  if (advice !== MADV_DONTNEED) return -EINVAL;
  if (!isPageAligned(hva) || !(len > 0)) return -EINVAL;
  const end = hva + pageAlignUp(len);
  yield* mm.mmapLock.downRead();
  try {
    if (!rangeMapped(mm, hva, end)) return -ENOMEM;
    // madvise_dontneed_valid_vma: not on a driver's VM_PFNMAP mapping.
    if (rangeHasDeviceVma(mm, hva, end)) return -EINVAL;
    yield* zapPageRange(k, mm, hva, end, 'clear');
    return 0;
  } finally {
    mm.mmapLock.upRead();
  }
}

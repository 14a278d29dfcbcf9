// Counterpart: kernel/exit.c do_exit -> mm/mmap.c exit_mmap

import type { Task } from '../sched/index.js';
import type { HostKernel } from './kernel.js';
import { zapPageRange } from './memory.js';
import { removeVmas } from './mmap.js';
import type { Process } from './mm.js';

/**
 * do_exit -> exit_mmap: mmu_notifier_release first (every page still mapped), then
 * every VMA is zapped and the mm dies. Pages someone still holds (gup, pins) stay
 * allocated until put.
 */
export function* doExit(k: HostKernel, p: Process): Task {
  if (p.exited) return;
  p.exited = true;
  const mm = p.mm;
  yield* k.mn.release(mm);
  yield* mm.mmapLock.downWrite();
  try {
    for (const v of [...mm.vmas.list]) {
      yield* zapPageRange(k, mm, v.start, v.end, 'unmap');
      yield* removeVmas(mm, v.start, v.end);
    }
    mm.dead = true;
  } finally {
    mm.mmapLock.upWrite();
  }
  mm.owner = null;
  k.forgetProcess(p);
  if (k.ctx.tracing()) k.ctx.trace({ type: 'process-exit', pid: p.pid, name: p.name });
}

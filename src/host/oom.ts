// Counterpart: mm/oom_kill.c (select_bad_process, oom_kill_process, the OOM reaper)
//
// The victim is the killable process with the largest rss + swap entries. It is
// marked killed (fatal_signal_pending: its faults and user accesses fail with
// -EINTR, its own exit frees the rest) and reaped at once: its address space is
// zapped under mmap_lock for read with non-blockable notifier ranges, skipping any
// range a secondary MMU refuses with -EAGAIN (retried a few times, then given up,
// as MAX_OOM_REAP_RETRIES). Pinned pages survive reaping: their memory cannot come
// back, and when no victim is left the allocation fails with a report that says so,
// instead of waiting forever.

import { sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { GUP_PIN_COUNTING_BIAS } from './frames.js';
import type { HostKernel } from './kernel.js';
import { zapPageRange } from './memory.js';
import type { Mm, Process } from './mm.js';

export const MAX_OOM_REAP_RETRIES = 10;

export interface OomReport {
  readonly time: number;
  /** The process whose allocation failed (null: a kernel thread or setup code). */
  readonly trigger: string;
  readonly victim: { pid: number; name: string } | null;
  readonly message: string;
  readonly nrFree: number;
  readonly pinnedPages: number;
}

function kb(pages: number): number {
  return pages * 4;
}

function pinnedPages(k: HostKernel): number {
  let n = 0;
  const fr = k.frames;
  for (let pfn = 0; pfn < fr.nrFrames; pfn++) if (fr.refcount[pfn]! >= GUP_PIN_COUNTING_BIAS) n++;
  return n;
}

function badness(p: Process): number {
  return p.mm.anonRss + p.mm.swapEnts;
}

type Selection = { kind: 'victim'; p: Process } | { kind: 'wait' } | { kind: 'none' };

function selectBadProcess(k: HostKernel): Selection {
  let chosen: Process | null = null;
  for (const p of k.processes.values()) {
    if (p.exited || p.oomUnkillable || p.mm.oomSkip) continue;
    // A victim still being torn down: its memory is on the way back, wait for it.
    if (p.killed) return { kind: 'wait' };
    if (chosen === null || badness(p) > badness(chosen)) chosen = p;
  }
  return chosen === null ? { kind: 'none' } : { kind: 'victim', p: chosen };
}

/**
 * out_of_memory. Returns true when the caller should retry its allocation (a victim
 * was killed and reaped, or one is in progress), false when there is nothing left to
 * kill: the allocation must fail.
 */
export function* outOfMemory(k: HostKernel, forMm: Mm | null): Task<boolean> {
  const fr = k.frames;
  const trigger = forMm?.owner ? `${forMm.owner.name} (pid ${forMm.owner.pid})` : 'kernel';
  const sel = selectBadProcess(k);
  if (sel.kind === 'wait') {
    yield* sleepTicks(1, 'oom-victim-exit');
    return true;
  }
  const wm = fr.watermarks;
  const header =
    `${trigger} invoked oom-killer: order=0, free:${fr.nrFree} min:${wm.min} low:${wm.low} high:${wm.high} ` +
    `active_anon:${k.lru.nrActive} inactive_anon:${k.lru.nrInactive} isolated:${k.nrIsolated} ` +
    `swap: ${k.swap.nrFree}/${k.swap.nrSlots} slots free`;
  if (sel.kind === 'none') {
    const pinned = pinnedPages(k);
    const message =
      `Out of memory and no killable processes: allocation by ${trigger} fails. ` +
      `${pinned} of ${fr.nrFrames} pages (${kb(pinned)}kB) are pinned (pin_user_pages) and cannot be reclaimed; ` +
      `${fr.nrFree} free, swap ${k.swap.nrFree} slots free.`;
    k.ctx.printk(header);
    k.ctx.printk(message);
    k.oomReports.push({ time: k.now, trigger, victim: null, message, nrFree: fr.nrFree, pinnedPages: pinned });
    if (k.ctx.tracing()) k.ctx.trace({ type: 'oom-fail', trigger, pinned });
    return false;
  }

  const p = sel.p;
  const mm = p.mm;
  const message =
    `Out of memory: Killed process ${p.pid} (${p.name}) total-vm:${mm.vmas.totalBytes / 1024}kB, ` +
    `anon-rss:${kb(mm.anonRss)}kB, swap-ents:${mm.swapEnts}, oom_score_adj:0`;
  k.ctx.printk(header);
  k.ctx.printk(message);
  k.ctx.stats.oomKill++;
  p.killed = true;
  const before = fr.nrFree;
  if (k.ctx.tracing()) k.ctx.trace({ type: 'oom-kill', pid: p.pid, name: p.name, anonRss: mm.anonRss });
  yield* oomReap(k, p);
  const freed = fr.nrFree - before;
  const pinned = pinnedPages(k);
  k.ctx.printk(
    `oom_reaper: reaped process ${p.pid} (${p.name}), now anon-rss:${kb(mm.anonRss)}kB, freed ${kb(freed)}kB` +
      (pinned > 0 ? `, ${pinned} pinned pages stay allocated` : ''),
  );
  k.oomReports.push({ time: k.now, trigger, victim: { pid: p.pid, name: p.name }, message, nrFree: fr.nrFree, pinnedPages: pinned });
  return true;
}

/** oom_reap_task_mm: zap everything with non-blockable notifier ranges; bounded retries. */
function* oomReap(k: HostKernel, p: Process): Task {
  const mm = p.mm;
  try {
    for (let attempt = 0; attempt < MAX_OOM_REAP_RETRIES; attempt++) {
      if (p.exited) return;
      if (!mm.mmapLock.tryDownRead()) {
        yield* sleepTicks(1, 'oom-reaper');
        continue;
      }
      let complete = true;
      try {
        mm.oomReaped = true;
        for (const v of [...mm.vmas.list]) {
          const r = yield* zapPageRange(k, mm, v.start, v.end, 'oom-reap', false);
          if (r !== 0) complete = false;
        }
      } finally {
        mm.mmapLock.upRead();
      }
      if (complete) return;
      yield* sleepTicks(1, 'oom-reaper');
    }
    k.ctx.printk(`oom_reaper: unable to reap pid:${p.pid} (${p.name}) after ${MAX_OOM_REAP_RETRIES} attempts`);
  } finally {
    mm.oomSkip = true;
  }
}

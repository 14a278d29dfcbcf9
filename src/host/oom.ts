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
//
// The report is what the kernel log shows (dump_header, then the verdict, then the
// reaper's line): who invoked the OOM killer, the memory state (show_mem's counters,
// with the pinned pages that explain it), the task table (dump_tasks, in pages), the
// oom-kill constraint line and "Out of memory: Killed process ...".

import { sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { GUP_PIN_COUNTING_BIAS } from './frames.js';
import type { HostKernel } from './kernel.js';
import { zapPageRange } from './memory.js';
import { nodeHopeless } from './vmscan.js';
import type { Mm, Process } from './mm.js';

export const MAX_OOM_REAP_RETRIES = 10;

export interface OomReport {
  readonly time: number;
  /** The process whose allocation failed (null: a kernel thread or setup code). */
  readonly trigger: string;
  readonly victim: { pid: number; name: string } | null;
  /** The verdict line: "Out of memory: Killed process ..." or why nothing was killed. */
  readonly message: string;
  /** The whole report as printk'd: dump_header's lines, the verdict, the reaper's line. */
  readonly report: string;
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

/**
 * dump_header + dump_tasks: who asked, show_mem's counters (with the pinned pages
 * and what reclaim could still free) and every process the killer considered.
 */
function dumpHeader(k: HostKernel, trigger: string, pinned: number): string[] {
  const fr = k.frames;
  const wm = fr.watermarks;
  const s = k.ctx.stats;
  const lines = [
    `${trigger} invoked oom-killer: gfp_mask=GFP_HIGHUSER_MOVABLE, order=0, oom_score_adj=0`,
    'Mem-Info:',
    `active_anon:${k.lru.nrActive} inactive_anon:${k.lru.nrInactive} isolated_anon:${k.nrIsolated} ` +
      `free:${fr.nrFree} min:${wm.min} low:${wm.low} high:${wm.high} pinned:${pinned} (${kb(pinned)}kB) of ${fr.nrFrames}`,
    `reclaim: pgscan:${s.pgscan} pgsteal:${s.pgsteal} pgkeep_pinned:${s.pgkeepPinned} allocstall:${s.allocstall} ` +
      `all_unreclaimable? ${nodeHopeless(k) ? 'yes' : 'no'}`,
    `Swap: ${k.swap.nrSlots} slots, ${k.swap.nrFree} free, ${k.swap.cache.size} in the swap cache`,
    'Tasks state (memory values in pages):',
    '[  pid  ]   total_vm      rss swapents oom_score_adj name',
  ];
  for (const p of k.processes.values()) {
    if (p.exited) continue;
    const mm = p.mm;
    lines.push(
      `[${String(p.pid).padStart(7)}] ${String(mm.vmas.totalBytes / 4096).padStart(10)} ${String(mm.anonRss).padStart(8)} ` +
        `${String(mm.swapEnts).padStart(8)} ${String(p.oomUnkillable ? -1000 : 0).padStart(13)} ${p.name}`,
    );
  }
  return lines;
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
  const pinnedBefore = pinnedPages(k);
  const header = dumpHeader(k, trigger, pinnedBefore);
  if (sel.kind === 'none') {
    const message =
      `Out of memory and no killable processes: allocation by ${trigger} fails. ` +
      `${pinnedBefore} of ${fr.nrFrames} pages (${kb(pinnedBefore)}kB) are pinned (pin_user_pages) and cannot be reclaimed; ` +
      `${fr.nrFree} free, swap ${k.swap.nrFree} slots free.`;
    for (const line of header) k.ctx.printk(line);
    k.ctx.printk(message);
    const report = [...header, message].join('\n');
    k.oomReports.push({ time: k.now, trigger, victim: null, message, report, nrFree: fr.nrFree, pinnedPages: pinnedBefore });
    if (k.ctx.tracing()) k.ctx.trace({ type: 'oom-fail', trigger, pinned: pinnedBefore });
    return false;
  }

  const p = sel.p;
  const mm = p.mm;
  const constraint = `oom-kill:constraint=CONSTRAINT_NONE,global_oom,task=${p.name},pid=${p.pid}`;
  const message =
    `Out of memory: Killed process ${p.pid} (${p.name}) total-vm:${mm.vmas.totalBytes / 1024}kB, ` +
    `anon-rss:${kb(mm.anonRss)}kB, swap-ents:${mm.swapEnts}, oom_score_adj:0`;
  for (const line of header) k.ctx.printk(line);
  k.ctx.printk(constraint);
  k.ctx.printk(message);
  k.ctx.stats.oomKill++;
  p.killed = true;
  const before = fr.nrFree;
  if (k.ctx.tracing()) k.ctx.trace({ type: 'oom-kill', pid: p.pid, name: p.name, anonRss: mm.anonRss });
  yield* oomReap(k, p);
  const freed = fr.nrFree - before;
  const pinned = pinnedPages(k);
  const reaped =
    `oom_reaper: reaped process ${p.pid} (${p.name}), now anon-rss:${kb(mm.anonRss)}kB, freed ${kb(freed)}kB` +
    (pinned > 0 ? `, ${pinned} pinned pages stay allocated` : '');
  k.ctx.printk(reaped);
  const report = [...header, constraint, message, reaped].join('\n');
  k.oomReports.push({ time: k.now, trigger, victim: { pid: p.pid, name: p.name }, message, report, nrFree: fr.nrFree, pinnedPages: pinned });
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

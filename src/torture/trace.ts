// The event log of a torture run: the host, KVM and scheduler buses turned into one
// sequence of records named after the kernel's tracepoints (mm_*, kvm_*, sched_*,
// mmu_notifier_*), so a kernel engineer reads a replay as they would a trace-cmd log.
// Only `replay` (and the re-run that explains a campaign failure) listens: a campaign
// run has no listener, and every emitter is then a counter test.

import { EventEmitter } from 'eventemitter3';
import type { SchedEvent } from '../sched/index.js';
import type { Scheduler } from '../sched/index.js';

export interface TraceRecord {
  /** Position in the log. */
  seq: number;
  /** Scheduler step and simulated time when the event happened. */
  step: number;
  now: number;
  /** The thread whose step emitted it ('-' between steps). */
  thread: string;
  /** Tracepoint name. */
  tp: string;
  [field: string]: unknown;
}

const HOST_TP: Record<string, string> = {
  fault: 'mm_handle_mm_fault',
  'map-anon': 'mm_anon_fault',
  'map-swapin': 'mm_swapin_fault',
  'page-alloc': 'mm_page_alloc',
  'page-free': 'mm_page_free',
  'swap-read': 'mm_swap_read_folio',
  'swap-write': 'mm_vmscan_write_folio',
  reclaimed: 'mm_vmscan_lru_shrink_inactive',
  deactivate: 'mm_vmscan_lru_shrink_active',
  unmap: 'mm_try_to_unmap',
  zap: 'mm_zap_page_range',
  'kswapd-wake': 'mm_vmscan_kswapd_wake',
  'kswapd-sleep': 'mm_vmscan_kswapd_sleep',
  'oom-kill': 'mark_victim',
  'oom-fail': 'oom_no_victim',
  mmap: 'vm_mmap',
  munmap: 'vm_munmap',
  mprotect: 'vm_mprotect',
  'process-create': 'sched_process_fork',
  'process-exit': 'sched_process_exit',
  'mn-register': 'mmu_notifier_register',
  'mn-unregister': 'mmu_notifier_unregister',
  'mn-release': 'mmu_notifier_release',
  'mn-invalidate-range-start': 'mmu_notifier_invalidate_range_start',
  'mn-invalidate-range-end': 'mmu_notifier_invalidate_range_end',
  'mn-invalidate-page': 'mmu_notifier_invalidate_page',
  printk: 'printk',
};

const KVM_TP: Record<string, string> = {
  fault: 'kvm_mmu_page_fault',
  invalidate: 'kvm_unmap_gfn_range',
  'invalidate-page': 'kvm_unmap_hva',
  age: 'kvm_age_gfn',
  release: 'kvm_mmu_notifier_release',
  memslot: 'kvm_set_user_memory_region',
};

export function hostTracepoint(type: string): string {
  return HOST_TP[type] ?? (type.startsWith('mn-') ? `mmu_notifier_${type.slice(3).replace(/-/g, '_')}` : `mm_${type.replace(/-/g, '_')}`);
}

/** Collects every event of one run; `tail(n)` is what a failure prints. */
export class TraceLog {
  readonly events = new EventEmitter();
  readonly records: TraceRecord[] = [];
  private sched: Scheduler | null = null;
  private lastThread = '';
  /** Records dropped from the front to keep at most `limit` (a whole guest logs millions). */
  dropped = 0;

  constructor(private readonly limit = Infinity) {
    this.events.on('host', (ev: { type: string; [k: string]: unknown }) => {
      const { type, ...rest } = ev;
      this.push(hostTracepoint(type), rest);
    });
    this.events.on('kvm', (ev: { type: string; [k: string]: unknown }) => {
      const { type, ...rest } = ev;
      this.push(KVM_TP[type] ?? `kvm_${type.replace(/-/g, '_')}`, rest);
    });
    this.events.on('sched', (ev: SchedEvent) => this.onSched(ev));
  }

  attach(sched: Scheduler): void {
    this.sched = sched;
  }

  private onSched(ev: SchedEvent): void {
    switch (ev.type) {
      case 'spawn':
        return this.push('sched_process_fork', { child: ev.thread });
      case 'wake':
        return this.push('sched_wakeup', { wakee: ev.thread });
      case 'exit':
        return this.push('sched_process_exit', { comm: ev.thread });
      case 'bug':
        return this.push('lockdep', { kind: ev.kind, message: ev.message });
      case 'deadlock':
        return this.push('sched_process_hang', { report: ev.report });
      case 'step': {
        const op = ev.op;
        // Emitted as the step ends, on behalf of the thread that ran it.
        if (op.startsWith('block on ')) this.push('sched_blocked_reason', { on: op.slice(9) }, ev.thread);
        else if (op.startsWith('sleep ')) this.push('sched_stat_sleep', { op }, ev.thread);
        else if (ev.thread !== this.lastThread) this.push('sched_switch', { prev_comm: this.lastThread, next_comm: ev.thread, op }, ev.thread);
        this.lastThread = ev.thread;
        return;
      }
    }
  }

  private push(tp: string, fields: Record<string, unknown>, thread?: string): void {
    const s = this.sched;
    // VM ids count VMs per process (kvm1, kvm2, ...): folded, so a replay in a fresh
    // process and the campaign run it reproduces log the same text.
    for (const k in fields) {
      const v = fields[k];
      if (typeof v === 'string' && v.includes('kvm')) fields[k] = v.replace(/\bkvm\d+/g, 'kvm');
    }
    if (this.records.length >= this.limit * 2) {
      const n = this.records.length - this.limit;
      this.records.splice(0, n);
      this.dropped += n;
    }
    this.records.push({
      seq: this.dropped + this.records.length,
      step: s?.steps ?? 0,
      now: s?.now ?? 0,
      thread: thread ?? s?.current?.name ?? '-',
      tp,
      ...fields,
    });
  }

  tail(n: number): TraceRecord[] {
    return this.records.slice(-n);
  }
}

/** One line per record, trace-cmd report style. */
export function formatRecord(r: TraceRecord): string {
  const { seq: _seq, step, now, thread, tp, ...rest } = r;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'number' && k !== 'pid' && k !== 'mm' && k !== 'vcpu' && Math.abs(v) > 4096 ? `0x${(v >>> 0).toString(16)}` : typeof v === 'string' ? v.replace(/\s+/g, ' ') : JSON.stringify(v)}`)
    .join(' ');
  return `${thread.padStart(12)} step ${String(step).padStart(6)} @${String(now).padStart(7)}: ${tp}: ${fields}`;
}

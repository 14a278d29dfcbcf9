// Counterpart: include/linux/vm_event_item.h (the counters /proc/vmstat shows)

import type { EventEmitter } from 'eventemitter3';

export interface VmStats {
  pgfault: number;
  pgmajfault: number;
  pswpin: number;
  pswpout: number;
  pgscan: number;
  pgsteal: number;
  pgactivate: number;
  pgdeactivate: number;
  pgalloc: number;
  pgfree: number;
  kswapdWakeups: number;
  allocstall: number;
  oomKill: number;
  /** Pages reclaim put back because someone held an extra reference (gup, a racing fault). */
  pgkeepRefd: number;
  /** Pages reclaim skipped because they were (maybe) pinned. */
  pgkeepPinned: number;
  swapCacheHit: number;
  notifierCalls: number;
  /** do_wp_page copies (not in /proc/vmstat): a write to a page fork shared. */
  cowFault: number;
  /** WARN_ON_ONCE-style soft failures; tests assert zero. */
  warnings: number;
}

export function newVmStats(): VmStats {
  return {
    pgfault: 0,
    pgmajfault: 0,
    pswpin: 0,
    pswpout: 0,
    pgscan: 0,
    pgsteal: 0,
    pgactivate: 0,
    pgdeactivate: 0,
    pgalloc: 0,
    pgfree: 0,
    kswapdWakeups: 0,
    allocstall: 0,
    oomKill: 0,
    pgkeepRefd: 0,
    pgkeepPinned: 0,
    swapCacheHit: 0,
    notifierCalls: 0,
    cowFault: 0,
    warnings: 0,
  };
}

/** One trace record on the 'host' channel. `type` names the event; the rest is its payload. */
export interface HostEvent {
  readonly type: string;
  readonly [key: string]: unknown;
}

export const HOST_EVENT = 'host';

/**
 * Shared by every host component: the bus, the counters and the kernel log.
 * Callers guard with `if (ctx.tracing())` so that building the payload costs
 * nothing when no one listens.
 */
export class HostContext {
  readonly events: EventEmitter;
  readonly stats: VmStats = newVmStats();
  /** dmesg: OOM reports and warnings, newest last, bounded. */
  readonly log: string[] = [];
  private readonly warned = new Set<string>();

  constructor(events: EventEmitter) {
    this.events = events;
  }

  tracing(): boolean {
    return this.events.listenerCount(HOST_EVENT) !== 0;
  }

  trace(ev: HostEvent): void {
    this.events.emit(HOST_EVENT, ev);
  }

  printk(line: string): void {
    this.log.push(line);
    if (this.log.length > 1000) this.log.splice(0, this.log.length - 1000);
    if (this.tracing()) this.trace({ type: 'printk', line });
  }

  /** WARN_ON_ONCE: counts every hit, logs the first of each kind. */
  warnOnce(key: string, message: string): void {
    this.stats.warnings++;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.printk(`WARNING: ${message}`);
  }
}

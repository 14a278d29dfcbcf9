// The debugger's side of the vCPU loop's gate (vmm.ts VcpuGate): how `step`,
// `continue`, breakpoints and Ctrl-C stop a guest at an exact instruction.
//
// The vCPU thread calls enter() before every run, with nothing of the guest in
// flight. With no budget left it parks there, on a wait queue, until the console
// gives it one (resume). While parked, `parked` is true: the console's pause()
// tests it, so the scheduler stops at the next step boundary and simulated time
// stands still with it. The run is cut at the budget, so `step N` ends after exactly
// N instructions begun (a trapping instruction counts, as in vcpu.instructions).
//
// Breakpoints are checked at enter(), against the pc of the next instruction; so
// with any breakpoint set, each run is one instruction long (slow but exact; a
// hart-level check would make it free). The first instruction after a resume is
// never stopped by a breakpoint at its own pc: `continue` from a breakpoint runs it.
// Without breakpoints a run is at most RUN_CHUNK long, so a stop request (Ctrl-C)
// parks the vCPU within one chunk.

import type { Hart } from '../hart/hart.js';
import { WaitQueue } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import type { VcpuGate } from '../vmm/vmm.js';

const RUN_CHUNK = 4096;

export type StopReason =
  | { readonly kind: 'boot' }
  | { readonly kind: 'step' }
  | { readonly kind: 'breakpoint'; readonly pc: number }
  | { readonly kind: 'interrupt' };

export class DebugGate implements VcpuGate {
  /** Instructions the vCPU may begin before it parks (starts at 0: stopped before the first). */
  private budget = 0;
  readonly breakpoints = new Set<number>();
  /** The vCPU thread sleeps in enter(). */
  parked = false;
  lastStop: StopReason = { kind: 'boot' };
  /** Instructions begun since the console last resumed. */
  ran = 0;
  private skipPc: number | null = null;
  private readonly wait = new WaitQueue('debug-gate');

  *enter(hart: Hart): Task<number> {
    for (;;) {
      if (this.budget > 0) {
        const pc = hart.pc >>> 0;
        if (this.breakpoints.has(pc) && this.skipPc !== pc) {
          this.budget = 0;
          this.lastStop = { kind: 'breakpoint', pc };
          continue;
        }
        this.skipPc = null;
        if (this.breakpoints.size > 0) return 1;
        return Math.min(this.budget, RUN_CHUNK);
      }
      this.parked = true;
      yield* this.wait.waitEvent(() => this.budget > 0);
      this.parked = false;
      this.skipPc = hart.pc >>> 0;
    }
  }

  leave(begun: number): void {
    this.ran += begun;
    if (this.budget === 0 || this.budget === Infinity) return;
    this.budget = Math.max(0, this.budget - begun);
    if (this.budget === 0) this.lastStop = { kind: 'step' };
  }

  /** Let the vCPU begin n more instructions (Infinity: until a breakpoint or a stop). */
  resume(n: number): void {
    this.budget = n;
    this.ran = 0;
    this.lastStop = { kind: 'step' };
    // Woken, not yet running: a pause() testing `parked` must let it run.
    this.parked = false;
    this.wait.wakeAll();
  }

  /** Ctrl-C: park at the next run boundary. */
  requestStop(): void {
    if (this.budget > 0) {
      this.budget = 0;
      this.lastStop = { kind: 'interrupt' };
    }
  }
}

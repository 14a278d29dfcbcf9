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
// Breakpoints are checked at enter(), against the pc of the next instruction. A
// run that starts outside every breakpoint's page is a full chunk with those pages
// armed in KVM (vcpu.setGuestDebug): it ends with a 'debug' exit before the first
// instruction fetched from one of them, however the guest gets there (a jump, a
// fall-through, a trap). On a breakpoint page each run is one instruction, with the
// other pages still armed, so the check stays exact and the guest runs at full
// speed everywhere else. One gap is left, the one a one-instruction run always had:
// hart.run(1) takes a pending interrupt and begins its handler's first instruction
// in the same run, so an interrupt taken while stepping on a breakpoint page passes
// a breakpoint at its vector when the vector is on that same page.
// The first instruction after a resume is never stopped by a breakpoint at its own
// pc: `continue` from a breakpoint runs it.
// A run is at most RUN_CHUNK long, so a stop request (Ctrl-C) parks the vCPU within
// one chunk.

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

/** The breakpoint pcs; `version` moves with every change, so the gate re-arms their pages. */
export class BreakpointSet extends Set<number> {
  version = 0;
  override add(pc: number): this {
    this.version++;
    return super.add(pc);
  }
  override delete(pc: number): boolean {
    this.version++;
    return super.delete(pc);
  }
  override clear(): void {
    this.version++;
    super.clear();
  }
}

export class DebugGate implements VcpuGate {
  /** Instructions the vCPU may begin before it parks (starts at 0: stopped before the first). */
  private budget = 0;
  readonly breakpoints = new BreakpointSet();
  /**
   * Arms (a set of gva pages, less skipPage) or disarms (null) KVM's guest-debug
   * fetch exits (the session wires it to vcpu.setGuestDebug). Unset, every run on
   * a machine with breakpoints is one instruction long.
   */
  setDebugPages: ((pages: ReadonlySet<number> | null, skipPage: number) => void) | null = null;
  /** The breakpoints' pages as of `pagesVersion`, and what KVM has armed (null: nothing). */
  private pages: ReadonlySet<number> = new Set();
  private pagesVersion = -1;
  private armedSkip: number | null = null;
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
        if (this.breakpoints.size > 0) {
          if (this.breakpoints.version !== this.pagesVersion) {
            this.pages = new Set([...this.breakpoints].map((bp) => bp >>> 12));
            this.pagesVersion = this.breakpoints.version;
            this.armedSkip = null;
          }
          const page = pc >>> 12;
          const stepping = this.setDebugPages === null || this.pages.has(page);
          this.arm(stepping ? page : -1);
          if (stepping) return 1;
        } else {
          this.arm(null);
        }
        return Math.min(this.budget, RUN_CHUNK);
      }
      this.parked = true;
      yield* this.wait.waitEvent(() => this.budget > 0);
      this.parked = false;
      this.skipPc = hart.pc >>> 0;
    }
  }

  /**
   * skip: the page to leave unarmed (-1 none), or null to disarm. Arming flushes
   * the armed pages from the soft TLB, so a change of the skipped page re-arms: the
   * page stepped on may be in the TLB now.
   */
  private arm(skip: number | null): void {
    if (this.setDebugPages === null || skip === this.armedSkip) return;
    this.armedSkip = skip;
    this.setDebugPages(skip === null ? null : this.pages, skip ?? -1);
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

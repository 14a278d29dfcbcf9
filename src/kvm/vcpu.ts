// Counterpart: virt/kvm/kvm_main.c (kvm_vcpu_ioctl KVM_RUN) + arch/riscv/kvm/vcpu.c
// (kvm_arch_vcpu_ioctl_run's loop, kvm_riscv_vcpu_exit) + kvm_vcpu_halt
//
// A vCPU is an explicit state machine driven by its thread:
//
//   idle --run()--> running --hart STOP_EXIT--> faulting --> running
//                     |  \--wfi--> halted --interrupt/timer/kick--> running
//                     \--exit (sbi, mmio, shutdown, budget, internal-error)--> idle
//   any --vm.destroy()--> dead
//
// run() executes guest code in quanta; after each quantum it yields consume(n) (n
// instructions of simulated time), the preemption point where kswapd, other
// vCPUs and pressure threads interleave with the guest. Between quanta nothing of
// the guest is in flight: a TRANSLATE_EXIT leaves the instruction unexecuted, so
// a fault can sleep and the instruction restarts afterwards.

import { MIP_MTIP } from '../hart/csr.js';
import { Hart, STOP_BUDGET, STOP_EXIT, STOP_HOST_TRAP, STOP_REQUEST, STOP_WFI } from '../hart/hart.js';
import type { HartOptions } from '../hart/hart.js';
import type { JitOptions } from '../hart/jit/jit.js';
import type { MmioBus } from '../hart/translator.js';
import { WaitQueue, consume, sleepTicks } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { GuestWalker, kvmMmuPageFault } from './mmu/fault.js';
import type { FaultResult } from './mmu/fault.js';
import { ShadowTranslator } from './mmu/translator.js';
import type { Vm } from './vm.js';

/** What KVM_RUN returned, as a typed message. */
export type VcpuExit =
  /** The guest made an SBI call (ecall from S-mode): a0-a7 in hart.regs, pc at the ecall. */
  | { readonly reason: 'sbi' }
  /** The VMM asked for an exit from an MMIO handler (requestExit('mmio')). */
  | { readonly reason: 'mmio' }
  /** The VMM asked for a shutdown (requestExit('shutdown')). */
  | { readonly reason: 'shutdown' }
  /** run({ maxInsns }) executed that many instructions. */
  | { readonly reason: 'budget' }
  /** KVM_EXIT_DEBUG: a fetch from a page setGuestDebug armed; pc is that instruction, not begun. */
  | { readonly reason: 'debug' }
  /** KVM cannot go on (host memory gone, trap not delegated, ...): KVM_EXIT_INTERNAL_ERROR. */
  | { readonly reason: 'internal-error'; readonly message: string };

export type VcpuState = 'idle' | 'running' | 'faulting' | 'halted' | 'dead';

export interface VcpuRunOptions {
  /** Instructions per scheduler quantum (default 1000). */
  quantum?: number;
  /** Return { reason: 'budget' } after this many instructions (default: no limit). */
  maxInsns?: number;
}

const CAUSE_SUPERVISOR_ECALL = 9;
/**
 * Faults fixed or retried in a row with no instruction begun before run() calls it a
 * livelock. A healthy fault path needs one, a racing one a few retries.
 */
export const FAULT_LIVELOCK = 1 << 16;
/**
 * Or fewer faults that took this much simulated time with no instruction begun: a
 * fault that swaps in and reclaims each time is slow, and a thrash of them would
 * take hours of wall time to reach FAULT_LIVELOCK. (Pin mode's thrash, a guest table
 * page against the data page it pins, no longer gets here: the host OOM-kills a
 * node whose reclaimable pages are all pinned, see nodeHopeless.)
 */
export const FAULT_LIVELOCK_TICKS = 1 << 24;

const EXIT_SBI: VcpuExit = Object.freeze({ reason: 'sbi' });
const EXIT_MMIO: VcpuExit = Object.freeze({ reason: 'mmio' });
const EXIT_SHUTDOWN: VcpuExit = Object.freeze({ reason: 'shutdown' });
const EXIT_BUDGET: VcpuExit = Object.freeze({ reason: 'budget' });
const EXIT_DEBUG: VcpuExit = Object.freeze({ reason: 'debug' });

export class Vcpu {
  readonly id: number;
  readonly vm: Vm;
  readonly hart: Hart;
  readonly translator: ShadowTranslator;
  /** @internal The fault path's guest walk result, reused. */
  readonly walker = new GuestWalker();
  state: VcpuState = 'idle';
  /** Why the last 'error' fault result happened (becomes the internal-error message). */
  lastError = '';
  lastExit: VcpuExit | null = null;
  /** Instructions run, faults handled by result. */
  instructions = 0;
  readonly faults: Record<FaultResult, number> = { fixed: 0, retry: 0, 'guest-fault': 0, mmio: 0, error: 0 };
  private exitRequest: 'mmio' | 'shutdown' | null = null;
  private kicked = false;
  private readonly wakeup: WaitQueue;

  /** @internal Use vm.createVcpu. */
  constructor(vm: Vm, id: number, bus: MmioBus, jit?: JitOptions) {
    this.vm = vm;
    this.id = id;
    this.translator = new ShadowTranslator(vm);
    const opts: HartOptions = {
      memory: vm.host.directMap,
      translator: this.translator,
      bus,
      hartId: id,
      trapToHost: true,
      ...(jit !== undefined ? { jit } : {}),
    };
    this.hart = new Hart(opts);
    this.wakeup = new WaitQueue(`kvm${vm.id}.vcpu${id}.wait`);
  }

  /**
   * From a VMM callback running inside the hart (an MMIO handler): finish this
   * instruction, then return { reason } from run().
   */
  requestExit(reason: 'mmio' | 'shutdown'): void {
    this.exitRequest = reason;
    this.hart.requestStop();
    this.kick();
  }

  /**
   * KVM_SET_GUEST_DEBUG, at page granularity (what a debugger needs to run at full
   * speed between breakpoints): with pages set (gva >>> 12), run() returns
   * { reason: 'debug' } before the first instruction fetched from one of them but
   * skipPage (the page a debugger single-steps on); null disarms. The armed pages
   * leave the soft TLB now, so every way into them (a jump, a fall-through, a
   * trap vector) misses and asks the translator.
   */
  setGuestDebug(pages: ReadonlySet<number> | null, skipPage = -1): void {
    const tr = this.translator;
    tr.debugFetchPages = pages;
    tr.debugSkipPage = skipPage;
    tr.debugExit = false;
    if (pages !== null) for (const page of pages) if (page !== skipPage) this.hart.flushTlbPage(page * 4096);
  }

  /** kvm_vcpu_kick: wake a vCPU halted in wfi (an interrupt was made pending). */
  kick(): void {
    this.kicked = true;
    this.wakeup.wakeAll();
  }

  /** @internal The fault path's error return: records why. */
  fail(message: string): 'error' {
    this.lastError = message;
    return 'error';
  }

  /** KVM_RUN. */
  *run(opts: VcpuRunOptions = {}): Task<VcpuExit> {
    const exit = yield* this.runLoop(opts);
    this.lastExit = exit;
    return exit;
  }

  private *runLoop(opts: VcpuRunOptions): Task<VcpuExit> {
    if (this.vm.destroyed || this.state === 'dead') {
      this.state = 'dead';
      return { reason: 'internal-error', message: `vcpu ${this.id}: the VM is destroyed` };
    }
    if (this.state !== 'idle') throw new Error(`vcpu ${this.id}: run() while ${this.state}`);
    const quantum = opts.quantum ?? 1000;
    let left = opts.maxInsns ?? Number.POSITIVE_INFINITY;
    const hart = this.hart;
    let faultsWithoutProgress = 0;
    let progressAt = this.vm.host.now;
    this.state = 'running';
    try {
      for (;;) {
        if (this.exitRequest !== null) return this.takeExitRequest();
        if (left <= 0) return EXIT_BUDGET;
        // Other vCPUs' stores are not snooped, so a switch between vCPUs breaks this
        // one's LR reservation: its SC may then fail spuriously (allowed), never
        // succeed over another hart's store to the reserved word (a lost update).
        if (this.vm.lastRanVcpu !== this) {
          if (this.vm.lastRanVcpu !== null) hart.resValid = false;
          this.vm.lastRanVcpu = this;
        }
        const code = hart.run(left < quantum ? left : quantum);
        const n = hart.lastRunInsns;
        left -= n;
        this.instructions += n;
        if (n > 0) {
          faultsWithoutProgress = 0;
          progressAt = this.vm.host.now;
        }
        yield* consume(n);
        if (code === STOP_BUDGET) continue;
        if (code === STOP_EXIT) {
          if (this.translator.debugExit) {
            this.translator.debugExit = false;
            return EXIT_DEBUG;
          }
          this.state = 'faulting';
          const r = yield* kvmMmuPageFault(this);
          this.state = 'running';
          this.faults[r]++;
          if (r === 'error') return { reason: 'internal-error', message: this.lastError };
          if (r === 'fixed' || r === 'retry') {
            // A fault KVM fixed (or backed off from) restarts the instruction, which
            // begins nothing until it gets through. One that never gets through is a
            // livelock in the shadow MMU or the host (an invalidation that never
            // ends, a host that thrashes the pages one fault needs): no instruction
            // budget counts it, so it is bounded here, and said.
            const stalled = this.vm.host.now - progressAt;
            if (++faultsWithoutProgress >= FAULT_LIVELOCK || (faultsWithoutProgress >= 64 && stalled >= FAULT_LIVELOCK_TICKS)) {
              return {
                reason: 'internal-error',
                message:
                  `livelock: ${faultsWithoutProgress} page faults in a row at pc 0x${(hart.pc >>> 0).toString(16)} ` +
                  `(last ${r}, gva 0x${(this.translator.faultGva >>> 0).toString(16)}) and no instruction begun for ${stalled} ticks`,
              };
            }
          } else {
            faultsWithoutProgress = 0;
            progressAt = this.vm.host.now;
          }
          if (r === 'guest-fault') {
            // The hart left its loop before the faulting instruction began, so
            // lastRunInsns did not count it; reflecting the fault is the trap that
            // instruction took. Counting it keeps a guest whose trap handler itself
            // faults (stvec unmapped, a garbage root) within every budget: without
            // it such a guest loops here forever with no instruction begun.
            left -= 1;
            this.instructions += 1;
            yield* consume(1);
          }
          continue;
        }
        if (code === STOP_REQUEST) continue;
        if (code === STOP_WFI) {
          yield* this.halt();
          continue;
        }
        if (code === STOP_HOST_TRAP) {
          if (hart.hostTrapCause === CAUSE_SUPERVISOR_ECALL) return EXIT_SBI;
          return {
            reason: 'internal-error',
            message:
              `trap to the host: ${hart.hostTrapCause < 0 ? 'interrupt' : 'exception'} ${hart.hostTrapCause & 0x7fffffff} ` +
              `tval 0x${(hart.hostTrapTval >>> 0).toString(16)} at pc 0x${(hart.pc >>> 0).toString(16)} (not delegated to S-mode)`,
          };
        }
        return { reason: 'internal-error', message: `hart stopped with unknown code ${code}` };
      }
    } finally {
      this.state = this.vm.destroyed ? 'dead' : 'idle';
    }
  }

  private takeExitRequest(): VcpuExit {
    const r = this.exitRequest;
    this.exitRequest = null;
    return r === 'shutdown' ? EXIT_SHUTDOWN : EXIT_MMIO;
  }

  /**
   * kvm_vcpu_halt after wfi: sleep until an interrupt is pending and enabled. A timer
   * deadline is a wakeup source: sleep that long in simulated time, then move the
   * hart's time to it. Otherwise wait for kick() (the VMM injecting an interrupt).
   */
  private *halt(): Task {
    const h = this.hart;
    this.state = 'halted';
    h.updateTimer();
    if ((h.mip & h.mie) !== 0) {
      this.state = 'running';
      return;
    }
    if ((h.mtimecmpLo & h.mtimecmpHi) !== -1 && (h.mip & MIP_MTIP) === 0) {
      yield* sleepTicks(h.ticksToTimer(), 'wfi');
      h.skipToTimer();
    } else {
      this.kicked = false;
      yield* this.wakeup.waitEvent(() => this.kicked || this.exitRequest !== null || this.vm.destroyed);
    }
    this.state = 'running';
  }

  dump(): string {
    const t = this.translator;
    return (
      `vcpu ${this.id}: ${this.state} pc 0x${(this.hart.pc >>> 0).toString(16)} priv ${'US?M'[this.hart.priv]} ` +
      `satp 0x${(this.hart.satp >>> 0).toString(16)} root ${t.root >= 0 ? `sp ${t.root}` : 'none'} insns ${this.instructions} ` +
      `faults fixed ${this.faults.fixed} retry ${this.faults.retry} guest ${this.faults['guest-fault']} mmio ${this.faults.mmio}` +
      (this.lastExit !== null ? ` last exit ${this.lastExit.reason}` : '')
    );
  }
}

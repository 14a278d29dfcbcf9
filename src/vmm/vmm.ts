// The userspace monitor: what QEMU, kvmtool or Firecracker is to KVM. It owns a
// host process whose anonymous memory is the guest's RAM, tells KVM about it with
// one memslot, loads the guest ELF through that memory, plays the SBI firmware and
// a 16550 UART, and runs the vCPU as a simulated thread until the guest shuts down.
//
// Layout of the guest-physical space (QEMU virt's, so guests built for it fit):
//   0x0c000000  PLIC, one context: hart 0's S-mode external interrupt (SEIP)
//   0x10000000  16550 UART (MMIO: every access leaves the shadow MMU for the bus)
//   0x10001000  virtio-mmio: the balloon, PLIC source 1, when --balloon asks for one
//   0x80000000  RAM, guestMemBytes, memslot 0 -> hva of the VMM's mmap
//
// Boot state (RISC-V SBI spec, "boot": what OpenSBI hands a kernel): S-mode at the
// ELF entry, MMU off, a0 = hartid (0), a1 = 0 (no device tree; a Linux Image,
// bootLinux, gets a1 = the DTB's gpa: see linux-boot.ts), sstatus.SIE = 0,
// every exception an S-mode kernel handles delegated to it (all but ecall from S,
// which is the SBI), SSIP/STIP/SEIP delegated, time/cycle/instret readable from S.
//
// Time: the guest's `time` CSR counts instructions (the hart's mtime, divisor 1).
// The SBI timer is ours, not the hart's mtimecmp (that one raises MTIP, an M-mode
// interrupt an S-mode guest never sees): STIP is raised when time reaches the
// deadline. While the vCPU runs, vcpu.run is cut at the deadline (maxInsns), so
// the interrupt is exact; while it is halted in wfi, the timer thread (QEMU's
// timer + the KVM kick) sleeps that span of simulated time (reclaim runs
// meanwhile), moves the idle hart's time to the deadline, raises STIP and kicks it.
//
// Exit status of run() (what `shadowvisor run` exits with):
//   guest SRST/legacy shutdown -> the reset reason's code (sbi.ts: 0, 1, or N)
//   HSM hart_stop of the only hart -> 0
//   instruction limit          -> 124        (EXIT_LIMIT)
//   idle forever (wfi, no timer, no input) -> 125 (EXIT_IDLE)
//   the host OOM-killed the VMM -> 137      (EXIT_OOM: 128 + SIGKILL, as a shell shows it)
//   KVM internal error, a scheduler deadlock -> 70 (EXIT_INTERNAL)
//   a guest that only takes traps (65536 instructions begun, none retired: its trap
//   handler itself faults), which real hardware would loop in forever -> 70
//   malformed ELF or an image outside RAM -> 2 (EXIT_BAD_ELF)

import { EventEmitter } from 'eventemitter3';
import { PRIV_S, CSR_MEDELEG, CSR_MIDELEG, CSR_MCOUNTEREN, IRQ_SEI, IRQ_SSI, IRQ_STI, MIP_STIP, MIDELEG_MASK, MEDELEG_MASK, CAUSE_SUPERVISOR_ECALL } from '../hart/csr.js';
import type { Hart } from '../hart/hart.js';
import type { JitOptions } from '../hart/jit/jit.js';
import { DeviceBus } from '../hart/bus.js';
import { HostKernel } from '../host/kernel.js';
import type { HostStats } from '../host/kernel.js';
import type { Process } from '../host/mm.js';
import { PROT_READ, PROT_WRITE } from '../host/vma.js';
import { MADV_DONTNEED } from '../host/kernel.js';
import { secondaryMmuHost } from '../host/secondary-mmu.js';
import { Vm } from '../kvm/vm.js';
import type { Vcpu, VcpuExit } from '../kvm/vcpu.js';
import type { KvmProtocol } from '../kvm/vm.js';
import { sleepTicks, SchedBug, Scheduler, WaitQueue } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { ElfError, loadElf, parseElf } from './elf.js';
import type { ElfImage } from './elf.js';
import { ConsoleCapture } from './console-capture.js';
import { Uart16550 } from './devices/uart.js';
import { Plic } from './devices/plic.js';
import { VirtioMmio } from './devices/virtio-mmio.js';
import { VirtioBalloon } from './devices/virtio-balloon.js';
import type { BalloonConfig, BalloonStats } from './devices/virtio-balloon.js';
import type { GuestMemory } from './devices/virtqueue.js';
import { handleSbiCall, describeSbiCall } from './sbi.js';
import { LinuxImageError, planLinuxBoot } from './linux-boot.js';
import type { LinuxBootPlan } from './linux-boot.js';
import type { SbiContext, SbiResult } from './sbi.js';
import { REG_A0, REG_A1, SBI_ERR_FAILED, SBI_SUCCESS } from './sbi-constants.js';

export { OUTPUT_KEEP_BYTES } from './console-capture.js';

export const GUEST_RAM_BASE = 0x80000000;
/** The first virtio-mmio transport and its PLIC source, where QEMU virt puts them. */
export const VIRTIO_MMIO_BASE = 0x10001000;
export const VIRTIO_BALLOON_IRQ = 1;
export const EXIT_BAD_ELF = 2;
export const EXIT_INTERNAL = 70;
export const EXIT_LIMIT = 124;
export const EXIT_IDLE = 125;
export const EXIT_OOM = 137;

/** Instructions between preemption points of the vCPU thread (vcpu.run's quantum). */
export const DEFAULT_QUANTUM = 4096;
/** Longest vcpu.run before the VMM looks at the limit and the timer again. */
const MAX_RUN_SLICE = 1 << 20;
/** Instructions begun with none retired before the VMM calls the guest dead. */
const TRAP_STORM_INSNS = 1 << 16;
const TWO32 = 4294967296;
const PAGE_SIZE = 4096;

export interface VmmConfig {
  /** Guest RAM at 0x80000000 (a multiple of 4 KiB). */
  guestMemBytes: number;
  /** Host RAM the simulated kernel manages (a multiple of 4 KiB). */
  hostMemBytes: number;
  protocol: KvmProtocol;
  /** Seeds the scheduler's policy; a run is a pure function of (image, config, seed, input). */
  seed?: number;
  /** Simulated ticks a swap-in / pageout sleeps (host defaults when absent). */
  swapReadLatency?: number;
  swapWriteLatency?: number;
  /** Swap size (host default: twice host RAM). */
  swapBytes?: number;
  /** Stop after this many guest instructions (EXIT_LIMIT). Default: no limit. */
  maxInsns?: number;
  /** Instructions per vcpu.run. */
  quantum?: number;
  /** KVM's n_max_mmu_pages. */
  nMaxMmuPages?: number;
  /** Bytes the guest can read from the SBI console and the UART. */
  consoleInput?: Uint8Array;
  /** Guest console output as it is produced. */
  onOutput?: (bytes: Uint8Array) => void;
  /**
   * A second host process competing for memory: it maps `bytes` and keeps
   * rewriting them, one page every `periodTicks`, while the guest runs.
   */
  pressure?: { bytes: number; periodTicks?: number };
  /** Trace bus shared by host ('host'), KVM ('kvm'), the scheduler ('sched') and the VMM ('vmm'). */
  events?: EventEmitter;
  /** Consulted by the vCPU loop around every run (a debugger's stops and steps). */
  gate?: VcpuGate;
  /**
   * Called once the guest has ended, before KVM_DESTROY_VM and the VMM's exit
   * unmap guest RAM: the last moment a checker can look at the guest's memory.
   */
  beforeTeardown?: (vmm: Vmm) => void;
  /** A virtio-balloon at VIRTIO_MMIO_BASE, and targets to set while the guest runs. */
  balloon?: BalloonConfig & { schedule?: readonly BalloonStep[] };
  /** Run the vCPU's hot code through the hart's block compiler (`run --jit`); the results are the interpreter's. */
  jit?: JitOptions;
}

/**
 * Test-only switches, one per mechanism (as VmDebug): all false in production.
 */
export interface VmmDebug {
  /**
   * A write through the VMM's mapping (the SBI, a device) leaves the vCPU's
   * compiled code of the pages it wrote: the guest goes on running the old bytes.
   */
  noWriteCodeInvalidate: boolean;
}

/** At simulated time `atTicks`, set the balloon's target to `targetPages`. */
export interface BalloonStep {
  readonly atTicks: number;
  readonly targetPages: number;
}

/**
 * The vCPU loop's debug hook (what KVM_SET_GUEST_DEBUG single-step is to QEMU's
 * gdbstub). Before every vcpu.run, with nothing of the guest in flight (pc is
 * the next instruction to begin), the loop calls enter(), which may sleep (a
 * debugger parks the vCPU thread there) and returns the most instructions the
 * run may begin; the run is cut there as it is at the timer deadline, so a step
 * of N ends exactly N instructions later. leave() hears how many it began.
 */
export interface VcpuGate {
  enter(hart: Hart): Task<number>;
  leave(begun: number): void;
}

export type VmmExitReason =
  | 'shutdown' // SRST shutdown or legacy shutdown
  | 'reboot' // SRST cold/warm reboot: we stop instead
  | 'hart-stop'
  | 'limit'
  | 'idle'
  | 'oom'
  | 'internal-error'
  | 'guest-fault' // the guest keeps trapping and retires nothing (bad stvec, unmapped handler)
  | 'bad-elf';

export interface VmmStats {
  /** KVM's counters (kvm_stat names). */
  guest: Record<string, number | Record<string, number>>;
  host: HostStats;
  /** Guest instructions retired (minstret). */
  instructions: number;
  /** Simulated time at the end of the run. */
  ticks: number;
  sbiCalls: number;
  /** The balloon's device-side counters and the guest's last statistics (when there is a balloon). */
  balloon?: BalloonStats;
}

export interface VmmResult {
  exitCode: number;
  reason: VmmExitReason;
  /** What a person should read when the run did not end in a guest shutdown. */
  message?: string;
  /** What the guest wrote to the SBI console and the UART, latin1: the first OUTPUT_KEEP_BYTES. */
  output: string;
  /** Output bytes past OUTPUT_KEEP_BYTES (streamed to onOutput, not kept in `output`). */
  outputDropped?: number;
  stats: VmmStats;
}

/**
 * Every request a console or a test makes of the VMM, as data (Firecracker's
 * VmmAction): the same messages drive `shadowvisor run`, the debug console and
 * the tests.
 */
export type VmmAction =
  | { readonly type: 'boot'; readonly elf: Uint8Array }
  | { readonly type: 'run' }
  | { readonly type: 'console-input'; readonly bytes: Uint8Array }
  | { readonly type: 'get-stats' }
  | { readonly type: 'dump' };

export type VmmResponse =
  | { readonly type: 'ok' }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'result'; readonly result: VmmResult }
  | { readonly type: 'stats'; readonly stats: VmmStats }
  | { readonly type: 'dump'; readonly text: string };

/**
 * The vCPU thread as a state machine (Firecracker's vcpu states):
 *   created -> running <-> idle -> exited
 *                 |                  ^
 *                 +------------------+ (shutdown, error, limit)
 * `idle` is a hart in wfi or HSM suspend, waiting for an interrupt.
 */
export type VcpuRunState = 'created' | 'running' | 'idle' | 'exited';

export type VmmEvent =
  | { type: 'sbi'; call: string }
  | { type: 'vcpu-state'; from: VcpuRunState; to: VcpuRunState }
  | { type: 'timer'; deadline: number; fired: boolean };

/** Flat numbers of KVM's stats, for printing and JSON. */
function kvmStatsRecord(vm: Vm | null): Record<string, number | Record<string, number>> {
  if (vm === null) return {};
  // The rmap histogram is computed on demand. No critical section under mmu_lock
  // yields, so with the lock free this synchronous walk sees a consistent state.
  if (vm.mmuLock.holder === null) vm.sps.updateRmapHistogram();
  return vm.stats.toJSON();
}

/** What the boot thread copies into guest RAM, and the hart's entry state (a1: 0 or the DTB's gpa). */
interface BootLoad {
  segments: { gpa: number; data: Uint8Array }[];
  entry: number;
  a1: number;
}

export class VmmError extends Error {
  override readonly name = 'VmmError';
}

export class Vmm {
  readonly config: Readonly<VmmConfig>;
  readonly events: EventEmitter;
  readonly sched: Scheduler;
  readonly kernel: HostKernel;
  readonly proc: Process;
  readonly uart: Uart16550;
  readonly plic: Plic;
  /** The balloon and its transport, when the config asks for one. */
  readonly balloon: VirtioBalloon | null = null;
  readonly balloonTransport: VirtioMmio | null = null;
  /** Every device of the machine, decoded in one place (KVM's MMIO exits land here). */
  readonly bus: DeviceBus;
  vm: Vm | null = null;
  image: ElfImage | null = null;
  /** Where bootLinux put the kernel, initrd and device tree. */
  linuxBoot: LinuxBootPlan | null = null;
  /** hva of guest RAM in the VMM process. */
  ramHva = -1;
  readonly debug: VmmDebug = { noWriteCodeInvalidate: false };

  private vcpuState: VcpuRunState = 'created';
  vcpu: Vcpu | null = null;
  private hart: Hart | null = null;
  /** The timer thread waits here for a deadline to be armed. */
  private readonly timerWait = new WaitQueue('sbi-timer');
  private readonly out = new ConsoleCapture();
  private readonly input: number[] = [];
  /** SBI timer deadline in `time` units; Infinity when disarmed. */
  private stimecmp = Infinity;
  private sbiCalls = 0;
  private result: VmmResult | null = null;
  /** The result once the scheduler has stopped for good (run() and resume() return it from then on). */
  private ended: VmmResult | null = null;
  private bootError: string | null = null;
  /** The VM and the VMM process are gone (after the result): the run is over. */
  private tornDown = false;

  constructor(config: VmmConfig) {
    for (const [k, v] of [['guestMemBytes', config.guestMemBytes], ['hostMemBytes', config.hostMemBytes]] as const) {
      if (!(Number.isInteger(v) && v > 0 && v % PAGE_SIZE === 0)) throw new VmmError(`${k} must be a positive multiple of 4 KiB, got ${v}`);
    }
    if (GUEST_RAM_BASE + config.guestMemBytes > TWO32) throw new VmmError(`guestMemBytes ${config.guestMemBytes}: RAM at 0x80000000 must end below 4 GiB`);
    this.config = config;
    this.events = config.events ?? new EventEmitter();
    // A run replays from its seed; the per-step record would grow without bound.
    this.sched = new Scheduler({ seed: config.seed ?? 1, events: this.events, recordSchedule: false });
    this.kernel = new HostKernel({
      ramBytes: config.hostMemBytes,
      sched: this.sched,
      events: this.events,
      ...(config.swapBytes !== undefined ? { swapBytes: config.swapBytes } : {}),
      ...(config.swapReadLatency !== undefined ? { swapReadLatency: config.swapReadLatency } : {}),
      ...(config.swapWriteLatency !== undefined ? { swapWriteLatency: config.swapWriteLatency } : {}),
    });
    // v7 is the 2008 notifier, which only a process of that era delivers.
    this.proc = this.kernel.createProcess('vmm', { era: config.protocol === 'v7' ? '2008' : 'modern' });
    this.uart = new Uart16550((b) => this.emit(b));
    this.plic = new Plic((level) => {
      // The PLIC's S-mode context is the hart's SEIP; a halted vCPU must wake for it.
      this.hart?.setInterruptPending(IRQ_SEI, level);
      if (level) this.vcpu?.kick();
    });
    this.bus = new DeviceBus([this.plic, this.uart]);
    if (config.balloon) {
      const balloon = new VirtioBalloon(config.balloon, {
        discard: (gpa, len) => this.kernel.madvise(this.proc.mm, this.ramHva + (gpa - GUEST_RAM_BASE), len, MADV_DONTNEED),
        footprintPages: () => this.proc.mm.anonRss + this.proc.mm.swapEnts,
        freeFrames: () => this.kernel.frames.nrFree,
        isRam: (gpa, len) => this.isGuestRam(gpa, len),
        now: () => this.sched.now,
      });
      const transport = new VirtioMmio(balloon, {
        name: 'virtio-balloon', base: VIRTIO_MMIO_BASE, mem: this.guestMemory(),
        setIrq: (high) => this.plic.setLevel(VIRTIO_BALLOON_IRQ, high),
      });
      balloon.transport = transport;
      this.balloon = balloon;
      this.balloonTransport = transport;
      this.bus.attach(transport);
    }
    if (config.consoleInput) this.pushInput(config.consoleInput);
  }

  // ---- actions -----------------------------------------------------------------------

  dispatch(action: VmmAction): VmmResponse {
    switch (action.type) {
      case 'boot': {
        const err = this.boot(action.elf);
        return err === null ? { type: 'ok' } : { type: 'error', message: err };
      }
      case 'run':
        return { type: 'result', result: this.run() };
      case 'console-input':
        this.pushInput(action.bytes);
        return { type: 'ok' };
      case 'get-stats':
        return { type: 'stats', stats: this.stats() };
      case 'dump':
        return { type: 'dump', text: this.dump() };
    }
  }

  /**
   * Parses the image and spawns the boot thread (memory, memslot, load, vCPU).
   * Returns an error message for a malformed image, or null.
   */
  boot(elf: Uint8Array): string | null {
    if (this.image !== null || this.linuxBoot !== null) return 'already booted';
    let image: ElfImage;
    try {
      image = parseElf(elf);
      // Checks every segment against RAM before anything is written.
      loadElf(image, () => {}, { base: GUEST_RAM_BASE, size: this.config.guestMemBytes, sizeOption: '--guest-mem' });
    } catch (e) {
      if (e instanceof ElfError) {
        this.bootError = e.message;
        return e.message;
      }
      throw e;
    }
    this.image = image;
    const segments: BootLoad['segments'] = [];
    loadElf(image, (gpa, data) => segments.push({ gpa, data }));
    this.spawnBoot({ segments, entry: image.entry, a1: 0 });
    return null;
  }

  /**
   * Boots a Linux Image (with an initrd and a kernel command line) the way a
   * firmware does: see linux-boot.ts. Returns an error message, or null.
   */
  bootLinux(kernel: Uint8Array, opts: { initrd?: Uint8Array; bootargs?: string } = {}): string | null {
    if (this.image !== null || this.linuxBoot !== null) return 'already booted';
    let plan: LinuxBootPlan;
    try {
      plan = planLinuxBoot(kernel, opts.initrd, {
        ramBase: GUEST_RAM_BASE, ramBytes: this.config.guestMemBytes, hartId: 0,
        ...(opts.bootargs !== undefined ? { bootargs: opts.bootargs } : {}),
        ...(this.balloonTransport !== null ? { virtio: [{ base: VIRTIO_MMIO_BASE, irq: VIRTIO_BALLOON_IRQ }] } : {}),
      });
    } catch (e) {
      if (e instanceof LinuxImageError) {
        this.bootError = e.message;
        return e.message;
      }
      throw e;
    }
    this.linuxBoot = plan;
    this.spawnBoot({ segments: plan.segments, entry: plan.entry, a1: plan.dtbGpa });
    return null;
  }

  private spawnBoot(load: BootLoad): void {
    this.sched.spawn('vmm-boot', () => this.bootThread(load));
    const balloon = this.balloon;
    if (balloon !== null) {
      this.sched.spawn('virtio-balloon', () => balloon.worker(), { daemon: true });
      this.sched.spawn('virtio-balloon-stats', () => balloon.statsTimer(), { daemon: true });
      const steps = this.config.balloon?.schedule ?? [];
      if (steps.length > 0) this.sched.spawn('balloon-schedule', () => this.balloonSchedule(steps), { daemon: true });
    }
    if (this.config.pressure) {
      const p = this.config.pressure;
      this.sched.spawn('pressure', () => this.pressureThread(p.bytes, p.periodTicks ?? 10), { daemon: true });
    }
  }

  /** Runs the machine to the end and returns the result (idempotent). */
  run(): VmmResult {
    return this.resume(() => false)!;
  }

  /**
   * Runs until the machine ends (returns the result, then the same result on
   * every later call) or `pause()`, asked between two scheduler steps, wants a
   * break (returns null; call again to go on). A pause changes nothing the guest
   * can see: simulated time stands still with the scheduler.
   */
  resume(pause: () => boolean): VmmResult | null {
    if (this.ended !== null) return this.ended;
    const r = this.runSteps(pause);
    if (r !== null) this.ended = r;
    return r;
  }

  private runSteps(pause: () => boolean): VmmResult | null {
    if (this.bootError !== null) return this.finish(EXIT_BAD_ELF, 'bad-elf', this.bootError);
    if (this.image === null && this.linuxBoot === null) throw new VmmError('run() before boot()');
    let status: string;
    let report: string | undefined;
    try {
      const r = this.sched.run({ maxSteps: Number.MAX_SAFE_INTEGER, until: () => this.tornDown || pause() });
      if (r.status === 'until' && !this.tornDown) return null;
      status = r.status;
      report = r.report;
    } catch (e) {
      this.kernel.shutdown();
      // (TS narrowed result to null above; a thread may have set it since.)
      const prev = this.result as VmmResult | null;
      if (prev !== null) {
        // The guest's result stands; what broke afterwards is still worth a line.
        const note = `teardown failed: ${(e as Error).message}`;
        this.result = { ...prev, message: prev.message !== undefined ? `${prev.message}\n${note}` : note };
        return this.result;
      }
      const msg = e instanceof SchedBug ? `kernel bug: ${e.message}` : `internal error: ${describeInternalError(e)}`;
      return this.finish(EXIT_INTERNAL, 'internal-error', msg);
    }
    this.kernel.shutdown();
    if (this.result !== null) return this.result;
    if (this.proc.killed || this.kernel.oomReports.length > 0) return this.oomResult();
    if (status === 'deadlock' && this.vcpu?.state === 'halted') {
      return this.finish(EXIT_IDLE, 'idle', `hart waits in wfi for an interrupt that nothing will raise (no SBI timer armed) at pc=${hex(this.vcpu.hart.pc)}`);
    }
    return this.finish(EXIT_INTERNAL, 'internal-error', `the machine stopped without a guest exit (scheduler: ${status}${report ? `\n${report}` : ''})`);
  }

  /** Console input, offered to both consoles (SBI getchar/DBCN read and the UART); a guest uses one. */
  pushInput(bytes: Iterable<number>): void {
    const arr = [...bytes];
    for (const b of arr) this.input.push(b & 0xff);
    this.uart.pushInput(arr);
  }

  stats(): VmmStats {
    return {
      guest: kvmStatsRecord(this.vm),
      host: this.kernel.stats(),
      instructions: this.hart?.instret ?? 0,
      ticks: this.sched.now,
      sbiCalls: this.sbiCalls,
      ...(this.balloon !== null ? { balloon: this.balloon.stats() } : {}),
    };
  }

  /** The vCPU's state; a running vCPU that KVM halted in wfi counts as idle. */
  get state(): VcpuRunState {
    if (this.vcpuState === 'running' && this.vcpu?.state === 'halted') return 'idle';
    return this.vcpuState;
  }

  dump(): string {
    const lines = [
      `vmm: protocol ${this.config.protocol}, guest RAM ${this.config.guestMemBytes >> 10} KiB @ 0x80000000 (hva 0x${(this.ramHva >>> 0).toString(16)}), ` +
        `host RAM ${this.config.hostMemBytes >> 10} KiB, vcpu0 ${this.state}`,
      `sbi: ${this.sbiCalls} calls, timer ${this.stimecmp === Infinity ? 'off' : `at ${this.stimecmp}`}`,
      this.uart.dump(),
      this.plic.dump(),
      ...(this.balloonTransport !== null ? [this.balloonTransport.dump()] : []),
    ];
    if (this.hart) lines.push(this.hart.dump());
    if (this.vm) lines.push(this.vm.dump());
    lines.push(this.kernel.dumpText());
    lines.push(this.sched.dump());
    return lines.join('\n');
  }

  // ---- threads -------------------------------------------------------------------------

  private *bootThread(load: BootLoad): Task {
    const k = this.kernel;
    const mm = this.proc.mm;
    const hva = yield* k.mmap(mm, this.config.guestMemBytes, PROT_READ | PROT_WRITE);
    if (hva < 0) {
      this.fail(EXIT_INTERNAL, 'internal-error', `mmap of ${this.config.guestMemBytes} bytes of guest RAM failed: errno ${-hva}`);
      return yield* this.teardown();
    }
    this.ramHva = hva;
    const vm = yield* Vm.create(secondaryMmuHost(k), this.proc, {
      protocol: this.config.protocol,
      events: this.events,
      ...(this.config.nMaxMmuPages !== undefined ? { nMaxMmuPages: this.config.nMaxMmuPages } : {}),
    });
    this.vm = vm;
    yield* vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: GUEST_RAM_BASE, memorySize: this.config.guestMemBytes, userspaceAddr: hva });

    // Loading goes through the VMM's own mapping (copy_to_user), so the image's
    // pages are faulted in and charged like any other guest memory.
    for (const s of load.segments) {
      const r = yield* k.accessWrite(mm, hva + (s.gpa - GUEST_RAM_BASE), s.data);
      if (r !== 0) {
        if (this.proc.killed) this.oomFail();
        else this.fail(EXIT_INTERNAL, 'internal-error', `loading the image at 0x${s.gpa.toString(16)} failed: errno ${-r}`);
        return yield* this.teardown();
      }
    }

    // The image is in guest RAM before the vCPU (and its translation cache) exists,
    // so nothing compiled can predate these bytes.
    const vcpu = vm.createVcpu(0, { bus: this.bus, ...(this.config.jit !== undefined ? { jit: this.config.jit } : {}) });
    const hart = vcpu.hart;
    this.hart = hart;
    resetHart(hart, load.entry, load.a1);
    this.vcpu = vcpu;
    this.sched.spawn('vcpu0', () => this.vcpuThreadBody(vcpu));
    this.sched.spawn('sbi-timer', () => this.timerThreadBody(vcpu), { daemon: true });
  }

  private *vcpuThreadBody(vcpu: Vcpu): Task {
    yield* this.vcpuLoop(vcpu);
    yield* this.teardown();
  }

  /**
   * Like a VMM process exiting: KVM_DESTROY_VM, then exit_mmap of the VMM's memory.
   * After this every pin, reference and frame the guest held must be back with the
   * host, which is what a checker audits.
   */
  private *teardown(): Task {
    // The device threads reach guest memory through the VMM's mapping: stop them first.
    if (this.balloon !== null) yield* this.balloon.quiesce();
    if (this.ramHva >= 0 && !this.proc.killed) this.config.beforeTeardown?.(this);
    if (this.vm !== null) yield* this.vm.destroy();
    yield* this.kernel.exitProcess(this.proc);
    // Let reclaim that was mid-flight finish, so the host is quiescent for audits.
    yield* this.kernel.settle();
    this.tornDown = true;
  }

  /** The KVM_RUN loop: run, handle the exit, repeat, until the guest ends. */
  private *vcpuLoop(vcpu: Vcpu): Task {
    const hart = vcpu.hart;
    const quantum = this.config.quantum ?? DEFAULT_QUANTUM;
    const maxInsns = this.config.maxInsns ?? Infinity;
    let stormInstret = -1;
    let stormBegun = 0;
    const gate = this.config.gate;
    this.setState('running');
    for (;;) {
      const gateMax = gate === undefined ? Infinity : yield* gate.enter(hart);
      this.pollTimer(hart);
      if (hart.instret !== stormInstret) {
        stormInstret = hart.instret;
        stormBegun = vcpu.instructions;
      } else if (vcpu.instructions - stormBegun >= TRAP_STORM_INSNS) {
        return this.fail(EXIT_INTERNAL, 'guest-fault',
          `the guest keeps trapping and retires no instructions (${vcpu.instructions - stormBegun} begun): ` +
          `scause=${hex(hart.scause)} sepc=${hex(hart.sepc)} stval=${hex(hart.stval)} stvec=${hex(hart.stvec)} pc=${hex(hart.pc)}`);
      }
      // Instructions begun, trapping ones included, as the bare runner counts them:
      // a guest stuck re-taking a fault still reaches the limit.
      const left = maxInsns - vcpu.instructions;
      if (left <= 0) {
        return this.fail(EXIT_LIMIT, 'limit', `instruction limit reached (${maxInsns} instructions) at pc=${hex(hart.pc)}`);
      }
      // Cut the run at the timer deadline so STIP is raised on time.
      const slice = Math.max(1, Math.min(MAX_RUN_SLICE, left, this.ticksToDeadline(hart), gateMax));
      const begun = vcpu.instructions;
      const exit: VcpuExit = yield* vcpu.run({ quantum, maxInsns: slice });
      gate?.leave(vcpu.instructions - begun);
      if (this.proc.killed) return this.oomFail();
      switch (exit.reason) {
        case 'sbi':
          if (yield* this.handleSbi(vcpu)) return;
          break;
        case 'budget':
        case 'mmio':
        case 'debug':
          break;
        case 'shutdown':
          return this.fail(0, 'shutdown', undefined);
        case 'internal-error':
          if (this.kernel.oomReports.length > 0) return this.oomFail();
          return this.fail(EXIT_INTERNAL, 'internal-error', `KVM internal error: ${exit.message} (pc=${hex(hart.pc)}, priv ${'US?M'[hart.priv]})`);
        default:
          // An exit this VMM does not know yet: stop rather than guess.
          return this.fail(EXIT_INTERNAL, 'internal-error', `unhandled vCPU exit '${(exit as { reason: string }).reason}' at pc=${hex(hart.pc)}`);
      }
    }
  }

  /**
   * The SBI timer's other half: wakes a vCPU halted in wfi at the deadline. While
   * the vCPU runs, its own loop raises STIP (its runs end at the deadline).
   */
  private *timerThreadBody(vcpu: Vcpu): Task {
    const hart = vcpu.hart;
    for (;;) {
      yield* this.timerWait.waitEvent(() => this.stimecmp !== Infinity || this.result !== null);
      if (this.result !== null) return;
      const d = this.ticksToDeadline(hart);
      // Simulated time runs at least as fast as guest instructions, so this wakes
      // at or before the deadline; the host (kswapd, pressure) runs meanwhile.
      if (d !== Infinity) yield* sleepTicks(Math.min(d, 1 << 30), 'sbi timer');
      // NO_HZ idle: nothing moved a halted hart's clock while we slept, so its
      // time jumps to the deadline now.
      if (vcpu.state === 'halted') {
        const left = this.ticksToDeadline(hart);
        if (left !== Infinity) hart.ticks += left;
      }
      if (this.pollTimer(hart)) vcpu.kick();
    }
  }

  /** Returns true when the call ended the VM. */
  private *handleSbi(vcpu: Vcpu): Task<boolean> {
    const hart = vcpu.hart;
    this.sbiCalls++;
    const res: SbiResult = yield* handleSbiCall(this.sbiContext(hart), hart.regs);
    if (this.events.listenerCount('vmm') > 0) this.events.emit('vmm', { type: 'sbi', call: describeSbiCall(hart.regs, res) } satisfies VmmEvent);
    if (this.proc.killed) {
      this.oomFail();
      return true;
    }
    switch (res.kind) {
      case 'return':
        hart.regs[REG_A0] = res.error;
        hart.regs[REG_A1] = res.value;
        hart.pc = (hart.pc + 4) | 0;
        return false;
      case 'legacy-return':
        hart.regs[REG_A0] = res.a0;
        hart.pc = (hart.pc + 4) | 0;
        return false;
      case 'reset':
        this.fail(res.exitCode, res.resetType === 0 ? 'shutdown' : 'reboot',
          res.exitCode === 0 ? undefined : `guest requested ${res.resetType === 0 ? 'shutdown' : 'reboot'} with reset reason 0x${res.resetReason.toString(16)} (exit status ${res.exitCode})`);
        return true;
      case 'hart-stop':
        this.fail(0, 'hart-stop', undefined);
        return true;
      case 'suspend': {
        hart.regs[REG_A0] = SBI_SUCCESS;
        hart.regs[REG_A1] = 0;
        hart.pc = (hart.pc + 4) | 0;
        // Retentive suspend resumes on any pending interrupt, enabled or not by SIE.
        return !(yield* this.idle(hart));
      }
    }
  }

  /**
   * HSM retentive suspend: the hart waits for any pending interrupt (SIE does not
   * matter). The only source is the SBI timer, so time jumps to its deadline.
   * Returns false when nothing can ever wake it.
   */
  private *idle(hart: Hart): Task<boolean> {
    this.pollTimer(hart);
    if ((hart.mip & hart.mie) !== 0) return true;
    if (this.stimecmp !== Infinity && (hart.mie & MIP_STIP) !== 0) {
      this.setState('idle');
      const d = this.ticksToDeadline(hart);
      hart.ticks += d;
      yield* sleepTicks(Math.min(d, 1 << 30), 'hsm suspend');
      this.pollTimer(hart);
      this.setState('running');
      return true;
    }
    this.fail(EXIT_IDLE, 'idle', `hart suspended with no interrupt that could wake it (SBI timer off or STIE clear) at pc=${hex(hart.pc)}`);
    return false;
  }

  private *pressureThread(bytes: number, periodTicks: number): Task {
    const k = this.kernel;
    const p = k.createProcess('pressure');
    const len = Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
    const hva = yield* k.mmap(p.mm, len);
    if (hva < 0) return;
    const page = new Uint8Array(PAGE_SIZE);
    // Stops with the guest, and when the guest can never wake (or it would keep the clock going forever).
    const guestStuck = () => this.vcpu?.state === 'halted' && this.stimecmp === Infinity;
    for (let i = 0; !p.killed && this.result === null && !guestStuck(); i = (i + 1) % (len / PAGE_SIZE)) {
      page[0] = i & 0xff;
      const r = yield* k.accessWrite(p.mm, hva + i * PAGE_SIZE, page);
      if (r !== 0) return;
      yield* sleepTicks(periodTicks, 'pressure');
    }
  }

  private *balloonSchedule(steps: readonly BalloonStep[]): Task {
    for (const step of [...steps].sort((a, b) => a.atTicks - b.atTicks)) {
      const wait = step.atTicks - this.sched.now;
      if (wait > 0) yield* sleepTicks(wait, 'balloon schedule');
      if (this.result !== null) return;
      this.balloon?.setTarget(step.targetPages);
    }
  }

  /**
   * Guest RAM as the SBI and the devices reach it: the VMM's own mapping, through
   * the host (it may fault and sleep). A write is a DMA write to the vCPU: it
   * invalidates the compiled code of what it wrote, as a store by the guest does.
   */
  guestMemory(): GuestMemory {
    const k = this.kernel;
    const mm = this.proc.mm;
    const hvaOf = (gpa: number) => this.ramHva + (gpa - GUEST_RAM_BASE);
    const written = (gpa: number, len: number) => this.invalidateCode(gpa, len);
    return {
      isRam: (gpa, len) => this.isGuestRam(gpa, len),
      *read(gpa, dst) {
        return (yield* k.accessRead(mm, hvaOf(gpa), dst)) === 0;
      },
      *write(gpa, src) {
        const ok = (yield* k.accessWrite(mm, hvaOf(gpa), src)) === 0;
        written(gpa, src.length);
        return ok;
      },
    };
  }

  /** After a write through our mapping: the vCPU's compiled code of those pages goes (KVM knows its frames). */
  private invalidateCode(gpa: number, len: number): void {
    if (!this.debug.noWriteCodeInvalidate) this.vm?.invalidateGuestCode(gpa, len);
  }

  private isGuestRam(gpa: number, len: number): boolean {
    return this.ramHva >= 0 && Number.isInteger(gpa) && len >= 0 && gpa >= GUEST_RAM_BASE && gpa + len <= GUEST_RAM_BASE + this.config.guestMemBytes;
  }

  // ---- SBI plumbing ------------------------------------------------------------------------

  private sbiCtx: SbiContext | null = null;

  private sbiContext(hart: Hart): SbiContext {
    if (this.sbiCtx !== null) return this.sbiCtx;
    // The SBI reaches guest RAM the way the VMM process does (copy_from_user on
    // its own mapping), so a page the host swapped out is swapped back in here.
    const mem = this.guestMemory();
    this.sbiCtx = {
      hartId: hart.mhartid,
      console: {
        write: (bytes) => {
          for (const b of bytes) this.emit(b);
        },
        read: (max) => Uint8Array.from(this.input.splice(0, max)),
      },
      setTimer: (stime) => {
        // Deadlines past 2^53 are "never" for a clock that counts instructions.
        this.stimecmp = stime >= 2 ** 53 ? Infinity : stime;
        hart.setInterruptPending(IRQ_STI, false);
        this.pollTimer(hart);
        this.timerWait.wakeAll();
      },
      sendIpi: () => hart.setInterruptPending(IRQ_SSI, true),
      // As the sfence.vma instruction does it: the hart's own TLB, then KVM's hook.
      sfenceVma: (gva, asid) => {
        if (gva === null) hart.flushTlb();
        else hart.flushTlbPage(gva);
        this.vcpu?.translator.sfenceVma(hart, gva, asid);
      },
      isGuestRam: (gpa, len) => mem.isRam(gpa, len),
      *readGuest(gpa, dst) {
        return (yield* mem.read(gpa, dst)) ? SBI_SUCCESS : SBI_ERR_FAILED;
      },
      *writeGuest(gpa, src) {
        return (yield* mem.write(gpa, src)) ? SBI_SUCCESS : SBI_ERR_FAILED;
      },
    };
    return this.sbiCtx;
  }

  // ---- timer ---------------------------------------------------------------------------------

  /** Raises STIP once the guest's time reached the SBI deadline (one shot: STIP stays until the next set_timer). */
  private pollTimer(hart: Hart): boolean {
    if (this.stimecmp === Infinity || hart.getMtime() < this.stimecmp) return false;
    const deadline = this.stimecmp;
    this.stimecmp = Infinity;
    hart.setInterruptPending(IRQ_STI, true);
    if (this.events.listenerCount('vmm') > 0) this.events.emit('vmm', { type: 'timer', deadline, fired: true } satisfies VmmEvent);
    return true;
  }

  /** Instructions until time reaches the deadline (Infinity when disarmed or already due). */
  private ticksToDeadline(hart: Hart): number {
    if (this.stimecmp === Infinity) return Infinity;
    const need = (this.stimecmp - hart.getMtime()) * hart.mtimeDivisor;
    return need <= 0 ? Infinity : Math.ceil(need);
  }

  // ---- ends ----------------------------------------------------------------------------------

  private setState(to: VcpuRunState): void {
    const from = this.vcpuState;
    if (from === to) return;
    this.vcpuState = to;
    if (this.events.listenerCount('vmm') > 0) this.events.emit('vmm', { type: 'vcpu-state', from, to } satisfies VmmEvent);
  }

  private fail(exitCode: number, reason: VmmExitReason, message: string | undefined): void {
    this.setState('exited');
    this.finish(exitCode, reason, message);
  }

  private oomFail(): void {
    this.setState('exited');
    this.oomResult();
  }

  private oomResult(): VmmResult {
    const reports = this.kernel.oomReports.map((r) => r.report).join('\n');
    return this.finish(EXIT_OOM, 'oom', `the host OOM killer killed the VMM process (guest RAM could not be reclaimed)${reports ? `:\n${reports}` : ''}`);
  }

  private finish(exitCode: number, reason: VmmExitReason, message: string | undefined): VmmResult {
    if (this.result !== null) return this.result;
    this.flushOutput();
    this.result = {
      exitCode,
      reason,
      ...(message !== undefined ? { message } : {}),
      output: this.out.text(),
      ...this.out.droppedField(),
      stats: this.stats(),
    };
    return this.result;
  }

  // ---- devices and console -------------------------------------------------------------------

  private pending: number[] = [];

  private emit(b: number): void {
    this.out.push(b);
    if (this.config.onOutput) {
      this.pending.push(b);
      if (b === 0x0a || this.pending.length >= 256) this.flushOutput();
    }
  }

  private flushOutput(): void {
    if (this.pending.length === 0 || !this.config.onOutput) return;
    this.config.onOutput(Uint8Array.from(this.pending));
    this.pending = [];
  }
}

/** The boot state an SBI implementation hands an S-mode kernel (see the header). */
export function resetHart(hart: Hart, entry: number, a1 = 0): void {
  hart.regs.fill(0);
  hart.regs[REG_A0] = hart.mhartid;
  hart.regs[REG_A1] = a1 | 0;
  hart.pc = entry | 0;
  hart.priv = PRIV_S;
  hart.writeCsr(CSR_MEDELEG, MEDELEG_MASK & ~(1 << CAUSE_SUPERVISOR_ECALL));
  hart.writeCsr(CSR_MIDELEG, MIDELEG_MASK);
  hart.writeCsr(CSR_MCOUNTEREN, 0x7);
  hart.flushTlb();
}

/** One line: the message and where it was thrown (the first stack frame), for a bug report. */
export function describeInternalError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const frame = e.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))?.trim();
  return `${e.name}: ${e.message}${frame !== undefined ? ` (${frame})` : ''}`;
}

function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

/** One-shot: boot the image and run it to the end (a bad image gives a 'bad-elf' result). */
export function bootAndRun(elf: Uint8Array, config: VmmConfig): VmmResult {
  const vmm = new Vmm(config);
  vmm.boot(elf);
  return vmm.run();
}

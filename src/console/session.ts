// One debug-console session: a Vmm booted stopped before its first instruction
// (QEMU -S), the gate that stops and steps its vCPU, and the stop conditions the
// console can arm (breakpoints in the gate; event stops and page watches here).
//
// States, between commands:
//   parked   the vCPU thread sleeps in the gate at an instruction boundary: pc is
//            the next instruction, exactly (after boot, step, a breakpoint)
//   paused   the scheduler stopped between two steps with the vCPU elsewhere (mid
//            run, in wfi): after Ctrl-C, an event stop or a watch hit. Consistent
//            (no critical section is open across a step boundary), not exact; a
//            `step N` first runs on to the next instruction boundary.
//   ended    the machine is over (guest exit, limit, OOM): the result stands
// Simulated time moves only inside run commands (and acting commands such as
// `reclaim`, which run their own thread); inspection never moves it.

import { EventEmitter } from 'eventemitter3';
import type { Hart } from '../hart/hart.js';
import { PRIV_M } from '../hart/csr.js';
import { peekGuestPage, peekGuestWord, rmapSptes, walkGuestUnlocked } from '../kvm/inspect.js';
import type { Vm } from '../kvm/vm.js';
import { hostDebugView, type HostDebugView } from '../host/debug-view.js';
import { pteDirty, pteWrite, pteYoung } from '../host/pte.js';
import { spteToString } from '../kvm/mmu/spte.js';
import { Vmm, type VmmConfig, type VmmResult } from '../vmm/vmm.js';
import type { Task } from '../sched/index.js';
import { hostTracepoint } from '../torture/trace.js';
import { DebugGate } from './gate.js';

/** How long one synchronous slice of a run may take before the console looks at its input (ms). */
const SLICE_MS = 50;

export type RunEnd =
  | { readonly kind: 'parked' }
  | { readonly kind: 'paused'; readonly why: string }
  | { readonly kind: 'ended'; readonly result: VmmResult };

export interface SessionOptions {
  config: Omit<VmmConfig, 'onOutput' | 'gate' | 'events'>;
  onOutput(bytes: Uint8Array): void;
}

export interface PageWatch {
  readonly id: number;
  readonly gpa: number;
  last: string;
}

export class ConsoleError extends Error {
  override readonly name = 'ConsoleError';
}

export class Session {
  readonly vmm: Vmm;
  /** The console's view of the host behind the VM: the Vm holds only the driver interface. */
  readonly host: HostDebugView;
  readonly gate = new DebugGate();
  readonly events = new EventEmitter();
  readonly bootError: string | null;
  /** Set by Ctrl-C (or a test) while a run command is in progress. */
  private interrupt = false;
  /** An armed event stop or a watch fired: the reason, shown when the run stops. */
  private hit: string | null = null;
  /** `stop on EVENT`: trace event types (host/kvm channel) that stop a run. */
  private readonly stopOn = new Set<string>();
  readonly watches: PageWatch[] = [];
  private nextWatchId = 1;
  /** `trace on`: every host/kvm event is passed here while a run is in progress. */
  private traceSink: ((line: string) => void) | null = null;
  private traceTypes: Set<string> | null = null;
  /** `pressure SIZE`: the console's own memory hog, stopped by `pressure off`. */
  pressure: { stop: boolean; bytes: number } | null = null;
  private readonly listeners = (['host', 'kvm'] as const).map((channel) => ({
    channel,
    fn: (ev: { type: string }) => this.onEvent(channel, ev),
  }));
  private paused = false;

  /** boot: an ELF, or a function that boots the Vmm another way (vmm.bootLinux) and returns its error. */
  constructor(boot: Uint8Array | ((vmm: Vmm) => string | null), opts: SessionOptions) {
    this.vmm = new Vmm({ ...opts.config, onOutput: opts.onOutput, gate: this.gate, events: this.events });
    this.host = hostDebugView(this.vmm.kernel);
    // Breakpoint pages as KVM guest-debug exits: the guest runs at full speed off them.
    this.gate.setDebugPages = (pages, skipPage) => this.vmm.vcpu?.setGuestDebug(pages, skipPage);
    this.bootError = boot instanceof Uint8Array ? this.vmm.boot(boot) : boot(this.vmm);
    // Boot (mmap, memslot, load) runs until the vCPU thread parks before its first instruction.
    if (this.bootError === null) this.vmm.resume(() => this.gate.parked);
  }

  // ---- state ---------------------------------------------------------------------------

  get ended(): VmmResult | null {
    return this.bootError !== null ? this.vmm.run() : (this.vmm.resume(() => true) ?? null);
  }

  get isParked(): boolean {
    return this.gate.parked;
  }

  get isPaused(): boolean {
    return this.paused && !this.gate.parked;
  }

  /** The live VM and hart, or a ConsoleError naming why there is none. */
  live(): { vm: Vm; hart: Hart } {
    const r = this.ended;
    if (r !== null) throw new ConsoleError(`the machine has ended (${r.reason}, exit status ${r.exitCode}): nothing left to inspect`);
    const vm = this.vmm.vm;
    const vcpu = this.vmm.vcpu;
    if (vm === null || vcpu === null) throw new ConsoleError('the machine has not booted');
    return { vm, hart: vcpu.hart };
  }

  // ---- running -------------------------------------------------------------------------

  /** Ctrl-C: the run in progress stops at the next scheduler step. */
  requestInterrupt(): void {
    this.interrupt = true;
  }

  /**
   * Runs the guest for n instructions begun (Infinity: until a breakpoint, an
   * armed stop, Ctrl-C or the end). Yields to the event loop every SLICE_MS so
   * Ctrl-C is heard.
   */
  async run(n: number, untilTicks = Infinity): Promise<RunEnd> {
    if (n !== Infinity && !this.gate.parked) {
      const r = await this.drive(() => false, true);
      if (r.kind === 'ended') return r;
    }
    this.interrupt = false;
    this.hit = null;
    this.gate.resume(n);
    this.paused = false;
    const sched = this.vmm.sched;
    const end = await this.drive(() => this.interrupt || this.hit !== null || this.checkWatches() || this.timeUp(sched.now, untilTicks), false);
    // Ctrl-C parks at the next instruction boundary (within one gate chunk) unless the
    // vCPU waits in wfi; an event stop or a watch shows the moment it fired instead.
    if (end.kind === 'paused' && end.why === 'interrupted' && this.vmm.state === 'running') {
      const r = await this.drive(() => false, true);
      if (r.kind === 'parked') this.gate.lastStop = { kind: 'interrupt' };
      return r;
    }
    return end;
  }

  /** Runs until the vCPU parks (or stop() says so, or the machine ends). */
  private async drive(stop: () => boolean, toBoundary: boolean): Promise<RunEnd> {
    if (toBoundary) this.gate.requestStop();
    for (;;) {
      const deadline = Date.now() + SLICE_MS;
      let steps = 0;
      let sliceOver = false;
      const r = this.vmm.resume(() => {
        if (this.gate.parked || stop()) return true;
        if ((++steps & 255) === 0 && Date.now() >= deadline) return (sliceOver = true);
        return false;
      });
      if (r !== null) return { kind: 'ended', result: r };
      if (this.gate.parked) {
        this.paused = false;
        return { kind: 'parked' };
      }
      if (!sliceOver) {
        this.paused = true;
        const why = this.interrupt ? 'interrupted' : (this.hit ?? 'stopped');
        this.interrupt = false;
        this.hit = null;
        this.gate.requestStop();
        return { kind: 'paused', why };
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Runs an acting command's thread (reclaim, aging, a swap-out) to its end with
   * the vCPU held where it is: other threads (kswapd, pressure) run meanwhile, as
   * they would beside such a thread in a real kernel.
   */
  act(name: string, body: () => Task): void {
    this.live();
    let done = false;
    this.vmm.sched.spawn(name, function* () {
      yield* body();
      done = true;
    });
    this.vmm.resume(() => done);
  }

  // ---- stops on events and watches ------------------------------------------------------

  private timeUp(now: number, until: number): boolean {
    if (now < until) return false;
    this.hit = `simulated time reached ${until} (now ${now})`;
    return true;
  }

  private onEvent(channel: string, ev: { type: string }): void {
    // Either name selects an event: ours (swap-write) or the kernel tracepoint's (mm_vmscan_write_folio).
    const tp = tracepointName(channel, ev.type);
    const named = (set: Set<string>) => set.has(ev.type) || set.has(tp);
    if (this.traceSink !== null && (this.traceTypes === null || named(this.traceTypes))) this.traceSink(`${tp}: ${formatEvent(ev)}`);
    if (this.hit === null && named(this.stopOn)) this.hit = `stopped on ${tp} (${formatEvent(ev)})`;
  }

  /** `trace on [TYPES]`: every host/kvm event (or those types) goes to sink; null turns it off. */
  setTrace(sink: ((line: string) => void) | null, types: readonly string[] | null = null): void {
    this.traceSink = sink;
    this.traceTypes = types === null || types.length === 0 ? null : new Set(types);
    this.syncListeners();
  }

  get tracing(): boolean {
    return this.traceSink !== null;
  }

  setStopOn(types: readonly string[] | null): void {
    if (types === null) this.stopOn.clear();
    else for (const t of types) this.stopOn.add(t);
    this.syncListeners();
  }

  /** Listeners only while something wants events: with none, tracing costs the simulation nothing. */
  private syncListeners(): void {
    const want = this.traceSink !== null || this.stopOn.size > 0;
    for (const l of this.listeners) {
      this.events.off(l.channel, l.fn);
      if (want) this.events.on(l.channel, l.fn);
    }
  }

  addWatch(gpa: number): PageWatch {
    const w: PageWatch = { id: this.nextWatchId++, gpa, last: this.pageState(gpa) };
    this.watches.push(w);
    return w;
  }

  private checkWatches(): boolean {
    if (this.watches.length === 0) return false;
    for (const w of this.watches) {
      const now = this.pageState(w.gpa);
      if (now !== w.last) {
        this.hit = `watch ${w.id} (gpa 0x${w.gpa.toString(16)}): ${w.last} -> ${now}`;
        w.last = now;
        return true;
      }
    }
    return false;
  }

  /** Host pte (or swap entry) and every spte of the page holding gpa, as one line. */
  pageState(gpa: number): string {
    const vm = this.vmm.vm;
    if (vm === null || vm.destroyed) return 'no VM';
    const gfn = Math.floor(gpa / 4096);
    const slot = vm.memslots.gfnToMemslot(gfn);
    if (slot === undefined) return 'no memslot';
    const hva = slot.userspaceAddr + (gfn - slot.baseGfn) * 4096;
    const w = this.host.userPageWhere(vm.mm, hva);
    const host = w.kind === 'present' ? `host pte pfn 0x${w.pfn.toString(16)} ${pteWrite(w.pte) ? 'W' : '-'}${pteYoung(w.pte) ? 'A' : '-'}${pteDirty(w.pte) ? 'D' : '-'}`
      : w.kind === 'swapcache' ? `swap slot ${w.slot} (swap cache pfn 0x${w.pfn.toString(16)})`
        : w.kind === 'swap' ? `swap slot ${w.slot}` : 'host pte none';
    const sptes = rmapSptes(vm, gfn).map((p) => spteToString(vm.sps.sptes[p]!));
    return `${host}; sptes: ${sptes.length === 0 ? 'none' : sptes.join(', ')}`;
  }

  // ---- guest memory ----------------------------------------------------------------------

  /** gva -> gpa with the hart's current translation (paging off in M-mode or with satp bare). */
  gvaToGpa(gva: number): number {
    const { vm, hart } = this.live();
    if (hart.priv === PRIV_M || hart.satp >= 0) return gva >>> 0;
    const w = walkGuestUnlocked(vm, this.host, hart.satp, gva >>> 0);
    if (w.gpa === null) throw new ConsoleError(`cannot translate gva 0x${(gva >>> 0).toString(16)}: ${w.why}`);
    return w.gpa;
  }

  /** len bytes of guest memory at addr (virtual: through the guest's tables), page by page. */
  readGuest(addr: number, len: number, virtual: boolean): Uint8Array {
    const { vm } = this.live();
    const out = new Uint8Array(len);
    const page = new Uint8Array(4096);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      if (a >= (virtual ? 2 ** 32 : 2 ** 34)) throw new ConsoleError(`address 0x${a.toString(16)} is past the end of the ${virtual ? 'virtual' : 'physical'} address space`);
      const gpa = virtual ? this.gvaToGpa(a) : a;
      if (peekGuestPage(vm, this.host, gpa, page) === null) throw new ConsoleError(`gpa 0x${gpa.toString(16)} is outside every memslot`);
      const off = gpa % 4096;
      const n = Math.min(len - done, 4096 - off);
      out.set(page.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** The instruction word at the hart's pc, or null when pc cannot be read. */
  insnAtPc(): number | null {
    try {
      const { vm, hart } = this.live();
      return peekGuestWord(vm, this.host, this.gvaToGpa(hart.pc));
    } catch {
      return null;
    }
  }
}

/** The same names torture/trace.ts gives KVM's events (its table is not exported; export it and use it here). */
const KVM_TRACEPOINTS: Record<string, string> = {
  fault: 'kvm_mmu_page_fault',
  invalidate: 'kvm_unmap_gfn_range',
  'invalidate-page': 'kvm_unmap_hva',
  age: 'kvm_age_gfn',
  release: 'kvm_mmu_notifier_release',
  memslot: 'kvm_set_user_memory_region',
};

/** A host or kvm event's kernel tracepoint name, as `replay` prints it. */
export function tracepointName(channel: string, type: string): string {
  if (channel === 'host') return hostTracepoint(type);
  return KVM_TRACEPOINTS[type] ?? `kvm_${type.replace(/-/g, '_')}`;
}

/** "type k=v k=v" for a trace line: addresses and frame numbers in hex, as the kernel's tracepoints print them. */
export function formatEvent(ev: { type: string }): string {
  const parts = Object.entries(ev as Record<string, unknown>)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k}=${typeof v === 'number' && /gva|gpa|hva|gfn|pfn|addr|start|end/i.test(k) ? `0x${v.toString(16)}` : String(v)}`);
  return [ev.type, ...parts].join(' ');
}

// The machine every torture scenario runs on, in the style of the KVM selftests
// (and of test/kvm/vm-harness.ts, whose createVm it follows): a host kernel on the
// run's scheduler, a VMM process with guest RAM mmapped, a VM with one memslot, a
// vCPU in S-mode with paging off, and a "ucall" MMIO page through which the guest
// reports DONE or FAIL.

import type { EventEmitter } from 'eventemitter3';
import { CSR_MEDELEG, PRIV_S } from '../hart/csr.js';
import type { MmioBus } from '../hart/translator.js';
import { HostKernel } from '../host/kernel.js';
import type { HostKernelOptions } from '../host/kernel.js';
import type { Process } from '../host/mm.js';
import { ptePfn, ptePresent } from '../host/pte.js';
import { secondaryMmuHost } from '../host/secondary-mmu.js';
import type { Vcpu, VcpuExit } from '../kvm/vcpu.js';
import { Vm } from '../kvm/vm.js';
import type { KvmProtocol } from '../kvm/vm.js';
import { runSync } from '../sched/index.js';
import type { Scheduler, Task } from '../sched/index.js';
import { Prog, jal, li, sw } from '../hart/asm.js';

export const KiB = 1024;
export const PAGE = 4096;
/** Guest RAM starts here (paging off: gva = gpa). */
export const RAM_GPA = 0x80000000;
export const UCALL_DONE = 0x10000000;
export const UCALL_FAIL = 0x10000004;
/** Exit to the host (run() returns 'mmio'); the guest continues when run again. */
export const UCALL_SYNC = 0x1000000c;

export interface TortureVmOptions {
  protocol: KvmProtocol;
  sched: Scheduler;
  /** Host RAM (default 256 KiB). */
  hostBytes?: number;
  /** Guest RAM (default 128 KiB). */
  guestBytes?: number;
  nMaxMmuPages?: number;
  events?: EventEmitter;
  host?: Partial<HostKernelOptions>;
  /** Any other MMIO store: true when the scenario takes it (the vCPU then exits 'mmio'). */
  mmio?: (gpa: number, value: number) => boolean;
}

export interface TortureVm {
  sched: Scheduler;
  k: HostKernel;
  proc: Process;
  vm: Vm;
  vcpu: Vcpu;
  ramHva: number;
  guestBytes: number;
  ucall: { done: boolean; fail: number | null; syncs: number };
}

export function createTortureVm(opts: TortureVmOptions): TortureVm {
  const sched = opts.sched;
  const era = opts.protocol === 'v7' ? '2008' : 'modern';
  const hostBytes = opts.hostBytes ?? 256 * KiB;
  const guestBytes = opts.guestBytes ?? 128 * KiB;
  const k = new HostKernel({
    ramBytes: hostBytes,
    swapBytes: 4 * Math.max(hostBytes, guestBytes),
    swapReadLatency: 5,
    swapWriteLatency: 5,
    era,
    ...(opts.events ? { events: opts.events } : {}),
    ...opts.host,
    sched,
  });
  const proc = k.createProcess('vmm', { era });
  const vm = runSync(Vm.create(secondaryMmuHost(k), proc, { protocol: opts.protocol, nMaxMmuPages: opts.nMaxMmuPages ?? 16, ...(opts.events ? { events: opts.events } : {}) }));
  const ramHva = runSync(k.mmap(proc.mm, guestBytes));
  runSync(vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: RAM_GPA, memorySize: guestBytes, userspaceAddr: ramHva }));
  const ucall: TortureVm['ucall'] = { done: false, fail: null, syncs: 0 };
  let vcpu: Vcpu | null = null;
  const bus: MmioBus = {
    read: () => 0,
    write: (pa, _w, value) => {
      if (pa === UCALL_DONE) ucall.done = true;
      else if (pa === UCALL_FAIL) ucall.fail = value;
      else if (pa === UCALL_SYNC) ucall.syncs++;
      else if (!(opts.mmio?.(pa, value) ?? false)) {
        bus.fault = true;
        return;
      }
      vcpu!.requestExit('mmio');
    },
  };
  vcpu = vm.createVcpu(0, { bus });
  vcpu.hart.priv = PRIV_S;
  // Everything the guest kernel handles (page faults, illegal instructions) is its own.
  vcpu.hart.writeCsr(CSR_MEDELEG, 0xb1ff);
  vcpu.hart.pc = RAM_GPA | 0;
  return { sched, k, proc, vm, vcpu, ramHva, guestBytes, ucall };
}

export function hvaOf(t: TortureVm, gpa: number): number {
  return t.ramHva + (gpa - RAM_GPA);
}

/** The pfn the VMM's host pte maps for gpa, or -1. */
export function hostPfn(t: TortureVm, gpa: number): number {
  const pte = t.proc.mm.pt.get(hvaOf(t, gpa) >>> 12);
  return ptePresent(pte) ? ptePfn(pte) : -1;
}

/** Writes guest-physical memory through the VMM's mapping (host faults allowed). */
export function* writeGuest(t: TortureVm, gpa: number, words: ArrayLike<number>): Task<void> {
  const buf = new Uint8Array(words.length * 4);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < words.length; i++) dv.setInt32(i * 4, words[i]! | 0, true);
  const r = yield* t.k.accessWrite(t.proc.mm, hvaOf(t, gpa), buf);
  if (r !== 0) throw new Error(`writeGuest(0x${gpa.toString(16)}): ${r}`);
}

/** Reads a guest word through the VMM's mapping; null when the memory is gone. */
export function* readGuest32(t: TortureVm, gpa: number): Task<number | null> {
  const buf = new Uint8Array(4);
  const r = yield* t.k.accessRead(t.proc.mm, hvaOf(t, gpa), buf);
  if (r !== 0) return null;
  return new DataView(buf.buffer).getInt32(0, true);
}

export function loadProg(t: TortureVm, p: Prog): void {
  runSync(writeGuest(t, p.base >>> 0, p.assemble()));
}

/** The DONE ucall, then park. */
export function emitDone(p: Prog): void {
  p.emit(li(10, UCALL_DONE), li(11, 1), sw(11, 10, 0), jal(0, 0));
}
/** The FAIL ucall reporting register `reg`, then park. */
export function emitFail(p: Prog, reg: number): void {
  p.emit(li(10, UCALL_FAIL), sw(reg, 10, 0), jal(0, 0));
}

/** KVM_RUN until the guest reports DONE or FAIL, or KVM exits otherwise. */
export function* runUntilUcall(t: TortureVm, opts: { quantum?: number; maxInsns?: number } = {}): Task<VcpuExit> {
  for (;;) {
    const exit = yield* t.vcpu.run(opts);
    if (exit.reason !== 'mmio') return exit;
    if (t.ucall.done || t.ucall.fail !== null) return exit;
  }
}

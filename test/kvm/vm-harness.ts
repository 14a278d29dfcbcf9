// A harness in the style of the KVM selftests (tools/testing/selftests/kvm): a host
// kernel on a seeded scheduler, a VMM process with guest RAM mmapped, a VM with one
// memslot, a vCPU starting in S-mode, guest code from the test assembler, and a
// "ucall" MMIO page through which the guest reports DONE or FAIL.

import { expect } from 'vitest';
import { auditCoherency } from '../../src/check/coherency.js';
import { CSR_MEDELEG, PRIV_S } from '../../src/hart/csr.js';
import type { MmioBus } from '../../src/hart/translator.js';
import { HostKernel, checkInvariants, hostDebugView, secondaryMmuHost } from '../../src/host/index.js';
import type { HostKernelOptions, Process } from '../../src/host/index.js';
import { Vm } from '../../src/kvm/vm.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import type { Vcpu } from '../../src/kvm/vcpu.js';
import { Scheduler, runSync } from '../../src/sched/index.js';
import type { Policy, RunResult, SimThread, Task } from '../../src/sched/index.js';
import { KiB, RAM_GPA, UCALL_DONE, UCALL_FAIL, UCALL_SYNC } from '../../src/torture/fixture.js';

// The machine, the guest-memory helpers and the DONE/FAIL/SYNC ucalls are the torture
// fixture's (src/torture/fixture.ts); a TestVm is a TortureVm plus the LOG ucall.
export { KiB, PAGE, RAM_GPA, UCALL_DONE, UCALL_FAIL, UCALL_SYNC, emitDone, emitFail, loadProg, runUntilUcall, writeGuest } from '../../src/torture/fixture.js';

/** Log a value without stopping. */
export const UCALL_LOG = 0x10000008;

export interface TestVmOptions {
  protocol: KvmProtocol;
  /** Host RAM (default 256 KiB). */
  hostBytes?: number;
  /** Guest RAM (default 128 KiB). */
  guestBytes?: number;
  nMaxMmuPages?: number;
  seed?: number;
  policy?: Policy;
  /** An existing scheduler (explore gives one). */
  sched?: Scheduler;
  host?: Partial<HostKernelOptions>;
}

export interface TestVm {
  sched: Scheduler;
  k: HostKernel;
  proc: Process;
  vm: Vm;
  vcpu: Vcpu;
  ramHva: number;
  guestBytes: number;
  ucall: { done: boolean; fail: number | null; log: number[]; syncs: number };
}

export function createVm(opts: TestVmOptions): TestVm {
  const sched = opts.sched ?? new Scheduler({ seed: opts.seed ?? 1, ...(opts.policy ? { policy: opts.policy } : {}) });
  const era = opts.protocol === 'v7' ? '2008' : 'modern';
  const hostBytes = opts.hostBytes ?? 256 * KiB;
  const guestBytes = opts.guestBytes ?? 128 * KiB;
  const k = new HostKernel({
    ramBytes: hostBytes,
    swapBytes: 4 * Math.max(hostBytes, guestBytes),
    swapReadLatency: 5,
    swapWriteLatency: 5,
    era,
    ...opts.host,
    sched,
  });
  const proc = k.createProcess('vmm', { era });
  const vm = runSync(Vm.create(secondaryMmuHost(k), proc, { protocol: opts.protocol, nMaxMmuPages: opts.nMaxMmuPages ?? 16 }));
  const ramHva = runSync(k.mmap(proc.mm, guestBytes));
  runSync(addMemslot(vm, 0, RAM_GPA, guestBytes, ramHva));
  const ucall: TestVm['ucall'] = { done: false, fail: null, log: [], syncs: 0 };
  let vcpu: Vcpu | null = null;
  const bus: MmioBus = {
    read: () => 0,
    write: (pa, _w, value) => {
      if (pa === UCALL_DONE) ucall.done = true;
      else if (pa === UCALL_FAIL) ucall.fail = value;
      else if (pa === UCALL_SYNC) ucall.syncs++;
      else if (pa === UCALL_LOG) {
        ucall.log.push(value);
        return;
      } else {
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

export function* addMemslot(vm: Vm, slot: number, gpa: number, bytes: number, hva: number, flags = 0): Task<void> {
  yield* vm.setUserMemoryRegion({ slot, flags, guestPhysAddr: gpa, memorySize: bytes, userspaceAddr: hva });
}

export function* readGuest32(t: TestVm, gpa: number): Task<number> {
  const buf = new Uint8Array(4);
  const r = yield* t.k.accessRead(t.proc.mm, t.ramHva + (gpa - RAM_GPA), buf);
  if (r !== 0) throw new Error(`readGuest32(0x${gpa.toString(16)}): ${r}`);
  return new DataView(buf.buffer).getInt32(0, true);
}

export interface RunChecked {
  result: RunResult;
  problems: string[];
  /** Step at which the audit first failed, or -1. */
  failedAt: number;
}

/**
 * Runs the scheduler, auditing coherency before every step (the `until` callback):
 * stops at the first problem.
 */
export function runAudited(
  t: TestVm,
  opts: { maxSteps?: number; audit?: boolean; mmuAudit?: boolean; every?: number; stopOnProblem?: boolean; extra?: () => string[] } = {},
): RunChecked {
  let problems: string[] = [];
  let failedAt = -1;
  const audit = opts.audit ?? true;
  const every = opts.every ?? 1;
  const result = t.sched.run({
    maxSteps: opts.maxSteps ?? 2_000_000,
    until: () => {
      if (!audit || t.sched.steps % every !== 0) return false;
      const found = auditCoherency(t.vm, hostDebugView(t.k), { mmu: opts.mmuAudit ?? true });
      if (opts.extra) found.push(...opts.extra());
      if (found.length > 0 && failedAt < 0) {
        problems = found;
        failedAt = t.sched.steps;
      }
      return failedAt >= 0 && (opts.stopOnProblem ?? true);
    },
  });
  return { result, problems, failedAt };
}

/** Expects a clean, complete run. */
export function expectClean(r: RunChecked, t: TestVm): void {
  expect(r.problems, `coherency audit at step ${r.failedAt}`).toEqual([]);
  expect(r.result.report ?? '', `run ended ${r.result.status}`).toBe('');
  expect(r.result.status).toBe('done');
  expect(t.sched.bugs).toEqual([]);
  for (const th of t.sched.threads) if (th.error !== undefined) throw th.error;
  expect(t.vm.warnings).toEqual([]);
}

/** Tears the VM and the VMM process down and checks the host is whole again. */
export function teardown(t: TestVm): void {
  t.sched.spawn('teardown', function* () {
    yield* t.vm.destroy();
    yield* t.k.exitProcess(t.proc);
    yield* t.k.settle();
  });
  const r = t.sched.run({ maxSteps: 2_000_000 });
  expect(r.status).toBe('done');
  for (const th of t.sched.threads) if (th.error !== undefined) throw th.error;
  checkInvariants(t.k);
  expect(t.k.frames.nrFree).toBe(t.k.frames.nrFrames);
  expect(t.vm.sps.nUsedMmuPages).toBe(0);
}

/**
 * Forces an interleaving: each phase runs its thread (while it is ready) until the
 * phase's condition holds, then the next phase starts; after the last phase, the
 * thread that ran last keeps running while it can (then the first ready one).
 */
export class ScriptPolicy implements Policy {
  readonly name = 'script';
  private phase = 0;
  constructor(private readonly phases: ReadonlyArray<{ thread: string; until: () => boolean }>) {}

  get done(): boolean {
    return this.phase >= this.phases.length;
  }

  pick(ready: readonly SimThread[], last: SimThread | null): number {
    while (this.phase < this.phases.length && this.phases[this.phase]!.until()) this.phase++;
    if (this.phase < this.phases.length) {
      const want = this.phases[this.phase]!.thread;
      const i = ready.findIndex((t) => t.name === want);
      if (i >= 0) return i;
      // The phase's thread waits (I/O, a lock): let others run, non-daemons first.
      const j = ready.findIndex((t) => !t.daemon);
      return j >= 0 ? j : 0;
    }
    const k = last === null ? -1 : ready.indexOf(last);
    return k >= 0 ? k : 0;
  }
}

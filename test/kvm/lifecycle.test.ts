// Randomized lifecycle stress (issue 13 item 9): the VM and its process go away, by
// every path, while everything that invalidates or waits on invalidations is busy.
//
// Per seed: two vCPUs run guest code over guest RAM (one writes and verifies a
// pattern, one scribbles over a scratch range), a memslot mover moves and recreates a
// second slot while it writes to that slot's memory, a balloon returns scratch pages
// with MADV_DONTNEED, a hog keeps the host short of memory so kswapd swaps guest RAM,
// and at a random time a teardown plan runs: Vm.destroy then exit (the VMM's order),
// exit then destroy (the fd outlives the process), an OOM kill (the reaper's
// non-blockable zaps) then both in either order, or destroy and exit at once.
//
// Asserted for every seed: the schedule ends (no deadlock, no spin to max-steps), no
// scheduler bug, KVM warning or coherency problem; the invalidation counters end at
// 0 with nobody waiting on mn_invalidate; every thread finishes (the mover too); the
// guest's pattern never reads back wrong; a vCPU exits with internal-error only as a
// report of the teardown (the VM destroyed, the memory released, get_user_pages
// refused to a killed or exited process), never before it; after the processes exit
// the host audit (src/host/audit.ts) holds and every frame is free, so no page
// reference or pin leaked.
//
// `npm test` runs DEFAULT_SEEDS seeds per protocol; SHADOWVISOR_CAMPAIGN=1 runs
// CAMPAIGN_SEEDS. SHADOWVISOR_SEED=n runs seed n alone (with its trace on failure).

import { describe, expect, it } from 'vitest';
import { auditCoherency } from '../../src/check/coherency.js';
import { CSR_MEDELEG, PRIV_S } from '../../src/hart/csr.js';
import type { MmioBus } from '../../src/hart/translator.js';
import { auditKernel } from '../../src/host/audit.js';
import { hostDebugView } from '../../src/host/debug-view.js';
import { outOfMemory } from '../../src/host/oom.js';
import type { Vcpu, VcpuExit } from '../../src/kvm/vcpu.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Rng, Scheduler, runSync, sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { patternProgram, scribbleProgram } from './guests.js';
import { KiB, PAGE, RAM_GPA, addMemslot, createVm, loadProg } from './vm-harness.js';
import type { TestVm } from './vm-harness.js';

const DEFAULT_SEEDS = 150;
const CAMPAIGN_SEEDS = 2500;
const CHUNK = 25;

const GUEST_PAGES = 32;
const PATTERN_START = RAM_GPA + 4 * PAGE;
const PATTERN_END = RAM_GPA + 16 * PAGE;
const SCRATCH = 20;
const VCPU1_DONE = 0x10000010;
const SLOT1_PAGES = 4;
const SLOT1_GPAS = [0x90000000, 0xa0000000];

type Plan = 'destroy-then-exit' | 'exit-then-destroy' | 'oom' | 'destroy-and-exit';
const PLANS: readonly Plan[] = ['destroy-then-exit', 'exit-then-destroy', 'oom', 'destroy-and-exit'];

interface Outcome {
  seed: number;
  plan: Plan;
  problems: string[];
  steps: number;
}

/** An internal-error that only reports the teardown, and only once it has begun. */
function teardownExit(t: TestVm, exit: VcpuExit): string | null {
  if (exit.reason !== 'internal-error') return null;
  const vm = t.vm;
  const msg = exit.message;
  if (vm.destroyed && /the VM is destroyed/.test(msg)) return null;
  if (vm.released && /guest memory is gone/.test(msg)) return null;
  // get_user_pages: -EINTR once the OOM killer marked the process, -EFAULT once exit removed its VMAs.
  if (t.proc.killed && /failed: errno 4$/.test(msg)) return null;
  if (t.proc.exited && /failed: errno 14$/.test(msg)) return null;
  return `internal-error ${vm.destroyed || vm.released || t.proc.killed ? 'not caused by the teardown' : 'before any teardown'}: ${msg}`;
}

function runSeed(protocol: KvmProtocol, seed: number, trace: boolean): Outcome {
  const rng = new Rng(seed * 7919 + (protocol === 'v7' ? 1 : 0));
  const plan = PLANS[rng.below(PLANS.length)]!;
  const problems: string[] = [];
  const t = createVm({ protocol, sched: new Scheduler({ seed, trace }), hostBytes: 128 * KiB, guestBytes: GUEST_PAGES * PAGE, nMaxMmuPages: 8 });
  const { k, vm, proc, sched } = t;

  // Guest code: vCPU 0 writes and verifies a pattern, again and again; vCPU 1 scribbles.
  loadProg(t, patternProgram(PATTERN_START, PATTERN_END));
  loadProg(t, scribbleProgram(RAM_GPA + 2 * PAGE, RAM_GPA + SCRATCH * PAGE, RAM_GPA + GUEST_PAGES * PAGE, 600, VCPU1_DONE));
  let vcpu1: Vcpu | null = null;
  const bus1: MmioBus = {
    read: () => 0,
    write: (pa) => {
      if (pa === VCPU1_DONE) vcpu1!.requestExit('mmio');
      else bus1.fault = true;
    },
  };
  vcpu1 = vm.createVcpu(1, { bus: bus1 });
  vcpu1.hart.priv = PRIV_S;
  vcpu1.hart.writeCsr(CSR_MEDELEG, 0xb1ff);
  vcpu1.hart.pc = (RAM_GPA + 2 * PAGE) | 0;

  const hva1 = runSync(k.mmap(proc.mm, SLOT1_PAGES * PAGE));
  runSync(addMemslot(vm, 1, SLOT1_GPAS[0]!, SLOT1_PAGES * PAGE, hva1));
  const hog = k.createProcess('hog', { oomUnkillable: true });

  let teardownDone = false;

  // KVM_RUN until the teardown stops the vCPU; a finished pass of the guest starts again.
  function* vcpuThread(v: Vcpu, restartPc: number, quantum: number): Task {
    for (;;) {
      const exit = yield* v.run({ quantum, maxInsns: 4000 + rng.below(8000) });
      if (exit.reason === 'budget') continue;
      if (exit.reason === 'internal-error') {
        const bad = teardownExit(t, exit);
        if (bad !== null) problems.push(`vcpu ${v.id}: ${bad}`);
        return;
      }
      if (exit.reason !== 'mmio') {
        problems.push(`vcpu ${v.id}: unexpected exit ${JSON.stringify(exit)}`);
        return;
      }
      // vcpu 0's ucalls go through the harness bus (DONE, FAIL); vcpu 1's bus has only its DONE.
      if (v.id === 0) {
        if (t.ucall.fail !== null) {
          problems.push(`vcpu 0: the pattern read back wrong at 0x${(t.ucall.fail >>> 0).toString(16)}`);
          return;
        }
        if (!t.ucall.done) continue;
        t.ucall.done = false;
      }
      v.hart.pc = restartPc | 0;
    }
  }
  sched.spawn('vcpu0', () => vcpuThread(t.vcpu, RAM_GPA, 200 + rng.below(600)));
  sched.spawn('vcpu1', () => vcpuThread(vcpu1!, RAM_GPA + 2 * PAGE, 200 + rng.below(600)));

  const mover = { moves: 0, done: false };
  sched.spawn('mover', function* () {
    let at = 0;
    const buf = new Uint8Array(8);
    while (!teardownDone) {
      // Touch the slot's memory so reclaim and the balloon have pages of it to invalidate.
      buf[0] = mover.moves & 0xff;
      yield* k.accessWrite(proc.mm, hva1 + rng.below(SLOT1_PAGES) * PAGE, buf);
      const r = rng.below(4);
      if (r === 0) {
        // Delete and recreate: two updates, each waiting out the active invalidations.
        yield* vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPAS[at]!, memorySize: 0, userspaceAddr: hva1 });
        yield* vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPAS[at]!, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 });
      } else {
        at ^= 1;
        yield* vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPAS[at]!, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 });
      }
      mover.moves++;
      yield* sleepTicks(100 + rng.below(1500), 'mover');
    }
    mover.done = true;
  });

  sched.spawn('balloon', function* () {
    while (!teardownDone) {
      const page = SCRATCH + rng.below(GUEST_PAGES - SCRATCH);
      const n = 1 + rng.below(3);
      // -ENOMEM once exit has removed the VMA: the balloon goes on until the teardown is over.
      yield* k.madvise(proc.mm, t.ramHva + page * PAGE, Math.min(n, GUEST_PAGES - page) * PAGE, 4);
      yield* sleepTicks(200 + rng.below(1500), 'balloon');
    }
  });

  sched.spawn('hog', function* () {
    const pages = 16;
    const hva = yield* k.mmap(hog.mm, pages * PAGE);
    for (let round = 0; !teardownDone && round < 6; round++) {
      for (let i = 0; i < pages; i++) {
        if ((yield* k.accessWrite(hog.mm, hva + i * PAGE, new Uint8Array([round, i]))) !== 0) return;
      }
      yield* sleepTicks(1000 + rng.below(3000), 'hog');
    }
  });

  const destroy = function* (): Task {
    yield* sleepTicks(rng.below(300), 'before destroy');
    yield* vm.destroy();
  };
  const exit = function* (): Task {
    yield* sleepTicks(rng.below(300), 'before exit');
    yield* k.exitProcess(proc);
  };
  sched.spawn('lifecycle', function* () {
    yield* sleepTicks(1000 + rng.below(20000), 'guest runs');
    switch (plan) {
      case 'destroy-then-exit':
        yield* destroy();
        yield* exit();
        break;
      case 'exit-then-destroy':
        yield* exit();
        yield* destroy();
        break;
      case 'oom': {
        // The allocator's last resort, as a failed allocation calls it (the hog is
        // unkillable, so the VMM is the victim): kill, then reap with non-blockable
        // ranges, while the killed VMM exits and its VM fd goes, at once.
        const oom = sched.spawn('oom', function* () {
          yield* outOfMemory(k, null);
        });
        const after = (what: () => Task) =>
          function* (): Task {
            while (!proc.killed && oom.state !== 'done') yield* sleepTicks(1, 'oom kill');
            yield* sleepTicks(rng.below(40), 'killed');
            yield* what();
          };
        const a = sched.spawn('oom-destroy', after(() => vm.destroy()));
        const b = sched.spawn('oom-exit', after(() => k.exitProcess(proc)));
        yield* oom.join();
        if (!proc.killed) problems.push('the OOM killer did not pick the VMM');
        yield* a.join();
        yield* b.join();
        break;
      }
      case 'destroy-and-exit': {
        const a = sched.spawn('destroy', destroy);
        const b = sched.spawn('exit', exit);
        yield* a.join();
        yield* b.join();
        break;
      }
    }
    teardownDone = true;
  });

  const r = sched.run({
    maxSteps: 400_000,
    until: () => {
      if (sched.steps % 17 !== 0) return false;
      const found = auditCoherency(vm, hostDebugView(k), { mmu: sched.steps % 51 === 0 });
      if (found.length > 0) problems.push(...found.map((p) => `coherency at step ${sched.steps}: ${p}`));
      return found.length > 0;
    },
  });
  if (r.status !== 'done') problems.push(`the run ended ${r.status}${r.report ? `:\n${r.report}` : ''}`);
  for (const b of sched.bugs) if (b.kind !== 'deadlock') problems.push(`scheduler bug ${b.kind}: ${b.message}`);
  for (const th of sched.threads) if (th.error !== undefined) problems.push(`thread ${th.name} threw: ${String(th.error)}`);
  problems.push(...vm.warnings.map((w) => `kvm warning: ${w}`));
  if (vm.mnActiveInvalidateCount !== 0 || vm.mmuInvalidateInProgress !== 0) {
    problems.push(`invalidation counters unbalanced: mn_active_invalidate_count ${vm.mnActiveInvalidateCount}, mmu_invalidate_in_progress ${vm.mmuInvalidateInProgress}`);
  }
  if (vm.mnInvalidateWait.length !== 0) problems.push(`${vm.mnInvalidateWait.length} thread(s) still wait on mn_invalidate`);
  if (r.status === 'done') {
    if (!mover.done) problems.push('the memslot mover did not finish');
    if (!vm.destroyed || !proc.exited) problems.push(`teardown incomplete: destroyed ${vm.destroyed}, exited ${proc.exited}`);
    // Give the host back everything: the hog goes, reclaim in flight settles.
    sched.spawn('final', function* () {
      yield* k.exitProcess(hog);
      yield* k.settle();
    });
    const f = sched.run({ maxSteps: 100_000 });
    if (f.status !== 'done') problems.push(`the final exit ended ${f.status}${f.report ? `:\n${f.report}` : ''}`);
    problems.push(...auditKernel(k).map((p) => `host audit: ${p}`));
    if (k.frames.nrFree !== k.frames.nrFrames) problems.push(`${k.frames.nrFrames - k.frames.nrFree} frame(s) still allocated after every process exited`);
    if (vm.sps.nUsedMmuPages !== 0) problems.push(`${vm.sps.nUsedMmuPages} shadow page(s) left after destroy`);
  }
  if (problems.length > 0) {
    problems.push(sched.dump(), vm.dump());
    if (sched.trace !== null) problems.push('last steps:', ...sched.trace.slice(-60));
  }
  k.shutdown();
  return { seed, plan, problems, steps: sched.steps };
}

const ONE_SEED = process.env.SHADOWVISOR_SEED ?? '';

function seedsToRun(): number[] {
  if (ONE_SEED !== '') return [Number(ONE_SEED)];
  const n = process.env.SHADOWVISOR_CAMPAIGN === '1' ? CAMPAIGN_SEEDS : DEFAULT_SEEDS;
  return Array.from({ length: n }, (_, i) => i + 1);
}

describe.each<KvmProtocol>(['modern', 'v7'])('lifecycle stress, %s', (protocol) => {
  const seeds = seedsToRun();
  const chunks: number[][] = [];
  for (let i = 0; i < seeds.length; i += CHUNK) chunks.push(seeds.slice(i, i + CHUNK));
  it.each(chunks.map((c) => [c[0]!, c[c.length - 1]!, c] as const))('seeds %i..%i', (_first, _last, chunk) => {
    const failed: string[] = [];
    const plans = new Map<Plan, number>();
    for (const seed of chunk) {
      const o = runSeed(protocol, seed, ONE_SEED !== '');
      plans.set(o.plan, (plans.get(o.plan) ?? 0) + 1);
      if (o.problems.length > 0) {
        failed.push(`${protocol} seed ${o.seed} (${o.plan}; SHADOWVISOR_SEED=${o.seed} npx vitest run test/kvm/lifecycle.test.ts -t ${protocol}):\n  ${o.problems.join('\n  ')}`);
        if (failed.length >= 3) break;
      }
    }
    expect(failed).toEqual([]);
    if (chunk.length >= CHUNK) expect(plans.size).toBeGreaterThan(1);
  });
});

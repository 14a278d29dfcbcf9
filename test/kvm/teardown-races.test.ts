// Teardown in the middle of an invalidation (issue 13 item 9), one scripted
// interleaving per teardown path, for modern and v7, in the style of races.test.ts.
//
// A host range zap (MADV_DONTNEED, or the OOM reaper's non-blockable zap) has run
// KVM's invalidate_range_start (mn_active_invalidate_count and
// mmu_invalidate_in_progress are 1) and is parked before its range_end. Then the
// notifier goes away: Vm.destroy (mmu_notifier_unregister), process exit
// (exit_mmap's mmu_notifier_release), or an OOM kill followed by destroy. The
// subscription is unhashed, so the zap's range_end never reaches KVM. Then a memslot
// update (KVM_SET_USER_MEMORY_REGION, which waits for mn_active_invalidate_count to
// drop to 0) and a vCPU fault on a gfn of the range (which waits out
// mmu_invalidate_in_progress) must both get through: the counters end at 0 and the
// waiters are woken. A range_start that has raised mn_active_invalidate_count and
// still waits for mmu_lock when release runs must count nothing after it. With
// debug.noReleaseBalance (the old behaviour) the memslot update waits on
// mn_invalidate for ever (a deadlock) and the fault spins.

import { describe, expect, it } from 'vitest';
import { outOfMemory } from '../../src/host/oom.js';
import type { VcpuExit } from '../../src/kvm/vcpu.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Scheduler, runSync, sleepTicks } from '../../src/sched/index.js';
import type { SimThread } from '../../src/sched/index.js';
import { Prog, li, lw } from '../hart/asm.js';
import { KiB, PAGE, RAM_GPA, ScriptPolicy, addMemslot, createVm, emitDone, loadProg, runAudited, teardown, writeGuest } from './vm-harness.js';
import type { TestVm } from './vm-harness.js';

const X = RAM_GPA + 0x10000;
const SLOT1_GPA = 0x90000000;
const SLOT1_MOVED_GPA = 0xa0000000;

type Teardown = 'destroy' | 'exit' | 'oom+destroy';
/** Who is waiting on the invalidation when the notifier goes: nobody yet (a later memslot update), or a memslot update and a fault. */
type Waiters = 'later' | 'waiting';

interface Scene {
  t: TestVm;
  mover: { done: boolean; change: string };
  exits: VcpuExit[];
}

function byName(t: TestVm, name: string): SimThread {
  return t.sched.threads.find((th) => th.name === name)!;
}

/** range_start has run to completion (in_progress raised, mmu_lock dropped) and range_end has not. */
function betweenStartAndEnd(t: TestVm): boolean {
  return t.vm.mmuInvalidateInProgress > 0 && t.vm.mmuLock.holder === null;
}

/** range_start has raised mn_active_invalidate_count and waits for mmu_lock to raise in_progress. */
function startWaitsForMmuLock(t: TestVm): boolean {
  return t.vm.mnActiveInvalidateCount > 0 && t.vm.mmuInvalidateInProgress === 0;
}

function scene(protocol: KvmProtocol, how: Teardown, waiters: Waiters, broken: boolean, at: (t: TestVm) => boolean = betweenStartAndEnd): Scene {
  let inner: ScriptPolicy | null = null;
  const sched = new Scheduler({ policy: { name: 'script', pick: (r, l) => (inner === null ? 0 : inner.pick(r, l)) } });
  const t = createVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 128 * KiB });
  t.vm.debug.noReleaseBalance = broken;
  const hva1 = runSync(t.k.mmap(t.proc.mm, 4 * PAGE));
  runSync(addMemslot(t.vm, 1, SLOT1_GPA, 4 * PAGE, hva1));
  const p = new Prog(RAM_GPA | 0);
  p.emit(li(8, X), lw(6, 8, 0));
  emitDone(p);
  loadProg(t, p);
  runSync(writeGuest(t, X, [1]));

  // The invalidation the teardown interrupts: MADV_DONTNEED of X, or the OOM
  // reaper's zap of the whole VMM (started by an allocation that found no memory).
  const zapper = how === 'oom+destroy' ? 'oom' : 'zap';
  if (zapper === 'oom') {
    t.sched.spawn('oom', function* () {
      expect(yield* outOfMemory(t.k, null)).toBe(true);
    });
  } else {
    t.sched.spawn('zap', function* () {
      expect(yield* t.k.madvise(t.proc.mm, t.ramHva + (X - RAM_GPA), PAGE, 4)).toBe(0);
    });
  }
  const killer = how === 'exit' ? 'exit' : 'destroy';
  t.sched.spawn(killer, function* () {
    if (how === 'exit') yield* t.k.exitProcess(t.proc);
    else yield* t.vm.destroy();
  });

  const mover = { done: false, change: '' };
  t.sched.spawn('mover', function* () {
    if (waiters === 'later') while (byName(t, zapper).state !== 'done') yield* sleepTicks(1, 'after the zap');
    const change = yield* t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_MOVED_GPA, memorySize: 4 * PAGE, userspaceAddr: hva1 });
    mover.change = change.kind;
    mover.done = true;
  });
  const exits: VcpuExit[] = [];
  if (waiters === 'waiting') {
    t.sched.spawn('vcpu0', function* () {
      exits.push(yield* t.vcpu.run());
    });
  }

  const phases: Array<{ thread: string; until: () => boolean }> = [{ thread: zapper, until: () => at(t) }];
  if (waiters === 'waiting') {
    phases.push(
      // kvm_swap_active_memslots: the update holds slots_lock and waits on mn_invalidate.
      { thread: 'mover', until: () => byName(t, 'mover').state === 'blocked' && t.vm.mnInvalidateWait.length > 0 },
      // kvm_faultin_pfn: the fault on X sees the invalidation of X in progress and backs off.
      { thread: 'vcpu0', until: () => t.vm.stats.pfRetry > 0 },
    );
  }
  phases.push(
    // The notifier goes: after this no callback of the subscription runs, range_end included.
    { thread: killer, until: () => t.vm.notifier === null || !t.vm.notifier.hashed || byName(t, killer).state === 'done' },
    { thread: zapper, until: () => byName(t, zapper).state === 'done' },
  );
  inner = new ScriptPolicy(phases);
  return { t, mover, exits };
}

describe('teardown between invalidate_range_start and range_end leaves the invalidation balanced', () => {
  for (const protocol of ['modern', 'v7'] as const) {
    for (const how of ['destroy', 'exit', 'oom+destroy'] as const) {
      for (const waiters of ['later', 'waiting'] as const) {
        const name = `${protocol}, ${how}, ${waiters === 'later' ? 'then a memslot update' : 'with a memslot update and a fault waiting'}`;
        it(name, () => {
          const { t, mover, exits } = scene(protocol, how, waiters, false);
          const r = runAudited(t, { maxSteps: 20_000, every: 3 });
          expect(r.problems, `coherency audit at step ${r.failedAt}`).toEqual([]);
          expect(r.result.report ?? '', `run ended ${r.result.status}`).toBe('');
          expect(r.result.status).toBe('done');
          expect(t.sched.bugs).toEqual([]);
          expect(t.vm.warnings).toEqual([]);
          expect(t.vm.released).toBe(true);
          expect({ active: t.vm.mnActiveInvalidateCount, inProgress: t.vm.mmuInvalidateInProgress }).toEqual({ active: 0, inProgress: 0 });
          expect(t.vm.mnInvalidateWait.length).toBe(0);
          expect(mover).toEqual({ done: true, change: 'move' });
          if (waiters === 'waiting') {
            // Woken, the fault finds the guest memory gone instead of waiting for an end that never comes.
            expect(exits.map((e) => e.reason)).toEqual(['internal-error']);
            expect(t.vcpu.faults.error).toBe(1);
          }
          teardown(t);
        });
      }
    }
  }

  for (const protocol of ['modern', 'v7'] as const) {
    for (const how of ['destroy', 'exit'] as const) {
      it(`${protocol}, ${how} while a range_start waits for mmu_lock: the start counts nothing once release has run`, () => {
        // release resets the counters while this start is between its
        // mn_active_invalidate_count++ and mmu_lock; it must not raise in_progress after.
        const { t, mover } = scene(protocol, how, 'later', false, startWaitsForMmuLock);
        const r = runAudited(t, { maxSteps: 20_000, every: 3 });
        expect(r.problems).toEqual([]);
        expect(r.result.status).toBe('done');
        expect(t.sched.bugs).toEqual([]);
        expect(t.vm.warnings).toEqual([]);
        expect(t.vm.stats.invalidations).toBe(0);
        expect({ active: t.vm.mnActiveInvalidateCount, inProgress: t.vm.mmuInvalidateInProgress }).toEqual({ active: 0, inProgress: 0 });
        expect(mover).toEqual({ done: true, change: 'move' });
        teardown(t);
      });
    }
  }

  it('noReleaseBalance (the old behaviour): the memslot update waits on mn_invalidate for ever', () => {
    for (const protocol of ['modern', 'v7'] as const) {
      for (const how of ['destroy', 'exit', 'oom+destroy'] as const) {
        const { t, mover } = scene(protocol, how, 'later', true);
        const r = t.sched.run({ maxSteps: 200_000 });
        expect(r.status, `${protocol} ${how}`).toBe('deadlock');
        expect(r.report).toMatch(/'mover' waits for waitqueue 'kvm\d+\.mn_invalidate'[\s\S]*'mover' holds mutex 'kvm\d+\.slots_lock'/);
        expect(t.vm.mnActiveInvalidateCount).toBe(1);
        expect(t.vm.mmuInvalidateInProgress).toBe(1);
        expect(mover.done).toBe(false);
      }
    }
  });

  it('noReleaseBalance: a fault waiting for the invalidation spins for ever', () => {
    // The OOM reaper's range covers all of guest RAM, code included, so every fault
    // the vCPU takes lands in it (after destroy or exit alone, the next fetch misses
    // outside the range and finds the memory gone).
    for (const protocol of ['modern', 'v7'] as const) {
      const { t, exits } = scene(protocol, 'oom+destroy', 'waiting', true);
      const r = t.sched.run({ maxSteps: 20_000 });
      expect(r.status, protocol).toBe('max-steps');
      expect(exits).toEqual([]);
      expect(t.vcpu.faults.retry).toBeGreaterThan(1000);
      expect(t.vm.mmuInvalidateInProgress).toBe(1);
    }
  });
});

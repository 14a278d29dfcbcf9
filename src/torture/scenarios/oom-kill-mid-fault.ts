import { outOfMemory } from '../../host/oom.js';
import type { VcpuExit } from '../../kvm/vcpu.js';
import { runSync } from '../../sched/index.js';
import { KiB, PAGE, RAM_GPA, createTortureVm, loadProg, runUntilUcall } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { patternProgram, sleepRandom } from './common.js';

const SLOT1_PAGES = 4;
const SLOT1_GPAS = [0x90000000, 0xa0000000];

export const oomKillMidFault: Scenario = {
  name: 'oom-kill-mid-fault',
  description:
    'The OOM killer picks the VMM while its vCPU faults over guest RAM: the reaper zaps with non-blockable ' +
    'ranges, the killed VMM destroys its VM and exits, and a memslot update (which waits for no active ' +
    'invalidation) comes in. Everything must end: no waiter on an invalidation whose range_end never comes.',
  reproduces:
    'the OOM reaper\'s non-blockable invalidate_range_start (MMU_NOTIFY_CLEAR, -EAGAIN) and kvm_destroy_vm\'s reset of ' +
    'mn_active_invalidate_count: a range started before unregister ends without telling KVM. pin: the expected end ' +
    'of pressure is the OOM kill, with the pinned pages staying until the VM goes.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 64 * KiB, nMaxMmuPages: 8, ...(events ? { events } : {}) });
    const { k, vm, proc } = t;
    loadProg(t, patternProgram(RAM_GPA + 2 * PAGE, RAM_GPA + 14 * PAGE, PAGE / 2));
    const hva1 = runSync(k.mmap(proc.mm, SLOT1_PAGES * PAGE));
    runSync(vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPAS[0]!, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 }));
    const exits: VcpuExit[] = [];
    let killedBeforeExit = false;
    const mover = { done: false, errors: 0 };
    sched.spawn('vcpu0', function* () {
      exits.push(yield* runUntilUcall(t, { quantum: 100 + rng.below(300) }));
      killedBeforeExit = proc.killed || vm.destroyed || vm.released;
    });
    const oom = sched.spawn('oom', function* () {
      yield* sleepRandom(rng.below(1500), 'pressure builds');
      yield* outOfMemory(k, null);
    });
    sched.spawn('vmm', function* () {
      while (!proc.killed && oom.state !== 'done') yield* sleepRandom(1, 'oom kill');
      yield* sleepRandom(rng.below(30), 'SIGKILL delivered');
      if (rng.below(2) === 0) yield* vm.destroy();
      yield* k.exitProcess(proc);
      yield* vm.destroy();
    });
    sched.spawn('mover', function* () {
      while (!proc.killed && oom.state !== 'done') yield* sleepRandom(1, 'oom kill');
      yield* sleepRandom(rng.below(30), 'memslot update');
      yield* vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPAS[1]!, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 });
      mover.done = true;
    });
    return {
      t,
      check: () => {
        const out: string[] = [];
        if (!proc.killed) out.push('setup: the OOM killer did not pick the VMM');
        if (!mover.done) out.push('the memslot update did not finish');
        if (vm.mnActiveInvalidateCount !== 0 || vm.mmuInvalidateInProgress !== 0) {
          out.push(`invalidation counters unbalanced: mn_active_invalidate_count ${vm.mnActiveInvalidateCount}, mmu_invalidate_in_progress ${vm.mmuInvalidateInProgress}`);
        }
        if (t.ucall.fail !== null) out.push(`the guest's pattern read back wrong at 0x${(t.ucall.fail >>> 0).toString(16)}`);
        const e = exits[0];
        if (e?.reason === 'internal-error' && !killedBeforeExit) out.push(`internal-error before the kill: ${e.message}`);
        return out;
      },
      expected: () => `OOM killed the VMM${protocol === 'pin' ? ' (pin: the expected end under pressure)' : ''}`,
    };
  },
};

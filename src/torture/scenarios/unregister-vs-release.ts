import { SPTES_PER_PAGE } from '../../kvm/mmu/shadow-pages.js';
import { isLeafSpte } from '../../kvm/mmu/spte.js';
import type { VcpuExit } from '../../kvm/vcpu.js';
import { runSync } from '../../sched/index.js';
import { KiB, PAGE, RAM_GPA, createTortureVm, loadProg, runUntilUcall, writeGuest } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { describeExit, patternProgram, sleepRandom } from './common.js';

export const unregisterVsRelease: Scenario = {
  name: 'unregister-vs-release',
  description:
    'The VMM closes its VM (kvm_destroy_vm: mmu_notifier_unregister, which runs ->release if exit has not) while ' +
    'the process exits (exit_mmap: __mmu_notifier_release) and a vCPU faults over guest RAM. ->release may run ' +
    'twice; after the first, no spte exists and none appears, and every page goes back.',
  reproduces:
    'the mmu-notifier thread\'s "->release in O(1)" argument: a secondary MMU drops all its mappings in one call ' +
    'from exit_mmap, before the pages are freed, and unregister waits out an SRCU grace period so no callback runs ' +
    'after it returns.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 64 * KiB, nMaxMmuPages: 8, ...(events ? { events } : {}) });
    loadProg(t, patternProgram(RAM_GPA + 2 * PAGE, RAM_GPA + 12 * PAGE, PAGE / 4));
    runSync(writeGuest(t, RAM_GPA + 12 * PAGE, [1]));
    const exits: VcpuExit[] = [];
    let spteAfterRelease = false;
    sched.spawn('vcpu0', function* () {
      exits.push(yield* runUntilUcall(t, { quantum: 50 + rng.below(200) }));
    });
    sched.spawn('destroy', function* () {
      yield* sleepRandom(rng.below(400), 'close the VM fd');
      yield* t.vm.destroy();
    });
    sched.spawn('exit', function* () {
      yield* sleepRandom(rng.below(400), 'exit');
      yield* t.k.exitProcess(t.proc);
    });
    sched.spawn('watch', function* () {
      // Once ->release has run, no leaf spte may exist (pin has no notifier: until destroy).
      while (exits.length === 0 || !(t.vm.destroyed && t.proc.exited)) {
        if ((protocol === 'pin' ? t.vm.destroyed : t.vm.released) && t.vm.sps.nUsedMmuPages > 0 && t.vm.mmuLock.holder === null) {
          let leaves = 0;
          for (const sp of t.vm.sps.lruOrder()) for (let i = 0; i < SPTES_PER_PAGE; i++) if (isLeafSpte(t.vm.sps.sptes[sp * SPTES_PER_PAGE + i]!)) leaves++;
          if (leaves > 0) spteAfterRelease = true;
        }
        yield* sleepRandom(3, 'watch');
      }
    });
    return {
      t,
      check: () => {
        const out: string[] = [];
        const e = exits[0];
        const teardown = e?.reason === 'internal-error' && /destroyed|guest memory is gone|errno 14$|errno 4$/.test(e.message);
        if (t.ucall.fail !== null || !(e?.reason === 'mmio' || teardown)) out.push(`the guest ended ${describeExit(e)}`);
        if (spteAfterRelease) out.push('an spte existed after ->release had run');
        if (!t.vm.destroyed || !t.proc.exited) out.push(`teardown incomplete: destroyed ${t.vm.destroyed}, exited ${t.proc.exited}`);
        return out;
      },
    };
  },
};

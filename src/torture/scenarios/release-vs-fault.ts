import { runSync } from '../../sched/index.js';
import { RAM_GPA, runUntilUcall, writeGuest } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { X, describeExit, sleepRandom, storeVm } from './common.js';
import type { VcpuExit } from '../../kvm/vcpu.js';

export const releaseVsFault: Scenario = {
  name: 'release-vs-fault',
  description:
    'The VMM process exits while its vCPU faults on X: exit_mmap runs ->release, which must zap every spte before ' +
    'the pages go. The VMM then runs the vCPU again; it must not execute guest code from freed frames.',
  reproduces:
    'mmu_notifier_release from exit_mmap (the mmu-notifier thread\'s "->release in O(1)" argument): a secondary MMU ' +
    'drops everything at once, and a fault that races it must not map anything afterwards.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: true,
  build({ sched, protocol, rng, events }) {
    const t = storeVm({ sched, protocol, events });
    runSync(writeGuest(t, X, [1]));
    const exits: VcpuExit[] = [];
    let insnsAfterRelease = -1;
    sched.spawn('vcpu0', function* () {
      exits.push(yield* runUntilUcall(t, { quantum: 1000 }));
      // The VMM tries again: after release nothing of the guest may run.
      const released = t.vm.released;
      t.vcpu.hart.pc = RAM_GPA | 0;
      t.ucall.done = false;
      const before = t.vcpu.instructions;
      exits.push(yield* t.vcpu.run({ maxInsns: 64 }));
      if (released) insnsAfterRelease = t.vcpu.instructions - before;
    });
    sched.spawn('exit', function* () {
      yield* sleepRandom(rng.below(3), 'exit');
      yield* t.k.exitProcess(t.proc);
    });
    return {
      t,
      check: () => {
        const out: string[] = [];
        const first = exits[0];
        const gone = first?.reason === 'internal-error' && /guest memory is gone|errno 14$|errno 4$/.test(first.message);
        if (t.ucall.fail !== null || !(first?.reason === 'mmio' || gone)) out.push(`the guest ended ${describeExit(first)}`);
        // pin has no notifier: its pinned pages outlive the process until the VM goes.
        if (protocol !== 'pin' && insnsAfterRelease > 0) out.push(`the vCPU ran ${insnsAfterRelease} instructions after release, from frames the exit freed`);
        return out;
      },
      expected: () => (protocol === 'pin' && insnsAfterRelease > 0 ? 'pin: the pinned guest runs on after exit until the VM is destroyed' : null),
    };
  },
};

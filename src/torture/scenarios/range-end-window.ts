import { MADV_DONTNEED } from '../../host/kernel.js';
import { KiB, PAGE, createTortureVm, hvaOf, loadProg, readGuest32 } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { X, counterProgram, guestProblems, runGuest, sleepRandom } from './common.js';
import type { VcpuLog } from './common.js';

const N = 6000;

export const rangeEndWindow: Scenario = {
  name: 'range-end-window',
  description:
    'A vCPU keeps storing a counter to X through its TLB while MADV_DONTNEED drops X twice. Between the host ' +
    'clearing its pte (and freeing the page) and invalidate_range_end, nothing may still map or cache the page.',
  reproduces:
    'v7 (the seed) cleared sptes only in range_end, after the host ptes: a window where an spte maps a page the ' +
    'host pte no longer maps, harmless while the spte holds a page reference, a write into a freed (reused) frame ' +
    'without it; and the TLB flush that must happen before range_start drops mmu_lock.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 128 * KiB, nMaxMmuPages: 4, ...(events ? { events } : {}) });
    loadProg(t, counterProgram(X, N));
    const log: VcpuLog = { exits: [] };
    let seen: number | null = null;
    let zapsDone = 0;
    // The guest's counter (x9) when the last DONTNEED returned: below N, the guest
    // stored after it, so X must end at N; at N, its last store may precede the zap.
    let counterAfterLastZap = 0;
    sched.spawn('vcpu0', function* () {
      yield* runGuest(t, log, 100 + rng.below(400));
      seen = yield* readGuest32(t, X);
    });
    sched.spawn('madvise', function* () {
      for (let i = 0; i < 2; i++) {
        yield* sleepRandom(rng.below(2500), 'madvise');
        yield* t.k.madvise(t.proc.mm, hvaOf(t, X), PAGE, MADV_DONTNEED);
        zapsDone++;
        counterAfterLastZap = t.vcpu.hart.regs[9]!;
      }
    });
    return {
      t,
      check: () => {
        const out = guestProblems(t, log);
        // pin: no notifier, so after a DONTNEED the guest keeps writing to the page it pinned.
        const want = counterAfterLastZap < N ? [N] : [N, 0];
        if (out.length === 0 && protocol !== 'pin' && !want.includes(seen ?? -1)) {
          out.push(`the VMM reads ${seen === null ? 'nothing' : seen} at X after the guest stored ${N} there (the last of ${zapsDone} DONTNEEDs returned at counter ${counterAfterLastZap})`);
        }
        return out;
      },
      expected: () => (protocol === 'pin' && seen !== N ? 'pin: the guest writes to its pinned page, the VMM sees the DONTNEED (no notifier)' : null),
    };
  },
};

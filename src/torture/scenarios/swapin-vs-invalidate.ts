import { MADV_DONTNEED } from '../../host/kernel.js';
import { PAGE, hvaOf, readGuest32, writeGuest } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { V, X, guestProblems, reclaimUntilOut, runGuest, sleepRandom, storeVm } from './common.js';
import type { VcpuLog } from './common.js';

export const swapinVsInvalidate: Scenario = {
  name: 'swapin-vs-invalidate',
  description:
    'X is out in swap; a vCPU stores to it, so its fault sleeps in get_user_pages on the swap-in read, while ' +
    'MADV_DONTNEED (or reclaim, by seed) invalidates X. The fault must retry and map what the host maps.',
  reproduces:
    'a fault that sleeps on I/O between its mmu_invalidate_seq snapshot and mmu_lock (do_swap_page under ' +
    'get_user_pages): the widest window of the sequence protocol.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = storeVm({ sched, protocol, events });
    const log: VcpuLog = { exits: [] };
    const byReclaim = rng.below(3) === 0;
    let swapped = false;
    let seen: number | null = null;
    sched.spawn('vcpu0', function* () {
      yield* writeGuest(t, X, [1]);
      swapped = yield* reclaimUntilOut(t, X, 50, 64);
      yield* runGuest(t, log, 1000);
      seen = yield* readGuest32(t, X);
    });
    sched.spawn('invalidate', function* () {
      while (!swapped) yield* sleepRandom(1, 'wait for swap-out');
      yield* sleepRandom(rng.below(12), 'invalidate');
      if (byReclaim) {
        for (let i = 0; i < 4; i++) {
          yield* t.k.reclaim(8);
          yield* sleepRandom(rng.below(6), 'reclaim');
        }
      } else {
        yield* t.k.madvise(t.proc.mm, hvaOf(t, X), PAGE, MADV_DONTNEED);
      }
    });
    return {
      t,
      check: () => {
        const out = guestProblems(t, log);
        if (!swapped) out.push('setup: X did not go out to swap');
        const ok = byReclaim ? seen === V : seen === V || seen === 0;
        if (out.length === 0 && !ok) out.push(`X reads ${seen} after the guest stored 0x${V.toString(16)} (${byReclaim ? 'reclaim' : 'DONTNEED'})`);
        return out;
      },
    };
  },
};

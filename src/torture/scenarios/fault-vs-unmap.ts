import { runSync } from '../../sched/index.js';
import { readGuest32, writeGuest } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { V, X, guestProblems, reclaimUntilOut, runGuest, sleepRandom, storeVm } from './common.js';
import type { VcpuLog } from './common.js';

export const faultVsUnmap: Scenario = {
  name: 'fault-vs-unmap',
  description:
    'A vCPU stores to X (resident) while reclaim swaps X out: try_to_unmap may run between the fault\'s ' +
    'get_user_pages and its mmu_lock. The store must land in the page the host keeps (swap copy included).',
  reproduces:
    'the 2008 mmu-notifier thread\'s race: "try_to_unmap / secondary mmu page fault / get_user_pages found a page / ' +
    'ptep_clear_flush / invalidate_page / establish spte". Safe in modern by the sequence retry; v7 also has the ' +
    'sequence bump in invalidate_page and the page reference; pin by the pin reclaim respects.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: true,
  build({ sched, protocol, rng, events, exhaustive }) {
    const t = storeVm({ sched, protocol, events });
    runSync(writeGuest(t, X, [1]));
    const log: VcpuLog = { exits: [] };
    let seen: number | null = null;
    sched.spawn('vcpu0', function* () {
      yield* runGuest(t, log, 200 + rng.below(800));
      seen = yield* readGuest32(t, X);
    });
    sched.spawn('reclaim', function* () {
      yield* sleepRandom(rng.below(4), 'reclaim');
      yield* reclaimUntilOut(t, X, exhaustive ? 2 : 6, exhaustive ? 1 : 8);
    });
    return {
      t,
      check: () => {
        const out = guestProblems(t, log);
        if (out.length === 0 && seen !== V) out.push(`the VMM reads ${seen === null ? 'nothing' : `0x${(seen >>> 0).toString(16)}`} at X, not the guest's store`);
        return out;
      },
    };
  },
};

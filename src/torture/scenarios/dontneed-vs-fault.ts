import { MADV_DONTNEED } from '../../host/kernel.js';
import { runSync } from '../../sched/index.js';
import { PAGE, hvaOf, readGuest32, writeGuest } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { V, X, guestProblems, runGuest, sleepRandom, storeVm } from './common.js';
import type { VcpuLog } from './common.js';

export const dontneedVsFault: Scenario = {
  name: 'dontneed-vs-fault',
  description:
    'A vCPU stores to X while MADV_DONTNEED drops X (a balloon returning a page). Afterwards X holds the store ' +
    'or zero, and no spte maps the dropped page.',
  reproduces:
    'mmu_invalidate_seq / mmu_invalidate_in_progress (kvm_mmu_notifier_invalidate_range_start/end and ' +
    'mmu_invalidate_retry_gfn): a fault whose get_user_pages ran before or during the zap must retry.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: true,
  build({ sched, protocol, rng, events }) {
    const t = storeVm({ sched, protocol, events });
    runSync(writeGuest(t, X, [1]));
    const log: VcpuLog = { exits: [] };
    let seen: number | null = null;
    let madvised = false;
    sched.spawn('vcpu0', function* () {
      yield* runGuest(t, log, 1000);
      seen = yield* readGuest32(t, X);
    });
    sched.spawn('madvise', function* () {
      yield* sleepRandom(rng.below(3), 'madvise');
      yield* t.k.madvise(t.proc.mm, hvaOf(t, X), PAGE, MADV_DONTNEED);
      madvised = true;
    });
    return {
      t,
      check: () => {
        const out = guestProblems(t, log);
        if (out.length === 0 && seen !== V && seen !== 0) out.push(`X reads ${seen} (neither the store nor a zero page; madvise done ${madvised})`);
        return out;
      },
    };
  },
};

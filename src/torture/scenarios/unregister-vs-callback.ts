import { GruDevice } from '../../gru/gru.js';
import { MADV_DONTNEED } from '../../host/kernel.js';
import { secondaryMmuHost } from '../../host/secondary-mmu.js';
import { KiB, PAGE, createTortureVm } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { sleepRandom } from './common.js';

const PAGES = 16;

export const unregisterVsCallback: Scenario = {
  name: 'unregister-vs-callback',
  description:
    'A GRU-like device (src/gru) translates the VMM process\'s guest RAM while the host zaps it page by page ' +
    '(MADV_DONTNEED, each a range_start/end into the device); its driver closes it (mmu_notifier_unregister) and ' +
    'frees its state as soon as unregister returns. No callback of the device may run, or still be running, once ' +
    'it is freed, and every reference it held goes back.',
  reproduces:
    'mmu_notifier_unregister\'s synchronize_srcu (mm/mmu_notifier.c): the notifier list is walked under SRCU, so ' +
    'a callback that loaded the list before the unhash can still be inside the driver; without the grace period the ' +
    'driver\'s kfree races it (the host switch noUnregisterSync).',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 64 * KiB, nMaxMmuPages: 8, ...(events ? { events } : {}) });
    const host = secondaryMmuHost(t.k);
    let dev: GruDevice | null = null;
    let closed = false;
    const problems: string[] = [];
    sched.spawn('open', function* () {
      const d = yield* GruDevice.create(host, t.proc.mm, { entries: 8 });
      if (d === null) throw new Error('gru open failed');
      dev = d;
      sched.spawn('device-client', function* () {
        const buf = new Uint8Array(64);
        while (!closed) {
          const r = yield* d.submit({ op: 'read', hva: t.ramHva + rng.below(PAGES) * PAGE, dst: buf });
          if (r !== 0 && !closed) problems.push(`device read failed: ${r}`);
          yield* sleepRandom(rng.below(4), 'client');
        }
      });
      sched.spawn('balloon', function* () {
        while (!closed) {
          yield* t.k.madvise(t.proc.mm, t.ramHva + rng.below(PAGES) * PAGE, PAGE, MADV_DONTNEED);
          yield* sleepRandom(rng.below(3), 'balloon');
        }
      });
      sched.spawn('close', function* () {
        yield* sleepRandom(50 + rng.below(300), 'close the device');
        closed = true;
        yield* d.destroy();
        // kfree: the driver owns the memory again once unregister returned.
        d.free();
      });
    });
    return {
      t,
      check: () => {
        const out = [...problems];
        const d = dev as GruDevice | null;
        if (d === null) return ['the device never opened'];
        if (d.useAfterFree > 0) out.push(`use-after-free: ${d.useAfterFree} device callback(s) ran on its state after unregister returned and the driver freed it`);
        if (d.refsHeld !== 0) out.push(`the device still holds ${d.refsHeld} page reference(s) after close`);
        return out;
      },
    };
  },
};

import { runSync } from '../../sched/index.js';
import { KiB, PAGE, createTortureVm, loadProg } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { V, describeExit, runGuest, sleepRandom, storeProgram } from './common.js';
import type { VcpuLog } from './common.js';

const SLOT1_GPA = 0x90000000;
const SLOT1_PAGES = 4;
const Y = SLOT1_GPA + PAGE;

export const munmapVsFault: Scenario = {
  name: 'munmap-vs-fault',
  description:
    'A second memslot is backed by its own mmap; a vCPU stores to it while the VMM munmaps the region under it ' +
    '(the memslot stays). The store lands before the unmap, or the fault finds no VMA (EFAULT, an internal-error exit).',
  reproduces:
    'munmap -> unmap_region -> zap with invalidate_range_start/end: a fault that found the page before the zap must ' +
    'not map it after the page went back to the free list.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: true,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 128 * KiB, guestBytes: 64 * KiB, nMaxMmuPages: 4, ...(events ? { events } : {}) });
    const hva1 = runSync(t.k.mmap(t.proc.mm, SLOT1_PAGES * PAGE));
    runSync(t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPA, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 }));
    loadProg(t, storeProgram(Y, V));
    const log: VcpuLog = { exits: [] };
    let unmapped = -1;
    sched.spawn('vcpu0', () => runGuest(t, log, 1000));
    sched.spawn('munmap', function* () {
      yield* sleepRandom(rng.below(3), 'munmap');
      unmapped = yield* t.k.munmap(t.proc.mm, hva1, SLOT1_PAGES * PAGE);
    });
    return {
      t,
      check: () => {
        const out: string[] = [];
        if (unmapped !== 0) out.push(`munmap returned ${unmapped}`);
        const e = log.exits[0];
        const efault = e?.reason === 'internal-error' && /errno 14$/.test(e.message);
        if (t.ucall.fail !== null || !(t.ucall.done || efault)) out.push(`the guest ended ${describeExit(e)}, neither DONE nor EFAULT`);
        return out;
      },
    };
  },
};

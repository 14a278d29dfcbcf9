import { ptePfn, ptePresent } from '../../host/pte.js';
import { runSync } from '../../sched/index.js';
import { KiB, PAGE, createTortureVm, loadProg } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { V, guestProblems, runGuest, sleepRandom, storeProgram } from './common.js';
import type { VcpuLog } from './common.js';

const SLOT1_GPA = 0x90000000;
const SLOT1_PAGES = 4;
const Y = SLOT1_GPA + PAGE;

export const memslotDeleteVsFault: Scenario = {
  name: 'memslot-delete-vs-fault',
  description:
    'A vCPU stores to a page of memslot 1 while the VMM deletes the slot (KVM_SET_USER_MEMORY_REGION, size 0). ' +
    'The store lands in the slot\'s memory before the delete or becomes an MMIO exit after it, exactly one of the two.',
  reproduces:
    'kvm_swap_active_memslots / kvm_arch_flush_shadow_memslot and the memslot generation a fault re-checks under ' +
    'mmu_lock: a fault that resolved the gfn through the old slot must not install an spte for a slot that is gone.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: true,
  build({ sched, protocol, rng, events }) {
    let mmioStores = 0;
    const t = createTortureVm({
      protocol,
      sched,
      hostBytes: 128 * KiB,
      guestBytes: 64 * KiB,
      nMaxMmuPages: 4,
      ...(events ? { events } : {}),
      mmio: (gpa, value) => {
        if (gpa !== Y) return false;
        if (value === V) mmioStores++;
        return true;
      },
    });
    const hva1 = runSync(t.k.mmap(t.proc.mm, SLOT1_PAGES * PAGE));
    runSync(t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPA, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 }));
    loadProg(t, storeProgram(Y, V));
    const log: VcpuLog = { exits: [] };
    sched.spawn('vcpu0', () => runGuest(t, log, 1000));
    sched.spawn('mover', function* () {
      yield* sleepRandom(rng.below(3), 'mover');
      yield* t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPA, memorySize: 0, userspaceAddr: hva1 });
    });
    return {
      t,
      check: () => {
        const out = guestProblems(t, log);
        // The slot's memory, read straight from the host frame (no fault, nothing moves).
        const pte = t.proc.mm.pt.get((hva1 + PAGE) >>> 12);
        const inMemory = ptePresent(pte) && t.vm.ram32[ptePfn(pte) << 10] === V ? 1 : 0;
        if (out.length === 0 && inMemory + mmioStores !== 1) {
          out.push(`the store landed ${inMemory + mmioStores} times (memory ${inMemory}, MMIO ${mmioStores})`);
        }
        return out;
      },
    };
  },
};

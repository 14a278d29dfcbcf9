import { MADV_DONTNEED } from '../../host/kernel.js';
import { runSync } from '../../sched/index.js';
import { Prog, addi, bne, li, lw } from '../../hart/asm.js';
import { KiB, PAGE, createTortureVm, emitDone, loadProg } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { guestProblems, runGuest, sleepRandom } from './common.js';
import type { VcpuLog } from './common.js';

const SLOT1_PAGES = 4;
const OLD_GPA = 0x90000000;
const NEW_GPA = 0xa0000000;
const OFF = PAGE;

export const memslotMoveVsInvalidate: Scenario = {
  name: 'memslot-move-vs-invalidate',
  description:
    'Memslot 1 moves back and forth between two guest-physical bases while MADV_DONTNEED drops one of its pages ' +
    'again and again and a vCPU reads that page through both bases (one of them MMIO at any time). A range_end ' +
    'must meet the memslots its range_start met, and no spte may outlive the dropped page.',
  reproduces:
    'kvm_swap_active_memslots waiting for mn_active_invalidate_count == 0 (kvm_mmu_notifier_invalidate_range_start ' +
    'resolves hvas to gfns through the memslots of the moment; a move in between would leave the new gfns ' +
    'unprotected by mmu_invalidate_in_progress).',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({
      protocol,
      sched,
      hostBytes: 128 * KiB,
      guestBytes: 64 * KiB,
      nMaxMmuPages: 4,
      ...(events ? { events } : {}),
      mmio: () => false,
    });
    const hva1 = runSync(t.k.mmap(t.proc.mm, SLOT1_PAGES * PAGE));
    runSync(t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: OLD_GPA, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 }));
    // Load through both bases, again and again: one is the slot, the other MMIO (reads as 0).
    const p = new Prog(0x80000000 | 0);
    p.emit(li(8, OLD_GPA + OFF), li(9, NEW_GPA + OFF), li(18, 0), li(19, 1500));
    p.label('loop').emit(lw(5, 8, 0), lw(6, 9, 0), addi(18, 18, 1)).to('loop', (o) => bne(18, 19, o));
    emitDone(p);
    loadProg(t, p);
    const log: VcpuLog = { exits: [] };
    let moves = 0;
    sched.spawn('vcpu0', () => runGuest(t, log, 50 + rng.below(200)));
    sched.spawn('mover', function* () {
      for (let i = 0; i < 6; i++) {
        yield* sleepRandom(rng.below(200), 'mover');
        yield* t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: i % 2 === 0 ? NEW_GPA : OLD_GPA, memorySize: SLOT1_PAGES * PAGE, userspaceAddr: hva1 });
        moves++;
      }
    });
    sched.spawn('madvise', function* () {
      for (let i = 0; i < 12; i++) {
        yield* sleepRandom(rng.below(100), 'madvise');
        yield* t.k.madvise(t.proc.mm, hva1 + OFF, PAGE, MADV_DONTNEED);
      }
    });
    return { t, check: () => [...guestProblems(t, log), ...(moves === 6 ? [] : [`the mover made ${moves} of 6 moves`])] };
  },
};

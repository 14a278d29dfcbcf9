import { auditGru } from '../../gru/audit.js';
import { GruDevice } from '../../gru/gru.js';
import { hostDebugView } from '../../host/debug-view.js';
import type { MmuNotifierRange } from '../../host/mmu-notifier.js';
import { secondaryMmuHost } from '../../host/secondary-mmu.js';
import type { Task } from '../../sched/index.js';
import { KiB, PAGE, RAM_GPA, createTortureVm, hvaOf, loadProg } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { guestProblems, patternProgram, runGuest, sleepRandom } from './common.js';
import type { VcpuLog } from './common.js';

/** The pages the guest writes and reclaim swaps out, above the guest's code page. */
const FIRST = RAM_GPA + 0x8000;
const PAGES = 8;

export const registerVsUnmap: Scenario = {
  name: 'register-vs-unmap',
  description:
    'The guest writes and reads back a word in each of 8 pages while reclaim swaps them out. The VMM process ' +
    'already has a secondary MMU whose invalidate_range_start sleeps (a remote recall round trip), so each ' +
    'try_to_unmap stays inside its range for a while; as soon as one is, a GRU-like device (src/gru) opens on the ' +
    'same mm (mmu_notifier_register) and reads the very page the walk is unmapping. The device\'s TLB must never ' +
    'keep a translation the host pte no longer has.',
  reproduces:
    'mm_take_all_locks at registration (the 2008 mm_lock, mm/mmu_notifier.c): try_to_unmap takes no mmap_lock, so ' +
    'only the all-locks gate keeps a subscription from joining between a range_start and its range_end. Without it ' +
    '(the host switch noTakeAllLocks) the device misses the range_start, fills inside the range (it was told of no ' +
    'active range), gets a range_end it ignores, and keeps the translation after the pte became a swap entry.',
  // Under the 2008 notifier try_to_unmap calls invalidate_page, not a range, and the
  // GRU model has no invalidate_page: there is no range for registration to race.
  protocols: ['modern', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 128 * KiB, nMaxMmuPages: 8, ...(events ? { events } : {}) });
    loadProg(t, patternProgram(FIRST, FIRST + PAGES * PAGE, PAGE));
    const host = secondaryMmuHost(t.k);
    const view = hostDebugView(t.k);
    const log: VcpuLog = { exits: [] };
    const problems: string[] = [];
    let dev: GruDevice | null = null;
    /** The hva an rmap walk is unmapping while the slow subscriber holds its range open. */
    let walking = -1;
    let reclaimDone = false;
    const recall = 20 + rng.below(40);
    sched.spawn('vcpu0', function* () {
      yield* runGuest(t, log, 100 + rng.below(400));
    });
    sched.spawn('setup', function* () {
      // An XPMEM-like exporter's recall, reduced to its sleep: registered before any
      // walk, so registration order is not what the race depends on.
      yield* host.mmuNotifierRegister(t.proc.mm, 'slow-recall', {
        *invalidateRangeStart(r: MmuNotifierRange): Task<number> {
          if (r.event !== 'clear') return 0;
          if (walking < 0) walking = r.start;
          yield* sleepRandom(recall, 'remote recall');
          return 0;
        },
      });
      sched.spawn('reclaim', function* () {
        while (!t.ucall.done && log.exits.length === 0) yield* sleepRandom(1 + rng.below(3), 'wait for the guest');
        for (let i = 0; i < 12 && t.proc.mm.swapEnts === 0; i++) {
          yield* t.k.reclaim(16);
          yield* sleepRandom(rng.below(4), 'reclaim');
        }
        reclaimDone = true;
      });
      sched.spawn('open', function* () {
        while (walking < 0 && !reclaimDone) yield* sleepRandom(1, 'wait for a walk');
        const d = yield* GruDevice.create(host, t.proc.mm, { name: 'gru1', entries: 8 });
        if (d === null) throw new Error('gru open failed');
        dev = d;
        const buf = new Uint8Array(64);
        const first = walking >= 0 ? walking : hvaOf(t, FIRST);
        const r = yield* d.submit({ op: 'read', hva: first, dst: buf });
        if (r !== 0) problems.push(`device read of 0x${first.toString(16)} failed: ${r}`);
        for (let i = 0; i < 3; i++) {
          const hva = hvaOf(t, FIRST) + rng.below(PAGES) * PAGE;
          const rr = yield* d.submit({ op: 'read', hva, dst: buf });
          if (rr !== 0) problems.push(`device read of 0x${hva.toString(16)} failed: ${rr}`);
        }
        while (!reclaimDone) yield* sleepRandom(1 + rng.below(3), 'device idle');
        yield* d.destroy();
      });
    });
    return {
      t,
      audit: () => (dev !== null ? auditGru(view, dev) : []),
      check: () => {
        const out = [...guestProblems(t, log), ...problems];
        if (walking < 0 && protocol === 'modern') out.push('setup: no rmap walk ran (nothing was swapped out)');
        const d = dev as GruDevice | null;
        if (d === null) out.push('the device never opened');
        else if (d.refsHeld !== 0) out.push(`the device still holds ${d.refsHeld} page reference(s) after close`);
        return out;
      },
    };
  },
};

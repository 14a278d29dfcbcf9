import { folioReferenced } from '../../host/rmap.js';
import { Prog, addi, bne, li, lw, sw } from '../../hart/asm.js';
import { KiB, RAM_GPA, createTortureVm, emitDone, emitFail, hostPfn, loadProg, writeGuest } from '../fixture.js';
import type { Scenario } from '../scenario.js';
import { V, X, guestProblems, reclaimUntilOut, runGuest, sleepRandom } from './common.js';
import type { VcpuLog } from './common.js';

const H = RAM_GPA + 0x11000;
const I = RAM_GPA + 0x12000;
const LOOPS = 12000;
const ROUNDS = 4;

/**
 * lw X (a swap-in read: a clean swap-cache page whose host pte is writable, so KVM
 * maps it writable); sw V, X (only the spte's D bit knows); lw I once; then read H
 * LOOPS times; then read X back: FAIL unless V.
 */
function agingProgram(): { prog: Prog; loopStart: number; loopEnd: number } {
  const p = new Prog(RAM_GPA | 0);
  p.emit(li(8, X), lw(5, 8, 0), li(6, V), sw(6, 8, 0), li(19, I), lw(5, 19, 0), li(20, H), li(9, 0), li(18, LOOPS));
  const loopStart = RAM_GPA + 4 * p.words.length;
  p.label('loop').emit(lw(5, 20, 0), addi(9, 9, 1)).to('loop', (o) => bne(9, 18, o));
  const loopEnd = RAM_GPA + 4 * p.words.length;
  p.emit(lw(7, 8, 0)).to('fail', (o) => bne(7, 6, o));
  emitDone(p);
  p.label('fail');
  emitFail(p, 7);
  return { prog: p, loopStart, loopEnd };
}

interface Round {
  insns: number;
  inLoop: boolean;
  h: number | null;
  i: number | null;
}

export const agingVsWrite: Scenario = {
  name: 'aging-vs-write',
  description:
    'The guest writes X through a writable spte over a clean swap-cache page, touches I once, then reads H in a ' +
    'loop while the host ages H and I (folio_referenced) and then reclaims. H must look young every round, I idle ' +
    'after its first round, and X must come back from swap with the guest\'s store.',
  reproduces:
    'the young and dirty bit carry of the secondary MMU: clear_flush_young/age_page must clear spte accessed bits ' +
    'and the TLB entries that would set them again; zapping a dirty spte must mark the page dirty before the host ' +
    'pte goes (kvm_set_pfn_dirty), or reclaim drops the guest\'s write with a stale swap copy.',
  protocols: ['modern', 'v7', 'pin'],
  exhaustive: false,
  build({ sched, protocol, rng, events }) {
    const t = createTortureVm({ protocol, sched, hostBytes: 256 * KiB, guestBytes: 128 * KiB, nMaxMmuPages: 8, ...(events ? { events } : {}) });
    const { prog, loopStart, loopEnd } = agingProgram();
    loadProg(t, prog);
    const log: VcpuLog = { exits: [] };
    const rounds: Round[] = [];
    let xOut = false;
    sched.spawn('vcpu0', function* () {
      yield* writeGuest(t, X, [1]);
      // X goes out to swap before the guest starts; H and I are written after.
      xOut = yield* reclaimUntilOut(t, X, 50, 64);
      yield* writeGuest(t, H, [2]);
      yield* writeGuest(t, I, [3]);
      yield* runGuest(t, log, 500 + rng.below(1000));
    });
    sched.spawn('aging', function* () {
      while (!xOut && log.exits.length === 0) yield* sleepRandom(50, 'wait for the guest');
      yield* sleepRandom(1500 + rng.below(1000), 'let the guest start');
      for (let r = 0; r < ROUNDS && log.exits.length === 0; r++) {
        const pc = t.vcpu.hart.pc >>> 0;
        const insns = t.vcpu.instructions;
        const hp = hostPfn(t, H);
        const ip = hostPfn(t, I);
        const h = hp < 0 ? null : yield* folioReferenced(t.k, hp);
        const i = ip < 0 ? null : yield* folioReferenced(t.k, ip);
        rounds.push({ insns, inLoop: pc >= loopStart && pc < loopEnd, h, i });
        yield* sleepRandom(1500 + rng.below(1500), 'next round');
      }
      // Reclaim page by page while the guest runs: X (written, then idle) goes out.
      for (let n = 0; n < 40 && log.exits.length === 0; n++) {
        yield* t.k.reclaim(2);
        yield* sleepRandom(300 + rng.below(600), 'guest runs');
      }
    });
    return {
      t,
      maxSteps: 400_000,
      check: () => {
        const out = guestProblems(t, log);
        if (!xOut) out.push('setup: X did not go out to swap');
        // pin: no notifier, no secondary-MMU aging: H and I look as the host ptes say.
        if (protocol === 'pin') return out;
        for (let r = 1; r < rounds.length; r++) {
          const prev = rounds[r - 1]!;
          const cur = rounds[r]!;
          if (prev.inLoop && cur.inLoop && cur.insns - prev.insns >= 3 && cur.h === 0) {
            out.push(`aging: round ${r}: H, read by the guest ${cur.insns - prev.insns} instructions since the last round, looks idle`);
          }
          if (prev.inLoop && cur.i !== null && cur.i > 0) out.push(`aging: round ${r}: I, untouched since round ${r - 1}, looks young`);
        }
        return out;
      },
    };
  },
};

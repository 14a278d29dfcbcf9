// Seeded random schedules: two vCPUs (one verifying a pattern, one scribbling over a
// scratch range), a balloon-like thread returning scratch pages with MADV_DONTNEED,
// and a memory hog, on a host too small for all of it. The coherency audit runs every
// few steps; the pattern must survive; teardown must give every frame back.

import { describe, expect, it } from 'vitest';
import { CSR_MEDELEG, PRIV_S } from '../../src/hart/csr.js';
import type { MmioBus } from '../../src/hart/translator.js';
import type { VcpuExit } from '../../src/kvm/vcpu.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Rng, sleepTicks } from '../../src/sched/index.js';
import { patternProgram, scribbleProgram } from './guests.js';
import { KiB, PAGE, RAM_GPA, createVm, expectClean, loadProg, runAudited, runUntilUcall, teardown } from './vm-harness.js';

const SCRATCH = 40;
const PAGES = 64;

describe.each<KvmProtocol>(['modern', 'v7'])('torture, %s', (protocol) => {
  it.each([1, 2, 3])('seed %i', (seed) => {
    const t = createVm({ protocol, seed, hostBytes: 192 * KiB, guestBytes: PAGES * PAGE, nMaxMmuPages: 8 });
    loadProg(t, patternProgram(RAM_GPA + 4 * PAGE, RAM_GPA + 32 * PAGE));
    loadProg(t, scribbleProgram(RAM_GPA + 2 * PAGE, RAM_GPA + SCRATCH * PAGE, RAM_GPA + PAGES * PAGE, 4000, 0x10000010));
    let v1done = false;
    const bus1: MmioBus = {
      read: () => 0,
      write: (pa) => {
        if (pa === 0x10000010) {
          v1done = true;
          vcpu1.requestExit('mmio');
        } else bus1.fault = true;
      },
    };
    const vcpu1 = t.vm.createVcpu(1, { bus: bus1 });
    vcpu1.hart.priv = PRIV_S;
    vcpu1.hart.writeCsr(CSR_MEDELEG, 0xb1ff);
    vcpu1.hart.pc = (RAM_GPA + 2 * PAGE) | 0;

    const rng = new Rng(seed);
    let exit0: VcpuExit | null = null;
    let exit1: VcpuExit | null = null;
    t.sched.spawn('vcpu0', function* () {
      exit0 = yield* runUntilUcall(t, { quantum: 300 + rng.below(700) });
    });
    t.sched.spawn('vcpu1', function* () {
      exit1 = yield* vcpu1.run({ quantum: 500 });
    });
    t.sched.spawn('balloon', function* () {
      for (let i = 0; i < 40 && !(t.ucall.done && v1done); i++) {
        const page = SCRATCH + rng.below(PAGES - SCRATCH);
        expect(yield* t.k.madvise(t.proc.mm, t.ramHva + page * PAGE, PAGE, 4)).toBe(0);
        yield* sleepTicks(200 + rng.below(2000), 'balloon');
      }
    });
    const hog = t.k.createProcess('hog');
    t.sched.spawn('hog', function* () {
      const hva = yield* t.k.mmap(hog.mm, 24 * PAGE);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 24; i++) {
          const r = yield* t.k.accessWrite(hog.mm, hva + i * PAGE, new Uint8Array([round, i]));
          if (r !== 0) return;
        }
        yield* sleepTicks(3000, 'hog');
      }
    });
    const r = runAudited(t, { every: 13 });
    expectClean(r, t);
    expect(exit0).toEqual({ reason: 'mmio' });
    expect(exit1).toEqual({ reason: 'mmio' });
    expect(t.ucall.fail).toBeNull();
    expect(t.ucall.done).toBe(true);
    expect(v1done).toBe(true);
    expect(t.k.stats().pswpout).toBeGreaterThan(0);
    expect(t.vm.stats.invalidations).toBeGreaterThan(0);
    t.sched.spawn('hog-exit', () => t.k.exitProcess(hog));
    teardown(t);
  });
});

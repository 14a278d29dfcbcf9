// Bounded-preemption exhaustive search (src/sched/explore.ts) over a small scenario:
// a vCPU stores to X while MADV_DONTNEED drops X. Every schedule within the bound
// must end coherent; with the retry switched off, the search finds one that does not.

import { describe, expect, it } from 'vitest';
import { auditCoherency } from '../../src/check/coherency.js';
import { hostDebugView } from '../../src/host/index.js';
import { explore } from '../../src/sched/index.js';
import type { Scheduler } from '../../src/sched/index.js';
import { Prog, li, sw } from '../hart/asm.js';
import { KiB, PAGE, RAM_GPA, createVm, emitDone, loadProg, runUntilUcall, writeGuest } from './vm-harness.js';
import { runSync } from '../../src/sched/index.js';

const X = RAM_GPA + 0x10000;

function scenario(noRetry: boolean) {
  return (s: Scheduler) => {
    const t = createVm({ protocol: 'modern', sched: s, hostBytes: 128 * KiB, guestBytes: 128 * KiB, nMaxMmuPages: 4 });
    t.vm.debug.noRetry = noRetry;
    const p = new Prog(RAM_GPA | 0);
    p.emit(li(8, X), li(6, 0x1234), sw(6, 8, 0));
    emitDone(p);
    loadProg(t, p);
    runSync(writeGuest(t, X, [1]));
    s.spawn('vcpu0', function* () {
      expect(yield* runUntilUcall(t)).toEqual({ reason: 'mmio' });
    });
    s.spawn('madvise', function* () {
      expect(yield* t.k.madvise(t.proc.mm, t.ramHva + (X - RAM_GPA), PAGE, 4)).toBe(0);
    });
    return () => {
      const problems = auditCoherency(t.vm, hostDebugView(t.k));
      if (problems.length > 0) throw new Error(problems.join('\n'));
    };
  };
}

describe('explore: fault vs MADV_DONTNEED', () => {
  it('every schedule with up to 2 preemptions ends coherent', () => {
    const r = explore(scenario(false), { preemptionBound: 2, maxSchedules: 5000 });
    expect(r.failures.map((f) => String(f.error))).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.schedules).toBeGreaterThan(20);
  });

  it('without the retry, the search finds the schedule that maps a dropped page', () => {
    const r = explore(scenario(true), { preemptionBound: 2, maxSchedules: 5000, stopOnFailure: true });
    expect(r.failures.length).toBe(1);
    expect(String(r.failures[0]!.error)).toMatch(/maps a free frame|is not present/);
  });
});

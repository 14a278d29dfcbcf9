// Guest programs and threads the scenarios share.

import type { VcpuExit } from '../../kvm/vcpu.js';
import { sleepTicks } from '../../sched/index.js';
import type { Task } from '../../sched/index.js';
import { Prog, add, addi, bltu, bne, jal, li, lw, sw, xor } from '../../hart/asm.js';
import { KiB, RAM_GPA, createTortureVm, emitDone, emitFail, hostPfn, loadProg, runUntilUcall } from '../fixture.js';
import type { TortureVm } from '../fixture.js';
import type { BuildContext } from '../scenario.js';

/** The page the scenarios race over, and the value the guest stores there. */
export const X = RAM_GPA + 0x10000;
export const V = 0x7a7a1234;

/** *x = v; DONE. */
export function storeProgram(x: number, v: number, base = RAM_GPA): Prog {
  const p = new Prog(base | 0);
  p.emit(li(8, x), li(6, v), sw(6, 8, 0));
  emitDone(p);
  return p;
}

/**
 * The machine of the one-store races: 128 KiB of host and of guest RAM, four
 * shadow pages, and the guest program *X = V loaded.
 */
export function storeVm({ sched, protocol, events }: Pick<BuildContext, 'sched' | 'protocol' | 'events'>): TortureVm {
  const t = createTortureVm({ protocol, sched, hostBytes: 128 * KiB, guestBytes: 128 * KiB, nMaxMmuPages: 4, ...(events ? { events } : {}) });
  loadProg(t, storeProgram(X, V));
  return t;
}

/** for (x9 = 1..n) *x = x9; DONE. (No read-back: a DONTNEED may legitimately zero *x in between.) */
export function counterProgram(x: number, n: number, base = RAM_GPA): Prog {
  const p = new Prog(base | 0);
  p.emit(li(8, x), li(9, 0), li(18, n));
  p.label('loop').emit(addi(9, 9, 1), sw(9, 8, 0)).to('loop', (o) => bne(9, 18, o));
  emitDone(p);
  return p;
}

const SEED = 0x5eed1234;
/** for (p = start; p < end; p += stride) *p = p ^ SEED; then read back: FAIL(p) at the first mismatch. */
export function patternProgram(start: number, end: number, stride: number, base = RAM_GPA): Prog {
  const p = new Prog(base | 0);
  p.emit(li(5, start), li(6, end), li(7, SEED), li(12, stride));
  p.label('w').emit(xor(10, 5, 7), sw(10, 5, 0), add(5, 5, 12)).to('w', (o) => bltu(5, 6, o));
  p.emit(li(5, start));
  p.label('r').emit(lw(10, 5, 0), xor(11, 5, 7)).to('fail', (o) => bne(10, 11, o));
  p.emit(add(5, 5, 12)).to('r', (o) => bltu(5, 6, o));
  emitDone(p);
  p.label('fail');
  emitFail(p, 5);
  return p;
}

/** Parks the guest (jal 0) at `base`: for vCPU threads that must not run on. */
export function parkProgram(base: number): Prog {
  return new Prog(base | 0).emit(jal(0, 0));
}

/** Reclaims until gpa's page is out of host RAM (or `rounds` passes freed nothing of it). */
export function* reclaimUntilOut(t: TortureVm, gpa: number, rounds: number, nr: number): Task<boolean> {
  for (let i = 0; i < rounds && hostPfn(t, gpa) >= 0; i++) yield* t.k.reclaim(nr);
  return hostPfn(t, gpa) < 0;
}

/** What a vCPU thread saw: every KVM_RUN exit in order. */
export interface VcpuLog {
  exits: VcpuExit[];
}

/** KVM_RUN until DONE/FAIL or another exit, recording it. */
export function* runGuest(t: TortureVm, log: VcpuLog, quantum: number): Task {
  log.exits.push(yield* runUntilUcall(t, { quantum }));
}

export function describeExit(e: VcpuExit | undefined): string {
  if (e === undefined) return 'no exit';
  return e.reason === 'internal-error' ? `internal-error (${e.message})` : e.reason;
}

/** The guest's own verdict: DONE and no FAIL. */
export function guestProblems(t: TortureVm, log: VcpuLog): string[] {
  const out: string[] = [];
  if (t.ucall.fail !== null) out.push(`guest FAIL: read back 0x${(t.ucall.fail >>> 0).toString(16)}`);
  else if (!t.ucall.done) out.push(`guest did not finish: ${describeExit(log.exits[0])}`);
  return out;
}

export function* sleepRandom(ticks: number, reason: string): Task {
  if (ticks > 0) yield* sleepTicks(ticks, reason);
}

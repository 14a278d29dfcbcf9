// Guest programs shared by the KVM tests (paging off, S-mode, built with test/hart/asm.ts).

import { Prog, add, addi, bltu, bne, jal, li, lw, sw, xor } from '../hart/asm.js';
import type { Task } from '../../src/sched/index.js';
import { RAM_GPA, UCALL_DONE, emitDone, emitFail, readGuest32, writeGuest } from './vm-harness.js';
import type { TestVm } from './vm-harness.js';

const SEED = 0x5eed1234;
const STRIDE = 128;

/** for (p = start; p < end; p += STRIDE) *p = p ^ SEED; then read back and compare. */
export function patternProgram(start: number, end: number, base = RAM_GPA): Prog {
  const p = new Prog(base | 0);
  p.emit(li(5, start), li(6, end), li(7, SEED));
  p.label('w').emit(xor(10, 5, 7), sw(10, 5, 0), addi(5, 5, STRIDE)).to('w', (o) => bltu(5, 6, o));
  p.emit(li(5, start));
  p.label('r').emit(lw(10, 5, 0), xor(11, 5, 7)).to('fail', (o) => bne(10, 11, o));
  p.emit(addi(5, 5, STRIDE)).to('r', (o) => bltu(5, 6, o));
  emitDone(p);
  p.label('fail');
  emitFail(p, 5);
  return p;
}


/**
 * for (n = 0; n < count; n++) { *p = n; p += PAGE + 4; if (p >= end) p = start; }
 * then a store of 1 to `done` (an MMIO address), and park.
 */
export function scribbleProgram(base: number, start: number, end: number, count: number, done = UCALL_DONE): Prog {
  const p = new Prog(base | 0);
  p.emit(li(9, 0), li(18, count), li(19, start), li(20, end), li(21, 4096 + 4), addi(8, 19, 0));
  p.label('loop').emit(sw(9, 8, 0), add(8, 8, 21)).to('ok', (o) => bltu(8, 20, o));
  p.emit(addi(8, 19, 0));
  p.label('ok').emit(addi(9, 9, 1)).to('loop', (o) => bne(9, 18, o));
  p.emit(li(10, done), li(11, 1), sw(11, 10, 0), jal(0, 0));
  return p;
}

/**
 * Sv32 tables in guest memory, written from the host side through the VMM's mapping
 * (so host faults and swap-ins may happen): a Task-based twin of sv32.test.ts's pager
 * for use inside scheduler threads.
 */
export class GuestTables {
  private next: number;
  constructor(
    readonly t: TestVm,
    readonly root: number,
  ) {
    this.next = root + 0x1000;
  }
  *ptePa(va: number): Task<number> {
    const l1 = yield* readGuest32(this.t, this.root + (va >>> 22) * 4);
    return (l1 >>> 10) * 4096 + ((va >>> 12) & 0x3ff) * 4;
  }
  *map4k(va: number, gpa: number, flags: number): Task<void> {
    const l1Pa = this.root + (va >>> 22) * 4;
    const l1 = yield* readGuest32(this.t, l1Pa);
    if ((l1 & 1) === 0) {
      yield* writeGuest(this.t, l1Pa, [((this.next / 4096) << 10) | 1]);
      this.next += 0x1000;
    }
    yield* writeGuest(this.t, yield* this.ptePa(va), [((gpa / 4096) << 10) | flags]);
  }
  satp(): number {
    return (0x80000000 | (this.root / 4096)) | 0;
  }
}

// Guest page tables changing under the shadow MMU, under memory pressure. Between
// rounds the "guest OS" (the test, while the vCPU is stopped at a sync ucall) remaps,
// unmaps or rewrites pages; each round the guest fences (the whole TLB on even rounds,
// page by page on odd ones) and loads every page, logging what it sees (a tag, or
// 0xdead from its page-fault handler). The log must match a model of the tables,
// while reclaim swaps guest tables and data, a hog competes for RAM, and shadow
// pages are recycled (16 guest tables, a bound of 6 shadow pages) or not (64), so
// the fences alone must bring the changes in.

import { describe, expect, it } from 'vitest';
import { CSR_SATP, CSR_SEPC, CSR_STVEC } from '../../src/hart/csr.js';
import { PTE_A, PTE_D, PTE_R, PTE_V, PTE_W, PTE_X } from '../../src/hart/sv32.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Rng, sleepTicks } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { Prog, add, addi, beq, bne, csrr, csrw, jal, li, lw, sfence_vma, sret, sw } from '../hart/asm.js';
import { GuestTables } from './guests.js';
import { KiB, PAGE, RAM_GPA, UCALL_DONE, UCALL_LOG, UCALL_SYNC, createVm, expectClean, runAudited, teardown, writeGuest } from './vm-harness.js';

const CODE_VA = 0x80000000;
const VA_BASE = 0x40000000;
const STEP = 0x400000; // one guest L0 table per page
const K = 16;
const DATA_PAGES = 32;
const DATA_GPA = RAM_GPA + 0x100000;
const DEAD = 0xdead;

function tag(j: number, gen: number): number {
  return (0x7a000000 + j * 0x1000 + gen) | 0;
}

function guest(): Prog {
  const p = new Prog(CODE_VA | 0);
  p.emit(li(6, 0)); // patched: x6 = handler
  p.emit(csrw(CSR_STVEC, 6), li(7, UCALL_LOG), li(20, 0));
  p.label('round');
  p.to('perpage', (o) => bne(20, 0, o));
  p.emit(sfence_vma(0, 0));
  p.label('perpage').emit(li(8, VA_BASE), li(9, 0), li(18, K), li(19, STEP));
  p.label('next');
  p.to('load', (o) => beq(20, 0, o));
  p.emit(sfence_vma(8, 0));
  p.label('load').emit(lw(5, 8, 0), sw(5, 7, 0), add(8, 8, 19), addi(9, 9, 1)).to('next', (o) => bne(9, 18, o));
  p.emit(li(10, UCALL_SYNC), sw(0, 10, 0), li(11, 1), sub1(20)).to('round', (o) => jal(0, o));
  p.label('handler').emit(csrr(6, CSR_SEPC), addi(6, 6, 4), csrw(CSR_SEPC, 6), li(5, DEAD), sret());
  return p;
}

/** x20 ^= 1 */
function sub1(r: number): number {
  return ((1 << 20) | (r << 15) | (4 << 12) | (r << 7) | 0x13) | 0; // xori r, r, 1
}

describe.each<[KvmProtocol, number]>([
  ['modern', 6],
  ['modern', 64],
  ['v7', 6],
  ['v7', 64],
])('Sv32 tables changing under pressure, %s, n_max_mmu_pages %i', (protocol, nMaxMmuPages) => {
  it.each([1, 2])('seed %i', (seed) => {
    const t = createVm({ protocol, seed, hostBytes: 160 * KiB, guestBytes: 2048 * KiB, nMaxMmuPages });
    const rng = new Rng(seed * 7919);
    const p = guest();
    const words = p.assemble();
    const set = li(6, p.addr('handler'));
    words[0] = set[0]!;
    words[1] = set[1]!;
    const pg = new GuestTables(t, RAM_GPA + 0x1000);
    const gen = new Array<number>(DATA_PAGES).fill(0);
    // model: VA_i -> data page j, or -1 (unmapped)
    const map: number[] = [];
    function* setup(): Task<void> {
      yield* writeGuest(t, RAM_GPA, words);
      yield* pg.map4k(CODE_VA, RAM_GPA, PTE_V | PTE_R | PTE_X);
      yield* pg.map4k(UCALL_DONE, UCALL_DONE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
      for (let j = 0; j < DATA_PAGES; j++) yield* writeGuest(t, DATA_GPA + j * PAGE, [tag(j, 0)]);
      for (let i = 0; i < K; i++) {
        map.push(i);
        yield* pg.map4k(VA_BASE + i * STEP, DATA_GPA + i * PAGE, PTE_V | PTE_R | PTE_W);
      }
      t.vcpu.hart.writeCsr(CSR_SATP, pg.satp());
      t.vcpu.hart.pc = CODE_VA | 0;
    }

    const rounds = 12;
    let checked = 0;
    t.sched.spawn('vcpu0', function* () {
      yield* setup();
      for (let round = 0; round < rounds; round++) {
        t.ucall.log.length = 0;
        const exit = yield* t.vcpu.run({ quantum: 200 + rng.below(800) });
        expect(exit).toEqual({ reason: 'mmio' });
        const want = map.map((j) => (j < 0 ? DEAD : tag(j, gen[j]!)));
        expect(t.ucall.log, `round ${round}`).toEqual(want);
        checked++;
        // The guest OS changes its tables and data while the vCPU is stopped.
        for (let n = 0; n < 4; n++) {
          const i = rng.below(K);
          const r = rng.below(4);
          const ptePa = yield* pg.ptePa(VA_BASE + i * STEP);
          if (r === 0) {
            map[i] = -1;
            yield* writeGuest(t, ptePa, [0]);
          } else if (r === 1 || r === 2) {
            const j = rng.below(DATA_PAGES);
            map[i] = j;
            yield* writeGuest(t, ptePa, [(((DATA_GPA + j * PAGE) / 4096) << 10) | PTE_V | PTE_R | PTE_W]);
          } else {
            const j = rng.below(DATA_PAGES);
            gen[j]!++;
            yield* writeGuest(t, DATA_GPA + j * PAGE, [tag(j, gen[j]!)]);
          }
        }
      }
    });
    const hog = t.k.createProcess('hog');
    t.sched.spawn('hog', function* () {
      const hva = yield* t.k.mmap(hog.mm, 16 * PAGE);
      for (let r = 0; r < 6; r++) {
        for (let i = 0; i < 16; i++) if ((yield* t.k.accessWrite(hog.mm, hva + i * PAGE, new Uint8Array([r, i]))) !== 0) return;
        yield* sleepTicks(500 + rng.below(3000), 'hog');
      }
    });
    expectClean(runAudited(t, { every: 7 }), t);
    expect(checked).toBe(rounds);
    expect(t.k.stats().pswpout).toBeGreaterThan(0);
    expect(t.k.stats().pswpin).toBeGreaterThan(0);
    if (nMaxMmuPages < K) expect(t.vm.stats.mmuRecycled).toBeGreaterThan(0);
    else expect(t.vm.stats.mmuRecycled).toBe(0);
    expect(t.vm.stats.pfGuest).toBeGreaterThan(0);
    t.sched.spawn('hog-exit', () => t.k.exitProcess(hog));
    teardown(t);
  });
});
